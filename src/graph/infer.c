/*
 * infer.c — static dtype and shape inference, and constant folding.
 *
 * Nodes are visited in topological order; a node's subgraphs are visited
 * after the node's own inputs are typed (their outer references copy the
 * enclosing value's type and constant). Each rule derives what it can from
 * its inputs and merges it into the outputs (graph_merge_type), so declared
 * and inferred types must agree wherever both are known. Ops without a rule
 * leave their outputs as declared (or unknown).
 *
 * Folding is deliberately narrow: a node folds only when every input it
 * reads is a constant, the op is one of a few shape-arithmetic ops (or
 * Constant, Identity, Reshape and friends, which only re-label data), and the
 * result is small (FOLD_MAX_ELEMENTS). Computations that could overflow,
 * divide by zero or index out of range are left to run time, not folded.
 * Folded tensors live in the arena; re-labelled ones share the input's data.
 */
#include "graph/graph_internal.h"

#include <assert.h>
#include <string.h>

#define FOLD_MAX_ELEMENTS 1024

typedef struct ty {
  strand_dtype dtype;
  int32_t rank; /* -1 when unknown */
  graph_dim dims[STRAND_MAX_RANK];
} ty;

typedef struct ctx {
  onnx_arena *arena;
  graph *g;
  graph_node *node;
} ctx;

static const graph_dim unknown_dim = {-1, NULL};

static graph_dim known(int64_t v) { return (graph_dim){v, NULL}; }

static void unknown_type(ty *t, strand_dtype dtype) {
  t->dtype = dtype;
  t->rank = -1;
}

/* ---- inputs, attributes, outputs --------------------------------------- */

static bool has_input(const ctx *c, size_t k) {
  return k < c->node->n_inputs && c->node->inputs[k] >= 0;
}

static const graph_value *input_value(const ctx *c, size_t k) {
  return has_input(c, k) ? &c->g->values[c->node->inputs[k]] : NULL;
}

static void input_type(const ctx *c, size_t k, ty *out) {
  const graph_value *v = input_value(c, k);
  out->dtype = v ? v->dtype : STRAND_DTYPE_UNDEFINED;
  out->rank = v ? v->rank : -1;
  for (int32_t i = 0; i < out->rank; i++) out->dims[i] = v->dims[i];
}

static const onnx_tensor *input_constant(const ctx *c, size_t k) {
  const graph_value *v = input_value(c, k);
  return v && (v->flags & GRAPH_VALUE_CONSTANT) ? v->constant : NULL;
}

static bool is_integer_tensor(const onnx_tensor *t) {
  return t && (t->dtype == STRAND_DTYPE_INT64 || t->dtype == STRAND_DTYPE_INT32);
}

static int64_t element_int(const onnx_tensor *t, size_t i) {
  if (t->dtype == STRAND_DTYPE_INT64) return ((const int64_t *)t->data)[i];
  return ((const int32_t *)t->data)[i];
}

/* The elements of a constant int32/int64 tensor of at most `cap` elements. */
static bool constant_ints(const onnx_tensor *t, int64_t *out, size_t cap, size_t *n) {
  if (!is_integer_tensor(t) || t->count > cap) return false;
  for (size_t i = 0; i < t->count; i++) out[i] = element_int(t, i);
  *n = t->count;
  return true;
}

static strand_status wrong_type(const onnx_attr *a, onnx_attr_type expected) {
  return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"%s\" has type %s, expected %s",
                      a->name, onnx_attr_type_name(a->type), onnx_attr_type_name(expected));
}

static strand_status attr_int(const ctx *c, const char *name, int64_t fallback, int64_t *out) {
  const onnx_attr *a = graph_node_attr(c->node, name);
  if (!a) {
    *out = fallback;
    return STRAND_OK;
  }
  if (a->type != ONNX_ATTR_INT) return wrong_type(a, ONNX_ATTR_INT);
  *out = a->i;
  return STRAND_OK;
}

/* *values is NULL when the attribute is absent. */
static strand_status attr_ints(const ctx *c, const char *name, const int64_t **values,
                               size_t *count) {
  const onnx_attr *a = graph_node_attr(c->node, name);
  *values = NULL;
  *count = 0;
  if (!a) return STRAND_OK;
  if (a->type != ONNX_ATTR_INTS) return wrong_type(a, ONNX_ATTR_INTS);
  static const int64_t none[1];
  *values = a->ints ? a->ints : none;
  *count = a->count;
  return STRAND_OK;
}

static strand_status attr_string(const ctx *c, const char *name, const char *fallback,
                                 const char **out) {
  const onnx_attr *a = graph_node_attr(c->node, name);
  if (!a) {
    *out = fallback;
    return STRAND_OK;
  }
  if (a->type != ONNX_ATTR_STRING) return wrong_type(a, ONNX_ATTR_STRING);
  *out = a->s.data;
  return STRAND_OK;
}

/* An axis in [-rank, rank) as an index in [0, rank). */
static strand_status normalize_axis(int64_t axis, int32_t rank, const char *what, int32_t *out) {
  if (axis < -(int64_t)rank || axis >= rank)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "%s %lld is out of range for rank %d", what,
                        (long long)axis, rank);
  *out = (int32_t)(axis < 0 ? axis + rank : axis);
  return STRAND_OK;
}

static strand_status set_output(ctx *c, size_t k, const ty *t) {
  if (k >= c->node->n_outputs || c->node->outputs[k] < 0) return STRAND_OK;
  graph_value *v = &c->g->values[c->node->outputs[k]];
  if (t->rank > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_UNSUPPORTED, "output %zu \"%s\" would have rank %d, more than "
                        "strand's limit of %d", k, v->name, t->rank, STRAND_MAX_RANK);
  strand_status st = graph_merge_type(c->arena, v, t->dtype, t->rank, t->dims, "inferred");
  if (st) return strand__fail_context(st, "output %zu", k);
  return STRAND_OK;
}

/* Records `t` as the value of output k (its type is merged first). */
static strand_status set_constant(ctx *c, size_t k, const onnx_tensor *t) {
  if (k >= c->node->n_outputs || c->node->outputs[k] < 0) return STRAND_OK;
  ty type;
  type.dtype = t->dtype;
  type.rank = (int32_t)t->rank;
  for (size_t i = 0; i < t->rank; i++) type.dims[i] = known(t->dims[i]);
  strand_status st = set_output(c, k, &type);
  if (st) return st;
  graph_value *v = &c->g->values[c->node->outputs[k]];
  v->constant = t;
  v->flags |= GRAPH_VALUE_CONSTANT | GRAPH_VALUE_FOLDED;
  return STRAND_OK;
}

static bool all_known(const ty *t);

/* A new tensor in the arena; data zero-filled (at least one byte). */
static strand_status new_tensor(ctx *c, strand_dtype dtype, size_t rank, const int64_t *dims,
                                onnx_tensor **out) {
  onnx_tensor *t;
  strand_status st = onnx_arena_alloc(c->arena, sizeof *t, (void **)&t);
  if (st) return st;
  int64_t *d = NULL;
  size_t count = 1;
  if (rank) {
    st = onnx_arena_array(c->arena, rank, sizeof *d, (void **)&d);
    if (st) return st;
    for (size_t i = 0; i < rank; i++) {
      d[i] = dims[i];
      count *= (size_t)dims[i]; /* callers keep count <= FOLD_MAX_ELEMENTS */
    }
  }
  void *data;
  st = onnx_arena_array(c->arena, count ? count : 1, strand_dtype_size(dtype), &data);
  if (st) return st;
  t->name = "";
  t->dtype = dtype;
  t->rank = rank;
  t->dims = d;
  t->count = count;
  t->byte_size = count * strand_dtype_size(dtype);
  t->data = count ? data : NULL;
  t->storage = count ? ONNX_STORAGE_COMPUTED : ONNX_STORAGE_NONE;
  *out = t;
  return STRAND_OK;
}

/* The same data under new dims (Reshape, Flatten, Squeeze, ...). */
static strand_status relabel(ctx *c, const onnx_tensor *in, const ty *shape, onnx_tensor **out) {
  assert(all_known(shape));
  onnx_tensor *t;
  strand_status st = onnx_arena_alloc(c->arena, sizeof *t, (void **)&t);
  if (st) return st;
  *t = *in;
  int64_t *d = NULL;
  if (shape->rank) {
    st = onnx_arena_array(c->arena, (size_t)shape->rank, sizeof *d, (void **)&d);
    if (st) return st;
  }
  for (int32_t i = 0; i < shape->rank; i++) d[i] = shape->dims[i].value;
  t->name = "";
  t->rank = (size_t)shape->rank;
  t->dims = d;
  *out = t;
  return STRAND_OK;
}

static bool all_known(const ty *t) {
  if (t->rank < 0) return false;
  for (int32_t i = 0; i < t->rank; i++)
    if (t->dims[i].value < 0) return false;
  return true;
}

/* Element count of a fully known type; false when unknown or over `cap`. */
static bool known_count(const ty *t, size_t cap, size_t *out) {
  if (!all_known(t)) return false;
  size_t n = 1;
  for (int32_t i = 0; i < t->rank; i++)
    if (!strand__size_mul(n, (size_t)t->dims[i].value, &n) || n > cap) return false;
  *out = n;
  return true;
}

static bool same_dim(const graph_dim *a, const graph_dim *b) {
  if (a->value >= 0 || b->value >= 0) return a->value == b->value;
  return a->param && b->param && strcmp(a->param, b->param) == 0;
}

/* ---- elementwise ------------------------------------------------------- */

static strand_status broadcast_into(ty *acc, const ty *t, size_t index) {
  if (acc->rank < 0 || t->rank < 0) {
    acc->rank = -1;
    return STRAND_OK;
  }
  ty out;
  out.rank = acc->rank > t->rank ? acc->rank : t->rank;
  for (int32_t i = 0; i < out.rank; i++) {
    const graph_dim *a = i < acc->rank ? &acc->dims[acc->rank - 1 - i] : NULL;
    const graph_dim *b = i < t->rank ? &t->dims[t->rank - 1 - i] : NULL;
    graph_dim *o = &out.dims[out.rank - 1 - i];
    if (!a || a->value == 1) *o = b ? *b : known(1);
    else if (!b || b->value == 1) *o = *a;
    else if (a->value >= 0 && b->value >= 0) {
      if (a->value != b->value) {
        char x[256], y[256];
        return strand__fail(STRAND_E_MALFORMED_MODEL,
                            "input %zu has shape %s, which cannot be broadcast with %s", index,
                            graph_shape_text(t->rank, t->dims, x, sizeof x),
                            graph_shape_text(acc->rank, acc->dims, y, sizeof y));
      }
      *o = *a;
    } else if (a->value >= 0) *o = *a; /* b unknown: valid only if equal */
    else if (b->value >= 0) *o = *b;
    else if (same_dim(a, b)) *o = *a;
    else *o = unknown_dim;
  }
  acc->rank = out.rank;
  memcpy(acc->dims, out.dims, sizeof out.dims[0] * (size_t)out.rank);
  return STRAND_OK;
}

/* Before opset 7, binary ops broadcast the ONNX-1 way (attribute
 * "broadcast", input 1 aligned at "axis"): the output has input 0's shape. */
static bool legacy_broadcast(const ctx *c) {
  static const char *const ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "And", "Or",
                                    "Xor", "Equal", "Less", "Greater"};
  if (c->node->opset >= 7) return false;
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(c->node->op_type, ops[i]) == 0) return true;
  return false;
}

/* Multidirectional broadcast of inputs [first, n_inputs). */
static strand_status broadcast_inputs(ctx *c, size_t first, ty *out) {
  if (legacy_broadcast(c)) {
    input_type(c, 0, out);
    return STRAND_OK;
  }
  bool started = false;
  for (size_t k = first; k < c->node->n_inputs; k++) {
    if (!has_input(c, k)) continue;
    ty t;
    input_type(c, k, &t);
    if (!started) {
      *out = t;
      started = true;
      continue;
    }
    strand_status st = broadcast_into(out, &t, k);
    if (st) return st;
  }
  if (!started) out->rank = -1;
  return STRAND_OK;
}

/* Folds Add/Sub/Mul/Div over small integer constants with broadcasting;
 * leaves the node alone on overflow or division by zero. */
static strand_status fold_arithmetic(ctx *c, const ty *out_type) {
  const onnx_tensor *a = input_constant(c, 0), *b = input_constant(c, 1);
  size_t count;
  if (!is_integer_tensor(a) || !is_integer_tensor(b) || a->dtype != b->dtype ||
      !known_count(out_type, FOLD_MAX_ELEMENTS, &count))
    return STRAND_OK;
  char op = c->node->op_type[0]; /* A, S, M, D */
  int32_t rank = out_type->rank;
  int64_t dims[STRAND_MAX_RANK];
  for (int32_t i = 0; i < rank; i++) dims[i] = out_type->dims[i].value;
  int64_t *values;
  strand_status st = onnx_arena_array(c->arena, count ? count : 1, sizeof *values, (void **)&values);
  if (st) return st;
  for (size_t flat = 0; flat < count; flat++) {
    /* Map the output index to each input's broadcast index. */
    size_t rest = flat, ia = 0, ib = 0, sa = 1, sb = 1;
    for (int32_t i = rank - 1; i >= 0; i--) {
      size_t coord = rest % (size_t)dims[i];
      rest /= (size_t)dims[i];
      int32_t ai = i - (rank - (int32_t)a->rank), bi = i - (rank - (int32_t)b->rank);
      if (ai >= 0) {
        if (a->dims[ai] != 1) ia += coord * sa;
        sa *= (size_t)a->dims[ai];
      }
      if (bi >= 0) {
        if (b->dims[bi] != 1) ib += coord * sb;
        sb *= (size_t)b->dims[bi];
      }
    }
    int64_t x = element_int(a, ia), y = element_int(b, ib), r;
    bool ok;
    switch (op) {
    case 'A': ok = !__builtin_add_overflow(x, y, &r); break;
    case 'S': ok = !__builtin_sub_overflow(x, y, &r); break;
    case 'M': ok = !__builtin_mul_overflow(x, y, &r); break;
    default:
      ok = y != 0 && !(x == INT64_MIN && y == -1);
      r = ok ? x / y : 0;
      break;
    }
    if (ok && a->dtype == STRAND_DTYPE_INT32 && (r < INT32_MIN || r > INT32_MAX)) ok = false;
    if (!ok) return STRAND_OK;
    values[flat] = r;
  }
  onnx_tensor *t;
  st = new_tensor(c, a->dtype, (size_t)rank, dims, &t);
  if (st) return st;
  for (size_t i = 0; i < count; i++) {
    if (a->dtype == STRAND_DTYPE_INT64) ((int64_t *)t->data)[i] = values[i];
    else ((int32_t *)t->data)[i] = (int32_t)values[i];
  }
  return set_constant(c, 0, t);
}

static strand_status infer_broadcast(ctx *c) {
  ty out;
  strand_status st = broadcast_inputs(c, 0, &out);
  if (st) return st;
  ty first;
  input_type(c, 0, &first);
  out.dtype = first.dtype;
  st = set_output(c, 0, &out);
  if (st) return st;
  const char *op = c->node->op_type;
  if (c->node->n_inputs == 2 && !legacy_broadcast(c) && (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") ||
                                 !strcmp(op, "Div")))
    return fold_arithmetic(c, &out);
  return STRAND_OK;
}

static strand_status infer_compare(ctx *c) {
  ty out;
  strand_status st = broadcast_inputs(c, 0, &out);
  if (st) return st;
  out.dtype = STRAND_DTYPE_BOOL;
  return set_output(c, 0, &out);
}

static strand_status infer_where(ctx *c) {
  ty out;
  strand_status st = broadcast_inputs(c, 0, &out);
  if (st) return st;
  ty x;
  input_type(c, 1, &x);
  out.dtype = x.dtype;
  return set_output(c, 0, &out);
}

static strand_status infer_same(ctx *c) {
  ty t;
  input_type(c, 0, &t);
  return set_output(c, 0, &t);
}

static strand_status infer_bool_same(ctx *c) {
  ty t;
  input_type(c, 0, &t);
  t.dtype = STRAND_DTYPE_BOOL;
  return set_output(c, 0, &t);
}

static strand_status infer_identity(ctx *c) {
  strand_status st = infer_same(c);
  if (st) return st;
  const onnx_tensor *t = input_constant(c, 0);
  return t ? set_constant(c, 0, t) : STRAND_OK;
}

static strand_status infer_dropout(ctx *c) {
  ty t;
  input_type(c, 0, &t);
  strand_status st = set_output(c, 0, &t);
  if (st) return st;
  t.dtype = STRAND_DTYPE_BOOL;
  return set_output(c, 1, &t);
}

/* ---- matrix products --------------------------------------------------- */

static strand_status infer_matmul(ctx *c) {
  ty a, b, out;
  input_type(c, 0, &a);
  input_type(c, 1, &b);
  unknown_type(&out, a.dtype);
  if (a.rank < 0 || b.rank < 0) return set_output(c, 0, &out);
  if (a.rank == 0 || b.rank == 0)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "input %d is a scalar; MatMul needs rank >= 1",
                        a.rank == 0 ? 0 : 1);
  bool a_vector = a.rank == 1, b_vector = b.rank == 1;
  if (a_vector) {
    a.dims[1] = a.dims[0];
    a.dims[0] = known(1);
    a.rank = 2;
  }
  if (b_vector) {
    b.dims[1] = known(1);
    b.rank = 2;
  }
  const graph_dim *k1 = &a.dims[a.rank - 1], *k2 = &b.dims[b.rank - 2];
  if (k1->value >= 0 && k2->value >= 0 && k1->value != k2->value)
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "inner dimensions differ: input 0 has %lld columns, input 1 has %lld rows",
                        (long long)k1->value, (long long)k2->value);
  ty batch_a = a, batch_b = b;
  batch_a.rank = a.rank - 2;
  batch_b.rank = b.rank - 2;
  strand_status st = broadcast_into(&batch_a, &batch_b, 1);
  if (st) return st;
  out = batch_a;
  out.dtype = a.dtype;
  if (!a_vector) out.dims[out.rank++] = a.dims[a.rank - 2];
  if (!b_vector) out.dims[out.rank++] = b.dims[b.rank - 1];
  return set_output(c, 0, &out);
}

static strand_status infer_gemm(ctx *c) {
  ty a, b, out;
  input_type(c, 0, &a);
  input_type(c, 1, &b);
  int64_t trans_a, trans_b;
  strand_status st = attr_int(c, "transA", 0, &trans_a);
  if (!st) st = attr_int(c, "transB", 0, &trans_b);
  if (st) return st;
  if ((a.rank >= 0 && a.rank != 2) || (b.rank >= 0 && b.rank != 2))
    return strand__fail(STRAND_E_MALFORMED_MODEL, "input %d has rank %d; Gemm needs rank 2",
                        a.rank >= 0 && a.rank != 2 ? 0 : 1, a.rank >= 0 && a.rank != 2 ? a.rank
                                                                                  : b.rank);
  out.dtype = a.dtype;
  out.rank = 2;
  out.dims[0] = a.rank == 2 ? a.dims[trans_a ? 1 : 0] : unknown_dim;
  out.dims[1] = b.rank == 2 ? b.dims[trans_b ? 0 : 1] : unknown_dim;
  if (a.rank == 2 && b.rank == 2) {
    const graph_dim *k1 = &a.dims[trans_a ? 0 : 1], *k2 = &b.dims[trans_b ? 1 : 0];
    if (k1->value >= 0 && k2->value >= 0 && k1->value != k2->value)
      return strand__fail(STRAND_E_MALFORMED_MODEL,
                          "inner dimensions differ: A gives %lld, B gives %lld",
                          (long long)k1->value, (long long)k2->value);
  }
  return set_output(c, 0, &out);
}

/* ---- convolution and pooling ------------------------------------------- */

typedef struct window {
  size_t spatial;
  int64_t kernel[STRAND_MAX_RANK];
  bool kernel_known;
  int64_t strides[STRAND_MAX_RANK], dilations[STRAND_MAX_RANK], pads[2 * STRAND_MAX_RANK];
  const char *auto_pad;
  int64_t ceil_mode;
} window;

static strand_status read_list(const ctx *c, const char *name, size_t expected, int64_t fallback,
                               int64_t minimum, int64_t *out) {
  const int64_t *values;
  size_t count;
  strand_status st = attr_ints(c, name, &values, &count);
  if (st) return st;
  if (!values) {
    for (size_t i = 0; i < expected; i++) out[i] = fallback;
    return STRAND_OK;
  }
  if (count != expected)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"%s\" has %zu values, expected %zu",
                        name, count, expected);
  for (size_t i = 0; i < count; i++) {
    if (values[i] < minimum)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"%s\" value %zu is %lld, less "
                          "than %lld", name, i, (long long)values[i], (long long)minimum);
    out[i] = values[i];
  }
  return STRAND_OK;
}

static strand_status read_window(const ctx *c, const ty *x, const ty *w, window *win) {
  win->spatial = (size_t)x->rank - 2;
  const int64_t *kernel;
  size_t n;
  strand_status st = attr_ints(c, "kernel_shape", &kernel, &n);
  if (st) return st;
  win->kernel_known = true;
  if (kernel) {
    st = read_list(c, "kernel_shape", win->spatial, 1, 1, win->kernel);
  } else if (w && w->rank == x->rank) {
    for (size_t i = 0; i < win->spatial; i++) {
      win->kernel[i] = w->dims[2 + i].value;
      if (win->kernel[i] < 0) win->kernel_known = false;
    }
  } else {
    win->kernel_known = false;
  }
  if (!st) st = read_list(c, "strides", win->spatial, 1, 1, win->strides);
  if (!st) st = read_list(c, "dilations", win->spatial, 1, 1, win->dilations);
  if (!st) st = read_list(c, "pads", 2 * win->spatial, 0, 0, win->pads);
  if (!st) st = attr_string(c, "auto_pad", "NOTSET", &win->auto_pad);
  if (!st) st = attr_int(c, "ceil_mode", 0, &win->ceil_mode);
  return st;
}

/* One spatial output size; unknown when the input size is. */
static strand_status window_output(const window *win, size_t i, const graph_dim *in,
                                   graph_dim *out) {
  if (in->value < 0 || !win->kernel_known) {
    *out = unknown_dim;
    return STRAND_OK;
  }
  int64_t size = in->value, stride = win->strides[i];
  int64_t k = win->kernel[i], d = win->dilations[i];
  int64_t extent;
  if (__builtin_mul_overflow(k - 1, d, &extent) || extent > INT64_MAX - 1)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "kernel extent overflows");
  extent += 1;
  int64_t result;
  if (!strcmp(win->auto_pad, "SAME_UPPER") || !strcmp(win->auto_pad, "SAME_LOWER")) {
    result = (size + stride - 1) / stride;
  } else if (!strcmp(win->auto_pad, "VALID")) {
    result = size >= extent ? (size - extent) / stride + 1 : 0;
  } else if (!strcmp(win->auto_pad, "NOTSET")) {
    int64_t begin = win->pads[i], end = win->pads[i + win->spatial];
    if (begin > INT64_MAX / 4 || end > INT64_MAX / 4 || size > INT64_MAX / 4)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "pads overflow");
    int64_t span = size + begin + end - extent;
    if (span < 0) {
      result = 0;
    } else if (win->ceil_mode) {
      result = (span + stride - 1) / stride + 1;
      /* The last window must start inside the input or its left padding. */
      if ((result - 1) * stride >= size + begin) result--;
    } else {
      result = span / stride + 1;
    }
  } else {
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"auto_pad\" is \"%s\", expected "
                        "NOTSET, SAME_UPPER, SAME_LOWER or VALID", win->auto_pad);
  }
  if (result <= 0)
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "spatial dimension %zu: input size %lld is too small for kernel extent "
                        "%lld",
                        i, (long long)size, (long long)extent);
  *out = known(result);
  return STRAND_OK;
}

static strand_status infer_conv(ctx *c) {
  ty x, w, out;
  input_type(c, 0, &x);
  input_type(c, 1, &w);
  unknown_type(&out, x.dtype);
  if (x.rank >= 0 && x.rank < 3)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "input 0 has rank %d; Conv needs at least 3",
                        x.rank);
  if (x.rank >= 0 && w.rank >= 0 && w.rank != x.rank)
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "weight (input 1) has rank %d, expected %d like input 0", w.rank, x.rank);
  if (x.rank < 0) return set_output(c, 0, &out);
  int64_t group;
  strand_status st = attr_int(c, "group", 1, &group);
  if (st) return st;
  if (group < 1)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"group\" is %lld", (long long)group);
  int64_t channels;
  if (w.rank >= 0 && x.dims[1].value >= 0 && w.dims[1].value >= 0 &&
      (__builtin_mul_overflow(w.dims[1].value, group, &channels) ||
       x.dims[1].value != channels))
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "input 0 has %lld channels, but the weight expects %lld per group x "
                        "%lld groups",
                        (long long)x.dims[1].value, (long long)w.dims[1].value, (long long)group);
  window win;
  st = read_window(c, &x, w.rank >= 0 ? &w : NULL, &win);
  if (st) return st;
  out.rank = x.rank;
  out.dims[0] = x.dims[0];
  out.dims[1] = w.rank >= 0 ? w.dims[0] : unknown_dim;
  for (size_t i = 0; i < win.spatial; i++) {
    st = window_output(&win, i, &x.dims[2 + i], &out.dims[2 + i]);
    if (st) return st;
  }
  return set_output(c, 0, &out);
}

static strand_status infer_pool(ctx *c) {
  ty x, out;
  input_type(c, 0, &x);
  unknown_type(&out, x.dtype);
  if (x.rank >= 0 && x.rank < 3)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "input 0 has rank %d; pooling needs at least 3",
                        x.rank);
  if (x.rank >= 0) {
    window win;
    strand_status st = read_window(c, &x, NULL, &win);
    if (st) return st;
    out.rank = x.rank;
    out.dims[0] = x.dims[0];
    out.dims[1] = x.dims[1];
    for (size_t i = 0; i < win.spatial; i++) {
      st = window_output(&win, i, &x.dims[2 + i], &out.dims[2 + i]);
      if (st) return st;
    }
  }
  strand_status st = set_output(c, 0, &out);
  if (st) return st;
  out.dtype = STRAND_DTYPE_INT64; /* MaxPool's Indices */
  return set_output(c, 1, &out);
}

static strand_status infer_global_pool(ctx *c) {
  ty x;
  input_type(c, 0, &x);
  if (x.rank >= 0 && x.rank < 3)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "input 0 has rank %d; pooling needs at least 3",
                        x.rank);
  for (int32_t i = 2; i < x.rank; i++) x.dims[i] = known(1);
  return set_output(c, 0, &x);
}

/* ---- shape ops --------------------------------------------------------- */

/* Output 0 of a node that only gives its input a new shape (Reshape,
 * Flatten, Squeeze, Unsqueeze): when the input is a constant, so is the
 * output, with the same bytes. */
static strand_status set_view_output(ctx *c, const ty *out) {
  strand_status st = set_output(c, 0, out);
  if (st) return st;
  const onnx_tensor *data = input_constant(c, 0);
  if (data && all_known(out)) {
    onnx_tensor *t;
    st = relabel(c, data, out, &t);
    if (!st) st = set_constant(c, 0, t);
  }
  return st;
}

static strand_status infer_reshape(ctx *c) {
  ty x, out;
  input_type(c, 0, &x);
  unknown_type(&out, x.dtype);
  int64_t target[STRAND_MAX_RANK];
  size_t n = 0;
  bool have = false;
  if (c->node->opset < 5) {
    const int64_t *shape;
    strand_status st = attr_ints(c, "shape", &shape, &n);
    if (st) return st;
    if (shape && n <= STRAND_MAX_RANK) {
      memcpy(target, shape, n * sizeof *target);
      have = true;
    }
  } else {
    const onnx_tensor *shape = input_constant(c, 1);
    if (shape) {
      if (!is_integer_tensor(shape) || shape->rank != 1)
        return strand__fail(STRAND_E_MALFORMED_MODEL, "the shape (input 1) must be a 1-D int64 "
                            "tensor");
      if (shape->count > STRAND_MAX_RANK)
        return strand__fail(STRAND_E_UNSUPPORTED, "the shape (input 1) has %zu dims, more than "
                            "strand's limit of %d", shape->count, STRAND_MAX_RANK);
      have = constant_ints(shape, target, STRAND_MAX_RANK, &n);
    } else {
      ty s;
      input_type(c, 1, &s);
      if (s.rank == 1 && s.dims[0].value >= 0 && s.dims[0].value <= STRAND_MAX_RANK) {
        out.rank = (int32_t)s.dims[0].value;
        for (int32_t i = 0; i < out.rank; i++) out.dims[i] = unknown_dim;
      }
    }
  }
  if (!have) return set_output(c, 0, &out);
  int64_t allow_zero;
  strand_status st = attr_int(c, "allowzero", 0, &allow_zero);
  if (st) return st;
  out.rank = (int32_t)n;
  int32_t infer_at = -1;
  for (size_t i = 0; i < n; i++) {
    int64_t t = target[i];
    if (t == -1) {
      if (infer_at >= 0)
        return strand__fail(STRAND_E_MALFORMED_MODEL, "the shape has more than one -1");
      infer_at = (int32_t)i;
      out.dims[i] = unknown_dim;
    } else if (t < -1) {
      return strand__fail(STRAND_E_MALFORMED_MODEL, "the shape has dim %zu = %lld", i,
                          (long long)t);
    } else if (t == 0 && !allow_zero) {
      if (x.rank >= 0 && (int32_t)i >= x.rank)
        return strand__fail(STRAND_E_MALFORMED_MODEL,
                            "the shape's dim %zu is 0 (copy), but input 0 has rank %d", i, x.rank);
      out.dims[i] = x.rank >= 0 ? x.dims[i] : unknown_dim;
    } else {
      out.dims[i] = known(t);
    }
  }
  /* Element counts, when known, must agree; they also give the -1. */
  if (all_known(&x)) {
    uint64_t total = 1, rest = 1;
    bool overflow = false, rest_known = true;
    for (int32_t i = 0; i < x.rank; i++)
      overflow |= __builtin_mul_overflow(total, (uint64_t)x.dims[i].value, &total);
    for (int32_t i = 0; i < out.rank; i++) {
      if (i == infer_at) continue;
      if (out.dims[i].value < 0) rest_known = false;
      else overflow |= __builtin_mul_overflow(rest, (uint64_t)out.dims[i].value, &rest);
    }
    if (!overflow && rest_known) {
      char a[256], b[256];
      if (infer_at >= 0) {
        if (rest == 0 || total % rest)
          return strand__fail(STRAND_E_MALFORMED_MODEL, "cannot reshape %s into %s",
                              graph_shape_text(x.rank, x.dims, a, sizeof a),
                              graph_shape_text(out.rank, out.dims, b, sizeof b));
        out.dims[infer_at] = known((int64_t)(total / rest));
      } else if (rest != total) {
        return strand__fail(STRAND_E_MALFORMED_MODEL, "cannot reshape %s (%llu elements) into %s",
                            graph_shape_text(x.rank, x.dims, a, sizeof a),
                            (unsigned long long)total,
                            graph_shape_text(out.rank, out.dims, b, sizeof b));
      }
    }
  }
  return set_view_output(c, &out);
}

static strand_status infer_flatten(ctx *c) {
  ty x, out;
  input_type(c, 0, &x);
  unknown_type(&out, x.dtype);
  out.rank = 2;
  out.dims[0] = out.dims[1] = unknown_dim;
  if (x.rank >= 0) {
    int64_t axis;
    strand_status st = attr_int(c, "axis", 1, &axis);
    if (st) return st;
    if (axis < -(int64_t)x.rank || axis > x.rank)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "axis %lld is out of range for rank %d",
                          (long long)axis, x.rank);
    if (axis < 0) axis += x.rank;
    for (int part = 0; part < 2; part++) {
      int32_t from = part ? (int32_t)axis : 0, to = part ? x.rank : (int32_t)axis;
      int64_t product = 1;
      bool ok = true;
      for (int32_t i = from; i < to && ok; i++)
        ok = x.dims[i].value >= 0 && !__builtin_mul_overflow(product, x.dims[i].value, &product);
      if (ok) out.dims[part] = known(product);
      else if (to - from == 1) out.dims[part] = x.dims[from];
    }
  }
  return set_view_output(c, &out);
}

static strand_status infer_transpose(ctx *c) {
  ty x, out;
  input_type(c, 0, &x);
  unknown_type(&out, x.dtype);
  const int64_t *perm;
  size_t n;
  strand_status st = attr_ints(c, "perm", &perm, &n);
  if (st) return st;
  if (x.rank < 0) {
    if (perm && n <= STRAND_MAX_RANK) {
      out.rank = (int32_t)n;
      for (size_t i = 0; i < n; i++) out.dims[i] = unknown_dim;
    }
    return set_output(c, 0, &out);
  }
  if (perm && n != (size_t)x.rank)
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "attribute \"perm\" has %zu values, but input 0 has rank %d", n, x.rank);
  bool used[STRAND_MAX_RANK] = {false};
  out.rank = x.rank;
  for (int32_t i = 0; i < x.rank; i++) {
    int64_t p = perm ? perm[i] : x.rank - 1 - i;
    if (p < 0 || p >= x.rank || used[p])
      return strand__fail(STRAND_E_MALFORMED_MODEL,
                          "attribute \"perm\" is not a permutation of 0..%d", x.rank - 1);
    used[p] = true;
    out.dims[i] = x.dims[p];
  }
  return set_output(c, 0, &out);
}

static strand_status fold_concat(ctx *c, int32_t axis, const ty *out) {
  size_t count;
  if (!known_count(out, FOLD_MAX_ELEMENTS, &count)) return STRAND_OK;
  const onnx_tensor *first = input_constant(c, 0);
  if (!is_integer_tensor(first)) return STRAND_OK;
  for (size_t k = 0; k < c->node->n_inputs; k++) {
    const onnx_tensor *t = input_constant(c, k);
    if (!t || t->dtype != first->dtype) return STRAND_OK;
  }
  int64_t dims[STRAND_MAX_RANK];
  for (int32_t i = 0; i < out->rank; i++) dims[i] = out->dims[i].value;
  onnx_tensor *result;
  strand_status st = new_tensor(c, first->dtype, (size_t)out->rank, dims, &result);
  if (st) return st;
  size_t outer = 1, inner = 1, width = strand_dtype_size(first->dtype);
  for (int32_t i = 0; i < axis; i++) outer *= (size_t)dims[i];
  for (int32_t i = axis + 1; i < out->rank; i++) inner *= (size_t)dims[i];
  unsigned char *dst = (unsigned char *)result->data;
  for (size_t o = 0; o < outer; o++)
    for (size_t k = 0; k < c->node->n_inputs; k++) {
      const onnx_tensor *t = input_constant(c, k);
      size_t chunk = (size_t)t->dims[axis] * inner * width;
      if (chunk) memcpy(dst, (const unsigned char *)t->data + o * chunk, chunk);
      dst += chunk;
    }
  return set_constant(c, 0, result);
}

static strand_status infer_concat(ctx *c) {
  ty out;
  unknown_type(&out, STRAND_DTYPE_UNDEFINED);
  int64_t axis;
  strand_status st = attr_int(c, "axis", 1, &axis);
  if (st) return st;
  int32_t rank = -1, a = 0;
  bool sum_known = true;
  int64_t sum = 0;
  for (size_t k = 0; k < c->node->n_inputs; k++) {
    ty t;
    input_type(c, k, &t);
    if (out.dtype == STRAND_DTYPE_UNDEFINED) out.dtype = t.dtype;
    if (t.rank < 0) {
      sum_known = false;
      continue;
    }
    if (rank < 0) {
      rank = t.rank;
      st = normalize_axis(axis, rank, "axis", &a);
      if (st) return st;
      out.rank = rank;
      for (int32_t i = 0; i < rank; i++) out.dims[i] = t.dims[i];
    } else if (t.rank != rank) {
      return strand__fail(STRAND_E_MALFORMED_MODEL, "input %zu has rank %d, input 0 has %d", k,
                          t.rank, rank);
    } else {
      for (int32_t i = 0; i < rank; i++) {
        if (i == a) continue;
        if (t.dims[i].value >= 0 && out.dims[i].value >= 0 && t.dims[i].value != out.dims[i].value)
          return strand__fail(STRAND_E_MALFORMED_MODEL,
                              "input %zu has dim %d = %lld, expected %lld as in the other inputs",
                              k, i, (long long)t.dims[i].value, (long long)out.dims[i].value);
        if (out.dims[i].value < 0 && t.dims[i].value >= 0) out.dims[i] = t.dims[i];
      }
    }
    if (t.dims[a].value < 0 || __builtin_add_overflow(sum, t.dims[a].value, &sum))
      sum_known = false;
  }
  if (out.rank >= 0) out.dims[a] = sum_known ? known(sum) : unknown_dim;
  st = set_output(c, 0, &out);
  if (st || out.rank < 0) return st;
  return fold_concat(c, a, &out);
}

/* Shape (with opset 15's start and end) of input 0. */
static strand_status infer_shape(ctx *c) {
  ty x, out;
  input_type(c, 0, &x);
  unknown_type(&out, STRAND_DTYPE_INT64);
  out.rank = 1;
  out.dims[0] = unknown_dim;
  if (x.rank < 0) return set_output(c, 0, &out);
  int64_t start, end;
  strand_status st = attr_int(c, "start", 0, &start);
  if (!st) st = attr_int(c, "end", x.rank, &end);
  if (st) return st;
  if (start < 0) start += x.rank;
  if (end < 0) end += x.rank;
  if (start < 0) start = 0;
  if (end > x.rank) end = x.rank;
  if (end < start) end = start;
  out.dims[0] = known(end - start);
  st = set_output(c, 0, &out);
  if (st) return st;
  int64_t dims[1] = {end - start};
  for (int64_t i = start; i < end; i++)
    if (x.dims[i].value < 0) return STRAND_OK;
  onnx_tensor *t;
  st = new_tensor(c, STRAND_DTYPE_INT64, 1, dims, &t);
  if (st) return st;
  for (int64_t i = start; i < end; i++) ((int64_t *)t->data)[i - start] = x.dims[i].value;
  return set_constant(c, 0, t);
}

static strand_status infer_size(ctx *c) {
  ty x, out;
  input_type(c, 0, &x);
  unknown_type(&out, STRAND_DTYPE_INT64);
  out.rank = 0;
  strand_status st = set_output(c, 0, &out);
  size_t count;
  if (st || !known_count(&x, SIZE_MAX, &count) || count > INT64_MAX) return st;
  onnx_tensor *t;
  st = new_tensor(c, STRAND_DTYPE_INT64, 0, NULL, &t);
  if (st) return st;
  *(int64_t *)t->data = (int64_t)count;
  return set_constant(c, 0, t);
}

static strand_status infer_gather(ctx *c) {
  ty data, indices, out;
  input_type(c, 0, &data);
  input_type(c, 1, &indices);
  unknown_type(&out, data.dtype);
  if (data.rank < 0 || indices.rank < 0) return set_output(c, 0, &out);
  if (data.rank == 0)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "input 0 is a scalar; Gather needs rank >= 1");
  int64_t axis_attr;
  int32_t axis = 0;
  strand_status st = attr_int(c, "axis", 0, &axis_attr);
  if (!st) st = normalize_axis(axis_attr, data.rank, "axis", &axis);
  if (st) return st;
  out.rank = data.rank + indices.rank - 1;
  if (out.rank > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_UNSUPPORTED, "output rank %d is more than strand's limit of %d",
                        out.rank, STRAND_MAX_RANK);
  int32_t o = 0;
  for (int32_t i = 0; i < axis; i++) out.dims[o++] = data.dims[i];
  for (int32_t i = 0; i < indices.rank; i++) out.dims[o++] = indices.dims[i];
  for (int32_t i = axis + 1; i < data.rank; i++) out.dims[o++] = data.dims[i];
  st = set_output(c, 0, &out);
  if (st) return st;

  const onnx_tensor *d = input_constant(c, 0), *idx = input_constant(c, 1);
  size_t count;
  if (!is_integer_tensor(d) || d->count > FOLD_MAX_ELEMENTS || !is_integer_tensor(idx) ||
      !known_count(&out, FOLD_MAX_ELEMENTS, &count))
    return STRAND_OK;
  size_t outer = 1, inner = 1, extent = (size_t)d->dims[axis];
  for (int32_t i = 0; i < axis; i++) outer *= (size_t)d->dims[i];
  for (int32_t i = axis + 1; i < data.rank; i++) inner *= (size_t)d->dims[i];
  for (size_t j = 0; j < idx->count; j++) {
    int64_t v = element_int(idx, j);
    if (v < -(int64_t)extent || v >= (int64_t)extent) return STRAND_OK; /* run time reports it */
  }
  int64_t dims[STRAND_MAX_RANK];
  for (int32_t i = 0; i < out.rank; i++) dims[i] = out.dims[i].value;
  onnx_tensor *t;
  st = new_tensor(c, d->dtype, (size_t)out.rank, dims, &t);
  if (st) return st;
  size_t width = strand_dtype_size(d->dtype), n = 0;
  for (size_t a = 0; a < outer; a++)
    for (size_t j = 0; j < idx->count; j++) {
      int64_t v = element_int(idx, j);
      size_t at = (size_t)(v < 0 ? v + (int64_t)extent : v);
      memcpy((unsigned char *)t->data + n * width,
             (const unsigned char *)d->data + ((a * extent + at) * inner) * width, inner * width);
      n += inner;
    }
  return set_constant(c, 0, t);
}

/* Unsqueeze's and Squeeze's axes: attribute before opset 13, input after.
 * *have is false when they are not known at load. */
static strand_status read_axes(ctx *c, int64_t *axes, size_t *n, bool *have, bool *present) {
  *have = false;
  *present = false;
  if (c->node->opset < 13) {
    const int64_t *values;
    strand_status st = attr_ints(c, "axes", &values, n);
    if (st) return st;
    *present = values != NULL;
    if (values && *n <= STRAND_MAX_RANK) {
      memcpy(axes, values, *n * sizeof *axes);
      *have = true;
    }
    return STRAND_OK;
  }
  *present = has_input(c, 1);
  const onnx_tensor *t = input_constant(c, 1);
  if (t) *have = constant_ints(t, axes, STRAND_MAX_RANK, n);
  return STRAND_OK;
}

static strand_status infer_unsqueeze(ctx *c) {
  ty x, out;
  input_type(c, 0, &x);
  unknown_type(&out, x.dtype);
  int64_t axes[STRAND_MAX_RANK];
  size_t n = 0;
  bool have, present;
  strand_status st = read_axes(c, axes, &n, &have, &present);
  if (st) return st;
  if (!have || x.rank < 0) return set_output(c, 0, &out);
  out.rank = x.rank + (int32_t)n;
  if (out.rank > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_UNSUPPORTED, "output rank %d is more than strand's limit of %d",
                        out.rank, STRAND_MAX_RANK);
  bool inserted[STRAND_MAX_RANK] = {false};
  for (size_t i = 0; i < n; i++) {
    int32_t a = 0;
    st = normalize_axis(axes[i], out.rank, "axis", &a);
    if (st) return st;
    if (inserted[a])
      return strand__fail(STRAND_E_MALFORMED_MODEL, "axis %lld is given twice", (long long)axes[i]);
    inserted[a] = true;
  }
  for (int32_t i = 0, from = 0; i < out.rank; i++)
    out.dims[i] = inserted[i] ? known(1) : x.dims[from++];
  return set_view_output(c, &out);
}

static strand_status infer_squeeze(ctx *c) {
  ty x, out;
  input_type(c, 0, &x);
  unknown_type(&out, x.dtype);
  int64_t axes[STRAND_MAX_RANK];
  size_t n = 0;
  bool have, present;
  strand_status st = read_axes(c, axes, &n, &have, &present);
  if (st) return st;
  if (x.rank < 0 || (present && !have)) return set_output(c, 0, &out);
  bool drop[STRAND_MAX_RANK] = {false};
  if (present) {
    for (size_t i = 0; i < n; i++) {
      int32_t a = 0;
      st = normalize_axis(axes[i], x.rank, "axis", &a);
      if (st) return st;
      if (x.dims[a].value >= 0 && x.dims[a].value != 1)
        return strand__fail(STRAND_E_MALFORMED_MODEL, "cannot squeeze axis %d of size %lld", a,
                            (long long)x.dims[a].value);
      drop[a] = true;
    }
  } else {
    for (int32_t i = 0; i < x.rank; i++) {
      if (x.dims[i].value < 0) return set_output(c, 0, &out); /* might be 1 */
      drop[i] = x.dims[i].value == 1;
    }
  }
  out.rank = 0;
  for (int32_t i = 0; i < x.rank; i++)
    if (!drop[i]) out.dims[out.rank++] = x.dims[i];
  return set_view_output(c, &out);
}

static strand_status infer_cast(ctx *c) {
  ty x;
  input_type(c, 0, &x);
  int64_t to;
  strand_status st = attr_int(c, "to", 0, &to);
  if (st) return st;
  if (!onnx_dtype_from_onnx(to, &x.dtype))
    return strand__fail(STRAND_E_UNSUPPORTED, "cast to element type %s (%lld) is not supported",
                        onnx_dtype_onnx_name(to), (long long)to);
  st = set_output(c, 0, &x);
  if (st) return st;
  const onnx_tensor *in = input_constant(c, 0);
  if (!in) return STRAND_OK;
  if (in->dtype == x.dtype) return set_constant(c, 0, in);
  bool to_int = x.dtype == STRAND_DTYPE_INT64 || x.dtype == STRAND_DTYPE_INT32;
  if (!is_integer_tensor(in) || !to_int || in->count > FOLD_MAX_ELEMENTS) return STRAND_OK;
  for (size_t i = 0; i < in->count; i++) {
    int64_t v = element_int(in, i);
    if (x.dtype == STRAND_DTYPE_INT32 && (v < INT32_MIN || v > INT32_MAX)) return STRAND_OK;
  }
  onnx_tensor *t;
  st = new_tensor(c, x.dtype, in->rank, in->dims, &t);
  if (st) return st;
  for (size_t i = 0; i < in->count; i++) {
    if (x.dtype == STRAND_DTYPE_INT64) ((int64_t *)t->data)[i] = element_int(in, i);
    else ((int32_t *)t->data)[i] = (int32_t)element_int(in, i);
  }
  return set_constant(c, 0, t);
}

static strand_status infer_constant(ctx *c) {
  static const char *const names[] = {"value", "value_float", "value_floats", "value_int",
                                      "value_ints"};
  const onnx_attr *a = NULL;
  for (size_t i = 0; i < sizeof names / sizeof names[0] && !a; i++)
    a = graph_node_attr(c->node, names[i]);
  if (!a) return STRAND_OK; /* validate.c has refused every other form */
  if (a->type == ONNX_ATTR_TENSOR) return set_constant(c, 0, a->t);
  onnx_tensor *t;
  int64_t n = (int64_t)a->count;
  strand_status st;
  switch (a->type) {
  case ONNX_ATTR_FLOAT:
    st = new_tensor(c, STRAND_DTYPE_FLOAT32, 0, NULL, &t);
    if (!st) *(float *)t->data = a->f;
    break;
  case ONNX_ATTR_INT:
    st = new_tensor(c, STRAND_DTYPE_INT64, 0, NULL, &t);
    if (!st) *(int64_t *)t->data = a->i;
    break;
  case ONNX_ATTR_FLOATS:
  default: { /* INTS */
    /* Not through new_tensor: the list is bounded by the file, not by
     * FOLD_MAX_ELEMENTS, and its data can be used in place. */
    bool floats = a->type == ONNX_ATTR_FLOATS;
    int64_t *dims;
    st = onnx_arena_alloc(c->arena, sizeof *t, (void **)&t);
    if (!st) st = onnx_arena_array(c->arena, 1, sizeof *dims, (void **)&dims);
    if (st) break;
    dims[0] = n;
    t->name = "";
    t->dtype = floats ? STRAND_DTYPE_FLOAT32 : STRAND_DTYPE_INT64;
    t->rank = 1;
    t->dims = dims;
    t->count = a->count;
    t->byte_size = a->count * strand_dtype_size(t->dtype);
    t->data = !a->count ? NULL : floats ? (const void *)a->floats : (const void *)a->ints;
    t->storage = a->count ? ONNX_STORAGE_COMPUTED : ONNX_STORAGE_NONE;
    break;
  }
  }
  if (st) return st;
  return set_constant(c, 0, t);
}

static strand_status infer_constant_of_shape(ctx *c) {
  const onnx_attr *value = graph_node_attr(c->node, "value");
  if (value && value->type != ONNX_ATTR_TENSOR) return wrong_type(value, ONNX_ATTR_TENSOR);
  if (value && value->t->count != 1)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"value\" has %zu elements, "
                        "expected 1", value->t->count);
  ty out;
  unknown_type(&out, value ? value->t->dtype : STRAND_DTYPE_FLOAT32);
  const onnx_tensor *shape = input_constant(c, 0);
  int64_t dims[STRAND_MAX_RANK];
  size_t n;
  if (shape && shape->count > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_UNSUPPORTED, "the shape has %zu dims, more than strand's limit "
                        "of %d", shape->count, STRAND_MAX_RANK);
  if (!shape || !constant_ints(shape, dims, STRAND_MAX_RANK, &n)) {
    ty s;
    input_type(c, 0, &s);
    if (s.rank == 1 && s.dims[0].value >= 0 && s.dims[0].value <= STRAND_MAX_RANK) {
      out.rank = (int32_t)s.dims[0].value;
      for (int32_t i = 0; i < out.rank; i++) out.dims[i] = unknown_dim;
    }
    return set_output(c, 0, &out);
  }
  out.rank = (int32_t)n;
  for (size_t i = 0; i < n; i++) {
    if (dims[i] < 0)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "the shape has dim %zu = %lld", i,
                          (long long)dims[i]);
    out.dims[i] = known(dims[i]);
  }
  strand_status st = set_output(c, 0, &out);
  size_t count;
  if (st || out.dtype != STRAND_DTYPE_INT64 || !known_count(&out, FOLD_MAX_ELEMENTS, &count))
    return st;
  onnx_tensor *t;
  st = new_tensor(c, out.dtype, n, dims, &t);
  if (st) return st;
  int64_t fill = value && value->t->data ? *(const int64_t *)value->t->data : 0;
  for (size_t i = 0; i < count; i++) ((int64_t *)t->data)[i] = fill;
  return set_constant(c, 0, t);
}

/* The length of one sliced axis (ONNX clamping rules), and its first
 * index. Written to stay within int64 for any start, end and step != 0. */
static int64_t slice_length(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *first) {
  *first = 0;
  if (dim == 0) return 0;
  if (start < 0) start += dim; /* cannot overflow: dim > 0 */
  if (end < 0) end += dim;
  if (step > 0) {
    start = start < 0 ? 0 : start > dim ? dim : start;
    end = end < 0 ? 0 : end > dim ? dim : end;
    *first = start;
    return end > start ? (end - start - 1) / step + 1 : 0;
  }
  start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
  end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
  *first = start;
  if (start <= end) return 0;
  uint64_t span = (uint64_t)(start - end - 1);
  uint64_t stride = (uint64_t)(-(step + 1)) + 1; /* -step without overflow */
  return (int64_t)(span / stride) + 1;
}

static strand_status infer_slice(ctx *c) {
  ty x, out;
  input_type(c, 0, &x);
  unknown_type(&out, x.dtype);
  if (x.rank < 0) return set_output(c, 0, &out);
  out.rank = x.rank;
  for (int32_t i = 0; i < x.rank; i++) out.dims[i] = unknown_dim;
  int64_t starts[STRAND_MAX_RANK], ends[STRAND_MAX_RANK], axes[STRAND_MAX_RANK],
      steps[STRAND_MAX_RANK];
  size_t n = 0, n_ends = 0, n_axes = 0, n_steps = 0;
  bool have = true, have_axes = false, have_steps = false;
  if (c->node->opset < 10) {
    const int64_t *s, *e, *a;
    strand_status st = attr_ints(c, "starts", &s, &n);
    if (!st) st = attr_ints(c, "ends", &e, &n_ends);
    if (!st) st = attr_ints(c, "axes", &a, &n_axes);
    if (st) return st;
    have = s && e && n <= STRAND_MAX_RANK && n_ends <= STRAND_MAX_RANK &&
           n_axes <= STRAND_MAX_RANK;
    if (have) {
      memcpy(starts, s, n * sizeof *s);
      memcpy(ends, e, n_ends * sizeof *e);
      if (a) memcpy(axes, a, n_axes * sizeof *a);
      have_axes = a != NULL;
    }
  } else {
    const onnx_tensor *s = input_constant(c, 1), *e = input_constant(c, 2);
    have = s && e && constant_ints(s, starts, STRAND_MAX_RANK, &n) &&
           constant_ints(e, ends, STRAND_MAX_RANK, &n_ends);
    if (has_input(c, 3)) {
      const onnx_tensor *a = input_constant(c, 3);
      have = have && a && constant_ints(a, axes, STRAND_MAX_RANK, &n_axes);
      have_axes = true;
    }
    if (has_input(c, 4)) {
      const onnx_tensor *p = input_constant(c, 4);
      have = have && p && constant_ints(p, steps, STRAND_MAX_RANK, &n_steps);
      have_steps = true;
    }
  }
  if (!have) return set_output(c, 0, &out);
  if (n_ends != n || (have_axes && n_axes != n) || (have_steps && n_steps != n))
    return strand__fail(STRAND_E_MALFORMED_MODEL, "starts, ends, axes and steps differ in length");
  int64_t first[STRAND_MAX_RANK], step_of[STRAND_MAX_RANK];
  bool sliced[STRAND_MAX_RANK] = {false};
  for (int32_t i = 0; i < x.rank; i++) {
    out.dims[i] = x.dims[i];
    first[i] = 0;
    step_of[i] = 1;
  }
  for (size_t i = 0; i < n; i++) {
    int32_t a = 0;
    strand_status st = normalize_axis(have_axes ? axes[i] : (int64_t)i, x.rank, "axis", &a);
    if (st) return st;
    if (sliced[a])
      return strand__fail(STRAND_E_MALFORMED_MODEL, "axis %d is sliced twice", a);
    sliced[a] = true;
    int64_t step = have_steps ? steps[i] : 1;
    if (step == 0) return strand__fail(STRAND_E_MALFORMED_MODEL, "a step is 0");
    step_of[a] = step;
    if (x.dims[a].value < 0) {
      out.dims[a] = unknown_dim;
      continue;
    }
    out.dims[a] = known(slice_length(x.dims[a].value, starts[i], ends[i], step, &first[a]));
  }
  strand_status st = set_output(c, 0, &out);
  if (st) return st;
  const onnx_tensor *data = input_constant(c, 0);
  size_t count;
  if (!is_integer_tensor(data) || !known_count(&out, FOLD_MAX_ELEMENTS, &count)) return STRAND_OK;
  int64_t dims[STRAND_MAX_RANK];
  for (int32_t i = 0; i < out.rank; i++) dims[i] = out.dims[i].value;
  onnx_tensor *t;
  st = new_tensor(c, data->dtype, (size_t)out.rank, dims, &t);
  if (st) return st;
  size_t width = strand_dtype_size(data->dtype);
  for (size_t flat = 0; flat < count; flat++) {
    size_t rest = flat, from = 0, stride = 1;
    for (int32_t i = out.rank - 1; i >= 0; i--) {
      size_t coord = rest % (size_t)dims[i];
      rest /= (size_t)dims[i];
      from += (size_t)(first[i] + (int64_t)coord * step_of[i]) * stride;
      stride *= (size_t)data->dims[i];
    }
    memcpy((unsigned char *)t->data + flat * width, (const unsigned char *)data->data + from * width,
           width);
  }
  return set_constant(c, 0, t);
}

static strand_status infer_expand(ctx *c) {
  ty x, out;
  input_type(c, 0, &x);
  unknown_type(&out, x.dtype);
  const onnx_tensor *shape = input_constant(c, 1);
  int64_t dims[STRAND_MAX_RANK];
  size_t n;
  if (!shape || !constant_ints(shape, dims, STRAND_MAX_RANK, &n) || x.rank < 0)
    return set_output(c, 0, &out);
  ty target;
  target.rank = (int32_t)n;
  for (size_t i = 0; i < n; i++) target.dims[i] = dims[i] >= 0 ? known(dims[i]) : unknown_dim;
  out = x;
  strand_status st = broadcast_into(&out, &target, 1);
  if (st) return st;
  out.dtype = x.dtype;
  return set_output(c, 0, &out);
}

static strand_status infer_split(ctx *c) {
  ty x;
  input_type(c, 0, &x);
  size_t outputs = c->node->n_outputs;
  if (x.rank < 0) {
    ty out;
    unknown_type(&out, x.dtype);
    for (size_t k = 0; k < outputs; k++) {
      strand_status st = set_output(c, k, &out);
      if (st) return st;
    }
    return STRAND_OK;
  }
  int64_t axis_attr;
  int32_t axis = 0;
  strand_status st = attr_int(c, "axis", 0, &axis_attr);
  if (!st) st = normalize_axis(axis_attr, x.rank, "axis", &axis);
  if (st) return st;
  int64_t sizes[FOLD_MAX_ELEMENTS];
  size_t n = 0;
  bool have = false;
  if (has_input(c, 1)) {
    const onnx_tensor *s = input_constant(c, 1);
    have = s && constant_ints(s, sizes, FOLD_MAX_ELEMENTS, &n);
  } else {
    const int64_t *split;
    st = attr_ints(c, "split", &split, &n);
    if (st) return st;
    if (split && n <= FOLD_MAX_ELEMENTS) {
      memcpy(sizes, split, n * sizeof *sizes);
      have = true;
    }
  }
  if (have && n != outputs)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "split has %zu sizes for %zu outputs", n,
                        outputs);
  int64_t dim = x.dims[axis].value;
  if (have && dim >= 0) {
    int64_t sum = 0;
    for (size_t k = 0; k < n; k++)
      if (sizes[k] < 0 || __builtin_add_overflow(sum, sizes[k], &sum))
        return strand__fail(STRAND_E_MALFORMED_MODEL, "split size %zu is %lld", k,
                            (long long)sizes[k]);
    if (sum != dim)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "split sizes add up to %lld, but axis %d has "
                          "%lld", (long long)sum, axis, (long long)dim);
  }
  for (size_t k = 0; k < outputs; k++) {
    ty out = x;
    if (have) out.dims[axis] = known(sizes[k]);
    /* Equal parts only when no sizes are given at all: sizes computed at run
     * time may be anything. */
    else if (!has_input(c, 1) && dim >= 0 && outputs && dim % (int64_t)outputs == 0)
      out.dims[axis] = known(dim / (int64_t)outputs);
    else out.dims[axis] = unknown_dim;
    st = set_output(c, k, &out);
    if (st) return st;
  }
  return STRAND_OK;
}

static strand_status infer_reduce(ctx *c) {
  ty x, out;
  input_type(c, 0, &x);
  unknown_type(&out, x.dtype);
  int64_t keep, noop;
  strand_status st = attr_int(c, "keepdims", 1, &keep);
  if (!st) st = attr_int(c, "noop_with_empty_axes", 0, &noop);
  if (st) return st;
  int64_t axes[STRAND_MAX_RANK];
  size_t n = 0;
  bool have;
  if (has_input(c, 1)) {
    const onnx_tensor *t = input_constant(c, 1);
    have = t && constant_ints(t, axes, STRAND_MAX_RANK, &n);
  } else {
    const int64_t *values;
    st = attr_ints(c, "axes", &values, &n);
    if (st) return st;
    have = !values || n <= STRAND_MAX_RANK;
    if (values && have) memcpy(axes, values, n * sizeof *axes);
    if (!values) n = 0;
  }
  if (!have || x.rank < 0) return set_output(c, 0, &out);
  bool reduce[STRAND_MAX_RANK] = {false};
  if (n == 0) {
    if (noop) return set_output(c, 0, &x);
    for (int32_t i = 0; i < x.rank; i++) reduce[i] = true;
  }
  for (size_t i = 0; i < n; i++) {
    int32_t a = 0;
    st = normalize_axis(axes[i], x.rank, "axis", &a);
    if (st) return st;
    reduce[a] = true;
  }
  out.rank = 0;
  for (int32_t i = 0; i < x.rank; i++) {
    if (!reduce[i]) out.dims[out.rank++] = x.dims[i];
    else if (keep) out.dims[out.rank++] = known(1);
  }
  return set_output(c, 0, &out);
}

static strand_status infer_argmax(ctx *c) {
  ty x, out;
  input_type(c, 0, &x);
  unknown_type(&out, STRAND_DTYPE_INT64);
  if (x.rank >= 1) {
    int64_t axis_attr, keep;
    int32_t axis = 0;
    strand_status st = attr_int(c, "axis", 0, &axis_attr);
    if (!st) st = attr_int(c, "keepdims", 1, &keep);
    if (!st) st = normalize_axis(axis_attr, x.rank, "axis", &axis);
    if (st) return st;
    out.rank = 0;
    for (int32_t i = 0; i < x.rank; i++) {
      if (i != axis) out.dims[out.rank++] = x.dims[i];
      else if (keep) out.dims[out.rank++] = known(1);
    }
  }
  return set_output(c, 0, &out);
}

static strand_status infer_range(ctx *c) {
  ty start, out;
  input_type(c, 0, &start);
  unknown_type(&out, start.dtype);
  out.rank = 1;
  out.dims[0] = unknown_dim;
  return set_output(c, 0, &out);
}

/* ---- control flow ------------------------------------------------------ */

/* If: an output's type is what both branches agree on. */
static strand_status infer_if(ctx *c) {
  if (c->node->n_subgraphs != 2) return STRAND_OK;
  const graph *a = c->node->subgraphs[0], *b = c->node->subgraphs[1];
  for (size_t k = 0; k < c->node->n_outputs && k < a->n_outputs && k < b->n_outputs; k++) {
    const graph_value *x = &a->values[a->outputs[k]], *y = &b->values[b->outputs[k]];
    ty out;
    unknown_type(&out, x->dtype == y->dtype ? x->dtype : STRAND_DTYPE_UNDEFINED);
    if (x->rank >= 0 && x->rank == y->rank) {
      out.rank = x->rank;
      for (int32_t i = 0; i < x->rank; i++)
        out.dims[i] = same_dim(&x->dims[i], &y->dims[i]) ? x->dims[i] : unknown_dim;
    }
    strand_status st = set_output(c, k, &out);
    if (st) return st;
  }
  return STRAND_OK;
}

/* ---- the table --------------------------------------------------------- */

typedef strand_status (*rule_fn)(ctx *c);

typedef struct rule {
  const char *op_type;
  rule_fn fn;
} rule;

static const rule rules[] = {
    {"Add", infer_broadcast}, {"Sub", infer_broadcast}, {"Mul", infer_broadcast},
    {"Div", infer_broadcast}, {"Pow", infer_broadcast}, {"Mod", infer_broadcast},
    {"BitShift", infer_broadcast}, {"PRelu", infer_same}, {"Sum", infer_broadcast},
    {"Max", infer_broadcast}, {"Min", infer_broadcast}, {"Mean", infer_broadcast},
    {"And", infer_compare}, {"Or", infer_compare}, {"Xor", infer_compare},
    {"Equal", infer_compare}, {"Less", infer_compare}, {"Greater", infer_compare},
    {"LessOrEqual", infer_compare}, {"GreaterOrEqual", infer_compare},
    {"Where", infer_where},
    {"Relu", infer_same}, {"Sigmoid", infer_same}, {"Tanh", infer_same}, {"Exp", infer_same},
    {"Log", infer_same}, {"Sqrt", infer_same}, {"Abs", infer_same}, {"Neg", infer_same},
    {"Reciprocal", infer_same}, {"Floor", infer_same}, {"Ceil", infer_same},
    {"Round", infer_same}, {"Sign", infer_same}, {"Erf", infer_same}, {"Softplus", infer_same},
    {"Softsign", infer_same}, {"Sin", infer_same}, {"Cos", infer_same}, {"Tan", infer_same},
    {"Asin", infer_same}, {"Acos", infer_same}, {"Atan", infer_same}, {"Sinh", infer_same},
    {"Cosh", infer_same}, {"Asinh", infer_same}, {"Acosh", infer_same}, {"Atanh", infer_same},
    {"HardSwish", infer_same}, {"Mish", infer_same}, {"Elu", infer_same}, {"Selu", infer_same},
    {"LeakyRelu", infer_same}, {"HardSigmoid", infer_same}, {"ThresholdedRelu", infer_same},
    {"Celu", infer_same}, {"Gelu", infer_same}, {"Softmax", infer_same},
    {"LogSoftmax", infer_same}, {"Hardmax", infer_same}, {"Clip", infer_same},
    {"LRN", infer_same}, {"BatchNormalization", infer_same},
    {"InstanceNormalization", infer_same}, {"LayerNormalization", infer_same},
    {"Shrink", infer_same}, {"CumSum", infer_same}, {"Trilu", infer_same},
    {"MeanVarianceNormalization", infer_same},
    {"Not", infer_bool_same}, {"IsNaN", infer_bool_same}, {"IsInf", infer_bool_same},
    {"Identity", infer_identity}, {"Dropout", infer_dropout},
    {"MatMul", infer_matmul}, {"Gemm", infer_gemm},
    {"Conv", infer_conv}, {"MaxPool", infer_pool}, {"AveragePool", infer_pool},
    {"LpPool", infer_pool}, {"GlobalAveragePool", infer_global_pool},
    {"GlobalMaxPool", infer_global_pool}, {"GlobalLpPool", infer_global_pool},
    {"Reshape", infer_reshape}, {"Flatten", infer_flatten}, {"Transpose", infer_transpose},
    {"Concat", infer_concat}, {"Shape", infer_shape}, {"Size", infer_size},
    {"Gather", infer_gather}, {"Unsqueeze", infer_unsqueeze}, {"Squeeze", infer_squeeze},
    {"Cast", infer_cast}, {"Constant", infer_constant},
    {"ConstantOfShape", infer_constant_of_shape}, {"Slice", infer_slice},
    {"Expand", infer_expand}, {"Split", infer_split},
    {"ReduceMean", infer_reduce}, {"ReduceSum", infer_reduce}, {"ReduceMax", infer_reduce},
    {"ReduceMin", infer_reduce}, {"ReduceProd", infer_reduce}, {"ReduceL1", infer_reduce},
    {"ReduceL2", infer_reduce}, {"ReduceLogSum", infer_reduce},
    {"ReduceLogSumExp", infer_reduce}, {"ReduceSumSquare", infer_reduce},
    {"ArgMax", infer_argmax}, {"ArgMin", infer_argmax}, {"Range", infer_range},
    {"If", infer_if},
};

static rule_fn find_rule(const graph_node *node) {
  if (node->domain[0]) return NULL;
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    if (strcmp(rules[i].op_type, node->op_type) == 0) return rules[i].fn;
  return NULL;
}

/* ---- the pass ---------------------------------------------------------- */

/* Outer references take the enclosing value's type and constant, which
 * are final: the enclosing node's inputs were typed before its subgraphs. */
static strand_status prepare_subgraph(onnx_arena *arena, graph *sub, const graph_node *owner) {
  for (size_t i = 0; i < sub->n_values; i++) {
    graph_value *v = &sub->values[i];
    if (!(v->flags & GRAPH_VALUE_OUTER)) continue;
    const graph_value *o = &v->outer_graph->values[v->outer_index];
    v->dtype = o->dtype;
    v->rank = o->rank;
    v->dims = o->dims;
    if (o->flags & GRAPH_VALUE_CONSTANT) {
      v->flags |= GRAPH_VALUE_CONSTANT;
      v->constant = o->constant;
    }
  }
  /* Loop bodies: (iteration_num int64, cond bool, carried values...). */
  if (!owner->domain[0] && strcmp(owner->op_type, "Loop") == 0 && sub->n_inputs >= 2) {
    /* Element types only: some exporters declare these scalars as [1]. */
    strand_status st =
        graph_merge_type(arena, &sub->values[sub->inputs[0]], STRAND_DTYPE_INT64, -1, NULL,
                         "Loop's iteration number");
    if (!st)
      st = graph_merge_type(arena, &sub->values[sub->inputs[1]], STRAND_DTYPE_BOOL, -1, NULL,
                            "Loop's condition");
    if (st) return st;
  }
  return STRAND_OK;
}

strand_status graph_infer(onnx_arena *arena, graph *g) {
  for (size_t k = 0; k < g->n_nodes; k++) {
    graph_node *node = &g->nodes[k];
    strand_status st = STRAND_OK;
    for (size_t s = 0; s < node->n_subgraphs && !st; s++) {
      st = prepare_subgraph(arena, node->subgraphs[s], node);
      if (!st) st = graph_infer(arena, node->subgraphs[s]);
    }
    if (st) return graph_node_context(st, g, node);
    rule_fn fn = find_rule(node);
    if (!fn) continue;
    ctx c = {arena, g, node};
    st = fn(&c);
    if (st) return graph_node_context(st, g, node);
    bool folded = node->n_outputs > 0;
    for (size_t i = 0; i < node->n_outputs && folded; i++)
      folded = node->outputs[i] < 0 || (g->values[node->outputs[i]].flags & GRAPH_VALUE_FOLDED);
    node->folded = folded;
  }
  return STRAND_OK;
}
