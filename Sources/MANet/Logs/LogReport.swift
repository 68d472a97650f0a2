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

/// Accuracy and loss curves of one or more runs in one chart.
public enum TrainingCurves {
    /// Losses are scaled by 30 so that they share the accuracy axis (0-100): a cross-entropy of
    /// 0.5-3 becomes 15-90, readable next to accuracies without a second axis.
    public static let lossScale = 30.0

    /// An SVG with, per run, test and train accuracy and train and test loss x 30. One or two
    /// runs: each metric has its colour and the second run is drawn dashed. More runs: each metric
    /// has its dash and each run its colour, except that runs whose logs share a file name in
    /// different folders (`seed-1/torch.log`, `seed-2/torch.log`: seeds of one trainer) share one,
    /// so that two trainers' spreads over seeds read as two bundles; a legend row per colour and
    /// per metric.
    public static func svg(_ runs: [TrainingLog], title: String? = nil) -> String {
        let metrics: [(String, (EpochSummary) -> Double?)] = [
            ("test accuracy", { $0.testAccuracy }),
            ("train accuracy", { $0.trainAccuracy }),
            ("train loss x30", { $0.trainLoss.map { $0 * lossScale } }),
            ("test loss x30", { $0.testLoss.map { $0 * lossScale } }),
        ]
        let runNames = names(runs)
        var series: [LineChart.Series] = []
        var legend: [LineChart.Series]?
        if runs.count <= 2 {
            let dashes: [String?] = [nil, "7 4"]
            for (runIndex, run) in runs.enumerated() {
                for (metricIndex, (name, value)) in metrics.enumerated() {
                    let points = run.epochs.compactMap { e in value(e).map { (x: Double(e.epoch), y: $0) } }
                    if points.isEmpty { continue }
                    series.append(.init(name: "\(runNames[runIndex]): \(name)", points: points,
                                        color: LineChart.palette[metricIndex], dash: dashes[runIndex]))
                }
            }
        } else {
            let dashes: [String?] = [nil, "2 3", "7 4", "12 3 2 3"]
            let stems = runs.map { URL(fileURLWithPath: $0.source).deletingPathExtension().lastPathComponent }
            let groups = stems.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            let grouped = groups.count < stems.count
            let colorIndex = grouped ? stems.map { groups.firstIndex(of: $0)! } : Array(runs.indices)
            let colors = colorIndex.map { LineChart.palette[$0 % LineChart.palette.count] }
            for (runIndex, run) in runs.enumerated() {
                for (metricIndex, (name, value)) in metrics.enumerated() {
                    let points = run.epochs.compactMap { e in value(e).map { (x: Double(e.epoch), y: $0) } }
                    if points.isEmpty { continue }
                    series.append(.init(name: "\(runNames[runIndex]): \(name)", points: points,
                                        color: colors[runIndex], dash: dashes[metricIndex]))
                }
            }
            let colorRows: [LineChart.Series] = grouped
                ? groups.enumerated().map { i, stem in
                    let members = runs.indices.filter { stems[$0] == stem }
                    return LineChart.Series(name: members.count > 1 ? "\(stem) (\(members.count) runs)" : runNames[members[0]],
                                            points: [], color: LineChart.palette[i % LineChart.palette.count])
                }
                : runs.indices.map { LineChart.Series(name: runNames[$0], points: [], color: colors[$0]) }
            legend = colorRows + metrics.indices.map { LineChart.Series(name: metrics[$0].0, points: [], color: "#555555", dash: dashes[$0]) }
        }
        let fileNames = runs.map { URL(fileURLWithPath: $0.source).lastPathComponent }
        let defaultTitle = runs.count <= 2 ? fileNames.joined(separator: " vs ") : "\(runs.count) runs"
        var chart = LineChart(title: title ?? defaultTitle, xLabel: "epoch",
                              yLabel: "accuracy (%) / loss x \(Int(lossScale))", series: series)
        chart.legend = legend
        chart.integerX = true
        return chart.render()
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
