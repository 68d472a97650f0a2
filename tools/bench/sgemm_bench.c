// Our GEMM (Sources/_CKernels/sgemm.c) against OpenBLAS's cblas_sgemm on MA-Net's training
// products, one thread, the two taking turns per shape; prints GFLOP/s (best of the rounds).
//   cc -O2 -I Sources/_CKernels/include tools/bench/sgemm_bench.c Sources/_CKernels/sgemm.c \
//      -o .build/sgemm_bench -lopenblas -lm && .build/sgemm_bench [rounds]
// OPENBLAS_CORETYPE=Prescott shows OpenBLAS's fallback for CPUs it does not know.
//   .build/sgemm_bench --peak N THREADS   (add -lpthread) prints one JSON line: our GEMM (the
// CPU's best variant, C's columns split over THREADS threads as GEMM.sgemm does) and OpenBLAS
// (THREADS threads) on an N^3 product, GFLOP/s best of 5 turns each: the machine's measured peak
// that tools/bench/bench prints next to its achieved GFLOP/s.

#include "sgemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *openblas_get_corename(void);
void openblas_set_num_threads(int);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct { const char *what; int m, n, k, ta, tb; } shape;

typedef struct { size_t n, lo, hi; const float *a, *b; float *c; } part;

static void *run_part(void *arg) {
    const part *p = arg;
    manet_sgemm(MANET_ISA_AUTOMATIC, 0, 0, 0, p->n, p->lo, p->hi, p->n, 1, p->a, p->n, p->b, p->n, 0, p->c, p->n);
    return NULL;
}

static int peak(size_t n, int threads) {
    if (n == 0 || threads < 1 || threads > 64) return 2;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) return 2;
    for (size_t i = 0; i < n * n; i++) a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f, b[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    openblas_set_num_threads(threads);
    double best[2] = {1e9, 1e9};
    const size_t pieces = (n + 31) / 32;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        pthread_t th[64];
        part parts[64];
        for (int t = 0; t < threads; t++) {
            const size_t lo = pieces * t / threads * 32, hi = pieces * (t + 1) / threads * 32;
            parts[t] = (part){n, lo < n ? lo : n, hi < n ? hi : n, a, b, c};
            pthread_create(&th[t], NULL, run_part, &parts[t]);
        }
        for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
        double dt = now() - t0;
        if (dt < best[0]) best[0] = dt;
        t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        dt = now() - t0;
        if (dt < best[1]) best[1] = dt;
    }
    const double flop = 2.0 * n * n * n;
    printf("{\"n\": %zu, \"threads\": %d, \"ours_isa\": %d, \"ours_gflops\": %.1f, \"openblas_gflops\": %.1f, \"openblas_core\": \"%s\"}\n",
           n, threads, manet_isa_resolve(MANET_ISA_AUTOMATIC), flop / best[0] * 1e-9, flop / best[1] * 1e-9,
           openblas_get_corename());
    free(a), free(b), free(c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--peak") == 0) return peak(argc > 2 ? (size_t)atol(argv[2]) : 2048, argc > 3 ? atoi(argv[3]) : 2);
    const int rounds = argc > 1 ? atoi(argv[1]) : 5;
    openblas_set_num_threads(1);
    const shape shapes[] = {
        {"64->64 56x56 forward (W col)", 64, 3136, 576, 0, 0},
        {"64->64 56x56 dW (dY col^T)", 64, 576, 3136, 0, 1},
        {"64->64 56x56 dX (W^T dY)", 576, 3136, 64, 1, 0},
        {"128->128 28x28 dW", 128, 1152, 784, 0, 1},
        {"512->512 7x7 x16 forward", 512, 784, 4608, 0, 0},
        {"512->512 7x7 x16 dX", 4608, 784, 512, 1, 0},
        {"512->512 7x7 x16 dW", 512, 4608, 784, 0, 1},
        {"stem 3->64 7x7/2 forward", 64, 12544, 147, 0, 0},
        {"1024^3", 1024, 1024, 1024, 0, 0},
    };
    const int isas[] = {MANET_ISA_AVX512, MANET_ISA_AVX2};
    printf("OpenBLAS core %s; ours: avx512 -> %d, avx2 -> %d (1 avx512, 2 avx2, 3 portable); 1 thread, best of %d\n",
           openblas_get_corename(), manet_isa_resolve(MANET_ISA_AVX512), manet_isa_resolve(MANET_ISA_AVX2), rounds);
    printf("%-32s %10s %10s %10s\n", "product", "ours-512", "ours-avx2", "OpenBLAS");
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const shape h = shapes[s];
        float *a = malloc(sizeof(float) * h.m * h.k), *b = malloc(sizeof(float) * h.k * h.n), *c = malloc(sizeof(float) * h.m * h.n);
        for (int i = 0; i < h.m * h.k; i++) a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        for (int i = 0; i < h.k * h.n; i++) b[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
        const size_t lda = h.ta ? h.m : h.k, ldb = h.tb ? h.k : h.n;
        double best[3] = {1e9, 1e9, 1e9};
        for (int r = 0; r < rounds; r++) {
            for (int v = 0; v < 3; v++) {
                const double t0 = now();
                if (v < 2) {
                    manet_sgemm(isas[v], h.ta, h.tb, 0, h.m, 0, h.n, h.k, 1, a, lda, b, ldb, 0, c, h.n);
                } else {
                    cblas_sgemm(CblasRowMajor, h.ta ? CblasTrans : CblasNoTrans, h.tb ? CblasTrans : CblasNoTrans, h.m, h.n,
                                h.k, 1, a, lda, b, ldb, 0, c, h.n);
                }
                const double dt = now() - t0;
                if (dt < best[v]) best[v] = dt;
            }
        }
        const double flop = 2.0 * h.m * h.n * h.k;
        printf("%-32s %10.1f %10.1f %10.1f\n", h.what, flop / best[0] * 1e-9, flop / best[1] * 1e-9, flop / best[2] * 1e-9);
        free(a), free(b), free(c);
    }
    return 0;
}
