/*
 * executor.c — running a session's nodes: the planning run and the planned
 * run.
 *
 * Planning run (the first run for a set of input shapes): nodes in
 * topological order; each kernel's infer sees the actual inputs (so shape
 * tensors computed at run time are read), each value gets memory from the
 * seam when its node runs and gives it back after its last reader, and the
 * run records every value's shape and lifetime and every node's scratch.
 * plan.c turns that record into an arena layout.
 *
 * A node whose run would only copy its input, or a block of it
 * (plan_node_may_view, plan_view_bytes), gives its output those bytes
 * instead when share_input finds it safe.
 *
 * Planned run: one arena from the context, every view bound to its offset,
 * kernels run back to back; nothing is allocated but the output tensors.
 * Nodes whose output the plan made a view of their input (plan_view) do not
 * run: the output is bound to the input's bytes under its own dims.
 *
 * A KERNEL_SHAPED_BY_RUN kernel (If) skips infer: it shapes its outputs as
 * it runs and has them placed through kernel_call.place; it sees the run's
 * views through kernel_call.scope (its subgraphs' outer values), and the
 * values its subgraphs read (session_node.reads) count as its inputs.
 * Sessions with such kernels are never planned.
 *
 * Requested outputs that a node computes are written by the kernel straight
 * into the output tensor; the others (graph inputs, constants, an output
 * asked for twice) are copied at the end.
 */
#include "runtime/executor.h"
#include "runtime/thread_pool.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static _Alignas(SESSION_ALIGNMENT) unsigned char empty_data[SESSION_ALIGNMENT];

void *executor_empty_data(void) { return empty_data; }

static bool computed(const graph_value *v) {
  return v->producer >= 0 && !(v->flags & GRAPH_VALUE_CONSTANT);
}

size_t executor_mark_needed(const strand_session *s, run_context *ctx, size_t n_slots) {
  const graph *g = s->graph;
  memset(ctx->value_needed, 0, g->n_values * sizeof(bool));
  for (size_t i = 0; i < n_slots; i++) ctx->value_needed[ctx->slot_value[i]] = true;
  size_t steps = 0;
  for (size_t k = g->n_nodes; k-- > 0;) {
    const graph_node *node = &g->nodes[k];
    const int32_t *outputs = s->nodes[k].outputs;
    bool needed = false;
    if (s->nodes[k].kernel)
      for (size_t i = 0; i < node->n_outputs && !needed; i++)
        needed = outputs[i] >= 0 && ctx->value_needed[outputs[i]];
    ctx->node_needed[k] = needed;
    if (!needed) continue;
    steps++;
    /* Kernels may count on output 0: it gets memory even when unused. */
    if (node->n_outputs && outputs[0] >= 0) ctx->value_needed[outputs[0]] = true;
    for (size_t i = 0; i < node->n_inputs; i++)
      if (node->inputs[i] >= 0) ctx->value_needed[node->inputs[i]] = true;
    for (size_t i = 0; i < s->nodes[k].n_reads; i++) ctx->value_needed[s->nodes[k].reads[i]] = true;
  }
  return steps;
}

strand_status executor_check_stop(const run_stop *stop, const graph *g, const graph_node *node) {
  strand_status st;
  if (stop->cancel && cancel_token_canceled(stop->cancel)) {
    st = strand__fail(STRAND_E_CANCELED, "canceled by the run's token before this node ran");
  } else if (stop->deadline_ns) {
    uint64_t now = strand__now_ns();
    if (now < stop->deadline_ns) return STRAND_OK;
    st = strand__fail(STRAND_E_DEADLINE, "deadline passed %.3f ms before this node ran",
                      (double)(now - stop->deadline_ns) / 1e6);
  } else {
    return STRAND_OK;
  }
  return node ? graph_node_context(st, g, node) : st;
}

/* The point between two kernels where a run may stop early; a run stopped
 * here fails cleanly like any other failing run. */
static inline strand_status between_kernels(const run_call *call, const graph_node *node) {
  if (STRAND_LIKELY(!call->stop->watched)) return STRAND_OK;
  return executor_check_stop(call->stop, call->session->graph, node);
}

static strand_status check_tensor(const char *name, const strand_tensor *t, strand_dtype dtype,
                                  size_t rank, const int64_t *dims) {
  if (t->dtype != dtype)
    return strand__fail(STRAND_E_DTYPE, "output \"%s\": the tensor given is %s, the output is %s",
                        name, strand_dtype_name(t->dtype), strand_dtype_name(dtype));
  bool same = t->rank == rank;
  for (size_t d = 0; d < rank && same; d++) same = t->dims[d] == dims[d];
  if (same) return STRAND_OK;
  kernel_tensor a = {.rank = t->rank}, b = {.rank = rank};
  memcpy(a.dims, t->dims, t->rank * sizeof(int64_t));
  memcpy(b.dims, dims, rank * sizeof(int64_t));
  char ta[256], tb[256];
  return strand__fail(STRAND_E_SHAPE, "output \"%s\": the tensor given has shape %s, the output "
                      "has shape %s", name, kernel_shape_text(&a, ta, sizeof ta),
                      kernel_shape_text(&b, tb, sizeof tb));
}

static bool misaligned(const void *data, strand_dtype dtype) {
  size_t item = strand_dtype_size(dtype);
  return data && item > 1 && ((uintptr_t)data % item) != 0;
}

strand_status executor_slot_target(run_call *call, size_t i, strand_dtype dtype, size_t rank,
                                   const int64_t *dims, void **data) {
  run_context *c = call->ctx;
  const char *name = call->session->graph->values[c->slot_value[i]].name;
  strand_tensor *t = c->slot_tensor[i];
  strand_status st;
  if (t) {
    st = check_tensor(name, t, dtype, rank, dims);
    if (st) return st;
  } else {
    /* Kernels write every element of their outputs (arena values are never
     * zeroed either), so a run's new output tensors skip the zero fill. */
    st = strand__tensor_create_at(dtype, dims, rank, call->site, "strand_session_run", false,
                                  &t);
    if (st) return strand__fail_context(st, "output \"%s\"", name);
    c->slot_tensor[i] = t;
    c->slot_made[i] = true;
  }
  *data = t->byte_size ? t->data : executor_empty_data();
  if (t->byte_size && misaligned(t->data, dtype)) {
    if (!c->slot_temp[i]) {
      st = strand__alloc_aligned(t->byte_size, SESSION_ALIGNMENT, STRAND_MEMORY_SCRATCH,
                                 &c->slot_temp[i]);
      if (st) return st;
    }
    *data = c->slot_temp[i];
  }
  return STRAND_OK;
}

/* Copies the requested values no kernel wrote into their slots. */
static strand_status copy_outputs(run_call *call) {
  const graph *g = call->session->graph;
  run_context *c = call->ctx;
  for (size_t i = 0; i < call->n_slots; i++) {
    int32_t v = c->slot_value[i];
    const kernel_tensor *src = &c->views[v];
    bool direct = c->value_slot[v] == (int32_t)i && computed(&g->values[v]);
    if (!direct) {
      void *data;
      strand_status st = executor_slot_target(call, i, src->dtype, src->rank, src->dims, &data);
      if (st) return st;
      size_t bytes = src->count * strand_dtype_size(src->dtype);
      if (bytes) memcpy(data, src->data, bytes);
    }
    strand_tensor *t = c->slot_tensor[i];
    if (c->slot_temp[i]) memcpy(t->data, c->slot_temp[i], t->byte_size);
  }
  return STRAND_OK;
}

/* The tensor input i of a node reads: its value's view, or the constant
 * the session gave the node in its place. */
static const kernel_tensor *input_of(const session_node *sn, const graph_node *node,
                                     run_context *ctx, size_t i) {
  if (sn->constants && sn->constants[i].data) return &sn->constants[i];
  if (i >= node->n_inputs || node->inputs[i] < 0) return NULL;
  return &ctx->views[node->inputs[i]];
}

static void node_io(const session_node *sn, const graph_node *node, run_context *ctx,
                    const bool *output_wanted_by_value) {
  const int32_t *outputs = sn->outputs;
  for (size_t i = 0; i < sn->n_inputs; i++) ctx->ins[i] = input_of(sn, node, ctx, i);
  for (size_t i = 0; i < node->n_outputs; i++) {
    int32_t v = outputs[i];
    ctx->outs[i] = v >= 0 && output_wanted_by_value[v] ? &ctx->views[v] : NULL;
  }
}

/* ---- the planning run ------------------------------------------------------- */

static void free_buffers(const graph *g, run_context *ctx) {
  for (size_t v = 0; v < g->n_values; v++) {
    if (ctx->buffers[v])
      strand__free_aligned(ctx->buffers[v], ctx->buffer_sizes[v], STRAND_MEMORY_SCRATCH);
    ctx->buffers[v] = NULL;
    ctx->buffer_sizes[v] = 0;
  }
}

/* Checks the shape infer gave output `v` and sets its count. */
static strand_status check_output(run_call *call, int32_t v, size_t *bytes) {
  const graph *g = call->session->graph;
  kernel_tensor *t = &call->ctx->views[v];
  const char *name = g->values[v].name;
  if (!strand_dtype_size(t->dtype) || t->rank > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_INTERNAL, "output \"%s\": the kernel gave no type", name);
  size_t count;
  char what[300];
  snprintf(what, sizeof what, "output \"%s\"", name);
  strand_status st = strand__shape_check(t->dtype, t->dims, t->rank, what, &count, bytes);
  if (st) return st == STRAND_E_INVALID_ARGUMENT ? STRAND_E_SHAPE : st;
  t->count = count;
  return STRAND_OK;
}

/* Checks the shape infer gave output `v` and gives it memory. */
static strand_status place_output(run_call *call, int32_t v) {
  const graph *g = call->session->graph;
  run_context *ctx = call->ctx;
  kernel_tensor *t = &ctx->views[v];
  const char *name = g->values[v].name;
  size_t bytes;
  strand_status st = check_output(call, v, &bytes);
  if (st) return st;
  t->data = executor_empty_data();
  if (ctx->value_slot[v] >= 0)
    return executor_slot_target(call, (size_t)ctx->value_slot[v], t->dtype, t->rank, t->dims, &t->data);
  if (!bytes) return STRAND_OK;
  st = strand__alloc_aligned(bytes, SESSION_ALIGNMENT, STRAND_MEMORY_SCRATCH, &ctx->buffers[v]);
  if (st) return strand__fail_context(st, "output \"%s\"", name);
  ctx->buffer_sizes[v] = bytes;
  t->data = ctx->buffers[v];
  return STRAND_OK;
}

static const char *dtype_list(const kernel_tensor *const *ins, size_t n, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "(");
  for (size_t i = 0; i < n && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                             ins[i] ? strand_dtype_name(ins[i]->dtype) : "-");
  if (used < size) snprintf(buf + used, size - used, ")");
  return buf;
}

/* kernel_call.place for a KERNEL_SHAPED_BY_RUN kernel of the planning run. */
static strand_status place_for_kernel(const kernel_call *c, size_t k) {
  run_call *call = c->place_context;
  if (k == KERNEL_PLACE_BOUNDARY)
    return call->stop->watched ? executor_check_stop(call->stop, NULL, NULL) : STRAND_OK;
  const session_node *sn = &call->session->nodes[c->node - call->session->graph->nodes];
  return place_output(call, sn->outputs[k]);
}

/* For a node plan_node_may_view admits, once infer shaped its output:
 * makes the output a view of input 0 (same bytes, its own dims) when that
 * is safe in this run, and sets *shared. The input's bytes must stay as
 * they are for every read of the view: no kernel writes its inputs, and
 * they must not be freed early. A buffer is freed after its owner's last
 * reader, so it passes to the view when this node is the input's last
 * reader; an input without a buffer (a graph input, a constant, a view of
 * one, an empty value) keeps its bytes for the whole run. Values in output
 * tensors take no part: the caller's tensors own their bytes. */
static strand_status share_input(run_call *call, const graph_node *node, const session_node *sn,
                                 bool *shared) {
  const graph *g = call->session->graph;
  run_context *ctx = call->ctx;
  int32_t in = node->inputs[0], out = sn->outputs[0];
  *shared = false;
  for (size_t i = 1; i < node->n_outputs; i++) /* Dropout's mask is written by its run */
    if (sn->outputs[i] >= 0 && ctx->value_needed[sn->outputs[i]]) return STRAND_OK;
  if (ctx->value_slot[out] >= 0 || (computed(&g->values[in]) && ctx->value_slot[in] >= 0))
    return STRAND_OK;
  if (ctx->buffers[in] && ctx->uses[in] != 1) return STRAND_OK;
  size_t bytes;
  strand_status st = check_output(call, out, &bytes);
  if (st) return st;
  kernel_tensor *y = &ctx->views[out];
  const kernel_tensor *x = &ctx->views[in];
  size_t offset;
  if (!plan_view_bytes(call->session, (size_t)(node - g->nodes), ctx->views, &offset))
    return STRAND_OK;
  y->data = (unsigned char *)x->data + offset;
  ctx->buffers[out] = ctx->buffers[in];
  ctx->buffer_sizes[out] = ctx->buffer_sizes[in];
  ctx->buffers[in] = NULL;
  ctx->buffer_sizes[in] = 0;
  *shared = true;
  return STRAND_OK;
}

/* Gives a value's memory back after its last reader ran. */
static void release_use(run_context *ctx, int32_t v) {
  if (ctx->uses[v] && --ctx->uses[v] == 0 && ctx->buffers[v]) {
    strand__free_aligned(ctx->buffers[v], ctx->buffer_sizes[v], STRAND_MEMORY_SCRATCH);
    ctx->buffers[v] = NULL;
    ctx->buffer_sizes[v] = 0;
  }
}

strand_status executor_run_kernel(strand_session *s, size_t k, const kernel_def *kernel,
                                  const kernel_call *kc) {
  if (!atomic_load_explicit(&s->profiling, memory_order_relaxed)) return kernel->run(kc);
  uint64_t start = strand__now_ns();
  strand_status st = kernel->run(kc);
  uint64_t took = strand__now_ns() - start;
  session_node *sn = &s->nodes[k];
  atomic_fetch_add_explicit(&sn->profile_calls, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&sn->profile_ns, took, memory_order_relaxed);
  return st;
}

static strand_status plan_node(run_call *call, size_t k, uint32_t step) {
  strand_session *s = call->session;
  const graph *g = s->graph;
  run_context *ctx = call->ctx;
  const graph_node *node = &g->nodes[k];
  const session_node *sn = &s->nodes[k];
  const kernel_def *kernel = sn->kernel;
  node_io(sn, node, ctx, ctx->value_needed);

  /* Types unknown at creation are known now: ask again. */
  for (size_t i = 0; i < sn->n_inputs; i++)
    ctx->dtypes[i] = ctx->ins[i] ? ctx->ins[i]->dtype : STRAND_DTYPE_UNDEFINED;
  if (!kernel->accepts(ctx->dtypes, sn->n_inputs)) {
    char types[256];
    return strand__fail(STRAND_E_UNSUPPORTED, "no %s kernel for input types %s", node->op_type,
                        dtype_list(ctx->ins, sn->n_inputs, types, sizeof types));
  }
  for (size_t i = 0; i < node->n_outputs; i++)
    if (ctx->outs[i]) {
      memset(ctx->outs[i], 0, offsetof(kernel_tensor, data));
      ctx->outs[i]->data = NULL;
    }
  kernel_scope scope = {NULL, g, ctx->views};
  kernel_call kc = {g, node, sn->params, sn->n_inputs, ctx->ins, node->n_outputs, ctx->outs,
                    NULL, 0, call->threads, &scope, place_for_kernel, call};
  strand_status st = STRAND_OK;
  bool shaped_by_run = (kernel->flags & KERNEL_SHAPED_BY_RUN) != 0, shared = false;
  if (!shaped_by_run) st = kernel->infer(&kc);
  if (!st && !shaped_by_run && plan_node_may_view(s, k)) st = share_input(call, node, sn, &shared);
  for (size_t i = shared ? 1 : 0; i < node->n_outputs && !st && !shaped_by_run; i++)
    if (ctx->outs[i]) st = place_output(call, sn->outputs[i]);
  if (st) return st;
  size_t scratch = kernel->scratch && !shaped_by_run && !shared ? kernel->scratch(&kc) : 0;
  void *mem = NULL;
  if (scratch) {
    st = strand__alloc_aligned(scratch, SESSION_ALIGNMENT, STRAND_MEMORY_SCRATCH, &mem);
    if (st) return st;
  }
  kc.scratch = mem ? mem : executor_empty_data();
  kc.scratch_size = scratch;
  if (!shared) st = executor_run_kernel(s, k, kernel, &kc);
  if (mem) strand__free_aligned(mem, scratch, STRAND_MEMORY_SCRATCH);
  for (size_t i = 0; i < node->n_outputs && !st && shaped_by_run; i++)
    if (ctx->outs[i] && !ctx->outs[i]->data)
      st = strand__fail(STRAND_E_INTERNAL, "output %zu: the kernel gave none", i);
  if (st) return st;

  ctx->step_node[step] = (uint32_t)k;
  ctx->step_scratch[step] = scratch;
  for (size_t i = 0; i < node->n_outputs; i++)
    if (ctx->outs[i]) {
      ctx->first_step[sn->outputs[i]] = step;
      ctx->last_step[sn->outputs[i]] = step;
    }
  for (size_t i = 0; i < node->n_inputs; i++) {
    int32_t v = node->inputs[i];
    if (v < 0) continue;
    ctx->last_step[v] = step;
    release_use(ctx, v);
  }
  for (size_t i = 0; i < sn->n_reads; i++) {
    ctx->last_step[sn->reads[i]] = step;
    release_use(ctx, sn->reads[i]);
  }
  return STRAND_OK;
}

strand_status executor_run_planning(run_call *call, plan **out) {
  strand_session *s = call->session;
  const graph *g = s->graph;
  run_context *ctx = call->ctx;
  size_t n_steps = executor_mark_needed(s, ctx, call->n_slots);
  memset(ctx->uses, 0, g->n_values * sizeof *ctx->uses);
  for (size_t k = 0; k < g->n_nodes; k++) {
    if (!ctx->node_needed[k]) continue;
    const graph_node *node = &g->nodes[k];
    for (size_t i = 0; i < node->n_inputs; i++)
      if (node->inputs[i] >= 0) ctx->uses[node->inputs[i]]++;
    for (size_t i = 0; i < s->nodes[k].n_reads; i++) ctx->uses[s->nodes[k].reads[i]]++;
  }
  strand_status st = STRAND_OK;
  uint32_t step = 0;
  for (size_t k = 0; k < g->n_nodes && !st; k++) {
    if (!ctx->node_needed[k]) continue;
    st = between_kernels(call, &g->nodes[k]);
    if (st) break;
    st = plan_node(call, k, step++);
    if (st) st = graph_node_context(st, g, &g->nodes[k]);
  }
  if (!st) st = copy_outputs(call);
  free_buffers(g, ctx);
  if (!st && out) st = plan_build(s, ctx, n_steps, out);
  return st;
}

/* ---- the planned run ---------------------------------------------------------- */

strand_status executor_run_planned(run_call *call, const plan *p) {
  strand_session *s = call->session;
  const graph *g = s->graph;
  run_context *ctx = call->ctx;
  /* The output tensors first: a wrong caller-supplied one fails before any
   * kernel runs. */
  for (size_t i = 0; i < call->n_slots; i++) {
    int32_t v = ctx->slot_value[i];
    const plan_value *pv = &p->values[v];
    if (pv->place != PLAN_OUTPUT || ctx->value_slot[v] != (int32_t)i) continue;
    void *data;
    strand_status st =
        executor_slot_target(call, i, (strand_dtype)pv->dtype, pv->rank, p->dims + pv->dims_at, &data);
    if (st) return st;
    ctx->views[v].data = data;
  }
  strand_status st = session_arena_reserve(s, ctx, p->arena_size);
  if (st) return st;
  unsigned char *arena = ctx->arena;
  for (size_t v = 0; v < g->n_values; v++) {
    const plan_value *pv = &p->values[v];
    if (pv->place == PLAN_NONE) continue;
    kernel_tensor *t = &ctx->views[v];
    t->dtype = (strand_dtype)pv->dtype;
    t->rank = pv->rank;
    memcpy(t->dims, p->dims + pv->dims_at, pv->rank * sizeof(int64_t));
    t->count = pv->count;
    if (pv->place == PLAN_ARENA) t->data = pv->count ? arena + pv->offset : executor_empty_data();
  }
  /* Roots are bound now (arena values above, inputs and constants before
   * the run): views take their bytes. */
  for (size_t i = 0; i < p->n_views; i++)
    ctx->views[p->views[i].value].data =
        (unsigned char *)ctx->views[p->views[i].root].data + p->views[i].offset;
  for (size_t k = 0; k < p->n_steps; k++) {
    const plan_step *step = &p->steps[k];
    const graph_node *node = &g->nodes[step->node];
    st = between_kernels(call, node);
    if (st) return st;
    const session_node *sn = &s->nodes[step->node];
    for (size_t i = 0; i < sn->n_inputs; i++) ctx->ins[i] = input_of(sn, node, ctx, i);
    for (size_t i = 0; i < node->n_outputs; i++) {
      int32_t v = sn->outputs[i];
      ctx->outs[i] = v >= 0 && p->values[v].place != PLAN_NONE ? &ctx->views[v] : NULL;
    }
    kernel_call kc = {g, node, sn->params, sn->n_inputs, ctx->ins, node->n_outputs, ctx->outs,
                      step->scratch_size ? arena + step->scratch_offset : executor_empty_data(),
                      step->scratch_size, call->threads, NULL, NULL, NULL};
    /* KERNEL_SHAPED_BY_RUN kernels keep their sessions off the plan cache. */
    if (sn->kernel->flags & KERNEL_SHAPED_BY_RUN)
      return strand__fail(STRAND_E_INTERNAL, "a planned run reached node \"%s\" (%s)", node->name,
                          node->op_type);
    st = executor_run_kernel(s, step->node, sn->kernel, &kc);
    if (st) return graph_node_context(st, g, node);
  }
  return copy_outputs(call);
}
