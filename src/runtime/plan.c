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

strand_status plan_build(const strand_session *s, const run_context *ctx, size_t n_steps,
                         plan **out) {
  const graph *g = s->graph;
  size_t n_dims = 0, n_items = n_steps;
  for (size_t v = 0; v < g->n_values; v++) {
    if (!ctx->value_needed[v] || !computed(&g->values[v])) continue;
    n_dims += ctx->views[v].rank;
    n_items++;
  }
  /* One block: header, key, steps, values, dims. */
  size_t o_key = round_up(sizeof(plan));
  size_t o_steps = o_key + round_up(ctx->key_length * sizeof(int64_t));
  size_t o_values = o_steps + round_up(n_steps * sizeof(plan_step));
  size_t o_dims = o_values + round_up(g->n_values * sizeof(plan_value));
  size_t total = o_dims + round_up(n_dims * sizeof(int64_t));
  void *mem;
  strand_status st = strand__alloc_aligned(total, SESSION_ALIGNMENT, STRAND_MEMORY_OTHER, &mem);
  if (st) return st;
  interval *items = NULL, **order = NULL;
  size_t items_bytes = n_items * (sizeof *items + 2 * sizeof *order);
  if (n_items) {
    void *work;
    st = strand__alloc(items_bytes, STRAND_MEMORY_OTHER, &work);
    if (st) {
      strand__free_aligned(mem, total, STRAND_MEMORY_OTHER);
      return st;
    }
    items = work;
    order = (interval **)(items + n_items);
  }
  memset(mem, 0, total);
  unsigned char *base = mem;
  plan *p = mem;
  atomic_init(&p->refs, 1);
  p->bytes = total;
  p->key_length = ctx->key_length;
  p->key = (int64_t *)(base + o_key);
  memcpy(p->key, ctx->key, ctx->key_length * sizeof(int64_t));
  p->hash = plan_hash(p->key, p->key_length);
  p->n_steps = n_steps;
  p->steps = (plan_step *)(base + o_steps);
  p->values = (plan_value *)(base + o_values);
  p->dims = (int64_t *)(base + o_dims);

  size_t n = 0, dims_at = 0;
  for (size_t k = 0; k < n_steps; k++) {
    plan_step *step = &p->steps[k];
    step->node = ctx->step_node[k];
    step->scratch_size = ctx->step_scratch[k];
    if (!step->scratch_size) continue;
    items[n] = (interval){round_up(step->scratch_size), (uint32_t)k, (uint32_t)k, 0,
                          &step->scratch_offset};
    order[n] = &items[n];
    n++;
  }
  for (size_t v = 0; v < g->n_values; v++) {
    if (!ctx->value_needed[v] || !computed(&g->values[v])) continue;
    const kernel_tensor *t = &ctx->views[v];
    plan_value *pv = &p->values[v];
    pv->dtype = (uint8_t)t->dtype;
    pv->rank = (uint8_t)t->rank;
    pv->dims_at = (uint32_t)dims_at;
    memcpy(p->dims + dims_at, t->dims, t->rank * sizeof(int64_t));
    dims_at += t->rank;
    pv->count = t->count;
    if (ctx->value_slot[v] >= 0) {
      pv->place = PLAN_OUTPUT;
      continue;
    }
    pv->place = PLAN_ARENA;
    size_t bytes = t->count * strand_dtype_size(t->dtype);
    if (!bytes) continue;
    uint32_t last = ctx->last_step[v] > ctx->first_step[v] ? ctx->last_step[v] : ctx->first_step[v];
    items[n] = (interval){round_up(bytes), ctx->first_step[v], last, 0, &pv->offset};
    order[n] = &items[n];
    n++;
  }
  if (n) {
    p->arena_size = place_all(order, order + n_items, n);
    for (size_t i = 0; i < n; i++) *items[i].target = items[i].offset;
  }
  if (n_items) strand__free(items, items_bytes, STRAND_MEMORY_OTHER);
  *out = p;
  return STRAND_OK;
}
