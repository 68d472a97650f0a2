// A C harness for the packed-filter convolution kernels (Sources/_CKernels/packed_gemm.c) alone,
// outside the interpreter: L distinct sets of C->C 3x3 filters on an HxH plane (one image), so
// that the filters stream from memory as they do in MA-Net (13 x 9.4 MB for 512 channels), each
// convolution = manet_im2col_packed + manet_packed_gemm_packed_columns (+ ReLU). Prints the mean ms
// per convolution over 15 rounds for: one thread; two threads each on its own filters; two threads
// splitting one convolution by filter blocks (each unfolding the whole image); by output columns
// (each unfolding its own tiles); by columns with a barrier after every convolution (as the
// interpreter's fork/join does). A measurement tool, not a test (docs/PERFORMANCE.md rows (s), (v)).
//
//   cc -O3 -I Sources/_CKernels/include tools/packed_conv_bench.c Sources/_CKernels/packed_gemm.c -o /tmp/pcb -lpthread -lm
//   /tmp/pcb [channels=512] [side=7] [filter sets=13]

#include "packed_gemm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { OWN, BLOCKS, COLUMNS, COLUMNS_BARRIER, MODES };
static const char *names[MODES] = {"own filters", "split by filter blocks", "split by columns",
                                   "split by columns, barrier each"};
static int C = 512, H = 7, L = 13, ROUNDS = 15, REPS = 4;
static float **W, *X, *Y[2], *BP[2], *SHARED;
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
        manet_im2col_packed(&geometry, X, 0, 0, tiles, BP[id]);
        const size_t b0 = mode == OWN ? 0 : blocks * id / threads, b1 = mode == OWN ? blocks : blocks * (id + 1) / threads;
        manet_packed_gemm_packed_columns(W[l], C, K, b0, b1, BP[id], N, 1, Y[id], N, 1, 0, NULL, 1);
    } else {
        const size_t q0 = tiles * id / threads, q1 = tiles * (id + 1) / threads;
        manet_im2col_packed(&geometry, X, 0, q0, q1, SHARED);
        const size_t n0 = q0 * 6, n1 = q1 * 6 < N ? q1 * 6 : N;
        manet_packed_gemm_packed_columns(W[l], C, K, 0, blocks, SHARED + q0 * K * 6, n1 - n0, 1, Y[0] + n0, N, 1, 0,
                                         NULL, 1);
        if (mode == COLUMNS_BARRIER) pthread_barrier_wait(&barrier);
    }
}

static void *run(void *argument) {
    worker_t *w = argument;
    w->ms = 0;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_barrier_wait(&barrier);
        const double t = now();
        for (int i = 0; i < REPS; i++)
            for (int l = 0; l < L; l++) convolve(w->mode == OWN ? (l + w->id * 5) % L : l, w->id, w->threads, w->mode);
        w->ms += (now() - t) / REPS / L * 1e3 / ROUNDS;
    }
    return NULL;
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
    }
    SHARED = aligned_alloc(64, manet_packed_columns_size(K, N, 1) * 4);
    const double flop = 2.0 * C * K * N;
    printf("%d->%d 3x3 on %dx%d, %d filter sets (%.1f MB each)\n", C, C, H, H, L, manet_packed_size(C, K) * 4 / 1e6);
    for (int mode = 0; mode < MODES; mode++) {
        for (int threads = 1; threads <= 2; threads++) {
            if (mode != OWN && threads == 1) continue;
            pthread_barrier_init(&barrier, NULL, threads);
            pthread_t thread[2];
            worker_t w[2];
            for (int i = 0; i < threads; i++) {
                w[i] = (worker_t){i, threads, mode, 0};
                pthread_create(&thread[i], NULL, run, &w[i]);
            }
            for (int i = 0; i < threads; i++) pthread_join(thread[i], NULL);
            pthread_barrier_destroy(&barrier);
            const double per = mode == OWN ? flop : flop / threads;
            printf("  %-32s %d thread(s): %.3f ms per convolution (%.1f GFLOP/s per thread)\n", names[mode], threads,
                   w[0].ms, per / (w[0].ms * 1e-3) / 1e9);
        }
    }
    return 0;
}
