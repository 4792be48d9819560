/* The ONNX parse tree: attributes of every type, tensors in every encoding
 * (raw, typed packed and unpacked, misaligned), features refused by name,
 * and malformed messages. */
#include "model_builder.h"
#include "onnx/onnx_internal.h"
#include "test.h"

/* Parses `m` (freed) into `arena`; the caller frees the arena. */
static strand_status parse(mb *m, onnx_arena *arena, onnx_model **out) {
  onnx_arena_init(arena);
  /* The parse tree may point into the bytes: keep them in the arena. */
  void *copy;
  strand_status st = onnx_arena_weights(arena, m->size, &copy);
  if (!st) {
    memcpy(copy, m->data, m->size);
    onnx_parser p = {arena, copy, m->size, NULL, NULL, 0};
    st = onnx_parse_model(&p, out);
  }
  mb_free(m);
  return st;
}

static strand_status parse_graph_only(mb *g) {
  mb m = mb_model(17, g);
  onnx_arena arena;
  onnx_model *model;
  strand_status st = parse(&m, &arena, &model);
  onnx_arena_free(&arena);
  return st;
}

static const onnx_attr *attr(const onnx_node *n, const char *name) {
  for (size_t i = 0; i < n->n_attrs; i++)
    if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
  return NULL;
}

TEST(model_fields_are_read) {
  mb g = mb_new();
  mb_str(&g, MB_GRAPH_NAME, "g");
  mb m = mb_new();
  mb_int(&m, MB_MODEL_IR_VERSION, 9);
  mb_str(&m, MB_MODEL_PRODUCER_NAME, "maker");
  mb_str(&m, MB_MODEL_PRODUCER_VERSION, "2.0");
  mb_str(&m, 4, "com.example");
  mb_int(&m, 5, 42);
  mb_str(&m, 6, "documentation is skipped");
  mb o = mb_new();
  mb_str(&o, 1, "ai.onnx");
  mb_int(&o, 2, 19);
  mb_msg(&m, MB_MODEL_OPSET_IMPORT, &o);
  o = mb_new();
  mb_str(&o, 1, "com.microsoft");
  mb_int(&o, 2, 1);
  mb_msg(&m, MB_MODEL_OPSET_IMPORT, &o);
  mb f = mb_new();
  mb_str(&f, 1, "local_function");
  mb_msg(&m, MB_MODEL_FUNCTIONS, &f);
  mb_int(&m, 999, 5); /* unknown fields are skipped */
  mb_msg(&m, MB_MODEL_GRAPH, &g);
  onnx_arena arena;
  onnx_model *model;
  CHECK_OK(parse(&m, &arena, &model));
  CHECK(model->ir_version == 9 && model->model_version == 42);
  CHECK(strcmp(model->producer_name, "maker") == 0 && strcmp(model->producer_version, "2.0") == 0);
  CHECK(strcmp(model->domain, "com.example") == 0);
  CHECK(model->n_opsets == 2 && model->opsets[0].domain[0] == '\0' &&
        model->opsets[0].version == 19);
  CHECK(strcmp(model->opsets[1].domain, "com.microsoft") == 0);
  CHECK(model->n_functions == 1);
  CHECK(strcmp(model->graph->name, "g") == 0);
  onnx_arena_free(&arena);
}

TEST(attributes_of_every_type_are_read) {
  mb g = mb_new();
  mb n = mb_node("n", "Custom", "a,,b", "y,");
  mb_str(&n, MB_NODE_DOMAIN, "com.example");
  mb_attr_float(&n, "f", 2.5f);
  mb_attr_int(&n, "i", -7);
  mb_attr_string(&n, "s", "bytes");
  mb t = mb_tensor_int64("t", (const int64_t[]){2}, 1, (const int64_t[]){5, 6}, 2);
  mb_attr_tensor(&n, "t", &t);
  mb sub = mb_new();
  mb_str(&sub, MB_GRAPH_NAME, "sub");
  mb_attr_graph(&n, "g", &sub);
  mb_attr_floats(&n, "floats", (const float[]){1, 2, 3}, 3);
  mb_attr_ints(&n, "ints", (const int64_t[]){4, -5}, 2);
  mb a = mb_attr("unpacked_ints", MB_INTS);
  mb_int(&a, MB_ATTR_INTS, 8);
  mb_int(&a, MB_ATTR_INTS, 9);
  mb_msg(&n, MB_NODE_ATTRIBUTE, &a);
  a = mb_attr("strings", MB_STRINGS);
  mb_str(&a, MB_ATTR_STRINGS, "one");
  mb_str(&a, MB_ATTR_STRINGS, "two");
  mb_msg(&n, MB_NODE_ATTRIBUTE, &a);
  a = mb_attr("tensors", MB_TENSORS);
  t = mb_tensor_int64(NULL, NULL, 0, (const int64_t[]){1}, 1);
  mb_msg(&a, MB_ATTR_TENSORS, &t);
  mb_msg(&n, MB_NODE_ATTRIBUTE, &a);
  a = mb_attr("graphs", MB_GRAPHS);
  sub = mb_new();
  mb_str(&sub, MB_GRAPH_NAME, "first");
  mb_msg(&a, MB_ATTR_GRAPHS, &sub);
  sub = mb_new();
  mb_str(&sub, MB_GRAPH_NAME, "second");
  mb_msg(&a, MB_ATTR_GRAPHS, &sub);
  mb_msg(&n, MB_NODE_ATTRIBUTE, &a);
  a = mb_attr("untyped", 0); /* IR version 1 style: type taken from the value */
  mb_int(&a, MB_ATTR_I, 3);
  mb_msg(&n, MB_NODE_ATTRIBUTE, &a);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb m = mb_model(17, &g);
  onnx_arena arena;
  onnx_model *model;
  REQUIRE_OK(parse(&m, &arena, &model));
  const onnx_node *node = &model->graph->nodes[0];
  CHECK(node->n_inputs == 3 && strcmp(node->inputs[1], "") == 0);
  CHECK(node->n_outputs == 2 && strcmp(node->outputs[1], "") == 0);
  CHECK(strcmp(node->domain, "com.example") == 0);
  const onnx_attr *x;
  CHECK((x = attr(node, "f")) && x->type == ONNX_ATTR_FLOAT && x->f == 2.5f);
  CHECK((x = attr(node, "i")) && x->type == ONNX_ATTR_INT && x->i == -7);
  CHECK((x = attr(node, "s")) && x->s.size == 5 && strcmp(x->s.data, "bytes") == 0);
  CHECK((x = attr(node, "t")) && x->t->dtype == STRAND_DTYPE_INT64 && x->t->count == 2 &&
        ((const int64_t *)x->t->data)[1] == 6);
  CHECK((x = attr(node, "g")) && strcmp(x->g->name, "sub") == 0 && x->g->depth == 1);
  CHECK((x = attr(node, "floats")) && x->count == 3 && x->floats[2] == 3.0f);
  CHECK((x = attr(node, "ints")) && x->count == 2 && x->ints[1] == -5);
  CHECK((x = attr(node, "unpacked_ints")) && x->count == 2 && x->ints[1] == 9);
  CHECK((x = attr(node, "strings")) && x->count == 2 && strcmp(x->strings[1].data, "two") == 0);
  CHECK((x = attr(node, "tensors")) && x->count == 1 && x->tensors[0].rank == 0);
  CHECK((x = attr(node, "graphs")) && x->count == 2 && strcmp(x->graphs[1].name, "second") == 0);
  CHECK((x = attr(node, "untyped")) && x->type == ONNX_ATTR_INT && x->i == 3);
  onnx_arena_free(&arena);
}

TEST(attribute_errors_name_the_attribute) {
  mb g = mb_new();
  mb n = mb_node("n", "Custom", "", "");
  mb a = mb_attr("r", MB_INT);
  mb_str(&a, MB_ATTR_REF_ATTR_NAME, "outer");
  mb_msg(&n, MB_NODE_ATTRIBUTE, &a);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  CHECK_STATUS(STRAND_E_UNSUPPORTED, parse_graph_only(&g));
  CHECK_MSG("node 0 (\"n\"): attribute \"r\": references to function attributes (ref_attr_name) "
            "are not supported");

  g = mb_new();
  n = mb_node("n", "Custom", "", "");
  a = mb_attr("sp", MB_SPARSE_TENSOR);
  mb_msg(&n, MB_NODE_ATTRIBUTE, &a);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  CHECK_STATUS(STRAND_E_UNSUPPORTED, parse_graph_only(&g));
  CHECK_MSG("attribute \"sp\": SPARSE_TENSOR attributes are not supported");

  g = mb_new();
  n = mb_node("n", "Custom", "", "");
  a = mb_attr("x", 99);
  mb_msg(&n, MB_NODE_ATTRIBUTE, &a);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_graph_only(&g));
  CHECK_MSG("attribute \"x\": unknown attribute type 99");

  g = mb_new();
  n = mb_node("n", "Custom", "", "");
  mb_attr_int(&n, "dup", 1);
  mb_attr_int(&n, "dup", 2);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_graph_only(&g));
  CHECK_MSG("node 0 (\"n\"): attribute \"dup\" appears more than once");

  g = mb_new();
  n = mb_node("n", "Custom", "", "");
  a = mb_attr("", MB_INT);
  mb_msg(&n, MB_NODE_ATTRIBUTE, &a);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_graph_only(&g));
  CHECK_MSG("attribute 0: attribute without a name");

  g = mb_new();
  n = mb_node("n", "Custom", "", "");
  a = mb_attr("t", MB_TENSOR);
  mb_msg(&n, MB_NODE_ATTRIBUTE, &a);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_graph_only(&g));
  CHECK_MSG("attribute \"t\": type TENSOR but no tensor (field t)");

  g = mb_new();
  n = mb_node("n", "Custom", "", "");
  a = mb_attr("pads", MB_INTS);
  mb_tag(&a, MB_ATTR_INTS, 2);
  mb_varint(&a, 2);
  mb_raw(&a, (const uint8_t[]){0x01, 0x80}, 2);
  mb_msg(&n, MB_NODE_ATTRIBUTE, &a);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_str(&g, MB_GRAPH_NAME, "main");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_graph_only(&g));
  CHECK_MSG("graph \"main\" node 0 (\"n\"): attribute \"pads\": field ints: truncated varint in "
            "packed field at byte");
}

/* A graph holding one initializer built by `build`. */
static strand_status parse_initializer(mb *tensor, onnx_tensor *out, onnx_arena *arena) {
  mb g = mb_new();
  mb_msg(&g, MB_GRAPH_INITIALIZER, tensor);
  mb m = mb_model(17, &g);
  onnx_model *model;
  strand_status st = parse(&m, arena, &model);
  if (!st) *out = model->graph->initializers[0];
  return st;
}

TEST(typed_fields_decode_packed_and_unpacked) {
  onnx_arena arena;
  onnx_tensor t;
  /* int32_data for float16 bit patterns, unpacked */
  mb b = mb_new();
  mb_int(&b, MB_TENSOR_DIMS, 2);
  mb_int(&b, MB_TENSOR_DATA_TYPE, 10);
  mb_str(&b, MB_TENSOR_NAME, "h");
  mb_int(&b, MB_TENSOR_INT32_DATA, 0x3c00);
  mb_int(&b, MB_TENSOR_INT32_DATA, 0xc000);
  REQUIRE_OK(parse_initializer(&b, &t, &arena));
  CHECK(t.dtype == STRAND_DTYPE_FLOAT16 && t.storage == ONNX_STORAGE_CONVERTED);
  CHECK(((const uint16_t *)t.data)[0] == 0x3c00 && ((const uint16_t *)t.data)[1] == 0xc000);
  CHECK((uintptr_t)t.data % 2 == 0);
  onnx_arena_free(&arena);

  /* float_data packed: used in place when aligned, else copied */
  for (int shift = 0; shift < 4; shift++) {
    b = mb_new();
    mb_int(&b, MB_TENSOR_DIMS, 3);
    mb_int(&b, MB_TENSOR_DATA_TYPE, 1);
    mb_str(&b, MB_TENSOR_NAME, shift == 0 ? "f" : shift == 1 ? "ff" : shift == 2 ? "fff" : "ffff");
    mb body = mb_new();
    float v[3] = {1.5f, -2.0f, 4.0f};
    mb_raw(&body, v, sizeof v);
    mb_msg(&b, MB_TENSOR_FLOAT_DATA, &body);
    REQUIRE_OK(parse_initializer(&b, &t, &arena));
    CHECK(t.storage == ONNX_STORAGE_MAPPED || t.storage == ONNX_STORAGE_COPIED);
    CHECK((uintptr_t)t.data % 4 == 0);
    CHECK(((const float *)t.data)[1] == -2.0f && ((const float *)t.data)[2] == 4.0f);
    onnx_arena_free(&arena);
  }

  /* uint64_data for uint32, double_data unpacked, int64 mixed */
  b = mb_new();
  mb_int(&b, MB_TENSOR_DIMS, 2);
  mb_int(&b, MB_TENSOR_DATA_TYPE, 12);
  mb_int(&b, MB_TENSOR_UINT64_DATA, 4294967295u);
  mb_int(&b, MB_TENSOR_UINT64_DATA, 1);
  REQUIRE_OK(parse_initializer(&b, &t, &arena));
  CHECK(((const uint32_t *)t.data)[0] == 4294967295u);
  onnx_arena_free(&arena);

  b = mb_new();
  mb_int(&b, MB_TENSOR_DATA_TYPE, 11);
  double d = 0.25;
  uint64_t bits;
  memcpy(&bits, &d, 8);
  mb_tag(&b, MB_TENSOR_DOUBLE_DATA, 1);
  mb_raw(&b, &bits, 8);
  REQUIRE_OK(parse_initializer(&b, &t, &arena));
  CHECK(t.rank == 0 && t.count == 1 && *(const double *)t.data == 0.25);
  onnx_arena_free(&arena);

  b = mb_new();
  mb_int(&b, MB_TENSOR_DIMS, 3);
  mb_int(&b, MB_TENSOR_DATA_TYPE, 7);
  mb_packed(&b, MB_TENSOR_INT64_DATA, (const int64_t[]){-1, 2}, 2);
  mb_int(&b, MB_TENSOR_INT64_DATA, INT64_MIN);
  REQUIRE_OK(parse_initializer(&b, &t, &arena));
  CHECK(((const int64_t *)t.data)[0] == -1 && ((const int64_t *)t.data)[2] == INT64_MIN);
  onnx_arena_free(&arena);
}

TEST(raw_data_is_zero_copy_when_aligned) {
  int mapped = 0, copied = 0;
  for (int pad = 0; pad < 8; pad++) {
    char name[16] = "w";
    for (int i = 0; i < pad; i++) name[1 + i] = 'x';
    double v[2] = {1.0, 2.0};
    mb b = mb_tensor_raw(name, 11, (const int64_t[]){2}, 1, v, sizeof v);
    onnx_arena arena;
    onnx_tensor t;
    REQUIRE_OK(parse_initializer(&b, &t, &arena));
    CHECK((uintptr_t)t.data % 8 == 0 && ((const double *)t.data)[1] == 2.0);
    if (t.storage == ONNX_STORAGE_MAPPED) mapped++;
    if (t.storage == ONNX_STORAGE_COPIED) {
      copied++;
      CHECK(arena.weight_bytes >= 16);
    }
    onnx_arena_free(&arena);
  }
  CHECK(mapped >= 1 && copied >= 1 && mapped + copied == 8);
}

TEST(malformed_tensors_name_the_problem) {
  onnx_arena arena;
  onnx_tensor t;
  mb b = mb_tensor_raw("w", 1, (const int64_t[]){2, 2}, 2, "abcdefgh", 8);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_initializer(&b, &t, &arena));
  CHECK_MSG("initializer 0: tensor \"w\": raw_data has 8 bytes, expected 16 (4 float32 elements)");
  onnx_arena_free(&arena);

  b = mb_new();
  mb_str(&b, MB_TENSOR_NAME, "w");
  mb_int(&b, MB_TENSOR_DIMS, -1);
  mb_int(&b, MB_TENSOR_DATA_TYPE, 1);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_initializer(&b, &t, &arena));
  CHECK_MSG("tensor \"w\": dimension 0 is negative (-1)");
  onnx_arena_free(&arena);

  b = mb_new();
  mb_str(&b, MB_TENSOR_NAME, "w");
  for (int i = 0; i < 3; i++) mb_int(&b, MB_TENSOR_DIMS, 1ll << 40);
  mb_int(&b, MB_TENSOR_DATA_TYPE, 1);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_initializer(&b, &t, &arena));
  CHECK_MSG("element count overflows");
  onnx_arena_free(&arena);

  /* A claim of a billion elements with no data allocates nothing. */
  b = mb_new();
  mb_str(&b, MB_TENSOR_NAME, "w");
  mb_int(&b, MB_TENSOR_DIMS, 1000000000);
  mb_int(&b, MB_TENSOR_DATA_TYPE, 1);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_initializer(&b, &t, &arena));
  CHECK_MSG("tensor \"w\": no data for 1000000000 elements");
  onnx_arena_free(&arena);

  b = mb_new();
  mb_str(&b, MB_TENSOR_NAME, "w");
  mb_int(&b, MB_TENSOR_DIMS, 3);
  mb_int(&b, MB_TENSOR_DATA_TYPE, 1);
  mb_packed(&b, MB_TENSOR_INT64_DATA, (const int64_t[]){1, 2, 3}, 3);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_initializer(&b, &t, &arena));
  CHECK_MSG("int64_data given for element type float32");
  onnx_arena_free(&arena);

  b = mb_new();
  mb_int(&b, MB_TENSOR_DIMS, 3);
  mb_int(&b, MB_TENSOR_DATA_TYPE, 7);
  mb_packed(&b, MB_TENSOR_INT64_DATA, (const int64_t[]){1, 2}, 2);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_initializer(&b, &t, &arena));
  CHECK_MSG("int64_data has 2 elements, expected 3");
  onnx_arena_free(&arena);

  b = mb_new();
  mb_int(&b, MB_TENSOR_DIMS, 1);
  mb_int(&b, MB_TENSOR_DATA_TYPE, 3);
  mb_int(&b, MB_TENSOR_INT32_DATA, 200);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_initializer(&b, &t, &arena));
  CHECK_MSG("int32_data element 0 (200) does not fit element type int8");
  onnx_arena_free(&arena);

  b = mb_tensor_raw("w", 1, (const int64_t[]){1}, 1, "abcd", 4);
  mb_packed(&b, MB_TENSOR_FLOAT_DATA, NULL, 0);
  mb_float(&b, MB_TENSOR_FLOAT_DATA, 1.0f);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_initializer(&b, &t, &arena));
  CHECK_MSG("more than one of raw_data, external data and the typed *_data fields");
  onnx_arena_free(&arena);

  b = mb_new();
  mb_str(&b, MB_TENSOR_NAME, "w");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_initializer(&b, &t, &arena));
  CHECK_MSG("tensor \"w\": data_type is missing");
  onnx_arena_free(&arena);

  b = mb_new();
  mb_int(&b, MB_TENSOR_DATA_TYPE, 1);
  mb_int(&b, MB_TENSOR_DATA_LOCATION, 7);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_initializer(&b, &t, &arena));
  CHECK_MSG("data_location 7");
  onnx_arena_free(&arena);

  b = mb_new();
  mb_str(&b, MB_TENSOR_NAME, "a\0b");
  mb_bytes(&b, MB_TENSOR_NAME, "a\0b", 3);
  mb_int(&b, MB_TENSOR_DATA_TYPE, 1);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_initializer(&b, &t, &arena));
  CHECK_MSG("tensor name contains a NUL byte");
  onnx_arena_free(&arena);
}

TEST(unsupported_tensor_features_are_named) {
  onnx_arena arena;
  onnx_tensor t;
  mb b = mb_new();
  mb_str(&b, MB_TENSOR_NAME, "s");
  mb_int(&b, MB_TENSOR_DATA_TYPE, 8);
  mb_str(&b, MB_TENSOR_STRING_DATA, "hello");
  CHECK_STATUS(STRAND_E_UNSUPPORTED, parse_initializer(&b, &t, &arena));
  CHECK_MSG("tensor \"s\": element type string (8) is not supported");
  onnx_arena_free(&arena);

  b = mb_new();
  mb_int(&b, MB_TENSOR_DATA_TYPE, 14);
  CHECK_STATUS(STRAND_E_UNSUPPORTED, parse_initializer(&b, &t, &arena));
  CHECK_MSG("element type complex64 (14) is not supported");
  onnx_arena_free(&arena);

  b = mb_new();
  mb_int(&b, MB_TENSOR_DATA_TYPE, 1);
  mb seg = mb_new();
  mb_int(&seg, 1, 0);
  mb_msg(&b, MB_TENSOR_SEGMENT, &seg);
  CHECK_STATUS(STRAND_E_UNSUPPORTED, parse_initializer(&b, &t, &arena));
  CHECK_MSG("segmented tensors");
  onnx_arena_free(&arena);

  b = mb_new();
  for (int i = 0; i < 17; i++) mb_int(&b, MB_TENSOR_DIMS, 1);
  mb_int(&b, MB_TENSOR_DATA_TYPE, 1);
  CHECK_STATUS(STRAND_E_UNSUPPORTED, parse_initializer(&b, &t, &arena));
  CHECK_MSG("rank 17 is more than strand's limit of 16");
  onnx_arena_free(&arena);

  /* External data in a model loaded from a buffer has nowhere to come from. */
  b = mb_new();
  mb_str(&b, MB_TENSOR_NAME, "w");
  mb_int(&b, MB_TENSOR_DATA_TYPE, 1);
  mb e = mb_new();
  mb_str(&e, 1, "location");
  mb_str(&e, 2, "weights.bin");
  mb_msg(&b, MB_TENSOR_EXTERNAL_DATA, &e);
  mb_int(&b, MB_TENSOR_DATA_LOCATION, 1);
  CHECK_STATUS(STRAND_E_UNSUPPORTED, parse_initializer(&b, &t, &arena));
  CHECK_MSG("tensor \"w\": external data (\"weights.bin\") needs a model loaded from a path");
  onnx_arena_free(&arena);
}

TEST(value_types_other_than_tensors_are_refused) {
  static const struct {
    uint32_t field;
    const char *name;
  } kinds[] = {{4, "sequence"}, {5, "map"}, {9, "optional"}, {8, "sparse tensor"},
               {7, "opaque"}};
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    mb g = mb_new();
    mb vi = mb_new(), type = mb_new(), inner = mb_new();
    mb_str(&vi, 1, "s");
    mb_msg(&type, kinds[k].field, &inner);
    mb_msg(&vi, 2, &type);
    mb_msg(&g, MB_GRAPH_INPUT, &vi);
    CHECK_STATUS(STRAND_E_UNSUPPORTED, parse_graph_only(&g));
    char expected[64];
    snprintf(expected, sizeof expected, "input 0 (\"s\"): %s types are not supported",
             kinds[k].name);
    CHECK_MSG(expected);
  }
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1");
  CHECK_STATUS(STRAND_E_UNSUPPORTED, parse_graph_only(&g));
  CHECK_MSG("input 0 (\"x\"): rank 17 is more than strand's limit of 16");

  g = mb_new();
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 8, "2");
  CHECK_STATUS(STRAND_E_UNSUPPORTED, parse_graph_only(&g));
  CHECK_MSG("output 0 (\"y\"): element type string (8) is not supported");

  g = mb_new();
  mb vi = mb_new(), type = mb_new(), tensor = mb_new(), shape = mb_new(), dim = mb_new();
  mb_str(&vi, 1, "x");
  mb_int(&dim, 1, -3);
  mb_msg(&shape, 1, &dim);
  mb_int(&tensor, 1, 1);
  mb_msg(&tensor, 2, &shape);
  mb_msg(&type, 1, &tensor);
  mb_msg(&vi, 2, &type);
  mb_msg(&g, MB_GRAPH_INPUT, &vi);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse_graph_only(&g));
  CHECK_MSG("input 0 (\"x\"): dimension 0: dim_value -3 at byte");
}

TEST(graph_level_errors) {
  mb g = mb_new();
  mb sp = mb_new();
  mb_msg(&g, MB_GRAPH_SPARSE_INITIALIZER, &sp);
  mb_str(&g, MB_GRAPH_NAME, "main");
  CHECK_STATUS(STRAND_E_UNSUPPORTED, parse_graph_only(&g));
  CHECK_MSG("graph \"main\": sparse initializers (sparse_initializer) are not supported");

  mb m = mb_new();
  mb_int(&m, MB_MODEL_IR_VERSION, 8);
  onnx_arena arena;
  onnx_model *model;
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse(&m, &arena, &model));
  CHECK_MSG("the model has no graph");
  onnx_arena_free(&arena);

  g = mb_new();
  mb g2 = mb_new();
  m = mb_model(17, &g);
  mb_msg(&m, MB_MODEL_GRAPH, &g2);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse(&m, &arena, &model));
  CHECK_MSG("the model has 2 graph fields");
  onnx_arena_free(&arena);

  g = mb_new();
  m = mb_model(17, &g);
  mb o = mb_new();
  mb_str(&o, 1, "ai.onnx");
  mb_int(&o, 2, 11);
  mb_msg(&m, MB_MODEL_OPSET_IMPORT, &o);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse(&m, &arena, &model));
  CHECK_MSG("opset_import lists domain \"ai.onnx\" twice");
  onnx_arena_free(&arena);

  m = mb_new();
  mb_str(&m, MB_MODEL_IR_VERSION, "not a varint");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, parse(&m, &arena, &model));
  CHECK_MSG("field ir_version at byte 0 is length-delimited, expected varint");
  onnx_arena_free(&arena);
}

TEST(empty_and_garbage_buffers) {
  strand_model *model;
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, strand_model_load_buffer("", 0, &model));
  CHECK_MSG("the model has no graph");
  const char text[] = "this is not a model at all, just some text";
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, strand_model_load_buffer(text, sizeof text - 1, &model));
}
