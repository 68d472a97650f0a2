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
        let chunk = { (w: Int) in for i in staticChunk(w, of: count, workers: workers) { body(i) } }
        if !runOnPool(workers, chunk) { DispatchQueue.concurrentPerform(iterations: workers, execute: chunk) }
    }
}

/// Worker w's contiguous chunk of 0..<count: the first `count % workers` chunks are one longer.
@usableFromInline
func staticChunk(_ w: Int, of count: Int, workers: Int) -> Range<Int> {
    let base = count / workers, extra = count % workers
    let lo = w * base + min(w, extra)
    return lo..<(lo + base + (w < extra ? 1 : 0))
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

/// Runs `body(worker, i)` for every `i` in `0..<count` over at most `threads` workers, each index
/// taken by whichever worker is free next (in increasing order per worker): for parts whose
/// speed differs between cores, e.g. a VM's cores shared with other jobs. The body must make
/// its result independent of which worker ran an index (disjoint outputs, per-worker scratch).
/// When the pool is busy, worker w takes the static chunk `parallelFor` would give it.
public func parallelForDynamic(_ count: Int, threads: Int, _ body: (_ worker: Int, _ index: Int) -> Void) {
    if count <= 0 { return }
    let workers = min(max(1, threads), count)
    if workers == 1 {
        for i in 0..<count { body(0, i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        var item = body
        let ran = withUnsafeMutablePointer(to: &item) { pointer in
            manet_pool_run_dynamic(workers, count, { context, w, i in
                context!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(Int(w), Int(i))
            }, pointer) == 0
        }
        if ran { return }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for i in staticChunk(w, of: count, workers: workers) { body(w, i) }
        }
    }
}

/// The worker pool's hand-over policy, process-wide (the pool is one per process): with `on`
/// (the default), the calling thread of a parallel loop, once its own part is done, runs each
/// part whose worker has not taken it yet (a worker asleep, or whose core another job holds)
/// instead of waiting for that worker; off, it waits for every worker (the earlier policy, kept
/// for A/B measurements). Results are the same either way: a part is one function of its index,
/// whichever thread runs it.
public func setPoolCallerTakesLateParts(_ on: Bool) {
    manet_pool_set_caller_takes_late_parts(on ? 1 : 0)
}
