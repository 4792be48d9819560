/* The dispatcher through the public API: the inline rule, blocking runs in
 * first-in first-out order, statuses and messages carried back, posts, stop
 * in both modes with blocked callers, the last release while runs are
 * queued and on the dispatcher's own thread, a full queue, sixteen threads
 * at once (for ThreadSanitizer), statistics, and misuse. */
#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#ifdef STRAND_SANITIZER
#define ROUNDS 300
#else
#define ROUNDS 3000
#endif

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Waits up to 10 s for strand's native bytes and objects to reach zero
 * (a dispatcher released on its own thread frees its core as it ends). */
static int wait_for_nothing_alive(void) {
  double deadline = now_s() + 10.0;
  for (;;) {
    strand_memory_stats st = {.struct_size = sizeof st};
    CHECK_OK(strand_memory_get_stats(&st));
    if (st.total_live_bytes == 0 && st.total_live_objects == 0) return 1;
    if (now_s() > deadline) return 0;
    sleep_ms(1);
  }
}

static strand_dispatcher *make(size_t capacity) {
  strand_dispatcher_options opt;
  memset(&opt, 0, sizeof opt);
  opt.struct_size = sizeof opt;
  opt.name = "test-disp";
  opt.queue_capacity = capacity;
  strand_dispatcher *d = NULL;
  if (strand_dispatcher_create(&opt, &d) != STRAND_OK) return NULL;
  return d;
}

/* Waits until the dispatcher has `depth` tasks waiting. */
static int wait_for_depth(strand_dispatcher *d, uint64_t depth) {
  double deadline = now_s() + 10.0;
  for (;;) {
    strand_dispatcher_stats s;
    if (strand_dispatcher_get_stats(d, &s) != STRAND_OK) return 0;
    if (s.queue_depth == depth) return 1;
    if (now_s() > deadline) return 0;
    sleep_ms(1);
  }
}

/* ---- a gate that holds the dispatcher's thread ----------------------------- */

static _Atomic int gate_open, gate_held;

static void hold_until_open(void *arg) {
  (void)arg;
  atomic_store(&gate_held, 1);
  while (!atomic_load(&gate_open)) sleep_ms(1);
}

/* Posts a task that occupies the thread until open_gate, and waits until it
 * has started (so the queue is empty behind it). */
static int close_gate(strand_dispatcher *d) {
  atomic_store(&gate_open, 0);
  atomic_store(&gate_held, 0);
  if (strand_dispatcher_post(d, hold_until_open, NULL) != STRAND_OK) return 0;
  double deadline = now_s() + 10.0;
  while (!atomic_load(&gate_held))
    if (now_s() > deadline) return 0;
    else sleep_ms(1);
  return 1;
}

static void open_gate(void) { atomic_store(&gate_open, 1); }

/* ---- creation ---------------------------------------------------------------- */

TEST(create_with_defaults_and_with_options) {
  strand_dispatcher *d = NULL;
  REQUIRE_OK(strand_dispatcher_create(NULL, &d));
  strand_memory_stats m = {.struct_size = sizeof m};
  CHECK_OK(strand_memory_get_stats(&m));
  CHECK(m.live_objects[STRAND_KIND_DISPATCHER] == 1);
  strand_dispatcher_release(d);

  strand_dispatcher_options opt;
  memset(&opt, 0, sizeof opt);
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_dispatcher_create(&opt, &d));
  CHECK_MSG("struct_size");
  opt.struct_size = sizeof opt;
  opt.queue_capacity = (size_t)1 << 21;
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_dispatcher_create(&opt, &d));
  CHECK_MSG("queue_capacity");
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_dispatcher_create(NULL, NULL));
}

TEST(create_fails_cleanly_at_every_allocation) {
  int created = 0;
  for (uint64_t n = 1; n < 20 && !created; n++) {
    strand_dispatcher *d = NULL;
    strand_memory_fail_nth(n);
    strand_status st = strand_dispatcher_create(NULL, &d);
    strand_memory_fail_nth(0);
    if (st == STRAND_OK) {
      created = 1;
      CHECK(n >= 3); /* the core, the post nodes, the shell */
      strand_dispatcher_release(d);
    } else {
      CHECK(st == STRAND_E_OUT_OF_MEMORY);
      CHECK(d == NULL);
      strand_memory_stats m = {.struct_size = sizeof m};
      CHECK_OK(strand_memory_get_stats(&m));
      CHECK(m.total_live_bytes == 0 && m.total_live_objects == 0);
    }
  }
  CHECK(created);
}

static strand_status read_thread_name(void *arg) {
  char *name = arg;
  return pthread_getname_np(pthread_self(), name, 16) == 0 ? STRAND_OK : STRAND_E_INTERNAL;
}

TEST(the_thread_carries_the_given_name) {
  strand_dispatcher_options opt;
  memset(&opt, 0, sizeof opt);
  opt.struct_size = sizeof opt;
  opt.name = "a-rather-long-dispatcher-name";
  strand_dispatcher *d;
  REQUIRE_OK(strand_dispatcher_create(&opt, &d));
  char name[16] = "";
  CHECK_OK(strand_dispatcher_run(d, read_thread_name, name));
  CHECK(strcmp(name, "a-rather-long-d") == 0);
  strand_dispatcher_release(d);
}

/* ---- the inline rule ------------------------------------------------------------- */

typedef struct {
  strand_dispatcher *d;
  int depth;
  int inner_current;
  pthread_t thread;
} nest_ctx;

static strand_status nested(void *arg) {
  nest_ctx *n = arg;
  if (!strand_dispatcher_is_current(n->d)) return STRAND_E_INTERNAL;
  if (n->depth == 0) n->thread = pthread_self();
  else if (!pthread_equal(n->thread, pthread_self())) return STRAND_E_INTERNAL;
  if (++n->depth < 5) return strand_dispatcher_run(n->d, nested, n);
  n->inner_current = 1;
  return STRAND_E_SHAPE; /* travels back out through every level */
}

TEST(a_run_from_the_dispatcher_thread_runs_inline) {
  strand_dispatcher *d = make(0);
  REQUIRE(d != NULL);
  CHECK(strand_dispatcher_is_current(d) == 0);
  nest_ctx n = {d, 0, 0, pthread_self()};
  CHECK_STATUS(STRAND_E_SHAPE, strand_dispatcher_run(d, nested, &n));
  CHECK(n.depth == 5);
  CHECK(n.inner_current == 1);
  CHECK(!pthread_equal(n.thread, pthread_self()));
  strand_dispatcher_stats s;
  CHECK_OK(strand_dispatcher_get_stats(d, &s));
  CHECK(s.runs == 5);
  CHECK(s.runs_inline == 4);
  strand_dispatcher_release(d);
}

/* ---- order, statuses, messages ---------------------------------------------------- */

static int order_log[1000];
static int order_count; /* touched only on the dispatcher's thread */

static void log_post(void *arg) { order_log[order_count++] = (int)(intptr_t)arg; }

static strand_status log_run(void *arg) {
  order_log[order_count++] = (int)(intptr_t)arg;
  return STRAND_OK;
}

typedef struct {
  strand_dispatcher *d;
  int base;
} order_ctx;

TEST(tasks_run_first_in_first_out) {
  strand_dispatcher *d = make(0);
  REQUIRE(d != NULL);
  order_count = 0;
  REQUIRE(close_gate(d));
  for (int i = 0; i < 500; i++) CHECK_OK(strand_dispatcher_post(d, log_post, (void *)(intptr_t)i));
  open_gate();
  for (int i = 500; i < 600; i++) CHECK_OK(strand_dispatcher_run(d, log_run, (void *)(intptr_t)i));
  /* The run returned, so everything before it is visible here. */
  CHECK(order_count == 600);
  int bad = 0;
  for (int i = 0; i < 600; i++) bad += order_log[i] != i;
  CHECK(bad == 0);
  strand_dispatcher_release(d);
}

static strand_status fail_with_message(void *arg) {
  (void)arg;
  strand_tensor *t;
  int64_t shape[] = {-3};
  return strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &t);
}

static strand_status fail_quietly(void *arg) {
  (void)arg;
  return STRAND_E_BUSY;
}

static strand_status succeed(void *arg) {
  if (arg) (*(int *)arg)++;
  return STRAND_OK;
}

TEST(a_run_returns_the_status_and_message_of_its_function) {
  strand_dispatcher *d = make(0);
  REQUIRE(d != NULL);
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_dispatcher_run(d, fail_with_message, NULL));
  CHECK_MSG("dimension 0 is -3");
  CHECK_STATUS(STRAND_E_BUSY, strand_dispatcher_run(d, fail_quietly, NULL));
  CHECK_MSG("returned STRAND_E_BUSY");
  CHECK_MSG("test-disp");
  int count = 0;
  CHECK_OK(strand_dispatcher_run(d, succeed, &count));
  CHECK(count == 1);
  strand_dispatcher_release(d);
}

/* ---- posts ---------------------------------------------------------------------------- */

static _Atomic int posted_ran;
static void count_post(void *arg) {
  (void)arg;
  atomic_fetch_add(&posted_ran, 1);
}

TEST(posts_run_on_the_dispatcher_thread) {
  strand_dispatcher *d = make(0);
  REQUIRE(d != NULL);
  atomic_store(&posted_ran, 0);
  for (int i = 0; i < 100; i++) CHECK_OK(strand_dispatcher_post(d, count_post, NULL));
  CHECK_OK(strand_dispatcher_run(d, succeed, NULL)); /* FIFO: all posts ran before */
  CHECK(atomic_load(&posted_ran) == 100);
  strand_dispatcher_stats s;
  CHECK_OK(strand_dispatcher_get_stats(d, &s));
  CHECK(s.posts == 100 && s.posts_run == 100 && s.posts_refused == 0);
  strand_dispatcher_release(d);
}

TEST(a_full_queue_refuses_posts_and_holds_runs) {
  strand_dispatcher *d = make(2);
  REQUIRE(d != NULL);
  atomic_store(&posted_ran, 0);
  REQUIRE(close_gate(d));
  CHECK_OK(strand_dispatcher_post(d, count_post, NULL));
  CHECK_OK(strand_dispatcher_post(d, count_post, NULL));
  CHECK_STATUS(STRAND_E_BUSY, strand_dispatcher_post(d, count_post, NULL));
  CHECK_MSG("full");
  open_gate();
  CHECK_OK(strand_dispatcher_run(d, succeed, NULL)); /* waits for room, then runs */
  CHECK(atomic_load(&posted_ran) == 2);
  strand_dispatcher_stats s;
  CHECK_OK(strand_dispatcher_get_stats(d, &s));
  CHECK(s.posts == 3 && s.posts_refused == 1 && s.posts_run == 3);
  CHECK(s.queue_depth_peak == 2);
  strand_dispatcher_release(d);
}

/* ---- stop ----------------------------------------------------------------------------- */

typedef struct {
  strand_dispatcher *d;
  _Atomic int *ran;
  _Atomic int *ok;
  _Atomic int *canceled;
} blocked_ctx;

static strand_status count_run(void *arg) {
  atomic_fetch_add((_Atomic int *)arg, 1);
  return STRAND_OK;
}

static void *blocked_caller(void *arg) {
  blocked_ctx *b = arg;
  strand_status st = strand_dispatcher_run(b->d, count_run, b->ran);
  if (st == STRAND_OK) atomic_fetch_add(b->ok, 1);
  if (st == STRAND_E_CANCELED) atomic_fetch_add(b->canceled, 1);
  return NULL;
}

typedef struct {
  strand_dispatcher *d;
  strand_dispatcher_stop_mode mode;
  _Atomic int returned;
} stopper_ctx;

static void *stopper(void *arg) {
  stopper_ctx *s = arg;
  strand_dispatcher_stop(s->d, s->mode);
  atomic_store(&s->returned, 1);
  return NULL;
}

#define BLOCKED 6

static void start_blocked(pthread_t *threads, blocked_ctx *b) {
  for (int i = 0; i < BLOCKED; i++)
    if (pthread_create(&threads[i], NULL, blocked_caller, b) != 0) abort();
}

TEST(stop_drain_runs_what_is_queued_and_refuses_the_rest) {
  strand_dispatcher *d = make(0);
  REQUIRE(d != NULL);
  _Atomic int ran = 0, ok = 0, canceled = 0;
  blocked_ctx b = {d, &ran, &ok, &canceled};
  atomic_store(&posted_ran, 0);
  REQUIRE(close_gate(d));
  pthread_t threads[BLOCKED];
  start_blocked(threads, &b);
  REQUIRE(wait_for_depth(d, BLOCKED));
  CHECK_OK(strand_dispatcher_post(d, count_post, NULL));
  stopper_ctx s = {d, STRAND_DISPATCHER_DRAIN, 0};
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, stopper, &s) == 0);
  sleep_ms(50);
  CHECK(atomic_load(&s.returned) == 0); /* it waits for the queue to drain */
  open_gate();
  pthread_join(t, NULL);
  for (int i = 0; i < BLOCKED; i++) pthread_join(threads[i], NULL);
  CHECK(atomic_load(&ran) == BLOCKED);
  CHECK(atomic_load(&ok) == BLOCKED);
  CHECK(atomic_load(&posted_ran) == 1);
  /* Refused from now on; the functions never run. */
  int count = 0;
  CHECK_STATUS(STRAND_E_CANCELED, strand_dispatcher_run(d, succeed, &count));
  CHECK_MSG("stopped");
  CHECK_STATUS(STRAND_E_CANCELED, strand_dispatcher_post(d, count_post, NULL));
  CHECK(count == 0 && atomic_load(&posted_ran) == 1);
  CHECK_OK(strand_dispatcher_stop(d, STRAND_DISPATCHER_DRAIN)); /* again: fine */
  strand_dispatcher_stats st;
  CHECK_OK(strand_dispatcher_get_stats(d, &st));
  CHECK(st.runs == BLOCKED && st.runs_canceled == 1 && st.posts_refused == 1);
  strand_dispatcher_release(d);
}

TEST(stop_cancel_returns_queued_runs_at_once_and_still_runs_posts) {
  strand_dispatcher *d = make(0);
  REQUIRE(d != NULL);
  _Atomic int ran = 0, ok = 0, canceled = 0;
  blocked_ctx b = {d, &ran, &ok, &canceled};
  atomic_store(&posted_ran, 0);
  REQUIRE(close_gate(d));
  pthread_t threads[BLOCKED];
  start_blocked(threads, &b);
  REQUIRE(wait_for_depth(d, BLOCKED));
  for (int i = 0; i < 3; i++) CHECK_OK(strand_dispatcher_post(d, count_post, NULL));
  stopper_ctx s = {d, STRAND_DISPATCHER_CANCEL, 0};
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, stopper, &s) == 0);
  /* The blocked callers come back while the gate still holds the thread. */
  for (int i = 0; i < BLOCKED; i++) pthread_join(threads[i], NULL);
  CHECK(atomic_load(&canceled) == BLOCKED);
  CHECK(atomic_load(&ran) == 0);
  CHECK(atomic_load(&s.returned) == 0);
  open_gate();
  pthread_join(t, NULL);
  CHECK(atomic_load(&posted_ran) == 3); /* posts are clean-ups: they run */
  strand_dispatcher_stats st;
  CHECK_OK(strand_dispatcher_get_stats(d, &st));
  CHECK(st.runs_canceled == BLOCKED);
  CHECK(st.runs == 0);
  CHECK(st.posts_run == 4); /* three and the gate */
  CHECK(st.queue_depth == 0);
  strand_dispatcher_release(d);
}

static strand_status stop_myself(void *arg) {
  strand_dispatcher *d = arg;
  strand_status st = strand_dispatcher_stop(d, STRAND_DISPATCHER_DRAIN);
  if (st != STRAND_OK) return st;
  /* Inline runs on the dispatcher's own thread still work after a stop. */
  int count = 0;
  st = strand_dispatcher_run(d, succeed, &count);
  return st == STRAND_OK && count == 1 ? STRAND_OK : STRAND_E_INTERNAL;
}

TEST(stop_from_the_dispatcher_thread_does_not_wait_for_itself) {
  strand_dispatcher *d = make(0);
  REQUIRE(d != NULL);
  atomic_store(&posted_ran, 0);
  CHECK_OK(strand_dispatcher_run(d, stop_myself, d));
  CHECK_STATUS(STRAND_E_CANCELED, strand_dispatcher_run(d, succeed, NULL));
  CHECK_STATUS(STRAND_E_CANCELED, strand_dispatcher_post(d, count_post, NULL));
  CHECK_OK(strand_dispatcher_stop(d, STRAND_DISPATCHER_CANCEL)); /* thread gone: returns */
  strand_dispatcher_release(d);
}

/* ---- the last release --------------------------------------------------------------- */

TEST(last_release_while_runs_are_queued_from_other_threads) {
  strand_dispatcher *d = make(0);
  REQUIRE(d != NULL);
  _Atomic int ran = 0, ok = 0, canceled = 0;
  blocked_ctx b = {d, &ran, &ok, &canceled};
  atomic_store(&posted_ran, 0);
  REQUIRE(close_gate(d));
  pthread_t threads[BLOCKED];
  start_blocked(threads, &b); /* they use this thread's reference */
  REQUIRE(wait_for_depth(d, BLOCKED));
  CHECK_OK(strand_dispatcher_post(d, count_post, NULL));
  strand_dispatcher_release(d); /* the runs in progress keep it alive */
  strand_memory_stats m = {.struct_size = sizeof m};
  CHECK_OK(strand_memory_get_stats(&m));
  CHECK(m.live_objects[STRAND_KIND_DISPATCHER] == 1);
  open_gate();
  for (int i = 0; i < BLOCKED; i++) pthread_join(threads[i], NULL);
  CHECK(atomic_load(&ok) == BLOCKED);
  CHECK(atomic_load(&ran) == BLOCKED);
  CHECK(atomic_load(&posted_ran) == 1);
  CHECK(wait_for_nothing_alive());
}

TEST(last_release_drains_queued_posts) {
  strand_dispatcher *d = make(0);
  REQUIRE(d != NULL);
  atomic_store(&posted_ran, 0);
  for (int i = 0; i < 50; i++) CHECK_OK(strand_dispatcher_post(d, count_post, NULL));
  strand_dispatcher_release(d);
  CHECK(atomic_load(&posted_ran) == 50); /* waited for them */
}

static _Atomic int after_release_ran;

static void release_myself(void *arg) { strand_dispatcher_release(arg); }

static void after_release(void *arg) {
  (void)arg;
  atomic_store(&after_release_ran, 1);
}

TEST(last_release_on_the_dispatcher_thread_detaches) {
  strand_dispatcher *d = make(0);
  REQUIRE(d != NULL);
  atomic_store(&after_release_ran, 0);
  REQUIRE(close_gate(d));
  /* The only reference goes to a posted function, as a cleaner would do. */
  CHECK_OK(strand_dispatcher_post(d, release_myself, d));
  CHECK_OK(strand_dispatcher_post(d, after_release, NULL));
  open_gate();
  CHECK(wait_for_nothing_alive());
  CHECK(atomic_load(&after_release_ran) == 1); /* drained after the release */
}

/* ---- sixteen threads at once ------------------------------------------------------------ */

#define HAMMER_THREADS 16
static long hammer_runs, hammer_posts; /* only the dispatcher's thread touches these */
static _Atomic long hammer_busy, hammer_errors;

static strand_status hammer_run(void *arg) {
  if (!strand_dispatcher_is_current(arg)) atomic_fetch_add(&hammer_errors, 1);
  hammer_runs++;
  return STRAND_OK;
}

static void hammer_post(void *arg) {
  (void)arg;
  hammer_posts++;
}

static strand_status read_counts(void *arg) {
  long *out = arg;
  out[0] = hammer_runs;
  out[1] = hammer_posts;
  return STRAND_OK;
}

static void *hammer(void *arg) {
  strand_dispatcher *d = arg;
  if (strand_dispatcher_retain(d) != STRAND_OK) {
    atomic_fetch_add(&hammer_errors, 1);
    return NULL;
  }
  for (int i = 0; i < ROUNDS; i++) {
    if (strand_dispatcher_run(d, hammer_run, d) != STRAND_OK) atomic_fetch_add(&hammer_errors, 1);
    strand_status st;
    while ((st = strand_dispatcher_post(d, hammer_post, NULL)) == STRAND_E_BUSY) {
      atomic_fetch_add(&hammer_busy, 1);
      sched_yield();
    }
    if (st != STRAND_OK) atomic_fetch_add(&hammer_errors, 1);
    if (strand_dispatcher_is_current(d)) atomic_fetch_add(&hammer_errors, 1);
    if (i % 64 == 0) {
      strand_dispatcher_stats s;
      if (strand_dispatcher_get_stats(d, &s) != STRAND_OK) atomic_fetch_add(&hammer_errors, 1);
    }
  }
  strand_dispatcher_release(d);
  return NULL;
}

TEST(sixteen_threads_run_and_post_at_once_and_stats_add_up) {
  strand_dispatcher *d = make(8);
  REQUIRE(d != NULL);
  hammer_runs = hammer_posts = 0;
  atomic_store(&hammer_busy, 0);
  atomic_store(&hammer_errors, 0);
  test_run_threads(HAMMER_THREADS, hammer, d);
  CHECK(atomic_load(&hammer_errors) == 0);
  long counts[2];
  CHECK_OK(strand_dispatcher_run(d, read_counts, counts));
  long expected = (long)HAMMER_THREADS * ROUNDS;
  CHECK(counts[0] == expected);
  CHECK(counts[1] == expected);

  strand_dispatcher_stats s;
  CHECK_OK(strand_dispatcher_get_stats(d, &s));
  CHECK(s.runs == (uint64_t)expected + 1);
  CHECK(s.runs_inline == 0);
  CHECK(s.runs_canceled == 0);
  CHECK(s.posts == (uint64_t)expected);
  CHECK(s.posts_run == (uint64_t)expected);
  CHECK(s.posts_refused == (uint64_t)atomic_load(&hammer_busy));
  CHECK(s.queue_depth == 0);
  CHECK(s.queue_depth_peak >= 1 && s.queue_depth_peak <= 8);
  CHECK(s.queue_wait.count == s.runs + s.posts_run);
  CHECK(s.run_time.count == s.runs + s.posts_run);
  const strand_latency_summary *l[2] = {&s.queue_wait, &s.run_time};
  for (int i = 0; i < 2; i++) {
    CHECK(l[i]->p50_us >= 0);
    CHECK(l[i]->p50_us <= l[i]->p90_us);
    CHECK(l[i]->p90_us <= l[i]->p99_us);
    CHECK(l[i]->p99_us <= l[i]->max_us);
    CHECK(l[i]->max_us < 60e6);
  }
  printf("     queue wait p50 %.1f p90 %.1f p99 %.1f max %.1f us; run p50 %.2f us; "
         "%ld busy refusals\n", s.queue_wait.p50_us, s.queue_wait.p90_us, s.queue_wait.p99_us,
         s.queue_wait.max_us, s.run_time.p50_us, atomic_load(&hammer_busy));
  strand_dispatcher_release(d);
}

/* Stops (both modes, from two threads) racing with runs and posts: every
 * run either ran and returned OK or never ran and returned CANCELED, and
 * every accepted post ran exactly once. */
static _Atomic long race_ran, race_ok, race_canceled, race_posted, race_post_ran, race_other;

static strand_status race_run(void *arg) {
  (void)arg;
  atomic_fetch_add(&race_ran, 1);
  return STRAND_OK;
}

static void race_post(void *arg) {
  (void)arg;
  atomic_fetch_add(&race_post_ran, 1);
}

static void *race_caller(void *arg) {
  strand_dispatcher *d = arg;
  for (int i = 0; i < ROUNDS; i++) {
    strand_status st = strand_dispatcher_run(d, race_run, NULL);
    if (st == STRAND_OK) atomic_fetch_add(&race_ok, 1);
    else if (st == STRAND_E_CANCELED) atomic_fetch_add(&race_canceled, 1);
    else atomic_fetch_add(&race_other, 1);
    st = strand_dispatcher_post(d, race_post, NULL);
    if (st == STRAND_OK) atomic_fetch_add(&race_posted, 1);
    else if (st != STRAND_E_CANCELED && st != STRAND_E_BUSY) atomic_fetch_add(&race_other, 1);
  }
  return NULL;
}

typedef struct {
  strand_dispatcher *d;
  strand_dispatcher_stop_mode mode;
} race_stop_ctx;

static void *race_stopper(void *arg) {
  race_stop_ctx *s = arg;
  sleep_ms(5);
  if (strand_dispatcher_stop(s->d, s->mode) != STRAND_OK) atomic_fetch_add(&race_other, 1);
  return NULL;
}

TEST(stops_race_with_runs_and_posts) {
  for (int round = 0; round < 4; round++) {
    strand_dispatcher *d = make(16);
    REQUIRE(d != NULL);
    atomic_store(&race_ran, 0);
    atomic_store(&race_ok, 0);
    atomic_store(&race_canceled, 0);
    atomic_store(&race_posted, 0);
    atomic_store(&race_post_ran, 0);
    atomic_store(&race_other, 0);
    pthread_t callers[8], stoppers[2];
    race_stop_ctx stops[2] = {{d, STRAND_DISPATCHER_DRAIN}, {d, STRAND_DISPATCHER_CANCEL}};
    for (int i = 0; i < 8; i++) REQUIRE(pthread_create(&callers[i], NULL, race_caller, d) == 0);
    for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&stoppers[i], NULL, race_stopper, &stops[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(stoppers[i], NULL);
    for (int i = 0; i < 8; i++) pthread_join(callers[i], NULL);
    CHECK(atomic_load(&race_other) == 0);
    CHECK(atomic_load(&race_ok) == atomic_load(&race_ran));
    CHECK(atomic_load(&race_ok) + atomic_load(&race_canceled) == 8L * ROUNDS);
    strand_dispatcher_stats s;
    CHECK_OK(strand_dispatcher_get_stats(d, &s));
    CHECK(s.runs == (uint64_t)atomic_load(&race_ran));
    CHECK(s.runs_canceled == (uint64_t)atomic_load(&race_canceled));
    strand_dispatcher_release(d);
    CHECK(atomic_load(&race_post_ran) == atomic_load(&race_posted));
  }
}

static strand_status sleep_2ms(void *arg) {
  (void)arg;
  sleep_ms(2);
  return STRAND_OK;
}

TEST(run_time_percentiles_reflect_the_work) {
  strand_dispatcher *d = make(0);
  REQUIRE(d != NULL);
  for (int i = 0; i < 10; i++) CHECK_OK(strand_dispatcher_run(d, sleep_2ms, NULL));
  strand_dispatcher_stats s;
  CHECK_OK(strand_dispatcher_get_stats(d, &s));
  CHECK(s.run_time.count == 10);
  CHECK(s.run_time.p50_us >= 1500 && s.run_time.p50_us <= s.run_time.max_us);
  CHECK(s.run_time.max_us >= 2000);
  strand_dispatcher_release(d);
}

/* ---- misuse ------------------------------------------------------------------------------ */

TEST(misuse_is_answered) {
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_dispatcher_run(NULL, succeed, NULL));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_dispatcher_post(NULL, count_post, NULL));
  CHECK(strand_dispatcher_is_current(NULL) == 0);
  strand_dispatcher_release(NULL);

  strand_dispatcher *d = make(0);
  REQUIRE(d != NULL);
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_dispatcher_run(d, NULL, NULL));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_dispatcher_post(d, NULL, NULL));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_dispatcher_stop(d, (strand_dispatcher_stop_mode)7));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_dispatcher_get_stats(d, NULL));
  strand_dispatcher_release(d);

  strand_log_level level = strand_log_get_level();
  strand_log_set_level(STRAND_LOG_OFF);
  uint64_t misuses = strand_misuse_count();
  int count = 0;
  CHECK_STATUS(STRAND_E_MISUSE, strand_dispatcher_run(d, succeed, &count));
  CHECK_MSG("released");
  CHECK_STATUS(STRAND_E_MISUSE, strand_dispatcher_post(d, count_post, NULL));
  CHECK_STATUS(STRAND_E_MISUSE, strand_dispatcher_stop(d, STRAND_DISPATCHER_DRAIN));
  CHECK_STATUS(STRAND_E_MISUSE, strand_dispatcher_retain(d));
  strand_dispatcher_stats s;
  CHECK_STATUS(STRAND_E_MISUSE, strand_dispatcher_get_stats(d, &s));
  CHECK(strand_dispatcher_is_current(d) == 0);
  strand_dispatcher_release(d);
  CHECK(count == 0);
  CHECK(strand_misuse_count() == misuses + 7);

  /* A handle of another kind. */
  strand_tensor *t;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, NULL, 0, &t));
  CHECK_STATUS(STRAND_E_MISUSE, strand_dispatcher_run((strand_dispatcher *)t, succeed, NULL));
  CHECK_MSG("tensor");
  strand_tensor_release(t);
  strand_log_set_level(level);
}
