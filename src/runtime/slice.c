/*
 * slice.c — one run of B rows made as B / S runs of S rows ("slices"),
 * spread over the run's threads, each slice on one thread from its first
 * node to its last.
 *
 * Why: a batch split op by op over two threads synchronizes at every node
 * and streams every activation of all B rows through the caches; slices
 * synchronize once and keep a slice's activations in cache. Rows are
 * independent in the models this serves, and every kernel gives a row the
 * same bytes whatever the batch, so slicing changes no output bit — when
 * the rows are independent, which rows.c proves once per plan from the
 * plans of the whole run and of a slice (plan.slice_rows keeps the
 * verdict). The first run that would slice makes its first slice alone
 * (that plans the slice), proves, then makes the rest or, without a
 * proof, runs whole.
 *
 * Slices read the caller's inputs and write the run's output tensors in
 * place, through tensors wrapped over their rows.
 */
#include "runtime/executor.h"
#include "runtime/thread_pool.h"

#include <stdio.h>
#include <string.h>

/* Working memory per slice that strand aims for when it picks the slice
 * rows itself: a slice's activations should stay in the caches (measured
 * on the benchmark models: 1-2 rows of MobileNetV2 and ResNet-18, 2 of the
 * transformer encoder did best). */
#define SLICE_WORKING_SET ((size_t)2 << 20)

/* Matrix products that give few rows per batch row (MLP layers, recurrent
 * steps: one) run below speed on fewer rows than this: when such products
 * do most of a plan's work, strand's slices give them at least this many
 * rows (LSTM 2x256: 8 rows did best). */
#define SLICE_PRODUCT_ROWS 8

/* Inputs and outputs a sliced run handles (more: it runs whole). */
#define SLICE_MAX_IO 16

/* The least work, in multiply-adds of convolutions and matrix products,
 * for which strand makes a slice by itself: a slice costs a few
 * microseconds (tensors over its rows, a context, a plan lookup, a
 * worker's wake-up), which smaller runs would feel. */
#define SLICE_MIN_WORK 2000000.0

/* Multiply-adds of node k (a Conv, MatMul or Gemm with constant weights
 * in input 1) writing `out`; 0 when not known. */
static double node_work(const strand_session *s, const plan *p, size_t k, int32_t out) {
  const graph_node *node = &s->graph->nodes[k];
  const plan_value *pv = &p->values[out];
  int32_t w = node->n_inputs > 1 ? node->inputs[1] : -1;
  if (w < 0 || !(s->graph->values[w].flags & GRAPH_VALUE_CONSTANT) || !pv->rank) return 0;
  const kernel_tensor *t = &s->templates[w];
  int64_t n = p->dims[pv->dims_at + pv->rank - 1];
  int64_t per_out = strcmp(node->op_type, "Conv") == 0 ? (t->rank && t->dims[0] ? (int64_t)t->count / t->dims[0] : 0)
                                                         : (n ? (int64_t)t->count / n : 0);
  return (double)pv->count * (double)per_out;
}

/* Multiply-adds of recurrent node k: W and R (constants) over every step
 * and row; 0 when not known. */
static double recurrent_work(const strand_session *s, const plan *p, size_t k) {
  const graph_node *node = &s->graph->nodes[k];
  double weights = 0;
  for (size_t i = 1; i <= 2 && i < node->n_inputs; i++) {
    int32_t w = node->inputs[i];
    if (w < 0 || !(s->graph->values[w].flags & GRAPH_VALUE_CONSTANT)) return 0;
    weights += (double)s->templates[w].count;
  }
  int32_t x = node->inputs[0];
  if (x < 0 || p->values[x].place == PLAN_NONE || p->values[x].rank != 3) return 0;
  /* X is [seq, batch, input] (layout 0) or [batch, seq, input]: seq x batch
   * is its element count over the input width. */
  const int64_t *dims = p->dims + p->values[x].dims_at;
  return weights * (double)dims[0] * (double)dims[1];
}

/* The fewest rows a slice of plan p's run should have: SLICE_PRODUCT_ROWS
 * when recurrent ops or products with fewer rows per batch row than that
 * do most of the work, else 1; and enough rows for SLICE_MIN_WORK (more
 * than `rows` when the run has too little work to slice). Kept in p
 * (slice_floor). */
static int64_t slice_floor(const strand_session *s, plan *p, int64_t rows) {
  int64_t floor = atomic_load_explicit(&p->slice_floor, memory_order_relaxed);
  if (floor) return floor;
  const graph *g = s->graph;
  double few = 0, other = 0;
  bool recurrent = false, unknown = false;
  for (size_t i = 0; i < p->n_steps; i++) {
    size_t k = p->steps[i].node;
    const char *op = g->nodes[k].op_type;
    int32_t v = s->nodes[k].outputs[0];
    if (strcmp(op, "LSTM") == 0 || strcmp(op, "GRU") == 0 || strcmp(op, "RNN") == 0) {
      recurrent = true;
      double work = recurrent_work(s, p, k);
      if (work == 0) unknown = true; /* counted as enough */
      other += work;
    } else if (v >= 0 && (strcmp(op, "MatMul") == 0 || strcmp(op, "Gemm") == 0 ||
                          strcmp(op, "Conv") == 0)) {
      const plan_value *pv = &p->values[v];
      int64_t n = pv->rank ? p->dims[pv->dims_at + pv->rank - 1] : 1;
      bool product = op[0] != 'C';
      bool short_rows = product && n && (int64_t)pv->count / n / rows < SLICE_PRODUCT_ROWS;
      *(short_rows ? &few : &other) += node_work(s, p, k, v);
    }
  }
  floor = recurrent || (few > 0 && few >= other) ? SLICE_PRODUCT_ROWS : 1;
  double per_row = (few + other) / (double)rows;
  if (!unknown && per_row * (double)floor < SLICE_MIN_WORK)
    floor = per_row * (double)rows < SLICE_MIN_WORK ? rows + 1
                                                     : (int64_t)(SLICE_MIN_WORK / per_row) + 1;
  atomic_store_explicit(&p->slice_floor, floor, memory_order_relaxed);
  return floor;
}

/* The slice rows for a run of `rows` rows on `threads` threads: a divisor
 * of rows, or 0 for no slicing. */
static int64_t slice_rows_for(const strand_session *s, plan *whole, int64_t rows,
                              unsigned threads) {
  if (rows < 2) return 0;
  int64_t want;
  if (s->slice_rows) {
    want = (int64_t)s->slice_rows;
  } else {
    size_t per_row = whole->arena_size / (size_t)rows;
    size_t fit = per_row ? SLICE_WORKING_SET / per_row : (size_t)rows;
    want = fit > (size_t)rows ? rows : (int64_t)fit;
    int64_t floor = slice_floor(s, whole, rows);
    if (want < floor) want = floor;
    int64_t share = (rows + threads - 1) / threads;
    if (want > share) want = share;
    if (floor > rows) return 0; /* too little work */
  }
  if (want >= rows) return 0;
  while (rows % want) want--;
  return want;
}

typedef struct slicing {
  strand_session *s;
  const run_stop *stop;
  const void *site;
  int64_t rows;                        /* per slice */
  size_t first;                        /* the first slice the loop makes */
  size_t n_inputs, n_outputs;
  const char *const *input_names;      /* graph inputs, in graph order */
  const strand_tensor *const *inputs;  /* the call's, in graph order */
  const char *const *output_names;     /* per slot */
  strand_tensor *const *outputs;       /* per slot: the whole run's */
  _Atomic int failed;                  /* the first failure is reported */
  strand_status status;
  char message[512];
} slicing;

/* A tensor over rows [first, first + rows) of t (rows on dimension 0). */
static strand_status wrap_rows(const strand_tensor *t, int64_t first, int64_t rows,
                               strand_tensor **out) {
  int64_t dims[STRAND_MAX_RANK];
  memcpy(dims, t->dims, t->rank * sizeof(int64_t));
  size_t row_bytes = t->dims[0] ? t->byte_size / (size_t)t->dims[0] : 0;
  dims[0] = rows;
  unsigned char *data = t->byte_size ? (unsigned char *)t->data + (size_t)first * row_bytes : NULL;
  return strand_tensor_wrap(t->dtype, dims, t->rank, row_bytes ? data : NULL,
                            (size_t)rows * row_bytes, NULL, NULL, out);
}

/* Makes slice `index`; *used as for session_run_whole. */
static strand_status run_slice(slicing *sl, size_t index, plan **used) {
  strand_tensor *ins[SLICE_MAX_IO] = {0}, *outs[SLICE_MAX_IO] = {0};
  int64_t first = (int64_t)index * sl->rows;
  strand_status st = STRAND_OK;
  for (size_t j = 0; j < sl->n_inputs && !st; j++)
    st = wrap_rows(sl->inputs[j], first, sl->rows, &ins[j]);
  for (size_t i = 0; i < sl->n_outputs && !st; i++)
    st = wrap_rows(sl->outputs[i], first, sl->rows, &outs[i]);
  if (!st)
    st = session_run_whole(sl->s, sl->stop, sl->site, 1, sl->input_names,
                           (const strand_tensor *const *)ins, sl->n_inputs, sl->output_names, outs,
                           sl->n_outputs, used);
  for (size_t j = 0; j < sl->n_inputs; j++) strand_tensor_release(ins[j]);
  for (size_t i = 0; i < sl->n_outputs; i++) strand_tensor_release(outs[i]);
  return st;
}

static void slice_task(void *ctx, size_t task) {
  slicing *sl = ctx;
  if (atomic_load_explicit(&sl->failed, memory_order_relaxed)) return;
  strand_status st = run_slice(sl, sl->first + task, NULL);
  int expected = 0;
  if (st && atomic_compare_exchange_strong(&sl->failed, &expected, 1)) {
    sl->status = st;
    snprintf(sl->message, sizeof sl->message, "%s", strand_errmsg());
  }
}

strand_status slice_run(run_call *call, plan *whole, bool *handled) {
  strand_session *s = call->session;
  const graph *g = s->graph;
  run_context *c = call->ctx;
  *handled = false;
  if (g->n_inputs > SLICE_MAX_IO || call->n_slots > SLICE_MAX_IO) return STRAND_OK;
  int64_t verdict = atomic_load_explicit(&whole->slice_rows, memory_order_relaxed);
  if (verdict < 0) return STRAND_OK;
  int64_t rows = c->views[g->inputs[0]].dims[0];
  int64_t part = slice_rows_for(s, whole, rows, call->threads);
  if (!part) return STRAND_OK;

  const char *input_names[SLICE_MAX_IO], *output_names[SLICE_MAX_IO];
  strand_tensor *outputs[SLICE_MAX_IO];
  for (size_t j = 0; j < g->n_inputs; j++) input_names[j] = g->values[g->inputs[j]].name;
  /* The whole run's output tensors, made (or the caller's checked) as the
   * whole run would. */
  for (size_t i = 0; i < call->n_slots; i++) {
    const plan_value *pv = &whole->values[c->slot_value[i]];
    if (pv->place == PLAN_NONE) return STRAND_OK;
    void *data;
    strand_status st = executor_slot_target(call, i, (strand_dtype)pv->dtype, pv->rank,
                                            whole->dims + pv->dims_at, &data);
    if (st) {
      *handled = true;
      return st;
    }
    output_names[i] = g->values[c->slot_value[i]].name;
    outputs[i] = c->slot_tensor[i];
  }
  slicing sl = {s, call->stop, call->site, part, 0, g->n_inputs, call->n_slots, input_names,
                c->bound, output_names, outputs, 0, STRAND_OK, ""};
  size_t n_slices = (size_t)(rows / part);
  if (verdict != part) {
    /* Unproven for these rows: the first slice alone, then the proof. */
    plan *sliced = NULL;
    strand_status st = run_slice(&sl, 0, &sliced);
    if (st) {
      if (sliced) plan_release(sliced);
      *handled = true;
      return st;
    }
    rows_verdict v = sliced ? session_rows_independent(s, whole, sliced, rows, part,
                                                       c->slot_value, call->n_slots)
                            : ROWS_UNPROVEN;
    if (sliced) plan_release(sliced);
    if (v != ROWS_UNPROVEN)
      atomic_store_explicit(&whole->slice_rows, v == ROWS_INDEPENDENT ? part : -1,
                            memory_order_relaxed);
    if (v != ROWS_INDEPENDENT) return STRAND_OK; /* the run goes on whole */
    sl.first = 1;
  }
  *handled = true;
  strand__parallel_for(n_slices - sl.first, slice_task, &sl, call->threads);
  if (atomic_load(&sl.failed)) return strand__fail(sl.status, "%s", sl.message);
  atomic_fetch_add_explicit(&s->sliced_runs, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->slices, n_slices, memory_order_relaxed);
  return STRAND_OK;
}
