// The weight gradient of a stride-1 3x3 convolution by Winograd F(3x3,2x2) (Lavin & Gray 2016,
// points 0, +-1) or F(3x3,4x4) (below): dW[m, c] (3 x 3) is the correlation, summed over images
// and 2 x 2 tiles of the output, of a 4 x 4 input patch with the 2 x 2 tile of dY. Per tile,
// the input patch becomes V = B^T d B and the dY tile U = G g G^T (16 points each); the sum over
// tiles is one GEMM per point, S_p[m, c] = sum_t U_p[m, t] V_p[c, t]; dW = A^T S A. 16 multiply-adds per tile and
// (m, c) instead of 36. Used by Kernels/WinogradWeightGradient.swift.
//
// F(3x3,2x2)'s layouts (t = tile index within the batch chunk, i * tilesH * tilesW + th * tilesW
// + tw for image i of the chunk; tilesH = ceil(outH / 2), tilesW = ceil(outW / 2)):
//   input transform  x [images, C, inH, inW]  ->  v[p * C * T + c * T + t]
//   dY transform     dy [images, M, outH, outW] ->  u[p * M * T + m * T + t]
//   output transform s[p * M * C + m * C + c]  ->  dW [M, C, 3, 3]
// Positions outside the input (padding) and outside dY (the partial last tile row and column)
// count as 0. Every value is one fixed sequence of float operations (no FMA contraction), so
// the result does not depend on which instruction set's clone runs.

#ifndef MANET_WINOGRAD_DW_H
#define MANET_WINOGRAD_DW_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Planes `begin ..< end` (plane i * C + c: image i, channel c) of x into v; T = images *
/// tilesH * tilesW. Returns -1 when its scratch could not be allocated, else 0.
int manet_wdw_input(const float *x, size_t channels, size_t begin, size_t end, int inH, int inW, int outH, int outW,
                    int padTop, int padLeft, size_t tiles, float *v);

/// Planes `begin ..< end` (plane i * M + m) of dy into u. Returns -1 when its scratch could not
/// be allocated, else 0.
int manet_wdw_gradient(const float *dy, size_t filters, size_t begin, size_t end, int outH, int outW, size_t tiles,
                       float *u);

/// dW rows m0 ..< m1 (every channel) from the 16 point sums s.
void manet_wdw_output(const float *s, size_t filters, size_t channels, size_t m0, size_t m1, float *dw);

/// F(3x3,4x4): 4 x 4 tiles of dY (tilesH = ceil(outH / 4), tilesW = ceil(outW / 4)), 6 x 6 input
/// patches and 36 points (p = 6 * row point + column point): 36 multiply-adds per tile and
/// (m, c) instead of 144, i.e. 2.25 per output position against F(3x3,2x2)'s 4, for about 10x
/// its rounding (points 0, +-1, +-2). MA-Net's 7x7 planes: 4 tiles per image (144 products per
/// (m, c)) against F(3x3,2x2)'s 16 (256). The transforms write the GEMM panels of
/// `manet_sgemm_panel_tile` directly: the planes in groups of `width` (the register tile's rows
/// for dY, its columns for x), each group's 36 points one after the other, each point [t][width]
/// followed by 16 unused floats (so that the points of a group do not fall on the same cache
/// sets), the last group's missing planes zeroed by the caller:
///   v[(c / width) * 36 * P + p * P + t * width + c % width], P = manet_wdw4_point_floats(width, T)
///   (the same for u with m), manet_wdw4_panel_floats(C, width, T) floats in all.
size_t manet_wdw4_point_floats(size_t width, size_t tiles);
size_t manet_wdw4_panel_floats(size_t count, size_t width, size_t tiles);
int manet_wdw4_input(const float *x, size_t channels, size_t begin, size_t end, int inH, int inW, int outH, int outW,
                     int padTop, int padLeft, size_t tiles, size_t width, float *v);
int manet_wdw4_gradient(const float *dy, size_t filters, size_t begin, size_t end, int outH, int outW, size_t tiles,
                        size_t width, float *u);

/// Blocks b0 ..< b1 of dW (block b: filters (b % mBlocks) * MR ..< + MR, channels (b / mBlocks) *
/// NR ..< + NR, MR x NR the register tile of `isa`, mBlocks = ceil(M / MR)): the block's 36
/// point sums over the T tiles (one register tile each, kept in a 55 KB scratch), then the output
/// transform straight into dW (`accumulate`: added to it). The point sums never leave the
/// cache, where one GEMM per point wrote 36 M x C matrices to memory and read them back. Every
/// element is the same float operations in every variant and split. Returns -1 when its scratch
/// could not be allocated (nothing written), else 0.
int manet_wdw4_blocks(int isa, const float *u, const float *v, size_t filters, size_t channels, size_t tiles,
                      size_t b0, size_t b1, int accumulate, float *dw);

#ifdef __cplusplus
}
#endif

#endif
