/*
 * kernels_internal.h — what the kernel layer offers the layers above it.
 *
 * For now only the question the model loader asks: can strand run this op?
 * The runtime issue replaces registry.c with the real registry (one entry
 * per kernel) and adds the kernel interface here.
 */
#ifndef STRAND_KERNELS_INTERNAL_H
#define STRAND_KERNELS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

/* True when strand can execute nodes of `op_type` in `domain` ("" for the
 * default ONNX domain) at `opset` (-1 when the model imports none for the
 * domain). Pure and thread-safe. */
bool strand__kernel_supported(const char *domain, const char *op_type, int64_t opset);

#endif /* STRAND_KERNELS_INTERNAL_H */
