// ReduceMean: averages over axes (attribute before opset 18, input from 18); float only.

import ONNXIR

public struct ReduceMean: Operator {
    let attributes: ReductionAttributes

    public init(node: Node, opset: Int64) throws {
        attributes = try ReductionAttributes(node, opset: opset, inputAxesSince: 18)
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        try attributes.inferShapes(inputs)
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        let p = try attributes.plan(inputs)
        guard p.axes != nil else { return ForwardResult([p.x]) }
        guard p.x.dtype == .float32 else { throw attributes.label.error("input 0 must be float, got \(p.x.dtype)") }
        let n = ShapeMath.elementCount(p.out) ?? 0
        let reduced = n == 0 ? 0 : p.x.count / n
        // Sum then divide once (what PyTorch does); an empty reduction is 0 / 0 = NaN like numpy.
        var sums = Reduction.accumulate(p.x.floats, shape: p.x.shape, strides: p.strides, outCount: n, initial: 0,
                                          threads: context.threads, FloatSum())
        let scale = 1 / Float(reduced)
        for i in 0..<sums.count { sums[i] = reduced == 0 ? .nan : sums[i] * scale }
        return ForwardResult([Tensor(shape: p.out, floats: sums)])
    }

    // dx = dy / (number of reduced elements), broadcast back over the reduced axes.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: record.inputs.count)
        guard needsGradient.first == true else { return result }
        let p = try attributes.plan(record.inputs)
        guard p.x.dtype == .float32 else { return result }
        let n = ShapeMath.elementCount(p.out) ?? 0
        let g = gradient(gradOutputs, 0, shape: p.out)
        let scale = p.axes == nil || n == 0 ? 1 : 1 / Float(p.x.count / n)
        result[0] = Tensor(shape: p.x.shape, floats: Reduction.broadcastBack(g, shape: p.x.shape, strides: p.strides, scale: scale))
        return result
    }
}
