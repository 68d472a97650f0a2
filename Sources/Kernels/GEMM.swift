// Single-precision GEMM: OpenBLAS where its kernels match the CPU, else our own packed kernels
// (`_CKernels/sgemm.h`: AVX-512, AVX2 + FMA or portable, picked from CPUID or forced by
// `KernelOptions.isa`) split over the kernels' worker pool; `KernelOptions.gemm` fixes either.

import _COpenBLAS
import _CKernels
import Foundation

/// Row-major `C = alpha * op(A) * op(B) + beta * C`.
public enum GEMM {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var currentThreads = 0

    /// Below this many multiply-adds a product runs on the calling thread alone (the fork and
    /// join would cost more than the split saves).
    static let parallelWork = 1 << 18

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

    /// The instruction set our kernels run for `isa` on this CPU.
    public static func resolved(_ isa: KernelISA) -> KernelISA {
        KernelISA(code: manet_isa_resolve(isa.code))
    }

    /// OpenBLAS's name for the kernels it chose for this CPU (`openblas_get_corename`), e.g.
    /// "Haswell", "SkylakeX", or "Prescott" when it does not know the CPU.
    public static var openBLASCoreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Whether OpenBLAS's kernels are as wide as the CPU's vectors: its core is an AVX-512 one
    /// on an AVX-512 CPU, an AVX2 (or wider) one on an AVX2 CPU.
    public static let openBLASMatchesCPU: Bool = coreMatches(openBLASCoreName, resolved(.automatic))

    /// Whether OpenBLAS core `core` uses the vector width of `isa`.
    public static func coreMatches(_ core: String, _ isa: KernelISA) -> Bool {
        let avx512 = ["skylakex", "cooperlake", "sapphirerapids"]
        let avx2 = avx512 + ["haswell", "zen", "excavator"]
        switch isa {
        case .avx512: return avx512.contains(core.lowercased())
        case .avx2: return avx2.contains(core.lowercased())
        default: return true
        }
    }

    /// Whether `options` send the general GEMMs to OpenBLAS.
    public static func usesOpenBLAS(_ options: KernelOptions) -> Bool {
        switch options.gemm {
        case .openBLAS: true
        case .own: false
        case .automatic: openBLASMatchesCPU
        }
    }

    /// `C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C`, all row-major; `lda`, `ldb`,
    /// `ldc` are the row strides of the matrices as stored (before transposition). Our kernel
    /// gives the same bits for every thread count and instruction set (see `sgemm.h`); split
    /// over `threads` workers by whichever of C's dimensions is larger.
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                             threads: Int, options: KernelOptions = .default) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            // BLAS would still scale C by beta; do it here so k == 0 needs no special casing upstream.
            for i in 0..<m {
                let row = c + i * ldc
                for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
            }
            return
        }
        if usesOpenBLAS(options) {
            setThreads(threads)
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        let isa = options.isa.code
        func rectangle(_ m0: Int, _ m1: Int, _ n0: Int, _ n1: Int) {
            if manet_sgemm(isa, transA ? 1 : 0, transB ? 1 : 0, m0, m1, n0, n1, k, alpha, a, lda, b, ldb, beta, c, ldc) != 0 {
                // No memory for the packing buffers: OpenBLAS on this rectangle (needs none of ours).
                setThreads(1)
                let aAt = transA ? a + m0 : a + m0 * lda, bAt = transB ? b + n0 * ldb : b + n0
                cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                            Int32(m1 - m0), Int32(n1 - n0), Int32(k), alpha, aAt, Int32(lda), bAt, Int32(ldb), beta,
                            c + m0 * ldc + n0, Int32(ldc))
            }
        }
        // Ranges in whole tiles of the widest variant (12 rows, 32 columns).
        let byColumns = n >= m
        let unit = byColumns ? 32 : 12, extent = byColumns ? n : m
        let pieces = (extent + unit - 1) / unit
        let workers = m * n * k < parallelWork ? 1 : max(1, min(threads, pieces))
        if workers == 1 {
            rectangle(0, m, 0, n)
            return
        }
        parallelFor(workers, threads: workers) { t in
            let lo = min(extent, pieces * t / workers * unit), hi = min(extent, pieces * (t + 1) / workers * unit)
            guard hi > lo else { return }
            if byColumns { rectangle(0, m, lo, hi) } else { rectangle(lo, hi, 0, n) }
        }
    }

    /// The same product with C's columns split into `threads` static ranges (multiples of 16),
    /// each a single-threaded call on its own `parallelFor` worker: for OpenBLAS,
    /// no OpenBLAS worker threads are woken, so none is left spinning (`sched_yield`) against
    /// the kernel threads that run next. OpenBLAS picks its kernel (and with it the order of the
    /// inner sum) by the call's size, so its column ranges may round differently from one
    /// whole-width call (~1e-7 relative); our kernel gives the same bits either way.
    public static func sgemmColumnSplit(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                                        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                                        b: UnsafePointer<Float>, ldb: Int,
                                        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                                        threads: Int, options: KernelOptions = .default) {
        if !usesOpenBLAS(options) {
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                  beta: beta, c: c, ldc: ldc, threads: threads, options: options)
            return
        }
        let blocks = (n + 15) / 16
        let workers = max(1, min(threads, blocks))
        setThreads(1)
        parallelFor(workers, threads: workers) { t in
            let lo = min(n, blocks * t / workers * 16), hi = min(n, blocks * (t + 1) / workers * 16)
            guard hi > lo else { return }
            // Columns lo..<hi of op(B): columns of B as stored, or rows when B is transposed.
            sgemm(transA: transA, transB: transB, m: m, n: hi - lo, k: k, alpha: alpha, a: a, lda: lda,
                  b: b + (transB ? lo * ldb : lo), ldb: ldb, beta: beta, c: c + lo, ldc: ldc, threads: 1, options: options)
        }
    }
}
