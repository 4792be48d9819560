/* Shape and dtype inference, constant folding and topological order, read
 * back from the IR of models built in memory. */
#include "model_builder.h"
#include "runtime/runtime_internal.h"
#include "test.h"

static strand_model *load(mb *g, int64_t opset) {
  mb m = mb_model(opset, g);
  strand_model *model = NULL;
  strand_status st = strand_model_load_buffer(m.data, m.size, &model);
  if (st) test_fail(__FILE__, __LINE__, "load: %s: %s", strand_status_name(st), strand_errmsg());
  mb_free(&m);
  return model;
}

static const graph_value *value(const strand_model *model, const char *name) {
  const graph *g = strand__model_graph(model);
  int32_t v = graph_find(g, name);
  return v >= 0 ? &g->values[v] : NULL;
}

/* The value's type as text: "float32 [batch, 3]". */
static const char *type_of(const strand_model *model, const char *name) {
  static char text[300];
  const graph_value *v = value(model, name);
  if (!v) return "(none)";
  char shape[256];
  snprintf(text, sizeof text, "%s %s", strand_dtype_name(v->dtype),
           graph_shape_text(v->rank, v->dims, shape, sizeof shape));
  return text;
}

#define CHECK_TYPE(model, name, expected)                                                  \
  do {                                                                                     \
    const char *got_ = type_of(model, name);                                               \
    if (strcmp(got_, expected) != 0)                                                       \
      test_fail(__FILE__, __LINE__, "%s is %s, expected %s", name, got_, expected);        \
  } while (0)

static const float zeros[216];

TEST(elementwise_ops_broadcast) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "a", 1, "batch,1,4");
  mb_value_info(&g, MB_GRAPH_INPUT, "b", 1, "3,1");
  mb_value_info(&g, MB_GRAPH_INPUT, "c", 1, "?");
  mb_add_node(&g, "add", "Add", "a,b", "sum");
  mb_add_node(&g, "less", "Less", "a,b", "lt");
  mb_add_node(&g, "where", "Where", "lt,a,b", "w");
  mb_add_node(&g, "mul", "Mul", "b,c", "unknown_dim");
  mb_add_node(&g, "relu", "Relu", "sum", "r");
  mb_add_node(&g, "sigmoid", "Sigmoid", "r", "s");
  strand_model *m = load(&g, 17);
  REQUIRE(m);
  CHECK_TYPE(m, "sum", "float32 [batch, 3, 4]");
  CHECK_TYPE(m, "lt", "bool [batch, 3, 4]");
  CHECK_TYPE(m, "w", "float32 [batch, 3, 4]");
  CHECK_TYPE(m, "unknown_dim", "float32 [3, ?]");
  CHECK_TYPE(m, "s", "float32 [batch, 3, 4]");
  strand_model_release(m);
}

TEST(matmul_and_gemm) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "a", 1, "2,batch,5,3");
  mb_value_info(&g, MB_GRAPH_INPUT, "b", 1, "3,7");
  mb_value_info(&g, MB_GRAPH_INPUT, "v", 1, "3");
  mb_value_info(&g, MB_GRAPH_INPUT, "m", 1, "n,4");
  mb_value_info(&g, MB_GRAPH_INPUT, "w", 1, "6,4");
  mb_add_node(&g, "mm", "MatMul", "a,b", "ab");
  mb_add_node(&g, "mv", "MatMul", "a,v", "av");
  mb_add_node(&g, "vm", "MatMul", "v,b", "vb");
  mb n = mb_node("gemm", "Gemm", "m,w", "g");
  mb_attr_int(&n, "transB", 1);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  strand_model *m = load(&g, 17);
  REQUIRE(m);
  CHECK_TYPE(m, "ab", "float32 [2, batch, 5, 7]");
  CHECK_TYPE(m, "av", "float32 [2, batch, 5]");
  CHECK_TYPE(m, "vb", "float32 [7]");
  CHECK_TYPE(m, "g", "float32 [n, 6]");
  strand_model_release(m);
}

TEST(convolution_and_pooling) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "N,3,32,32");
  mb_initializer_float(&g, "w", (const int64_t[]){8, 3, 3, 3}, 4, zeros, 216);
  mb n = mb_node("conv", "Conv", "x,w", "c");
  mb_attr_ints(&n, "strides", (const int64_t[]){2, 2}, 2);
  mb_attr_ints(&n, "pads", (const int64_t[]){1, 1, 1, 1}, 4);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  n = mb_node("same", "Conv", "x,w", "s");
  mb_attr_string(&n, "auto_pad", "SAME_UPPER");
  mb_attr_ints(&n, "strides", (const int64_t[]){3, 3}, 2);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  n = mb_node("pool", "MaxPool", "c", "p,idx");
  mb_attr_ints(&n, "kernel_shape", (const int64_t[]){3, 3}, 2);
  mb_attr_ints(&n, "strides", (const int64_t[]){2, 2}, 2);
  mb_attr_int(&n, "ceil_mode", 1);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  n = mb_node("avg", "AveragePool", "c", "a");
  mb_attr_ints(&n, "kernel_shape", (const int64_t[]){2, 2}, 2);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_add_node(&g, "gap", "GlobalAveragePool", "c", "gap_out");
  mb_add_node(&g, "flat", "Flatten", "gap_out", "f");
  strand_model *m = load(&g, 17);
  if (!m) {
    return;
  }
  CHECK_TYPE(m, "c", "float32 [N, 8, 16, 16]");
  CHECK_TYPE(m, "s", "float32 [N, 8, 11, 11]");
  CHECK_TYPE(m, "p", "float32 [N, 8, 8, 8]");
  CHECK_TYPE(m, "idx", "int64 [N, 8, 8, 8]");
  CHECK_TYPE(m, "a", "float32 [N, 8, 15, 15]");
  CHECK_TYPE(m, "gap_out", "float32 [N, 8, 1, 1]");
  CHECK_TYPE(m, "f", "float32 [N, 8]");
  strand_model_release(m);
}

TEST(shape_ops) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,3,4,5");
  mb_initializer_int64(&g, "axes", (const int64_t[]){2}, 1, (const int64_t[]){0, -1}, 2);
  mb_initializer_int64(&g, "shape", (const int64_t[]){3}, 1, (const int64_t[]){0, -1, 5}, 3);
  mb_initializer_int64(&g, "idx", (const int64_t[]){2, 2}, 2, (const int64_t[]){0, 1, 2, 1}, 4);
  mb n = mb_node("t", "Transpose", "x", "t");
  mb_attr_ints(&n, "perm", (const int64_t[]){0, 2, 3, 1}, 4);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_add_node(&g, "r", "Reshape", "x,shape", "r");
  mb_add_node(&g, "u", "Unsqueeze", "x,axes", "u");
  mb_add_node(&g, "sq", "Squeeze", "u,axes", "sq");
  n = mb_node("cat", "Concat", "x,x", "cat");
  mb_attr_int(&n, "axis", 1);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  n = mb_node("gather", "Gather", "x,idx", "g");
  mb_attr_int(&n, "axis", 1);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  n = mb_node("cast", "Cast", "x", "c");
  mb_attr_int(&n, "to", 7);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_add_node(&g, "shape_of", "Shape", "x", "s");
  n = mb_node("sm", "Softmax", "x", "sm");
  mb_attr_int(&n, "axis", -1);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  strand_model *m = load(&g, 17);
  REQUIRE(m);
  CHECK_TYPE(m, "t", "float32 [batch, 4, 5, 3]");
  CHECK_TYPE(m, "r", "float32 [batch, ?, 5]");
  CHECK_TYPE(m, "u", "float32 [1, batch, 3, 4, 5, 1]");
  CHECK_TYPE(m, "sq", "float32 [batch, 3, 4, 5]");
  CHECK_TYPE(m, "cat", "float32 [batch, 6, 4, 5]");
  CHECK_TYPE(m, "g", "float32 [batch, 2, 2, 4, 5]");
  CHECK_TYPE(m, "c", "int64 [batch, 3, 4, 5]");
  CHECK_TYPE(m, "s", "int64 [4]");
  CHECK_TYPE(m, "sm", "float32 [batch, 3, 4, 5]");
  /* Shape of a partly symbolic value is not a constant. */
  CHECK(!(value(m, "s")->flags & GRAPH_VALUE_CONSTANT));
  strand_model_release(m);
}

TEST(shape_chains_fold_to_constants) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2,3,4,5");
  mb_initializer_int64(&g, "zero", NULL, 0, (const int64_t[]){0}, 1);
  mb_initializer_int64(&g, "axes0", (const int64_t[]){1}, 1, (const int64_t[]){0}, 1);
  mb t = mb_tensor_int64(NULL, (const int64_t[]){1}, 1, (const int64_t[]){-1}, 1);
  mb n = mb_node("minus_one", "Constant", "", "m1");
  mb_attr_tensor(&n, "value", &t);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_add_node(&g, "shape", "Shape", "x", "s");
  mb_add_node(&g, "gather", "Gather", "s,zero", "b");
  mb_add_node(&g, "unsqueeze", "Unsqueeze", "b,axes0", "b1");
  n = mb_node("concat", "Concat", "b1,m1", "target");
  mb_attr_int(&n, "axis", 0);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_add_node(&g, "reshape", "Reshape", "x,target", "y");
  mb_add_node(&g, "mul", "Mul", "s,s", "squares");
  mb_add_node(&g, "div_by_zero", "Div", "s,zero_vec", "q");
  mb_initializer_int64(&g, "zero_vec", (const int64_t[]){4}, 1, (const int64_t[]){1, 0, 1, 1}, 4);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  strand_model *m = load(&g, 17);
  REQUIRE(m);
  CHECK_TYPE(m, "y", "float32 [2, 60]");
  const graph_value *target = value(m, "target");
  REQUIRE(target && (target->flags & GRAPH_VALUE_CONSTANT));
  const int64_t *v = target->constant->data;
  CHECK(target->constant->count == 2 && v[0] == 2 && v[1] == -1);
  const graph_value *sq = value(m, "squares");
  REQUIRE(sq && (sq->flags & GRAPH_VALUE_CONSTANT));
  const int64_t *s = sq->constant->data;
  CHECK(s[0] == 4 && s[1] == 9 && s[2] == 16 && s[3] == 25);
  /* Division by zero is left to run time. */
  CHECK(!(value(m, "q")->flags & GRAPH_VALUE_CONSTANT));
  /* Folded nodes need no kernel: all but Reshape (on a non-constant input)
   * and the division by zero were computed at load. */
  const graph *gr = strand__model_graph(m);
  for (size_t i = 0; i < gr->n_nodes; i++) {
    const graph_node *node = &gr->nodes[i];
    bool should = strcmp(node->name, "reshape") != 0 && strcmp(node->name, "div_by_zero") != 0;
    if (node->folded != should)
      test_fail(__FILE__, __LINE__, "%s folded=%d", node->name, node->folded);
  }
  strand_model_release(m);
}

TEST(folding_handles_slices_and_casts) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2,3,4,5");
  mb_initializer_int64(&g, "starts", (const int64_t[]){1}, 1, (const int64_t[]){1}, 1);
  mb_initializer_int64(&g, "ends", (const int64_t[]){1}, 1, (const int64_t[]){INT64_MAX}, 1);
  mb_initializer_int64(&g, "rev_start", (const int64_t[]){1}, 1, (const int64_t[]){-1}, 1);
  mb_initializer_int64(&g, "rev_end", (const int64_t[]){1}, 1, (const int64_t[]){INT64_MIN}, 1);
  mb_initializer_int64(&g, "axis0", (const int64_t[]){1}, 1, (const int64_t[]){0}, 1);
  mb_initializer_int64(&g, "step_back", (const int64_t[]){1}, 1, (const int64_t[]){-1}, 1);
  mb_add_node(&g, "shape", "Shape", "x", "s");
  mb_add_node(&g, "tail", "Slice", "s,starts,ends", "tail");
  mb_add_node(&g, "reverse", "Slice", "s,rev_start,rev_end,axis0,step_back", "rev");
  mb n = mb_node("cast", "Cast", "tail", "tail32");
  mb_attr_int(&n, "to", 6);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_add_node(&g, "slice_x", "Slice", "x,starts,ends,axis0", "xs");
  /* extreme values: no overflow, ONNX clamping */
  mb_initializer_int64(&g, "max", (const int64_t[]){1}, 1, (const int64_t[]){INT64_MAX}, 1);
  mb_initializer_int64(&g, "min", (const int64_t[]){1}, 1, (const int64_t[]){INT64_MIN}, 1);
  mb_add_node(&g, "extreme", "Slice", "s,max,min,axis0,min", "last");
  mb_add_node(&g, "huge_step", "Slice", "s,min,max,axis0,max", "first");
  strand_model *m = load(&g, 17);
  REQUIRE(m);
  const graph_value *tail = value(m, "tail"), *rev = value(m, "rev"), *t32 = value(m, "tail32");
  REQUIRE(tail->flags & GRAPH_VALUE_CONSTANT);
  const int64_t *v = tail->constant->data;
  CHECK(tail->constant->count == 3 && v[0] == 3 && v[1] == 4 && v[2] == 5);
  REQUIRE(rev->flags & GRAPH_VALUE_CONSTANT);
  v = rev->constant->data;
  CHECK(rev->constant->count == 4 && v[0] == 5 && v[1] == 4 && v[2] == 3 && v[3] == 2);
  REQUIRE(t32->flags & GRAPH_VALUE_CONSTANT);
  CHECK(t32->dtype == STRAND_DTYPE_INT32 && ((const int32_t *)t32->constant->data)[2] == 5);
  CHECK_TYPE(m, "xs", "float32 [1, 3, 4, 5]");
  const graph_value *last = value(m, "last"), *first = value(m, "first");
  REQUIRE((last->flags & GRAPH_VALUE_CONSTANT) && (first->flags & GRAPH_VALUE_CONSTANT));
  CHECK(last->constant->count == 1 && ((const int64_t *)last->constant->data)[0] == 5);
  CHECK(first->constant->count == 1 && ((const int64_t *)first->constant->data)[0] == 2);
  strand_model_release(m);
}

TEST(nodes_are_sorted_stably) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "d", "Add", "b_out,c_out", "d_out");
  mb_add_node(&g, "c", "Neg", "a_out", "c_out");
  mb_add_node(&g, "b", "Relu", "a_out", "b_out");
  mb_add_node(&g, "a", "Abs", "x", "a_out");
  mb_add_node(&g, "e", "Exp", "x", "e_out");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "d_out", 1, NULL);
  strand_model *m = load(&g, 17);
  REQUIRE(m);
  const graph *gr = strand__model_graph(m);
  const char *order[] = {"a", "c", "b", "d", "e"};
  REQUIRE(gr->n_nodes == 5);
  for (size_t i = 0; i < 5; i++)
    if (strcmp(gr->nodes[i].name, order[i]) != 0)
      test_fail(__FILE__, __LINE__, "position %zu holds %s, expected %s", i, gr->nodes[i].name,
                order[i]);
  /* producers follow the nodes */
  for (size_t v = 0; v < gr->n_values; v++)
    if (gr->values[v].producer >= 0) {
      const graph_node *p = &gr->nodes[gr->values[v].producer];
      bool found = false;
      for (size_t o = 0; o < p->n_outputs; o++) found |= p->outputs[o] == (int32_t)v;
      CHECK(found);
    }
  strand_model_release(m);
}

TEST(subgraphs_see_outer_types) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "cond", 9, "");
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,8");
  mb then = mb_new(), otherwise = mb_new();
  mb_str(&then, MB_GRAPH_NAME, "then");
  mb_add_node(&then, "t", "Relu", "x", "t_out");
  mb_value_info(&then, MB_GRAPH_OUTPUT, "t_out", 0, NULL);
  mb_str(&otherwise, MB_GRAPH_NAME, "else");
  mb_add_node(&otherwise, "e", "Neg", "x", "e_out");
  mb_value_info(&otherwise, MB_GRAPH_OUTPUT, "e_out", 0, NULL);
  mb n = mb_node("if", "If", "cond", "y");
  mb_attr_graph(&n, "then_branch", &then);
  mb_attr_graph(&n, "else_branch", &otherwise);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 0, NULL);
  strand_model *m = load(&g, 17);
  REQUIRE(m);
  CHECK_TYPE(m, "y", "float32 [batch, 8]");
  const graph *main_graph = strand__model_graph(m);
  const graph *branch = main_graph->nodes[0].subgraphs[0];
  int32_t x = graph_find(branch, "x");
  REQUIRE(x >= 0);
  CHECK(branch->values[x].flags & GRAPH_VALUE_OUTER);
  CHECK(branch->values[x].outer_graph == main_graph);
  strand_model_release(m);
}

TEST(committed_models_have_the_expected_types) {
  strand_model *m;
  REQUIRE_OK(strand_model_load(test_source_path("tests/data/onnx/cnn.onnx"), &m));
  CHECK_TYPE(m, "c", "float32 [N, 4, 8, 8]");
  CHECK_TYPE(m, "p", "float32 [N, 4, 4, 4]");
  CHECK_TYPE(m, "f", "float32 [N, 64]");
  CHECK_TYPE(m, "y", "float32 [N, 10]");
  strand_model_release(m);
  REQUIRE_OK(strand_model_load(test_source_path("tests/data/onnx/control_flow.onnx"), &m));
  CHECK_TYPE(m, "chosen", "float32 [2]");
  strand_model_release(m);
}
