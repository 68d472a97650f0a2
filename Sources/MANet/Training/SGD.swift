// Stochastic gradient descent and the step learning-rate schedule, with PyTorch's exact semantics.

import Foundation
import Runtime

/// `torch.optim.SGD(params, lr, momentum, weight_decay)` without dampening or Nesterov:
///   g = grad + weight_decay * p; buf = g (first step) or momentum * buf + g; p -= lr * buf.
/// Weight decay applies to every parameter, BatchNormalization's and biases included, as the
/// authors' script passes `model.parameters()` whole. Arithmetic is float32 in PyTorch's order
/// so that parity runs agree to rounding.
public struct SGD {
    public var learningRate: Double
    public var momentum: Double
    public var weightDecay: Double
    /// Momentum buffers by parameter name; absent until a parameter's first step.
    public var momentumBuffers: [String: [Float]] = [:]

    public init(learningRate: Double, momentum: Double, weightDecay: Double) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    /// Updates `parameter` (named `name`) in place from its gradient, in one pass per element
    /// split into `threads` static chunks (each element's arithmetic is the same on any count).
    public mutating func step(_ name: String, parameter: inout [Float], gradient: [Float], threads: Int = 1) {
        precondition(parameter.count == gradient.count, "\(name): \(parameter.count) values, \(gradient.count) gradients")
        let wd = Float(weightDecay), m = Float(momentum), negLR = Float(-learningRate)
        let n = parameter.count
        let first = m != 0 && momentumBuffers[name] == nil
        var buffer = m == 0 ? [] : momentumBuffers.removeValue(forKey: name) ?? [Float](repeating: 0, count: n)
        parameter.withUnsafeMutableBufferPointer { pb in
        gradient.withUnsafeBufferPointer { gb in
        buffer.withUnsafeMutableBufferPointer { bb in
            let p = pb.baseAddress, g = gb.baseAddress, b = bb.baseAddress
            // Small parameters (biases, BN) are not worth a dispatch.
            let workers = n >= 1 << 16 ? max(1, threads) : 1
            let chunk = { (w: Int) in
                for i in (n * w / workers)..<(n * (w + 1) / workers) {
                    var d = g![i]
                    if wd != 0 { d += wd * p![i] }
                    if m != 0 {
                        // buf = g on the first step, momentum * buf + g after.
                        b![i] = first ? d : b![i] * m + d
                        d = b![i]
                    }
                    p![i] += negLR * d
                }
            }
            if workers == 1 { chunk(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: chunk) }
        }}}
        if m != 0 { momentumBuffers[name] = buffer }
    }
}

/// The step schedule of the authors' script: lr * gamma ** (epoch // step_size), evaluated as
/// Python does (C `pow`, then one multiply), so 0.01 becomes 0.00010000000000000002 after two
/// decays, exactly as the published logs' "Current learning rate" lines show. (Repeated
/// multiplication would print 0.0001 there.)
public struct StepLR {
    public var initialLearningRate: Double
    public var stepSize: Int
    public var gamma: Double

    public init(initialLearningRate: Double, stepSize: Int, gamma: Double) {
        self.initialLearningRate = initialLearningRate
        self.stepSize = stepSize
        self.gamma = gamma
    }

    /// The rate used during `epoch` (0-based).
    public func learningRate(epoch: Int) -> Double {
        guard stepSize > 0 else { return initialLearningRate }
        return initialLearningRate * pow(gamma, Double(epoch / stepSize))
    }
}
