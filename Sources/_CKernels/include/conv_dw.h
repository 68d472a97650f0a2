// The weight gradient of a stride-1, undilated 2-D convolution with its input read in place
// (no im2col): for one image, dW[m, r] += sum over output positions of dY[m, p] x[tap r of p].
//
// With the input zero-padded into a plane of width padW (every window inside it) and dY's rows
// padded to the same width (zeros past outW), the input value under tap r at output position
// (oh, ow) is x[koff[r] + oh * padW + ow] (koff[r]: the tap's offset, channel plane included).
// So every dW element is a dot product of two runs of memory of length L = outH * padW (rounded
// up to a multiple of 16 with zeros in dY), one row of padded dY and one run of the padded
// input; the padding columns add products with dY's zeros.
//
// Each element's sum is fixed: 16 lanes, lane j taking the positions q = j (mod 16) in
// increasing order as a chain of fused multiply-adds from zero; then lanes j and j + 8 added
// (j < 8), then j and j + 4, j and j + 2, 0 and 1; that sum is added to dW. Every variant
// (AVX-512 tiles of 8 filters x 3 taps, AVX2 2 x 3, portable one element at a time) and every
// split of the taps gives the same bits.

#ifndef MANET_CONV_DW_H
#define MANET_CONV_DW_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// dw[m * ldw + r] += sum over q < L of g[m * L + q] * x[koff[r] + q] (the order above) for
/// filters m < M and taps r in [r0, r1). L a multiple of 16; x readable (and finite where g is
/// not zero) at every koff[r] + q. `isa` (MANET_ISA_*, sgemm.h) picks the variant, capped at
/// what the CPU has.
void manet_conv_dw_implicit(int isa, const float *g, size_t M, size_t L, const float *x, const int *koff, size_t r0,
                            size_t r1, float *dw, size_t ldw);

#ifdef __cplusplus
}
#endif

#endif
