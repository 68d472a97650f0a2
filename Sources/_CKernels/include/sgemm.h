// A general single-precision GEMM of our own, so that no hot path depends on which kernels
// OpenBLAS picks for the CPU: C = alpha * op(A) * op(B) + beta * C, row-major, over a
// sub-rectangle of C (rows [m0, m1), columns [n0, n1)), so that callers can split it over threads.
//
// A and B are packed per call into panels (MR rows of op(A), NR columns of op(B), zero-padded)
// and multiplied by a register-tile micro-kernel: AVX-512 (12 x 32), AVX2 + FMA (6 x 16) or
// portable C (4 x 8), picked from CPUID at run time or forced by the caller. Every element is
// the same sequence of operations in every variant and every split: over k in blocks of 256 in
// increasing order, each block's sum a chain of fused multiply-adds from zero in increasing k,
// then out = alpha * sum (skipped when alpha is 1) added to the element (first block:
// beta * C + out, or out alone when beta is 0). So the result is the same bits whatever the
// instruction set, the thread count or the sub-rectangles.

#ifndef MANET_SGEMM_H
#define MANET_SGEMM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction sets of the multiversioned kernels (KernelISA in Swift).
enum { MANET_ISA_AUTOMATIC = 0, MANET_ISA_AVX512 = 1, MANET_ISA_AVX2 = 2, MANET_ISA_PORTABLE = 3 };

/// The variant that runs for `requested`: the best the CPU has for MANET_ISA_AUTOMATIC, else
/// the one asked for, or the best below it when the CPU lacks it.
int manet_isa_resolve(int requested);

/// Calls of the packed-filter GEMM and Winograd transform entry points that ran variant `isa`
/// (MANET_ISA_AVX512, _AVX2 or _PORTABLE) since the process started: lets tests check that a
/// forced variant is the one that runs. A diagnostic count, read by nothing else.
unsigned long manet_variant_runs(int isa);

/// Counts one call that ran variant `isa` (for manet_variant_runs).
void manet_note_variant(int isa);

/// Rows and columns of the register tile of a variant (as resolved).
int manet_sgemm_tile_rows(int isa);
int manet_sgemm_tile_columns(int isa);

/// C[m, n] = alpha * sum_k op(A)[m, k] op(B)[k, n] + beta * C[m, n] for m in [m0, m1), n in
/// [n0, n1); op(A) is M x K (A stored K x M when transA), op(B) K x N (B stored N x K when
/// transB); lda, ldb, ldc are row strides as stored. K >= 1. Returns 0, or -1 when the
/// packing buffers could not be allocated (nothing written).
int manet_sgemm(int isa, int transA, int transB, size_t m0, size_t m1, size_t n0, size_t n1, size_t K, float alpha,
                const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);

/// One register tile of variant `isa` on packed panels: c[i * ldc + j] = sum over k < kc of
/// a[k * MR + i] b[k * NR + j] (MR x NR as manet_sgemm_tile_rows/columns give), each sum a chain of
/// fused multiply-adds from zero in increasing k, the same bits in every variant. kc >= 1.
void manet_sgemm_panel_tile(int isa, size_t kc, const float *a, const float *b, float *c, size_t ldc);

#ifdef __cplusplus
}
#endif

#endif
