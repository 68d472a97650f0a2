// Gather: picks slices of `data` along one axis by (possibly negative) int64 indices;
// backward adds dy back into the picked slices.

import ONNXIR

public struct Gather: Operator {
    let label: NodeLabel
    let axis: Int

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        axis = try reader.int("axis", default: 0)
        try reader.finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard inputs.count == 2, let data = inputs[0], let indices = inputs[1] else { throw label.error("expected 2 inputs") }
        guard indices.dtype == .int64 else { throw label.error("indices must be an integer tensor") }
        if let folded = try foldConstants(inputs) { return folded }
        guard let d = data.dims, let i = indices.dims else { return [ValueShape(dtype: data.dtype, dims: nil)] }
        let a = try label.axis(axis, rank: d.count)
        return [ValueShape(dtype: data.dtype, dims: Array(d[..<a]) + i + Array(d[(a + 1)...]))]
    }

    /// The indices made non-negative and checked against the axis length.
    private func positions(_ indices: Tensor, dim: Int) throws -> [Int] {
        guard indices.dtype == .int64 else { throw label.error("indices must be an integer tensor") }
        return try indices.ints.map { i in
            guard i >= -Int64(dim) && i < Int64(dim) else { throw label.error("index \(i) is out of range for axis length \(dim)") }
            return Int(i < 0 ? i + Int64(dim) : i)
        }
    }

    /// data: [outer, dim, inner] -> out: [outer, count(indices), inner].
    private func pick<T>(_ data: [T], _ index: [Int], outer: Int, dim: Int, inner: Int) -> [T] {
        var out: [T] = []
        out.reserveCapacity(outer * index.count * inner)
        for o in 0..<outer {
            for i in index {
                let from = (o * dim + i) * inner
                out.append(contentsOf: data[from..<(from + inner)])
            }
        }
        return out
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 2...2)
        let data = try label.required(inputs, 0), indices = try label.required(inputs, 1)
        let a = try label.axis(axis, rank: data.rank)
        let index = try positions(indices, dim: data.shape[a])
        let outer = data.shape[..<a].reduce(1, *), inner = data.shape[(a + 1)...].reduce(1, *)
        let shape = Array(data.shape[..<a]) + indices.shape + Array(data.shape[(a + 1)...])
        if data.dtype == .float32 {
            return ForwardResult([Tensor(shape: shape, floats: pick(data.floats, index, outer: outer, dim: data.shape[a], inner: inner))])
        }
        return ForwardResult([Tensor(shape: shape, ints: pick(data.ints, index, outer: outer, dim: data.shape[a], inner: inner))])
    }

    // d(data) = zeros with each dy slice added to the slice it came from (repeated indices add up).
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.first == true else { return [nil, nil] }
        let data = try recorded(record, 0, label), indices = try recorded(record, 1, label)
        guard data.dtype == .float32 else { return [nil, nil] }
        let a = try label.axis(axis, rank: data.rank)
        let dim = data.shape[a]
        let index = try positions(indices, dim: dim)
        let outer = data.shape[..<a].reduce(1, *), inner = data.shape[(a + 1)...].reduce(1, *)
        let g = gradient(gradOutputs, 0, shape: Array(data.shape[..<a]) + indices.shape + Array(data.shape[(a + 1)...]))
        var dx = [Float](repeating: 0, count: data.count)
        var source = 0
        for o in 0..<outer {
            for i in index {
                let to = (o * dim + i) * inner
                for k in 0..<inner { dx[to + k] += g[source + k] }
                source += inner
            }
        }
        return [Tensor(shape: data.shape, floats: dx), nil]
    }
}
