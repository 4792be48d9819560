/*
 * batcher.c — dynamic batching: concurrent runs whose inputs differ only in
 * the batch (first) dimension are stacked, run once and split back.
 *
 * No thread of its own: leader and followers. A run that finds no leader
 * collecting becomes the leader; it waits (on its own word, see below)
 * until batch_max_rows rows with its key are queued or until
 * batch_delay_us after it was queued, then takes the queue's runs with its
 * key (oldest first, up to batch_max_rows rows), promotes the oldest run
 * left (if any) to leader, and runs the stack with the lock released. A
 * run whose rows bring the leader's key to exactly batch_max_rows takes
 * the batch itself instead (the leader then only waits): it is running
 * already, where the leader would first have to be woken.
 * Followers sleep until their run is done; while still queued, a follower
 * whose token is canceled or whose deadline passes leaves the queue with
 * STRAND_E_CANCELED or STRAND_E_DEADLINE. Once taken, a run is no longer
 * stopped by its token or deadline: the stacked run serves others too.
 *
 * Waiting: each run sleeps on one word of its own (park.h), its state in
 * the low bits and a count of events above. Whatever should make a run look
 * again (taken, done, promoted to leader, enough rows, a cancel) adds to
 * the word and wakes it, so a wake-up between a look and a sleep is never
 * lost. The leader delivers results without the batcher's lock: woken
 * followers go straight back to work instead of queueing for a lock the
 * leader still holds, which on a small machine cost a context switch per
 * follower.
 *
 * Exactness: each caller receives the rows of its own inputs, computed by
 * the same kernels. This holds because strand's kernels compute every row
 * of a batch with the same arithmetic in the same order whatever the number
 * of rows (no kernel reduces across the batch dimension or picks a
 * different summation order by row count; tests/api/test_batching.c checks
 * it bit for bit on MLPs and a CNN). A model whose outputs do not keep the
 * batch as their first dimension (a stacked output of another length) is
 * detected, and its runs are then made one by one.
 *
 * Whenever a stacked run cannot serve a caller (its inputs are refused, an
 * allocation fails), that caller's run is made alone on its own thread, so
 * that it gets exactly the status and message an unbatched run gives.
 *
 * Locks: the batcher's lock guards the queue and is never held while
 * kernels run, while a token's lock is taken, while a run goes to the
 * dispatcher or while a thread is woken. A cancel wakes a waiting run under
 * the token's lock only (the run unwatches its token before it returns).
 */
#include "runtime/executor.h"
#include "runtime/park.h"
#include "runtime/thread_pool.h"

#include <string.h>

/* Runs with more inputs or outputs, or longer keys, are not batched. */
#define BATCH_MAX_IO 16
#define BATCH_MAX_KEY (BATCH_MAX_IO * (STRAND_MAX_RANK + 1) + BATCH_MAX_IO + 1)

/* A run's state: the low bits of its word (see request.word). The values
 * only grow, by less than WORD_EVENT, so state changes are additions. */
typedef enum request_state {
  REQUEST_QUEUED = 0, /* in the queue */
  REQUEST_TAKEN = 1,  /* in a leader's batch */
  REQUEST_DONE = 2,   /* outputs delivered */
  REQUEST_ALONE = 3,  /* the batch could not serve it: run alone */
  REQUEST_LEFT = 4    /* left the queue: canceled or past its deadline */
} request_state;

#define WORD_STATE 7u  /* the state's bits */
#define WORD_EVENT 8u  /* one event: added by whoever wants the owner to look again */

typedef struct request {
  struct request *next;     /* queue link, then batch link */
  const strand_tensor *inputs[BATCH_MAX_IO]; /* in graph input order */
  int32_t slot_output[BATCH_MAX_IO];          /* per slot: graph output index */
  size_t n_slots;
  int64_t rows;
  int64_t key[BATCH_MAX_KEY];
  size_t key_length;
  uint64_t queued_ns;
  const run_stop *stop;
  strand_tensor *made[BATCH_MAX_IO];          /* this run's outputs, by the leader */
  /* State (WORD_STATE bits) and events. QUEUED -> TAKEN or LEFT under the
   * lock; TAKEN -> DONE or ALONE by the leader alone, with release, after
   * which the leader touches nothing of the run but the word's address. */
  _Atomic uint32_t word;
  request_state outcome;     /* DONE or ALONE: the leader's verdict, published in word */
  bool leader;               /* under the lock */
} request;

struct batcher {
  pthread_mutex_t lock;     /* guards everything below, queued runs' links and leader */
  request *head, *tail;     /* queued runs, oldest first */
  request *collecting;      /* the leader collecting, or NULL */
  int64_t collect_rows;     /* queued rows with the collecting leader's key */
  atomic_bool unstackable;  /* a stacked output lost the batch: run alone from now */
  unsigned max_rows;
  uint64_t delay_ns;
  const char *symbol;       /* the batch dimension's name */
};

strand_status batcher_create(const strand_session *s, unsigned max_rows, uint32_t delay_us,
                             struct batcher **out) {
  const graph *g = s->graph;
  *out = NULL;
  if (max_rows <= 1 || g->n_inputs == 0 || g->n_inputs > BATCH_MAX_IO ||
      g->n_outputs == 0 || g->n_outputs > BATCH_MAX_IO)
    return STRAND_OK;
  const char *symbol = session_batch_symbol(g);
  if (!symbol) return STRAND_OK;
  void *p;
  strand_status st = strand__calloc(sizeof(struct batcher), STRAND_MEMORY_OTHER, &p);
  if (st) return st;
  struct batcher *b = p;
  pthread_mutex_init(&b->lock, NULL);
  atomic_init(&b->unstackable, false);
  b->max_rows = max_rows;
  b->delay_ns = (uint64_t)(delay_us ? delay_us : 100) * 1000u;
  b->symbol = symbol;
  *out = b;
  return STRAND_OK;
}

void batcher_free(struct batcher *b) {
  /* Every queued run holds a reference to the session: the queue is empty. */
  pthread_mutex_destroy(&b->lock);
  strand__free(b, sizeof *b, STRAND_MEMORY_OTHER);
}

/* ---- eligibility ------------------------------------------------------------------ */

/* Fills r from the call when it may be stacked: every graph input given once,
 * valid, of the declared dtype and known dimensions, all with the same first
 * dimension of 1 .. max_rows; outputs all new (every entry NULL), named at
 * most once. Anything else (including what an unbatched run would refuse)
 * is left to the unbatched path, which gives the right message; except a
 * released or foreign input handle, refused here (*refused) exactly as the
 * unbatched path would, so that the misuse is counted once. */
static bool eligible(const strand_session *s, const struct batcher *b,
                     const char *const *input_names, const strand_tensor *const *inputs,
                     size_t n_inputs, const char *const *output_names, strand_tensor **outputs,
                     size_t n_outputs, request *r, strand_status *refused) {
  const graph *g = s->graph;
  if (n_inputs != g->n_inputs || !input_names || !inputs || !outputs) return false;
  if (output_names ? n_outputs == 0 || n_outputs > BATCH_MAX_IO : n_outputs != g->n_outputs)
    return false;
  if (atomic_load_explicit(&b->unstackable, memory_order_relaxed)) return false;
  if (s->dispatcher && strand_dispatcher_is_current(s->dispatcher)) return false;
  memset(r->inputs, 0, sizeof r->inputs);
  r->rows = -1;
  for (size_t i = 0; i < n_inputs; i++) {
    if (!input_names[i] || !inputs[i]) return false;
    size_t j = 0;
    while (j < g->n_inputs && strcmp(g->values[g->inputs[j]].name, input_names[i]) != 0) j++;
    if (j == g->n_inputs || r->inputs[j]) return false;
    const strand_tensor *t = inputs[i];
    strand_status st = strand__object_check(t, STRAND_KIND_TENSOR, "strand_session_run");
    if (st) {
      *refused = strand__fail_context(st, "input \"%s\"", input_names[i]);
      return false;
    }
    const graph_value *v = &g->values[g->inputs[j]];
    if (t->dtype != v->dtype || (int32_t)t->rank != v->rank || t->rank < 1) return false;
    for (size_t d = 1; d < t->rank; d++)
      if (v->dims[d].value >= 0 && v->dims[d].value != t->dims[d]) return false;
    if (r->rows < 0) r->rows = t->dims[0];
    if (t->dims[0] != r->rows) return false;
    r->inputs[j] = t;
  }
  if (r->rows < 1 || r->rows > (int64_t)b->max_rows) return false;
  r->n_slots = n_outputs;
  for (size_t i = 0; i < n_outputs; i++) {
    if (outputs[i]) return false;
    size_t j = i;
    if (output_names) {
      if (!output_names[i]) return false;
      for (j = 0; j < g->n_outputs && strcmp(g->values[g->outputs[j]].name, output_names[i]); j++) {}
      if (j == g->n_outputs) return false;
      for (size_t e = 0; e < i; e++)
        if (r->slot_output[e] == (int32_t)j) return false;
    }
    r->slot_output[i] = (int32_t)j;
  }
  /* The key: what must be equal for runs to stack. */
  size_t n = 0;
  for (size_t j = 0; j < g->n_inputs; j++) {
    const strand_tensor *t = r->inputs[j];
    r->key[n++] = t->dtype;
    for (size_t d = 1; d < t->rank; d++) r->key[n++] = t->dims[d];
  }
  r->key[n++] = (int64_t)n_outputs;
  for (size_t i = 0; i < n_outputs; i++) r->key[n++] = r->slot_output[i];
  r->key_length = n;
  return true;
}

static bool same_key(const request *a, const request *b) {
  return a->key_length == b->key_length &&
         memcmp(a->key, b->key, a->key_length * sizeof(int64_t)) == 0;
}

/* ---- the queue (under the lock) ---------------------------------------------------- */

static void unlink_request(struct batcher *b, request *r) {
  request **at = &b->head, *prev = NULL;
  while (*at && *at != r) {
    prev = *at;
    at = &(*at)->next;
  }
  if (!*at) return;
  *at = r->next;
  if (b->tail == r) b->tail = prev;
  r->next = NULL;
}

/* Adds an event and a state step to q's word. Release: what was written
 * for q before is seen by its owner once it sees the word. */
static void word_add(request *q, uint32_t step) {
  atomic_fetch_add_explicit(&q->word, WORD_EVENT + step, memory_order_release);
}

static request_state word_state(const request *q) {
  return (request_state)(atomic_load_explicit(&q->word, memory_order_acquire) & WORD_STATE);
}

/* Makes the oldest queued run the collecting leader, if any. Returns it, to
 * be woken (park_wake) once the lock is released, or NULL. */
static request *promote(struct batcher *b) {
  b->collecting = b->head;
  b->collect_rows = 0;
  if (!b->head) return NULL;
  b->head->leader = true;
  for (request *q = b->head; q; q = q->next)
    if (same_key(q, b->head)) b->collect_rows += q->rows;
  word_add(b->head, 0);
  return b->head;
}

/* Takes the leader's batch out of the queue: the leader, then runs with its
 * key, oldest first, while they fit in max_rows. Returns the first of a list
 * linked through `next`; *promoted is the new leader to wake, or NULL. */
static request *take_batch(struct batcher *b, request *leader, uint64_t now,
                           uint64_t *wait_ns, int64_t *rows, request **promoted) {
  unlink_request(b, leader);
  word_add(leader, REQUEST_TAKEN - REQUEST_QUEUED);
  request *first = leader, *last = leader;
  *rows = leader->rows;
  *wait_ns = now - leader->queued_ns;
  for (request *q = b->head, *next; q; q = next) {
    next = q->next;
    if (!same_key(q, leader) || *rows + q->rows > (int64_t)b->max_rows) continue;
    unlink_request(b, q);
    /* No wake-up: a taken run only waits on. */
    word_add(q, REQUEST_TAKEN - REQUEST_QUEUED);
    *rows += q->rows;
    *wait_ns += now - q->queued_ns;
    last->next = q;
    last = q;
  }
  last->next = NULL;
  b->collecting = NULL;
  *promoted = promote(b);
  return first;
}

/* ---- stacking and splitting ----------------------------------------------------- */

typedef struct watch_context {
  struct batcher *batcher;
  request *request;
} watch_context;

static void wake_watcher(void *context) {
  watch_context *w = context;
  /* The run is alive: its owner unwatches the token, under the token's
   * lock, which is held here, before it returns. */
  word_add(w->request, 0);
  park_wake(&w->request->word);
}

/* Runs the batch stacked and gives each run its outputs; sets each run's
 * outcome, DONE or ALONE, which the caller publishes under the lock. */
static void run_stack(strand_session *s, const void *site, request *batch, int64_t rows) {
  const graph *g = s->graph;
  const request *first = batch;
  const char *input_names[BATCH_MAX_IO], *output_names[BATCH_MAX_IO];
  strand_tensor *stacked_in[BATCH_MAX_IO] = {NULL}, *stacked_out[BATCH_MAX_IO] = {NULL};
  strand_status st = STRAND_OK;
  for (size_t j = 0; j < g->n_inputs && !st; j++) {
    const strand_tensor *t = first->inputs[j];
    int64_t dims[STRAND_MAX_RANK];
    memcpy(dims, t->dims, t->rank * sizeof(int64_t));
    dims[0] = rows;
    input_names[j] = g->values[g->inputs[j]].name;
    st = strand__tensor_create_at(t->dtype, dims, t->rank, site, "strand_session_run", false,
                                  &stacked_in[j]);
    if (st) break;
    unsigned char *to = stacked_in[j]->data;
    for (const request *r = batch; r; r = r->next) {
      size_t bytes = r->inputs[j]->byte_size;
      if (bytes) memcpy(to, r->inputs[j]->data, bytes);
      to += bytes;
    }
  }
  for (size_t i = 0; i < first->n_slots; i++)
    output_names[i] = g->values[g->outputs[first->slot_output[i]]].name;
  if (!st) {
    run_stop none = {false, 0, NULL};
    st = session_execute(s, &none, site, input_names, (const strand_tensor *const *)stacked_in,
                         g->n_inputs, output_names, stacked_out, first->n_slots);
  }
  for (size_t i = 0; i < first->n_slots && !st; i++)
    if (stacked_out[i]->rank < 1 || stacked_out[i]->dims[0] != rows) {
      /* The model mixes rows: from now on every run goes alone. */
      atomic_store_explicit(&s->batcher->unstackable, true, memory_order_relaxed);
      st = STRAND_E_SHAPE;
    }
  for (request *r = batch; r; r = r->next) r->outcome = REQUEST_ALONE;
  if (!st) {
    int64_t row = 0;
    for (request *r = batch; r; r = r->next) {
      strand_status rst = STRAND_OK;
      size_t made = 0;
      for (size_t i = 0; i < r->n_slots && !rst; i++, made++) {
        const strand_tensor *o = stacked_out[i];
        int64_t dims[STRAND_MAX_RANK];
        memcpy(dims, o->dims, o->rank * sizeof(int64_t));
        dims[0] = r->rows;
        rst = strand__tensor_create_at(o->dtype, dims, o->rank, site, "strand_session_run", false,
                                       &r->made[i]);
        if (rst) break;
        size_t row_bytes = o->byte_size / (size_t)rows;
        if (r->made[i]->byte_size)
          memcpy(r->made[i]->data, (const unsigned char *)o->data + (size_t)row * row_bytes,
                 r->made[i]->byte_size);
      }
      if (rst) {
        for (size_t i = 0; i < made; i++) strand_tensor_release(r->made[i]);
      } else {
        r->outcome = REQUEST_DONE;
      }
      row += r->rows;
    }
  }
  for (size_t j = 0; j < BATCH_MAX_IO; j++) {
    strand_tensor_release(stacked_in[j]);
    strand_tensor_release(stacked_out[j]);
  }
}

/* ---- a run through the batcher ------------------------------------------------------ */

/* Whether r must stop waiting: STRAND_E_CANCELED or STRAND_E_DEADLINE with
 * the message, else STRAND_OK. */
static strand_status waiting_stopped(const request *r, uint64_t now) {
  const run_stop *stop = r->stop;
  if (!stop->watched) return STRAND_OK;
  if (stop->cancel && cancel_token_canceled(stop->cancel))
    return strand__fail(STRAND_E_CANCELED, "strand_session_run: canceled by the run's token "
                        "while waiting to be batched");
  if (stop->deadline_ns && now >= stop->deadline_ns)
    return strand__fail(STRAND_E_DEADLINE, "strand_session_run: deadline passed while waiting "
                        "to be batched (%.3f ms after it was queued)",
                        (double)(now - r->queued_ns) / 1e6);
  return STRAND_OK;
}

strand_status batcher_run(strand_session *s, const run_stop *stop, const void *site,
                          const char *const *input_names, const strand_tensor *const *inputs,
                          size_t n_inputs, const char *const *output_names,
                          strand_tensor **outputs, size_t n_outputs, bool *handled) {
  struct batcher *b = s->batcher;
  request r;
  strand_status refused = STRAND_OK;
  if (!eligible(s, b, input_names, inputs, n_inputs, output_names, outputs, n_outputs, &r,
                &refused)) {
    *handled = refused != STRAND_OK;
    return refused;
  }
  *handled = true;
  r.next = NULL;
  r.stop = stop;
  atomic_init(&r.word, REQUEST_QUEUED);
  r.leader = false;
  watch_context wc = {b, &r};
  cancel_watch watch = {wake_watcher, &wc, NULL, NULL};
  strand_cancel_token *token = (strand_cancel_token *)(uintptr_t)stop->cancel;
  if (token) cancel_token_watch(token, &watch);

  strand_status st = STRAND_OK;
  request *batch = NULL, *wake = NULL;
  uint64_t wait_ns = 0;
  int64_t rows = 0;
  pthread_mutex_lock(&b->lock);
  r.queued_ns = strand__now_ns();
  if (b->tail) b->tail->next = &r;
  else b->head = &r;
  b->tail = &r;
  if (!b->collecting) {
    b->collecting = &r;
    b->collect_rows = r.rows;
    r.leader = true;
  } else if (same_key(&r, b->collecting)) {
    b->collect_rows += r.rows;
    if (b->collect_rows == (int64_t)b->max_rows) {
      /* This run completes the batch, and every queued run with its key
       * fits (they sum to max_rows): it takes the batch and runs it at
       * once, instead of waking the leader to do so. */
      batch = take_batch(b, b->collecting, r.queued_ns, &wait_ns, &rows, &wake);
    } else if (b->collect_rows > (int64_t)b->max_rows) {
      word_add(b->collecting, 0);
      wake = b->collecting;
    }
  }
  pthread_mutex_unlock(&b->lock);
  if (wake) park_wake(&wake->word);

  while (!batch) {
    uint32_t seen = atomic_load_explicit(&r.word, memory_order_acquire);
    request_state state = (request_state)(seen & WORD_STATE);
    if (state == REQUEST_DONE || state == REQUEST_ALONE) break;
    uint64_t until = UINT64_MAX; /* once taken, the stop no longer applies */
    if (state == REQUEST_QUEUED) {
      bool leave = false;
      wake = NULL;
      pthread_mutex_lock(&b->lock);
      if (word_state(&r) != REQUEST_QUEUED) {
        pthread_mutex_unlock(&b->lock); /* taken since: look again */
        continue;
      }
      uint64_t now = strand__now_ns();
      st = waiting_stopped(&r, now);
      if (st) {
        unlink_request(b, &r);
        word_add(&r, REQUEST_LEFT - REQUEST_QUEUED);
        if (r.leader) wake = promote(b);
        else if (b->collecting && same_key(&r, b->collecting)) b->collect_rows -= r.rows;
        leave = true;
      } else {
        if (stop->deadline_ns) until = stop->deadline_ns;
        if (r.leader) {
          uint64_t cutoff = r.queued_ns + b->delay_ns;
          if (b->collect_rows >= (int64_t)b->max_rows || now >= cutoff) {
            batch = take_batch(b, &r, now, &wait_ns, &rows, &wake);
            leave = true;
          } else if (cutoff < until) {
            until = cutoff;
          }
        }
      }
      pthread_mutex_unlock(&b->lock);
      if (wake) park_wake(&wake->word);
      if (leave) break;
    }
    park_wait(&r.word, seen, until);
  }

  if (batch) {
    size_t n = 0;
    for (request *q = batch; q; q = q->next) n++;
    atomic_fetch_add(&s->batches, 1);
    atomic_fetch_add(&s->batched_runs, n);
    atomic_fetch_add(&s->batched_rows, (uint64_t)rows);
    atomic_fetch_add(&s->batch_wait_ns, wait_ns);
    if (n == 1) {
      /* Alone anyway: the unbatched path, with its stop. */
      word_add(&r, REQUEST_ALONE - REQUEST_TAKEN);
    } else {
      run_stack(s, site, batch, rows);
      /* Delivered without the lock. Once a run's word says so, its owner
       * may return: only the word's address is used after that. */
      for (request *q = batch, *next; q; q = next) {
        next = q->next;
        request_state outcome = q->outcome;
        word_add(q, outcome - REQUEST_TAKEN);
        if (q != &r) park_wake(&q->word);
      }
    }
  }
  if (token) cancel_token_unwatch(token, &watch);
  request_state outcome = word_state(&r);
  if (outcome == REQUEST_DONE) {
    for (size_t i = 0; i < r.n_slots; i++) outputs[i] = r.made[i];
    return STRAND_OK;
  }
  if (outcome == REQUEST_ALONE)
    return session_execute(s, stop, site, input_names, inputs, n_inputs, output_names, outputs,
                           n_outputs);
  return st;
}
