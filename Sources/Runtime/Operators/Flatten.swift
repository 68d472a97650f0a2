// Flatten: [d0, ..., dn] -> [d0 * ... * d(axis-1), d(axis) * ... * dn].

import ONNXIR

public struct Flatten: Operator {
    let label: NodeLabel
    let axis: Int

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        axis = try reader.int("axis", default: 1)
        if opset < 11 && axis < 0 { throw reader.fail("axis", "must be non-negative before opset 11, got \(axis)") }
        try reader.finish()
    }

    /// axis in [-rank, rank] mapped to [0, rank] (rank itself is allowed: [N, 1]).
    private func split(rank: Int) throws -> Int {
        guard axis >= -rank && axis <= rank else { throw label.error("axis \(axis) is out of range for rank \(rank)") }
        return axis < 0 ? axis + rank : axis
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let x = inputs.first ?? nil else { throw label.error("input 0 is required") }
        guard let dims = x.dims else { return [ValueShape(dtype: x.dtype, dims: [nil, nil])] }
        let a = try split(rank: dims.count)
        func product(_ part: ArraySlice<Int?>) -> Int? {
            part.reduce(Optional(1)) { acc, d in acc.flatMap { a in d.map { a * $0 } } }
        }
        return [ValueShape(dtype: x.dtype, dims: [product(dims[..<a]), product(dims[a...])], constant: x.constant.map { try? forwardShape($0) } ?? nil)]
    }

    private func forwardShape(_ x: Tensor) throws -> Tensor {
        let a = try split(rank: x.rank)
        return x.reshaped([x.shape[..<a].reduce(1, *), x.shape[a...].reduce(1, *)])
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...1)
        return ForwardResult([try forwardShape(label.required(inputs, 0))])
    }

    // dx = dy seen with x's shape.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true else { return [nil] }
        let x = try recorded(record, 0, label)
        guard x.dtype == .float32 else { return [nil] }
        return [Tensor(shape: x.shape, floats: gradient(gradOutputs, 0, shape: x.shape))]
    }
}
