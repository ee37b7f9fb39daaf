// cimaging.h: image codecs and gzip for Afterimage, over libpng, libjpeg-turbo and zlib.
// Every function returns 0 on success and -1 on failure, with a message in `error`
// (at most `error_capacity` bytes). Buffers returned through `out` are malloc'd: free() them.
#ifndef CIMAGING_H
#define CIMAGING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Decodes a PNG as stored: `channels` is 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)
/// after palette and low-bit-depth expansion; `bit_depth` is 8 or 16 (16-bit samples are
/// returned in native byte order). Pixels are row-major, channels interleaved.
int ci_png_decode(const uint8_t *data, size_t size, int *width, int *height, int *channels,
                  int *bit_depth, uint8_t **out, char *error, size_t error_capacity);

/// Encodes interleaved samples (8-bit, or 16-bit in native order) as a PNG.
int ci_png_encode(const uint8_t *pixels, int width, int height, int channels, int bit_depth,
                  uint8_t **out, size_t *out_size, char *error, size_t error_capacity);

/// Decodes a JPEG to 8-bit gray (grayscale files) or RGB; `channels` says which.
int ci_jpeg_decode(const uint8_t *data, size_t size, int *width, int *height, int *channels,
                   uint8_t **out, char *error, size_t error_capacity);

/// Inflates gzip (or zlib) data to at most `max_out` bytes (more is an error: a gzip bomb).
int ci_gunzip(const uint8_t *data, size_t size, size_t max_out, uint8_t **out, size_t *out_size, char *error,
              size_t error_capacity);

#ifdef __cplusplus
}
#endif

#endif
