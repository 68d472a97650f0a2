// Which compiled variant of the C kernels this CPU runs, for `manet env` (bug reports).

#ifndef MANET_CPU_REPORT_H
#define MANET_CPU_REPORT_H

/// The CPU's best variant of the multiversioned kernels: the pooling clone the loader picks and
/// the Winograd transforms' variant when KernelOptions.isa is automatic: "avx512f", "avx2" or
/// "default", by the same priority as the target_clones resolver.
const char *manet_kernels_multiversion_variant(void);

/// The packed-filter GEMM's path: "avx2+fma" or "portable" (the test packed_gemm.c makes).
const char *manet_kernels_packed_gemm_variant(void);

#endif
