/*
 * onnx_model.c — ModelProto, GraphProto, NodeProto, AttributeProto and
 * ValueInfoProto into the parse tree of onnx_internal.h.
 *
 * Each message is read in two passes: the first checks the wire structure
 * and counts repeated fields, the second allocates exactly those counts and
 * fills them. Counts therefore never exceed what the bytes hold. Graph
 * nesting (If/Loop/Scan bodies) is bounded by ONNX_MAX_DEPTH. Unknown fields
 * are skipped, as protobuf requires; features strand does not implement
 * (sparse tensors, non-tensor types, attribute references) are refused with
 * STRAND_E_UNSUPPORTED naming them.
 */
#include "onnx/onnx_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers ---------------------------------------------------- */

/* A LEN field as an arena string; names may not hold NUL bytes. */
static strand_status read_string(onnx_parser *p, const pb_field *f, const char *name, char **out) {
  strand_status st = pb_expect(f, PB_WIRE_LEN, name);
  if (st) return st;
  if (memchr(f->data, 0, f->size))
    return strand__fail(STRAND_E_MALFORMED_MODEL, "%s at byte %zu contains a NUL byte", name,
                        f->offset);
  return onnx_arena_string(p->arena, f->data, f->size, out);
}

static const char *normal_domain(const char *domain) {
  return strcmp(domain, "ai.onnx") == 0 ? "" : domain;
}

const char *onnx_attr_type_name(int type) {
  static const char *const names[] = {
      "UNDEFINED", "FLOAT",  "INT",     "STRING",        "TENSOR",         "GRAPH",
      "FLOATS",    "INTS",   "STRINGS", "TENSORS",       "GRAPHS",         "SPARSE_TENSOR",
      "SPARSE_TENSORS", "TYPE_PROTO", "TYPE_PROTOS"};
  if (type >= 0 && (size_t)type < sizeof names / sizeof names[0]) return names[type];
  return "UNKNOWN";
}

static strand_status parse_graph(onnx_parser *p, const pb_reader *r, onnx_graph **out);

/* "graph "name" " for messages; "" for an unnamed graph. */
static const char *graph_label(const char *name, char *buf, size_t size) {
  if (!name[0]) return "";
  snprintf(buf, size, "graph \"%s\" ", name);
  return buf;
}

/* ---- ValueInfoProto / TypeProto ---------------------------------------- */

static strand_status parse_dim(onnx_parser *p, const pb_reader *r, onnx_dim *out) {
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  out->value = -1;
  out->param = NULL;
  while (pb_next(&in, &f, &st)) {
    if (f.number == 1) {
      int64_t v;
      st = pb_get_int64(&f, "dim_value", &v);
      if (st) return st;
      if (v < 0)
        return strand__fail(STRAND_E_MALFORMED_MODEL, "dim_value %lld at byte %zu is negative",
                            (long long)v, f.offset);
      out->value = v;
      out->param = NULL;
    } else if (f.number == 2) {
      char *param;
      st = read_string(p, &f, "dim_param", &param);
      if (st) return st;
      out->param = param[0] ? param : NULL;
      out->value = -1;
    }
  }
  return st;
}

static strand_status parse_shape(onnx_parser *p, const pb_reader *r, onnx_value_info *out) {
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  size_t rank = 0;
  while (pb_next(&in, &f, &st))
    if (f.number == 1) {
      st = pb_expect(&f, PB_WIRE_LEN, "dim");
      if (st) return st;
      rank++;
    }
  if (st) return st;
  if (rank > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_UNSUPPORTED, "rank %zu is more than strand's limit of %d", rank,
                        STRAND_MAX_RANK);
  onnx_dim *dims = NULL;
  if (rank) {
    st = onnx_arena_array(p->arena, rank, sizeof *dims, (void **)&dims);
    if (st) return st;
  }
  size_t i = 0;
  in = *r;
  while (pb_next(&in, &f, &st))
    if (f.number == 1) {
      pb_reader sub = pb_reader_sub(&in, &f);
      st = parse_dim(p, &sub, &dims[i]);
      if (st) return strand__fail_context(st, "dimension %zu", i);
      i++;
    }
  if (st) return st;
  out->has_shape = true;
  out->rank = rank;
  out->dims = dims;
  return STRAND_OK;
}

static strand_status parse_tensor_type(onnx_parser *p, const pb_reader *r,
                                       onnx_value_info *out) {
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  while (pb_next(&in, &f, &st)) {
    if (f.number == 1) {
      int64_t elem;
      st = pb_get_int64(&f, "elem_type", &elem);
      if (st) return st;
      if (elem == 0) {
        out->dtype = STRAND_DTYPE_UNDEFINED;
      } else if (!onnx_dtype_from_onnx(elem, &out->dtype)) {
        return strand__fail(STRAND_E_UNSUPPORTED, "element type %s (%lld) is not supported",
                            onnx_dtype_onnx_name(elem), (long long)elem);
      }
    } else if (f.number == 2) {
      st = pb_expect(&f, PB_WIRE_LEN, "shape");
      if (st) return st;
      pb_reader sub = pb_reader_sub(&in, &f);
      st = parse_shape(p, &sub, out);
      if (st) return st;
    }
  }
  return st;
}

static strand_status parse_type(onnx_parser *p, const pb_reader *r, onnx_value_info *out) {
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  while (pb_next(&in, &f, &st)) {
    const char *kind = NULL;
    switch (f.number) {
    case 1: {
      st = pb_expect(&f, PB_WIRE_LEN, "tensor_type");
      if (st) return st;
      pb_reader sub = pb_reader_sub(&in, &f);
      st = parse_tensor_type(p, &sub, out);
      if (st) return st;
      break;
    }
    case 4: kind = "sequence"; break;
    case 5: kind = "map"; break;
    case 7: kind = "opaque"; break;
    case 8: kind = "sparse tensor"; break;
    case 9: kind = "optional"; break;
    default: break;
    }
    if (kind) return strand__fail(STRAND_E_UNSUPPORTED, "%s types are not supported", kind);
  }
  return st;
}

strand_status onnx_parse_value_info(onnx_parser *p, const pb_reader *r, onnx_value_info *out) {
  memset(out, 0, sizeof *out);
  out->name = "";
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  while (pb_next(&in, &f, &st))
    if (f.number == 1) {
      char *name;
      st = read_string(p, &f, "name", &name);
      if (st) return st;
      out->name = name;
    }
  if (st) return st;
  in = *r;
  while (pb_next(&in, &f, &st))
    if (f.number == 2) {
      st = pb_expect(&f, PB_WIRE_LEN, "type");
      if (st) return st;
      pb_reader sub = pb_reader_sub(&in, &f);
      st = parse_type(p, &sub, out);
      if (st) return st;
    }
  return st;
}

/* ---- AttributeProto ---------------------------------------------------- */

enum {
  A_NAME = 1, A_F = 2, A_I = 3, A_S = 4, A_T = 5, A_G = 6, A_FLOATS = 7, A_INTS = 8,
  A_STRINGS = 9, A_TENSORS = 10, A_GRAPHS = 11, A_TP = 14, A_TYPE_PROTOS = 15, A_TYPE = 20,
  A_REF_ATTR_NAME = 21, A_SPARSE_TENSOR = 22, A_SPARSE_TENSORS = 23, A_FIELDS = 24
};

/* The value field each attribute type uses. */
static int field_of_type(int type) {
  switch (type) {
  case ONNX_ATTR_FLOAT: return A_F;
  case ONNX_ATTR_INT: return A_I;
  case ONNX_ATTR_STRING: return A_S;
  case ONNX_ATTR_TENSOR: return A_T;
  case ONNX_ATTR_GRAPH: return A_G;
  case ONNX_ATTR_FLOATS: return A_FLOATS;
  case ONNX_ATTR_INTS: return A_INTS;
  case ONNX_ATTR_STRINGS: return A_STRINGS;
  case ONNX_ATTR_TENSORS: return A_TENSORS;
  case ONNX_ATTR_GRAPHS: return A_GRAPHS;
  case ONNX_ATTR_SPARSE_TENSOR: return A_SPARSE_TENSOR;
  case ONNX_ATTR_SPARSE_TENSORS: return A_SPARSE_TENSORS;
  case ONNX_ATTR_TYPE_PROTO: return A_TP;
  case ONNX_ATTR_TYPE_PROTOS: return A_TYPE_PROTOS;
  default: return 0;
  }
}

static strand_status parse_attr_values(onnx_parser *p, const pb_reader *r, onnx_attr *a,
                                       size_t count) {
  int field = field_of_type(a->type);
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  size_t n = 0;
  a->count = 0;
  switch (a->type) {
  case ONNX_ATTR_FLOATS:
    if (count) {
      st = onnx_arena_array(p->arena, count, sizeof *a->floats, (void **)&a->floats);
      if (st) return st;
    }
    break;
  case ONNX_ATTR_INTS:
    if (count) {
      st = onnx_arena_array(p->arena, count, sizeof *a->ints, (void **)&a->ints);
      if (st) return st;
    }
    break;
  case ONNX_ATTR_STRINGS:
    if (count) {
      st = onnx_arena_array(p->arena, count, sizeof *a->strings, (void **)&a->strings);
      if (st) return st;
    }
    break;
  case ONNX_ATTR_TENSORS:
    if (count) {
      st = onnx_arena_array(p->arena, count, sizeof *a->tensors, (void **)&a->tensors);
      if (st) return st;
    }
    break;
  case ONNX_ATTR_GRAPHS:
    if (count) {
      st = onnx_arena_array(p->arena, count, sizeof *a->graphs, (void **)&a->graphs);
      if (st) return st;
    }
    break;
  default: break;
  }
  while (pb_next(&in, &f, &st)) {
    if ((int)f.number != field) continue;
    switch (a->type) {
    case ONNX_ATTR_FLOAT: st = pb_get_float(&f, "f", &a->f); break;
    case ONNX_ATTR_INT: st = pb_get_int64(&f, "i", &a->i); break;
    case ONNX_ATTR_STRING: {
      char *s;
      st = pb_expect(&f, PB_WIRE_LEN, "s");
      if (!st) st = onnx_arena_string(p->arena, f.data, f.size, &s);
      if (!st) a->s = (onnx_bytes){s, f.size};
      break;
    }
    case ONNX_ATTR_TENSOR: {
      st = pb_expect(&f, PB_WIRE_LEN, "t");
      if (st) break;
      if (!a->t) st = onnx_arena_alloc(p->arena, sizeof *a->t, (void **)&a->t);
      if (st) break;
      pb_reader sub = pb_reader_sub(&in, &f);
      st = onnx_parse_tensor(p, &sub, a->t);
      break;
    }
    case ONNX_ATTR_GRAPH: {
      st = pb_expect(&f, PB_WIRE_LEN, "g");
      if (st) break;
      pb_reader sub = pb_reader_sub(&in, &f);
      st = parse_graph(p, &sub, &a->g);
      break;
    }
    case ONNX_ATTR_FLOATS: {
      pb_elements it;
      pb_elements_init(&it, &f, PB_WIRE_I32);
      uint64_t raw;
      while (n < count && pb_elements_next(&it, &raw)) {
        uint32_t bits = (uint32_t)raw;
        memcpy(&a->floats[n++], &bits, sizeof bits);
      }
      break;
    }
    case ONNX_ATTR_INTS: {
      pb_elements it;
      pb_elements_init(&it, &f, PB_WIRE_VARINT);
      uint64_t raw;
      while (n < count && pb_elements_next(&it, &raw)) a->ints[n++] = (int64_t)raw;
      break;
    }
    case ONNX_ATTR_STRINGS: {
      char *s;
      st = pb_expect(&f, PB_WIRE_LEN, "strings");
      if (!st && n < count) st = onnx_arena_string(p->arena, f.data, f.size, &s);
      if (!st && n < count) a->strings[n++] = (onnx_bytes){s, f.size};
      break;
    }
    case ONNX_ATTR_TENSORS: {
      st = pb_expect(&f, PB_WIRE_LEN, "tensors");
      if (st || n >= count) break;
      pb_reader sub = pb_reader_sub(&in, &f);
      st = onnx_parse_tensor(p, &sub, &a->tensors[n]);
      if (st) st = strand__fail_context(st, "tensor %zu", n);
      n++;
      break;
    }
    case ONNX_ATTR_GRAPHS: {
      st = pb_expect(&f, PB_WIRE_LEN, "graphs");
      if (st || n >= count) break;
      pb_reader sub = pb_reader_sub(&in, &f);
      onnx_graph *g;
      st = parse_graph(p, &sub, &g);
      if (st) {
        st = onnx_context(st, p->depth ? p->depth - 1 : 0, "graph %zu", n);
        break;
      }
      a->graphs[n++] = *g;
      break;
    }
    default: break;
    }
    if (st) return st;
  }
  if (st) return st;
  if (a->type == ONNX_ATTR_FLOATS || a->type == ONNX_ATTR_INTS || a->type == ONNX_ATTR_STRINGS ||
      a->type == ONNX_ATTR_TENSORS || a->type == ONNX_ATTR_GRAPHS)
    a->count = n;
  if (a->type == ONNX_ATTR_TENSOR && !a->t)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "type TENSOR but no tensor (field t)");
  if (a->type == ONNX_ATTR_GRAPH && !a->g)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "type GRAPH but no graph (field g)");
  if (!a->s.data) a->s = (onnx_bytes){"", 0};
  return STRAND_OK;
}

static strand_status parse_attr(onnx_parser *p, const pb_reader *r, onnx_attr *a) {
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  size_t counts[A_FIELDS] = {0};
  int64_t type = 0;
  bool ref = false;
  memset(a, 0, sizeof *a);
  a->name = "";
  while (pb_next(&in, &f, &st)) {
    switch (f.number) {
    case A_NAME: {
      char *name;
      st = read_string(p, &f, "name", &name);
      if (!st) a->name = name;
      break;
    }
    case A_TYPE: st = pb_get_int64(&f, "type", &type); break;
    case A_REF_ATTR_NAME: ref = true; break;
    case A_F: st = pb_expect(&f, PB_WIRE_I32, "f"); break;
    case A_I: st = pb_expect(&f, PB_WIRE_VARINT, "i"); break;
    case A_FLOATS: st = pb_repeated_count(&f, PB_WIRE_I32, "floats", &counts[A_FLOATS]); break;
    case A_INTS: st = pb_repeated_count(&f, PB_WIRE_VARINT, "ints", &counts[A_INTS]); break;
    case A_S:
    case A_T:
    case A_G:
    case A_STRINGS:
    case A_TENSORS:
    case A_GRAPHS:
    case A_TP:
    case A_TYPE_PROTOS:
    case A_SPARSE_TENSOR:
    case A_SPARSE_TENSORS: st = pb_expect(&f, PB_WIRE_LEN, "value"); break;
    default: break;
    }
    if (st) return st;
    if (f.number < A_FIELDS && f.number != A_FLOATS && f.number != A_INTS) counts[f.number]++;
  }
  if (st) return st;
  if (!a->name[0]) return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute without a name");
  st = STRAND_OK;
  if (ref)
    st = strand__fail(STRAND_E_UNSUPPORTED,
                      "references to function attributes (ref_attr_name) are not supported");
  else if (type == 0) {
    /* Early IR versions may omit the type: take it from the one value given. */
    static const int order[] = {ONNX_ATTR_FLOAT,  ONNX_ATTR_INT,     ONNX_ATTR_STRING,
                                ONNX_ATTR_TENSOR, ONNX_ATTR_GRAPH,   ONNX_ATTR_FLOATS,
                                ONNX_ATTR_INTS,   ONNX_ATTR_STRINGS, ONNX_ATTR_TENSORS,
                                ONNX_ATTR_GRAPHS, ONNX_ATTR_SPARSE_TENSOR,
                                ONNX_ATTR_SPARSE_TENSORS, ONNX_ATTR_TYPE_PROTO,
                                ONNX_ATTR_TYPE_PROTOS};
    int found = 0;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
      if (counts[field_of_type(order[k])]) {
        found++;
        type = order[k];
      }
    if (found != 1)
      st = strand__fail(STRAND_E_MALFORMED_MODEL, found ? "no type and more than one value"
                                                        : "no type and no value");
  }
  if (!st && field_of_type((int)type) == 0)
    st = strand__fail(STRAND_E_MALFORMED_MODEL, "unknown attribute type %lld", (long long)type);
  if (!st && (type == ONNX_ATTR_SPARSE_TENSOR || type == ONNX_ATTR_SPARSE_TENSORS ||
              type == ONNX_ATTR_TYPE_PROTO || type == ONNX_ATTR_TYPE_PROTOS))
    st = strand__fail(STRAND_E_UNSUPPORTED, "%s attributes are not supported",
                      onnx_attr_type_name((int)type));
  if (!st) {
    a->type = (onnx_attr_type)type;
    st = parse_attr_values(p, r, a, counts[field_of_type((int)type)]);
  }
  return st;
}

/* ---- NodeProto --------------------------------------------------------- */

static int compare_names(const void *x, const void *y) {
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Finds a name that occurs twice among `n`; *dup stays NULL when none does.
 * Quadratic only for short lists; long ones are sorted (in the arena). */
static strand_status find_duplicate(onnx_parser *p, const char *const *names, size_t n,
                                    const char **dup) {
  *dup = NULL;
  if (n <= 16) {
    for (size_t i = 0; i < n && !*dup; i++)
      for (size_t j = i + 1; j < n && !*dup; j++)
        if (strcmp(names[i], names[j]) == 0) *dup = names[i];
    return STRAND_OK;
  }
  const char **sorted;
  strand_status st = onnx_arena_array(p->arena, n, sizeof *sorted, (void **)&sorted);
  if (st) return st;
  memcpy(sorted, names, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, compare_names);
  for (size_t i = 1; i < n && !*dup; i++)
    if (strcmp(sorted[i - 1], sorted[i]) == 0) *dup = sorted[i];
  return STRAND_OK;
}

/* Attribute names are unique within a node. */
static strand_status check_attr_names(onnx_parser *p, onnx_node *node) {
  size_t n = node->n_attrs;
  if (n < 2) return STRAND_OK;
  const char **names;
  strand_status st = onnx_arena_array(p->arena, n, sizeof *names, (void **)&names);
  if (st) return st;
  for (size_t i = 0; i < n; i++) names[i] = node->attrs[i].name;
  const char *dup;
  st = find_duplicate(p, names, n, &dup);
  if (st) return st;
  if (dup)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"%s\" appears more than once", dup);
  return STRAND_OK;
}

static strand_status parse_node_body(onnx_parser *p, const pb_reader *r, onnx_node *node) {
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  size_t n_inputs = 0, n_outputs = 0, n_attrs = 0;
  while (pb_next(&in, &f, &st)) {
    char *s;
    switch (f.number) {
    case 1:
      st = pb_expect(&f, PB_WIRE_LEN, "input");
      n_inputs++;
      break;
    case 2:
      st = pb_expect(&f, PB_WIRE_LEN, "output");
      n_outputs++;
      break;
    case 3:
      st = read_string(p, &f, "name", &s);
      if (!st) node->name = s;
      break;
    case 4:
      st = read_string(p, &f, "op_type", &s);
      if (!st) node->op_type = s;
      break;
    case 5:
      st = pb_expect(&f, PB_WIRE_LEN, "attribute");
      n_attrs++;
      break;
    case 7:
      st = read_string(p, &f, "domain", &s);
      if (!st) node->domain = normal_domain(s);
      break;
    default: break;
    }
    if (st) return st;
  }
  if (st) return st;
  if (!node->op_type[0]) return strand__fail(STRAND_E_MALFORMED_MODEL, "op_type is missing");
  if (n_inputs) {
    st = onnx_arena_array(p->arena, n_inputs, sizeof *node->inputs, (void **)&node->inputs);
    if (st) return st;
  }
  if (n_outputs) {
    st = onnx_arena_array(p->arena, n_outputs, sizeof *node->outputs, (void **)&node->outputs);
    if (st) return st;
  }
  if (n_attrs) {
    st = onnx_arena_array(p->arena, n_attrs, sizeof *node->attrs, (void **)&node->attrs);
    if (st) return st;
  }
  in = *r;
  while (pb_next(&in, &f, &st)) {
    char *s;
    if (f.number == 1 && node->n_inputs < n_inputs) {
      st = read_string(p, &f, "input", &s);
      if (!st) node->inputs[node->n_inputs++] = s;
    } else if (f.number == 2 && node->n_outputs < n_outputs) {
      st = read_string(p, &f, "output", &s);
      if (!st) node->outputs[node->n_outputs++] = s;
    } else if (f.number == 5 && node->n_attrs < n_attrs) {
      pb_reader sub = pb_reader_sub(&in, &f);
      onnx_attr *a = &node->attrs[node->n_attrs];
      st = parse_attr(p, &sub, a);
      if (st) {
        size_t depth = p->depth ? p->depth - 1 : 0; /* of the graph holding the node */
        if (a->name && a->name[0]) return onnx_context(st, depth, "attribute \"%s\"", a->name);
        return onnx_context(st, depth, "attribute %zu", node->n_attrs);
      }
      node->n_attrs++;
    }
    if (st) return st;
  }
  if (st) return st;
  return check_attr_names(p, node);
}

/* ---- GraphProto -------------------------------------------------------- */

enum {
  G_NODE = 1, G_NAME = 2, G_INITIALIZER = 5, G_INPUT = 11, G_OUTPUT = 12, G_VALUE_INFO = 13,
  G_SPARSE_INITIALIZER = 15, G_FIELDS = 16
};

static strand_status parse_value_infos(onnx_parser *p, const pb_reader *r, const char *graph,
                                       uint32_t number, const char *what, size_t count,
                                       onnx_value_info **out) {
  if (!count) return STRAND_OK;
  char label[300];
  onnx_value_info *infos;
  strand_status st = onnx_arena_array(p->arena, count, sizeof *infos, (void **)&infos);
  if (st) return st;
  pb_reader in = *r;
  pb_field f;
  size_t i = 0;
  while (i < count && pb_next(&in, &f, &st)) {
    if (f.number != number) continue;
    pb_reader sub = pb_reader_sub(&in, &f);
    st = onnx_parse_value_info(p, &sub, &infos[i]);
    if (st) {
      const char *prefix = graph_label(graph, label, sizeof label);
      if (infos[i].name && infos[i].name[0])
        return strand__fail_context(st, "%s%s %zu (\"%s\")", prefix, what, i, infos[i].name);
      return strand__fail_context(st, "%s%s %zu", prefix, what, i);
    }
    i++;
  }
  if (st) return st;
  *out = infos;
  return STRAND_OK;
}

static strand_status parse_graph_body(onnx_parser *p, const pb_reader *r, onnx_graph *g) {
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  size_t counts[G_FIELDS] = {0};
  while (pb_next(&in, &f, &st)) {
    switch (f.number) {
    case G_NAME: {
      char *name;
      st = read_string(p, &f, "name", &name);
      if (!st) g->name = name;
      break;
    }
    case G_NODE:
    case G_INITIALIZER:
    case G_INPUT:
    case G_OUTPUT:
    case G_VALUE_INFO:
    case G_SPARSE_INITIALIZER:
      st = pb_expect(&f, PB_WIRE_LEN, "graph element");
      counts[f.number]++;
      break;
    default: break;
    }
    if (st) return st;
  }
  if (st) return st;
  if (counts[G_SPARSE_INITIALIZER]) {
    strand_status unsupported = strand__fail(STRAND_E_UNSUPPORTED, "sparse initializers "
                                             "(sparse_initializer) are not supported");
    return g->name[0] ? strand__fail_context(unsupported, "graph \"%s\"", g->name) : unsupported;
  }

  st = parse_value_infos(p, r, g->name, G_INPUT, "input", counts[G_INPUT], &g->inputs);
  if (st) return st;
  g->n_inputs = counts[G_INPUT];
  st = parse_value_infos(p, r, g->name, G_OUTPUT, "output", counts[G_OUTPUT], &g->outputs);
  if (st) return st;
  g->n_outputs = counts[G_OUTPUT];
  st = parse_value_infos(p, r, g->name, G_VALUE_INFO, "value_info", counts[G_VALUE_INFO],
                         &g->value_info);
  if (st) return st;
  g->n_value_info = counts[G_VALUE_INFO];

  if (counts[G_INITIALIZER]) {
    st = onnx_arena_array(p->arena, counts[G_INITIALIZER], sizeof *g->initializers,
                          (void **)&g->initializers);
    if (st) return st;
  }
  if (counts[G_NODE]) {
    st = onnx_arena_array(p->arena, counts[G_NODE], sizeof *g->nodes, (void **)&g->nodes);
    if (st) return st;
  }
  in = *r;
  while (pb_next(&in, &f, &st)) {
    pb_reader sub = pb_reader_sub(&in, &f);
    if (f.number == G_INITIALIZER && g->n_initializers < counts[G_INITIALIZER]) {
      size_t i = g->n_initializers;
      st = onnx_parse_tensor(p, &sub, &g->initializers[i]);
      if (st) {
        char label[300];
        return onnx_context(st, g->depth, "%sinitializer %zu",
                            graph_label(g->name, label, sizeof label), i);
      }
      g->n_initializers++;
    } else if (f.number == G_NODE && g->n_nodes < counts[G_NODE]) {
      size_t i = g->n_nodes;
      onnx_node *node = &g->nodes[i];
      node->name = "";
      node->op_type = "";
      node->domain = "";
      node->index = i;
      st = parse_node_body(p, &sub, node);
      if (st) {
        char label[300];
        const char *prefix = graph_label(g->name, label, sizeof label);
        if (node->name[0])
          return onnx_context(st, g->depth, "%snode %zu (\"%s\")", prefix, i, node->name);
        if (node->op_type[0])
          return onnx_context(st, g->depth, "%snode %zu (%s)", prefix, i, node->op_type);
        return onnx_context(st, g->depth, "%snode %zu", prefix, i);
      }
      g->n_nodes++;
    }
  }
  return st;
}

static strand_status parse_graph(onnx_parser *p, const pb_reader *r, onnx_graph **out) {
  if (p->depth >= ONNX_MAX_DEPTH)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "graphs nested more than %d deep at byte %zu",
                        ONNX_MAX_DEPTH, pb_offset(r));
  onnx_graph *g;
  strand_status st = onnx_arena_alloc(p->arena, sizeof *g, (void **)&g);
  if (st) return st;
  g->name = "";
  g->depth = p->depth;
  p->depth++;
  st = parse_graph_body(p, r, g);
  p->depth--;
  if (st) return st;
  *out = g;
  return STRAND_OK;
}

/* ---- ModelProto -------------------------------------------------------- */

static strand_status parse_opset(onnx_parser *p, const pb_reader *r, onnx_opset *out) {
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  out->domain = "";
  out->version = 0;
  while (pb_next(&in, &f, &st)) {
    if (f.number == 1) {
      char *domain;
      st = read_string(p, &f, "domain", &domain);
      if (st) return st;
      out->domain = normal_domain(domain);
    } else if (f.number == 2) {
      st = pb_get_int64(&f, "version", &out->version);
      if (st) return st;
    }
  }
  return st;
}

static strand_status parse_model_body(onnx_parser *p, onnx_model *m) {
  pb_reader r, in;
  pb_reader_init(&r, p->base, p->size);
  in = r;
  pb_field f, graph = {0};
  strand_status st;
  size_t n_opsets = 0, n_graphs = 0;
  while (pb_next(&in, &f, &st)) {
    char *s;
    switch (f.number) {
    case 1: st = pb_get_int64(&f, "ir_version", &m->ir_version); break;
    case 2:
      st = read_string(p, &f, "producer_name", &s);
      if (!st) m->producer_name = s;
      break;
    case 3:
      st = read_string(p, &f, "producer_version", &s);
      if (!st) m->producer_version = s;
      break;
    case 4:
      st = read_string(p, &f, "domain", &s);
      if (!st) m->domain = s;
      break;
    case 5: st = pb_get_int64(&f, "model_version", &m->model_version); break;
    case 7:
      st = pb_expect(&f, PB_WIRE_LEN, "graph");
      graph = f;
      n_graphs++;
      break;
    case 8:
      st = pb_expect(&f, PB_WIRE_LEN, "opset_import");
      n_opsets++;
      break;
    case 25:
      st = pb_expect(&f, PB_WIRE_LEN, "functions");
      m->n_functions++;
      break;
    default: break;
    }
    if (st) return st;
  }
  if (st) return st;
  if (n_graphs == 0) return strand__fail(STRAND_E_MALFORMED_MODEL, "the model has no graph");
  if (n_graphs > 1)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "the model has %zu graph fields", n_graphs);

  if (n_opsets) {
    st = onnx_arena_array(p->arena, n_opsets, sizeof *m->opsets, (void **)&m->opsets);
    if (st) return st;
  }
  in = r;
  while (pb_next(&in, &f, &st)) {
    if (f.number != 8 || m->n_opsets >= n_opsets) continue;
    pb_reader sub = pb_reader_sub(&in, &f);
    onnx_opset *o = &m->opsets[m->n_opsets];
    st = parse_opset(p, &sub, o);
    if (st) return strand__fail_context(st, "opset_import %zu", m->n_opsets);
    m->n_opsets++;
  }
  if (st) return st;
  if (m->n_opsets > 1) {
    const char **domains;
    st = onnx_arena_array(p->arena, m->n_opsets, sizeof *domains, (void **)&domains);
    if (st) return st;
    for (size_t i = 0; i < m->n_opsets; i++) domains[i] = m->opsets[i].domain;
    const char *dup;
    st = find_duplicate(p, domains, m->n_opsets, &dup);
    if (st) return st;
    if (dup)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "opset_import lists domain \"%s\" twice",
                          dup[0] ? dup : "ai.onnx");
  }

  pb_reader sub = pb_reader_sub(&r, &graph);
  return parse_graph(p, &sub, &m->graph);
}

strand_status onnx_parse_model(onnx_parser *p, onnx_model **out) {
  onnx_model *m;
  strand_status st = onnx_arena_alloc(p->arena, sizeof *m, (void **)&m);
  if (st) return st;
  m->producer_name = "";
  m->producer_version = "";
  m->domain = "";
  st = parse_model_body(p, m);
  if (st) return st;
  *out = m;
  return STRAND_OK;
}
