// ReduceSum: sums over axes (attribute before opset 13, input from 13); float or int64.

import ONNXIR

public struct ReduceSum: Operator {
    let attributes: ReductionAttributes

    public init(node: Node, opset: Int64) throws {
        attributes = try ReductionAttributes(node, opset: opset, inputAxesSince: 13)
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        if let folded = try foldConstants(inputs) { return folded }
        return try attributes.inferShapes(inputs)
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        let p = try attributes.plan(inputs)
        guard p.axes != nil else { return ForwardResult([p.x]) }
        let n = ShapeMath.elementCount(p.out) ?? 0
        if p.x.dtype == .int64 {
            return ForwardResult([Tensor(shape: p.out, ints: Reduction.accumulate(p.x.ints, shape: p.x.shape, strides: p.strides, outCount: n, initial: 0, &+))])
        }
        return ForwardResult([Tensor(shape: p.out, floats: Reduction.accumulate(p.x.floats, shape: p.x.shape, strides: p.strides, outCount: n, initial: 0, +))])
    }

    // dx = dy broadcast back over the reduced axes.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: record.inputs.count)
        guard needsGradient.first == true else { return result }
        let p = try attributes.plan(record.inputs)
        guard p.x.dtype == .float32 else { return result }
        let g = gradient(gradOutputs, 0, shape: p.out)
        result[0] = Tensor(shape: p.x.shape, floats: Reduction.broadcastBack(g, shape: p.x.shape, strides: p.strides, scale: 1))
        return result
    }
}
