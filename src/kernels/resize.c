/*
 * resize.c — Resize (opset 11 and later): nearest (any dtype) and linear
 * (float32, multilinear over every dimension that changes) with the
 * coordinate transformations half_pixel, pytorch_half_pixel,
 * half_pixel_symmetric, align_corners and asymmetric, the four nearest
 * rounding modes, output sizes from `scales` or `sizes`, and `axes`.
 *
 * tf_crop_and_resize (roi, extrapolation_value), keep_aspect_ratio_policy
 * (stretch, not_larger, not_smaller) and antialiased linear.
 *
 * Each output dimension gets a table in scratch (source indices and
 * weights per output coordinate); rows of the output (all dims but the
 * last) are split over the threads and each element sums at most two
 * sources per interpolated dimension (antialias: a wider triangle filter
 * per dimension, float32). Not handled (refused at session creation):
 * cubic mode, antialias with tf_crop_and_resize.
 */
#include "kernels/kernels_internal.h"

#include <math.h>
#include <string.h>

typedef enum coord_mode {
  COORD_HALF_PIXEL, COORD_PYTORCH_HALF_PIXEL, COORD_HALF_PIXEL_SYMMETRIC, COORD_ALIGN_CORNERS,
  COORD_ASYMMETRIC, COORD_TF_CROP_AND_RESIZE
} coord_mode;

typedef enum aspect_policy { ASPECT_STRETCH, ASPECT_NOT_LARGER, ASPECT_NOT_SMALLER } aspect_policy;

typedef enum nearest_mode { ROUND_PREFER_FLOOR, ROUND_PREFER_CEIL, ROUND_FLOOR, ROUND_CEIL } nearest_mode;

typedef struct resize_params {
  bool linear, antialias;
  coord_mode coord;
  aspect_policy policy;
  float extrapolation;
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
                                       "align_corners", "asymmetric", "tf_crop_and_resize"};
  static const char *const policies[] = {"stretch", "not_larger", "not_smaller"};
  static const char *const roundings[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"};
  const char *mode, *coord, *rounding, *policy;
  int64_t antialias = 0;
  int m = 0, c = 0, r = 0, a = 0;
  st = kernel_attr_string(p->node, "mode", "nearest", &mode);
  if (!st) st = kernel_attr_string(p->node, "coordinate_transformation_mode", "half_pixel", &coord);
  if (!st) st = kernel_attr_string(p->node, "nearest_mode", "round_prefer_floor", &rounding);
  if (!st) st = kernel_attr_string(p->node, "keep_aspect_ratio_policy", "stretch", &policy);
  if (!st) st = kernel_attr_int(p->node, "antialias", 0, &antialias);
  if (!st) st = kernel_attr_float(p->node, "extrapolation_value", 0.0f, &params->extrapolation);
  if (!st) st = pick("mode", mode, modes, 2, &m);
  if (!st) st = pick("coordinate_transformation_mode", coord, coords, 6, &c);
  if (!st) st = pick("keep_aspect_ratio_policy", policy, policies, 3, &a);
  if (!st) st = pick("nearest_mode", rounding, roundings, 4, &r);
  if (st) return st;
  params->linear = m == 1;
  params->antialias = antialias != 0 && params->linear; /* nearest ignores it */
  params->policy = (aspect_policy)a;
  if (params->antialias && c == COORD_TF_CROP_AND_RESIZE)
    return strand__fail(STRAND_E_UNSUPPORTED, "antialias with tf_crop_and_resize; strand does not "
                        "handle it");
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
         (n < 2 || kernel_dtype_in(d[1], KERNEL_DT_FLOATS | KERNEL_DT(FLOAT16))) &&
         (n < 3 || kernel_dtype_in(d[2], KERNEL_DT(FLOAT32))) &&
         (n < 4 || kernel_dtype_in(d[3], KERNEL_DT(INT64)));
}

/* The region of interest of tf_crop_and_resize per dimension, in [0, 1]
 * of the input (0 to 1 where not given). */
static strand_status resize_roi(const kernel_call *c, double *start, double *end) {
  const resize_params *p = c->params;
  const kernel_tensor *x = c->inputs[0], *roi = kernel_input(c, 1);
  for (size_t d = 0; d < x->rank; d++) start[d] = 0, end[d] = 1;
  if (p->coord != COORD_TF_CROP_AND_RESIZE || !roi || roi->count == 0) return STRAND_OK;
  size_t n_axes = p->n_axes ? p->n_axes : x->rank;
  if (roi->count != 2 * n_axes)
    return strand__fail(STRAND_E_SHAPE, "roi has %zu values for %zu axes", roi->count, n_axes);
  for (size_t i = 0; i < n_axes; i++) {
    size_t a = i;
    if (p->n_axes) {
      strand_status st = kernel_axis(p->axes[i], x->rank, "axis", &a);
      if (st) return st;
    }
    start[a] = kernel_number_at(roi->data, roi->dtype, i);
    end[a] = kernel_number_at(roi->data, roi->dtype, n_axes + i);
  }
  return STRAND_OK;
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
  double roi_start[STRAND_MAX_RANK], roi_end[STRAND_MAX_RANK];
  strand_status st = resize_roi(c, roi_start, roi_end);
  if (st) return st;
  /* keep_aspect_ratio_policy (sizes only): one scale for every axis, the
   * smallest (not_larger) or largest (not_smaller) of sizes / input. */
  double kept = 0;
  if (sz && p->policy != ASPECT_STRETCH) {
    for (size_t i = 0; i < n_axes; i++) {
      size_t a = i;
      if (p->n_axes && (st = kernel_axis(p->axes[i], x->rank, "axis", &a))) return st;
      double s = x->dims[a] ? (double)kernel_int_at(sz, i) / (double)x->dims[a] : 1.0;
      if (i == 0 || (p->policy == ASPECT_NOT_LARGER ? s < kept : s > kept)) kept = s;
    }
  }
  for (size_t i = 0; i < n_axes; i++) {
    size_t a = i;
    if (p->n_axes && (st = kernel_axis(p->axes[i], x->rank, "axis", &a))) return st;
    if (sc) {
      double s = ((const float *)sc->data)[i];
      if (!(s > 0) || s > 1e9)
        return strand__fail(STRAND_E_INVALID_ARGUMENT, "scale %zu is %g", i, s);
      double out = floor((double)x->dims[a] * s * (roi_end[a] - roi_start[a]));
      if (!(out >= 0)) out = 0;
      if (out > 4e18) return strand__fail(STRAND_E_SHAPE, "dimension %zu becomes %g", a, out);
      dims[a] = (int64_t)out;
      scales[a] = s;
    } else {
      int64_t out = kernel_int_at(sz, i);
      if (out < 0) return strand__fail(STRAND_E_SHAPE, "size %zu is %lld", i, (long long)out);
      if (p->policy != ASPECT_STRETCH) {
        double o = floor(kept * (double)x->dims[a] + 0.5);
        if (o > 4e18) return strand__fail(STRAND_E_SHAPE, "dimension %zu becomes %g", a, o);
        dims[a] = (int64_t)o;
        scales[a] = kept;
        continue;
      }
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
  bool outside; /* tf_crop_and_resize: outside the input, extrapolation_value */
} tap;

static size_t table_entries(const kernel_tensor *y) {
  size_t n = 0;
  for (size_t d = 0; d < y->rank; d++) n += (size_t)y->dims[d];
  return n;
}

/* Antialiased linear: per output coordinate of a dimension, `n` taps of
 * the triangle filter stretched by 1 / scale when downsampling. */
typedef struct wide_tap {
  int64_t i;
  float w;
} wide_tap;

static size_t wide_taps(double scale) {
  double s = scale < 1 ? scale : 1;
  int64_t start = (int64_t)floor(-1 / s) + 1;
  return (size_t)(2 - 2 * start);
}

static size_t scratch_resize(const kernel_call *c) {
  const resize_params *p = c->params;
  const kernel_tensor *y = c->outputs[0];
  size_t bytes = table_entries(y) * sizeof(tap);
  if (!p->antialias) return bytes;
  int64_t dims[STRAND_MAX_RANK];
  double scales[STRAND_MAX_RANK];
  if (resize_shape(c, dims, scales)) return bytes;
  for (size_t d = 0; d < y->rank; d++) bytes += (size_t)y->dims[d] * wide_taps(scales[d]) * sizeof(wide_tap);
  return bytes;
}

/* Output coordinate o in the input, for a dimension of `in` resized to
 * `out` by `scale`. As ONNX's reference, align_corners and
 * pytorch_half_pixel measure the resized length as scale * in (not the
 * floored output size). */
static double original(coord_mode mode, double o, double scale, int64_t in, int64_t out,
                       double roi_start, double roi_end) {
  double resized = scale * (double)in;
  switch (mode) {
  case COORD_TF_CROP_AND_RESIZE:
    if (out > 1)
      return roi_start * (double)(in - 1) + o * (roi_end - roi_start) * (double)(in - 1) / (double)(out - 1);
    return 0.5 * (roi_start + roi_end) * (double)(in - 1);
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
                         const double *scales, const double *roi_start, const double *roi_end,
                         tap *tables) {
  tap *t = tables;
  bool crop = p->coord == COORD_TF_CROP_AND_RESIZE;
  for (size_t d = 0; d < y->rank; d++) {
    int64_t in = x->dims[d], out = y->dims[d];
    for (int64_t o = 0; o < out; o++, t++) {
      if (in == out && scales[d] == 1.0 && p->coord != COORD_ALIGN_CORNERS &&
          (!crop || (roi_start[d] == 0 && roi_end[d] == 1))) {
        *t = (tap){o, o, 0, false};
        continue;
      }
      double v = original(p->coord, (double)o, scales[d], in, out, roi_start[d], roi_end[d]);
      if (crop && (v < 0 || v > (double)(in - 1) || v != v)) {
        *t = (tap){0, 0, 0, true};
        continue;
      }
      if (p->linear) {
        if (v < 0) v = 0;
        if (v > (double)(in - 1)) v = (double)(in - 1);
        int64_t i0 = (int64_t)floor(v);
        int64_t i1 = i0 + 1 < in ? i0 + 1 : in - 1;
        *t = (tap){i0, i1, (float)(v - (double)i0), false};
      } else {
        double r;
        switch (p->rounding) {
        case ROUND_PREFER_CEIL: r = floor(v + 0.5); break;
        case ROUND_FLOOR: r = floor(v); break;
        case ROUND_CEIL: r = ceil(v); break;
        default: r = ceil(v - 0.5); break;
        }
        int64_t i = r < 0 ? 0 : r > (double)(in - 1) ? in - 1 : (int64_t)r;
        *t = (tap){i, i, 0, false};
      }
    }
  }
}

/* The wide taps of dimension d (n per output coordinate), as ONNX's
 * reference: the point left of the coordinate v (ceil(v) - 1) and its
 * neighbours, weighted max(0, 1 - |distance| * scale), normalized, edges
 * repeated. */
static void build_wide(const resize_params *p, int64_t in, int64_t out, double scale, size_t n,
                       wide_tap *t) {
  double s = scale < 1 ? scale : 1;
  int64_t start = (int64_t)floor(-1 / s) + 1;
  for (int64_t o = 0; o < out; o++, t += n) {
    double v = original(p->coord, (double)o, scale, in, out, 0, 1);
    int64_t left = (int64_t)ceil(v) - 1;
    double ratio = v - (double)left, sum = 0;
    for (size_t k = 0; k < n; k++) {
      double arg = ((double)(start + (int64_t)k) - ratio) * s;
      double w = 1 - fabs(arg);
      if (w < 0) w = 0;
      int64_t i = left + start + (int64_t)k;
      t[k] = (wide_tap){i < 0 ? 0 : i > in - 1 ? in - 1 : i, (float)w};
      sum += w;
    }
    if (sum > 0)
      for (size_t k = 0; k < n; k++) t[k].w = (float)(t[k].w / sum);
  }
}

typedef struct resize_job {
  const resize_params *p;
  const kernel_tensor *x;
  kernel_tensor *y;
  const tap *tables[STRAND_MAX_RANK];
  int64_t in_strides[STRAND_MAX_RANK];
  unsigned char fill[8]; /* extrapolation_value in the output's dtype */
  const wide_tap *wide[STRAND_MAX_RANK]; /* antialias */
  size_t wide_n[STRAND_MAX_RANK];
} resize_job;

/* Antialiased linear rows (float32): every element a weighted sum over
 * the product of its dims' wide taps. */
static void antialias_rows(void *ctx, size_t begin, size_t end) {
  const resize_job *j = ctx;
  const kernel_tensor *x = j->x;
  kernel_tensor *y = j->y;
  size_t rank = y->rank, last = rank - 1;
  int64_t width = y->dims[last];
  size_t nl = j->wide_n[last];
  for (size_t r = begin; r < end; r++) {
    const wide_tap *row_taps[STRAND_MAX_RANK];
    size_t rest = r;
    for (size_t d = last; d-- > 0;) {
      size_t o = rest % (size_t)y->dims[d];
      rest /= (size_t)y->dims[d];
      row_taps[d] = j->wide[d] + o * j->wide_n[d];
    }
    float *out = (float *)y->data + r * (size_t)width;
    for (int64_t o = 0; o < width; o++) out[o] = 0;
    size_t k[STRAND_MAX_RANK] = {0};
    for (;;) {
      float weight = 1;
      size_t offset = 0;
      for (size_t d = 0; d < last; d++) {
        weight *= row_taps[d][k[d]].w;
        offset += (size_t)(row_taps[d][k[d]].i * j->in_strides[d]);
      }
      if (weight != 0) {
        const float *src = (const float *)x->data + offset;
        for (int64_t o = 0; o < width; o++) {
          const wide_tap *t = j->wide[last] + (size_t)o * nl;
          float acc = 0;
          for (size_t q = 0; q < nl; q++) acc += t[q].w * src[t[q].i];
          out[o] += weight * acc;
        }
      }
      size_t d = last;
      while (d-- > 0) {
        if (++k[d] < j->wide_n[d]) break;
        k[d] = 0;
      }
      if (d == (size_t)-1) break;
    }
  }
}

/* v as one element of `dtype` into out (8 bytes at most). */
static void element_of(double v, strand_dtype dtype, unsigned char *out) {
  union {
    float f; double d; int8_t i8; int16_t i16; int32_t i32; int64_t i64;
    uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64;
  } e;
  memset(&e, 0, sizeof e);
  bool integer = dtype != STRAND_DTYPE_FLOAT32 && dtype != STRAND_DTYPE_FLOAT64 &&
                 dtype != STRAND_DTYPE_FLOAT16 && dtype != STRAND_DTYPE_BFLOAT16;
  if (integer) v = v != v ? 0 : v < -9.2e18 ? -9.2e18 : v > 9.2e18 ? 9.2e18 : trunc(v);
  switch (dtype) {
  case STRAND_DTYPE_FLOAT32: e.f = (float)v; break;
  case STRAND_DTYPE_FLOAT64: e.d = v; break;
  case STRAND_DTYPE_FLOAT16: e.u16 = kernel_float_to_half((float)v); break;
  case STRAND_DTYPE_BFLOAT16: e.u16 = kernel_float_to_bfloat((float)v); break;
  case STRAND_DTYPE_INT8: e.i8 = (int8_t)(int64_t)v; break;
  case STRAND_DTYPE_INT16: e.i16 = (int16_t)(int64_t)v; break;
  case STRAND_DTYPE_INT32: e.i32 = (int32_t)(int64_t)v; break;
  case STRAND_DTYPE_INT64: e.i64 = (int64_t)v; break;
  case STRAND_DTYPE_UINT8: e.u8 = (uint8_t)(int64_t)v; break;
  case STRAND_DTYPE_UINT16: e.u16 = (uint16_t)(int64_t)v; break;
  case STRAND_DTYPE_UINT32: e.u32 = (uint32_t)(int64_t)v; break;
  case STRAND_DTYPE_UINT64: e.u64 = (uint64_t)(int64_t)v; break;
  case STRAND_DTYPE_BOOL: e.u8 = v != 0; break;
  default: break;
  }
  memcpy(out, &e, 8);
}

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
    bool row_outside = false;
    for (size_t d = 0; d < last; d++) row_outside |= row_taps[d]->outside;
    if (j->p->coord == COORD_TF_CROP_AND_RESIZE) {
      unsigned char *dst = (unsigned char *)y->data + r * (size_t)width * item;
      if (row_outside) {
        for (int64_t o = 0; o < width; o++) memcpy(dst + (size_t)o * item, j->fill, item);
        continue;
      }
    }
    if (!j->p->linear) {
      size_t base = 0;
      for (size_t d = 0; d < last; d++) base += (size_t)(row_taps[d]->i0 * j->in_strides[d]);
      const unsigned char *src = (const unsigned char *)x->data + base * item;
      unsigned char *dst = (unsigned char *)y->data + r * (size_t)width * item;
      for (int64_t o = 0; o < width; o++)
        memcpy(dst + (size_t)o * item, lt[o].outside ? j->fill : src + (size_t)lt[o].i0 * item, item);
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
    for (int64_t o = 0; o < width; o++)
      if (lt[o].outside) out[o] = j->p->extrapolation;
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
  double roi_start[STRAND_MAX_RANK], roi_end[STRAND_MAX_RANK];
  st = resize_roi(c, roi_start, roi_end);
  if (st) return st;
  tap *tables = c->scratch;
  build_tables(p, x, y, scales, roi_start, roi_end, tables);
  resize_job j = {p, x, y, {NULL}, {0}, {0}, {NULL}, {0}};
  element_of(p->extrapolation, y->dtype, j.fill);
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
  if (p->antialias) {
    wide_tap *w = (wide_tap *)(tables + at);
    size_t cost = 1;
    for (size_t d = 0; d < y->rank; d++) {
      j.wide[d] = w;
      j.wide_n[d] = wide_taps(scales[d]);
      build_wide(p, x->dims[d], y->dims[d], scales[d], j.wide_n[d], w);
      w += (size_t)y->dims[d] * j.wide_n[d];
      cost *= j.wide_n[d];
    }
    kernel_parallel(c->threads, y->count / width, kernel_grain(width * cost * 2), antialias_rows, &j);
    return STRAND_OK;
  }
  kernel_parallel(c->threads, y->count / width, kernel_grain(width * (p->linear ? 8 : 2)),
                  resize_rows, &j);
  return STRAND_OK;
}

const kernel_def kernel_Resize = {"Resize", "", 11, KERNEL_OPSET_MAX, (1u << 1) | (1u << 2) | (1u << 3), 0, accepts_resize,
                                  prepare_resize, infer_resize, scratch_resize, run_resize};
