// The _CKernels module's umbrella header: every C kernel the Swift layers call. (Listed here rather
// than taken from the include directory, so that a header added later reaches an existing build's
// module cache: SwiftPM regenerates the module map when this file changes.)

#include "conv_dw.h"
#include "packed_gemm.h"
#include "pooling.h"
#include "sgemm.h"
#include "thread_pool.h"
#include "winograd_transforms.h"
#include "winograd_dw.h"
#include "cpu_report.h"
