/* Models under threads: many threads loading, querying and releasing their
 * own models at once; one model shared by all of them, its last reference
 * dropped on whichever thread finishes last; and a model released on a
 * thread that did not load it. Run under ThreadSanitizer in CI. */
#include <pthread.h>

#include "test.h"

#define THREADS 8
#define ROUNDS 20

static const char *model_path(void) { return test_source_path("tests/data/onnx/cnn.onnx"); }

/* Reads everything a model offers; returns non-zero when something is off. */
static int query_all(const strand_model *m) {
  int bad = 0;
  size_t n = 0;
  strand_value_info v;
  bad |= strand_model_input_count(m, &n) != STRAND_OK || n != 1;
  bad |= strand_model_input(m, 0, &v) != STRAND_OK || strcmp(v.dim_names[0], "N") != 0;
  bad |= strand_model_output(m, 0, &v) != STRAND_OK || v.dims[1] != 10;
  size_t ops = 0;
  bad |= strand_model_op_count(m, &ops) != STRAND_OK || ops != 5;
  int all = 1;
  for (size_t i = 0; i < ops; i++) {
    strand_op_info op;
    bad |= strand_model_op(m, i, &op) != STRAND_OK || op.count != 1;
    all &= op.supported;
  }
  uint64_t params = 0;
  bad |= strand_model_parameter_count(m, &params, NULL) != STRAND_OK || params != 752;
  const char *name;
  bad |= strand_model_producer(m, &name, NULL) != STRAND_OK || strcmp(name, "strand-tests") != 0;
  bad |= strand_model_check_supported(m) != (all ? STRAND_OK : STRAND_E_UNSUPPORTED);
  return bad;
}

static void *load_query_release(void *arg) {
  (void)arg;
  for (int r = 0; r < ROUNDS; r++) {
    strand_model *m;
    if (strand_model_load(model_path(), &m) != STRAND_OK) {
      test_fail(__FILE__, __LINE__, "load: %s", strand_errmsg());
      return NULL;
    }
    if (query_all(m)) test_fail(__FILE__, __LINE__, "queries disagree");
    strand_model_release(m);
  }
  return NULL;
}

TEST(threads_load_their_own_models) { test_run_threads(THREADS, load_query_release, NULL); }

static void *use_shared(void *arg) {
  strand_model *m = arg; /* this thread's own reference, taken before the hand-off */
  for (int r = 0; r < ROUNDS * 5; r++)
    if (query_all(m)) test_fail(__FILE__, __LINE__, "queries disagree");
  strand_model_release(m);
  return NULL;
}

TEST(one_model_shared_by_all_threads) {
  strand_model *m;
  REQUIRE_OK(strand_model_load(model_path(), &m));
  pthread_t threads[THREADS];
  for (int i = 0; i < THREADS; i++) {
    CHECK_OK(strand_model_retain(m));
    REQUIRE(pthread_create(&threads[i], NULL, use_shared, m) == 0);
  }
  /* The loader lets go first: the last release happens on a worker. */
  strand_model_release(m);
  for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
}

static void *release_it(void *arg) {
  strand_model_release(arg);
  return NULL;
}

TEST(a_model_is_released_on_another_thread) {
  strand_model *m;
  REQUIRE_OK(strand_model_load(model_path(), &m));
  CHECK(query_all(m) == 0);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, release_it, m) == 0);
  pthread_join(t, NULL);
}
