/*
 * resize.c — Resize (opset 11 and later): nearest (any dtype) and linear
 * (float32, multilinear over every dimension that changes) with the
 * coordinate transformations half_pixel, pytorch_half_pixel,
 * half_pixel_symmetric, align_corners and asymmetric, the four nearest
 * rounding modes, output sizes from `scales` or `sizes`, and `axes`.
 *
 * Each output dimension gets a table in scratch (source indices and
 * weights per output coordinate); rows of the output (all dims but the
 * last) are split over the threads and each element sums at most two
 * sources per interpolated dimension. Not handled (refused at session
 * creation): cubic mode, tf_crop_and_resize, antialias, aspect-ratio
 * policies other than stretch.
 */
#include "kernels/kernels_internal.h"

#include <math.h>
#include <string.h>

typedef enum coord_mode {
  COORD_HALF_PIXEL, COORD_PYTORCH_HALF_PIXEL, COORD_HALF_PIXEL_SYMMETRIC, COORD_ALIGN_CORNERS,
  COORD_ASYMMETRIC
} coord_mode;

typedef enum nearest_mode { ROUND_PREFER_FLOOR, ROUND_PREFER_CEIL, ROUND_FLOOR, ROUND_CEIL } nearest_mode;

typedef struct resize_params {
  bool linear;
  coord_mode coord;
  nearest_mode rounding;
  size_t n_axes;
  int64_t axes[STRAND_MAX_RANK];
} resize_params;

static strand_status pick(const char *name, const char *value, const char *const *names, size_t n,
                          int *out) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(value, names[i]) == 0) {
      *out = (int)i;
      return STRAND_OK;
    }
  return strand__fail(STRAND_E_UNSUPPORTED, "attribute \"%s\" is \"%s\", which strand does not "
                      "handle", name, value);
}

static strand_status prepare_resize(kernel_prepare *p, void **out) {
  resize_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  static const char *const modes[] = {"nearest", "linear"};
  static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "half_pixel_symmetric",
                                       "align_corners", "asymmetric"};
  static const char *const roundings[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"};
  const char *mode, *coord, *rounding, *policy;
  int64_t antialias = 0;
  int m = 0, c = 0, r = 0;
  st = kernel_attr_string(p->node, "mode", "nearest", &mode);
  if (!st) st = kernel_attr_string(p->node, "coordinate_transformation_mode", "half_pixel", &coord);
  if (!st) st = kernel_attr_string(p->node, "nearest_mode", "round_prefer_floor", &rounding);
  if (!st) st = kernel_attr_string(p->node, "keep_aspect_ratio_policy", "stretch", &policy);
  if (!st) st = kernel_attr_int(p->node, "antialias", 0, &antialias);
  if (!st) st = pick("mode", mode, modes, 2, &m);
  if (!st) st = pick("coordinate_transformation_mode", coord, coords, 5, &c);
  if (!st) st = pick("nearest_mode", rounding, roundings, 4, &r);
  if (st) return st;
  if (antialias)
    return strand__fail(STRAND_E_UNSUPPORTED, "attribute \"antialias\" is %lld; strand handles 0",
                        (long long)antialias);
  if (strcmp(policy, "stretch") != 0)
    return strand__fail(STRAND_E_UNSUPPORTED, "attribute \"keep_aspect_ratio_policy\" is \"%s\"; "
                        "strand handles \"stretch\"", policy);
  params->linear = m == 1;
  params->coord = (coord_mode)c;
  params->rounding = (nearest_mode)r;
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

static bool accepts_resize(const strand_dtype *d, size_t n) {
  return n >= 1 && kernel_dtype_in(d[0], KERNEL_DT_ALL) &&
         (n < 3 || kernel_dtype_in(d[2], KERNEL_DT(FLOAT32))) &&
         (n < 4 || kernel_dtype_in(d[3], KERNEL_DT(INT64)));
}

/* Output dims and the scale per dimension. */
static strand_status resize_shape(const kernel_call *c, int64_t *dims, double *scales) {
  const resize_params *p = c->params;
  const kernel_tensor *x = c->inputs[0], *sc = kernel_input(c, 2), *sz = kernel_input(c, 3);
  if (sc && sc->count == 0) sc = NULL;
  if (sz && sz->count == 0) sz = NULL;
  if (!sc == !sz)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "exactly one of scales and sizes must be given");
  if (p->linear && x->dtype != STRAND_DTYPE_FLOAT32)
    return strand__fail(STRAND_E_UNSUPPORTED, "linear mode on %s; strand handles float32",
                        strand_dtype_name(x->dtype));
  size_t n_axes = p->n_axes ? p->n_axes : x->rank;
  size_t given = sc ? sc->count : sz->count;
  if (given != n_axes)
    return strand__fail(STRAND_E_SHAPE, "%s has %zu values for %zu axes", sc ? "scales" : "sizes",
                        given, n_axes);
  for (size_t d = 0; d < x->rank; d++) {
    dims[d] = x->dims[d];
    scales[d] = 1.0;
  }
  for (size_t i = 0; i < n_axes; i++) {
    size_t a = i;
    if (p->n_axes) {
      strand_status st = kernel_axis(p->axes[i], x->rank, "axis", &a);
      if (st) return st;
    }
    if (sc) {
      double s = ((const float *)sc->data)[i];
      if (!(s > 0) || s > 1e9)
        return strand__fail(STRAND_E_INVALID_ARGUMENT, "scale %zu is %g", i, s);
      double out = floor((double)x->dims[a] * s);
      if (out > 4e18) return strand__fail(STRAND_E_SHAPE, "dimension %zu becomes %g", a, out);
      dims[a] = (int64_t)out;
      scales[a] = s;
    } else {
      int64_t out = kernel_int_at(sz, i);
      if (out < 0) return strand__fail(STRAND_E_SHAPE, "size %zu is %lld", i, (long long)out);
      dims[a] = out;
      scales[a] = x->dims[a] ? (double)out / (double)x->dims[a] : 1.0;
    }
  }
  return STRAND_OK;
}

static strand_status infer_resize(const kernel_call *c) {
  int64_t dims[STRAND_MAX_RANK];
  double scales[STRAND_MAX_RANK];
  strand_status st = resize_shape(c, dims, scales);
  if (st) return st;
  const kernel_tensor *x = c->inputs[0];
  for (size_t d = 0; d < x->rank; d++)
    if (x->dims[d] == 0 && dims[d] > 0)
      return strand__fail(STRAND_E_SHAPE, "dimension %zu is empty and cannot be resized to %lld",
                          d, (long long)dims[d]);
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, dims);
  return STRAND_OK;
}

/* Per output coordinate: two source indices and the second's weight. */
typedef struct tap {
  int64_t i0, i1;
  float w1;
} tap;

static size_t table_entries(const kernel_tensor *y) {
  size_t n = 0;
  for (size_t d = 0; d < y->rank; d++) n += (size_t)y->dims[d];
  return n;
}

static size_t scratch_resize(const kernel_call *c) { return table_entries(c->outputs[0]) * sizeof(tap); }

/* Output coordinate o in the input, for a dimension of `in` resized to
 * `out` by `scale`. As ONNX's reference, align_corners and
 * pytorch_half_pixel measure the resized length as scale * in (not the
 * floored output size). */
static double original(coord_mode mode, double o, double scale, int64_t in, int64_t out) {
  double resized = scale * (double)in;
  switch (mode) {
  case COORD_ASYMMETRIC: return o / scale;
  case COORD_ALIGN_CORNERS: return resized == 1 ? 0 : o * (double)(in - 1) / (resized - 1);
  case COORD_PYTORCH_HALF_PIXEL: return resized > 1 ? (o + 0.5) / scale - 0.5 : 0;
  case COORD_HALF_PIXEL_SYMMETRIC: {
    double adjustment = (double)out / resized, center = (double)in / 2;
    return center * (1 - adjustment) + (o + 0.5) / scale - 0.5;
  }
  default: return (o + 0.5) / scale - 0.5;
  }
}

static void build_tables(const resize_params *p, const kernel_tensor *x, const kernel_tensor *y,
                         const double *scales, tap *tables) {
  tap *t = tables;
  for (size_t d = 0; d < y->rank; d++) {
    int64_t in = x->dims[d], out = y->dims[d];
    for (int64_t o = 0; o < out; o++, t++) {
      if (in == out && scales[d] == 1.0 && p->coord != COORD_ALIGN_CORNERS) {
        *t = (tap){o, o, 0};
        continue;
      }
      double v = original(p->coord, (double)o, scales[d], in, out);
      if (p->linear) {
        if (v < 0) v = 0;
        if (v > (double)(in - 1)) v = (double)(in - 1);
        int64_t i0 = (int64_t)floor(v);
        int64_t i1 = i0 + 1 < in ? i0 + 1 : in - 1;
        *t = (tap){i0, i1, (float)(v - (double)i0)};
      } else {
        double r;
        switch (p->rounding) {
        case ROUND_PREFER_CEIL: r = floor(v + 0.5); break;
        case ROUND_FLOOR: r = floor(v); break;
        case ROUND_CEIL: r = ceil(v); break;
        default: r = ceil(v - 0.5); break;
        }
        int64_t i = r < 0 ? 0 : r > (double)(in - 1) ? in - 1 : (int64_t)r;
        *t = (tap){i, i, 0};
      }
    }
  }
}

typedef struct resize_job {
  const resize_params *p;
  const kernel_tensor *x;
  kernel_tensor *y;
  const tap *tables[STRAND_MAX_RANK];
  int64_t in_strides[STRAND_MAX_RANK];
} resize_job;

static void resize_rows(void *ctx, size_t begin, size_t end) {
  const resize_job *j = ctx;
  const kernel_tensor *x = j->x;
  kernel_tensor *y = j->y;
  size_t rank = y->rank, last = rank - 1, item = strand_dtype_size(x->dtype);
  int64_t width = y->dims[last];
  const tap *lt = j->tables[last];
  for (size_t r = begin; r < end; r++) {
    /* The taps of this row's leading coordinates. */
    const tap *row_taps[STRAND_MAX_RANK];
    size_t rest = r;
    for (size_t d = last; d-- > 0;) {
      size_t o = rest % (size_t)y->dims[d];
      rest /= (size_t)y->dims[d];
      row_taps[d] = &j->tables[d][o];
    }
    if (!j->p->linear) {
      size_t base = 0;
      for (size_t d = 0; d < last; d++) base += (size_t)(row_taps[d]->i0 * j->in_strides[d]);
      const unsigned char *src = (const unsigned char *)x->data + base * item;
      unsigned char *dst = (unsigned char *)y->data + r * (size_t)width * item;
      for (int64_t o = 0; o < width; o++) memcpy(dst + (size_t)o * item, src + (size_t)lt[o].i0 * item, item);
      continue;
    }
    /* Linear: the leading dims' corners (2^k, k those that interpolate). */
    size_t corners = 1, varying[STRAND_MAX_RANK], n_varying = 0;
    size_t base = 0;
    for (size_t d = 0; d < last; d++) {
      base += (size_t)(row_taps[d]->i0 * j->in_strides[d]);
      if (row_taps[d]->i1 != row_taps[d]->i0 && row_taps[d]->w1 != 0) varying[n_varying++] = d;
    }
    if (n_varying > 10) n_varying = 10; /* never with real resizes; bounds the loop */
    corners <<= n_varying;
    float *out = (float *)y->data + r * (size_t)width;
    for (int64_t o = 0; o < width; o++) out[o] = 0;
    for (size_t corner = 0; corner < corners; corner++) {
      size_t offset = base;
      float weight = 1;
      for (size_t v = 0; v < n_varying; v++) {
        const tap *t = row_taps[varying[v]];
        if ((corner >> v) & 1) {
          offset += (size_t)((t->i1 - t->i0) * j->in_strides[varying[v]]);
          weight *= t->w1;
        } else {
          weight *= 1 - t->w1;
        }
      }
      const float *src = (const float *)x->data + offset;
      for (int64_t o = 0; o < width; o++) {
        const tap *t = &lt[o];
        out[o] += weight * (src[t->i0] * (1 - t->w1) + src[t->i1] * t->w1);
      }
    }
  }
}

static strand_status run_resize(const kernel_call *c) {
  const resize_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  kernel_tensor *y = c->outputs[0];
  if (!y->count) return STRAND_OK;
  int64_t dims[STRAND_MAX_RANK];
  double scales[STRAND_MAX_RANK];
  strand_status st = resize_shape(c, dims, scales);
  if (st) return st;
  if (y->rank == 0) {
    memcpy(y->data, x->data, strand_dtype_size(x->dtype));
    return STRAND_OK;
  }
  tap *tables = c->scratch;
  build_tables(p, x, y, scales, tables);
  resize_job j = {p, x, y, {NULL}, {0}};
  int64_t stride = 1;
  for (size_t d = x->rank; d-- > 0;) {
    j.in_strides[d] = stride;
    stride *= x->dims[d];
  }
  size_t at = 0;
  for (size_t d = 0; d < y->rank; d++) {
    j.tables[d] = tables + at;
    at += (size_t)y->dims[d];
  }
  size_t width = (size_t)y->dims[y->rank - 1];
  kernel_parallel(c->threads, y->count / width, kernel_grain(width * (p->linear ? 8 : 2)),
                  resize_rows, &j);
  return STRAND_OK;
}

const kernel_def kernel_Resize = {"Resize", "", 11, KERNEL_OPSET_MAX, (1u << 2) | (1u << 3), 0, accepts_resize,
                                  prepare_resize, infer_resize, scratch_resize, run_resize};
