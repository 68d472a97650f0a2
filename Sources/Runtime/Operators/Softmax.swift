// Softmax: exp(x - max) / sum, over one axis (opset >= 13) or over all dims from `axis` on,
// the input seen as 2-D (opset < 13).

import Foundation
import ONNXIR

public struct Softmax: Operator {
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
                for k in 0..<length {
                    let e = expf(y[base + k * inner] - m)
                    y[base + k * inner] = e
                    sum += e
                }
                for k in 0..<length { y[base + k * inner] /= sum }
            }
        }
        return ForwardResult([Tensor(shape: x.shape, floats: y)])
    }

    // dx = y * (dy - sum(dy * y)) along the softmax axis.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true, let y = record.outputs.first else { return [nil] }
        let (outer, length, inner) = try softmaxLayout(y.shape, axis: axis, coerceTo2D: coerceTo2D, label)
        let g = gradient(gradOutputs, 0, shape: y.shape)
        var dx = [Float](repeating: 0, count: y.count)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                var dot: Float = 0
                for k in 0..<length { dot += g[base + k * inner] * y.floats[base + k * inner] }
                for k in 0..<length { dx[base + k * inner] = y.floats[base + k * inner] * (g[base + k * inner] - dot) }
            }
        }
        return [Tensor(shape: y.shape, floats: dx)]
    }
}

/// The [outer, length, inner] view a (log-)softmax normalises over the middle of. Before
/// opset 13 the input is coerced to 2-D at `axis` (length = product of dims from axis on);
/// from 13 only `axis` itself is normalised.
func softmaxLayout(_ shape: [Int], axis: Int, coerceTo2D: Bool, _ label: NodeLabel) throws -> (Int, Int, Int) {
    let rank = shape.count
    if coerceTo2D {
        guard axis >= -rank && axis <= rank else { throw label.error("axis \(axis) is out of range for rank \(rank)") }
        let a = axis < 0 ? axis + rank : axis
        return (shape[..<a].reduce(1, *), shape[a...].reduce(1, *), 1)
    }
    let a = try label.axis(axis, rank: max(rank, 1))
    if rank == 0 { return (1, 1, 1) }
    return (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
}
