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
    /// then the run's final and best accuracy.
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
        for w in warnings { lines.append("warning: \(w)") }
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

/// Accuracy and loss curves of one or two runs in one chart.
public enum TrainingCurves {
    /// Losses are scaled by 30 so that they share the accuracy axis (0-100): a cross-entropy of
    /// 0.5-3 becomes 15-90, readable next to accuracies without a second axis.
    public static let lossScale = 30.0

    /// An SVG with, per run, test and train accuracy and train and test loss x 30. Each metric
    /// has its colour; the second run is drawn dashed.
    public static func svg(_ runs: [TrainingLog], title: String? = nil) -> String {
        let metrics: [(String, String, (EpochSummary) -> Double?)] = [
            ("test accuracy", LineChart.palette[0], { $0.testAccuracy }),
            ("train accuracy", LineChart.palette[1], { $0.trainAccuracy }),
            ("train loss x30", LineChart.palette[2], { $0.trainLoss.map { $0 * lossScale } }),
            ("test loss x30", LineChart.palette[3], { $0.testLoss.map { $0 * lossScale } }),
        ]
        let dashes: [String?] = [nil, "7 4"]
        var series: [LineChart.Series] = []
        for (runIndex, run) in runs.prefix(2).enumerated() {
            let runName = URL(fileURLWithPath: run.source).deletingPathExtension().lastPathComponent
            for (name, color, value) in metrics {
                let points = run.epochs.compactMap { e in value(e).map { (x: Double(e.epoch), y: $0) } }
                if points.isEmpty { continue }
                series.append(.init(name: "\(runName): \(name)", points: points, color: color, dash: dashes[runIndex]))
            }
        }
        let names = runs.prefix(2).map { URL(fileURLWithPath: $0.source).lastPathComponent }.joined(separator: " vs ")
        return LineChart(title: title ?? names, xLabel: "epoch",
                         yLabel: "accuracy (%) / loss x \(Int(lossScale))", series: series).render()
    }
}
