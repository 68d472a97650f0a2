// Add: c = a + b, with multidirectional broadcasting; float or int64.

import ONNXIR

public struct Add: Operator {
    let label: NodeLabel

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        try AttributeReader(node).finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        try BinaryElementwise.inferShapes(self, inputs, label)
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        let (a, b, shape) = try BinaryElementwise.operands(inputs, label)
        if a.dtype == .int64 {
            // Wrapping, as numpy and onnxruntime do for integer overflow.
            return ForwardResult([Tensor(shape: shape, ints: BinaryElementwise.apply(a.ints, a.shape, b.ints, b.shape, shape) { $0 &+ $1 })])
        }
        let c = Tensor(shape: shape, floats: BinaryElementwise.apply(a.floats, a.shape, b.floats, b.shape, shape, threads: context.threads, FloatSum()))
        // Without broadcasting, backward hands dC on as it is and reads neither input (the
        // residual sums of a network, whose operands can then be freed).
        return ForwardResult([c], backwardReads: a.shape == b.shape ? .shapes : .everything)
    }

    // dA = dC and dB = dC, each summed over the dims it was broadcast along.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        if record.inputShapes.count == 2, let shape = record.inputShapes[0], shape == record.inputShapes[1],
           record.inputTypes[0] == .float32 {
            // Same shapes: both gradients are dC itself (one shared buffer, copied only if
            // someone later adds into it).
            let g = gradOutputs.first.flatMap { $0 } ?? Tensor(zeros: shape)
            return [needsGradient.count > 0 && needsGradient[0] ? g : nil, needsGradient.count > 1 && needsGradient[1] ? g : nil]
        }
        return try BinaryElementwise.backward(gradOutputs, record, needsGradient: needsGradient, label, threads: context.threads,
                                              { g, a, b in g }, { g, a, b in g })
    }
}
