/*
 * conv_pointwise.h — 1×1 Conv at unit strides without padding, one group,
 * constant weights, with AVX-512 (conv_pointwise_avx512.c): Y = act(W·X +
 * B) computed straight from X's planes (no packing of X, no im2col, no
 * fill): W is packed once at session creation into panels of `mr` output
 * channels; each register tile holds mr channels × 32 (or 16) positions,
 * starts at the bias, runs over the input channels in order and leaves
 * through the activation; the few positions past a plane's last whole
 * vector go one at a time across a panel's channels. Per output element
 * the sum is bias + w0·x0 + w1·x1 + ... in channel order, each step one
 * fused multiply-add, whatever the batch size, thread count or position.
 */
#ifndef STRAND_KERNELS_CONV_POINTWISE_H
#define STRAND_KERNELS_CONV_POINTWISE_H

#include "kernels/kernels_internal.h"

typedef struct conv_pointwise {
  size_t m, c, mr;   /* output, input channels; rows per panel (8, 12 or 14) */
  const float *panels; /* ⌈m/mr⌉ panels: c steps of mr floats, rows past m zero */
  const float *bias;   /* ⌈m/mr⌉·mr floats (zero past m, or all zero without B) */
} conv_pointwise;

/* True when this build and CPU run the path (AVX-512). */
bool conv_pointwise_usable(void);

/* Packs W (m × c) and B (m floats, or NULL) into memory from kernel_alloc. */
strand_status conv_pointwise_prepare(kernel_prepare *p, const float *w, const float *bias,
                                     size_t m, size_t c, conv_pointwise *out);

/* y (n × m × size) = act(W · x (n × c × size) + B) for n images; each
 * image's outputs are the same bits as when it runs alone. */
void conv_pointwise_run(const conv_pointwise *pw, const float *x, size_t n, size_t size,
                        const kernel_activation *act, float *y, unsigned threads);

#endif /* STRAND_KERNELS_CONV_POINTWISE_H */
