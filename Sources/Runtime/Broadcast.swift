// Multidirectional (numpy) broadcasting: result shapes, strided iteration, gradient reduction.

import ONNXIR

/// ONNX's multidirectional broadcasting, shared by the elementwise operators and Expand.
/// Iteration is linear in the output size: an odometer over the outer dimensions carries the
/// operands' offsets incrementally, and the inner loop touches no heap memory.
public enum Broadcast {
    /// The broadcast shape of `a` and `b`, or `nil` when a pair of dims is neither equal nor 1.
    public static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var result = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            // Dims are right-aligned: the missing leading dims of the shorter shape are 1.
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            if da == db || db == 1 { result[i] = da } else if da == 1 { result[i] = db } else { return nil }
        }
        return result
    }

    /// The broadcast of shapes known only in part (`nil` = unknown dim), for shape inference.
    /// Returns `nil` when two known dims conflict.
    public static func shape(_ a: [Int?], _ b: [Int?]) -> [Int?]? {
        let rank = max(a.count, b.count)
        var result = [Int?](repeating: 1, count: rank)
        for i in 0..<rank {
            let da: Int? = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db: Int? = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            switch (da, db) {
            case let (x?, y?):
                if x == y || y == 1 { result[i] = x } else if x == 1 { result[i] = y } else { return nil }
            case let (x?, nil):
                // An unknown dim against 1 could be anything; against n it must end up n.
                result[i] = x == 1 ? nil : x
            case let (nil, y?):
                result[i] = y == 1 ? nil : y
            case (nil, nil):
                result[i] = nil
            }
        }
        return result
    }

    /// Element strides of `shape` seen inside the broadcast `outShape`: 0 on dims that are
    /// broadcast (size 1 or missing), the row-major stride otherwise.
    public static func strides(of shape: [Int], in outShape: [Int]) -> [Int] {
        let own = Tensor.strides(shape)
        let lead = outShape.count - shape.count
        var result = [Int](repeating: 0, count: outShape.count)
        // A size-1 dim never advances its own offset, whether or not it is broadcast.
        for i in 0..<shape.count { result[lead + i] = shape[i] == 1 ? 0 : own[i] }
        return result
    }

    /// The same walk over fewer dims: dims of size 1 dropped, and each dim merged into the
    /// next inner one where both operands step across it as across one longer dim (both
    /// broadcast, or both contiguous with it). Visits the same (out, a, b) offsets in the same
    /// order as `forEach(shape, stridesA, stridesB)`; at least one dim is returned.
    public static func collapsed(_ shape: [Int], _ stridesA: [Int], _ stridesB: [Int])
        -> (shape: [Int], a: [Int], b: [Int]) {
        var dims: [Int] = [], sa: [Int] = [], sb: [Int] = []  // innermost first
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] != 1 {
            if let n = dims.last, stridesA[d] == sa.last! * n, stridesB[d] == sb.last! * n {
                dims[dims.count - 1] = n * shape[d]
            } else {
                dims.append(shape[d])
                sa.append(stridesA[d])
                sb.append(stridesB[d])
            }
        }
        if dims.isEmpty { return ([1], [0], [0]) }
        return (dims.reversed(), sa.reversed(), sb.reversed())
    }

    /// Calls `body(outIndex, offsetA, offsetB)` for every element of the row-major `outShape`,
    /// where the offsets follow `stridesA` / `stridesB` (from `strides(of:in:)`).
    @inline(__always)
    public static func forEach(_ outShape: [Int], _ stridesA: [Int], _ stridesB: [Int],
                               _ body: (Int, Int, Int) -> Void) {
        let rank = outShape.count
        guard let total = ShapeMath.elementCount(outShape), total > 0 else { return }
        if rank == 0 { body(0, 0, 0); return }
        let inner = outShape[rank - 1], innerA = stridesA[rank - 1], innerB = stridesB[rank - 1]
        // The odometer over the outer dims is the one allocation, made before any element.
        var counter = [Int](repeating: 0, count: rank)
        var offsetA = 0, offsetB = 0, out = 0
        while out < total {
            var a = offsetA, b = offsetB
            for k in 0..<inner {
                body(out + k, a, b)
                a += innerA
                b += innerB
            }
            out += inner
            var d = rank - 2
            while d >= 0 {
                counter[d] += 1
                offsetA += stridesA[d]
                offsetB += stridesB[d]
                if counter[d] < outShape[d] { break }
                offsetA -= stridesA[d] * outShape[d]
                offsetB -= stridesB[d] * outShape[d]
                counter[d] = 0
                d -= 1
            }
        }
    }

    /// Sums a gradient of the broadcast shape `outShape` back to the operand shape `shape`
    /// (the adjoint of broadcasting `shape` to `outShape`).
    public static func reduce(_ grad: [Float], from outShape: [Int], to shape: [Int]) -> [Float] {
        if outShape == shape { return grad }
        var result = [Float](repeating: 0, count: ShapeMath.elementCount(shape) ?? 0)
        let s = strides(of: shape, in: outShape)
        grad.withUnsafeBufferPointer { g in
            result.withUnsafeMutableBufferPointer { r in
                forEach(outShape, s, s) { o, i, _ in r[i] += g[o] }
            }
        }
        return result
    }

    /// Copies `values` of `shape` out to the broadcast `outShape` (Expand's forward).
    public static func expand<T>(_ values: [T], from shape: [Int], to outShape: [Int]) -> [T] {
        if shape == outShape { return values }
        let n = ShapeMath.elementCount(outShape) ?? 0
        guard n > 0 else { return [] }
        let s = strides(of: shape, in: outShape)
        return values.withUnsafeBufferPointer { v in
            [T](unsafeUninitializedCapacity: n) { buffer, count in
                forEach(outShape, s, s) { o, i, _ in (buffer.baseAddress! + o).initialize(to: v[i]) }
                count = n
            }
        }
    }
}
