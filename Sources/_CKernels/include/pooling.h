#ifndef MANET_POOLING_H
#define MANET_POOLING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One window row of a 3-wide, stride-2 max pool over `count` outputs: y[i] = pick(pick(pick(y[i],
/// r[2i]), r[2i + 1]), r[2i + 2]), where pick(m, v) is v when v > m or v is NaN and m is not, else
/// m (the scan-order pick of Kernels/Pooling.swift, so the same bits). Reads r[0 ... 2 * count].
void manet_max3_stride2(float *y, const float *r, size_t count);

/// The same pass keeping each output's pick: index[i] is the plane offset of the element y[i] holds
/// (`first` is r[0]'s offset), replaced together with y[i], and also when it is still negative (no
/// element picked yet), so a window of -inf alone picks its first element as the scan does.
void manet_max3_stride2_argmax(float *y, int32_t *index, const float *r, int32_t first, size_t count);

#ifdef __cplusplus
}
#endif

#endif
