// Single-precision GEMM through OpenBLAS, with the library's thread count kept in step.

import _COpenBLAS
import Foundation

/// Row-major `C = alpha * op(A) * op(B) + beta * C` through OpenBLAS.
public enum GEMM {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var currentThreads = 0

    /// Sets OpenBLAS's thread count; only calls into the library when it changes, because
    /// `openblas_set_num_threads` is not free and conv layers call GEMM thousands of times.
    public static func setThreads(_ threads: Int) {
        let n = max(1, threads)
        lock.lock()
        defer { lock.unlock() }
        if currentThreads != n {
            openblas_set_num_threads(Int32(n))
            currentThreads = n
        }
    }

    /// `C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C`, all row-major; `lda`, `ldb`,
    /// `ldc` are the row strides of the matrices as stored (before transposition).
    @inlinable
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                             threads: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            // BLAS would still scale C by beta; do it here so k == 0 needs no special casing upstream.
            for i in 0..<m {
                let row = c + i * ldc
                for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
            }
            return
        }
        setThreads(threads)
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The same product as `sgemm`, with C's columns split into `threads` static ranges (multiples
    /// of 16), each a single-threaded OpenBLAS call on its own `parallelFor` worker. No OpenBLAS
    /// worker threads are woken, so none is left spinning (`sched_yield`) against the kernel
    /// threads that run next. The split depends only on `n` and `threads`, so the result is the
    /// same bits run to run for a thread count; OpenBLAS picks its kernel (and with it the order
    /// of the inner sum) by the call's size, so a column range's elements may round differently
    /// from the same columns of one whole-width call (float reassociation, ~1e-7 relative).
    public static func sgemmColumnSplit(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                                        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                                        b: UnsafePointer<Float>, ldb: Int,
                                        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                                        threads: Int) {
        let blocks = (n + 15) / 16
        let workers = max(1, min(threads, blocks))
        setThreads(1)
        parallelFor(workers, threads: workers) { t in
            let lo = min(n, blocks * t / workers * 16), hi = min(n, blocks * (t + 1) / workers * 16)
            guard hi > lo else { return }
            // Columns lo..<hi of op(B): columns of B as stored, or rows when B is transposed.
            sgemm(transA: transA, transB: transB, m: m, n: hi - lo, k: k, alpha: alpha, a: a, lda: lda,
                  b: b + (transB ? lo * ldb : lo), ldb: ldb, beta: beta, c: c + lo, ldc: ldc, threads: 1)
        }
    }
}
