/*
 * executor.h — the session object and what its files share:
 *   session.c   the public object: creation (a kernel for every node,
 *               prepared), run arguments, the plan cache, the arena pool;
 *   plan.c      execution plans: their keys and the arena layout built from
 *               a planning run's record;
 *   executor.c  running nodes: the planning run and the planned run;
 *   batcher.c   dynamic batching: stacking concurrent runs;
 *   slice.c     running one batch as runs of fewer rows (slices);
 *   rows.c      the proof that a batch's rows are independent;
 *   cancel.c    cancel tokens (cancel.h).
 *
 * A session is immutable after creation except for its plan cache and its
 * pool of run contexts, both under `lock`, which is held only to look up,
 * insert or move an entry, never while a kernel runs; its statistics
 * (atomics); and its batcher's queue, under the batcher's own lock (see
 * batcher.c), never held while a kernel runs either. Plans are immutable
 * once built, but for the two atomics slicing keeps in them (slice_rows,
 * slice_floor: any run may set them, every value it may set is right),
 * and reference-counted (a run may use a plan the cache has just evicted).
 */
#ifndef STRAND_RUNTIME_EXECUTOR_H
#define STRAND_RUNTIME_EXECUTOR_H

#include "runtime/cancel.h"
#include "runtime/runtime_internal.h"

#include "core/tensor_internal.h"
#include "kernels/kernels_internal.h"

#include <pthread.h>
#include <stdatomic.h>

#define SESSION_MAX_PLANS 16
#define SESSION_MAX_CONSTANTS 3 /* session_node.constants: a Conv's X, W, B */
#define SESSION_ALIGNMENT 64

typedef struct session_node {
  const kernel_def *kernel; /* NULL: never run (folded at load, or fused into its producer) */
  void *params;
  const int32_t *outputs;   /* the values the node writes: graph_node's, except that a
                               producer that absorbed an activation writes its output */
  const int32_t *reads;     /* values the node's subgraphs read (kernel_outer_reads): */
  size_t n_reads;           /*   counted as inputs for liveness */
  /* NULL, or per input: the constant the node reads instead of the graph's
   * (data NULL: the graph's), as kernel_prepare.constants gave its kernel
   * (fold.c). Read-only once the session exists. */
  kernel_tensor *constants;
  const float *fold_scale;  /* a Conv that absorbed a BatchNormalization: its per-channel scale */
  size_t n_inputs;          /* inputs its kernel gets: the node's, or more from constants */
  bool absorbed;            /* merged into its producer by fold.c: never bound */
  /* strand_session_get_profile's figures: kernel calls timed, their ns. */
  atomic_uint_fast64_t profile_calls, profile_ns;
} session_node;

/* How a run obtains a value's memory. */
typedef enum plan_place {
  PLAN_NONE = 0,   /* not computed by this plan (not needed, or not a node output) */
  PLAN_ARENA = 1,  /* at `offset` in the arena */
  PLAN_OUTPUT = 2, /* in the output tensor of the run's slot that asks for it */
  PLAN_VIEW = 3    /* the bytes of another value under its own dims (a plan_view): its
                      node (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout)
                      never runs */
} plan_place;

typedef struct plan_value {
  uint8_t place;   /* plan_place */
  uint8_t dtype;   /* strand_dtype */
  uint8_t rank;
  uint32_t dims_at; /* first dim in plan->dims */
  size_t count;
  size_t offset;   /* PLAN_ARENA: byte offset, a multiple of SESSION_ALIGNMENT */
} plan_value;

/* A view: `value` shares the bytes of `root`, which is no view itself: a
 * value in the arena (whose interval the planner stretched over every read
 * of the view), a graph input or a constant. Nothing writes `root` after
 * its producer ran, so the bytes stay what the view's node would have
 * copied. A value in an output tensor is never a root, and a view is never
 * in one: tensors handed to the caller own their bytes. */
typedef struct plan_view {
  uint32_t value, root;
  size_t offset; /* the view's first byte in root's (a Gather's block) */
} plan_view;

typedef struct plan_step {
  uint32_t node;         /* index in graph->nodes */
  size_t scratch_offset; /* in the arena */
  size_t scratch_size;
} plan_step;

typedef struct plan {
  atomic_size_t refs;
  /* Slicing runs of this plan (slice.c): 0 not tried yet, -1 rows not
   * proven independent, else the slice rows proven. Written by any run. */
  _Atomic int64_t slice_rows;
  _Atomic int64_t slice_floor; /* slice.c: the fewest rows a slice should have; 0: not known yet */
  size_t bytes;       /* of the one allocation holding all of it (OTHER) */
  uint64_t hash;
  size_t key_length;
  int64_t *key;       /* see plan_key */
  size_t arena_size;
  size_t n_steps;
  plan_step *steps;   /* the nodes that run: not those whose output is a view */
  size_t n_views;
  plan_view *views;   /* in step order */
  plan_value *values; /* graph->n_values */
  int64_t *dims;
} plan;

/* A symbolic dimension bound during one run. */
typedef struct run_symbol {
  const char *name;
  int64_t value;
  const char *input; /* the input that bound it */
} run_symbol;

/* Everything one run needs besides its plan; pooled by the session. The
 * fixed part is one allocation (SCRATCH) made for the session's graph; the
 * arena grows to the largest plan the context has run. */
typedef struct run_context {
  struct run_context *next; /* in the pool's free list */
  size_t bytes;             /* of the fixed part */
  kernel_tensor *views;     /* per value */
  const kernel_tensor **ins;
  kernel_tensor **outs;
  strand_dtype *dtypes;     /* a node's input dtypes, for kernel_def.accepts */
  const strand_tensor **bound; /* per graph input (graph->inputs order) */
  int32_t *slot_value;      /* per output slot: the value it asks for */
  int32_t *value_slot;      /* per value: the first slot asking for it, or -1 */
  strand_tensor **slot_tensor; /* per slot: the tensor it fills */
  bool *slot_made;          /* per slot: the tensor was made by this run */
  void **slot_temp;         /* per slot: aligned stand-in for a misaligned tensor */
  void **input_temp;        /* per graph input: aligned copy of misaligned data */
  run_symbol *symbols;
  size_t n_symbols;
  int64_t *key;             /* the plan key being looked up */
  size_t key_length;
  /* planning runs */
  void **buffers;           /* per value: memory from the seam */
  size_t *buffer_sizes;
  uint32_t *uses;           /* per value: consumers still to run */
  uint32_t *first_step;     /* per value: the step that defines it */
  uint32_t *last_step;      /* per value: the last step that reads it */
  bool *node_needed;        /* per node */
  bool *value_needed;       /* per value */
  size_t *step_scratch;     /* per step: scratch bytes */
  uint32_t *step_node;      /* per step: node index */
  /* the arena */
  void *arena;
  size_t arena_size;
} run_context;

struct strand_session {
  strand__object header;
  strand_model *model;
  const graph *graph;
  unsigned intra_op_threads; /* 0: the budget */
  unsigned slice_rows;       /* strand_session_options.slice_rows */
  bool sliceable;            /* cacheable, and a batch symbol in every input and output */
  session_node *nodes;       /* per node of graph */
  struct kernel_block *blocks;
  size_t weight_bytes;
  bool cacheable;            /* shapes depend on input shapes only */
  size_t max_node_inputs, max_node_outputs;
  size_t max_symbols;        /* dims of all graph inputs */
  size_t max_key_length;
  kernel_tensor *templates;  /* per value: constants filled in */

  pthread_mutex_t lock;      /* guards plans, n_plans, pool, pool counts */
  plan *plans[SESSION_MAX_PLANS]; /* most recently used first */
  size_t n_plans;
  run_context *pool;
  uint64_t contexts, arena_bytes;

  struct strand_dispatcher *dispatcher; /* retained; NULL: runs on the caller's thread */
  struct batcher *batcher;   /* NULL: batching off (batcher.c) */

  atomic_uint_fast64_t runs, runs_failed, planning_runs, plans_evicted, runs_canceled;
  atomic_uint_fast64_t batches, batched_runs, batched_rows, batch_wait_ns;
  atomic_uint_fast64_t sliced_runs, slices;
  atomic_bool profiling;     /* strand_session_set_profiling */
};

/* kernel->run(kc) for node k of s, timed into the node's profile figures
 * while the session's profiling is on. */
strand_status executor_run_kernel(strand_session *s, size_t k, const kernel_def *kernel,
                                  const kernel_call *kc);

/* When a run must stop early: its token and deadline. `watched` is false
 * when it has neither, so that node boundaries cost one test of a bool. */
typedef struct run_stop {
  bool watched;
  uint64_t deadline_ns;               /* CLOCK_MONOTONIC; 0: none */
  const strand_cancel_token *cancel;  /* NULL: none; the caller holds a reference */
} run_stop;

/* The state of one call to strand_session_run. */
typedef struct run_call {
  strand_session *session;
  run_context *ctx;
  size_t n_slots;
  strand_tensor **outputs; /* the caller's array */
  unsigned threads;
  const void *site;        /* for tensors made by the run */
  const run_stop *stop;    /* never NULL */
  bool whole;              /* never sliced: a slice itself, or slicing off */
  plan **used;             /* when not NULL: receives a reference to the plan run */
} run_call;

/* ---- session.c ------------------------------------------------------------- */

/* Grows the context's arena (SCRATCH) to at least `size` bytes. */
strand_status session_arena_reserve(strand_session *s, run_context *c, size_t size);

/* Rewrites made at creation once every node has its kernel (fuse.c,
 * fuse_sequence.c): absorbed nodes lose their kernel, producers write the
 * absorbed node's outputs. `readers` has room for a count per value;
 * session_fuse fills it with the number of nodes reading each value (the
 * graph's, which rewrites do not change) and leaves graphs with subgraphs
 * alone (their outer references are readers too). */
strand_status session_fuse(strand_session *s, uint32_t *readers);
/* Counts the nodes reading each value of g into readers (a count per
 * value); false, counting nothing, for a graph with subgraphs (their outer
 * references read values too), which rewrites leave alone. */
bool session_count_readers(const graph *g, uint32_t *readers);

/* BatchNormalization folded into the Conv before it (fold.c), made before
 * any kernel is prepared: sets the Conv's constants, n_inputs and outputs
 * and marks the BatchNormalization absorbed. `readers` as for
 * session_fuse. */
strand_status session_fold_norms(strand_session *s, uint32_t *readers);
/* For node k, a Conv that absorbed a BatchNormalization: makes its folded
 * W (constants[1]) before its kernel is prepared, and frees it afterwards
 * when no run reads it (its kernel packed it; the graph's W then serves
 * for the dims). Nothing for other nodes. */
strand_status session_fold_weights(strand_session *s, size_t k);
void session_fold_release(strand_session *s, size_t k);
strand_status session_fuse_sequence(strand_session *s, uint32_t *readers);

/* Runs `session` once, on the calling thread, watching `stop`: the whole of
 * strand_session_run after the handle check, without dispatcher or batcher.
 * The caller holds a reference to the session. Counts the run in the
 * session's statistics. */
strand_status session_run_here(strand_session *s, const run_stop *stop, const void *site,
                               const char *const *input_names,
                               const strand_tensor *const *inputs, size_t n_inputs,
                               const char *const *output_names, strand_tensor **outputs,
                               size_t n_outputs);

/* One run in a context of its own on the calling thread, with at most
 * `threads` threads, never sliced: session_run_here without the pool's
 * run bracket (slices run inside their caller's). *used, when `used` is
 * not NULL, receives a reference to the plan the run used (NULL when none
 * was cached). */
strand_status session_run_whole(strand_session *s, const run_stop *stop, const void *site,
                                unsigned threads, const char *const *input_names,
                                const strand_tensor *const *inputs, size_t n_inputs,
                                const char *const *output_names, strand_tensor **outputs,
                                size_t n_outputs, plan **used);

/* session_run_here, on the session's dispatcher when it has one. */
strand_status session_execute(strand_session *s, const run_stop *stop, const void *site,
                              const char *const *input_names, const strand_tensor *const *inputs,
                              size_t n_inputs, const char *const *output_names,
                              strand_tensor **outputs, size_t n_outputs);

/* ---- batcher.c --------------------------------------------------------------- */

/* Sets up batching for `s` (graph, options read); *out NULL when the model
 * cannot be batched (no symbolic first dimension shared by every input and
 * output) or batching is off. */
strand_status batcher_create(const strand_session *s, unsigned max_rows, uint32_t delay_us,
                             struct batcher **out);
void batcher_free(struct batcher *b);

/* Runs the call through the batcher when it is eligible (sets *handled);
 * otherwise leaves *handled false and does nothing. */
strand_status batcher_run(strand_session *s, const run_stop *stop, const void *site,
                          const char *const *input_names, const strand_tensor *const *inputs,
                          size_t n_inputs, const char *const *output_names,
                          strand_tensor **outputs, size_t n_outputs, bool *handled);

/* ---- slice.c, rows.c --------------------------------------------------------- */

/* The symbol naming dimension 0 of every input and output of g (used
 * nowhere else in any of them), or NULL. */
const char *session_batch_symbol(const graph *g);

/* Runs the call (inputs and outputs bound, `whole` its cached plan) as
 * slices of rows when the session allows it, the rows are proven
 * independent and slicing pays; sets *handled then. Otherwise leaves
 * *handled false, and the run goes on whole, as if this was not called
 * (the call's output tensors may have been made already). */
strand_status slice_run(run_call *call, plan *whole, bool *handled);

typedef enum rows_verdict {
  ROWS_MIXED = 0,       /* not proven independent: run such batches whole */
  ROWS_INDEPENDENT = 1,
  ROWS_UNPROVEN = 2     /* no memory for the proof: try again later */
} rows_verdict;

/* Whether running `whole` (rows_whole rows) as runs of `part` (rows_part
 * rows each) gives the requested outputs (slot_value) byte for byte: see
 * rows.c. */
rows_verdict session_rows_independent(const strand_session *s, const plan *whole,
                                      const plan *part, int64_t rows_whole, int64_t rows_part,
                                      const int32_t *slot_value, size_t n_slots);

/* ---- plan.c ---------------------------------------------------------------- */

/* Fills ctx->key: for each graph input its dtype, rank and dims, then one
 * entry per graph output: 1 when some slot asks for it. */
void plan_key(const strand_session *s, run_context *ctx, size_t n_slots);
uint64_t plan_hash(const int64_t *key, size_t length);

/* Builds a plan from the record of a successful planning run in `ctx`
 * (views, first/last steps, step nodes and scratch, value_needed,
 * value_slot). Decides which nodes become views (plan_view): once per
 * plan, so that planned runs pay nothing for the decision. */
strand_status plan_build(const strand_session *s, const run_context *ctx, size_t n_steps,
                         plan **out);
/* Whether node k of s is one whose run may only copy input 0, or one block
 * of it, into output 0 (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
 * Dropout, Transpose, Gather), so that its output may be a view of its
 * input. Whether it is depends on the
 * run too: see plan.c (planned runs) and executor.c (planning runs). */
bool plan_node_may_view(const strand_session *s, size_t k);
/* For such a node, once infer shaped its output from input 0 (both in
 * `views`, per value): whether the output's bytes would be input 0's from
 * byte *offset on (same dtype; the same count, for a Transpose with a
 * permutation that moves only dims of 1 out of order; for a Gather, one
 * block of its input picked by a constant index). */
bool plan_view_bytes(const strand_session *s, size_t k, const kernel_tensor *views,
                     size_t *offset);
void plan_retain(plan *p);
void plan_release(plan *p);

/* ---- executor.c ------------------------------------------------------------ */

/* Gives slot i of the call its tensor for a value of this dtype and shape:
 * the caller's (checked) or a new one; *data receives where to write. */
strand_status executor_slot_target(run_call *call, size_t i, strand_dtype dtype, size_t rank,
                                   const int64_t *dims, void **data);

/* Runs the nodes the slots need with `p`'s layout. */
strand_status executor_run_planned(run_call *call, const plan *p);

/* Runs the nodes the slots need, planning as it goes; when the session is
 * cacheable and `out` is not NULL, *out receives the plan built from it. */
strand_status executor_run_planning(run_call *call, plan **out);

/* Marks the nodes and values the slots need; returns the number of steps. */
size_t executor_mark_needed(const strand_session *s, run_context *ctx, size_t n_slots);

/* Whether the run must stop before `node` of `g` (a node of the main graph or
 * of a subgraph): STRAND_E_CANCELED or STRAND_E_DEADLINE with a message naming
 * the node, else STRAND_OK. Reads the clock only when there is a deadline. */
strand_status executor_check_stop(const run_stop *stop, const graph *g, const graph_node *node);

/* A pointer for the data of empty tensors: aligned, never written. */
void *executor_empty_data(void);

#endif /* STRAND_RUNTIME_EXECUTOR_H */
