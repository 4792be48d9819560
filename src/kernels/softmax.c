/*
 * softmax.c — Softmax and LogSoftmax.
 *
 * From opset 13 the op normalizes along one axis (default -1); before, the
 * input is seen as a matrix [prod(dims[:axis]), prod(dims[axis:])] (axis
 * default 1) and each row is normalized. Both reduce to lines of `n`
 * elements `inner` apart; each line is max-shifted before exp so that
 * large inputs do not overflow.
 */
#include "kernels/kernels_internal.h"
#include "kernels/vector_math.h"

#include <math.h>

typedef struct softmax_params {
  int64_t axis;
  bool log;
} softmax_params;

static bool accepts_softmax(const strand_dtype *d, size_t n) {
  return n == 1 && kernel_dtype_in(d[0], KERNEL_DT(FLOAT32));
}

static strand_status prepare(kernel_prepare *p, void **out, bool log) {
  softmax_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  params->log = log;
  bool modern = p->node->opset < 0 || p->node->opset >= 13;
  return kernel_attr_int(p->node, "axis", modern ? -1 : 1, &params->axis);
}

static strand_status prepare_softmax(kernel_prepare *p, void **out) { return prepare(p, out, false); }
static strand_status prepare_log_softmax(kernel_prepare *p, void **out) {
  return prepare(p, out, true);
}

static strand_status infer_softmax(const kernel_call *c) {
  const softmax_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  size_t axis;
  strand_status st = kernel_axis(p->axis, x->rank ? x->rank : 1, "attribute \"axis\"", &axis);
  if (st) return st;
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, x->dims);
  return STRAND_OK;
}

typedef struct softmax_job {
  const float *x;
  float *y;
  size_t n, inner;
  bool log;
} softmax_job;

static void softmax_line_scalar(const softmax_job *j, size_t line);

static void softmax_lines(void *p, size_t begin, size_t end) {
  const softmax_job *j = p;
  const size_t n = j->n, inner = j->inner;
  if (inner == 1) {
    /* Contiguous lines: vector_math's exp, sum in float lanes. A line's
     * result depends on that line alone (not on how many lines run). */
    for (size_t line = begin; line < end; line++) {
      const float *x = j->x + line * n;
      float *y = j->y + line * n;
      if (n == 0) continue;
      if (j->log && y == x) { /* y is the exp scratch below: keep x */
        softmax_line_scalar(j, line);
        continue;
      }
      float max = strand__vec_max(x, n);
      if (isinf(max) && max < 0) max = 0; /* all -inf: exp gives 0s, not NaN */
      float sum = strand__vec_exp_shifted(y, x, n, max);
      if (j->log) {
        float log_sum = logf(sum);
        for (size_t i = 0; i < n; i++) y[i] = (x[i] - max) - log_sum;
      } else {
        strand__vec_scale(y, n, 1.0f / sum);
      }
    }
    return;
  }
  for (size_t line = begin; line < end; line++) softmax_line_scalar(j, line);
}

static void softmax_line_scalar(const softmax_job *j, size_t line) {
  const size_t n = j->n, inner = j->inner;
  {
    size_t outer = line / inner, in = line % inner;
    const float *x = j->x + outer * n * inner + in;
    float *y = j->y + outer * n * inner + in;
    float max = -INFINITY;
    for (size_t i = 0; i < n; i++)
      if (x[i * inner] > max) max = x[i * inner];
    if (isinf(max) && max < 0) max = 0; /* all -inf: exp gives 0s, not NaN */
    double sum = 0;
    if (j->log) {
      for (size_t i = 0; i < n; i++) sum += expf(x[i * inner] - max);
      float log_sum = (float)log(sum); /* (x - max) first: exact for large x */
      for (size_t i = 0; i < n; i++) y[i * inner] = (x[i * inner] - max) - log_sum;
    } else {
      for (size_t i = 0; i < n; i++) {
        float e = expf(x[i * inner] - max);
        y[i * inner] = e;
        sum += e;
      }
      float scale = (float)(1.0 / sum);
      for (size_t i = 0; i < n; i++) y[i * inner] *= scale;
    }
  }
}

static strand_status run_softmax(const kernel_call *c) {
  const softmax_params *p = c->params;
  const kernel_tensor *x = c->inputs[0];
  if (!x->count) return STRAND_OK;
  size_t axis;
  strand_status st = kernel_axis(p->axis, x->rank ? x->rank : 1, "attribute \"axis\"", &axis);
  if (st) return st;
  bool modern = c->node->opset < 0 || c->node->opset >= 13;
  size_t n = 1, inner = 1;
  for (size_t i = axis; i < x->rank; i++) {
    if (i == axis || !modern) n *= (size_t)x->dims[i];
    else inner *= (size_t)x->dims[i];
  }
  softmax_job j = {x->data, c->outputs[0]->data, n, inner, p->log};
  kernel_parallel(c->threads, x->count / n, kernel_grain(n * 24), softmax_lines, &j);
  return STRAND_OK;
}

const kernel_def kernel_Softmax = {"Softmax", "", 1, KERNEL_OPSET_MAX, 0, 0, accepts_softmax, prepare_softmax,
                                   infer_softmax, NULL, run_softmax};
const kernel_def kernel_LogSoftmax = {"LogSoftmax", "", 1, KERNEL_OPSET_MAX, 0, 0, accepts_softmax,
                                      prepare_log_softmax, infer_softmax, NULL, run_softmax};
