/*
 * normalization.c — BatchNormalization in inference mode.
 *
 * With constant scale, bias, mean and variance (the usual case) the
 * per-channel affine map y = a*x + b is computed once at session creation
 * (a = scale / sqrt(var + epsilon), b = bias - mean * a); otherwise it is
 * computed per channel at run time. Training mode is not supported.
 */
#include "kernels/kernels_internal.h"
#include "kernels/vector_math.h"

#include <math.h>

typedef struct batch_norm_params {
  float epsilon;
  float *a, *b; /* per channel, when the statistics are constants */
  size_t channels;
} batch_norm_params;

static bool accepts_batch_norm(const strand_dtype *d, size_t n) {
  return n == 5 && kernel_accepts_float32(d, n);
}

static strand_status prepare_batch_norm(kernel_prepare *p, void **out) {
  batch_norm_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  int64_t training = 0;
  st = kernel_attr_float(p->node, "epsilon", 1e-5f, &params->epsilon);
  if (!st) st = kernel_attr_int(p->node, "training_mode", 0, &training);
  if (st) return st;
  if (training)
    return strand__fail(STRAND_E_UNSUPPORTED, "attribute \"training_mode\" is %lld; strand runs "
                        "inference only", (long long)training);
  for (size_t i = 1; i < p->node->n_outputs; i++)
    if (p->node->outputs[i] >= 0)
      return strand__fail(STRAND_E_UNSUPPORTED, "output %zu (training statistics) is not "
                          "supported; strand runs inference only", i);
  const onnx_tensor *t[4];
  for (size_t k = 0; k < 4; k++) {
    t[k] = kernel_constant_input(p, k + 1);
    if (!t[k] || t[k]->dtype != STRAND_DTYPE_FLOAT32 || t[k]->rank != 1) return STRAND_OK;
    if (t[k]->count != t[0]->count) return STRAND_OK; /* infer reports it */
  }
  size_t n = t[0]->count;
  st = kernel_alloc(p, 2 * n * sizeof(float), STRAND_MEMORY_WEIGHTS, (void **)&params->a);
  if (st) return st;
  params->b = params->a + n;
  params->channels = n;
  const float *scale = t[0]->data, *bias = t[1]->data, *mean = t[2]->data, *var = t[3]->data;
  for (size_t c = 0; c < n; c++) {
    double a = scale[c] / sqrt((double)var[c] + params->epsilon);
    params->a[c] = (float)a;
    params->b[c] = (float)(bias[c] - mean[c] * a);
  }
  return STRAND_OK;
}

static strand_status infer_batch_norm(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  char sx[160], sp[160];
  if (x->rank < 2)
    return strand__fail(STRAND_E_SHAPE, "X %s must have at least 2 dimensions",
                        kernel_shape_text(x, sx, sizeof sx));
  static const char *const names[] = {"scale", "B", "input_mean", "input_var"};
  for (size_t k = 1; k < 5; k++) {
    const kernel_tensor *t = c->inputs[k];
    if (!t) return strand__fail(STRAND_E_INVALID_ARGUMENT, "input %s is absent", names[k - 1]);
    if (t->rank != 1 || t->dims[0] != x->dims[1])
      return strand__fail(STRAND_E_SHAPE, "%s %s must have X %s's %lld channels", names[k - 1],
                          kernel_shape_text(t, sp, sizeof sp), kernel_shape_text(x, sx, sizeof sx),
                          (long long)x->dims[1]);
  }
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, x->dims);
  return STRAND_OK;
}

typedef struct batch_norm_job {
  const kernel_call *c;
  size_t channels, plane;
} batch_norm_job;

static void batch_norm_planes(void *p, size_t begin, size_t end) {
  const batch_norm_job *j = p;
  const batch_norm_params *params = j->c->params;
  const float *x = j->c->inputs[0]->data;
  float *y = j->c->outputs[0]->data;
  for (size_t item = begin; item < end; item++) {
    size_t ch = item % j->channels;
    float a, b;
    if (params->a) {
      a = params->a[ch];
      b = params->b[ch];
    } else {
      const float *scale = j->c->inputs[1]->data, *bias = j->c->inputs[2]->data;
      const float *mean = j->c->inputs[3]->data, *var = j->c->inputs[4]->data;
      double ad = scale[ch] / sqrt((double)var[ch] + params->epsilon);
      a = (float)ad;
      b = (float)(bias[ch] - mean[ch] * ad);
    }
    const float *xs = x + item * j->plane;
    float *ys = y + item * j->plane;
    for (size_t i = 0; i < j->plane; i++) ys[i] = xs[i] * a + b;
  }
}

static strand_status run_batch_norm(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  if (!x->count) return STRAND_OK;
  size_t channels = (size_t)x->dims[1];
  size_t planes = (size_t)x->dims[0] * channels;
  batch_norm_job j = {c, channels, x->count / planes};
  kernel_parallel(c->threads, planes, kernel_grain(j.plane * 2), batch_norm_planes, &j);
  return STRAND_OK;
}

const kernel_def kernel_BatchNormalization = {"BatchNormalization", "", 7, KERNEL_OPSET_MAX, 0, 0,
                                              accepts_batch_norm, prepare_batch_norm,
                                              infer_batch_norm, NULL, run_batch_norm};

/* ---- LayerNormalization --------------------------------------------------------- */

/* Normalizes over the dimensions from `axis` on; Scale and B have one value
 * per normalized element (or a single one). Mean and InvStdDev, when asked
 * for, are computed too (stash_type float32). */
typedef struct layer_norm_params {
  int64_t axis;
  float epsilon;
} layer_norm_params;

static bool accepts_layer_norm(const strand_dtype *d, size_t n) {
  return n >= 2 && n <= 3 && kernel_accepts_float32(d, n);
}

static strand_status prepare_layer_norm(kernel_prepare *p, void **out) {
  layer_norm_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  int64_t stash = 1;
  st = kernel_attr_int(p->node, "axis", -1, &params->axis);
  if (!st) st = kernel_attr_float(p->node, "epsilon", 1e-5f, &params->epsilon);
  if (!st) st = kernel_attr_int(p->node, "stash_type", 1, &stash);
  if (st) return st;
  if (stash != 1)
    return strand__fail(STRAND_E_UNSUPPORTED, "attribute \"stash_type\" is %lld; strand computes "
                        "in float32 (1)", (long long)stash);
  return STRAND_OK;
}

static strand_status layer_norm_split(const kernel_call *c, size_t *rows, size_t *size,
                                      size_t *axis) {
  const layer_norm_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  strand_status st = kernel_axis(p->axis, x->rank, "attribute \"axis\"", axis);
  if (st) return st;
  *rows = 1;
  *size = 1;
  for (size_t d = 0; d < x->rank; d++) {
    if (d < *axis) *rows *= (size_t)x->dims[d];
    else *size *= (size_t)x->dims[d];
  }
  return STRAND_OK;
}

static strand_status infer_layer_norm(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  size_t rows, size, axis;
  strand_status st = layer_norm_split(c, &rows, &size, &axis);
  if (st) return st;
  char sx[160], sp[160];
  for (size_t k = 1; k < 3; k++) {
    const kernel_tensor *t = kernel_input(c, k);
    if (t && t->count != size && t->count != 1)
      return strand__fail(STRAND_E_SHAPE, "%s %s must have one value per normalized element of X "
                          "%s (%zu from axis %zu)", k == 1 ? "Scale" : "B",
                          kernel_shape_text(t, sp, sizeof sp), kernel_shape_text(x, sx, sizeof sx),
                          size, axis);
  }
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, x->dims);
  int64_t dims[STRAND_MAX_RANK];
  for (size_t d = 0; d < x->rank; d++) dims[d] = d < axis ? x->dims[d] : 1;
  for (size_t k = 1; k < 3; k++) {
    kernel_tensor *stat = kernel_output(c, k);
    if (stat) kernel_set_shape(stat, STRAND_DTYPE_FLOAT32, x->rank, dims);
  }
  return STRAND_OK;
}

typedef struct layer_norm_job {
  const kernel_call *c;
  size_t size;
  float epsilon;
} layer_norm_job;

static void layer_norm_rows(void *p, size_t begin, size_t end) {
  const layer_norm_job *j = p;
  const kernel_call *c = j->c;
  const kernel_tensor *scale = c->inputs[1], *bias = kernel_input(c, 2);
  kernel_tensor *mean_out = kernel_output(c, 1), *inv_out = kernel_output(c, 2);
  const float *s = scale->data, *b = bias ? bias->data : NULL;
  size_t ss = scale->count == 1 ? 0 : 1, bs = bias && bias->count == 1 ? 0 : 1;
  if (ss && (!b || bs) && j->size) {
    /* Full scale and bias rows: vector_math's row, which depends on the
     * row alone (float lanes; the scalar loop below sums in double). */
    for (size_t r = begin; r < end; r++) {
      float m, inv;
      strand__vec_layer_norm((float *)c->outputs[0]->data + r * j->size,
                             (const float *)c->inputs[0]->data + r * j->size, j->size, s, b,
                             j->epsilon, &m, &inv);
      if (mean_out) ((float *)mean_out->data)[r] = m;
      if (inv_out) ((float *)inv_out->data)[r] = inv;
    }
    return;
  }
  for (size_t r = begin; r < end; r++) {
    const float *x = (const float *)c->inputs[0]->data + r * j->size;
    float *y = (float *)c->outputs[0]->data + r * j->size;
    double sum = 0, squares = 0;
    for (size_t i = 0; i < j->size; i++) sum += x[i];
    double mean = j->size ? sum / (double)j->size : 0;
    for (size_t i = 0; i < j->size; i++) {
      double d = x[i] - mean;
      squares += d * d;
    }
    double var = j->size ? squares / (double)j->size : 0;
    float inv = (float)(1.0 / sqrt(var + j->epsilon)), m = (float)mean;
    for (size_t i = 0; i < j->size; i++) {
      float v = (x[i] - m) * inv * s[i * ss];
      y[i] = b ? v + b[i * bs] : v;
    }
    if (mean_out) ((float *)mean_out->data)[r] = m;
    if (inv_out) ((float *)inv_out->data)[r] = inv;
  }
}

static strand_status run_layer_norm(const kernel_call *c) {
  const layer_norm_params *p = c->params;
  size_t rows, size, axis;
  strand_status st = layer_norm_split(c, &rows, &size, &axis);
  if (st) return st;
  if (!c->outputs[0]->count && !rows) return STRAND_OK;
  layer_norm_job j = {c, size, p->epsilon};
  kernel_parallel(c->threads, rows, kernel_grain(size * 6), layer_norm_rows, &j);
  return STRAND_OK;
}

const kernel_def kernel_LayerNormalization = {"LayerNormalization", "", 17, KERNEL_OPSET_MAX, 0, 0,
                                              accepts_layer_norm, prepare_layer_norm,
                                              infer_layer_norm, NULL, run_layer_norm};

/* ---- InstanceNormalization -------------------------------------------------------- */

/* Each (image, channel) plane is normalized by its own mean and variance,
 * then scaled and shifted per channel. */
typedef struct instance_norm_params {
  float epsilon;
} instance_norm_params;

static bool accepts_instance_norm(const strand_dtype *d, size_t n) {
  return n == 3 && kernel_accepts_float32(d, n);
}

static strand_status prepare_instance_norm(kernel_prepare *p, void **out) {
  instance_norm_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  return kernel_attr_float(p->node, "epsilon", 1e-5f, &params->epsilon);
}

static strand_status infer_instance_norm(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  char sx[160], sp[160];
  if (x->rank < 3)
    return strand__fail(STRAND_E_SHAPE, "X %s must have at least 3 dimensions",
                        kernel_shape_text(x, sx, sizeof sx));
  for (size_t k = 1; k < 3; k++) {
    const kernel_tensor *t = c->inputs[k];
    if (t->rank != 1 || t->dims[0] != x->dims[1])
      return strand__fail(STRAND_E_SHAPE, "%s %s must have X %s's %lld channels",
                          k == 1 ? "scale" : "B", kernel_shape_text(t, sp, sizeof sp),
                          kernel_shape_text(x, sx, sizeof sx), (long long)x->dims[1]);
  }
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, x->dims);
  return STRAND_OK;
}

static void instance_norm_planes(void *p, size_t begin, size_t end) {
  const batch_norm_job *j = p;
  const instance_norm_params *params = j->c->params;
  const float *x = j->c->inputs[0]->data, *scale = j->c->inputs[1]->data, *bias = j->c->inputs[2]->data;
  float *y = j->c->outputs[0]->data;
  for (size_t item = begin; item < end; item++) {
    size_t ch = item % j->channels;
    const float *xs = x + item * j->plane;
    float *ys = y + item * j->plane;
    double sum = 0, squares = 0;
    for (size_t i = 0; i < j->plane; i++) sum += xs[i];
    double mean = j->plane ? sum / (double)j->plane : 0;
    for (size_t i = 0; i < j->plane; i++) squares += (xs[i] - mean) * (xs[i] - mean);
    double var = j->plane ? squares / (double)j->plane : 0;
    double a = scale[ch] / sqrt(var + params->epsilon);
    float af = (float)a, bf = (float)(bias[ch] - mean * a);
    for (size_t i = 0; i < j->plane; i++) ys[i] = xs[i] * af + bf;
  }
}

static strand_status run_instance_norm(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  if (!x->count) return STRAND_OK;
  size_t channels = (size_t)x->dims[1], planes = (size_t)x->dims[0] * channels;
  batch_norm_job j = {c, channels, x->count / planes};
  kernel_parallel(c->threads, planes, kernel_grain(j.plane * 4), instance_norm_planes, &j);
  return STRAND_OK;
}

const kernel_def kernel_InstanceNormalization = {"InstanceNormalization", "", 6, KERNEL_OPSET_MAX, 0, 0,
                                                 accepts_instance_norm, prepare_instance_norm,
                                                 infer_instance_norm, NULL, run_instance_norm};
