/*
 * graph_internal.h — the graph IR: what a loaded model is, once names are
 * resolved, the graph is checked, sorted, typed and partly folded.
 *
 * The IR is built once by graph_build and never changes afterwards; loaded
 * models share it between threads without locks. Everything lives in the
 * model's onnx_arena (names and attributes are the parse tree's own).
 *
 * What holds after a successful graph_build, for every graph (subgraphs
 * included):
 *  - every node input is -1 (an absent optional input) or a value of the same
 *    graph; values of enclosing graphs are reached through GRAPH_VALUE_OUTER
 *    entries that name the defining graph and index;
 *  - every value has exactly one definition: a graph input, an initializer,
 *    one node output, or an outer reference;
 *  - nodes are in topological order (stable: a file already in order keeps
 *    it), including the order implied by subgraphs' outer references;
 *  - nodes of the default domain have the inputs, outputs and attributes
 *    their schema requires (for the ops in the table of validate.c);
 *  - dtype and shape are as known as the inputs allow; a known dim is >= 0;
 *  - values computable at load are GRAPH_VALUE_CONSTANT with `constant` set.
 */
#ifndef STRAND_GRAPH_INTERNAL_H
#define STRAND_GRAPH_INTERNAL_H

#include "onnx/onnx_internal.h"

/* The newest opset of the default ONNX domain that strand knows (that of the
 * ONNX release its tests run against); newer ones are refused as
 * unsupported rather than guessed at. */
#define GRAPH_NEWEST_OPSET 28

/* A dimension: known (value >= 0), symbolic (value -1, `param` names it) or
 * unknown (value -1, param NULL). Symbols with equal text are equal. The
 * same layout as the parse tree's, so declared shapes are used as they are. */
typedef onnx_dim graph_dim;

enum graph_value_flags {
  GRAPH_VALUE_INPUT = 1u << 0,       /* supplied by the caller at run time */
  GRAPH_VALUE_OUTPUT = 1u << 1,      /* a graph output */
  GRAPH_VALUE_INITIALIZER = 1u << 2, /* an initializer (weights) */
  GRAPH_VALUE_CONSTANT = 1u << 3,    /* `constant` holds its value */
  GRAPH_VALUE_OUTER = 1u << 4,       /* defined by an enclosing graph */
  GRAPH_VALUE_FOLDED = 1u << 5       /* computed at load by constant folding */
};

struct graph;

typedef struct graph_value {
  const char *name;
  strand_dtype dtype;  /* UNDEFINED when not known */
  int32_t rank;        /* -1 when not known */
  const graph_dim *dims;
  int32_t producer;    /* index in graph->nodes, -1 when not a node output */
  uint32_t flags;
  const onnx_tensor *constant;      /* with GRAPH_VALUE_CONSTANT */
  const struct graph *outer_graph;  /* with GRAPH_VALUE_OUTER: defining graph */
  int32_t outer_index;              /*   and the value's index there */
} graph_value;

typedef struct graph_node {
  const onnx_node *source;  /* name, attributes, original position */
  const char *name;         /* "" when the file gives none */
  const char *op_type;
  const char *domain;       /* "" for the default domain */
  int64_t opset;            /* of the node's domain; -1 when not imported */
  size_t n_inputs;
  int32_t *inputs;          /* value indices; -1 for an absent optional input */
  size_t n_outputs;
  int32_t *outputs;         /* value indices; -1 for an unused optional output */
  size_t n_subgraphs;
  struct graph **subgraphs; /* GRAPH and GRAPHS attributes, in attribute order */
  bool folded;              /* every output is a constant computed at load */
} graph_node;

typedef struct graph {
  const char *name;
  const onnx_graph *source;
  const struct graph *parent; /* NULL for the main graph */
  size_t depth;               /* 0 for the main graph */
  size_t n_values;
  graph_value *values;
  size_t n_nodes;
  graph_node *nodes;          /* topological order */
  size_t n_inputs;
  int32_t *inputs;            /* graph inputs without an initializer */
  size_t n_outputs;
  int32_t *outputs;
  size_t n_initializers;
  int32_t *initializers;
  size_t table_mask;          /* name lookup: open addressing, size mask + 1 */
  int32_t *table;
} graph;

/* Builds, checks, sorts, types and folds the IR for `model` in `arena`.
 * Errors: STRAND_E_MALFORMED_MODEL or STRAND_E_UNSUPPORTED with a message
 * naming the graph, node and field; STRAND_E_OUT_OF_MEMORY or
 * STRAND_E_MEMORY_LIMIT. */
strand_status graph_build(onnx_arena *arena, const onnx_model *model, graph **out);

/* The value named `name` defined in `g` (outer references included);
 * -1 when there is none. */
int32_t graph_find(const graph *g, const char *name);

/* The node's attribute `name`, or NULL. */
const onnx_attr *graph_node_attr(const graph_node *node, const char *name);

/* The opset `model` imports for `domain` ("" or "ai.onnx" for the default);
 * -1 when it imports none. */
int64_t graph_opset(const onnx_model *model, const char *domain);

/* Adds "node "name" (Op)" (or "graph "g" node ...", for subgraphs) to the
 * calling thread's message and returns `status`. */
strand_status graph_node_context(strand_status status, const graph *g, const graph_node *node);

/* ---- passes used by graph_build (each file holds one) ------------------ */

/* validate.c: input/output counts and required attributes of known ops. */
strand_status graph_check_node(const graph *g, const graph_node *node);

/* order.c: sorts g->nodes topologically; `extra` lists, for nodes by their
 * pre-sort index, additional values they depend on (outer references made by
 * their subgraphs): pairs (node, value), `n_extra` of them. */
strand_status graph_sort(onnx_arena *arena, graph *g, const int32_t *extra, size_t n_extra);

/* infer.c: dtype and shape inference plus constant folding, in topological
 * order, subgraphs after their node's inputs. */
strand_status graph_infer(onnx_arena *arena, graph *g);

/* Merges a type into value `v`: unknown parts are filled in, a known dim
 * replaces a symbolic one. A known dtype, rank or dim that contradicts what
 * `v` already has fails with STRAND_E_MALFORMED_MODEL naming `v`; `what`
 * says where the new type comes from ("inferred", "declared"). */
strand_status graph_merge_type(onnx_arena *arena, graph_value *v, strand_dtype dtype, int32_t rank,
                               const graph_dim *dims, const char *what);

/* Formats a shape as "[batch, 3, 224, 224]" ("?" for unknown dims, "[?]"
 * for unknown rank) into buf; returns buf. */
const char *graph_shape_text(int32_t rank, const graph_dim *dims, char *buf, size_t size);

#endif /* STRAND_GRAPH_INTERNAL_H */
