// Max pooling's inner row for the stem's 3x3 stride-2 pool, 8 outputs per vector: the strided
// reads deinterleaved with shuffles (the Swift loop did them one by one). Compiled for AVX-512,
// AVX2 and baseline x86-64, the CPU's best picked at load time.

#include "pooling.h"
#include "vector8.h"

#include <string.h>

// m = pick(m, v) lane by lane: v where v > m, or v is NaN and m is not; else m. A statement
// macro, not a function: an 8-lane vector passed to or returned from a function the baseline
// clone compiles would change the calling convention between clones.
#define PICK8(m, v)                                                              \
    do {                                                                         \
        const v8i take = ((v) > (m)) | (((v) != (v)) & ((m) == (m)));           \
        (m) = (v8)(((v8i)(v) & take) | ((v8i)(m) & ~take));                     \
    } while (0)
#define LOAD8(to, p) memcpy(&(to), (p), sizeof(v8))

// The same keeping the picked element's index: m, idx = v, vi where v is taken, also where idx < 0.
#define PICK8_INDEX(m, idx, v, vi)                                                                     \
    do {                                                                                               \
        const v8i take = ((v) > (m)) | (((v) != (v)) & ((m) == (m))) | ((idx) < 0);                    \
        (m) = (v8)(((v8i)(v) & take) | ((v8i)(m) & ~take));                                            \
        (idx) = ((vi) & take) | ((idx) & ~take);                                                       \
    } while (0)

static inline __attribute__((always_inline)) float pick1(float m, float v) { return v > m || (v != v && m == m) ? v : m; }

MULTIVERSION
void manet_max3_stride2(float *y, const float *r, size_t count) {
    size_t i = 0;
    // Outputs i ..< i + 8 need r[2i ... 2i + 16]; the four loads cover r[2i ... 2i + 17], which
    // must stay within r[0 ... 2 * count].
    for (; i + 8 <= count && 2 * i + 17 <= 2 * count; i += 8) {
        const float *p = r + 2 * i;
        v8 a, b, c, d, m;
        LOAD8(a, p);
        LOAD8(b, p + 8);
        LOAD8(c, p + 2);
        LOAD8(d, p + 10);
        LOAD8(m, y + i);
        const v8 even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
        const v8 odd = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
        const v8 next = __builtin_shufflevector(c, d, 0, 2, 4, 6, 8, 10, 12, 14);
        PICK8(m, even);
        PICK8(m, odd);
        PICK8(m, next);
        memcpy(y + i, &m, sizeof m);
    }
    for (; i < count; i++) y[i] = pick1(pick1(pick1(y[i], r[2 * i]), r[2 * i + 1]), r[2 * i + 2]);
}

MULTIVERSION
void manet_max3_stride2_argmax(float *y, int32_t *index, const float *r, int32_t first, size_t count) {
    size_t i = 0;
    const v8i lanes = {0, 2, 4, 6, 8, 10, 12, 14};
    for (; i + 8 <= count && 2 * i + 17 <= 2 * count; i += 8) {
        const float *p = r + 2 * i;
        v8 a, b, c, d, m;
        v8i idx;
        LOAD8(a, p);
        LOAD8(b, p + 8);
        LOAD8(c, p + 2);
        LOAD8(d, p + 10);
        LOAD8(m, y + i);
        LOAD8(idx, index + i);
        const v8 even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
        const v8 odd = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
        const v8 next = __builtin_shufflevector(c, d, 0, 2, 4, 6, 8, 10, 12, 14);
        const v8i at = lanes + (first + (int32_t)(2 * i));
        PICK8_INDEX(m, idx, even, at);
        PICK8_INDEX(m, idx, odd, at + 1);
        PICK8_INDEX(m, idx, next, at + 2);
        memcpy(y + i, &m, sizeof m);
        memcpy(index + i, &idx, sizeof idx);
    }
    for (; i < count; i++) {
        for (int k = 0; k < 3; k++) {
            const float v = r[2 * i + k], m = y[i];
            if (v > m || (v != v && m == m) || index[i] < 0) {
                y[i] = v;
                index[i] = first + (int32_t)(2 * i + k);
            }
        }
    }
}
