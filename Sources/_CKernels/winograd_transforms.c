// Winograd F(2x2,3x3) / F(4x4,3x3) transforms on blocks of 8 channels: one 8-lane vector holds
// the same tile position of 8 channels, so every tile's arithmetic is vector arithmetic whatever
// the plane size (MA-Net's 7x7 planes have only 2x2 or 4x4 tiles). Compiled for AVX-512, AVX2
// and baseline x86-64; each call runs the variant its `isa` argument names (MANET_ISA_*, capped
// at what the CPU has: KernelOptions.isa in Swift), so tests and benchmarks can force one.
//
// The 1-D transforms (Lavin & Gray 2016, points 0, +-1 for F(2,3) and 0, +-1, +-2 for F(4,3))
// are applied along H first, then along W, with FMA contraction off, so that the result does not
// depend on which clone runs.

#include "winograd_transforms.h"
#include "vector8.h"
#include "sgemm.h"

#include <string.h>

#pragma clang fp contract(off)
// The v8 helpers below are always inlined, so no call passes a vector in registers: the baseline
// variant's inlining of them is not an ABI change (clang warns regardless).
#pragma clang diagnostic ignored "-Wpsabi"

// A macro, not a function: returning an 8-lane vector from a function the baseline clone
// compiles would change the calling convention between clones.
#define splat(f) ((v8){(f), (f), (f), (f), (f), (f), (f), (f)})

// B^T d over 4 inputs (stride ds) into 4 outputs (stride os).
static inline __attribute__((always_inline)) void input_f2(const v8 *d, size_t ds, v8 *o, size_t os) {
    v8 d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds];
    o[0] = d0 - d2;
    o[os] = d1 + d2;
    o[2 * os] = d2 - d1;
    o[3 * os] = d1 - d3;
}

// B^T d over 6 inputs into 6 outputs.
static inline __attribute__((always_inline)) void input_f4(const v8 *d, size_t ds, v8 *o, size_t os) {
    const v8 four = splat(4), five = splat(5), two = splat(2);
    v8 d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds];
    v8 a = d4 - four * d2, b = d3 - four * d1;
    v8 c = d4 - d2, e = two * (d3 - d1);
    o[0] = four * d0 - five * d2 + d4;
    o[os] = a + b;
    o[2 * os] = a - b;
    o[3 * os] = c + e;
    o[4 * os] = c - e;
    o[5 * os] = four * d1 - five * d3 + d5;
}

// A^T s over 4 inputs into 2 outputs.
static inline __attribute__((always_inline)) void output_f2(const v8 *s, size_t ss, v8 *o, size_t os) {
    v8 s1 = s[ss], s2 = s[2 * ss];
    o[0] = s[0] + s1 + s2;
    o[os] = s1 - s2 - s[3 * ss];
}

// A^T s over 6 inputs into 4 outputs.
static inline __attribute__((always_inline)) void output_f4(const v8 *s, size_t ss, v8 *o, size_t os) {
    const v8 two = splat(2), four = splat(4), eight = splat(8);
    v8 s1 = s[ss], s2 = s[2 * ss], s3 = s[3 * ss], s4 = s[4 * ss];
    v8 p12 = s1 + s2, m12 = s1 - s2, p34 = s3 + s4, m34 = s3 - s4;
    o[0] = s[0] + p12 + p34;
    o[os] = m12 + two * m34;
    o[2 * os] = p12 + four * p34;
    o[3 * os] = m12 + eight * m34 + s[5 * ss];
}

// G g over 3 taps into 4 (F(2,3)) or 6 (F(4,3)) outputs.
static inline __attribute__((always_inline)) void filter_f2(const v8 *g, size_t gs, v8 *o, size_t os) {
    const v8 half = splat(0.5f);
    v8 g0 = g[0], g1 = g[gs], g2 = g[2 * gs];
    o[0] = g0;
    o[os] = (g0 + g1 + g2) * half;
    o[2 * os] = (g0 - g1 + g2) * half;
    o[3 * os] = g2;
}

static inline __attribute__((always_inline)) void filter_f4(const v8 *g, size_t gs, v8 *o, size_t os) {
    const v8 quarter = splat(0.25f), sixth = splat(1.0f / 6), c24 = splat(1.0f / 24), c12 = splat(1.0f / 12);
    v8 g0 = g[0], g1 = g[gs], g2 = g[2 * gs];
    v8 a = g0 * c24 + g2 * sixth, b = g1 * c12;
    o[0] = g0 * quarter;
    o[os] = -((g0 + g1 + g2) * sixth);
    o[2 * os] = -((g0 - g1 + g2) * sixth);
    o[3 * os] = a + b;
    o[4 * os] = a - b;
    o[5 * os] = g2;
}

// o = G g G^T for 8 filters at once: g[tap] (3 x 3) -> o[point] (a x a, a = m + 2).
static inline __attribute__((always_inline)) void filter_points(int m, const v8 *g, v8 *o) {
    v8 t[18];   // t = G g (a x 3)
    if (m == 2) {
        for (int j = 0; j < 3; j++) filter_f2(g + j, 3, t + j, 3);       // columns: t[r][j]
        for (int r = 0; r < 4; r++) filter_f2(t + r * 3, 1, o + r * 4, 1);  // rows: o[r][q]
    } else {
        for (int j = 0; j < 3; j++) filter_f4(g + j, 3, t + j, 3);
        for (int r = 0; r < 6; r++) filter_f4(t + r * 3, 1, o + r * 6, 1);
    }
}

// Filters f0 ..< f0 + 8 of one channel from the packed layout (taps 16 floats apart, from w) to
// u[p * pointStride] for every point p (8 contiguous floats each).
static inline __attribute__((always_inline)) void filter_eight(int m, const float *w, float *u, size_t pointStride) {
    v8 g[9], o[36];
    for (int tap = 0; tap < 9; tap++) g[tap] = *(const v8u *)(w + tap * 16);
    filter_points(m, g, o);
    for (int p = 0; p < (m + 2) * (m + 2); p++) *(v8u *)(u + p * pointStride) = o[p];
}

// Filter k's tap t: w[k * 9 + t] ([M, C, 3, 3]), or, when packedChannels (C) is not 0, the
// packed layout of packed_gemm.h (16-row blocks of the [M, C * 9] matrix).
static inline __attribute__((always_inline)) float filter_tap(const float *w, size_t k, int tap, size_t packedChannels) {
    if (!packedChannels) return w[k * 9 + tap];
    const size_t f = k / packedChannels, c = k % packedChannels;
    return w[(f / 16) * packedChannels * 9 * 16 + (c * 9 + tap) * 16 + f % 16];
}

static inline __attribute__((always_inline)) void filter_transform(int m, const float *w, size_t packedChannels,
                                                                   size_t begin, size_t end, float *u,
                                                                   size_t pointStride) {
    const int a = m + 2;
    for (size_t k = begin; k < end; k += 8) {
        const int lanes = end - k < 8 ? (int)(end - k) : 8;
        v8 g[9], o[36];
        for (int tap = 0; tap < 9; tap++) {
            g[tap] = splat(0);
            for (int l = 0; l < lanes; l++) g[tap][l] = filter_tap(w, k + l, tap, packedChannels);
        }
        filter_points(m, g, o);
        if (lanes == 8) {
            for (int p = 0; p < a * a; p++) *(v8u *)(u + p * pointStride + k) = o[p];
        } else {
            for (int p = 0; p < a * a; p++)
                for (int l = 0; l < lanes; l++) u[p * pointStride + k + l] = o[p][l];
        }
    }
}

static inline __attribute__((always_inline)) void manet_winograd_filter_body(int m, const float *w, size_t begin, size_t end, float *u, size_t pointStride) {
    filter_transform(m, w, 0, begin, end, u, pointStride);
}

static inline __attribute__((always_inline)) void manet_winograd_filter_packed_body(int m, const float *w, size_t channels, size_t begin, size_t end, float *u,
                                  size_t pointStride) {
    filter_transform(m, w, channels, begin, end, u, pointStride);
}

static inline __attribute__((always_inline)) void manet_winograd_filter_packed_blocks_body(int m, const float *w, size_t filters, size_t channels, size_t begin,
                                         size_t end, float *u, size_t pointStride) {
    (void)filters;
    for (size_t item = begin; item < end; item++) {
        // 8 filters f0 ..< f0 + 8 (one half of a 16-row block) of channel c: contiguous in the
        // packed layout on both sides.
        const size_t f0 = item / channels * 8, c = item % channels;
        filter_eight(m, w + (f0 / 16) * channels * 9 * 16 + c * 9 * 16 + f0 % 16,
                     u + (f0 / 16) * channels * 16 + c * 16 + f0 % 16, pointStride);
    }
}

static inline __attribute__((always_inline)) void manet_winograd_filter_block_body(int m, const float *w, size_t channels, size_t block, float *u) {
    for (size_t half = 0; half < 2; half++)
        for (size_t c = 0; c < channels; c++)
            filter_eight(m, w + block * channels * 9 * 16 + c * 9 * 16 + half * 8, u + c * 16 + half * 8, channels * 16);
}

// One row of o = (G g G^T) for F(2x2) from one row t0, t1, t2 of G g, stored as it is made
// (the same operations as filter_f2 along W, so the same bits as filter_eight).
static inline __attribute__((always_inline)) void filter_row_f2(v8 t0, v8 t1, v8 t2, float *u, size_t ps) {
    const v8 half = splat(0.5f);
    *(v8u *)u = t0;
    *(v8u *)(u + ps) = (t0 + t1 + t2) * half;
    *(v8u *)(u + 2 * ps) = (t0 - t1 + t2) * half;
    *(v8u *)(u + 3 * ps) = t2;
}

// filter_eight for F(2x2), row by row of G g: 9 taps and 3 values of a row live at once instead
// of all of G g and the 16 outputs (which spilled to the stack).
static inline __attribute__((always_inline)) void filter_eight_f2(const float *w, float *u, size_t ps) {
    const v8 half = splat(0.5f);
    v8 g[9];
    for (int tap = 0; tap < 9; tap++) g[tap] = *(const v8u *)(w + tap * 16);
    filter_row_f2(g[0], g[1], g[2], u, ps);
    filter_row_f2((g[0] + g[3] + g[6]) * half, (g[1] + g[4] + g[7]) * half, (g[2] + g[5] + g[8]) * half, u + 4 * ps, ps);
    filter_row_f2((g[0] - g[3] + g[6]) * half, (g[1] - g[4] + g[7]) * half, (g[2] - g[5] + g[8]) * half, u + 8 * ps, ps);
    filter_row_f2(g[6], g[7], g[8], u + 12 * ps, ps);
}

// 16 filters (one packed block's row of a channel: each tap one 64-byte line) at once, the same
// operations per lane as filter_eight / filter_eight_f2 (so the same bits), in half the
// instructions where the clone has 16-lane vectors; row by row of G g, stored as made.
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
#define splat16(f) ((v16){(f), (f), (f), (f), (f), (f), (f), (f), (f), (f), (f), (f), (f), (f), (f), (f)})

static inline __attribute__((always_inline)) void filter_row_f2_16(v16 t0, v16 t1, v16 t2, float *u, size_t ps) {
    const v16 half = splat16(0.5f);
    *(v16u *)u = t0;
    *(v16u *)(u + ps) = (t0 + t1 + t2) * half;
    *(v16u *)(u + 2 * ps) = (t0 - t1 + t2) * half;
    *(v16u *)(u + 3 * ps) = t2;
}

// filter_f4 over (g0, g1, g2) into o[0..5], for 16-lane vectors.
#define FILTER_F4_16(g0, g1, g2, o)                                                                     \
    {                                                                                                  \
        const v16 a_ = (g0) * c24 + (g2) * sixth, b_ = (g1) * c12;                                    \
        o[0] = (g0) * quarter;                                                                         \
        o[1] = -(((g0) + (g1) + (g2)) * sixth);                                                        \
        o[2] = -(((g0) - (g1) + (g2)) * sixth);                                                        \
        o[3] = a_ + b_;                                                                                \
        o[4] = a_ - b_;                                                                                \
        o[5] = (g2);                                                                                   \
    }

static inline __attribute__((always_inline)) void filter_sixteen(int m, const float *w, float *u, size_t ps) {
    v16 g[9];
    for (int tap = 0; tap < 9; tap++) g[tap] = *(const v16u *)(w + tap * 16);
    if (m == 2) {
        const v16 half = splat16(0.5f);
        filter_row_f2_16(g[0], g[1], g[2], u, ps);
        filter_row_f2_16((g[0] + g[3] + g[6]) * half, (g[1] + g[4] + g[7]) * half, (g[2] + g[5] + g[8]) * half, u + 4 * ps, ps);
        filter_row_f2_16((g[0] - g[3] + g[6]) * half, (g[1] - g[4] + g[7]) * half, (g[2] - g[5] + g[8]) * half, u + 8 * ps, ps);
        filter_row_f2_16(g[6], g[7], g[8], u + 12 * ps, ps);
        return;
    }
    const v16 quarter = splat16(0.25f), sixth = splat16(1.0f / 6), c24 = splat16(1.0f / 24), c12 = splat16(1.0f / 12);
    // Row r of G g is filter_f4 along H of each column j (taps j, j + 3, j + 6) at output r;
    // each row then goes through filter_f4 along W into points r * 6 ..< r * 6 + 6.
    for (int r = 0; r < 6; r++) {
        v16 t[3], o[6];
        for (int j = 0; j < 3; j++) {
            const v16 g0 = g[j], g1 = g[j + 3], g2 = g[j + 6];
            switch (r) {
            case 0: t[j] = g0 * quarter; break;
            case 1: t[j] = -((g0 + g1 + g2) * sixth); break;
            case 2: t[j] = -((g0 - g1 + g2) * sixth); break;
            case 3: t[j] = (g0 * c24 + g2 * sixth) + g1 * c12; break;
            case 4: t[j] = (g0 * c24 + g2 * sixth) - g1 * c12; break;
            default: t[j] = g2; break;
            }
        }
        FILTER_F4_16(t[0], t[1], t[2], o)
        for (int q = 0; q < 6; q++) *(v16u *)(u + (size_t)(r * 6 + q) * ps) = o[q];
    }
}

static inline __attribute__((always_inline)) void manet_winograd_filter_channels_body(int m, const float *w, size_t channels, size_t block, size_t begin, size_t end,
                                    float *u, size_t pointStride) {
    for (size_t c = begin; c < end; c++)
        filter_sixteen(m, w + block * channels * 9 * 16 + c * 9 * 16, u + (c - begin) * 16, pointStride);
}

// out[c] lane r = in[r] lane c, in portable vector code (each clone lowers the shuffles to its
// own instructions): the unpack / shuffle / 128-bit swap steps of transpose8x8.h.
static inline __attribute__((always_inline)) void transpose8(const v8 in[8], v8 out[8]) {
    v8 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = __builtin_shufflevector(in[2 * i], in[2 * i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[2 * i + 1] = __builtin_shufflevector(in[2 * i], in[2 * i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 2; i++) {
        for (int h = 0; h < 2; h++) {
            const v8 a = t[4 * i + h], b = t[4 * i + h + 2];
            s[4 * i + 2 * h] = __builtin_shufflevector(a, b, 0, 1, 8, 9, 4, 5, 12, 13);
            s[4 * i + 2 * h + 1] = __builtin_shufflevector(a, b, 2, 3, 10, 11, 6, 7, 14, 15);
        }
    }
    for (int i = 0; i < 4; i++) {
        out[i] = __builtin_shufflevector(s[i], s[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        out[i + 4] = __builtin_shufflevector(s[i], s[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

typedef float v4u __attribute__((vector_size(16), aligned(4)));

// Rows r0 ..< r0 + rows of the zero-padded window of 8 channels (the first `lanes` real) into P
// ([rows][Wp] vectors, lane l = channel l): padded row hp reads input row hp - padTop of each
// channel plane (src: the first channel's plane). Rows of 8 columns or more go 8 columns at a
// time (8 row loads, one transpose; the last 8 overlapping the ones before); narrower rows (7x7
// planes) load the 8 floats ending at the row's end (or the plane's first 8) and keep the row's.
static inline __attribute__((always_inline)) void gather_window(const manet_winograd_geometry *g, const float *src, int lanes,
                                                                size_t r0, size_t rows, size_t Wp, v8 *P) {
    const size_t plane = (size_t)g->inH * g->inW;
    const int cols = g->inW + g->padLeft <= (int)Wp ? g->inW : (int)Wp - g->padLeft;   // input columns in the window
    for (size_t r = 0; r < rows; r++) {
        v8 *row = P + r * Wp;
        const int ih = (int)(r0 + r) - g->padTop;
        if (ih < 0 || ih >= g->inH || cols <= 0) {
            for (size_t q = 0; q < Wp; q++) row[q] = splat(0);
            continue;
        }
        for (int q = 0; q < g->padLeft && q < (int)Wp; q++) row[q] = splat(0);
        for (size_t q = (size_t)(g->padLeft + cols); q < Wp; q++) row[q] = splat(0);
        const float *s = src + (size_t)ih * g->inW;
        v8 *d = row + g->padLeft;
        if (lanes == 8 && cols >= 8) {
            for (int iw = 0; iw < cols; iw += 8) {
                const int at = iw + 8 <= cols ? iw : cols - 8;
                v8 in[8], out[8];
                for (int l = 0; l < 8; l++) in[l] = *(const v8u *)(s + (size_t)l * plane + at);
                transpose8(in, out);
                for (int j = 0; j < 8; j++) d[at + j] = out[j];
            }
        } else if (lanes == 8 && plane >= 8) {
            const ptrdiff_t first = -(ptrdiff_t)ih * g->inW, want = (ptrdiff_t)cols - 8;
            const ptrdiff_t at = want < first ? first : want;
            v8 in[8], out[8];
            for (int l = 0; l < 8; l++) in[l] = *(const v8u *)(s + (ptrdiff_t)((size_t)l * plane) + at);
            transpose8(in, out);
            for (int j = 0; j < 8; j++)
                if (at + j >= 0 && at + j < cols) d[at + j] = out[j];
        } else {
            for (int iw = 0; iw < cols; iw++) {
                v8 value = splat(0);
                for (int l = 0; l < lanes; l++) value[l] = s[(size_t)l * plane + iw];
                d[iw] = value;
            }
        }
    }
}

// Output rows oh0 ..< oh1 of 8 filters (the first `lanes` real) from O (row oh at O + (oh - oh0)
// * OWp, lane l = filter l, at least 8 readable vectors past each row's outW) to y (the first
// filter's plane): 8 columns per transpose, a row's last < 8 by a 4-wide and single stores.
static inline __attribute__((always_inline)) void store_rows(const manet_winograd_geometry *g, const v8 *O, size_t OWp, size_t oh0,
                                                             size_t oh1, int lanes, float *y) {
    const size_t outPlane = (size_t)g->outH * g->outW;
    for (size_t oh = oh0; oh < oh1; oh++) {
        const v8 *row = O + (oh - oh0) * OWp;
        float *dst = y + oh * g->outW;
        if (lanes < 8) {
            for (int l = 0; l < lanes; l++)
                for (int ow = 0; ow < g->outW; ow++) dst[(size_t)l * outPlane + ow] = row[ow][l];
            continue;
        }
        for (int ow = 0; ow < g->outW; ow += 8) {
            const int n = g->outW - ow < 8 ? g->outW - ow : 8;
            v8 out[8];
            transpose8(row + ow, out);
            for (int l = 0; l < 8; l++) {
                float *to = dst + (size_t)l * outPlane + ow;
                if (n == 8) {
                    *(v8u *)to = out[l];
                } else {
                    int k = 0;
                    if (n >= 4) *(v4u *)to = __builtin_shufflevector(out[l], out[l], 0, 1, 2, 3), k = 4;
                    for (; k < n; k++) to[k] = out[l][k];
                }
            }
        }
    }
}

size_t manet_winograd_input_scratch(const manet_winograd_geometry *g) {
    return (size_t)(g->tilesH * g->m + 2) * (size_t)(g->tilesW * g->m + 2) * 8;
}

size_t manet_winograd_output_scratch(const manet_winograd_geometry *g) {
    return (size_t)(g->tilesH * g->m) * (size_t)(g->tilesW * g->m) * 8 + 64;   // + 8 vectors read past the last row (store_rows)
}

static inline __attribute__((always_inline)) void manet_winograd_input_body(const manet_winograd_geometry *g, const float *x, size_t begin, size_t end,
                          float *v, size_t pointStride, size_t channelBlock, float *scratch) {
    const int m = g->m, a = m + 2, C = g->channels;
    const size_t Hp = (size_t)g->tilesH * m + 2, Wp = (size_t)g->tilesW * m + 2;
    const size_t blocks = ((size_t)C + 7) / 8, plane = (size_t)g->inH * g->inW;
    const size_t perImage = (size_t)g->tilesH * g->tilesW;
    v8 *P = (v8 *)scratch;   // the zero-padded window of 8 channels, [Hp][Wp] vectors
    for (size_t item = begin; item < end; item++) {
        const size_t n = item / blocks;
        const int c0 = (int)(item % blocks) * 8, lanes = C - c0 < 8 ? C - c0 : 8;
        gather_window(g, x + (n * C + c0) * plane, lanes, 0, Hp, Wp, P);
        for (int th = 0; th < g->tilesH; th++) {
            for (int tw = 0; tw < g->tilesW; tw++) {
                const v8 *base = P + (size_t)th * m * Wp + (size_t)tw * m;
                v8 t[36], o[36];
                if (m == 2) {
                    for (int q = 0; q < 4; q++) input_f2(base + q, Wp, t + q, 4);   // along H
                    for (int r = 0; r < 4; r++) input_f2(t + r * 4, 1, o + r * 4, 1);  // along W
                } else {
                    for (int q = 0; q < 6; q++) input_f4(base + q, Wp, t + q, 6);
                    for (int r = 0; r < 6; r++) input_f4(t + r * 6, 1, o + r * 6, 1);
                }
                // v[c0 / cb][p][tile][c0 % cb]: with cb = C, v[p][tile][C].
                const size_t cb = channelBlock;
                float *dst = v + (size_t)c0 / cb * (size_t)(a * a) * pointStride
                    + (n * perImage + (size_t)th * g->tilesW + tw) * cb + (size_t)c0 % cb;
                if (lanes == 8) {
                    for (int p = 0; p < a * a; p++) *(v8u *)(dst + p * pointStride) = o[p];
                } else {
                    for (int p = 0; p < a * a; p++)
                        for (int l = 0; l < lanes; l++) dst[p * pointStride + l] = o[p][l];
                }
            }
        }
    }
}

static inline __attribute__((always_inline)) void manet_winograd_output_body(const manet_winograd_geometry *g, const float *r, size_t pointStride, size_t tileStride,
                           size_t firstFilter, const float *bias, int relu, size_t begin, size_t end, float *y,
                           float *scratch) {
    const int m = g->m, a = m + 2, M = g->filters;
    const size_t blocks = ((size_t)M + 7) / 8, outPlane = (size_t)g->outH * g->outW;
    const size_t perImage = (size_t)g->tilesH * g->tilesW, OWp = (size_t)g->tilesW * m;
    v8 *O = (v8 *)scratch;   // this block's outputs, [tilesH*m][tilesW*m] vectors
    for (size_t item = begin; item < end; item++) {
        const size_t n = item / blocks;
        const int m0 = (int)(item % blocks) * 8, lanes = M - m0 < 8 ? M - m0 : 8;
        v8 b = splat(0);
        if (bias)
            for (int l = 0; l < lanes; l++) b[l] = bias[m0 + l];
        for (int th = 0; th < g->tilesH; th++) {
            for (int tw = 0; tw < g->tilesW; tw++) {
                const float *src = r + (n * perImage + (size_t)th * g->tilesW + tw) * tileStride + (m0 - firstFilter);
                v8 s[36], t[24], o[16];
                if (lanes == 8) {
                    for (int p = 0; p < a * a; p++) s[p] = *(const v8u *)(src + p * pointStride);
                } else {
                    for (int p = 0; p < a * a; p++) {
                        s[p] = splat(0);
                        for (int l = 0; l < lanes; l++) s[p][l] = src[p * pointStride + l];
                    }
                }
                if (m == 2) {
                    for (int q = 0; q < 4; q++) output_f2(s + q, 4, t + q, 4);        // along H
                    for (int i = 0; i < 2; i++) output_f2(t + i * 4, 1, o + i * 2, 1);  // along W
                } else {
                    for (int q = 0; q < 6; q++) output_f4(s + q, 6, t + q, 6);
                    for (int i = 0; i < 4; i++) output_f4(t + i * 6, 1, o + i * 4, 1);
                }
                for (int i = 0; i < m; i++) {
                    v8 *dst = O + ((size_t)th * m + i) * OWp + (size_t)tw * m;
                    for (int j = 0; j < m; j++) {
                        v8 value = o[i * m + j] + b;
                        if (relu) value = (v8)((v8i)value & ~(v8i)(value < splat(0)));   // NaN stays NaN
                        dst[j] = value;
                    }
                }
            }
        }
        store_rows(g, O, OWp, 0, (size_t)g->outH, lanes, y + (n * M + m0) * outPlane);
    }
}

// ---- bands of tile rows ---------------------------------------------------------------------

size_t manet_winograd_band_input_scratch(const manet_winograd_geometry *g, size_t bandRows) {
    return (bandRows * (size_t)g->m + 2) * ((size_t)g->tilesW * g->m + 2) * 8;
}

size_t manet_winograd_band_output_scratch(const manet_winograd_geometry *g, size_t bandRows) {
    return bandRows * (size_t)g->m * ((size_t)g->tilesW * g->m) * 8 + 64;
}

// The input transform of tile rows th0 ..< th1 of one image (x: the image's [C, H, W]), every
// channel: v[p * pointStride + ((th - th0) * tilesW + tw) * C + c]. The same operations per tile
// as manet_winograd_input_body, so the same bits. The band's window rows are gathered 8 channels
// by 8 columns at a time (8 row loads, one transpose) instead of one float at a time.
static inline __attribute__((always_inline)) void manet_winograd_band_input_body(const manet_winograd_geometry *g, const float *x, size_t th0,
                                                                                 size_t th1, float *v, size_t pointStride, float *scratch) {
    const int m = g->m, a = m + 2, C = g->channels;
    const size_t Wp = (size_t)g->tilesW * m + 2, rows = (th1 - th0) * (size_t)m + 2;
    const size_t plane = (size_t)g->inH * g->inW;
    v8 *P = (v8 *)scratch;   // the band's zero-padded window of 8 channels, [rows][Wp] vectors
    for (int c0 = 0; c0 < C; c0 += 8) {
        const int lanes = C - c0 < 8 ? C - c0 : 8;
        gather_window(g, x + (size_t)c0 * plane, lanes, th0 * (size_t)m, rows, Wp, P);
        for (size_t th = th0; th < th1; th++) {
            for (int tw = 0; tw < g->tilesW; tw++) {
                const v8 *base = P + (th - th0) * m * Wp + (size_t)tw * m;
                v8 t[36], o[36];
                if (m == 2) {
                    for (int q = 0; q < 4; q++) input_f2(base + q, Wp, t + q, 4);
                    for (int r = 0; r < 4; r++) input_f2(t + r * 4, 1, o + r * 4, 1);
                } else {
                    for (int q = 0; q < 6; q++) input_f4(base + q, Wp, t + q, 6);
                    for (int r = 0; r < 6; r++) input_f4(t + r * 6, 1, o + r * 6, 1);
                }
                float *dst = v + ((th - th0) * g->tilesW + tw) * (size_t)C + c0;
                if (lanes == 8) {
                    for (int p = 0; p < a * a; p++) *(v8u *)(dst + p * pointStride) = o[p];
                } else {
                    for (int p = 0; p < a * a; p++)
                        for (int l = 0; l < lanes; l++) dst[p * pointStride + l] = o[p][l];
                }
            }
        }
    }
}

// The output transform of tile rows th0 ..< th1 of one image (y: the image's [M, outH, outW]),
// every filter (M a multiple of 8), from r in 16-filter blocks: filter f of the band's tile t at
// point p is r[p * pointStride + (f / 16) * blockStride + t * 16 + f % 16]. The same operations
// per tile as manet_winograd_output_body (bias, then ReLU), rows stored 8 columns at a time
// through one transpose.
static inline __attribute__((always_inline)) void manet_winograd_band_output_body(const manet_winograd_geometry *g, const float *r, size_t pointStride,
                                                                                  size_t blockStride, const float *bias, int relu, size_t th0,
                                                                                  size_t th1, float *y, float *scratch) {
    const int m = g->m, a = m + 2, M = g->filters;
    const size_t outPlane = (size_t)g->outH * g->outW, OWp = (size_t)g->tilesW * m;
    const size_t ohEnd = th1 * (size_t)m < (size_t)g->outH ? th1 * (size_t)m : (size_t)g->outH;
    v8 *O = (v8 *)scratch;   // the band's outputs of 8 filters, [rows][OWp] vectors
    for (int m0 = 0; m0 < M; m0 += 8) {
        const v8 b = bias ? *(const v8u *)(bias + m0) : splat(0);
        const float *block = r + (size_t)(m0 / 16) * blockStride + m0 % 16;
        for (size_t th = th0; th < th1; th++) {
            for (int tw = 0; tw < g->tilesW; tw++) {
                const float *src = block + ((th - th0) * g->tilesW + tw) * 16;
                v8 s[36], t[24], o[16];
                for (int p = 0; p < a * a; p++) s[p] = *(const v8u *)(src + p * pointStride);
                if (m == 2) {
                    for (int q = 0; q < 4; q++) output_f2(s + q, 4, t + q, 4);
                    for (int i = 0; i < 2; i++) output_f2(t + i * 4, 1, o + i * 2, 1);
                } else {
                    for (int q = 0; q < 6; q++) output_f4(s + q, 6, t + q, 6);
                    for (int i = 0; i < 4; i++) output_f4(t + i * 6, 1, o + i * 4, 1);
                }
                for (int i = 0; i < m; i++) {
                    v8 *dst = O + ((th - th0) * m + i) * OWp + (size_t)tw * m;
                    for (int j = 0; j < m; j++) {
                        v8 value = o[i * m + j] + b;
                        if (relu) value = (v8)((v8i)value & ~(v8i)(value < splat(0)));   // NaN stays NaN
                        dst[j] = value;
                    }
                }
            }
        }
        store_rows(g, O, OWp, th0 * (size_t)m, ohEnd, 8, y + (size_t)m0 * outPlane);
    }
}

// ---- variants -------------------------------------------------------------------------------

// Each transform's body compiled three times (AVX-512, AVX2, baseline x86-64); the public
// function runs the one `isa` resolves to (manet_isa_resolve) and counts it (manet_variant_runs).

#if defined(__x86_64__)
static __attribute__((target("avx512f"))) void manet_winograd_filter_avx512(int m, const float *w, size_t begin, size_t end, float *u, size_t pointStride) { manet_winograd_filter_body(m, w, begin, end, u, pointStride); }
static __attribute__((target("avx2"))) void manet_winograd_filter_avx2(int m, const float *w, size_t begin, size_t end, float *u, size_t pointStride) { manet_winograd_filter_body(m, w, begin, end, u, pointStride); }
#endif
void manet_winograd_filter(int isa, int m, const float *w, size_t begin, size_t end, float *u, size_t pointStride) {
    const int variant = manet_isa_resolve(isa);
    manet_note_variant(variant);
    switch (variant) {
#if defined(__x86_64__)
    case MANET_ISA_AVX512: manet_winograd_filter_avx512(m, w, begin, end, u, pointStride); return;
    case MANET_ISA_AVX2: manet_winograd_filter_avx2(m, w, begin, end, u, pointStride); return;
#endif
    default: manet_winograd_filter_body(m, w, begin, end, u, pointStride); return;
    }
}

#if defined(__x86_64__)
static __attribute__((target("avx512f"))) void manet_winograd_filter_packed_avx512(int m, const float *w, size_t channels, size_t begin, size_t end, float *u, size_t pointStride) { manet_winograd_filter_packed_body(m, w, channels, begin, end, u, pointStride); }
static __attribute__((target("avx2"))) void manet_winograd_filter_packed_avx2(int m, const float *w, size_t channels, size_t begin, size_t end, float *u, size_t pointStride) { manet_winograd_filter_packed_body(m, w, channels, begin, end, u, pointStride); }
#endif
void manet_winograd_filter_packed(int isa, int m, const float *w, size_t channels, size_t begin, size_t end, float *u, size_t pointStride) {
    const int variant = manet_isa_resolve(isa);
    manet_note_variant(variant);
    switch (variant) {
#if defined(__x86_64__)
    case MANET_ISA_AVX512: manet_winograd_filter_packed_avx512(m, w, channels, begin, end, u, pointStride); return;
    case MANET_ISA_AVX2: manet_winograd_filter_packed_avx2(m, w, channels, begin, end, u, pointStride); return;
#endif
    default: manet_winograd_filter_packed_body(m, w, channels, begin, end, u, pointStride); return;
    }
}

#if defined(__x86_64__)
static __attribute__((target("avx512f"))) void manet_winograd_filter_packed_blocks_avx512(int m, const float *w, size_t filters, size_t channels, size_t begin, size_t end, float *u, size_t pointStride) { manet_winograd_filter_packed_blocks_body(m, w, filters, channels, begin, end, u, pointStride); }
static __attribute__((target("avx2"))) void manet_winograd_filter_packed_blocks_avx2(int m, const float *w, size_t filters, size_t channels, size_t begin, size_t end, float *u, size_t pointStride) { manet_winograd_filter_packed_blocks_body(m, w, filters, channels, begin, end, u, pointStride); }
#endif
void manet_winograd_filter_packed_blocks(int isa, int m, const float *w, size_t filters, size_t channels, size_t begin, size_t end, float *u, size_t pointStride) {
    const int variant = manet_isa_resolve(isa);
    manet_note_variant(variant);
    switch (variant) {
#if defined(__x86_64__)
    case MANET_ISA_AVX512: manet_winograd_filter_packed_blocks_avx512(m, w, filters, channels, begin, end, u, pointStride); return;
    case MANET_ISA_AVX2: manet_winograd_filter_packed_blocks_avx2(m, w, filters, channels, begin, end, u, pointStride); return;
#endif
    default: manet_winograd_filter_packed_blocks_body(m, w, filters, channels, begin, end, u, pointStride); return;
    }
}

#if defined(__x86_64__)
static __attribute__((target("avx512f"))) void manet_winograd_filter_block_avx512(int m, const float *w, size_t channels, size_t block, float *u) { manet_winograd_filter_block_body(m, w, channels, block, u); }
static __attribute__((target("avx2"))) void manet_winograd_filter_block_avx2(int m, const float *w, size_t channels, size_t block, float *u) { manet_winograd_filter_block_body(m, w, channels, block, u); }
#endif
void manet_winograd_filter_block(int isa, int m, const float *w, size_t channels, size_t block, float *u) {
    const int variant = manet_isa_resolve(isa);
    manet_note_variant(variant);
    switch (variant) {
#if defined(__x86_64__)
    case MANET_ISA_AVX512: manet_winograd_filter_block_avx512(m, w, channels, block, u); return;
    case MANET_ISA_AVX2: manet_winograd_filter_block_avx2(m, w, channels, block, u); return;
#endif
    default: manet_winograd_filter_block_body(m, w, channels, block, u); return;
    }
}

#if defined(__x86_64__)
static __attribute__((target("avx512f"))) void manet_winograd_filter_channels_avx512(int m, const float *w, size_t channels, size_t block, size_t begin, size_t end, float *u, size_t pointStride) { manet_winograd_filter_channels_body(m, w, channels, block, begin, end, u, pointStride); }
static __attribute__((target("avx2"))) void manet_winograd_filter_channels_avx2(int m, const float *w, size_t channels, size_t block, size_t begin, size_t end, float *u, size_t pointStride) { manet_winograd_filter_channels_body(m, w, channels, block, begin, end, u, pointStride); }
#endif
void manet_winograd_filter_channels(int isa, int m, const float *w, size_t channels, size_t block, size_t begin, size_t end, float *u, size_t pointStride) {
    const int variant = manet_isa_resolve(isa);
    manet_note_variant(variant);
    switch (variant) {
#if defined(__x86_64__)
    case MANET_ISA_AVX512: manet_winograd_filter_channels_avx512(m, w, channels, block, begin, end, u, pointStride); return;
    case MANET_ISA_AVX2: manet_winograd_filter_channels_avx2(m, w, channels, block, begin, end, u, pointStride); return;
#endif
    default: manet_winograd_filter_channels_body(m, w, channels, block, begin, end, u, pointStride); return;
    }
}

#if defined(__x86_64__)
static __attribute__((target("avx512f"))) void manet_winograd_input_avx512(const manet_winograd_geometry *g, const float *x, size_t begin, size_t end, float *v, size_t pointStride, size_t channelBlock, float *scratch) { manet_winograd_input_body(g, x, begin, end, v, pointStride, channelBlock, scratch); }
static __attribute__((target("avx2"))) void manet_winograd_input_avx2(const manet_winograd_geometry *g, const float *x, size_t begin, size_t end, float *v, size_t pointStride, size_t channelBlock, float *scratch) { manet_winograd_input_body(g, x, begin, end, v, pointStride, channelBlock, scratch); }
#endif
void manet_winograd_input(int isa, const manet_winograd_geometry *g, const float *x, size_t begin, size_t end, float *v, size_t pointStride, size_t channelBlock, float *scratch) {
    const int variant = manet_isa_resolve(isa);
    manet_note_variant(variant);
    switch (variant) {
#if defined(__x86_64__)
    case MANET_ISA_AVX512: manet_winograd_input_avx512(g, x, begin, end, v, pointStride, channelBlock, scratch); return;
    case MANET_ISA_AVX2: manet_winograd_input_avx2(g, x, begin, end, v, pointStride, channelBlock, scratch); return;
#endif
    default: manet_winograd_input_body(g, x, begin, end, v, pointStride, channelBlock, scratch); return;
    }
}

#if defined(__x86_64__)
static __attribute__((target("avx512f"))) void manet_winograd_output_avx512(const manet_winograd_geometry *g, const float *r, size_t pointStride, size_t tileStride, size_t firstFilter, const float *bias, int relu, size_t begin, size_t end, float *y, float *scratch) { manet_winograd_output_body(g, r, pointStride, tileStride, firstFilter, bias, relu, begin, end, y, scratch); }
static __attribute__((target("avx2"))) void manet_winograd_output_avx2(const manet_winograd_geometry *g, const float *r, size_t pointStride, size_t tileStride, size_t firstFilter, const float *bias, int relu, size_t begin, size_t end, float *y, float *scratch) { manet_winograd_output_body(g, r, pointStride, tileStride, firstFilter, bias, relu, begin, end, y, scratch); }
#endif
void manet_winograd_output(int isa, const manet_winograd_geometry *g, const float *r, size_t pointStride, size_t tileStride, size_t firstFilter, const float *bias, int relu, size_t begin, size_t end, float *y, float *scratch) {
    const int variant = manet_isa_resolve(isa);
    manet_note_variant(variant);
    switch (variant) {
#if defined(__x86_64__)
    case MANET_ISA_AVX512: manet_winograd_output_avx512(g, r, pointStride, tileStride, firstFilter, bias, relu, begin, end, y, scratch); return;
    case MANET_ISA_AVX2: manet_winograd_output_avx2(g, r, pointStride, tileStride, firstFilter, bias, relu, begin, end, y, scratch); return;
#endif
    default: manet_winograd_output_body(g, r, pointStride, tileStride, firstFilter, bias, relu, begin, end, y, scratch); return;
    }
}

#if defined(__x86_64__)
static __attribute__((target("avx512f"))) void manet_winograd_band_input_avx512(const manet_winograd_geometry *g, const float *x, size_t th0, size_t th1, float *v, size_t pointStride, float *scratch) { manet_winograd_band_input_body(g, x, th0, th1, v, pointStride, scratch); }
static __attribute__((target("avx2"))) void manet_winograd_band_input_avx2(const manet_winograd_geometry *g, const float *x, size_t th0, size_t th1, float *v, size_t pointStride, float *scratch) { manet_winograd_band_input_body(g, x, th0, th1, v, pointStride, scratch); }
#endif
void manet_winograd_band_input(int isa, const manet_winograd_geometry *g, const float *x, size_t th0, size_t th1, float *v, size_t pointStride, float *scratch) {
    const int variant = manet_isa_resolve(isa);
    manet_note_variant(variant);
    switch (variant) {
#if defined(__x86_64__)
    case MANET_ISA_AVX512: manet_winograd_band_input_avx512(g, x, th0, th1, v, pointStride, scratch); return;
    case MANET_ISA_AVX2: manet_winograd_band_input_avx2(g, x, th0, th1, v, pointStride, scratch); return;
#endif
    default: manet_winograd_band_input_body(g, x, th0, th1, v, pointStride, scratch); return;
    }
}

#if defined(__x86_64__)
static __attribute__((target("avx512f"))) void manet_winograd_band_output_avx512(const manet_winograd_geometry *g, const float *r, size_t pointStride, size_t blockStride, const float *bias, int relu, size_t th0, size_t th1, float *y, float *scratch) { manet_winograd_band_output_body(g, r, pointStride, blockStride, bias, relu, th0, th1, y, scratch); }
static __attribute__((target("avx2"))) void manet_winograd_band_output_avx2(const manet_winograd_geometry *g, const float *r, size_t pointStride, size_t blockStride, const float *bias, int relu, size_t th0, size_t th1, float *y, float *scratch) { manet_winograd_band_output_body(g, r, pointStride, blockStride, bias, relu, th0, th1, y, scratch); }
#endif
void manet_winograd_band_output(int isa, const manet_winograd_geometry *g, const float *r, size_t pointStride, size_t blockStride, const float *bias, int relu, size_t th0, size_t th1, float *y, float *scratch) {
    const int variant = manet_isa_resolve(isa);
    manet_note_variant(variant);
    switch (variant) {
#if defined(__x86_64__)
    case MANET_ISA_AVX512: manet_winograd_band_output_avx512(g, r, pointStride, blockStride, bias, relu, th0, th1, y, scratch); return;
    case MANET_ISA_AVX2: manet_winograd_band_output_avx2(g, r, pointStride, blockStride, bias, relu, th0, th1, y, scratch); return;
#endif
    default: manet_winograd_band_output_body(g, r, pointStride, blockStride, bias, relu, th0, th1, y, scratch); return;
    }
}
