// 8-lane float vectors (clang vector extensions) and function multiversioning, shared by the C
// kernels that are written once and compiled for AVX-512, AVX2 and baseline x86-64 (the CPU's
// best clone picked at load time). Private to _CKernels (not in include/).

#ifndef MANET_VECTOR8_H
#define MANET_VECTOR8_H

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));   // for unaligned loads and stores
typedef int v8i __attribute__((vector_size(32)));

#if defined(__x86_64__)
#define MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MULTIVERSION
#endif

#endif
