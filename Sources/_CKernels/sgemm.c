// The general GEMM (see sgemm.h): per call, blocks of op(B) (256 k x up to 64 tiles of columns)
// and of op(A) (256 k x about 192 rows) are packed into zero-padded panels; a register tile runs
// over each pair of panels. Three variants of the tile, written out per instruction set (the
// packing and the blocking are shared): AVX-512 12 x 32 (24 accumulators), AVX2 + FMA 6 x 16
// (12 accumulators), portable 4 x 8. Each keeps one accumulator per element and adds k in
// increasing order with fused multiply-adds, and the store does the same float operations per
// element in every variant, so the variants give the same bits.

#include "sgemm.h"

#include <stdint.h>
#include <stdlib.h>

// No contraction of a * b + c into an FMA behind our back: the stores' arithmetic must be the
// same operations in the scalar (edge) and the vector (whole-tile) code.
#pragma STDC FP_CONTRACT OFF

// k per block: a block's sum is a chain from zero, then added to the element (so rounding grows
// with 256 + K / 256 terms rather than K). Fixed for every variant and split.
#define KC 256
// The largest register tile (AVX-512's), for the partial tiles' scratch.
#define MAX_TILE (12 * 32)
// Column tiles per packed block of op(B) and rows per block of op(A), in tiles.
#define NC_TILES 64
#define MC_ROWS 192

// The store of one element: out = alpha * sum (alpha 1: the sum), then the first k block
// writes beta * c + out (beta 0: out), later blocks c + out.
static inline float store_value(float sum, float c, float alpha, float beta, int first) {
    const float out = alpha == 1.0f ? sum : alpha * sum;
    if (!first) return c + out;
    if (beta == 0.0f) return out;
    const float scaled = beta * c;
    return scaled + out;
}

// ---- portable 4 x 8 -------------------------------------------------------------------------

#define P_MR 4
#define P_NR 8

static void kernel_portable(size_t kc, const float *a, const float *b, float *c, size_t ldc, float alpha, float beta,
                            int first) {
    float acc[P_MR][P_NR] = {{0}};
    for (size_t k = 0; k < kc; k++) {
        for (int i = 0; i < P_MR; i++) {
            const float ai = a[k * P_MR + i];
            for (int j = 0; j < P_NR; j++) acc[i][j] = __builtin_fmaf(ai, b[k * P_NR + j], acc[i][j]);
        }
    }
    for (int i = 0; i < P_MR; i++)
        for (int j = 0; j < P_NR; j++) c[i * ldc + j] = store_value(acc[i][j], c[i * ldc + j], alpha, beta, first);
}

#if defined(__x86_64__)
#include <immintrin.h>
#include "transpose8x8.h"

// ---- AVX2 + FMA 6 x 16 ----------------------------------------------------------------------

#define A2_MR 6
#define A2_NR 16

__attribute__((target("avx2,fma"))) static inline __m256 store8(__m256 sum, const float *c, float alpha, float beta,
                                                                 int first) {
    const __m256 out = alpha == 1.0f ? sum : _mm256_mul_ps(_mm256_set1_ps(alpha), sum);
    if (!first) return _mm256_add_ps(_mm256_loadu_ps(c), out);
    if (beta == 0.0f) return out;
    return _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(c)), out);
}

__attribute__((target("avx2,fma"))) static void kernel_avx2(size_t kc, const float *a, const float *b, float *c,
                                                             size_t ldc, float alpha, float beta, int first) {
    __m256 acc[A2_MR][2];
    for (int i = 0; i < A2_MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (size_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        for (int i = 0; i < A2_MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += A2_MR;
        b += A2_NR;
    }
    for (int i = 0; i < A2_MR; i++) {
        float *row = c + i * ldc;
        const __m256 v0 = store8(acc[i][0], row, alpha, beta, first);
        const __m256 v1 = store8(acc[i][1], row + 8, alpha, beta, first);
        _mm256_storeu_ps(row, v0);
        _mm256_storeu_ps(row + 8, v1);
    }
}

// ---- AVX-512 12 x 32 ------------------------------------------------------------------------

#define A5_MR 12
#define A5_NR 32

__attribute__((target("avx512f"))) static inline __m512 store16(__m512 sum, const float *c, float alpha, float beta,
                                                                 int first) {
    const __m512 out = alpha == 1.0f ? sum : _mm512_mul_ps(_mm512_set1_ps(alpha), sum);
    if (!first) return _mm512_add_ps(_mm512_loadu_ps(c), out);
    if (beta == 0.0f) return out;
    return _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(beta), _mm512_loadu_ps(c)), out);
}

__attribute__((target("avx512f"))) static void kernel_avx512(size_t kc, const float *a, const float *b, float *c,
                                                              size_t ldc, float alpha, float beta, int first) {
    __m512 acc[A5_MR][2];
    for (int i = 0; i < A5_MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (size_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        for (int i = 0; i < A5_MR; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += A5_MR;
        b += A5_NR;
    }
    for (int i = 0; i < A5_MR; i++) {
        float *row = c + i * ldc;
        const __m512 v0 = store16(acc[i][0], row, alpha, beta, first);
        const __m512 v1 = store16(acc[i][1], row + 16, alpha, beta, first);
        _mm512_storeu_ps(row, v0);
        _mm512_storeu_ps(row + 16, v1);
    }
}
#endif

// ---- variant choice -------------------------------------------------------------------------

static int best_isa(void) {
#if defined(__x86_64__)
    static int best = -1;
    if (best < 0) {
        __builtin_cpu_init();
        best = __builtin_cpu_supports("avx512f") ? MANET_ISA_AVX512
             : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? MANET_ISA_AVX2
             : MANET_ISA_PORTABLE;
    }
    return best;
#else
    return MANET_ISA_PORTABLE;
#endif
}

int manet_isa_resolve(int requested) {
    const int best = best_isa();
    if (requested == MANET_ISA_AUTOMATIC) return best;
    // Larger codes are smaller instruction sets: the one asked for, or the best below it.
    return requested > best ? requested : best;
}

static unsigned long variant_runs[4];   // read and written with __atomic builtins

void manet_note_variant(int isa) {
    if (isa >= 0 && isa < 4) __atomic_fetch_add(&variant_runs[isa], 1, __ATOMIC_RELAXED);
}

unsigned long manet_variant_runs(int isa) {
    return isa >= 0 && isa < 4 ? __atomic_load_n(&variant_runs[isa], __ATOMIC_RELAXED) : 0;
}

typedef void (*kernel_fn)(size_t, const float *, const float *, float *, size_t, float, float, int);

typedef struct {
    int mr, nr;
    kernel_fn kernel;
} variant;

static variant variant_of(int isa) {
    switch (manet_isa_resolve(isa)) {
#if defined(__x86_64__)
    case MANET_ISA_AVX512: return (variant){A5_MR, A5_NR, kernel_avx512};
    case MANET_ISA_AVX2: return (variant){A2_MR, A2_NR, kernel_avx2};
#endif
    default: return (variant){P_MR, P_NR, kernel_portable};
    }
}

int manet_sgemm_tile_rows(int isa) { return variant_of(isa).mr; }
int manet_sgemm_tile_columns(int isa) { return variant_of(isa).nr; }

// ---- packing --------------------------------------------------------------------------------

// Packing only copies, so every way of doing it gives the same panels. Where the source runs
// along k (op(B) of a transposed B, op(A) of an untransposed A: both operands of dW = dY col^T)
// a panel is a transpose; one element at a time it took as long as the multiplication on MA-Net's
// dW products (M = 64 filters reuse each packed element only 64 times), so it goes through 8 x 8
// register transposes where the CPU has AVX2.

#if defined(__x86_64__)
// dst[k * w + j] = src[j * ld + k] for j < count (0 for count <= j < w), k < kc.
__attribute__((target("avx2"))) static void pack_transposed_avx2(const float *src, size_t ld, size_t count, int w,
                                                                  size_t kc, float *dst) {
    static const int lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int j0 = 0; j0 < w; j0 += 8) {
        const int g = w - j0 < 8 ? w - j0 : 8;   // columns of the panel this group fills
        const int live = (size_t)j0 >= count ? 0 : count - j0 < (size_t)g ? (int)(count - j0) : g;
        const __m256i mask = _mm256_loadu_si256((const __m256i *)(lanes + 8 - g));
        const float *rows[8];
        for (int i = 0; i < 8; i++) rows[i] = i < live ? src + (size_t)(j0 + i) * ld : NULL;
        size_t k = 0;
        for (; k + 8 <= kc; k += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = rows[i] ? _mm256_loadu_ps(rows[i] + k) : _mm256_setzero_ps();
            // The next 8 rows' same run (the next group's, or the next panel's), asked for now:
            // each row is read in runs of kc values, too short for the hardware prefetcher.
            if ((k & 15) == 0)
                for (int i = 0; i < 8; i++) _mm_prefetch((const char *)(src + (size_t)(j0 + 8 + i) * ld + k), _MM_HINT_T0);
            __m256 o[8];
            transpose8x8(r, o);
            float *d = dst + k * (size_t)w + j0;
            if (g == 8) {
                for (int q = 0; q < 8; q++) _mm256_storeu_ps(d + (size_t)q * w, o[q]);
            } else {
                for (int q = 0; q < 8; q++) _mm256_maskstore_ps(d + (size_t)q * w, mask, o[q]);
            }
        }
        for (; k < kc; k++)
            for (int i = 0; i < g; i++) dst[k * (size_t)w + j0 + i] = i < live ? rows[i][k] : 0;
    }
}
#else
static void pack_transposed_avx2(const float *src, size_t ld, size_t count, int w, size_t kc, float *dst) {
    (void)src, (void)ld, (void)count, (void)w, (void)kc, (void)dst;
}
#endif

static int has_avx2(void) {
#if defined(__x86_64__)
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") != 0;
    }
    return known;
#else
    return 0;
#endif
}

// Columns [n0, n0 + nc) of op(B) rows [p0, p0 + kc) into panels of nr columns, [panel][k][nr],
// zero past nc.
static void pack_b(int transposes, int nr, int transB, const float *B, size_t ldb, size_t p0, size_t kc, size_t n0, size_t nc,
                   float *dst) {
    for (size_t j0 = 0; j0 < nc; j0 += (size_t)nr) {
        const size_t cols = nc - j0 < (size_t)nr ? nc - j0 : (size_t)nr;
        if (!transB) {
            for (size_t k = 0; k < kc; k++) {
                const float *src = B + (p0 + k) * ldb + n0 + j0;
                float *d = dst + k * nr;
                size_t j = 0;
                for (; j < cols; j++) d[j] = src[j];
                for (; j < (size_t)nr; j++) d[j] = 0;
            }
        } else if (transposes) {
            pack_transposed_avx2(B + (n0 + j0) * ldb + p0, ldb, cols, nr, kc, dst);
        } else {
            for (size_t j = 0; j < (size_t)nr; j++) {
                if (j < cols) {
                    const float *src = B + (n0 + j0 + j) * ldb + p0;
                    for (size_t k = 0; k < kc; k++) dst[k * nr + j] = src[k];
                } else {
                    for (size_t k = 0; k < kc; k++) dst[k * nr + j] = 0;
                }
            }
        }
        dst += kc * nr;
    }
}

// Rows [m0, m0 + mc) of op(A) columns [p0, p0 + kc) into panels of mr rows, [panel][k][mr],
// zero past mc.
static void pack_a(int transposes, int mr, int transA, const float *A, size_t lda, size_t m0, size_t mc, size_t p0, size_t kc,
                   float *dst) {
    for (size_t i0 = 0; i0 < mc; i0 += (size_t)mr) {
        const size_t rows = mc - i0 < (size_t)mr ? mc - i0 : (size_t)mr;
        if (transA) {
            for (size_t k = 0; k < kc; k++) {
                const float *src = A + (p0 + k) * lda + m0 + i0;
                float *d = dst + k * mr;
                size_t i = 0;
                for (; i < rows; i++) d[i] = src[i];
                for (; i < (size_t)mr; i++) d[i] = 0;
            }
        } else if (transposes) {
            pack_transposed_avx2(A + (m0 + i0) * lda + p0, lda, rows, mr, kc, dst);
        } else {
            for (size_t i = 0; i < (size_t)mr; i++) {
                if (i < rows) {
                    const float *src = A + (m0 + i0 + i) * lda + p0;
                    for (size_t k = 0; k < kc; k++) dst[k * mr + i] = src[k];
                } else {
                    for (size_t k = 0; k < kc; k++) dst[k * mr + i] = 0;
                }
            }
        }
        dst += kc * mr;
    }
}

// Each thread keeps its packing buffer between calls (at most MC_ROWS x KC + KC x NC_TILES x 32
// floats, 2.2 MB), so a call does not map and fault in fresh pages.
static _Thread_local float *scratch;
static _Thread_local size_t scratchFloats;

static float *scratch_of(size_t floats) {
    if (floats <= scratchFloats) return scratch;
    free(scratch);
    scratch = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
    scratchFloats = scratch ? floats : 0;
    return scratch;
}

int manet_sgemm(int isa, int transA, int transB, size_t m0, size_t m1, size_t n0, size_t n1, size_t K, float alpha,
                const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (m1 <= m0 || n1 <= n0 || K == 0) return 0;
    const variant v = variant_of(isa);
    const size_t mr = (size_t)v.mr, nr = (size_t)v.nr;
    const size_t M = m1 - m0, N = n1 - n0;
    const size_t ncMax = nr * NC_TILES, mcMax = (MC_ROWS + mr - 1) / mr * mr;
    const size_t ncCap = ((N < ncMax ? N : ncMax) + nr - 1) / nr * nr;
    const size_t mcCap = ((M < mcMax ? M : mcMax) + mr - 1) / mr * mr;
    const size_t kcCap = K < KC ? K : KC;
    float *packB = scratch_of(kcCap * (ncCap + mcCap) + 32);
    if (!packB) return -1;
    float *packA = packB + kcCap * ncCap;
    float edge[MAX_TILE] __attribute__((aligned(64)));
    const int transposes = has_avx2();
    for (size_t jc = 0; jc < N; jc += ncMax) {
        const size_t nc = N - jc < ncMax ? N - jc : ncMax;
        for (size_t pc = 0; pc < K; pc += KC) {
            const size_t kc = K - pc < KC ? K - pc : KC;
            const int first = pc == 0;
            pack_b(transposes, v.nr, transB, B, ldb, pc, kc, n0 + jc, nc, packB);
            for (size_t ic = 0; ic < M; ic += mcMax) {
                const size_t mc = M - ic < mcMax ? M - ic : mcMax;
                pack_a(transposes, v.mr, transA, A, lda, m0 + ic, mc, pc, kc, packA);
                for (size_t jr = 0; jr < nc; jr += nr) {
                    const size_t cols = nc - jr < nr ? nc - jr : nr;
                    const float *bp = packB + jr / nr * kc * nr;
                    for (size_t ir = 0; ir < mc; ir += mr) {
                        const size_t rows = mc - ir < mr ? mc - ir : mr;
                        const float *ap = packA + ir / mr * kc * mr;
                        float *c = C + (m0 + ic + ir) * ldc + n0 + jc + jr;
                        if (rows == mr && cols == nr) {
                            v.kernel(kc, ap, bp, c, ldc, alpha, beta, first);
                        } else {
                            // A partial tile: the whole tile's sums into `edge`, then the
                            // elements that exist, with the same store arithmetic.
                            v.kernel(kc, ap, bp, edge, nr, 1.0f, 0.0f, 1);
                            for (size_t i = 0; i < rows; i++)
                                for (size_t j = 0; j < cols; j++)
                                    c[i * ldc + j] = store_value(edge[i * nr + j], c[i * ldc + j], alpha, beta, first);
                        }
                    }
                }
            }
        }
    }
    return 0;
}

void manet_sgemm_panel_tile(int isa, size_t kc, const float *a, const float *b, float *c, size_t ldc) {
    variant_of(isa).kernel(kc, a, b, c, ldc, 1.0f, 0.0f, 1);
}
