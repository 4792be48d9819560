/*
 * conv.c — Conv, and the window geometry Conv and the pools share.
 *
 * Conv picks its way per shape, at session creation where the weights are
 * constant and at each run from the shapes:
 *  - direct 1×1 (conv_pointwise.h, AVX-512): constant W at unit strides
 *    without padding in one group; X is read in place, bias and
 *    activation are applied in registers.
 *  - direct over few input channels (conv_direct.h, AVX-512): constant W
 *    with at most 4 input channels in one group, 2-D, kernels up to 3×3,
 *    column strides 1 or 2 without column dilation (a network's stem).
 *  - Winograd F(2×2, 3×3) or F(4×4, 3×3) (conv_winograd.h, AVX-512):
 *    constant finite 3×3 W at unit strides and dilations in one group, 16+
 *    channels each way; the larger blocks where the model gives an output
 *    plane that repays them (conv_winograd_tile_for).
 *  - direct depthwise: when each group has one input channel (MobileNet's
 *    depthwise layers), each output channel is a stencil over one input
 *    plane (conv_depthwise.h: AVX-512, AVX2 or portable C); on AVX-512,
 *    small 3×3 planes go 16 channels at a time, a channel per lane, with
 *    the same bits (depthwise_blocks).
 *  - im2col + GEMM otherwise: for each image and group, the input patches
 *    form a (C/group * kernel) × (output positions) matrix B, written
 *    straight into the panels the SGEMM reads (a packed B in scratch, a
 *    chunk of output rows at a time so that it stays in L2), and
 *    Y = W · B runs on the packed SGEMM split over the thread pool. A
 *    constant W is packed as the product's A once, at session creation,
 *    with a constant bias as one more column against a row of ones in B
 *    (the bias row), so that no pass fills Y with the bias first. A 1×1
 *    convolution with unit strides and no padding skips im2col: the input
 *    already is B (with a bias row only where k is small, as a copy).
 * Every path computes image n of a batch exactly as a batch of one: the
 * same operations in the same order, whatever the batch size.
 * 1-D and 2-D convolutions run as 3-D ones with leading dimensions of 1.
 */
#include "kernels/kernels_internal.h"
#include "kernels/conv_depthwise.h"
#include "kernels/conv_direct.h"
#include "kernels/conv_im2col.h"
#include "kernels/conv_pointwise.h"
#include "kernels/conv_winograd.h"

#include <math.h>
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

/* ---- Conv --------------------------------------------------------------------- */

typedef struct conv_params {
  kernel_activation activation; /* first: set by the session when it fuses */
  kernel_window window;
  int64_t group;
  /* Constant W and B as one m × (k+1) matrix, row i = W's row i then B[i]
   * (k = W's elements per output channel), when the shape makes it pay;
   * NULL otherwise. The product then runs on k+1 rows of B, the last all
   * ones, so the bias comes out of the product instead of a pass that
   * fills Y first. */
  float *wb;
  size_t wb_m, wb_k;
  /* Constant W of a shape that needs im2col (not 1×1 at unit strides
   * without padding), packed per group as the A of the product for
   * `packed_kernel` (strand__gemm_pack_a), with B as one more column when
   * B is constant float32 (the bias row, packed_bias); NULL when not. */
  float *packed_a;
  size_t packed_m, packed_k; /* packed_k: W's elements per output channel */
  bool packed_bias;
  const strand__gemm_kernel *packed_kernel;
  /* Constant 3×3 W at unit strides and dilations in one group, transformed
   * for conv_winograd_run; winograd.m 0 when not. */
  conv_winograd winograd;
  /* Constant 1×1 W (and B, if any) at unit strides without padding in one
   * group, packed for conv_pointwise_run; pointwise.m 0 when not. */
  conv_pointwise pointwise;
  bool pointwise_bias; /* B was given (and packed) */
  /* Constant W over few input channels, packed for conv_direct_run;
   * direct.m 0 when not. */
  conv_direct direct;
  bool direct_bias; /* B was given (and packed) */
  /* For paths with no packed weights: "depthwise", "1x1 gemm", "im2col",
   * or "" when W is not a constant (each run's shapes decide). */
  const char *variant;
} conv_params;

static bool accepts_conv(const strand_dtype *d, size_t n) {
  return n >= 2 && n <= 3 && kernel_accepts_float32(d, n);
}

/* True when a Conv with these attributes and this W may run as a 1×1
 * product at unit strides without padding (X then serves as B in place),
 * whatever the input's size. */
static bool unit_window(const kernel_window *win, const onnx_tensor *w) {
  for (size_t i = 2; i < w->rank; i++)
    if (w->dims[i] != 1) return false;
  for (size_t i = 0; i < win->n_strides; i++)
    if (win->strides[i] != 1) return false;
  if (win->auto_pad == KERNEL_PAD_SAME_UPPER || win->auto_pad == KERNEL_PAD_SAME_LOWER ||
      win->auto_pad == KERNEL_PAD_VALID)
    return true; /* a 1-wide window at unit stride pads nothing */
  for (size_t i = 0; i < win->n_pads; i++)
    if (win->pads[i] != 0) return false;
  return true;
}

/* True when W (constant) gives each group one input channel, 1-D or 2-D:
 * the direct depthwise path's Convs, which pack nothing. */
static bool depthwise_weights(const onnx_tensor *w, int64_t group) {
  return w->dims[1] == 1 && group > 1 && w->rank <= 4;
}

static strand_status prepare_bias_row(kernel_prepare *p, conv_params *params) {
  const onnx_tensor *w = kernel_constant_input(p, 1), *b = kernel_constant_input(p, 2);
  if (!w || !b || w->dtype != STRAND_DTYPE_FLOAT32 || b->dtype != STRAND_DTYPE_FLOAT32 ||
      w->rank < 3 || b->rank != 1 || !w->count || b->dims[0] != w->dims[0])
    return STRAND_OK; /* left to the product with a fill, or to infer's message */
  size_t m = (size_t)w->dims[0], k = w->count / m, mg = m / (size_t)params->group;
  /* Past prepare_packed_a, only a 1×1 Conv at unit strides without padding
   * comes here with a usable W. It reads X in place as B; with the bias
   * row it copies X instead (k rows against the fill's mg), so only when
   * fewer. */
  if (depthwise_weights(w, params->group) || m % (size_t)params->group ||
      !unit_window(&params->window, w) || k >= mg)
    return STRAND_OK;
  strand_status st = kernel_alloc(p, m * (k + 1) * sizeof(float), STRAND_MEMORY_WEIGHTS,
                                  (void **)&params->wb);
  if (st) return st;
  const float *wv = w->data, *bv = b->data;
  for (size_t i = 0; i < m; i++) {
    memcpy(params->wb + i * (k + 1), wv + i * k, k * sizeof(float));
    params->wb[i * (k + 1) + k] = bv[i];
  }
  params->wb_m = m;
  params->wb_k = k;
  return STRAND_OK;
}

/* W packed as the product's A for the im2col path, so that runs pack only
 * the patches (B). Taken for every constant float32 W whose window needs
 * im2col, except the depthwise shapes (their own path). */
static strand_status prepare_packed_a(kernel_prepare *p, conv_params *params) {
  const onnx_tensor *w = kernel_constant_input(p, 1), *b = kernel_constant_input(p, 2);
  if (!w || w->dtype != STRAND_DTYPE_FLOAT32 || w->rank < 3 || !w->count || !w->dims[0] ||
      unit_window(&params->window, w))
    return STRAND_OK;
  size_t m = (size_t)w->dims[0], k = w->count / m, groups = (size_t)params->group;
  if (depthwise_weights(w, params->group) || m % groups)
    return STRAND_OK; /* infer reports bad groups */
  bool bias = b && b->dtype == STRAND_DTYPE_FLOAT32 && b->rank == 1 && (size_t)b->dims[0] == m;
  size_t kb = k + bias, mg = m / groups, bytes;
  if (__builtin_mul_overflow(m, kb, &bytes) || __builtin_mul_overflow(bytes, sizeof(float), &bytes))
    return strand__fail(STRAND_E_UNSUPPORTED, "Conv weights of %zu×%zu are too large to pack", m, k);
  float *packed;
  strand_status st = kernel_alloc(p, bytes, STRAND_MEMORY_WEIGHTS, (void **)&packed);
  if (st) return st;
  const strand__gemm_kernel *kern = strand__gemm_kernel_default();
  const float *wv = w->data, *bv = bias ? b->data : NULL;
  float *rows = NULL; /* one group's W with B as its last column */
  if (bias) {
    st = strand__alloc(mg * kb * sizeof(float), STRAND_MEMORY_SCRATCH, (void **)&rows);
    if (st) return st;
  }
  for (size_t g = 0; g < groups; g++) {
    const float *a = wv + g * mg * k;
    if (bias) {
      for (size_t i = 0; i < mg; i++) {
        memcpy(rows + i * kb, a + i * k, k * sizeof(float));
        rows[i * kb + k] = bv[g * mg + i];
      }
      a = rows;
    }
    strand__gemm_pack_a(kern, mg, kb, a, kb, 0, kb, packed + g * mg * kb);
  }
  if (rows) strand__free(rows, mg * kb * sizeof(float), STRAND_MEMORY_SCRATCH);
  params->packed_a = packed;
  params->packed_m = m;
  params->packed_k = k;
  params->packed_bias = bias;
  params->packed_kernel = kern;
  return STRAND_OK;
}

static strand_status prepare_pointwise(kernel_prepare *p, conv_params *params) {
  const onnx_tensor *w = kernel_constant_input(p, 1), *b = kernel_constant_input(p, 2);
  const kernel_window *win = &params->window;
  bool has_b = kernel_has_input(p, 2);
  if (!conv_pointwise_usable() || !w || w->dtype != STRAND_DTYPE_FLOAT32 || w->rank < 3 ||
      params->group != 1 || (has_b && (!b || b->dtype != STRAND_DTYPE_FLOAT32 || b->rank != 1 ||
                                        b->dims[0] != w->dims[0])) ||
      win->auto_pad == KERNEL_PAD_SAME_UPPER || win->auto_pad == KERNEL_PAD_SAME_LOWER)
    return STRAND_OK;
  for (size_t i = 2; i < w->rank; i++)
    if (w->dims[i] != 1) return STRAND_OK;
  for (size_t i = 0; i < win->n_strides; i++)
    if (win->strides[i] != 1) return STRAND_OK;
  for (size_t i = 0; i < win->n_pads; i++)
    if (win->pads[i] != 0) return STRAND_OK;
  if (!w->dims[0] || !w->dims[1]) return STRAND_OK;
  params->pointwise_bias = has_b;
  return conv_pointwise_prepare(p, w->data, has_b ? b->data : NULL, (size_t)w->dims[0],
                                (size_t)w->dims[1], &params->pointwise);
}

static strand_status prepare_direct(kernel_prepare *p, conv_params *params) {
  const onnx_tensor *w = kernel_constant_input(p, 1), *b = kernel_constant_input(p, 2);
  const kernel_window *win = &params->window;
  bool has_b = kernel_has_input(p, 2);
  if (!conv_direct_usable() || !w || w->dtype != STRAND_DTYPE_FLOAT32 || w->rank != 4 ||
      params->group != 1 || (has_b && (!b || b->dtype != STRAND_DTYPE_FLOAT32 || b->rank != 1 ||
                                        b->dims[0] != w->dims[0])))
    return STRAND_OK;
  if (w->dims[0] < 1 || w->dims[1] < 1 || w->dims[1] > CONV_DIRECT_MAX_CHANNELS ||
      w->dims[2] < 1 || w->dims[2] > CONV_DIRECT_MAX_KERNEL || w->dims[3] < 1 ||
      w->dims[3] > CONV_DIRECT_MAX_KERNEL)
    return STRAND_OK;
  if (win->n_strides == 2 && win->strides[1] != 1 && win->strides[1] != 2) return STRAND_OK;
  if (win->n_dilations == 2 && win->dilations[1] != 1) return STRAND_OK;
  params->direct_bias = has_b;
  return conv_direct_prepare(p, w->data, has_b ? b->data : NULL, (size_t)w->dims[0],
                             (size_t)w->dims[1], (size_t)w->dims[2], (size_t)w->dims[3],
                             &params->direct);
}

/* Fewest input and output channels for the Winograd path: below, the
 * transforms cost too much next to the products. */
#define WINOGRAD_MIN_CHANNELS 16

/* The output size along spatial axis d (0 rows, 1 columns) of a 3×3 unit
 * stride window, when the model gives the input's; -1 when it does not. */
static int64_t known_out(kernel_prepare *p, const kernel_window *win, int d) {
  const graph_value *x = kernel_input_value(p, 0);
  if (x->rank != 4 || x->dims[2 + d].value < 0) return -1;
  int64_t in = x->dims[2 + d].value;
  if (win->auto_pad == KERNEL_PAD_SAME_UPPER || win->auto_pad == KERNEL_PAD_SAME_LOWER) return in;
  if (win->auto_pad == KERNEL_PAD_VALID || win->n_pads != 4) return in - 2;
  return in + win->pads[d] + win->pads[2 + d] - 2;
}

static strand_status prepare_winograd(kernel_prepare *p, conv_params *params) {
  const onnx_tensor *w = kernel_constant_input(p, 1);
  const kernel_window *win = &params->window;
  if (!conv_winograd_usable() || !w || w->dtype != STRAND_DTYPE_FLOAT32 || w->rank != 4 ||
      w->dims[2] != 3 || w->dims[3] != 3 || params->group != 1 ||
      w->dims[0] < WINOGRAD_MIN_CHANNELS || w->dims[1] < WINOGRAD_MIN_CHANNELS)
    return STRAND_OK;
  for (size_t i = 0; i < win->n_strides; i++)
    if (win->strides[i] != 1) return STRAND_OK;
  for (size_t i = 0; i < win->n_dilations; i++)
    if (win->dilations[i] != 1) return STRAND_OK;
  /* The transforms mix taps: an infinite weight would spread NaN (0·inf)
   * to outputs it does not reach; such W runs on im2col. */
  const float *wv = w->data;
  for (size_t i = 0; i < w->count; i++)
    if (!isfinite(wv[i])) return STRAND_OK;
  return conv_winograd_prepare(p, w->data, (size_t)w->dims[0], (size_t)w->dims[1],
                               conv_winograd_tile_for(known_out(p, win, 0), known_out(p, win, 1)),
                               &params->winograd);
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
  st = prepare_pointwise(p, params);
  if (st || params->pointwise.m) return st;
  st = prepare_direct(p, params);
  if (st || params->direct.m) return st;
  st = prepare_winograd(p, params);
  if (st || params->winograd.m) return st;
  st = prepare_packed_a(p, params);
  if (st || params->packed_a) return st;
  const onnx_tensor *w = kernel_constant_input(p, 1);
  params->variant = !w || w->rank < 3                                     ? ""
                    : depthwise_weights(w, params->group)                  ? "depthwise"
                    : unit_window(&params->window, w)                      ? "1x1 gemm"
                                                                           : "im2col";
  return prepare_bias_row(p, params);
}

const char *kernel_conv_variant(const void *params) {
  const conv_params *p = params;
  if (!p) return "";
  if (p->pointwise.m) return "1x1 direct";
  if (p->direct.m) return "few-channel direct";
  if (p->winograd.m) return p->winograd.tile == 4 ? "winograd 4x4" : "winograd 2x2";
  if (p->packed_a) return "im2col";
  return p->variant ? p->variant : "";
}

bool kernel_conv_reads_weights(const void *params) {
  const conv_params *p = params;
  /* Each packed path is taken by every run: its conditions are W's dims,
   * the attributes and whether B is given, all fixed at creation. */
  return !(p->pointwise.m || p->direct.m || p->winograd.m || p->packed_a);
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

/* True when the prepared 1×1 weights serve this call. */
static bool direct_pointwise(const kernel_call *c, const conv_shape *s) {
  const conv_params *p = c->params;
  return p->pointwise.m && p->pointwise.m == s->m && p->pointwise.c == s->c && s->groups == 1 &&
         pointwise(&s->geo) && p->pointwise_bias == (kernel_input(c, 2) != NULL);
}

/* True when the prepared direct weights serve this call. */
static bool direct(const kernel_call *c, const conv_shape *s) {
  const conv_params *p = c->params;
  const kernel_geometry *g = &s->geo;
  return p->direct.m && p->direct.m == s->m && p->direct.c == s->c && s->groups == 1 &&
         g->spatial == 2 && (size_t)g->kernel[1] == p->direct.kh &&
         (size_t)g->kernel[2] == p->direct.kw && (g->stride[2] == 1 || g->stride[2] == 2) &&
         g->dilation[2] == 1 && p->direct_bias == (kernel_input(c, 2) != NULL);
}

/* True when the prepared Winograd weights serve this call. */
static bool winograd(const kernel_call *c, const conv_shape *s) {
  const conv_params *p = c->params;
  const kernel_geometry *g = &s->geo;
  return p->winograd.m && p->winograd.m == s->m && p->winograd.c == s->c && s->groups == 1 &&
         g->spatial == 2 && g->kernel[1] == 3 && g->kernel[2] == 3 && g->stride[1] == 1 &&
         g->stride[2] == 1 && g->dilation[1] == 1 && g->dilation[2] == 1;
}

static conv_winograd_shape winograd_shape(const conv_shape *s) {
  const kernel_geometry *g = &s->geo;
  conv_winograd_shape w = {g->in[1], g->in[2], g->out[1], g->out[2], g->pad_begin[1],
                           g->pad_begin[2]};
  return w;
}

/* The prepared bias row when it is for this call's shapes, or NULL. */
static const float *bias_row(const kernel_call *c, const conv_shape *s) {
  const conv_params *p = c->params;
  if (!p->wb || p->wb_m != s->m || p->wb_k != s->cg * s->taps || !kernel_input(c, 2)) return NULL;
  return p->wb;
}

/* The prepared packed A when it is for this call's shapes, or NULL. */
static const float *packed_a(const kernel_call *c, const conv_shape *s) {
  const conv_params *p = c->params;
  if (!p->packed_a || p->packed_m != s->m || p->packed_k != s->cg * s->taps ||
      (size_t)p->group != s->groups || pointwise(&s->geo) ||
      (p->packed_bias && !kernel_input(c, 2)))
    return NULL;
  return p->packed_a;
}

/* With a bias row, the product's k has one more row: B's ones. */
static bool has_bias_row(const kernel_call *c, const conv_shape *s) {
  return bias_row(c, s) || (packed_a(c, s) && ((const conv_params *)c->params)->packed_bias);
}

/* The rows of B the product reads: k, plus the row of ones with a bias row. */
static size_t b_rows(const kernel_call *c, const conv_shape *s) {
  return s->cg * s->taps + (has_bias_row(c, s) ? 1 : 0);
}

/* The kernel the product runs on: packed A's, or the default. */
static const strand__gemm_kernel *product_kernel(const kernel_call *c, const conv_shape *s) {
  return packed_a(c, s) ? ((const conv_params *)c->params)->packed_kernel
                        : strand__gemm_kernel_default();
}

/* Output rows per im2col chunk: col for a chunk is meant to stay in half
 * of L2 while the product packs it, rather than go out to memory whole.
 * Only 2-D-like shapes (OD 1) are cut; the pointwise copy is never cut.
 * Depends on the shapes of one image only, so each image of a batch runs
 * the same products. */
static int64_t chunk_rows(const kernel_call *c, const conv_shape *s) {
  const int64_t OH = s->geo.out[1];
  if (pointwise(&s->geo) || s->geo.out[0] != 1) return OH;
  size_t row = b_rows(c, s) * (size_t)s->geo.out[2] * sizeof(float);
  size_t rows = strand__cpu()->l2_bytes / 2 / (row ? row : 1);
  /* Unless W is packed already, each chunk packs it again: at least 4
   * positions per output channel keep that under a quarter of the chunk's
   * own traffic. */
  size_t least = packed_a(c, s) ? 1 : (4 * s->mg + (size_t)s->geo.out[2] - 1) / (size_t)s->geo.out[2];
  if (rows < least) rows = least;
  return rows < (size_t)OH ? (int64_t)rows : OH;
}

/* Scratch for B when X cannot serve as B in place: the pointwise copy
 * (raw), or im2col's packed B of one chunk. SIZE_MAX when that overflows. */
static size_t col_bytes(const kernel_call *c, const conv_shape *s) {
  if (pointwise(&s->geo)) {
    if (!bias_row(c, s)) return 0;
    return ((b_rows(c, s) * s->out_size * sizeof(float)) + 63) & ~(size_t)63;
  }
  size_t positions = s->out_size / (size_t)s->geo.out[1] * (size_t)chunk_rows(c, s), bytes;
  if (!strand__gemm_pack_b_size(product_kernel(c, s), b_rows(c, s), positions, &bytes))
    return SIZE_MAX;
  return bytes;
}

/* Scratch for one thread making chunks alone: B's panels, then the
 * product's own (none with W packed). */
static size_t chunk_scratch(const kernel_call *c, const conv_shape *s) {
  size_t col = col_bytes(c, s), gemm;
  if (col == SIZE_MAX) return SIZE_MAX;
  gemm = packed_a(c, s) ? 0 : kernel_gemm_scratch(NULL, s->mg, s->out_size, b_rows(c, s), true, 1);
  return col + gemm < col ? SIZE_MAX : col + gemm;
}

/* How many threads make the im2col path's chunks side by side, each a
 * share of them on scratch of its own (`scratch_size` bytes in all): one
 * hand-off per image and group, and each thread's product reads the panels
 * it wrote. Taken with at least two chunks per thread; otherwise 1, and
 * each chunk is split over the threads in turn. A run may have more
 * threads than the one that planned its scratch: it takes as many parts as
 * that scratch holds. */
static size_t chunk_parts(const kernel_call *c, const conv_shape *s, size_t scratch_size) {
  const size_t threads = c->threads ? c->threads : 1;
  const int64_t OH = s->geo.out[1], step = chunk_rows(c, s);
  const size_t chunks = (size_t)((OH + step - 1) / step), each = chunk_scratch(c, s);
  size_t parts = threads > 1 && chunks >= 2 * threads ? threads : 1;
  if (parts > 1 && scratch_size / each < parts) parts = scratch_size / each;
  return parts > 1 ? parts : 1;
}

/* A depthwise plane's geometry and activation (x, w, y and bias unset). */
static conv_dw_plane depthwise_plane(const conv_params *params, const conv_shape *s) {
  const kernel_geometry *g = &s->geo;
  const kernel_activation *act = &params->activation;
  conv_dw_plane plane = {NULL, NULL, NULL, g->in[1], g->in[2], g->out[1], g->out[2],
                         g->kernel[1], g->kernel[2], g->stride[1], g->stride[2],
                         g->dilation[1], g->dilation[2], g->pad_begin[1], g->pad_begin[2],
                         0.0f, act->kind, act->lo, act->hi};
  return plane;
}

/* Blocks of 16 channels for the AVX-512 block path: the number of them
 * per image (0 when the path does not apply: another CPU, a channel
 * multiplier, fewer than 16 channels, another geometry). Split over more
 * than one thread, its unit-stride blocks took 2-3x as long each as on
 * one (MobileNetV2 at batch 1 and two threads: its 14×14 layers 0.73-0.94x
 * the per-plane path's time, its 7×7 ones 0.92-1.07x; prefetching the next
 * block's input, or its output lines for writing, changed nothing), while
 * the stride-2 one kept its gain (1.43-1.48x): with more than one thread
 * only stride 2 takes it. Slices run on one thread each. */
static size_t depthwise_blocks(const kernel_call *c, const conv_shape *s) {
  if (strand__cpu()->selected < STRAND__CPU_AVX512 || s->mg != 1 || s->geo.spatial != 2 ||
      (c->threads > 1 && s->geo.stride[1] == 1))
    return 0;
  conv_dw_plane plane = depthwise_plane(c->params, s);
  return conv_depthwise_block_fits(&plane) ? s->m / 16 : 0;
}

/* Scratch of one part of the block path: a multiple of 64 bytes. */
static size_t depthwise_block_scratch(const conv_params *params, const conv_shape *s) {
  conv_dw_plane plane = depthwise_plane(params, s);
  return (conv_depthwise_block_scratch(&plane) + 63) & ~(size_t)63;
}

/* How many parts the block path makes side by side, each on scratch of
 * its own (`each` bytes, `scratch_size` in all): two per thread, so that
 * a helper that comes late still takes a share, as the blocks and the
 * scratch the run was planned with allow. */
static size_t depthwise_block_parts_for(const kernel_call *c, const conv_shape *s, size_t blocks,
                                        size_t each, size_t scratch_size) {
  size_t parts = c->threads > 1 ? 2 * (size_t)c->threads : 1;
  if (parts > s->n * blocks) parts = s->n * blocks;
  if (parts > scratch_size / each) parts = scratch_size / each;
  return parts;
}

static size_t scratch_conv(const kernel_call *c) {
  conv_shape s;
  if (conv_shape_of(c, &s) || !c->outputs[0]->count) return 0;
  if (depthwise(&s)) {
    const size_t blocks = depthwise_blocks(c, &s);
    if (!blocks) return 0;
    const size_t each = depthwise_block_scratch(c->params, &s);
    return each * depthwise_block_parts_for(c, &s, blocks, each, SIZE_MAX);
  }
  if (direct_pointwise(c, &s) || direct(c, &s)) return 0;
  if (winograd(c, &s)) {
    conv_winograd_shape ws = winograd_shape(&s);
    return conv_winograd_scratch(&((const conv_params *)c->params)->winograd, &ws, c->threads);
  }
  size_t col = col_bytes(c, &s), k = b_rows(c, &s);
  if (col == SIZE_MAX) return SIZE_MAX;
  if (pointwise(&s.geo))
    return col + kernel_gemm_scratch(NULL, s.mg, s.out_size, k, false, c->threads);
  size_t parts = chunk_parts(c, &s, SIZE_MAX), each = chunk_scratch(c, &s), bytes;
  if (parts > 1) return __builtin_mul_overflow(each, parts, &bytes) ? SIZE_MAX : bytes;
  /* One part: each chunk's product split over the threads (none with W packed) */
  return packed_a(c, &s) ? col : col + kernel_gemm_scratch(NULL, s.mg, s.out_size, k, true, c->threads);
}

/* The im2col path for one image and group, a chunk of output rows at a
 * time: im2col into a packed B, then the product. */
typedef struct chunk_job {
  const conv_shape *s;
  const float *x; /* the image's group: cg channels */
  float *y;       /* its mg output planes */
  const float *a, *packed_a; /* W's rows of the group, or packed (then a unused) */
  size_t k;       /* B's rows */
  float beta;     /* 1 when Y holds the bias already */
  const strand__gemm_kernel *kern;
  const strand__gemm_epilogue *ep;
  int64_t step;   /* output rows per chunk */
  size_t parts;   /* chunk_parts */
  unsigned char *scratch;
  size_t each, col; /* scratch per part; its first `col` bytes hold B */
} chunk_job;

/* Output rows [oh0, oh0 + step) on up to `threads` threads, with `size`
 * bytes of scratch from `scratch` (B first). */
static void run_chunk(const chunk_job *j, int64_t oh0, unsigned threads, unsigned char *scratch,
                      size_t size) {
  const conv_shape *s = j->s;
  const int64_t OH = s->geo.out[1], oh1 = oh0 + j->step < OH ? oh0 + j->step : OH;
  const size_t row = s->out_size / (size_t)OH, positions = row * (size_t)(oh1 - oh0);
  float *panels = strand__gemm_pack_b_begin(j->kern, j->k, positions, scratch);
  conv_im2col im = {&s->geo, s->cg, s->taps, j->x, panels, j->k, j->kern->nr, positions, oh0, oh1};
  conv_im2col_run(&im, threads);
  kernel_gemm gm = {j->kern, false, false, s->mg, positions, j->k, 1.0f, j->beta, j->a,
                    j->k ? j->k : 1, NULL, 0, scratch, j->y + row * (size_t)oh0, s->out_size,
                    j->ep, j->packed_a};
  kernel_gemm_run(&gm, threads, scratch + j->col, size - j->col);
}

/* strand__parallel_for: part `part`'s share of the chunks, on one thread. */
static void chunk_part(void *p, size_t part) {
  const chunk_job *j = p;
  const size_t chunks = (size_t)((j->s->geo.out[1] + j->step - 1) / j->step);
  for (size_t i = chunks * part / j->parts; i < chunks * (part + 1) / j->parts; i++)
    run_chunk(j, (int64_t)i * j->step, 1, j->scratch + part * j->each, j->each);
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
  const conv_params *params;
  const conv_shape *s;
  const float *x, *w, *bias;
  float *y;
  bool (*simd)(const conv_dw_plane *p); /* NULL: the portable version */
} depthwise_job;

/* Output planes (image n, channel m) for items [begin, end) of n*m. */
static void depthwise_planes(const depthwise_job *j, size_t begin, size_t end) {
  const conv_shape *s = j->s;
  conv_dw_plane plane = depthwise_plane(j->params, s);
  for (size_t item = begin; item < end; item++) {
    size_t n = item / s->m, m = item % s->m, ch = m / s->mg;
    plane.x = j->x + (n * s->c + ch) * s->in_size;
    plane.w = j->w + m * s->taps;
    plane.y = j->y + item * s->out_size;
    plane.bias = j->bias ? j->bias[m] : 0.0f;
    if (!j->simd || !j->simd(&plane)) conv_depthwise_plane_scalar(&plane);
  }
}

static void depthwise_channels(void *p, size_t begin, size_t end) {
  depthwise_planes(p, begin, end);
}

/* The block path: `parts` parts, each a share of the n × blocks blocks on
 * scratch of its own. */
typedef struct depthwise_block_job {
  const depthwise_job *planes;
  size_t blocks, parts, each;
  unsigned char *scratch;
} depthwise_block_job;

static void depthwise_block_parts(void *p, size_t begin, size_t end) {
  const depthwise_block_job *b = p;
  const depthwise_job *j = b->planes;
  const conv_shape *s = j->s;
  conv_dw_plane plane = depthwise_plane(j->params, s);
  const size_t items = s->n * b->blocks;
  for (size_t part = begin; part < end; part++) {
    for (size_t item = items * part / b->parts; item < items * (part + 1) / b->parts; item++) {
      size_t n = item / b->blocks, m = item % b->blocks * 16;
      plane.x = j->x + (n * s->c + m) * s->in_size;
      plane.w = j->w + m * s->taps;
      plane.y = j->y + (n * s->m + m) * s->out_size;
      conv_depthwise_block_avx512(&plane, s->in_size, s->out_size, j->bias ? j->bias + m : NULL,
                                  b->scratch + part * b->each);
    }
  }
}

/* The SIMD depthwise plane for this CPU, or NULL. */
static bool (*depthwise_simd(void))(const conv_dw_plane *) {
  strand__cpu_level level = strand__cpu()->selected;
  if (level >= STRAND__CPU_AVX512) return conv_depthwise_plane_avx512;
  if (level >= STRAND__CPU_AVX2) return conv_depthwise_plane_avx2;
  return NULL;
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
    depthwise_job j = {c->params, &s, x, w, bias, y, depthwise_simd()};
    const size_t blocks = depthwise_blocks(c, &s);
    const size_t each = blocks ? depthwise_block_scratch(c->params, &s) : 0;
    if (blocks && c->scratch_size >= each) {
      const size_t parts = depthwise_block_parts_for(c, &s, blocks, each, c->scratch_size);
      depthwise_block_job bj = {&j, blocks, parts, each, c->scratch};
      kernel_parallel(c->threads, parts, 1, depthwise_block_parts, &bj);
      /* The channels past the last block (MobileNets have none), on the
       * calling thread. */
      if (s.m % 16)
        for (size_t n = 0; n < s.n; n++) depthwise_planes(&j, n * s.m + blocks * 16, (n + 1) * s.m);
      return STRAND_OK;
    }
    kernel_parallel(c->threads, s.n * s.m, kernel_grain(s.out_size * s.taps), depthwise_channels, &j);
    return STRAND_OK;
  }
  if (direct_pointwise(c, &s)) {
    const conv_params *p = c->params;
    conv_pointwise_run(&p->pointwise, x, s.n, s.out_size, &p->activation, y, c->threads);
    return STRAND_OK;
  }
  if (direct(c, &s)) {
    const conv_params *p = c->params;
    const kernel_geometry *g = &s.geo;
    conv_direct_shape ds = {g->in[1], g->in[2], g->out[1], g->out[2], g->stride[1], g->stride[2],
                            g->dilation[1], g->pad_begin[1], g->pad_begin[2]};
    conv_direct_run(&p->direct, &ds, x, s.n, &p->activation, y, c->threads);
    return STRAND_OK;
  }
  if (winograd(c, &s)) {
    const conv_params *p = c->params;
    conv_winograd_shape ws = winograd_shape(&s);
    for (size_t n = 0; n < s.n; n++)
      conv_winograd_run(&p->winograd, &ws, x + n * s.c * s.in_size, bias, &p->activation,
                        y + n * s.m * s.out_size, c->threads, c->scratch, c->scratch_size);
    return STRAND_OK;
  }
  const float *wb = bias_row(c, &s), *pa = packed_a(c, &s);
  const bool ones = has_bias_row(c, &s);
  size_t k = b_rows(c, &s), cols = col_bytes(c, &s);
  float *col = cols ? c->scratch : NULL;
  unsigned char *gemm_scratch = (unsigned char *)c->scratch + cols;
  const conv_params *p = c->params;
  const strand__gemm_kernel *kern = product_kernel(c, &s);
  strand__gemm_epilogue ep = {NULL, p->activation.kind, p->activation.lo, p->activation.hi};
  size_t gemm_scratch_size = c->scratch_size - cols;
  for (size_t n = 0; n < s.n; n++) {
    for (size_t g = 0; g < s.groups; g++) {
      const float *xg = x + (n * s.c + g * s.cg) * s.in_size;
      float *yg = y + (n * s.m + g * s.mg) * s.out_size;
      if (bias && !ones) {
        fill_job f = {yg, bias + g * s.mg, s.out_size};
        kernel_parallel(c->threads, s.mg, kernel_grain(s.out_size), fill_rows, &f);
      }
      const float *a = wb ? wb + g * s.mg * k : w + g * s.mg * k;
      if (!pointwise(&s.geo)) {
        chunk_job j = {&s, xg, yg, a, pa ? pa + g * s.mg * k : NULL, k,
                       bias && !ones ? 1.0f : 0.0f, kern, p->activation.kind ? &ep : NULL,
                       chunk_rows(c, &s), chunk_parts(c, &s, c->scratch_size), c->scratch,
                       c->scratch_size, cols};
        if (j.parts > 1) {
          j.each = chunk_scratch(c, &s); /* a multiple of 64 */
          strand__parallel_for(j.parts, chunk_part, &j, c->threads);
        } else {
          for (int64_t oh0 = 0; oh0 < s.geo.out[1]; oh0 += j.step)
            run_chunk(&j, oh0, c->threads, c->scratch, c->scratch_size);
        }
        continue;
      }
      const float *bmat = xg;
      if (col) { /* pointwise with the bias row: X copied, then the ones */
        memcpy(col, xg, s.cg * s.in_size * sizeof(float));
        float *unit = col + (k - 1) * s.out_size;
        for (size_t i = 0; i < s.out_size; i++) unit[i] = 1.0f;
        bmat = col;
      }
      kernel_gemm gm = {NULL, false, false, s.mg, s.out_size, k, 1.0f, bias && !ones ? 1.0f : 0.0f,
                        a, k ? k : 1, bmat, s.out_size, NULL, yg, s.out_size,
                        p->activation.kind ? &ep : NULL, NULL};
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
      conv_tap_range(W, s->stride[2], offset_w, OW, &lo, &hi);
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
                        col, s.in_size ? s.in_size : 1, NULL, NULL};
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
