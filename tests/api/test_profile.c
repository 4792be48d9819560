/* Per-node profiling through strand.h: off until turned on, one call per
 * kernel call (fused nodes none, sliced runs one per slice), times that
 * fit inside the runs' wall time, reset, counts exact under concurrent
 * runs, switching on and off while runs go on, and the errors. The model
 * is the shipped cnn_tiny: Conv, Relu, MaxPool, Conv, Relu, MaxPool,
 * Flatten, Gemm, whose two Relu nodes join the Conv before them and whose
 * Flatten becomes a view. */
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "session_from.h"
#include "test.h"

#define MAX_NODES 16

typedef struct seen {
  size_t count;
  int out_of_order;
  strand_node_profile nodes[MAX_NODES]; /* strings not kept */
  char op_types[MAX_NODES][16];
  char kernels[MAX_NODES][32];
} seen;

static void collect(const strand_node_profile *node, void *context) {
  seen *s = context;
  if (node->index != s->count || s->count == MAX_NODES) {
    s->out_of_order = 1;
    return;
  }
  s->nodes[s->count] = *node;
  snprintf(s->op_types[s->count], sizeof s->op_types[0], "%s", node->op_type);
  snprintf(s->kernels[s->count], sizeof s->kernels[0], "%s", node->kernel ? node->kernel : "(null)");
  s->count++;
}

static seen profile_of(const strand_session *session) {
  seen s;
  memset(&s, 0, sizeof s);
  CHECK_OK(strand_session_get_profile(session, collect, &s));
  CHECK(!s.out_of_order);
  return s;
}

static strand_session *cnn_session(unsigned slice_rows) {
  strand_model *model = NULL;
  if (strand_model_load(test_source_path("models/cnn_tiny.onnx"), &model)) {
    test_fail(__FILE__, __LINE__, "load: %s", strand_errmsg());
    return NULL;
  }
  strand_session_options options = {.struct_size = sizeof options};
  options.intra_op_threads = 1;
  options.slice_rows = slice_rows;
  strand_session *session = NULL;
  if (strand_session_create(model, &options, &session))
    test_fail(__FILE__, __LINE__, "create: %s", strand_errmsg());
  strand_model_release(model);
  return session;
}

static strand_tensor *cnn_input(int64_t rows) {
  int64_t shape[] = {rows, 1, 28, 28};
  strand_tensor *t = NULL;
  if (strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 4, &t)) return NULL;
  float *x = NULL;
  strand_tensor_data(t, (void **)&x);
  for (int64_t i = 0; i < rows * 28 * 28; i++) x[i] = (float)(i % 17) * 0.05f - 0.4f;
  return t;
}

static int run_once(strand_session *session, const strand_tensor *input) {
  const char *in_name = "input";
  strand_tensor *out = NULL;
  strand_status st = strand_session_run(session, &in_name, &input, 1, NULL, &out, 1);
  strand_tensor_release(out);
  return st == STRAND_OK;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Calls of each node, expecting `want` for the nodes that run and none for
 * the two Relu nodes the Convs absorbed nor for Flatten, a view of its
 * input's bytes once a run has a plan. */
static void check_calls(const seen *s, uint64_t want) {
  CHECK(s->count == 8);
  for (size_t k = 0; k < s->count; k++) {
    bool idle = strcmp(s->op_types[k], "Relu") == 0 || strcmp(s->op_types[k], "Flatten") == 0;
    uint64_t expect = idle ? 0 : want;
    if (s->nodes[k].calls != expect)
      test_fail(__FILE__, __LINE__, "node %zu (%s): %llu calls, want %llu", k, s->op_types[k],
                (unsigned long long)s->nodes[k].calls, (unsigned long long)expect);
  }
}

TEST(profile_counts_each_kernel_call_only_while_on) {
  strand_session *session = cnn_session(0);
  strand_tensor *input = cnn_input(2);
  REQUIRE(session && input);
  for (int i = 0; i < 3; i++) CHECK(run_once(session, input));
  seen s = profile_of(session);
  check_calls(&s, 0); /* off until turned on: even the planning run is not counted */
  CHECK(s.nodes[0].total_ns == 0);

  CHECK_OK(strand_session_set_profiling(session, 1));
  uint64_t start = now_ns();
  for (int i = 0; i < 5; i++) CHECK(run_once(session, input));
  uint64_t wall = now_ns() - start;
  s = profile_of(session);
  check_calls(&s, 5);
  uint64_t sum = 0;
  for (size_t k = 0; k < s.count; k++) {
    sum += s.nodes[k].total_ns;
    if (s.nodes[k].calls) CHECK(s.nodes[k].total_ns > 0);
  }
  /* Kernel times are parts of the runs: together within their wall time. */
  CHECK(sum > 0 && sum <= wall);
  CHECK(strcmp(s.op_types[0], "Conv") == 0 && strcmp(s.op_types[7], "Gemm") == 0);

  CHECK_OK(strand_session_set_profiling(session, 0));
  for (int i = 0; i < 2; i++) CHECK(run_once(session, input));
  seen after = profile_of(session);
  check_calls(&after, 5); /* off again: nothing added */
  CHECK(after.nodes[0].total_ns == s.nodes[0].total_ns);

  CHECK_OK(strand_session_reset_profile(session));
  after = profile_of(session);
  check_calls(&after, 0);
  for (size_t k = 0; k < after.count; k++) CHECK(after.nodes[k].total_ns == 0);
  strand_tensor_release(input);
  strand_session_release(session);
}

/* A batch of 4 run as slices of one row calls every node once per slice. */
TEST(profile_counts_a_sliced_run_once_per_slice) {
  strand_session *session = cnn_session(1);
  strand_tensor *input = cnn_input(4);
  REQUIRE(session && input);
  CHECK(run_once(session, input)); /* the planning run proves the rows independent */
  CHECK_OK(strand_session_set_profiling(session, 1));
  CHECK(run_once(session, input));
  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(session, &stats));
  CHECK(stats.slices >= 4);
  seen s = profile_of(session);
  check_calls(&s, 4);
  strand_tensor_release(input);
  strand_session_release(session);
}

static strand_session *batching_session(void) {
  strand_model *model = NULL;
  if (strand_model_load(test_source_path("models/cnn_tiny.onnx"), &model)) return NULL;
  strand_session_options options = {.struct_size = sizeof options};
  options.intra_op_threads = 1;
  options.slice_rows = STRAND_SLICE_OFF;
  options.batch_max_rows = 4;
  options.batch_delay_us = 200000; /* long enough for four callers to meet */
  strand_session *session = NULL;
  if (strand_session_create(model, &options, &session))
    test_fail(__FILE__, __LINE__, "create: %s", strand_errmsg());
  strand_model_release(model);
  return session;
}

typedef struct runner {
  strand_session *session;
  const strand_tensor *input;
  int runs;
  _Atomic int *failures;
  _Atomic int *stop; /* NULL: run `runs` times */
  _Atomic long *made;
} runner;

static void *run_many(void *p) {
  runner *r = p;
  for (int i = 0; r->stop ? !atomic_load(r->stop) : i < r->runs; i++) {
    if (!run_once(r->session, r->input)) atomic_fetch_add(r->failures, 1);
    if (r->made) atomic_fetch_add(r->made, 1);
  }
  return NULL;
}

/* Eight threads, 25 runs each, on one profiled session: every run of
 * every thread counted, none lost to a race. */
TEST(profile_counts_are_exact_under_concurrent_runs) {
  enum { THREADS = 8, RUNS = 25 };
  strand_session *session = cnn_session(0);
  strand_tensor *input = cnn_input(1);
  REQUIRE(session && input);
  CHECK(run_once(session, input)); /* planned before counting */
  CHECK_OK(strand_session_set_profiling(session, 1));
  _Atomic int failures = 0;
  pthread_t threads[THREADS];
  runner r = {session, input, RUNS, &failures, NULL, NULL};
  for (int t = 0; t < THREADS; t++) REQUIRE(pthread_create(&threads[t], NULL, run_many, &r) == 0);
  for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
  CHECK(atomic_load(&failures) == 0);
  seen s = profile_of(session);
  check_calls(&s, THREADS * RUNS);
  strand_tensor_release(input);
  strand_session_release(session);
}

/* Four one-row callers on a batching session: each stacked run calls
 * every node once, whatever the number of callers it serves. */
TEST(profile_counts_a_stacked_batch_once) {
  enum { THREADS = 4 };
  strand_session *session = batching_session();
  strand_tensor *input = cnn_input(1);
  REQUIRE(session && input);
  CHECK_OK(strand_session_set_profiling(session, 1));
  _Atomic int failures = 0;
  pthread_t threads[THREADS];
  runner r = {session, input, 1, &failures, NULL, NULL};
  for (int t = 0; t < THREADS; t++) REQUIRE(pthread_create(&threads[t], NULL, run_many, &r) == 0);
  for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
  CHECK(atomic_load(&failures) == 0);
  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(session, &stats));
  CHECK(stats.batches >= 1);
  /* One call per stacked run, one per run made alone. */
  seen s = profile_of(session);
  check_calls(&s, stats.batches + (THREADS - stats.batched_runs));
  CHECK(stats.batched_runs > 1);
  strand_tensor_release(input);
  strand_session_release(session);
}

/* Profiling switched on and off, figures read and reset, from one thread
 * while four others run: every run succeeds, and no node counts more
 * calls than runs were made. */
TEST(profiling_switches_while_runs_go_on) {
  enum { THREADS = 4 };
  strand_session *session = cnn_session(0);
  strand_tensor *input = cnn_input(1);
  REQUIRE(session && input);
  _Atomic int failures = 0, stop = 0;
  _Atomic long made = 0;
  pthread_t threads[THREADS];
  runner r = {session, input, 0, &failures, &stop, &made};
  for (int t = 0; t < THREADS; t++) REQUIRE(pthread_create(&threads[t], NULL, run_many, &r) == 0);
  for (int i = 0; i < 300; i++) {
    CHECK_OK(strand_session_set_profiling(session, i % 2 == 0));
    seen s = profile_of(session);
    long runs_so_far = atomic_load(&made) + THREADS; /* runs in flight count too */
    for (size_t k = 0; k < s.count; k++) CHECK((long)s.nodes[k].calls <= runs_so_far);
    if (i % 50 == 49) CHECK_OK(strand_session_reset_profile(session));
  }
  atomic_store(&stop, 1);
  for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
  CHECK(atomic_load(&failures) == 0);
  strand_tensor_release(input);
  strand_session_release(session);
}

TEST(profile_errors) {
  strand_log_set_level(STRAND_LOG_OFF);
  seen s;
  memset(&s, 0, sizeof s);
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_set_profiling(NULL, 1));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_get_profile(NULL, collect, &s));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_reset_profile(NULL));
  strand_session *session = cnn_session(0);
  REQUIRE(session);
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_get_profile(session, NULL, NULL));
  CHECK_MSG("visit is NULL");
  strand_session_release(session);
  uint64_t before = strand_misuse_count();
  CHECK_STATUS(STRAND_E_MISUSE, strand_session_set_profiling(session, 1));
  CHECK_MSG("already released");
  CHECK_STATUS(STRAND_E_MISUSE, strand_session_get_profile(session, collect, &s));
  CHECK_STATUS(STRAND_E_MISUSE, strand_session_reset_profile(session));
  CHECK(strand_misuse_count() == before + 3);
  CHECK(s.count == 0);
  uint64_t not_a_session[32] = {0};
  CHECK_STATUS(STRAND_E_MISUSE,
               strand_session_set_profiling((strand_session *)not_a_session, 1));
  strand_log_set_level(STRAND_LOG_WARN);
}

/* Each node's kernel, fixed at creation and shown before any run: a
 * depthwise Conv, a stride-2 3×3 Conv (im2col, on every CPU), a 1×1 Conv
 * (direct with AVX-512, else a product), a Conv whose W comes at run time
 * (""), a Relu (""), an Add (""). */
TEST(profile_names_each_nodes_kernel) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "1,8,12,12");
  mb_value_info(&g, MB_GRAPH_INPUT, "w_run", 1, "8,8,3,3");
  float dw[8 * 9], s2[8 * 8 * 9], pw[8 * 8];
  for (int i = 0; i < 8 * 8 * 9; i++) {
    s2[i] = (float)(i % 11) * 0.01f;
    if (i < 8 * 9) dw[i] = (float)(i % 5) * 0.1f;
    if (i < 8 * 8) pw[i] = (float)(i % 3) * 0.1f;
  }
  int64_t dw_dims[4] = {8, 1, 3, 3}, s2_dims[4] = {8, 8, 3, 3}, pw_dims[4] = {8, 8, 1, 1};
  mb_initializer_float(&g, "w_dw", dw_dims, 4, dw, 8 * 9);
  mb_initializer_float(&g, "w_s2", s2_dims, 4, s2, 8 * 8 * 9);
  mb_initializer_float(&g, "w_pw", pw_dims, 4, pw, 8 * 8);
  int64_t pads[4] = {1, 1, 1, 1}, two[2] = {2, 2};
  mb depthwise = mb_node("depthwise", "Conv", "x,w_dw", "a");
  mb_attr_int(&depthwise, "group", 8);
  mb_attr_ints(&depthwise, "pads", pads, 4);
  mb_msg(&g, MB_GRAPH_NODE, &depthwise);
  mb_add_node(&g, "relu", "Relu", "a", "b");
  mb strided = mb_node("strided", "Conv", "b,w_s2", "c");
  mb_attr_ints(&strided, "strides", two, 2);
  mb_attr_ints(&strided, "pads", pads, 4);
  mb_msg(&g, MB_GRAPH_NODE, &strided);
  mb_add_node(&g, "pointwise", "Conv", "c,w_pw", "d");
  mb run_time = mb_node("run_time", "Conv", "d,w_run", "e");
  mb_attr_ints(&run_time, "pads", pads, 4);
  mb_msg(&g, MB_GRAPH_NODE, &run_time);
  mb_add_node(&g, "add", "Add", "e,d", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb m = mb_model(17, &g);
  strand_session *session = session_from(&m);
  REQUIRE(session != NULL);
  seen s = profile_of(session);
  REQUIRE(s.count == 6);
  CHECK(strcmp(s.kernels[0], "depthwise") == 0);
  CHECK(strcmp(s.kernels[1], "") == 0); /* the Relu, run by the depthwise Conv */
  CHECK(strcmp(s.kernels[2], "im2col") == 0);
  CHECK(strcmp(s.kernels[3], "1x1 direct") == 0 || strcmp(s.kernels[3], "1x1 gemm") == 0);
  CHECK(strcmp(s.kernels[4], "") == 0);
  CHECK(strcmp(s.kernels[5], "") == 0);
  for (size_t i = 0; i < s.count; i++) CHECK(s.nodes[i].calls == 0);
  strand_session_release(session);
}
