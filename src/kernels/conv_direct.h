/*
 * conv_direct.h — a 2-D Conv over few input channels (a network's first
 * layer: 3 channels, 3×3, stride 2) with AVX-512 (conv_direct_avx512.c),
 * straight from X without im2col: W is packed once at session creation
 * into panels of 8 output channels (for each tap, in W's order of input
 * channel, kernel row, kernel column, the panel's 8 weights); a register
 * tile holds 8 channels × up to 48 output columns of one output row,
 * starts at the bias, adds each tap's weight times the input vector the
 * tap reads (one masked load at column stride 1; two and a lane permute at
 * stride 2, columns in the padding masked to zero) and leaves through the
 * activation. Taps whose input row is in the padding are skipped (they
 * add nothing). Per output the sum runs over the taps in that order, each
 * step one fused multiply-add, whatever the batch size or thread count.
 */
#ifndef STRAND_KERNELS_CONV_DIRECT_H
#define STRAND_KERNELS_CONV_DIRECT_H

#include "kernels/kernels_internal.h"

/* The most input channels and kernel rows / columns the path takes: past
 * them im2col + GEMM (or Winograd) is as fast or faster (ResNet's 7×7 stem
 * ran 25% slower here than on im2col). */
#define CONV_DIRECT_MAX_CHANNELS 4
#define CONV_DIRECT_MAX_KERNEL 3

typedef struct conv_direct {
  size_t m, c, kh, kw; /* output, input channels; kernel rows, columns */
  const float *panels; /* ⌈m/8⌉ panels: c·kh·kw steps of 8 floats, rows past m zero */
  const float *bias;   /* ⌈m/8⌉·8 floats (zero past m, or all zero without B) */
} conv_direct;

/* One image's geometry: row stride and dilation any; column stride 1 or
 * 2; column dilation 1. */
typedef struct conv_direct_shape {
  int64_t H, W, OH, OW, sh, sw, dh, pt, pl;
} conv_direct_shape;

/* True when this build and CPU run the path (AVX-512). */
bool conv_direct_usable(void);

/* Packs W (m × c × kh × kw) and B (m floats, or NULL) into memory from
 * kernel_alloc. */
strand_status conv_direct_prepare(kernel_prepare *p, const float *w, const float *bias, size_t m,
                                  size_t c, size_t kh, size_t kw, conv_direct *out);

/* y (n × m × OH × OW) = act(conv(x (n × c × H × W)) + B) for n images. */
void conv_direct_run(const conv_direct *d, const conv_direct_shape *s, const float *x, size_t n,
                     const kernel_activation *act, float *y, unsigned threads);

#endif /* STRAND_KERNELS_CONV_DIRECT_H */
