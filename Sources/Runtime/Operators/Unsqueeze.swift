// Unsqueeze: inserts size-1 dims at the given output axes; axes are an attribute before
// opset 13 and a required input from 13.

import ONNXIR

public struct Unsqueeze: Operator {
    let label: NodeLabel
    let opset: Int64
    /// Opset < 13: the required `axes` attribute.
    let attributeAxes: [Int]?

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        self.opset = opset
        var reader = AttributeReader(node)
        if opset < 13 {
            guard let axes = try reader.ints("axes") else { throw reader.fail("axes", "required attribute is missing") }
            attributeAxes = axes
        } else {
            attributeAxes = nil
        }
        try reader.finish()
    }

    /// The output dims: axes index the output, whose rank is rank(x) + count(axes).
    func outputDims(_ dims: [Int?], axes list: [Int]) throws -> [Int?] {
        let rank = dims.count + list.count
        let axes = Set(try label.axes(list, rank: rank))
        var source = dims.makeIterator()
        return (0..<rank).map { axes.contains($0) ? 1 : source.next()! }
    }

    private func axesList(_ inputs: [Tensor?]) throws -> [Int] {
        if let a = attributeAxes { return a }
        return try label.intList(label.required(inputs, 1), "axes")
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let x = inputs.first ?? nil else { throw label.error("input 0 is required") }
        if let folded = try foldConstants(inputs) { return folded }
        var list = attributeAxes
        if list == nil {
            guard inputs.count > 1, let axes = inputs[1] else { throw label.error("input 1 (axes) is required") }
            guard let c = axes.constant else { return [ValueShape(dtype: x.dtype, dims: nil)] }
            list = try label.intList(c, "axes")
        }
        guard let dims = x.dims, let list else { return [ValueShape(dtype: x.dtype, dims: nil)] }
        return [ValueShape(dtype: x.dtype, dims: try outputDims(dims, axes: list))]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, (opset >= 13 ? 2 : 1)...(opset >= 13 ? 2 : 1))
        let x = try label.required(inputs, 0)
        let dims = try outputDims(x.shape, axes: axesList(inputs))
        return ForwardResult([x.reshaped(dims.map { $0! })])
    }

    // dx = dy seen with x's shape.
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
