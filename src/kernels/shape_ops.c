/*
 * shape_ops.c — ops that move data without arithmetic, and the shape
 * arithmetic exporters emit: Identity, Constant, Dropout (inference),
 * Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Concat, Gather, Shape,
 * Size, Cast, Expand, ConstantOfShape, Range, Slice.
 *
 * Every kernel here works on any dtype by moving elements of its byte size.
 * Shapes read from tensors (Reshape's target, Slice's starts) are read by
 * infer, which sees the actual values during planning runs; the registry
 * marks those inputs in shape_inputs.
 */
#include "kernels/kernels_internal.h"

#include <math.h>
#include <string.h>

static size_t item_size(const kernel_tensor *t) { return strand_dtype_size(t->dtype); }

static strand_status infer_same(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, x->dims);
  return STRAND_OK;
}

/* Copies input 0's data into output 0 (same byte size). Identity, Dropout,
 * Flatten, Reshape, Squeeze and Unsqueeze run this only where the session's
 * executor cannot make output 0 a view of input 0 (runtime/plan.c,
 * plan_node_may_view): an output handed to the caller, an input still read
 * after a planning run's view would free it, nodes of If branches. */
static strand_status run_copy(const kernel_call *c) {
  kernel_copy(c->threads, c->outputs[0]->data, c->inputs[0]->data,
              c->outputs[0]->count * item_size(c->outputs[0]));
  return STRAND_OK;
}

static bool accepts_first_any(const strand_dtype *d, size_t n) {
  return n >= 1 && kernel_dtype_in(d[0], KERNEL_DT_ALL);
}

static bool int_tensor_dtype(strand_dtype d) {
  return kernel_dtype_in(d, KERNEL_DT(INT64) | KERNEL_DT(INT32));
}

/* Reads a 1-D (or scalar) integer tensor into `out` (at most `cap`). */
static strand_status read_ints(const kernel_tensor *t, const char *what, int64_t *out, size_t cap,
                               size_t *n) {
  if (t->dtype != STRAND_DTYPE_INT64 && t->dtype != STRAND_DTYPE_INT32)
    return strand__fail(STRAND_E_DTYPE, "%s is %s; expected int64", what,
                        strand_dtype_name(t->dtype));
  if (t->rank > 1)
    return strand__fail(STRAND_E_SHAPE, "%s has %zu dimensions; expected 1", what, t->rank);
  if (t->count > cap)
    return strand__fail(STRAND_E_UNSUPPORTED, "%s has %zu values; at most %zu are handled", what,
                        t->count, cap);
  for (size_t i = 0; i < t->count; i++) out[i] = kernel_int_at(t, i);
  *n = t->count;
  return STRAND_OK;
}

/* ---- strided copies (Transpose, Slice) ---------------------------------------- */

typedef struct strided {
  size_t rank;                      /* >= 1 */
  int64_t dims[STRAND_MAX_RANK];    /* output dims */
  int64_t strides[STRAND_MAX_RANK]; /* source element strides per output dim */
  const unsigned char *src;         /* the element at output index 0 */
  unsigned char *dst;
  size_t item;
} strided;

/* Drops dims of 1 and merges dims the source walks contiguously. */
static void strided_simplify(strided *s) {
  size_t m = 0;
  int64_t dims[STRAND_MAX_RANK], strides[STRAND_MAX_RANK];
  for (size_t d = 0; d < s->rank; d++) {
    if (s->dims[d] == 1) continue;
    if (m && strides[m - 1] == s->strides[d] * s->dims[d]) {
      dims[m - 1] *= s->dims[d];
      strides[m - 1] = s->strides[d];
      continue;
    }
    dims[m] = s->dims[d];
    strides[m] = s->strides[d];
    m++;
  }
  if (!m) {
    dims[0] = 1;
    strides[0] = 1;
    m = 1;
  }
  s->rank = m;
  memcpy(s->dims, dims, m * sizeof(int64_t));
  memcpy(s->strides, strides, m * sizeof(int64_t));
}

static void strided_rows(void *p, size_t begin, size_t end) {
  const strided *s = p;
  size_t last = s->rank - 1, inner = (size_t)s->dims[last], item = s->item;
  int64_t step = s->strides[last];
  int64_t index[STRAND_MAX_RANK] = {0};
  int64_t offset = 0;
  size_t row = begin;
  for (size_t d = last; d-- > 0;) {
    index[d] = (int64_t)(row % (size_t)s->dims[d]);
    row /= (size_t)s->dims[d];
    offset += index[d] * s->strides[d];
  }
  for (size_t r = begin; r < end; r++) {
    const unsigned char *from = s->src + offset * (int64_t)item;
    unsigned char *to = s->dst + r * inner * item;
    if (step == 1) {
      memcpy(to, from, inner * item);
    } else if (item == 4) {
      for (size_t i = 0; i < inner; i++) memcpy(to + i * 4, from + (int64_t)i * step * 4, 4);
    } else {
      for (size_t i = 0; i < inner; i++) memcpy(to + i * item, from + (int64_t)i * step * (int64_t)item, item);
    }
    for (size_t d = last; d-- > 0;) {
      offset += s->strides[d];
      if (++index[d] < s->dims[d]) break;
      offset -= s->strides[d] * s->dims[d];
      index[d] = 0;
    }
  }
}

static void strided_copy(unsigned threads, strided *s, size_t count) {
  if (!count) return;
  strided_simplify(s);
  size_t inner = (size_t)s->dims[s->rank - 1];
  kernel_parallel(threads, count / inner, kernel_grain(inner * 2), strided_rows, s);
}

/* ---- Identity, Constant, Dropout ------------------------------------------------- */

const kernel_def kernel_Identity = {"Identity", "", 1, KERNEL_OPSET_MAX, 0, 0, accepts_first_any, NULL,
                                    infer_same, NULL, run_copy};

typedef struct constant_params {
  const onnx_tensor *value;
} constant_params;

static strand_status prepare_constant(kernel_prepare *p, void **out) {
  int32_t v = p->node->n_outputs ? p->node->outputs[0] : -1;
  const graph_value *gv = v >= 0 ? &p->graph->values[v] : NULL;
  if (!gv || !(gv->flags & GRAPH_VALUE_CONSTANT) || !gv->constant)
    return strand__fail(STRAND_E_UNSUPPORTED, "a Constant whose value was not computed at load");
  constant_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  params->value = gv->constant;
  return STRAND_OK;
}

static strand_status infer_constant(const kernel_call *c) {
  const constant_params *p = c->params;
  kernel_set_shape(c->outputs[0], p->value->dtype, p->value->rank, p->value->dims);
  return STRAND_OK;
}

static strand_status run_constant(const kernel_call *c) {
  const constant_params *p = c->params;
  if (p->value->byte_size) memcpy(c->outputs[0]->data, p->value->data, p->value->byte_size);
  return STRAND_OK;
}

const kernel_def kernel_Constant = {"Constant", "", 1, KERNEL_OPSET_MAX, 0, 0, kernel_accepts_any,
                                    prepare_constant, infer_constant, NULL, run_constant};

static bool accepts_dropout(const strand_dtype *d, size_t n) {
  return n >= 1 && kernel_dtype_in(d[0], KERNEL_DT_FLOATS | KERNEL_DT(FLOAT16) | KERNEL_DT(BFLOAT16)) &&
         (n < 3 || kernel_dtype_in(d[2], KERNEL_DT(BOOL)));
}

/* Training mode drops nothing only when the ratio is 0 (the default ratio
 * is 0.5): then the output is the input and the mask all true, as in
 * inference. Any other ratio in training mode is refused: strand runs
 * inference only. */
static strand_status dropout_training_check(const kernel_call *c) {
  const kernel_tensor *ratio = kernel_input(c, 1), *training = kernel_input(c, 2);
  if (!training || !training->count || !((const uint8_t *)training->data)[0]) return STRAND_OK;
  double r = ratio && ratio->count ? kernel_number_at(ratio->data, ratio->dtype, 0) : 0.5;
  if (r != 0)
    return strand__fail(STRAND_E_UNSUPPORTED, "input training_mode is true with ratio %g; strand "
                        "runs inference only (training mode with ratio 0 is handled)", r);
  return STRAND_OK;
}

static strand_status infer_dropout(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  kernel_tensor *mask = kernel_output(c, 1);
  if (c->outputs[0]) infer_same(c);
  if (mask) kernel_set_shape(mask, STRAND_DTYPE_BOOL, x->rank, x->dims);
  return STRAND_OK;
}

static strand_status run_dropout(const kernel_call *c) {
  strand_status st = dropout_training_check(c);
  if (st) return st;
  if (c->outputs[0]) run_copy(c);
  kernel_tensor *mask = kernel_output(c, 1);
  if (mask && mask->count) memset(mask->data, 1, mask->count);
  return STRAND_OK;
}

/* training_mode must be constant: false, or true with a constant ratio of
 * 0 (a run-time refusal would be an error, not a missing feature). */
static strand_status prepare_dropout(kernel_prepare *p, void **out) {
  (void)out;
  if (p->node->n_inputs < 3 || p->node->inputs[2] < 0) return STRAND_OK;
  const onnx_tensor *t = kernel_constant_input(p, 2);
  if (!t)
    return strand__fail(STRAND_E_UNSUPPORTED, "input training_mode is computed at run time; "
                        "strand runs inference only and needs it constant (false)");
  if (!t->count || !((const uint8_t *)t->data)[0]) return STRAND_OK;
  bool has_ratio = p->node->n_inputs >= 2 && p->node->inputs[1] >= 0;
  const onnx_tensor *r = has_ratio ? kernel_constant_input(p, 1) : NULL;
  if (has_ratio && !r)
    return strand__fail(STRAND_E_UNSUPPORTED, "input training_mode is true and ratio is computed "
                        "at run time; strand runs inference only (training mode with ratio 0 is "
                        "handled)");
  double ratio = r && r->count ? kernel_number_at(r->data, r->dtype, 0) : 0.5;
  if (ratio != 0)
    return strand__fail(STRAND_E_UNSUPPORTED, "input training_mode is true with ratio %g; strand "
                        "runs inference only (training mode with ratio 0 is handled)", ratio);
  return STRAND_OK;
}

const kernel_def kernel_Dropout = {"Dropout", "", 7, KERNEL_OPSET_MAX, 0, 0, accepts_dropout, prepare_dropout,
                                   infer_dropout, NULL, run_dropout};

/* ---- Flatten, Reshape, Squeeze, Unsqueeze ---------------------------------------- */

typedef struct axes_params {
  int64_t axis;                   /* Flatten */
  bool allow_zero;                /* Reshape */
  bool from_attribute;            /* Squeeze, Unsqueeze before opset 13 */
  size_t n_axes;
  int64_t axes[STRAND_MAX_RANK];
} axes_params;

static strand_status new_axes_params(kernel_prepare *p, void **out, axes_params **params) {
  strand_status st = kernel_alloc(p, sizeof(axes_params), STRAND_MEMORY_OTHER, out);
  if (!st) *params = *out;
  return st;
}

static strand_status prepare_flatten(kernel_prepare *p, void **out) {
  axes_params *params;
  strand_status st = new_axes_params(p, out, &params);
  if (!st) st = kernel_attr_int(p->node, "axis", 1, &params->axis);
  return st;
}

static strand_status infer_flatten(const kernel_call *c) {
  const axes_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  int64_t r = (int64_t)x->rank, axis = p->axis < 0 ? p->axis + r : p->axis;
  if (axis < 0 || axis > r)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "attribute \"axis\" is %lld, outside [%lld, "
                        "%lld] for rank %lld", (long long)p->axis, (long long)-r, (long long)r,
                        (long long)r);
  int64_t dims[2] = {1, 1};
  for (int64_t i = 0; i < r; i++) dims[i < axis ? 0 : 1] *= x->dims[i];
  kernel_set_shape(c->outputs[0], x->dtype, 2, dims);
  return STRAND_OK;
}

const kernel_def kernel_Flatten = {"Flatten", "", 1, KERNEL_OPSET_MAX, 0, 0, accepts_first_any, prepare_flatten,
                                   infer_flatten, NULL, run_copy};

static bool accepts_reshape(const strand_dtype *d, size_t n) {
  return n == 2 && kernel_dtype_in(d[0], KERNEL_DT_ALL) && int_tensor_dtype(d[1]);
}

static strand_status prepare_reshape(kernel_prepare *p, void **out) {
  axes_params *params;
  int64_t allow_zero = 0;
  strand_status st = new_axes_params(p, out, &params);
  if (!st) st = kernel_attr_int(p->node, "allowzero", 0, &allow_zero);
  if (!st) params->allow_zero = allow_zero != 0;
  return st;
}

static strand_status infer_reshape(const kernel_call *c) {
  const axes_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  int64_t want[STRAND_MAX_RANK], dims[STRAND_MAX_RANK];
  size_t n;
  strand_status st = read_ints(c->inputs[1], "the shape input", want, STRAND_MAX_RANK, &n);
  if (st) return st;
  char sx[160];
  int64_t known = 1;
  size_t unknown = SIZE_MAX;
  for (size_t i = 0; i < n; i++) {
    int64_t v = want[i];
    if (v == 0 && !p->allow_zero) {
      if (i >= x->rank)
        return strand__fail(STRAND_E_SHAPE, "shape entry %zu is 0 (copy) but X %s has only %zu "
                            "dimensions", i, kernel_shape_text(x, sx, sizeof sx), x->rank);
      v = x->dims[i];
    } else if (v == -1) {
      if (unknown != SIZE_MAX)
        return strand__fail(STRAND_E_SHAPE, "the shape has -1 twice (entries %zu and %zu)",
                            unknown, i);
      unknown = i;
      dims[i] = -1;
      continue;
    } else if (v < 0) {
      return strand__fail(STRAND_E_SHAPE, "shape entry %zu is %lld", i, (long long)v);
    }
    dims[i] = v;
    if (__builtin_mul_overflow(known, v, &known))
      return strand__fail(STRAND_E_SHAPE, "the shape's element count overflows");
  }
  int64_t count = (int64_t)x->count;
  if (unknown != SIZE_MAX) {
    if (known == 0 || count % known != 0)
      return strand__fail(STRAND_E_SHAPE, "cannot reshape X %s (%lld elements) with -1 at entry "
                          "%zu: the other entries give %lld", kernel_shape_text(x, sx, sizeof sx),
                          (long long)count, unknown, (long long)known);
    dims[unknown] = count / known;
  } else if (known != count) {
    kernel_tensor t = {.rank = n};
    memcpy(t.dims, dims, n * sizeof(int64_t));
    char st2[160];
    return strand__fail(STRAND_E_SHAPE, "cannot reshape X %s (%lld elements) to %s (%lld)",
                        kernel_shape_text(x, sx, sizeof sx), (long long)count,
                        kernel_shape_text(&t, st2, sizeof st2), (long long)known);
  }
  kernel_set_shape(c->outputs[0], x->dtype, n, dims);
  return STRAND_OK;
}

const kernel_def kernel_Reshape = {"Reshape", "", 5, KERNEL_OPSET_MAX, 1u << 1, 0, accepts_reshape,
                                   prepare_reshape, infer_reshape, NULL, run_copy};

static strand_status prepare_squeeze(kernel_prepare *p, void **out) {
  axes_params *params;
  strand_status st = new_axes_params(p, out, &params);
  if (st) return st;
  if (p->node->opset >= 13 || p->node->opset < 0) return STRAND_OK;
  params->from_attribute = true;
  const int64_t *axes;
  size_t n;
  st = kernel_attr_ints(p->node, "axes", &axes, &n);
  if (st) return st;
  if (n > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"axes\" has %zu values", n);
  if (axes) memcpy(params->axes, axes, n * sizeof(int64_t));
  params->n_axes = n;
  return STRAND_OK;
}

/* The axes of a Squeeze or Unsqueeze: the attribute's or input 1's. */
static strand_status axes_of(const kernel_call *c, int64_t *axes, size_t *n) {
  const axes_params *p = c->params;
  if (p->from_attribute) {
    memcpy(axes, p->axes, p->n_axes * sizeof(int64_t));
    *n = p->n_axes;
    return STRAND_OK;
  }
  const kernel_tensor *t = kernel_input(c, 1);
  *n = 0;
  return t ? read_ints(t, "the axes input", axes, STRAND_MAX_RANK, n) : STRAND_OK;
}

/* Normalizes `axes` against `rank` into flags; duplicates fail. */
static strand_status axes_flags(const int64_t *axes, size_t n, size_t rank, bool *flags) {
  for (size_t i = 0; i < rank; i++) flags[i] = false;
  for (size_t i = 0; i < n; i++) {
    size_t a;
    strand_status st = kernel_axis(axes[i], rank, "axis", &a);
    if (st) return st;
    if (flags[a])
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "axis %lld is given twice", (long long)axes[i]);
    flags[a] = true;
  }
  return STRAND_OK;
}

static strand_status infer_squeeze(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  int64_t axes[STRAND_MAX_RANK], dims[STRAND_MAX_RANK];
  size_t n, rank = 0;
  bool flags[STRAND_MAX_RANK];
  strand_status st = axes_of(c, axes, &n);
  if (!st && n) st = axes_flags(axes, n, x->rank, flags);
  if (st) return st;
  char sx[160];
  for (size_t i = 0; i < x->rank; i++) {
    bool drop = n ? flags[i] : x->dims[i] == 1;
    if (drop && x->dims[i] != 1)
      return strand__fail(STRAND_E_SHAPE, "X %s: dimension %zu is %lld, not 1",
                          kernel_shape_text(x, sx, sizeof sx), i, (long long)x->dims[i]);
    if (!drop) dims[rank++] = x->dims[i];
  }
  kernel_set_shape(c->outputs[0], x->dtype, rank, dims);
  return STRAND_OK;
}

static bool accepts_squeeze(const strand_dtype *d, size_t n) {
  return n >= 1 && n <= 2 && kernel_dtype_in(d[0], KERNEL_DT_ALL) && (n < 2 || int_tensor_dtype(d[1]));
}

const kernel_def kernel_Squeeze = {"Squeeze", "", 1, KERNEL_OPSET_MAX, 1u << 1, 0, accepts_squeeze,
                                   prepare_squeeze, infer_squeeze, NULL, run_copy};

static strand_status infer_unsqueeze(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  int64_t axes[STRAND_MAX_RANK], dims[STRAND_MAX_RANK];
  size_t n;
  bool flags[STRAND_MAX_RANK];
  strand_status st = axes_of(c, axes, &n);
  if (st) return st;
  size_t rank = x->rank + n;
  if (rank > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_UNSUPPORTED, "the result would have %zu dimensions; at most %d "
                        "are handled", rank, STRAND_MAX_RANK);
  st = axes_flags(axes, n, rank, flags);
  if (st) return st;
  for (size_t i = 0, from = 0; i < rank; i++) dims[i] = flags[i] ? 1 : x->dims[from++];
  kernel_set_shape(c->outputs[0], x->dtype, rank, dims);
  return STRAND_OK;
}

const kernel_def kernel_Unsqueeze = {"Unsqueeze", "", 1, KERNEL_OPSET_MAX, 1u << 1, 0, accepts_squeeze,
                                     prepare_squeeze, infer_unsqueeze, NULL, run_copy};

/* ---- Transpose ----------------------------------------------------------------------- */

typedef struct transpose_params {
  size_t n_perm; /* 0: reverse the dims */
  int64_t perm[STRAND_MAX_RANK];
} transpose_params;

static strand_status prepare_transpose(kernel_prepare *p, void **out) {
  transpose_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  const int64_t *perm;
  size_t n;
  st = kernel_attr_ints(p->node, "perm", &perm, &n);
  if (st) return st;
  if (n > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_UNSUPPORTED, "attribute \"perm\" has %zu values", n);
  bool seen[STRAND_MAX_RANK] = {false};
  for (size_t i = 0; i < n; i++) {
    if (perm[i] < 0 || perm[i] >= (int64_t)n || seen[perm[i]])
      return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"perm\" is not a permutation of "
                          "0..%zu (entry %zu is %lld)", n - 1, i, (long long)perm[i]);
    seen[perm[i]] = true;
    params->perm[i] = perm[i];
  }
  params->n_perm = n;
  return STRAND_OK;
}

static void perm_of(const transpose_params *p, size_t rank, int64_t *perm) {
  for (size_t i = 0; i < rank; i++) perm[i] = p->n_perm ? p->perm[i] : (int64_t)(rank - 1 - i);
}

bool kernel_transpose_keeps_order(const void *params, const kernel_tensor *x) {
  const transpose_params *p = params;
  if (p->n_perm && p->n_perm != x->rank) return false;
  int64_t perm[STRAND_MAX_RANK], last = -1;
  perm_of(p, x->rank, perm);
  for (size_t i = 0; i < x->rank; i++) {
    if (x->dims[perm[i]] == 1) continue;
    if (perm[i] < last) return false;
    last = perm[i];
  }
  return true;
}

static strand_status infer_transpose(const kernel_call *c) {
  const transpose_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  if (p->n_perm && p->n_perm != x->rank) {
    char sx[160];
    return strand__fail(STRAND_E_SHAPE, "attribute \"perm\" has %zu values for X %s", p->n_perm,
                        kernel_shape_text(x, sx, sizeof sx));
  }
  int64_t perm[STRAND_MAX_RANK], dims[STRAND_MAX_RANK];
  perm_of(p, x->rank, perm);
  for (size_t i = 0; i < x->rank; i++) dims[i] = x->dims[perm[i]];
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, dims);
  return STRAND_OK;
}

static strand_status run_transpose(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  kernel_tensor *y = c->outputs[0];
  int64_t perm[STRAND_MAX_RANK], in_strides[STRAND_MAX_RANK];
  perm_of(c->params, x->rank, perm);
  int64_t step = 1;
  for (size_t d = x->rank; d-- > 0;) {
    in_strides[d] = step;
    step *= x->dims[d];
  }
  strided s = {y->rank ? y->rank : 1, {1}, {1}, x->data, y->data, item_size(x)};
  for (size_t i = 0; i < y->rank; i++) {
    s.dims[i] = y->dims[i];
    s.strides[i] = in_strides[perm[i]];
  }
  strided_copy(c->threads, &s, y->count);
  return STRAND_OK;
}

const kernel_def kernel_Transpose = {"Transpose", "", 1, KERNEL_OPSET_MAX, 0, 0, accepts_first_any,
                                     prepare_transpose, infer_transpose, NULL, run_transpose};

/* ---- Concat --------------------------------------------------------------------------------- */

typedef struct axis_params {
  int64_t axis;
} axis_params;

static strand_status prepare_axis(kernel_prepare *p, void **out, int64_t fallback) {
  axis_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  return kernel_attr_int(p->node, "axis", fallback, &params->axis);
}

static strand_status prepare_concat(kernel_prepare *p, void **out) {
  if (!graph_node_attr(p->node, "axis"))
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"axis\" is missing");
  return prepare_axis(p, out, 0);
}

static bool accepts_concat(const strand_dtype *d, size_t n) {
  if (n == 0 || !kernel_dtype_in(d[0], KERNEL_DT_ALL)) return false;
  for (size_t i = 1; i < n; i++)
    if (!kernel_dtype_same(d[0], d[i])) return false;
  return true;
}

static strand_status infer_concat(const kernel_call *c) {
  const axis_params *p = c->params;
  const kernel_tensor *first = c->inputs[0];
  for (size_t i = 0; i < c->n_inputs; i++)
    if (!c->inputs[i]) return strand__fail(STRAND_E_INVALID_ARGUMENT, "input %zu is absent", i);
  size_t axis;
  strand_status st = kernel_axis(p->axis, first->rank, "attribute \"axis\"", &axis);
  if (st) return st;
  int64_t dims[STRAND_MAX_RANK];
  memcpy(dims, first->dims, first->rank * sizeof(int64_t));
  dims[axis] = 0;
  char sa[160], sb[160];
  for (size_t i = 0; i < c->n_inputs; i++) {
    const kernel_tensor *t = c->inputs[i];
    if (t->dtype != first->dtype)
      return strand__fail(STRAND_E_DTYPE, "input %zu is %s but input 0 is %s", i,
                          strand_dtype_name(t->dtype), strand_dtype_name(first->dtype));
    bool fits = t->rank == first->rank;
    for (size_t d = 0; d < t->rank && fits; d++) fits = d == axis || t->dims[d] == first->dims[d];
    if (!fits)
      return strand__fail(STRAND_E_SHAPE, "input %zu %s does not fit input 0 %s along axis %zu",
                          i, kernel_shape_text(t, sa, sizeof sa),
                          kernel_shape_text(first, sb, sizeof sb), axis);
    dims[axis] += t->dims[axis];
  }
  kernel_set_shape(c->outputs[0], first->dtype, first->rank, dims);
  return STRAND_OK;
}

typedef struct concat_job {
  const kernel_call *c;
  size_t axis, outer, inner, out_row; /* out_row: bytes per outer row of the output */
} concat_job;

static void concat_rows(void *p, size_t begin, size_t end) {
  const concat_job *j = p;
  const kernel_call *c = j->c;
  size_t item = item_size(c->outputs[0]);
  for (size_t o = begin; o < end; o++) {
    unsigned char *to = (unsigned char *)c->outputs[0]->data + o * j->out_row;
    for (size_t i = 0; i < c->n_inputs; i++) {
      const kernel_tensor *t = c->inputs[i];
      size_t bytes = (size_t)t->dims[j->axis] * j->inner * item;
      if (bytes) memcpy(to, (const unsigned char *)t->data + o * bytes, bytes);
      to += bytes;
    }
  }
}

static strand_status run_concat(const kernel_call *c) {
  const axis_params *p = c->params;
  kernel_tensor *y = c->outputs[0];
  if (!y->count) return STRAND_OK;
  size_t axis;
  strand_status st = kernel_axis(p->axis, y->rank, "attribute \"axis\"", &axis);
  if (st) return st;
  concat_job j = {c, axis, 1, 1, 0};
  for (size_t d = 0; d < axis; d++) j.outer *= (size_t)y->dims[d];
  for (size_t d = axis + 1; d < y->rank; d++) j.inner *= (size_t)y->dims[d];
  j.out_row = (size_t)y->dims[axis] * j.inner * item_size(y);
  kernel_parallel(c->threads, j.outer, kernel_grain(j.out_row / 4 + 1), concat_rows, &j);
  return STRAND_OK;
}

const kernel_def kernel_Concat = {"Concat", "", 4, KERNEL_OPSET_MAX, 0, 0, accepts_concat, prepare_concat,
                                  infer_concat, NULL, run_concat};

/* ---- Gather ------------------------------------------------------------------------------ */

static strand_status prepare_gather(kernel_prepare *p, void **out) { return prepare_axis(p, out, 0); }

static bool accepts_gather(const strand_dtype *d, size_t n) {
  return n == 2 && kernel_dtype_in(d[0], KERNEL_DT_ALL) && int_tensor_dtype(d[1]);
}

bool kernel_gather_is_block(const void *params, const kernel_tensor *x, const kernel_tensor *indices,
                            size_t *offset) {
  const axis_params *p = params;
  int64_t axis = p->axis < 0 ? p->axis + (int64_t)x->rank : p->axis;
  if (indices->count != 1 || !indices->data || axis < 0 || axis >= (int64_t)x->rank) return false;
  for (int64_t d = 0; d < axis; d++)
    if (x->dims[d] != 1) return false;
  int64_t size = x->dims[axis], at = kernel_int_at(indices, 0);
  if (at < 0) at += size;
  if (at < 0 || at >= size) return false; /* the run reports it */
  *offset = (size_t)at * (x->count / (size_t)size) * item_size(x);
  return true;
}

static strand_status infer_gather(const kernel_call *c) {
  const axis_params *p = c->params;
  const kernel_tensor *x = c->inputs[0], *idx = c->inputs[1];
  size_t axis;
  strand_status st = kernel_axis(p->axis, x->rank, "attribute \"axis\"", &axis);
  if (st) return st;
  size_t rank = x->rank - 1 + idx->rank;
  if (rank > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_UNSUPPORTED, "the result would have %zu dimensions", rank);
  int64_t dims[STRAND_MAX_RANK];
  size_t r = 0;
  for (size_t d = 0; d < axis; d++) dims[r++] = x->dims[d];
  for (size_t d = 0; d < idx->rank; d++) dims[r++] = idx->dims[d];
  for (size_t d = axis + 1; d < x->rank; d++) dims[r++] = x->dims[d];
  kernel_set_shape(c->outputs[0], x->dtype, rank, dims);
  return STRAND_OK;
}

typedef struct gather_job {
  const kernel_tensor *x, *idx;
  kernel_tensor *y;
  size_t axis_size, inner_bytes, n_idx;
} gather_job;

static void gather_rows(void *p, size_t begin, size_t end) {
  const gather_job *j = p;
  for (size_t r = begin; r < end; r++) {
    size_t o = r / j->n_idx, i = r % j->n_idx;
    int64_t at = kernel_int_at(j->idx, i);
    if (at < 0) at += (int64_t)j->axis_size;
    const unsigned char *from = (const unsigned char *)j->x->data + (o * j->axis_size + (size_t)at) * j->inner_bytes;
    memcpy((unsigned char *)j->y->data + r * j->inner_bytes, from, j->inner_bytes);
  }
}

static strand_status run_gather(const kernel_call *c) {
  const axis_params *p = c->params;
  const kernel_tensor *x = c->inputs[0], *idx = c->inputs[1];
  kernel_tensor *y = c->outputs[0];
  size_t axis;
  strand_status st = kernel_axis(p->axis, x->rank, "attribute \"axis\"", &axis);
  if (st) return st;
  int64_t size = x->dims[axis];
  for (size_t i = 0; i < idx->count; i++) {
    int64_t at = kernel_int_at(idx, i);
    if (at < -size || at >= size)
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "index %lld (element %zu of the indices) is "
                          "out of range for axis %zu of size %lld", (long long)at, i, axis,
                          (long long)size);
  }
  if (!y->count) return STRAND_OK;
  gather_job j = {x, idx, y, (size_t)size, item_size(x), idx->count};
  size_t outer = 1;
  for (size_t d = 0; d < axis; d++) outer *= (size_t)x->dims[d];
  for (size_t d = axis + 1; d < x->rank; d++) j.inner_bytes *= (size_t)x->dims[d];
  kernel_parallel(c->threads, outer * j.n_idx, kernel_grain(j.inner_bytes / 4 + 4), gather_rows, &j);
  return STRAND_OK;
}

const kernel_def kernel_Gather = {"Gather", "", 1, KERNEL_OPSET_MAX, 0, 0, accepts_gather, prepare_gather,
                                  infer_gather, NULL, run_gather};

/* ---- Shape, Size ---------------------------------------------------------------------------- */

typedef struct shape_params {
  int64_t start, end;
  bool has_end;
} shape_params;

static strand_status prepare_shape(kernel_prepare *p, void **out) {
  shape_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  params->has_end = graph_node_attr(p->node, "end") != NULL;
  st = kernel_attr_int(p->node, "start", 0, &params->start);
  if (!st) st = kernel_attr_int(p->node, "end", 0, &params->end);
  return st;
}

static void shape_range(const shape_params *p, size_t rank, size_t *begin, size_t *end) {
  int64_t r = (int64_t)rank, s = p->start, e = p->has_end ? p->end : r;
  if (s < 0) s += r;
  if (e < 0) e += r;
  s = s < 0 ? 0 : s > r ? r : s;
  e = e < 0 ? 0 : e > r ? r : e;
  *begin = (size_t)s;
  *end = (size_t)(e > s ? e : s);
}

static strand_status infer_shape(const kernel_call *c) {
  size_t begin, end;
  shape_range(c->params, c->inputs[0]->rank, &begin, &end);
  int64_t n = (int64_t)(end - begin);
  kernel_set_shape(c->outputs[0], STRAND_DTYPE_INT64, 1, &n);
  return STRAND_OK;
}

static strand_status run_shape(const kernel_call *c) {
  size_t begin, end;
  shape_range(c->params, c->inputs[0]->rank, &begin, &end);
  int64_t *y = c->outputs[0]->data;
  for (size_t i = begin; i < end; i++) y[i - begin] = c->inputs[0]->dims[i];
  return STRAND_OK;
}

const kernel_def kernel_Shape = {"Shape", "", 1, KERNEL_OPSET_MAX, 0, KERNEL_SHAPE_ONLY, accepts_first_any,
                                 prepare_shape, infer_shape, NULL, run_shape};

static strand_status infer_size(const kernel_call *c) {
  kernel_set_shape(c->outputs[0], STRAND_DTYPE_INT64, 0, NULL);
  return STRAND_OK;
}

static strand_status run_size(const kernel_call *c) {
  *(int64_t *)c->outputs[0]->data = (int64_t)c->inputs[0]->count;
  return STRAND_OK;
}

const kernel_def kernel_Size = {"Size", "", 1, KERNEL_OPSET_MAX, 0, KERNEL_SHAPE_ONLY, accepts_first_any, NULL,
                                infer_size, NULL, run_size};

/* ---- Cast ------------------------------------------------------------------------------------- */

typedef struct cast_params {
  strand_dtype to;
} cast_params;

static strand_status prepare_cast(kernel_prepare *p, void **out) {
  cast_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  int64_t to;
  st = kernel_attr_int(p->node, "to", -1, &to);
  if (st) return st;
  if (to < 0) return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"to\" is missing");
  if (!onnx_dtype_from_onnx(to, &params->to))
    return strand__fail(STRAND_E_UNSUPPORTED, "attribute \"to\" is %s, which strand has no "
                        "type for", onnx_dtype_onnx_name(to));
  return STRAND_OK;
}

static strand_status infer_cast(const kernel_call *c) {
  const cast_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  kernel_set_shape(c->outputs[0], p->to, x->rank, x->dims);
  return STRAND_OK;
}

static bool is_float_type(strand_dtype d) {
  return d == STRAND_DTYPE_FLOAT32 || d == STRAND_DTYPE_FLOAT64 || d == STRAND_DTYPE_FLOAT16 ||
         d == STRAND_DTYPE_BFLOAT16;
}

static bool is_signed_type(strand_dtype d) {
  return d == STRAND_DTYPE_INT8 || d == STRAND_DTYPE_INT16 || d == STRAND_DTYPE_INT32 ||
         d == STRAND_DTYPE_INT64;
}

/* Loads n elements: as doubles when `as_float`, else as 64-bit integers
 * (sign-extended), with floats converted saturating to the range of `to`
 * (NaN gives 0). */
#define CAST_CHUNK 256

static void saturate_range(strand_dtype to, double *lo, double *hi) {
  switch (to) {
  case STRAND_DTYPE_INT8: *lo = INT8_MIN; *hi = INT8_MAX; break;
  case STRAND_DTYPE_INT16: *lo = INT16_MIN; *hi = INT16_MAX; break;
  case STRAND_DTYPE_INT32: *lo = INT32_MIN; *hi = INT32_MAX; break;
  case STRAND_DTYPE_UINT8: *lo = 0; *hi = UINT8_MAX; break;
  case STRAND_DTYPE_UINT16: *lo = 0; *hi = UINT16_MAX; break;
  case STRAND_DTYPE_UINT32: *lo = 0; *hi = UINT32_MAX; break;
  case STRAND_DTYPE_UINT64: *lo = 0; *hi = 18446744073709549568.0; break; /* below 2^64 */
  default: *lo = -9223372036854775808.0; *hi = 9223372036854774784.0; break; /* below 2^63 */
  }
}

static uint64_t float_to_bits(double v, strand_dtype to, double lo, double hi) {
  if (v != v) return 0;
  if (to == STRAND_DTYPE_BOOL) return v != 0;
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  if (is_signed_type(to)) return (uint64_t)(int64_t)v;
  return (uint64_t)v;
}

static void cast_load(strand_dtype from, const void *src, size_t at, size_t n, bool as_float,
                      strand_dtype to, double *f, uint64_t *u) {
  double lo, hi;
  saturate_range(to, &lo, &hi);
  for (size_t i = 0; i < n; i++) {
    size_t k = at + i;
    double v = 0;
    uint64_t bits = 0;
    bool was_float = true;
    switch (from) {
    case STRAND_DTYPE_FLOAT32: v = ((const float *)src)[k]; break;
    case STRAND_DTYPE_FLOAT64: v = ((const double *)src)[k]; break;
    case STRAND_DTYPE_FLOAT16: v = kernel_half_to_float(((const uint16_t *)src)[k]); break;
    case STRAND_DTYPE_BFLOAT16: v = kernel_bfloat_to_float(((const uint16_t *)src)[k]); break;
    default: {
      was_float = false;
      switch (from) {
      case STRAND_DTYPE_INT8: bits = (uint64_t)(int64_t)((const int8_t *)src)[k]; break;
      case STRAND_DTYPE_INT16: bits = (uint64_t)(int64_t)((const int16_t *)src)[k]; break;
      case STRAND_DTYPE_INT32: bits = (uint64_t)(int64_t)((const int32_t *)src)[k]; break;
      case STRAND_DTYPE_INT64: bits = (uint64_t)((const int64_t *)src)[k]; break;
      case STRAND_DTYPE_UINT8: case STRAND_DTYPE_BOOL: bits = ((const uint8_t *)src)[k]; break;
      case STRAND_DTYPE_UINT16: bits = ((const uint16_t *)src)[k]; break;
      case STRAND_DTYPE_UINT32: bits = ((const uint32_t *)src)[k]; break;
      case STRAND_DTYPE_UINT64: bits = ((const uint64_t *)src)[k]; break;
      default: break;
      }
      v = is_signed_type(from) ? (double)(int64_t)bits : (double)bits;
    }
    }
    if (as_float) f[i] = v;
    else u[i] = was_float ? float_to_bits(v, to, lo, hi) : (to == STRAND_DTYPE_BOOL ? bits != 0 : bits);
  }
}

static void cast_store(strand_dtype to, void *dst, size_t at, size_t n, const double *f,
                       const uint64_t *u) {
  for (size_t i = 0; i < n; i++) {
    size_t k = at + i;
    switch (to) {
    case STRAND_DTYPE_FLOAT32: ((float *)dst)[k] = (float)f[i]; break;
    case STRAND_DTYPE_FLOAT64: ((double *)dst)[k] = f[i]; break;
    case STRAND_DTYPE_FLOAT16: ((uint16_t *)dst)[k] = kernel_float_to_half((float)f[i]); break;
    case STRAND_DTYPE_BFLOAT16: ((uint16_t *)dst)[k] = kernel_float_to_bfloat((float)f[i]); break;
    case STRAND_DTYPE_INT8: ((int8_t *)dst)[k] = (int8_t)u[i]; break;
    case STRAND_DTYPE_INT16: ((int16_t *)dst)[k] = (int16_t)u[i]; break;
    case STRAND_DTYPE_INT32: ((int32_t *)dst)[k] = (int32_t)u[i]; break;
    case STRAND_DTYPE_INT64: ((int64_t *)dst)[k] = (int64_t)u[i]; break;
    case STRAND_DTYPE_UINT8: ((uint8_t *)dst)[k] = (uint8_t)u[i]; break;
    case STRAND_DTYPE_BOOL: ((uint8_t *)dst)[k] = u[i] != 0; break;
    case STRAND_DTYPE_UINT16: ((uint16_t *)dst)[k] = (uint16_t)u[i]; break;
    case STRAND_DTYPE_UINT32: ((uint32_t *)dst)[k] = (uint32_t)u[i]; break;
    case STRAND_DTYPE_UINT64: ((uint64_t *)dst)[k] = u[i]; break;
    default: break;
    }
  }
}

typedef struct cast_job {
  strand_dtype from, to;
  const void *src;
  void *dst;
} cast_job;

static void cast_range(void *p, size_t begin, size_t end) {
  const cast_job *j = p;
  double f[CAST_CHUNK];
  uint64_t u[CAST_CHUNK];
  bool as_float = is_float_type(j->to);
  for (size_t at = begin; at < end; at += CAST_CHUNK) {
    size_t n = end - at < CAST_CHUNK ? end - at : CAST_CHUNK;
    cast_load(j->from, j->src, at, n, as_float, j->to, f, u);
    cast_store(j->to, j->dst, at, n, f, u);
  }
}

static strand_status run_cast(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  kernel_tensor *y = c->outputs[0];
  if (x->dtype == y->dtype) return run_copy(c);
  cast_job j = {x->dtype, y->dtype, x->data, y->data};
  kernel_parallel(c->threads, y->count, kernel_grain(8), cast_range, &j);
  return STRAND_OK;
}

static bool accepts_cast(const strand_dtype *d, size_t n) {
  return n == 1 && kernel_dtype_in(d[0], KERNEL_DT_ALL);
}

const kernel_def kernel_Cast = {"Cast", "", 6, KERNEL_OPSET_MAX, 0, 0, accepts_cast, prepare_cast, infer_cast,
                                NULL, run_cast};

/* ---- Expand ------------------------------------------------------------------------------------ */

static bool accepts_expand(const strand_dtype *d, size_t n) {
  return n == 2 && kernel_dtype_in(d[0], KERNEL_DT_ALL) && int_tensor_dtype(d[1]);
}

static strand_status infer_expand(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  kernel_tensor target = {.dtype = x->dtype};
  size_t n;
  strand_status st = read_ints(c->inputs[1], "the shape input", target.dims, STRAND_MAX_RANK, &n);
  if (st) return st;
  target.rank = n;
  for (size_t i = 0; i < n; i++)
    if (target.dims[i] < 0)
      return strand__fail(STRAND_E_SHAPE, "shape entry %zu is %lld", i, (long long)target.dims[i]);
  const kernel_tensor *both[2] = {x, &target};
  int64_t dims[STRAND_MAX_RANK];
  size_t rank;
  st = kernel_broadcast_shape(both, 2, dims, &rank);
  if (st) return st;
  kernel_set_shape(c->outputs[0], x->dtype, rank, dims);
  return STRAND_OK;
}

static strand_status run_expand(const kernel_call *c) {
  kernel_broadcast_copy(c->threads, c->inputs[0], c->outputs[0]);
  return STRAND_OK;
}

const kernel_def kernel_Expand = {"Expand", "", 8, KERNEL_OPSET_MAX, 1u << 1, 0, accepts_expand, NULL,
                                  infer_expand, NULL, run_expand};

/* ---- ConstantOfShape --------------------------------------------------------------------------- */

typedef struct fill_params {
  strand_dtype dtype;
  _Alignas(8) unsigned char value[8];
} fill_params;

static strand_status prepare_constant_of_shape(kernel_prepare *p, void **out) {
  fill_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  params->dtype = STRAND_DTYPE_FLOAT32;
  const onnx_attr *a = graph_node_attr(p->node, "value");
  if (!a) return STRAND_OK;
  if (a->type != ONNX_ATTR_TENSOR || !a->t)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"value\" is not a tensor");
  if (a->t->count != 1)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"value\" has %zu elements; "
                        "expected 1", a->t->count);
  params->dtype = a->t->dtype;
  memcpy(params->value, a->t->data, a->t->byte_size);
  return STRAND_OK;
}

static bool accepts_int_input(const strand_dtype *d, size_t n) {
  return n == 1 && int_tensor_dtype(d[0]);
}

static strand_status infer_constant_of_shape(const kernel_call *c) {
  const fill_params *p = c->params;
  int64_t dims[STRAND_MAX_RANK];
  size_t n;
  strand_status st = read_ints(c->inputs[0], "the shape input", dims, STRAND_MAX_RANK, &n);
  if (st) return st;
  for (size_t i = 0; i < n; i++)
    if (dims[i] < 0)
      return strand__fail(STRAND_E_SHAPE, "shape entry %zu is %lld", i, (long long)dims[i]);
  kernel_set_shape(c->outputs[0], p->dtype, n, dims);
  return STRAND_OK;
}

typedef struct fill_job {
  unsigned char *dst;
  const unsigned char *value;
  size_t item;
} fill_job;

static void fill_range(void *p, size_t begin, size_t end) {
  const fill_job *j = p;
  for (size_t i = begin; i < end; i++) memcpy(j->dst + i * j->item, j->value, j->item);
}

static strand_status run_constant_of_shape(const kernel_call *c) {
  const fill_params *p = c->params;
  kernel_tensor *y = c->outputs[0];
  size_t item = strand_dtype_size(p->dtype);
  bool zero = true;
  for (size_t i = 0; i < item; i++) zero = zero && p->value[i] == 0;
  if (zero) {
    if (y->count) memset(y->data, 0, y->count * item);
    return STRAND_OK;
  }
  fill_job j = {y->data, p->value, item};
  kernel_parallel(c->threads, y->count, kernel_grain(2), fill_range, &j);
  return STRAND_OK;
}

const kernel_def kernel_ConstantOfShape = {"ConstantOfShape", "", 9, KERNEL_OPSET_MAX, 1u << 0, 0,
                                           accepts_int_input, prepare_constant_of_shape,
                                           infer_constant_of_shape, NULL, run_constant_of_shape};

/* ---- Range -------------------------------------------------------------------------------------- */

static bool accepts_range(const strand_dtype *d, size_t n) {
  uint32_t types = KERNEL_DT_FLOATS | KERNEL_DT(FLOAT16) | KERNEL_DT(BFLOAT16) | KERNEL_DT(INT16) |
                   KERNEL_DT(INT32) | KERNEL_DT(INT64);
  return n == 3 && kernel_dtype_in(d[0], types) && kernel_dtype_same(d[0], d[1]) &&
         kernel_dtype_same(d[0], d[2]);
}

static strand_status range_count(const kernel_call *c, int64_t *count) {
  for (size_t k = 0; k < 3; k++)
    if (c->inputs[k]->count != 1)
      return strand__fail(STRAND_E_SHAPE, "input %zu has %zu elements; expected a scalar", k,
                          c->inputs[k]->count);
  strand_dtype t = c->inputs[0]->dtype;
  if (is_float_type(t)) {
    double start = kernel_number_at(c->inputs[0]->data, t, 0);
    double limit = kernel_number_at(c->inputs[1]->data, t, 0);
    double delta = kernel_number_at(c->inputs[2]->data, t, 0);
    if (delta == 0 || delta != delta || start != start || limit != limit)
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "start %g, limit %g, delta %g give no "
                          "finite range", start, limit, delta);
    double n = ceil((limit - start) / delta);
    if (!(n < 9.0e15)) return strand__fail(STRAND_E_SHAPE, "the range has %g elements", n);
    *count = n > 0 ? (int64_t)n : 0;
    return STRAND_OK;
  }
  int64_t start = kernel_int_at(c->inputs[0], 0), limit = kernel_int_at(c->inputs[1], 0),
          delta = kernel_int_at(c->inputs[2], 0);
  if (t == STRAND_DTYPE_INT16) {
    start = ((const int16_t *)c->inputs[0]->data)[0];
    limit = ((const int16_t *)c->inputs[1]->data)[0];
    delta = ((const int16_t *)c->inputs[2]->data)[0];
  }
  if (delta == 0) return strand__fail(STRAND_E_INVALID_ARGUMENT, "delta is 0");
  uint64_t span, step;
  if (delta > 0) {
    if (limit <= start) return *count = 0, STRAND_OK;
    span = (uint64_t)limit - (uint64_t)start;
    step = (uint64_t)delta;
  } else {
    if (limit >= start) return *count = 0, STRAND_OK;
    span = (uint64_t)start - (uint64_t)limit;
    step = 0 - (uint64_t)delta;
  }
  uint64_t n = span / step + (span % step != 0);
  if (n > (uint64_t)INT64_MAX) return strand__fail(STRAND_E_SHAPE, "the range is too long");
  *count = (int64_t)n;
  return STRAND_OK;
}

static strand_status infer_range(const kernel_call *c) {
  int64_t n;
  strand_status st = range_count(c, &n);
  if (!st) kernel_set_shape(c->outputs[0], c->inputs[0]->dtype, 1, &n);
  return st;
}

static strand_status run_range(const kernel_call *c) {
  kernel_tensor *y = c->outputs[0];
  const void *s = c->inputs[0]->data, *d = c->inputs[2]->data;
  switch (y->dtype) {
  case STRAND_DTYPE_FLOAT32: {
    float start = *(const float *)s, delta = *(const float *)d, *out = y->data;
    for (size_t i = 0; i < y->count; i++) out[i] = start + (float)i * delta;
    break;
  }
  case STRAND_DTYPE_FLOAT64: {
    double start = *(const double *)s, delta = *(const double *)d, *out = y->data;
    for (size_t i = 0; i < y->count; i++) out[i] = start + (double)i * delta;
    break;
  }
  case STRAND_DTYPE_FLOAT16:
  case STRAND_DTYPE_BFLOAT16: { /* start + i * delta in float32, rounded to the type */
    bool half = y->dtype == STRAND_DTYPE_FLOAT16;
    float start = (float)kernel_number_at(s, y->dtype, 0), delta = (float)kernel_number_at(d, y->dtype, 0);
    uint16_t *out = y->data;
    for (size_t i = 0; i < y->count; i++) {
      float v = start + (float)i * delta;
      out[i] = half ? kernel_float_to_half(v) : kernel_float_to_bfloat(v);
    }
    break;
  }
  case STRAND_DTYPE_INT16: {
    uint32_t start = (uint32_t)*(const int16_t *)s, delta = (uint32_t)*(const int16_t *)d;
    int16_t *out = y->data;
    for (size_t i = 0; i < y->count; i++) out[i] = (int16_t)(start + (uint32_t)i * delta);
    break;
  }
  case STRAND_DTYPE_INT32: {
    uint32_t start = (uint32_t)*(const int32_t *)s, delta = (uint32_t)*(const int32_t *)d;
    int32_t *out = y->data;
    for (size_t i = 0; i < y->count; i++) out[i] = (int32_t)(start + (uint32_t)i * delta);
    break;
  }
  default: {
    uint64_t start = (uint64_t)*(const int64_t *)s, delta = (uint64_t)*(const int64_t *)d;
    int64_t *out = y->data;
    for (size_t i = 0; i < y->count; i++) out[i] = (int64_t)(start + (uint64_t)i * delta);
    break;
  }
  }
  return STRAND_OK;
}

const kernel_def kernel_Range = {"Range", "", 11, KERNEL_OPSET_MAX, 7u, 0, accepts_range, NULL, infer_range,
                                 NULL, run_range};

/* ---- Slice ---------------------------------------------------------------------------------------- */

typedef struct slice_params {
  bool from_attributes; /* before opset 10 */
  size_t n;
  int64_t starts[STRAND_MAX_RANK], ends[STRAND_MAX_RANK], axes[STRAND_MAX_RANK];
  bool has_axes;
} slice_params;

static strand_status copy_attr(const graph_node *node, const char *name, int64_t *out, size_t *n,
                               bool *present) {
  const int64_t *v;
  size_t count;
  strand_status st = kernel_attr_ints(node, name, &v, &count);
  if (st) return st;
  if (count > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_UNSUPPORTED, "attribute \"%s\" has %zu values", name, count);
  if (v) memcpy(out, v, count * sizeof(int64_t));
  *n = count;
  if (present) *present = v != NULL;
  return STRAND_OK;
}

static strand_status prepare_slice(kernel_prepare *p, void **out) {
  slice_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  if (p->node->opset >= 10 || p->node->opset < 0) return STRAND_OK;
  params->from_attributes = true;
  size_t ns, ne, na;
  st = copy_attr(p->node, "starts", params->starts, &ns, NULL);
  if (!st) st = copy_attr(p->node, "ends", params->ends, &ne, NULL);
  if (!st) st = copy_attr(p->node, "axes", params->axes, &na, &params->has_axes);
  if (st) return st;
  if (ns != ne || (params->has_axes && na != ns))
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attributes \"starts\", \"ends\" and \"axes\" "
                        "have %zu, %zu and %zu values", ns, ne, na);
  params->n = ns;
  return STRAND_OK;
}

static bool accepts_slice(const strand_dtype *d, size_t n) {
  if (n < 1 || !kernel_dtype_in(d[0], KERNEL_DT_ALL)) return false;
  for (size_t i = 1; i < n; i++)
    if (d[i] != STRAND_DTYPE_UNDEFINED && !int_tensor_dtype(d[i])) return false;
  return true;
}

/* Per output dim: first element and step in the input. */
typedef struct slice_plan {
  int64_t dims[STRAND_MAX_RANK], first[STRAND_MAX_RANK], step[STRAND_MAX_RANK];
} slice_plan;

static strand_status slice_of(const kernel_call *c, slice_plan *sp) {
  const slice_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  int64_t starts[STRAND_MAX_RANK], ends[STRAND_MAX_RANK], axes[STRAND_MAX_RANK],
          steps[STRAND_MAX_RANK];
  size_t n, n2, n3 = 0, n4 = 0;
  strand_status st = STRAND_OK;
  bool has_axes = false;
  if (p->from_attributes) {
    n = p->n;
    memcpy(starts, p->starts, n * sizeof(int64_t));
    memcpy(ends, p->ends, n * sizeof(int64_t));
    memcpy(axes, p->axes, n * sizeof(int64_t));
    has_axes = p->has_axes;
    n2 = n;
  } else {
    st = read_ints(c->inputs[1], "starts", starts, STRAND_MAX_RANK, &n);
    if (!st) st = read_ints(c->inputs[2], "ends", ends, STRAND_MAX_RANK, &n2);
    if (!st && kernel_input(c, 3)) {
      st = read_ints(c->inputs[3], "axes", axes, STRAND_MAX_RANK, &n3);
      has_axes = true;
    }
    if (!st && kernel_input(c, 4)) st = read_ints(c->inputs[4], "steps", steps, STRAND_MAX_RANK, &n4);
    if (st) return st;
    if (n2 != n || (has_axes && n3 != n) || (kernel_input(c, 4) && n4 != n))
      return strand__fail(STRAND_E_SHAPE, "starts, ends, axes and steps have %zu, %zu, %zu and "
                          "%zu values", n, n2, n3, n4);
  }
  if (!kernel_input(c, 4) || p->from_attributes)
    for (size_t i = 0; i < n; i++) steps[i] = 1;
  if (!has_axes)
    for (size_t i = 0; i < n; i++) axes[i] = (int64_t)i;
  for (size_t d = 0; d < x->rank; d++) {
    sp->dims[d] = x->dims[d];
    sp->first[d] = 0;
    sp->step[d] = 1;
  }
  bool seen[STRAND_MAX_RANK] = {false};
  for (size_t i = 0; i < n; i++) {
    size_t a;
    st = kernel_axis(axes[i], x->rank, "axis", &a);
    if (st) return st;
    if (seen[a])
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "axis %lld is sliced twice", (long long)axes[i]);
    seen[a] = true;
    int64_t dim = x->dims[a], start = starts[i], end = ends[i], step = steps[i];
    if (step == 0) return strand__fail(STRAND_E_INVALID_ARGUMENT, "step %zu is 0", i);
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    int64_t len;
    if (step > 0) {
      start = start < 0 ? 0 : start > dim ? dim : start;
      end = end < 0 ? 0 : end > dim ? dim : end;
      len = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
      start = start > dim - 1 ? dim - 1 : start < 0 ? 0 : start;
      if (dim == 0) start = -1;
      end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
      len = start > end ? (start - end - 1) / -step + 1 : 0;
    }
    sp->dims[a] = len;
    sp->first[a] = len ? start : 0;
    sp->step[a] = step;
  }
  return STRAND_OK;
}

static strand_status infer_slice(const kernel_call *c) {
  slice_plan sp;
  strand_status st = slice_of(c, &sp);
  if (!st) kernel_set_shape(c->outputs[0], c->inputs[0]->dtype, c->inputs[0]->rank, sp.dims);
  return st;
}

static strand_status run_slice(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  kernel_tensor *y = c->outputs[0];
  if (!y->count) return STRAND_OK;
  slice_plan sp;
  strand_status st = slice_of(c, &sp);
  if (st) return st;
  size_t item = item_size(x);
  strided s = {x->rank ? x->rank : 1, {1}, {1}, NULL, y->data, item};
  int64_t stride = 1, offset = 0;
  for (size_t d = x->rank; d-- > 0;) {
    s.dims[d] = sp.dims[d];
    s.strides[d] = stride * sp.step[d];
    offset += sp.first[d] * stride;
    stride *= x->dims[d];
  }
  s.src = (const unsigned char *)x->data + offset * (int64_t)item;
  strided_copy(c->threads, &s, y->count);
  return STRAND_OK;
}

const kernel_def kernel_Slice = {"Slice", "", 1, KERNEL_OPSET_MAX, 0x1eu, 0, accepts_slice, prepare_slice,
                                 infer_slice, NULL, run_slice};
