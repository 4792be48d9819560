/*
 * conv_winograd.h — Conv by Winograd's F(2×2, 3×3) (conv_winograd.c):
 * 3×3 kernels at unit strides and dilations in one group, constant
 * weights. Each 2×2 block of outputs comes from a 4×4 block of input with
 * 16 multiplications per channel pair instead of 36: the input blocks are
 * transformed (V = Bᵀ d B), 16 products V_e · U_e run on the packed SGEMM
 * against the weights transformed once at session creation (U = G g Gᵀ,
 * packed as B), and the results are transformed back (Y = Aᵀ M A), the
 * bias and activation applied on the way out.
 *
 * A run's results for one image depend only on that image: the same
 * products in the same order whatever the batch size or thread count.
 */
#ifndef STRAND_KERNELS_CONV_WINOGRAD_H
#define STRAND_KERNELS_CONV_WINOGRAD_H

#include "kernels/kernels_internal.h"

typedef struct conv_winograd {
  size_t m, c;          /* output and input channels */
  const void *packed[16]; /* U_e as packed B: c × m */
} conv_winograd;

/* True when this build and CPU run the path (AVX-512). */
bool conv_winograd_usable(void);

/* Transforms and packs W (m × c × 3 × 3, row-major) into memory from
 * kernel_alloc (STRAND_MEMORY_WEIGHTS). */
strand_status conv_winograd_prepare(kernel_prepare *p, const float *w, size_t m, size_t c,
                                    conv_winograd *out);

/* One image's geometry. */
typedef struct conv_winograd_shape {
  int64_t H, W, OH, OW, pt, pl; /* pads before rows and columns */
} conv_winograd_shape;

/* Scratch bytes conv_winograd_run needs. */
size_t conv_winograd_scratch(const conv_winograd *wg, const conv_winograd_shape *s,
                             unsigned threads);

/* y (m × OH × OW) = act(conv(x (c × H × W)) + bias); bias may be NULL. */
void conv_winograd_run(const conv_winograd *wg, const conv_winograd_shape *s, const float *x,
                       const float *bias, const kernel_activation *act, float *y,
                       unsigned threads, void *scratch, size_t scratch_size);

#endif /* STRAND_KERNELS_CONV_WINOGRAD_H */
