/*
 * fuse.c — graph rewrites made once at session creation, after every node
 * has its kernel: a node absorbs its neighbours so that runs do less.
 *
 * A rewrite never changes a graph (graphs belong to the model and are
 * shared): it changes the session's view of nodes (session_node), dropping
 * an absorbed node's kernel and redirecting its producer's outputs.
 * Rewrites for convolutional models live here; those for sequence models
 * (attention, normalization, recurrent) in fuse_sequence.c.
 */
#include "runtime/executor.h"

/* Lets Conv, Gemm and MatMul apply a Relu or Clip that is the only reader
 * of their output (for a Conv that absorbed a BatchNormalization, of the
 * BatchNormalization's output): the activation node is dropped and its
 * producer writes the activation's output. `readers` counts the nodes
 * reading each value of the graph. Left alone: outputs that are graph
 * outputs. */
static strand_status fuse_activations(strand_session *s, uint32_t *readers) {
  const graph *g = s->graph;
  for (size_t k = 0; k < g->n_nodes; k++) {
    session_node *sn = &s->nodes[k];
    const graph_node *node = &g->nodes[k];
    if (!sn->kernel || !(sn->kernel->flags & KERNEL_FUSES_ACTIVATION) || !sn->params ||
        node->n_outputs < 1)
      continue;
    int32_t v = sn->outputs[0];
    if (v < 0 || readers[v] != 1 || (g->values[v].flags & GRAPH_VALUE_OUTPUT)) continue;
    size_t c = k + 1;
    while (c < g->n_nodes && !(g->nodes[c].n_inputs && g->nodes[c].inputs[0] == v)) c++;
    kernel_activation act;
    if (c == g->n_nodes || !s->nodes[c].kernel || g->nodes[c].n_outputs != 1 ||
        !kernel_fusable_activation(g, &g->nodes[c], &act))
      continue;
    int32_t *outputs;
    kernel_prepare p = {.graph = g, .node = node, .blocks = &s->blocks};
    strand_status st = kernel_alloc(&p, node->n_outputs * sizeof *outputs, STRAND_MEMORY_OTHER,
                                    (void **)&outputs);
    if (st) return st;
    for (size_t i = 0; i < node->n_outputs; i++) outputs[i] = sn->outputs[i];
    outputs[0] = g->nodes[c].outputs[0];
    sn->outputs = outputs;
    *(kernel_activation *)sn->params = act;
    s->nodes[c].kernel = NULL;
  }
  return STRAND_OK;
}

bool session_count_readers(const graph *g, uint32_t *readers) {
  for (size_t k = 0; k < g->n_nodes; k++)
    if (g->nodes[k].n_subgraphs) return false;
  for (size_t v = 0; v < g->n_values; v++) readers[v] = 0;
  for (size_t k = 0; k < g->n_nodes; k++)
    for (size_t i = 0; i < g->nodes[k].n_inputs; i++)
      if (g->nodes[k].inputs[i] >= 0) readers[g->nodes[k].inputs[i]]++;
  return true;
}

strand_status session_fuse(strand_session *s, uint32_t *readers) {
  if (!session_count_readers(s->graph, readers)) return STRAND_OK;
  strand_status st = fuse_activations(s, readers);
  if (!st) st = session_fuse_sequence(s, readers);
  return st;
}
