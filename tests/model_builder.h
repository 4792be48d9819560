/*
 * model_builder.h — a tiny protobuf writer for tests: builds ONNX models
 * (and deliberately broken ones) in memory, field by field.
 *
 * Header-only and independent of strand (plain malloc, public types only),
 * so API tests can use it too. Out of memory aborts: it is test code.
 *
 *   mb g = mb_new();
 *   mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,4");
 *   mb n = mb_node("relu", "Relu", "x", "y");
 *   mb_msg(&g, MB_GRAPH_NODE, &n);             (embeds n and frees it)
 *   mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
 *   mb m = mb_model(13, &g);                   (embeds g and frees it)
 *   ... strand_model_load_buffer(m.data, m.size, &model); mb_free(&m);
 */
#ifndef STRAND_TEST_MODEL_BUILDER_H
#define STRAND_TEST_MODEL_BUILDER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Field numbers of onnx.proto used by tests. */
enum {
  MB_MODEL_IR_VERSION = 1, MB_MODEL_PRODUCER_NAME = 2, MB_MODEL_PRODUCER_VERSION = 3,
  MB_MODEL_GRAPH = 7, MB_MODEL_OPSET_IMPORT = 8, MB_MODEL_FUNCTIONS = 25,
  MB_GRAPH_NODE = 1, MB_GRAPH_NAME = 2, MB_GRAPH_INITIALIZER = 5, MB_GRAPH_INPUT = 11,
  MB_GRAPH_OUTPUT = 12, MB_GRAPH_VALUE_INFO = 13, MB_GRAPH_SPARSE_INITIALIZER = 15,
  MB_NODE_INPUT = 1, MB_NODE_OUTPUT = 2, MB_NODE_NAME = 3, MB_NODE_OP_TYPE = 4,
  MB_NODE_ATTRIBUTE = 5, MB_NODE_DOMAIN = 7,
  MB_ATTR_NAME = 1, MB_ATTR_F = 2, MB_ATTR_I = 3, MB_ATTR_S = 4, MB_ATTR_T = 5, MB_ATTR_G = 6,
  MB_ATTR_FLOATS = 7, MB_ATTR_INTS = 8, MB_ATTR_STRINGS = 9, MB_ATTR_TENSORS = 10,
  MB_ATTR_GRAPHS = 11, MB_ATTR_TYPE = 20, MB_ATTR_REF_ATTR_NAME = 21,
  MB_TENSOR_DIMS = 1, MB_TENSOR_DATA_TYPE = 2, MB_TENSOR_SEGMENT = 3, MB_TENSOR_FLOAT_DATA = 4,
  MB_TENSOR_INT32_DATA = 5, MB_TENSOR_STRING_DATA = 6, MB_TENSOR_INT64_DATA = 7,
  MB_TENSOR_NAME = 8, MB_TENSOR_RAW_DATA = 9, MB_TENSOR_DOUBLE_DATA = 10,
  MB_TENSOR_UINT64_DATA = 11, MB_TENSOR_EXTERNAL_DATA = 13, MB_TENSOR_DATA_LOCATION = 14
};

/* AttributeProto types. */
enum {
  MB_FLOAT = 1, MB_INT = 2, MB_STRING = 3, MB_TENSOR = 4, MB_GRAPH = 5, MB_FLOATS = 6,
  MB_INTS = 7, MB_STRINGS = 8, MB_TENSORS = 9, MB_GRAPHS = 10, MB_SPARSE_TENSOR = 11
};

typedef struct mb {
  uint8_t *data;
  size_t size, cap;
} mb;

static inline mb mb_new(void) { return (mb){NULL, 0, 0}; }

static inline void mb_free(mb *b) {
  free(b->data);
  *b = mb_new();
}

static inline void mb_raw(mb *b, const void *p, size_t n) {
  if (b->size + n > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->size + n) cap *= 2;
    uint8_t *grown = realloc(b->data, cap);
    if (!grown) abort();
    b->data = grown;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->size, p, n);
  b->size += n;
}

static inline void mb_varint(mb *b, uint64_t v) {
  uint8_t buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  buf[n++] = (uint8_t)v;
  mb_raw(b, buf, n);
}

static inline void mb_tag(mb *b, uint32_t field, unsigned wire) {
  mb_varint(b, (uint64_t)field << 3 | wire);
}

static inline void mb_int(mb *b, uint32_t field, int64_t v) {
  mb_tag(b, field, 0);
  mb_varint(b, (uint64_t)v);
}

static inline void mb_bytes(mb *b, uint32_t field, const void *p, size_t n) {
  mb_tag(b, field, 2);
  mb_varint(b, n);
  mb_raw(b, p, n);
}

static inline void mb_str(mb *b, uint32_t field, const char *s) { mb_bytes(b, field, s, strlen(s)); }

static inline void mb_fixed32(mb *b, uint32_t field, uint32_t v) {
  uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  mb_tag(b, field, 5);
  mb_raw(b, le, 4);
}

static inline void mb_float(mb *b, uint32_t field, float f) {
  uint32_t v;
  memcpy(&v, &f, 4);
  mb_fixed32(b, field, v);
}

/* Embeds `child` as a length-delimited field and frees it. */
static inline void mb_msg(mb *b, uint32_t field, mb *child) {
  mb_bytes(b, field, child->data, child->size);
  mb_free(child);
}

/* Packed repeated varints. */
static inline void mb_packed(mb *b, uint32_t field, const int64_t *v, size_t n) {
  mb body = mb_new();
  for (size_t i = 0; i < n; i++) mb_varint(&body, (uint64_t)v[i]);
  mb_msg(b, field, &body);
}

/* Calls fn(item, len) for each comma-separated item of `csv` ("" items
 * included: "x,,b" is three items). NULL or "" gives none. */
#define MB_EACH_CSV(csv, item, len, BODY)                                      \
  do {                                                                         \
    const char *p_ = (csv);                                                    \
    if (p_ && *p_)                                                             \
      for (;;) {                                                               \
        const char *e_ = strchr(p_, ',');                                      \
        size_t len = e_ ? (size_t)(e_ - p_) : strlen(p_);                      \
        const char *item = p_;                                                 \
        BODY;                                                                  \
        if (!e_) break;                                                        \
        p_ = e_ + 1;                                                           \
      }                                                                        \
  } while (0)

/* A ValueInfoProto with a tensor type. `dims`: NULL for no shape, "" for a
 * scalar, else comma-separated sizes or names ("batch,3,?": ? is a dim
 * with neither value nor name). elem 0 leaves elem_type out. */
static inline void mb_value_info(mb *b, uint32_t field, const char *name, int elem,
                                 const char *dims) {
  mb vi = mb_new(), type = mb_new(), tensor = mb_new();
  mb_str(&vi, 1, name);
  if (elem) mb_int(&tensor, 1, elem);
  if (dims) {
    mb shape = mb_new();
    MB_EACH_CSV(dims, item, len, {
      mb dim = mb_new();
      if (len == 1 && item[0] == '?') {
      } else if (item[0] >= '0' && item[0] <= '9') {
        mb_int(&dim, 1, strtoll(item, NULL, 10));
      } else {
        mb_bytes(&dim, 2, item, len);
      }
      mb_msg(&shape, 1, &dim);
    });
    mb_msg(&tensor, 2, &shape);
  }
  mb_msg(&type, 1, &tensor);
  mb_msg(&vi, 2, &type);
  mb_msg(b, field, &vi);
}

/* TensorProto bodies. */
static inline mb mb_tensor_raw(const char *name, int dtype, const int64_t *dims, size_t rank,
                               const void *raw, size_t n) {
  mb t = mb_new();
  for (size_t i = 0; i < rank; i++) mb_int(&t, MB_TENSOR_DIMS, dims[i]);
  mb_int(&t, MB_TENSOR_DATA_TYPE, dtype);
  if (name) mb_str(&t, MB_TENSOR_NAME, name);
  mb_bytes(&t, MB_TENSOR_RAW_DATA, raw, n);
  return t;
}

static inline mb mb_tensor_int64(const char *name, const int64_t *dims, size_t rank,
                                 const int64_t *v, size_t n) {
  mb t = mb_new();
  for (size_t i = 0; i < rank; i++) mb_int(&t, MB_TENSOR_DIMS, dims[i]);
  mb_int(&t, MB_TENSOR_DATA_TYPE, 7);
  if (name) mb_str(&t, MB_TENSOR_NAME, name);
  mb_packed(&t, MB_TENSOR_INT64_DATA, v, n);
  return t;
}

static inline void mb_initializer_float(mb *g, const char *name, const int64_t *dims, size_t rank,
                                        const float *v, size_t n) {
  mb t = mb_tensor_raw(name, 1, dims, rank, v, n * sizeof *v);
  mb_msg(g, MB_GRAPH_INITIALIZER, &t);
}

static inline void mb_initializer_int64(mb *g, const char *name, const int64_t *dims, size_t rank,
                                        const int64_t *v, size_t n) {
  mb t = mb_tensor_int64(name, dims, rank, v, n);
  mb_msg(g, MB_GRAPH_INITIALIZER, &t);
}

/* A NodeProto body: inputs and outputs comma-separated ("" items are
 * absent optional ones); name may be NULL. Add attributes, then mb_msg it
 * into a graph as MB_GRAPH_NODE. */
static inline mb mb_node(const char *name, const char *op, const char *inputs,
                         const char *outputs) {
  mb n = mb_new();
  MB_EACH_CSV(inputs, item, len, mb_bytes(&n, MB_NODE_INPUT, item, len));
  MB_EACH_CSV(outputs, item, len, mb_bytes(&n, MB_NODE_OUTPUT, item, len));
  if (name) mb_str(&n, MB_NODE_NAME, name);
  mb_str(&n, MB_NODE_OP_TYPE, op);
  return n;
}

/* Adds a simple node to graph g in one call. */
static inline void mb_add_node(mb *g, const char *name, const char *op, const char *inputs,
                               const char *outputs) {
  mb n = mb_node(name, op, inputs, outputs);
  mb_msg(g, MB_GRAPH_NODE, &n);
}

static inline mb mb_attr(const char *name, int type) {
  mb a = mb_new();
  mb_str(&a, MB_ATTR_NAME, name);
  if (type) mb_int(&a, MB_ATTR_TYPE, type);
  return a;
}

static inline void mb_attr_int(mb *node, const char *name, int64_t v) {
  mb a = mb_attr(name, MB_INT);
  mb_int(&a, MB_ATTR_I, v);
  mb_msg(node, MB_NODE_ATTRIBUTE, &a);
}

static inline void mb_attr_float(mb *node, const char *name, float v) {
  mb a = mb_attr(name, MB_FLOAT);
  mb_float(&a, MB_ATTR_F, v);
  mb_msg(node, MB_NODE_ATTRIBUTE, &a);
}

static inline void mb_attr_string(mb *node, const char *name, const char *v) {
  mb a = mb_attr(name, MB_STRING);
  mb_str(&a, MB_ATTR_S, v);
  mb_msg(node, MB_NODE_ATTRIBUTE, &a);
}

static inline void mb_attr_ints(mb *node, const char *name, const int64_t *v, size_t n) {
  mb a = mb_attr(name, MB_INTS);
  mb_packed(&a, MB_ATTR_INTS, v, n);
  mb_msg(node, MB_NODE_ATTRIBUTE, &a);
}

static inline void mb_attr_floats(mb *node, const char *name, const float *v, size_t n) {
  mb a = mb_attr(name, MB_FLOATS);
  mb body = mb_new();
  mb_raw(&body, v, n * sizeof *v);
  mb_msg(&a, MB_ATTR_FLOATS, &body);
  mb_msg(node, MB_NODE_ATTRIBUTE, &a);
}

/* Embeds (and frees) a TensorProto body / GraphProto body. */
static inline void mb_attr_tensor(mb *node, const char *name, mb *tensor) {
  mb a = mb_attr(name, MB_TENSOR);
  mb_msg(&a, MB_ATTR_T, tensor);
  mb_msg(node, MB_NODE_ATTRIBUTE, &a);
}

static inline void mb_attr_graph(mb *node, const char *name, mb *graph) {
  mb a = mb_attr(name, MB_GRAPH);
  mb_msg(&a, MB_ATTR_G, graph);
  mb_msg(node, MB_NODE_ATTRIBUTE, &a);
}

/* A ModelProto: IR version 8, producer "strand-tests" "1.0", the default
 * domain at `opset`, and the graph (embedded and freed). */
static inline mb mb_model(int64_t opset, mb *graph) {
  mb m = mb_new();
  mb_int(&m, MB_MODEL_IR_VERSION, 8);
  mb_str(&m, MB_MODEL_PRODUCER_NAME, "strand-tests");
  mb_str(&m, MB_MODEL_PRODUCER_VERSION, "1.0");
  if (opset > 0) {
    mb o = mb_new();
    mb_str(&o, 1, "");
    mb_int(&o, 2, opset);
    mb_msg(&m, MB_MODEL_OPSET_IMPORT, &o);
  }
  mb_msg(&m, MB_MODEL_GRAPH, graph);
  return m;
}

/* Writes b to path; returns 0 on success. */
static inline int mb_write_file(const mb *b, const char *path) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t n = b->size ? fwrite(b->data, 1, b->size, f) : 0;
  return (fclose(f) != 0 || n != b->size) ? -1 : 0;
}

#endif /* STRAND_TEST_MODEL_BUILDER_H */
