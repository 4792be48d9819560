/* Sessions bound to a dispatcher (strand_session_options.dispatcher),
 * through strand.h only: runs execute on the dispatcher's thread (inline
 * when already there), a stopped dispatcher refuses them, failures carry
 * their messages across, session and dispatcher may be released in either
 * order (also from the dispatcher's own thread), and many threads (with
 * batching, too) get exactly what an unbound session gives. Run under
 * ThreadSanitizer too. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

static const char *input_name = "input";

static strand_model *mlp(void) {
  strand_model *m = NULL;
  if (strand_model_load(test_source_path("models/mlp_tiny.onnx"), &m))
    test_fail(__FILE__, __LINE__, "load: %s", strand_errmsg());
  return m;
}

static strand_dispatcher *dispatcher(const char *name) {
  strand_dispatcher_options o = {sizeof o, name, 0};
  strand_dispatcher *d = NULL;
  if (strand_dispatcher_create(&o, &d)) test_fail(__FILE__, __LINE__, "%s", strand_errmsg());
  return d;
}

static strand_session *bound(strand_model *model, strand_dispatcher *d, unsigned batch_rows) {
  strand_session_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.dispatcher = d;
  o.batch_max_rows = batch_rows;
  o.batch_delay_us = 2000;
  strand_session *s = NULL;
  if (strand_session_create(model, &o, &s)) test_fail(__FILE__, __LINE__, "%s", strand_errmsg());
  return s;
}

static strand_tensor *make_input(int64_t rows, uint32_t seed) {
  int64_t dims[2] = {rows, 16};
  strand_tensor *t = NULL;
  if (strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 2, &t)) return NULL;
  float *x;
  strand_tensor_data(t, (void **)&x);
  uint32_t state = seed * 2654435761u + 3;
  for (int64_t i = 0; i < rows * 16; i++) {
    state = state * 1664525u + 1013904223u;
    x[i] = (float)(state >> 8) / (float)(1u << 24) - 0.5f;
  }
  return t;
}

static strand_status run1(strand_session *s, strand_tensor *x, strand_tensor **y) {
  return strand_session_run(s, &input_name, (const strand_tensor *const *)&x, 1, NULL, y, 1);
}

static int same_bits(const strand_tensor *a, const strand_tensor *b) {
  size_t na, nb;
  void *pa, *pb;
  if (strand_tensor_byte_size(a, &na) || strand_tensor_byte_size(b, &nb) || na != nb) return 0;
  strand_tensor_data(a, &pa);
  strand_tensor_data(b, &pb);
  return memcmp(pa, pb, na) == 0;
}

/* ---- where runs execute -------------------------------------------------------- */

static strand_status mark_thread(void *arg) { return strand_leak_set_origin(arg); }

typedef struct origin_search {
  const char *origin;
  uint64_t tensors;
} origin_search;

static int count_origin(const strand_leak_site *site, void *context) {
  origin_search *o = context;
  if (site->kind == STRAND_KIND_TENSOR && strcmp(site->origin, o->origin) == 0)
    o->tensors += site->count;
  return 0;
}

/* The output tensor of a run from this thread is created on the dispatcher's
 * thread: traced, it carries the origin text set there. */
TEST(runs_execute_on_the_dispatcher_thread) {
  strand_model *model = mlp();
  strand_dispatcher *d = dispatcher("bound-test");
  REQUIRE(model && d);
  strand_session *s = bound(model, d, 0);
  strand_model_release(model);
  REQUIRE(s);
  strand_leak_level level = strand_leak_get_level();
  REQUIRE_OK(strand_leak_set_level(STRAND_LEAK_ALL, 0));
  CHECK_OK(strand_dispatcher_run(d, mark_thread, "on the dispatcher"));
  strand_tensor *x = make_input(2, 1), *y = NULL;
  CHECK_OK(run1(s, x, &y));
  origin_search o = {"on the dispatcher", 0};
  CHECK_OK(strand_leak_report(count_origin, &o));
  CHECK(o.tensors == 1); /* y; x was made here, without that origin */
  CHECK(!strand_dispatcher_is_current(d));
  strand_tensor_release(y);
  CHECK_OK(strand_dispatcher_run(d, mark_thread, NULL));
  CHECK_OK(strand_leak_set_level(level, 0));
  strand_dispatcher_stats ds;
  CHECK_OK(strand_dispatcher_get_stats(d, &ds));
  CHECK(ds.runs == 3 && ds.runs_inline == 0); /* two marks and the session run */
  strand_tensor_release(x);
  strand_session_release(s);
  strand_dispatcher_release(d);
}

typedef struct inline_call {
  strand_session *session;
  strand_dispatcher *dispatcher;
  strand_tensor *x, *y;
} inline_call;

static strand_status run_from_dispatcher(void *arg) {
  inline_call *c = arg;
  if (!strand_dispatcher_is_current(c->dispatcher)) return STRAND_E_INTERNAL;
  return run1(c->session, c->x, &c->y);
}

/* A run made on the dispatcher's own thread runs inline (no deadlock), and
 * gives the unbound session's bits. */
TEST(runs_on_the_dispatcher_thread_run_inline) {
  strand_model *model = mlp();
  strand_dispatcher *d = dispatcher(NULL);
  REQUIRE(model && d);
  strand_session *s = bound(model, d, 0), *plain = NULL;
  CHECK_OK(strand_session_create(model, NULL, &plain));
  strand_model_release(model);
  REQUIRE(s && plain);
  inline_call c = {s, d, make_input(3, 2), NULL};
  CHECK_OK(strand_dispatcher_run(d, run_from_dispatcher, &c));
  strand_tensor *want = NULL;
  CHECK_OK(run1(plain, c.x, &want));
  CHECK(c.y && same_bits(c.y, want));
  strand_dispatcher_stats ds;
  CHECK_OK(strand_dispatcher_get_stats(d, &ds));
  CHECK(ds.runs == 2 && ds.runs_inline == 1);
  strand_tensor_release(c.x);
  strand_tensor_release(c.y);
  strand_tensor_release(want);
  strand_session_release(s);
  strand_session_release(plain);
  strand_dispatcher_release(d);
}

/* Failures come back with their messages; a stopped dispatcher refuses. */
TEST(failures_and_stops_come_back) {
  strand_model *model = mlp();
  strand_dispatcher *d = dispatcher("bound-stop");
  REQUIRE(model && d);
  strand_session *s = bound(model, d, 0);
  strand_model_release(model);
  REQUIRE(s);
  int64_t dims[2] = {1, 15};
  strand_tensor *bad = NULL, *y = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 2, &bad));
  CHECK_STATUS(STRAND_E_SHAPE, run1(s, bad, &y));
  CHECK_MSG("input \"input\": dimension 1 is 15, expected 16");
  strand_tensor_release(bad);
  /* A canceled token: the node's message crosses threads. */
  strand_cancel_token *t = NULL;
  REQUIRE_OK(strand_cancel_token_create(&t));
  REQUIRE_OK(strand_cancel_token_cancel(t));
  strand_run_options ro = {sizeof ro, 0, 0, t};
  strand_tensor *x = make_input(1, 3);
  CHECK_STATUS(STRAND_E_CANCELED, strand_session_run_with_options(
                                      s, &ro, &input_name, (const strand_tensor *const *)&x, 1,
                                      NULL, &y, 1));
  CHECK_MSG("canceled by the run's token before this node ran");
  CHECK(y == NULL);
  strand_cancel_token_release(t);
  CHECK_OK(strand_dispatcher_stop(d, STRAND_DISPATCHER_DRAIN));
  CHECK_STATUS(STRAND_E_CANCELED, run1(s, x, &y));
  CHECK_MSG("dispatcher \"bound-stop\" is stopped");
  CHECK(y == NULL);
  strand_session_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_session_get_stats(s, &st));
  CHECK(st.runs == 0 && st.runs_canceled == 1);
  strand_tensor_release(x);
  strand_session_release(s);
  strand_dispatcher_release(d);
}

TEST(a_bad_dispatcher_handle_is_refused) {
  strand_model *model = mlp();
  REQUIRE(model);
  strand_session_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.dispatcher = (strand_dispatcher *)model; /* a model, not a dispatcher */
  strand_session *s = NULL;
  CHECK_STATUS(STRAND_E_MISUSE, strand_session_create(model, &o, &s));
  CHECK_MSG("options->dispatcher");
  CHECK(s == NULL);
  strand_model_release(model);
}

/* ---- release orders ------------------------------------------------------------- */

TEST(release_order_does_not_matter) {
  strand_model *model = mlp();
  REQUIRE(model);
  for (int order = 0; order < 2; order++) {
    strand_dispatcher *d = dispatcher(NULL);
    strand_session *s = bound(model, d, 0);
    REQUIRE(s);
    strand_tensor *x = make_input(1, 4), *y = NULL;
    if (order == 0) {
      strand_dispatcher_release(d); /* the session keeps it running */
      CHECK_OK(run1(s, x, &y));
      strand_session_release(s);
    } else {
      CHECK_OK(run1(s, x, &y));
      strand_session_release(s);
      strand_dispatcher_release(d);
    }
    strand_memory_stats m = {.struct_size = sizeof m};
    CHECK_OK(strand_memory_get_stats(&m));
    CHECK(m.live_objects[STRAND_KIND_DISPATCHER] == 0 && m.live_objects[STRAND_KIND_SESSION] == 0);
    strand_tensor_release(x);
    strand_tensor_release(y);
  }
  strand_model_release(model);
}

static void release_session(void *arg) { strand_session_release(arg); }

static void wait_flag(void *arg) {
  while (!atomic_load((atomic_int *)arg)) usleep(100);
}

/* The session's last reference, which holds the dispatcher's last, dropped
 * in a task on the dispatcher's own thread. */
TEST(last_release_on_the_dispatcher_thread) {
  strand_model *model = mlp();
  strand_dispatcher *d = dispatcher(NULL);
  REQUIRE(model && d);
  strand_session *s = bound(model, d, 0);
  strand_model_release(model);
  strand_tensor *x = make_input(1, 5), *y = NULL;
  CHECK_OK(run1(s, x, &y));
  static atomic_int go;
  atomic_store(&go, 0);
  CHECK_OK(strand_dispatcher_post(d, wait_flag, &go));
  CHECK_OK(strand_dispatcher_post(d, release_session, s));
  strand_dispatcher_release(d); /* not the last: the session holds one */
  atomic_store(&go, 1);
  /* The dispatcher ends on its own: wait for its memory to go. */
  for (int i = 0; i < 5000; i++) {
    strand_memory_stats m = {.struct_size = sizeof m};
    CHECK_OK(strand_memory_get_stats(&m));
    if (m.live_objects[STRAND_KIND_SESSION] == 0 && m.live_objects[STRAND_KIND_DISPATCHER] == 0 &&
        m.live_objects[STRAND_KIND_MODEL] == 0 && m.live_bytes[STRAND_MEMORY_OTHER] < 4096)
      break;
    usleep(1000);
  }
  strand_tensor_release(x);
  strand_tensor_release(y);
  usleep(20000); /* the detached thread's last frees */
}

/* ---- threads -------------------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 25

typedef struct crowd {
  strand_session *session;
  strand_tensor *x[THREADS], *want[THREADS];
  atomic_int next, wrong;
} crowd;

static void *crowd_runner(void *arg) {
  crowd *c = arg;
  int me = atomic_fetch_add(&c->next, 1);
  for (int i = 0; i < ROUNDS; i++) {
    int which = (me + i) % THREADS;
    strand_tensor *y = NULL;
    if (run1(c->session, c->x[which], &y) || !same_bits(y, c->want[which]))
      atomic_fetch_add(&c->wrong, 1);
    strand_tensor_release(y);
  }
  return NULL;
}

static void crowd_through(unsigned batch_rows) {
  strand_model *model = mlp();
  strand_dispatcher *d = dispatcher(NULL);
  REQUIRE(model && d);
  strand_session *plain = NULL;
  CHECK_OK(strand_session_create(model, NULL, &plain));
  crowd c;
  memset(&c, 0, sizeof c);
  c.session = bound(model, d, batch_rows);
  strand_model_release(model);
  REQUIRE(plain && c.session);
  for (int i = 0; i < THREADS; i++) {
    c.x[i] = make_input(1 + i % 2, (uint32_t)(40 + i));
    CHECK_OK(run1(plain, c.x[i], &c.want[i]));
  }
  test_run_threads(THREADS, crowd_runner, &c);
  CHECK(atomic_load(&c.wrong) == 0);
  strand_session_stats st = {.struct_size = sizeof st};
  strand_dispatcher_stats ds;
  CHECK_OK(strand_session_get_stats(c.session, &st));
  CHECK_OK(strand_dispatcher_get_stats(d, &ds));
  CHECK(st.runs == THREADS * ROUNDS);
  if (batch_rows) {
    /* One dispatcher task per batch: the stacked runs execute there. */
    CHECK(st.batched_runs == THREADS * ROUNDS);
    CHECK(ds.runs == st.batches);
    CHECK(st.batches < st.batched_runs);
  } else {
    CHECK(ds.runs == THREADS * ROUNDS && ds.runs_inline == 0);
  }
  for (int i = 0; i < THREADS; i++) {
    strand_tensor_release(c.x[i]);
    strand_tensor_release(c.want[i]);
  }
  strand_session_release(c.session);
  strand_session_release(plain);
  strand_dispatcher_release(d);
}

TEST(threads_share_a_bound_session) { crowd_through(0); }

TEST(threads_share_a_bound_batching_session) { crowd_through(8); }
