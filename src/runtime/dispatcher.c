/* dispatcher.c — a thread of its own that runs tasks one at a time, first in
 * first out: runs (the caller blocks for the result) and posts (fire and
 * forget), with queue-wait and run-time histograms.
 *
 * The public object is a thin shell around a core that the thread uses.
 * The core outlives the shell when the last release happens on the
 * dispatcher's own thread: the thread is then detached, and frees the core
 * itself when it ends. A run's queue node lives on the blocked caller's
 * stack; post nodes come from a free list allocated with the dispatcher, so
 * a post never allocates. No user function is called with the lock held. */
#include "core/core_internal.h"
#include "runtime/thread_pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEFAULT_CAPACITY 1024u
#define MAX_CAPACITY (1u << 20)
#define NAME_CAPACITY 64
#define MESSAGE_CAPACITY 1024
/* How long an idle dispatcher thread, or a caller waiting for its result,
 * spins before it sleeps, when the process has more than one CPU (with one,
 * spinning only delays the thread it waits for). */
#define SPIN_NS 20000u

/* ---- histograms ----------------------------------------------------------------- */

/* Log-linear buckets over nanoseconds: values below 8 have a bucket each;
 * above, every power of two is split into 8 equal buckets (12.5% apart).
 * The last bucket takes everything from 2^45 ns (about 10 hours) up. */
#define SUB_BITS 3
#define SUB (1u << SUB_BITS)
#define GROUPS 43
#define BUCKETS (SUB * GROUPS)

typedef struct histogram {
  _Atomic uint64_t buckets[BUCKETS];
  _Atomic uint64_t max_ns;
} histogram;

static unsigned bucket_of(uint64_t ns) {
  if (ns < SUB) return (unsigned)ns;
  unsigned top = 63u - (unsigned)__builtin_clzll(ns); /* >= SUB_BITS */
  unsigned group = top - SUB_BITS + 1;
  unsigned sub = (unsigned)(ns >> (top - SUB_BITS)) & (SUB - 1);
  unsigned b = group * SUB + sub;
  return b < BUCKETS ? b : BUCKETS - 1;
}

/* The middle of bucket b, in nanoseconds. */
static double bucket_middle(unsigned b) {
  unsigned group = b / SUB, sub = b % SUB;
  if (group == 0) return (double)b;
  unsigned shift = group - 1;
  double low = (double)((uint64_t)(SUB + sub) << shift);
  return low + (double)((uint64_t)1 << shift) / 2.0;
}

static void record(histogram *h, uint64_t ns) {
  atomic_fetch_add_explicit(&h->buckets[bucket_of(ns)], 1, memory_order_relaxed);
  uint64_t seen = atomic_load_explicit(&h->max_ns, memory_order_relaxed);
  while (seen < ns && !atomic_compare_exchange_weak_explicit(&h->max_ns, &seen, ns,
                                                             memory_order_relaxed,
                                                             memory_order_relaxed)) {
  }
}

static void summarize(histogram *h, strand_latency_summary *out) {
  uint64_t counts[BUCKETS], total = 0;
  for (unsigned b = 0; b < BUCKETS; b++) {
    counts[b] = atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
    total += counts[b];
  }
  double max_us = (double)atomic_load_explicit(&h->max_ns, memory_order_relaxed) / 1000.0;
  static const double quantiles[3] = {0.50, 0.90, 0.99};
  double values[3] = {0, 0, 0};
  for (int q = 0; q < 3 && total > 0; q++) {
    uint64_t rank = (uint64_t)(quantiles[q] * (double)total + 0.999999);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < BUCKETS; b++) {
      seen += counts[b];
      if (seen >= rank) {
        values[q] = bucket_middle(b) / 1000.0;
        break;
      }
    }
    /* The maximum was read after the buckets; a bucket's middle may lie
     * above the largest sample in it. */
    if (values[q] > max_us) values[q] = max_us;
  }
  out->count = total;
  out->p50_us = values[0];
  out->p90_us = values[1];
  out->p99_us = values[2];
  out->max_us = total > 0 ? max_us : 0;
}

/* ---- the dispatcher ------------------------------------------------------------- */

enum { TASK_RUN, TASK_POST };

typedef struct task {
  struct task *next;
  int kind;
  uint64_t accepted_ns;
  union {
    strand_dispatcher_run_fn run;
    strand_dispatcher_post_fn post;
  } fn;
  void *arg;
} task;

/* A run's node, on the blocked caller's stack. */
typedef struct run_task {
  task base;
  _Atomic size_t done;  /* release-stored after result and message */
  strand_status result;
  bool canceled;        /* completed by a CANCEL stop, fn never ran */
  bool sleeping;        /* under lock: the caller waits on `wake` */
  pthread_cond_t wake;  /* initialised only when the caller sleeps */
  char *message;        /* the caller's buffer: fn's failure text */
} run_task;

typedef struct core {
  pthread_mutex_t lock;
  pthread_cond_t wake;  /* the idle thread sleeps here */
  pthread_cond_t room;  /* runs wait here while the queue is full */
  pthread_cond_t ended; /* stop waits here for the thread to end */
  pthread_t thread;
  /* Under lock: */
  task *head, *tail;
  size_t depth;
  size_t capacity;
  task *free_posts;
  bool stopping;
  bool ended_flag;
  bool detached;
  bool thread_sleeping;
  unsigned room_waiters;
  /* Atomics, for the spinning thread and for statistics: */
  _Atomic size_t queued; /* mirrors depth */
  _Atomic uint64_t depth_peak;
  _Atomic uint64_t runs, runs_inline, runs_canceled;
  _Atomic uint64_t posts, posts_run, posts_refused;
  histogram wait, run_time;
  /* Fixed at creation: */
  task *post_nodes;
  size_t post_nodes_bytes;
  uint64_t spin_ns;
  char name[NAME_CAPACITY];
} core;

struct strand_dispatcher {
  strand__object header;
  core *core;
};

/* The core whose thread the calling thread is, if any. */
static _Thread_local core *current;


/* Spins for at most `spin_ns` until *value is non-zero; acquire on success. */
static bool spin_until_set(_Atomic size_t *value, uint64_t spin_ns) {
  uint64_t deadline = 0;
  for (unsigned i = 0;; i++) {
    if (atomic_load_explicit(value, memory_order_acquire) != 0) return true;
    if (spin_ns == 0) return false;
    strand__cpu_relax();
    if ((i & 63) == 63) {
      uint64_t t = strand__now_ns();
      if (deadline == 0) deadline = t + spin_ns;
      else if (t > deadline) return false;
    }
  }
}

static void core_free(core *c) {
  pthread_mutex_destroy(&c->lock);
  pthread_cond_destroy(&c->wake);
  pthread_cond_destroy(&c->room);
  pthread_cond_destroy(&c->ended);
  strand__free(c->post_nodes, c->post_nodes_bytes, STRAND_MEMORY_OTHER);
  strand__free(c, sizeof *c, STRAND_MEMORY_OTHER);
}

/* Appends `t`. Runs under c->lock, with room in the queue. */
static void enqueue(core *c, task *t) {
  t->next = NULL;
  if (c->tail) c->tail->next = t;
  else c->head = t;
  c->tail = t;
  c->depth++;
  atomic_store_explicit(&c->queued, c->depth, memory_order_release);
  if (c->depth > atomic_load_explicit(&c->depth_peak, memory_order_relaxed))
    atomic_store_explicit(&c->depth_peak, c->depth, memory_order_relaxed);
  if (c->thread_sleeping) pthread_cond_signal(&c->wake);
}

/* Hands a run's result to its caller. Runs under c->lock. The caller may
 * return as soon as `done` lands, so `r` is not touched after it unless
 * the caller sleeps (it then needs the lock to leave). */
static void complete(run_task *r, strand_status result, bool canceled) {
  bool sleeping = r->sleeping;
  r->result = result;
  r->canceled = canceled;
  atomic_store_explicit(&r->done, 1, memory_order_release);
  if (sleeping) pthread_cond_signal(&r->wake);
}

static void *dispatcher_main(void *arg) {
  core *c = arg;
  current = c;
  char os_name[16];
  size_t len = strnlen(c->name, sizeof os_name - 1);
  memcpy(os_name, c->name, len);
  os_name[len] = '\0';
  pthread_setname_np(pthread_self(), os_name);
  pthread_mutex_lock(&c->lock);
  for (;;) {
    task *t = c->head;
    if (t) {
      c->head = t->next;
      if (!c->head) c->tail = NULL;
      c->depth--;
      atomic_store_explicit(&c->queued, c->depth, memory_order_relaxed);
      if (c->room_waiters) pthread_cond_signal(&c->room);
      uint64_t accepted = t->accepted_ns;
      if (t->kind == TASK_POST) {
        strand_dispatcher_post_fn fn = t->fn.post;
        void *post_arg = t->arg;
        t->next = c->free_posts; /* back to the free list before fn runs */
        c->free_posts = t;
        pthread_mutex_unlock(&c->lock);
        uint64_t start = strand__now_ns();
        record(&c->wait, start - accepted);
        fn(post_arg);
        record(&c->run_time, strand__now_ns() - start);
        atomic_fetch_add_explicit(&c->posts_run, 1, memory_order_relaxed);
        pthread_mutex_lock(&c->lock);
      } else {
        run_task *r = (run_task *)t;
        pthread_mutex_unlock(&c->lock);
        uint64_t start = strand__now_ns();
        record(&c->wait, start - accepted);
        strand__fail(STRAND_OK, "%s", ""); /* so that fn's own failure text stands out */
        strand_status result = t->fn.run(t->arg);
        record(&c->run_time, strand__now_ns() - start);
        atomic_fetch_add_explicit(&c->runs, 1, memory_order_relaxed);
        if (result != STRAND_OK) {
          const char *text = strand_errmsg();
          size_t n = strnlen(text, MESSAGE_CAPACITY - 1);
          memcpy(r->message, text, n);
          r->message[n] = '\0';
        }
        pthread_mutex_lock(&c->lock);
        complete(r, result, false);
      }
      continue;
    }
    if (c->stopping) break;
    pthread_mutex_unlock(&c->lock);
    spin_until_set(&c->queued, c->spin_ns);
    pthread_mutex_lock(&c->lock);
    if (c->head || c->stopping) continue;
    c->thread_sleeping = true;
    pthread_cond_wait(&c->wake, &c->lock);
    c->thread_sleeping = false;
  }
  c->ended_flag = true;
  bool detached = c->detached;
  pthread_cond_broadcast(&c->ended);
  pthread_mutex_unlock(&c->lock);
  current = NULL;
  if (detached) core_free(c);
  return NULL;
}

/* Marks the dispatcher stopped and, for CANCEL, completes the queued runs
 * unrun. Runs under c->lock. */
static void stop_locked(core *c, strand_dispatcher_stop_mode mode) {
  c->stopping = true;
  if (mode == STRAND_DISPATCHER_CANCEL) {
    task **link = &c->head;
    c->tail = NULL;
    while (*link) {
      task *t = *link;
      if (t->kind == TASK_RUN) {
        *link = t->next;
        c->depth--;
        atomic_fetch_add_explicit(&c->runs_canceled, 1, memory_order_relaxed);
        complete((run_task *)t, STRAND_E_CANCELED, true);
      } else {
        c->tail = t;
        link = &t->next;
      }
    }
    atomic_store_explicit(&c->queued, c->depth, memory_order_relaxed);
  }
  pthread_cond_broadcast(&c->room);
  if (c->thread_sleeping) pthread_cond_signal(&c->wake);
}

static void dispatcher_destroy(strand__object *self) {
  core *c = ((strand_dispatcher *)self)->core;
  if (current == c) {
    /* The last reference dropped on the dispatcher's own thread: it cannot
     * join itself. It drains the queue after the current task and frees the
     * core when it ends. */
    pthread_mutex_lock(&c->lock);
    stop_locked(c, STRAND_DISPATCHER_DRAIN);
    c->detached = true;
    pthread_mutex_unlock(&c->lock);
    pthread_detach(pthread_self());
    return;
  }
  pthread_mutex_lock(&c->lock);
  stop_locked(c, STRAND_DISPATCHER_DRAIN);
  pthread_mutex_unlock(&c->lock);
  pthread_join(c->thread, NULL);
  core_free(c);
}

STRAND_NOINLINE strand_status strand_dispatcher_create(const strand_dispatcher_options *options,
                                                       strand_dispatcher **out) {
  strand__init();
  static const char fn[] = "strand_dispatcher_create";
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out is NULL", fn);
  strand_dispatcher_options opt;
  memset(&opt, 0, sizeof opt);
  if (options) {
    if (options->struct_size < sizeof opt)
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: options->struct_size is %zu; set it "
                          "to sizeof(strand_dispatcher_options), %zu", fn, options->struct_size,
                          sizeof opt);
    memcpy(&opt, options, sizeof opt);
  }
  size_t capacity = opt.queue_capacity ? opt.queue_capacity : DEFAULT_CAPACITY;
  if (capacity > MAX_CAPACITY)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: queue_capacity %zu is over the maximum "
                        "of %u", fn, capacity, MAX_CAPACITY);

  void *p;
  strand_status st = strand__calloc(sizeof(core), STRAND_MEMORY_OTHER, &p);
  if (st != STRAND_OK) return strand__fail_context(st, "%s", fn);
  core *c = p;
  c->capacity = capacity;
  c->spin_ns = strand__threads_detected() > 1 ? SPIN_NS : 0;
  c->post_nodes_bytes = capacity * sizeof(task);
  st = strand__alloc(c->post_nodes_bytes, STRAND_MEMORY_OTHER, &p);
  if (st != STRAND_OK) {
    strand__free(c, sizeof *c, STRAND_MEMORY_OTHER);
    return strand__fail_context(st, "%s", fn);
  }
  c->post_nodes = p;
  for (size_t i = 0; i < capacity; i++)
    c->post_nodes[i].next = i + 1 < capacity ? &c->post_nodes[i + 1] : NULL;
  c->free_posts = c->post_nodes;
  snprintf(c->name, sizeof c->name, "%s", opt.name && *opt.name ? opt.name : "strand-disp");
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->wake, NULL);
  pthread_cond_init(&c->room, NULL);
  pthread_cond_init(&c->ended, NULL);

  strand_dispatcher *d;
  st = strand__alloc(sizeof *d, STRAND_MEMORY_OTHER, &p);
  if (st != STRAND_OK) {
    core_free(c);
    return strand__fail_context(st, "%s", fn);
  }
  d = p;
  memset(d, 0, sizeof *d);
  d->core = c;

  /* The thread starts with every signal blocked: signals are the host's. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&c->thread, NULL, dispatcher_main, c);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    strand__free(d, sizeof *d, STRAND_MEMORY_OTHER);
    core_free(c);
    return strand__fail(STRAND_E_OUT_OF_MEMORY, "%s: the system refused a thread for dispatcher "
                        "\"%s\": %s", fn, c->name, strerror(err));
  }
  strand__object_init(&d->header, STRAND_KIND_DISPATCHER, sizeof *d, dispatcher_destroy,
                      __builtin_return_address(0));
  strand__object_add_bytes(&d->header, (int64_t)(sizeof *c + c->post_nodes_bytes));
  *out = d;
  return STRAND_OK;
}

strand_status strand_dispatcher_retain(strand_dispatcher *dispatcher) {
  static const char fn[] = "strand_dispatcher_retain";
  strand_status st = strand__object_check(dispatcher, STRAND_KIND_DISPATCHER, fn);
  if (st != STRAND_OK) return st;
  return strand__object_retain(&dispatcher->header, fn);
}

void strand_dispatcher_release(strand_dispatcher *dispatcher) {
  strand__object_release_checked(dispatcher, STRAND_KIND_DISPATCHER,
                                 "strand_dispatcher_release");
}

/* A run made on the dispatcher's own thread. */
static strand_status run_inline(core *c, strand_dispatcher_run_fn fn, void *arg) {
  uint64_t start = strand__now_ns();
  strand_status result = fn(arg);
  record(&c->run_time, strand__now_ns() - start);
  atomic_fetch_add_explicit(&c->runs, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&c->runs_inline, 1, memory_order_relaxed);
  return result;
}

strand_status strand_dispatcher_run(strand_dispatcher *dispatcher, strand_dispatcher_run_fn fn,
                                    void *arg) {
  static const char fname[] = "strand_dispatcher_run";
  strand_status st = strand__object_check(dispatcher, STRAND_KIND_DISPATCHER, fname);
  if (st != STRAND_OK) return st;
  if (!fn) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: fn is NULL", fname);
  core *c = dispatcher->core;
  if (current == c) return run_inline(c, fn, arg);

  /* The core must outlive this call even if the caller's reference is the
   * one another thread drops meanwhile. */
  st = strand__object_retain(&dispatcher->header, fname);
  if (st != STRAND_OK) return st;
  char message[MESSAGE_CAPACITY];
  message[0] = '\0';
  run_task r;
  r.base.kind = TASK_RUN;
  r.base.fn.run = fn;
  r.base.arg = arg;
  atomic_init(&r.done, 0);
  r.result = STRAND_OK;
  r.canceled = false;
  r.sleeping = false;
  r.message = message;

  pthread_mutex_lock(&c->lock);
  while (!c->stopping && c->depth >= c->capacity) {
    c->room_waiters++;
    pthread_cond_wait(&c->room, &c->lock);
    c->room_waiters--;
  }
  if (c->stopping) {
    pthread_mutex_unlock(&c->lock);
    atomic_fetch_add_explicit(&c->runs_canceled, 1, memory_order_relaxed);
    st = strand__fail(STRAND_E_CANCELED, "%s: dispatcher \"%s\" is stopped; the function did "
                      "not run", fname, c->name);
    strand__object_release(&dispatcher->header);
    return st;
  }
  r.base.accepted_ns = strand__now_ns();
  enqueue(c, &r.base);
  pthread_mutex_unlock(&c->lock);

  if (!spin_until_set(&r.done, c->spin_ns)) {
    pthread_mutex_lock(&c->lock);
    if (!atomic_load_explicit(&r.done, memory_order_acquire)) {
      pthread_cond_init(&r.wake, NULL);
      r.sleeping = true;
      while (!atomic_load_explicit(&r.done, memory_order_acquire))
        pthread_cond_wait(&r.wake, &c->lock);
      pthread_mutex_unlock(&c->lock);
      pthread_cond_destroy(&r.wake);
    } else {
      pthread_mutex_unlock(&c->lock);
    }
  }
  st = r.result;
  if (r.canceled)
    strand__fail(st, "%s: dispatcher \"%s\" was stopped (cancel) before the function ran",
                 fname, c->name);
  else if (st != STRAND_OK && message[0])
    strand__fail(st, "%s", message);
  else if (st != STRAND_OK)
    strand__fail(st, "%s: the function returned %s on dispatcher \"%s\"", fname,
                 strand_status_name(st), c->name);
  strand__object_release(&dispatcher->header);
  return st;
}

strand_status strand_dispatcher_post(strand_dispatcher *dispatcher, strand_dispatcher_post_fn fn,
                                     void *arg) {
  static const char fname[] = "strand_dispatcher_post";
  strand_status st = strand__object_check(dispatcher, STRAND_KIND_DISPATCHER, fname);
  if (st != STRAND_OK) return st;
  if (!fn) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: fn is NULL", fname);
  core *c = dispatcher->core;
  uint64_t accepted = strand__now_ns();
  pthread_mutex_lock(&c->lock);
  if (c->stopping || c->depth >= c->capacity) {
    bool stopped = c->stopping;
    size_t capacity = c->capacity;
    pthread_mutex_unlock(&c->lock);
    atomic_fetch_add_explicit(&c->posts_refused, 1, memory_order_relaxed);
    if (stopped)
      return strand__fail(STRAND_E_CANCELED, "%s: dispatcher \"%s\" is stopped; the function "
                          "will not run", fname, c->name);
    return strand__fail(STRAND_E_BUSY, "%s: the queue of dispatcher \"%s\" is full (%zu tasks); "
                        "the function will not run", fname, c->name, capacity);
  }
  task *t = c->free_posts; /* there is one: waiting posts <= depth < capacity */
  c->free_posts = t->next;
  t->kind = TASK_POST;
  t->fn.post = fn;
  t->arg = arg;
  t->accepted_ns = accepted;
  atomic_fetch_add_explicit(&c->posts, 1, memory_order_relaxed);
  enqueue(c, t);
  pthread_mutex_unlock(&c->lock);
  return STRAND_OK;
}

strand_status strand_dispatcher_stop(strand_dispatcher *dispatcher,
                                     strand_dispatcher_stop_mode mode) {
  static const char fname[] = "strand_dispatcher_stop";
  strand_status st = strand__object_check(dispatcher, STRAND_KIND_DISPATCHER, fname);
  if (st != STRAND_OK) return st;
  if (mode != STRAND_DISPATCHER_DRAIN && mode != STRAND_DISPATCHER_CANCEL)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: %d is not a stop mode", fname, (int)mode);
  core *c = dispatcher->core;
  pthread_mutex_lock(&c->lock);
  stop_locked(c, mode);
  if (current != c)
    while (!c->ended_flag) pthread_cond_wait(&c->ended, &c->lock);
  pthread_mutex_unlock(&c->lock);
  return STRAND_OK;
}

int strand_dispatcher_is_current(const strand_dispatcher *dispatcher) {
  if (!dispatcher) return 0;
  if (strand__object_check(dispatcher, STRAND_KIND_DISPATCHER, "strand_dispatcher_is_current") !=
      STRAND_OK)
    return 0;
  return current == dispatcher->core;
}

strand_status strand_dispatcher_get_stats(const strand_dispatcher *dispatcher,
                                          strand_dispatcher_stats *out) {
  static const char fname[] = "strand_dispatcher_get_stats";
  strand_status st = strand__object_check(dispatcher, STRAND_KIND_DISPATCHER, fname);
  if (st != STRAND_OK) return st;
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out is NULL", fname);
  core *c = dispatcher->core;
  strand_dispatcher_stats s;
  memset(&s, 0, sizeof s);
  s.runs = atomic_load_explicit(&c->runs, memory_order_relaxed);
  s.runs_inline = atomic_load_explicit(&c->runs_inline, memory_order_relaxed);
  s.runs_canceled = atomic_load_explicit(&c->runs_canceled, memory_order_relaxed);
  s.posts = atomic_load_explicit(&c->posts, memory_order_relaxed);
  s.posts_run = atomic_load_explicit(&c->posts_run, memory_order_relaxed);
  s.posts_refused = atomic_load_explicit(&c->posts_refused, memory_order_relaxed);
  s.queue_depth = atomic_load_explicit(&c->queued, memory_order_relaxed);
  s.queue_depth_peak = atomic_load_explicit(&c->depth_peak, memory_order_relaxed);
  summarize(&c->wait, &s.queue_wait);
  summarize(&c->run_time, &s.run_time);
  *out = s;
  return STRAND_OK;
}
