/* Sessions under threads (run under ThreadSanitizer too): many threads run
 * one session at once with different batch sizes and get exactly what a
 * single thread gets; the session and the model may be released while runs
 * are in flight on other threads. */
#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

#define THREADS 8
#define ROUNDS 12

static strand_tensor *batch_input(int64_t batch, unsigned seed) {
  int64_t dims[4] = {batch, 1, 28, 28};
  strand_tensor *t = NULL;
  if (strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 4, &t)) return NULL;
  float *x;
  strand_tensor_data(t, (void **)&x);
  size_t n = (size_t)batch * 28 * 28;
  uint32_t state = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    state = state * 1664525u + 1013904223u;
    x[i] = (float)(state >> 8) / (float)(1u << 24) - 0.5f;
  }
  return t;
}

typedef struct shared {
  strand_session *session;
  strand_tensor *inputs[THREADS];
  strand_tensor *expected[THREADS]; /* single-threaded results */
  atomic_int next, mismatches, failures;
  atomic_int started;
} shared;

static int same(const strand_tensor *a, const strand_tensor *b) {
  size_t na, nb;
  void *da, *db;
  if (strand_tensor_byte_size(a, &na) || strand_tensor_byte_size(b, &nb) || na != nb) return 0;
  strand_tensor_data(a, &da);
  strand_tensor_data(b, &db);
  return memcmp(da, db, na) == 0;
}

static void *runner(void *arg) {
  shared *sh = arg;
  int me = atomic_fetch_add(&sh->next, 1);
  const char *name = "input";
  for (int round = 0; round < ROUNDS; round++) {
    int which = (me + round) % THREADS;
    strand_tensor *out = NULL;
    strand_status st = strand_session_run(sh->session, &name,
                                          (const strand_tensor *const *)&sh->inputs[which], 1,
                                          NULL, &out, 1);
    if (st) atomic_fetch_add(&sh->failures, 1);
    else if (!same(out, sh->expected[which])) atomic_fetch_add(&sh->mismatches, 1);
    strand_tensor_release(out);
  }
  return NULL;
}

static strand_session *cnn_session(unsigned intra_op_threads) {
  strand_model *model = NULL;
  if (strand_model_load(test_source_path("models/cnn_tiny.onnx"), &model)) return NULL;
  strand_session_options options = {.struct_size = sizeof options, .intra_op_threads = intra_op_threads};
  strand_session *s = NULL;
  strand_session_create(model, &options, &s);
  strand_model_release(model);
  return s;
}

static void concurrent(unsigned intra_op_threads) {
  strand_threads_set_budget(4); /* kernels split their work even on small machines */
  shared sh;
  memset(&sh, 0, sizeof sh);
  sh.session = cnn_session(intra_op_threads);
  REQUIRE(sh.session);
  const char *name = "input";
  for (int i = 0; i < THREADS; i++) {
    sh.inputs[i] = batch_input(1 + i % 5, (unsigned)i);
    REQUIRE(sh.inputs[i]);
    REQUIRE_OK(strand_session_run(sh.session, &name, (const strand_tensor *const *)&sh.inputs[i],
                                  1, NULL, &sh.expected[i], 1));
  }
  test_run_threads(THREADS, runner, &sh);
  CHECK(atomic_load(&sh.failures) == 0);
  CHECK(atomic_load(&sh.mismatches) == 0);
  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(sh.session, &stats));
  CHECK(stats.runs == THREADS + THREADS * ROUNDS);
  CHECK(stats.planning_runs >= 5 && stats.arenas >= 1 && stats.arenas <= THREADS + 1);
  for (int i = 0; i < THREADS; i++) {
    strand_tensor_release(sh.inputs[i]);
    strand_tensor_release(sh.expected[i]);
  }
  strand_session_release(sh.session);
  strand_threads_set_budget(0);
}

TEST(threads_share_one_session) { concurrent(0); }
TEST(threads_share_one_single_threaded_session) { concurrent(1); }

/* Each runner holds its own reference; the creator drops its own (and the
 * model's) while they run: the last run frees the session. */
typedef struct handoff {
  strand_session *session;
  strand_tensor *input;
  atomic_int ready, go, failures;
} handoff;

static void *late_runner(void *arg) {
  handoff *h = arg;
  strand_session *mine = h->session;
  if (strand_session_retain(mine)) {
    atomic_fetch_add(&h->failures, 1);
    return NULL;
  }
  atomic_fetch_add(&h->ready, 1);
  while (!atomic_load(&h->go)) {}
  const char *name = "input";
  for (int round = 0; round < ROUNDS; round++) {
    strand_tensor *out = NULL;
    if (strand_session_run(mine, &name, (const strand_tensor *const *)&h->input, 1, NULL, &out, 1))
      atomic_fetch_add(&h->failures, 1);
    strand_tensor_release(out);
  }
  strand_session_release(mine);
  return NULL;
}

static void *release_first(void *arg) {
  handoff *h = arg;
  while (atomic_load(&h->ready) < THREADS - 1) {}
  atomic_store(&h->go, 1);
  strand_session_release(h->session); /* the creator's reference */
  return NULL;
}

static void *either(void *arg) {
  static atomic_int turn;
  handoff *h = arg;
  if (atomic_fetch_add(&turn, 1) % THREADS == 0) return release_first(h);
  return late_runner(h);
}

TEST(release_while_running) {
  handoff h;
  memset(&h, 0, sizeof h);
  h.session = cnn_session(0);
  REQUIRE(h.session);
  h.input = batch_input(3, 7);
  REQUIRE(h.input);
  test_run_threads(THREADS, either, &h);
  CHECK(atomic_load(&h.failures) == 0);
  strand_tensor_release(h.input);
}
