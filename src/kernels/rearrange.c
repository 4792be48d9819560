/*
 * rearrange.c — ops that rearrange elements into new shapes: Split, Tile
 * and Pad (constant, reflect, edge and wrap modes). Any dtype: elements are
 * moved by their byte size.
 */
#include "kernels/kernels_internal.h"

#include <string.h>

static size_t item_size(const kernel_tensor *t) { return strand_dtype_size(t->dtype); }

static bool accepts_split(const strand_dtype *d, size_t n) {
  return n >= 1 && n <= 2 && kernel_dtype_in(d[0], KERNEL_DT_ALL) &&
         (n < 2 || kernel_dtype_in(d[1], KERNEL_DT(INT64)));
}

/* ---- Split ------------------------------------------------------------------------ */

typedef struct split_params {
  int64_t axis;
  int64_t num_outputs; /* 0: the node's output count */
  bool sizes_from_attribute;
  size_t n_sizes;
  int64_t *sizes; /* n_sizes, from the attribute */
} split_params;

static strand_status prepare_split(kernel_prepare *p, void **out) {
  split_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  st = kernel_attr_int(p->node, "axis", 0, &params->axis);
  if (!st) st = kernel_attr_int(p->node, "num_outputs", 0, &params->num_outputs);
  if (st) return st;
  if (params->num_outputs && params->num_outputs != (int64_t)p->node->n_outputs)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"num_outputs\" is %lld but the node "
                        "has %zu outputs", (long long)params->num_outputs, p->node->n_outputs);
  if (p->node->opset >= 13 || p->node->opset < 0) return STRAND_OK;
  const int64_t *sizes;
  size_t n;
  st = kernel_attr_ints(p->node, "split", &sizes, &n);
  if (st || !sizes) return st;
  params->sizes_from_attribute = true;
  params->n_sizes = n;
  st = kernel_alloc(p, n * sizeof(int64_t), STRAND_MEMORY_OTHER, (void **)&params->sizes);
  if (st) return st;
  memcpy(params->sizes, sizes, n * sizeof(int64_t));
  return STRAND_OK;
}

/* The size of each output along the axis into `sizes` (n_outputs). */
static strand_status split_sizes(const kernel_call *c, size_t *axis, int64_t *sizes) {
  const split_params *p = c->params;
  const kernel_tensor *x = c->inputs[0], *given = kernel_input(c, 1);
  strand_status st = kernel_axis(p->axis, x->rank, "attribute \"axis\"", axis);
  if (st) return st;
  int64_t dim = x->dims[*axis], total = 0;
  size_t n = c->n_outputs;
  if (p->sizes_from_attribute || given) {
    size_t count = p->sizes_from_attribute ? p->n_sizes : given->count;
    if (count != n)
      return strand__fail(STRAND_E_SHAPE, "split has %zu sizes for %zu outputs", count, n);
    for (size_t i = 0; i < n; i++) {
      sizes[i] = p->sizes_from_attribute ? p->sizes[i] : kernel_int_at(given, i);
      if (sizes[i] < 0 || sizes[i] > dim)
        return strand__fail(STRAND_E_SHAPE, "split size %zu is %lld for axis %zu of %lld", i,
                            (long long)sizes[i], *axis, (long long)dim);
      total += sizes[i]; /* at most n * dim: no overflow */
    }
    if (total != dim)
      return strand__fail(STRAND_E_SHAPE, "the split sizes add up to %lld but axis %zu is %lld",
                          (long long)total, *axis, (long long)dim);
    return STRAND_OK;
  }
  int64_t each = (dim + (int64_t)n - 1) / (int64_t)n;
  if (!p->num_outputs && dim % (int64_t)n)
    return strand__fail(STRAND_E_SHAPE, "axis %zu of %lld does not split evenly into %zu outputs",
                        *axis, (long long)dim, n);
  for (size_t i = 0; i < n; i++) {
    int64_t left = dim - total;
    sizes[i] = left < each ? (left > 0 ? left : 0) : each;
    total += sizes[i];
  }
  return STRAND_OK;
}

static strand_status infer_split(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  int64_t sizes[256];
  if (c->n_outputs > 256)
    return strand__fail(STRAND_E_UNSUPPORTED, "%zu outputs; at most 256 are handled", c->n_outputs);
  size_t axis;
  strand_status st = split_sizes(c, &axis, sizes);
  if (st) return st;
  for (size_t i = 0; i < c->n_outputs; i++) {
    if (!c->outputs[i]) continue;
    int64_t dims[STRAND_MAX_RANK];
    memcpy(dims, x->dims, x->rank * sizeof(int64_t));
    dims[axis] = sizes[i];
    kernel_set_shape(c->outputs[i], x->dtype, x->rank, dims);
  }
  return STRAND_OK;
}

static strand_status run_split(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  int64_t sizes[256];
  size_t axis;
  strand_status st = split_sizes(c, &axis, sizes);
  if (st) return st;
  size_t outer = 1, inner = item_size(x);
  for (size_t d = 0; d < axis; d++) outer *= (size_t)x->dims[d];
  for (size_t d = axis + 1; d < x->rank; d++) inner *= (size_t)x->dims[d];
  size_t row = (size_t)x->dims[axis] * inner, offset = 0;
  for (size_t i = 0; i < c->n_outputs; i++) {
    size_t bytes = (size_t)sizes[i] * inner;
    kernel_tensor *y = c->outputs[i];
    if (y && bytes)
      for (size_t o = 0; o < outer; o++)
        memcpy((unsigned char *)y->data + o * bytes,
               (const unsigned char *)x->data + o * row + offset, bytes);
    offset += bytes;
  }
  return STRAND_OK;
}

const kernel_def kernel_Split = {"Split", "", 2, KERNEL_OPSET_MAX, 1u << 1, 0, accepts_split,
                                 prepare_split, infer_split, NULL, run_split};

/* ---- Tile ---------------------------------------------------------------------------- */

static strand_status tile_repeats(const kernel_call *c, int64_t *repeats) {
  const kernel_tensor *x = c->inputs[0], *r = c->inputs[1];
  if (r->rank != 1 || r->count != x->rank)
    return strand__fail(STRAND_E_SHAPE, "repeats has %zu values for %zu dimensions", r->count,
                        x->rank);
  for (size_t d = 0; d < x->rank; d++) {
    repeats[d] = kernel_int_at(r, d);
    if (repeats[d] < 0)
      return strand__fail(STRAND_E_SHAPE, "repeat %zu is %lld", d, (long long)repeats[d]);
  }
  return STRAND_OK;
}

static strand_status infer_tile(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  int64_t repeats[STRAND_MAX_RANK], dims[STRAND_MAX_RANK];
  strand_status st = tile_repeats(c, repeats);
  if (st) return st;
  for (size_t d = 0; d < x->rank; d++)
    if (__builtin_mul_overflow(x->dims[d], repeats[d], &dims[d]))
      return strand__fail(STRAND_E_SHAPE, "dimension %zu overflows", d);
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, dims);
  return STRAND_OK;
}

typedef struct tile_job {
  const kernel_tensor *x;
  kernel_tensor *y;
} tile_job;

/* Output rows (all dims but the last) [begin, end). */
static void tile_rows(void *p, size_t begin, size_t end) {
  const tile_job *j = p;
  const kernel_tensor *x = j->x;
  kernel_tensor *y = j->y;
  size_t item = item_size(x), last = x->rank - 1;
  size_t in_row = (size_t)x->dims[last] * item, out_row = (size_t)y->dims[last] * item;
  for (size_t r = begin; r < end; r++) {
    size_t rest = r, src = 0, stride = 1;
    for (size_t d = last; d-- > 0;) {
      size_t idx = rest % (size_t)y->dims[d];
      rest /= (size_t)y->dims[d];
      src += (idx % (size_t)x->dims[d]) * stride;
      stride *= (size_t)x->dims[d];
    }
    const unsigned char *from = (const unsigned char *)x->data + src * in_row;
    unsigned char *to = (unsigned char *)y->data + r * out_row;
    for (size_t at = 0; at < out_row; at += in_row) memcpy(to + at, from, in_row);
  }
}

static strand_status run_tile(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  kernel_tensor *y = c->outputs[0];
  if (!y->count) return STRAND_OK;
  if (x->rank == 0) {
    memcpy(y->data, x->data, item_size(x));
    return STRAND_OK;
  }
  tile_job j = {x, y};
  size_t rows = y->count / (size_t)y->dims[x->rank - 1];
  kernel_parallel(c->threads, rows, kernel_grain((size_t)y->dims[x->rank - 1]), tile_rows, &j);
  return STRAND_OK;
}

static bool accepts_tile(const strand_dtype *d, size_t n) {
  return n == 2 && kernel_dtype_in(d[0], KERNEL_DT_ALL) && kernel_dtype_in(d[1], KERNEL_DT(INT64));
}

const kernel_def kernel_Tile = {"Tile", "", 6, KERNEL_OPSET_MAX, 1u << 1, 0, accepts_tile, NULL, infer_tile, NULL,
                                run_tile};

/* ---- Pad ------------------------------------------------------------------------------- */

typedef enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } pad_mode;

typedef struct pad_params {
  pad_mode mode;
  bool from_attributes; /* before opset 11 */
  float value;          /* the attribute's */
  size_t n_pads;
  int64_t pads[2 * STRAND_MAX_RANK];
} pad_params;

static strand_status prepare_pad(kernel_prepare *p, void **out) {
  pad_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  const char *mode;
  st = kernel_attr_string(p->node, "mode", "constant", &mode);
  if (st) return st;
  if (strcmp(mode, "constant") == 0) params->mode = PAD_CONSTANT;
  else if (strcmp(mode, "reflect") == 0) params->mode = PAD_REFLECT;
  else if (strcmp(mode, "edge") == 0) params->mode = PAD_EDGE;
  else if (strcmp(mode, "wrap") == 0) params->mode = PAD_WRAP;
  else
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"mode\" is \"%s\"; expected "
                        "constant, reflect, edge or wrap", mode);
  if (p->node->opset >= 11 || p->node->opset < 0) return STRAND_OK;
  params->from_attributes = true;
  const int64_t *pads;
  size_t n;
  st = kernel_attr_ints(p->node, "pads", &pads, &n);
  if (!st) st = kernel_attr_float(p->node, "value", 0.0f, &params->value);
  if (st) return st;
  if (n > 2 * STRAND_MAX_RANK)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"pads\" has %zu values", n);
  if (n) memcpy(params->pads, pads, n * sizeof(int64_t));
  params->n_pads = n;
  return STRAND_OK;
}

/* Begin and end pads per dimension. */
static strand_status pads_of(const kernel_call *c, int64_t *begin, int64_t *end) {
  const pad_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  size_t rank = x->rank;
  int64_t given[2 * STRAND_MAX_RANK];
  size_t n;
  if (p->from_attributes) {
    n = p->n_pads;
    memcpy(given, p->pads, n * sizeof(int64_t));
  } else {
    const kernel_tensor *t = c->inputs[1];
    if (t->count > 2 * STRAND_MAX_RANK)
      return strand__fail(STRAND_E_SHAPE, "pads has %zu values", t->count);
    n = t->count;
    for (size_t i = 0; i < n; i++) given[i] = kernel_int_at(t, i);
  }
  for (size_t d = 0; d < rank; d++) begin[d] = end[d] = 0;
  const kernel_tensor *axes = p->from_attributes ? NULL : kernel_input(c, 3);
  size_t n_axes = axes ? axes->count : rank;
  if (n != 2 * n_axes)
    return strand__fail(STRAND_E_SHAPE, "pads has %zu values for %zu axes", n, n_axes);
  for (size_t i = 0; i < n_axes; i++) {
    size_t a = i;
    if (axes) {
      strand_status st = kernel_axis(kernel_int_at(axes, i), rank, "axis", &a);
      if (st) return st;
    }
    begin[a] = given[i];
    end[a] = given[i + n_axes];
  }
  return STRAND_OK;
}

static strand_status infer_pad(const kernel_call *c) {
  const pad_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  int64_t begin[STRAND_MAX_RANK], end[STRAND_MAX_RANK], dims[STRAND_MAX_RANK];
  strand_status st = pads_of(c, begin, end);
  if (st) return st;
  for (size_t d = 0; d < x->rank; d++) {
    if (__builtin_add_overflow(x->dims[d], begin[d], &dims[d]) ||
        __builtin_add_overflow(dims[d], end[d], &dims[d]))
      return strand__fail(STRAND_E_SHAPE, "dimension %zu overflows", d);
    if (dims[d] < 0)
      return strand__fail(STRAND_E_SHAPE, "dimension %zu becomes %lld", d, (long long)dims[d]);
    if (p->mode != PAD_CONSTANT && x->dims[d] == 0 && dims[d] > 0)
      return strand__fail(STRAND_E_SHAPE, "dimension %zu is empty: nothing to %s", d,
                          p->mode == PAD_REFLECT ? "reflect" : p->mode == PAD_EDGE ? "repeat" : "wrap");
  }
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, dims);
  return STRAND_OK;
}

/* The source index along a dimension of `size` for padded position c, or
 * -1 for the constant. */
static int64_t source(pad_mode mode, int64_t c, int64_t size) {
  if (c >= 0 && c < size) return c;
  switch (mode) {
  case PAD_EDGE: return c < 0 ? 0 : size - 1;
  case PAD_WRAP: return ((c % size) + size) % size;
  case PAD_REFLECT: {
    if (size == 1) return 0;
    int64_t period = 2 * (size - 1), m = ((c % period) + period) % period;
    return m < size ? m : period - m;
  }
  default: return -1;
  }
}

typedef struct pad_job {
  const pad_params *p;
  const kernel_tensor *x;
  kernel_tensor *y;
  const int64_t *begin;
  unsigned char fill[16];
} pad_job;

static void pad_rows(void *ctx, size_t row_begin, size_t row_end) {
  const pad_job *j = ctx;
  const kernel_tensor *x = j->x;
  kernel_tensor *y = j->y;
  size_t item = item_size(x), last = x->rank - 1;
  int64_t width = y->dims[last], in_width = x->dims[last];
  for (size_t r = row_begin; r < row_end; r++) {
    size_t rest = r, src_row = 0, stride = 1;
    bool constant = false;
    for (size_t d = last; d-- > 0;) {
      int64_t idx = (int64_t)(rest % (size_t)y->dims[d]);
      rest /= (size_t)y->dims[d];
      int64_t s = source(j->p->mode, idx - j->begin[d], x->dims[d]);
      if (s < 0) constant = true;
      else src_row += (size_t)s * stride;
      stride *= (size_t)x->dims[d];
    }
    unsigned char *to = (unsigned char *)y->data + r * (size_t)width * item;
    const unsigned char *from = (const unsigned char *)x->data + src_row * (size_t)in_width * item;
    for (int64_t i = 0; i < width; i++) {
      int64_t s = constant ? -1 : source(j->p->mode, i - j->begin[last], in_width);
      memcpy(to + (size_t)i * item, s < 0 ? j->fill : from + (size_t)s * item, item);
    }
  }
}

static strand_status run_pad(const kernel_call *c) {
  const pad_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  kernel_tensor *y = c->outputs[0];
  if (!y->count) return STRAND_OK;
  int64_t begin[STRAND_MAX_RANK], end[STRAND_MAX_RANK];
  strand_status st = pads_of(c, begin, end);
  if (st) return st;
  pad_job j = {p, x, y, begin, {0}};
  const kernel_tensor *value = p->from_attributes ? NULL : kernel_input(c, 2);
  if (value && value->count) memcpy(j.fill, value->data, item_size(x));
  else if (p->from_attributes && x->dtype == STRAND_DTYPE_FLOAT32) memcpy(j.fill, &p->value, 4);
  else if (p->from_attributes && x->dtype == STRAND_DTYPE_FLOAT64) {
    double v = p->value;
    memcpy(j.fill, &v, 8);
  }
  if (x->rank == 0) {
    memcpy(y->data, x->data, item_size(x));
    return STRAND_OK;
  }
  size_t rows = y->count / (size_t)y->dims[x->rank - 1];
  kernel_parallel(c->threads, rows, kernel_grain((size_t)y->dims[x->rank - 1] * 4), pad_rows, &j);
  return STRAND_OK;
}

static bool accepts_pad(const strand_dtype *d, size_t n) {
  return n >= 1 && kernel_dtype_in(d[0], KERNEL_DT_ALL) &&
         (n < 2 || kernel_dtype_in(d[1], KERNEL_DT(INT64))) &&
         (n < 3 || kernel_dtype_same(d[0], d[2])) &&
         (n < 4 || kernel_dtype_in(d[3], KERNEL_DT(INT64) | KERNEL_DT(INT32)));
}

const kernel_def kernel_Pad = {"Pad", "", 2, KERNEL_OPSET_MAX, (1u << 1) | (1u << 3), 0, accepts_pad,
                               prepare_pad, infer_pad, NULL, run_pad};
