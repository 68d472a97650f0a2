// parallelFor on the kernels' worker pool: every index once, for any count and thread count;
// nested and concurrent calls (which the pool hands back to Dispatch) as well as thousands of
// back-to-back calls (the pool's hand-over and wake-up paths).

import Dispatch
import Foundation
import Kernels
import _CKernels
import XCTest

final class ParallelForTests: XCTestCase {
    /// Counts visits per index (each index is written by one worker only).
    func visits(_ count: Int, threads: Int) -> [Int] {
        var seen = [Int](repeating: 0, count: count)
        seen.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress
            parallelFor(count, threads: threads) { i in p![i] += 1 }
        }
        return seen
    }

    func testEveryIndexOnce() {
        for threads in [1, 2, 3, 8] {
            for count in [0, 1, 2, 3, 7, 64, 1000] {
                XCTAssertEqual(visits(count, threads: threads), [Int](repeating: 1, count: count),
                               "count \(count) threads \(threads)")
            }
        }
    }

    func testChunksAreContiguousPerWorker() {
        // 10 indices over 3 workers: [0, 4), [4, 7), [7, 10), each chunk on one thread.
        for _ in 0..<50 {
            var thread = [UInt](repeating: 0, count: 10)
            thread.withUnsafeMutableBufferPointer { b in
                let p = b.baseAddress!
                parallelFor(10, threads: 3) { i in p[i] = UInt(pthread_self()) }
            }
            for chunk in [0..<4, 4..<7, 7..<10] {
                XCTAssertEqual(Set(thread[chunk]).count, 1, "chunk \(chunk) ran on one thread")
            }
        }
    }

    func testDynamicEveryIndexOnceAlsoNested() {
        for threads in [1, 2, 3] {
            for count in [0, 1, 5, 97] {
                var seen = [Int](repeating: 0, count: count), worker = [Int](repeating: -1, count: count)
                seen.withUnsafeMutableBufferPointer { b in
                    worker.withUnsafeMutableBufferPointer { wb in
                        let p = b.baseAddress, q = wb.baseAddress
                        parallelForDynamic(count, threads: threads) { w, i in
                            p![i] += 1
                            q![i] = w
                        }
                    }
                }
                XCTAssertEqual(seen, [Int](repeating: 1, count: count), "count \(count) threads \(threads)")
                XCTAssertTrue(worker.allSatisfy { (0..<threads).contains($0) }, "worker indices \(worker)")
            }
        }
        // Inside a pool call the pool is busy: the inner call takes Dispatch's static chunks.
        XCTAssertEqual(nestedSums(outer: 2, inner: 50) { n, body in parallelForDynamic(n, threads: 2) { _, i in body(i) } },
                       [1225, 1225])
    }

    /// For each of `outer` parallel iterations, fills 0..<inner through `loop` (run inside the
    /// outer call) and returns the sums.
    func nestedSums(outer: Int, inner: Int, _ loop: (Int, (Int) -> Void) -> Void) -> [Int] {
        var sums = [Int](repeating: 0, count: outer)
        sums.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress!
            parallelFor(outer, threads: 2) { o in
                var values = [Int](repeating: 0, count: inner)
                values.withUnsafeMutableBufferPointer { vb in
                    let q = vb.baseAddress!
                    loop(inner) { j in q[j] = j }
                }
                p[o] = values.reduce(0, +)
            }
        }
        return sums
    }

    func testNestedCalls() {
        XCTAssertEqual(nestedSums(outer: 4, inner: 100) { n, body in parallelFor(n, threads: 2, body) },
                       [Int](repeating: 4950, count: 4))
    }

    func testConcurrentCallers() {
        let callers = 4, rounds = 200
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: callers)
        failures.initialize(repeating: 0, count: callers)
        defer { failures.deallocate() }
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            for round in 0..<rounds {
                let count = 17 + (round + c) % 50
                if visits(count, threads: 2) != [Int](repeating: 1, count: count) { failures[c] += 1 }
            }
        }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: failures, count: callers)), [Int](repeating: 0, count: callers))
    }

    func testManyCallsWithPausesBetween() {
        // Back-to-back calls keep the workers spinning; the pauses let them go to sleep, so the
        // next call has to wake them.
        var total = 0
        for round in 0..<3000 {
            if round % 500 == 0 { usleep(2000) }
            total += visits(5, threads: 2).reduce(0, +)
        }
        XCTAssertEqual(total, 3000 * 5)
    }

    /// A part its worker has not taken by the time the calling thread is done with its own runs
    /// on the calling thread (with the policy on), and only on its worker with it off. The
    /// workers are made late on purpose: each waits 50 ms after it sees a call.
    func testLatePartsRunOnTheCaller() {
        defer {
            manet_pool_delay_workers_for_tests(0)
            setPoolCallerTakesLateParts(true)
        }
        for on in [true, false] {
            setPoolCallerTakesLateParts(on)
            manet_pool_delay_workers_for_tests(50_000_000)
            for _ in 0..<3 {
                var thread = [UInt](repeating: 0, count: 2)
                thread.withUnsafeMutableBufferPointer { b in
                    let p = b.baseAddress!
                    parallelFor(2, threads: 2) { i in p[i] = UInt(pthread_self()) }
                }
                XCTAssertEqual(thread[0], UInt(pthread_self()))
                if on { XCTAssertEqual(thread[1], thread[0], "a late part waited for its worker") } else {
                    XCTAssertNotEqual(thread[1], thread[0], "a part ran on the caller with the policy off")
                }
            }
            manet_pool_delay_workers_for_tests(0)
            XCTAssertEqual(visits(1000, threads: 3), [Int](repeating: 1, count: 1000))
            XCTAssertEqual(visits(7, threads: 8), [Int](repeating: 1, count: 7))
        }
    }
}
