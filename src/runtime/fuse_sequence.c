/*
 * fuse_sequence.c — session-creation rewrites for sequence models
 * (attention, normalization, recurrent layers). See fuse.c for the rules
 * every rewrite follows.
 *
 * MatMul + Add (+ Relu/Clip): a MatMul with a constant B whose output is
 * read only by an Add of a constant row (n floats, any leading 1s: the
 * bias of a Linear layer, as PyTorch exports it at rank > 2) adds the bias
 * in its epilogue, and applies a Relu or Clip that is the Add's only
 * reader too. The absorbed nodes are dropped; the MatMul writes the last
 * one's output, whose shape is the MatMul's (the bias broadcasts into it
 * without growing it). Float addition commutes, so Add(bias, x) and
 * Add(x, bias) both qualify and give the bits the unfused graph gives.
 */
#include "runtime/executor.h"

#include "kernels/matmul_fuse.h"

#include <string.h>

static bool is_op(const session_node *sn, const graph_node *node, const char *op) {
  return sn->kernel && strcmp(node->op_type, op) == 0 && node->domain[0] == '\0';
}

/* The node after `after` whose first input, or any input, is value v. */
static size_t reader_of(const graph *g, size_t after, int32_t v) {
  for (size_t c = after + 1; c < g->n_nodes; c++)
    for (size_t i = 0; i < g->nodes[c].n_inputs; i++)
      if (g->nodes[c].inputs[i] == v) return c;
  return g->n_nodes;
}

/* A float32 constant of n elements whose dims are all 1 but the last. */
static const float *bias_row(const graph *g, int32_t v, size_t n) {
  if (v < 0 || !(g->values[v].flags & GRAPH_VALUE_CONSTANT)) return NULL;
  const onnx_tensor *t = g->values[v].constant;
  if (!t || t->dtype != STRAND_DTYPE_FLOAT32 || t->rank < 1 || t->count != n) return NULL;
  for (size_t i = 0; i + 1 < t->rank; i++)
    if (t->dims[i] != 1) return NULL;
  return t->data;
}

/* v is read by exactly one node and is not a graph output. */
static bool single_use(const graph *g, const uint32_t *readers, int32_t v) {
  return v >= 0 && readers[v] == 1 && !(g->values[v].flags & GRAPH_VALUE_OUTPUT);
}

static strand_status fuse_matmul_bias(strand_session *s, uint32_t *readers) {
  const graph *g = s->graph;
  for (size_t k = 0; k < g->n_nodes; k++) {
    session_node *sn = &s->nodes[k];
    const graph_node *node = &g->nodes[k];
    /* outputs redirected: it absorbed an activation already (fuse.c). */
    if (!is_op(sn, node, "MatMul") || !sn->params || sn->outputs != node->outputs ||
        node->n_outputs != 1)
      continue;
    int32_t v = node->outputs[0];
    if (!single_use(g, readers, v)) continue;
    size_t a = reader_of(g, k, v);
    if (a == g->n_nodes || !is_op(&s->nodes[a], &g->nodes[a], "Add") ||
        g->nodes[a].n_inputs != 2 || g->nodes[a].n_outputs != 1)
      continue;
    const graph_node *add = &g->nodes[a];
    int32_t other = add->inputs[0] == v ? add->inputs[1] : add->inputs[0];
    const graph_value *out = &g->values[v];
    if (other == v || out->rank < 1) continue;
    /* n: the product's columns, known from the packed B (the hook checks). */
    const onnx_tensor *bt = NULL;
    if (node->n_inputs == 2 && node->inputs[1] >= 0 &&
        (g->values[node->inputs[1]].flags & GRAPH_VALUE_CONSTANT))
      bt = g->values[node->inputs[1]].constant;
    if (!bt || bt->rank != 2) continue;
    size_t n = (size_t)bt->dims[1];
    const float *bias = bias_row(g, other, n);
    if (!bias) continue;
    /* The bias row must not have more dims than the product. */
    const onnx_tensor *bc = g->values[other].constant;
    size_t a_rank = g->values[node->inputs[0]].rank > 0 ? (size_t)g->values[node->inputs[0]].rank : 0;
    if (a_rank < 1 || bc->rank > (a_rank > 1 ? a_rank : 1)) continue;
    kernel_prepare p = {.graph = g, .node = node, .blocks = &s->blocks};
    float *copy;
    strand_status st = kernel_alloc(&p, n * sizeof(float), STRAND_MEMORY_WEIGHTS, (void **)&copy);
    if (st) return st;
    memcpy(copy, bias, n * sizeof(float));
    if (!kernel_matmul_absorb_bias(sn->params, copy, n)) continue;
    int32_t last = add->outputs[0];
    s->nodes[a].kernel = NULL;
    /* A Relu or Clip after the Add joins as well. */
    size_t r = single_use(g, readers, last) ? reader_of(g, a, last) : g->n_nodes;
    kernel_activation act;
    if (r < g->n_nodes && s->nodes[r].kernel && g->nodes[r].n_outputs == 1 &&
        g->nodes[r].n_inputs >= 1 && g->nodes[r].inputs[0] == last &&
        kernel_fusable_activation(g, &g->nodes[r], &act)) {
      *(kernel_activation *)sn->params = act;
      last = g->nodes[r].outputs[0];
      s->nodes[r].kernel = NULL;
    }
    int32_t *outputs;
    st = kernel_alloc(&p, sizeof *outputs, STRAND_MEMORY_OTHER, (void **)&outputs);
    if (st) return st;
    outputs[0] = last;
    sn->outputs = outputs;
  }
  return STRAND_OK;
}

strand_status session_fuse_sequence(strand_session *s, uint32_t *readers) {
  return fuse_matmul_bias(s, readers);
}
