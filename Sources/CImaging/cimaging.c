// cimaging.c: thin wrappers over libpng, libjpeg-turbo and zlib (see include/cimaging.h).
#include "cimaging.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <zlib.h>

static void set_error(char *error, size_t capacity, const char *message) {
  if (error != NULL && capacity > 0) snprintf(error, capacity, "%s", message);
}

// MARK: PNG

struct png_source {
  const uint8_t *data;
  size_t size;
  size_t offset;
};

struct png_failure {
  char *error;
  size_t capacity;
};

static void png_error_handler(png_structp png, png_const_charp message) {
  struct png_failure *failure = (struct png_failure *)png_get_error_ptr(png);
  set_error(failure->error, failure->capacity, message);
  png_longjmp(png, 1);
}

static void png_warning_handler(png_structp png, png_const_charp message) {
  (void)png;
  (void)message;
}

static void png_read_from_memory(png_structp png, png_bytep out, png_size_t length) {
  struct png_source *source = (struct png_source *)png_get_io_ptr(png);
  if (source->offset + length > source->size) png_error(png, "the PNG data ends early (truncated file)");
  memcpy(out, source->data + source->offset, length);
  source->offset += length;
}

// Decoded images are refused beyond this many pixels (8192 × 8192): a small file can claim a
// huge size, and decoding it would take gigabytes.
#define CI_MAX_PIXELS (1 << 26)

int ci_png_decode(const uint8_t *data, size_t size, int *width, int *height, int *channels,
                  int *bit_depth, uint8_t **out, char *error, size_t error_capacity) {
  *out = NULL;
  if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
    set_error(error, error_capacity, "not a PNG file (bad signature)");
    return -1;
  }
  struct png_failure failure = {error, error_capacity};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &failure, png_error_handler,
                                           png_warning_handler);
  if (png == NULL) return set_error(error, error_capacity, "out of memory"), -1;
  png_infop info = png_create_info_struct(png);
  // volatile: these change between setjmp and a longjmp back, and must keep their values.
  uint8_t *volatile pixels = NULL;
  png_bytep *volatile rows = NULL;
  if (info == NULL || setjmp(png_jmpbuf(png))) {
    free((void *)pixels);
    free((void *)rows);
    png_destroy_read_struct(&png, &info, NULL);
    return -1;
  }
  struct png_source source = {data, size, 0};
  png_set_read_fn(png, &source, png_read_from_memory);
  png_read_info(png, info);
  int color_type = png_get_color_type(png, info);
  int depth = png_get_bit_depth(png, info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (depth == 16) png_set_swap(png);  // PNG stores big-endian; hand back native order
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  int w = (int)png_get_image_width(png, info);
  int h = (int)png_get_image_height(png, info);
  int c = png_get_channels(png, info);
  int d = png_get_bit_depth(png, info);
  if ((size_t)w * (size_t)h > CI_MAX_PIXELS) {
    snprintf(error, error_capacity, "it claims %d×%d pixels, more than the %d million Afterimage decodes", w, h,
             CI_MAX_PIXELS / 1000000);
    png_destroy_read_struct(&png, &info, NULL);
    return -1;
  }
  size_t row_bytes = png_get_rowbytes(png, info);
  pixels = (uint8_t *)malloc(row_bytes * (size_t)h);
  rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)h);
  if (pixels == NULL || rows == NULL) png_error(png, "out of memory");
  for (int y = 0; y < h; y++) rows[y] = pixels + row_bytes * (size_t)y;
  png_read_image(png, (png_bytepp)rows);
  png_read_end(png, NULL);
  free((void *)rows);
  png_destroy_read_struct(&png, &info, NULL);
  *width = w;
  *height = h;
  *channels = c;
  *bit_depth = d;
  *out = pixels;
  return 0;
}

struct png_sink {
  uint8_t *data;
  size_t size;
  size_t capacity;
};

static void png_write_to_memory(png_structp png, png_bytep bytes, png_size_t length) {
  struct png_sink *sink = (struct png_sink *)png_get_io_ptr(png);
  if (sink->size + length > sink->capacity) {
    size_t capacity = sink->capacity * 2 + length + 4096;
    uint8_t *grown = (uint8_t *)realloc(sink->data, capacity);
    if (grown == NULL) png_error(png, "out of memory");
    sink->data = grown;
    sink->capacity = capacity;
  }
  memcpy(sink->data + sink->size, bytes, length);
  sink->size += length;
}

static void png_flush_nothing(png_structp png) { (void)png; }

int ci_png_encode(const uint8_t *pixels, int width, int height, int channels, int bit_depth,
                  uint8_t **out, size_t *out_size, char *error, size_t error_capacity) {
  static const int color_types[] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                    PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  *out = NULL;
  if (channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16) || width <= 0 ||
      height <= 0) {
    set_error(error, error_capacity, "PNG needs 1-4 channels, bit depth 8 or 16, positive size");
    return -1;
  }
  struct png_failure failure = {error, error_capacity};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &failure, png_error_handler,
                                            png_warning_handler);
  if (png == NULL) return set_error(error, error_capacity, "out of memory"), -1;
  png_infop info = png_create_info_struct(png);
  struct png_sink sink = {NULL, 0, 0};
  if (info == NULL || setjmp(png_jmpbuf(png))) {
    free(sink.data);
    png_destroy_write_struct(&png, &info);
    return -1;
  }
  png_set_write_fn(png, &sink, png_write_to_memory, png_flush_nothing);
  png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bit_depth,
               color_types[channels], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  if (bit_depth == 16) png_set_swap(png);
  size_t row_bytes = (size_t)width * (size_t)channels * (size_t)(bit_depth / 8);
  for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + row_bytes * (size_t)y));
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  *out = sink.data;
  *out_size = sink.size;
  return 0;
}

// MARK: JPEG

// Whether the JPEG has Adobe's APP14 segment before its first scan: Adobe's CMYK files store
// each ink inverted (255 = no ink), the convention every reader follows when it is there.
static int ci_jpeg_has_adobe_marker(const uint8_t *data, size_t size) {
  size_t at = 2;  // after SOI
  while (at + 4 <= size && data[at] == 0xFF) {
    uint8_t marker = data[at + 1];
    if (marker == 0xDA) return 0;  // start of scan: no more headers
    size_t length = ((size_t)data[at + 2] << 8) | data[at + 3];
    if (length < 2) return 0;
    if (marker == 0xEE && length >= 7 && at + 4 + 5 <= size && memcmp(data + at + 4, "Adobe", 5) == 0) return 1;
    at += 2 + length;
  }
  return 0;
}

// CMYK pixels (4 bytes each) to RGB in place (3 bytes each), as most readers do without a
// colour profile: R = (1 − C)(1 − K), and so on.
static void ci_cmyk_to_rgb(uint8_t *pixels, size_t count, int inverted) {
  for (size_t i = 0; i < count; i++) {
    unsigned ink[4];
    for (int k = 0; k < 4; k++) ink[k] = inverted ? 255u - pixels[4 * i + k] : pixels[4 * i + k];
    unsigned white = 255u - ink[3];
    for (int k = 0; k < 3; k++) pixels[3 * i + k] = (uint8_t)(((255u - ink[k]) * white + 127u) / 255u);
  }
}

int ci_jpeg_decode(const uint8_t *data, size_t size, int *width, int *height, int *channels,
                   uint8_t **out, char *error, size_t error_capacity) {
  *out = NULL;
  tjhandle handle = tjInitDecompress();
  if (handle == NULL) return set_error(error, error_capacity, "cannot start the JPEG decoder"), -1;
  int w = 0, h = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(handle, data, (unsigned long)size, &w, &h, &subsampling, &colorspace) != 0) {
    set_error(error, error_capacity, tjGetErrorStr2(handle));
    tjDestroy(handle);
    return -1;
  }
  if ((size_t)w * (size_t)h > CI_MAX_PIXELS) {
    snprintf(error, error_capacity, "it claims %d×%d pixels, more than the %d million Afterimage decodes", w, h,
             CI_MAX_PIXELS / 1000000);
    tjDestroy(handle);
    return -1;
  }
  int gray = colorspace == TJCS_GRAY;
  // CMYK and YCCK files (print workflows) decode to CMYK, which libjpeg-turbo does not turn into
  // RGB itself; they are converted below.
  int ink = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  int c = gray ? 1 : 3;
  int decoded_channels = ink ? 4 : c;
  uint8_t *pixels = (uint8_t *)malloc((size_t)w * (size_t)h * (size_t)decoded_channels);
  if (pixels == NULL) {
    tjDestroy(handle);
    return set_error(error, error_capacity, "out of memory"), -1;
  }
  int status = tjDecompress2(handle, data, (unsigned long)size, pixels, w, 0, h,
                             gray ? TJPF_GRAY : (ink ? TJPF_CMYK : TJPF_RGB), TJFLAG_ACCURATEDCT);
  // A warning (e.g. premature end of data) still decodes; an error does not.
  if (status != 0 && tjGetErrorCode(handle) == TJERR_FATAL) {
    set_error(error, error_capacity, tjGetErrorStr2(handle));
    free(pixels);
    tjDestroy(handle);
    return -1;
  }
  tjDestroy(handle);
  if (ink) ci_cmyk_to_rgb(pixels, (size_t)w * (size_t)h, ci_jpeg_has_adobe_marker(data, size));
  *width = w;
  *height = h;
  *channels = c;
  *out = pixels;
  return 0;
}

// MARK: gzip

int ci_gunzip(const uint8_t *data, size_t size, size_t max_out, uint8_t **out, size_t *out_size, char *error,
              size_t error_capacity) {
  *out = NULL;
  z_stream stream;
  memset(&stream, 0, sizeof stream);
  // 32 + MAX_WBITS: detect gzip or zlib headers automatically.
  if (inflateInit2(&stream, 32 + MAX_WBITS) != Z_OK) {
    return set_error(error, error_capacity, "cannot start zlib"), -1;
  }
  size_t capacity = size * 4 + 1024;
  if (capacity > max_out) capacity = max_out > 0 ? max_out : 1;
  uint8_t *buffer = (uint8_t *)malloc(capacity);
  if (buffer == NULL) {
    inflateEnd(&stream);
    return set_error(error, error_capacity, "out of memory"), -1;
  }
  stream.next_in = (Bytef *)data;
  stream.avail_in = (uInt)size;
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    if (stream.total_out == capacity) {
      if (capacity >= max_out) {
        snprintf(error, error_capacity, "it inflates to more than %zu MB, the most Afterimage reads (a damaged or hostile file?)",
                 max_out / 1000000);
        free(buffer);
        inflateEnd(&stream);
        return -1;
      }
      capacity = capacity * 2 > max_out ? max_out : capacity * 2;
      uint8_t *grown = (uint8_t *)realloc(buffer, capacity);
      if (grown == NULL) {
        free(buffer);
        inflateEnd(&stream);
        return set_error(error, error_capacity, "out of memory"), -1;
      }
      buffer = grown;
    }
    stream.next_out = buffer + stream.total_out;
    stream.avail_out = (uInt)(capacity - stream.total_out);
    status = inflate(&stream, Z_NO_FLUSH);
    if (status != Z_OK && status != Z_STREAM_END) {
      const char *reason = status == Z_BUF_ERROR ? "the compressed data ends early (truncated file)"
                                                 : (stream.msg ? stream.msg : "corrupt data");
      set_error(error, error_capacity, reason);
      free(buffer);
      inflateEnd(&stream);
      return -1;
    }
  }
  *out = buffer;
  *out_size = stream.total_out;
  inflateEnd(&stream);
  return 0;
}
