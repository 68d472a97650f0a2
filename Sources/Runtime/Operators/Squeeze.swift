// Squeeze: drops size-1 dims (the listed axes, or all of them); axes are an attribute before
// opset 13 and an optional input from 13.

import ONNXIR

public struct Squeeze: Operator {
    let label: NodeLabel
    let opset: Int64
    /// Opset < 13: the `axes` attribute (nil = every size-1 dim).
    let attributeAxes: [Int]?

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        self.opset = opset
        var reader = AttributeReader(node)
        attributeAxes = opset < 13 ? try reader.ints("axes") : nil
        try reader.finish()
    }

    /// The output dims, given the axes (nil = all known size-1 dims).
    func outputDims(_ dims: [Int?], axes list: [Int]?) throws -> [Int?] {
        guard let list else {
            // Squeezing "all ones" needs every dim known; an unknown one could be 1.
            return dims.filter { $0 != 1 }
        }
        let axes = Set(try label.axes(list, rank: dims.count))
        for a in axes {
            if let d = dims[a], d != 1 { throw label.error("cannot squeeze axis \(a) of length \(d)") }
        }
        return dims.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
    }

    private func axesInput(_ inputs: [Tensor?]) throws -> [Int]? {
        if opset < 13 { return attributeAxes }
        return try label.optional(inputs, 1).map { try label.intList($0, "axes") }
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let x = inputs.first ?? nil else { throw label.error("input 0 is required") }
        if let folded = try foldConstants(inputs) { return folded }
        guard let dims = x.dims else { return [ValueShape(dtype: x.dtype, dims: nil)] }
        if opset >= 13, inputs.count > 1, let axes = inputs[1] {
            guard let c = axes.constant else { return [ValueShape(dtype: x.dtype, dims: nil)] }
            return [ValueShape(dtype: x.dtype, dims: try outputDims(dims, axes: label.intList(c, "axes")))]
        }
        let list = opset < 13 ? attributeAxes : nil
        if list == nil && dims.contains(where: { $0 == nil }) { return [ValueShape(dtype: x.dtype, dims: nil)] }
        return [ValueShape(dtype: x.dtype, dims: try outputDims(dims, axes: list))]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...(opset >= 13 ? 2 : 1))
        let x = try label.required(inputs, 0)
        let dims = try outputDims(x.shape, axes: axesInput(inputs))
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
