/*
 * reduce.c — reductions over any set of axes: ReduceSum, ReduceMean,
 * ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceLogSum,
 * ReduceLogSumExp, ReduceSumSquare; and ArgMax, ArgMin.
 *
 * The axes come from the attribute (before opset 18; ReduceSum before 13)
 * or from input 1. Each output element walks its reduced elements with an
 * odometer over the reduced dimensions (merged where contiguous), in double
 * precision for floats; output elements are split over the threads.
 */
#include "kernels/kernels_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef enum reduce_op {
  RED_SUM, RED_MEAN, RED_MAX, RED_MIN, RED_PROD, RED_L1, RED_L2, RED_LOG_SUM, RED_LOG_SUM_EXP,
  RED_SUM_SQUARE, RED_ARGMAX, RED_ARGMIN
} reduce_op;

typedef struct reduce_params {
  reduce_op op;
  bool keep_dims, noop_with_empty_axes, axes_from_attribute, select_last_index;
  size_t n_axes;
  int64_t axes[STRAND_MAX_RANK];
} reduce_params;

static strand_status prepare(kernel_prepare *p, void **out, reduce_op op, int axes_input_since) {
  reduce_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  params->op = op;
  int64_t keep = 1, noop = 0, last = 0;
  st = kernel_attr_int(p->node, "keepdims", 1, &keep);
  if (!st) st = kernel_attr_int(p->node, "noop_with_empty_axes", 0, &noop);
  if (!st) st = kernel_attr_int(p->node, "select_last_index", 0, &last);
  if (st) return st;
  params->keep_dims = keep != 0;
  params->noop_with_empty_axes = noop != 0;
  params->select_last_index = last != 0;
  if (op == RED_ARGMAX || op == RED_ARGMIN) {
    int64_t axis;
    st = kernel_attr_int(p->node, "axis", 0, &axis);
    if (st) return st;
    params->axes_from_attribute = true;
    params->n_axes = 1;
    params->axes[0] = axis;
    return STRAND_OK;
  }
  bool from_input = p->node->opset < 0 || p->node->opset >= axes_input_since;
  if (from_input) return STRAND_OK;
  params->axes_from_attribute = true;
  const int64_t *axes;
  size_t n;
  st = kernel_attr_ints(p->node, "axes", &axes, &n);
  if (st) return st;
  if (n > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"axes\" has %zu values", n);
  if (n) memcpy(params->axes, axes, n * sizeof(int64_t));
  params->n_axes = n;
  return STRAND_OK;
}

/* Which dims the call reduces; *all_noop when it reduces nothing. */
static strand_status reduced_dims(const kernel_call *c, bool *flags, bool *noop) {
  const reduce_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  int64_t axes[STRAND_MAX_RANK];
  size_t n = 0;
  if (p->axes_from_attribute) {
    n = p->n_axes;
    memcpy(axes, p->axes, n * sizeof(int64_t));
  } else if (kernel_input(c, 1)) {
    const kernel_tensor *t = c->inputs[1];
    if (t->rank > 1 || t->count > STRAND_MAX_RANK)
      return strand__fail(STRAND_E_SHAPE, "the axes input has %zu values", t->count);
    n = t->count;
    for (size_t i = 0; i < n; i++) axes[i] = kernel_int_at(t, i);
  }
  *noop = n == 0 && p->noop_with_empty_axes;
  for (size_t d = 0; d < x->rank; d++) flags[d] = n == 0 && !*noop;
  for (size_t i = 0; i < n; i++) {
    size_t a;
    strand_status st = kernel_axis(axes[i], x->rank ? x->rank : 1, "axis", &a);
    if (st) return st;
    if (a < x->rank) flags[a] = true;
  }
  return STRAND_OK;
}

static strand_status infer_reduce(const kernel_call *c) {
  const reduce_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  bool flags[STRAND_MAX_RANK], noop;
  strand_status st = reduced_dims(c, flags, &noop);
  if (st) return st;
  int64_t dims[STRAND_MAX_RANK];
  size_t rank = 0;
  for (size_t d = 0; d < x->rank; d++) {
    if (!flags[d]) dims[rank++] = x->dims[d];
    else if (p->keep_dims) dims[rank++] = 1;
    if (flags[d] && x->dims[d] == 0 && (p->op == RED_ARGMAX || p->op == RED_ARGMIN))
      return strand__fail(STRAND_E_SHAPE, "axis %zu is empty: no index to return", d);
  }
  bool arg = p->op == RED_ARGMAX || p->op == RED_ARGMIN;
  kernel_set_shape(c->outputs[0], arg ? STRAND_DTYPE_INT64 : x->dtype, rank, dims);
  return STRAND_OK;
}

/* The iteration: kept dims (outer, per output element) and reduced dims
 * (inner), each with the input's strides, merged where contiguous. */
typedef struct reduce_walk {
  const reduce_params *p;
  const kernel_tensor *x;
  kernel_tensor *y;
  size_t n_kept, n_red;
  int64_t kept[STRAND_MAX_RANK], kept_stride[STRAND_MAX_RANK];
  int64_t red[STRAND_MAX_RANK], red_stride[STRAND_MAX_RANK];
  size_t red_count;
} reduce_walk;

static void add_dim(int64_t *dims, int64_t *strides, size_t *n, int64_t size, int64_t stride) {
  if (size == 1) return;
  if (*n && strides[*n - 1] == stride * size) {
    dims[*n - 1] *= size;
    strides[*n - 1] = stride;
    return;
  }
  dims[*n] = size;
  strides[*n] = stride;
  (*n)++;
}

static double reduce_one(const reduce_walk *w, size_t base, int64_t *arg) {
  const reduce_op op = w->p->op;
  const kernel_tensor *x = w->x;
  int64_t index[STRAND_MAX_RANK] = {0};
  size_t at = base;
  double acc = op == RED_PROD ? 1 : op == RED_MAX || op == RED_ARGMAX ? -INFINITY
                                  : op == RED_MIN || op == RED_ARGMIN ? INFINITY : 0;
  double shift = 0;
  if (op == RED_LOG_SUM_EXP) { /* max first, for a stable sum of exps */
    double m = -INFINITY;
    size_t a = base;
    int64_t idx[STRAND_MAX_RANK] = {0};
    for (size_t i = 0; i < w->red_count; i++) {
      double v = kernel_number_at(x->data, x->dtype, a);
      if (v > m) m = v;
      for (size_t d = w->n_red; d-- > 0;) {
        a += (size_t)w->red_stride[d];
        if (++idx[d] < w->red[d]) break;
        a -= (size_t)(w->red_stride[d] * w->red[d]);
        idx[d] = 0;
      }
    }
    shift = isinf(m) ? 0 : m;
  }
  bool first = true;
  for (size_t i = 0; i < w->red_count; i++) {
    double v = kernel_number_at(x->data, x->dtype, at);
    switch (op) {
    case RED_SUM: case RED_MEAN: case RED_LOG_SUM: acc += v; break;
    case RED_MAX: if (v > acc || v != v) acc = v; break;
    case RED_MIN: if (v < acc || v != v) acc = v; break;
    case RED_PROD: acc *= v; break;
    case RED_L1: acc += fabs(v); break;
    case RED_L2: case RED_SUM_SQUARE: acc += v * v; break;
    case RED_LOG_SUM_EXP: acc += exp(v - shift); break;
    case RED_ARGMAX:
      if (first || v > acc || (w->p->select_last_index && v == acc)) acc = v, *arg = (int64_t)i;
      break;
    case RED_ARGMIN:
      if (first || v < acc || (w->p->select_last_index && v == acc)) acc = v, *arg = (int64_t)i;
      break;
    }
    first = false;
    for (size_t d = w->n_red; d-- > 0;) {
      at += (size_t)w->red_stride[d];
      if (++index[d] < w->red[d]) break;
      at -= (size_t)(w->red_stride[d] * w->red[d]);
      index[d] = 0;
    }
  }
  switch (op) {
  case RED_MEAN: return w->red_count ? acc / (double)w->red_count : NAN;
  case RED_L2: return sqrt(acc);
  case RED_LOG_SUM: return log(acc);
  case RED_LOG_SUM_EXP: return log(acc) + shift;
  default: return acc;
  }
}

static void store(kernel_tensor *y, size_t i, double v) {
  switch (y->dtype) {
  case STRAND_DTYPE_FLOAT32: ((float *)y->data)[i] = (float)v; break;
  case STRAND_DTYPE_FLOAT64: ((double *)y->data)[i] = v; break;
  case STRAND_DTYPE_INT32:
    ((int32_t *)y->data)[i] = v != v ? 0 : v >= 2147483647.0 ? INT32_MAX : v <= -2147483648.0 ? INT32_MIN : (int32_t)v;
    break;
  case STRAND_DTYPE_INT64:
    ((int64_t *)y->data)[i] = v != v ? 0 : v >= 9223372036854775807.0 ? INT64_MAX
                                             : v <= -9223372036854775808.0 ? INT64_MIN : (int64_t)v;
    break;
  case STRAND_DTYPE_BOOL: ((uint8_t *)y->data)[i] = v > 0; break; /* empty Max: false, Min: true */
  default: break;
  }
}

static void reduce_range(void *p, size_t begin, size_t end) {
  const reduce_walk *w = p;
  bool arg = w->p->op == RED_ARGMAX || w->p->op == RED_ARGMIN;
  int64_t index[STRAND_MAX_RANK];
  size_t base = 0, rest = begin;
  for (size_t d = w->n_kept; d-- > 0;) {
    index[d] = (int64_t)(rest % (size_t)w->kept[d]);
    rest /= (size_t)w->kept[d];
    base += (size_t)(index[d] * w->kept_stride[d]);
  }
  for (size_t o = begin; o < end; o++) {
    int64_t which = 0;
    double v = reduce_one(w, base, &which);
    if (arg) ((int64_t *)w->y->data)[o] = which;
    else store(w->y, o, v);
    for (size_t d = w->n_kept; d-- > 0;) {
      base += (size_t)w->kept_stride[d];
      if (++index[d] < w->kept[d]) break;
      base -= (size_t)(w->kept_stride[d] * w->kept[d]);
      index[d] = 0;
    }
  }
}

static strand_status run_reduce(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  kernel_tensor *y = c->outputs[0];
  bool flags[STRAND_MAX_RANK], noop;
  strand_status st = reduced_dims(c, flags, &noop);
  if (st) return st;
  if (!y->count) return STRAND_OK;
  reduce_walk w = {c->params, x, y, 0, 0, {0}, {0}, {0}, {0}, 1};
  int64_t stride = 1, strides[STRAND_MAX_RANK];
  for (size_t d = x->rank; d-- > 0;) {
    strides[d] = stride;
    stride *= x->dims[d];
  }
  for (size_t d = 0; d < x->rank; d++) {
    if (flags[d]) add_dim(w.red, w.red_stride, &w.n_red, x->dims[d], strides[d]);
    else add_dim(w.kept, w.kept_stride, &w.n_kept, x->dims[d], strides[d]);
    if (flags[d]) w.red_count *= (size_t)x->dims[d];
  }
  kernel_parallel(c->threads, y->count, kernel_grain(w.red_count * 4 + 1), reduce_range, &w);
  return STRAND_OK;
}

static bool accepts_reduce(const strand_dtype *d, size_t n) {
  return n >= 1 && kernel_dtype_in(d[0], KERNEL_DT_FLOATS | KERNEL_DT(INT32) | KERNEL_DT(INT64)) &&
         (n < 2 || kernel_dtype_in(d[1], KERNEL_DT(INT64)));
}

/* ReduceMax and ReduceMin also take bool (opset 20). */
static bool accepts_reduce_max_min(const strand_dtype *d, size_t n) {
  return n >= 1 && (accepts_reduce(d, n) || (d[0] == STRAND_DTYPE_BOOL &&
                                              (n < 2 || kernel_dtype_in(d[1], KERNEL_DT(INT64)))));
}

#define REDUCE_DEF_ACCEPTS(ID, OP, AXES_INPUT_SINCE, ACCEPTS)                                  \
  static strand_status prepare_##ID(kernel_prepare *p, void **out) {                         \
    return prepare(p, out, OP, AXES_INPUT_SINCE);                                            \
  }                                                                                          \
  const kernel_def kernel_##ID = {#ID, "", 1, KERNEL_OPSET_MAX, 1u << 1, 0, ACCEPTS, prepare_##ID, \
                                  infer_reduce, NULL, run_reduce};
#define REDUCE_DEF(ID, OP, AXES_INPUT_SINCE)                                                   \
  static strand_status prepare_##ID(kernel_prepare *p, void **out) {                         \
    return prepare(p, out, OP, AXES_INPUT_SINCE);                                            \
  }                                                                                          \
  const kernel_def kernel_##ID = {#ID, "", 1, KERNEL_OPSET_MAX, 1u << 1, 0, accepts_reduce, prepare_##ID, \
                                  infer_reduce, NULL, run_reduce};
REDUCE_DEF(ReduceSum, RED_SUM, 13)
REDUCE_DEF(ReduceMean, RED_MEAN, 18)
REDUCE_DEF_ACCEPTS(ReduceMax, RED_MAX, 18, accepts_reduce_max_min)
REDUCE_DEF_ACCEPTS(ReduceMin, RED_MIN, 18, accepts_reduce_max_min)
REDUCE_DEF(ReduceProd, RED_PROD, 18)
REDUCE_DEF(ReduceL1, RED_L1, 18)
REDUCE_DEF(ReduceL2, RED_L2, 18)
REDUCE_DEF(ReduceLogSum, RED_LOG_SUM, 18)
REDUCE_DEF(ReduceLogSumExp, RED_LOG_SUM_EXP, 18)
REDUCE_DEF(ReduceSumSquare, RED_SUM_SQUARE, 18)
REDUCE_DEF(ArgMax, RED_ARGMAX, 99)
REDUCE_DEF(ArgMin, RED_ARGMIN, 99)
