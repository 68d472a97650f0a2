// MatMul: numpy matrix product (1-D promotion, broadcast batch dims) and its backward.

import Kernels
import ONNXIR

public struct MatMul: Operator {
    let label: NodeLabel

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        try AttributeReader(node).finish()
    }

    /// The product seen as `batch` GEMMs of [M, K] x [K, N], with the matrix index of A and B
    /// for every output matrix (broadcast batch dims repeat an index).
    struct Layout {
        var m: Int, k: Int, n: Int
        var outputShape: [Int]
        var aOffsets: [Int], bOffsets: [Int]
        /// B is one matrix shared by every batch entry and A is not broadcast: the whole
        /// product is one GEMM of [batch * M, K] x [K, N].
        var foldsIntoOneGEMM: Bool
        var batchCount: Int { aOffsets.count }
    }

    func layout(_ aShape: [Int], _ bShape: [Int]) throws -> Layout {
        guard aShape.count >= 1, bShape.count >= 1 else {
            throw label.error("inputs must have rank >= 1, got \(aShape) and \(bShape)")
        }
        // A 1-D A is a row [1, K]; a 1-D B is a column [K, 1]; the added dim is dropped after.
        let a = aShape.count == 1 ? [1] + aShape : aShape
        let b = bShape.count == 1 ? bShape + [1] : bShape
        let m = a[a.count - 2], k = a[a.count - 1], kb = b[b.count - 2], n = b[b.count - 1]
        guard k == kb else { throw label.error("inner dims differ: A \(aShape), B \(bShape)") }
        let aBatch = Array(a.dropLast(2)), bBatch = Array(b.dropLast(2))
        guard let batch = Broadcast.shape(aBatch, bBatch) else {
            throw label.error("batch dims of A \(aShape) and B \(bShape) do not broadcast")
        }
        var out = batch
        if aShape.count > 1 { out.append(m) }
        if bShape.count > 1 { out.append(n) }
        let aOffsets = Self.offsets(of: aBatch, in: batch), bOffsets = Self.offsets(of: bBatch, in: batch)
        let bShared = bOffsets.allSatisfy { $0 == 0 }
        let aDistinct = aOffsets.enumerated().allSatisfy { $0.offset == $0.element }
        return Layout(m: m, k: k, n: n, outputShape: out, aOffsets: aOffsets, bOffsets: bOffsets,
                      foldsIntoOneGEMM: bShared && aDistinct)
    }

    /// For each matrix of the broadcast `batch` (row-major), the matrix index in `shape`.
    static func offsets(of shape: [Int], in batch: [Int]) -> [Int] {
        let strides = Broadcast.strides(of: shape, in: batch)
        let total = ShapeMath.elementCount(batch) ?? 0
        var result = [Int](repeating: 0, count: total)
        var index = [Int](repeating: 0, count: batch.count)
        var offset = 0
        for i in 0..<total {
            result[i] = offset
            // Odometer step: the offset moves incrementally, so this is linear in `total`.
            var d = batch.count - 1
            while d >= 0 {
                index[d] += 1
                offset += strides[d]
                if index[d] < batch[d] { break }
                offset -= strides[d] * index[d]
                index[d] = 0
                d -= 1
            }
        }
        return result
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard inputs.count == 2, let a = inputs[0], let b = inputs[1] else { throw label.error("inputs A and B are required") }
        guard let ad = a.dims, let bd = b.dims, ad.count >= 1, bd.count >= 1 else {
            return [ValueShape(dtype: .float32, dims: nil)]
        }
        let a2 = ad.count == 1 ? [1] + ad : ad, b2 = bd.count == 1 ? bd + [1] : bd
        guard var out = Broadcast.shape(Array(a2.dropLast(2)), Array(b2.dropLast(2))) else {
            throw label.error("batch dims of A and B do not broadcast")
        }
        if ad.count > 1 { out.append(a2[a2.count - 2]) }
        if bd.count > 1 { out.append(b2[b2.count - 1]) }
        return [ValueShape(dtype: .float32, dims: out)]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 2...2)
        let a = try label.float(inputs, 0), b = try label.float(inputs, 1)
        let l = try layout(a.shape, b.shape)
        let (m, k, n) = (l.m, l.k, l.n)
        let y = [Float].filled(count: l.batchCount * m * n) { yp in
            a.floats.withUnsafeBufferPointer { ab in
                b.floats.withUnsafeBufferPointer { bb in
                    guard let ap = ab.baseAddress, let bp = bb.baseAddress else {
                        // K == 0 (or an empty operand): the product is all zeros.
                        yp.update(repeating: 0, count: l.batchCount * m * n)
                        return
                    }
                    if l.foldsIntoOneGEMM {
                        GEMM.sgemm(m: l.batchCount * m, n: n, k: k, a: ap, lda: k, b: bp, ldb: n,
                                   c: yp, ldc: n, threads: context.threads, options: context.options.kernels)
                        return
                    }
                    for i in 0..<l.batchCount {
                        GEMM.sgemm(m: m, n: n, k: k, a: ap + l.aOffsets[i] * m * k, lda: k,
                                   b: bp + l.bOffsets[i] * k * n, ldb: n, c: yp + i * m * n, ldc: n,
                                   threads: context.threads, options: context.options.kernels)
                    }
                }
            }
        }
        return ForwardResult([Tensor(shape: l.outputShape, floats: y)])
    }

    // dA_i += dY_i x B_i^T and dB_i += A_i^T x dY_i, summed (in batch order) over the batch
    // entries that broadcast one matrix of A or B.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        let a = try recorded(record, 0, label), b = try recorded(record, 1, label)
        let l = try layout(a.shape, b.shape)
        let (m, k, n) = (l.m, l.k, l.n)
        let dy = gradient(gradOutputs, 0, shape: l.outputShape)
        let needA = needsGradient.count > 0 && needsGradient[0]
        let needB = needsGradient.count > 1 && needsGradient[1]
        var da = needA ? [Float](repeating: 0, count: a.count) : []
        var db = needB ? [Float](repeating: 0, count: b.count) : []
        let threads = context.threads
        dy.withUnsafeBufferPointer { dyb in
        a.floats.withUnsafeBufferPointer { ab in
        b.floats.withUnsafeBufferPointer { bb in
        da.withUnsafeMutableBufferPointer { dab in
        db.withUnsafeMutableBufferPointer { dbb in
            guard let dyp = dyb.baseAddress, let ap = ab.baseAddress, let bp = bb.baseAddress else { return }
            if needA, let dap = dab.baseAddress {
                if l.foldsIntoOneGEMM {
                    GEMM.sgemm(transB: true, m: l.batchCount * m, n: k, k: n, a: dyp, lda: n, b: bp, ldb: n,
                               c: dap, ldc: k, threads: threads, options: context.options.kernels)
                } else {
                    for i in 0..<l.batchCount {
                        GEMM.sgemm(transB: true, m: m, n: k, k: n, a: dyp + i * m * n, lda: n,
                                   b: bp + l.bOffsets[i] * k * n, ldb: n, beta: 1,
                                   c: dap + l.aOffsets[i] * m * k, ldc: k, threads: threads, options: context.options.kernels)
                    }
                }
            }
            if needB, let dbp = dbb.baseAddress {
                if l.foldsIntoOneGEMM {
                    GEMM.sgemm(transA: true, m: k, n: n, k: l.batchCount * m, a: ap, lda: k, b: dyp, ldb: n,
                               c: dbp, ldc: n, threads: threads, options: context.options.kernels)
                } else {
                    for i in 0..<l.batchCount {
                        GEMM.sgemm(transA: true, m: k, n: n, k: m, a: ap + l.aOffsets[i] * m * k, lda: k,
                                   b: dyp + i * m * n, ldb: n, beta: 1,
                                   c: dbp + l.bOffsets[i] * k * n, ldc: n, threads: threads, options: context.options.kernels)
                    }
                }
            }
        }}}}}
        return [needA ? Tensor(shape: a.shape, floats: da) : nil, needB ? Tensor(shape: b.shape, floats: db) : nil]
    }
}
