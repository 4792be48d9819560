/* The model API through strand.h only: loading from paths and buffers,
 * every query, errors, misuse, and the allocation-failure sweep. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_builder.h"
#include "test.h"

static const char *data(const char *name) {
  static char path[4][1024];
  static int slot;
  char *p = path[slot++ & 3];
  snprintf(p, sizeof path[0], "%s", test_source_path("tests/data/onnx"));
  size_t n = strlen(p);
  snprintf(p + n, sizeof path[0] - n, "/%s", name);
  return p;
}

TEST(mlp_is_described) {
  strand_model *m;
  REQUIRE_OK(strand_model_load(data("mlp.onnx"), &m));
  size_t n = 0;
  CHECK_OK(strand_model_input_count(m, &n));
  CHECK(n == 1);
  strand_value_info v;
  CHECK_OK(strand_model_input(m, 0, &v));
  CHECK(strcmp(v.name, "x") == 0 && v.dtype == STRAND_DTYPE_FLOAT32 && v.rank_known && v.rank == 2);
  CHECK(v.dims[0] == -1 && v.dims[1] == 4);
  CHECK(strcmp(v.dim_names[0], "batch") == 0 && v.dim_names[1] == NULL);
  CHECK_OK(strand_model_output_count(m, &n));
  CHECK(n == 1);
  CHECK_OK(strand_model_output(m, 0, &v));
  CHECK(strcmp(v.name, "probs") == 0 && v.rank == 2 && v.dims[1] == 3);
  size_t index = 9;
  CHECK_OK(strand_model_find_input(m, "x", &index));
  CHECK(index == 0);
  CHECK_OK(strand_model_find_output(m, "probs", &index));
  CHECK_STATUS(STRAND_E_NOT_FOUND, strand_model_find_input(m, "probs", &index));
  CHECK_MSG("the model has no input named \"probs\"");

  int64_t ir = 0;
  CHECK_OK(strand_model_ir_version(m, &ir));
  CHECK(ir >= 7);
  const char *name = NULL, *version = NULL, *graph = NULL;
  CHECK_OK(strand_model_producer(m, &name, &version));
  CHECK(strcmp(name, "strand-tests") == 0 && strcmp(version, "1.0") == 0);
  CHECK_OK(strand_model_producer(m, NULL, NULL));
  CHECK_OK(strand_model_graph_name(m, &graph));
  CHECK(strcmp(graph, "mlp") == 0);

  CHECK_OK(strand_model_opset_count(m, &n));
  CHECK(n == 1);
  const char *domain = NULL;
  int64_t opset = 0;
  CHECK_OK(strand_model_opset_at(m, 0, &domain, &opset));
  CHECK(strcmp(domain, "") == 0 && opset == 17);
  CHECK_OK(strand_model_opset(m, "ai.onnx", &opset));
  CHECK(opset == 17);
  CHECK_STATUS(STRAND_E_NOT_FOUND, strand_model_opset(m, "com.example", &opset));
  CHECK_MSG("imports no opset for domain \"com.example\"");

  CHECK_OK(strand_model_op_count(m, &n));
  REQUIRE(n == 3);
  strand_op_info op;
  const char *expected[] = {"Gemm", "Relu", "Softmax"};
  const uint64_t counts[] = {2, 1, 1};
  for (size_t i = 0; i < 3; i++) {
    CHECK_OK(strand_model_op(m, i, &op));
    CHECK(strcmp(op.op_type, expected[i]) == 0 && op.count == counts[i]);
    CHECK(strcmp(op.domain, "") == 0 && op.opset == 17);
  }
  uint64_t params = 0, bytes = 0;
  CHECK_OK(strand_model_parameter_count(m, &params, &bytes));
  CHECK(params == 67 && bytes == 268);
  /* Which kernels exist changes as strand grows: only check agreement. */
  int all = 1;
  for (size_t i = 0; i < 3; i++) {
    CHECK_OK(strand_model_op(m, i, &op));
    all &= op.supported;
  }
  CHECK(strand_model_check_supported(m) == (all ? STRAND_OK : STRAND_E_UNSUPPORTED));
  strand_model_release(m);
}

TEST(ops_of_unknown_domains_are_unsupported) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2");
  mb n = mb_node("m1", "Mystery", "x", "a");
  mb_str(&n, MB_NODE_DOMAIN, "com.example");
  mb_msg(&g, MB_GRAPH_NODE, &n);
  n = mb_node("m2", "Mystery", "a", "b");
  mb_str(&n, MB_NODE_DOMAIN, "com.example");
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_add_node(&g, "id", "Identity", "b", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb built = mb_model(17, &g);
  strand_model *m;
  REQUIRE_OK(strand_model_load_buffer(built.data, built.size, &m));
  mb_free(&built);
  size_t n_ops;
  CHECK_OK(strand_model_op_count(m, &n_ops));
  CHECK(n_ops == 2);
  strand_op_info op;
  CHECK_OK(strand_model_op(m, 0, &op)); /* most used first */
  CHECK(strcmp(op.op_type, "Mystery") == 0 && strcmp(op.domain, "com.example") == 0);
  CHECK(op.count == 2 && op.opset == -1 && !op.supported);
  CHECK_STATUS(STRAND_E_UNSUPPORTED, strand_model_check_supported(m));
  CHECK_MSG("no kernel for 1 op type: com.example.Mystery (x2)");
  strand_model_release(m);
}

TEST(queries_check_their_arguments) {
  strand_model *m;
  REQUIRE_OK(strand_model_load(data("mlp.onnx"), &m));
  strand_value_info v;
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_model_input(m, 1, &v));
  CHECK_MSG("strand_model_input: index 1 is out of range (the model has 1 inputs)");
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_model_output(m, 0, NULL));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_model_input(NULL, 0, &v));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_model_opset_at(m, 5, NULL, NULL));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_model_op(m, 3, NULL));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_model_find_input(m, NULL, &(size_t){0}));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_model_opset(m, NULL, &(int64_t){0}));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_model_load(NULL, &m));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_model_load(data("mlp.onnx"), NULL));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_model_load_buffer(NULL, 5, &m));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_model_retain(NULL));
  strand_model_release(NULL);
  strand_model_release(m);
}

TEST(misuse_is_detected) {
  strand_model *m;
  REQUIRE_OK(strand_model_load(data("mlp.onnx"), &m));
  CHECK_OK(strand_model_retain(m));
  strand_model_release(m);
  size_t n;
  CHECK_OK(strand_model_input_count(m, &n));
  strand_model_release(m);
  uint64_t before = strand_misuse_count();
  CHECK_STATUS(STRAND_E_MISUSE, strand_model_input_count(m, &n));
  CHECK_MSG("strand_model_input_count");
  strand_model_release(m);
  CHECK(strand_misuse_count() >= before + 2);
  strand_tensor *t;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, NULL, 0, &t));
  CHECK_STATUS(STRAND_E_MISUSE, strand_model_input_count((strand_model *)t, &n));
  strand_tensor_release(t);
}

TEST(load_failures_name_the_file_and_cause) {
  strand_model *m = (strand_model *)0x1;
  CHECK_STATUS(STRAND_E_IO, strand_model_load(data("no_such_model.onnx"), &m));
  CHECK_MSG("no_such_model.onnx\": No such file or directory");
  CHECK(m == (strand_model *)0x1); /* untouched on failure */
  CHECK_STATUS(STRAND_E_IO, strand_model_load(test_source_path("tests/data"), &m));
  CHECK_MSG("not a regular file");
  CHECK_STATUS(STRAND_E_UNSUPPORTED, strand_model_load(data("sequence_input.onnx"), &m));
  CHECK_MSG("graph \"sequence\" input 0 (\"s\"): sequence types are not supported");
  CHECK_STATUS(STRAND_E_UNSUPPORTED, strand_model_load(data("sparse_initializer.onnx"), &m));
  CHECK_MSG("sparse initializers (sparse_initializer) are not supported");
  char empty[] = "/tmp/strand_empty_XXXXXX";
  int fd = mkstemp(empty);
  REQUIRE(fd >= 0);
  close(fd);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, strand_model_load(empty, &m));
  CHECK_MSG("the model has no graph");
  unlink(empty);
}

TEST(buffers_are_copied) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "n,2");
  mb_add_node(&g, "relu", "Relu", "x", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb built = mb_model(17, &g);
  uint8_t *copy = malloc(built.size);
  REQUIRE(copy);
  memcpy(copy, built.data, built.size);
  strand_model *m;
  CHECK_OK(strand_model_load_buffer(copy, built.size, &m));
  memset(copy, 0xab, built.size);
  free(copy);
  strand_memory_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_memory_get_stats(&stats));
  CHECK(stats.live_bytes[STRAND_MEMORY_WEIGHTS] >= built.size);
  CHECK(stats.live_objects[STRAND_KIND_MODEL] == 1);
  strand_value_info v;
  CHECK_OK(strand_model_output(m, 0, &v));
  CHECK(strcmp(v.name, "y") == 0 && v.rank == 2 && strcmp(v.dim_names[0], "n") == 0);
  strand_model_release(m);
  mb_free(&built);
}

TEST(committed_models_load) {
  static const char *const names[] = {"mlp.onnx", "cnn.onnx", "shape_chain.onnx",
                                      "control_flow.onnx", "typed_fields.onnx",
                                      "external/model.onnx"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    strand_model *m;
    strand_status st = strand_model_load(data(names[i]), &m);
    if (st != STRAND_OK) {
      test_fail(__FILE__, __LINE__, "%s: %s", names[i], strand_errmsg());
      continue;
    }
    strand_model_release(m);
  }
  strand_model *m;
  REQUIRE_OK(strand_model_load(data("typed_fields.onnx"), &m));
  CHECK_OK(strand_model_check_supported(m)); /* Identity needs no kernel */
  strand_model_release(m);
  REQUIRE_OK(strand_model_load(data("control_flow.onnx"), &m));
  size_t ops;
  uint64_t nodes = 0;
  CHECK_OK(strand_model_op_count(m, &ops));
  for (size_t i = 0; i < ops; i++) {
    strand_op_info op;
    CHECK_OK(strand_model_op(m, i, &op));
    nodes += op.count;
  }
  CHECK(nodes == 6); /* subgraph nodes included */
  strand_model_release(m);
}

static void sweep(const char *what, strand_status (*load)(strand_model **)) {
  uint64_t n;
  for (n = 1; n < 100000; n++) {
    strand_memory_fail_nth(n);
    strand_model *m = NULL;
    strand_status st = load(&m);
    strand_memory_fail_nth(0);
    if (st == STRAND_OK) {
      strand_model_release(m);
      break;
    }
    if (st != STRAND_E_OUT_OF_MEMORY)
      test_fail(__FILE__, __LINE__, "%s, allocation %llu: %s: %s", what, (unsigned long long)n,
                strand_status_name(st), strand_errmsg());
    strand_memory_stats stats = {.struct_size = sizeof stats};
    CHECK_OK(strand_memory_get_stats(&stats));
    if (stats.total_live_bytes || stats.total_live_objects)
      test_fail(__FILE__, __LINE__, "%s, allocation %llu: %llu bytes left", what,
                (unsigned long long)n, (unsigned long long)stats.total_live_bytes);
  }
  CHECK(n > 5);
}

static strand_status load_cnn(strand_model **out) { return strand_model_load(data("cnn.onnx"), out); }
static strand_status load_control(strand_model **out) {
  return strand_model_load(data("control_flow.onnx"), out);
}
static mb sweep_buffer;
static strand_status load_buffer(strand_model **out) {
  return strand_model_load_buffer(sweep_buffer.data, sweep_buffer.size, out);
}

TEST(allocation_failures_are_clean) {
  sweep("cnn.onnx", load_cnn);
  sweep("control_flow.onnx", load_control);
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "2,3,4,5");
  mb_initializer_int64(&g, "zero", NULL, 0, (const int64_t[]){0}, 1);
  mb_add_node(&g, "shape", "Shape", "x", "s");
  mb_add_node(&g, "gather", "Gather", "s,zero", "b");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "b", 7, NULL);
  sweep_buffer = mb_model(17, &g);
  sweep("buffer", load_buffer);
  mb_free(&sweep_buffer);
}

TEST(the_memory_limit_applies_to_loads) {
  strand_memory_set_limit(1024);
  strand_model *m;
  CHECK_STATUS(STRAND_E_MEMORY_LIMIT, strand_model_load(data("cnn.onnx"), &m));
  strand_memory_set_limit(0);
  CHECK_OK(strand_model_load(data("cnn.onnx"), &m));
  strand_model_release(m);
}
