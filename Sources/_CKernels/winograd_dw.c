// Winograd F(3x3,2x2) transforms for the weight gradient (see winograd_dw.h). Each plane is first
// copied into a zero-bordered scratch plane, so the transforms run branch-free over a row of tiles
// (the compiler vectorises along the row); compiled for AVX-512, AVX2 and baseline x86-64, the
// CPU's best picked at load time, with FMA contraction off so every clone gives the same bits.
//
// 1-D transforms, d (4) -> B^T d, g (2) -> G g, s (4) -> A^T s:
//   B^T d = (d0 - d2, d1 + d2, d2 - d1, d3 - d1)
//   G g   = (g0, (g0 + g1) / 2, (g0 - g1) / 2, g1)
//   A^T s = (s0 + s1 + s2, s1 - s2, s1 + s2 + s3)
// so that A^T [(G g) . (B^T d)] = (g0 d0 + g1 d1, g0 d1 + g1 d2, g0 d2 + g1 d3).

#include "winograd_dw.h"
#include "vector8.h"
#include "sgemm.h"

#include <stdlib.h>
#include <string.h>

#pragma clang fp contract(off)

// plane (ph x pw) = the inH x inW input shifted by (padTop, padLeft), zero elsewhere; the rows
// and columns that fall outside the plane are dropped (the input transforms of both tiles).
static inline void bordered_plane(float *plane, size_t ph, size_t pw, const float *src, int inH, int inW,
                                  int padTop, int padLeft) {
    memset(plane, 0, ph * pw * sizeof(float));
    for (int r = 0; r < inH; r++) {
        const int pr = r + padTop;
        if (pr < 0 || (size_t)pr >= ph) continue;
        const int q0 = padLeft < 0 ? -padLeft : 0;
        int q1 = inW;
        if ((size_t)(q1 + padLeft) > pw) q1 = (int)pw - padLeft;
        if (q1 > q0) memcpy(plane + (size_t)pr * pw + q0 + padLeft, src + (size_t)r * inW + q0, (size_t)(q1 - q0) * sizeof(float));
    }
}

MULTIVERSION
int manet_wdw_input(const float *x, size_t channels, size_t begin, size_t end, int inH, int inW, int outH, int outW,
                    int padTop, int padLeft, size_t tiles, float *v) {
    const int th = (outH + 1) / 2, tw = (outW + 1) / 2;
    const size_t pw = 2 * (size_t)tw + 2, ph = 2 * (size_t)th + 2, pointStride = channels * tiles;
    // The bordered plane (ph x pw), then per row of tiles the 4 rows' horizontal transforms
    // (h[r][q][tx]: row r of the patch, point q).
    float *plane = malloc((ph * pw + 16 * (size_t)tw) * sizeof(float));
    if (!plane) return -1;
    float *h = plane + ph * pw;
    for (size_t item = begin; item < end; item++) {
        const size_t img = item / channels, c = item % channels;
        const float *src = x + item * (size_t)inH * inW;
        bordered_plane(plane, ph, pw, src, inH, inW, padTop, padLeft);
        float *out = v + c * tiles + img * (size_t)th * tw;
        for (int ty = 0; ty < th; ty++) {
            for (int r = 0; r < 4; r++) {
                const float *row = plane + (size_t)(2 * ty + r) * pw;
                float *h0 = h + (size_t)(r * 4) * tw, *h1 = h0 + tw, *h2 = h1 + tw, *h3 = h2 + tw;
                for (int tx = 0; tx < tw; tx++) {
                    const float d0 = row[2 * tx], d1 = row[2 * tx + 1], d2 = row[2 * tx + 2], d3 = row[2 * tx + 3];
                    h0[tx] = d0 - d2;
                    h1[tx] = d1 + d2;
                    h2[tx] = d2 - d1;
                    h3[tx] = d3 - d1;
                }
            }
            for (int q = 0; q < 4; q++) {
                const float *a0 = h + (size_t)q * tw, *a1 = a0 + 4 * (size_t)tw, *a2 = a1 + 4 * (size_t)tw,
                            *a3 = a2 + 4 * (size_t)tw;
                float *o0 = out + (size_t)q * pointStride + (size_t)ty * tw;
                float *o1 = o0 + 4 * pointStride, *o2 = o1 + 4 * pointStride, *o3 = o2 + 4 * pointStride;
                for (int tx = 0; tx < tw; tx++) {
                    o0[tx] = a0[tx] - a2[tx];
                    o1[tx] = a1[tx] + a2[tx];
                    o2[tx] = a2[tx] - a1[tx];
                    o3[tx] = a3[tx] - a1[tx];
                }
            }
        }
    }
    free(plane);
    return 0;
}

MULTIVERSION
int manet_wdw_gradient(const float *dy, size_t filters, size_t begin, size_t end, int outH, int outW, size_t tiles,
                       float *u) {
    const int th = (outH + 1) / 2, tw = (outW + 1) / 2;
    const size_t pw = 2 * (size_t)tw, ph = 2 * (size_t)th, pointStride = filters * tiles;
    float *plane = malloc((ph * pw + 8 * (size_t)tw) * sizeof(float));
    if (!plane) return -1;
    float *h = plane + ph * pw;
    for (size_t item = begin; item < end; item++) {
        const size_t img = item / filters, m = item % filters;
        const float *src = dy + item * (size_t)outH * outW;
        memset(plane, 0, ph * pw * sizeof(float));
        for (int r = 0; r < outH; r++) memcpy(plane + (size_t)r * pw, src + (size_t)r * outW, (size_t)outW * sizeof(float));
        float *out = u + m * tiles + img * (size_t)th * tw;
        for (int ty = 0; ty < th; ty++) {
            for (int r = 0; r < 2; r++) {
                const float *row = plane + (size_t)(2 * ty + r) * pw;
                float *h0 = h + (size_t)(r * 4) * tw, *h1 = h0 + tw, *h2 = h1 + tw, *h3 = h2 + tw;
                for (int tx = 0; tx < tw; tx++) {
                    const float g0 = row[2 * tx], g1 = row[2 * tx + 1];
                    h0[tx] = g0;
                    h1[tx] = (g0 + g1) * 0.5f;
                    h2[tx] = (g0 - g1) * 0.5f;
                    h3[tx] = g1;
                }
            }
            for (int q = 0; q < 4; q++) {
                const float *a0 = h + (size_t)q * tw, *a1 = a0 + 4 * (size_t)tw;
                float *o0 = out + (size_t)q * pointStride + (size_t)ty * tw;
                float *o1 = o0 + 4 * pointStride, *o2 = o1 + 4 * pointStride, *o3 = o2 + 4 * pointStride;
                for (int tx = 0; tx < tw; tx++) {
                    o0[tx] = a0[tx];
                    o1[tx] = (a0[tx] + a1[tx]) * 0.5f;
                    o2[tx] = (a0[tx] - a1[tx]) * 0.5f;
                    o3[tx] = a1[tx];
                }
            }
        }
    }
    free(plane);
    return 0;
}

MULTIVERSION
void manet_wdw_output(const float *s, size_t filters, size_t channels, size_t m0, size_t m1, float *dw) {
    const size_t ps = filters * channels;
    for (size_t m = m0; m < m1; m++) {
        for (size_t c = 0; c < channels; c++) {
            const float *p = s + m * channels + c;
            float t[3][4];   // A^T S: rows u, columns q
            for (int q = 0; q < 4; q++) {
                const float s0 = p[q * ps], s1 = p[(4 + q) * ps], s2 = p[(8 + q) * ps], s3 = p[(12 + q) * ps];
                t[0][q] = s0 + s1 + s2;
                t[1][q] = s1 - s2;
                t[2][q] = s1 + s2 + s3;
            }
            float *o = dw + (m * channels + c) * 9;
            for (int r = 0; r < 3; r++) {
                o[r * 3] = t[r][0] + t[r][1] + t[r][2];
                o[r * 3 + 1] = t[r][1] - t[r][2];
                o[r * 3 + 2] = t[r][1] + t[r][2] + t[r][3];
            }
        }
    }
}

// F(3x3,4x4) (see winograd_dw.h): 6 x 6 input patches, 4 x 4 tiles of dY, 36 points. 1-D:
//   B^T d = (4 d0 - 5 d2 + d4, -4 d1 - 4 d2 + d3 + d4, 4 d1 - 4 d2 - d3 + d4,
//            -2 d1 - d2 + 2 d3 + d4, 2 d1 - d2 - 2 d3 + d4, 4 d1 - 5 d3 + d5)
//   G g   = (g0 / 4, -(g0 + g1 + g2 + g3) / 6, -(g0 - g1 + g2 - g3) / 6,
//            (g0 + 2 g1 + 4 g2 + 8 g3) / 24, (g0 - 2 g1 + 4 g2 - 8 g3) / 24, g3)
//   A^T s = (s0 + s1 + s2 + s3 + s4, s1 - s2 + 2 (s3 - s4), s1 + s2 + 4 (s3 + s4) + s5)
// (points 0, 1, -1, 2, -2 and infinity: the B^T of F(4x4,3x3), whose transpose this is).

static inline void wdw4_bt(const float d[6], float b[6]) {
    b[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    b[1] = -4.0f * (d[1] + d[2]) + (d[3] + d[4]);
    b[2] = 4.0f * (d[1] - d[2]) + (d[4] - d[3]);
    b[3] = 2.0f * (d[3] - d[1]) + (d[4] - d[2]);
    b[4] = 2.0f * (d[1] - d[3]) + (d[4] - d[2]);
    b[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

static inline void wdw4_g(const float g[4], float q[6]) {
    const float even = g[0] + g[2], odd = g[1] + g[3];
    const float even4 = g[0] + 4.0f * g[2], odd4 = 2.0f * g[1] + 8.0f * g[3];
    q[0] = g[0] * 0.25f;
    q[1] = -(even + odd) / 6.0f;
    q[2] = -(even - odd) / 6.0f;
    q[3] = (even4 + odd4) / 24.0f;
    q[4] = (even4 - odd4) / 24.0f;
    q[5] = g[3];
}

size_t manet_wdw4_point_floats(size_t width, size_t tiles) { return width * tiles + 16; }

size_t manet_wdw4_panel_floats(size_t count, size_t width, size_t tiles) {
    return (count + width - 1) / width * 36 * manet_wdw4_point_floats(width, tiles);
}

// Where plane `c` of image `img` (perImage tiles each) starts: its group, lane, first tile.
static inline size_t wdw4_panel_offset(size_t c, size_t img, size_t perImage, size_t width, size_t tiles) {
    return (c / width) * 36 * manet_wdw4_point_floats(width, tiles) + c % width + img * perImage * width;
}

MULTIVERSION
int manet_wdw4_input(const float *x, size_t channels, size_t begin, size_t end, int inH, int inW, int outH, int outW,
                     int padTop, int padLeft, size_t tiles, size_t width, float *v) {
    const int th = (outH + 3) / 4, tw = (outW + 3) / 4;
    const size_t pw = 4 * (size_t)tw + 2, ph = 4 * (size_t)th + 2;
    const size_t pointStride = manet_wdw4_point_floats(width, tiles);
    float *plane = malloc(ph * pw * sizeof(float));
    if (!plane) return -1;
    for (size_t item = begin; item < end; item++) {
        const size_t img = item / channels, c = item % channels;
        const float *src = x + item * (size_t)inH * inW;
        bordered_plane(plane, ph, pw, src, inH, inW, padTop, padLeft);
        float *out = v + wdw4_panel_offset(c, img, (size_t)th * tw, width, tiles);
        for (int ty = 0; ty < th; ty++) {
            for (int tx = 0; tx < tw; tx++) {
                float h[6][6];   // h[r][q]: row r of the patch, transformed along the row
                for (int r = 0; r < 6; r++) wdw4_bt(plane + (size_t)(4 * ty + r) * pw + 4 * tx, h[r]);
                float *o = out + ((size_t)ty * tw + tx) * width;
                for (int q = 0; q < 6; q++) {
                    const float col[6] = {h[0][q], h[1][q], h[2][q], h[3][q], h[4][q], h[5][q]};
                    float b[6];
                    wdw4_bt(col, b);
                    for (int p = 0; p < 6; p++) o[(size_t)(p * 6 + q) * pointStride] = b[p];
                }
            }
        }
    }
    free(plane);
    return 0;
}

MULTIVERSION
int manet_wdw4_gradient(const float *dy, size_t filters, size_t begin, size_t end, int outH, int outW, size_t tiles,
                        size_t width, float *u) {
    const int th = (outH + 3) / 4, tw = (outW + 3) / 4;
    const size_t pw = 4 * (size_t)tw, ph = 4 * (size_t)th;
    const size_t pointStride = manet_wdw4_point_floats(width, tiles);
    float *plane = malloc(ph * pw * sizeof(float));
    if (!plane) return -1;
    for (size_t item = begin; item < end; item++) {
        const size_t img = item / filters, m = item % filters;
        const float *src = dy + item * (size_t)outH * outW;
        memset(plane, 0, ph * pw * sizeof(float));
        for (int r = 0; r < outH; r++) memcpy(plane + (size_t)r * pw, src + (size_t)r * outW, (size_t)outW * sizeof(float));
        float *out = u + wdw4_panel_offset(m, img, (size_t)th * tw, width, tiles);
        for (int ty = 0; ty < th; ty++) {
            for (int tx = 0; tx < tw; tx++) {
                float h[4][6];   // h[r][q]: row r of the tile, transformed along the row
                for (int r = 0; r < 4; r++) wdw4_g(plane + (size_t)(4 * ty + r) * pw + 4 * tx, h[r]);
                float *o = out + ((size_t)ty * tw + tx) * width;
                for (int q = 0; q < 6; q++) {
                    const float col[4] = {h[0][q], h[1][q], h[2][q], h[3][q]};
                    float b[6];
                    wdw4_g(col, b);
                    for (int p = 0; p < 6; p++) o[(size_t)(p * 6 + q) * pointStride] = b[p];
                }
            }
        }
    }
    free(plane);
    return 0;
}

// 16 channels c0 ..< c0 + n of filter m: the loops over j run the same operations for every
// channel, so the compiler vectorises them across channels (contiguous in every point's sums)
// and a partial block gives the same bits as a full one. Writes dW, or adds to it (`accumulate`).
static inline __attribute__((always_inline)) void wdw4_output_block(const float *s, size_t ps, size_t n, int accumulate,
                                                                    float *dw) {
    float t[3][6][16];   // A^T S: rows u, columns q, channels
    for (int q = 0; q < 6; q++) {
        const float *p0 = s + q * ps, *p1 = s + (6 + q) * ps, *p2 = s + (12 + q) * ps, *p3 = s + (18 + q) * ps,
                    *p4 = s + (24 + q) * ps, *p5 = s + (30 + q) * ps;
        for (size_t j = 0; j < n; j++) {
            const float s1 = p1[j], s2 = p2[j], s3 = p3[j], s4 = p4[j];
            t[0][q][j] = p0[j] + s1 + s2 + s3 + s4;
            t[1][q][j] = (s1 - s2) + 2.0f * (s3 - s4);
            t[2][q][j] = (s1 + s2) + 4.0f * (s3 + s4) + p5[j];
        }
    }
    float o[9][16];
    for (int r = 0; r < 3; r++) {
        const float (*a)[16] = t[r];
        for (size_t j = 0; j < n; j++) {
            o[r * 3][j] = a[0][j] + a[1][j] + a[2][j] + a[3][j] + a[4][j];
            o[r * 3 + 1][j] = (a[1][j] - a[2][j]) + 2.0f * (a[3][j] - a[4][j]);
            o[r * 3 + 2][j] = (a[1][j] + a[2][j]) + 4.0f * (a[3][j] + a[4][j]) + a[5][j];
        }
    }
    // Scalar stores: vectorised, this transpose became AVX-512 scatters, slower than the sums.
    if (accumulate) {
#pragma clang loop vectorize(disable)
        for (size_t j = 0; j < n; j++) {
            for (int k = 0; k < 9; k++) dw[j * 9 + k] += o[k][j];
        }
    } else {
#pragma clang loop vectorize(disable)
        for (size_t j = 0; j < n; j++) {
            for (int k = 0; k < 9; k++) dw[j * 9 + k] = o[k][j];
        }
    }
}

// Row blocks per group: the group's 36 point sums run point by point, each point's panel of x
// (NR channels) read once from L2 and kept in L1 for the group's row blocks.
#define WDW4_GROUP 4

MULTIVERSION
int manet_wdw4_blocks(int isa, const float *u, const float *v, size_t filters, size_t channels, size_t tiles,
                      size_t b0, size_t b1, int accumulate, float *dw) {
    const size_t mr = (size_t)manet_sgemm_tile_rows(isa), nr = (size_t)manet_sgemm_tile_columns(isa);
    const size_t mBlocks = (filters + mr - 1) / mr;
    const size_t uPoint = manet_wdw4_point_floats(mr, tiles), vPoint = manet_wdw4_point_floats(nr, tiles), ps = mr * nr;
    // The 36 point sums of a group of blocks: 4 x 55 KB for AVX-512's 12 x 32, read back from L2 right away.
    float *s = aligned_alloc(64, WDW4_GROUP * 36 * ps * sizeof(float));
    if (!s) return -1;
    for (size_t b = b0; b < b1;) {
        const size_t cb = b / mBlocks, mb0 = b % mBlocks;
        size_t group = mBlocks - mb0 < WDW4_GROUP ? mBlocks - mb0 : WDW4_GROUP;
        if (b1 - b < group) group = b1 - b;
        const float *vb = v + cb * 36 * vPoint;
        for (size_t p = 0; p < 36; p++) {
            for (size_t g = 0; g < group; g++) {
                const float *ub = u + (mb0 + g) * 36 * uPoint;
                manet_sgemm_panel_tile(isa, tiles, ub + p * uPoint, vb + p * vPoint, s + (g * 36 + p) * ps, nr);
            }
        }
        const size_t c0 = cb * nr, cols = channels - c0 < nr ? channels - c0 : nr;
        for (size_t g = 0; g < group; g++) {
            const size_t m0 = (mb0 + g) * mr, rows = filters - m0 < mr ? filters - m0 : mr;
            for (size_t i = 0; i < rows; i++) {
                for (size_t j = 0; j < cols; j += 16) {
                    const size_t n = cols - j < 16 ? cols - j : 16;
                    wdw4_output_block(s + g * 36 * ps + i * nr + j, ps, n, accumulate, dw + ((m0 + i) * channels + c0 + j) * 9);
                }
            }
        }
        b += group;
    }
    free(s);
    return 0;
}
