/* If: the branch chosen by cond runs, reading outer values (a node output
 * before the If, a graph input, values of an enclosing branch); output
 * shapes differ between branches and runs; sessions with If run on several
 * threads at once; errors name the If and the branch node. */
/* model_builder.h first: its parameter names would shadow the IR's types. */
#include "model_builder.h"
#include "session_from.h"
#include "test.h"

#include "runtime/executor.h"

#include <math.h>

/* An If node `name` over cond `c` producing `out`, branches embedded. */
static void add_if(mb *g, const char *name, const char *c, const char *out, mb *then, mb *els) {
  mb n = mb_node(name, "If", c, out);
  mb_attr_graph(&n, "then_branch", then);
  mb_attr_graph(&n, "else_branch", els);
  mb_msg(g, MB_GRAPH_NODE, &n);
}

/* x [batch, 2], cond scalar; d = x + x; then: d + x (3x); else:
 * Flatten(d - x, axis 0) ([1, 2 batch], x). With `nested`, then is
 * If(cond2, t * x, -x) with t = d + x computed in the then branch. */
static mb if_model(bool nested) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "cond", 9, "");
  if (nested) mb_value_info(&g, MB_GRAPH_INPUT, "cond2", 9, "");
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,2");
  mb_add_node(&g, "double", "Add", "x,x", "d");

  mb then = mb_new();
  mb_str(&then, MB_GRAPH_NAME, "then");
  if (!nested) {
    mb_add_node(&then, "add", "Add", "d,x", "then_out");
  } else {
    mb_add_node(&then, "add", "Add", "d,x", "t");
    mb inner_then = mb_new(), inner_else = mb_new();
    mb_str(&inner_then, MB_GRAPH_NAME, "inner_then");
    mb_add_node(&inner_then, "mul", "Mul", "t,x", "inner_then_out");
    mb_value_info(&inner_then, MB_GRAPH_OUTPUT, "inner_then_out", 1, NULL);
    mb_str(&inner_else, MB_GRAPH_NAME, "inner_else");
    mb_add_node(&inner_else, "neg", "Neg", "x", "inner_else_out");
    mb_value_info(&inner_else, MB_GRAPH_OUTPUT, "inner_else_out", 1, NULL);
    add_if(&then, "inner_if", "cond2", "then_out", &inner_then, &inner_else);
  }
  mb_value_info(&then, MB_GRAPH_OUTPUT, "then_out", 1, NULL);

  mb els = mb_new();
  mb_str(&els, MB_GRAPH_NAME, "else");
  mb_add_node(&els, "sub", "Sub", "d,x", "e");
  mb flatten = mb_node("flatten", "Flatten", "e", "else_out");
  mb_attr_int(&flatten, "axis", 0);
  mb_msg(&els, MB_GRAPH_NODE, &flatten);
  mb_value_info(&els, MB_GRAPH_OUTPUT, "else_out", 1, NULL);

  add_if(&g, "if_1", "cond", "y", &then, &els);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  return mb_model(17, &g);
}

static strand_tensor *make_bool(bool value) {
  strand_tensor *t = NULL;
  if (strand_tensor_create(STRAND_DTYPE_BOOL, NULL, 0, &t)) return NULL;
  void *data;
  strand_tensor_data(t, &data);
  *(uint8_t *)data = value;
  return t;
}

/* Runs with x[i] = i + 1 over [batch, 2]; checks y against the expected
 * factor (3, or 1 flattened; nested then: 3 x^2 or -x). Returns 0 when right. */
static int run_and_check(strand_session *s, bool nested, bool cond, bool cond2, int64_t batch) {
  int64_t dims[2] = {batch, 2};
  strand_tensor *x = NULL, *c = make_bool(cond), *c2 = make_bool(cond2), *y = NULL;
  int bad = !c || !c2 || strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 2, &x);
  if (!bad) {
    float *xd;
    strand_tensor_data(x, (void **)&xd);
    for (int64_t i = 0; i < 2 * batch; i++) xd[i] = (float)(i + 1);
    const char *names[3] = {"cond", "x", "cond2"};
    const strand_tensor *ins[3] = {c, x, c2};
    bad = strand_session_run(s, names, ins, nested ? 3 : 2, NULL, &y, 1) != STRAND_OK;
    if (bad) test_fail(__FILE__, __LINE__, "run: %s", strand_errmsg());
  }
  if (!bad) {
    const int64_t *ydims;
    size_t rank;
    float *yd;
    strand_tensor_shape(y, &ydims, &rank);
    strand_tensor_data(y, (void **)&yd);
    bool flat = !cond; /* else flattens, nested or not */
    bad = rank != 2 || ydims[0] != (flat ? 1 : batch) || ydims[1] != (flat ? 2 * batch : 2);
    for (int64_t i = 0; i < 2 * batch && !bad; i++) {
      float v = (float)(i + 1);
      float want = !nested ? (cond ? 3 * v : v) : !cond ? v : cond2 ? 3 * v * v : -v;
      bad = fabsf(yd[i] - want) > 1e-4f * fabsf(want);
    }
    if (bad) test_fail(__FILE__, __LINE__, "wrong y (nested %d, cond %d, cond2 %d, batch %lld)",
                       nested, cond, cond2, (long long)batch);
  }
  strand_tensor_release(x);
  strand_tensor_release(c);
  strand_tensor_release(c2);
  strand_tensor_release(y);
  return bad;
}

TEST(if_runs_the_branch_cond_chooses) {
  mb m = if_model(false);
  strand_session *s = session_from(&m);
  REQUIRE(s);
  CHECK(!s->cacheable);
  /* Outputs of different shapes from the two branches and across batches. */
  for (int round = 0; round < 2; round++)
    for (int64_t batch = 1; batch <= 3; batch += 2) {
      CHECK(run_and_check(s, false, true, false, batch) == 0);
      CHECK(run_and_check(s, false, false, false, batch) == 0);
    }
  strand_session_release(s);
}

TEST(if_nested_in_a_branch) {
  mb m = if_model(true);
  strand_session *s = session_from(&m);
  REQUIRE(s);
  for (int64_t batch = 1; batch <= 3; batch += 2)
    for (int c = 0; c < 2; c++)
      for (int c2 = 0; c2 < 2; c2++) CHECK(run_and_check(s, true, c, c2, batch) == 0);
  strand_session_release(s);
}

typedef struct shared {
  strand_session *session;
  atomic_int failures;
} shared;

static void *worker(void *arg) {
  shared *sh = arg;
  for (int i = 0; i < 40; i++)
    if (run_and_check(sh->session, true, i % 2, (i / 2) % 2, 1 + (i % 3)))
      atomic_fetch_add(&sh->failures, 1);
  return NULL;
}

TEST(if_on_four_threads) {
  mb m = if_model(true);
  shared sh = {session_from(&m), 0};
  REQUIRE(sh.session);
  test_run_threads(4, worker, &sh);
  CHECK(atomic_load(&sh.failures) == 0);
  strand_session_release(sh.session);
}

/* x of unknown shape, w [3]: else's Add fails at run time for x [2, 2]. */
TEST(if_error_names_the_branch_node) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "cond", 9, "");
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, NULL);
  const int64_t wdims[1] = {3};
  const float w[3] = {1, 2, 3};
  mb_initializer_float(&g, "w", wdims, 1, w, 3);
  mb then = mb_new(), els = mb_new();
  mb_add_node(&then, "relu", "Relu", "x", "then_out");
  mb_value_info(&then, MB_GRAPH_OUTPUT, "then_out", 1, NULL);
  mb_add_node(&els, "add", "Add", "x,w", "else_out");
  mb_value_info(&els, MB_GRAPH_OUTPUT, "else_out", 1, NULL);
  add_if(&g, "if_1", "cond", "y", &then, &els);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb m = mb_model(17, &g);
  strand_session *s = session_from(&m);
  REQUIRE(s);
  int64_t dims[2] = {2, 2};
  strand_tensor *x = NULL, *c = make_bool(true), *y = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 2, &x));
  const char *names[2] = {"cond", "x"};
  const strand_tensor *ins[2] = {c, x};
  CHECK_OK(strand_session_run(s, names, ins, 2, NULL, &y, 1));
  strand_tensor_release(y);
  y = NULL;
  void *data;
  strand_tensor_data(c, &data);
  *(uint8_t *)data = 0;
  CHECK_STATUS(STRAND_E_SHAPE, strand_session_run(s, names, ins, 2, NULL, &y, 1));
  CHECK_MSG("node \"if_1\" (If): else_branch: node \"add\" (Add): ");
  CHECK(y == NULL);
  strand_tensor_release(x);
  strand_tensor_release(c);
  strand_session_release(s);
}

/* A branch node without a kernel fails session creation, named. */
TEST(if_branch_without_kernel_fails_creation) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "cond", 9, "");
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb then = mb_new(), els = mb_new();
  mb_add_node(&then, "relu", "Relu", "x", "then_out");
  mb_value_info(&then, MB_GRAPH_OUTPUT, "then_out", 1, NULL);
  mb_add_node(&els, "odd", "Det", "x", "else_out");
  mb_value_info(&els, MB_GRAPH_OUTPUT, "else_out", 1, NULL);
  add_if(&g, "if_1", "cond", "y", &then, &els);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb m = mb_model(17, &g);
  strand_model *model = NULL;
  strand_status st = strand_model_load_buffer(m.data, m.size, &model);
  mb_free(&m);
  REQUIRE_OK(st);
  strand_session *s = NULL;
  CHECK_STATUS(STRAND_E_UNSUPPORTED, strand_session_create(model, NULL, &s));
  CHECK_MSG("node \"if_1\" (If): else_branch: node \"odd\" (Det): ");
  CHECK(s == NULL);
  strand_model_release(model);
}
