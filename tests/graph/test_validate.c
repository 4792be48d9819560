/* Every validation error of graph_build, with the message that names the
 * node and field at fault. Models are built in memory with model_builder.h. */
#include "model_builder.h"
#include "test.h"

/* Wraps graph g in a model at `opset`, loads it, releases it; g is freed. */
static strand_status load_graph(mb *g, int64_t opset) {
  mb m = mb_model(opset, g);
  strand_model *model = NULL;
  strand_status st = strand_model_load_buffer(m.data, m.size, &model);
  mb_free(&m);
  strand_model_release(model);
  return st;
}

static const float w4[4] = {1, 2, 3, 4};

TEST(a_valid_graph_loads) {
  mb g = mb_new();
  mb_str(&g, MB_GRAPH_NAME, "main");
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2,2");
  mb_initializer_float(&g, "w", (const int64_t[]){2, 2}, 2, w4, 4);
  mb_add_node(&g, "mm", "MatMul", "x,w", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, "2,2");
  CHECK_OK(load_graph(&g, 13));
}

TEST(unknown_input_names_the_node_and_input) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "1,3,8,8");
  mb_add_node(&g, "conv_3", "Conv", "x,w", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"conv_3\" (Conv): input 1 \"w\" is not produced by any node, initializer or "
            "graph input");
}

TEST(unnamed_nodes_are_named_by_position) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, NULL, "Relu", "x", "a");
  mb_add_node(&g, NULL, "Relu", "nowhere", "b");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "b", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node 1 (Relu): input 0 \"nowhere\"");
}

TEST(duplicate_definitions_are_refused) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "a", "Relu", "x", "y");
  mb_add_node(&g, "b", "Neg", "x", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"b\" (Neg): output 0 \"y\" is also an output of node \"a\" (Relu)");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "a", "Relu", "x", "x");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "x", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"a\" (Relu): output 0 \"x\" is also a graph input");

  g = mb_new();
  mb_initializer_float(&g, "w", (const int64_t[]){4}, 1, w4, 4);
  mb_add_node(&g, "a", "Relu", "w", "w");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "w", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("output 0 \"w\" is also an initializer");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("input 1 \"x\" is declared twice");

  g = mb_new();
  mb_initializer_float(&g, "w", (const int64_t[]){4}, 1, w4, 4);
  mb_initializer_float(&g, "w", (const int64_t[]){4}, 1, w4, 4);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("initializer 1 \"w\" is given twice");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "a", "Relu", "x", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("output 1 \"y\" is listed twice");
}

TEST(missing_names_are_refused) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "", 1, "2");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("input 0 has no name");

  g = mb_new();
  mb_initializer_float(&g, NULL, (const int64_t[]){4}, 1, w4, 4);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("initializer 0 has no name");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_OUTPUT, "ghost", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("output 0 \"ghost\" is not produced by any node, initializer or graph input");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "noop", "", "x", "y");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node 0 (\"noop\"): op_type is missing");
}

TEST(cycles_are_named) {
  mb g = mb_new();
  mb_str(&g, MB_GRAPH_NAME, "loopy");
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "a", "Add", "x,c", "a_out");
  mb_add_node(&g, "b", "Relu", "a_out", "b_out");
  mb_add_node(&g, "c", "Neg", "b_out", "c");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "c", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("graph \"loopy\": the nodes form a cycle: ");
  CHECK_MSG("\"a\" (Add) -> \"b\" (Relu) -> \"c\" (Neg) -> \"a\" (Add)");

  g = mb_new();
  mb_add_node(&g, "self", "Relu", "y", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("\"self\" (Relu) -> \"self\" (Relu)");
}

TEST(initializers_must_match_their_input_declarations) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "w", 7, "4");
  mb_initializer_float(&g, "w", (const int64_t[]){4}, 1, w4, 4);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("initializer 0 \"w\" vs its input declaration: value \"w\": initializer element type "
            "float32 conflicts with int64");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "w", 1, "2,2,1");
  mb_initializer_float(&g, "w", (const int64_t[]){2, 2}, 2, w4, 4);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("initializer shape [2, 2] conflicts with [2, 2, 1]");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "w", 1, "3");
  mb_initializer_float(&g, "w", (const int64_t[]){4}, 1, w4, 4);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("initializer shape [4] conflicts with [3]");

  /* A matching declaration (symbolic dims allowed) is fine, and the input
   * then counts as a constant, not a caller-supplied input. */
  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "w", 1, "n");
  mb_initializer_float(&g, "w", (const int64_t[]){4}, 1, w4, 4);
  mb_add_node(&g, "r", "Relu", "w", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, "4");
  mb m = mb_model(13, &g);
  strand_model *model;
  CHECK_OK(strand_model_load_buffer(m.data, m.size, &model));
  size_t inputs = 99;
  CHECK_OK(strand_model_input_count(model, &inputs));
  CHECK(inputs == 0);
  strand_model_release(model);
  mb_free(&m);

  g = mb_new();
  mb_initializer_float(&g, "w", (const int64_t[]){4}, 1, w4, 4);
  mb_value_info(&g, MB_GRAPH_VALUE_INFO, "w", 6, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("value_info 0: value \"w\": declared element type int32 conflicts with float32");
}

TEST(declared_outputs_must_agree_with_inference) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "a", 1, "2,3");
  mb_value_info(&g, MB_GRAPH_INPUT, "b", 1, "3,5");
  mb_add_node(&g, "mm", "MatMul", "a,b", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, "2,4");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"mm\" (MatMul): output 0: value \"y\": inferred shape [2, 5] conflicts with "
            "[2, 4]");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "a", 1, "2,3");
  mb_value_info(&g, MB_GRAPH_INPUT, "b", 1, "4,5");
  mb_add_node(&g, "mm", "MatMul", "a,b", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"mm\" (MatMul): inner dimensions differ: input 0 has 3 columns, input 1 has "
            "4 rows");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "a", 1, "2,3");
  mb_value_info(&g, MB_GRAPH_INPUT, "b", 1, "4");
  mb_add_node(&g, "add", "Add", "a,b", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"add\" (Add): input 1 has shape [4], which cannot be broadcast with [2, 3]");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "1,3,8,8");
  mb_initializer_float(&g, "w", (const int64_t[]){1, 2, 1, 2}, 4, w4, 4);
  mb_add_node(&g, "conv_3", "Conv", "x,w", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"conv_3\" (Conv): input 0 has 3 channels, but the weight expects 2 per group "
            "x 1 groups");
}

TEST(schemas_of_known_ops_are_checked) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "c", "Cast", "x", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"c\" (Cast): required attribute \"to\" is missing");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb n = mb_node("c", "Cast", "x", "y");
  mb_attr_float(&n, "to", 1.0f);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"c\" (Cast): attribute \"to\" has type FLOAT, expected INT");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "1,3,8,8");
  mb_add_node(&g, "conv", "Conv", "x", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"conv\" (Conv): has 1 input, expected 2 to 3 (opset 13)");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "relu", "Relu", "x,x", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"relu\" (Relu): has 2 inputs, expected 1 (opset 13)");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "gemm", "Gemm", "x,,x", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"gemm\" (Gemm): input 1 is required but empty");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "split", "Split", "x", "");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"split\" (Split): has 0 outputs, expected at least 1");

  /* Opset-dependent rows: Reshape takes its shape as an attribute before 5. */
  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2,2");
  mb_add_node(&g, "reshape", "Reshape", "x", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 4));
  CHECK_MSG("node \"reshape\" (Reshape): required attribute \"shape\" is missing");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "mp", "MaxPool", "x", "y");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"mp\" (MaxPool): required attribute \"kernel_shape\" is missing");
}

TEST(constant_nodes_need_exactly_one_value) {
  mb g = mb_new();
  mb_add_node(&g, "k", "Constant", "", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"k\" (Constant): has no value attribute");

  g = mb_new();
  mb n = mb_node("k", "Constant", "", "y");
  mb_attr_float(&n, "value_float", 1.0f);
  mb_attr_int(&n, "value_int", 1);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("has 2 value attributes, expected exactly one");

  g = mb_new();
  n = mb_node("k", "Constant", "", "y");
  mb_attr_string(&n, "value_string", "hello");
  mb_msg(&g, MB_GRAPH_NODE, &n);
  CHECK_STATUS(STRAND_E_UNSUPPORTED, load_graph(&g, 13));
  CHECK_MSG("node \"k\" (Constant): attribute \"value_string\": string tensors are not supported");

  g = mb_new();
  n = mb_node("k", "Constant", "", "y");
  mb_attr_int(&n, "value_float", 1);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("attribute \"value_float\" has type INT, expected FLOAT");
}

TEST(default_domain_needs_an_opset) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb_add_node(&g, "r", "Relu", "x", "y");
  mb m = mb_new();
  mb_int(&m, MB_MODEL_IR_VERSION, 8);
  mb o = mb_new();
  mb_str(&o, 1, "com.example");
  mb_int(&o, 2, 1);
  mb_msg(&m, MB_MODEL_OPSET_IMPORT, &o);
  mb_msg(&m, MB_MODEL_GRAPH, &g);
  strand_model *model;
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, strand_model_load_buffer(m.data, m.size, &model));
  CHECK_MSG("node \"r\" (Relu): the model imports no opset for domain ai.onnx");
  mb_free(&m);
}

/* A one-node subgraph Relu(name) -> out. */
static mb relu_branch(const char *graph_name, const char *in, const char *out) {
  mb b = mb_new();
  mb_str(&b, MB_GRAPH_NAME, graph_name);
  mb_add_node(&b, "inner", "Relu", in, out);
  mb_value_info(&b, MB_GRAPH_OUTPUT, out, 1, NULL);
  return b;
}

TEST(subgraphs_resolve_outer_names_and_report_inner_errors) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "cond", 9, "");
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb then = relu_branch("then", "x", "t");
  mb otherwise = relu_branch("else", "missing", "e");
  mb n = mb_node("if", "If", "cond", "y");
  mb_attr_graph(&n, "then_branch", &then);
  mb_attr_graph(&n, "else_branch", &otherwise);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"if\" (If): attribute \"else_branch\": graph \"else\" node \"inner\" (Relu): "
            "input 0 \"missing\" is not produced by any node, initializer or graph input here "
            "or in an enclosing graph");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "cond", 9, "");
  n = mb_node("if", "If", "cond", "y");
  then = relu_branch("then", "cond", "t");
  mb_attr_graph(&n, "then_branch", &then);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"if\" (If): required attribute \"else_branch\" is missing");
}

TEST(outer_references_order_the_enclosing_graph) {
  /* The If node comes first in the file but uses "late", made by a node
   * after it: the sort must move the If after that node. */
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "cond", 9, "");
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb then = relu_branch("then", "late", "t");
  mb otherwise = relu_branch("else", "x", "e");
  mb n = mb_node("if", "If", "cond", "y");
  mb_attr_graph(&n, "then_branch", &then);
  mb_attr_graph(&n, "else_branch", &otherwise);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_add_node(&g, "producer", "Neg", "x", "late");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_OK(load_graph(&g, 13));

  /* ... and a subgraph that uses its own node's output is a cycle. */
  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "cond", 9, "");
  then = relu_branch("then", "y", "t");
  otherwise = relu_branch("else", "cond", "e");
  n = mb_node("if", "If", "cond", "y");
  mb_attr_graph(&n, "then_branch", &then);
  mb_attr_graph(&n, "else_branch", &otherwise);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("\"if\" (If)");
}

TEST(attribute_types_are_checked_where_read) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "1,3,8,8");
  mb_initializer_float(&g, "w", (const int64_t[]){1, 3, 1, 1}, 4, w4, 3);
  mb n = mb_node("conv", "Conv", "x,w", "y");
  mb_attr_int(&n, "pads", 1);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"conv\" (Conv): attribute \"pads\" has type INT, expected INTS");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "1,3,8,8");
  mb_initializer_float(&g, "w", (const int64_t[]){1, 3, 1, 1}, 4, w4, 3);
  n = mb_node("conv", "Conv", "x,w", "y");
  mb_attr_ints(&n, "pads", (const int64_t[]){1, 1, 1}, 3);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("attribute \"pads\" has 3 values, expected 4");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2,3");
  n = mb_node("t", "Transpose", "x", "y");
  mb_attr_ints(&n, "perm", (const int64_t[]){0, 0}, 2);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"t\" (Transpose): attribute \"perm\" is not a permutation of 0..1");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2,3");
  mb_initializer_int64(&g, "shape", (const int64_t[]){2}, 1, (const int64_t[]){4, 2}, 2);
  mb_add_node(&g, "r", "Reshape", "x,shape", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load_graph(&g, 13));
  CHECK_MSG("node \"r\" (Reshape): cannot reshape [2, 3] (6 elements) into [4, 2]");
}
