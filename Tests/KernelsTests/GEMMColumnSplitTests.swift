// GEMM.sgemmColumnSplit: the product of one sgemm to float rounding, the same bits run to run for a
// thread count, and exactly one sgemm's bits on one thread.

import Kernels
import TestSupport
import XCTest

final class GEMMColumnSplitTests: XCTestCase {
    func testProductDeterministicAndCloseToOneGEMM() {
        // Odd sizes: ranges that are not multiples of 16, fewer columns than threads, beta 0 and 1.
        for (m, n, k) in [(7, 37, 300), (64, 576, 3136), (5, 3, 9), (33, 1000, 49)] {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = pseudoRandom(m * k, seed: 1), b = pseudoRandom(k * n, seed: 2), c0 = pseudoRandom(m * n, seed: 3)
                let lda = transA ? m : k, ldb = transB ? k : n
                for beta: Float in [0, 1] {
                    var expected = c0
                    GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                               beta: beta, c: &expected, ldc: n, threads: 1)
                    for threads in [1, 2, 3] {
                        let what = "m \(m) n \(n) k \(k) transA \(transA) transB \(transB) beta \(beta) threads \(threads)"
                        var split = c0, again = c0
                        GEMM.sgemmColumnSplit(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                              beta: beta, c: &split, ldc: n, threads: threads)
                        GEMM.sgemmColumnSplit(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                              beta: beta, c: &again, ldc: n, threads: threads)
                        XCTAssertTrue(split.elementsEqual(again) { $0.bitPattern == $1.bitPattern }, "run to run: " + what)
                        if threads == 1 {
                            XCTAssertTrue(split.elementsEqual(expected) { $0.bitPattern == $1.bitPattern }, "one thread: " + what)
                        }
                        // Reassociated sums of k products: rounding relative to the sums' scale.
                        let scale = expected.map(abs).max()!
                        assertClose(split, expected, rtol: 1e-5, atol: 2e-6 * scale, what)
                    }
                }
            }
        }
    }
}
