/*
 * matmul_fuse.h — what session rewrites (runtime/fuse_sequence.c) may ask
 * of MatMul's parameters at session creation, before any run.
 */
#ifndef STRAND_KERNELS_MATMUL_FUSE_H
#define STRAND_KERNELS_MATMUL_FUSE_H

#include <stdbool.h>
#include <stddef.h>

/* Makes a MatMul (its `params`, as prepared) add bias[j] to column j of
 * its output in the product's epilogue, before its activation. True when
 * taken: B is a constant matrix of n columns and no bias is set yet.
 * `bias` (n floats) must outlive the session (session memory). */
bool kernel_matmul_absorb_bias(void *params, const float *bias, size_t n);

#endif /* STRAND_KERNELS_MATMUL_FUSE_H */
