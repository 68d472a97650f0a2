// Packed-filter GEMM (see packed_gemm.h): a 16 x 6 register tile (12 AVX2 accumulators, 16 rows
// of A as two 8-lane vectors times 6 broadcast columns of B) over the whole K, then bias, ReLU and
// the store. Filters are packed once when an inference plan is made, so no call re-packs them;
// B is read where it lies (strided broadcasts), so no call packs it either.

#include "packed_gemm.h"
#include "winograd_transforms.h"
#include "sgemm.h"

#include <stdlib.h>
#include <string.h>

#define MR MANET_PACKED_ROWS
#define NR 6

size_t manet_packed_size(size_t M, size_t K) { return (M + MR - 1) / MR * MR * K; }

void manet_pack_rows(const float *a, size_t M, size_t K, size_t lda, float *ap) {
    const size_t blocks = (M + MR - 1) / MR;
    for (size_t blk = 0; blk < blocks; blk++) {
        float *dst = ap + blk * K * MR;
        for (size_t i = 0; i < MR; i++) {
            const size_t m = blk * MR + i;
            if (m < M) {
                const float *src = a + m * lda;
                for (size_t k = 0; k < K; k++) dst[k * MR + i] = src[k];
            } else {
                for (size_t k = 0; k < K; k++) dst[k * MR + i] = 0;
            }
        }
    }
}

void manet_pack_rows_in_place(float *a, size_t M, size_t K, float *scratch) {
    for (size_t blk = 0; blk < M / MR; blk++) {
        float *block = a + blk * K * MR;
        memcpy(scratch, block, K * MR * sizeof(float));
        for (size_t i = 0; i < MR; i++)
            for (size_t k = 0; k < K; k++) block[k * MR + i] = scratch[i * K + k];
    }
}

void manet_unpack_rows(const float *ap, size_t M, size_t K, float *a, size_t lda) {
    for (size_t m = 0; m < M; m++) {
        const float *src = ap + m / MR * K * MR + m % MR;
        float *dst = a + m * lda;
        for (size_t k = 0; k < K; k++) dst[k] = src[k * MR];
    }
}

// Stores a finished 16 x nr tile held as t[j][16] (column j of the tile = 16 rows) with the
// epilogue: rows m0 ..< m0 + rows, columns n0 ..< n0 + nr.
static inline void store_tile(const float *t, int nr, size_t m0, size_t rows, size_t n0, float *c, size_t cm,
                              size_t cn, const float *bias, int relu) {
    for (int j = 0; j < nr; j++) {
        for (size_t i = 0; i < rows; i++) {
            float v = t[j * MR + i];
            if (bias) v += bias[m0 + i];
            if (relu) v = 0 >= v ? 0 : v;  // Swift's max(v, 0): +0 for v <= 0, NaN stays NaN
            c[(m0 + i) * cm + (n0 + j) * cn] = v;
        }
    }
}

// ---- portable path -------------------------------------------------------------------------

// Where a tile reads B: b(k, j) = b[k * bk + j * bn] (unfolded columns, or B in place with any
// strides), or, when koff is set, b[koff[k] + po[j]] (the implicit unfolding: a convolution's
// input read in place, koff the taps' offsets from this pass's first k, po the tile's 6
// positions' offsets).
#define B_AT(k, j) (koff ? b[koff[k] + po[j]] : b[(k) * bk + (size_t)(j) * bn])

// t[j][16] (+)= sum over kc of a[k][16] * b(k, j).
static void tile_generic(const float *a, size_t kc, const float *b, size_t bk, size_t bn, const int *koff,
                         const int *po, int nr, float *t, int accumulate, const float *next, size_t nextLines) {
    (void)next, (void)nextLines;
    if (nr == 1) {
        // The AVX2 path's single-column order: four chains over k mod 4, (0 + 1) + (2 + 3).
        float chain[4][MR] = {{0}};
        for (size_t k = 0; k < kc; k++)
            for (int i = 0; i < MR; i++) chain[k % 4][i] = __builtin_fmaf(a[k * MR + i], B_AT(k, 0), chain[k % 4][i]);
        for (int i = 0; i < MR; i++) {
            const float v = (chain[0][i] + chain[1][i]) + (chain[2][i] + chain[3][i]);
            t[i] = accumulate ? t[i] + v : v;
        }
        return;
    }
    float pass[NR * MR] = {0};
    for (size_t k = 0; k < kc; k++) {
        for (int j = 0; j < nr; j++) {
            const float x = B_AT(k, j);
            for (int i = 0; i < MR; i++) pass[j * MR + i] = __builtin_fmaf(a[k * MR + i], x, pass[j * MR + i]);
        }
    }
    for (int e = 0; e < NR * MR; e++) t[e] = accumulate ? t[e] + pass[e] : pass[e];
}

static void store_generic(const float *t, int nr, size_t m0, size_t rows, size_t n0, float *c, size_t cm,
                          size_t cn, const float *bias, int relu) {
    store_tile(t, nr, m0, rows, n0, c, cm, cn, bias, relu);
}

// The variant the packed tiles run for `isa` (MANET_ISA_*, sgemm.h): AVX2 + FMA when it is
// asked for or an AVX-512 CPU is (these tiles have no AVX-512 form) and the CPU has both, else
// the portable one.
static int use_avx2(void);
static int packed_variant(int isa);
int manet_packed_variant(int isa) { return packed_variant(isa); }
static int packed_variant(int isa) {
#if defined(__x86_64__)
    return manet_isa_resolve(isa) != MANET_ISA_PORTABLE && use_avx2() ? MANET_ISA_AVX2 : MANET_ISA_PORTABLE;
#else
    (void)isa;
    return MANET_ISA_PORTABLE;
#endif
}

// ---- AVX2 + FMA path -----------------------------------------------------------------------

#if defined(__x86_64__)
#include <immintrin.h>
#include "transpose8x8.h"

#define AVX2 __attribute__((target("avx2,fma")))

// One 16 x NRC tile over kc values of k, added to t when accumulating; NRC (and, for packed
// columns, the strides 6 and 1; for the implicit unfolding, IMPLICIT) are constants in every
// instantiation, so the accumulators stay in registers and the loads use fixed offsets. Column
// j of row k is read at row + p[j]: row = b + k * BK and p[j] = j * BN, or (IMPLICIT) row = b +
// koff[k] and p[j] = po[j], the 6 positions' offsets held in registers.
// One k: 16 rows of A times NRC broadcast values of B into the accumulators.
#define STEP(NRC, BK, IMPLICIT)                                                                            \
    {                                                                                                     \
        const __m256 a0 = _mm256_loadu_ps(a), a1 = _mm256_loadu_ps(a + 8);                                \
        const float *row = IMPLICIT ? b + *koff++ : b;                                                    \
        for (int j = 0; j < NRC; j++) {                                                                   \
            const __m256 x = _mm256_broadcast_ss(row + p[j]);                                             \
            lo[j] = _mm256_fmadd_ps(a0, x, lo[j]);                                                        \
            hi[j] = _mm256_fmadd_ps(a1, x, hi[j]);                                                        \
        }                                                                                                 \
        a += MR;                                                                                          \
        if (!IMPLICIT) b += (BK);                                                                         \
    }

// The tile's share of the next filter slice is prefetched spread over its k loop, `per` lines
// (one k of a block each) every 8 k: a burst of hundreds of prefetches at once overflows the
// core's miss queue and stalls the loads the FMAs wait on.
#define TILE(NAME, NRC, BK, BN, IMPLICIT)                                                                  \
    static AVX2 void NAME(const float *a, size_t kc, const float *b, size_t bk, size_t bn, const int *koff,  \
                          const int *po, float *t, int accumulate, const float *next, size_t nextLines) {  \
        (void)bk; (void)bn;                                                                               \
        __m256 lo[NRC], hi[NRC];                                                                          \
        ptrdiff_t p[NRC];                                                                                 \
        for (int j = 0; j < NRC; j++) {                                                                   \
            lo[j] = hi[j] = _mm256_setzero_ps();                                                          \
            p[j] = IMPLICIT ? po[j] : (ptrdiff_t)(j * (BN));                                              \
        }                                                                                                 \
        const size_t groups = kc / 8, per = groups ? (nextLines + groups - 1) / groups : 0;               \
        size_t k = 0;                                                                                     \
        for (size_t q = 0; q < groups; q++) {                                                             \
            for (size_t l = 0; l < per && nextLines; l++, nextLines--, next += MR)                        \
                _mm_prefetch((const char *)next, _MM_HINT_T0);                                            \
            for (int u = 0; u < 8; u++) STEP(NRC, BK, IMPLICIT)                                           \
            k += 8;                                                                                       \
        }                                                                                                 \
        for (; nextLines; nextLines--, next += MR) _mm_prefetch((const char *)next, _MM_HINT_T0);         \
        for (; k < kc; k++) STEP(NRC, BK, IMPLICIT)                                                       \
        for (int j = 0; j < NRC; j++) {                                                                   \
            if (accumulate) {                                                                             \
                lo[j] = _mm256_add_ps(_mm256_loadu_ps(t + j * MR), lo[j]);                                \
                hi[j] = _mm256_add_ps(_mm256_loadu_ps(t + j * MR + 8), hi[j]);                            \
            }                                                                                             \
            _mm256_storeu_ps(t + j * MR, lo[j]);                                                          \
            _mm256_storeu_ps(t + j * MR + 8, hi[j]);                                                      \
        }                                                                                                 \
    }

// One column: two accumulators alone would wait on the FMA latency at every k, so four pairs
// take k in turn (k mod 4) and are added at the end, (0 + 1) + (2 + 3).
#define ONE_COLUMN(NAME, IMPLICIT)                                                                         \
    static AVX2 void NAME(const float *a, size_t kc, const float *b, size_t bk, size_t bn, const int *koff,  \
                          const int *po, float *t, int accumulate, const float *next, size_t nextLines) {  \
        (void)bn;                                                                                         \
        for (size_t k = 0; k < nextLines; k++) _mm_prefetch((const char *)(next + k * MR), _MM_HINT_T0);  \
        const float *b0 = IMPLICIT ? b + po[0] : b;                                                       \
        __m256 lo[4], hi[4];                                                                              \
        for (int q = 0; q < 4; q++) lo[q] = hi[q] = _mm256_setzero_ps();                                  \
        size_t k = 0;                                                                                     \
        for (; k + 4 <= kc; k += 4) {                                                                     \
            for (int q = 0; q < 4; q++) {                                                                 \
                const __m256 x = _mm256_broadcast_ss(b0 + (IMPLICIT ? (ptrdiff_t)koff[k + q] : (ptrdiff_t)((k + q) * bk))); \
                lo[q] = _mm256_fmadd_ps(_mm256_loadu_ps(a + (k + q) * MR), x, lo[q]);                     \
                hi[q] = _mm256_fmadd_ps(_mm256_loadu_ps(a + (k + q) * MR + 8), x, hi[q]);                 \
            }                                                                                             \
        }                                                                                                 \
        for (int q = 0; k < kc; k++, q++) {                                                               \
            const __m256 x = _mm256_broadcast_ss(b0 + (IMPLICIT ? (ptrdiff_t)koff[k] : (ptrdiff_t)(k * bk)));       \
            lo[q] = _mm256_fmadd_ps(_mm256_loadu_ps(a + k * MR), x, lo[q]);                               \
            hi[q] = _mm256_fmadd_ps(_mm256_loadu_ps(a + k * MR + 8), x, hi[q]);                           \
        }                                                                                                 \
        __m256 l = _mm256_add_ps(_mm256_add_ps(lo[0], lo[1]), _mm256_add_ps(lo[2], lo[3]));               \
        __m256 h = _mm256_add_ps(_mm256_add_ps(hi[0], hi[1]), _mm256_add_ps(hi[2], hi[3]));               \
        if (accumulate) {                                                                                 \
            l = _mm256_add_ps(_mm256_loadu_ps(t), l);                                                     \
            h = _mm256_add_ps(_mm256_loadu_ps(t + 8), h);                                                 \
        }                                                                                                 \
        _mm256_storeu_ps(t, l);                                                                           \
        _mm256_storeu_ps(t + 8, h);                                                                       \
    }

ONE_COLUMN(strided_1, 0)
TILE(strided_2, 2, bk, bn, 0)
TILE(strided_3, 3, bk, bn, 0)
TILE(strided_4, 4, bk, bn, 0)
TILE(strided_5, 5, bk, bn, 0)
TILE(strided_6, 6, bk, bn, 0)
TILE(packed_6, 6, NR, 1, 0)
// Winograd's chunked GEMMs (manet_winograd_gemm_block with 64-channel chunks): B is a point's
// [tile][64] slice, so the 6 columns sit at fixed offsets (6 registers freed, ~5% faster).
TILE(chunk64_2, 2, 1, 64, 0)
TILE(chunk64_3, 3, 1, 64, 0)
TILE(chunk64_4, 4, 1, 64, 0)
TILE(chunk64_5, 5, 1, 64, 0)
TILE(chunk64_6, 6, 1, 64, 0)
// Winograd's banded GEMMs (manet_winograd_band_gemm): B is a point's [tile][C] matrix, C = 64 or
// 128 at fixed offsets, any other C strided; a lone column takes a TILE of one column (one chain
// over k, as every other column), so a column's sum does not depend on how the tiles are grouped.
TILE(chunk64_1, 1, 1, 64, 0)
TILE(chunk128_1, 1, 1, 128, 0)
TILE(chunk128_2, 2, 1, 128, 0)
TILE(chunk128_3, 3, 1, 128, 0)
TILE(chunk128_4, 4, 1, 128, 0)
TILE(chunk128_5, 5, 1, 128, 0)
TILE(chunk128_6, 6, 1, 128, 0)
TILE(strided_1_chain, 1, bk, bn, 0)
ONE_COLUMN(implicit_1, 1)
TILE(implicit_2, 2, 0, 0, 1)
TILE(implicit_3, 3, 0, 0, 1)
TILE(implicit_4, 4, 0, 0, 1)
TILE(implicit_5, 5, 0, 0, 1)
TILE(implicit_6, 6, 0, 0, 1)

typedef void (*tile_fn)(const float *, size_t, const float *, size_t, size_t, const int *, const int *, float *, int,
                        const float *, size_t);

static AVX2 void tile_avx2(const float *a, size_t kc, const float *b, size_t bk, size_t bn, const int *koff,
                           const int *po, int nr, float *t, int accumulate, const float *next, size_t nextLines) {
    static const tile_fn strided[NR + 1] = {NULL, strided_1, strided_2, strided_3, strided_4, strided_5, strided_6};
    static const tile_fn implicit[NR + 1] = {NULL, implicit_1, implicit_2, implicit_3, implicit_4, implicit_5, implicit_6};
    static const tile_fn chunk64[NR + 1] = {NULL, strided_1, chunk64_2, chunk64_3, chunk64_4, chunk64_5, chunk64_6};
    const tile_fn f = koff ? implicit[nr] : nr == NR && bk == NR && bn == 1 ? packed_6
                    : bk == 1 && bn == 64 ? chunk64[nr] : strided[nr];
    f(a, kc, b, bk, bn, koff, po, t, accumulate, next, nextLines);
}

// Swift's max(v, 0): lanes with v <= 0 (ordered) become +0, NaN stays NaN.
static AVX2 inline __m256 relu8(__m256 v) { return _mm256_andnot_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LE_OQ), v); }

// 8 rows i0 ..< i0 + 8 of a tile to out rows with contiguous columns (cn == 1): an 8 x 8
// transpose of t[j][i0 + r] (j < 6, two zero columns), bias and ReLU per row, 6-lane stores.
static AVX2 void store_transposed8(const float *t, int nr, size_t i0, size_t m0, size_t n0, float *c, size_t cm,
                                   const float *bias, int relu) {
    __m256 v[8];
    for (int j = 0; j < 8; j++) v[j] = j < nr ? _mm256_loadu_ps(t + j * MR + i0) : _mm256_setzero_ps();
    __m256 r[8];
    transpose8x8(v, r);
    for (int i = 0; i < 8; i++) {
        __m256 x = r[i];
        if (bias) x = _mm256_add_ps(x, _mm256_broadcast_ss(bias + m0 + i0 + i));
        if (relu) x = relu8(x);
        float *to = c + (m0 + i0 + i) * cm + n0;
        // Six columns as a 4-wide and a 2-wide store (a masked store is microcoded on AMD
        // cores: a fifth of the 7x7/2 stem's time); fewer lane by lane.
        if (nr == NR) {
            _mm_storeu_ps(to, _mm256_castps256_ps128(x));
            _mm_storel_pi((__m64 *)(to + 4), _mm256_extractf128_ps(x, 1));
        } else {
            float lanes[8];
            _mm256_storeu_ps(lanes, x);
            for (int j = 0; j < nr; j++) to[j] = lanes[j];
        }
    }
}

// The store with 8-lane vectors: straight when a whole block's rows are contiguous in out
// (cm == 1), transposed when its columns are (cn == 1, NCHW planes).
static AVX2 void store_avx2(const float *t, int nr, size_t m0, size_t rows, size_t n0, float *c, size_t cm,
                            size_t cn, const float *bias, int relu) {
    if (cn == 1 && rows == MR) {
        store_transposed8(t, nr, 0, m0, n0, c, cm, bias, relu);
        store_transposed8(t, nr, 8, m0, n0, c, cm, bias, relu);
        return;
    }
    if (cm != 1 || rows != MR) {
        store_tile(t, nr, m0, rows, n0, c, cm, cn, bias, relu);
        return;
    }
    const __m256 b0 = bias ? _mm256_loadu_ps(bias + m0) : _mm256_setzero_ps();
    const __m256 b1 = bias ? _mm256_loadu_ps(bias + m0 + 8) : _mm256_setzero_ps();
    for (int j = 0; j < nr; j++) {
        __m256 v0 = _mm256_loadu_ps(t + j * MR), v1 = _mm256_loadu_ps(t + j * MR + 8);
        if (bias) { v0 = _mm256_add_ps(v0, b0); v1 = _mm256_add_ps(v1, b1); }
        if (relu) { v0 = relu8(v0); v1 = relu8(v1); }
        _mm256_storeu_ps(c + (n0 + j) * cn + m0, v0);
        _mm256_storeu_ps(c + (n0 + j) * cn + m0 + 8, v1);
    }
}

static int use_avx2(void) {
    static int chosen = -1;
    if (chosen < 0) {
        __builtin_cpu_init();
        chosen = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return chosen;
}

#define AVX512 __attribute__((target("avx512f")))

// Winograd's chunked GEMMs with AVX-512: 16 rows (one 16-lane vector per k) times 16 columns
// of a point's [tile][64] slice, the whole of batch 1's 7x7 planes (16 F(2x2) tiles) in one
// call instead of three AVX2 tiles (6, 6, 4) that each reload A. Each accumulator is the same
// chain of fused multiply-adds over k as the AVX2 and portable tiles' (from zero, then added to
// t), so the same bits. The next filter slice is prefetched spread over the k loop as in TILE.
// B's columns BN floats apart (a constant in each caller below, so the loads take fixed offsets).
static AVX512 inline __attribute__((always_inline)) void chunk16(const float *a, size_t kc, const float *b, float *t,
                                                                 int accumulate, const float *next, size_t nextLines,
                                                                 const size_t BN) {
    // Sixteen named accumulators: as an array (with the prefetch loop between the steps) clang
    // kept them in memory, storing each after every multiply-add.
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    __m512 c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0;
    const size_t groups = kc / 8, per = groups ? (nextLines + groups - 1) / groups : 0;
    size_t k = 0;
#define FMA16(J) c##J = _mm512_fmadd_ps(av, _mm512_set1_ps(row[(J) * BN]), c##J)
#define STEP16                                                                                         \
    {                                                                                                 \
        const __m512 av = _mm512_loadu_ps(a);                                                         \
        const float *row = b + k;                                                                     \
        FMA16(0); FMA16(1); FMA16(2); FMA16(3); FMA16(4); FMA16(5); FMA16(6); FMA16(7);               \
        FMA16(8); FMA16(9); FMA16(10); FMA16(11); FMA16(12); FMA16(13); FMA16(14); FMA16(15);         \
        a += MR;                                                                                      \
        k++;                                                                                          \
    }
    for (size_t q = 0; q < groups; q++) {
        for (size_t l = 0; l < per && nextLines; l++, nextLines--, next += MR) _mm_prefetch((const char *)next, _MM_HINT_T0);
        for (int u = 0; u < 8; u++) STEP16
    }
    for (; nextLines; nextLines--, next += MR) _mm_prefetch((const char *)next, _MM_HINT_T0);
    while (k < kc) STEP16
#undef STEP16
#undef FMA16
#define STORE16(J)                                                                                     \
    _mm512_storeu_ps(t + (J) * MR, accumulate ? _mm512_add_ps(_mm512_loadu_ps(t + (J) * MR), c##J) : c##J)
    STORE16(0); STORE16(1); STORE16(2); STORE16(3); STORE16(4); STORE16(5); STORE16(6); STORE16(7);
    STORE16(8); STORE16(9); STORE16(10); STORE16(11); STORE16(12); STORE16(13); STORE16(14); STORE16(15);
#undef STORE16
}

static AVX512 void chunk64_16(const float *a, size_t kc, const float *b, float *t, int accumulate, const float *next,
                              size_t nextLines) {
    chunk16(a, kc, b, t, accumulate, next, nextLines, 64);
}

static AVX512 void chunk128_16(const float *a, size_t kc, const float *b, float *t, int accumulate, const float *next,
                               size_t nextLines) {
    chunk16(a, kc, b, t, accumulate, next, nextLines, 128);
}
#endif

// Tiles (of 6 columns) per chunk: the chunk's B slice for one pass of k (32 x 256 x 6 floats,
// 192 KB) stays in L2 while every filter block of the range passes over it (32 measured ~4%
// faster than 16 at N = 196, the same at N = 49; 8 slower).
#define CHUNK_TILES 32
// k values per pass: a 16 x 256 slice of a filter block (16 KB) stays in L1 while the chunk's
// tiles pass over it. Each pass sums from zero and is then added to the tile's running sum (two
// levels: rounding error grows with 256 + K / 256 terms, not K, as with OpenBLAS's blocking).
#define KC 256

// One 16-row-block x 6-column tile job of a call: where its B block lies (and its strides),
// which output columns of which image it writes, and the row blocks it is computed for.
typedef struct {
    const float *b;
    float *c;
    size_t n0, blockBegin, blockEnd;
    int nr;
} tile_job;

// Where an implicit call's B comes from (run_tiles with it: job.b unused): b(k, n) =
// x[koff[k] + poff[n]].
typedef struct {
    const float *x;
    const int *koff, *poff;
} implicit_b;

// The product for a list of tile jobs, CHUNK_TILES at a time: for each pass of k, each row block
// passes over the chunk's tiles that want it (so a filter slice is read once per chunk), then
// the chunk's tiles are stored.
static void run_tiles(int isa, const float *ap, size_t M, size_t K, const tile_job *jobs, size_t count, size_t bk, size_t bn,
                      const implicit_b *implicit, size_t cm, size_t cn, const float *bias, int relu) {
    void (*tile)(const float *, size_t, const float *, size_t, size_t, const int *, const int *, int, float *, int,
                 const float *, size_t) = tile_generic;
    void (*store)(const float *, int, size_t, size_t, size_t, float *, size_t, size_t, const float *, int) =
        store_generic;
    if (count == 0) return;
    const int variant = packed_variant(isa);
    manet_note_variant(variant);
#if defined(__x86_64__)
    if (variant == MANET_ISA_AVX2) { tile = tile_avx2; store = store_avx2; }
#endif
    size_t lo = jobs[0].blockBegin, hi = jobs[0].blockEnd;
    for (size_t i = 1; i < count; i++) {
        if (jobs[i].blockBegin < lo) lo = jobs[i].blockBegin;
        if (jobs[i].blockEnd > hi) hi = jobs[i].blockEnd;
    }
    if (hi <= lo) return;
    const size_t blocks = hi - lo;
    // Every block's sums for one chunk of tiles (a few hundred KB at most).
    float *sums = aligned_alloc(32, blocks * CHUNK_TILES * NR * MR * sizeof(float));
    if (!sums) return;  // not reached in practice
    for (size_t t0 = 0; t0 < count; t0 += CHUNK_TILES) {
        const size_t t1 = count - t0 < CHUNK_TILES ? count : t0 + CHUNK_TILES;
        for (size_t k0 = 0; k0 < K; k0 += KC) {
            const size_t kc = K - k0 < KC ? K - k0 : KC;
            for (size_t blk = lo; blk < hi; blk++) {
                const float *a = ap + blk * K * MR + k0 * MR;
                float *blockSums = sums + (blk - lo) * CHUNK_TILES * NR * MR;
                // The tiles also prefetch the next filter slice (the next block's, else the
                // first block's next pass), one cache line (16 floats = one k) per k, each tile
                // its share: at batch 1 the filters stream from memory once, and waiting for
                // them was a third of the 512->512 layers' time.
                const float *next = NULL;
                size_t nextLines = 0;
                if (blk + 1 < hi) {
                    next = a + K * MR;
                    nextLines = kc;
                } else if (k0 + KC < K) {
                    next = ap + lo * K * MR + (k0 + KC) * MR;
                    nextLines = K - k0 - KC < KC ? K - k0 - KC : KC;
                }
                size_t live = 0;
                for (size_t t = t0; t < t1; t++) live += jobs[t].blockBegin <= blk && blk < jobs[t].blockEnd;
                // Each tile that wants this block prefetches its share of the next slice's lines.
                size_t i = 0;
                for (size_t t = t0; t < t1; t++) {
                    const tile_job *j = &jobs[t];
                    if (blk < j->blockBegin || blk >= j->blockEnd) continue;
                    const size_t from = nextLines * i / live, to = nextLines * (i + 1) / live;
                    float *sum = blockSums + (t - t0) * NR * MR;
                    const float *prefetch = next ? next + from * MR : NULL;
                    if (implicit) {
                        tile(a, kc, implicit->x, 0, 0, implicit->koff + k0, implicit->poff + j->n0, j->nr, sum, k0 > 0,
                             prefetch, to - from);
                    } else {
                        tile(a, kc, j->b + k0 * bk, bk, bn, NULL, NULL, j->nr, sum, k0 > 0, prefetch, to - from);
                    }
                    i++;
                }
            }
        }
        for (size_t blk = lo; blk < hi; blk++) {
            const size_t m0 = blk * MR, rows = M - m0 < MR ? M - m0 : MR;
            const float *blockSums = sums + (blk - lo) * CHUNK_TILES * NR * MR;
            for (size_t t = t0; t < t1; t++) {
                const tile_job *j = &jobs[t];
                if (blk < j->blockBegin || blk >= j->blockEnd) continue;
                store(blockSums + (t - t0) * NR * MR, j->nr, m0, rows, j->n0, j->c, cm, cn, bias, relu);
            }
        }
    }
    free(sums);
}

// Tiles are numbered image by image: tile t is columns 6q ..< 6q + 6 of image t / qs (q = t % qs).
static void gemm_driver(int isa, const float *ap, size_t M, size_t K, size_t blockBegin, size_t blockEnd, const float *b,
                        size_t bk, size_t bn, int packedB, size_t N, size_t images, size_t bi, float *c, size_t cm,
                        size_t cn, size_t ci, const float *bias, int relu) {
    if (blockEnd <= blockBegin || N == 0 || images == 0) return;
    const size_t qs = (N + NR - 1) / NR, total = images * qs;
    tile_job jobs[CHUNK_TILES];
    // B of tile (img, q): packed columns are one [K][6] block per tile (image i, block q at
    // b + (i * qs + q) * K * 6), with strides 6 and 1 within it.
    for (size_t t0 = 0; t0 < total; t0 += CHUNK_TILES) {
        const size_t t1 = total - t0 < CHUNK_TILES ? total : t0 + CHUNK_TILES;
        for (size_t t = t0; t < t1; t++) {
            const size_t img = t / qs, n0 = t % qs * NR;
            jobs[t - t0] = (tile_job){packedB ? b + t * K * NR : b + img * bi + n0 * bn, c + img * ci, n0, blockBegin,
                                      blockEnd, N - n0 < NR ? (int)(N - n0) : NR};
        }
        run_tiles(isa, ap, M, K, jobs, t1 - t0, packedB ? NR : bk, packedB ? 1 : bn, NULL, cm, cn, bias, relu);
    }
}

void manet_packed_gemm_shared_tiles(int isa, const float *ap, size_t M, size_t K, const float *bp, size_t tileBegin,
                                    size_t tileEnd, const float *shared, size_t sharedBegin, size_t sharedEnd,
                                    size_t blockBegin, size_t blockEnd, size_t N, float *c, size_t cm, size_t cn,
                                    const float *bias, int relu) {
    const size_t blocks = (M + MR - 1) / MR;
    tile_job jobs[CHUNK_TILES];
    size_t count = 0;
    for (size_t t = tileBegin; t < tileEnd; t++) {
        const size_t n0 = t * NR;
        jobs[count++] = (tile_job){bp + (t - tileBegin) * K * NR, c, n0, 0, blocks, N - n0 < NR ? (int)(N - n0) : NR};
        if (count == CHUNK_TILES) { run_tiles(isa, ap, M, K, jobs, count, NR, 1, NULL, cm, cn, bias, relu); count = 0; }
    }
    for (size_t t = sharedBegin; t < sharedEnd && blockBegin < blockEnd; t++) {
        const size_t n0 = t * NR;
        jobs[count++] = (tile_job){shared + (t - sharedBegin) * K * NR, c, n0, blockBegin, blockEnd,
                                   N - n0 < NR ? (int)(N - n0) : NR};
        if (count == CHUNK_TILES) { run_tiles(isa, ap, M, K, jobs, count, NR, 1, NULL, cm, cn, bias, relu); count = 0; }
    }
    run_tiles(isa, ap, M, K, jobs, count, NR, 1, NULL, cm, cn, bias, relu);
}

void manet_packed_gemm(int isa, const float *ap, size_t M, size_t K, size_t blockBegin, size_t blockEnd, const float *b,
                       size_t bk, size_t bn, size_t N, size_t images, size_t bi, float *c, size_t cm, size_t cn,
                       size_t ci, const float *bias, int relu) {
    gemm_driver(isa, ap, M, K, blockBegin, blockEnd, b, bk, bn, 0, N, images, bi, c, cm, cn, ci, bias, relu);
}

void manet_packed_gemm_implicit(int isa, const float *ap, size_t M, size_t K, const float *x, const int *koff, const int *poff,
                                size_t N, size_t tileBegin, size_t tileEnd, size_t sharedBegin, size_t sharedEnd,
                                size_t blockBegin, size_t blockEnd, float *c, size_t cm, size_t cn, const float *bias,
                                int relu) {
    const size_t blocks = (M + MR - 1) / MR;
    const implicit_b source = {x, koff, poff};
    tile_job jobs[CHUNK_TILES];
    size_t count = 0;
    for (size_t t = tileBegin; t < tileEnd + (sharedEnd - sharedBegin); t++) {
        const int shared = t >= tileEnd;
        const size_t n0 = (shared ? sharedBegin + t - tileEnd : t) * NR;
        jobs[count++] = (tile_job){NULL, c, n0, shared ? blockBegin : 0, shared ? blockEnd : blocks,
                                   N - n0 < NR ? (int)(N - n0) : NR};
        if (count == CHUNK_TILES) { run_tiles(isa, ap, M, K, jobs, count, 0, 0, &source, cm, cn, bias, relu); count = 0; }
    }
    run_tiles(isa, ap, M, K, jobs, count, 0, 0, &source, cm, cn, bias, relu);
}

size_t manet_packed_columns_size(size_t K, size_t N, size_t images) { return images * ((N + NR - 1) / NR) * NR * K; }

void manet_pack_columns(const float *b, size_t bk, size_t bn, size_t K, size_t N, size_t bi, size_t begin, size_t end,
                        float *bp) {
    const size_t qs = (N + NR - 1) / NR;
    for (size_t item = begin; item < end; item++) {
        const size_t img = item / qs, q = item % qs, n0 = q * NR;
        const int nr = N - n0 < NR ? (int)(N - n0) : NR;
        const float *src = b + img * bi + n0 * bn;
        float *dst = bp + item * K * NR;
        if (nr == NR && bn == 1) {
            for (size_t k = 0; k < K; k++) {
                const float *row = src + k * bk;
                float *to = dst + k * NR;
                to[0] = row[0], to[1] = row[1], to[2] = row[2], to[3] = row[3], to[4] = row[4], to[5] = row[5];
            }
        } else {
            for (size_t k = 0; k < K; k++)
                for (int j = 0; j < NR; j++) dst[k * NR + j] = j < nr ? src[k * bk + j * bn] : 0;
        }
    }
}

// One tile of manet_im2col_packed, any window: per tap, where each of the 6 positions reads.
static void unfold_tile(const manet_window2d *g, const float *xi, size_t item, float *dst) {
    const size_t N = (size_t)g->outH * g->outW, qs = (N + NR - 1) / NR;
    const size_t kk = (size_t)g->kH * g->kW, plane = (size_t)g->inH * g->inW;
    const size_t n0 = item % qs * NR;
    int ih0[NR], iw0[NR], live[NR];
    for (int j = 0; j < NR; j++) {
        const size_t n = n0 + j;
        live[j] = n < N;
        ih0[j] = live[j] ? (int)(n / g->outW) * g->sH - g->pH : 0;
        iw0[j] = live[j] ? (int)(n % g->outW) * g->sW - g->pW : 0;
    }
    for (int kh = 0; kh < g->kH; kh++) {
        for (int kw = 0; kw < g->kW; kw++) {
            // Where each of the 6 positions reads for this tap; positions in the padding (or
            // past N) read nothing and give 0.
            size_t off[NR];
            int valid[NR];
            for (int j = 0; j < NR; j++) {
                const int ih = ih0[j] + kh * g->dH, iw = iw0[j] + kw * g->dW;
                valid[j] = live[j] && ih >= 0 && ih < g->inH && iw >= 0 && iw < g->inW;
                off[j] = valid[j] ? (size_t)ih * g->inW + iw : 0;
            }
            float *to = dst + (size_t)(kh * g->kW + kw) * NR;
            for (size_t c = 0; c < (size_t)g->channels; c++) {
                const float *xc = xi + c * plane;
                float *t = to + c * kk * NR;
                for (int j = 0; j < NR; j++) t[j] = valid[j] ? xc[off[j]] : 0.0f;
            }
        }
    }
}

#if defined(__x86_64__)
// Whether tile `item` can take unfold_tile_rows: stride 1 or 2 and no dilation, its 6 positions
// in one output row, every tap's window inside the image, and the widest read (8 floats from
// each tap, two such for stride 2) inside the image's planes.
static int interior_tile(const manet_window2d *g, size_t item) {
    const size_t N = (size_t)g->outH * g->outW, qs = (N + NR - 1) / NR, n0 = item % qs * NR;
    const int s = g->sW;
    if (g->dH != 1 || g->dW != 1 || (s != 1 && s != 2) || n0 + NR > N) return 0;
    const int oh = (int)(n0 / g->outW), ow0 = (int)(n0 % g->outW);
    const int ih0 = oh * g->sH - g->pH, iw0 = ow0 * s - g->pW;
    if (ow0 + NR > g->outW || ih0 < 0 || ih0 + g->kH > g->inH || iw0 < 0 || iw0 + (NR - 1) * s + g->kW > g->inW) return 0;
    const size_t plane = (size_t)g->inH * g->inW;
    return (size_t)(g->channels - 1) * plane + (size_t)(ih0 + g->kH - 1) * g->inW + iw0 + g->kW - 1 + 8 * s <= (size_t)g->channels * plane;
}

// An interior tile (interior_tile): each tap's 6 values are one run of x's row (every other
// value for stride 2), loaded as a vector and stored as a whole row of the block. The store
// writes 8 floats, the 2 past the row landing on the next row, written after it; the tile's
// last row (`last`: the next tile may be another call's) stores exactly 6.
static AVX2 void unfold_tile_rows(const manet_window2d *g, const float *xi, size_t item, float *dst, int last) {
    const size_t N = (size_t)g->outH * g->outW, qs = (N + NR - 1) / NR, n0 = item % qs * NR;
    const size_t kk = (size_t)g->kH * g->kW, plane = (size_t)g->inH * g->inW;
    const int oh = (int)(n0 / g->outW), ow0 = (int)(n0 % g->outW);
    const float *x0 = xi + (size_t)(oh * g->sH - g->pH) * g->inW + (ow0 * g->sW - g->pW);
    for (size_t c = 0; c < (size_t)g->channels; c++) {
        for (int kh = 0; kh < g->kH; kh++) {
            const float *r = x0 + c * plane + (size_t)kh * g->inW;
            float *to = dst + (c * kk + (size_t)kh * g->kW) * NR;
            for (int kw = 0; kw < g->kW; kw++, to += NR) {
                __m256 v;
                if (g->sW == 1) {
                    v = _mm256_loadu_ps(r + kw);
                } else {
                    // Even lanes of 16 values: [0 2 8 10 | 4 6 12 14] by the shuffle, then the
                    // middle 64-bit halves swapped.
                    const __m256 e = _mm256_shuffle_ps(_mm256_loadu_ps(r + kw), _mm256_loadu_ps(r + kw + 8), 0x88);
                    v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8));
                }
                if (last && c + 1 == (size_t)g->channels && kh + 1 == g->kH && kw + 1 == g->kW) {
                    _mm_storeu_ps(to, _mm256_castps256_ps128(v));
                    _mm_storel_pi((__m64 *)(to + 4), _mm256_extractf128_ps(v, 1));
                } else {
                    _mm256_storeu_ps(to, v);
                }
            }
        }
    }
}
#endif

void manet_im2col_packed(int isa, const manet_window2d *g, const float *x, size_t imageStride, size_t begin, size_t end,
                         float *bp) {
    const size_t N = (size_t)g->outH * g->outW, qs = (N + NR - 1) / NR;
    const size_t K = (size_t)g->channels * g->kH * g->kW;
#if defined(__x86_64__)
    const int rows = packed_variant(isa) == MANET_ISA_AVX2;
#endif
    for (size_t item = begin; item < end; item++) {
        const float *xi = x + item / qs * imageStride;
        float *dst = bp + item * K * NR;
#if defined(__x86_64__)
        if (rows && interior_tile(g, item)) {
            unfold_tile_rows(g, xi, item, dst, item + 1 == end);
            continue;
        }
#endif
        unfold_tile(g, xi, item, dst);
    }
}

void manet_packed_gemm_packed_columns(int isa, const float *ap, size_t M, size_t K, size_t blockBegin, size_t blockEnd,
                                      const float *bp, size_t N, size_t images, float *c, size_t cm, size_t cn,
                                      size_t ci, const float *bias, int relu) {
    gemm_driver(isa, ap, M, K, blockBegin, blockEnd, bp, 0, 0, 1, N, images, 0, c, cm, cn, ci, bias, relu);
}

// ---- Winograd GEMMs of one filter block, filters transformed chunk by chunk ----------------

// The column groups of one point's GEMMs: with `wide` (AVX-512), 16 at a time while that does
// not leave a single column, the rest (and everything without `wide`) 6 at a time, 5 where 6
// would leave one alone. A lone last column (tiles % 6 == 1) is always a group of its own: it
// takes the one-column tile, whose four chains over k sum in another order than the others; all
// other columns sum in one chain, so every grouping gives the same bits. Returns the count.
static size_t column_groups(size_t tiles, int wide, unsigned char *widths) {
    const size_t lone = tiles % NR == 1;
    size_t n = 0, left = tiles - lone;
    while (wide && left >= 16 && left != 17) widths[n++] = 16, left -= 16;
    while (left) {
        const size_t w = left == NR + 1 ? NR - 1 : left < NR ? left : NR;
        widths[n++] = (unsigned char)w;
        left -= w;
    }
    if (lone) widths[n++] = 1;
    return n;
}

size_t manet_winograd_point_stride(size_t floats) { return floats % 1024 == 0 ? floats + 16 : floats; }

void manet_winograd_gemm_block(int isa, int m, const float *w, size_t channels, size_t block, size_t blocks,
                               const float *v, size_t tiles, size_t channelBlock, float *sums, float *scratch) {
    void (*tile)(const float *, size_t, const float *, size_t, size_t, const int *, const int *, int, float *, int,
                 const float *, size_t) = tile_generic;
    const int resolved = manet_isa_resolve(isa);
    int wide = 0;
    manet_note_variant(resolved == MANET_ISA_AVX512 && channelBlock == 64 ? MANET_ISA_AVX512 : packed_variant(isa));
#if defined(__x86_64__)
    if (packed_variant(isa) == MANET_ISA_AVX2) tile = tile_avx2;
    wide = resolved == MANET_ISA_AVX512 && channelBlock == 64;
#endif
    const size_t points = (size_t)(m + 2) * (m + 2), cb = channelBlock;
    const size_t us = cb * MR + MR;  // a point's [cb][16] slice, one line of padding against set conflicts
    unsigned char widths[tiles > 0 ? tiles : 1];   // at most one group per column
    const size_t groups = column_groups(tiles, wide, widths);
    float *u = scratch;
    for (size_t c0 = 0; c0 < channels; c0 += cb) {
        manet_winograd_filter_channels(isa, m, w, channels, block, c0, c0 + cb, u, us);
        const size_t vs = manet_winograd_point_stride(tiles * cb);
        const float *vc = v + c0 / cb * points * vs;
        // The next chunk's filters (this block's, else the next block's first) are prefetched
        // while this chunk is multiplied, each tile its share of the lines (the transform alone
        // would wait on memory for every line: at batch 1 the filters are read once per call).
        const size_t target = block * channels + c0 + cb;   // as a channel index over all blocks
        const float *next = target < blocks * channels ? w + target * 9 * MR : NULL;
        const size_t lines = next ? cb * 9 : 0, calls = points * groups;
        const size_t each = lines / calls, extra = lines % calls;   // lines per tile call
        size_t call = 0, from = 0;
        for (size_t p = 0; p < points; p++) {
            size_t j0 = 0;
            for (size_t g = 0; g < groups; g++, call++) {
                const int nr = widths[g];
                const size_t count = each + (call < extra);
                const float *b = vc + p * vs + j0 * cb, *prefetch = next ? next + from * MR : NULL;
                float *t = sums + (p * tiles + j0) * MR;
#if defined(__x86_64__)
                if (nr == 16) chunk64_16(u + p * us, cb, b, t, c0 > 0, prefetch, count);
                else
#endif
                    tile(u + p * us, cb, b, 1, cb, NULL, NULL, nr, t, c0 > 0, prefetch, count);
                from += count;
                j0 += (size_t)nr;
            }
        }
    }
}

// ---- Winograd GEMMs of one band of tiles, every point and filter block ---------------------

// The portable tile with one chain per column for every width (tile_generic's one-column case
// sums in four chains, as the AVX2 one-column tile does).
static void tile_chain(const float *a, size_t kc, const float *b, size_t bk, size_t bn, int nr, float *t, int accumulate) {
    float pass[16 * MR] = {0};
    for (size_t k = 0; k < kc; k++) {
        for (int j = 0; j < nr; j++) {
            const float x = b[k * bk + (size_t)j * bn];
            for (int i = 0; i < MR; i++) pass[j * MR + i] = __builtin_fmaf(a[k * MR + i], x, pass[j * MR + i]);
        }
    }
    for (int e = 0; e < nr * MR; e++) t[e] = accumulate ? t[e] + pass[e] : pass[e];
}

void manet_winograd_band_gemm(int isa, const float *u, size_t uPointStride, size_t M, size_t C, size_t points, const float *v,
                              size_t vPointStride, size_t tiles, float *r, size_t rPointStride) {
    const int resolved = manet_isa_resolve(isa);
    int avx2 = 0, wide = 0;
#if defined(__x86_64__)
    avx2 = packed_variant(isa) == MANET_ISA_AVX2;
    wide = avx2 && resolved == MANET_ISA_AVX512 && (C == 64 || C == 128);
#endif
    manet_note_variant(wide ? MANET_ISA_AVX512 : avx2 ? MANET_ISA_AVX2 : MANET_ISA_PORTABLE);
    if (tiles == 0) return;
    // The chunked order's column groups (16 at a time with `wide`, else 6): here every column,
    // a lone one too, sums in one chain over k, so any grouping gives the same bits.
    unsigned char widths[tiles];
    const size_t groups = column_groups(tiles, wide, widths);
    const size_t blocks = M / MR;
    for (size_t p = 0; p < points; p++) {
        for (size_t blk = 0; blk < blocks; blk++) {
            const float *a = u + p * uPointStride + blk * C * MR;
            // The next block's filters (the next point's first after the last) are prefetched
            // while this one is multiplied, each group its share of the lines.
            const float *next = blk + 1 < blocks ? a + C * MR : p + 1 < points ? u + (p + 1) * uPointStride : NULL;
            const size_t lines = next ? C : 0, each = lines / groups, extra = lines % groups;
            float *out = r + p * rPointStride + blk * tiles * MR;
            for (size_t k0 = 0; k0 < C; k0 += KC) {
                const size_t kc = C - k0 < KC ? C - k0 : KC;
                size_t j0 = 0, from = 0;
                for (size_t g = 0; g < groups; g++) {
                    const int nr = widths[g];
                    const float *b = v + p * vPointStride + j0 * C + k0;
                    float *t = out + j0 * MR;
                    const size_t count = k0 == 0 ? each + (g < extra) : 0;
                    const float *prefetch = count ? next + from * MR : NULL;
#if defined(__x86_64__)
                    if (nr == 16 && C == 64) chunk64_16(a + k0 * MR, kc, b, t, k0 > 0, prefetch, count);
                    else if (nr == 16) chunk128_16(a + k0 * MR, kc, b, t, k0 > 0, prefetch, count);
                    else if (avx2) {
                        static const tile_fn chunk64[NR + 1] = {NULL, chunk64_1, chunk64_2, chunk64_3, chunk64_4, chunk64_5, chunk64_6};
                        static const tile_fn chunk128[NR + 1] = {NULL, chunk128_1, chunk128_2, chunk128_3, chunk128_4, chunk128_5,
                                                                 chunk128_6};
                        static const tile_fn strided[NR + 1] = {NULL, strided_1_chain, strided_2, strided_3, strided_4, strided_5,
                                                                strided_6};
                        const tile_fn f = C == 64 ? chunk64[nr] : C == 128 ? chunk128[nr] : strided[nr];
                        f(a + k0 * MR, kc, b, 1, C, NULL, NULL, t, k0 > 0, prefetch, count);
                    } else
#endif
                        tile_chain(a + k0 * MR, kc, b, 1, C, nr, t, k0 > 0);
                    from += count;
                    j0 += (size_t)nr;
                }
            }
        }
    }
}
