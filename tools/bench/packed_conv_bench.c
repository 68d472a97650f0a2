// A C harness for the packed-filter convolution kernels (Sources/_CKernels/packed_gemm.c) alone,
// outside the interpreter: L distinct sets of C->C 3x3 filters on an HxH plane (one image), so
// that the filters stream from memory as they do in MA-Net (13 x 9.4 MB for 512 channels), each
// convolution = manet_im2col_packed + the packed GEMM (+ ReLU). Modes: one thread; two threads
// each on its own filters; two threads splitting one convolution by filter blocks (each
// unfolding the whole image); by output columns (each unfolding its own tiles); by columns with a
// barrier after every convolution (as the interpreter's fork/join does); by columns with the
// leftover tile shared by filter blocks; each thread unfolding half the tiles, then (after a
// barrier) multiplying its filter blocks with all of them. The modes take turns round by round
// (21 rounds); each prints its median round (the slower thread's time) and its fastest. A
// measurement tool, not a test (docs/PERFORMANCE.md rows (s), (v), (w)).
//
//   cc -O3 -I Sources/_CKernels/include tools/bench/packed_conv_bench.c Sources/_CKernels/packed_gemm.c Sources/_CKernels/sgemm.c Sources/_CKernels/winograd_transforms.c -o .build/pcb -lpthread -lm
//   .build/pcb [channels=512] [side=7] [filter sets=13]

#include "packed_gemm.h"
#include "sgemm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { OWN, BLOCKS, COLUMNS, COLUMNS_BARRIER, SHARED_BARRIER, UNFOLD_THEN_BLOCKS, MODES };
static const char *names[MODES] = {"own filters", "split by filter blocks", "split by columns",
                                   "split by columns, barrier each", "columns + shared last, barrier",
                                   "unfold halves, then blocks"};
static int C = 512, H = 7, L = 13, ROUNDS = 21, REPS = 4;
static float **W, *X, *Y[2], *BP[2], *SHARED, *LAST[2];
static manet_window2d geometry;
static pthread_barrier_t barrier;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct { int id, threads, mode; double ms; } worker_t;

static void convolve(int l, int id, int threads, int mode) {
    const size_t K = (size_t)C * 9, N = (size_t)H * H, tiles = (N + 5) / 6, blocks = (size_t)C / 16;
    if (mode == OWN || mode == BLOCKS) {
        manet_im2col_packed(MANET_ISA_AUTOMATIC, &geometry, X, 0, 0, tiles, BP[id]);
        const size_t b0 = mode == OWN ? 0 : blocks * id / threads, b1 = mode == OWN ? blocks : blocks * (id + 1) / threads;
        manet_packed_gemm_packed_columns(MANET_ISA_AUTOMATIC, W[l], C, K, b0, b1, BP[id], N, 1, Y[id], N, 1, 0, NULL, 1);
    } else if (mode == UNFOLD_THEN_BLOCKS) {
        // Each thread unfolds its share of the tiles, then (after a barrier) multiplies its
        // filter blocks with all of them.
        manet_im2col_packed(MANET_ISA_AUTOMATIC, &geometry, X, 0, tiles * id / threads, tiles * (id + 1) / threads, SHARED);
        pthread_barrier_wait(&barrier);
        manet_packed_gemm_packed_columns(MANET_ISA_AUTOMATIC, W[l], C, K, blocks * id / threads, blocks * (id + 1) / threads, SHARED, N, 1,
                                         Y[0], N, 1, 0, NULL, 1);
        pthread_barrier_wait(&barrier);
    } else if (mode == SHARED_BARRIER) {
        // Each thread its whole tiles, the leftover ones (fewer than the threads) unfolded by
        // every thread and split by filter blocks.
        const size_t whole = tiles / threads, q0 = whole * id, q1 = whole * (id + 1);
        manet_im2col_packed(MANET_ISA_AUTOMATIC, &geometry, X, 0, q0, q1, SHARED);
        manet_im2col_packed(MANET_ISA_AUTOMATIC, &geometry, X, 0, whole * threads, tiles, LAST[id]);
        manet_packed_gemm_shared_tiles(MANET_ISA_AUTOMATIC, W[l], C, K, SHARED + q0 * K * 6, q0, q1, LAST[id] + whole * threads * K * 6, whole * threads, tiles,
                                       blocks * id / threads, blocks * (id + 1) / threads, N, Y[0], N, 1, NULL, 1);
        pthread_barrier_wait(&barrier);
    } else {
        const size_t q0 = tiles * id / threads, q1 = tiles * (id + 1) / threads;
        manet_im2col_packed(MANET_ISA_AUTOMATIC, &geometry, X, 0, q0, q1, SHARED);
        const size_t n0 = q0 * 6, n1 = q1 * 6 < N ? q1 * 6 : N;
        manet_packed_gemm_packed_columns(MANET_ISA_AUTOMATIC, W[l], C, K, 0, blocks, SHARED + q0 * K * 6, n1 - n0, 1, Y[0] + n0, N, 1, 0,
                                         NULL, 1);
        if (mode == COLUMNS_BARRIER) pthread_barrier_wait(&barrier);
    }
}

// One round: REPS passes over the L filter sets; ms per convolution.
static void *run(void *argument) {
    worker_t *w = argument;
    pthread_barrier_wait(&barrier);
    const double t = now();
    for (int i = 0; i < REPS; i++)
        for (int l = 0; l < L; l++) convolve(w->mode == OWN ? (l + w->id * 5) % L : l, w->id, w->threads, w->mode);
    w->ms = (now() - t) / REPS / L * 1e3;
    return NULL;
}

static int ascending(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc > 1) C = atoi(argv[1]);
    if (argc > 2) H = atoi(argv[2]);
    if (argc > 3) L = atoi(argv[3]);
    if (C < 16 || C % 16 || H < 1 || L < 1) {
        fprintf(stderr, "usage: %s [channels (a multiple of 16)] [side] [filter sets]\n", argv[0]);
        return 2;
    }
    geometry = (manet_window2d){C, H, H, 3, 3, 1, 1, 1, 1, 1, 1, H, H};
    const size_t K = (size_t)C * 9, N = (size_t)H * H;
    srand(1);
    W = malloc(sizeof(float *) * L);
    for (int l = 0; l < L; l++) {
        W[l] = aligned_alloc(64, manet_packed_size(C, K) * 4);
        for (size_t i = 0; i < manet_packed_size(C, K); i++) W[l][i] = (float)(rand() % 1000) / 1000.0f - 0.5f;
    }
    X = malloc(sizeof(float) * C * N);
    for (size_t i = 0; i < (size_t)C * N; i++) X[i] = (float)rand() / RAND_MAX;
    for (int i = 0; i < 2; i++) {
        Y[i] = malloc(sizeof(float) * C * N);
        BP[i] = aligned_alloc(64, manet_packed_columns_size(K, N, 1) * 4);
        LAST[i] = aligned_alloc(64, manet_packed_columns_size(K, N, 1) * 4);
    }
    SHARED = aligned_alloc(64, manet_packed_columns_size(K, N, 1) * 4);
    const double flop = 2.0 * C * K * N;
    printf("%d->%d 3x3 on %dx%d, %d filter sets (%.1f MB each)\n", C, C, H, H, L, manet_packed_size(C, K) * 4 / 1e6);
    // The modes take turns round by round (this VM's speed moves in phases of seconds), each
    // round's time the slower thread's; the median round is printed.
    enum { CONFIGS = MODES + 1 };
    double ms[CONFIGS][64];
    if (ROUNDS > 64) ROUNDS = 64;
    for (int r = 0; r < ROUNDS; r++) {
        for (int config = 0; config < CONFIGS; config++) {
            const int mode = config == 0 ? OWN : config - 1, threads = config == 0 ? 1 : 2;
            pthread_barrier_init(&barrier, NULL, threads);
            pthread_t thread[2];
            worker_t w[2];
            for (int i = 0; i < threads; i++) {
                w[i] = (worker_t){i, threads, mode, 0};
                pthread_create(&thread[i], NULL, run, &w[i]);
            }
            for (int i = 0; i < threads; i++) pthread_join(thread[i], NULL);
            pthread_barrier_destroy(&barrier);
            ms[config][r] = threads == 2 && w[1].ms > w[0].ms ? w[1].ms : w[0].ms;
        }
    }
    for (int config = 0; config < CONFIGS; config++) {
        const int mode = config == 0 ? OWN : config - 1, threads = config == 0 ? 1 : 2;
        qsort(ms[config], ROUNDS, sizeof(double), ascending);
        const double median = ms[config][ROUNDS / 2], per = mode == OWN ? flop : flop / threads;
        printf("  %-32s %d thread(s): %.3f ms per convolution (%.1f GFLOP/s per thread; fastest round %.3f)\n",
               names[mode], threads, median, per / (median * 1e-3) / 1e9, ms[config][0]);
    }
    return 0;
}
