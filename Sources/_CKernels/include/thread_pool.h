// A small pool of worker threads for the kernels' parallel loops: a call hands worker w its part
// (w = 0 on the calling thread), and the workers wait for the next call spinning for a short
// while before they sleep. At batch 1 an inference makes hundreds of such calls of well under a
// millisecond each; waking a sleeping thread through the kernel for each cost more than some of
// them took.

#ifndef MANET_THREAD_POOL_H
#define MANET_THREAD_POOL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A part of a call: worker `worker` (0 ..< workers) of `context`.
typedef void (*manet_pool_task)(void *context, size_t worker);

/// Runs task(context, w) for every w in [0, workers): w = 0 on the calling thread, the others on
/// the pool's threads (made on first use, at most 63), and returns 0 when all have finished.
/// Returns -1 without running anything when the pool is serving another call (a nested or a
/// concurrent one) or cannot start its threads: the caller then runs the parts another way.
int manet_pool_run(size_t workers, manet_pool_task task, void *context);

/// Whether the calling thread, once its own part is done, runs every part whose worker has not
/// taken it yet instead of waiting for that worker (1, the default), or waits (0). Process-wide.
void manet_pool_set_caller_takes_late_parts(int on);

/// For tests: every worker waits this long after it sees a call before it takes its part (0: no
/// wait), so that a test can make a worker late on purpose.
void manet_pool_delay_workers_for_tests(long nanoseconds);

/// A part of a dynamically shared call: `index` taken by worker `worker`.
typedef void (*manet_pool_item)(void *context, size_t worker, size_t index);

/// Runs item(context, w, i) for every i in [0, count) over `workers` workers (w = 0 the calling
/// thread), each index taken by whichever worker is free next, in increasing order per worker:
/// for work whose parts finish at different speeds (a core shared with another job). The caller
/// makes the result independent of which worker ran an index. Returns -1 without running
/// anything when the pool is busy (as manet_pool_run).
int manet_pool_run_dynamic(size_t workers, size_t count, manet_pool_item item, void *context);

#ifdef __cplusplus
}
#endif

#endif
