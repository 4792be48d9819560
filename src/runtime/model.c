/*
 * model.c — the public model object: loading (from a path or a buffer) and
 * the queries of strand.h's "Models" section.
 *
 * A load builds everything in a fresh arena: the file mapping (or the copy
 * of the caller's buffer), the parse tree, the IR and the tables the queries
 * return. Only when all of it succeeded is the object shell allocated and
 * the arena moved into it, so a failing load frees one arena and leaks
 * nothing. After that the model is never written again: queries read it
 * from any thread without locks, and the last release (on any thread) frees
 * the arena, which unmaps the files.
 */
#include "runtime/runtime_internal.h"

#include "kernels/kernels_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tables built at load ---------------------------------------------- */

static strand_status describe_value(onnx_arena *arena, const graph_value *v,
                                    strand_value_info *out) {
  out->name = v->name;
  out->dtype = v->dtype;
  out->rank_known = v->rank >= 0;
  out->rank = v->rank >= 0 ? (size_t)v->rank : 0;
  out->dims = NULL;
  out->dim_names = NULL;
  if (out->rank == 0) return STRAND_OK;
  int64_t *dims;
  const char **names;
  strand_status st = onnx_arena_array(arena, out->rank, sizeof *dims, (void **)&dims);
  if (!st) st = onnx_arena_array(arena, out->rank, sizeof *names, (void **)&names);
  if (st) return st;
  for (size_t i = 0; i < out->rank; i++) {
    dims[i] = v->dims[i].value;
    names[i] = v->dims[i].value < 0 ? v->dims[i].param : NULL;
  }
  out->dims = dims;
  out->dim_names = names;
  return STRAND_OK;
}

static strand_status describe_values(onnx_arena *arena, const graph *g, const int32_t *values,
                                     size_t n, strand_value_info **out) {
  *out = NULL;
  if (!n) return STRAND_OK;
  strand_value_info *infos;
  strand_status st = onnx_arena_array(arena, n, sizeof *infos, (void **)&infos);
  for (size_t i = 0; i < n && !st; i++) st = describe_value(arena, &g->values[values[i]], &infos[i]);
  if (st) return st;
  *out = infos;
  return STRAND_OK;
}

/* Visits every node and initializer of `g` and its subgraphs. */
typedef struct census {
  const graph_node **nodes; /* NULL while only counting */
  size_t n_nodes;
  uint64_t parameters, bytes;
} census;

static void take_census(const graph *g, census *c) {
  for (size_t i = 0; i < g->n_initializers; i++) {
    const onnx_tensor *t = g->values[g->initializers[i]].constant;
    c->parameters += t->count;
    c->bytes += t->byte_size;
  }
  for (size_t k = 0; k < g->n_nodes; k++) {
    if (c->nodes) c->nodes[c->n_nodes] = &g->nodes[k];
    c->n_nodes++;
    for (size_t s = 0; s < g->nodes[k].n_subgraphs; s++) take_census(g->nodes[k].subgraphs[s], c);
  }
}

static int compare_node_type(const void *x, const void *y) {
  const graph_node *a = *(const graph_node *const *)x, *b = *(const graph_node *const *)y;
  int d = strcmp(a->domain, b->domain);
  return d ? d : strcmp(a->op_type, b->op_type);
}

static int compare_ops(const void *x, const void *y) {
  const strand_op_info *a = x, *b = y;
  if (a->count != b->count) return a->count > b->count ? -1 : 1;
  int d = strcmp(a->domain, b->domain);
  return d ? d : strcmp(a->op_type, b->op_type);
}

static strand_status build_tables(onnx_arena *arena, strand_model *m) {
  const graph *g = m->graph;
  strand_status st = describe_values(arena, g, g->inputs, g->n_inputs, &m->inputs);
  if (!st) st = describe_values(arena, g, g->outputs, g->n_outputs, &m->outputs);
  if (st) return st;
  m->n_inputs = g->n_inputs;
  m->n_outputs = g->n_outputs;

  census c = {0};
  take_census(g, &c);
  m->parameters = c.parameters;
  m->parameter_bytes = c.bytes;
  if (!c.n_nodes) return STRAND_OK;
  const graph_node **nodes;
  st = onnx_arena_array(arena, c.n_nodes, sizeof *nodes, (void **)&nodes);
  if (st) return st;
  c = (census){nodes, 0, 0, 0};
  take_census(g, &c);
  qsort(nodes, c.n_nodes, sizeof *nodes, compare_node_type);
  size_t types = 0;
  for (size_t i = 0; i < c.n_nodes; i++)
    if (i == 0 || compare_node_type(&nodes[i - 1], &nodes[i])) types++;
  st = onnx_arena_array(arena, types, sizeof *m->ops, (void **)&m->ops);
  if (st) return st;
  for (size_t i = 0; i < c.n_nodes; i++) {
    const graph_node *n = nodes[i];
    if (i == 0 || compare_node_type(&nodes[i - 1], &nodes[i])) {
      strand_op_info *op = &m->ops[m->n_ops++];
      op->op_type = n->op_type;
      op->domain = n->domain;
      op->opset = n->opset;
      op->supported = 1;
    }
    strand_op_info *op = &m->ops[m->n_ops - 1];
    op->count++;
    /* Main-graph nodes are checked with their input dtypes too (a Gemm over
     * int64 weights has no kernel); subgraph nodes by op and opset. */
    bool in_main = n >= g->nodes && n < g->nodes + g->n_nodes;
    if (!n->folded && !(in_main ? strand__kernel_supported_node(g, n)
                                : strand__kernel_supported(n->domain, n->op_type, n->opset)))
      op->supported = 0;
  }
  for (size_t i = 0; i < m->n_ops; i++) m->n_unsupported += !m->ops[i].supported;
  qsort(m->ops, m->n_ops, sizeof *m->ops, compare_ops);
  return STRAND_OK;
}

/* ---- loading ----------------------------------------------------------- */

static void model_destroy(strand__object *self) {
  strand_model *m = (strand_model *)self;
  onnx_arena_free(&m->arena);
}

/* Parses and builds from bytes already held by `arena`. */
static strand_status load(onnx_arena *arena, const uint8_t *bytes, size_t size, const char *dir,
                          const void *site, strand_model **out) {
  onnx_parser p = {arena, bytes, size, dir, NULL, 0};
  strand_model proto;
  memset(&proto, 0, sizeof proto);
  onnx_model *parsed;
  strand_status st = onnx_parse_model(&p, &parsed);
  if (st) return st;
  proto.onnx = parsed;
  st = graph_build(arena, parsed, &proto.graph);
  if (!st) st = build_tables(arena, &proto);
  if (st) return st;
  void *shell;
  st = strand__alloc(sizeof(strand_model), STRAND_MEMORY_OTHER, &shell);
  if (st) return st;
  strand_model *m = shell;
  *m = proto;
  m->arena = *arena; /* moved: nothing points back into the arena struct */
  onnx_arena_init(arena);
  strand__object_init(&m->header, STRAND_KIND_MODEL, sizeof *m, model_destroy, site);
  strand__object_add_bytes(&m->header, (int64_t)(m->arena.chunk_bytes + m->arena.weight_bytes));
  *out = m;
  return STRAND_OK;
}

static strand_status load_path(const char *path, const void *site, strand_model **out) {
  onnx_arena arena;
  onnx_arena_init(&arena);
  const uint8_t *bytes;
  size_t size;
  char *dir;
  strand_status st =
      onnx_arena_map_file(&arena, path, ONNX_MAX_MODEL_BYTES, "model", false, &bytes, &size);
  if (!st) st = onnx_directory_of(&arena, path, &dir);
  if (!st) st = load(&arena, bytes, size, dir, site, out);
  onnx_arena_free(&arena); /* empty when the load succeeded */
  return st;
}

STRAND_NOINLINE strand_status strand_model_load(const char *path, strand_model **out) {
  strand__init();
  if (!path) return strand__fail(STRAND_E_INVALID_ARGUMENT, "strand_model_load: path is NULL");
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "strand_model_load: out is NULL");
  return load_path(path, __builtin_return_address(0), out);
}

STRAND_NOINLINE strand_status strand_model_load_buffer(const void *data, size_t size,
                                                       strand_model **out) {
  strand__init();
  static const char fn[] = "strand_model_load_buffer";
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out is NULL", fn);
  if (!data && size) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: data is NULL", fn);
  if (size > ONNX_MAX_MODEL_BYTES)
    return strand__fail(STRAND_E_UNSUPPORTED, "%s: %zu bytes is more than the limit of %zu", fn,
                        size, ONNX_MAX_MODEL_BYTES);
  onnx_arena arena;
  onnx_arena_init(&arena);
  void *copy;
  strand_status st = onnx_arena_weights(&arena, size, &copy);
  if (!st) {
    if (size) memcpy(copy, data, size);
    st = load(&arena, copy, size, NULL, __builtin_return_address(0), out);
  }
  onnx_arena_free(&arena);
  return st;
}

/* ---- references -------------------------------------------------------- */

strand_status strand_model_retain(strand_model *model) {
  strand_status st = strand__object_check(model, STRAND_KIND_MODEL, "strand_model_retain");
  if (st) return st;
  return strand__object_retain(&model->header, "strand_model_retain");
}

void strand_model_release(strand_model *model) {
  strand__object_release_checked(model, STRAND_KIND_MODEL, "strand_model_release");
}

/* ---- queries ----------------------------------------------------------- */

static strand_status check(const strand_model *model, const void *out, const char *function) {
  strand_status st = strand__object_check(model, STRAND_KIND_MODEL, function);
  if (st) return st;
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out is NULL", function);
  return STRAND_OK;
}

static strand_status check_index(size_t index, size_t count, const char *what,
                                 const char *function) {
  if (index < count) return STRAND_OK;
  return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: index %zu is out of range (the model has "
                      "%zu %s)", function, index, count, what);
}

strand_status strand_model_input_count(const strand_model *model, size_t *out) {
  strand_status st = check(model, out, "strand_model_input_count");
  if (st) return st;
  *out = model->n_inputs;
  return STRAND_OK;
}

strand_status strand_model_output_count(const strand_model *model, size_t *out) {
  strand_status st = check(model, out, "strand_model_output_count");
  if (st) return st;
  *out = model->n_outputs;
  return STRAND_OK;
}

strand_status strand_model_input(const strand_model *model, size_t index, strand_value_info *out) {
  static const char fn[] = "strand_model_input";
  strand_status st = check(model, out, fn);
  if (!st) st = check_index(index, model->n_inputs, "inputs", fn);
  if (st) return st;
  *out = model->inputs[index];
  return STRAND_OK;
}

strand_status strand_model_output(const strand_model *model, size_t index,
                                  strand_value_info *out) {
  static const char fn[] = "strand_model_output";
  strand_status st = check(model, out, fn);
  if (!st) st = check_index(index, model->n_outputs, "outputs", fn);
  if (st) return st;
  *out = model->outputs[index];
  return STRAND_OK;
}

static strand_status find(const strand_value_info *infos, size_t n, const char *name,
                          const char *what, size_t *index) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(infos[i].name, name) == 0) {
      *index = i;
      return STRAND_OK;
    }
  return strand__fail(STRAND_E_NOT_FOUND, "the model has no %s named \"%s\"", what, name);
}

strand_status strand_model_find_input(const strand_model *model, const char *name,
                                      size_t *index) {
  static const char fn[] = "strand_model_find_input";
  strand_status st = check(model, index, fn);
  if (st) return st;
  if (!name) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: name is NULL", fn);
  return find(model->inputs, model->n_inputs, name, "input", index);
}

strand_status strand_model_find_output(const strand_model *model, const char *name,
                                       size_t *index) {
  static const char fn[] = "strand_model_find_output";
  strand_status st = check(model, index, fn);
  if (st) return st;
  if (!name) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: name is NULL", fn);
  return find(model->outputs, model->n_outputs, name, "output", index);
}

strand_status strand_model_ir_version(const strand_model *model, int64_t *out) {
  strand_status st = check(model, out, "strand_model_ir_version");
  if (st) return st;
  *out = model->onnx->ir_version;
  return STRAND_OK;
}

strand_status strand_model_producer(const strand_model *model, const char **name,
                                    const char **version) {
  strand_status st = strand__object_check(model, STRAND_KIND_MODEL, "strand_model_producer");
  if (st) return st;
  if (name) *name = model->onnx->producer_name;
  if (version) *version = model->onnx->producer_version;
  return STRAND_OK;
}

strand_status strand_model_graph_name(const strand_model *model, const char **out) {
  strand_status st = check(model, out, "strand_model_graph_name");
  if (st) return st;
  *out = model->graph->name;
  return STRAND_OK;
}

strand_status strand_model_opset_count(const strand_model *model, size_t *out) {
  strand_status st = check(model, out, "strand_model_opset_count");
  if (st) return st;
  *out = model->onnx->n_opsets;
  return STRAND_OK;
}

strand_status strand_model_opset_at(const strand_model *model, size_t index, const char **domain,
                                    int64_t *version) {
  static const char fn[] = "strand_model_opset_at";
  strand_status st = strand__object_check(model, STRAND_KIND_MODEL, fn);
  if (!st) st = check_index(index, model->onnx->n_opsets, "opset imports", fn);
  if (st) return st;
  if (domain) *domain = model->onnx->opsets[index].domain;
  if (version) *version = model->onnx->opsets[index].version;
  return STRAND_OK;
}

strand_status strand_model_opset(const strand_model *model, const char *domain,
                                 int64_t *version) {
  static const char fn[] = "strand_model_opset";
  strand_status st = check(model, version, fn);
  if (st) return st;
  if (!domain) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: domain is NULL", fn);
  int64_t v = graph_opset(model->onnx, domain);
  if (v < 0)
    return strand__fail(STRAND_E_NOT_FOUND, "the model imports no opset for domain \"%s\"",
                        domain);
  *version = v;
  return STRAND_OK;
}

strand_status strand_model_op_count(const strand_model *model, size_t *out) {
  strand_status st = check(model, out, "strand_model_op_count");
  if (st) return st;
  *out = model->n_ops;
  return STRAND_OK;
}

strand_status strand_model_op(const strand_model *model, size_t index, strand_op_info *out) {
  static const char fn[] = "strand_model_op";
  strand_status st = check(model, out, fn);
  if (!st) st = check_index(index, model->n_ops, "op types", fn);
  if (st) return st;
  *out = model->ops[index];
  return STRAND_OK;
}

strand_status strand_model_check_supported(const strand_model *model) {
  strand_status st =
      strand__object_check(model, STRAND_KIND_MODEL, "strand_model_check_supported");
  if (st) return st;
  if (!model->n_unsupported) return STRAND_OK;
  char text[768];
  size_t used = 0, listed = 0;
  for (size_t i = 0; i < model->n_ops && used < sizeof text; i++) {
    const strand_op_info *op = &model->ops[i];
    if (op->supported) continue;
    if (listed == 12) {
      snprintf(text + used, sizeof text - used, ", ...");
      break;
    }
    used += (size_t)snprintf(text + used, sizeof text - used, "%s%s%s%s (x%llu)",
                             listed ? ", " : "", op->domain, op->domain[0] ? "." : "",
                             op->op_type, (unsigned long long)op->count);
    listed++;
  }
  return strand__fail(STRAND_E_UNSUPPORTED, "no kernel for %zu op type%s: %s",
                      model->n_unsupported, model->n_unsupported == 1 ? "" : "s", text);
}

strand_status strand_model_parameter_count(const strand_model *model, uint64_t *parameters,
                                           uint64_t *bytes) {
  strand_status st =
      strand__object_check(model, STRAND_KIND_MODEL, "strand_model_parameter_count");
  if (st) return st;
  if (parameters) *parameters = model->parameters;
  if (bytes) *bytes = model->parameter_bytes;
  return STRAND_OK;
}
