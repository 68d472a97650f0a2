// A single-precision GEMM whose left matrix (convolution filters, or Winograd-transformed
// filters) is packed once into blocks of 16 rows, for the inference convolution paths.
//
// out(m, n) = sum_k A[m, k] * B[k, n] (+ bias[m]) (then max(., 0) if relu), with
//   A packed: ap[(m / 16) * K * 16 + k * 16 + m % 16] (rows past M zero),
//   B read in place: B[k, n] = b[k * bk + n * bn] (im2col columns: bk = N, bn = 1; Winograd's
//     transformed inputs v[tile][C]: bk = 1, bn = C),
//   out written in place: out(m, n) = c[m * cm + n * cn] (NCHW planes: cm = P, cn = 1; Winograd's
//     results r[tile][M]: cm = 1, cn = M).
// Each output element is a fixed sum over k (fused multiply-adds over passes of 256 k in increasing
// order, the passes' sums added in order) on CPUs with AVX2 and FMA, the same sum in a portable
// scalar loop elsewhere: results do not depend on how rows are split over threads. Each entry
// point's first argument `isa` (MANET_ISA_*, sgemm.h) picks the variant, capped at what the CPU
// has: AVX2 for MANET_ISA_AVX512 too (no AVX-512 form), except manet_winograd_gemm_block's.

#ifndef MANET_PACKED_GEMM_H
#define MANET_PACKED_GEMM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The variant the packed tiles run for `isa` (MANET_ISA_*): MANET_ISA_AVX2 or MANET_ISA_PORTABLE.
int manet_packed_variant(int isa);

/// Rows of one packed block.
#define MANET_PACKED_ROWS 16

/// Floats of the packed form of an M x K matrix: ceil(M / 16) * 16 * K.
size_t manet_packed_size(size_t M, size_t K);

/// Packs rows [0, M) of A (row stride lda, K columns) into ap (manet_packed_size(M, K) floats).
void manet_pack_rows(const float *a, size_t M, size_t K, size_t lda, float *ap);

/// Packs A ([M, K] row-major, M a multiple of 16) where it lies, with a scratch of 16 * K floats.
void manet_pack_rows_in_place(float *a, size_t M, size_t K, float *scratch);

/// Unpacks ap into A (row stride lda): the inverse of manet_pack_rows.
void manet_unpack_rows(const float *ap, size_t M, size_t K, float *a, size_t lda);

/// The product for row blocks [blockBegin, blockEnd) (rows 16 * blockBegin ..< min(16 * blockEnd, M))
/// and all N columns, for `images` independent right-hand sides: image i reads b + i * bi and
/// writes c + i * ci (one A block stays in cache across them). bias may be NULL.
void manet_packed_gemm(int isa, const float *ap, size_t M, size_t K, size_t blockBegin, size_t blockEnd,
                       const float *b, size_t bk, size_t bn, size_t N, size_t images, size_t bi,
                       float *c, size_t cm, size_t cn, size_t ci, const float *bias, int relu);

/// Floats of `images` right-hand sides K x N in packed-column form: ceil(N / 6) blocks of [K][6].
size_t manet_packed_columns_size(size_t K, size_t N, size_t images);

/// Packs column blocks [begin, end) (block = image * ceil(N / 6) + q: columns 6q ..< 6q + 6 of
/// that image, zero past N) of B (b(k, n) of image i at b[i * bi + k * bk + n * bn]) into bp.
void manet_pack_columns(const float *b, size_t bk, size_t bn, size_t K, size_t N, size_t bi, size_t begin, size_t end,
                        float *bp);

/// A 2-D convolution window over one image [channels, inH, inW].
typedef struct {
    int channels, inH, inW;
    int kH, kW, sH, sW, pH, pW, dH, dW;
    int outH, outW;
} manet_window2d;

/// im2col straight into packed-column form: items [begin, end), item = image * ceil(P / 6) + q
/// (P = outH * outW), each the [K][6] block of output positions 6q ..< 6q + 6 of image
/// x + image * imageStride (K = channels * kH * kW in im2col's row order; zero for padding and
/// for positions past P).
void manet_im2col_packed(int isa, const manet_window2d *g, const float *x, size_t imageStride, size_t begin, size_t end,
                         float *bp);

/// manet_packed_gemm with B in packed-column form (manet_pack_columns): each 16 x 6 tile reads
/// one contiguous [K][6] block.
void manet_packed_gemm_packed_columns(int isa, const float *ap, size_t M, size_t K, size_t blockBegin, size_t blockEnd,
                                      const float *bp, size_t N, size_t images, float *c, size_t cm, size_t cn,
                                      size_t ci, const float *bias, int relu);

/// One image's share of a product split over threads by output columns (c: the image's output,
/// out(m, n) at c[m * cm + n * cn]): its own tiles [tileBegin, tileEnd) (packed columns at bp,
/// tile t's [K][6] block at bp + (t - tileBegin) * K * 6) for all row blocks, and the tiles
/// [sharedBegin, sharedEnd) that every thread holds a copy of (at shared, likewise) for row blocks
/// [blockBegin, blockEnd) only. Every element is the same sum as in manet_packed_gemm_packed_columns.
void manet_packed_gemm_shared_tiles(int isa, const float *ap, size_t M, size_t K, const float *bp, size_t tileBegin,
                                    size_t tileEnd, const float *shared, size_t sharedBegin, size_t sharedEnd,
                                    size_t blockBegin, size_t blockEnd, size_t N, float *c, size_t cm, size_t cn,
                                    const float *bias, int relu);

/// The product with B never unfolded (an implicit im2col): b(k, n) = x[koff[k] + poff[n]], for
/// n < ceil(N / 6) * 6 (poff past N any valid offset: those columns are not stored). For a
/// convolution, x is the (padded) input and koff, poff the offsets of tap k and output position
/// n. Tiles [tileBegin, tileEnd) for all row blocks, then tiles [sharedBegin, sharedEnd) for row
/// blocks [blockBegin, blockEnd) only; every element is the same sum, in the same order, as in
/// manet_packed_gemm_packed_columns over the unfolded columns.
void manet_packed_gemm_implicit(int isa, const float *ap, size_t M, size_t K, const float *x, const int *koff, const int *poff,
                                size_t N, size_t tileBegin, size_t tileEnd, size_t sharedBegin, size_t sharedEnd,
                                size_t blockBegin, size_t blockEnd, float *c, size_t cm, size_t cn, const float *bias,
                                int relu);

/// The point stride (in floats) of Winograd's per-point matrices of `floats` floats each (the
/// transformed inputs v and the GEMM results r): `floats`, one cache line more when that is a
/// multiple of 4 KiB (MA-Net's 7x7 planes: 16 tiles x 64 channels per chunk at batch 1, 16 tiles
/// x 512 channels per image at batch 16). There every point's row of one tile falls in the same
/// L1 set, and the transforms' 16 or 36 loads or stores per tile evict each other (the input
/// transform of the 512-channel layers at batch 1 took twice its time).
size_t manet_winograd_point_stride(size_t floats);

/// Winograd's GEMMs for one block of 16 filters (`block` of `blocks`; w in the packed layout,
/// [16][C * 9] blocks) with the filters transformed `channelBlock` channels at a time into
/// scratch (cache sized) right before they are multiplied: sums[(p * tiles + t) * 16 + f] = sum
/// over c of U_p(f, c) V_p(t, c) for every point p and tile t, where v is laid out as
/// manet_winograd_input writes it with that channel block and the point stride
/// manet_winograd_point_stride(tiles * channelBlock). Each chunk's sum is added to the
/// running one (a fixed order: the same bits whichever thread runs the block). scratch: points *
/// (channelBlock * 16 + 16) floats.
/// `isa` (MANET_ISA_*, sgemm.h) picks the register tiles: AVX-512 takes 16 columns at a time;
/// every variant gives the same bits.
void manet_winograd_gemm_block(int isa, int m, const float *w, size_t channels, size_t block, size_t blocks,
                               const float *v, size_t tiles, size_t channelBlock, float *sums, float *scratch);

/// Winograd's GEMMs for one band of `tiles` tiles, every point and filter block: r[p * rPointStride
/// + (f / 16) * tiles * 16 + t * 16 + f % 16] = sum over c of U_p(f, c) V_p(t, c), for u the
/// transformed filters in 16-row blocks per point (u[p * uPointStride + (f / 16) * C * 16 + c * 16
/// + f % 16], manet_winograd_filter_packed_blocks) and v[p * vPointStride + t * C + c]
/// (manet_winograd_band_input). M a multiple of 16. Each sum is one chain of fused multiply-adds
/// over c (passes of 256 channels added), whatever the band, the grouping of its tiles or `isa`
/// (AVX-512 takes 16 tiles at a time where C is 64 or 128, AVX2 6, portable scalar): the same bits.
void manet_winograd_band_gemm(int isa, const float *u, size_t uPointStride, size_t M, size_t C, size_t points, const float *v,
                              size_t vPointStride, size_t tiles, float *r, size_t rPointStride);

#ifdef __cplusplus
}
#endif

#endif
