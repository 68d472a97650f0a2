// LogSoftmax: x - max - log(sum(exp(x - max))), with Softmax's axis rules per opset.

import Foundation
import ONNXIR

public struct LogSoftmax: Operator {
    let label: NodeLabel
    let axis: Int
    let coerceTo2D: Bool

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        coerceTo2D = opset < 13
        axis = try reader.int("axis", default: coerceTo2D ? 1 : -1)
        try reader.finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        try sameAsInput0(inputs, label)
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...1)
        let x = try label.float(inputs, 0)
        let (outer, length, inner) = try softmaxLayout(x.shape, axis: axis, coerceTo2D: coerceTo2D, label)
        var y = x.floats
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                var m = -Float.infinity
                for k in 0..<length { m = max(m, y[base + k * inner]) }
                var sum: Float = 0
                for k in 0..<length { sum += expf(y[base + k * inner] - m) }
                let shift = m + logf(sum)
                for k in 0..<length { y[base + k * inner] -= shift }
            }
        }
        return ForwardResult([Tensor(shape: x.shape, floats: y)])
    }

    // dx = dy - exp(y) * sum(dy) along the normalised axis.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true, let y = record.outputs.first else { return [nil] }
        let (outer, length, inner) = try softmaxLayout(y.shape, axis: axis, coerceTo2D: coerceTo2D, label)
        let g = gradient(gradOutputs, 0, shape: y.shape)
        var dx = [Float](repeating: 0, count: y.count)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                var sum: Float = 0
                for k in 0..<length { sum += g[base + k * inner] }
                for k in 0..<length { dx[base + k * inner] = g[base + k * inner] - expf(y.floats[base + k * inner]) * sum }
            }
        }
        return [Tensor(shape: y.shape, floats: dx)]
    }
}
