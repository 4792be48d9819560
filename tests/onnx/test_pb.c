/* The protobuf wire reader: varints, wire types, truncation at every byte,
 * corruption of every byte, and the nesting limit. */
#include "model_builder.h"
#include "onnx/onnx_internal.h"
#include "test.h"

static bool varint(const uint8_t *bytes, size_t n, uint64_t *out, size_t *used) {
  const uint8_t *p = bytes;
  bool ok = pb_decode_varint(&p, bytes + n, out);
  *used = (size_t)(p - bytes);
  return ok;
}

TEST(varints_decode_at_their_limits) {
  uint64_t v;
  size_t used;
  CHECK(varint((const uint8_t[]){0x00}, 1, &v, &used) && v == 0 && used == 1);
  CHECK(varint((const uint8_t[]){0x7f}, 1, &v, &used) && v == 127);
  CHECK(varint((const uint8_t[]){0x80, 0x01}, 2, &v, &used) && v == 128 && used == 2);
  CHECK(varint((const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0x0f}, 5, &v, &used) && v == UINT32_MAX);
  const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  CHECK(varint(max, 10, &v, &used) && v == UINT64_MAX && used == 10);
  /* Non-minimal encodings are valid protobuf. */
  CHECK(varint((const uint8_t[]){0x81, 0x80, 0x00}, 3, &v, &used) && v == 1 && used == 3);
}

TEST(varints_refuse_overflow_and_truncation) {
  uint64_t v = 7;
  size_t used;
  const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
  CHECK(!varint(over, 10, &v, &used) && used == 0 && v == 7);
  const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
  CHECK(!varint(eleven, 11, &v, &used));
  CHECK(!varint((const uint8_t[]){0x80}, 1, &v, &used));
  CHECK(!varint((const uint8_t[]){0x00}, 0, &v, &used));
}

TEST(fields_of_every_wire_type_are_read) {
  mb b = mb_new();
  mb_int(&b, 1, 300);
  mb_tag(&b, 2, PB_WIRE_I64);
  mb_raw(&b, (const uint8_t[]){1, 2, 3, 4, 5, 6, 7, 8}, 8);
  mb_str(&b, 3, "abc");
  mb_fixed32(&b, 5, 0xdeadbeef);
  mb_int(&b, 536870911, 1); /* the largest field number */
  pb_reader r;
  pb_reader_init(&r, b.data, b.size);
  pb_field f;
  strand_status st;
  REQUIRE(pb_next(&r, &f, &st));
  CHECK(f.number == 1 && f.wire == PB_WIRE_VARINT && f.value == 300 && f.offset == 0);
  REQUIRE(pb_next(&r, &f, &st));
  CHECK(f.number == 2 && f.wire == PB_WIRE_I64 && f.value == 0x0807060504030201ull);
  REQUIRE(pb_next(&r, &f, &st));
  CHECK(f.number == 3 && f.size == 3 && memcmp(f.data, "abc", 3) == 0);
  REQUIRE(pb_next(&r, &f, &st));
  CHECK(f.number == 5 && f.value == 0xdeadbeef);
  REQUIRE(pb_next(&r, &f, &st));
  CHECK(f.number == 536870911);
  CHECK(!pb_next(&r, &f, &st) && st == STRAND_OK);
  mb_free(&b);
}

static strand_status first_field_status(const uint8_t *bytes, size_t n) {
  pb_reader r;
  pb_reader_init(&r, bytes, n);
  pb_field f;
  strand_status st;
  while (pb_next(&r, &f, &st)) {
  }
  return st;
}

TEST(bad_wire_types_and_field_numbers_are_malformed) {
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, first_field_status((const uint8_t[]){0x0b}, 1));
  CHECK_MSG("group wire types");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, first_field_status((const uint8_t[]){0x0c}, 1));
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, first_field_status((const uint8_t[]){0x0e, 0}, 2));
  CHECK_MSG("invalid wire type 6");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, first_field_status((const uint8_t[]){0x0f, 0}, 2));
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, first_field_status((const uint8_t[]){0x00, 0}, 2));
  CHECK_MSG("invalid field number 0 at byte 0");
  /* A tag beyond 2^29 - 1. */
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL,
               first_field_status((const uint8_t[]){0x80, 0x80, 0x80, 0x80, 0x10, 0}, 6));
  CHECK_MSG("invalid field number");
}

TEST(truncated_fields_name_their_byte) {
  /* field 1 varint, then field 3 claiming 10 bytes with 3 present */
  const uint8_t len[] = {0x08, 0x01, 0x1a, 0x0a, 'a', 'b', 'c'};
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, first_field_status(len, sizeof len));
  CHECK_MSG("field 3 at byte 2: truncated: 10 bytes claimed, 3 present");
  const uint8_t fixed[] = {0x0d, 1, 2};
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, first_field_status(fixed, sizeof fixed));
  CHECK_MSG("truncated 4-byte value");
  const uint8_t value[] = {0x08, 0x80};
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, first_field_status(value, sizeof value));
  CHECK_MSG("truncated varint");
  const uint8_t huge_length[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, first_field_status(huge_length, sizeof huge_length));
  CHECK_MSG("claimed");
}

TEST(repeated_fields_count_packed_and_unpacked) {
  mb b = mb_new();
  mb_packed(&b, 1, (const int64_t[]){1, 300, -1}, 3);
  mb_int(&b, 1, 5);
  pb_reader r;
  pb_reader_init(&r, b.data, b.size);
  pb_field f;
  strand_status st;
  size_t count = 0;
  uint64_t values[8];
  size_t n = 0;
  while (pb_next(&r, &f, &st)) {
    CHECK_OK(pb_repeated_count(&f, PB_WIRE_VARINT, "ints", &count));
    pb_elements it;
    pb_elements_init(&it, &f, PB_WIRE_VARINT);
    while (n < 8 && pb_elements_next(&it, &values[n])) n++;
  }
  CHECK(count == 4 && n == 4);
  CHECK(values[0] == 1 && values[1] == 300 && (int64_t)values[2] == -1 && values[3] == 5);
  mb_free(&b);

  /* a packed varint cut in the middle, and fixed32 elements not whole */
  pb_field bad = {1, PB_WIRE_LEN, 7, 0, (const uint8_t[]){0x01, 0x80}, 2};
  count = 0;
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, pb_repeated_count(&bad, PB_WIRE_VARINT, "ints", &count));
  CHECK_MSG("truncated varint in packed field at byte 7");
  pb_field odd = {7, PB_WIRE_LEN, 9, 0, (const uint8_t[]){0, 0, 0, 0, 0}, 5};
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, pb_repeated_count(&odd, PB_WIRE_I32, "floats", &count));
  CHECK_MSG("truncated packed field at byte 9");
  pb_field wrong = {7, PB_WIRE_I64, 3, 0, NULL, 0};
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, pb_repeated_count(&wrong, PB_WIRE_I32, "floats", &count));
  CHECK_MSG("field floats at byte 3 is 64-bit, expected 32-bit");
}

TEST(int32_fields_are_range_checked) {
  pb_field f = {2, PB_WIRE_VARINT, 0, (uint64_t)(int64_t)-5, NULL, 0};
  int32_t v;
  CHECK_OK(pb_get_int32(&f, "data_type", &v));
  CHECK(v == -5);
  f.value = (uint64_t)1 << 40;
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, pb_get_int32(&f, "data_type", &v));
  CHECK_MSG("out of range");
  f.wire = PB_WIRE_LEN;
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, pb_get_int32(&f, "data_type", &v));
  CHECK_MSG("field data_type at byte 0 is length-delimited, expected varint");
}

/* A model that exercises most of the parser: attributes of every type,
 * typed and raw tensors, value_info with symbolic dims, a subgraph. */
static mb rich_model(void) {
  mb g = mb_new();
  mb_str(&g, MB_GRAPH_NAME, "rich");
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,4");
  mb_value_info(&g, MB_GRAPH_INPUT, "cond", 9, "");
  float w[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  mb_initializer_float(&g, "w", (const int64_t[]){3, 4}, 2, w, 12);
  mb n = mb_node("gemm", "Gemm", "x,w", "y");
  mb_attr_int(&n, "transB", 1);
  mb_attr_float(&n, "alpha", 1.0f);
  mb_attr_floats(&n, "unused_floats", (const float[]){1, 2}, 2);
  mb_attr_ints(&n, "unused_ints", (const int64_t[]){1, -2, 3}, 3);
  mb_attr_string(&n, "unused_string", "text");
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb then = mb_new(), otherwise = mb_new();
  mb_str(&then, MB_GRAPH_NAME, "then");
  mb_add_node(&then, "t", "Relu", "y", "t_out");
  mb_value_info(&then, MB_GRAPH_OUTPUT, "t_out", 1, NULL);
  mb_str(&otherwise, MB_GRAPH_NAME, "else");
  mb_add_node(&otherwise, "e", "Neg", "y", "e_out");
  mb_value_info(&otherwise, MB_GRAPH_OUTPUT, "e_out", 1, NULL);
  n = mb_node("if", "If", "cond", "z");
  mb_attr_graph(&n, "then_branch", &then);
  mb_attr_graph(&n, "else_branch", &otherwise);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb t = mb_tensor_int64(NULL, (const int64_t[]){2}, 1, (const int64_t[]){-1, 12}, 2);
  n = mb_node("c", "Constant", "", "shape");
  mb_attr_tensor(&n, "value", &t);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "z", 1, "batch,3");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "shape", 7, NULL);
  return mb_model(17, &g);
}

static void check_clean(void) {
  strand_memory_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_memory_get_stats(&stats));
  CHECK(stats.total_live_bytes == 0 && stats.total_live_objects == 0);
}

TEST(rich_model_loads) {
  mb m = rich_model();
  strand_model *model;
  CHECK_OK(strand_model_load_buffer(m.data, m.size, &model));
  strand_model_release(model);
  mb_free(&m);
}

TEST(truncation_at_every_byte_fails_cleanly) {
  mb m = rich_model();
  size_t ok = 0;
  for (size_t n = 0; n < m.size; n++) {
    strand_model *model = NULL;
    strand_status st = strand_model_load_buffer(m.data, n, &model);
    if (st == STRAND_OK) {
      ok++; /* a cut between top-level fields can still be a valid message */
      strand_model_release(model);
    } else if (st != STRAND_E_MALFORMED_MODEL) {
      test_fail(__FILE__, __LINE__, "prefix %zu: %s: %s", n, strand_status_name(st),
                strand_errmsg());
    }
    check_clean();
  }
  CHECK(ok < m.size / 4);
  mb_free(&m);
}

TEST(corruption_of_every_byte_never_crashes) {
  mb m = rich_model();
  uint8_t *copy = malloc(m.size);
  REQUIRE(copy);
  static const uint8_t patterns[] = {0x00, 0xff, 0x80, 0x7f, 0x02};
  for (size_t p = 0; p < sizeof patterns; p++)
    for (size_t i = 0; i < m.size; i++) {
      memcpy(copy, m.data, m.size);
      copy[i] = patterns[p];
      strand_model *model = NULL;
      strand_status st = strand_model_load_buffer(copy, m.size, &model);
      if (st == STRAND_OK) strand_model_release(model);
      else CHECK(st == STRAND_E_MALFORMED_MODEL || st == STRAND_E_UNSUPPORTED);
      check_clean();
    }
  free(copy);
  mb_free(&m);
}

/* A chain of graphs, each holding the next in a custom op's attribute. */
static mb nested_model(int depth) {
  mb inner = mb_new();
  mb_str(&inner, MB_GRAPH_NAME, "leaf");
  for (int d = depth; d > 0; d--) {
    mb outer = mb_new();
    char name[32];
    snprintf(name, sizeof name, "level%d", d - 1);
    mb_str(&outer, MB_GRAPH_NAME, name);
    mb n = mb_node(NULL, "Wrap", "", "");
    mb_str(&n, MB_NODE_DOMAIN, "test.nesting");
    mb_attr_graph(&n, "body", &inner);
    mb_msg(&outer, MB_GRAPH_NODE, &n);
    inner = outer;
  }
  return mb_model(17, &inner);
}

TEST(nesting_is_bounded) {
  mb ok = nested_model(ONNX_MAX_DEPTH - 1);
  strand_model *model;
  CHECK_OK(strand_model_load_buffer(ok.data, ok.size, &model));
  strand_model_release(model);
  mb_free(&ok);
  mb deep = nested_model(ONNX_MAX_DEPTH);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, strand_model_load_buffer(deep.data, deep.size, &model));
  CHECK_MSG("graphs nested more than 64 deep");
  CHECK_MSG("graph \"level0\" node 0 (Wrap): attribute \"body\"");
  mb_free(&deep);
  mb hostile = nested_model(5000);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL,
               strand_model_load_buffer(hostile.data, hostile.size, &model));
  mb_free(&hostile);
}
