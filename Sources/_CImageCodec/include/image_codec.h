// Plain C entry points over libjpeg-turbo and libpng that never exit or abort: errors come back as codes and messages.
#ifndef MANET_IMAGE_CODEC_H
#define MANET_IMAGE_CODEC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Return codes. Every function fills `err` (NUL-terminated, truncated to `errlen`) on failure.
enum {
    IC_OK = 0,
    IC_ERR_DECODE = 1,     ///< the library rejected the data (corrupt, truncated, unsupported)
    IC_ERR_TOO_LARGE = 2,  ///< a dimension exceeds the caller's bound (checked before allocating)
    IC_ERR_MEMORY = 3,     ///< allocation failed
    IC_ERR_ARGUMENT = 4,   ///< the caller passed inconsistent arguments
};

/// A decoded image: 8-bit RGB, rows top to bottom, `width * 3` bytes per row, malloc'd.
typedef struct {
    unsigned char *pixels;
    int width;
    int height;
} ic_image;

/// Frees memory returned by this library (decoded pixels, encoded buffers). NULL is fine.
void ic_free(void *pointer);

/// Decodes a JPEG held in memory to 8-bit RGB. Greyscale, YCbCr, CMYK and YCCK sources are
/// converted. Refuses images wider or taller than `max_dimension` before allocating pixels.
/// A file that ends early (libjpeg's "premature end" warning) is an error, not grey padding.
int ic_decode_jpeg(const unsigned char *data, size_t size, int max_dimension,
                   ic_image *out, char *err, size_t errlen);

/// Decodes a PNG held in memory to 8-bit RGB: palette, grey (1-16 bit), grey+alpha, RGB, RGBA
/// and 16-bit images are all converted; alpha is dropped (not composited) because the model
/// takes 3 channels and torchvision's `convert("RGB")` also discards it.
int ic_decode_png(const unsigned char *data, size_t size, int max_dimension,
                  ic_image *out, char *err, size_t errlen);

/// Encodes 8-bit RGB (`width * 3` bytes per row) as a baseline JPEG at `quality` (1-100,
/// 4:2:0 chroma subsampling as libjpeg's default). `*out` is malloc'd; free with ic_free.
int ic_encode_jpeg(const unsigned char *rgb, int width, int height, int quality,
                   unsigned char **out, size_t *out_size, char *err, size_t errlen);

/// Encodes raw PNG rows. `color_type` is a PNG colour type (0 grey, 2 RGB, 3 palette,
/// 4 grey+alpha, 6 RGBA) and `bit_depth` one PNG allows for it; `rows` holds `height` rows packed
/// as PNG stores them (sub-byte samples packed MSB first, 16-bit samples big-endian).
/// `palette_rgb` (3 bytes per entry, `palette_count` entries) is required for colour type 3.
int ic_encode_png(const unsigned char *rows, int width, int height, int color_type, int bit_depth,
                  const unsigned char *palette_rgb, int palette_count,
                  unsigned char **out, size_t *out_size, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
