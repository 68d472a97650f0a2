// A parallel-for over a fixed thread count, used for batch- and channel-parallel kernel loops.

import Dispatch
import _CKernels

/// Runs `body(i)` for every `i` in `0..<count`, spread over at most `threads` workers.
/// Work is split into contiguous static chunks (never by thread timing), so a kernel whose
/// iterations write disjoint memory gives the same bits whatever the scheduling.
/// The chunks run on the kernels' worker pool (`_CKernels/thread_pool.h`: workers that spin
/// briefly between calls, so a sub-millisecond kernel is not dominated by waking threads), or on
/// Dispatch when the pool is serving another call (nested loops, concurrent callers).
@inlinable
public func parallelFor(_ count: Int, threads: Int, _ body: (Int) -> Void) {
    if count <= 0 { return }
    let workers = min(max(1, threads), count)
    if workers == 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        // Chunk w gets [lo, hi): the first `count % workers` chunks are one longer.
        let chunk = { (w: Int) in
            let base = count / workers, extra = count % workers
            let lo = w * base + min(w, extra)
            let hi = lo + base + (w < extra ? 1 : 0)
            for i in lo..<hi { body(i) }
        }
        if !runOnPool(workers, chunk) { DispatchQueue.concurrentPerform(iterations: workers, execute: chunk) }
    }
}

/// Runs `chunk(w)` for w in 0..<workers on the worker pool; false (nothing run) when the pool is busy.
@usableFromInline
func runOnPool(_ workers: Int, _ chunk: (Int) -> Void) -> Bool {
    withoutActuallyEscaping(chunk) { chunk in
        var task = chunk
        return withUnsafeMutablePointer(to: &task) { pointer in
            manet_pool_run(workers, { context, w in
                context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(w))
            }, pointer) == 0
        }
    }
}
