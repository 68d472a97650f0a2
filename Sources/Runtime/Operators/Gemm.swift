// Gemm: Y = alpha * op(A) * op(B) + beta * C, C broadcast to [M, N]; and its backward.

import Kernels
import ONNXIR

public struct Gemm: Operator {
    let label: NodeLabel
    let alpha: Float, beta: Float
    let transA: Bool, transB: Bool

    public init(node: Node, opset: Int64) throws {
        label = NodeLabel(node)
        var reader = AttributeReader(node)
        alpha = try reader.float("alpha", default: 1)
        beta = try reader.float("beta", default: 1)
        transA = try reader.int("transA", default: 0) != 0
        transB = try reader.int("transB", default: 0) != 0
        try reader.finish()
    }

    /// (M, K, N) from the stored shapes of A and B.
    func dims(_ a: [Int], _ b: [Int]) throws -> (Int, Int, Int) {
        guard a.count == 2, b.count == 2 else { throw label.error("A and B must be 2-D, got \(a) and \(b)") }
        let (m, k) = transA ? (a[1], a[0]) : (a[0], a[1])
        let (kb, n) = transB ? (b[1], b[0]) : (b[0], b[1])
        guard k == kb else {
            throw label.error("inner dims differ: op(A) is [\(m), \(k)], op(B) is [\(kb), \(n)] (transA \(transA ? 1 : 0), transB \(transB ? 1 : 0))")
        }
        return (m, k, n)
    }

    /// C must broadcast unidirectionally to [M, N].
    func checkC(_ c: [Int], m: Int, n: Int) throws {
        guard c.count <= 2, Broadcast.shape(c, [m, n]) == [m, n] else {
            throw label.error("C of shape \(c) does not broadcast to [\(m), \(n)]")
        }
    }

    public func inferShapes(_ inputs: [ValueShape?]) throws -> [ValueShape] {
        guard inputs.count >= 2, let a = inputs[0], let b = inputs[1] else { throw label.error("inputs A and B are required") }
        guard let ad = a.dims, let bd = b.dims else { return [ValueShape(dtype: .float32, dims: unknownDims(rank: 2))] }
        guard ad.count == 2, bd.count == 2 else { throw label.error("A and B must be 2-D") }
        return [ValueShape(dtype: .float32, dims: [transA ? ad[1] : ad[0], transB ? bd[0] : bd[1]])]
    }

    public func forward(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> ForwardResult {
        try label.checkCount(inputs, 2...3)
        let a = try label.float(inputs, 0), b = try label.float(inputs, 1)
        let (m, k, n) = try dims(a.shape, b.shape)
        var y: [Float]
        var betaForGEMM: Float = 0
        if let c = label.optional(inputs, 2), beta != 0 {
            guard c.dtype == .float32 else { throw label.error("C must be float") }
            try checkC(c.shape, m: m, n: n)
            y = Broadcast.expand(c.floats, from: c.shape, to: [m, n])
            betaForGEMM = beta
        } else {
            y = [Float](repeating: 0, count: m * n)
        }
        a.floats.withUnsafeBufferPointer { ap in
            b.floats.withUnsafeBufferPointer { bp in
                y.withUnsafeMutableBufferPointer { yp in
                    guard m > 0, n > 0 else { return }
                    GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                               a: ap.baseAddress!, lda: a.shape[1], b: bp.baseAddress!, ldb: b.shape[1],
                               beta: betaForGEMM, c: yp.baseAddress!, ldc: n, threads: context.threads, options: context.options.kernels)
                }
            }
        }
        return ForwardResult([Tensor(shape: [m, n], floats: y)])
    }

    // With A' = op(A), B' = op(B): dA' = alpha dY B'^T, dB' = alpha A'^T dY, transposed back
    // to the stored layout by choosing the GEMM's operand order; dC = beta * dY summed over
    // the broadcast dims of C.
    public func backward(_ gradOutputs: [Tensor?], _ record: ForwardRecord, needsGradient: [Bool],
                         _ context: ExecutionContext) throws -> [Tensor?] {
        let a = try recorded(record, 0, label), b = try recorded(record, 1, label)
        let (m, k, n) = try dims(a.shape, b.shape)
        let dy = gradient(gradOutputs, 0, shape: [m, n])
        var result: [Tensor?] = record.inputs.map { _ in nil }
        let threads = context.threads
        dy.withUnsafeBufferPointer { dyb in
        a.floats.withUnsafeBufferPointer { ab in
        b.floats.withUnsafeBufferPointer { bb in
            guard let dyp = dyb.baseAddress, let ap = ab.baseAddress, let bp = bb.baseAddress else { return }
            if needsGradient.count > 0 && needsGradient[0] {
                let da = [Float].filled(count: m * k) { dap in
                    if !transA {
                        // dA [M, K] = dY [M, N] x B'^T: B' = B -> B^T; B' = B^T (B stored [N, K]) -> B.
                        GEMM.sgemm(transA: false, transB: !transB, m: m, n: k, k: n, alpha: alpha,
                                   a: dyp, lda: n, b: bp, ldb: b.shape[1], c: dap, ldc: k, threads: threads, options: context.options.kernels)
                    } else {
                        // dA [K, M] = B' x dY^T.
                        GEMM.sgemm(transA: transB, transB: true, m: k, n: m, k: n, alpha: alpha,
                                   a: bp, lda: b.shape[1], b: dyp, ldb: n, c: dap, ldc: m, threads: threads, options: context.options.kernels)
                    }
                }
                result[0] = Tensor(shape: a.shape, floats: da)
            }
            if needsGradient.count > 1 && needsGradient[1] {
                let db = [Float].filled(count: k * n) { dbp in
                    if !transB {
                        // dB [K, N] = A'^T x dY.
                        GEMM.sgemm(transA: !transA, transB: false, m: k, n: n, k: m, alpha: alpha,
                                   a: ap, lda: a.shape[1], b: dyp, ldb: n, c: dbp, ldc: n, threads: threads, options: context.options.kernels)
                    } else {
                        // dB [N, K] = dY^T x A'.
                        GEMM.sgemm(transA: true, transB: transA, m: n, n: k, k: m, alpha: alpha,
                                   a: dyp, lda: n, b: ap, ldb: a.shape[1], c: dbp, ldc: k, threads: threads, options: context.options.kernels)
                    }
                }
                result[1] = Tensor(shape: b.shape, floats: db)
            }
        }}}
        if needsGradient.count > 2 && needsGradient[2], record.inputs.count > 2, let c = record.inputs[2] {
            var dc = Broadcast.reduce(dy, from: [m, n], to: c.shape)
            for i in 0..<dc.count { dc[i] *= beta }
            result[2] = Tensor(shape: c.shape, floats: dc)
        }
        return result
    }
}
