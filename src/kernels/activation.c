/*
 * activation.c — pointwise activations: Relu, LeakyRelu, Sigmoid, Tanh,
 * Clip, HardSigmoid, HardSwish, Elu, Selu, Softplus, Gelu, and PRelu (whose
 * slope broadcasts into the input).
 *
 * Attributes are read once at prepare into an act_params; Clip's bounds
 * (inputs since opset 11) are read at run time.
 */
#include "kernels/kernels_internal.h"
#include "kernels/vector_math.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef enum act_kind {
  ACT_RELU, ACT_LEAKY_RELU, ACT_SIGMOID, ACT_TANH, ACT_CLIP, ACT_HARD_SIGMOID, ACT_HARD_SWISH,
  ACT_ELU, ACT_SELU, ACT_SOFTPLUS, ACT_GELU, ACT_GELU_TANH
} act_kind;

typedef struct act_params {
  act_kind kind;
  double alpha, beta, gamma;
} act_params;

typedef struct act_job {
  act_params p;
  strand_dtype dtype;
  const void *in;
  void *out;
  double lo, hi; /* Clip */
} act_job;

static inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

static inline float sigmoidf(float x) {
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

static inline double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static inline float softplusf(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

#define GELU_K 0.70710678118654752440     /* 1 / sqrt(2) */
#define GELU_TANH_K 0.79788456080286535588 /* sqrt(2 / pi) */

/* One function per element type; T is float or double, F the math suffix. */
#define ACT_RANGE(NAME, T, SIG, SOFTPLUS, EXP, TANH, ERF)                                 \
  static void NAME(const act_job *j, size_t begin, size_t end) {                          \
    const T *x = j->in;                                                                   \
    T *y = j->out;                                                                        \
    const T alpha = (T)j->p.alpha, beta = (T)j->p.beta, gamma = (T)j->p.gamma;            \
    switch (j->p.kind) {                                                                  \
    case ACT_RELU:                                                                        \
      for (size_t i = begin; i < end; i++) y[i] = x[i] < 0 ? (T)0 : x[i];                 \
      break;                                                                              \
    case ACT_LEAKY_RELU:                                                                  \
      for (size_t i = begin; i < end; i++) y[i] = x[i] < 0 ? alpha * x[i] : x[i];         \
      break;                                                                              \
    case ACT_SIGMOID:                                                                     \
      for (size_t i = begin; i < end; i++) y[i] = SIG(x[i]);                              \
      break;                                                                              \
    case ACT_TANH:                                                                        \
      for (size_t i = begin; i < end; i++) y[i] = TANH(x[i]);                             \
      break;                                                                              \
    case ACT_CLIP: {                                                                      \
      const T lo = (T)j->lo, hi = (T)j->hi; /* min(max(x, lo), hi): hi wins if lo > hi */ \
      for (size_t i = begin; i < end; i++) {                                              \
        T v = x[i] < lo ? lo : x[i];                                                      \
        y[i] = v > hi ? hi : v;                                                           \
      }                                                                                   \
      break;                                                                              \
    }                                                                                     \
    case ACT_HARD_SIGMOID:                                                                \
      for (size_t i = begin; i < end; i++) {                                              \
        T v = alpha * x[i] + beta;                                                        \
        y[i] = v < 0 ? (T)0 : v > 1 ? (T)1 : v;                                          \
      }                                                                                   \
      break;                                                                              \
    case ACT_HARD_SWISH:                                                                  \
      for (size_t i = begin; i < end; i++) {                                              \
        T v = x[i] / (T)6 + (T)0.5;                                                       \
        y[i] = x[i] * (v < 0 ? (T)0 : v > 1 ? (T)1 : v);                                  \
      }                                                                                   \
      break;                                                                              \
    case ACT_ELU:                                                                         \
      for (size_t i = begin; i < end; i++) y[i] = x[i] < 0 ? alpha * (EXP(x[i]) - 1) : x[i]; \
      break;                                                                              \
    case ACT_SELU:                                                                        \
      for (size_t i = begin; i < end; i++)                                                \
        y[i] = gamma * (x[i] <= 0 ? alpha * EXP(x[i]) - alpha : x[i]);                    \
      break;                                                                              \
    case ACT_SOFTPLUS:                                                                    \
      for (size_t i = begin; i < end; i++) y[i] = SOFTPLUS(x[i]);                         \
      break;                                                                              \
    case ACT_GELU:                                                                        \
      for (size_t i = begin; i < end; i++)                                                \
        y[i] = (T)0.5 * x[i] * ((T)1 + ERF(x[i] * (T)GELU_K));                            \
      break;                                                                              \
    case ACT_GELU_TANH:                                                                   \
      for (size_t i = begin; i < end; i++) {                                              \
        T v = x[i];                                                                       \
        y[i] = (T)0.5 * v * ((T)1 + TANH((T)GELU_TANH_K * (v + (T)0.044715 * v * v * v))); \
      }                                                                                   \
      break;                                                                              \
    }                                                                                     \
  }

ACT_RANGE(act_float, float, sigmoidf, softplusf, expf, tanhf, erff)
ACT_RANGE(act_double, double, sigmoid, softplus, exp, tanh, erf)

#define INT_ACT_RANGE(NAME, T)                                                          \
  static void NAME(const act_job *j, size_t begin, size_t end) {                        \
    const T *x = j->in;                                                                 \
    T *y = j->out;                                                                      \
    if (j->p.kind == ACT_RELU) {                                                        \
      for (size_t i = begin; i < end; i++) y[i] = x[i] < 0 ? (T)0 : x[i];               \
    } else if (j->p.kind == ACT_CLIP) {                                                 \
      for (size_t i = begin; i < end; i++) {                                            \
        T v = (double)x[i] < j->lo ? (T)j->lo : x[i];                                   \
        y[i] = (double)v > j->hi ? (T)j->hi : v;                                        \
      }                                                                                 \
    }                                                                                   \
  }
INT_ACT_RANGE(act_int8, int8_t)
INT_ACT_RANGE(act_int16, int16_t)
INT_ACT_RANGE(act_int32, int32_t)
INT_ACT_RANGE(act_int64, int64_t)

static void act_range(void *p, size_t begin, size_t end) {
  const act_job *j = p;
  if (j->dtype == STRAND_DTYPE_FLOAT32) {
    const float *x = (const float *)j->in + begin;
    float *y = (float *)j->out + begin;
    switch (j->p.kind) {
    case ACT_RELU: strand__vec_relu(y, x, end - begin); return;
    case ACT_SIGMOID: strand__vec_sigmoid(y, x, end - begin); return;
    case ACT_TANH: strand__vec_tanh(y, x, end - begin); return;
    default: break;
    }
  }
  switch (j->dtype) {
  case STRAND_DTYPE_FLOAT32: act_float(j, begin, end); break;
  case STRAND_DTYPE_FLOAT64: act_double(j, begin, end); break;
  case STRAND_DTYPE_INT8: act_int8(j, begin, end); break;
  case STRAND_DTYPE_INT16: act_int16(j, begin, end); break;
  case STRAND_DTYPE_INT32: act_int32(j, begin, end); break;
  case STRAND_DTYPE_INT64: act_int64(j, begin, end); break;
  default: break;
  }
}

static strand_status infer_same(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, x->dims);
  return STRAND_OK;
}

static size_t act_cost(act_kind kind) {
  switch (kind) {
  case ACT_RELU: case ACT_LEAKY_RELU: case ACT_CLIP: case ACT_HARD_SIGMOID: case ACT_HARD_SWISH:
    return 1;
  default: return 16;
  }
}

static strand_status run_act(const kernel_call *c) {
  const act_params *p = c->params;
  act_job j = {*p, c->inputs[0]->dtype, c->inputs[0]->data, c->outputs[0]->data, 0, 0};
  kernel_parallel(c->threads, c->outputs[0]->count, kernel_grain(act_cost(p->kind)), act_range, &j);
  return STRAND_OK;
}

static strand_status new_params(kernel_prepare *p, act_kind kind, void **out, act_params **params) {
  strand_status st = kernel_alloc(p, sizeof(act_params), STRAND_MEMORY_OTHER, out);
  if (st) return st;
  *params = *out;
  (*params)->kind = kind;
  return STRAND_OK;
}

static strand_status prepare_simple(kernel_prepare *p, void **out, act_kind kind) {
  act_params *params;
  return new_params(p, kind, out, &params);
}

static strand_status prepare_alpha(kernel_prepare *p, void **out, act_kind kind, float alpha,
                                   float beta) {
  act_params *params;
  strand_status st = new_params(p, kind, out, &params);
  float a, b;
  if (!st) st = kernel_attr_float(p->node, "alpha", alpha, &a);
  if (!st) st = kernel_attr_float(p->node, "beta", beta, &b);
  if (st) return st;
  params->alpha = a;
  params->beta = b;
  return STRAND_OK;
}

static strand_status prepare_relu(kernel_prepare *p, void **out) {
  return prepare_simple(p, out, ACT_RELU);
}
static strand_status prepare_sigmoid(kernel_prepare *p, void **out) {
  return prepare_simple(p, out, ACT_SIGMOID);
}
static strand_status prepare_tanh(kernel_prepare *p, void **out) {
  return prepare_simple(p, out, ACT_TANH);
}
static strand_status prepare_hard_swish(kernel_prepare *p, void **out) {
  return prepare_simple(p, out, ACT_HARD_SWISH);
}
static strand_status prepare_softplus(kernel_prepare *p, void **out) {
  return prepare_simple(p, out, ACT_SOFTPLUS);
}
static strand_status prepare_leaky_relu(kernel_prepare *p, void **out) {
  return prepare_alpha(p, out, ACT_LEAKY_RELU, 0.01f, 0);
}
static strand_status prepare_hard_sigmoid(kernel_prepare *p, void **out) {
  return prepare_alpha(p, out, ACT_HARD_SIGMOID, 0.2f, 0.5f);
}
static strand_status prepare_elu(kernel_prepare *p, void **out) {
  return prepare_alpha(p, out, ACT_ELU, 1.0f, 0);
}

static strand_status prepare_selu(kernel_prepare *p, void **out) {
  act_params *params;
  strand_status st = new_params(p, ACT_SELU, out, &params);
  float alpha, gamma;
  if (!st) st = kernel_attr_float(p->node, "alpha", 1.67326319217681884765625f, &alpha);
  if (!st) st = kernel_attr_float(p->node, "gamma", 1.05070102214813232421875f, &gamma);
  if (st) return st;
  params->alpha = alpha;
  params->gamma = gamma;
  return STRAND_OK;
}

static strand_status prepare_gelu(kernel_prepare *p, void **out) {
  act_params *params;
  const char *approximate;
  strand_status st = new_params(p, ACT_GELU, out, &params);
  if (!st) st = kernel_attr_string(p->node, "approximate", "none", &approximate);
  if (st) return st;
  if (strcmp(approximate, "tanh") == 0) params->kind = ACT_GELU_TANH;
  else if (strcmp(approximate, "none") != 0)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"approximate\" is \"%s\"; expected "
                        "\"none\" or \"tanh\"", approximate);
  return STRAND_OK;
}

static bool accepts_float(const strand_dtype *d, size_t n) {
  return n >= 1 && kernel_dtype_in(d[0], KERNEL_DT_FLOATS);
}

static bool accepts_relu(const strand_dtype *d, size_t n) {
  return n == 1 && kernel_dtype_in(d[0], KERNEL_DT_FLOATS | KERNEL_DT_SIGNED_INTS);
}

#define ACT_DEF(ID, OPSET_MIN, ACCEPTS, PREPARE)                                      \
  const kernel_def kernel_##ID = {#ID, "", OPSET_MIN, KERNEL_OPSET_MAX, 0, 0, ACCEPTS, PREPARE, \
                                  infer_same, NULL, run_act};
ACT_DEF(Relu, 6, accepts_relu, prepare_relu)
ACT_DEF(LeakyRelu, 6, accepts_float, prepare_leaky_relu)
ACT_DEF(Sigmoid, 6, accepts_float, prepare_sigmoid)
ACT_DEF(Tanh, 6, accepts_float, prepare_tanh)
ACT_DEF(HardSigmoid, 6, accepts_float, prepare_hard_sigmoid)
ACT_DEF(HardSwish, 14, accepts_float, prepare_hard_swish)
ACT_DEF(Elu, 6, accepts_float, prepare_elu)
ACT_DEF(Selu, 6, accepts_float, prepare_selu)
ACT_DEF(Softplus, 1, accepts_float, prepare_softplus)
ACT_DEF(Gelu, 20, accepts_float, prepare_gelu)

/* ---- Clip ------------------------------------------------------------------------ */

static bool accepts_clip(const strand_dtype *d, size_t n) {
  if (n < 1 || !kernel_dtype_in(d[0], KERNEL_DT_FLOATS | KERNEL_DT_SIGNED_INTS)) return false;
  for (size_t i = 1; i < n; i++)
    if (!kernel_dtype_same(d[0], d[i])) return false;
  return true;
}

static strand_status prepare_clip(kernel_prepare *p, void **out) {
  act_params *params;
  strand_status st = new_params(p, ACT_CLIP, out, &params);
  if (st) return st;
  if (p->node->opset >= 11 || p->node->opset < 0) return STRAND_OK;
  float lo, hi;
  st = kernel_attr_float(p->node, "min", -FLT_MAX, &lo);
  if (!st) st = kernel_attr_float(p->node, "max", FLT_MAX, &hi);
  if (st) return st;
  params->alpha = lo;
  params->beta = hi;
  return STRAND_OK;
}

static strand_status infer_clip(const kernel_call *c) {
  for (size_t k = 1; k < 3; k++) {
    const kernel_tensor *t = kernel_input(c, k);
    if (t && t->count != 1)
      return strand__fail(STRAND_E_SHAPE, "input %zu (%s) has %zu elements; expected a scalar", k,
                          k == 1 ? "min" : "max", t->count);
  }
  return infer_same(c);
}

static double lowest(strand_dtype dtype) {
  switch (dtype) {
  case STRAND_DTYPE_FLOAT32: return -FLT_MAX;
  case STRAND_DTYPE_INT8: return INT8_MIN;
  case STRAND_DTYPE_INT16: return INT16_MIN;
  case STRAND_DTYPE_INT32: return INT32_MIN;
  case STRAND_DTYPE_INT64: return (double)INT64_MIN;
  default: return -DBL_MAX;
  }
}

static double highest(strand_dtype dtype) {
  switch (dtype) {
  case STRAND_DTYPE_FLOAT32: return FLT_MAX;
  case STRAND_DTYPE_INT8: return INT8_MAX;
  case STRAND_DTYPE_INT16: return INT16_MAX;
  case STRAND_DTYPE_INT32: return INT32_MAX;
  case STRAND_DTYPE_INT64: return 9223372036854774784.0; /* the largest double below 2^63 */
  default: return DBL_MAX;
  }
}

static strand_status run_clip(const kernel_call *c) {
  const act_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  act_job j = {*p, x->dtype, x->data, c->outputs[0]->data, lowest(x->dtype), highest(x->dtype)};
  if (c->node->opset >= 0 && c->node->opset < 11) {
    j.lo = p->alpha;
    j.hi = p->beta;
  } else {
    const kernel_tensor *lo = kernel_input(c, 1), *hi = kernel_input(c, 2);
    if (lo) j.lo = kernel_number_at(lo->data, lo->dtype, 0);
    if (hi) j.hi = kernel_number_at(hi->data, hi->dtype, 0);
  }
  kernel_parallel(c->threads, c->outputs[0]->count, kernel_grain(1), act_range, &j);
  return STRAND_OK;
}

const kernel_def kernel_Clip = {"Clip", "", 6, KERNEL_OPSET_MAX, 0, 0, accepts_clip, prepare_clip, infer_clip,
                                NULL, run_clip};

/* ---- PRelu ---------------------------------------------------------------------------- */

typedef struct prelu_job {
  strand_dtype dtype;
  const void *x, *slope;
  void *out;
} prelu_job;

static void prelu_span(void *ctx, size_t n, const size_t *offsets, size_t out_offset,
                       const kernel_broadcast *b) {
  const prelu_job *j = ctx;
  size_t last = b->rank - 1, sx = b->strides[0][last], ss = b->strides[1][last];
  if (j->dtype == STRAND_DTYPE_FLOAT32) {
    const float *x = (const float *)j->x + offsets[0], *s = (const float *)j->slope + offsets[1];
    float *y = (float *)j->out + out_offset;
    for (size_t i = 0; i < n; i++) {
      float v = x[i * sx];
      y[i] = v < 0 ? v * s[i * ss] : v;
    }
  } else {
    const double *x = (const double *)j->x + offsets[0], *s = (const double *)j->slope + offsets[1];
    double *y = (double *)j->out + out_offset;
    for (size_t i = 0; i < n; i++) {
      double v = x[i * sx];
      y[i] = v < 0 ? v * s[i * ss] : v;
    }
  }
}

static bool accepts_prelu(const strand_dtype *d, size_t n) {
  return n == 2 && kernel_dtype_in(d[0], KERNEL_DT_FLOATS) && kernel_dtype_same(d[0], d[1]);
}

static strand_status infer_prelu(const kernel_call *c) {
  int64_t dims[STRAND_MAX_RANK];
  size_t rank;
  strand_status st = kernel_broadcast_shape(c->inputs, 2, dims, &rank);
  if (st) return st;
  const kernel_tensor *x = c->inputs[0];
  bool same = rank == x->rank;
  for (size_t i = 0; i < rank && same; i++) same = dims[i] == x->dims[i];
  if (!same) {
    char a[160], b[160];
    return strand__fail(STRAND_E_SHAPE, "slope %s does not broadcast into X %s",
                        kernel_shape_text(c->inputs[1], a, sizeof a),
                        kernel_shape_text(x, b, sizeof b));
  }
  return infer_same(c);
}

static strand_status run_prelu(const kernel_call *c) {
  kernel_tensor *out = c->outputs[0];
  if (!out->count) return STRAND_OK;
  kernel_broadcast b;
  kernel_broadcast_init(&b, out, c->inputs, 2);
  prelu_job j = {out->dtype, c->inputs[0]->data, c->inputs[1]->data, out->data};
  kernel_broadcast_run(c->threads, &b, 1, prelu_span, &j);
  return STRAND_OK;
}

const kernel_def kernel_PRelu = {"PRelu", "", 7, KERNEL_OPSET_MAX, 0, 0, accepts_prelu, NULL, infer_prelu,
                                 NULL, run_prelu};

/* ---- fusion into a producer --------------------------------------------------------- */

bool kernel_fusable_activation(const graph *g, const graph_node *node, kernel_activation *out) {
  if (node->domain[0] || node->n_inputs < 1 || node->inputs[0] < 0 || node->n_outputs < 1 ||
      node->outputs[0] < 0 || g->values[node->inputs[0]].dtype != STRAND_DTYPE_FLOAT32)
    return false;
  if (strcmp(node->op_type, "Relu") == 0) {
    *out = (kernel_activation){STRAND__GEMM_ACT_RELU, 0, 0};
    return true;
  }
  if (strcmp(node->op_type, "Clip") != 0) return false;
  float lo = -FLT_MAX, hi = FLT_MAX;
  if (node->opset >= 0 && node->opset < 11) {
    if (kernel_attr_float(node, "min", -FLT_MAX, &lo) || kernel_attr_float(node, "max", FLT_MAX, &hi))
      return false;
  } else {
    for (size_t k = 1; k < node->n_inputs && k < 3; k++) {
      if (node->inputs[k] < 0) continue;
      const graph_value *v = &g->values[node->inputs[k]];
      if (!(v->flags & GRAPH_VALUE_CONSTANT) || !v->constant || v->constant->count != 1 ||
          v->constant->dtype != STRAND_DTYPE_FLOAT32)
        return false;
      float bound = *(const float *)v->constant->data;
      if (k == 1) lo = bound;
      else hi = bound;
    }
  }
  if (!(lo <= hi)) return false; /* NaN bounds, or lo > hi: leave it to the Clip kernel */
  *out = (kernel_activation){STRAND__GEMM_ACT_CLIP, lo, hi};
  return true;
}

void kernel_activate(const kernel_activation *act, float *x, size_t n) {
  if (act->kind == STRAND__GEMM_ACT_RELU) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] < 0 ? 0 : x[i];
  } else if (act->kind == STRAND__GEMM_ACT_CLIP) {
    const float lo = act->lo, hi = act->hi;
    for (size_t i = 0; i < n; i++) x[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
  }
}
