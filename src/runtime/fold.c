/*
 * fold.c — BatchNormalization folded into the Conv before it, at session
 * creation, before any kernel is prepared, so that the Conv packs the
 * folded weights once and the Relu or Clip after the BatchNormalization
 * can join the Conv as well (fuse.c).
 *
 * In inference mode BatchNormalization is y = a·x + b per channel, a =
 * scale / sqrt(var + epsilon), b = bias − mean·a. After a Conv it folds
 * into the Conv's weights and bias: W'[m] = a[m]·W[m], B'[m] = a[m]·B[m] +
 * b[m] (B 0 when the Conv has none), in double and rounded once, W' from a
 * rounded to float (the factor the BatchNormalization kernel multiplies
 * by). The results differ from Conv then BatchNormalization by rounding
 * only.
 *
 * Taken only when nothing else sees the Conv's own output: a Conv with
 * constant float32 W (and B, if any) whose one output is read by nothing
 * but a BatchNormalization (default domain, opset 7 or later, spatial, not
 * training mode, no statistics outputs) with constant float32 scale, bias,
 * mean and variance of one value per output channel, and is not a graph
 * output; and only when every folded value is finite (otherwise the
 * BatchNormalization runs as written, and gives what it gives). Graphs
 * with subgraphs are left alone, as fuse.c leaves them.
 *
 * Nothing of the graph changes (it belongs to the model): the Conv's
 * session node reads the folded W and B in place of the graph's
 * (session_node.constants, one more input when the Conv had no B) and
 * writes the BatchNormalization's output; the BatchNormalization's node is
 * marked absorbed and never bound. Once the Conv has packed W' (its 1×1,
 * few-channel and Winograd paths), W' is freed and the Conv's W input is
 * the graph's again, whose data no run reads then: only its dims, which
 * are W''s.
 */
#include "runtime/executor.h"

#include <math.h>
#include <string.h>

enum { CONV_INPUTS = 3 }; /* X, W, B */
_Static_assert(CONV_INPUTS <= SESSION_MAX_CONSTANTS, "session_node.constants holds a Conv's inputs");

static bool is_op(const graph_node *node, const char *op) {
  return !node->folded && node->domain[0] == '\0' && strcmp(node->op_type, op) == 0;
}

/* A constant float32 vector of n values, or NULL. */
static const float *constant_vector(const graph *g, int32_t v, size_t n) {
  if (v < 0 || !(g->values[v].flags & GRAPH_VALUE_CONSTANT)) return NULL;
  const onnx_tensor *t = g->values[v].constant;
  if (!t || t->dtype != STRAND_DTYPE_FLOAT32 || t->rank != 1 || t->count != n || !t->data)
    return NULL;
  return t->data;
}

/* The BatchNormalization that is the only reader of Conv node k's output,
 * or g->n_nodes. */
static size_t norm_after(const graph *g, const uint32_t *readers, size_t k) {
  const graph_node *conv = &g->nodes[k];
  if (conv->n_outputs != 1 || conv->outputs[0] < 0) return g->n_nodes;
  int32_t v = conv->outputs[0];
  if (readers[v] != 1 || (g->values[v].flags & GRAPH_VALUE_OUTPUT)) return g->n_nodes;
  for (size_t b = k + 1; b < g->n_nodes; b++) {
    const graph_node *node = &g->nodes[b];
    for (size_t i = 0; i < node->n_inputs; i++)
      if (node->inputs[i] == v)
        return i == 0 && is_op(node, "BatchNormalization") && node->n_inputs == 5 ? b : g->n_nodes;
  }
  return g->n_nodes;
}

/* Folds BatchNormalization node b into Conv node k when the rules above
 * allow; leaves both alone (STRAND_OK) when not. */
static strand_status fold_pair(strand_session *s, size_t k, size_t b) {
  const graph *g = s->graph;
  const graph_node *conv = &g->nodes[k], *norm = &g->nodes[b];
  if (conv->n_inputs < 2 || conv->n_inputs > CONV_INPUTS || conv->inputs[1] < 0 ||
      !(g->values[conv->inputs[1]].flags & GRAPH_VALUE_CONSTANT))
    return STRAND_OK;
  const onnx_tensor *w = g->values[conv->inputs[1]].constant;
  if (!w || w->dtype != STRAND_DTYPE_FLOAT32 || w->rank < 3 || w->rank > STRAND_MAX_RANK ||
      !w->count || !w->data || w->dims[0] < 1)
    return STRAND_OK;
  const size_t m = (size_t)w->dims[0];
  const float *bias = NULL;
  if (conv->n_inputs == CONV_INPUTS && conv->inputs[2] >= 0) {
    bias = constant_vector(g, conv->inputs[2], m);
    if (!bias) return STRAND_OK;
  }
  int64_t training = 0;
  float epsilon = 1e-5f;
  if (kernel_attr_int(norm, "training_mode", 0, &training) ||
      kernel_attr_float(norm, "epsilon", 1e-5f, &epsilon))
    return STRAND_OK; /* malformed attributes: the BatchNormalization kernel says so */
  /* Opsets before 7 have no kernel here (is_test, consumed_inputs): the
   * session refuses them as it would unfolded. spatial 0 (opsets 7 and 8)
   * normalizes per element, not per channel. */
  int64_t spatial = 1;
  if (norm->opset < 7 || kernel_attr_int(norm, "spatial", 1, &spatial)) return STRAND_OK;
  if (training || spatial != 1) return STRAND_OK;
  for (size_t i = 1; i < norm->n_outputs; i++)
    if (norm->outputs[i] >= 0) return STRAND_OK;
  const float *stats[4];
  for (size_t i = 0; i < 4; i++)
    if (!(stats[i] = constant_vector(g, norm->inputs[i + 1], m))) return STRAND_OK;
  const float *scale = stats[0], *shift = stats[1], *mean = stats[2], *var = stats[3];

  /* B', the per-input tensors, the scale a and the outputs in one block;
   * W' is made just before the Conv is prepared (session_fold_weights), so
   * that at most one Conv's W' exists beside the packed weights at once. */
  kernel_prepare p = {.graph = g, .node = conv, .blocks = &s->blocks};
  size_t bytes = CONV_INPUTS * sizeof(kernel_tensor) + 2 * m * sizeof(float) + sizeof(int32_t);
  unsigned char *mem;
  strand_status st = kernel_alloc(&p, bytes, STRAND_MEMORY_WEIGHTS, (void **)&mem);
  if (st) return st;
  kernel_tensor *constants = (kernel_tensor *)mem; /* 64-byte aligned first */
  float *bf = (float *)(constants + CONV_INPUTS), *af = bf + m;
  int32_t *outputs = (int32_t *)(af + m);
  for (size_t c = 0; c < m; c++) {
    double a = scale[c] / sqrt((double)var[c] + epsilon);
    af[c] = (float)a;
    bf[c] = (float)((bias ? a * bias[c] : 0.0) + (shift[c] - mean[c] * a));
    if (!isfinite(af[c]) || !isfinite(bf[c])) { /* infinite or NaN as float or before */
      kernel_free_block(&s->blocks, mem);
      return STRAND_OK;
    }
  }
  for (size_t i = 0; i < CONV_INPUTS; i++) constants[i].data = NULL;
  constants[1].dtype = STRAND_DTYPE_FLOAT32;
  constants[1].rank = w->rank;
  for (size_t d = 0; d < w->rank; d++) constants[1].dims[d] = w->dims[d];
  constants[1].count = w->count;
  constants[2].dtype = STRAND_DTYPE_FLOAT32;
  constants[2].rank = 1;
  constants[2].dims[0] = (int64_t)m;
  constants[2].count = m;
  constants[2].data = bf;
  outputs[0] = norm->outputs[0];

  session_node *sc = &s->nodes[k];
  sc->constants = constants;
  sc->fold_scale = af;
  sc->n_inputs = CONV_INPUTS;
  sc->outputs = outputs;
  s->nodes[b].absorbed = true;
  return STRAND_OK;
}

strand_status session_fold_weights(strand_session *s, size_t k) {
  session_node *sn = &s->nodes[k];
  if (!sn->fold_scale) return STRAND_OK;
  const graph *g = s->graph;
  const graph_node *conv = &g->nodes[k];
  const onnx_tensor *w = g->values[conv->inputs[1]].constant;
  const size_t m = (size_t)w->dims[0], per = w->count / m;
  kernel_prepare p = {.graph = g, .node = conv, .blocks = &s->blocks};
  float *wf;
  strand_status st = kernel_alloc(&p, w->count * sizeof(float), STRAND_MEMORY_WEIGHTS, (void **)&wf);
  if (st) return st;
  /* a·W rounded once: a is the float the BatchNormalization kernel would
   * have multiplied by, W's product taken exactly in double. */
  const float *wv = w->data;
  for (size_t c = 0; c < m; c++)
    for (size_t j = 0; j < per; j++)
      wf[c * per + j] = (float)((double)sn->fold_scale[c] * wv[c * per + j]);
  sn->constants[1].data = wf;
  return STRAND_OK;
}

void session_fold_release(strand_session *s, size_t k) {
  session_node *sn = &s->nodes[k];
  if (!sn->fold_scale || !sn->constants[1].data || kernel_conv_reads_weights(sn->params)) return;
  kernel_free_block(&s->blocks, sn->constants[1].data);
  sn->constants[1].data = NULL;
}

strand_status session_fold_norms(strand_session *s, uint32_t *readers) {
  const graph *g = s->graph;
  if (!session_count_readers(g, readers)) return STRAND_OK;
  for (size_t k = 0; k < g->n_nodes; k++) {
    if (!is_op(&g->nodes[k], "Conv")) continue;
    size_t b = norm_after(g, readers, k);
    if (b == g->n_nodes || s->nodes[b].absorbed) continue;
    strand_status st = fold_pair(s, k, b);
    if (st) return st;
  }
  return STRAND_OK;
}
