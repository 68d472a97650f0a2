// OpenBLAS's CBLAS interface (Debian libopenblas-dev); the only BLAS the kernels use.
#include <cblas.h>
