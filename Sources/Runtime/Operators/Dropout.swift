// Dropout at inference: the identity, with an all-true mask when asked. Training-mode dropout
// (training_mode input true) is refused: the trainer never uses it.

import ONNXIR

public struct Dropout: Operator {
    let label: NodeLabel
    let opset: Int64
    /// 1 or 2: the mask is an optional output.
    let outputCount: Int

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        self.opset = opset
        outputCount = node.outputs.count
        guard (1...2).contains(outputCount) else { throw NodeLabel(node).error("expected 1 or 2 outputs, got \(outputCount)") }
        var reader = AttributeReader(node)
        if opset < 12 {
            let ratio = try reader.float("ratio", default: 0.5)
            guard ratio >= 0 && ratio < 1 else { throw reader.fail("ratio", "must be in [0, 1), got \(ratio)") }
        } else {
            // The seed only matters in training mode, which is refused at run time.
            _ = try reader.int("seed")
        }
        try reader.finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let x = inputs.first ?? nil else { throw label.error("input 0 is required") }
        return Array([ValueShape(dtype: x.dtype, dims: x.dims), ValueShape(dtype: .int64, dims: x.dims)].prefix(outputCount))
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...(opset >= 12 ? 3 : 1))
        let x = try label.required(inputs, 0)
        if let ratio = label.optional(inputs, 1) {
            guard ratio.dtype == .float32, ratio.count == 1 else { throw label.error("ratio must be a float scalar") }
            guard ratio.floats[0] >= 0 && ratio.floats[0] < 1 else { throw label.error("ratio must be in [0, 1), got \(ratio.floats[0])") }
        }
        if let training = label.optional(inputs, 2) {
            guard training.dtype == .int64, training.count == 1 else { throw label.error("training_mode must be a bool scalar") }
            if training.ints[0] != 0 {
                throw label.error("training_mode = true is not supported: the runtime runs Dropout only as the identity")
            }
        }
        // The mask is bool in ONNX; the runtime keeps bools as int64 1/0.
        if outputCount == 1 { return ForwardResult([x]) }
        return ForwardResult([x, Tensor(shape: x.shape, ints: [Int64](repeating: 1, count: x.count))])
    }

    // dx = dy (the identity).
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: record.inputs.count)
        guard needsGradient.first == true else { return result }
        let x = try recorded(record, 0, label)
        guard x.dtype == .float32 else { return result }
        result[0] = Tensor(shape: x.shape, floats: gradient(gradOutputs, 0, shape: x.shape))
        return result
    }
}
