/*
 * runtime_internal.h — what the runtime layer offers inside strand.
 *
 * The model object: what session and run code need beyond the public
 * queries. Everything reached through a model is immutable while the model
 * is alive and may be read by any thread without locks.
 */
#ifndef STRAND_RUNTIME_INTERNAL_H
#define STRAND_RUNTIME_INTERNAL_H

#include "graph/graph_internal.h"

struct strand_model {
  strand__object header;
  onnx_arena arena; /* owns everything below, and the file mappings */
  const onnx_model *onnx;
  graph *graph;     /* the main graph */
  size_t n_inputs;
  strand_value_info *inputs;
  size_t n_outputs;
  strand_value_info *outputs;
  size_t n_ops;
  strand_op_info *ops;
  size_t n_unsupported; /* op types in `ops` with supported == 0 */
  uint64_t parameters;
  uint64_t parameter_bytes;
};

/* The main graph of a model that passed strand__object_check. */
static inline const graph *strand__model_graph(const strand_model *model) { return model->graph; }

#endif /* STRAND_RUNTIME_INTERNAL_H */
