// MA-Net's training loss: softmax cross-entropy on both heads, with its gradient w.r.t. the logits.

import Runtime

/// Mean softmax cross-entropy of `logits` [N, K] against `labels`, and its gradient w.r.t.
/// the logits (already divided by N, as `nn.CrossEntropyLoss(reduction="mean")`).
/// Sums run in Double so the loss is stable at any batch size; the gradient is float32.
public func softmaxCrossEntropy(logits: Tensor, labels: [Int]) -> (loss: Double, gradient: Tensor) {
    precondition(logits.rank == 2 && logits.shape[0] == labels.count, "logits \(logits.shape) vs \(labels.count) labels")
    let n = logits.shape[0], k = logits.shape[1]
    var gradient = [Float](repeating: 0, count: n * k)
    var total = 0.0
    for i in 0..<n {
        let row = logits.floats[(i * k)..<((i + 1) * k)]
        let maxValue = Double(row.max() ?? 0)
        var sum = 0.0
        for v in row { sum += (Double(v) - maxValue).exp() }
        let logSum = maxValue + sum.log()
        precondition(labels[i] >= 0 && labels[i] < k, "label \(labels[i]) outside 0..<\(k)")
        total += logSum - Double(row[row.startIndex + labels[i]])
        for j in 0..<k {
            let p = (Double(row[row.startIndex + j]) - logSum).exp()
            gradient[i * k + j] = Float((p - (j == labels[i] ? 1 : 0)) / Double(n))
        }
    }
    return (total / Double(n), Tensor(shape: [n, k], floats: gradient))
}

/// The two-head objective of the authors' `main.py`: beta * CE(local) + (1 - beta) * CE(global),
/// with predictions from the fused logits beta * local + (1 - beta) * global.
public struct MANetLoss {
    public var beta: Double

    public init(beta: Double = 0.6) { self.beta = beta }

    public struct Result {
        public var loss: Double
        public var gradientLocal: Tensor
        public var gradientGlobal: Tensor
        /// How many of the batch the fused logits classify correctly (top-1).
        public var correct: Int
    }

    public func evaluate(logitsLocal: Tensor, logitsGlobal: Tensor, labels: [Int]) -> Result {
        let local = softmaxCrossEntropy(logits: logitsLocal, labels: labels)
        let global = softmaxCrossEntropy(logits: logitsGlobal, labels: labels)
        let b = Float(beta), rest = Float(1 - beta)
        let fused = zip(logitsLocal.floats, logitsGlobal.floats).map { b * $0 + rest * $1 }
        return Result(
            loss: beta * local.loss + (1 - beta) * global.loss,
            gradientLocal: Tensor(shape: local.gradient.shape, floats: local.gradient.floats.map { $0 * b }),
            gradientGlobal: Tensor(shape: global.gradient.shape, floats: global.gradient.floats.map { $0 * rest }),
            correct: Self.countCorrect(fused, classes: logitsLocal.shape[1], labels: labels))
    }

    /// Top-1 hits; ties go to the lowest class index, as `torch.topk` does on CPU.
    public static func countCorrect(_ logits: [Float], classes k: Int, labels: [Int]) -> Int {
        zip(topClasses(logits, classes: k, rows: labels.count), labels).filter { $0 == $1 }.count
    }

    /// The top-1 class of each of `rows` rows of `k` logits (ties: the lowest index).
    public static func topClasses(_ logits: [Float], classes k: Int, rows: Int) -> [Int] {
        (0..<rows).map { i in
            var best = 0
            for j in 1..<k where logits[i * k + j] > logits[i * k + best] { best = j }
            return best
        }
    }

    /// The classes the fused logits predict, row by row (what `correct` counts).
    public func predictions(logitsLocal: Tensor, logitsGlobal: Tensor) -> [Int] {
        let b = Float(beta), rest = Float(1 - beta)
        let fused = zip(logitsLocal.floats, logitsGlobal.floats).map { b * $0 + rest * $1 }
        return Self.topClasses(fused, classes: logitsLocal.shape[1], rows: logitsLocal.shape[0])
    }
}

extension Double {
    @inline(__always) func exp() -> Double { _exp(self) }
    @inline(__always) func log() -> Double { _log(self) }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func _exp(_ x: Double) -> Double { Glibc.exp(x) }
@inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
#else
import Foundation
@inline(__always) private func _exp(_ x: Double) -> Double { Foundation.exp(x) }
@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
#endif
