/*
 * session.c — the public session object: creation (a kernel for every node,
 * prepared once), the checks of a run's arguments, the plan cache and the
 * pool of run contexts.
 *
 * A run goes: take a context from the pool; bind and check the inputs (dtype,
 * rank, dims, symbolic dims across inputs) and the requested outputs; look
 * the plan up by the input shapes; run planned (executor_run_planned) or,
 * on a miss, plan while running (executor_run_planning) and cache the plan;
 * hand the outputs over; give the context back. The session lock is held
 * only to look up or insert a plan and to take or give a context.
 *
 * Around that, in strand_session_run_with_options: the run's stop condition
 * (token, deadline) is set up; an eligible run goes through the batcher
 * (batcher.c), which stacks it with others and runs the stack through the
 * same path; a session bound to a dispatcher executes each run (or stacked
 * run) on the dispatcher's thread.
 */
#include "runtime/executor.h"
#include "runtime/thread_pool.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char run_fn[] = "strand_session_run";

/* ---- creation ----------------------------------------------------------------- */

static void free_parts(strand_session *s) {
  const graph *g = s->graph;
  for (size_t i = 0; i < s->n_plans; i++) plan_release(s->plans[i]);
  s->n_plans = 0;
  run_context *c = s->pool;
  while (c) {
    run_context *next = c->next;
    if (c->arena) strand__free_aligned(c->arena, c->arena_size, STRAND_MEMORY_SCRATCH);
    strand__free_aligned(c, c->bytes, STRAND_MEMORY_SCRATCH);
    c = next;
  }
  s->pool = NULL;
  kernel_free_blocks(&s->blocks);
  if (g) {
    strand__free(s->nodes, g->n_nodes * sizeof *s->nodes, STRAND_MEMORY_OTHER);
    strand__free(s->templates, g->n_values * sizeof *s->templates, STRAND_MEMORY_OTHER);
  }
  s->nodes = NULL;
  s->templates = NULL;
}

static void session_destroy(strand__object *self) {
  strand_session *s = (strand_session *)self;
  free_parts(s);
  if (s->batcher) batcher_free(s->batcher);
  pthread_mutex_destroy(&s->lock);
  strand_model_release(s->model);
  /* Last: on the dispatcher's own thread this may end the dispatcher. */
  strand_dispatcher_release(s->dispatcher);
}

/* Lists dtypes as "(float32, int64, -)" for messages. */
static const char *dtype_list(const strand_dtype *dtypes, size_t n, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "(");
  for (size_t i = 0; i < n && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                             dtypes[i] == STRAND_DTYPE_UNDEFINED ? "-"
                                                                 : strand_dtype_name(dtypes[i]));
  if (used < size) snprintf(buf + used, size - used, ")");
  return buf;
}

/* Finds and prepares the kernel of node k. `dtypes` has room for the
 * node's inputs. */
static strand_status bind_node(strand_session *s, size_t k, strand_dtype *dtypes) {
  const graph *g = s->graph;
  const graph_node *node = &g->nodes[k];
  session_node *sn = &s->nodes[k];
  if (!sn->outputs) sn->outputs = node->outputs; /* fold.c may have redirected them */
  if (!sn->n_inputs) sn->n_inputs = node->n_inputs;
  if (node->folded || sn->absorbed) return STRAND_OK;
  for (size_t i = 0; i < node->n_inputs; i++)
    dtypes[i] = node->inputs[i] >= 0 ? g->values[node->inputs[i]].dtype : STRAND_DTYPE_UNDEFINED;
  bool op_known;
  const kernel_def *kernel =
      kernel_find(node->domain, node->op_type, node->opset, dtypes, node->n_inputs, &op_known);
  if (!kernel) {
    char types[256];
    const char *domain = node->domain[0] ? node->domain : "ai.onnx";
    strand_status st =
        op_known ? strand__fail(STRAND_E_UNSUPPORTED, "no %s kernel for input types %s", node->op_type,
                                dtype_list(dtypes, node->n_inputs, types, sizeof types))
                 : strand__fail(STRAND_E_UNSUPPORTED, "no kernel for op %s of domain %s at opset "
                                "%lld", node->op_type, domain, (long long)node->opset);
    return graph_node_context(st, g, node);
  }
  sn->kernel = kernel;
  strand_status st = session_fold_weights(s, k);
  if (st) return graph_node_context(st, g, node);
  /* The constants fold.c gave the node, as the kernel's prepare reads them. */
  onnx_tensor folded[SESSION_MAX_CONSTANTS];
  const onnx_tensor *constants[SESSION_MAX_CONSTANTS] = {NULL};
  size_t n_constants = sn->constants ? sn->n_inputs : 0;
  for (size_t i = 0; i < n_constants; i++) {
    const kernel_tensor *t = &sn->constants[i];
    if (!t->data) continue;
    folded[i] = (onnx_tensor){.name = "", .dtype = t->dtype, .rank = t->rank, .dims = t->dims,
                              .count = t->count,
                              .byte_size = t->count * strand_dtype_size(t->dtype),
                              .data = t->data};
    constants[i] = &folded[i];
  }
  kernel_prepare p = {g, node, &s->blocks, n_constants ? constants : NULL, n_constants};
  st = kernel->prepare ? kernel->prepare(&p, &sn->params) : STRAND_OK;
  if (!st) st = kernel_outer_reads(&p, g, node, &sn->reads, &sn->n_reads);
  if (st) return graph_node_context(st, g, node);
  session_fold_release(s, k);
  return STRAND_OK;
}

/* Whether every shape depends on the input shapes only: no node reads, to
 * shape its outputs, data that derives from input data, and none declares
 * a data-dependent shape. `tainted` has a flag per value. */
static bool shapes_from_input_shapes(const strand_session *s, bool *tainted) {
  const graph *g = s->graph;
  for (size_t v = 0; v < g->n_values; v++) tainted[v] = (g->values[v].flags & GRAPH_VALUE_INPUT) != 0;
  for (size_t k = 0; k < g->n_nodes; k++) {
    const graph_node *node = &g->nodes[k];
    const kernel_def *kernel = s->nodes[k].kernel;
    if (!kernel) continue;
    if (kernel->flags & (KERNEL_DATA_DEPENDENT_SHAPE | KERNEL_SHAPED_BY_RUN)) return false;
    bool any = false;
    for (size_t i = 0; i < node->n_inputs; i++) {
      int32_t v = node->inputs[i];
      if (v < 0 || !tainted[v]) continue;
      if (i < 32 && (kernel->shape_inputs >> i) & 1u) return false;
      any = true;
    }
    if (kernel->flags & KERNEL_SHAPE_ONLY) any = false;
    const int32_t *outputs = s->nodes[k].outputs; /* fold.c may have redirected them */
    for (size_t i = 0; i < node->n_outputs; i++)
      if (outputs[i] >= 0) tainted[outputs[i]] = any;
  }
  return true;
}

static void fill_templates(strand_session *s) {
  const graph *g = s->graph;
  for (size_t v = 0; v < g->n_values; v++) {
    kernel_tensor *t = &s->templates[v];
    t->data = executor_empty_data();
    const graph_value *gv = &g->values[v];
    if (!(gv->flags & GRAPH_VALUE_CONSTANT) || !gv->constant) continue;
    const onnx_tensor *c = gv->constant;
    t->dtype = c->dtype;
    t->rank = c->rank;
    for (size_t d = 0; d < c->rank; d++) t->dims[d] = c->dims[d];
    t->count = c->count;
    if (c->data && c->byte_size) t->data = (void *)(uintptr_t)c->data;
  }
}

STRAND_NOINLINE strand_status strand_session_create(strand_model *model,
                                                    const strand_session_options *options,
                                                    strand_session **out) {
  strand__init();
  static const char fn[] = "strand_session_create";
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out is NULL", fn);
  strand_status st = strand__object_check(model, STRAND_KIND_MODEL, fn);
  if (st) return st;
  /* Callers built against an older header pass a smaller struct: the
   * fields they do not know take their defaults. */
  const size_t first_version = offsetof(strand_session_options, intra_op_threads) + sizeof(unsigned);
  strand_session_options opt;
  memset(&opt, 0, sizeof opt);
  if (options) {
    if (options->struct_size < first_version)
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: options->struct_size is %zu; set it "
                          "to sizeof(strand_session_options), %zu", fn, options->struct_size,
                          sizeof opt);
    memcpy(&opt, options, options->struct_size < sizeof opt ? options->struct_size : sizeof opt);
    opt.struct_size = sizeof opt;
  }
  if (opt.dispatcher) {
    st = strand_dispatcher_retain(opt.dispatcher);
    if (st) return strand__fail_context(st, "%s: options->dispatcher", fn);
  }

  void *shell;
  st = strand__calloc(sizeof(strand_session), STRAND_MEMORY_OTHER, &shell);
  if (st) {
    strand_dispatcher_release(opt.dispatcher);
    return strand__fail_context(st, "%s", fn);
  }
  strand_session *s = shell;
  const graph *g = strand__model_graph(model);
  s->intra_op_threads = opt.intra_op_threads;
  s->slice_rows = opt.slice_rows;
  void *nodes = NULL, *templates = NULL, *scratch = NULL;
  size_t max_in = SESSION_MAX_CONSTANTS, max_out = 1; /* fold.c may add a Conv's B */
  for (size_t k = 0; k < g->n_nodes; k++) {
    if (g->nodes[k].n_inputs > max_in) max_in = g->nodes[k].n_inputs;
    if (g->nodes[k].n_outputs > max_out) max_out = g->nodes[k].n_outputs;
  }
  size_t scratch_bytes = max_in * sizeof(strand_dtype);
  if (g->n_values * sizeof(uint32_t) > scratch_bytes) scratch_bytes = g->n_values * sizeof(uint32_t);
  st = strand__calloc(g->n_nodes * sizeof *s->nodes, STRAND_MEMORY_OTHER, &nodes);
  if (!st) {
    s->graph = g;
    s->nodes = nodes;
    st = strand__calloc(g->n_values * sizeof *s->templates, STRAND_MEMORY_OTHER, &templates);
  }
  if (!st) {
    s->templates = templates;
    st = strand__alloc(scratch_bytes, STRAND_MEMORY_OTHER, &scratch);
  }
  if (!st) st = session_fold_norms(s, scratch);
  for (size_t k = 0; k < g->n_nodes && !st; k++) st = bind_node(s, k, scratch);
  if (!st) {
    s->cacheable = shapes_from_input_shapes(s, scratch);
    s->sliceable = s->cacheable && opt.slice_rows != STRAND_SLICE_OFF && session_batch_symbol(g);
    st = session_fuse(s, scratch);
    fill_templates(s);
  }
  strand__free(scratch, scratch_bytes, STRAND_MEMORY_OTHER);
  if (!st && opt.batch_max_rows > 1) {
    st = batcher_create(s, opt.batch_max_rows, opt.batch_delay_us, &s->batcher);
  }
  if (st) {
    free_parts(s);
    if (s->batcher) batcher_free(s->batcher);
    strand__free(s, sizeof *s, STRAND_MEMORY_OTHER);
    strand_dispatcher_release(opt.dispatcher);
    return st;
  }
  s->max_node_inputs = max_in;
  s->max_node_outputs = max_out;
  size_t symbols = 0;
  for (size_t j = 0; j < g->n_inputs; j++) {
    int32_t rank = g->values[g->inputs[j]].rank;
    symbols += rank > 0 ? (size_t)rank : 0;
  }
  s->max_symbols = symbols;
  s->max_key_length = g->n_inputs * (2 + STRAND_MAX_RANK) + g->n_outputs;
  s->weight_bytes = kernel_blocks_bytes(s->blocks);

  strand__object_retain(&model->header, fn);
  s->model = model;
  s->dispatcher = opt.dispatcher; /* its reference was taken above */
  pthread_mutex_init(&s->lock, NULL);
  atomic_init(&s->runs, 0);
  atomic_init(&s->runs_failed, 0);
  atomic_init(&s->planning_runs, 0);
  atomic_init(&s->plans_evicted, 0);
  atomic_init(&s->runs_canceled, 0);
  atomic_init(&s->batches, 0);
  atomic_init(&s->batched_runs, 0);
  atomic_init(&s->batched_rows, 0);
  atomic_init(&s->batch_wait_ns, 0);
  atomic_init(&s->sliced_runs, 0);
  atomic_init(&s->slices, 0);
  strand__object_init(&s->header, STRAND_KIND_SESSION, sizeof *s, session_destroy,
                      __builtin_return_address(0));
  strand__object_add_bytes(&s->header, (int64_t)s->weight_bytes);
  *out = s;
  return STRAND_OK;
}

strand_status strand_session_retain(strand_session *session) {
  strand_status st = strand__object_check(session, STRAND_KIND_SESSION, "strand_session_retain");
  if (st) return st;
  return strand__object_retain(&session->header, "strand_session_retain");
}

void strand_session_release(strand_session *session) {
  strand__object_release_checked(session, STRAND_KIND_SESSION, "strand_session_release");
}

strand_status strand_session_model(const strand_session *session, strand_model **out) {
  static const char fn[] = "strand_session_model";
  strand_status st = strand__object_check(session, STRAND_KIND_SESSION, fn);
  if (st) return st;
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out is NULL", fn);
  *out = session->model;
  return STRAND_OK;
}

strand_status strand_session_get_stats(const strand_session *session, strand_session_stats *out) {
  static const char fn[] = "strand_session_get_stats";
  strand_status st = strand__object_check(session, STRAND_KIND_SESSION, fn);
  if (st) return st;
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out is NULL", fn);
  /* Callers built against an older header pass a smaller struct: they get
   * the fields they know. */
  const size_t first_version = offsetof(strand_session_stats, runs) + sizeof(uint64_t);
  const size_t room = out->struct_size;
  if (room < first_version)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out->struct_size is %zu; set it to "
                        "sizeof(strand_session_stats), %zu", fn, room, sizeof *out);
  strand_session *s = (strand_session *)(uintptr_t)session;
  strand_session_stats all = {.struct_size = room < sizeof all ? room : sizeof all};
  all.runs = atomic_load(&s->runs);
  all.runs_failed = atomic_load(&s->runs_failed);
  all.planning_runs = atomic_load(&s->planning_runs);
  all.plans_evicted = atomic_load(&s->plans_evicted);
  all.runs_canceled = atomic_load(&s->runs_canceled);
  all.batches = atomic_load(&s->batches);
  all.batched_runs = atomic_load(&s->batched_runs);
  all.batched_rows = atomic_load(&s->batched_rows);
  all.batch_wait_ns = atomic_load(&s->batch_wait_ns);
  all.sliced_runs = atomic_load(&s->sliced_runs);
  all.slices = atomic_load(&s->slices);
  all.weight_bytes = s->weight_bytes;
  pthread_mutex_lock(&s->lock);
  all.plans_cached = s->n_plans;
  all.arenas = s->contexts;
  all.arena_bytes = s->arena_bytes;
  pthread_mutex_unlock(&s->lock);
  memcpy(out, &all, all.struct_size);
  return STRAND_OK;
}

/* ---- per-node profile ------------------------------------------------------- */

strand_status strand_session_set_profiling(strand_session *session, int on) {
  strand_status st = strand__object_check(session, STRAND_KIND_SESSION,
                                          "strand_session_set_profiling");
  if (st) return st;
  atomic_store_explicit(&session->profiling, on != 0, memory_order_relaxed);
  return STRAND_OK;
}

strand_status strand_session_get_profile(const strand_session *session,
                                         strand_node_profile_visitor visit, void *context) {
  static const char fn[] = "strand_session_get_profile";
  strand_status st = strand__object_check(session, STRAND_KIND_SESSION, fn);
  if (st) return st;
  if (!visit) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: visit is NULL", fn);
  const graph *g = session->graph;
  for (size_t k = 0; k < g->n_nodes; k++) {
    const session_node *sn = &session->nodes[k];
    strand_node_profile node = {
        k, g->nodes[k].name, g->nodes[k].op_type,
        atomic_load_explicit(&sn->profile_calls, memory_order_relaxed),
        atomic_load_explicit(&sn->profile_ns, memory_order_relaxed),
        sn->kernel ? kernel_variant(sn->kernel, sn->params) : ""};
    visit(&node, context);
  }
  return STRAND_OK;
}

strand_status strand_session_reset_profile(strand_session *session) {
  strand_status st = strand__object_check(session, STRAND_KIND_SESSION,
                                          "strand_session_reset_profile");
  if (st) return st;
  for (size_t k = 0; k < session->graph->n_nodes; k++) {
    atomic_store_explicit(&session->nodes[k].profile_calls, 0, memory_order_relaxed);
    atomic_store_explicit(&session->nodes[k].profile_ns, 0, memory_order_relaxed);
  }
  return STRAND_OK;
}

/* ---- run contexts ----------------------------------------------------------- */

typedef struct layout {
  size_t size;
  bool overflow;
} layout;

static size_t take(layout *l, size_t count, size_t elem) {
  size_t bytes, start = (l->size + 15) & ~(size_t)15;
  if (!strand__size_mul(count, elem, &bytes) || !strand__size_add(start, bytes, &l->size))
    l->overflow = true;
  return start;
}

static strand_status context_new(strand_session *s, run_context **out) {
  const graph *g = s->graph;
  size_t nv = g->n_values, nn = g->n_nodes, ni = g->n_inputs, no = g->n_outputs;
  layout l = {(sizeof(run_context) + 63) & ~(size_t)63, false};
  size_t o_views = take(&l, nv, sizeof(kernel_tensor));
  size_t o_ins = take(&l, s->max_node_inputs, sizeof(kernel_tensor *));
  size_t o_outs = take(&l, s->max_node_outputs, sizeof(kernel_tensor *));
  size_t o_dtypes = take(&l, s->max_node_inputs, sizeof(strand_dtype));
  size_t o_bound = take(&l, ni, sizeof(strand_tensor *));
  size_t o_input_temp = take(&l, ni, sizeof(void *));
  size_t o_slot_value = take(&l, no, sizeof(int32_t));
  size_t o_value_slot = take(&l, nv, sizeof(int32_t));
  size_t o_slot_tensor = take(&l, no, sizeof(strand_tensor *));
  size_t o_slot_made = take(&l, no, sizeof(bool));
  size_t o_slot_temp = take(&l, no, sizeof(void *));
  size_t o_symbols = take(&l, s->max_symbols, sizeof(run_symbol));
  size_t o_key = take(&l, s->max_key_length, sizeof(int64_t));
  size_t o_buffers = take(&l, nv, sizeof(void *));
  size_t o_buffer_sizes = take(&l, nv, sizeof(size_t));
  size_t o_uses = take(&l, nv, sizeof(uint32_t));
  size_t o_first = take(&l, nv, sizeof(uint32_t));
  size_t o_last = take(&l, nv, sizeof(uint32_t));
  size_t o_node_needed = take(&l, nn, sizeof(bool));
  size_t o_value_needed = take(&l, nv, sizeof(bool));
  size_t o_step_scratch = take(&l, nn, sizeof(size_t));
  size_t o_step_node = take(&l, nn, sizeof(uint32_t));
  if (l.overflow)
    return strand__fail(STRAND_E_OUT_OF_MEMORY, "a run context for %zu values is too large", nv);
  void *mem;
  strand_status st = strand__alloc_aligned(l.size, SESSION_ALIGNMENT, STRAND_MEMORY_SCRATCH, &mem);
  if (st) return st;
  memset(mem, 0, l.size);
  unsigned char *base = mem;
  run_context *c = mem;
  c->bytes = l.size;
  c->views = (kernel_tensor *)(base + o_views);
  c->ins = (const kernel_tensor **)(base + o_ins);
  c->outs = (kernel_tensor **)(base + o_outs);
  c->dtypes = (strand_dtype *)(base + o_dtypes);
  c->bound = (const strand_tensor **)(base + o_bound);
  c->input_temp = (void **)(base + o_input_temp);
  c->slot_value = (int32_t *)(base + o_slot_value);
  c->value_slot = (int32_t *)(base + o_value_slot);
  c->slot_tensor = (strand_tensor **)(base + o_slot_tensor);
  c->slot_made = (bool *)(base + o_slot_made);
  c->slot_temp = (void **)(base + o_slot_temp);
  c->symbols = (run_symbol *)(base + o_symbols);
  c->key = (int64_t *)(base + o_key);
  c->buffers = (void **)(base + o_buffers);
  c->buffer_sizes = (size_t *)(base + o_buffer_sizes);
  c->uses = (uint32_t *)(base + o_uses);
  c->first_step = (uint32_t *)(base + o_first);
  c->last_step = (uint32_t *)(base + o_last);
  c->node_needed = (bool *)(base + o_node_needed);
  c->value_needed = (bool *)(base + o_value_needed);
  c->step_scratch = (size_t *)(base + o_step_scratch);
  c->step_node = (uint32_t *)(base + o_step_node);
  if (nv) memcpy(c->views, s->templates, nv * sizeof(kernel_tensor));
  for (size_t v = 0; v < nv; v++) c->value_slot[v] = -1;
  *out = c;
  return STRAND_OK;
}

static strand_status context_take(strand_session *s, run_context **out) {
  pthread_mutex_lock(&s->lock);
  run_context *c = s->pool;
  if (c) s->pool = c->next;
  pthread_mutex_unlock(&s->lock);
  if (!c) {
    strand_status st = context_new(s, &c);
    if (st) return st;
    strand__object_add_bytes(&s->header, (int64_t)c->bytes);
    pthread_mutex_lock(&s->lock);
    s->contexts++;
    pthread_mutex_unlock(&s->lock);
  }
  c->next = NULL;
  *out = c;
  return STRAND_OK;
}

static void context_give(strand_session *s, run_context *c) {
  pthread_mutex_lock(&s->lock);
  c->next = s->pool;
  s->pool = c;
  pthread_mutex_unlock(&s->lock);
}

/* Grows the context's arena to hold `size` bytes. */
strand_status session_arena_reserve(strand_session *s, run_context *c, size_t size) {
  if (c->arena && c->arena_size >= size) return STRAND_OK;
  void *mem;
  strand_status st =
      strand__alloc_aligned(size ? size : SESSION_ALIGNMENT, SESSION_ALIGNMENT, STRAND_MEMORY_SCRATCH, &mem);
  if (st) return st;
  size_t old = c->arena ? c->arena_size : 0;
  if (c->arena) strand__free_aligned(c->arena, c->arena_size, STRAND_MEMORY_SCRATCH);
  c->arena = mem;
  c->arena_size = size ? size : SESSION_ALIGNMENT;
  strand__object_add_bytes(&s->header, (int64_t)c->arena_size - (int64_t)old);
  pthread_mutex_lock(&s->lock);
  s->arena_bytes += c->arena_size - old;
  pthread_mutex_unlock(&s->lock);
  return STRAND_OK;
}

/* ---- the plan cache ---------------------------------------------------------- */

/* Returns the cached plan for ctx->key with a reference for the caller, or
 * NULL. A hit moves the plan to the front. */
static plan *cache_find(strand_session *s, const run_context *c, uint64_t hash) {
  plan *found = NULL;
  pthread_mutex_lock(&s->lock);
  for (size_t i = 0; i < s->n_plans; i++) {
    plan *p = s->plans[i];
    if (p->hash != hash || p->key_length != c->key_length ||
        memcmp(p->key, c->key, c->key_length * sizeof(int64_t)) != 0)
      continue;
    memmove(&s->plans[1], &s->plans[0], i * sizeof(plan *));
    s->plans[0] = p;
    plan_retain(p);
    found = p;
    break;
  }
  pthread_mutex_unlock(&s->lock);
  return found;
}

/* Inserts `p` (the caller keeps its reference) unless an equal plan is
 * already there; evicts the least recently used plan when full. */
static void cache_insert(strand_session *s, plan *p) {
  plan *evicted = NULL;
  pthread_mutex_lock(&s->lock);
  bool present = false;
  for (size_t i = 0; i < s->n_plans && !present; i++)
    present = s->plans[i]->hash == p->hash && s->plans[i]->key_length == p->key_length &&
              memcmp(s->plans[i]->key, p->key, p->key_length * sizeof(int64_t)) == 0;
  if (!present) {
    if (s->n_plans == SESSION_MAX_PLANS) evicted = s->plans[--s->n_plans];
    memmove(&s->plans[1], &s->plans[0], s->n_plans * sizeof(plan *));
    s->plans[0] = p;
    s->n_plans++;
    plan_retain(p);
  }
  pthread_mutex_unlock(&s->lock);
  if (evicted) {
    atomic_fetch_add(&s->plans_evicted, 1);
    plan_release(evicted);
  }
}

/* ---- binding a run's arguments ------------------------------------------------ */

static const char *shape_text(size_t rank, const int64_t *dims, char *buf, size_t size) {
  size_t n = (size_t)snprintf(buf, size, "[");
  for (size_t i = 0; i < rank && n < size; i++)
    n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)dims[i]);
  if (n < size) snprintf(buf + n, size - n, "]");
  return buf;
}

static strand_status bind_symbol(run_context *c, const char *name, int64_t value,
                                 const char *input) {
  for (size_t i = 0; i < c->n_symbols; i++) {
    run_symbol *sym = &c->symbols[i];
    if (strcmp(sym->name, name) != 0) continue;
    if (sym->value == value) return STRAND_OK;
    return strand__fail(STRAND_E_SHAPE, "dimension \"%s\" is %lld in input \"%s\" but %lld in "
                        "input \"%s\"", name, (long long)sym->value, sym->input, (long long)value,
                        input);
  }
  c->symbols[c->n_symbols++] = (run_symbol){name, value, input};
  return STRAND_OK;
}

static bool misaligned(const void *data, strand_dtype dtype) {
  size_t item = strand_dtype_size(dtype);
  return data && item > 1 && ((uintptr_t)data % item) != 0;
}

static strand_status check_input(run_context *c, const graph_value *v, const strand_tensor *t) {
  if (v->dtype != STRAND_DTYPE_UNDEFINED && t->dtype != v->dtype)
    return strand__fail(STRAND_E_DTYPE, "input \"%s\": expected %s, given %s", v->name,
                        strand_dtype_name(v->dtype), strand_dtype_name(t->dtype));
  if (v->rank < 0) return STRAND_OK;
  char want[256], have[256];
  if (t->rank != (size_t)v->rank)
    return strand__fail(STRAND_E_SHAPE, "input \"%s\" has rank %zu (shape %s), expected rank %d "
                        "(%s)", v->name, t->rank, shape_text(t->rank, t->dims, have, sizeof have),
                        (int)v->rank, graph_shape_text(v->rank, v->dims, want, sizeof want));
  for (size_t d = 0; d < t->rank; d++) {
    const graph_dim *dim = &v->dims[d];
    if (dim->value >= 0 && dim->value != t->dims[d])
      return strand__fail(STRAND_E_SHAPE, "input \"%s\": dimension %zu is %lld, expected %lld "
                          "(shape %s, expected %s)", v->name, d, (long long)t->dims[d],
                          (long long)dim->value, shape_text(t->rank, t->dims, have, sizeof have),
                          graph_shape_text(v->rank, v->dims, want, sizeof want));
    if (dim->value < 0 && dim->param) {
      strand_status st = bind_symbol(c, dim->param, t->dims[d], v->name);
      if (st) return st;
    }
  }
  return STRAND_OK;
}

static strand_status bind_inputs(run_call *call, const char *const *names,
                                 const strand_tensor *const *tensors, size_t n) {
  const graph *g = call->session->graph;
  run_context *c = call->ctx;
  if (n && (!names || !tensors))
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: %s is NULL for %zu inputs", run_fn,
                        names ? "inputs" : "input_names", n);
  for (size_t i = 0; i < n; i++) {
    if (!names[i])
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: input_names[%zu] is NULL", run_fn, i);
    size_t j = 0;
    while (j < g->n_inputs && strcmp(g->values[g->inputs[j]].name, names[i]) != 0) j++;
    if (j == g->n_inputs)
      return strand__fail(STRAND_E_NOT_FOUND, "%s: the model has no input named \"%s\"", run_fn,
                          names[i]);
    if (c->bound[j])
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: input \"%s\" is given twice", run_fn,
                          names[i]);
    if (!tensors[i])
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: inputs[%zu] (\"%s\") is NULL", run_fn, i,
                          names[i]);
    strand_status st = strand__object_check(tensors[i], STRAND_KIND_TENSOR, run_fn);
    if (st) return strand__fail_context(st, "input \"%s\"", names[i]);
    st = check_input(c, &g->values[g->inputs[j]], tensors[i]);
    if (st) return st;
    c->bound[j] = tensors[i];
  }
  for (size_t j = 0; j < g->n_inputs; j++)
    if (!c->bound[j])
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: input \"%s\" is not given (the model "
                          "has %zu input%s)", run_fn, g->values[g->inputs[j]].name, g->n_inputs,
                          g->n_inputs == 1 ? "" : "s");
  /* Views of the inputs; data not aligned to its element size is copied. */
  for (size_t j = 0; j < g->n_inputs; j++) {
    const strand_tensor *t = c->bound[j];
    kernel_tensor *view = &c->views[g->inputs[j]];
    view->dtype = t->dtype;
    view->rank = t->rank;
    memcpy(view->dims, t->dims, t->rank * sizeof(int64_t));
    view->count = t->element_count;
    view->data = t->byte_size ? t->data : executor_empty_data();
    if (t->byte_size && misaligned(t->data, t->dtype)) {
      strand_status st = strand__alloc_aligned(t->byte_size, SESSION_ALIGNMENT,
                                               STRAND_MEMORY_SCRATCH, &c->input_temp[j]);
      if (st) return st;
      memcpy(c->input_temp[j], t->data, t->byte_size);
      view->data = c->input_temp[j];
    }
  }
  return STRAND_OK;
}

static bool overlaps(const strand_tensor *a, const strand_tensor *b) {
  if (!a->byte_size || !b->byte_size) return false;
  uintptr_t a0 = (uintptr_t)a->data, b0 = (uintptr_t)b->data;
  return a0 < b0 + b->byte_size && b0 < a0 + a->byte_size;
}

static strand_status bind_outputs(run_call *call, const char *const *names,
                                  strand_tensor **outputs, size_t n) {
  const graph *g = call->session->graph;
  run_context *c = call->ctx;
  if (!names && n != g->n_outputs)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: n_outputs is %zu but the model has %zu "
                        "outputs (output_names is NULL: all are returned)", run_fn, n,
                        g->n_outputs);
  if (n && !outputs)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: outputs is NULL for %zu outputs", run_fn, n);
  for (size_t i = 0; i < n; i++) {
    size_t j;
    if (names) {
      if (!names[i])
        return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: output_names[%zu] is NULL", run_fn, i);
      for (j = 0; j < g->n_outputs && strcmp(g->values[g->outputs[j]].name, names[i]) != 0; j++) {}
      if (j == g->n_outputs)
        return strand__fail(STRAND_E_NOT_FOUND, "%s: the model has no output named \"%s\"",
                            run_fn, names[i]);
      for (size_t earlier = 0; earlier < i; earlier++)
        if (strcmp(names[earlier], names[i]) == 0)
          return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: output \"%s\" is asked for twice",
                              run_fn, names[i]);
    } else {
      j = i;
    }
    int32_t v = g->outputs[j];
    const char *name = g->values[v].name;
    c->slot_value[i] = v;
    c->slot_tensor[i] = NULL;
    c->slot_made[i] = false;
    c->slot_temp[i] = NULL;
    if (c->value_slot[v] < 0) c->value_slot[v] = (int32_t)i;
    call->n_slots = i + 1; /* what unbind undoes */
    strand_tensor *t = outputs[i];
    if (!t) continue;
    strand_status st = strand__object_check(t, STRAND_KIND_TENSOR, run_fn);
    if (st) return strand__fail_context(st, "output \"%s\"", name);
    for (size_t earlier = 0; earlier < i; earlier++)
      if (outputs[earlier] && (outputs[earlier] == t || overlaps(outputs[earlier], t)))
        return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: the tensors given for outputs \"%s\" "
                            "and \"%s\" share memory", run_fn, g->values[c->slot_value[earlier]].name,
                            name);
    for (size_t k = 0; k < g->n_inputs; k++)
      if (c->bound[k] == t || overlaps(c->bound[k], t))
        return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: the tensor given for output \"%s\" "
                            "shares memory with input \"%s\"", run_fn, name,
                            g->values[g->inputs[k]].name);
    c->slot_tensor[i] = t;
  }
  return STRAND_OK;
}

/* Undoes what binding and running left in the context (not the arena). */
static void unbind(run_call *call, bool failed) {
  const graph *g = call->session->graph;
  run_context *c = call->ctx;
  for (size_t j = 0; j < g->n_inputs; j++) {
    if (c->input_temp[j])
      strand__free_aligned(c->input_temp[j], c->bound[j]->byte_size, STRAND_MEMORY_SCRATCH);
    c->input_temp[j] = NULL;
    c->bound[j] = NULL;
  }
  for (size_t i = 0; i < call->n_slots; i++) {
    strand_tensor *t = c->slot_tensor[i];
    if (c->slot_temp[i]) strand__free_aligned(c->slot_temp[i], t->byte_size, STRAND_MEMORY_SCRATCH);
    c->slot_temp[i] = NULL;
    if (c->slot_made[i]) {
      if (failed) strand_tensor_release(t);
      else call->outputs[i] = t;
    }
    c->slot_made[i] = false;
    c->slot_tensor[i] = NULL;
    c->value_slot[c->slot_value[i]] = -1;
  }
  c->n_symbols = 0;
}

/* ---- running -------------------------------------------------------------------- */

static unsigned run_threads(const strand_session *s) {
  unsigned budget = strand__threads_budget();
  unsigned want = s->intra_op_threads;
  return want && want < budget ? want : budget;
}

static strand_status run(run_call *call, const char *const *input_names,
                         const strand_tensor *const *inputs, size_t n_inputs,
                         const char *const *output_names, strand_tensor **outputs,
                         size_t n_outputs) {
  strand_session *s = call->session;
  strand_status st = bind_inputs(call, input_names, inputs, n_inputs);
  if (!st) st = bind_outputs(call, output_names, outputs, n_outputs);
  if (st) return st;
  plan_key(s, call->ctx, call->n_slots);
  uint64_t hash = plan_hash(call->ctx->key, call->ctx->key_length);
  plan *p = s->cacheable ? cache_find(s, call->ctx, hash) : NULL;
  if (p) {
    bool sliced = false;
    if (!call->whole && s->sliceable) st = slice_run(call, p, &sliced);
    if (!sliced) st = executor_run_planned(call, p);
    if (call->used) *call->used = p;
    else plan_release(p);
    return st;
  }
  atomic_fetch_add(&s->planning_runs, 1);
  plan *made = NULL;
  st = executor_run_planning(call, s->cacheable ? &made : NULL);
  if (made) {
    if (!st) cache_insert(s, made);
    if (call->used && !st) *call->used = made;
    else plan_release(made);
  }
  return st;
}

/* A run in a context from the pool. */
static strand_status run_in_context(run_call *call, const char *const *input_names,
                                    const strand_tensor *const *inputs, size_t n_inputs,
                                    const char *const *output_names, strand_tensor **outputs,
                                    size_t n_outputs) {
  strand_status st = context_take(call->session, &call->ctx);
  if (st) return strand__fail_context(st, "%s", run_fn);
  st = run(call, input_names, inputs, n_inputs, output_names, outputs, n_outputs);
  unbind(call, st != STRAND_OK);
  context_give(call->session, call->ctx);
  return st;
}

strand_status session_run_whole(strand_session *s, const run_stop *stop, const void *site,
                                unsigned threads, const char *const *input_names,
                                const strand_tensor *const *inputs, size_t n_inputs,
                                const char *const *output_names, strand_tensor **outputs,
                                size_t n_outputs, plan **used) {
  run_call call = {s, NULL, 0, outputs, threads, site, stop, true, used};
  if (used) *used = NULL;
  return run_in_context(&call, input_names, inputs, n_inputs, output_names, outputs, n_outputs);
}

strand_status session_run_here(strand_session *s, const run_stop *stop, const void *site,
                               const char *const *input_names,
                               const strand_tensor *const *inputs, size_t n_inputs,
                               const char *const *output_names, strand_tensor **outputs,
                               size_t n_outputs) {
  run_call call = {s, NULL, 0, outputs, run_threads(s), site, stop, false, NULL};
  strand__pool_run_begin();
  strand_status st =
      run_in_context(&call, input_names, inputs, n_inputs, output_names, outputs, n_outputs);
  strand__pool_run_end();
  return st;
}

/* A run handed to the session's dispatcher. */
typedef struct dispatched_run {
  strand_session *session;
  const run_stop *stop;
  const void *site;
  const char *const *input_names;
  const strand_tensor *const *inputs;
  size_t n_inputs;
  const char *const *output_names;
  strand_tensor **outputs;
  size_t n_outputs;
} dispatched_run;

static strand_status run_dispatched(void *arg) {
  const dispatched_run *r = arg;
  return session_run_here(r->session, r->stop, r->site, r->input_names, r->inputs, r->n_inputs,
                          r->output_names, r->outputs, r->n_outputs);
}

strand_status session_execute(strand_session *s, const run_stop *stop, const void *site,
                              const char *const *input_names, const strand_tensor *const *inputs,
                              size_t n_inputs, const char *const *output_names,
                              strand_tensor **outputs, size_t n_outputs) {
  if (!s->dispatcher)
    return session_run_here(s, stop, site, input_names, inputs, n_inputs, output_names, outputs,
                            n_outputs);
  dispatched_run r = {s, stop, site, input_names, inputs, n_inputs, output_names, outputs,
                      n_outputs};
  return strand_dispatcher_run(s->dispatcher, run_dispatched, &r);
}

/* Both public run functions. `options` NULL: no stop condition. */
static strand_status run_entry(strand_session *session, const strand_run_options *options,
                               const void *site, const char *fn, const char *const *input_names,
                               const strand_tensor *const *inputs, size_t n_inputs,
                               const char *const *output_names, strand_tensor **outputs,
                               size_t n_outputs) {
  strand_status st = strand__object_check(session, STRAND_KIND_SESSION, fn);
  if (st) return st;
  run_stop stop = {false, 0, NULL};
  if (options) {
    if (options->struct_size < sizeof *options)
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: options->struct_size is %zu; set it "
                          "to sizeof(strand_run_options), %zu", fn, options->struct_size,
                          sizeof *options);
    if (options->cancel) {
      st = cancel_token_check(options->cancel, fn);
      if (st) return strand__fail_context(st, "options->cancel");
    }
    stop.deadline_ns = options->deadline_ns;
    if (options->timeout_us) {
      uint64_t at = strand__now_ns() + options->timeout_us * 1000u;
      if (options->timeout_us > UINT64_MAX / 2000u) at = UINT64_MAX; /* never, in practice */
      if (!stop.deadline_ns || at < stop.deadline_ns) stop.deadline_ns = at;
    }
    stop.cancel = options->cancel;
    stop.watched = stop.cancel || stop.deadline_ns;
  }
  st = strand__object_retain(&session->header, fn);
  if (st) return st;
  /* The run watches the token through a reference of its own. */
  if (stop.cancel) strand__object_retain(cancel_token_header(options->cancel), fn);
  bool handled = false;
  if (session->batcher)
    st = batcher_run(session, &stop, site, input_names, inputs, n_inputs, output_names, outputs,
                     n_outputs, &handled);
  if (!handled)
    st = session_execute(session, &stop, site, input_names, inputs, n_inputs, output_names,
                         outputs, n_outputs);
  if (!st)
    atomic_fetch_add(&session->runs, 1);
  else if (st == STRAND_E_DEADLINE ||
           (st == STRAND_E_CANCELED && stop.cancel && cancel_token_canceled(stop.cancel)))
    atomic_fetch_add(&session->runs_canceled, 1);
  else
    atomic_fetch_add(&session->runs_failed, 1);
  if (stop.cancel) strand__object_release(cancel_token_header(options->cancel));
  strand__object_release(&session->header);
  return st;
}

STRAND_NOINLINE strand_status strand_session_run(strand_session *session,
                                                 const char *const *input_names,
                                                 const strand_tensor *const *inputs,
                                                 size_t n_inputs, const char *const *output_names,
                                                 strand_tensor **outputs, size_t n_outputs) {
  return run_entry(session, NULL, __builtin_return_address(0), run_fn, input_names, inputs,
                   n_inputs, output_names, outputs, n_outputs);
}

STRAND_NOINLINE strand_status strand_session_run_with_options(
    strand_session *session, const strand_run_options *options, const char *const *input_names,
    const strand_tensor *const *inputs, size_t n_inputs, const char *const *output_names,
    strand_tensor **outputs, size_t n_outputs) {
  return run_entry(session, options, __builtin_return_address(0),
                   "strand_session_run_with_options", input_names, inputs, n_inputs,
                   output_names, outputs, n_outputs);
}
