/*
 * conv_depthwise.h — one 2-D depthwise plane (one input channel, one output
 * channel) in portable C and with AVX2 / AVX-512, and with AVX-512 sixteen
 * small 3×3 planes at once, for Conv's direct depthwise path (conv.c) and
 * its tests; and MaxPool's plane (pool.c), which slides the same windows.
 *
 * Every variant computes, for each output (oh, ow),
 *   y = act(bias + sum over kh, then kw, of w[kh][kw] * x[ih][iw])
 * with ih = oh*sh - pt + kh*dh, iw = ow*sw - pl + kw*dw, taps outside the
 * input skipped; one float accumulator per output, taps added in that
 * order (AVX-512's 3×3 planes without dilation instead add three partial
 * sums, one per kernel row: (bias + row 0) + row 1 + row 2, except on the
 * rows next to the top and bottom padding outside its tall and flat runs;
 * see conv_depthwise_avx512_zero_padded), so a plane's result depends on
 * its geometry and data only, not on which image of a batch it is or how
 * the channels are split over threads.
 */
#ifndef STRAND_KERNELS_CONV_DEPTHWISE_H
#define STRAND_KERNELS_CONV_DEPTHWISE_H

#include "kernels/gemm.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct conv_dw_plane {
  const float *x;       /* H × W */
  const float *w;       /* KH × KW */
  float *y;             /* OH × OW */
  int64_t H, W, OH, OW, KH, KW;
  int64_t sh, sw, dh, dw; /* strides, dilations: >= 1 */
  int64_t pt, pl;         /* padding before rows, columns: >= 0 */
  float bias;
  strand__gemm_activation act;
  float lo, hi;           /* CLIP bounds */
} conv_dw_plane;

/* The portable version: any geometry. */
/* The outputs o in [0, n_out) whose tap o*stride + offset falls in
 * [0, n_in): [*lo, *hi) (empty when none does). Shared by the convolution
 * and pooling paths. */
void conv_tap_range(int64_t n_out, int64_t stride, int64_t offset, int64_t n_in, int64_t *lo,
                    int64_t *hi);

void conv_depthwise_plane_scalar(const conv_dw_plane *p);

/* The SIMD versions: column strides 1 and 2 only (false, nothing written,
 * for others); entered only on CPUs strand__cpu() reports capable, and
 * false when the build lacks the ISA. */
bool conv_depthwise_plane_avx2(const conv_dw_plane *p);
bool conv_depthwise_plane_avx512(const conv_dw_plane *p);

/* Whether conv_depthwise_plane_avx512 makes every output of p as whole
 * partial sums per kernel row, (bias + row 0) + row 1 + row 2, with taps
 * in the padding read as zeros (w·0 added, not skipped): its 3×3 runs
 * without dilation at stride 2, and at stride 1 on rows that fill most of
 * their vectors or on planes padded by one on every side. Elsewhere the
 * rows next to the padding take one sum of the taps inside instead. */
bool conv_depthwise_avx512_zero_padded(const conv_dw_plane *p);

/* Sixteen 3×3 planes of one geometry at once (conv_depthwise_block_avx512.c),
 * for Convs without dilation at equal row and column strides of 1 or 2
 * (conv_depthwise_block_fits). `p` describes plane 0 (p->bias unused);
 * plane i reads p->x + i·x_stride and the 9 weights at p->w + 9·i, adds
 * bias[i] (0 when bias is NULL) and writes p->y + i·y_stride. `scratch`:
 * conv_depthwise_block_scratch(p) bytes, 64-byte aligned. Each plane gets
 * exactly the bits conv_depthwise_plane_avx512 gives it: only geometries
 * it makes zero-padded are taken (conv_depthwise_avx512_zero_padded), and
 * of those only where the blocks are faster. False, nothing
 * written, when the geometry does not fit or the build lacks AVX-512;
 * entered only on CPUs strand__cpu() reports capable. */
bool conv_depthwise_block_fits(const conv_dw_plane *p);
size_t conv_depthwise_block_scratch(const conv_dw_plane *p);
bool conv_depthwise_block_avx512(const conv_dw_plane *p, size_t x_stride, size_t y_stride,
                                 const float *bias, void *scratch);

/* MaxPool over one plane with AVX-512, pool.c's rule (NaN never wins; a
 * window with no number gives -FLT_MAX), for column strides 1 and 2 (false,
 * nothing written, for others): the geometry fields of `p` as for Conv;
 * w, bias and the activation are not used. */
bool pool_max_plane_avx512(const conv_dw_plane *p);

#endif /* STRAND_KERNELS_CONV_DEPTHWISE_H */
