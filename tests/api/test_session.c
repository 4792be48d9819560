/* Sessions through strand.h only: the shipped models against PyTorch's
 * outputs, plan reuse, requested subsets of outputs, caller-supplied output
 * tensors, and every error a run can return. */
#include <math.h>
#include <stdint.h>

#include "model_builder.h"
#include "test.h"

static strand_tensor *load_npy(const char *relative) {
  strand_tensor *t = NULL;
  strand_status st = strand_tensor_read_npy(test_source_path(relative), &t);
  if (st) test_fail(__FILE__, __LINE__, "reading %s: %s", relative, strand_errmsg());
  return t;
}

static float *floats(const strand_tensor *t) {
  void *data = NULL;
  strand_tensor_data(t, &data);
  return data;
}

static size_t count_of(const strand_tensor *t) {
  size_t n = 0;
  strand_tensor_element_count(t, &n);
  return n;
}

/* |got - want| <= atol + rtol * |want| everywhere, shapes equal. */
static int close_to(const strand_tensor *got, const strand_tensor *want, double rtol, double atol) {
  const int64_t *a, *b;
  size_t ra, rb;
  if (strand_tensor_shape(got, &a, &ra) || strand_tensor_shape(want, &b, &rb) || ra != rb) return 0;
  for (size_t i = 0; i < ra; i++)
    if (a[i] != b[i]) return 0;
  const float *x = floats(got), *y = floats(want);
  for (size_t i = 0; i < count_of(want); i++)
    if (!(fabs((double)x[i] - y[i]) <= atol + rtol * fabs((double)y[i]))) {
      fprintf(stderr, "    element %zu: %.9g vs %.9g\n", i, (double)x[i], (double)y[i]);
      return 0;
    }
  return 1;
}

static void check_model(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "models/%s.onnx", name);
  strand_model *model;
  REQUIRE_OK(strand_model_load(test_source_path(path), &model));
  strand_session *session;
  strand_status st = strand_session_create(model, NULL, &session);
  strand_model_release(model); /* the session holds its own reference */
  REQUIRE_OK(st);
  snprintf(path, sizeof path, "models/%s.input.npy", name);
  strand_tensor *input = load_npy(path);
  snprintf(path, sizeof path, "models/%s.expected.npy", name);
  strand_tensor *expected = load_npy(path);
  const char *in_name = "input";
  for (int round = 0; round < 3 && input && expected; round++) {
    strand_tensor *out = NULL;
    CHECK_OK(strand_session_run(session, &in_name, (const strand_tensor *const *)&input, 1, NULL,
                                &out, 1));
    CHECK(out && close_to(out, expected, 1e-4, 1e-5));
    strand_tensor_release(out);
  }
  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(session, &stats));
  CHECK(stats.runs == 3 && stats.planning_runs == 1 && stats.plans_cached == 1);
  CHECK(stats.arenas == 1 && stats.arena_bytes > 0);
  strand_tensor_release(input);
  strand_tensor_release(expected);
  strand_session_release(session);
}

TEST(mlp_tiny_matches_pytorch) { check_model("mlp_tiny"); }
TEST(cnn_tiny_matches_pytorch) { check_model("cnn_tiny"); }

/* ---- a small model for the error paths ---------------------------------------- */

/* y = x + z (both [batch, 3]), w = Relu(y); outputs y, w; input x also an
 * output named "x_out" through Identity, and a constant output "c". */
static strand_model *two_input_model(void) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,3");
  mb_value_info(&g, MB_GRAPH_INPUT, "z", 1, "batch,3");
  mb_add_node(&g, "add", "Add", "x,z", "y");
  mb_add_node(&g, "relu", "Relu", "y", "w");
  float c[3] = {1, 2, 3};
  int64_t cdims[1] = {3};
  mb_initializer_float(&g, "c", cdims, 1, c, 3);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, "batch,3");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "w", 1, "batch,3");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "x", 1, "batch,3");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "c", 1, "3");
  mb m = mb_model(17, &g);
  strand_model *model = NULL;
  strand_status st = strand_model_load_buffer(m.data, m.size, &model);
  mb_free(&m);
  if (st) test_fail(__FILE__, __LINE__, "load: %s", strand_errmsg());
  return model;
}

static strand_tensor *filled(strand_dtype dtype, int64_t rows, int64_t cols, float start) {
  int64_t dims[2] = {rows, cols};
  strand_tensor *t = NULL;
  if (strand_tensor_create(dtype, dims, 2, &t)) return NULL;
  if (dtype == STRAND_DTYPE_FLOAT32)
    for (size_t i = 0; i < count_of(t); i++) floats(t)[i] = start + (float)i;
  return t;
}

static strand_session *session_of(strand_model *model) {
  strand_session *s = NULL;
  strand_status st = strand_session_create(model, NULL, &s);
  if (st) test_fail(__FILE__, __LINE__, "create: %s", strand_errmsg());
  return s;
}

/* A session of two_input_model (the model released: the session keeps it). */
static strand_session *two_input_session(void) {
  strand_model *model = two_input_model();
  if (!model) return NULL;
  strand_session *s = session_of(model);
  strand_model_release(model);
  return s;
}

TEST(run_returns_every_output) {
  strand_session *s = two_input_session();
  REQUIRE(s);
  strand_tensor *x = filled(STRAND_DTYPE_FLOAT32, 2, 3, -3), *z = filled(STRAND_DTYPE_FLOAT32, 2, 3, 0);
  const char *names[2] = {"x", "z"};
  const strand_tensor *ins[2] = {x, z};
  strand_tensor *outs[4] = {NULL, NULL, NULL, NULL};
  for (int round = 0; round < 2; round++) {
    REQUIRE_OK(strand_session_run(s, names, ins, 2, NULL, outs, 4));
    for (int i = 0; i < 6; i++) {
      float want = (float)(-3 + i) + (float)i;
      CHECK(floats(outs[0])[i] == want);
      CHECK(floats(outs[1])[i] == (want < 0 ? 0 : want));
      CHECK(floats(outs[2])[i] == (float)(-3 + i));
    }
    CHECK(floats(outs[3])[0] == 1 && floats(outs[3])[2] == 3);
    for (int i = 0; i < 4; i++) {
      strand_tensor_release(outs[i]);
      outs[i] = NULL;
    }
  }
  /* Inputs in the other order. */
  const char *swapped[2] = {"z", "x"};
  const strand_tensor *swapped_ins[2] = {z, x};
  CHECK_OK(strand_session_run(s, swapped, swapped_ins, 2, NULL, outs, 4));
  CHECK(outs[0] && floats(outs[0])[0] == -3);
  for (int i = 0; i < 4; i++) strand_tensor_release(outs[i]);
  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(s, &stats));
  CHECK(stats.runs == 3 && stats.planning_runs == 1);
  strand_tensor_release(x);
  strand_tensor_release(z);
  strand_session_release(s);
}

TEST(run_returns_a_subset_of_outputs) {
  strand_session *s = two_input_session();
  REQUIRE(s);
  strand_tensor *x = filled(STRAND_DTYPE_FLOAT32, 1, 3, -1), *z = filled(STRAND_DTYPE_FLOAT32, 1, 3, 0);
  const char *names[2] = {"x", "z"};
  const strand_tensor *ins[2] = {x, z};
  const char *wanted[2] = {"w", "c"};
  strand_tensor *outs[2] = {NULL, NULL};
  REQUIRE_OK(strand_session_run(s, names, ins, 2, wanted, outs, 2));
  CHECK(floats(outs[0])[0] == 0 && floats(outs[0])[1] == 1 && floats(outs[0])[2] == 3);
  CHECK(floats(outs[1])[1] == 2);
  strand_tensor_release(outs[0]);
  strand_tensor_release(outs[1]);
  /* Only the constant: no node runs. */
  const char *only_c = "c";
  strand_tensor *c = NULL;
  CHECK_OK(strand_session_run(s, names, ins, 2, &only_c, &c, 1));
  CHECK(c && count_of(c) == 3);
  strand_tensor_release(c);
  /* Nothing at all. */
  CHECK_OK(strand_session_run(s, names, ins, 2, wanted, NULL, 0));
  strand_tensor_release(x);
  strand_tensor_release(z);
  strand_session_release(s);
}

TEST(run_fills_caller_tensors) {
  strand_session *s = two_input_session();
  REQUIRE(s);
  strand_tensor *x = filled(STRAND_DTYPE_FLOAT32, 2, 3, 1), *z = filled(STRAND_DTYPE_FLOAT32, 2, 3, 1);
  const char *names[2] = {"x", "z"};
  const strand_tensor *ins[2] = {x, z};
  const char *wanted[2] = {"w", "x"};
  strand_tensor *mine = filled(STRAND_DTYPE_FLOAT32, 2, 3, 0), *mine_x = filled(STRAND_DTYPE_FLOAT32, 2, 3, 0);
  for (int round = 0; round < 2; round++) {
    strand_tensor *outs[2] = {mine, mine_x};
    REQUIRE_OK(strand_session_run(s, names, ins, 2, wanted, outs, 2));
    CHECK(outs[0] == mine && outs[1] == mine_x);
    CHECK(floats(mine)[5] == 12 && floats(mine_x)[5] == 6);
  }
  /* Misaligned caller memory is accepted: a wrapped buffer at an odd address. */
  unsigned char *raw = malloc(6 * sizeof(float) + 1);
  REQUIRE(raw);
  int64_t dims[2] = {2, 3};
  strand_tensor *odd = NULL;
  REQUIRE_OK(strand_tensor_wrap(STRAND_DTYPE_FLOAT32, dims, 2, raw + 1, 6 * sizeof(float), NULL,
                                NULL, &odd));
  strand_tensor *outs[2] = {odd, NULL};
  CHECK_OK(strand_session_run(s, names, ins, 2, wanted, outs, 2));
  float last;
  memcpy(&last, raw + 1 + 5 * sizeof(float), sizeof last);
  CHECK(last == 12);
  strand_tensor_release(outs[1]);
  /* ...also as an input. */
  const strand_tensor *odd_ins[2] = {odd, z};
  strand_tensor *w = NULL;
  CHECK_OK(strand_session_run(s, names, odd_ins, 2, wanted, &w, 1));
  CHECK(w && floats(w)[5] == 18);
  strand_tensor_release(w);
  strand_tensor_release(odd);
  free(raw);
  strand_tensor_release(mine);
  strand_tensor_release(mine_x);
  strand_tensor_release(x);
  strand_tensor_release(z);
  strand_session_release(s);
}

TEST(run_errors_name_the_culprit) {
  strand_session *s = two_input_session();
  REQUIRE(s);
  strand_tensor *x = filled(STRAND_DTYPE_FLOAT32, 3, 3, 0), *z = filled(STRAND_DTYPE_FLOAT32, 4, 3, 0);
  strand_tensor *x3 = filled(STRAND_DTYPE_FLOAT32, 3, 3, 0);
  strand_tensor *ints = filled(STRAND_DTYPE_INT64, 3, 3, 0), *wide = filled(STRAND_DTYPE_FLOAT32, 3, 4, 0);
  int64_t d3[3] = {3, 3, 1};
  strand_tensor *rank3 = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, d3, 3, &rank3));
  const char *names[2] = {"x", "z"};
  strand_tensor *out[4] = {NULL, NULL, NULL, NULL};

  const strand_tensor *mismatch[2] = {x, z};
  CHECK_STATUS(STRAND_E_SHAPE, strand_session_run(s, names, mismatch, 2, NULL, out, 4));
  CHECK_MSG("dimension \"batch\" is 3 in input \"x\" but 4 in input \"z\"");

  const char *unknown[2] = {"x", "q"};
  const strand_tensor *pair[2] = {x, x3};
  CHECK_STATUS(STRAND_E_NOT_FOUND, strand_session_run(s, unknown, pair, 2, NULL, out, 4));
  CHECK_MSG("no input named \"q\"");

  const char *twice[2] = {"x", "x"};
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_run(s, twice, pair, 2, NULL, out, 4));
  CHECK_MSG("input \"x\" is given twice");

  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_run(s, names, pair, 1, NULL, out, 4));
  CHECK_MSG("input \"z\" is not given");

  const strand_tensor *typed[2] = {x, ints};
  CHECK_STATUS(STRAND_E_DTYPE, strand_session_run(s, names, typed, 2, NULL, out, 4));
  CHECK_MSG("input \"z\": expected float32, given int64");

  const strand_tensor *ranked[2] = {rank3, x3};
  CHECK_STATUS(STRAND_E_SHAPE, strand_session_run(s, names, ranked, 2, NULL, out, 4));
  CHECK_MSG("input \"x\" has rank 3");

  const strand_tensor *widened[2] = {x, wide};
  CHECK_STATUS(STRAND_E_SHAPE, strand_session_run(s, names, widened, 2, NULL, out, 4));
  CHECK_MSG("input \"z\": dimension 1 is 4, expected 3");

  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_run(s, names, pair, 2, NULL, out, 3));
  CHECK_MSG("n_outputs is 3 but the model has 4 outputs");

  const char *no_such = "nope";
  CHECK_STATUS(STRAND_E_NOT_FOUND, strand_session_run(s, names, pair, 2, &no_such, out, 1));
  CHECK_MSG("no output named \"nope\"");

  const char *dup[2] = {"w", "w"};
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_run(s, names, pair, 2, dup, out, 2));
  CHECK_MSG("output \"w\" is asked for twice");

  /* Caller-supplied outputs of the wrong shape or type: planned and planning runs. */
  const char *w_name = "w";
  for (int round = 0; round < 2; round++) {
    strand_tensor *bad = wide;
    CHECK_STATUS(STRAND_E_SHAPE, strand_session_run(s, names, pair, 2, &w_name, &bad, 1));
    CHECK_MSG("output \"w\": the tensor given has shape [3, 4], the output has shape [3, 3]");
    CHECK(bad == wide);
    bad = ints;
    CHECK_STATUS(STRAND_E_DTYPE, strand_session_run(s, names, pair, 2, &w_name, &bad, 1));
    CHECK_MSG("output \"w\": the tensor given is int64, the output is float32");
    strand_tensor *good = NULL;
    CHECK_OK(strand_session_run(s, names, pair, 2, &w_name, &good, 1));
    strand_tensor_release(good);
  }
  /* An output that is an input. */
  strand_tensor *alias = x;
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_run(s, names, pair, 2, &w_name, &alias, 1));
  CHECK_MSG("shares memory with input \"x\"");

  /* Misuse and NULLs. */
  strand_tensor *released = filled(STRAND_DTYPE_FLOAT32, 3, 3, 0);
  strand_tensor_release(released);
  const strand_tensor *stale[2] = {x, released};
  CHECK_STATUS(STRAND_E_MISUSE, strand_session_run(s, names, stale, 2, NULL, out, 4));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_run(s, NULL, pair, 2, NULL, out, 4));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_run(NULL, names, pair, 2, NULL, out, 4));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_run(s, names, pair, 2, NULL, NULL, 4));
  for (int i = 0; i < 4; i++) CHECK(out[i] == NULL);

  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(s, &stats));
  CHECK(stats.runs == 2 && stats.runs_failed > 10);
  strand_tensor_release(x);
  strand_tensor_release(z);
  strand_tensor_release(x3);
  strand_tensor_release(ints);
  strand_tensor_release(wide);
  strand_tensor_release(rank3);
  strand_session_release(s);
}

TEST(create_errors) {
  strand_session *s = NULL;
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_create(NULL, NULL, &s));
  strand_model *model = two_input_model();
  REQUIRE(model);
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_create(model, NULL, NULL));
  strand_session_options options = {0};
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_create(model, &options, &s));
  CHECK_MSG("struct_size");
  options.struct_size = sizeof options;
  options.intra_op_threads = 1;
  CHECK_OK(strand_session_create(model, &options, &s));
  strand_model *back = NULL;
  CHECK_OK(strand_session_model(s, &back));
  CHECK(back == model);
  strand_session_release(s);
  strand_model_release(model);

  /* An op without a kernel fails at creation, naming node and op. */
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "mystery", "Frobnicate", "x", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, "2");
  mb m = mb_model(17, &g);
  REQUIRE_OK(strand_model_load_buffer(m.data, m.size, &model));
  mb_free(&m);
  CHECK_STATUS(STRAND_E_UNSUPPORTED, strand_session_create(model, NULL, &s));
  CHECK_MSG("node \"mystery\" (Frobnicate): no kernel for op Frobnicate");
  strand_model_release(model);

  /* A kernel that exists, but not for the input type. */
  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 7, "2");
  mb_add_node(&g, "soft", "Softmax", "x", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 7, "2");
  m = mb_model(17, &g);
  REQUIRE_OK(strand_model_load_buffer(m.data, m.size, &model));
  mb_free(&m);
  CHECK_STATUS(STRAND_E_UNSUPPORTED, strand_session_create(model, NULL, &s));
  CHECK_MSG("node \"soft\" (Softmax): no Softmax kernel for input types (int64)");
  strand_model_release(model);

  /* A bad attribute fails at creation too. */
  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "4");
  mb node = mb_node("act", "Gelu", "x", "y");
  mb_attr_string(&node, "approximate", "fast");
  mb_msg(&g, MB_GRAPH_NODE, &node);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  m = mb_model(20, &g);
  REQUIRE_OK(strand_model_load_buffer(m.data, m.size, &model));
  mb_free(&m);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, strand_session_create(model, NULL, &s));
  CHECK_MSG("node \"act\" (Gelu): attribute \"approximate\" is \"fast\"");
  strand_model_release(model);
}

/* A plan per input shape: batch 1, 2, 1 again → two planning runs. */
TEST(plans_are_cached_per_shape) {
  strand_session *s = two_input_session();
  REQUIRE(s);
  const char *names[2] = {"x", "z"};
  const char *w = "w";
  int64_t batches[5] = {1, 2, 1, 2, 3};
  for (int i = 0; i < 5; i++) {
    strand_tensor *x = filled(STRAND_DTYPE_FLOAT32, batches[i], 3, 0);
    const strand_tensor *ins[2] = {x, x};
    strand_tensor *out = NULL;
    CHECK_OK(strand_session_run(s, names, ins, 2, &w, &out, 1));
    CHECK(out && count_of(out) == (size_t)batches[i] * 3);
    CHECK(out && floats(out)[count_of(out) - 1] == 2.0f * (float)(count_of(out) - 1));
    strand_tensor_release(out);
    strand_tensor_release(x);
  }
  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(s, &stats));
  CHECK(stats.planning_runs == 3 && stats.plans_cached == 3);
  /* More shapes than the cache holds: the oldest are evicted. */
  for (int64_t b = 4; b < 24; b++) {
    strand_tensor *x = filled(STRAND_DTYPE_FLOAT32, b, 3, 0);
    const strand_tensor *ins[2] = {x, x};
    strand_tensor *out = NULL;
    CHECK_OK(strand_session_run(s, names, ins, 2, &w, &out, 1));
    strand_tensor_release(out);
    strand_tensor_release(x);
  }
  CHECK_OK(strand_session_get_stats(s, &stats));
  CHECK(stats.plans_cached == 16 && stats.plans_evicted == 7);
  strand_session_release(s);
}

/* strand_session_stats carries its size: a caller built against an older,
 * shorter struct gets the fields it has room for and nothing past them; a
 * size unset (0) or too small for `runs` is refused with a message naming
 * the field. */
TEST(stats_fill_only_the_callers_struct) {
  strand_session *s = two_input_session();
  REQUIRE(s);
  const char *names[2] = {"x", "z"};
  strand_tensor *x = filled(STRAND_DTYPE_FLOAT32, 2, 3, 0);
  const strand_tensor *ins[2] = {x, x};
  strand_tensor *outs[4] = {NULL};
  CHECK_OK(strand_session_run(s, names, ins, 2, NULL, outs, 4));
  for (int i = 0; i < 4; i++) strand_tensor_release(outs[i]);
  strand_tensor_release(x);

  /* An older struct ending after batch_wait_ns: the last two fields stay. */
  strand_session_stats old;
  memset(&old, 0xab, sizeof old);
  old.struct_size = offsetof(strand_session_stats, sliced_runs);
  CHECK_OK(strand_session_get_stats(s, &old));
  CHECK(old.struct_size == offsetof(strand_session_stats, sliced_runs));
  CHECK(old.runs == 1 && old.planning_runs == 1 && old.batch_wait_ns == 0);
  CHECK(old.sliced_runs == 0xababababababababull && old.slices == 0xababababababababull);

  /* A newer, larger struct: struct_size comes back as what was filled. */
  struct {
    strand_session_stats stats;
    uint64_t later;
  } newer;
  memset(&newer, 0xcd, sizeof newer);
  newer.stats.struct_size = sizeof newer;
  CHECK_OK(strand_session_get_stats(s, &newer.stats));
  CHECK(newer.stats.struct_size == sizeof(strand_session_stats));
  CHECK(newer.stats.runs == 1 && newer.stats.slices == 0);
  CHECK(newer.later == 0xcdcdcdcdcdcdcdcdull);

  strand_session_stats unset;
  memset(&unset, 0, sizeof unset);
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_get_stats(s, &unset));
  CHECK_MSG("out->struct_size is 0");
  unset.struct_size = offsetof(strand_session_stats, runs) + 4;
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_session_get_stats(s, &unset));
  CHECK_MSG("set it to sizeof(strand_session_stats)");
  CHECK(unset.runs == 0);
  strand_session_release(s);
}

/* The allocation-failure sweep: creation, a planning run and a planned run
 * fail cleanly at every allocation, and leave nothing behind. */
TEST(allocation_failures_are_clean) {
  char path[256];
  snprintf(path, sizeof path, "%s", test_source_path("models/cnn_tiny.onnx"));
  strand_tensor *input = load_npy("models/cnn_tiny.input.npy");
  strand_tensor *expected = load_npy("models/cnn_tiny.expected.npy");
  REQUIRE(input && expected);
  const char *name = "input";
  int completed = 0;
  for (uint64_t n = 1; n < 400 && !completed; n++) {
    strand_model *model = NULL;
    if (strand_model_load(path, &model) != STRAND_OK) {
      test_fail(__FILE__, __LINE__, "load failed");
      break;
    }
    strand_memory_fail_nth(n);
    strand_session *s = NULL;
    strand_status st = strand_session_create(model, NULL, &s);
    strand_model_release(model);
    int ok_runs = 0;
    for (int run = 0; run < 2 && st == STRAND_OK; run++) {
      strand_tensor *out = NULL;
      st = strand_session_run(s, &name, (const strand_tensor *const *)&input, 1, NULL, &out, 1);
      if (st == STRAND_OK) {
        CHECK(close_to(out, expected, 1e-4, 1e-5));
        ok_runs++;
      } else {
        CHECK(out == NULL);
      }
      strand_tensor_release(out);
    }
    strand_memory_fail_nth(0);
    if (st != STRAND_OK && st != STRAND_E_OUT_OF_MEMORY) {
      test_fail(__FILE__, __LINE__, "allocation %llu: %s (%s)", (unsigned long long)n,
                strand_status_name(st), strand_errmsg());
    }
    /* After a failure, the same session still works. */
    if (s && st) {
      strand_tensor *out = NULL;
      CHECK_OK(strand_session_run(s, &name, (const strand_tensor *const *)&input, 1, NULL, &out, 1));
      CHECK(out && close_to(out, expected, 1e-4, 1e-5));
      strand_tensor_release(out);
    }
    strand_session_release(s);
    strand_memory_stats stats = {.struct_size = sizeof stats};
    CHECK_OK(strand_memory_get_stats(&stats));
    CHECK(stats.live_objects[STRAND_KIND_SESSION] == 0 && stats.live_objects[STRAND_KIND_MODEL] == 0);
    if (ok_runs == 2) completed = 1;
  }
  CHECK(completed);
  strand_tensor_release(input);
  strand_tensor_release(expected);
}

/* Once a plan is cached (and the first planned run has sized the arena), a
 * run allocates its output tensors and nothing else (each tensor is a shell
 * and its data). */
TEST(planned_runs_allocate_only_outputs) {
  strand_model *model = NULL;
  REQUIRE_OK(strand_model_load(test_source_path("models/cnn_tiny.onnx"), &model));
  strand_session *s = NULL;
  strand_status st = strand_session_create(model, NULL, &s);
  strand_model_release(model);
  REQUIRE_OK(st);
  strand_tensor *input = load_npy("models/cnn_tiny.input.npy");
  REQUIRE(input);
  const char *name = "input";
  for (int round = 0; round < 4; round++) {
    strand_memory_stats before = {.struct_size = sizeof before};
    strand_memory_stats after = {.struct_size = sizeof after};
    CHECK_OK(strand_memory_get_stats(&before));
    strand_tensor *out = NULL;
    CHECK_OK(strand_session_run(s, &name, (const strand_tensor *const *)&input, 1, NULL, &out, 1));
    CHECK_OK(strand_memory_get_stats(&after));
    if (round > 1 && after.allocations - before.allocations != 2)
      test_fail(__FILE__, __LINE__, "round %d: %llu allocations", round,
                (unsigned long long)(after.allocations - before.allocations));
    strand_tensor_release(out);
    /* With the caller's tensor, not even that. */
    if (round > 1) {
      int64_t dims[2] = {2, 10};
      strand_tensor *mine = NULL;
      REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 2, &mine));
      CHECK_OK(strand_memory_get_stats(&before));
      CHECK_OK(strand_session_run(s, &name, (const strand_tensor *const *)&input, 1, NULL, &mine, 1));
      CHECK_OK(strand_memory_get_stats(&after));
      CHECK(after.allocations == before.allocations);
      strand_tensor_release(mine);
    }
  }
  strand_tensor_release(input);
  strand_session_release(s);
}
