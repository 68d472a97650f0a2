// Transpose: permutes dims (default: reversed); backward applies the inverse permutation.

import ONNXIR

public struct Transpose: Operator {
    let label: NodeLabel
    let perm: [Int]?

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        perm = try reader.ints("perm")
        try reader.finish()
    }

    /// The permutation for rank `rank`, checked to be one.
    private func permutation(rank: Int) throws -> [Int] {
        let p = perm ?? Array((0..<rank).reversed())
        guard p.count == rank, Set(p) == Set(0..<rank) else {
            throw label.attributeError("perm", "\(p) is not a permutation of 0..<\(rank)")
        }
        return p
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard let x = inputs.first ?? nil else { throw label.error("input 0 is required") }
        if let folded = try foldConstants(inputs) { return folded }
        guard let dims = x.dims else { return [ValueShape(dtype: x.dtype, dims: perm.map { unknownDims(rank: $0.count)! })] }
        return [ValueShape(dtype: x.dtype, dims: try permutation(rank: dims.count).map { dims[$0] })]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 1...1)
        let x = try label.required(inputs, 0)
        let p = try permutation(rank: x.rank)
        let strides = Tensor.strides(x.shape)
        // out[i0, i1, ...] = x[..., i_k at position p[k], ...]
        return ForwardResult([x.strided(base: 0, strides: p.map { strides[$0] }, shape: p.map { x.shape[$0] })])
    }

    // dx: dy written back through the same strides forward read with.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true else { return [nil] }
        let x = try recorded(record, 0, label)
        guard x.dtype == .float32 else { return [nil] }
        let p = try permutation(rank: x.rank)
        let strides = Tensor.strides(x.shape), outShape = p.map { x.shape[$0] }
        let g = gradient(gradOutputs, 0, shape: outShape)
        return [Tensor(shape: x.shape, floats: stridedScatterAdd(g, count: x.count, base: 0, strides: p.map { strides[$0] }, shape: outShape))]
    }
}
