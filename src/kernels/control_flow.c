/*
 * control_flow.c — If: a node that runs one of two subgraphs.
 *
 * prepare finds and prepares a kernel for every node of both branches
 * (recursively: a branch's If prepares its own branches), so that a model
 * strand cannot run fails at session creation.
 *
 * run evaluates `cond` and runs the chosen branch with a nested dynamic
 * execution, the executor's planning run in small: nodes in order, each
 * kernel's infer on the actual inputs, memory from the seam (SCRATCH) per
 * value, given back after its last reader. A branch's outer values are the
 * enclosing executions' views, found through c->scope. The branch's
 * outputs are then copied into the If's outputs, which the executor places
 * only once their shapes are known (KERNEL_SHAPED_BY_RUN). Being the one
 * kernel that allocates while running, If also keeps its session off the
 * plan cache (KERNEL_DATA_DEPENDENT_SHAPE).
 *
 * Before each branch node, the branch asks the enclosing run whether it must
 * stop (canceled, past its deadline) through c->place(c,
 * KERNEL_PLACE_BOUNDARY); a nested If forwards the question outwards.
 */
#include "kernels/kernels_internal.h"

#include "core/tensor_internal.h"

#include <stdio.h>
#include <string.h>

/* ---- outer reads ------------------------------------------------------------ */

/* Adds to reads (capacity `cap`, NULL to count only) the values of g that
 * `sub` and its subgraphs reference. */
static void collect_reads(const graph *sub, const graph *g, int32_t *reads, size_t *n) {
  for (size_t v = 0; v < sub->n_values; v++) {
    const graph_value *gv = &sub->values[v];
    if (!(gv->flags & GRAPH_VALUE_OUTER) || gv->outer_graph != g) continue;
    if (reads) {
      bool seen = false;
      for (size_t i = 0; i < *n && !seen; i++) seen = reads[i] == gv->outer_index;
      if (seen) continue;
      reads[*n] = gv->outer_index;
    }
    (*n)++;
  }
  for (size_t k = 0; k < sub->n_nodes; k++)
    for (size_t s = 0; s < sub->nodes[k].n_subgraphs; s++)
      collect_reads(sub->nodes[k].subgraphs[s], g, reads, n);
}

strand_status kernel_outer_reads(kernel_prepare *p, const graph *g, const graph_node *node,
                                 const int32_t **reads, size_t *n) {
  *reads = NULL;
  *n = 0;
  size_t bound = 0;
  for (size_t s = 0; s < node->n_subgraphs; s++) collect_reads(node->subgraphs[s], g, NULL, &bound);
  if (!bound) return STRAND_OK;
  int32_t *list;
  strand_status st = kernel_alloc(p, bound * sizeof *list, STRAND_MEMORY_OTHER, (void **)&list);
  if (st) return st;
  size_t count = 0;
  for (size_t s = 0; s < node->n_subgraphs; s++) collect_reads(node->subgraphs[s], g, list, &count);
  *reads = list;
  *n = count;
  return STRAND_OK;
}

/* ---- preparing the branches --------------------------------------------------- */

typedef struct branch_node {
  const kernel_def *kernel; /* NULL: folded at load, never run */
  void *params;
  const int32_t *reads;     /* kernel_outer_reads */
  size_t n_reads;
} branch_node;

typedef struct branch {
  const char *attr;         /* "then_branch", "else_branch" */
  const graph *graph;
  branch_node *nodes;
  size_t max_inputs, max_outputs;
} branch;

typedef struct if_params {
  branch branches[2]; /* then, else */
} if_params;

/* Adds "<attr>: node "name" (Op)" to the calling thread's message. */
static strand_status branch_context(strand_status st, const branch *b, const graph_node *node) {
  if (node->name[0])
    st = strand__fail_context(st, "node \"%s\" (%s)", node->name, node->op_type);
  else
    st = strand__fail_context(st, "node %zu (%s)", node->source->index, node->op_type);
  return strand__fail_context(st, "%s", b->attr);
}

static const char *dtype_list(const strand_dtype *dtypes, size_t n, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "(");
  for (size_t i = 0; i < n && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                             dtypes[i] == STRAND_DTYPE_UNDEFINED ? "-"
                                                                 : strand_dtype_name(dtypes[i]));
  if (used < size) snprintf(buf + used, size - used, ")");
  return buf;
}

static strand_status bind_branch_node(kernel_prepare *p, branch *b, size_t k) {
  const graph *g = b->graph;
  const graph_node *node = &g->nodes[k];
  branch_node *bn = &b->nodes[k];
  if (node->n_inputs > b->max_inputs) b->max_inputs = node->n_inputs;
  if (node->n_outputs > b->max_outputs) b->max_outputs = node->n_outputs;
  if (node->folded) return STRAND_OK;
  size_t bytes = (node->n_inputs ? node->n_inputs : 1) * sizeof(strand_dtype);
  strand_dtype *dtypes;
  strand_status st = strand__alloc(bytes, STRAND_MEMORY_OTHER, (void **)&dtypes);
  if (st) return st;
  for (size_t i = 0; i < node->n_inputs; i++)
    dtypes[i] = node->inputs[i] >= 0 ? g->values[node->inputs[i]].dtype : STRAND_DTYPE_UNDEFINED;
  bool op_known;
  const kernel_def *kernel =
      kernel_find(node->domain, node->op_type, node->opset, dtypes, node->n_inputs, &op_known);
  if (!kernel) {
    char types[256];
    const char *domain = node->domain[0] ? node->domain : "ai.onnx";
    st = op_known ? strand__fail(STRAND_E_UNSUPPORTED, "no %s kernel for input types %s",
                                 node->op_type, dtype_list(dtypes, node->n_inputs, types, sizeof types))
                  : strand__fail(STRAND_E_UNSUPPORTED, "no kernel for op %s of domain %s at opset "
                                 "%lld", node->op_type, domain, (long long)node->opset);
  }
  strand__free(dtypes, bytes, STRAND_MEMORY_OTHER);
  if (st) return st;
  bn->kernel = kernel;
  if (kernel->prepare) {
    kernel_prepare bp = {.graph = g, .node = node, .blocks = p->blocks};
    st = kernel->prepare(&bp, &bn->params);
    if (st) return st;
  }
  kernel_prepare bp = {.graph = g, .node = node, .blocks = p->blocks};
  return kernel_outer_reads(&bp, g, node, &bn->reads, &bn->n_reads);
}

static strand_status prepare_branch(kernel_prepare *p, const char *attr, branch *b) {
  const graph_node *node = p->node;
  const onnx_attr *a = graph_node_attr(node, attr);
  const graph *g = NULL;
  for (size_t s = 0; a && s < node->n_subgraphs && !g; s++)
    if (node->subgraphs[s]->source == a->g) g = node->subgraphs[s];
  if (!g) return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"%s\": no graph", attr);
  b->attr = attr;
  b->graph = g;
  if (g->n_inputs)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "%s has %zu inputs; If's branches take none",
                        attr, g->n_inputs);
  if (g->n_outputs != node->n_outputs)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "%s has %zu outputs, the node %zu", attr,
                        g->n_outputs, node->n_outputs);
  strand_status st = STRAND_OK;
  if (g->n_nodes)
    st = kernel_alloc(p, g->n_nodes * sizeof *b->nodes, STRAND_MEMORY_OTHER, (void **)&b->nodes);
  for (size_t k = 0; k < g->n_nodes && !st; k++) {
    st = bind_branch_node(p, b, k);
    if (st) st = branch_context(st, b, &g->nodes[k]);
  }
  return st;
}

static strand_status prepare_if(kernel_prepare *p, void **out) {
  if_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, (void **)&params);
  if (!st) st = prepare_branch(p, "then_branch", &params->branches[0]);
  if (!st) st = prepare_branch(p, "else_branch", &params->branches[1]);
  if (st) return st;
  *out = params;
  return STRAND_OK;
}

static bool accepts_if(const strand_dtype *dtypes, size_t n) {
  return n == 1 && kernel_dtype_in(dtypes[0], KERNEL_DT(BOOL));
}

/* ---- running a branch ------------------------------------------------------------ */

/* One execution of a branch: everything lives in one SCRATCH block. */
typedef struct execution {
  const branch *branch;
  const kernel_call *outer; /* the If's call: where boundaries are reported */
  size_t bytes;
  kernel_tensor *views;   /* per value */
  void **buffers;         /* per value: memory from the seam */
  size_t *buffer_sizes;
  uint32_t *uses;         /* per value: readers still to run (+1 for branch outputs) */
  bool *value_needed;
  bool *node_needed;
  const kernel_tensor **ins;
  kernel_tensor **outs;
  strand_dtype *dtypes;
} execution;

static _Alignas(64) unsigned char empty_data[64];

static size_t take(size_t *size, size_t count, size_t elem) {
  size_t start = (*size + 15) & ~(size_t)15;
  *size = start + count * elem;
  return start;
}

static strand_status execution_new(const branch *b, execution *e) {
  const graph *g = b->graph;
  size_t nv = g->n_values, nn = g->n_nodes;
  size_t size = 0;
  size_t o_views = take(&size, nv, sizeof(kernel_tensor));
  size_t o_buffers = take(&size, nv, sizeof(void *));
  size_t o_sizes = take(&size, nv, sizeof(size_t));
  size_t o_uses = take(&size, nv, sizeof(uint32_t));
  size_t o_vneeded = take(&size, nv, sizeof(bool));
  size_t o_nneeded = take(&size, nn, sizeof(bool));
  size_t o_ins = take(&size, b->max_inputs, sizeof(kernel_tensor *));
  size_t o_outs = take(&size, b->max_outputs, sizeof(kernel_tensor *));
  size_t o_dtypes = take(&size, b->max_inputs, sizeof(strand_dtype));
  if (!size) size = 16;
  unsigned char *base;
  strand_status st = strand__calloc(size, STRAND_MEMORY_SCRATCH, (void **)&base);
  if (st) return st;
  *e = (execution){b,
                   NULL,
                   size,
                   (kernel_tensor *)(base + o_views),
                   (void **)(base + o_buffers),
                   (size_t *)(base + o_sizes),
                   (uint32_t *)(base + o_uses),
                   (bool *)(base + o_vneeded),
                   (bool *)(base + o_nneeded),
                   (const kernel_tensor **)(base + o_ins),
                   (kernel_tensor **)(base + o_outs),
                   (strand_dtype *)(base + o_dtypes)};
  return STRAND_OK;
}

static void execution_free(execution *e) {
  for (size_t v = 0; v < e->branch->graph->n_values; v++)
    if (e->buffers[v]) strand__free_aligned(e->buffers[v], e->buffer_sizes[v], STRAND_MEMORY_SCRATCH);
  strand__free(e->views, e->bytes, STRAND_MEMORY_SCRATCH); /* views is the block's start */
}

/* The view of an outer value in the enclosing executions, or NULL. */
static const kernel_tensor *outer_view(const kernel_scope *scope, const graph_value *gv) {
  for (; scope; scope = scope->parent)
    if (scope->graph == gv->outer_graph) return &scope->views[gv->outer_index];
  return NULL;
}

/* Views of constants and outer values; marks what the branch outputs need. */
static strand_status execution_bind(execution *e, const kernel_scope *scope) {
  const branch *b = e->branch;
  const graph *g = b->graph;
  for (size_t v = 0; v < g->n_values; v++) {
    const graph_value *gv = &g->values[v];
    kernel_tensor *t = &e->views[v];
    t->data = empty_data;
    if ((gv->flags & GRAPH_VALUE_CONSTANT) && gv->constant) {
      const onnx_tensor *c = gv->constant;
      t->dtype = c->dtype;
      t->rank = c->rank;
      for (size_t d = 0; d < c->rank; d++) t->dims[d] = c->dims[d];
      t->count = c->count;
      if (c->data && c->byte_size) t->data = (void *)(uintptr_t)c->data;
    } else if (gv->flags & GRAPH_VALUE_OUTER) {
      const kernel_tensor *o = outer_view(scope, gv);
      if (!o || !o->data)
        return strand__fail(STRAND_E_INTERNAL, "%s: outer value \"%s\" is not available", b->attr,
                            gv->name);
      *t = *o;
    }
  }
  for (size_t i = 0; i < g->n_outputs; i++) {
    e->value_needed[g->outputs[i]] = true;
    e->uses[g->outputs[i]]++;
  }
  for (size_t k = g->n_nodes; k-- > 0;) {
    const graph_node *node = &g->nodes[k];
    const branch_node *bn = &b->nodes[k];
    bool needed = false;
    if (bn->kernel)
      for (size_t i = 0; i < node->n_outputs && !needed; i++)
        needed = node->outputs[i] >= 0 && e->value_needed[node->outputs[i]];
    e->node_needed[k] = needed;
    if (!needed) continue;
    if (node->n_outputs && node->outputs[0] >= 0) e->value_needed[node->outputs[0]] = true;
    for (size_t i = 0; i < node->n_inputs; i++)
      if (node->inputs[i] >= 0) {
        e->value_needed[node->inputs[i]] = true;
        e->uses[node->inputs[i]]++;
      }
    for (size_t i = 0; i < bn->n_reads; i++) {
      e->value_needed[bn->reads[i]] = true;
      e->uses[bn->reads[i]]++;
    }
  }
  return STRAND_OK;
}

/* Gives value v (shaped by its kernel) memory from the seam. */
static strand_status place_value(execution *e, int32_t v) {
  const graph *g = e->branch->graph;
  kernel_tensor *t = &e->views[v];
  const char *name = g->values[v].name;
  if (!strand_dtype_size(t->dtype) || t->rank > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_INTERNAL, "output \"%s\": the kernel gave no type", name);
  size_t count, bytes;
  char what[300];
  snprintf(what, sizeof what, "output \"%s\"", name);
  strand_status st = strand__shape_check(t->dtype, t->dims, t->rank, what, &count, &bytes);
  if (st) return st == STRAND_E_INVALID_ARGUMENT ? STRAND_E_SHAPE : st;
  t->count = count;
  t->data = empty_data;
  if (!bytes) return STRAND_OK;
  st = strand__alloc_aligned(bytes, 64, STRAND_MEMORY_SCRATCH, &e->buffers[v]);
  if (st) return strand__fail_context(st, "output \"%s\"", name);
  e->buffer_sizes[v] = bytes;
  t->data = e->buffers[v];
  return STRAND_OK;
}

static strand_status place_nested(const kernel_call *c, size_t k) {
  const execution *e = c->place_context;
  if (k == KERNEL_PLACE_BOUNDARY) return e->outer->place(e->outer, KERNEL_PLACE_BOUNDARY);
  return place_value(c->place_context, c->node->outputs[k]);
}

static void release_use(execution *e, int32_t v) {
  if (e->uses[v] && --e->uses[v] == 0 && e->buffers[v]) {
    strand__free_aligned(e->buffers[v], e->buffer_sizes[v], STRAND_MEMORY_SCRATCH);
    e->buffers[v] = NULL;
    e->buffer_sizes[v] = 0;
  }
}

static strand_status run_node(execution *e, const kernel_scope *scope, size_t k, unsigned threads) {
  const branch *b = e->branch;
  const graph *g = b->graph;
  const graph_node *node = &g->nodes[k];
  const branch_node *bn = &b->nodes[k];
  const kernel_def *kernel = bn->kernel;
  for (size_t i = 0; i < node->n_inputs; i++) {
    e->ins[i] = node->inputs[i] >= 0 ? &e->views[node->inputs[i]] : NULL;
    e->dtypes[i] = e->ins[i] ? e->ins[i]->dtype : STRAND_DTYPE_UNDEFINED;
  }
  for (size_t i = 0; i < node->n_outputs; i++) {
    int32_t v = node->outputs[i];
    e->outs[i] = v >= 0 && e->value_needed[v] ? &e->views[v] : NULL;
    if (e->outs[i]) {
      memset(e->outs[i], 0, sizeof *e->outs[i]);
      e->outs[i]->data = NULL;
    }
  }
  if (!kernel->accepts(e->dtypes, node->n_inputs)) {
    char types[256];
    return strand__fail(STRAND_E_UNSUPPORTED, "no %s kernel for input types %s", node->op_type,
                        dtype_list(e->dtypes, node->n_inputs, types, sizeof types));
  }
  kernel_scope inner = {scope, g, e->views};
  kernel_call kc = {g, node, bn->params, node->n_inputs, e->ins, node->n_outputs, e->outs,
                    empty_data, 0, threads, &inner, place_nested, e};
  strand_status st;
  if (kernel->flags & KERNEL_SHAPED_BY_RUN) {
    st = kernel->run(&kc);
    for (size_t i = 0; i < node->n_outputs && !st; i++)
      if (e->outs[i] && !e->outs[i]->data)
        st = strand__fail(STRAND_E_INTERNAL, "output %zu: the kernel gave none", i);
    return st;
  }
  st = kernel->infer(&kc);
  for (size_t i = 0; i < node->n_outputs && !st; i++)
    if (e->outs[i]) st = place_value(e, node->outputs[i]);
  if (st) return st;
  size_t scratch = kernel->scratch ? kernel->scratch(&kc) : 0;
  void *mem = NULL;
  if (scratch) {
    st = strand__alloc_aligned(scratch, 64, STRAND_MEMORY_SCRATCH, &mem);
    if (st) return st;
    kc.scratch = mem;
    kc.scratch_size = scratch;
  }
  st = kernel->run(&kc);
  if (mem) strand__free_aligned(mem, scratch, STRAND_MEMORY_SCRATCH);
  return st;
}

static strand_status run_branch(const kernel_call *c, const branch *b) {
  const graph *g = b->graph;
  execution e;
  strand_status st = execution_new(b, &e);
  if (st) return st;
  e.outer = c;
  st = execution_bind(&e, c->scope);
  for (size_t k = 0; k < g->n_nodes && !st; k++) {
    if (!e.node_needed[k]) continue;
    const graph_node *node = &g->nodes[k];
    st = c->place(c, KERNEL_PLACE_BOUNDARY);
    if (!st) st = run_node(&e, c->scope, k, c->threads);
    if (st) {
      st = branch_context(st, b, node);
      break;
    }
    for (size_t i = 0; i < node->n_inputs; i++)
      if (node->inputs[i] >= 0) release_use(&e, node->inputs[i]);
    for (size_t i = 0; i < b->nodes[k].n_reads; i++) release_use(&e, b->nodes[k].reads[i]);
  }
  /* The branch's outputs into the node's. */
  for (size_t i = 0; i < g->n_outputs && !st; i++) {
    kernel_tensor *out = kernel_output(c, i);
    if (!out) continue;
    const kernel_tensor *src = &e.views[g->outputs[i]];
    kernel_set_shape(out, src->dtype, src->rank, src->dims);
    st = c->place(c, i);
    if (st) break;
    size_t bytes = src->count * strand_dtype_size(src->dtype);
    if (bytes) memcpy(out->data, src->data, bytes);
  }
  execution_free(&e);
  return st;
}

static strand_status run_if(const kernel_call *c) {
  const if_params *params = c->params;
  const kernel_tensor *cond = kernel_input(c, 0);
  if (cond->count != 1)
    return strand__fail(STRAND_E_SHAPE, "input \"cond\" has %zu elements, expected 1", cond->count);
  if (!c->place)
    return strand__fail(STRAND_E_INTERNAL, "If run without a way to place its outputs");
  bool then = *(const uint8_t *)cond->data != 0;
  return run_branch(c, &params->branches[then ? 0 : 1]);
}

static strand_status infer_if(const kernel_call *c) {
  (void)c;
  return strand__fail(STRAND_E_INTERNAL, "If's shapes are known only by running it");
}

const kernel_def kernel_If = {"If", "", 1, KERNEL_OPSET_MAX, 0,
                              KERNEL_DATA_DEPENDENT_SHAPE | KERNEL_SHAPED_BY_RUN, accepts_if,
                              prepare_if, infer_if, NULL, run_if};
