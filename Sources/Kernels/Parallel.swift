// A parallel-for over a fixed thread count, used for batch- and channel-parallel kernel loops.

import Dispatch

/// Runs `body(i)` for every `i` in `0..<count`, spread over at most `threads` workers.
/// Work is split into contiguous static chunks (never by thread timing), so a kernel whose
/// iterations write disjoint memory gives the same bits whatever the scheduling.
@inlinable
public func parallelFor(_ count: Int, threads: Int, _ body: (Int) -> Void) {
    if count <= 0 { return }
    let workers = min(max(1, threads), count)
    if workers == 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            // Chunk w gets [lo, hi): the first `count % workers` chunks are one longer.
            let base = count / workers, extra = count % workers
            let lo = w * base + min(w, extra)
            let hi = lo + base + (w < extra ? 1 : 0)
            for i in lo..<hi { body(i) }
        }
    }
}
