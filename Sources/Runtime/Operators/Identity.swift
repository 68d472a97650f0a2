// Identity: y = x (tensors only; sequences and optionals are not runtime values).

import ONNXIR

public struct Identity: Operator {
    let label: NodeLabel

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        try AttributeReader(node).finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let x = inputs.first ?? nil else { throw label.error("input 0 is required") }
        return [x]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...1)
        return ForwardResult([try label.required(inputs, 0)])
    }

    // dx = dy
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true else { return [nil] }
        let x = try recorded(record, 0, label)
        guard x.dtype == .float32 else { return [nil] }
        return [Tensor(shape: x.shape, floats: gradient(gradOutputs, 0, shape: x.shape))]
    }
}
