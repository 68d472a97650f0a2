// The in-place weight gradient (see conv_dw.h): every dW element a 16-lane dot product of a row
// of padded dY with a run of the padded input. Register tiles of filters x taps share their loads:
// a tile's dY rows are read once per 16 positions for all its taps, each tap's run once for all
// its filters. The taps of a tile are neighbours in the input, so their runs overlap and stay in
// the L1 cache while the dY rows stream through.

#include "conv_dw.h"
#include "sgemm.h"

#include <math.h>

// The lanes' reduction and the add to dW are plain float additions in the order of conv_dw.h:
// no contraction into FMAs.
#pragma STDC FP_CONTRACT OFF

// The 16 lanes of one sum reduced in the fixed order, added to *out.
static inline void finish(const float lane[16], float *out) {
    float s8[8], s4[4], s2[2];
    for (int j = 0; j < 8; j++) s8[j] = lane[j] + lane[j + 8];
    for (int j = 0; j < 4; j++) s4[j] = s8[j] + s8[j + 4];
    for (int j = 0; j < 2; j++) s2[j] = s4[j] + s4[j + 2];
    *out = *out + (s2[0] + s2[1]);
}

// ---- portable: one element at a time -------------------------------------------------------

static void element_portable(const float *g, size_t L, const float *x, float *out) {
    float lane[16] = {0};
    for (size_t q = 0; q < L; q += 16)
        for (int j = 0; j < 16; j++) lane[j] = fmaf(g[q + j], x[q + j], lane[j]);
    finish(lane, out);
}

static void dw_portable(const float *g, size_t M, size_t L, const float *x, const int *koff, size_t r0, size_t r1,
                        float *dw, size_t ldw) {
    for (size_t m = 0; m < M; m++)
        for (size_t r = r0; r < r1; r++) element_portable(g + m * L, L, x + koff[r], dw + m * ldw + r);
}

#if defined(__x86_64__)
#include <immintrin.h>

// ---- AVX2 + FMA: 2 filters x 3 taps, each sum as two 8-lane halves ---------------------------

#define A2_MR 2
#define A2_NR 3

__attribute__((target("avx2,fma"))) static inline void finish_avx2(__m256 lo, __m256 hi, float *out) {
    float lane[16];
    _mm256_storeu_ps(lane, lo);
    _mm256_storeu_ps(lane + 8, hi);
    finish(lane, out);
}

__attribute__((target("avx2,fma"))) static void element_avx2(const float *g, size_t L, const float *x, float *out) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (size_t q = 0; q < L; q += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(g + q), _mm256_loadu_ps(x + q), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(g + q + 8), _mm256_loadu_ps(x + q + 8), hi);
    }
    finish_avx2(lo, hi, out);
}

__attribute__((target("avx2,fma"))) static void dw_avx2(const float *g, size_t M, size_t L, const float *x,
                                                        const int *koff, size_t r0, size_t r1, float *dw, size_t ldw) {
    size_t r = r0;
    for (; r + A2_NR <= r1; r += A2_NR) {
        const float *xs[A2_NR];
        for (int j = 0; j < A2_NR; j++) xs[j] = x + koff[r + j];
        size_t m = 0;
        for (; m + A2_MR <= M; m += A2_MR) {
            __m256 lo[A2_MR][A2_NR], hi[A2_MR][A2_NR];
            for (int i = 0; i < A2_MR; i++)
                for (int j = 0; j < A2_NR; j++) lo[i][j] = hi[i][j] = _mm256_setzero_ps();
            const float *g0 = g + m * L;
            for (size_t q = 0; q < L; q += 16) {
                __m256 bl[A2_NR], bh[A2_NR];
                for (int j = 0; j < A2_NR; j++) bl[j] = _mm256_loadu_ps(xs[j] + q), bh[j] = _mm256_loadu_ps(xs[j] + q + 8);
                for (int i = 0; i < A2_MR; i++) {
                    const __m256 al = _mm256_loadu_ps(g0 + i * L + q), ah = _mm256_loadu_ps(g0 + i * L + q + 8);
                    for (int j = 0; j < A2_NR; j++) {
                        lo[i][j] = _mm256_fmadd_ps(al, bl[j], lo[i][j]);
                        hi[i][j] = _mm256_fmadd_ps(ah, bh[j], hi[i][j]);
                    }
                }
            }
            for (int i = 0; i < A2_MR; i++)
                for (int j = 0; j < A2_NR; j++) finish_avx2(lo[i][j], hi[i][j], dw + (m + i) * ldw + r + j);
        }
        for (; m < M; m++)
            for (size_t j = 0; j < A2_NR; j++) element_avx2(g + m * L, L, xs[j], dw + m * ldw + r + j);
    }
    for (; r < r1; r++)
        for (size_t m = 0; m < M; m++) element_avx2(g + m * L, L, x + koff[r], dw + m * ldw + r);
}

// ---- AVX-512: 8 filters x 3 taps (24 accumulators) ---------------------------------------------

#define A5_MR 8
#define A5_NR 3

__attribute__((target("avx512f"))) static inline void finish_avx512(__m512 v, float *out) {
    float lane[16];
    _mm512_storeu_ps(lane, v);
    finish(lane, out);
}

__attribute__((target("avx512f"))) static void element_avx512(const float *g, size_t L, const float *x, float *out) {
    __m512 acc = _mm512_setzero_ps();
    for (size_t q = 0; q < L; q += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(g + q), _mm512_loadu_ps(x + q), acc);
    finish_avx512(acc, out);
}

__attribute__((target("avx512f"))) static void dw_avx512(const float *g, size_t M, size_t L, const float *x,
                                                         const int *koff, size_t r0, size_t r1, float *dw, size_t ldw) {
    size_t r = r0;
    for (; r + A5_NR <= r1; r += A5_NR) {
        const float *xs[A5_NR];
        for (int j = 0; j < A5_NR; j++) xs[j] = x + koff[r + j];
        size_t m = 0;
        for (; m + A5_MR <= M; m += A5_MR) {
            __m512 acc[A5_MR][A5_NR];
            for (int i = 0; i < A5_MR; i++)
                for (int j = 0; j < A5_NR; j++) acc[i][j] = _mm512_setzero_ps();
            const float *g0 = g + m * L;
            for (size_t q = 0; q < L; q += 16) {
                __m512 b[A5_NR];
                for (int j = 0; j < A5_NR; j++) b[j] = _mm512_loadu_ps(xs[j] + q);
                for (int i = 0; i < A5_MR; i++) {
                    const __m512 a = _mm512_loadu_ps(g0 + i * L + q);
                    for (int j = 0; j < A5_NR; j++) acc[i][j] = _mm512_fmadd_ps(a, b[j], acc[i][j]);
                }
            }
            for (int i = 0; i < A5_MR; i++)
                for (int j = 0; j < A5_NR; j++) finish_avx512(acc[i][j], dw + (m + i) * ldw + r + j);
        }
        for (; m < M; m++)
            for (size_t j = 0; j < A5_NR; j++) element_avx512(g + m * L, L, xs[j], dw + m * ldw + r + j);
    }
    for (; r < r1; r++)
        for (size_t m = 0; m < M; m++) element_avx512(g + m * L, L, x + koff[r], dw + m * ldw + r);
}
#endif

void manet_conv_dw_implicit(int isa, const float *g, size_t M, size_t L, const float *x, const int *koff, size_t r0,
                            size_t r1, float *dw, size_t ldw) {
    const int variant = manet_isa_resolve(isa);
    manet_note_variant(variant);
    switch (variant) {
#if defined(__x86_64__)
    case MANET_ISA_AVX512: dw_avx512(g, M, L, x, koff, r0, r1, dw, ldw); return;
    case MANET_ISA_AVX2: dw_avx2(g, M, L, x, koff, r0, r1, dw, ldw); return;
#endif
    default: dw_portable(g, M, L, x, koff, r0, r1, dw, ldw); return;
    }
}
