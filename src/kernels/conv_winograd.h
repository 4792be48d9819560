/*
 * conv_winograd.h — Conv by Winograd's F(2×2, 3×3) or F(4×4, 3×3)
 * (conv_winograd.c): 3×3 kernels at unit strides and dilations in one
 * group, constant weights. Each r×r block of outputs (r = 2 or 4) comes
 * from an (r+2)×(r+2) block of input with (r+2)² multiplications per
 * channel pair instead of 9r²: 16 instead of 36 for r = 2, 36 instead of
 * 144 for r = 4. The input blocks are transformed (V = Bᵀ d B), (r+2)²
 * products V_e · U_e run on the packed SGEMM against the weights
 * transformed once at session creation (U = G g Gᵀ, packed as B), and the
 * results are transformed back (Y = Aᵀ M A), the bias and activation
 * applied on the way out.
 *
 * F(4×4, 3×3) does 44% fewer multiplications than F(2×2, 3×3) but keeps
 * 2.25 times the transformed weights, and its transforms round more
 * (Bᵀ and Aᵀ hold entries up to 5 and 8): its error is a few times F(2×2,
 * 3×3)'s, still within 1e-5 of the sum of |x·w| a conv output adds up.
 *
 * A run's results for one image depend only on that image: the same
 * products in the same order whatever the batch size or thread count.
 */
#ifndef STRAND_KERNELS_CONV_WINOGRAD_H
#define STRAND_KERNELS_CONV_WINOGRAD_H

#include "kernels/kernels_internal.h"

enum { CONV_WINOGRAD_MAX_ELEMENTS = 36 };

typedef struct conv_winograd {
  size_t m, c;           /* output and input channels */
  unsigned tile;         /* r: outputs per block side, 2 or 4 */
  unsigned elements;     /* (r+2)²: 16 or 36 */
  const void *packed[CONV_WINOGRAD_MAX_ELEMENTS]; /* U_e as packed B: c × m */
} conv_winograd;

/* True when this build and CPU run the path (AVX-512). */
bool conv_winograd_usable(void);

/* The block side r for outputs of oh × ow positions (oh or ow < 0: not
 * known before a run, and then 2). 4 where it saves a fifth of the
 * multiplications or more and leaves each product at least 28 rows: with
 * fewer, the products mostly stream the 2.25 times larger weights
 * (ResNet-18's 56×56 and 28×28 planes get 4, its 14×14 and 7×7 ones 2). */
unsigned conv_winograd_tile_for(int64_t oh, int64_t ow);

/* Transforms and packs W (m × c × 3 × 3, row-major) for blocks of side
 * `tile` (2 or 4) into memory from kernel_alloc (STRAND_MEMORY_WEIGHTS). */
strand_status conv_winograd_prepare(kernel_prepare *p, const float *w, size_t m, size_t c,
                                    unsigned tile, conv_winograd *out);

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
