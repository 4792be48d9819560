/*
 * order.c — topological order of a graph's nodes.
 *
 * Kahn's algorithm with the ready set kept as a min-heap on the file
 * position, so the order is stable: a file already in topological order
 * keeps its order, and otherwise each step takes the earliest ready node.
 * Edges run from the producer of each input to its consumer, plus the
 * `extra` dependencies of nodes whose subgraphs use values of this graph.
 * Nodes left over form (or hang from) a cycle; one cycle is named.
 */
#include "graph/graph_internal.h"

#include <stdio.h>
#include <string.h>

static void heap_push(int32_t *heap, size_t *n, int32_t v) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (heap[parent] <= v) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = v;
}

static int32_t heap_pop(int32_t *heap, size_t *n) {
  int32_t top = heap[0];
  int32_t last = heap[--*n];
  size_t i = 0;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= *n) break;
    if (child + 1 < *n && heap[child + 1] < heap[child]) child++;
    if (heap[child] >= last) break;
    heap[i] = heap[child];
    i = child;
  }
  if (*n) heap[i] = last;
  return top;
}

static int label(char *buf, size_t size, const graph_node *node) {
  if (node->name[0]) return snprintf(buf, size, "\"%s\" (%s)", node->name, node->op_type);
  return snprintf(buf, size, "node %zu (%s)", node->source->index, node->op_type);
}

/* Names one cycle among the nodes not emitted (done[k] == 0): walking from
 * any of them to an unemitted producer must come back to a node seen. */
static strand_status report_cycle(const graph *g, const unsigned char *done, int32_t *path,
                                  int32_t *seen_at) {
  size_t n = g->n_nodes;
  int32_t k = -1;
  for (size_t i = 0; i < n && k < 0; i++)
    if (!done[i]) k = (int32_t)i;
  for (size_t i = 0; i < n; i++) seen_at[i] = -1;
  size_t length = 0;
  while (seen_at[k] < 0) {
    seen_at[k] = (int32_t)length;
    path[length++] = k;
    const graph_node *node = &g->nodes[k];
    int32_t next = -1;
    for (size_t i = 0; i < node->n_inputs && next < 0; i++) {
      int32_t v = node->inputs[i];
      if (v >= 0 && g->values[v].producer >= 0 && !done[g->values[v].producer])
        next = g->values[v].producer;
    }
    if (next < 0) break; /* only through an outer dependency: name this node */
    k = next;
  }
  char text[1024];
  size_t used = 0;
  if (seen_at[k] < 0) {
    /* The walk ended at a node held back only by its subgraph's use of a
     * value that depends on the node itself. */
    label(text, sizeof text, &g->nodes[path[length - 1]]);
    strand_status st = strand__fail(STRAND_E_MALFORMED_MODEL,
                                    "node %s has a subgraph that uses a value computed from the "
                                    "node's own outputs", text);
    if (g->depth == 0 && !g->name[0]) return st;
    return onnx_context(st, g->depth, "graph \"%s\"", g->name);
  }
  /* path[i + 1] produces an input of path[i], so data flows from path[start]
   * to path[length - 1], down to path[start] again. */
  size_t start = (size_t)seen_at[k];
  used += (size_t)label(text, sizeof text, &g->nodes[path[start]]);
  size_t shown = 1;
  for (size_t i = length; i > start && used < sizeof text; i--, shown++) {
    if (shown == 8 && i - 1 > start) {
      snprintf(text + used, sizeof text - used, " -> ...");
      break;
    }
    used += (size_t)snprintf(text + used, sizeof text - used, " -> ");
    if (used < sizeof text) used += (size_t)label(text + used, sizeof text - used, &g->nodes[path[i - 1]]);
  }
  strand_status st = strand__fail(STRAND_E_MALFORMED_MODEL, "the nodes form a cycle: %s", text);
  if (g->depth == 0 && !g->name[0]) return st;
  return onnx_context(st, g->depth, "graph \"%s\"", g->name);
}

strand_status graph_sort(onnx_arena *arena, graph *g, const int32_t *extra, size_t n_extra) {
  size_t n = g->n_nodes;
  if (n == 0) return STRAND_OK;
  size_t edges = n_extra;
  for (size_t k = 0; k < n; k++) edges += g->nodes[k].n_inputs;

  /* One scratch block: indegree, heap, order/path, seen_at (n each), edge
   * offsets (n + 1), edges, done flags. */
  size_t ints, bytes;
  if (!strand__size_add(4 * n + (n + 1), edges, &ints) ||
      !strand__size_mul(ints, sizeof(int32_t), &bytes) || !strand__size_add(bytes, n, &bytes))
    return strand__fail(STRAND_E_OUT_OF_MEMORY, "graph \"%s\" is too large to sort", g->name);
  void *block;
  strand_status st = strand__calloc(bytes, STRAND_MEMORY_OTHER, &block);
  if (st) return st;
  int32_t *indegree = block;
  int32_t *heap = indegree + n;
  int32_t *order = heap + n;
  int32_t *seen_at = order + n;
  int32_t *offset = seen_at + n; /* n + 1 */
  int32_t *edge = offset + n + 1;
  unsigned char *done = (unsigned char *)(edge + edges);

  /* Count, then fill, the consumers of each producer. */
#define FOR_EACH_EDGE(BODY)                                                    \
  for (size_t k = 0; k < n; k++)                                               \
    for (size_t i = 0; i < g->nodes[k].n_inputs; i++) {                        \
      int32_t v = g->nodes[k].inputs[i];                                       \
      if (v < 0 || g->values[v].producer < 0) continue;                        \
      int32_t from = g->values[v].producer, to = (int32_t)k;                   \
      BODY                                                                     \
    }                                                                          \
  for (size_t e = 0; e < n_extra; e++) {                                       \
    int32_t v = extra[2 * e + 1];                                              \
    if (g->values[v].producer < 0) continue;                                   \
    int32_t from = g->values[v].producer, to = extra[2 * e];                   \
    BODY                                                                       \
  }
  FOR_EACH_EDGE(offset[from + 1]++; indegree[to]++;)
  for (size_t k = 0; k < n; k++) offset[k + 1] += offset[k];
  {
    int32_t *fill = order; /* borrowed as a cursor per producer */
    for (size_t k = 0; k < n; k++) fill[k] = offset[k];
    FOR_EACH_EDGE(edge[fill[from]++] = to;)
  }
#undef FOR_EACH_EDGE

  size_t ready = 0, emitted = 0;
  for (size_t k = 0; k < n; k++)
    if (indegree[k] == 0) heap_push(heap, &ready, (int32_t)k);
  while (ready) {
    int32_t k = heap_pop(heap, &ready);
    order[emitted++] = k;
    done[k] = 1;
    for (int32_t e = offset[k]; e < offset[k + 1]; e++)
      if (--indegree[edge[e]] == 0) heap_push(heap, &ready, edge[e]);
  }
  if (emitted < n) {
    st = report_cycle(g, done, heap, seen_at);
    strand__free(block, bytes, STRAND_MEMORY_OTHER);
    return st;
  }

  bool moved = false;
  for (size_t k = 0; k < n && !moved; k++) moved = order[k] != (int32_t)k;
  if (moved) {
    graph_node *sorted;
    st = onnx_arena_array(arena, n, sizeof *sorted, (void **)&sorted);
    if (st) {
      strand__free(block, bytes, STRAND_MEMORY_OTHER);
      return st;
    }
    int32_t *position = seen_at;
    for (size_t k = 0; k < n; k++) {
      sorted[k] = g->nodes[order[k]];
      position[order[k]] = (int32_t)k;
    }
    for (size_t v = 0; v < g->n_values; v++)
      if (g->values[v].producer >= 0) g->values[v].producer = position[g->values[v].producer];
    g->nodes = sorted;
  }
  strand__free(block, bytes, STRAND_MEMORY_OTHER);
  return STRAND_OK;
}
