/* Execution plans from the inside: values alive at the same time never
 * share arena memory, memory is reused along a chain, scratch is placed,
 * outputs are written in place, and shapes that depend on input data
 * disable the cache. */
/* model_builder.h first: its parameter names would shadow the IR's types. */
#include "model_builder.h"
#include "session_from.h"
#include "test.h"

#include "runtime/executor.h"

static strand_status run_once(strand_session *s, int64_t batch, size_t width) {
  int64_t dims[2] = {batch, (int64_t)width};
  strand_tensor *x = NULL, *y = NULL;
  strand_status st = strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 2, &x);
  const char *name = "x";
  if (!st) st = strand_session_run(s, &name, (const strand_tensor *const *)&x, 1, NULL, &y, 1);
  strand_tensor_release(x);
  strand_tensor_release(y);
  return st;
}

/* The step range in which each computed value of `p` is alive. */
static void lifetimes(const strand_session *s, const plan *p, size_t *first, size_t *last) {
  const graph *g = s->graph;
  for (size_t v = 0; v < g->n_values; v++) first[v] = SIZE_MAX, last[v] = 0;
  for (size_t k = 0; k < p->n_steps; k++) {
    const graph_node *node = &g->nodes[p->steps[k].node];
    const int32_t *outputs = s->nodes[p->steps[k].node].outputs; /* after fusion */
    for (size_t i = 0; i < node->n_outputs; i++)
      if (outputs[i] >= 0 && first[outputs[i]] == SIZE_MAX) first[outputs[i]] = last[outputs[i]] = k;
    for (size_t i = 0; i < node->n_inputs; i++)
      if (node->inputs[i] >= 0) last[node->inputs[i]] = k;
  }
}

/* A chain of 12 Relus over [batch, width] and a diamond at the end. */
static mb chain_model(size_t width) {
  mb g = mb_new();
  char dims[32];
  snprintf(dims, sizeof dims, "batch,%zu", width);
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, dims);
  char in[16] = "x", out[16];
  for (int i = 0; i < 12; i++) {
    snprintf(out, sizeof out, "r%d", i);
    mb_add_node(&g, NULL, i % 2 ? "Relu" : "Sigmoid", in, out);
    snprintf(in, sizeof in, "%s", out);
  }
  mb_add_node(&g, NULL, "Tanh", "r11", "t");
  mb_add_node(&g, NULL, "Add", "r11,t", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  return mb_model(17, &g);
}

TEST(live_values_never_share_memory) {
  const size_t width = 100;
  mb m = chain_model(width);
  strand_session *s = session_from(&m);
  REQUIRE(s);
  REQUIRE_OK(run_once(s, 3, width));
  REQUIRE(s->n_plans == 1);
  const plan *p = s->plans[0];
  const graph *g = s->graph;
  size_t first[64], last[64];
  REQUIRE(g->n_values <= 64);
  lifetimes(s, p, first, last);
  size_t total = 0, in_arena = 0;
  for (size_t a = 0; a < g->n_values; a++) {
    const plan_value *va = &p->values[a];
    if (va->place != PLAN_ARENA) continue;
    in_arena++;
    size_t bytes_a = va->count * sizeof(float);
    total += bytes_a;
    CHECK(va->offset % SESSION_ALIGNMENT == 0);
    CHECK(va->offset + bytes_a <= p->arena_size);
    for (size_t b = a + 1; b < g->n_values; b++) {
      const plan_value *vb = &p->values[b];
      if (vb->place != PLAN_ARENA) continue;
      bool together = first[a] <= last[b] && first[b] <= last[a];
      bool overlap = va->offset < vb->offset + vb->count * sizeof(float) &&
                     vb->offset < va->offset + bytes_a;
      if (together && overlap)
        test_fail(__FILE__, __LINE__, "values %s and %s are alive together and overlap",
                  g->values[a].name, g->values[b].name);
    }
  }
  CHECK(in_arena == 13);        /* r0..r11 and t; y is the output tensor */
  CHECK(p->arena_size < total); /* memory is reused along the chain */
  CHECK(p->arena_size <= 3 * ((3 * width * sizeof(float) + 63) / 64 * 64));
  int32_t y = graph_find(g, "y");
  CHECK(y >= 0 && p->values[y].place == PLAN_OUTPUT);
  strand_session_release(s);
}

TEST(plans_record_every_shape) {
  mb m = chain_model(8);
  strand_session *s = session_from(&m);
  REQUIRE(s);
  REQUIRE_OK(run_once(s, 5, 8));
  REQUIRE_OK(run_once(s, 2, 8));
  REQUIRE(s->n_plans == 2);
  /* Most recent first. */
  const plan *p = s->plans[0];
  int32_t t = graph_find(s->graph, "t");
  REQUIRE(t >= 0);
  const plan_value *pv = &p->values[t];
  CHECK(pv->rank == 2 && p->dims[pv->dims_at] == 2 && p->dims[pv->dims_at + 1] == 8);
  CHECK(pv->count == 16);
  CHECK(s->plans[1]->values[t].count == 40);
  strand_session_release(s);
}

/* Conv needs scratch (im2col and GEMM packing; 8 input channels are more
 * than the direct path for first layers takes): it is placed in the arena. */
TEST(scratch_is_planned) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,32");
  float w[4 * 8 * 3 * 3];
  for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) w[i] = (float)i / 100;
  int64_t wdims[4] = {4, 8, 3, 3};
  mb_initializer_float(&g, "w", wdims, 4, w, sizeof w / sizeof w[0]);
  int64_t shape[4] = {-1, 8, 2, 2};
  mb_initializer_int64(&g, "shape", (int64_t[]){4}, 1, shape, 4);
  mb_add_node(&g, "reshape", "Reshape", "x,shape", "image");
  mb node = mb_node("conv", "Conv", "image,w", "y");
  int64_t pads[4] = {1, 1, 1, 1};
  mb_attr_ints(&node, "pads", pads, 4);
  mb_msg(&g, MB_GRAPH_NODE, &node);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb m = mb_model(17, &g);
  strand_session *s = session_from(&m);
  REQUIRE(s);
  CHECK(s->cacheable);
  REQUIRE_OK(run_once(s, 2, 32));
  REQUIRE(s->n_plans == 1);
  const plan *p = s->plans[0];
  /* The Reshape of the input is a view of it: only the Conv runs. */
  REQUIRE(p->n_steps == 1 && p->n_views == 1);
  CHECK(p->steps[0].scratch_size > 0);
  CHECK(p->steps[0].scratch_offset + p->steps[0].scratch_size <= p->arena_size);
  strand_session_release(s);
}

/* A Reshape whose target shape comes from an input's data cannot be
 * planned once for all: every run plans (and still gives right answers). */
TEST(data_dependent_shapes_plan_every_run) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "6");
  mb_value_info(&g, MB_GRAPH_INPUT, "shape", 7, "2");
  mb_add_node(&g, "reshape", "Reshape", "x,shape", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb m = mb_model(17, &g);
  strand_session *s = session_from(&m);
  REQUIRE(s);
  CHECK(!s->cacheable);
  int64_t six = 6, two = 2, targets[2][2] = {{2, 3}, {3, 2}};
  strand_tensor *x = NULL, *shape = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, &six, 1, &x));
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_INT64, &two, 1, &shape));
  const char *names[2] = {"x", "shape"};
  const strand_tensor *ins[2] = {x, shape};
  for (int i = 0; i < 2; i++) {
    int64_t *data;
    strand_tensor_data(shape, (void **)&data);
    data[0] = targets[i][0];
    data[1] = targets[i][1];
    strand_tensor *y = NULL;
    CHECK_OK(strand_session_run(s, names, ins, 2, NULL, &y, 1));
    const int64_t *dims;
    size_t rank;
    CHECK_OK(strand_tensor_shape(y, &dims, &rank));
    CHECK(rank == 2 && dims[0] == targets[i][0] && dims[1] == targets[i][1]);
    strand_tensor_release(y);
  }
  CHECK(s->n_plans == 0);
  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(s, &stats));
  CHECK(stats.planning_runs == 2);
  strand_tensor_release(x);
  strand_tensor_release(shape);
  strand_session_release(s);
}

/* Shape arithmetic on a symbolic batch stays cacheable: Shape's output
 * depends on shapes only. */
TEST(shape_arithmetic_is_cacheable) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,2,3");
  int64_t zero = 0, axes = 0, minus_one = -1;
  mb_initializer_int64(&g, "zero", NULL, 0, &zero, 1);
  mb_initializer_int64(&g, "axes", (int64_t[]){1}, 1, &axes, 1);
  mb_initializer_int64(&g, "minus_one", (int64_t[]){1}, 1, &minus_one, 1);
  mb_add_node(&g, NULL, "Shape", "x", "shape");
  mb_add_node(&g, NULL, "Gather", "shape,zero", "batch");
  mb_add_node(&g, NULL, "Unsqueeze", "batch,axes", "batch1");
  mb cat = mb_node(NULL, "Concat", "batch1,minus_one", "target");
  mb_attr_int(&cat, "axis", 0);
  mb_msg(&g, MB_GRAPH_NODE, &cat);
  mb_add_node(&g, NULL, "Reshape", "x,target", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb m = mb_model(17, &g);
  strand_session *s = session_from(&m);
  REQUIRE(s);
  CHECK(s->cacheable);
  strand_session_release(s);
}

/* Conv → Relu: the Relu is absorbed (never run) and the Conv writes the
 * Relu's output; Conv → Relu where the Conv's output is read twice is not. */
TEST(activations_fuse_into_their_producer) {
  for (int twice = 0; twice < 2; twice++) {
    mb g = mb_new();
    mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "1,2,4,4");
    float w[3 * 2 * 3 * 3];
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) w[i] = (float)i / 50 - 0.5f;
    int64_t wdims[4] = {3, 2, 3, 3};
    mb_initializer_float(&g, "w", wdims, 4, w, sizeof w / sizeof w[0]);
    mb_add_node(&g, "conv", "Conv", "x,w", "c");
    mb_add_node(&g, "relu", "Relu", "c", "r");
    if (twice) mb_add_node(&g, "add", "Add", "c,r", "y");
    mb_value_info(&g, MB_GRAPH_OUTPUT, twice ? "y" : "r", 1, NULL);
    mb m = mb_model(17, &g);
    strand_session *s = session_from(&m);
    REQUIRE(s);
    const graph *gr = s->graph;
    int32_t conv = -1, relu = -1;
    for (size_t k = 0; k < gr->n_nodes; k++) {
      if (strcmp(gr->nodes[k].name, "conv") == 0) conv = (int32_t)k;
      if (strcmp(gr->nodes[k].name, "relu") == 0) relu = (int32_t)k;
    }
    REQUIRE(conv >= 0 && relu >= 0);
    if (twice) {
      CHECK(s->nodes[relu].kernel != NULL);
      CHECK(s->nodes[conv].outputs[0] == gr->nodes[conv].outputs[0]);
    } else {
      CHECK(s->nodes[relu].kernel == NULL);
      CHECK(s->nodes[conv].outputs[0] == gr->nodes[relu].outputs[0]);
    }
    int64_t dims[4] = {1, 2, 4, 4};
    strand_tensor *x = NULL, *y = NULL;
    REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 4, &x));
    float *xd;
    strand_tensor_data(x, (void **)&xd);
    for (int i = 0; i < 32; i++) xd[i] = (float)(i % 7) - 3;
    const char *name = "x";
    CHECK_OK(strand_session_run(s, &name, (const strand_tensor *const *)&x, 1, NULL, &y, 1));
    if (y) {
      size_t n;
      float *yd;
      strand_tensor_element_count(y, &n);
      strand_tensor_data(y, (void **)&yd);
      CHECK(n == 3 * 2 * 2);
      for (size_t i = 0; i < n; i++) CHECK(yd[i] >= 0 || twice);
    }
    strand_tensor_release(y);
    strand_tensor_release(x);
    strand_session_release(s);
  }
}
