// Our GEMM (`_CKernels/sgemm.c` through `GEMM.sgemm`): against float64 on MA-Net's convolution
// and classifier shapes (forward, dX = W^T dY, dW = dY col^T) and odd sizes with partial tiles,
// every transposition, alpha and beta; the same bits for every instruction set and for 1, 2
// and 3 threads.

import Kernels
import TestSupport
import XCTest

final class SGEMMTests: XCTestCase {
    struct Case {
        var m: Int, n: Int, k: Int, transA: Bool, transB: Bool
    }

    /// op(A) op(B) in float64.
    func reference(_ c: Case, _ a: [Float], _ b: [Float]) -> [Double] {
        var out = [Double](repeating: 0, count: c.m * c.n)
        let lda = c.transA ? c.m : c.k, ldb = c.transB ? c.k : c.n
        for i in 0..<c.m {
            for p in 0..<c.k {
                let av = Double(c.transA ? a[p * lda + i] : a[i * lda + p])
                if av == 0 { continue }
                for j in 0..<c.n { out[i * c.n + j] += av * Double(c.transB ? b[j * ldb + p] : b[p * ldb + j]) }
            }
        }
        return out
    }

    func run(_ c: Case, _ a: [Float], _ b: [Float], c0: [Float], alpha: Float = 1, beta: Float = 0, threads: Int,
             isa: KernelISA) -> [Float] {
        var out = c0
        out.withUnsafeMutableBufferPointer { o in
            GEMM.sgemm(transA: c.transA, transB: c.transB, m: c.m, n: c.n, k: c.k, alpha: alpha, a: a,
                       lda: c.transA ? c.m : c.k, b: b, ldb: c.transB ? c.k : c.n, beta: beta, c: o.baseAddress!,
                       ldc: c.n, threads: threads, options: KernelOptions(isa: isa, gemm: .own))
        }
        return out
    }

    static let variants: [KernelISA] = [.automatic, .avx512, .avx2, .portable]

    /// MA-Net's products (batch 1 or 2 where the full batch would make the float64 reference
    /// slow): the stem's forward, a 64->64 56x56 layer's dW and dX, the narrow 512-channel 7x7
    /// layers' shared GEMMs over two images, a 1x1 downsampling forward, the classifier.
    func testMANetShapesMatchFloat64() {
        let cases = [Case(m: 64, n: 12544, k: 147, transA: false, transB: false),   // stem forward
                     Case(m: 64, n: 576, k: 3136, transA: false, transB: true),      // dW, 64->64 56x56
                     Case(m: 576, n: 3136, k: 64, transA: true, transB: false),      // dX columns
                     Case(m: 512, n: 98, k: 4608, transA: false, transB: false),     // 512->512 7x7 forward, 2 images
                     Case(m: 4608, n: 98, k: 512, transA: true, transB: false),      // its dX
                     Case(m: 512, n: 4608, k: 98, transA: false, transB: true),      // its dW
                     Case(m: 128, n: 784, k: 64, transA: false, transB: false),      // 1x1 stride-2 downsampling
                     Case(m: 16, n: 7, k: 512, transA: false, transB: true)]         // classifier (Gemm)
        for (i, c) in cases.enumerated() {
            let a = pseudoRandom(c.m * c.k, seed: UInt64(10 * i + 1)), b = pseudoRandom(c.k * c.n, seed: UInt64(10 * i + 2))
            let ref = reference(c, a, b)
            let scale = max(1, ref.map(abs).max()!)
            let y = run(c, a, b, c0: [Float](repeating: .nan, count: c.m * c.n), threads: 2, isa: .automatic)
            let worst = zip(y, ref).map { abs(Double($0) - $1) }.max()!
            XCTAssertLessThan(worst / scale, 1e-6, "\(c)")
        }
    }

    /// Odd sizes (partial register tiles in both dimensions, K across block boundaries, one
    /// element), every transposition, alpha and beta (beta 0 ignores NaN in C): against float64,
    /// and the same bits for every instruction set and 1, 2 and 3 threads.
    func testOddSizesEveryLayoutSameBitsEverywhere() {
        let sizes = [(1, 1, 1), (5, 3, 9), (7, 37, 300), (13, 17, 513), (33, 1000, 49), (25, 65, 257), (100, 40, 31)]
        for (m, n, k) in sizes {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                let c = Case(m: m, n: n, k: k, transA: transA, transB: transB)
                let a = pseudoRandom(m * k, seed: UInt64(m + k)), b = pseudoRandom(k * n, seed: UInt64(n + k))
                let c0 = pseudoRandom(m * n, seed: 3)
                let ref = reference(c, a, b)
                for (alpha, beta) in [(Float(1), Float(0)), (1, 1), (0.5, 2)] {
                    let start = beta == 0 ? [Float](repeating: .nan, count: m * n) : c0
                    let expected = zip(ref, c0).map { Double(alpha) * $0 + Double(beta) * Double($1) }
                    let scale = max(1, expected.map(abs).max()!)
                    let base = run(c, a, b, c0: start, alpha: alpha, beta: beta, threads: 1, isa: .automatic)
                    let worst = zip(base, expected).map { abs(Double($0) - $1) }.max()!
                    XCTAssertLessThan(worst / scale, 1e-6, "\(c) alpha \(alpha) beta \(beta)")
                    for isa in Self.variants {
                        for threads in [1, 2, 3] where (isa, threads) != (.automatic, 1) {
                            let y = run(c, a, b, c0: start, alpha: alpha, beta: beta, threads: threads, isa: isa)
                            XCTAssertEqual(y.map(\.bitPattern), base.map(\.bitPattern),
                                           "\(c) alpha \(alpha) beta \(beta): \(isa) on \(threads) threads")
                        }
                    }
                }
            }
        }
    }

    /// Large enough to be split over the threads (by columns, then by rows): the same bits.
    func testSplitsGiveTheSameBits() {
        for c in [Case(m: 70, n: 2000, k: 300, transA: false, transB: false), Case(m: 1500, n: 40, k: 300, transA: true, transB: true)] {
            let a = pseudoRandom(c.m * c.k, seed: 5), b = pseudoRandom(c.k * c.n, seed: 6)
            let one = run(c, a, b, c0: [Float](repeating: 0, count: c.m * c.n), threads: 1, isa: .automatic)
            for isa in Self.variants {
                for threads in [2, 3] {
                    XCTAssertEqual(run(c, a, b, c0: [Float](repeating: 0, count: c.m * c.n), threads: threads, isa: isa), one,
                                   "\(c): \(isa), \(threads) threads")
                }
            }
        }
    }

    /// Forcing a variant the CPU lacks runs the best one below it; `.automatic` the best.
    func testVariantResolution() {
        XCTAssertEqual(GEMM.resolved(.portable), .portable)
        let best = GEMM.resolved(.automatic)
        XCTAssertNotEqual(best, .automatic)
        XCTAssertEqual(GEMM.resolved(.avx512), best == .avx512 ? .avx512 : best)
        let hasAVX512 = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains("avx512f") ?? false
        XCTAssertEqual(best == .avx512, hasAVX512)
        XCTAssertFalse(GEMM.openBLASCoreName.isEmpty)
        // OpenBLAS's fallback core never matches a vector CPU; its own names do.
        XCTAssertFalse(GEMM.coreMatches("Prescott", .avx512))
        XCTAssertFalse(GEMM.coreMatches("Haswell", .avx512))
        XCTAssertTrue(GEMM.coreMatches("SkylakeX", .avx512))
        XCTAssertTrue(GEMM.coreMatches("Zen", .avx2))
        XCTAssertFalse(GEMM.usesOpenBLAS(KernelOptions(gemm: .own)))
        XCTAssertTrue(GEMM.usesOpenBLAS(KernelOptions(gemm: .openBLAS)))
        XCTAssertEqual(GEMM.usesOpenBLAS(KernelOptions()), GEMM.openBLASMatchesCPU)
    }
}
