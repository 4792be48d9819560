/*
 * pool.c — MaxPool (with its optional Indices), AveragePool,
 * GlobalAveragePool and GlobalMaxPool over 1 to 3 spatial dimensions.
 *
 * Each (image, channel) plane is one task; a window's valid range is
 * computed per output position from the padding, so the inner loops read
 * only elements inside the input. MaxPool skips NaN as ONNX Runtime does
 * (a window of NaN only gives the lowest float).
 */
#include "kernels/kernels_internal.h"
#include "kernels/conv_depthwise.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef struct pool_params {
  kernel_window window;
  bool count_include_pad;
  bool column_major; /* MaxPool storage_order 1 */
} pool_params;

static bool accepts_pool(const strand_dtype *d, size_t n) {
  return n == 1 && kernel_dtype_in(d[0], KERNEL_DT(FLOAT32));
}

/* MaxPool also takes 8-bit integers (opset 12). */
static bool accepts_max_pool(const strand_dtype *d, size_t n) {
  return n == 1 && kernel_dtype_in(d[0], KERNEL_DT(FLOAT32) | KERNEL_DT(INT8) | KERNEL_DT(UINT8));
}

static strand_status prepare_pool(kernel_prepare *p, void **out) {
  pool_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  int64_t include = 0, order = 0;
  st = kernel_window_read(p->node, &params->window);
  if (!st) st = kernel_attr_int(p->node, "count_include_pad", 0, &include);
  if (!st) st = kernel_attr_int(p->node, "storage_order", 0, &order);
  if (st) return st;
  if (!params->window.n_kernel)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"kernel_shape\" is missing");
  params->count_include_pad = include != 0;
  params->column_major = order != 0;
  return STRAND_OK;
}

static strand_status pool_geometry(const kernel_call *c, kernel_geometry *g) {
  const pool_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  if (x->rank < 3) {
    char sx[160];
    return strand__fail(STRAND_E_SHAPE, "X %s must have at least 3 dimensions",
                        kernel_shape_text(x, sx, sizeof sx));
  }
  return kernel_window_geometry(&p->window, x->rank - 2, x->dims + 2, NULL, g);
}

static strand_status infer_pool(const kernel_call *c) {
  kernel_geometry g;
  strand_status st = pool_geometry(c, &g);
  if (st) return st;
  const kernel_tensor *x = c->inputs[0];
  int64_t dims[STRAND_MAX_RANK] = {x->dims[0], x->dims[1]};
  size_t lead = KERNEL_MAX_SPATIAL - g.spatial;
  for (size_t d = 0; d < g.spatial; d++) dims[2 + d] = g.out[lead + d];
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, dims);
  kernel_tensor *indices = kernel_output(c, 1);
  if (indices) kernel_set_shape(indices, STRAND_DTYPE_INT64, x->rank, dims);
  return STRAND_OK;
}

typedef struct pool_job {
  const pool_params *p;
  const kernel_geometry *g;
  const float *x;
  float *y;
  int64_t *indices;
  bool max;
} pool_job;

/* The taps k in [0, kernel) whose position start + k*dilation is in
 * [0, size): [*lo, *hi). */
static inline void taps(int64_t start, int64_t kernel, int64_t dilation, int64_t size, int64_t *lo,
                        int64_t *hi) {
  if (dilation == 1) { /* the common case, without divisions */
    int64_t a = start >= 0 ? 0 : -start, b = size - start;
    if (b > kernel) b = kernel;
    if (a > b) a = b < 0 ? 0 : b;
    *lo = a;
    *hi = b < a ? a : b;
    return;
  }
  int64_t a = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
  int64_t b = size - start <= 0 ? 0 : (size - start - 1) / dilation + 1;
  if (b > kernel) b = kernel;
  if (a > b) a = b;
  *lo = a;
  *hi = b;
}

/* MaxPool without indices or dilation, the common case: plain maxima over
 * each window's valid part. */
static void max_planes_simple(const pool_job *j, size_t begin, size_t end) {
  const kernel_geometry *g = j->g;
  const int64_t D = g->in[0], H = g->in[1], W = g->in[2];
  const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
  const size_t in_size = (size_t)(D * H * W), out_size = (size_t)(OD * OH * OW);
  for (size_t plane = begin; plane < end; plane++) {
    const float *x = j->x + plane * in_size;
    float *y = j->y + plane * out_size;
    for (int64_t od = 0; od < OD; od++) {
      int64_t sd = od * g->stride[0] - g->pad_begin[0], d0, d1;
      taps(sd, g->kernel[0], 1, D, &d0, &d1);
      for (int64_t oh = 0; oh < OH; oh++) {
        int64_t sh = oh * g->stride[1] - g->pad_begin[1], h0, h1;
        taps(sh, g->kernel[1], 1, H, &h0, &h1);
        float *out = y + (od * OH + oh) * OW;
        for (int64_t ow = 0; ow < OW; ow++) {
          int64_t sw = ow * g->stride[2] - g->pad_begin[2], w0, w1;
          taps(sw, g->kernel[2], 1, W, &w0, &w1);
          float best = -INFINITY;
          bool found = false; /* a value that is not NaN, as the general path */
          for (int64_t kd = d0; kd < d1; kd++)
            for (int64_t kh = h0; kh < h1; kh++) {
              const float *row = x + ((sd + kd) * H + sh + kh) * W;
              for (int64_t kw = w0; kw < w1; kw++) {
                float v = row[sw + kw];
                if (v >= best) { /* false for NaN */
                  best = v;
                  found = true;
                }
              }
            }
          out[ow] = found ? best : -FLT_MAX;
        }
      }
    }
  }
}

/* MaxPool of 1-D and 2-D planes with AVX-512 where the CPU has it and
 * the column stride is 1 or 2; false when not taken. */
static bool max_planes_simd(const pool_job *j, size_t begin, size_t end) {
  const kernel_geometry *g = j->g;
  if (g->in[0] != 1 || g->out[0] != 1 || (g->stride[2] != 1 && g->stride[2] != 2) ||
      strand__cpu()->selected < STRAND__CPU_AVX512)
    return false;
  const size_t in_size = (size_t)(g->in[1] * g->in[2]), out_size = (size_t)(g->out[1] * g->out[2]);
  conv_dw_plane p = {NULL, NULL, NULL, g->in[1], g->in[2], g->out[1], g->out[2], g->kernel[1],
                     g->kernel[2], g->stride[1], g->stride[2], g->dilation[1], g->dilation[2],
                     g->pad_begin[1], g->pad_begin[2], 0.0f, STRAND__GEMM_ACT_NONE, 0.0f, 0.0f};
  for (size_t plane = begin; plane < end; plane++) {
    p.x = j->x + plane * in_size;
    p.y = j->y + plane * out_size;
    if (!pool_max_plane_avx512(&p)) return false; /* only before the first plane */
  }
  return true;
}

static void pool_planes(void *ctx, size_t begin, size_t end) {
  const pool_job *j = ctx;
  if (j->max && !j->indices && j->g->dilation[0] == 1 && j->g->dilation[1] == 1 &&
      j->g->dilation[2] == 1) {
    if (!max_planes_simd(j, begin, end)) max_planes_simple(j, begin, end);
    return;
  }
  const kernel_geometry *g = j->g;
  const int64_t D = g->in[0], H = g->in[1], W = g->in[2];
  const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
  const size_t in_size = (size_t)(D * H * W), out_size = (size_t)(OD * OH * OW);
  for (size_t plane = begin; plane < end; plane++) {
    const float *x = j->x + plane * in_size;
    float *y = j->y + plane * out_size;
    int64_t *idx = j->indices ? j->indices + plane * out_size : NULL;
    for (int64_t od = 0; od < OD; od++) {
      int64_t sd = od * g->stride[0] - g->pad_begin[0], d0, d1;
      taps(sd, g->kernel[0], g->dilation[0], D, &d0, &d1);
      for (int64_t oh = 0; oh < OH; oh++) {
        int64_t sh = oh * g->stride[1] - g->pad_begin[1], h0, h1;
        taps(sh, g->kernel[1], g->dilation[1], H, &h0, &h1);
        for (int64_t ow = 0; ow < OW; ow++) {
          int64_t sw = ow * g->stride[2] - g->pad_begin[2], w0, w1;
          taps(sw, g->kernel[2], g->dilation[2], W, &w0, &w1);
          size_t at = (size_t)((od * OH + oh) * OW + ow);
          if (j->max) {
            float best = -FLT_MAX;
            int64_t best_at = -1;
            for (int64_t kd = d0; kd < d1; kd++)
              for (int64_t kh = h0; kh < h1; kh++) {
                int64_t id = sd + kd * g->dilation[0], ih = sh + kh * g->dilation[1];
                const float *row = x + (id * H + ih) * W;
                for (int64_t kw = w0; kw < w1; kw++) {
                  int64_t iw = sw + kw * g->dilation[2];
                  float v = row[iw];
                  if (v > best || (best_at < 0 && !isnan(v))) {
                    best = v;
                    best_at = j->p->column_major ? (iw * H + ih) * D + id : (id * H + ih) * W + iw;
                  }
                }
              }
            y[at] = best;
            if (idx) idx[at] = (int64_t)(plane * in_size) + (best_at < 0 ? 0 : best_at);
          } else {
            double sum = 0;
            for (int64_t kd = d0; kd < d1; kd++)
              for (int64_t kh = h0; kh < h1; kh++) {
                const float *row = x + ((sd + kd * g->dilation[0]) * H + sh + kh * g->dilation[1]) * W;
                for (int64_t kw = w0; kw < w1; kw++) sum += row[sw + kw * g->dilation[2]];
              }
            int64_t count = (d1 - d0) * (h1 - h0) * (w1 - w0);
            if (j->p->count_include_pad) {
              /* Taps inside the padded input (not beyond it, as ceil_mode may reach). */
              int64_t pd0, pd1, ph0, ph1, pw0, pw1;
              taps(sd + g->pad_begin[0], g->kernel[0], g->dilation[0], D + g->pad_begin[0] + g->pad_end[0], &pd0, &pd1);
              taps(sh + g->pad_begin[1], g->kernel[1], g->dilation[1], H + g->pad_begin[1] + g->pad_end[1], &ph0, &ph1);
              taps(sw + g->pad_begin[2], g->kernel[2], g->dilation[2], W + g->pad_begin[2] + g->pad_end[2], &pw0, &pw1);
              count = (pd1 - pd0) * (ph1 - ph0) * (pw1 - pw0);
            }
            y[at] = count > 0 ? (float)(sum / (double)count) : 0.0f;
          }
        }
      }
    }
  }
}

/* MaxPool over 8-bit integers: the general path's loops on T (a window
 * wholly in the padding gives T's lowest value). */
#define DEFINE_MAX_PLANES_INT(NAME, T, LOWEST)                                                   \
  static void max_planes_##NAME(const pool_job *j, const T *xs, T *ys, size_t begin,           \
                                size_t end) {                                                  \
    const kernel_geometry *g = j->g;                                                           \
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2];                                    \
    const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];                              \
    const size_t in_size = (size_t)(D * H * W), out_size = (size_t)(OD * OH * OW);             \
    for (size_t plane = begin; plane < end; plane++) {                                         \
      const T *x = xs + plane * in_size;                                                       \
      T *y = ys + plane * out_size;                                                            \
      int64_t *idx = j->indices ? j->indices + plane * out_size : NULL;                        \
      for (int64_t od = 0; od < OD; od++) {                                                    \
        int64_t sd = od * g->stride[0] - g->pad_begin[0], d0, d1;                              \
        taps(sd, g->kernel[0], g->dilation[0], D, &d0, &d1);                                   \
        for (int64_t oh = 0; oh < OH; oh++) {                                                  \
          int64_t sh = oh * g->stride[1] - g->pad_begin[1], h0, h1;                            \
          taps(sh, g->kernel[1], g->dilation[1], H, &h0, &h1);                                 \
          for (int64_t ow = 0; ow < OW; ow++) {                                                \
            int64_t sw = ow * g->stride[2] - g->pad_begin[2], w0, w1;                          \
            taps(sw, g->kernel[2], g->dilation[2], W, &w0, &w1);                               \
            size_t at = (size_t)((od * OH + oh) * OW + ow);                                    \
            T best = LOWEST;                                                                   \
            int64_t best_at = -1;                                                              \
            for (int64_t kd = d0; kd < d1; kd++)                                               \
              for (int64_t kh = h0; kh < h1; kh++) {                                           \
                int64_t id = sd + kd * g->dilation[0], ih = sh + kh * g->dilation[1];          \
                const T *row = x + (id * H + ih) * W;                                          \
                for (int64_t kw = w0; kw < w1; kw++) {                                         \
                  int64_t iw = sw + kw * g->dilation[2];                                       \
                  T v = row[iw];                                                               \
                  if (v > best || best_at < 0) {                                               \
                    best = v;                                                                  \
                    best_at = j->p->column_major ? (iw * H + ih) * D + id                      \
                                                 : (id * H + ih) * W + iw;                     \
                  }                                                                            \
                }                                                                              \
              }                                                                                \
            y[at] = best;                                                                      \
            if (idx) idx[at] = (int64_t)(plane * in_size) + (best_at < 0 ? 0 : best_at);       \
          }                                                                                    \
        }                                                                                      \
      }                                                                                        \
    }                                                                                          \
  }
DEFINE_MAX_PLANES_INT(u8, uint8_t, 0)
DEFINE_MAX_PLANES_INT(i8, int8_t, INT8_MIN)

typedef struct int_pool_job {
  pool_job base;
  strand_dtype dtype;
  const void *x;
  void *y;
} int_pool_job;

static void int_pool_planes(void *ctx, size_t begin, size_t end) {
  const int_pool_job *j = ctx;
  if (j->dtype == STRAND_DTYPE_UINT8)
    max_planes_u8(&j->base, j->x, j->y, begin, end);
  else
    max_planes_i8(&j->base, j->x, j->y, begin, end);
}

static strand_status run_pool(const kernel_call *c, bool max) {
  kernel_geometry g;
  strand_status st = pool_geometry(c, &g);
  if (st) return st;
  const kernel_tensor *x = c->inputs[0];
  kernel_tensor *y = c->outputs[0], *indices = kernel_output(c, 1);
  if (!y->count) return STRAND_OK;
  size_t window = (size_t)(g.kernel[0] * g.kernel[1] * g.kernel[2]);
  size_t per_plane = (size_t)(g.out[0] * g.out[1] * g.out[2]) * window;
  if (x->dtype == STRAND_DTYPE_UINT8 || x->dtype == STRAND_DTYPE_INT8) {
    int_pool_job ij = {{c->params, &g, NULL, NULL, indices ? indices->data : NULL, max},
                       x->dtype, x->data, y->data};
    kernel_parallel(c->threads, (size_t)(x->dims[0] * x->dims[1]), kernel_grain(per_plane),
                    int_pool_planes, &ij);
    return STRAND_OK;
  }
  pool_job j = {c->params, &g, x->data, y->data, indices ? indices->data : NULL, max};
  kernel_parallel(c->threads, (size_t)(x->dims[0] * x->dims[1]), kernel_grain(per_plane),
                  pool_planes, &j);
  return STRAND_OK;
}

static strand_status run_max_pool(const kernel_call *c) { return run_pool(c, true); }
static strand_status run_average_pool(const kernel_call *c) { return run_pool(c, false); }

const kernel_def kernel_MaxPool = {"MaxPool", "", 1, KERNEL_OPSET_MAX, 0, 0, accepts_max_pool, prepare_pool,
                                   infer_pool, NULL, run_max_pool};
const kernel_def kernel_AveragePool = {"AveragePool", "", 1, KERNEL_OPSET_MAX, 0, 0, accepts_pool, prepare_pool,
                                       infer_pool, NULL, run_average_pool};

/* ---- global pools ------------------------------------------------------------- */

static strand_status infer_global(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  if (x->rank < 3) {
    char sx[160];
    return strand__fail(STRAND_E_SHAPE, "X %s must have at least 3 dimensions",
                        kernel_shape_text(x, sx, sizeof sx));
  }
  int64_t dims[STRAND_MAX_RANK];
  for (size_t i = 0; i < x->rank; i++) dims[i] = i < 2 ? x->dims[i] : 1;
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, dims);
  return STRAND_OK;
}

typedef struct global_job {
  const float *x;
  float *y;
  size_t size;
  bool max;
} global_job;

static void global_planes(void *ctx, size_t begin, size_t end) {
  const global_job *j = ctx;
  for (size_t plane = begin; plane < end; plane++) {
    const float *x = j->x + plane * j->size;
    if (j->max) {
      float best = -FLT_MAX;
      for (size_t i = 0; i < j->size; i++)
        if (x[i] > best) best = x[i];
      j->y[plane] = best;
    } else {
      double sum = 0;
      for (size_t i = 0; i < j->size; i++) sum += x[i];
      j->y[plane] = j->size ? (float)(sum / (double)j->size) : 0.0f;
    }
  }
}

static strand_status run_global(const kernel_call *c, bool max) {
  const kernel_tensor *x = c->inputs[0];
  kernel_tensor *y = c->outputs[0];
  if (!y->count) return STRAND_OK;
  global_job j = {x->data, y->data, x->count / y->count, max};
  /* Cost 4 per element: a scalar sum in double, one dependent add each. */
  kernel_parallel(c->threads, y->count, kernel_grain(4 * j.size), global_planes, &j);
  return STRAND_OK;
}

static strand_status run_global_average(const kernel_call *c) { return run_global(c, false); }
static strand_status run_global_max(const kernel_call *c) { return run_global(c, true); }

const kernel_def kernel_GlobalAveragePool = {"GlobalAveragePool", "", 1, KERNEL_OPSET_MAX, 0, 0, accepts_pool,
                                             NULL, infer_global, NULL, run_global_average};
const kernel_def kernel_GlobalMaxPool = {"GlobalMaxPool", "", 1, KERNEL_OPSET_MAX, 0, 0, accepts_pool, NULL,
                                         infer_global, NULL, run_global_max};
