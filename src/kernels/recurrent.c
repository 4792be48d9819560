/*
 * recurrent.c — LSTM and GRU (forward, reverse, bidirectional; both
 * layouts; sequence_lens; initial states; peepholes; clip; the activation
 * functions ONNX lists).
 *
 * Per direction, the input projection of every time step is one GEMM
 * (X · Wᵀ for all steps at once, with W packed at session creation when it
 * is a constant); each step then adds H_{t-1} · Rᵀ (R packed too) and
 * applies the gate equations row by row. Rows past a batch entry's
 * sequence length keep their state and write zeros to Y.
 *
 * The standard LSTM cell with packed W and R keeps its gate columns in
 * blocks of hidden units (gate_col): a block's four gates sit side by side,
 * so a thread that computes a block's columns of H_{t-1} · Rᵀ can apply
 * that block's cell at once. A step is then one parallel task per range of
 * blocks (product and cell together, one hand-off per step), and each
 * thread reads only its part of R, which stays in its own L2.
 */
#include "kernels/kernels_internal.h"
#include "kernels/vector_math.h"

#include "core/core_internal.h"

#include <math.h>
#include <string.h>

/* ---- activation functions ------------------------------------------------------ */

typedef enum rnn_fn {
  FN_SIGMOID, FN_TANH, FN_RELU, FN_HARD_SIGMOID, FN_LEAKY_RELU, FN_AFFINE, FN_SCALED_TANH,
  FN_THRESHOLDED_RELU, FN_ELU, FN_SOFTSIGN, FN_SOFTPLUS
} rnn_fn;

typedef struct rnn_activation {
  rnn_fn fn;
  float alpha, beta;
} rnn_activation;

static float apply(const rnn_activation *a, float x) {
  switch (a->fn) {
  case FN_SIGMOID: return x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x));
  case FN_TANH: return tanhf(x);
  case FN_RELU: return x < 0 ? 0 : x;
  case FN_HARD_SIGMOID: {
    float v = a->alpha * x + a->beta;
    return v < 0 ? 0 : v > 1 ? 1 : v;
  }
  case FN_LEAKY_RELU: return x < 0 ? a->alpha * x : x;
  case FN_AFFINE: return a->alpha * x + a->beta;
  case FN_SCALED_TANH: return a->alpha * tanhf(a->beta * x);
  case FN_THRESHOLDED_RELU: return x > a->alpha ? x : 0;
  case FN_ELU: return x < 0 ? a->alpha * (expf(x) - 1) : x;
  case FN_SOFTSIGN: return x / (1 + fabsf(x));
  case FN_SOFTPLUS: return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
  }
  return x;
}

typedef struct fn_name {
  const char *name;
  rnn_fn fn;
  bool alpha, beta;
  float default_alpha, default_beta;
} fn_name;

static const fn_name fn_names[] = {
    {"Sigmoid", FN_SIGMOID, false, false, 0, 0},
    {"Tanh", FN_TANH, false, false, 0, 0},
    {"Relu", FN_RELU, false, false, 0, 0},
    {"HardSigmoid", FN_HARD_SIGMOID, true, true, 0.2f, 0.5f},
    {"LeakyRelu", FN_LEAKY_RELU, true, false, 0.01f, 0},
    {"Affine", FN_AFFINE, true, true, 1.0f, 0},
    {"ScaledTanh", FN_SCALED_TANH, true, true, 1.0f, 1.0f},
    {"ThresholdedRelu", FN_THRESHOLDED_RELU, true, false, 1.0f, 0},
    {"Elu", FN_ELU, true, false, 1.0f, 0},
    {"Softsign", FN_SOFTSIGN, false, false, 0, 0},
    {"Softplus", FN_SOFTPLUS, false, false, 0, 0},
};

#define RNN_MAX_FNS 6 /* 3 per direction (LSTM), two directions */

/* ---- parameters -------------------------------------------------------------------- */

typedef struct rnn_params {
  bool lstm;
  size_t gates;        /* 4 (LSTM: i, o, f, c) or 3 (GRU: z, r, h) */
  size_t directions;   /* 1 or 2 */
  bool reverse;        /* a single direction, reversed */
  bool batch_first;    /* layout 1 */
  bool input_forget;   /* LSTM: f = 1 - i */
  bool linear_before_reset; /* GRU */
  float clip;          /* 0: none */
  bool standard_cell;  /* LSTM with sigmoid, tanh, tanh, no input_forget: vector_math's cell */
  int64_t hidden;
  rnn_activation fns[RNN_MAX_FNS]; /* f, g(, h) per direction */
  const void *w_packed[2];         /* per direction: W_dᵀ packed, or NULL */
  const void *r_packed[2];         /* LSTM: R_dᵀ; GRU: R_d's z and r rows */
  const void *rh_packed[2];        /* GRU: R_d's h rows */
  size_t units;                    /* > 0: gate columns in blocks of this many units */
} rnn_params;

/* The column of gate q (0..gates-1) of hidden unit i in a row of gate
 * values: q·h + i, or with units per block u > 0, block b = i / u of width
 * w = min(u, h - b·u) starts at column gates·b·u and holds gate q's units at
 * [q·w, q·w + w), so each block reads as a row of a w-unit cell. */
static size_t gate_col(size_t units, size_t gates, size_t h, size_t q, size_t i) {
  if (!units) return q * h + i;
  size_t block = i / units, first = block * units;
  size_t width = h - first < units ? h - first : units;
  return gates * first + q * width + (i - first);
}

static strand_status read_activations(kernel_prepare *p, rnn_params *params, size_t per_direction) {
  const onnx_attr *names = graph_node_attr(p->node, "activations");
  const onnx_attr *alphas = graph_node_attr(p->node, "activation_alpha");
  const onnx_attr *betas = graph_node_attr(p->node, "activation_beta");
  size_t want = per_direction * params->directions;
  if (names && (names->type != ONNX_ATTR_STRINGS || names->count != want))
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"activations\" must list %zu "
                        "functions", want);
  if ((alphas && alphas->type != ONNX_ATTR_FLOATS) || (betas && betas->type != ONNX_ATTR_FLOATS))
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attributes \"activation_alpha\" and "
                        "\"activation_beta\" must be lists of floats");
  static const char *const lstm_defaults[3] = {"Sigmoid", "Tanh", "Tanh"};
  static const char *const gru_defaults[2] = {"Sigmoid", "Tanh"};
  size_t next_alpha = 0, next_beta = 0;
  for (size_t i = 0; i < want; i++) {
    const char *name = names ? names->strings[i].data
                             : (params->lstm ? lstm_defaults[i % 3] : gru_defaults[i % 2]);
    size_t f = 0;
    while (f < sizeof fn_names / sizeof fn_names[0] && strcmp(fn_names[f].name, name) != 0) f++;
    if (f == sizeof fn_names / sizeof fn_names[0])
      return strand__fail(STRAND_E_UNSUPPORTED, "activation function \"%s\" is not handled", name);
    rnn_activation *a = &params->fns[i];
    a->fn = fn_names[f].fn;
    a->alpha = fn_names[f].default_alpha;
    a->beta = fn_names[f].default_beta;
    if (fn_names[f].alpha && alphas && next_alpha < alphas->count) a->alpha = alphas->floats[next_alpha++];
    if (fn_names[f].beta && betas && next_beta < betas->count) a->beta = betas->floats[next_beta++];
  }
  return STRAND_OK;
}

/* Packs rows [row0, row0 + rows) of constant matrix m (of `cols` columns)
 * transposed: op(B) = those rowsᵀ, cols × rows. With units > 0 (the rows
 * being gates × h gate rows), column gate_col(units, gates, h, q, i) of
 * op(B) is row q·h + i of m. */
static strand_status pack_rows(kernel_prepare *p, const float *m, size_t row0, size_t rows,
                               size_t cols, size_t units, size_t gates, size_t h,
                               const void **out) {
  size_t bytes;
  if (!strand__gemm_pack_b_size(NULL, cols, rows, &bytes))
    return strand__fail(STRAND_E_UNSUPPORTED, "weights of %zu×%zu are too large to pack", rows, cols);
  void *mem;
  strand_status st = kernel_alloc(p, bytes, STRAND_MEMORY_WEIGHTS, &mem);
  if (st) return st;
  if (!units) {
    strand__gemm_pack_b(NULL, true, cols, rows, m + row0 * cols, cols, mem);
    *out = mem;
    return STRAND_OK;
  }
  float *order; /* m's rows in column order */
  st = strand__alloc(rows * cols * sizeof(float), STRAND_MEMORY_SCRATCH, (void **)&order);
  if (st) return st;
  for (size_t q = 0; q < gates; q++)
    for (size_t i = 0; i < h; i++)
      memcpy(order + gate_col(units, gates, h, q, i) * cols, m + (row0 + q * h + i) * cols,
             cols * sizeof(float));
  strand__gemm_pack_b(NULL, true, cols, rows, order, cols, mem);
  strand__free(order, rows * cols * sizeof(float), STRAND_MEMORY_SCRATCH);
  *out = mem;
  return STRAND_OK;
}

/* Hidden units per block of gate columns: a whole number of 16-float
 * vectors whose four gates span whole panels of the kernel's nr columns
 * (so a block boundary is a valid start for a packed product). */
static size_t block_units(void) {
  size_t nr = strand__gemm_kernel_default()->nr;
  return 128 % nr == 0 ? 32 : nr % 16 == 0 ? nr : 16 * nr;
}

static strand_status prepare_rnn(kernel_prepare *p, void **out, bool lstm) {
  rnn_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  params->lstm = lstm;
  params->gates = lstm ? 4 : 3;
  const char *direction;
  int64_t layout = 0, input_forget = 0, lbr = 0;
  st = kernel_attr_string(p->node, "direction", "forward", &direction);
  if (!st) st = kernel_attr_int(p->node, "hidden_size", -1, &params->hidden);
  if (!st) st = kernel_attr_int(p->node, "layout", 0, &layout);
  if (!st) st = kernel_attr_int(p->node, "input_forget", 0, &input_forget);
  if (!st) st = kernel_attr_int(p->node, "linear_before_reset", 0, &lbr);
  if (!st) st = kernel_attr_float(p->node, "clip", 0.0f, &params->clip);
  if (st) return st;
  if (strcmp(direction, "forward") == 0) params->directions = 1;
  else if (strcmp(direction, "reverse") == 0) params->directions = 1, params->reverse = true;
  else if (strcmp(direction, "bidirectional") == 0) params->directions = 2;
  else
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"direction\" is \"%s\"", direction);
  if (params->clip < 0)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"clip\" is %g", (double)params->clip);
  params->batch_first = layout != 0;
  params->input_forget = input_forget != 0;
  params->linear_before_reset = lbr != 0;
  st = read_activations(p, params, lstm ? 3 : 2);
  if (st) return st;
  params->standard_cell = lstm && !params->input_forget && params->clip == 0;
  for (size_t d = 0; d < params->directions && params->standard_cell; d++) {
    const rnn_activation *a = &params->fns[3 * d];
    params->standard_cell = a[0].fn == FN_SIGMOID && a[1].fn == FN_TANH && a[2].fn == FN_TANH;
  }
  /* Pack constant W and R. */
  const onnx_tensor *w = kernel_constant_input(p, 1), *r = kernel_constant_input(p, 2);
  int64_t h = params->hidden;
  size_t g = params->gates;
  bool w_ok = h > 0 && w && w->dtype == STRAND_DTYPE_FLOAT32 && w->rank == 3 &&
              w->dims[0] == (int64_t)params->directions && w->dims[1] == (int64_t)g * h && w->count;
  bool r_ok = h > 0 && r && r->dtype == STRAND_DTYPE_FLOAT32 && r->rank == 3 &&
              r->dims[0] == (int64_t)params->directions && r->dims[1] == (int64_t)g * h &&
              r->dims[2] == h;
  /* Blocks of units for the standard cell without peepholes (input 7),
   * whose run path reads gates through vector_math's cell only. */
  bool peepholes = p->node->n_inputs > 7 && p->node->inputs[7] >= 0;
  size_t units = w_ok && r_ok && params->standard_cell && !peepholes ? block_units() : 0;
  params->units = units;
  if (w_ok)
    for (size_t d = 0; d < params->directions && !st; d++)
      st = pack_rows(p, (const float *)w->data + d * (size_t)w->dims[1] * (size_t)w->dims[2], 0,
                     g * (size_t)h, (size_t)w->dims[2], units, g, (size_t)h, &params->w_packed[d]);
  if (st) return st;
  if (r_ok)
    for (size_t d = 0; d < params->directions && !st; d++) {
      const float *rd = (const float *)r->data + d * (size_t)(g * h * h);
      size_t first = lstm ? g : 2;
      st = pack_rows(p, rd, 0, first * (size_t)h, (size_t)h, units, g, (size_t)h,
                     &params->r_packed[d]);
      if (!st && !lstm)
        st = pack_rows(p, rd, 2 * (size_t)h, (size_t)h, (size_t)h, 0, g, (size_t)h,
                       &params->rh_packed[d]);
    }
  return st;
}

static strand_status prepare_lstm(kernel_prepare *p, void **out) { return prepare_rnn(p, out, true); }
static strand_status prepare_gru(kernel_prepare *p, void **out) { return prepare_rnn(p, out, false); }

static bool accepts_rnn(const strand_dtype *d, size_t n) {
  if (n < 3) return false;
  for (size_t i = 0; i < n; i++) {
    if (i == 4) {
      if (!kernel_dtype_in(d[i], KERNEL_DT(INT32))) return false;
    } else if (!kernel_dtype_in(d[i], KERNEL_DT(FLOAT32))) {
      return false;
    }
  }
  return true;
}

/* ---- shapes -------------------------------------------------------------------------- */

typedef struct rnn_shape {
  size_t seq, batch, input, hidden, dirs, gates;
} rnn_shape;

static strand_status check_dims(const kernel_tensor *t, const char *name, size_t rank,
                                const int64_t *want) {
  bool ok = t->rank == rank;
  for (size_t i = 0; i < rank && ok; i++) ok = t->dims[i] == want[i];
  if (ok) return STRAND_OK;
  kernel_tensor w = {.rank = rank};
  memcpy(w.dims, want, rank * sizeof(int64_t));
  char a[160], b[160];
  return strand__fail(STRAND_E_SHAPE, "%s has shape %s, expected %s", name,
                      kernel_shape_text(t, a, sizeof a), kernel_shape_text(&w, b, sizeof b));
}

static strand_status rnn_shape_of(const kernel_call *c, rnn_shape *s) {
  const rnn_params *p = c->params;
  const kernel_tensor *x = c->inputs[0], *w = c->inputs[1], *r = c->inputs[2];
  char sx[160];
  if (x->rank != 3)
    return strand__fail(STRAND_E_SHAPE, "X %s must have 3 dimensions",
                        kernel_shape_text(x, sx, sizeof sx));
  if (p->hidden < 1)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"hidden_size\" is missing or < 1");
  s->seq = (size_t)x->dims[p->batch_first ? 1 : 0];
  s->batch = (size_t)x->dims[p->batch_first ? 0 : 1];
  s->input = (size_t)x->dims[2];
  s->hidden = (size_t)p->hidden;
  s->dirs = p->directions;
  s->gates = p->gates;
  int64_t d = (int64_t)s->dirs, gh = (int64_t)(s->gates * s->hidden), h = p->hidden,
          b = (int64_t)s->batch;
  strand_status st = check_dims(w, "W", 3, (int64_t[]){d, gh, (int64_t)s->input});
  if (!st) st = check_dims(r, "R", 3, (int64_t[]){d, gh, h});
  const kernel_tensor *bias = kernel_input(c, 3), *lens = kernel_input(c, 4);
  if (!st && bias) st = check_dims(bias, "B", 2, (int64_t[]){d, 2 * gh});
  if (!st && lens) st = check_dims(lens, "sequence_lens", 1, (int64_t[]){b});
  int64_t state[3] = {p->batch_first ? b : d, p->batch_first ? d : b, h};
  for (size_t k = 5; k < 7 && !st; k++) {
    const kernel_tensor *t = kernel_input(c, k);
    if (t && (k == 5 || p->lstm)) st = check_dims(t, k == 5 ? "initial_h" : "initial_c", 3, state);
  }
  const kernel_tensor *peep = p->lstm ? kernel_input(c, 7) : NULL;
  if (!st && peep) st = check_dims(peep, "P", 2, (int64_t[]){d, 3 * h});
  if (!st && lens)
    for (size_t i = 0; i < s->batch; i++) {
      int32_t len = ((const int32_t *)lens->data)[i];
      if (len < 0 || (size_t)len > s->seq)
        return strand__fail(STRAND_E_INVALID_ARGUMENT, "sequence_lens[%zu] is %d for %zu steps", i,
                            len, s->seq);
    }
  return st;
}

static strand_status infer_rnn(const kernel_call *c) {
  const rnn_params *p = c->params;
  rnn_shape s;
  strand_status st = rnn_shape_of(c, &s);
  if (st) return st;
  int64_t seq = (int64_t)s.seq, b = (int64_t)s.batch, d = (int64_t)s.dirs, h = (int64_t)s.hidden;
  int64_t y[4] = {seq, d, b, h}, yb[4] = {b, seq, d, h}, state[3] = {d, b, h}, stateb[3] = {b, d, h};
  if (kernel_output(c, 0)) kernel_set_shape(c->outputs[0], STRAND_DTYPE_FLOAT32, 4, p->batch_first ? yb : y);
  for (size_t k = 1; k < c->n_outputs && k < 3; k++)
    if (kernel_output(c, k))
      kernel_set_shape(c->outputs[k], STRAND_DTYPE_FLOAT32, 3, p->batch_first ? stateb : state);
  return STRAND_OK;
}

/* Scratch: the input projections of all steps, H and C (the blocked LSTM
 * also keeps a second H and both packed as the product's A: it reads
 * H_{t-1} while it writes H_t), a step's gate products, and the GEMM's own. */
typedef struct rnn_scratch {
  size_t xw, h, cell, step, gemm;
} rnn_scratch;

static size_t round64(size_t x) { return (x + 63) & ~(size_t)63; }

static void scratch_layout(const kernel_call *c, const rnn_shape *s, rnn_scratch *out) {
  const rnn_params *p = c->params;
  size_t gh = s->gates * s->hidden;
  out->xw = round64(s->seq * s->batch * gh * sizeof(float));
  out->h = round64(s->batch * s->hidden * sizeof(float));
  out->cell = out->h;
  /* + GRU's r ⊙ H (or the LSTM's summed biases, 4h floats) */
  out->step = round64(s->batch * gh * sizeof(float)) + (out->h > round64(gh * sizeof(float)) ? out->h : round64(gh * sizeof(float)));
  size_t a = kernel_gemm_scratch(NULL, s->seq * s->batch, gh, s->input, true, c->threads);
  size_t b = kernel_gemm_scratch(NULL, s->batch, gh, s->hidden, true, c->threads);
  size_t a2 = kernel_gemm_scratch(NULL, s->seq * s->batch, gh, s->input, false, c->threads);
  size_t b2 = kernel_gemm_scratch(NULL, s->batch, gh, s->hidden, false, c->threads);
  size_t m = a > b ? a : b;
  m = m > a2 ? m : a2;
  m = m > b2 ? m : b2;
  if (p->units) out->cell += 3 * out->h; /* the second H, H_{t-1} and H_t packed as A */
  out->gemm = m;
}

static size_t scratch_rnn(const kernel_call *c) {
  rnn_shape s;
  if (rnn_shape_of(c, &s)) return 0;
  rnn_scratch l;
  scratch_layout(c, &s, &l);
  return l.xw + l.h + l.cell + l.step + l.gemm;
}

/* ---- running -------------------------------------------------------------------------- */

static float clipped(float x, float clip) {
  if (clip <= 0) return x;
  return x < -clip ? -clip : x > clip ? clip : x;
}

typedef struct rnn_run {
  const kernel_call *c;
  const rnn_params *p;
  const rnn_shape *s;
  unsigned char *gemm_scratch;
  size_t gemm_size;
} rnn_run;

/* C = A · op(B) (+ C when beta), with B either packed or rows of a raw
 * matrix (rows [row0, row0+n) of m, `cols` wide, transposed). */
static void product(const rnn_run *r, size_t m, size_t n, size_t k, const float *a, size_t lda,
                    const void *packed, const float *raw, size_t ldb, float beta, float *out,
                    size_t ldc) {
  kernel_gemm g = {NULL, false, true, m, n, k, 1.0f, beta, a, lda ? lda : 1, raw, ldb ? ldb : 1,
                   packed, out, ldc ? ldc : 1, NULL, NULL};
  kernel_gemm_run(&g, r->c->threads, r->gemm_scratch, r->gemm_size);
}

/* The recurrent product H_{t-1} · Rᵀ of step n with R packed, on one
 * thread: in column chunks, forwards on even steps and backwards on odd
 * ones. R (4h × h floats: 1 MB at h = 256) is read whole every step and is
 * about the size of L2; swept in one direction each time it would be
 * evicted just before reuse, while alternating keeps the most recently
 * read part cached. Each element's sum is the same either way. For a few
 * rows only (batch 1 is bound by reading R). */
#define RECURRENT_CHUNK 128 /* columns: a multiple of every kernel's nr (and wide step) */
static void recurrent_product(const rnn_run *r, size_t step, size_t m, size_t n, size_t k,
                              const float *a, const void *packed, float *out, size_t ldc) {
  const strand__gemm_kernel *kern = strand__gemm_packed_kernel(packed);
  size_t parts = strand__gemm_useful_parts(kern, m, n, k, r->c->threads ? r->c->threads : 1);
  /* More than a few rows reuse each part of R while it is cached anyway. */
  if (parts > 1 || m > 4 || n <= RECURRENT_CHUNK || RECURRENT_CHUNK % kern->nr ||
      r->gemm_size < m * k * sizeof(float)) {
    product(r, m, n, k, a, k, packed, NULL, k, 0.0f, out, ldc);
    return;
  }
  /* A packed once for all the chunks (each would pack it again), in the
   * product's scratch (checked above to hold it). */
  float *a_packed = (float *)r->gemm_scratch;
  strand__gemm_pack_a(kern, m, k, a, k, 0, k, a_packed);
  size_t chunks = (n + RECURRENT_CHUNK - 1) / RECURRENT_CHUNK;
  for (size_t i = 0; i < chunks; i++) {
    size_t q = step % 2 ? chunks - 1 - i : i;
    strand__gemm_block block = {0, m, q * RECURRENT_CHUNK, (q + 1) * RECURRENT_CHUNK};
    strand__gemm_packed_ab(m, 1.0f, a_packed, packed, 0.0f, out, ldc, NULL, &block);
  }
}

/* Tasks per thread of a blocked LSTM step when the step's product is big
 * enough: more than one, so that a helper that arrives late (a busy
 * machine) still takes a share. */
#define STEP_TASKS_PER_THREAD 2

/* One step of the blocked LSTM (params->units > 0): H_t and C_t from
 * H_{t-1}, in tasks that each own a range of unit blocks, for all rows. */
typedef struct lstm_step {
  const rnn_run *r;
  const void *packed;     /* R_dᵀ, columns in blocks */
  const float *xw;        /* the input projections, columns in blocks */
  const float *bias;      /* W_b + R_b, columns in blocks; or NULL */
  const int32_t *lens;    /* or NULL */
  const float *h_prev;    /* B × H */
  float *h_next;          /* B × H; may be Y's rows of this step */
  float *cell;            /* B × H, in place */
  float *gates;           /* B × GH */
  float *y;               /* Y's rows of this step (row stride y_stride), or NULL */
  size_t y_stride;
  size_t t, blocks, tasks;
  const float *a_prev;    /* H_{t-1} packed as A (tasks > 1) */
  float *a_next;          /* H_t packed as A, each task its own units */
} lstm_step;

/* The cells of unit blocks [b0, b1) for every row. */
static void lstm_cells(const lstm_step *j, size_t b0, size_t b1) {
  const rnn_params *p = j->r->p;
  const rnn_shape *s = j->r->s;
  const size_t H = s->hidden, B = s->batch, T = s->seq, GH = s->gates * H, U = p->units;
  const size_t u0 = b0 * U, u1 = b1 * U < H ? b1 * U : H;
  for (size_t b = 0; b < B; b++) {
    const float *hp = j->h_prev + b * H;
    float *hn = j->h_next + b * H, *cb = j->cell + b * H;
    float *yb = j->y ? j->y + b * j->y_stride : NULL;
    if (j->lens && (size_t)j->lens[b] <= j->t) {
      if (hn != hp) memcpy(hn + u0, hp + u0, (u1 - u0) * sizeof(float));
      if (yb) memset(yb + u0, 0, (u1 - u0) * sizeof(float));
      continue;
    }
    const float *xr = j->xw + (p->batch_first ? b * T + j->t : j->t * B + b) * GH;
    const float *gr = j->gates + b * GH;
    for (size_t k = b0; k < b1; k++) {
      size_t first = k * U, width = H - first < U ? H - first : U, col = 4 * first;
      strand__vec_lstm_cell(width, xr + col, gr + col, j->bias ? j->bias + col : NULL,
                            cb + first, hn + first);
    }
    if (yb && yb != hn) memcpy(yb + u0, hn + u0, (u1 - u0) * sizeof(float));
  }
}

/* Task `task`: the gate columns of its unit blocks for every row, their
 * cells, and those units of H_t packed for the next step. */
static void lstm_step_task(void *ctx, size_t task) {
  const lstm_step *j = ctx;
  const rnn_shape *s = j->r->s;
  const size_t U = j->r->p->units, H = s->hidden, GH = s->gates * H;
  size_t b0 = j->blocks * task / j->tasks, b1 = j->blocks * (task + 1) / j->tasks;
  if (b0 == b1) return;
  size_t n1 = 4 * b1 * U < GH ? 4 * b1 * U : GH, u1 = b1 * U < H ? b1 * U : H;
  strand__gemm_block block = {0, s->batch, 4 * b0 * U, n1};
  strand__gemm_packed_ab(s->batch, 1.0f, j->a_prev, j->packed, 0.0f, j->gates, GH, NULL, &block);
  lstm_cells(j, b0, b1);
  strand__gemm_pack_a(strand__gemm_packed_kernel(j->packed), s->batch, H, j->h_next, H, b0 * U,
                      u1, j->a_next);
}

/* Every step of one direction of the blocked LSTM; returns the buffer that
 * holds H of the last step. h, h2, a and a2 are B × H floats each, h
 * holding the initial state. */
static const float *run_blocks(const rnn_run *r, size_t dir, bool backwards, const float *xw,
                               float *h, float *h2, float *a, float *a2, float *cell,
                               float *gates, const float *bias) {
  const kernel_call *c = r->c;
  const rnn_params *p = r->p;
  const rnn_shape *s = r->s;
  const size_t H = s->hidden, B = s->batch, T = s->seq, GH = s->gates * H;
  const kernel_tensor *lens = kernel_input(c, 4);
  kernel_tensor *y = kernel_output(c, 0);
  const void *packed = p->r_packed[dir];
  const strand__gemm_kernel *kern = strand__gemm_packed_kernel(packed);
  size_t blocks = (H + p->units - 1) / p->units;
  /* As many tasks as the product is worth (each repaying its hand-off),
   * a few per thread when there is that much work. */
  unsigned threads = c->threads ? c->threads : 1;
  size_t tasks = strand__gemm_useful_parts(kern, B, GH, H, threads);
  if (tasks > 1) tasks = strand__gemm_useful_parts(kern, B, GH, H, threads * STEP_TASKS_PER_THREAD);
  if (tasks > blocks) tasks = blocks;
  lstm_step j = {r, packed, xw, bias, lens ? (const int32_t *)lens->data : NULL, h, NULL, cell,
                 gates, NULL, 0, 0, blocks, tasks, a, a2};
  if (tasks > 1) strand__gemm_pack_a(kern, B, H, h, H, 0, H, a);
  float *spare = h2;
  for (size_t n = 0; n < T; n++) {
    j.t = backwards ? T - 1 - n : n;
    j.y = NULL;
    if (y) {
      j.y = p->batch_first ? (float *)y->data + (j.t * s->dirs + dir) * H
                           : (float *)y->data + (j.t * s->dirs + dir) * B * H;
      j.y_stride = p->batch_first ? T * s->dirs * H : H;
    }
    /* Y's rows of this step hold H_t unless a row must keep its state
     * while Y gets zeros. */
    j.h_next = y && !j.lens && !p->batch_first ? j.y : spare;
    if (tasks > 1) {
      strand__parallel_for(tasks, lstm_step_task, &j, c->threads);
      float *swap = (float *)j.a_prev;
      j.a_prev = j.a_next;
      j.a_next = swap;
    } else {
      recurrent_product(r, n, B, GH, H, j.h_prev, packed, gates, GH);
      lstm_cells(&j, 0, blocks);
    }
    const float *old = j.h_prev;
    j.h_prev = j.h_next;
    if (j.h_next == spare) spare = old == h ? h : old == h2 ? h2 : spare == h ? h2 : h;
  }
  return j.h_prev;
}

static void run_direction(const rnn_run *r, size_t dir, bool backwards, float *xw, float *h,
                          float *cell, float *step) {
  const kernel_call *c = r->c;
  const rnn_params *p = r->p;
  const rnn_shape *s = r->s;
  const size_t H = s->hidden, B = s->batch, T = s->seq, G = s->gates, GH = G * H;
  const float *x = c->inputs[0]->data;
  const float *w = (const float *)c->inputs[1]->data + dir * GH * s->input;
  const float *rm = (const float *)c->inputs[2]->data + dir * GH * H;
  const kernel_tensor *bias = kernel_input(c, 3), *lens = kernel_input(c, 4);
  const kernel_tensor *h0 = kernel_input(c, 5), *c0 = p->lstm ? kernel_input(c, 6) : NULL;
  const kernel_tensor *peep = p->lstm ? kernel_input(c, 7) : NULL;
  const float *wb = bias ? (const float *)bias->data + dir * 2 * GH : NULL;
  const float *rb = wb ? wb + GH : NULL;
  const float *pi = peep ? (const float *)peep->data + dir * 3 * H : NULL;
  const rnn_activation *f = &p->fns[dir * (p->lstm ? 3 : 2)], *g = f + 1, *hf = f + 2;
  kernel_tensor *y = kernel_output(c, 0), *yh = kernel_output(c, 1), *yc = kernel_output(c, 2);

  /* Input projections of all steps; rows in X's own order. */
  product(r, T * B, GH, s->input, x, s->input, p->w_packed[dir], w, s->input, 0.0f, xw, GH);
  /* Initial state. */
  for (size_t b = 0; b < B; b++)
    for (size_t i = 0; i < H; i++) {
      size_t at = p->batch_first ? (b * s->dirs + dir) * H + i : (dir * B + b) * H + i;
      h[b * H + i] = h0 ? ((const float *)h0->data)[at] : 0.0f;
      if (p->lstm) cell[b * H + i] = c0 ? ((const float *)c0->data)[at] : 0.0f;
    }
  float *gates = step, *rh = step + round64(B * GH * sizeof(float)) / sizeof(float);
  if (p->lstm && wb) /* the standard cell adds both biases at once: rh holds their sum */
    for (size_t q = 0; q < G; q++)
      for (size_t i = 0; i < H; i++)
        rh[gate_col(p->units, G, H, q, i)] = wb[q * H + i] + rb[q * H + i];
  if (p->units) {
    size_t hb = round64(B * H * sizeof(float));
    float *h2 = (float *)((unsigned char *)cell + hb);
    float *a = (float *)((unsigned char *)cell + 2 * hb);
    float *a2 = (float *)((unsigned char *)cell + 3 * hb);
    const float *last =
        run_blocks(r, dir, backwards, xw, h, h2, a, a2, cell, gates, wb ? rh : NULL);
    for (size_t b = 0; b < B; b++) {
      size_t at = p->batch_first ? (b * s->dirs + dir) * H : (dir * B + b) * H;
      if (yh) memcpy((float *)yh->data + at, last + b * H, H * sizeof(float));
      if (yc) memcpy((float *)yc->data + at, cell + b * H, H * sizeof(float));
    }
    return;
  }
  for (size_t n = 0; n < T; n++) {
    size_t t = backwards ? T - 1 - n : n;
    /* H_{t-1} · Rᵀ: all gates (LSTM) or z and r (GRU). */
    size_t first = p->lstm ? GH : 2 * H;
    if (p->r_packed[dir])
      recurrent_product(r, n, B, first, H, h, p->r_packed[dir], gates, GH);
    else
      product(r, B, first, H, h, H, p->r_packed[dir], rm, H, 0.0f, gates, GH);
    if (!p->lstm && p->linear_before_reset)
      product(r, B, H, H, h, H, p->rh_packed[dir], rm + 2 * H * H, H, 0.0f, gates + 2 * H, GH);
    for (size_t b = 0; b < B; b++) {
      bool active = !lens || (size_t)((const int32_t *)lens->data)[b] > t;
      const float *xr = xw + (p->batch_first ? b * T + t : t * B + b) * GH;
      float *gr = gates + b * GH, *hb = h + b * H;
      size_t yat = p->batch_first ? ((b * T + t) * s->dirs + dir) * H : ((t * s->dirs + dir) * B + b) * H;
      if (!active) {
        if (y) memset((float *)y->data + yat, 0, H * sizeof(float));
        if (!p->lstm) memset(rh + b * H, 0, H * sizeof(float)); /* read by the next product */
        continue;
      }
      if (p->lstm && p->standard_cell && !pi) {
        strand__vec_lstm_cell(H, xr, gr, wb ? rh : NULL, cell + b * H, hb);
      } else if (p->lstm) {
        float *cb = cell + b * H;
        for (size_t i = 0; i < H; i++) {
          float gi = xr[i] + gr[i], go = xr[H + i] + gr[H + i], gf = xr[2 * H + i] + gr[2 * H + i],
                gc = xr[3 * H + i] + gr[3 * H + i];
          if (wb) {
            gi += wb[i] + rb[i];
            go += wb[H + i] + rb[H + i];
            gf += wb[2 * H + i] + rb[2 * H + i];
            gc += wb[3 * H + i] + rb[3 * H + i];
          }
          float prev = cb[i];
          if (pi) {
            gi += pi[i] * prev;
            gf += pi[2 * H + i] * prev;
          }
          float it = apply(f, clipped(gi, p->clip));
          float ft = p->input_forget ? 1 - it : apply(f, clipped(gf, p->clip));
          float ct = apply(g, clipped(gc, p->clip));
          float cnew = ft * prev + it * ct;
          if (pi) go += pi[H + i] * cnew;
          float ot = apply(f, clipped(go, p->clip));
          cb[i] = cnew;
          hb[i] = ot * apply(hf, cnew);
        }
      } else {
        float *rhb = rh + b * H;
        for (size_t i = 0; i < H; i++) {
          float gz = xr[i] + gr[i], gr_ = xr[H + i] + gr[H + i];
          if (wb) {
            gz += wb[i] + rb[i];
            gr_ += wb[H + i] + rb[H + i];
          }
          gr[i] = apply(f, clipped(gz, p->clip));       /* z */
          gr[H + i] = apply(f, clipped(gr_, p->clip));  /* r */
          rhb[i] = gr[H + i] * hb[i];
        }
      }
      if (y && p->lstm) memcpy((float *)y->data + yat, hb, H * sizeof(float));
    }
    if (p->lstm) continue;
    /* GRU: the candidate needs r first. */
    if (!p->linear_before_reset)
      product(r, B, H, H, rh, H, p->rh_packed[dir], rm + 2 * H * H, H, 0.0f, gates + 2 * H, GH);
    for (size_t b = 0; b < B; b++) {
      bool active = !lens || (size_t)((const int32_t *)lens->data)[b] > t;
      if (!active) continue;
      const float *xr = xw + (p->batch_first ? b * T + t : t * B + b) * GH;
      float *gr = gates + b * GH, *hb = h + b * H;
      size_t yat = p->batch_first ? ((b * T + t) * s->dirs + dir) * H : ((t * s->dirs + dir) * B + b) * H;
      for (size_t i = 0; i < H; i++) {
        float hh = gr[2 * H + i];
        if (p->linear_before_reset) hh = gr[H + i] * (hh + (rb ? rb[2 * H + i] : 0));
        else if (rb) hh += rb[2 * H + i];
        hh += xr[2 * H + i] + (wb ? wb[2 * H + i] : 0);
        float ht = apply(g, clipped(hh, p->clip)), z = gr[i];
        hb[i] = (1 - z) * ht + z * hb[i];
      }
      if (y) memcpy((float *)y->data + yat, hb, H * sizeof(float));
    }
  }
  /* Final states. */
  for (size_t b = 0; b < B; b++) {
    size_t at = p->batch_first ? (b * s->dirs + dir) * H : (dir * B + b) * H;
    if (yh) memcpy((float *)yh->data + at, h + b * H, H * sizeof(float));
    if (yc) memcpy((float *)yc->data + at, cell + b * H, H * sizeof(float));
  }
}

static strand_status run_rnn(const kernel_call *c) {
  const rnn_params *p = c->params;
  rnn_shape s;
  strand_status st = rnn_shape_of(c, &s);
  if (st) return st;
  rnn_scratch l;
  scratch_layout(c, &s, &l);
  unsigned char *base = c->scratch;
  rnn_run r = {c, p, &s, base + l.xw + l.h + l.cell + l.step, c->scratch_size - (l.xw + l.h + l.cell + l.step)};
  if (s.batch == 0 || s.hidden == 0) return STRAND_OK;
  for (size_t dir = 0; dir < s.dirs; dir++)
    run_direction(&r, dir, p->reverse || dir == 1, (float *)base, (float *)(base + l.xw),
                  (float *)(base + l.xw + l.h), (float *)(base + l.xw + l.h + l.cell));
  return STRAND_OK;
}

const kernel_def kernel_LSTM = {"LSTM", "", 7, KERNEL_OPSET_MAX, 0, 0, accepts_rnn, prepare_lstm, infer_rnn,
                                scratch_rnn, run_rnn};
const kernel_def kernel_GRU = {"GRU", "", 7, KERNEL_OPSET_MAX, 0, 0, accepts_rnn, prepare_gru, infer_rnn,
                               scratch_rnn, run_rnn};
