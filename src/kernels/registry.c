/*
 * registry.c — the kernel table: every kernel listed once (KERNEL_LIST in
 * kernels_internal.h), looked up by domain, op type, opset and input dtypes.
 *
 * Several definitions may share an op type (different opset ranges or
 * dtypes); the first whose opset range holds the node's opset and whose
 * `accepts` takes the node's input dtypes wins.
 */
#include "kernels/kernels_internal.h"

#include <string.h>

enum {
#define KERNEL_INDEX_(id) KERNEL_INDEX_##id,
  KERNEL_LIST(KERNEL_INDEX_)
#undef KERNEL_INDEX_
  KERNEL_COUNT
};

static const kernel_def *const table[] = {
#define KERNEL_ENTRY_(id) &kernel_##id,
    KERNEL_LIST(KERNEL_ENTRY_)
#undef KERNEL_ENTRY_
};

/* Adding or removing a kernel changes this number on purpose: update it
 * together with the tests that cover the kernel (tests/kernels/). */
#define KERNEL_EXPECTED_COUNT 91
_Static_assert(KERNEL_COUNT == KERNEL_EXPECTED_COUNT,
               "KERNEL_LIST changed: update KERNEL_EXPECTED_COUNT and the kernel tests");
_Static_assert(sizeof table / sizeof table[0] == KERNEL_COUNT, "one table entry per kernel");

static bool default_domain(const char *domain) {
  return domain[0] == '\0' || strcmp(domain, "ai.onnx") == 0;
}

static bool same_domain(const char *a, const char *b) {
  if (default_domain(a)) return default_domain(b);
  return strcmp(a, b) == 0;
}

static bool matches(const kernel_def *k, const char *domain, const char *op_type, int64_t opset) {
  if (strcmp(k->op_type, op_type) != 0 || !same_domain(k->domain, domain)) return false;
  /* A model that imports no opset for the domain gets the newest kernel. */
  if (opset < 0) return true;
  return opset >= k->opset_min && opset <= k->opset_max;
}

const kernel_def *kernel_find(const char *domain, const char *op_type, int64_t opset,
                              const strand_dtype *dtypes, size_t n_inputs, bool *op_known) {
  bool known = false;
  for (size_t i = 0; i < KERNEL_COUNT; i++) {
    const kernel_def *k = table[i];
    if (!matches(k, domain, op_type, opset)) continue;
    known = true;
    if (k->accepts(dtypes, n_inputs)) {
      if (op_known) *op_known = true;
      return k;
    }
  }
  if (op_known) *op_known = known;
  return NULL;
}

bool strand__kernel_supported(const char *domain, const char *op_type, int64_t opset) {
  for (size_t i = 0; i < KERNEL_COUNT; i++)
    if (matches(table[i], domain, op_type, opset)) return true;
  return false;
}

bool strand__kernel_supported_node(const graph *g, const graph_node *node) {
  strand_dtype dtypes[64];
  if (node->n_inputs > 64) return strand__kernel_supported(node->domain, node->op_type, node->opset);
  for (size_t i = 0; i < node->n_inputs; i++)
    dtypes[i] = node->inputs[i] >= 0 ? g->values[node->inputs[i]].dtype : STRAND_DTYPE_UNDEFINED;
  return kernel_find(node->domain, node->op_type, node->opset, dtypes, node->n_inputs, NULL) != NULL;
}

size_t kernel_count(void) { return KERNEL_COUNT; }

const kernel_def *kernel_at(size_t i) { return i < KERNEL_COUNT ? table[i] : NULL; }

const char *kernel_variant(const kernel_def *def, const void *params) {
  if (def == &kernel_Conv) return kernel_conv_variant(params);
  return "";
}
