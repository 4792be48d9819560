/*
 * registry.c — which ops strand can run.
 *
 * Temporary: no kernel exists yet, so only ops that need none are listed:
 *   Constant  its value is computed when the model loads;
 *   Identity  its output is its input.
 * (A node folded at load needs no kernel whatever its op; the model layer
 * counts that separately.) The runtime issue replaces this file with the
 * kernel table.
 */
#include "kernels/kernels_internal.h"

#include <string.h>

bool strand__kernel_supported(const char *domain, const char *op_type, int64_t opset) {
  (void)opset;
  if (domain[0] && strcmp(domain, "ai.onnx") != 0) return false;
  return strcmp(op_type, "Constant") == 0 || strcmp(op_type, "Identity") == 0;
}
