/*
 * topk.c — TopK: the k largest (or smallest) elements along an axis, with
 * their indices, sorted (ties: the lower index first, as ONNX Runtime).
 *
 * Each line along the axis is copied with its indices into scratch and
 * sorted there; lines are split over the threads, each thread with a slot
 * of scratch of its own. k is read from input 1 during planning (a shape
 * input), so a constant k keeps the plan cacheable.
 */
#include "kernels/kernels_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct topk_params {
  int64_t axis, k_attribute; /* k_attribute: before opset 10 */
  bool largest;
} topk_params;

/* A value with its index: 64-bit integers keep their exact value (u or
 * i, compared as such); other types are compared as doubles. */
typedef struct entry {
  union {
    double f;
    int64_t i;
    uint64_t u;
  } value;
  int64_t index;
} entry;

static bool accepts_topk(const strand_dtype *d, size_t n) {
  return n >= 1 && n <= 2 &&
         kernel_dtype_in(d[0], KERNEL_DT_NUMBERS) &&
         (n < 2 || kernel_dtype_in(d[1], KERNEL_DT(INT64)));
}

static strand_status prepare_topk(kernel_prepare *p, void **out) {
  topk_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  int64_t largest = 1, sorted = 1;
  st = kernel_attr_int(p->node, "axis", -1, &params->axis);
  if (!st) st = kernel_attr_int(p->node, "largest", 1, &largest);
  if (!st) st = kernel_attr_int(p->node, "sorted", 1, &sorted);
  if (!st) st = kernel_attr_int(p->node, "k", -1, &params->k_attribute);
  params->largest = largest != 0;
  return st;
}

static strand_status topk_shape(const kernel_call *c, size_t *axis, int64_t *k) {
  const topk_params *p = c->params;
  const kernel_tensor *x = c->inputs[0], *kt = kernel_input(c, 1);
  strand_status st = kernel_axis(p->axis, x->rank, "attribute \"axis\"", axis);
  if (st) return st;
  if (kt) {
    if (kt->count != 1)
      return strand__fail(STRAND_E_SHAPE, "K has %zu values; expected 1", kt->count);
    *k = kernel_int_at(kt, 0);
  } else {
    *k = p->k_attribute;
  }
  if (*k < 0 || *k > x->dims[*axis])
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "k is %lld for axis %zu of %lld", (long long)*k,
                        *axis, (long long)x->dims[*axis]);
  return STRAND_OK;
}

static strand_status infer_topk(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  size_t axis;
  int64_t k, dims[STRAND_MAX_RANK];
  strand_status st = topk_shape(c, &axis, &k);
  if (st) return st;
  memcpy(dims, x->dims, x->rank * sizeof(int64_t));
  dims[axis] = k;
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, dims);
  kernel_tensor *indices = kernel_output(c, 1);
  if (indices) kernel_set_shape(indices, STRAND_DTYPE_INT64, x->rank, dims);
  return STRAND_OK;
}

static unsigned slots_for(const kernel_call *c) { return c->threads ? c->threads : 1; }

static size_t scratch_topk(const kernel_call *c) {
  size_t axis;
  int64_t k;
  if (topk_shape(c, &axis, &k)) return 0;
  return slots_for(c) * (size_t)c->inputs[0]->dims[axis] * sizeof(entry);
}

/* A total order: NaN above every number (the comparator must be
 * consistent for qsort). */
static int compare_values(double a, double b) {
  bool na = a != a, nb = b != b;
  if (na || nb) return na == nb ? 0 : na ? 1 : -1;
  return a < b ? -1 : a > b;
}

#define ORDER(a, b) ((a) < (b) ? -1 : (a) > (b))
#define INDEX_ORDER(a, b) (((a)->index > (b)->index) - ((a)->index < (b)->index))

static int larger_first(const void *x, const void *y) {
  const entry *a = x, *b = y;
  int order = compare_values(b->value.f, a->value.f);
  return order ? order : INDEX_ORDER(a, b);
}
static int smaller_first(const void *x, const void *y) {
  const entry *a = x, *b = y;
  int order = compare_values(a->value.f, b->value.f);
  return order ? order : INDEX_ORDER(a, b);
}
static int larger_first_i64(const void *x, const void *y) {
  const entry *a = x, *b = y;
  int order = ORDER(b->value.i, a->value.i);
  return order ? order : INDEX_ORDER(a, b);
}
static int smaller_first_i64(const void *x, const void *y) {
  const entry *a = x, *b = y;
  int order = ORDER(a->value.i, b->value.i);
  return order ? order : INDEX_ORDER(a, b);
}
static int larger_first_u64(const void *x, const void *y) {
  const entry *a = x, *b = y;
  int order = ORDER(b->value.u, a->value.u);
  return order ? order : INDEX_ORDER(a, b);
}
static int smaller_first_u64(const void *x, const void *y) {
  const entry *a = x, *b = y;
  int order = ORDER(a->value.u, b->value.u);
  return order ? order : INDEX_ORDER(a, b);
}

typedef struct topk_job {
  const kernel_call *c;
  size_t dim, inner, lines, slots;
  int64_t k;
  entry *scratch;
} topk_job;

static void topk_slot(void *p, size_t slot) {
  const topk_job *j = p;
  const kernel_call *c = j->c;
  const kernel_tensor *x = c->inputs[0];
  kernel_tensor *values = c->outputs[0], *indices = kernel_output(c, 1);
  const topk_params *params = c->params;
  entry *e = j->scratch + slot * j->dim;
  size_t size = strand_dtype_size(x->dtype);
  size_t begin = j->lines * slot / j->slots, end = j->lines * (slot + 1) / j->slots;
  for (size_t line = begin; line < end; line++) {
    size_t outer = line / j->inner, in = line % j->inner;
    size_t base = outer * j->dim * j->inner + in;
    for (size_t i = 0; i < j->dim; i++) {
      size_t from = base + i * j->inner;
      if (x->dtype == STRAND_DTYPE_INT64) e[i].value.i = ((const int64_t *)x->data)[from];
      else if (x->dtype == STRAND_DTYPE_UINT64) e[i].value.u = ((const uint64_t *)x->data)[from];
      else e[i].value.f = kernel_number_at(x->data, x->dtype, from);
      e[i].index = (int64_t)i;
    }
    int (*order)(const void *, const void *) =
        x->dtype == STRAND_DTYPE_INT64    ? (params->largest ? larger_first_i64 : smaller_first_i64)
        : x->dtype == STRAND_DTYPE_UINT64 ? (params->largest ? larger_first_u64 : smaller_first_u64)
                                          : (params->largest ? larger_first : smaller_first);
    qsort(e, j->dim, sizeof *e, order);
    size_t out_base = outer * (size_t)j->k * j->inner + in;
    for (int64_t i = 0; i < j->k; i++) {
      size_t at = out_base + (size_t)i * j->inner;
      /* the value itself, copied from the input: exact in every type */
      memcpy((char *)values->data + at * size,
             (const char *)x->data + (base + (size_t)e[i].index * j->inner) * size, size);
      if (indices) ((int64_t *)indices->data)[at] = e[i].index;
    }
  }
}

static strand_status run_topk(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  size_t axis;
  int64_t k;
  strand_status st = topk_shape(c, &axis, &k);
  if (st) return st;
  if (!c->outputs[0]->count) return STRAND_OK;
  topk_job j = {c, (size_t)x->dims[axis], 1, 0, slots_for(c), k, c->scratch};
  for (size_t d = axis + 1; d < x->rank; d++) j.inner *= (size_t)x->dims[d];
  j.lines = x->count / j.dim;
  size_t room = j.dim ? c->scratch_size / (j.dim * sizeof(entry)) : 1;
  if (j.slots > room) j.slots = room ? room : 1;
  if (j.slots > j.lines) j.slots = j.lines;
  if (j.slots <= 1 || j.lines * j.dim < 4096) {
    j.slots = 1;
    topk_slot(&j, 0);
  } else {
    strand__parallel_for(j.slots, topk_slot, &j, c->threads);
  }
  return STRAND_OK;
}

const kernel_def kernel_TopK = {"TopK", "", 1, KERNEL_OPSET_MAX, 1u << 1, 0, accepts_topk, prepare_topk,
                                infer_topk, scratch_topk, run_topk};
