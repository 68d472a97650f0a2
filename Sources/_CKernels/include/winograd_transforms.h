// Winograd F(2x2,3x3) and F(4x4,3x3) input and output transforms, vectorised over blocks of 8
// channels (filters), for the Swift Winograd convolution in Kernels/Winograd.swift.
//
// Layouts (t = tile index within the batch chunk, n * tilesH * tilesW + th * tilesW + tw):
//   input transform  x [N, C, H, W]  ->  v[p * pointStride + t * C + c]
//   output transform r[p * pointStride + t * M + m]  ->  y [N, M, outH, outW] (+ bias, ReLU)
// so that each transform point p is one row-major [tiles, C] x [C, M] GEMM.
// Every output element is computed by one fixed sequence of float operations (no FMA
// contraction, no reassociation), whichever variant runs: each function's first argument `isa`
// (MANET_ISA_*, sgemm.h) picks it, capped at what the CPU has.

#ifndef MANET_WINOGRAD_TRANSFORMS_H
#define MANET_WINOGRAD_TRANSFORMS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Geometry shared by the input and output transforms of one convolution.
typedef struct {
    int m;                 ///< output tile side: 2 (F(2x2,3x3)) or 4 (F(4x4,3x3))
    int channels;          ///< C, input channels
    int filters;           ///< M, output channels
    int inH, inW;          ///< input plane
    int outH, outW;        ///< output plane
    int padTop, padLeft;   ///< leading zero padding
    int tilesH, tilesW;    ///< ceil(outH / m), ceil(outW / m)
} manet_winograd_geometry;

/// Filter transform u = G g G^T of filters [begin, end) of w (3x3 filters, 9 floats each, e.g.
/// the M * C filters of a [M, C, 3, 3] weight): u[p * pointStride + k] for transform point p
/// (alpha * alpha of them) and filter k. m is the output tile side, 2 or 4.
void manet_winograd_filter(int isa, int m, const float *w, size_t begin, size_t end, float *u, size_t pointStride);

/// The same for filters packed as packed_gemm.h's 16-row blocks of the [M, C * 9] matrix
/// (C = channels): filter k = m * C + c.
void manet_winograd_filter_packed(int isa, int m, const float *w, size_t channels, size_t begin, size_t end, float *u,
                                  size_t pointStride);

/// Filters packed as packed_gemm.h's 16-row blocks of [M, C * 9] (M = filters, a multiple of 16)
/// to transformed filters in the same block layout per point: u[p * pointStride + (f / 16) * C * 16
/// + c * 16 + f % 16], ready for manet_packed_gemm. Items [begin, end): item = (f / 8) * C + c.
void manet_winograd_filter_packed_blocks(int isa, int m, const float *w, size_t filters, size_t channels, size_t begin,
                                         size_t end, float *u, size_t pointStride);

/// The same for one block of 16 filters (`block`): u[p * C * 16 + c * 16 + f % 16] for every
/// point p, the block's [16, C] matrix per point as the packed-filter GEMM reads it.
void manet_winograd_filter_block(int isa, int m, const float *w, size_t channels, size_t block, float *u);

/// Channels begin ..< end of one block of 16 filters (`block`, packed layout): u[p * pointStride +
/// (c - begin) * 16 + f % 16] for every point p (manet_winograd_gemm_block's chunks).
void manet_winograd_filter_channels(int isa, int m, const float *w, size_t channels, size_t block, size_t begin, size_t end,
                                    float *u, size_t pointStride);

/// Floats of scratch one worker needs for the input transform: (tilesH*m + 2) * (tilesW*m + 2) * 8.
size_t manet_winograd_input_scratch(const manet_winograd_geometry *g);
/// Floats of scratch one worker needs for the output transform: tilesH*m * tilesW*m * 8.
size_t manet_winograd_output_scratch(const manet_winograd_geometry *g);

/// Input transform of items [begin, end), item = n * ceil(C / 8) + channel block, for the
/// images x (first image of the chunk). Writes every v element of those items, laid out in chunks
/// of `channelBlock` channels (a multiple of 8 dividing C, or C): v[c / cb][p][tile][c % cb], p's
/// stride `pointStride` (tiles * cb). With cb = C that is v[p][tile][C].
void manet_winograd_input(int isa, const manet_winograd_geometry *g, const float *x, size_t begin, size_t end,
                          float *v, size_t pointStride, size_t channelBlock, float *scratch);

/// Output transform of items [begin, end), item = n * ceil(M / 8) + filter block: y = A^T r A
/// (+ bias[m] if bias is not NULL, then max(., 0) if relu), clipped to the output plane. Filter
/// f of tile t at point p is r[p * pointStride + t * tileStride + f - firstFilter] (r[p][tile][M]:
/// tileStride M, firstFilter 0).
void manet_winograd_output(int isa, const manet_winograd_geometry *g, const float *r, size_t pointStride, size_t tileStride,
                           size_t firstFilter, const float *bias, int relu, size_t begin, size_t end, float *y,
                           float *scratch);

/// Floats of scratch one worker needs for manet_winograd_band_input / _output with bands of at
/// most `bandRows` tile rows.
size_t manet_winograd_band_input_scratch(const manet_winograd_geometry *g, size_t bandRows);
size_t manet_winograd_band_output_scratch(const manet_winograd_geometry *g, size_t bandRows);

/// Input transform of tile rows [th0, th1) of one image (x: that image's [C, H, W]), every
/// channel: v[p * pointStride + ((th - th0) * tilesW + tw) * C + c]. The same bits per tile as
/// manet_winograd_input.
void manet_winograd_band_input(int isa, const manet_winograd_geometry *g, const float *x, size_t th0, size_t th1, float *v,
                               size_t pointStride, float *scratch);

/// Output transform of tile rows [th0, th1) of one image (y: that image's [M, outH, outW], M a
/// multiple of 16), every filter, from r in 16-filter blocks (manet_winograd_band_gemm's layout):
/// filter f of the band's tile t at point p is r[p * pointStride + (f / 16) * blockStride + t * 16
/// + f % 16]. Bias and ReLU as manet_winograd_output, the same bits per tile.
void manet_winograd_band_output(int isa, const manet_winograd_geometry *g, const float *r, size_t pointStride,
                                size_t blockStride, const float *bias, int relu, size_t th0, size_t th1, float *y,
                                float *scratch);

#ifdef __cplusplus
}
#endif

#endif
