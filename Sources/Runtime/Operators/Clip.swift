// Clip: y = min(max(x, min), max); bounds are attributes before opset 11, inputs from 11.

import ONNXIR

public struct Clip: Operator {
    let label: NodeLabel
    /// Opset < 11: the bounds from the attributes. From 11 they come from inputs 1 and 2.
    let attributeBounds: (min: Float, max: Float)?

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        if opset < 11 {
            attributeBounds = (try reader.float("min", default: -Float.greatestFiniteMagnitude),
                               try reader.float("max", default: Float.greatestFiniteMagnitude))
        } else {
            attributeBounds = nil
        }
        try reader.finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        try sameAsInput0(inputs, label)
    }

    /// The scalar bound at input `i`, if given; it must have x's element type.
    private func bound(_ inputs: [Tensor?], _ i: Int, _ dtype: DType) throws -> Tensor? {
        guard let t = label.optional(inputs, i) else { return nil }
        guard t.count == 1 else { throw label.error("input \(i) (\(i == 1 ? "min" : "max")) must be a scalar, got shape \(t.shape)") }
        guard t.dtype == dtype else { throw label.error("input \(i) must be \(dtype) like the input, got \(t.dtype)") }
        return t
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...(attributeBounds == nil ? 3 : 1))
        let x = try label.required(inputs, 0)
        let lo = try bound(inputs, 1, x.dtype), hi = try bound(inputs, 2, x.dtype)
        if x.dtype == .int64 {
            let a = lo?.ints[0] ?? Int64.min, b = hi?.ints[0] ?? Int64.max
            return ForwardResult([Tensor(shape: x.shape, ints: x.ints.map { min(max($0, a), b) })])
        }
        let a = attributeBounds?.min ?? lo?.floats[0] ?? -Float.infinity
        let b = attributeBounds?.max ?? hi?.floats[0] ?? Float.infinity
        return ForwardResult([Tensor(shape: x.shape, floats: x.floats.map { min(max($0, a), b) })])
    }

    // dx = dy where min <= x <= max (PyTorch's clamp_backward keeps the bounds inclusive).
    // The bounds themselves get no gradient: the trainer never learns them.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        var result = [Tensor?](repeating: nil, count: record.inputs.count)
        guard needsGradient.first == true else { return result }
        let x = try recorded(record, 0, label)
        guard x.dtype == .float32 else { return result }
        let a = attributeBounds?.min ?? (record.inputs.count > 1 ? record.inputs[1]?.floats[0] : nil) ?? -Float.infinity
        let b = attributeBounds?.max ?? (record.inputs.count > 2 ? record.inputs[2]?.floats[0] : nil) ?? Float.infinity
        let g = gradient(gradOutputs, 0, shape: x.shape)
        var dx = [Float](repeating: 0, count: x.count)
        for i in 0..<dx.count where x.floats[i] >= a && x.floats[i] <= b { dx[i] = g[i] }
        result[0] = Tensor(shape: x.shape, floats: dx)
        return result
    }
}
