/* Views: a Reshape, Flatten, Squeeze, Unsqueeze, Identity or Dropout
 * whose output can share its input's bytes, a Transpose of dims of 1, and a
 * Gather of one block at an offset become views in the plan (their nodes
 * never run), and every answer is what the copy gave: along chains of
 * views, over graph inputs and constants, beside other readers of the same
 * value, on several threads at once. Values handed to the caller keep bytes
 * of their own, and the arena never puts a value over bytes a view still
 * reads. Expected values are computed here from the inputs (exact ops only:
 * Neg, Abs, Relu, Add). */
/* model_builder.h first: its parameter names would shadow the IR's types. */
#include "model_builder.h"
#include "session_from.h"
#include "test.h"
#include "test_tensors.h"

#include "runtime/executor.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- helpers ------------------------------------------------------------------- */


/* Runs `s` on x (input "x") asking for `n_out` named outputs. */
static strand_status run_x(strand_session *s, const strand_tensor *x, const char *const *names,
                           strand_tensor **outs, size_t n_out) {
  const char *in = "x";
  for (size_t i = 0; i < n_out; i++) outs[i] = NULL;
  return strand_session_run(s, &in, &x, 1, names, outs, n_out);
}

static const float *floats(const strand_tensor *t, size_t *n) {
  void *d = NULL;
  strand_tensor_data(t, &d);
  strand_tensor_element_count(t, n);
  return d;
}

static bool has_shape(const strand_tensor *t, const int64_t *dims, size_t rank) {
  const int64_t *d;
  size_t r;
  if (strand_tensor_shape(t, &d, &r) || r != rank) return false;
  for (size_t i = 0; i < rank; i++)
    if (d[i] != dims[i]) return false;
  return true;
}

static int32_t value(const strand_session *s, const char *name) { return graph_find(s->graph, name); }

static uint8_t place_of(const strand_session *s, const char *name) {
  int32_t v = value(s, name);
  return v >= 0 && s->n_plans ? s->plans[0]->values[v].place : 0xff;
}

/* The root the plan gave view `name`, or -1. */
static int32_t root_of(const strand_session *s, const char *name) {
  int32_t v = value(s, name);
  if (v < 0 || !s->n_plans) return -1;
  const plan *p = s->plans[0];
  for (size_t i = 0; i < p->n_views; i++)
    if (p->views[i].value == (uint32_t)v) return (int32_t)p->views[i].root;
  return -1;
}

/* A session for the graph `g` (consumed) as an opset-17 model. */
static strand_session *session_of(mb *g) {
  mb m = mb_model(17, g);
  return session_from(&m);
}

static void reshape_node(mb *g, const char *name, const char *in, const char *shape_name,
                         const int64_t *shape, size_t rank, const char *out) {
  mb_initializer_int64(g, shape_name, (int64_t[]){(int64_t)rank}, 1, shape, rank);
  char inputs[64];
  snprintf(inputs, sizeof inputs, "%s,%s", in, shape_name);
  mb_add_node(g, name, "Reshape", inputs, out);
}

/* Checks that arena values whose bytes are read at the same time never
 * overlap, where a value's bytes are read until the last read of it or of
 * any view of it. Times are node indices (topological order); a value is
 * read by the nodes of the plan's steps and by the nodes of its views. */
static void check_no_overlap(const strand_session *s, const plan *p) {
  const graph *g = s->graph;
  size_t nv = g->n_values;
  size_t *first = calloc(nv, sizeof *first), *last = calloc(nv, sizeof *last);
  int32_t *root = calloc(nv, sizeof *root);
  bool *ran = calloc(g->n_nodes, sizeof *ran);
  if (!first || !last || !root || !ran) {
    test_fail(__FILE__, __LINE__, "out of memory");
    goto out;
  }
  for (size_t k = 0; k < p->n_steps; k++) ran[p->steps[k].node] = true;
  for (size_t v = 0; v < nv; v++) root[v] = (int32_t)v;
  for (size_t i = 0; i < p->n_views; i++) {
    int32_t producer = g->values[p->views[i].value].producer;
    CHECK(producer >= 0);
    if (producer >= 0) ran[producer] = true;
    root[p->views[i].value] = (int32_t)p->views[i].root;
    CHECK(p->values[p->views[i].root].place != PLAN_VIEW);
    CHECK(p->values[p->views[i].root].place != PLAN_OUTPUT);
  }
  for (size_t v = 0; v < nv; v++) first[v] = SIZE_MAX;
  for (size_t k = 0; k < g->n_nodes; k++) {
    if (!ran[k]) continue;
    const graph_node *node = &g->nodes[k];
    const int32_t *outputs = s->nodes[k].outputs;
    for (size_t i = 0; i < node->n_outputs; i++)
      if (outputs[i] >= 0) {
        int32_t r = root[outputs[i]];
        if (first[r] == SIZE_MAX) first[r] = k;
        if (last[r] < k) last[r] = k;
      }
    for (size_t i = 0; i < node->n_inputs; i++)
      if (node->inputs[i] >= 0 && last[root[node->inputs[i]]] < k) last[root[node->inputs[i]]] = k;
  }
  for (size_t a = 0; a < nv; a++) {
    const plan_value *va = &p->values[a];
    if (va->place != PLAN_ARENA || !va->count) continue;
    size_t bytes_a = va->count * strand_dtype_size(va->dtype);
    CHECK(va->offset + bytes_a <= p->arena_size);
    for (size_t b = a + 1; b < nv; b++) {
      const plan_value *vb = &p->values[b];
      if (vb->place != PLAN_ARENA || !vb->count) continue;
      size_t bytes_b = vb->count * strand_dtype_size(vb->dtype);
      bool together = first[a] <= last[b] && first[b] <= last[a];
      bool overlap = va->offset < vb->offset + bytes_b && vb->offset < va->offset + bytes_a;
      if (together && overlap)
        test_fail(__FILE__, __LINE__, "values %s and %s (or views of them) are read at the same "
                  "time and overlap", g->values[a].name, g->values[b].name);
    }
  }
out:
  free(first);
  free(last);
  free(root);
  free(ran);
}

/* ---- a view gives what the copy gave --------------------------------------------- */

/* x [2,3,4] -> a = Neg(x) -> r = Reshape(a, [4,6]) -> y = Abs(r) and
 * z = Neg(r): z is x, bit for bit, and y its magnitudes. */
TEST(a_view_equals_the_copy) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2,3,4");
  mb_add_node(&g, "neg", "Neg", "x", "a");
  reshape_node(&g, "reshape", "a", "shape", (int64_t[]){4, 6}, 2, "r");
  mb_add_node(&g, "abs", "Abs", "r", "y");
  mb_add_node(&g, "neg2", "Neg", "r", "z");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "z", 1, NULL);
  strand_session *s = session_of(&g);
  REQUIRE(s);
  strand_tensor *x = test_input_tensor((int64_t[]){2, 3, 4}, 3, 1);
  REQUIRE(x);
  size_t n;
  const float *xd = floats(x, &n);
  /* Run 1 plans (and copies); runs 2 and 3 use the plan (a view). */
  for (int run = 0; run < 3; run++) {
    strand_tensor *outs[2];
    REQUIRE_OK(run_x(s, x, NULL, outs, 2));
    size_t ny, nz;
    const float *y = floats(outs[0], &ny), *z = floats(outs[1], &nz);
    CHECK(ny == 24 && nz == 24);
    CHECK(has_shape(outs[0], (int64_t[]){4, 6}, 2) && has_shape(outs[1], (int64_t[]){4, 6}, 2));
    CHECK(memcmp(z, xd, n * sizeof(float)) == 0);
    for (size_t i = 0; i < n; i++) CHECK(y[i] == (xd[i] < 0 ? -xd[i] : xd[i]));
    strand_tensor_release(outs[0]);
    strand_tensor_release(outs[1]);
  }
  REQUIRE(s->n_plans == 1);
  const plan *p = s->plans[0];
  CHECK(place_of(s, "r") == PLAN_VIEW);
  CHECK(root_of(s, "r") == value(s, "a"));
  CHECK(place_of(s, "a") == PLAN_ARENA);
  CHECK(p->n_steps == 3 && p->n_views == 1); /* Neg, Abs, Neg: the Reshape does not run */
  for (size_t k = 0; k < p->n_steps; k++) CHECK(strcmp(s->graph->nodes[p->steps[k].node].op_type, "Reshape") != 0);
  check_no_overlap(s, p);
  strand_tensor_release(x);
  strand_session_release(s);
}

/* A Transpose is a view when the dims it moves out of order are all 1
 * (x [1,3,4] -> [3,1,4], and the default reversal of [1,1,5]); one that
 * moves real dims is not. Every answer is the copy's, planning run and
 * planned runs alike. */
TEST(a_transpose_of_dims_of_one_is_a_view) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "1,3,4");
  mb_value_info(&g, MB_GRAPH_INPUT, "w", 1, "1,1,5");
  mb_add_node(&g, "neg", "Neg", "x", "a");
  mb t1 = mb_node("swap_one", "Transpose", "a", "t1");
  mb_attr_ints(&t1, "perm", (int64_t[]){1, 0, 2}, 3);
  mb_msg(&g, MB_GRAPH_NODE, &t1);
  mb t2 = mb_node("swap_real", "Transpose", "a", "t2");
  mb_attr_ints(&t2, "perm", (int64_t[]){0, 2, 1}, 3);
  mb_msg(&g, MB_GRAPH_NODE, &t2);
  mb_add_node(&g, "neg_w", "Neg", "w", "b");
  mb_add_node(&g, "reverse", "Transpose", "b", "t3"); /* no perm: [5,1,1] */
  mb_add_node(&g, "neg2", "Neg", "t1", "y");
  mb_add_node(&g, "neg3", "Neg", "t2", "z");
  mb_add_node(&g, "neg4", "Neg", "t3", "v");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "z", 1, NULL);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "v", 1, NULL);
  strand_session *s = session_of(&g);
  REQUIRE(s);
  strand_tensor *x = test_input_tensor((int64_t[]){1, 3, 4}, 3, 1);
  strand_tensor *w = test_input_tensor((int64_t[]){1, 1, 5}, 3, 2);
  REQUIRE(x && w);
  size_t n, nw;
  const float *xd = floats(x, &n), *wd = floats(w, &nw);
  const char *ins[2] = {"x", "w"}, *names[3] = {"y", "z", "v"};
  const strand_tensor *in_tensors[2] = {x, w};
  for (int run = 0; run < 3; run++) { /* run 1 plans; runs 2 and 3 use the plan */
    strand_tensor *outs[3] = {NULL, NULL, NULL};
    REQUIRE_OK(strand_session_run(s, ins, in_tensors, 2, names, outs, 3));
    size_t ny, nz, nv;
    const float *y = floats(outs[0], &ny), *z = floats(outs[1], &nz), *v = floats(outs[2], &nv);
    CHECK(has_shape(outs[0], (int64_t[]){3, 1, 4}, 3) && ny == 12);
    CHECK(memcmp(y, xd, n * sizeof(float)) == 0);
    CHECK(has_shape(outs[1], (int64_t[]){1, 4, 3}, 3) && nz == 12);
    for (size_t i = 0; i < 3; i++)
      for (size_t j = 0; j < 4; j++) CHECK(z[j * 3 + i] == xd[i * 4 + j]);
    CHECK(has_shape(outs[2], (int64_t[]){5, 1, 1}, 3) && nv == 5);
    CHECK(memcmp(v, wd, nw * sizeof(float)) == 0);
    for (int i = 0; i < 3; i++) strand_tensor_release(outs[i]);
  }
  REQUIRE(s->n_plans == 1);
  CHECK(place_of(s, "t1") == PLAN_VIEW);
  CHECK(root_of(s, "t1") == value(s, "a"));
  CHECK(place_of(s, "t3") == PLAN_VIEW);
  CHECK(place_of(s, "t2") == PLAN_ARENA);
  check_no_overlap(s, s->plans[0]);
  strand_tensor_release(x);
  strand_tensor_release(w);
  strand_session_release(s);
}

/* The plan's offset for view `name` (bytes into its root), or SIZE_MAX. */
static size_t offset_of(const strand_session *s, const char *name) {
  int32_t v = value(s, name);
  if (v < 0 || !s->n_plans) return SIZE_MAX;
  const plan *p = s->plans[0];
  for (size_t i = 0; i < p->n_views; i++)
    if (p->views[i].value == (uint32_t)v) return p->views[i].offset;
  return SIZE_MAX;
}

static void gather_node(mb *g, const char *name, const char *inputs, int64_t axis, const char *out) {
  mb n = mb_node(name, "Gather", inputs, out);
  mb_attr_int(&n, "axis", axis);
  mb_msg(g, MB_GRAPH_NODE, &n);
}

/* A Gather with a constant single index on an axis with only dims of 1
 * before it is a view of one block of its input, at an offset: index 1
 * and -1 of a [3,2,4], a one-element index list, axis 1 of a [1,3,4], a
 * Gather of such a view (the offsets add up) and a Reshape of one. Not
 * views: an axis with a real dim before it, two indices, indices given at
 * run time. Every answer is the copy's, planning run and planned runs. */
TEST(a_gather_of_one_block_is_a_view_at_an_offset) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "3,2,4");
  mb_value_info(&g, MB_GRAPH_INPUT, "w", 1, "1,3,4");
  mb_value_info(&g, MB_GRAPH_INPUT, "i", 7, ""); /* int64 scalar, given at run time */
  mb_initializer_int64(&g, "one", NULL, 0, (int64_t[]){1}, 1);
  mb_initializer_int64(&g, "last", NULL, 0, (int64_t[]){-1}, 1);
  mb_initializer_int64(&g, "two_list", (int64_t[]){1}, 1, (int64_t[]){2}, 1);
  mb_initializer_int64(&g, "pair", (int64_t[]){2}, 1, (int64_t[]){0, 2}, 2);
  mb_add_node(&g, "neg_x", "Neg", "x", "a");
  mb_add_node(&g, "neg_w", "Neg", "w", "b");
  gather_node(&g, "g_one", "a,one", 0, "g1");       /* [2,4] at 8 floats */
  gather_node(&g, "g_last", "a,last", 0, "g2");     /* [2,4] at 16 */
  gather_node(&g, "g_list", "a,two_list", 0, "g3"); /* [1,2,4] at 16 */
  gather_node(&g, "g_axis1", "b,last", 1, "g4");    /* [1,4] at 8 */
  gather_node(&g, "g_of_g", "g1,one", 0, "g5");     /* [4] at 8 + 4 */
  reshape_node(&g, "reshape", "g2", "shape", (int64_t[]){8}, 1, "g6");
  gather_node(&g, "g_outer", "a,one", 1, "n1");     /* [3,4]: rows of 3 blocks */
  gather_node(&g, "g_pair", "a,pair", 0, "n2");     /* [2,2,4] */
  gather_node(&g, "g_input", "a,i", 0, "n3");       /* [2,4], index at run time */
  static const char *const outs[] = {"g1", "g2", "g3", "g4", "g5", "g6", "n1", "n2", "n3"};
  enum { N_OUT = sizeof outs / sizeof outs[0] };
  const char *names[N_OUT];
  char storage[N_OUT][16];
  for (size_t o = 0; o < N_OUT; o++) {
    snprintf(storage[o], sizeof storage[o], "y_%s", outs[o]);
    names[o] = storage[o];
    mb_add_node(&g, NULL, "Neg", outs[o], names[o]);
    mb_value_info(&g, MB_GRAPH_OUTPUT, names[o], 1, NULL);
  }
  strand_session *s = session_of(&g);
  REQUIRE(s);
  strand_tensor *x = test_input_tensor((int64_t[]){3, 2, 4}, 3, 1);
  strand_tensor *w = test_input_tensor((int64_t[]){1, 3, 4}, 3, 2);
  strand_tensor *i = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_INT64, NULL, 0, &i));
  void *id;
  REQUIRE_OK(strand_tensor_data(i, &id));
  *(int64_t *)id = 2;
  REQUIRE(x && w);
  size_t nx, nw;
  const float *xd = floats(x, &nx), *wd = floats(w, &nw);
  const char *ins[3] = {"x", "w", "i"};
  const strand_tensor *in_tensors[3] = {x, w, i};
  for (int run = 0; run < 3; run++) { /* run 1 plans; runs 2 and 3 use the plan */
    strand_tensor *y[N_OUT];
    for (size_t o = 0; o < N_OUT; o++) y[o] = NULL;
    REQUIRE_OK(strand_session_run(s, ins, in_tensors, 3, names, y, N_OUT));
    size_t n;
    const float *v = floats(y[0], &n); /* x[1] */
    CHECK(n == 8);
    for (size_t k = 0; k < 8; k++) CHECK(v[k] == xd[8 + k]);
    v = floats(y[1], &n); /* x[2] */
    CHECK(n == 8 && has_shape(y[1], (int64_t[]){2, 4}, 2));
    for (size_t k = 0; k < 8; k++) CHECK(v[k] == xd[16 + k]);
    v = floats(y[2], &n); /* x[2], [1,2,4] */
    CHECK(n == 8 && has_shape(y[2], (int64_t[]){1, 2, 4}, 3));
    for (size_t k = 0; k < 8; k++) CHECK(v[k] == xd[16 + k]);
    v = floats(y[3], &n); /* w[0][2] */
    CHECK(n == 4 && has_shape(y[3], (int64_t[]){1, 4}, 2));
    for (size_t k = 0; k < 4; k++) CHECK(v[k] == wd[8 + k]);
    v = floats(y[4], &n); /* x[1][1] */
    CHECK(n == 4);
    for (size_t k = 0; k < 4; k++) CHECK(v[k] == xd[12 + k]);
    v = floats(y[5], &n); /* x[2] flattened */
    CHECK(n == 8 && has_shape(y[5], (int64_t[]){8}, 1));
    for (size_t k = 0; k < 8; k++) CHECK(v[k] == xd[16 + k]);
    v = floats(y[6], &n); /* x[:,1,:] */
    CHECK(n == 12);
    for (size_t r = 0; r < 3; r++)
      for (size_t k = 0; k < 4; k++) CHECK(v[r * 4 + k] == xd[r * 8 + 4 + k]);
    v = floats(y[7], &n); /* x[0], x[2] */
    CHECK(n == 16);
    for (size_t k = 0; k < 8; k++) CHECK(v[k] == xd[k] && v[8 + k] == xd[16 + k]);
    v = floats(y[8], &n); /* x[i], i given at run time: 2, then 0 */
    size_t from = run < 2 ? 16 : 0;
    CHECK(n == 8);
    for (size_t k = 0; k < 8; k++) CHECK(v[k] == xd[from + k]);
    for (size_t o = 0; o < N_OUT; o++) strand_tensor_release(y[o]);
    if (run == 1) *(int64_t *)id = 0; /* a run-time index may change between runs */
  }
  REQUIRE(s->n_plans == 1);
  CHECK(place_of(s, "g1") == PLAN_VIEW && offset_of(s, "g1") == 8 * sizeof(float));
  CHECK(place_of(s, "g2") == PLAN_VIEW && offset_of(s, "g2") == 16 * sizeof(float));
  CHECK(place_of(s, "g3") == PLAN_VIEW && offset_of(s, "g3") == 16 * sizeof(float));
  CHECK(place_of(s, "g4") == PLAN_VIEW && offset_of(s, "g4") == 8 * sizeof(float));
  CHECK(place_of(s, "g5") == PLAN_VIEW && offset_of(s, "g5") == 12 * sizeof(float));
  CHECK(root_of(s, "g5") == value(s, "a"));
  CHECK(place_of(s, "g6") == PLAN_VIEW && offset_of(s, "g6") == 16 * sizeof(float));
  CHECK(place_of(s, "n1") == PLAN_ARENA);
  CHECK(place_of(s, "n2") == PLAN_ARENA);
  CHECK(place_of(s, "n3") == PLAN_ARENA);
  check_no_overlap(s, s->plans[0]);
  strand_tensor_release(x);
  strand_tensor_release(w);
  strand_tensor_release(i);
  strand_session_release(s);
}

/* A constant index out of range makes no view: the Gather runs and fails
 * the run with its message, on the first run and on every later one (no
 * plan is made from a failed run), and nothing is left alive. */
TEST(a_gather_out_of_range_fails_instead_of_viewing) {
  static const int64_t bad[] = {3, -4};
  for (size_t b = 0; b < 2; b++) {
    mb g = mb_new();
    mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "3,2,4");
    mb_initializer_int64(&g, "at", NULL, 0, &bad[b], 1);
    mb_add_node(&g, "neg_x", "Neg", "x", "a");
    gather_node(&g, "g", "a,at", 0, "g1");
    mb_add_node(&g, "neg", "Neg", "g1", "y");
    mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
    strand_session *s = session_of(&g);
    REQUIRE(s);
    strand_tensor *x = test_input_tensor((int64_t[]){3, 2, 4}, 3, 1);
    REQUIRE(x);
    char want[32];
    snprintf(want, sizeof want, "index %lld", (long long)bad[b]);
    for (int run = 0; run < 2; run++) {
      strand_tensor *y = NULL;
      CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, run_x(s, x, NULL, &y, 1));
      CHECK(y == NULL);
      CHECK(strstr(strand_errmsg(), want) != NULL);
      CHECK(strstr(strand_errmsg(), "out of range") != NULL);
    }
    CHECK(s->n_plans == 0);
    strand_tensor_release(x);
    strand_session_release(s);
  }
}

/* a = Neg(x) [3,4] -> Unsqueeze(axes 0) [1,3,4] -> Reshape [4,3] ->
 * Flatten(axis 0) [1,12] -> Identity -> Squeeze [12] -> Dropout -> y = Neg:
 * six views of one root, y is x flattened. */
TEST(a_chain_of_views_has_one_root) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "3,4");
  mb_add_node(&g, "neg", "Neg", "x", "a");
  mb_initializer_int64(&g, "axes", (int64_t[]){1}, 1, (int64_t[]){0}, 1);
  mb_add_node(&g, "unsqueeze", "Unsqueeze", "a,axes", "u");
  reshape_node(&g, "reshape", "u", "shape", (int64_t[]){4, 3}, 2, "r");
  mb flatten = mb_node("flatten", "Flatten", "r", "f");
  mb_attr_int(&flatten, "axis", 0);
  mb_msg(&g, MB_GRAPH_NODE, &flatten);
  mb_add_node(&g, "identity", "Identity", "f", "i");
  mb_add_node(&g, "squeeze", "Squeeze", "i,axes", "q");
  mb_add_node(&g, "dropout", "Dropout", "q", "d");
  mb_add_node(&g, "neg2", "Neg", "d", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  strand_session *s = session_of(&g);
  REQUIRE(s);
  strand_tensor *x = test_input_tensor((int64_t[]){3, 4}, 2, 2);
  REQUIRE(x);
  size_t n;
  const float *xd = floats(x, &n);
  for (int run = 0; run < 2; run++) {
    strand_tensor *y;
    REQUIRE_OK(run_x(s, x, NULL, &y, 1));
    size_t ny;
    const float *yd = floats(y, &ny);
    CHECK(ny == 12 && has_shape(y, (int64_t[]){12}, 1));
    CHECK(memcmp(yd, xd, n * sizeof(float)) == 0);
    strand_tensor_release(y);
  }
  REQUIRE(s->n_plans == 1);
  const plan *p = s->plans[0];
  int32_t a = value(s, "a");
  const char *views[] = {"u", "r", "f", "i", "q", "d"};
  for (size_t i = 0; i < 6; i++) {
    CHECK(place_of(s, views[i]) == PLAN_VIEW);
    CHECK(root_of(s, views[i]) == a);
  }
  /* Their dims are their own. */
  const plan_value *q = &p->values[value(s, "q")], *u = &p->values[value(s, "u")];
  CHECK(q->rank == 1 && p->dims[q->dims_at] == 12);
  CHECK(u->rank == 3 && p->dims[u->dims_at] == 1 && p->dims[u->dims_at + 2] == 4);
  CHECK(p->n_steps == 2 && p->n_views == 6);
  check_no_overlap(s, p);
  strand_tensor_release(x);
  strand_session_release(s);
}

/* ---- views of graph inputs and constants ------------------------------------------ */

static void release_nothing(void *context, void *data) {
  (void)context;
  (void)data;
}

/* r = Reshape(x) and c = Reshape(w) (a constant; to the shape of x,
 * known at run time, so not folded at load): both views of bytes strand
 * only reads; y = Neg(r) + c. The input, also given misaligned (strand
 * copies it to aligned memory for the run), is never written. */
TEST(views_of_inputs_and_constants) {
  float w[12];
  for (int i = 0; i < 12; i++) w[i] = (float)(i * 3 % 5) - 2;
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,6");
  mb_initializer_float(&g, "w", (int64_t[]){3, 4}, 2, w, 12);
  mb_add_node(&g, "shape", "Shape", "x", "shape");
  mb_add_node(&g, "reshape_x", "Reshape", "x,shape", "r");
  mb_add_node(&g, "reshape_w", "Reshape", "w,shape", "c");
  mb_add_node(&g, "neg", "Neg", "r", "nr");
  mb_add_node(&g, "add", "Add", "nr,c", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  strand_session *s = session_of(&g);
  REQUIRE(s);
  _Alignas(64) unsigned char raw[12 * sizeof(float) + 64];
  for (int misaligned = 0; misaligned < 2; misaligned++) {
    for (int run = 0; run < 3; run++) {
      float xv[12], saved[12];
      for (size_t i = 0; i < 12; i++) xv[i] = test_input_at(i, (unsigned)run);
      unsigned char *at = raw + (misaligned ? 2 : 0);
      memcpy(at, xv, sizeof xv);
      strand_tensor *x = NULL, *y = NULL;
      REQUIRE_OK(strand_tensor_wrap(STRAND_DTYPE_FLOAT32, (int64_t[]){2, 6}, 2, at, sizeof xv,
                                    release_nothing, NULL, &x));
      CHECK_OK(run_x(s, x, NULL, &y, 1));
      memcpy(saved, at, sizeof saved);
      CHECK(memcmp(saved, xv, sizeof xv) == 0);
      if (y) {
        size_t ny;
        const float *yd = floats(y, &ny);
        CHECK(ny == 12 && has_shape(y, (int64_t[]){2, 6}, 2));
        for (size_t i = 0; i < 12; i++) CHECK(yd[i] == -xv[i] + w[i]);
      }
      strand_tensor_release(y);
      strand_tensor_release(x);
    }
  }
  REQUIRE(s->n_plans == 1);
  CHECK(place_of(s, "r") == PLAN_VIEW && root_of(s, "r") == value(s, "x"));
  CHECK(s->cacheable);
  CHECK(place_of(s, "c") == PLAN_VIEW && root_of(s, "c") == value(s, "w"));
  CHECK(s->plans[0]->n_steps == 3 && s->plans[0]->n_views == 2); /* Shape, Neg, Add */
  check_no_overlap(s, s->plans[0]);
  strand_session_release(s);
}

/* ---- values handed to the caller ---------------------------------------------------- */

/* a = Neg(x) -> y = Reshape(a) (an output) and a -> r = Reshape(a) ->
 * z = Abs(r) (an output); outputs "a" too when asked. The caller's tensors
 * own their bytes: a later run leaves them alone, and no view of a value
 * in an output tensor is made. */
TEST(outputs_own_their_bytes) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2,4");
  mb_add_node(&g, "neg", "Neg", "x", "a");
  reshape_node(&g, "reshape_y", "a", "shape", (int64_t[]){8}, 1, "y");
  mb_add_node(&g, "reshape_r", "Reshape", "a,shape", "r");
  mb_add_node(&g, "abs", "Abs", "r", "z");
  mb_add_node(&g, "identity", "Identity", "x", "ix");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "z", 1, NULL);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "a", 1, NULL);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "ix", 1, NULL);
  strand_session *s = session_of(&g);
  REQUIRE(s);
  static const char *const all[] = {"y", "z", "a", "ix"}, *const some[] = {"y", "z"};
  for (int with_a = 0; with_a < 2; with_a++) {
    const char *const *names = with_a ? all : some;
    size_t n_out = with_a ? 4 : 2;
    strand_tensor *first[4], *second[4];
    strand_tensor *x1 = test_input_tensor((int64_t[]){2, 4}, 2, 3), *x2 = test_input_tensor((int64_t[]){2, 4}, 2, 4);
    REQUIRE(x1 && x2);
    float x1v[8];
    size_t n;
    memcpy(x1v, floats(x1, &n), sizeof x1v);
    /* Three runs: the last two planned; `first` must survive the last. */
    REQUIRE_OK(run_x(s, x2, names, second, n_out));
    for (size_t i = 0; i < n_out; i++) strand_tensor_release(second[i]);
    REQUIRE_OK(run_x(s, x1, names, first, n_out));
    REQUIRE_OK(run_x(s, x2, names, second, n_out));
    float *x1d;
    strand_tensor_data(x1, (void **)&x1d);
    for (size_t i = 0; i < 8; i++) x1d[i] = 99; /* the caller reuses its input */
    size_t ny, nz;
    const float *y = floats(first[0], &ny), *z = floats(first[1], &nz);
    CHECK(ny == 8 && nz == 8);
    for (size_t i = 0; i < 8; i++) {
      CHECK(y[i] == -x1v[i]);
      CHECK(z[i] == (x1v[i] < 0 ? -x1v[i] : x1v[i]));
    }
    if (with_a) {
      size_t na, ni;
      const float *a = floats(first[2], &na), *ix = floats(first[3], &ni);
      CHECK(na == 8 && ni == 8);
      for (size_t i = 0; i < 8; i++) CHECK(a[i] == -x1v[i] && ix[i] == x1v[i]);
      CHECK(first[0] != first[2]);
      void *dy, *da;
      strand_tensor_data(first[0], &dy);
      strand_tensor_data(first[2], &da);
      CHECK(dy != da);
    }
    /* The plan of this key. */
    REQUIRE(s->n_plans >= 1);
    CHECK(place_of(s, "y") == PLAN_OUTPUT);
    CHECK(place_of(s, "r") == (with_a ? PLAN_ARENA : PLAN_VIEW));
    CHECK(place_of(s, "a") == (with_a ? PLAN_OUTPUT : PLAN_ARENA));
    if (with_a) CHECK(place_of(s, "ix") == PLAN_OUTPUT);
    check_no_overlap(s, s->plans[0]);
    for (size_t i = 0; i < n_out; i++) {
      strand_tensor_release(first[i]);
      strand_tensor_release(second[i]);
    }
    strand_tensor_release(x1);
    strand_tensor_release(x2);
  }
  strand_session_release(s);
}

/* ---- readers beside a view --------------------------------------------------------- */

/* a = Neg(x) [3,4] is read by r = Reshape(a, [4,3]) and later by b = Relu(a)
 * (after Abs(r) ran); y = Abs(r) + Reshape(b). */
TEST(a_value_read_by_a_view_and_a_later_node) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "3,4");
  mb_add_node(&g, "neg", "Neg", "x", "a");
  reshape_node(&g, "reshape", "a", "shape", (int64_t[]){4, 3}, 2, "r");
  mb_add_node(&g, "abs", "Abs", "r", "c");
  mb_add_node(&g, "relu", "Relu", "a", "b");
  mb_add_node(&g, "reshape_b", "Reshape", "b,shape", "b2");
  mb_add_node(&g, "add", "Add", "c,b2", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  strand_session *s = session_of(&g);
  REQUIRE(s);
  strand_tensor *x = test_input_tensor((int64_t[]){3, 4}, 2, 5);
  REQUIRE(x);
  size_t n;
  const float *xd = floats(x, &n);
  for (int run = 0; run < 2; run++) {
    strand_tensor *y;
    REQUIRE_OK(run_x(s, x, NULL, &y, 1));
    size_t ny;
    const float *yd = floats(y, &ny);
    CHECK(ny == 12);
    for (size_t i = 0; i < 12; i++) {
      float a = -xd[i];
      CHECK(yd[i] == (a < 0 ? -a : a) + (a > 0 ? a : 0));
    }
    strand_tensor_release(y);
  }
  REQUIRE(s->n_plans == 1);
  CHECK(place_of(s, "r") == PLAN_VIEW && place_of(s, "b2") == PLAN_VIEW);
  check_no_overlap(s, s->plans[0]);
  strand_tensor_release(x);
  strand_session_release(s);
}

/* ---- the arena -------------------------------------------------------------------- */

/* a = Neg(x) is last read directly by v = Reshape(a) (step 1), but v is read
 * at the end: y = v + d with b = Abs(x), c = Neg(b), d = Abs(c) (each the
 * size of a) in between. Were a's bytes free after step 1, first fit would
 * put b over them and y would be |x| + |x|; they stay a's until y. */
TEST(the_arena_keeps_bytes_a_view_still_reads) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,64");
  mb_add_node(&g, "neg", "Neg", "x", "a");
  reshape_node(&g, "reshape", "a", "shape", (int64_t[]){-1, 8, 8}, 3, "v");
  mb_add_node(&g, "abs", "Abs", "x", "b");
  mb_add_node(&g, "neg2", "Neg", "b", "c");
  mb_add_node(&g, "abs2", "Abs", "c", "d");
  mb_add_node(&g, "reshape_d", "Reshape", "d,shape", "d3");
  mb_add_node(&g, "add", "Add", "v,d3", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  strand_session *s = session_of(&g);
  REQUIRE(s);
  for (int64_t batch = 1; batch <= 4; batch += 3) {
    strand_tensor *x = test_input_tensor((int64_t[]){batch, 64}, 2, 6);
    REQUIRE(x);
    size_t n;
    const float *xd = floats(x, &n);
    for (int run = 0; run < 2; run++) {
      strand_tensor *y;
      REQUIRE_OK(run_x(s, x, NULL, &y, 1));
      size_t ny;
      const float *yd = floats(y, &ny);
      CHECK(ny == n && has_shape(y, (int64_t[]){batch, 8, 8}, 3));
      size_t wrong = 0;
      for (size_t i = 0; i < n; i++) wrong += yd[i] != -xd[i] + (xd[i] < 0 ? -xd[i] : xd[i]);
      CHECK(wrong == 0);
      strand_tensor_release(y);
    }
    const plan *p = s->plans[0];
    CHECK(place_of(s, "v") == PLAN_VIEW && root_of(s, "v") == value(s, "a"));
    CHECK(place_of(s, "a") == PLAN_ARENA);
    /* a, b, c, d3's root d: a is alive with each of them. */
    const plan_value *a = &p->values[value(s, "a")];
    size_t bytes = (size_t)batch * 64 * sizeof(float);
    const char *others[] = {"b", "c", "d"};
    for (size_t i = 0; i < 3; i++) {
      const plan_value *o = &p->values[value(s, others[i])];
      CHECK(o->place == PLAN_ARENA);
      CHECK(o->offset >= a->offset + bytes || a->offset >= o->offset + bytes);
    }
    check_no_overlap(s, p);
    strand_tensor_release(x);
  }
  strand_session_release(s);
}

/* Views make no arena bigger than copies did: the copy's bytes are gone.
 * x -> Neg -> Reshape -> Neg -> Reshape -> ... : with copies each Reshape's
 * output is alive beside its input; as views only the Negs take room. */
TEST(views_shrink_the_arena) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "4,64");
  mb_initializer_int64(&g, "s1", (int64_t[]){2}, 1, (int64_t[]){16, 16}, 2);
  mb_initializer_int64(&g, "s2", (int64_t[]){2}, 1, (int64_t[]){4, 64}, 2);
  char in[16] = "x", out[16];
  for (int i = 0; i < 6; i++) {
    snprintf(out, sizeof out, "n%d", i);
    mb_add_node(&g, NULL, "Neg", in, out);
    char inputs[32];
    snprintf(inputs, sizeof inputs, "%s,%s", out, i % 2 ? "s2" : "s1");
    snprintf(in, sizeof in, "r%d", i);
    mb_add_node(&g, NULL, "Reshape", inputs, in);
  }
  mb_add_node(&g, NULL, "Abs", in, "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  strand_session *s = session_of(&g);
  REQUIRE(s);
  strand_tensor *x = test_input_tensor((int64_t[]){4, 64}, 2, 7), *y = NULL;
  REQUIRE(x);
  REQUIRE_OK(run_x(s, x, NULL, &y, 1));
  strand_tensor_release(y);
  REQUIRE_OK(run_x(s, x, NULL, &y, 1));
  size_t n, ny;
  const float *xd = floats(x, &n), *yd = floats(y, &ny);
  CHECK(ny == n);
  for (size_t i = 0; i < n; i++) CHECK(yd[i] == (xd[i] < 0 ? -xd[i] : xd[i]));
  strand_tensor_release(y);
  REQUIRE(s->n_plans == 1);
  const plan *p = s->plans[0];
  CHECK(p->n_views == 6 && p->n_steps == 7);
  /* One value alive at a time, and its successor beside it while written. */
  CHECK(p->arena_size == 2 * 4 * 64 * sizeof(float));
  check_no_overlap(s, p);
  strand_tensor_release(x);
  strand_session_release(s);
}

/* ---- threads ------------------------------------------------------------------------ */

#define THREADS 4
#define ROUNDS 20

typedef struct shared {
  strand_session *session;
  strand_tensor *inputs[THREADS];
  atomic_int next, wrong, failures;
} shared;

/* The chain model's y (x flattened) for input `which`. */
static void *runner(void *arg) {
  shared *sh = arg;
  int me = atomic_fetch_add(&sh->next, 1);
  for (int round = 0; round < ROUNDS; round++) {
    int which = (me + round) % THREADS;
    strand_tensor *y = NULL;
    if (run_x(sh->session, sh->inputs[which], NULL, &y, 1)) {
      atomic_fetch_add(&sh->failures, 1);
      continue;
    }
    size_t n, ny;
    const float *xd = floats(sh->inputs[which], &n), *yd = floats(y, &ny);
    if (n != ny || memcmp(xd, yd, n * sizeof(float)) != 0) atomic_fetch_add(&sh->wrong, 1);
    strand_tensor_release(y);
  }
  return NULL;
}

/* a = Neg(x); views of a are read by the Negs of several branches, on four
 * threads at once with inputs of different batch sizes: each run has its
 * own arena and binds its own views. */
TEST(views_under_concurrent_runs) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,6");
  mb_add_node(&g, "neg", "Neg", "x", "a");
  reshape_node(&g, "reshape", "a", "shape", (int64_t[]){-1, 2, 3}, 3, "r");
  mb_initializer_int64(&g, "axes", (int64_t[]){1}, 1, (int64_t[]){1}, 1);
  mb_add_node(&g, "unsqueeze", "Unsqueeze", "r,axes", "u");
  mb_add_node(&g, "neg2", "Neg", "u", "nu");
  reshape_node(&g, "reshape_back", "nu", "shape_back", (int64_t[]){-1, 6}, 2, "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb m = mb_model(17, &g);
  shared sh = {0};
  sh.session = session_from(&m);
  REQUIRE(sh.session);
  for (int i = 0; i < THREADS; i++) {
    sh.inputs[i] = test_input_tensor((int64_t[]){1 + i % 2 * 7, 6}, 2, (unsigned)i);
    REQUIRE(sh.inputs[i]);
  }
  pthread_t threads[THREADS];
  for (int i = 0; i < THREADS; i++) REQUIRE(pthread_create(&threads[i], NULL, runner, &sh) == 0);
  for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
  CHECK(atomic_load(&sh.failures) == 0);
  CHECK(atomic_load(&sh.wrong) == 0);
  CHECK(sh.session->n_plans == 2);
  for (size_t i = 0; i < sh.session->n_plans; i++) CHECK(sh.session->plans[i]->n_views == 2);
  for (int i = 0; i < THREADS; i++) strand_tensor_release(sh.inputs[i]);
  strand_session_release(sh.session);
}

/* ---- planning runs -------------------------------------------------------------- */

/* Sessions whose shapes come from input data never cache a plan: every run
 * is a planning run, and there a view takes over its input's buffer when
 * it is the input's last reader. a = Neg(x) (256 KiB) -> Reshape(a, shape)
 * -> y = Neg: the run's scratch peaks at a's bytes, not twice them. */
TEST(planning_runs_share_too) {
  enum { N = 1 << 16 };
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "65536");
  mb_value_info(&g, MB_GRAPH_INPUT, "shape", 7, "2");
  mb_add_node(&g, "neg", "Neg", "x", "a");
  mb_add_node(&g, "reshape", "Reshape", "a,shape", "r");
  mb_add_node(&g, "neg2", "Neg", "r", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  strand_session *s = session_of(&g);
  REQUIRE(s);
  CHECK(!s->cacheable);
  strand_tensor *x = test_input_tensor((int64_t[]){N}, 1, 8), *shape = NULL;
  REQUIRE(x);
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_INT64, (int64_t[]){2}, 1, &shape));
  int64_t *target;
  strand_tensor_data(shape, (void **)&target);
  const char *names[2] = {"x", "shape"};
  const strand_tensor *ins[2] = {x, shape};
  size_t n;
  const float *xd = floats(x, &n);
  for (int run = 0; run < 3; run++) {
    target[0] = run == 1 ? 256 : 1024;
    target[1] = N / target[0];
    strand_memory_stats before = {.struct_size = sizeof before};
    strand_memory_stats after = {.struct_size = sizeof after};
    CHECK_OK(strand_memory_get_stats(&before));
    strand_memory_reset_peaks();
    strand_tensor *y = NULL;
    CHECK_OK(strand_session_run(s, names, ins, 2, NULL, &y, 1));
    CHECK_OK(strand_memory_get_stats(&after));
    if (!y) continue;
    size_t ny;
    const float *yd = floats(y, &ny);
    CHECK(ny == n && has_shape(y, target, 2));
    CHECK(memcmp(yd, xd, n * sizeof(float)) == 0);
    strand_tensor_release(y);
    /* The first run also makes the run context. */
    uint64_t grew = after.peak_bytes[STRAND_MEMORY_SCRATCH] - before.live_bytes[STRAND_MEMORY_SCRATCH];
    if (run > 0 && grew >= N * sizeof(float) * 3 / 2)
      test_fail(__FILE__, __LINE__, "run %d: scratch grew by %llu bytes for a value of %zu",
                run, (unsigned long long)grew, N * sizeof(float));
  }
  CHECK(s->n_plans == 0);
  strand_tensor_release(shape);
  strand_tensor_release(x);
  strand_session_release(s);
}

/* A session with If plans every run; a view made in the main graph is read
 * by the If's branches (outer values) and by a node after the If. */
TEST(views_read_by_subgraphs) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "cond", 9, "");
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,3");
  mb_add_node(&g, "neg", "Neg", "x", "a");
  reshape_node(&g, "reshape", "a", "shape", (int64_t[]){-1}, 1, "r");
  mb then = mb_new(), els = mb_new();
  mb_str(&then, MB_GRAPH_NAME, "then");
  mb_add_node(&then, "abs", "Abs", "r", "then_out");
  mb_value_info(&then, MB_GRAPH_OUTPUT, "then_out", 1, NULL);
  mb_str(&els, MB_GRAPH_NAME, "else");
  mb_initializer_int64(&els, "axes", (int64_t[]){1}, 1, (int64_t[]){0}, 1);
  mb_add_node(&els, "unsqueeze", "Unsqueeze", "r,axes", "u");
  mb_add_node(&els, "squeeze", "Squeeze", "u,axes", "else_out");
  mb_value_info(&els, MB_GRAPH_OUTPUT, "else_out", 1, NULL);
  mb n = mb_node("if", "If", "cond", "b");
  mb_attr_graph(&n, "then_branch", &then);
  mb_attr_graph(&n, "else_branch", &els);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_add_node(&g, "add", "Add", "b,r", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  strand_session *s = session_of(&g);
  REQUIRE(s);
  strand_tensor *x = test_input_tensor((int64_t[]){4, 3}, 2, 9), *cond = NULL;
  REQUIRE(x);
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_BOOL, NULL, 0, &cond));
  uint8_t *c;
  strand_tensor_data(cond, (void **)&c);
  size_t nx;
  const float *xd = floats(x, &nx);
  const char *names[2] = {"cond", "x"};
  const strand_tensor *ins[2] = {cond, x};
  for (int run = 0; run < 4; run++) {
    *c = (uint8_t)(run % 2);
    strand_tensor *y = NULL;
    CHECK_OK(strand_session_run(s, names, ins, 2, NULL, &y, 1));
    if (!y) continue;
    size_t ny;
    const float *yd = floats(y, &ny);
    CHECK(ny == 12);
    for (size_t i = 0; i < 12; i++) {
      float a = -xd[i];
      CHECK(yd[i] == (*c ? (a < 0 ? -a : a) : a) + a);
    }
    strand_tensor_release(y);
  }
  CHECK(s->n_plans == 0);
  strand_tensor_release(cond);
  strand_tensor_release(x);
  strand_session_release(s);
}

/* A run that fails after views were made gives every buffer back once
 * (the sanitizers check), names the node at fault, and the next run with
 * good inputs gives the right answer. */
TEST(a_failing_run_after_views) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "6");
  mb_value_info(&g, MB_GRAPH_INPUT, "shape", 7, "1");
  mb_add_node(&g, "neg", "Neg", "x", "a");
  reshape_node(&g, "flat", "a", "minus_one", (int64_t[]){-1}, 1, "r");
  mb_add_node(&g, "bad", "Reshape", "r,shape", "q");
  mb_add_node(&g, "neg2", "Neg", "q", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  strand_session *s = session_of(&g);
  REQUIRE(s);
  strand_tensor *x = test_input_tensor((int64_t[]){6}, 1, 10), *shape = NULL;
  REQUIRE(x);
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_INT64, (int64_t[]){1}, 1, &shape));
  int64_t *target;
  strand_tensor_data(shape, (void **)&target);
  const char *names[2] = {"x", "shape"};
  const strand_tensor *ins[2] = {x, shape};
  strand_tensor *y = NULL;
  *target = 4;
  CHECK_STATUS(STRAND_E_SHAPE, strand_session_run(s, names, ins, 2, NULL, &y, 1));
  CHECK_MSG("node \"bad\" (Reshape): cannot reshape X [6] (6 elements) to [4] (4)");
  CHECK(y == NULL);
  *target = 6;
  CHECK_OK(strand_session_run(s, names, ins, 2, NULL, &y, 1));
  if (y) {
    size_t n, ny;
    const float *xd = floats(x, &n), *yd = floats(y, &ny);
    CHECK(ny == 6 && memcmp(xd, yd, n * sizeof(float)) == 0);
  }
  strand_tensor_release(y);
  strand_tensor_release(shape);
  strand_tensor_release(x);
  strand_session_release(s);
}
