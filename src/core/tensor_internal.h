/* tensor_internal.h — the tensor object's layout, for the layers above core
 * (kernels read tensors through this view). */
#ifndef STRAND_TENSOR_INTERNAL_H
#define STRAND_TENSOR_INTERNAL_H

#include "core/core_internal.h"

struct strand_tensor {
  strand__object header;
  strand_dtype dtype;
  size_t rank;
  int64_t dims[STRAND_MAX_RANK];
  size_t element_count;
  size_t byte_size;
  void *data;                  /* NULL when byte_size is 0 */
  bool owns_data;              /* allocated through the seam (TENSOR) */
  strand_release_fn release;   /* wrapped buffers: called at destruction */
  void *release_context;
};

/* Validates dtype, rank and dims and computes element count and byte size
 * with overflow checks; messages name `function`. */
strand_status strand__shape_check(strand_dtype dtype, const int64_t *shape, size_t rank,
                                  const char *function, size_t *elements, size_t *bytes);

/* strand_tensor_create for internal callers that know their own public
 * entry point: `site` is that entry's caller, `function` its name. With
 * `zero_fill` false the data is left as allocated: only for callers that
 * write every byte before the tensor is seen (a run's outputs). */
strand_status strand__tensor_create_at(strand_dtype dtype, const int64_t *shape, size_t rank,
                                       const void *site, const char *function, bool zero_fill,
                                       strand_tensor **out);

#endif
