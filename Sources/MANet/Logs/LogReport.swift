// Text tables, run comparisons and curves for parsed training logs (what `manet logs` prints).

import Foundation

/// Formats one value for a fixed-width column; missing values print as `-`.
private func cell(_ value: Double?, _ format: String, width: Int) -> String {
    let text = value.map { String(format: format, $0) } ?? "-"
    return text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

/// A learning rate the way a reader wants it: `0.01`, `1e-08`.
func formatLearningRate(_ lr: Double?) -> String {
    guard let lr else { return "-" }
    return String(format: "%.3g", lr)
}

extension TrainingLog {
    /// One line per epoch: lr, train loss / accuracy, test loss / accuracy, best so far, seconds;
    /// then the run's final and best accuracy. The parser's `warnings` are not part of it (the
    /// command line reports them on stderr).
    public func table() -> String {
        var lines: [String] = []
        lines.append("\(source): \(epochs.count) epochs")
        let header = [pad("epoch", 5), pad("lr", 9), pad("train loss", 10), pad("train acc", 9),
                      pad("test loss", 9), pad("test acc", 8), pad("best", 8), pad("seconds", 8)]
        lines.append(header.joined(separator: "  "))
        for e in epochs {
            lines.append([
                pad(String(e.epoch), 5), pad(formatLearningRate(e.learningRate), 9),
                cell(e.trainLoss, "%.4f", width: 10), cell(e.trainAccuracy, "%.3f", width: 9),
                cell(e.testLoss, "%.4f", width: 9), cell(e.testAccuracy, "%.3f", width: 8),
                cell(e.bestAccuracy, "%.3f", width: 8), cell(e.seconds, "%.1f", width: 8),
            ].joined(separator: "  "))
        }
        lines.append(summary)
        return lines.joined(separator: "\n") + "\n"
    }

    /// `final accuracy X, best Y (epoch N), T s in total`.
    public var summary: String {
        let final = finalAccuracy.map { String(format: "%.3f", $0) } ?? "-"
        let best = bestAccuracy.map { String(format: "%.3f", $0) } ?? "-"
        let at = bestEpoch.map { " (epoch \($0))" } ?? ""
        return "final accuracy \(final), best \(best)\(at), \(String(format: "%.0f", totalSeconds)) s in total"
    }
}

/// Two runs epoch by epoch (matched by epoch number), with B minus A differences.
public struct LogComparison: Codable, Equatable, Sendable {
    public struct Row: Codable, Equatable, Sendable {
        public var epoch: Int
        public var testAccuracyA: Double?
        public var testAccuracyB: Double?
        public var testAccuracyDifference: Double?
        public var trainLossA: Double?
        public var trainLossB: Double?
        public var trainLossDifference: Double?
        public var testLossA: Double?
        public var testLossB: Double?
        public var testLossDifference: Double?
    }

    public var a: String
    public var b: String
    public var rows: [Row]
    public var finalAccuracyA: Double?
    public var finalAccuracyB: Double?
    public var bestAccuracyA: Double?
    public var bestAccuracyB: Double?

    public init(_ runA: TrainingLog, _ runB: TrainingLog) {
        a = runA.source
        b = runB.source
        func difference(_ x: Double?, _ y: Double?) -> Double? {
            guard let x, let y else { return nil }
            return y - x
        }
        let byEpochA = Dictionary(runA.epochs.map { ($0.epoch, $0) }, uniquingKeysWith: { _, later in later })
        let byEpochB = Dictionary(runB.epochs.map { ($0.epoch, $0) }, uniquingKeysWith: { _, later in later })
        rows = Set(byEpochA.keys).union(byEpochB.keys).sorted().map { epoch in
            let ea = byEpochA[epoch], eb = byEpochB[epoch]
            return Row(epoch: epoch,
                       testAccuracyA: ea?.testAccuracy, testAccuracyB: eb?.testAccuracy,
                       testAccuracyDifference: difference(ea?.testAccuracy, eb?.testAccuracy),
                       trainLossA: ea?.trainLoss, trainLossB: eb?.trainLoss,
                       trainLossDifference: difference(ea?.trainLoss, eb?.trainLoss),
                       testLossA: ea?.testLoss, testLossB: eb?.testLoss,
                       testLossDifference: difference(ea?.testLoss, eb?.testLoss))
        }
        finalAccuracyA = runA.finalAccuracy
        finalAccuracyB = runB.finalAccuracy
        bestAccuracyA = runA.bestAccuracy
        bestAccuracyB = runB.bestAccuracy
    }

    /// The side-by-side table, differences as B - A.
    public func table() -> String {
        var lines = ["A: \(a)", "B: \(b)"]
        lines.append([pad("epoch", 5), pad("acc A", 8), pad("acc B", 8), pad("B-A", 8),
                      pad("loss A", 8), pad("loss B", 8), pad("B-A", 8),
                      pad("tloss A", 8), pad("tloss B", 8), pad("B-A", 8)].joined(separator: "  "))
        for r in rows {
            lines.append([
                pad(String(r.epoch), 5),
                cell(r.testAccuracyA, "%.3f", width: 8), cell(r.testAccuracyB, "%.3f", width: 8),
                cell(r.testAccuracyDifference, "%+.3f", width: 8),
                cell(r.trainLossA, "%.4f", width: 8), cell(r.trainLossB, "%.4f", width: 8),
                cell(r.trainLossDifference, "%+.4f", width: 8),
                cell(r.testLossA, "%.4f", width: 8), cell(r.testLossB, "%.4f", width: 8),
                cell(r.testLossDifference, "%+.4f", width: 8),
            ].joined(separator: "  "))
        }
        func difference(_ x: Double?, _ y: Double?) -> String {
            guard let x, let y else { return "-" }
            return String(format: "%+.3f", y - x)
        }
        func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "-" }
        lines.append("final accuracy: A \(f(finalAccuracyA))  B \(f(finalAccuracyB))  B-A \(difference(finalAccuracyA, finalAccuracyB))")
        lines.append("best accuracy:  A \(f(bestAccuracyA))  B \(f(bestAccuracyB))  B-A \(difference(bestAccuracyA, bestAccuracyB))")
        lines.append("(acc: test accuracy %, loss: train loss, tloss: test loss)")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Several runs epoch by epoch: one block per metric (test accuracy, train loss, test loss), a
/// column per run, and each run's final and best accuracy.
public enum MultiRunTable {
    public static func table(_ runs: [TrainingLog]) -> String {
        let letters = runs.indices.map(runLetter)
        var lines = zip(letters, runs).map { "\($0): \($1.source)" }
        let epochs = Set(runs.flatMap { $0.epochs.map(\.epoch) }).sorted()
        let byEpoch = runs.map { run in Dictionary(run.epochs.map { ($0.epoch, $0) }, uniquingKeysWith: { _, later in later }) }
        let metrics: [(String, String, (EpochSummary) -> Double?)] = [
            ("test accuracy (%)", "%.3f", { $0.testAccuracy }),
            ("train loss", "%.4f", { $0.trainLoss }),
            ("test loss", "%.4f", { $0.testLoss }),
        ]
        for (title, format, value) in metrics {
            lines.append("")
            lines.append(title)
            lines.append(([pad("epoch", 5)] + letters.map { pad($0, 8) } + [pad("min", 8), pad("max", 8)]).joined(separator: "  "))
            for epoch in epochs {
                let values = byEpoch.map { $0[epoch].flatMap(value) }
                let present = values.compactMap { $0 }
                lines.append(([pad(String(epoch), 5)] + values.map { cell($0, format, width: 8) }
                              + [cell(present.min(), format, width: 8), cell(present.max(), format, width: 8)])
                    .joined(separator: "  "))
            }
        }
        lines.append("")
        for (letter, run) in zip(letters, runs) { lines.append("\(letter): \(run.summary)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A, B, ..., Z, then A27, A28, ...
    public static func runLetter(_ index: Int) -> String {
        index < 26 ? String(UnicodeScalar(UInt8(65 + index))) : "A\(index + 1)"
    }
}

/// Accuracy and loss curves of one or more runs: two panels side by side in one SVG.
public enum TrainingCurves {
    /// Over this ratio of the largest to the smallest loss drawn, the loss axis is logarithmic.
    /// Cross-entropy spans decades in ordinary runs: a train loss falls from ~2 to ~0.02 over a
    /// long run, and a test loss measured with BatchNorm running statistics that a few batches
    /// left off can reach tens or hundreds in the first epochs. On a linear axis the largest
    /// values then flatten every other curve to the bottom line; a log axis keeps every value
    /// on the picture, exact (nothing clipped), and equal ratios look equal. Within one decade
    /// a linear axis from 0 reads more easily and is kept.
    public static let logAxisRatio = 10.0

    /// The SVG: a panel of test and train accuracy (%) and a panel of train and test loss, each
    /// with its own axis, then a legend. Runs with one label share a colour (a group, e.g. the
    /// seeds of one trainer), the rest one colour each; test curves are solid, train curves
    /// dashed. Each curve's tooltip names its run and metric.
    ///
    /// - Parameters:
    ///   - labels: one per run (runs with equal labels form a group), or `nil` for
    ///     `defaultLabels(runs)`.
    ///   - title: the picture's title, or `nil` for one naming the groups compared.
    public static func svg(_ runs: [TrainingLog], labels: [String]? = nil, title: String? = nil) -> String {
        let labels = labels ?? defaultLabels(runs)
        precondition(labels.count == runs.count, "TrainingCurves.svg: \(labels.count) labels for \(runs.count) runs")
        let runNames = names(runs)
        let groups = labels.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let members = groups.map { group in labels.filter { $0 == group }.count }
        let groupNames = zip(groups, members).map { $1 > 1 ? "\($0) (\($1) runs)" : $0 }
        let colors = labels.map { LineChart.palette[groups.firstIndex(of: $0)! % LineChart.palette.count] }
        let trainDash = "7 4"

        func curves(_ metrics: [(name: String, dash: String?, value: (EpochSummary) -> Double?)]) -> [LineChart.Series] {
            var series: [LineChart.Series] = []
            for (runIndex, run) in runs.enumerated() {
                let runName = labels[runIndex] == runNames[runIndex] ? runNames[runIndex] : "\(labels[runIndex]) (\(runNames[runIndex]))"
                for metric in metrics {
                    let points = run.epochs.compactMap { e in metric.value(e).map { (x: Double(e.epoch), y: $0) } }
                    if points.isEmpty { continue }
                    series.append(.init(name: "\(runName): \(metric.name)", points: points,
                                        color: colors[runIndex], dash: metric.dash))
                }
            }
            return series
        }
        var accuracy = ChartPanel(title: "accuracy", xLabel: "epoch", yLabel: "accuracy (%)", series: curves([
            ("test accuracy", nil, { $0.testAccuracy }), ("train accuracy", trainDash, { $0.trainAccuracy }),
        ]))
        var loss = ChartPanel(title: "loss", xLabel: "epoch", yLabel: "loss", series: curves([
            ("test loss", nil, { $0.testLoss }), ("train loss", trainDash, { $0.trainLoss }),
        ]))
        let losses = loss.series.flatMap(\.points).map(\.y).filter { $0.isFinite && $0 > 0 }
        if let low = losses.min(), let high = losses.max(), high > logAxisRatio * low {
            loss.yScale = .logarithmic
            loss.yLabel = "loss (log scale)"
        }
        accuracy.integerX = true
        loss.integerX = true

        let legend = zip(groupNames, groups.indices).map { name, i in
            LineChart.Series(name: name, points: [], color: LineChart.palette[i % LineChart.palette.count])
        } + [LineChart.Series(name: "test", points: [], color: "#555555"),
             LineChart.Series(name: "train", points: [], color: "#555555", dash: trainDash)]

        // Two 400 px plots with room for their tick and axis labels, then the legend, as wide
        // as its longest name (about 6.5 px a character at 11 px).
        let panelWidth = 400.0, gap = 84.0, left = 70.0, top = 64.0, height = 460.0
        let legendX = left + 2 * panelWidth + gap + 20
        let legendWidth = 36 + 6.5 * Double(legend.map(\.name.count).max() ?? 0) + 16
        var svg = SVGWriter(width: max(legendX + legendWidth, 1100), height: height)
        svg.rect(x: 0, y: 0, width: svg.width, height: svg.height, fill: "white")
        svg.text(title ?? defaultTitle(groupNames, runCount: runs.count), x: left + panelWidth + gap / 2, y: 26,
                 size: 15, anchor: .middle, bold: true)
        svg.beginGroup(id: "accuracy")
        accuracy.draw(into: &svg, left: left, top: top, right: left + panelWidth, bottom: height - 56)
        svg.endGroup()
        svg.beginGroup(id: "loss")
        loss.draw(into: &svg, left: left + panelWidth + gap, top: top, right: left + 2 * panelWidth + gap, bottom: height - 56)
        svg.endGroup()
        svg.beginGroup(id: "legend")
        LineChart.drawLegend(legend, into: &svg, x: legendX, top: top + 4)
        svg.endGroup()
        return svg.render()
    }

    /// `A vs B` of the groups' names (`PyTorch (5 runs) vs manet (5 runs)`), or with more than
    /// four groups the run count and the first three.
    static func defaultTitle(_ groupNames: [String], runCount: Int) -> String {
        if groupNames.count <= 4 { return groupNames.joined(separator: " vs ") }
        return "\(runCount) runs: " + groupNames.prefix(3).joined(separator: ", ") + ", ..."
    }

    /// Each run's label when none is given. Logs that share a file name in different folders
    /// (`seed-1/pytorch.log`, `seed-2/pytorch.log`, `seed-1/manet.log`, ...: seeds of two
    /// trainers) are labelled by that file name, so that each trainer's runs form a group; when
    /// the file names do not split the runs into groups (every name different, or all alike:
    /// `runs/train-N/log.txt`), each run is its own, named by `names`.
    public static func defaultLabels(_ runs: [TrainingLog]) -> [String] {
        let stems = runs.map { URL(fileURLWithPath: $0.source).deletingPathExtension().lastPathComponent }
        let distinct = Set(stems).count
        if distinct >= 2 && distinct < stems.count { return stems }
        return names(runs)
    }

    /// Each run's file name without its extension; when two runs share one (`log.txt` in two run
    /// folders), the folder names come first.
    static func names(_ runs: [TrainingLog]) -> [String] {
        let urls = runs.map { URL(fileURLWithPath: $0.source) }
        let stems = urls.map { $0.deletingPathExtension().lastPathComponent }
        if Set(stems).count == stems.count { return stems }
        return zip(urls, stems).map { url, stem in
            "\(url.deletingLastPathComponent().lastPathComponent)/\(stem)"
        }
    }
}
