// libjpeg-turbo and libpng behind setjmp, in C, because both libraries report fatal errors by longjmp (or exit()) and Swift cannot host a setjmp frame.
#include "image_codec.h"

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

void ic_free(void *pointer) { free(pointer); }

static void set_error(char *err, size_t errlen, const char *message) {
    if (err == NULL || errlen == 0) return;
    snprintf(err, errlen, "%s", message);
}

// MARK: - JPEG

/// libjpeg's default error_exit calls exit(); ours records the message and jumps back to the
/// entry point, which destroys the decompressor and returns an error code.
typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_error_context;

static void jpeg_error_exit(j_common_ptr cinfo) {
    jpeg_error_context *context = (jpeg_error_context *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, context->message);
    longjmp(context->jump, 1);
}

/// Warnings are silent except "premature end of data": libjpeg would pad a truncated file with
/// grey and report success, and a half-grey training image is worse than a clear error.
static void jpeg_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_error_exit(cinfo);
    }
    if (msg_level == -1) cinfo->err->num_warnings++;
}

static void jpeg_silent_output(j_common_ptr cinfo) { (void)cinfo; }

int ic_decode_jpeg(const unsigned char *data, size_t size, int max_dimension,
                   ic_image *out, char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    jpeg_error_context context;
    unsigned char *volatile pixels = NULL;
    unsigned char *volatile cmyk_row = NULL;
    volatile int code = IC_ERR_DECODE;

    out->pixels = NULL;
    out->width = 0;
    out->height = 0;
    if (data == NULL || size == 0) {
        set_error(err, errlen, "empty file");
        return IC_ERR_DECODE;
    }
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&context.base);
    context.base.error_exit = jpeg_error_exit;
    context.base.emit_message = jpeg_emit_message;
    context.base.output_message = jpeg_silent_output;
    context.message[0] = '\0';
    if (setjmp(context.jump)) {
        set_error(err, errlen, context.message[0] ? context.message : "JPEG decoding failed");
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(cmyk_row);
        return code;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    if (cinfo.image_width == 0 || cinfo.image_height == 0 ||
        cinfo.image_width > (JDIMENSION)max_dimension || cinfo.image_height > (JDIMENSION)max_dimension) {
        char message[160];
        snprintf(message, sizeof message, "image is %ux%u; the limit is %dx%d",
                 (unsigned)cinfo.image_width, (unsigned)cinfo.image_height, max_dimension, max_dimension);
        set_error(err, errlen, message);
        jpeg_destroy_decompress(&cinfo);
        return IC_ERR_TOO_LARGE;
    }
    // libjpeg converts grey and YCbCr to RGB itself, but not CMYK/YCCK (Adobe files): those are
    // decoded as CMYK and converted below.
    int is_cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = is_cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);

    size_t width = cinfo.output_width, height = cinfo.output_height;
    size_t components = (size_t)cinfo.output_components;
    if ((!is_cmyk && components != 3) || (is_cmyk && components != 4)) {
        snprintf(context.message, sizeof context.message, "unexpected %zu output components", components);
        longjmp(context.jump, 1);
    }
    pixels = malloc(width * height * 3);
    if (is_cmyk) cmyk_row = malloc(width * 4);
    if (pixels == NULL || (is_cmyk && cmyk_row == NULL)) {
        code = IC_ERR_MEMORY;
        snprintf(context.message, sizeof context.message, "out of memory for a %zux%zu image", width, height);
        longjmp(context.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        unsigned char *row = pixels + (size_t)cinfo.output_scanline * width * 3;
        if (!is_cmyk) {
            JSAMPROW rows[1] = {row};
            jpeg_read_scanlines(&cinfo, rows, 1);
        } else {
            JSAMPROW rows[1] = {cmyk_row};
            jpeg_read_scanlines(&cinfo, rows, 1);
            // Adobe writes inverted CMYK (as libjpeg returns it), so R = C * K / 255.
            for (size_t x = 0; x < width; x++) {
                unsigned k = cmyk_row[4 * x + 3];
                for (int c = 0; c < 3; c++) row[3 * x + c] = (unsigned char)((cmyk_row[4 * x + c] * k + 127) / 255);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(cmyk_row);
    out->pixels = pixels;
    out->width = (int)width;
    out->height = (int)height;
    return IC_OK;
}

int ic_encode_jpeg(const unsigned char *rgb, int width, int height, int quality,
                   unsigned char **out, size_t *out_size, char *err, size_t errlen) {
    struct jpeg_compress_struct cinfo;
    jpeg_error_context context;
    unsigned char *volatile buffer = NULL;
    unsigned long buffer_size = 0;

    *out = NULL;
    *out_size = 0;
    if (rgb == NULL || width <= 0 || height <= 0 || width > 65500 || height > 65500 || quality < 1 || quality > 100) {
        set_error(err, errlen, "JPEG encode: invalid size or quality");
        return IC_ERR_ARGUMENT;
    }
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&context.base);
    context.base.error_exit = jpeg_error_exit;
    context.base.output_message = jpeg_silent_output;
    context.message[0] = '\0';
    if (setjmp(context.jump)) {
        set_error(err, errlen, context.message[0] ? context.message : "JPEG encoding failed");
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return IC_ERR_DECODE;
    }
    jpeg_create_compress(&cinfo);
    unsigned char *mem = NULL;
    jpeg_mem_dest(&cinfo, &mem, &buffer_size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW rows[1] = {(JSAMPROW)(rgb + (size_t)cinfo.next_scanline * (size_t)width * 3)};
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    buffer = mem;
    jpeg_destroy_compress(&cinfo);
    *out = buffer;
    *out_size = buffer_size;
    return IC_OK;
}

// MARK: - PNG

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
    char message[256];
} png_read_context;

static void png_read_memory(png_structp png, png_bytep destination, size_t length) {
    png_read_context *context = (png_read_context *)png_get_io_ptr(png);
    if (length > context->size - context->offset) {
        png_error(png, "file is truncated");
    }
    memcpy(destination, context->data + context->offset, length);
    context->offset += length;
}

/// libpng's error callback must not return; we keep the message and let png_error's longjmp
/// reach the setjmp in the entry point.
static void png_record_error(png_structp png, png_const_charp message) {
    char *slot = (char *)png_get_error_ptr(png);
    if (slot) snprintf(slot, 256, "%s", message);
    png_longjmp(png, 1);
}

static void png_ignore_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

int ic_decode_png(const unsigned char *data, size_t size, int max_dimension,
                  ic_image *out, char *err, size_t errlen) {
    png_read_context context = {data, size, 0, {0}};
    png_structp png = NULL;
    png_infop info = NULL;
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile int code = IC_ERR_DECODE;

    out->pixels = NULL;
    out->width = 0;
    out->height = 0;
    if (data == NULL || size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        set_error(err, errlen, "not a PNG file (bad signature)");
        return IC_ERR_DECODE;
    }
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, context.message, png_record_error, png_ignore_warning);
    if (png == NULL) {
        set_error(err, errlen, "out of memory creating the PNG reader");
        return IC_ERR_MEMORY;
    }
    info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_error(err, errlen, "out of memory creating the PNG reader");
        return IC_ERR_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        set_error(err, errlen, context.message[0] ? context.message : "PNG decoding failed");
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        free(pixels);
        return code;
    }
    png_set_read_fn(png, &context, png_read_memory);
    // png_read_info reads the chunks before the image data and allocates no pixel memory, so
    // the bound is checked here (libpng's own user limits would report a vaguer "Invalid IHDR").
    png_read_info(png, info);

    png_uint_32 width = png_get_image_width(png, info);
    png_uint_32 height = png_get_image_height(png, info);
    if (width > (png_uint_32)max_dimension || height > (png_uint_32)max_dimension) {
        snprintf(context.message, sizeof context.message, "image is %ux%u; the limit is %dx%d",
                 (unsigned)width, (unsigned)height, max_dimension, max_dimension);
        code = IC_ERR_TOO_LARGE;
        png_longjmp(png, 1);
    }
    int color_type = png_get_color_type(png, info);
    int bit_depth = png_get_bit_depth(png, info);

    // Everything becomes 8-bit RGB: 16-bit keeps the high byte (as PIL's "RGB;16B" raw mode
    // does), palettes and low-depth grey expand, grey is replicated, alpha is dropped.
    if (bit_depth == 16) png_set_strip_16(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    // Also removes the alpha that palette expansion makes from a tRNS chunk.
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)width * 3) {
        snprintf(context.message, sizeof context.message, "unsupported PNG layout (%zu bytes per row for width %u)",
                 rowbytes, (unsigned)width);
        png_longjmp(png, 1);
    }
    pixels = malloc((size_t)width * (size_t)height * 3);
    rows = malloc(sizeof(png_bytep) * (size_t)height);
    if (pixels == NULL || rows == NULL) {
        code = IC_ERR_MEMORY;
        snprintf(context.message, sizeof context.message, "out of memory for a %ux%u image", (unsigned)width, (unsigned)height);
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * width * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->pixels = pixels;
    out->width = (int)width;
    out->height = (int)height;
    return IC_OK;
}

typedef struct {
    unsigned char *data;
    size_t size;
    size_t capacity;
    int failed;
} png_write_buffer;

static void png_write_memory(png_structp png, png_bytep source, size_t length) {
    png_write_buffer *buffer = (png_write_buffer *)png_get_io_ptr(png);
    if (buffer->size + length > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 4096;
        while (capacity < buffer->size + length) capacity *= 2;
        unsigned char *grown = realloc(buffer->data, capacity);
        if (grown == NULL) png_error(png, "out of memory growing the PNG buffer");
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->size, source, length);
    buffer->size += length;
}

static void png_flush_memory(png_structp png) { (void)png; }

int ic_encode_png(const unsigned char *rows_data, int width, int height, int color_type, int bit_depth,
                  const unsigned char *palette_rgb, int palette_count,
                  unsigned char **out, size_t *out_size, char *err, size_t errlen) {
    char message[256] = {0};
    png_write_buffer buffer = {NULL, 0, 0, 0};
    png_structp png = NULL;
    png_infop info = NULL;
    png_bytep *volatile rows = NULL;

    *out = NULL;
    *out_size = 0;
    int channels;
    switch (color_type) {
        case 0: channels = 1; break;
        case 2: channels = 3; break;
        case 3: channels = 1; break;
        case 4: channels = 2; break;
        case 6: channels = 4; break;
        default: set_error(err, errlen, "PNG encode: unknown colour type"); return IC_ERR_ARGUMENT;
    }
    if (rows_data == NULL || width <= 0 || height <= 0 ||
        !(bit_depth == 1 || bit_depth == 2 || bit_depth == 4 || bit_depth == 8 || bit_depth == 16) ||
        (color_type == 3 && (palette_rgb == NULL || palette_count < 1 || palette_count > 256 || bit_depth == 16))) {
        set_error(err, errlen, "PNG encode: invalid size, bit depth or palette");
        return IC_ERR_ARGUMENT;
    }
    size_t rowbytes = ((size_t)width * (size_t)channels * (size_t)bit_depth + 7) / 8;

    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, message, png_record_error, png_ignore_warning);
    if (png == NULL) { set_error(err, errlen, "out of memory creating the PNG writer"); return IC_ERR_MEMORY; }
    info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        set_error(err, errlen, "out of memory creating the PNG writer");
        return IC_ERR_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        set_error(err, errlen, message[0] ? message : "PNG encoding failed");
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(buffer.data);
        return IC_ERR_ARGUMENT;
    }
    png_set_write_fn(png, &buffer, png_write_memory, png_flush_memory);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bit_depth, color_type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color_type == 3) {
        png_color palette[256];
        for (int i = 0; i < palette_count; i++) {
            palette[i].red = palette_rgb[3 * i];
            palette[i].green = palette_rgb[3 * i + 1];
            palette[i].blue = palette_rgb[3 * i + 2];
        }
        png_set_PLTE(png, info, palette, palette_count);
    }
    png_write_info(png, info);
    rows = malloc(sizeof(png_bytep) * (size_t)height);
    if (rows == NULL) png_error(png, "out of memory");
    for (int y = 0; y < height; y++) rows[y] = (png_bytep)(rows_data + (size_t)y * rowbytes);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    *out = buffer.data;
    *out_size = buffer.size;
    return IC_OK;
}
