// Div: c = a / b, with multidirectional broadcasting; float or int64.

import ONNXIR

public struct Div: Operator {
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
            // Integer division truncates toward zero (C, onnxruntime, and numpy's astype of a / b).
            if b.ints.contains(0) { throw label.error("integer division by zero") }
            return ForwardResult([Tensor(shape: shape, ints: BinaryElementwise.apply(a.ints, a.shape, b.ints, b.shape, shape) { $0.dividedReportingOverflow(by: $1).partialValue })])
        }
        return ForwardResult([Tensor(shape: shape, floats: BinaryElementwise.apply(a.floats, a.shape, b.floats, b.shape, shape) { $0 / $1 })])
    }

    // dA = dC / b, dB = -dC * a / b^2, each summed over the dims it was broadcast along.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        try BinaryElementwise.backward(gradOutputs, record, needsGradient: needsGradient, label, threads: context.threads,
                                       { g, a, b in g / b }, { g, a, b in -g * a / (b * b) })
    }
}
