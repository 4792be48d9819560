/*
 * plan.c — execution plans: the key a plan is cached under, and the arena
 * layout built from the record of a planning run.
 *
 * Layout: every value the plan computes (outside output tensors) and every
 * node's scratch is an interval of steps [first, last] with a size. Sorted
 * largest first, each takes the lowest 64-byte-aligned offset where it
 * overlaps no already placed interval that is alive at the same time (a
 * greedy first fit, which is close to optimal for the chains and diamonds
 * that networks are made of).
 *
 * Views: a node that would only copy its input, or one contiguous block of
 * it, into its output (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
 * Dropout without a mask, a Transpose that moves only dims of 1 out of
 * order, a Gather at a constant index with only dims of 1 before its axis)
 * gets no step; its output is a plan_view of the input's root, and the root's
 * interval is stretched to the last step that reads any of its views. No
 * kernel writes its inputs (kernels_internal.h) and a view is never
 * written, so the shared bytes hold the root's values for as long as any
 * view of it is read.
 */
#include "runtime/executor.h"

#include <stdlib.h>
#include <string.h>

void plan_key(const strand_session *s, run_context *ctx, size_t n_slots) {
  const graph *g = s->graph;
  size_t n = 0;
  for (size_t j = 0; j < g->n_inputs; j++) {
    const kernel_tensor *t = &ctx->views[g->inputs[j]];
    ctx->key[n++] = (int64_t)t->dtype; /* an input declared without a dtype may vary */
    ctx->key[n++] = (int64_t)t->rank;
    for (size_t d = 0; d < t->rank; d++) ctx->key[n++] = t->dims[d];
  }
  for (size_t o = 0; o < g->n_outputs; o++) {
    int32_t v = g->outputs[o];
    bool wanted = false;
    for (size_t i = 0; i < n_slots && !wanted; i++) wanted = ctx->slot_value[i] == v;
    ctx->key[n++] = wanted;
  }
  ctx->key_length = n;
}

uint64_t plan_hash(const int64_t *key, size_t length) {
  uint64_t h = 0x9e3779b97f4a7c15u ^ length;
  for (size_t i = 0; i < length; i++) {
    h ^= (uint64_t)key[i];
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
  }
  return h;
}

void plan_retain(plan *p) { atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed); }

void plan_release(plan *p) {
  if (!p) return;
  if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_release) != 1) return;
  atomic_thread_fence(memory_order_acquire);
  strand__free_aligned(p, p->bytes, STRAND_MEMORY_OTHER);
}

/* ---- layout ----------------------------------------------------------------- */

typedef struct interval {
  size_t size;   /* a multiple of SESSION_ALIGNMENT, > 0 */
  uint32_t first, last;
  size_t offset;
  size_t *target; /* where the offset goes */
} interval;

static int larger_first(const void *x, const void *y) {
  const interval *a = *(const interval *const *)x, *b = *(const interval *const *)y;
  if (a->size != b->size) return a->size > b->size ? -1 : 1;
  if (a->first != b->first) return a->first < b->first ? -1 : 1;
  return 0;
}

/* Places the intervals; `placed` has room for n pointers. Returns the
 * arena size. */
static size_t place_all(interval **order, interval **placed, size_t n) {
  qsort(order, n, sizeof *order, larger_first);
  size_t n_placed = 0, arena = 0;
  for (size_t i = 0; i < n; i++) {
    interval *it = order[i];
    size_t offset = 0, at = 0;
    for (size_t j = 0; j < n_placed; j++) {
      const interval *p = placed[j];
      if (p->first > it->last || it->first > p->last) continue; /* never alive together */
      if (p->offset >= offset + it->size) break;               /* the gap before p fits */
      if (p->offset + p->size > offset) offset = p->offset + p->size;
    }
    it->offset = offset;
    /* Keep `placed` sorted by offset. */
    while (at < n_placed && placed[at]->offset <= offset) at++;
    memmove(&placed[at + 1], &placed[at], (n_placed - at) * sizeof *placed);
    placed[at] = it;
    n_placed++;
    if (offset + it->size > arena) arena = offset + it->size;
  }
  return arena;
}

static size_t round_up(size_t x) { return (x + SESSION_ALIGNMENT - 1) & ~(size_t)(SESSION_ALIGNMENT - 1); }

static bool computed(const graph_value *v) {
  return v->producer >= 0 && !(v->flags & GRAPH_VALUE_CONSTANT);
}

/* ---- views -------------------------------------------------------------------- */

bool plan_node_may_view(const strand_session *s, size_t k) {
  const session_node *sn = &s->nodes[k];
  const graph_node *node = &s->graph->nodes[k];
  const kernel_def *kernel = sn->kernel;
  if (kernel != &kernel_Reshape && kernel != &kernel_Flatten && kernel != &kernel_Squeeze &&
      kernel != &kernel_Unsqueeze && kernel != &kernel_Identity && kernel != &kernel_Dropout &&
      kernel != &kernel_Transpose && kernel != &kernel_Gather)
    return false;
  return node->n_inputs >= 1 && node->n_outputs >= 1 && node->inputs[0] >= 0 &&
         sn->outputs[0] >= 0 && sn->outputs[0] != node->inputs[0];
}

bool plan_view_bytes(const strand_session *s, size_t k, const kernel_tensor *views,
                     size_t *offset) {
  const graph_node *node = &s->graph->nodes[k];
  const session_node *sn = &s->nodes[k];
  const kernel_tensor *x = &views[node->inputs[0]], *y = &views[sn->outputs[0]];
  *offset = 0;
  if (x->dtype != y->dtype) return false;
  if (sn->kernel == &kernel_Gather) {
    /* The same block every run: indices fixed in the model. */
    int32_t i = node->n_inputs > 1 ? node->inputs[1] : -1;
    return i >= 0 && (s->graph->values[i].flags & GRAPH_VALUE_CONSTANT) &&
           kernel_gather_is_block(sn->params, x, &views[i], offset) &&
           *offset + y->count * strand_dtype_size(y->dtype) <= x->count * strand_dtype_size(x->dtype);
  }
  if (x->count != y->count) return false;
  return sn->kernel != &kernel_Transpose || kernel_transpose_keeps_order(sn->params, x);
}

/* The value the node at `step` would copy its input into, when it can
 * share the input's bytes instead; else -1. root[] holds the roots of the
 * values defined by earlier steps. The input's root must be a value whose
 * bytes nothing writes after its producer: an arena value, a graph input
 * (the caller's, read-only) or a constant. A value in an output tensor is
 * no root and a view is never put in one: a tensor handed to the caller
 * owns its bytes, and the run's values never live in it. */
static int32_t view_of(const strand_session *s, const run_context *ctx, size_t step,
                       const int32_t *root, size_t *offset) {
  const graph *g = s->graph;
  size_t k = ctx->step_node[step];
  const graph_node *node = &g->nodes[k];
  const session_node *sn = &s->nodes[k];
  if (!plan_node_may_view(s, k)) return -1;
  int32_t in = node->inputs[0], out = sn->outputs[0];
  /* Dropout's mask is written by its run. */
  for (size_t i = 1; i < node->n_outputs; i++)
    if (sn->outputs[i] >= 0 && ctx->value_needed[sn->outputs[i]]) return -1;
  /* The caller receives `out`: it gets bytes of its own. */
  if (ctx->value_slot[out] >= 0) return -1;
  int32_t r = root[in];
  if (computed(&g->values[r]) && ctx->value_slot[r] >= 0) return -1;
  return plan_view_bytes(s, k, ctx->views, offset) ? out : -1;
}

/* ---- building ------------------------------------------------------------------ */

strand_status plan_build(const strand_session *s, const run_context *ctx, size_t n_steps,
                         plan **out) {
  const graph *g = s->graph;
  size_t n_values = g->n_values;
  /* Working memory: intervals and their orders, then per value its root and
   * the last step its bytes are read (through any view), per step whether
   * it makes a view. */
  size_t n_items = n_steps;
  for (size_t v = 0; v < n_values; v++)
    if (ctx->value_needed[v] && computed(&g->values[v])) n_items++;
  size_t o_order = n_items * sizeof(interval);
  size_t o_at = o_order + 2 * n_items * sizeof(interval *); /* size_t-aligned */
  size_t o_root = o_at + n_values * sizeof(size_t);
  size_t o_keep = o_root + n_values * sizeof(int32_t);
  size_t o_is_view = o_keep + n_values * sizeof(uint32_t);
  size_t work_bytes = o_is_view + n_steps * sizeof(bool);
  unsigned char *work = NULL;
  strand_status st = STRAND_OK;
  if (work_bytes) st = strand__alloc(work_bytes, STRAND_MEMORY_OTHER, (void **)&work);
  if (st) return st;
  interval *items = (interval *)work;
  interval **order = (interval **)(work + o_order);
  int32_t *root = (int32_t *)(work + o_root);
  uint32_t *keep = (uint32_t *)(work + o_keep);
  size_t *at = (size_t *)(work + o_at); /* a view's first byte in its root */
  bool *is_view = (bool *)(work + o_is_view);

  for (size_t v = 0; v < n_values; v++) {
    root[v] = (int32_t)v;
    at[v] = 0;
    keep[v] = ctx->last_step[v] > ctx->first_step[v] ? ctx->last_step[v] : ctx->first_step[v];
  }
  size_t n_views = 0;
  for (size_t k = 0; k < n_steps; k++) {
    size_t offset;
    int32_t v = view_of(s, ctx, k, root, &offset);
    is_view[k] = v >= 0;
    if (v < 0) continue;
    int32_t in = g->nodes[ctx->step_node[k]].inputs[0];
    root[v] = root[in];
    at[v] = at[in] + offset;
    n_views++;
  }
  /* A root's bytes live until the last read of any of its views (a chain
   * of views has one root: their reads all count). */
  for (size_t v = 0; v < n_values; v++)
    if (root[v] != (int32_t)v && keep[v] > keep[root[v]]) keep[root[v]] = keep[v];

  size_t n_dims = 0;
  for (size_t v = 0; v < n_values; v++)
    if (ctx->value_needed[v] && computed(&g->values[v])) n_dims += ctx->views[v].rank;
  /* One block: header, key, steps, views, values, dims. */
  size_t o_key = round_up(sizeof(plan));
  size_t o_steps = o_key + round_up(ctx->key_length * sizeof(int64_t));
  size_t o_views = o_steps + round_up((n_steps - n_views) * sizeof(plan_step));
  size_t o_values = o_views + round_up(n_views * sizeof(plan_view));
  size_t o_dims = o_values + round_up(n_values * sizeof(plan_value));
  size_t total = o_dims + round_up(n_dims * sizeof(int64_t));
  void *mem;
  st = strand__alloc_aligned(total, SESSION_ALIGNMENT, STRAND_MEMORY_OTHER, &mem);
  if (st) {
    if (work) strand__free(work, work_bytes, STRAND_MEMORY_OTHER);
    return st;
  }
  memset(mem, 0, total);
  unsigned char *base = mem;
  plan *p = mem;
  atomic_init(&p->refs, 1);
  atomic_init(&p->slice_rows, 0);
  atomic_init(&p->slice_floor, 0);
  p->bytes = total;
  p->key_length = ctx->key_length;
  p->key = (int64_t *)(base + o_key);
  memcpy(p->key, ctx->key, ctx->key_length * sizeof(int64_t));
  p->hash = plan_hash(p->key, p->key_length);
  p->n_steps = n_steps - n_views;
  p->steps = (plan_step *)(base + o_steps);
  p->n_views = n_views;
  p->views = (plan_view *)(base + o_views);
  p->values = (plan_value *)(base + o_values);
  p->dims = (int64_t *)(base + o_dims);

  /* Intervals are in the planning run's steps, views' steps included. */
  size_t n = 0, dims_at = 0, kept = 0, viewed = 0;
  for (size_t k = 0; k < n_steps; k++) {
    if (is_view[k]) {
      int32_t v = s->nodes[ctx->step_node[k]].outputs[0];
      p->views[viewed++] = (plan_view){(uint32_t)v, (uint32_t)root[v], at[v]};
      continue;
    }
    plan_step *step = &p->steps[kept++];
    step->node = ctx->step_node[k];
    step->scratch_size = ctx->step_scratch[k];
    if (!step->scratch_size) continue;
    items[n] = (interval){round_up(step->scratch_size), (uint32_t)k, (uint32_t)k, 0,
                          &step->scratch_offset};
    order[n] = &items[n];
    n++;
  }
  for (size_t v = 0; v < n_values; v++) {
    if (!ctx->value_needed[v] || !computed(&g->values[v])) continue;
    const kernel_tensor *t = &ctx->views[v];
    plan_value *pv = &p->values[v];
    pv->dtype = (uint8_t)t->dtype;
    pv->rank = (uint8_t)t->rank;
    pv->dims_at = (uint32_t)dims_at;
    memcpy(p->dims + dims_at, t->dims, t->rank * sizeof(int64_t));
    dims_at += t->rank;
    pv->count = t->count;
    if (root[v] != (int32_t)v) {
      pv->place = PLAN_VIEW;
      continue;
    }
    if (ctx->value_slot[v] >= 0) {
      pv->place = PLAN_OUTPUT;
      continue;
    }
    pv->place = PLAN_ARENA;
    size_t bytes = t->count * strand_dtype_size(t->dtype);
    if (!bytes) continue;
    items[n] = (interval){round_up(bytes), ctx->first_step[v], keep[v], 0, &pv->offset};
    order[n] = &items[n];
    n++;
  }
  if (n) {
    p->arena_size = place_all(order, order + n_items, n);
    for (size_t i = 0; i < n; i++) *items[i].target = items[i].offset;
  }
  if (work) strand__free(work, work_bytes, STRAND_MEMORY_OTHER);
  *out = p;
  return STRAND_OK;
}
