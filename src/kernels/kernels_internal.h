/*
 * kernels_internal.h — what the kernel layer offers the layers above it:
 * the kernel interface, the registry and the helpers kernel files share.
 *
 * A kernel is a kernel_def: an op type of a domain over a range of opsets,
 * with four functions the session and the executor call:
 *
 *   accepts  at session creation: may it run a node whose inputs have these
 *            dtypes? (UNDEFINED stands for a dtype not known statically and
 *            must be accepted; the executor asks again with the real ones);
 *   prepare  at session creation, once per node: parses and checks the
 *            attributes and pre-packs constant weights into `*params`
 *            (memory from kernel_alloc, freed with the session);
 *   infer    at a planning run: the output dtypes and shapes from the
 *            actual input tensors. Inputs named in `shape_inputs` have their
 *            data available (a Reshape's target shape, computed at run time);
 *   scratch  at a planning run, after infer: bytes of working memory `run`
 *            needs (0 when NULL);
 *   run      computes the outputs. Never allocates, never blocks; big loops
 *            go through kernel_parallel / strand__parallel_for with at most
 *            call->threads threads.
 *
 * Tensors are seen through kernel_tensor views: dense, row-major, data
 * aligned to at least the element size and never NULL (an empty tensor
 * points at a dummy). Inputs are read-only; an output's buffer never
 * overlaps an input's. Every failing function records a message naming the
 * attribute, input or dimension at fault (strand__fail); the executor adds
 * the node ("node \"conv_3\" (Conv): ").
 */
#ifndef STRAND_KERNELS_INTERNAL_H
#define STRAND_KERNELS_INTERNAL_H

#include "graph/graph_internal.h"
#include "kernels/gemm.h"
#include "runtime/thread_pool.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- what the model loader asks ----------------------------------------- */

/* True when strand has a kernel for `op_type` in `domain` ("" or "ai.onnx"
 * for the default ONNX domain) at `opset` (-1 when the model imports none
 * for the domain), for some input dtypes. Pure and thread-safe. */
bool strand__kernel_supported(const char *domain, const char *op_type, int64_t opset);

/* The same question for one node of `g`, its input dtypes (as far as they
 * are known) taken into account: a Gemm over int64 weights has no kernel
 * even though Gemm has one for float32. What session creation will find. */
bool strand__kernel_supported_node(const graph *g, const graph_node *node);

/* ---- tensor views ------------------------------------------------------- */

typedef struct kernel_tensor {
  strand_dtype dtype;
  size_t rank;
  int64_t dims[STRAND_MAX_RANK];
  size_t count; /* elements: the product of dims (1 for rank 0) */
  void *data;   /* never NULL; points at a dummy when count is 0 */
} kernel_tensor;

/* Sets dtype and shape (infer's job); count is computed by the executor. */
void kernel_set_shape(kernel_tensor *t, strand_dtype dtype, size_t rank, const int64_t *dims);

/* The shape as text, "[2, 3, 4]", into buf; returns buf. */
const char *kernel_shape_text(const kernel_tensor *t, char *buf, size_t size);

/* ---- calls -------------------------------------------------------------- */

/* The values of the graphs enclosing a node, for kernels that run subgraphs
 * (If): a chain from the graph running the node out to the main graph. A
 * subgraph's GRAPH_VALUE_OUTER value (outer_graph, outer_index) is read as
 * views[outer_index] of the link whose graph is outer_graph. Views are the
 * running executions' own: read-only, valid while the node runs. */
typedef struct kernel_scope {
  const struct kernel_scope *parent; /* NULL: the main graph */
  const graph *graph;
  const kernel_tensor *views;        /* per value of graph */
} kernel_scope;

struct kernel_call;

/* Gives output k of a KERNEL_SHAPED_BY_RUN kernel memory: its dtype and
 * shape must be set (kernel_set_shape); sets count and data. */
typedef strand_status (*kernel_place_fn)(const struct kernel_call *c, size_t k);

/* place(c, KERNEL_PLACE_BOUNDARY): a subgraph node is about to run; not STRAND_OK: return it. */
#define KERNEL_PLACE_BOUNDARY ((size_t)-1)

typedef struct kernel_call {
  const graph *graph;
  const graph_node *node;
  const void *params;                  /* from prepare; NULL when none */
  size_t n_inputs;                     /* node->n_inputs */
  const kernel_tensor *const *inputs;  /* NULL for an absent optional input */
  size_t n_outputs;                    /* node->n_outputs */
  kernel_tensor *const *outputs;       /* NULL for an output nobody needs */
  void *scratch;                       /* run: scratch_size bytes, 64-aligned */
  size_t scratch_size;
  unsigned threads;                    /* >= 1: most threads a loop may use */
  const kernel_scope *scope;           /* graph's values, for subgraphs; NULL: none */
  kernel_place_fn place;               /* KERNEL_SHAPED_BY_RUN: run's output memory */
  void *place_context;                 /* the executor's, for place */
} kernel_call;


/* Input k, or NULL when absent (also for k past the node's inputs). */
static inline const kernel_tensor *kernel_input(const kernel_call *c, size_t k) {
  return k < c->n_inputs ? c->inputs[k] : NULL;
}

/* Output k, or NULL when not wanted. */
static inline kernel_tensor *kernel_output(const kernel_call *c, size_t k) {
  return k < c->n_outputs ? c->outputs[k] : NULL;
}

/* What prepare is given. */
typedef struct kernel_prepare {
  const graph *graph;
  const graph_node *node;
  struct kernel_block **blocks; /* memory handed out by kernel_alloc */
  /* NULL, or per input of the node: a constant that replaces the graph's
   * for this node (a Conv that absorbed a BatchNormalization); NULL
   * entries leave the graph's. The executor passes the same values at
   * run time (session_node.constants). */
  const onnx_tensor *const *constants;
  size_t n_constants; /* entries of constants; may exceed the node's inputs */
} kernel_prepare;

/* Zero-filled memory of `size` bytes aligned to 64, counted under `category`
 * (WEIGHTS for packed weights, OTHER for parameters), owned by the session
 * and freed with it. */
strand_status kernel_alloc(kernel_prepare *p, size_t size, strand_memory_category category,
                           void **out);

/* Weights w [m][k] (row-major) repacked for kernels that compute `rows`
 * outputs at once: panel q holds rows q*rows .. q*rows + rows - 1, with
 * element t of row r at (q*k + t)*rows + r; rows past m are zero. The bias
 * (NULL: zero) is copied into as many floats. Both from kernel_alloc, in
 * the weights category. */
strand_status kernel_pack_panels(kernel_prepare *p, const float *w, const float *bias, size_t m,
                                 size_t k, size_t rows, float **panels, float **panel_bias);
/* The values of `g` that the subgraphs of `node` (a node of g) read, at any
 * depth, without repeats, into memory from kernel_alloc; *reads NULL and
 * *n 0 when none. An executor counts them as inputs of the node. */
strand_status kernel_outer_reads(kernel_prepare *p, const graph *g, const graph_node *node,
                                 const int32_t **reads, size_t *n);

/* Frees every block of the list (the session's destructor). */
void kernel_free_blocks(struct kernel_block **blocks);
/* Frees the one block of the list whose memory kernel_alloc returned as
 * `payload` (nothing when none is). */
void kernel_free_block(struct kernel_block **blocks, void *payload);

/* Whether a prepared Conv (its params) reads its weights input at run
 * time; false when every run takes weights it packed at creation. */
bool kernel_conv_reads_weights(const void *params);
/* kernel_variant of a prepared Conv. */
const char *kernel_conv_variant(const void *params);
/* Payload bytes of every block of the list. */
size_t kernel_blocks_bytes(const struct kernel_block *blocks);

/* The constant value of the node's input k (a folded value, an
 * initializer), or NULL when the input is absent or computed at run time. */
const onnx_tensor *kernel_constant_input(const kernel_prepare *p, size_t k);
/* Whether the node's kernel gets input k: present in the graph, or given
 * by kernel_prepare.constants. */
bool kernel_has_input(const kernel_prepare *p, size_t k);

/* The statically inferred type of input k: dtype UNDEFINED and rank -1 when
 * unknown or absent. */
const graph_value *kernel_input_value(const kernel_prepare *p, size_t k);

/* ---- the kernel table --------------------------------------------------- */

enum kernel_flags {
  /* An output's shape depends on input data in a way no shape input
   * captures (NonZero, TopK with k from data): no plan is cached. */
  KERNEL_DATA_DEPENDENT_SHAPE = 1u << 0,
  /* The outputs' data depends on the input shapes only, not on their data
   * (Shape, Size): it does not carry input data into later shapes. */
  KERNEL_SHAPE_ONLY = 1u << 1,
  /* The kernel can apply an activation to output 0 as it writes it: its
   * params begin with a kernel_activation the session may set (Conv, Gemm,
   * MatMul absorb a following Relu or Clip). */
  KERNEL_FUSES_ACTIVATION = 1u << 2,
  /* The output shapes are known only by running (If runs a branch): infer
   * is not called; run sets each wanted output's dtype and shape and calls
   * c->place(c, k) before writing it. No plan is cached. */
  KERNEL_SHAPED_BY_RUN = 1u << 3
};

/* An activation applied in a product's epilogue (gemm.h's kinds). */
typedef struct kernel_activation {
  strand__gemm_activation kind; /* NONE, RELU or CLIP */
  float lo, hi;                 /* CLIP bounds */
} kernel_activation;

/* True when `node` is an activation a producer can absorb: Relu, or Clip
 * whose bounds are constants (attributes before opset 11), on float32;
 * *out describes it. */
bool kernel_fusable_activation(const graph *g, const graph_node *node, kernel_activation *out);

/* Applies `act` to n floats in place. */
void kernel_activate(const kernel_activation *act, float *x, size_t n);

/* The newest opset the kernels are checked against (the ONNX backend node
 * tests generate their cases at the newest opset of each op). Opsets 22 to
 * 28 changed the ops here by admitting more element types, except Mod 28
 * (floor Mod on floats, handled). */
#define KERNEL_OPSET_MAX 28

typedef struct kernel_def {
  const char *op_type;
  const char *domain; /* "" for the default ONNX domain */
  int opset_min, opset_max;
  uint32_t shape_inputs; /* bit k: infer reads the data of input k */
  uint32_t flags;
  bool (*accepts)(const strand_dtype *dtypes, size_t n_inputs);
  strand_status (*prepare)(kernel_prepare *p, void **params); /* NULL: none */
  strand_status (*infer)(const kernel_call *c);
  size_t (*scratch)(const kernel_call *c); /* NULL: no scratch */
  strand_status (*run)(const kernel_call *c);
} kernel_def;

/* The kernel for a node whose inputs have `dtypes` (UNDEFINED: unknown or
 * absent). NULL when there is none, with *op_known telling whether the op
 * exists at that opset (then only the dtypes were refused). */
const kernel_def *kernel_find(const char *domain, const char *op_type, int64_t opset,
                              const strand_dtype *dtypes, size_t n_inputs, bool *op_known);

/* How a node of kernel `def` with these params (from its prepare, or NULL)
 * runs, as chosen at session creation, for the kernels that have more than
 * one way (strand_node_profile.kernel lists them); "" otherwise. A static
 * string. */
const char *kernel_variant(const kernel_def *def, const void *params);

/* The number of kernels in the table and kernel i, for tests and listings. */
size_t kernel_count(void);
const kernel_def *kernel_at(size_t i);

/* ---- dtypes ------------------------------------------------------------- */

/* Sets of dtypes as bit masks (every dtype value is below 32). */
#define KERNEL_DT(name) (1u << STRAND_DTYPE_##name)
#define KERNEL_DT_FLOATS (KERNEL_DT(FLOAT32) | KERNEL_DT(FLOAT64))
#define KERNEL_DT_SIGNED_INTS \
  (KERNEL_DT(INT8) | KERNEL_DT(INT16) | KERNEL_DT(INT32) | KERNEL_DT(INT64))
#define KERNEL_DT_UNSIGNED_INTS \
  (KERNEL_DT(UINT8) | KERNEL_DT(UINT16) | KERNEL_DT(UINT32) | KERNEL_DT(UINT64))
#define KERNEL_DT_INTS (KERNEL_DT_SIGNED_INTS | KERNEL_DT_UNSIGNED_INTS)
#define KERNEL_DT_NUMBERS (KERNEL_DT_FLOATS | KERNEL_DT_INTS)
#define KERNEL_DT_ALL (KERNEL_DT_NUMBERS | KERNEL_DT(BOOL) | KERNEL_DT(FLOAT16) | KERNEL_DT(BFLOAT16))

/* True when `dtype` is UNDEFINED (not known yet) or in `mask`. */
static inline bool kernel_dtype_in(strand_dtype dtype, uint32_t mask) {
  return dtype == STRAND_DTYPE_UNDEFINED || ((unsigned)dtype < 32 && (mask >> dtype) & 1u);
}

/* True when dtypes a and b are equal or either is UNDEFINED. */
static inline bool kernel_dtype_same(strand_dtype a, strand_dtype b) {
  return a == b || a == STRAND_DTYPE_UNDEFINED || b == STRAND_DTYPE_UNDEFINED;
}

/* accepts helpers: input 0 in mask and every other present input the same
 * dtype (kernel_accepts_same_*), or only input 0 checked. */
bool kernel_accepts_float32(const strand_dtype *dtypes, size_t n);
bool kernel_accepts_floats(const strand_dtype *dtypes, size_t n);
bool kernel_accepts_any(const strand_dtype *dtypes, size_t n);

/* ---- attributes (attributes are checked at prepare) --------------------- */

/* Each reads the node's attribute `name`; when it is absent the fallback is
 * given (for lists: *values NULL and *count 0). A wrong attribute type fails
 * with STRAND_E_MALFORMED_MODEL naming the attribute. */
strand_status kernel_attr_int(const graph_node *node, const char *name, int64_t fallback,
                              int64_t *out);
strand_status kernel_attr_float(const graph_node *node, const char *name, float fallback,
                                float *out);
strand_status kernel_attr_string(const graph_node *node, const char *name, const char *fallback,
                                 const char **out);
strand_status kernel_attr_ints(const graph_node *node, const char *name, const int64_t **values,
                               size_t *count);

/* Normalizes an axis in [-rank, rank) to [0, rank); fails with
 * STRAND_E_INVALID_ARGUMENT naming `what` ("attribute \"axis\"") otherwise. */
strand_status kernel_axis(int64_t axis, size_t rank, const char *what, size_t *out);

/* Reads element i of an integer tensor (int32 or int64) as int64. */
static inline int64_t kernel_int_at(const kernel_tensor *t, size_t i) {
  if (t->dtype == STRAND_DTYPE_INT32) return ((const int32_t *)t->data)[i];
  return ((const int64_t *)t->data)[i];
}

/* Reads element i of a numeric tensor as double. */
double kernel_number_at(const void *data, strand_dtype dtype, size_t i);

/* float16 and bfloat16 (raw bits) to and from float32; to 16 bits rounds
 * to nearest even, overflow gives infinity, NaN stays NaN. */
float kernel_half_to_float(uint16_t h);
uint16_t kernel_float_to_half(float f);
float kernel_bfloat_to_float(uint16_t b);
uint16_t kernel_float_to_bfloat(float f);

/* ---- parallel loops ----------------------------------------------------- */

/* Processes items [begin, end). */
typedef void (*kernel_range_fn)(void *ctx, size_t begin, size_t end);

/* Runs fn over [0, n) split into contiguous ranges of at least `grain`
 * items, on up to `threads` threads (a few ranges per thread so that uneven
 * ranges balance). Small n runs inline on the calling thread. */
void kernel_parallel(unsigned threads, size_t n, size_t grain, kernel_range_fn fn, void *ctx);

/* Items per range worth a hand-off when each item costs `cost` simple
 * operations (about 32K operations per range). */
static inline size_t kernel_grain(size_t cost) {
  size_t g = (size_t)32768 / (cost ? cost : 1);
  return g ? g : 1;
}

/* ---- numpy broadcasting ------------------------------------------------- */

#define KERNEL_BROADCAST_MAX_INPUTS 3

/* The broadcast shape of `n` shapes into `dims`/`*rank`; fails with
 * STRAND_E_SHAPE naming the inputs and dimension that disagree. */
strand_status kernel_broadcast_shape(const kernel_tensor *const *inputs, size_t n, int64_t *dims,
                                     size_t *rank);

/* An iteration over an output of shape `dims` with up to three inputs
 * broadcast into it, with dimensions merged wherever all operands allow,
 * so that the innermost run is as long as possible. */
typedef struct kernel_broadcast {
  size_t n_inputs;
  size_t rank;                                                /* >= 1 */
  size_t dims[STRAND_MAX_RANK];                               /* merged output dims */
  size_t strides[KERNEL_BROADCAST_MAX_INPUTS][STRAND_MAX_RANK]; /* elements; 0: broadcast */
  size_t inner;        /* dims[rank - 1] */
  size_t rows;         /* product of the other dims */
  size_t count;        /* rows * inner */
} kernel_broadcast;

/* Prepares the iteration of `out` (already shaped) over `inputs`. */
void kernel_broadcast_init(kernel_broadcast *b, const kernel_tensor *out,
                           const kernel_tensor *const *inputs, size_t n);

/* A position in the iteration: the multi-index of a row and each input's
 * element offset there. */
typedef struct kernel_broadcast_cursor {
  size_t index[STRAND_MAX_RANK];
  size_t offset[KERNEL_BROADCAST_MAX_INPUTS];
} kernel_broadcast_cursor;

/* Moves the cursor to row `row` (< b->rows), or on to the next row. */
void kernel_broadcast_seek(const kernel_broadcast *b, size_t row, kernel_broadcast_cursor *c);
void kernel_broadcast_next(const kernel_broadcast *b, kernel_broadcast_cursor *c);

/* Computes `n` output elements from output element `out_offset` on: input
 * k starts at element offsets[k] and advances by b->strides[k][rank - 1]
 * (0 or 1) per element. */
typedef void (*kernel_span_fn)(void *ctx, size_t n, const size_t *offsets, size_t out_offset,
                               const kernel_broadcast *b);

/* Runs fn over every output element in spans (a row or part of one), in
 * parallel on up to `threads` threads when the output is big; `cost` is the
 * work per element in simple operations. */
void kernel_broadcast_run(unsigned threads, const kernel_broadcast *b, size_t cost,
                          kernel_span_fn fn, void *ctx);

/* ---- shared by kernel files --------------------------------------------- */

/* Copies src's elements into dst (same count and dtype) in parallel. */
void kernel_copy(unsigned threads, void *dst, const void *src, size_t bytes);

/* Fills `out` (shape set) from `in` broadcast into it, for any dtype. */
void kernel_broadcast_copy(unsigned threads, const kernel_tensor *in, kernel_tensor *out);

/* ---- matrix products on the packed SGEMM (matmul.c) ---------------------- */

/* One product C = alpha*op(A)*op(B) + beta*C (+ epilogue), B raw or packed
 * (then `packed` is set and trans_b, b, ldb are ignored; n and k are its). */
typedef struct kernel_gemm {
  const strand__gemm_kernel *kernel; /* NULL: the default (or packed's) */
  bool trans_a, trans_b;
  size_t m, n, k;
  float alpha, beta;
  const float *a;
  size_t lda;
  const float *b;
  size_t ldb;
  const void *packed;
  float *c;
  size_t ldc;
  const strand__gemm_epilogue *epilogue;
  /* NULL, or A packed whole by strand__gemm_pack_a for `packed`'s kernel
   * (then `packed` is set, and trans_a, a and lda are ignored). */
  const float *packed_a;
} kernel_gemm;

/* Scratch bytes kernel_gemm_run needs for products of this size on up to
 * `threads` threads. */
size_t kernel_gemm_scratch(const strand__gemm_kernel *kernel, size_t m, size_t n, size_t k,
                           bool packed, unsigned threads);

/* Runs the product split into blocks over up to `threads` threads, as many
 * as the work and `scratch_size` allow. */
void kernel_gemm_run(const kernel_gemm *g, unsigned threads, void *scratch, size_t scratch_size);

/* ---- sliding windows: Conv and the pools (conv.c) ------------------------- */

/* Spatial dimensions a window op handles (1-D and 2-D are run as 3-D). */
#define KERNEL_MAX_SPATIAL 3

typedef enum kernel_auto_pad {
  KERNEL_PAD_NOTSET, KERNEL_PAD_SAME_UPPER, KERNEL_PAD_SAME_LOWER, KERNEL_PAD_VALID
} kernel_auto_pad;

/* The window attributes as given (lists may be absent: count 0). */
typedef struct kernel_window {
  size_t n_kernel, n_strides, n_dilations, n_pads;
  int64_t kernel[KERNEL_MAX_SPATIAL];
  int64_t strides[KERNEL_MAX_SPATIAL];
  int64_t dilations[KERNEL_MAX_SPATIAL];
  int64_t pads[2 * KERNEL_MAX_SPATIAL]; /* begins, then ends */
  kernel_auto_pad auto_pad;
  bool ceil_mode;
} kernel_window;

/* Reads kernel_shape, strides, dilations, pads, auto_pad (and ceil_mode)
 * and checks their values (positive strides and dilations, pads >= 0, at
 * most KERNEL_MAX_SPATIAL dims: STRAND_E_UNSUPPORTED beyond). */
strand_status kernel_window_read(const graph_node *node, kernel_window *w);

/* A window's geometry for one input, 3-D (leading dims 1 for 1-D, 2-D). */
typedef struct kernel_geometry {
  size_t spatial;                       /* the op's own spatial rank */
  int64_t in[KERNEL_MAX_SPATIAL], out[KERNEL_MAX_SPATIAL];
  int64_t kernel[KERNEL_MAX_SPATIAL], stride[KERNEL_MAX_SPATIAL], dilation[KERNEL_MAX_SPATIAL];
  int64_t pad_begin[KERNEL_MAX_SPATIAL], pad_end[KERNEL_MAX_SPATIAL];
} kernel_geometry;

/* The geometry of `w` over spatial input dims `in` (`spatial` of them) with
 * `kernel` (NULL: the attribute's). Fails with STRAND_E_SHAPE when lists
 * disagree with the rank or the window does not fit. */
strand_status kernel_window_geometry(const kernel_window *w, size_t spatial, const int64_t *in,
                                     const int64_t *kernel, kernel_geometry *g);

/* ---- views ---------------------------------------------------------------- */

/* True when a Transpose prepared with `params` leaves the elements of `x`
 * in the order they have: every dim it moves out of order is 1 (a batch of
 * one moved behind the sequence, say), so its output may share x's bytes. */
bool kernel_transpose_keeps_order(const void *params, const kernel_tensor *x);

/* True when a Gather prepared with `params` takes one contiguous block of
 * `x`: one index, valid, on an axis with only dims of 1 before it (q, k
 * and v taken from a stacked projection); *offset is then the block's
 * first byte in x. */
bool kernel_gather_is_block(const void *params, const kernel_tensor *x, const kernel_tensor *indices,
                            size_t *offset);

/* ---- the kernels, one per line; kernel files define them ----------------- */

/* X(identifier): each kernel file defines `const kernel_def kernel_<id>`. */
#define KERNEL_LIST(X)                                                                    \
  /* elementwise.c */                                                                     \
  X(Add) X(Sub) X(Mul) X(Div) X(Mod) X(Pow) X(Max) X(Min) X(Sum) X(Mean)                  \
  X(Equal) X(Less) X(Greater) X(LessOrEqual) X(GreaterOrEqual)                            \
  X(And) X(Or) X(Xor) X(Not) X(Where)                                                     \
  X(Abs) X(Neg) X(Exp) X(Log) X(Sqrt) X(Reciprocal) X(Floor) X(Ceil) X(Erf)               \
  /* activation.c */                                                                      \
  X(Relu) X(LeakyRelu) X(Sigmoid) X(Tanh) X(Clip) X(HardSigmoid) X(HardSwish) X(Elu)      \
  X(Selu) X(Softplus) X(Gelu) X(PRelu)                                                    \
  /* matmul.c */                                                                          \
  X(Gemm) X(MatMul)                                                                       \
  /* conv.c */                                                                            \
  X(Conv) X(ConvTranspose)                                                                \
  /* pool.c */                                                                            \
  X(MaxPool) X(AveragePool) X(GlobalAveragePool) X(GlobalMaxPool)                         \
  /* normalization.c */                                                                   \
  X(BatchNormalization) X(LayerNormalization) X(InstanceNormalization)                    \
  /* reduce.c */                                                                          \
  X(ReduceSum) X(ReduceMean) X(ReduceMax) X(ReduceMin) X(ReduceProd) X(ReduceL1)          \
  X(ReduceL2) X(ReduceLogSum) X(ReduceLogSumExp) X(ReduceSumSquare) X(ArgMax) X(ArgMin)   \
  /* rearrange.c */                                                                       \
  X(Split) X(Tile) X(Pad)                                                                 \
  /* topk.c */                                                                            \
  X(TopK)                                                                                 \
  /* resize.c */                                                                          \
  X(Resize)                                                                               \
  /* recurrent.c */                                                                       \
  X(LSTM) X(GRU)                                                                          \
  /* softmax.c */                                                                         \
  X(Softmax) X(LogSoftmax)                                                                \
  /* shape_ops.c */                                                                       \
  X(Identity) X(Constant) X(Dropout) X(Flatten) X(Reshape) X(Squeeze) X(Unsqueeze)         \
  X(Transpose) X(Concat) X(Gather) X(Shape) X(Size) X(Cast) X(Expand) X(ConstantOfShape)  \
  X(Range) X(Slice)                                                                       \
  /* control_flow.c */                                                                    \
  X(If)

#define KERNEL_DECLARE_(id) extern const kernel_def kernel_##id;
KERNEL_LIST(KERNEL_DECLARE_)
#undef KERNEL_DECLARE_

#endif /* STRAND_KERNELS_INTERNAL_H */
