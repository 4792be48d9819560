/*
 * conv_im2col.h — im2col for Conv's product path (conv.c): the input
 * patches of one image and group, for a chunk of output rows, written
 * straight into the panels of a packed B (strand__gemm_pack_b_begin), so
 * that the product reads them without packing them again.
 *
 * Row r < cg·taps of B is (input channel, tap) r; column i is the i-th
 * output position of the chunk (rows oh0 .. oh1 of every output depth);
 * taps that fall in the padding give zeros. With a bias row, row cg·taps
 * is all ones. Columns past the positions, up to the panel width, are
 * zeros. The values are copies of X, so every path writes the same B.
 */
#ifndef STRAND_KERNELS_CONV_IM2COL_H
#define STRAND_KERNELS_CONV_IM2COL_H

#include "kernels/kernels_internal.h"

typedef struct conv_im2col {
  const kernel_geometry *geo; /* as 3-D: leading dimensions of 1 */
  size_t cg, taps;            /* input channels of the group; kernel elements */
  const float *x;             /* this image's group: cg channels */
  float *panels;              /* the packed B's panels */
  size_t rows;                /* of B: cg·taps, plus one with the bias row */
  size_t nr;                  /* columns per panel */
  size_t positions;           /* columns of B */
  int64_t oh0, oh1;           /* output rows of the chunk */
} conv_im2col;

/* Writes all of B, split over up to `threads` threads (kernel_parallel):
 * the AVX-512 version where it applies, else the portable one. */
void conv_im2col_run(const conv_im2col *j, unsigned threads);

/* The AVX-512 version: true when it takes this geometry (2-D-like: one
 * output depth, kernel depth 1; column stride 1 or 2 without column
 * dilation; kernels up to CONV_IM2COL_MAX_KW columns; panels 32 wide). It
 * fills B a panel at a time, every row of a panel before the next panel,
 * so that the stores run through memory in order. */
#define CONV_IM2COL_MAX_KW 16
bool conv_im2col_avx512_takes(const conv_im2col *j);
/* kernel_range_fn: panels [begin, end) of B, every row (a conv_im2col *ctx
 * that conv_im2col_avx512_takes). */
void conv_im2col_panels_avx512(void *ctx, size_t begin, size_t end);

#endif /* STRAND_KERNELS_CONV_IM2COL_H */
