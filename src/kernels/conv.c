/*
 * conv.c — Conv, and the window geometry Conv and the pools share.
 *
 * Conv runs one of two ways:
 *  - im2col + GEMM: for each image and group, the input patches are laid
 *    out as a (C/group * kernel) × (output positions) matrix in scratch,
 *    and Y = W · col runs on the packed SGEMM split over the thread pool.
 *    A 1×1 convolution with unit strides and no padding skips im2col: the
 *    input already is that matrix.
 *  - direct depthwise: when each group has one input channel (MobileNet's
 *    depthwise layers), each output channel is a small stencil over one
 *    input channel, computed tap by tap over the row range where the tap
 *    is inside the image, so the inner loop has no bounds checks.
 * 1-D and 2-D convolutions run as 3-D ones with leading dimensions of 1.
 */
#include "kernels/kernels_internal.h"

#include <string.h>

/* ---- window attributes and geometry ---------------------------------------- */

static strand_status read_list(const graph_node *node, const char *name, size_t most,
                               int64_t *values, size_t *count) {
  const int64_t *v;
  size_t n;
  strand_status st = kernel_attr_ints(node, name, &v, &n);
  if (st) return st;
  if (n > most)
    return strand__fail(STRAND_E_UNSUPPORTED, "attribute \"%s\" has %zu values; strand handles "
                        "windows of at most %d spatial dimensions", name, n, KERNEL_MAX_SPATIAL);
  for (size_t i = 0; i < n; i++) values[i] = v[i];
  *count = n;
  return STRAND_OK;
}

strand_status kernel_window_read(const graph_node *node, kernel_window *w) {
  memset(w, 0, sizeof *w);
  strand_status st = read_list(node, "kernel_shape", KERNEL_MAX_SPATIAL, w->kernel, &w->n_kernel);
  if (!st) st = read_list(node, "strides", KERNEL_MAX_SPATIAL, w->strides, &w->n_strides);
  if (!st) st = read_list(node, "dilations", KERNEL_MAX_SPATIAL, w->dilations, &w->n_dilations);
  if (!st) st = read_list(node, "pads", 2 * KERNEL_MAX_SPATIAL, w->pads, &w->n_pads);
  if (st) return st;
  /* Bounds that keep every window computation far from overflow. */
  const int64_t most = INT32_MAX;
  for (size_t i = 0; i < w->n_kernel + w->n_strides + w->n_dilations + w->n_pads; i++) {
    size_t k = i;
    const char *name = "kernel_shape";
    int64_t v;
    if (k < w->n_kernel) v = w->kernel[k];
    else if ((k -= w->n_kernel) < w->n_strides) v = w->strides[k], name = "strides";
    else if ((k -= w->n_strides) < w->n_dilations) v = w->dilations[k], name = "dilations";
    else v = w->pads[k - w->n_dilations], name = "pads";
    if (v > most)
      return strand__fail(STRAND_E_UNSUPPORTED, "attribute \"%s\" has %lld; strand handles values "
                          "up to %lld", name, (long long)v, (long long)most);
  }
  for (size_t i = 0; i < w->n_kernel; i++)
    if (w->kernel[i] < 1)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"kernel_shape\" has %lld; sizes "
                          "must be >= 1", (long long)w->kernel[i]);
  for (size_t i = 0; i < w->n_strides; i++)
    if (w->strides[i] < 1)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"strides\" has %lld; strides "
                          "must be >= 1", (long long)w->strides[i]);
  for (size_t i = 0; i < w->n_dilations; i++)
    if (w->dilations[i] < 1)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"dilations\" has %lld; "
                          "dilations must be >= 1", (long long)w->dilations[i]);
  for (size_t i = 0; i < w->n_pads; i++)
    if (w->pads[i] < 0)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"pads\" has %lld; pads must be "
                          ">= 0", (long long)w->pads[i]);
  const char *auto_pad;
  int64_t ceil_mode;
  st = kernel_attr_string(node, "auto_pad", "NOTSET", &auto_pad);
  if (!st) st = kernel_attr_int(node, "ceil_mode", 0, &ceil_mode);
  if (st) return st;
  w->ceil_mode = ceil_mode != 0;
  if (strcmp(auto_pad, "NOTSET") == 0 || auto_pad[0] == '\0') w->auto_pad = KERNEL_PAD_NOTSET;
  else if (strcmp(auto_pad, "SAME_UPPER") == 0) w->auto_pad = KERNEL_PAD_SAME_UPPER;
  else if (strcmp(auto_pad, "SAME_LOWER") == 0) w->auto_pad = KERNEL_PAD_SAME_LOWER;
  else if (strcmp(auto_pad, "VALID") == 0) w->auto_pad = KERNEL_PAD_VALID;
  else
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"auto_pad\" is \"%s\"; expected "
                        "NOTSET, SAME_UPPER, SAME_LOWER or VALID", auto_pad);
  return STRAND_OK;
}

static strand_status list_size(const char *name, size_t given, size_t want) {
  if (given == 0 || given == want) return STRAND_OK;
  return strand__fail(STRAND_E_SHAPE, "attribute \"%s\" has %zu values for %zu spatial "
                      "dimensions", name, given, want / (strcmp(name, "pads") == 0 ? 2 : 1));
}

strand_status kernel_window_geometry(const kernel_window *w, size_t spatial, const int64_t *in,
                                     const int64_t *kernel, kernel_geometry *g) {
  if (spatial == 0 || spatial > KERNEL_MAX_SPATIAL)
    return strand__fail(STRAND_E_UNSUPPORTED, "%zu spatial dimensions; strand handles 1 to %d",
                        spatial, KERNEL_MAX_SPATIAL);
  strand_status st = kernel ? STRAND_OK : list_size("kernel_shape", w->n_kernel, spatial);
  if (!st && !kernel && w->n_kernel == 0)
    st = strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"kernel_shape\" is missing");
  if (!st) st = list_size("strides", w->n_strides, spatial);
  if (!st) st = list_size("dilations", w->n_dilations, spatial);
  if (!st && w->auto_pad == KERNEL_PAD_NOTSET) st = list_size("pads", w->n_pads, 2 * spatial);
  if (st) return st;
  g->spatial = spatial;
  size_t lead = KERNEL_MAX_SPATIAL - spatial;
  for (size_t i = 0; i < KERNEL_MAX_SPATIAL; i++) {
    g->in[i] = g->out[i] = g->kernel[i] = g->stride[i] = g->dilation[i] = 1;
    g->pad_begin[i] = g->pad_end[i] = 0;
  }
  for (size_t d = 0; d < spatial; d++) {
    size_t i = lead + d;
    int64_t k = kernel ? kernel[d] : w->kernel[d];
    int64_t s = w->n_strides ? w->strides[d] : 1, dil = w->n_dilations ? w->dilations[d] : 1;
    int64_t size = in[d], effective, span;
    if (k < 1 || k > INT32_MAX)
      return strand__fail(STRAND_E_SHAPE, "the kernel's spatial dimension %zu is %lld", d,
                          (long long)k);
    if (__builtin_mul_overflow(k - 1, dil, &effective) || effective >= INT64_MAX / 4)
      return strand__fail(STRAND_E_SHAPE, "kernel %lld with dilation %lld is too large",
                          (long long)k, (long long)dil);
    effective += 1;
    int64_t pb = 0, pe = 0, out;
    switch (w->auto_pad) {
    case KERNEL_PAD_SAME_UPPER:
    case KERNEL_PAD_SAME_LOWER: {
      out = (size + s - 1) / s;
      int64_t total = (out - 1) * s + effective - size;
      if (total < 0) total = 0;
      int64_t half = total / 2;
      pb = w->auto_pad == KERNEL_PAD_SAME_UPPER ? half : total - half;
      pe = total - pb;
      break;
    }
    default:
      if (w->auto_pad == KERNEL_PAD_NOTSET && w->n_pads) {
        pb = w->pads[d];
        pe = w->pads[d + spatial];
      }
      span = size + pb + pe - effective;
      if (span < 0)
        return strand__fail(STRAND_E_SHAPE, "spatial dimension %zu: the window of %lld (kernel "
                            "%lld, dilation %lld) is larger than the padded input of %lld", d,
                            (long long)effective, (long long)k, (long long)dil,
                            (long long)(size + pb + pe));
      out = (w->ceil_mode ? span + s - 1 : span) / s + 1;
      /* The last window must start inside the input or its left padding. */
      if (w->ceil_mode && (out - 1) * s >= size + pb) out--;
      break;
    }
    g->in[i] = size;
    g->out[i] = out;
    g->kernel[i] = k;
    g->stride[i] = s;
    g->dilation[i] = dil;
    g->pad_begin[i] = pb;
    g->pad_end[i] = pe;
  }
  return STRAND_OK;
}

/* The outputs o in [0, n_out) whose tap o*stride + offset falls in
 * [0, n_in): [*lo, *hi). */
static void valid_range(int64_t n_out, int64_t stride, int64_t offset, int64_t n_in, int64_t *lo,
                        int64_t *hi) {
  int64_t a = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t b = n_in - 1 - offset < 0 ? 0 : (n_in - 1 - offset) / stride + 1;
  if (a > n_out) a = n_out;
  if (b > n_out) b = n_out;
  if (b < a) b = a;
  *lo = a;
  *hi = b;
}

/* ---- Conv --------------------------------------------------------------------- */

typedef struct conv_params {
  kernel_activation activation; /* first: set by the session when it fuses */
  kernel_window window;
  int64_t group;
} conv_params;

static bool accepts_conv(const strand_dtype *d, size_t n) {
  return n >= 2 && n <= 3 && kernel_accepts_float32(d, n);
}

static strand_status prepare_conv(kernel_prepare *p, void **out) {
  conv_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  st = kernel_window_read(p->node, &params->window);
  if (!st) st = kernel_attr_int(p->node, "group", 1, &params->group);
  if (st) return st;
  if (params->group < 1)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"group\" is %lld; it must be >= 1",
                        (long long)params->group);
  if (params->window.ceil_mode)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "Conv has no attribute \"ceil_mode\"");
  return STRAND_OK;
}

/* Shapes of a Conv call, checked. */
typedef struct conv_shape {
  size_t n, c, m, cg, mg, groups;
  size_t taps;          /* kernel elements per input channel */
  size_t in_size, out_size; /* spatial elements */
  kernel_geometry geo;
} conv_shape;

static strand_status conv_shape_of(const kernel_call *c, conv_shape *s) {
  const conv_params *p = c->params;
  const kernel_tensor *x = c->inputs[0], *w = c->inputs[1], *b = kernel_input(c, 2);
  char sx[160], sw[160];
  if (x->rank < 3 || w->rank != x->rank)
    return strand__fail(STRAND_E_SHAPE, "X %s and W %s must have the same rank, at least 3",
                        kernel_shape_text(x, sx, sizeof sx), kernel_shape_text(w, sw, sizeof sw));
  size_t spatial = x->rank - 2;
  s->n = (size_t)x->dims[0];
  s->c = (size_t)x->dims[1];
  s->m = (size_t)w->dims[0];
  s->groups = (size_t)p->group;
  s->cg = (size_t)w->dims[1];
  if (s->cg * s->groups != s->c || s->m % s->groups != 0)
    return strand__fail(STRAND_E_SHAPE, "X %s has %zu channels and W %s takes %zu per group with "
                        "%zu group%s and %zu outputs", kernel_shape_text(x, sx, sizeof sx), s->c,
                        kernel_shape_text(w, sw, sizeof sw), s->cg, s->groups,
                        s->groups == 1 ? "" : "s", s->m);
  s->mg = s->m / s->groups;
  if (b && (b->rank != 1 || (size_t)b->dims[0] != s->m))
    return strand__fail(STRAND_E_SHAPE, "B %s must have W's %zu output channels",
                        kernel_shape_text(b, sx, sizeof sx), s->m);
  if (p->window.n_kernel) {
    for (size_t d = 0; d < spatial && d < p->window.n_kernel; d++)
      if (p->window.kernel[d] != w->dims[2 + d])
        return strand__fail(STRAND_E_SHAPE, "attribute \"kernel_shape\" disagrees with W %s",
                            kernel_shape_text(w, sw, sizeof sw));
  }
  strand_status st = kernel_window_geometry(&p->window, spatial, x->dims + 2, w->dims + 2, &s->geo);
  if (st) return st;
  s->taps = 1;
  s->in_size = 1;
  s->out_size = 1;
  for (size_t i = 0; i < KERNEL_MAX_SPATIAL; i++) {
    s->taps *= (size_t)s->geo.kernel[i];
    s->in_size *= (size_t)s->geo.in[i];
    s->out_size *= (size_t)s->geo.out[i];
  }
  return STRAND_OK;
}

static strand_status infer_conv(const kernel_call *c) {
  conv_shape s;
  strand_status st = conv_shape_of(c, &s);
  if (st) return st;
  int64_t dims[STRAND_MAX_RANK] = {(int64_t)s.n, (int64_t)s.m};
  size_t lead = KERNEL_MAX_SPATIAL - s.geo.spatial;
  for (size_t d = 0; d < s.geo.spatial; d++) dims[2 + d] = s.geo.out[lead + d];
  kernel_set_shape(c->outputs[0], STRAND_DTYPE_FLOAT32, 2 + s.geo.spatial, dims);
  return STRAND_OK;
}

static bool pointwise(const kernel_geometry *g) {
  for (size_t i = 0; i < KERNEL_MAX_SPATIAL; i++)
    if (g->kernel[i] != 1 || g->stride[i] != 1 || g->pad_begin[i] || g->pad_end[i]) return false;
  return true;
}

/* The direct depthwise path: one input channel per group, 1-D or 2-D. */
static bool depthwise(const conv_shape *s) {
  return s->cg == 1 && s->groups > 1 && s->geo.spatial <= 2;
}

static size_t col_bytes(const conv_shape *s) {
  if (pointwise(&s->geo)) return 0;
  return ((s->cg * s->taps * s->out_size * sizeof(float)) + 63) & ~(size_t)63;
}

static size_t scratch_conv(const kernel_call *c) {
  conv_shape s;
  if (conv_shape_of(c, &s) || !c->outputs[0]->count || depthwise(&s)) return 0;
  return col_bytes(&s) + kernel_gemm_scratch(NULL, s.mg, s.out_size, s.cg * s.taps, false,
                                             c->threads);
}

typedef struct im2col_job {
  const conv_shape *s;
  const float *x; /* this image's group: cg channels */
  float *col;
} im2col_job;

static void im2col_rows(void *p, size_t begin, size_t end) {
  const im2col_job *j = p;
  const kernel_geometry *g = &j->s->geo;
  const int64_t KH = g->kernel[1], KW = g->kernel[2];
  const int64_t D = g->in[0], H = g->in[1], W = g->in[2];
  const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
  const size_t taps = j->s->taps, out_size = j->s->out_size;
  for (size_t r = begin; r < end; r++) {
    size_t ch = r / taps, tap = r % taps;
    int64_t kd = (int64_t)(tap / (size_t)(KH * KW)), kh = (int64_t)(tap / (size_t)KW % (size_t)KH),
            kw = (int64_t)(tap % (size_t)KW);
    const float *x = j->x + ch * (size_t)(D * H * W);
    float *dst = j->col + r * out_size;
    int64_t offset_w = kw * g->dilation[2] - g->pad_begin[2], lo, hi;
    valid_range(OW, g->stride[2], offset_w, W, &lo, &hi);
    for (int64_t od = 0; od < OD; od++) {
      int64_t id = od * g->stride[0] - g->pad_begin[0] + kd * g->dilation[0];
      for (int64_t oh = 0; oh < OH; oh++, dst += OW) {
        int64_t ih = oh * g->stride[1] - g->pad_begin[1] + kh * g->dilation[1];
        if (id < 0 || id >= D || ih < 0 || ih >= H || lo == hi) {
          memset(dst, 0, (size_t)OW * sizeof(float));
          continue;
        }
        const float *row = x + (id * H + ih) * W;
        if (lo) memset(dst, 0, (size_t)lo * sizeof(float));
        if (g->stride[2] == 1) {
          memcpy(dst + lo, row + lo + offset_w, (size_t)(hi - lo) * sizeof(float));
        } else {
          int64_t s = g->stride[2];
          for (int64_t ow = lo; ow < hi; ow++) dst[ow] = row[ow * s + offset_w];
        }
        if (hi < OW) memset(dst + hi, 0, (size_t)(OW - hi) * sizeof(float));
      }
    }
  }
}

typedef struct fill_job {
  float *y;
  const float *bias;
  size_t size;
} fill_job;

static void fill_rows(void *p, size_t begin, size_t end) {
  const fill_job *j = p;
  for (size_t m = begin; m < end; m++) {
    float v = j->bias[m], *row = j->y + m * j->size;
    for (size_t i = 0; i < j->size; i++) row[i] = v;
  }
}

typedef struct depthwise_job {
  const void *params;
  const conv_shape *s;
  const float *x, *w, *bias;
  float *y;
} depthwise_job;

/* Adds every tap's contribution to output row `out` (already holding the
 * bias) over outputs [a, b): each tap adds its shifted input row over the
 * range where it is inside the image, so there are no bounds checks inside
 * (and the loop is contiguous, so vectorized, at stride 1). */
static void depthwise_row_taps(const kernel_geometry *g, const float *x, const float *w,
                               int64_t oh, float *out, int64_t a, int64_t b) {
  const int64_t H = g->in[1], W = g->in[2], OW = g->out[2], KH = g->kernel[1], KW = g->kernel[2];
  const int64_t sw = g->stride[2];
  for (int64_t kh = 0; kh < KH; kh++) {
    int64_t ih = oh * g->stride[1] - g->pad_begin[1] + kh * g->dilation[1];
    if (ih < 0 || ih >= H) continue;
    const float *row = x + ih * W;
    for (int64_t kw = 0; kw < KW; kw++) {
      float wv = w[kh * KW + kw];
      int64_t offset = kw * g->dilation[2] - g->pad_begin[2], lo, hi;
      valid_range(OW, sw, offset, W, &lo, &hi);
      if (lo < a) lo = a;
      if (hi > b) hi = b;
      if (lo >= hi) continue;
      const float *in = row + (lo * sw + offset); /* the tap of output lo */
      float *to = out + lo;
      int64_t count = hi - lo;
      if (sw == 1)
        for (int64_t i = 0; i < count; i++) to[i] += wv * in[i];
      else if (sw == 2)
        for (int64_t i = 0; i < count; i++) to[i] += wv * in[2 * i];
      else
        for (int64_t i = 0; i < count; i++) to[i] += wv * in[i * sw];
    }
  }
}

/* 3×3 taps without dilation over outputs [a, b) of a row whose three input
 * rows r0..r2 and all three columns of every output are inside the image:
 * nine products per output kept in a register. */
static void depthwise_row_3x3(const float *r0, const float *r1, const float *r2,
                              const float *w, float bias, int64_t stride, int64_t offset,
                              float *out, int64_t a, int64_t b) {
  const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6],
              w7 = w[7], w8 = w[8];
  r0 += a * stride + offset;
  r1 += a * stride + offset;
  r2 += a * stride + offset;
  out += a;
  int64_t count = b - a;
  if (stride == 1) {
    for (int64_t i = 0; i < count; i++)
      out[i] = bias + w0 * r0[i] + w1 * r0[i + 1] + w2 * r0[i + 2] + w3 * r1[i] + w4 * r1[i + 1] +
               w5 * r1[i + 2] + w6 * r2[i] + w7 * r2[i + 1] + w8 * r2[i + 2];
  } else {
    for (int64_t i = 0; i < count; i++) {
      int64_t j = i * stride;
      out[i] = bias + w0 * r0[j] + w1 * r0[j + 1] + w2 * r0[j + 2] + w3 * r1[j] + w4 * r1[j + 1] +
               w5 * r1[j + 2] + w6 * r2[j] + w7 * r2[j + 1] + w8 * r2[j + 2];
    }
  }
}

/* Output channels (image n, channel m) for items [begin, end) of n*m, one
 * output row at a time (the row stays in L1), the activation applied to
 * each row as it is done. */
static void depthwise_channels(void *p, size_t begin, size_t end) {
  const depthwise_job *j = p;
  const conv_shape *s = j->s;
  const kernel_geometry *g = &s->geo;
  const kernel_activation *act = &((const conv_params *)j->params)->activation;
  const int64_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];
  const int64_t sh = g->stride[1], sw = g->stride[2];
  bool three = g->kernel[1] == 3 && g->kernel[2] == 3 && g->dilation[1] == 1 && g->dilation[2] == 1;
  /* The outputs whose three columns are all inside: [c0, c1). */
  int64_t c0 = 0, c1 = 0, lo, hi;
  if (three) {
    valid_range(OW, sw, -g->pad_begin[2], W, &c0, &hi);
    valid_range(OW, sw, 2 - g->pad_begin[2], W, &lo, &c1);
    if (lo > c0) c0 = lo;
    if (hi < c1) c1 = hi;
    if (c1 < c0) c1 = c0;
  }
  for (size_t item = begin; item < end; item++) {
    size_t n = item / s->m, m = item % s->m, ch = m / s->mg;
    const float *x = j->x + (n * s->c + ch) * s->in_size;
    const float *w = j->w + m * s->taps;
    float *y = j->y + item * s->out_size;
    float b = j->bias ? j->bias[m] : 0.0f;
    for (int64_t oh = 0; oh < OH; oh++) {
      float *out = y + oh * OW;
      int64_t ih = oh * sh - g->pad_begin[1];
      if (three && ih >= 0 && ih + 2 < H && c0 < c1) {
        for (int64_t ow = 0; ow < c0; ow++) out[ow] = b;
        for (int64_t ow = c1; ow < OW; ow++) out[ow] = b;
        depthwise_row_taps(g, x, w, oh, out, 0, c0);
        depthwise_row_taps(g, x, w, oh, out, c1, OW);
        const float *r0 = x + ih * W;
        depthwise_row_3x3(r0, r0 + W, r0 + 2 * W, w, b, sw, -g->pad_begin[2], out, c0, c1);
      } else {
        for (int64_t ow = 0; ow < OW; ow++) out[ow] = b;
        depthwise_row_taps(g, x, w, oh, out, 0, OW);
      }
      kernel_activate(act, out, (size_t)OW);
    }
  }
}

static strand_status run_conv(const kernel_call *c) {
  conv_shape s;
  strand_status st = conv_shape_of(c, &s);
  if (st) return st;
  kernel_tensor *out = c->outputs[0];
  if (!out->count) return STRAND_OK;
  const float *x = c->inputs[0]->data, *w = c->inputs[1]->data;
  const kernel_tensor *b = kernel_input(c, 2);
  const float *bias = b ? b->data : NULL;
  float *y = out->data;
  if (depthwise(&s)) {
    depthwise_job j = {c->params, &s, x, w, bias, y};
    kernel_parallel(c->threads, s.n * s.m, kernel_grain(s.out_size * s.taps), depthwise_channels, &j);
    return STRAND_OK;
  }
  size_t k = s.cg * s.taps, cols = col_bytes(&s);
  float *col = cols ? c->scratch : NULL;
  unsigned char *gemm_scratch = (unsigned char *)c->scratch + cols;
  const conv_params *p = c->params;
  strand__gemm_epilogue ep = {NULL, p->activation.kind, p->activation.lo, p->activation.hi};
  size_t gemm_scratch_size = c->scratch_size - cols;
  for (size_t n = 0; n < s.n; n++) {
    for (size_t g = 0; g < s.groups; g++) {
      const float *xg = x + (n * s.c + g * s.cg) * s.in_size;
      float *yg = y + (n * s.m + g * s.mg) * s.out_size;
      if (bias) {
        fill_job f = {yg, bias + g * s.mg, s.out_size};
        kernel_parallel(c->threads, s.mg, kernel_grain(s.out_size), fill_rows, &f);
      }
      const float *bmat = xg;
      if (col) {
        im2col_job j = {&s, xg, col};
        kernel_parallel(c->threads, k, kernel_grain(s.out_size), im2col_rows, &j);
        bmat = col;
      }
      kernel_gemm gm = {NULL, false, false, s.mg, s.out_size, k, 1.0f, bias ? 1.0f : 0.0f,
                        w + g * s.mg * k, k ? k : 1, bmat, s.out_size, NULL, yg, s.out_size,
                        p->activation.kind ? &ep : NULL};
      kernel_gemm_run(&gm, c->threads, gemm_scratch, gemm_scratch_size);
    }
  }
  return STRAND_OK;
}

const kernel_def kernel_Conv = {"Conv", "", 1, KERNEL_OPSET_MAX, 0, KERNEL_FUSES_ACTIVATION, accepts_conv, prepare_conv, infer_conv,
                                scratch_conv, run_conv};

/* ---- ConvTranspose -------------------------------------------------------------- */

/* For each image and group, col = W_gᵀ · X_g (every input position's
 * contribution to each output channel and tap) on the packed SGEMM, then
 * col2im adds each column into the output positions it reaches; output
 * channels are split over the threads (each writes only its own plane). */
typedef struct conv_transpose_params {
  kernel_window window;
  int64_t group;
  size_t n_output_padding, n_output_shape;
  int64_t output_padding[KERNEL_MAX_SPATIAL];
  int64_t output_shape[STRAND_MAX_RANK];
} conv_transpose_params;

static strand_status prepare_conv_transpose(kernel_prepare *p, void **out) {
  conv_transpose_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  st = kernel_window_read(p->node, &params->window);
  if (!st) st = kernel_attr_int(p->node, "group", 1, &params->group);
  if (!st)
    st = read_list(p->node, "output_padding", KERNEL_MAX_SPATIAL, params->output_padding,
                   &params->n_output_padding);
  if (!st)
    st = read_list(p->node, "output_shape", STRAND_MAX_RANK, params->output_shape,
                   &params->n_output_shape);
  if (st) return st;
  if (params->group < 1)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"group\" is %lld; it must be >= 1",
                        (long long)params->group);
  for (size_t i = 0; i < params->n_output_padding; i++)
    if (params->output_padding[i] < 0 || params->output_padding[i] > INT32_MAX)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"output_padding\" has %lld",
                          (long long)params->output_padding[i]);
  return STRAND_OK;
}

typedef struct transpose_shape {
  size_t n, c, m, cg, mg, groups, taps, in_size, out_size;
  size_t spatial;
  int64_t in[KERNEL_MAX_SPATIAL], out[KERNEL_MAX_SPATIAL], kernel[KERNEL_MAX_SPATIAL];
  int64_t stride[KERNEL_MAX_SPATIAL], dilation[KERNEL_MAX_SPATIAL], pad_begin[KERNEL_MAX_SPATIAL];
} transpose_shape;

static strand_status transpose_shape_of(const kernel_call *c, transpose_shape *s) {
  const conv_transpose_params *p = c->params;
  const kernel_window *win = &p->window;
  const kernel_tensor *x = c->inputs[0], *w = c->inputs[1], *b = kernel_input(c, 2);
  char sx[160], sw[160];
  if (x->rank < 3 || w->rank != x->rank)
    return strand__fail(STRAND_E_SHAPE, "X %s and W %s must have the same rank, at least 3",
                        kernel_shape_text(x, sx, sizeof sx), kernel_shape_text(w, sw, sizeof sw));
  size_t spatial = x->rank - 2;
  if (spatial > KERNEL_MAX_SPATIAL)
    return strand__fail(STRAND_E_UNSUPPORTED, "%zu spatial dimensions; strand handles 1 to %d",
                        spatial, KERNEL_MAX_SPATIAL);
  s->spatial = spatial;
  s->n = (size_t)x->dims[0];
  s->c = (size_t)x->dims[1];
  s->groups = (size_t)p->group;
  s->mg = (size_t)w->dims[1];
  s->m = s->mg * s->groups;
  if ((size_t)w->dims[0] != s->c || s->c % s->groups)
    return strand__fail(STRAND_E_SHAPE, "X %s has %zu channels but W %s is for %lld in %zu "
                        "group%s", kernel_shape_text(x, sx, sizeof sx), s->c,
                        kernel_shape_text(w, sw, sizeof sw), (long long)w->dims[0], s->groups,
                        s->groups == 1 ? "" : "s");
  s->cg = s->c / s->groups;
  if (b && (b->rank != 1 || (size_t)b->dims[0] != s->m))
    return strand__fail(STRAND_E_SHAPE, "B %s must have %zu output channels",
                        kernel_shape_text(b, sx, sizeof sx), s->m);
  strand_status st = STRAND_OK;
  if (win->n_strides && win->n_strides != spatial) st = list_size("strides", win->n_strides, spatial);
  if (!st && win->n_dilations && win->n_dilations != spatial)
    st = list_size("dilations", win->n_dilations, spatial);
  if (!st && win->n_pads && win->n_pads != 2 * spatial) st = list_size("pads", win->n_pads, 2 * spatial);
  if (!st && p->n_output_padding && p->n_output_padding != spatial)
    st = list_size("output_padding", p->n_output_padding, spatial);
  if (!st && p->n_output_shape && p->n_output_shape != spatial && p->n_output_shape != spatial + 2)
    st = strand__fail(STRAND_E_SHAPE, "attribute \"output_shape\" has %zu values for %zu spatial "
                      "dimensions", p->n_output_shape, spatial);
  if (st) return st;
  size_t lead = KERNEL_MAX_SPATIAL - spatial;
  s->taps = 1;
  s->in_size = 1;
  s->out_size = 1;
  for (size_t i = 0; i < KERNEL_MAX_SPATIAL; i++) {
    s->in[i] = s->out[i] = s->kernel[i] = s->stride[i] = s->dilation[i] = 1;
    s->pad_begin[i] = 0;
  }
  for (size_t d = 0; d < spatial; d++) {
    size_t i = lead + d;
    int64_t in = x->dims[2 + d], k = w->dims[2 + d];
    int64_t st_ = win->n_strides ? win->strides[d] : 1, dil = win->n_dilations ? win->dilations[d] : 1;
    int64_t extra = p->n_output_padding ? p->output_padding[d] : 0;
    if (win->n_kernel && win->n_kernel == spatial && win->kernel[d] != k)
      return strand__fail(STRAND_E_SHAPE, "attribute \"kernel_shape\" disagrees with W %s",
                          kernel_shape_text(w, sw, sizeof sw));
    if (k < 1 || k > INT32_MAX || in > INT32_MAX)
      return strand__fail(STRAND_E_SHAPE, "spatial dimension %zu: input %lld, kernel %lld", d,
                          (long long)in, (long long)k);
    int64_t full = st_ * (in - 1) + extra + (k - 1) * dil + 1; /* the output with no padding */
    int64_t out, pb, total;
    if (p->n_output_shape || win->auto_pad == KERNEL_PAD_SAME_UPPER ||
        win->auto_pad == KERNEL_PAD_SAME_LOWER) {
      out = p->n_output_shape ? p->output_shape[p->n_output_shape - spatial + d] : in * st_;
      total = full - out; /* may be negative: the output then extends past the last tap */
      int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2); /* floor, as ONNX's reference */
      pb = win->auto_pad == KERNEL_PAD_SAME_UPPER ? half : total - half;
    } else {
      pb = win->auto_pad == KERNEL_PAD_NOTSET && win->n_pads ? win->pads[d] : 0;
      total = pb + (win->auto_pad == KERNEL_PAD_NOTSET && win->n_pads ? win->pads[d + spatial] : 0);
      out = full - total;
    }
    if (out < 0 || out > INT32_MAX || pb > INT32_MAX || pb < -(int64_t)INT32_MAX)
      return strand__fail(STRAND_E_SHAPE, "spatial dimension %zu: an output of %lld with padding "
                          "%lld", d, (long long)out, (long long)total);
    s->in[i] = in;
    s->out[i] = out;
    s->kernel[i] = k;
    s->stride[i] = st_;
    s->dilation[i] = dil;
    s->pad_begin[i] = pb;
    s->taps *= (size_t)k;
    s->in_size *= (size_t)in;
    s->out_size *= (size_t)out;
  }
  return STRAND_OK;
}

static strand_status infer_conv_transpose(const kernel_call *c) {
  transpose_shape s;
  strand_status st = transpose_shape_of(c, &s);
  if (st) return st;
  int64_t dims[STRAND_MAX_RANK] = {(int64_t)s.n, (int64_t)s.m};
  size_t lead = KERNEL_MAX_SPATIAL - s.spatial;
  for (size_t d = 0; d < s.spatial; d++) dims[2 + d] = s.out[lead + d];
  kernel_set_shape(c->outputs[0], STRAND_DTYPE_FLOAT32, 2 + s.spatial, dims);
  return STRAND_OK;
}

static size_t transpose_col_bytes(const transpose_shape *s) {
  return (s->mg * s->taps * s->in_size * sizeof(float) + 63) & ~(size_t)63;
}

static size_t scratch_conv_transpose(const kernel_call *c) {
  transpose_shape s;
  if (transpose_shape_of(c, &s) || !c->outputs[0]->count) return 0;
  return transpose_col_bytes(&s) +
         kernel_gemm_scratch(NULL, s.mg * s.taps, s.in_size, s.cg, false, c->threads);
}

typedef struct col2im_job {
  const transpose_shape *s;
  const float *col, *bias;
  float *y; /* this image's group: mg planes */
} col2im_job;

static void col2im_channels(void *p, size_t begin, size_t end) {
  const col2im_job *j = p;
  const transpose_shape *s = j->s;
  const int64_t D = s->in[0], H = s->in[1], W = s->in[2];
  const int64_t OD = s->out[0], OH = s->out[1], OW = s->out[2];
  const int64_t KH = s->kernel[1], KW = s->kernel[2];
  for (size_t m = begin; m < end; m++) {
    float *y = j->y + m * s->out_size;
    float b = j->bias ? j->bias[m] : 0.0f;
    for (size_t i = 0; i < s->out_size; i++) y[i] = b;
    for (size_t tap = 0; tap < s->taps; tap++) {
      int64_t kd = (int64_t)(tap / (size_t)(KH * KW)), kh = (int64_t)(tap / (size_t)KW % (size_t)KH),
              kw = (int64_t)(tap % (size_t)KW);
      const float *col = j->col + (m * s->taps + tap) * s->in_size;
      int64_t offset_w = kw * s->dilation[2] - s->pad_begin[2], lo, hi;
      valid_range(W, s->stride[2], offset_w, OW, &lo, &hi);
      if (lo == hi) continue;
      for (int64_t id = 0; id < D; id++) {
        int64_t od = id * s->stride[0] - s->pad_begin[0] + kd * s->dilation[0];
        if (od < 0 || od >= OD) continue;
        for (int64_t ih = 0; ih < H; ih++) {
          int64_t oh = ih * s->stride[1] - s->pad_begin[1] + kh * s->dilation[1];
          if (oh < 0 || oh >= OH) continue;
          const float *from = col + (id * H + ih) * W;
          float *to = y + (od * OH + oh) * OW + (lo * s->stride[2] + offset_w);
          for (int64_t iw = lo; iw < hi; iw++) to[(iw - lo) * s->stride[2]] += from[iw];
        }
      }
    }
  }
}

static strand_status run_conv_transpose(const kernel_call *c) {
  transpose_shape s;
  strand_status st = transpose_shape_of(c, &s);
  if (st) return st;
  kernel_tensor *out = c->outputs[0];
  if (!out->count) return STRAND_OK;
  const float *x = c->inputs[0]->data, *w = c->inputs[1]->data;
  const kernel_tensor *b = kernel_input(c, 2);
  size_t cols = transpose_col_bytes(&s), rows = s.mg * s.taps;
  float *col = c->scratch;
  for (size_t n = 0; n < s.n; n++)
    for (size_t g = 0; g < s.groups; g++) {
      const float *xg = x + (n * s.c + g * s.cg) * s.in_size;
      kernel_gemm gm = {NULL, true, false, rows, s.in_size, s.cg, 1.0f, 0.0f,
                        w + g * s.cg * rows, rows ? rows : 1, xg, s.in_size ? s.in_size : 1, NULL,
                        col, s.in_size ? s.in_size : 1, NULL};
      kernel_gemm_run(&gm, c->threads, (unsigned char *)c->scratch + cols, c->scratch_size - cols);
      col2im_job j = {&s, col, b ? (const float *)b->data + g * s.mg : NULL,
                      (float *)out->data + (n * s.m + g * s.mg) * s.out_size};
      kernel_parallel(c->threads, s.mg, kernel_grain(s.taps * s.in_size + s.out_size),
                      col2im_channels, &j);
    }
  return STRAND_OK;
}

const kernel_def kernel_ConvTranspose = {"ConvTranspose", "", 1, KERNEL_OPSET_MAX, 0, 0, accepts_conv,
                                         prepare_conv_transpose, infer_conv_transpose,
                                         scratch_conv_transpose, run_conv_transpose};
