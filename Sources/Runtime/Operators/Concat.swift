// Concat: joins tensors along one axis; backward hands each input its slab of the gradient.

import Kernels
import ONNXIR

public struct Concat: Operator {
    let label: NodeLabel
    let axis: Int

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        // Opset 1 defaulted the axis to 1; from 4 it is required.
        guard let axis = try reader.int("axis") ?? (opset < 4 ? 1 : nil) else {
            throw reader.fail("axis", "required attribute is missing")
        }
        self.axis = axis
        try reader.finish()
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard !inputs.isEmpty else { throw label.error("expected at least 1 input") }
        if let folded = try foldConstants(inputs) { return folded }
        let present = try inputs.enumerated().map { i, v -> ValueShape in
            guard let v else { throw label.error("input \(i) is required") }
            return v
        }
        let dtype = present[0].dtype
        guard present.allSatisfy({ $0.dtype == dtype }) else { throw label.error("inputs have different element types") }
        guard let rank = present.first(where: { $0.dims != nil })?.dims?.count else { return [ValueShape(dtype: dtype, dims: nil)] }
        let a = try label.axis(axis, rank: rank)
        var dims = [Int?](repeating: nil, count: rank)
        var total: Int? = 0
        for v in present {
            guard let d = v.dims else { total = nil; continue }
            guard d.count == rank else { throw label.error("inputs have different ranks") }
            for k in 0..<rank where k != a {
                if let known = d[k] {
                    if let existing = dims[k], existing != known { throw label.error("dim \(k) differs between inputs: \(existing) and \(known)") }
                    dims[k] = known
                }
            }
            total = d[a].flatMap { x in total.map { $0 + x } }
        }
        dims[a] = total
        return [ValueShape(dtype: dtype, dims: dims)]
    }

    /// out: the inputs' [outer, dim_i * inner] slabs interleaved along the axis.
    /// One block copy per slab through raw pointers (concatenating along a late axis makes
    /// many short slabs, where per-slab array slicing cost more than the copying); large
    /// outputs split the outer index over `threads`.
    private func join<T>(_ parts: [[T]], _ rows: [Int], outer: Int, threads: Int) -> [T] {
        let total = rows.reduce(0, +)
        let n = total * outer
        guard n > 0 else { return [] }
        return [T](unsafeUninitializedCapacity: n) { out, count in
            let sources = parts.map { $0.withUnsafeBufferPointer { $0.baseAddress } }
            withExtendedLifetime(parts) {
                let workers = n >= BinaryElementwise.parallelElements ? min(max(1, threads), outer) : 1
                parallelFor(workers, threads: workers) { w in
                    for o in (outer * w / workers)..<(outer * (w + 1) / workers) {
                        var column = 0
                        for (src, r) in zip(sources, rows) where r > 0 {
                            (out.baseAddress! + o * total + column).initialize(from: src! + o * r, count: r)
                            column += r
                        }
                    }
                }
            }
            count = n
        }
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        guard !inputs.isEmpty else { throw label.error("expected at least 1 input") }
        let xs = try (0..<inputs.count).map { try label.required(inputs, $0) }
        let first = xs[0]
        let a = try label.axis(axis, rank: first.rank)
        var shape = first.shape
        shape[a] = 0
        for (i, x) in xs.enumerated() {
            guard x.dtype == first.dtype else { throw label.error("input \(i) is \(x.dtype), input 0 is \(first.dtype)") }
            guard x.rank == first.rank, (0..<x.rank).allSatisfy({ $0 == a || x.shape[$0] == first.shape[$0] }) else {
                throw label.error("input \(i) has shape \(x.shape), incompatible with \(first.shape) along axis \(a)")
            }
            shape[a] += x.shape[a]
        }
        let outer = first.shape[..<a].reduce(1, *)
        let inner = first.shape[(a + 1)...].reduce(1, *)
        let rows = xs.map { $0.shape[a] * inner }
        if first.dtype == .float32 {
            return ForwardResult([Tensor(shape: shape, floats: join(xs.map(\.floats), rows, outer: outer, threads: context.threads))])
        }
        return ForwardResult([Tensor(shape: shape, ints: join(xs.map(\.ints), rows, outer: outer, threads: 1))])
    }

    // Each input's gradient is its slab of dy, cut where forward joined.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        guard needsGradient.contains(true) else { return record.inputs.map { _ in nil } }
        let xs = try (0..<record.inputs.count).map { try recorded(record, $0, label) }
        guard xs[0].dtype == .float32, let y = record.outputs.first else { return xs.map { _ in nil } }
        let a = try label.axis(axis, rank: y.rank)
        let g = gradient(gradOutputs, 0, shape: y.shape)
        let outer = y.shape[..<a].reduce(1, *), inner = y.shape[(a + 1)...].reduce(1, *)
        let total = y.shape[a] * inner
        // Each wanted input's slabs, copied out of dy; large gradients split the outer index over threads.
        var starts: [Int] = [], widths: [Int] = []
        var start = 0
        for x in xs {
            starts.append(start)
            widths.append(x.shape[a] * inner)
            start += x.shape[a] * inner
        }
        let workers = g.count >= BinaryElementwise.parallelElements ? min(max(1, context.threads), outer) : 1
        var result: [Tensor?] = xs.map { _ in nil }
        g.withUnsafeBufferPointer { pg in
            for (i, x) in xs.enumerated() where i < needsGradient.count && needsGradient[i] {
                let width = widths[i], from = pg.baseAddress! + starts[i]
                result[i] = Tensor(shape: x.shape, floats: [Float].filled(count: x.count) { dx in
                    parallelFor(workers, threads: workers) { w in
                        for o in (outer * w / workers)..<(outer * (w + 1) / workers) {
                            (dx + o * width).initialize(from: from + o * total, count: width)
                        }
                    }
                })
            }
        }
        return result
    }
}
