// The kernels' worker pool (see thread_pool.h). One call at a time: a try-lock guards the pool,
// and each worker has its own slot (the task, and a call number it waits for and one it reports
// when done), so the calling thread hands out parts and collects them without a shared counter.

#include "thread_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define MAX_THREADS 63
// How long an idle worker (and the caller, waiting for the parts) spins before sleeping: longer
// than the gap between two kernels of one inference, short enough that an idle pool gives the
// cores back at once.
#define SPIN_NANOSECONDS 100000L

typedef struct {
    _Atomic unsigned long call;   // the call this worker is to run (the caller increments it)
    _Atomic unsigned long claimed; // the last call whose part someone took (this worker or the caller)
    _Atomic unsigned long done;   // the last call it finished
    _Atomic int sleeping;
    manet_pool_task task;
    void *context;
    size_t index;
    char padding[64];
} slot_t;

static pthread_mutex_t in_use = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static slot_t slots[MAX_THREADS + 1];
static size_t threads_started;
static _Atomic int caller_takes_late_parts = 1;

static _Atomic long worker_delay;

void manet_pool_set_caller_takes_late_parts(int on) { atomic_store(&caller_takes_late_parts, on != 0); }

void manet_pool_delay_workers_for_tests(long nanoseconds) { atomic_store(&worker_delay, nanoseconds); }

static long nanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *worker_main(void *argument) {
    slot_t *slot = argument;
    unsigned long seen = 0;
    for (;;) {
        unsigned long call;
        long until = 0;
        int spins = 0;
        while ((call = atomic_load_explicit(&slot->call, memory_order_acquire)) == seen) {
            CPU_RELAX();
            if (++spins % 64 == 0) {
                const long now = nanoseconds();
                if (!until) until = now + SPIN_NANOSECONDS;
                else if (now > until) break;
            }
        }
        if (call == seen) {
            pthread_mutex_lock(&sleep_lock);
            atomic_store(&slot->sleeping, 1);
            while ((call = atomic_load(&slot->call)) == seen) pthread_cond_wait(&wake, &sleep_lock);
            atomic_store(&slot->sleeping, 0);
            pthread_mutex_unlock(&sleep_lock);
        }
        seen = call;
        const long delay = atomic_load_explicit(&worker_delay, memory_order_relaxed);
        if (delay > 0) {
            const struct timespec pause = {delay / 1000000000L, delay % 1000000000L};
            nanosleep(&pause, NULL);
        }
        // The part is this worker's unless the caller took it first (it was late): then the
        // task and context may already be the next call's, so they are read only after the claim.
        unsigned long expected = call - 1;
        if (!atomic_compare_exchange_strong(&slot->claimed, &expected, call)) continue;
        slot->task(slot->context, slot->index);
        atomic_store_explicit(&slot->done, call, memory_order_release);
    }
    return NULL;
}

int manet_pool_run(size_t workers, manet_pool_task task, void *context) {
    if (workers == 0) return 0;
    if (workers > MAX_THREADS + 1) return -1;
    if (pthread_mutex_trylock(&in_use) != 0) return -1;
    while (threads_started < workers - 1) {
        slot_t *slot = &slots[threads_started + 1];
        slot->index = threads_started + 1;
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        const int failed = pthread_create(&thread, &attributes, worker_main, slot);
        pthread_attr_destroy(&attributes);
        if (failed) {
            pthread_mutex_unlock(&in_use);
            return -1;
        }
        threads_started++;
    }
    // Hand out the parts: each slot's task first, then its call number (release), then a wake-up
    // for a worker that went to sleep (sleeping is set under sleep_lock before it waits, and
    // read here after the call number is stored, so one of the two sides sees the other).
    int sleepers = 0;
    for (size_t w = 1; w < workers; w++) {
        slot_t *slot = &slots[w];
        slot->task = task;
        slot->context = context;
        atomic_fetch_add(&slot->call, 1);
        sleepers |= atomic_load(&slot->sleeping);
    }
    if (sleepers) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    task(context, 0);
    // A worker that has not taken its part by now (asleep, or its core busy with another job)
    // would finish it later than the caller can: the caller runs it. (Not worse on an idle
    // machine either: the part could only start later on the worker.) A part is one function
    // of (context, w), whichever thread runs it.
    const int take_late = atomic_load_explicit(&caller_takes_late_parts, memory_order_relaxed);
    for (size_t w = 1; w < workers; w++) {
        slot_t *slot = &slots[w];
        const unsigned long call = atomic_load_explicit(&slot->call, memory_order_relaxed);
        unsigned long expected = call - 1;
        if (take_late && atomic_compare_exchange_strong(&slot->claimed, &expected, call)) {
            task(context, w);
            continue;
        }
        long until = 0;
        int spins = 0;
        while (atomic_load_explicit(&slot->done, memory_order_acquire) != call) {
            CPU_RELAX();
            if (++spins % 64 == 0) {
                const long now = nanoseconds();
                if (!until) until = now + SPIN_NANOSECONDS;
                else if (now > until) sched_yield();
            }
        }
    }
    pthread_mutex_unlock(&in_use);
    return 0;
}

typedef struct {
    manet_pool_item item;
    void *context;
    size_t count;
    _Atomic size_t next;
} dynamic_call_t;

static void take_items(void *context, size_t worker) {
    dynamic_call_t *call = context;
    for (size_t i; (i = atomic_fetch_add_explicit(&call->next, 1, memory_order_relaxed)) < call->count;)
        call->item(call->context, worker, i);
}

int manet_pool_run_dynamic(size_t workers, size_t count, manet_pool_item item, void *context) {
    dynamic_call_t call = {item, context, count, 0};
    return manet_pool_run(workers, take_items, &call);
}
