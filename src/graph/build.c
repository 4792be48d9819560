/*
 * build.c — from the parse tree to the IR: the value table of each graph,
 * name resolution (enclosing scopes included), declared types, and the
 * driver that runs the other passes (validate.c, order.c, infer.c).
 *
 * Sizes: a graph's value table can hold its inputs, initializers and node
 * outputs plus one outer reference per node input and graph output, all of
 * which are counted in the parse tree, so nothing grows beyond what the file
 * holds.
 */
#include "graph/graph_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- names ------------------------------------------------------------- */

/* Names come from the file, so the table's hash is keyed with a secret
 * chosen once per process: a hostile model cannot line its names up in one
 * probe chain (which would make loading quadratic) without knowing it. */
static uint64_t hash_seed(void) {
  static _Atomic uint64_t seed;
  uint64_t s = atomic_load_explicit(&seed, memory_order_relaxed);
  if (s) return s;
  if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s)
    s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&s;
  s |= 1; /* never 0, which means "not chosen yet" */
  uint64_t expected = 0;
  if (!atomic_compare_exchange_strong(&seed, &expected, s)) s = expected;
  return s;
}

static uint64_t hash_name(const char *name) {
  uint64_t h = 1469598103934665603ull ^ hash_seed();
  for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
    h ^= *c;
    h *= 1099511628211ull;
  }
  /* Mix every bit into the low ones the table uses. */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

int32_t graph_find(const graph *g, const char *name) {
  if (!g->table) return -1;
  for (size_t i = (size_t)hash_name(name) & g->table_mask;; i = (i + 1) & g->table_mask) {
    int32_t v = g->table[i];
    if (v < 0) return -1;
    if (strcmp(g->values[v].name, name) == 0) return v;
  }
}

/* Adds a value named `name`; the caller checked it is not there yet and that
 * capacity remains. */
static int32_t add_value(graph *g, const char *name) {
  int32_t index = (int32_t)g->n_values++;
  graph_value *v = &g->values[index];
  v->name = name;
  v->dtype = STRAND_DTYPE_UNDEFINED;
  v->rank = -1;
  v->dims = NULL;
  v->producer = -1;
  v->outer_index = -1;
  size_t i = (size_t)hash_name(name) & g->table_mask;
  while (g->table[i] >= 0) i = (i + 1) & g->table_mask;
  g->table[i] = index;
  return index;
}

const onnx_attr *graph_node_attr(const graph_node *node, const char *name) {
  const onnx_node *n = node->source;
  for (size_t i = 0; i < n->n_attrs; i++)
    if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
  return NULL;
}

int64_t graph_opset(const onnx_model *model, const char *domain) {
  if (strcmp(domain, "ai.onnx") == 0) domain = "";
  for (size_t i = 0; i < model->n_opsets; i++)
    if (strcmp(model->opsets[i].domain, domain) == 0) return model->opsets[i].version;
  /* Before IR version 3 there was no opset_import: opset 1 is implied. */
  if (model->n_opsets == 0 && !domain[0] && model->ir_version < 3) return 1;
  return -1;
}

strand_status graph_node_context(strand_status status, const graph *g, const graph_node *node) {
  char who[320];
  if (node->name[0])
    snprintf(who, sizeof who, "node \"%s\" (%s)", node->name, node->op_type);
  else
    snprintf(who, sizeof who, "node %zu (%s)", node->source->index, node->op_type);
  if (g->depth == 0) return onnx_context(status, 0, "%s", who);
  return onnx_context(status, g->depth, "graph \"%s\" %s", g->name, who);
}

/* ---- types ------------------------------------------------------------- */

const char *graph_shape_text(int32_t rank, const graph_dim *dims, char *buf, size_t size) {
  if (size == 0) return buf;
  if (rank < 0) {
    snprintf(buf, size, "[?]");
    return buf;
  }
  size_t n = 0;
  buf[0] = '\0';
  n += (size_t)snprintf(buf, size, "[");
  for (int32_t i = 0; i < rank && n < size; i++) {
    const char *sep = i ? ", " : "";
    if (dims[i].value >= 0)
      n += (size_t)snprintf(buf + n, size - n, "%s%lld", sep, (long long)dims[i].value);
    else if (dims[i].param)
      n += (size_t)snprintf(buf + n, size - n, "%s%s", sep, dims[i].param);
    else
      n += (size_t)snprintf(buf + n, size - n, "%s?", sep);
  }
  if (n < size) snprintf(buf + n, size - n, "]");
  return buf;
}

static bool dim_conflicts(const graph_dim *a, const graph_dim *b) {
  return a->value >= 0 && b->value >= 0 && a->value != b->value;
}

strand_status graph_merge_type(onnx_arena *arena, graph_value *v, strand_dtype dtype, int32_t rank,
                               const graph_dim *dims, const char *what) {
  if (dtype != STRAND_DTYPE_UNDEFINED && v->dtype != STRAND_DTYPE_UNDEFINED && dtype != v->dtype)
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "value \"%s\": %s element type %s conflicts with %s", v->name, what,
                        strand_dtype_name(dtype), strand_dtype_name(v->dtype));
  if (rank >= 0 && v->rank >= 0) {
    bool conflict = rank != v->rank;
    for (int32_t i = 0; i < rank && !conflict; i++) conflict = dim_conflicts(&dims[i], &v->dims[i]);
    if (conflict) {
      char mine[256], theirs[256];
      return strand__fail(STRAND_E_MALFORMED_MODEL, "value \"%s\": %s shape %s conflicts with %s",
                          v->name, what, graph_shape_text(rank, dims, mine, sizeof mine),
                          graph_shape_text(v->rank, v->dims, theirs, sizeof theirs));
    }
  }
  if (dtype != STRAND_DTYPE_UNDEFINED) v->dtype = dtype;
  if (rank < 0) return STRAND_OK;
  /* Is there anything to learn? */
  bool learn = v->rank < 0;
  for (int32_t i = 0; i < rank && !learn; i++)
    learn = (v->dims[i].value < 0 && dims[i].value >= 0) ||
            (v->dims[i].value < 0 && !v->dims[i].param && dims[i].param);
  if (!learn) return STRAND_OK;
  graph_dim *merged = NULL;
  if (rank) {
    strand_status st = onnx_arena_array(arena, (size_t)rank, sizeof *merged, (void **)&merged);
    if (st) return st;
  }
  for (int32_t i = 0; i < rank; i++) {
    merged[i] = dims[i];
    if (v->rank >= 0) {
      const graph_dim *old = &v->dims[i];
      if (old->value >= 0 || (dims[i].value < 0 && old->param)) merged[i] = *old;
    }
  }
  v->rank = rank;
  v->dims = merged;
  return STRAND_OK;
}

static strand_status merge_declared(onnx_arena *arena, graph_value *v, const onnx_value_info *info,
                                    const char *what) {
  return graph_merge_type(arena, v, info->dtype, info->has_shape ? (int32_t)info->rank : -1,
                          info->dims, what);
}

static strand_status merge_tensor(onnx_arena *arena, graph_value *v, const onnx_tensor *t) {
  graph_dim *dims = NULL;
  if (t->rank) {
    strand_status st = onnx_arena_array(arena, t->rank, sizeof *dims, (void **)&dims);
    if (st) return st;
  }
  for (size_t i = 0; i < t->rank; i++) dims[i] = (graph_dim){t->dims[i], NULL};
  return graph_merge_type(arena, v, t->dtype, (int32_t)t->rank, dims, "initializer");
}

/* ---- building ---------------------------------------------------------- */

typedef struct builder builder;
struct builder {
  onnx_arena *arena;
  const onnx_model *model;
  graph *g;
  builder *parent;
  size_t owner;   /* index (in the parent's file order) of the node holding g */
  int32_t *extra; /* pairs (node, value): dependencies from outer references */
  size_t n_extra, extra_capacity; /* in pairs */
};

static strand_status push_extra(builder *b, size_t node, int32_t value) {
  if (b->n_extra == b->extra_capacity) {
    size_t capacity = b->extra_capacity ? 2 * b->extra_capacity : 16;
    int32_t *grown;
    strand_status st = onnx_arena_array(b->arena, capacity, 2 * sizeof *grown, (void **)&grown);
    if (st) return st;
    if (b->n_extra) memcpy(grown, b->extra, b->n_extra * 2 * sizeof *grown);
    b->extra = grown;
    b->extra_capacity = capacity;
  }
  b->extra[2 * b->n_extra] = (int32_t)node;
  b->extra[2 * b->n_extra + 1] = value;
  b->n_extra++;
  return STRAND_OK;
}

/* The value `name` as seen from b's graph: its own, or a new outer reference
 * to the nearest enclosing graph defining it (recorded there as a dependency
 * of the node that holds the path down to b). -1 when no scope defines it. */
static strand_status resolve(builder *b, const char *name, int32_t *out) {
  int32_t v = graph_find(b->g, name);
  if (v >= 0) {
    *out = v;
    return STRAND_OK;
  }
  builder *child = b;
  for (builder *a = b->parent; a; child = a, a = a->parent) {
    int32_t index = graph_find(a->g, name);
    if (index < 0) continue;
    strand_status st = push_extra(a, child->owner, index);
    if (st) return st;
    int32_t mine = add_value(b->g, name);
    graph_value *value = &b->g->values[mine];
    value->flags = GRAPH_VALUE_OUTER;
    value->outer_graph = a->g;
    value->outer_index = index;
    *out = mine;
    return STRAND_OK;
  }
  *out = -1;
  return STRAND_OK;
}

static const char *definition_of(const graph *g, const graph_value *v, char *buf, size_t size) {
  if (v->producer >= 0) {
    const onnx_node *n = &g->source->nodes[v->producer];
    if (n->name[0])
      snprintf(buf, size, "an output of node \"%s\" (%s)", n->name, n->op_type);
    else
      snprintf(buf, size, "an output of node %zu (%s)", n->index, n->op_type);
  } else if (v->flags & GRAPH_VALUE_INITIALIZER) {
    snprintf(buf, size, "an initializer");
  } else {
    snprintf(buf, size, "a graph input");
  }
  return buf;
}

static strand_status graph_context(strand_status st, const graph *g) {
  if (g->depth == 0 && !g->name[0]) return st;
  return onnx_context(st, g->depth, "graph \"%s\"", g->name);
}

static strand_status build_graph(builder *b, const onnx_graph *src);

static strand_status add_inputs_and_initializers(builder *b, const onnx_graph *src) {
  graph *g = b->g;
  strand_status st;
  for (size_t i = 0; i < src->n_inputs; i++) {
    const onnx_value_info *info = &src->inputs[i];
    if (!info->name[0])
      return strand__fail(STRAND_E_MALFORMED_MODEL, "input %zu has no name", i);
    if (graph_find(g, info->name) >= 0)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "input %zu \"%s\" is declared twice", i,
                          info->name);
    int32_t v = add_value(g, info->name);
    g->values[v].flags = GRAPH_VALUE_INPUT;
    st = merge_declared(b->arena, &g->values[v], info, "declared");
    if (st) return strand__fail_context(st, "input %zu", i);
  }
  if (src->n_initializers) {
    st = onnx_arena_array(b->arena, src->n_initializers, sizeof *g->initializers,
                          (void **)&g->initializers);
    if (st) return st;
  }
  for (size_t i = 0; i < src->n_initializers; i++) {
    const onnx_tensor *t = &src->initializers[i];
    if (!t->name[0])
      return strand__fail(STRAND_E_MALFORMED_MODEL, "initializer %zu has no name", i);
    int32_t v = graph_find(g, t->name);
    if (v >= 0 && (g->values[v].flags & GRAPH_VALUE_INITIALIZER))
      return strand__fail(STRAND_E_MALFORMED_MODEL, "initializer %zu \"%s\" is given twice", i,
                          t->name);
    /* An input with an initializer has a default value; strand treats it as
     * a constant (it is not an input the caller supplies). */
    if (v < 0) v = add_value(g, t->name);
    graph_value *value = &g->values[v];
    st = merge_tensor(b->arena, value, t);
    if (st) return strand__fail_context(st, "initializer %zu \"%s\" vs its input declaration", i,
                                        t->name);
    value->flags = GRAPH_VALUE_INITIALIZER | GRAPH_VALUE_CONSTANT;
    value->constant = t;
    g->initializers[g->n_initializers++] = v;
  }
  size_t n = 0;
  for (size_t i = 0; i < g->n_values; i++)
    if (g->values[i].flags & GRAPH_VALUE_INPUT) {
      /* The caller must know what to supply for the main graph's inputs. */
      if (!b->parent && g->values[i].dtype == STRAND_DTYPE_UNDEFINED)
        return strand__fail(STRAND_E_MALFORMED_MODEL, "input \"%s\" declares no element type",
                            g->values[i].name);
      n++;
    }
  if (n) {
    st = onnx_arena_array(b->arena, n, sizeof *g->inputs, (void **)&g->inputs);
    if (st) return st;
  }
  for (size_t i = 0; i < g->n_values; i++)
    if (g->values[i].flags & GRAPH_VALUE_INPUT) g->inputs[g->n_inputs++] = (int32_t)i;
  return STRAND_OK;
}

static strand_status add_node_outputs(builder *b, const onnx_graph *src) {
  graph *g = b->g;
  char where[320];
  for (size_t k = 0; k < src->n_nodes; k++) {
    const onnx_node *n = &src->nodes[k];
    graph_node *node = &g->nodes[k];
    node->source = n;
    node->name = n->name;
    node->op_type = n->op_type;
    node->domain = n->domain;
    node->n_outputs = n->n_outputs;
    if (n->n_outputs) {
      strand_status st =
          onnx_arena_array(b->arena, n->n_outputs, sizeof *node->outputs, (void **)&node->outputs);
      if (st) return st;
    }
    for (size_t i = 0; i < n->n_outputs; i++) {
      const char *name = n->outputs[i];
      node->outputs[i] = -1;
      if (!name[0]) continue;
      int32_t existing = graph_find(g, name);
      if (existing >= 0) {
        strand_status st = strand__fail(STRAND_E_MALFORMED_MODEL, "output %zu \"%s\" is also %s",
                                        i, name,
                                        definition_of(g, &g->values[existing], where, sizeof where));
        return graph_node_context(st, g, node);
      }
      int32_t v = add_value(g, name);
      g->values[v].producer = (int32_t)k;
      node->outputs[i] = v;
    }
  }
  return STRAND_OK;
}

static strand_status resolve_node_inputs(builder *b, const onnx_graph *src) {
  graph *g = b->g;
  for (size_t k = 0; k < src->n_nodes; k++) {
    const onnx_node *n = &src->nodes[k];
    graph_node *node = &g->nodes[k];
    node->n_inputs = n->n_inputs;
    if (n->n_inputs) {
      strand_status st =
          onnx_arena_array(b->arena, n->n_inputs, sizeof *node->inputs, (void **)&node->inputs);
      if (st) return st;
    }
    for (size_t i = 0; i < n->n_inputs; i++) {
      node->inputs[i] = -1;
      if (!n->inputs[i][0]) continue;
      strand_status st = resolve(b, n->inputs[i], &node->inputs[i]);
      if (st) return st;
      if (node->inputs[i] < 0) {
        st = strand__fail(STRAND_E_MALFORMED_MODEL,
                          "input %zu \"%s\" is not produced by any node, initializer or graph "
                          "input%s",
                          i, n->inputs[i], b->parent ? " here or in an enclosing graph" : "");
        return graph_node_context(st, g, node);
      }
    }
    node->opset = graph_opset(b->model, node->domain);
    if (node->opset < 0 && !node->domain[0]) {
      strand_status st =
          strand__fail(STRAND_E_MALFORMED_MODEL, "the model imports no opset for domain ai.onnx");
      return graph_node_context(st, g, node);
    }
    if (!node->domain[0] && node->opset > GRAPH_NEWEST_OPSET) {
      strand_status st = strand__fail(STRAND_E_UNSUPPORTED,
                                      "opset %lld of domain ai.onnx is newer than any strand "
                                      "knows (%d)", (long long)node->opset, GRAPH_NEWEST_OPSET);
      return graph_node_context(st, g, node);
    }
  }
  return STRAND_OK;
}

static strand_status add_outputs_and_value_info(builder *b, const onnx_graph *src) {
  graph *g = b->g;
  strand_status st;
  if (src->n_outputs) {
    st = onnx_arena_array(b->arena, src->n_outputs, sizeof *g->outputs, (void **)&g->outputs);
    if (st) return st;
  }
  for (size_t i = 0; i < src->n_outputs; i++) {
    const onnx_value_info *info = &src->outputs[i];
    if (!info->name[0])
      return strand__fail(STRAND_E_MALFORMED_MODEL, "output %zu has no name", i);
    int32_t v;
    st = resolve(b, info->name, &v);
    if (st) return st;
    if (v < 0)
      return strand__fail(STRAND_E_MALFORMED_MODEL,
                          "output %zu \"%s\" is not produced by any node, initializer or graph "
                          "input",
                          i, info->name);
    if (g->values[v].flags & GRAPH_VALUE_OUTPUT)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "output %zu \"%s\" is listed twice", i,
                          info->name);
    g->values[v].flags |= GRAPH_VALUE_OUTPUT;
    if (!(g->values[v].flags & GRAPH_VALUE_OUTER)) {
      st = merge_declared(b->arena, &g->values[v], info, "declared");
      if (st) return strand__fail_context(st, "output %zu", i);
    }
    g->outputs[g->n_outputs++] = v;
  }
  for (size_t i = 0; i < src->n_value_info; i++) {
    const onnx_value_info *info = &src->value_info[i];
    int32_t v = info->name[0] ? graph_find(g, info->name) : -1;
    /* value_info about a name nothing defines describes nothing: ignored. */
    if (v < 0 || (g->values[v].flags & GRAPH_VALUE_OUTER)) continue;
    st = merge_declared(b->arena, &g->values[v], info, "declared");
    if (st) return strand__fail_context(st, "value_info %zu", i);
  }
  return STRAND_OK;
}

static strand_status build_subgraphs(builder *b, const onnx_graph *src) {
  graph *g = b->g;
  for (size_t k = 0; k < src->n_nodes; k++) {
    const onnx_node *n = &src->nodes[k];
    graph_node *node = &g->nodes[k];
    size_t count = 0;
    for (size_t i = 0; i < n->n_attrs; i++)
      count += n->attrs[i].type == ONNX_ATTR_GRAPH ? 1
               : n->attrs[i].type == ONNX_ATTR_GRAPHS ? n->attrs[i].count
                                                      : 0;
    if (!count) continue;
    strand_status st =
        onnx_arena_array(b->arena, count, sizeof *node->subgraphs, (void **)&node->subgraphs);
    if (st) return st;
    for (size_t i = 0; i < n->n_attrs; i++) {
      const onnx_attr *a = &n->attrs[i];
      size_t m = a->type == ONNX_ATTR_GRAPH ? 1 : a->type == ONNX_ATTR_GRAPHS ? a->count : 0;
      for (size_t j = 0; j < m; j++) {
        const onnx_graph *sub = a->type == ONNX_ATTR_GRAPH ? a->g : &a->graphs[j];
        builder child = {b->arena, b->model, NULL, b, k, NULL, 0, 0};
        st = build_graph(&child, sub);
        if (st) {
          st = onnx_context(st, g->depth, "attribute \"%s\"", a->name);
          return graph_node_context(st, g, node);
        }
        node->subgraphs[node->n_subgraphs++] = child.g;
      }
    }
  }
  return STRAND_OK;
}

static strand_status build_graph(builder *b, const onnx_graph *src) {
  graph *g;
  strand_status st = onnx_arena_alloc(b->arena, sizeof *g, (void **)&g);
  if (st) return st;
  b->g = g;
  g->name = src->name;
  g->source = src;
  g->parent = b->parent ? b->parent->g : NULL;
  g->depth = src->depth;

  /* Capacity: every definition plus one outer reference per use. */
  size_t capacity = src->n_inputs + src->n_initializers + src->n_outputs;
  for (size_t k = 0; k < src->n_nodes; k++)
    capacity += src->nodes[k].n_outputs + src->nodes[k].n_inputs;
  if (capacity > INT32_MAX / 4)
    return strand__fail(STRAND_E_UNSUPPORTED, "graph \"%s\" has more than %d values", g->name,
                        INT32_MAX / 4);
  size_t table_size = 8;
  while (table_size < 2 * capacity) table_size *= 2;
  if (capacity) {
    st = onnx_arena_array(b->arena, capacity, sizeof *g->values, (void **)&g->values);
    if (st) return st;
  }
  st = onnx_arena_array(b->arena, table_size, sizeof *g->table, (void **)&g->table);
  if (st) return st;
  memset(g->table, 0xff, table_size * sizeof *g->table);
  g->table_mask = table_size - 1;
  if (src->n_nodes) {
    st = onnx_arena_array(b->arena, src->n_nodes, sizeof *g->nodes, (void **)&g->nodes);
    if (st) return st;
  }
  g->n_nodes = src->n_nodes;

  st = add_inputs_and_initializers(b, src);
  if (st) return graph_context(st, g);
  st = add_node_outputs(b, src);
  if (!st) st = resolve_node_inputs(b, src);
  if (st) return st; /* node messages carry their own context */
  st = add_outputs_and_value_info(b, src);
  if (st) return graph_context(st, g);
  for (size_t k = 0; k < g->n_nodes; k++) {
    st = graph_check_node(g, &g->nodes[k]);
    if (st) return graph_node_context(st, g, &g->nodes[k]);
  }
  st = build_subgraphs(b, src);
  if (st) return st;
  return graph_sort(b->arena, g, b->extra, b->n_extra);
}

strand_status graph_build(onnx_arena *arena, const onnx_model *model, graph **out) {
  builder b = {arena, model, NULL, NULL, 0, NULL, 0, 0};
  strand_status st = build_graph(&b, model->graph);
  if (st) return st;
  st = graph_infer(arena, b.g);
  if (st) return st;
  *out = b.g;
  return STRAND_OK;
}
