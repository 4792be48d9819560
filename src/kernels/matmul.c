/*
 * matmul.c — Gemm and MatMul on the packed SGEMM (gemm.h), and the shared
 * helper that splits one product over the thread pool.
 *
 * A constant B (the weights of a Linear layer) is packed once at session
 * creation (STRAND_MEMORY_WEIGHTS). Gemm's constant C, when it is a row
 * vector (the bias), is folded into the product's epilogue with beta
 * applied. MatMul folds A's batch dimensions into M whenever B is a matrix,
 * so a [batch, seq, K] × [K, N] product is one GEMM.
 */
#include "kernels/kernels_internal.h"
#include "kernels/matmul_fuse.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* ---- the shared parallel GEMM ----------------------------------------------- */

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

static const strand__gemm_kernel *kernel_of(const kernel_gemm *g) {
  if (g->packed) return strand__gemm_packed_kernel(g->packed);
  return g->kernel ? g->kernel : strand__gemm_kernel_default();
}

size_t kernel_gemm_scratch(const strand__gemm_kernel *kernel, size_t m, size_t n, size_t k,
                           bool packed, unsigned threads) {
  const strand__gemm_kernel *kern = kernel ? kernel : strand__gemm_kernel_default();
  size_t each = align64(strand__gemm_scratch_size(kern, m, n, k, packed));
  size_t parts = strand__gemm_useful_parts(kern, m, n, k, threads ? threads : 1);
  return each * parts;
}

/* Tasks per thread of a split product with packed B: more than one, so
 * that a helper that arrives late (asleep, or preempted on a busy machine)
 * still takes a share rather than leaving the caller both halves. Each
 * thread's block is cut into this many row ranges: with B packed, each
 * range packs only its own rows of A, and with at least
 * GEMM_CUT_MIN_TILES register tiles of rows per range, each B panel read
 * from cache still serves several tiles. */
#define GEMM_TASKS_PER_THREAD 2
#define GEMM_CUT_MIN_TILES 4

/* Scratch for tasks that outnumber the threads: one slot per thread (at
 * most 64), each taken by a task while it runs. No more tasks run at once
 * than there are threads, so a free slot is always there; take is acquire
 * and give is release, so the next task on a slot sees the last one's
 * writes done. */
typedef struct scratch_slots {
  _Atomic uint64_t busy;
  unsigned char *base;
  size_t each;
} scratch_slots;

#define SLOTS_MAX 64

static size_t slot_take(scratch_slots *s) {
  uint64_t busy = atomic_load_explicit(&s->busy, memory_order_relaxed);
  for (;;) {
    size_t i = (size_t)__builtin_ctzll(~busy);
    if (atomic_compare_exchange_weak_explicit(&s->busy, &busy, busy | (uint64_t)1 << i,
                                              memory_order_acquire, memory_order_relaxed))
      return i;
  }
}

static void slot_give(scratch_slots *s, size_t i) {
  atomic_fetch_and_explicit(&s->busy, ~((uint64_t)1 << i), memory_order_release);
}

typedef struct gemm_job {
  const kernel_gemm *g;
  const strand__gemm_kernel *kern;
  size_t parts, cuts; /* `parts` blocks, each cut into `cuts` row ranges */
  scratch_slots slots;
} gemm_job;

static void gemm_part(const gemm_job *j, const strand__gemm_block *block, void *scratch) {
  const kernel_gemm *g = j->g;
  if (g->packed_a)
    strand__gemm_packed_ab(g->m, g->alpha, g->packed_a, g->packed, g->beta, g->c, g->ldc,
                           g->epilogue, block);
  else if (g->packed)
    strand__gemm_packed(g->trans_a, g->m, g->alpha, g->a, g->lda, g->packed, g->beta, g->c, g->ldc,
                        g->epilogue, block, scratch);
  else
    strand__gemm(j->kern, g->trans_a, g->trans_b, g->m, g->n, g->k, g->alpha, g->a, g->lda, g->b,
                 g->ldb, g->beta, g->c, g->ldc, g->epilogue, block, scratch);
}

static void gemm_task(void *p, size_t i) {
  gemm_job *j = p;
  strand__gemm_block block;
  strand__gemm_partition(j->kern, j->g->m, j->g->n, j->parts, i / j->cuts, &block);
  if (block.m0 >= block.m1 || block.n0 >= block.n1) return;
  /* Row range i % cuts of the block, in whole register tiles. */
  const size_t mr = j->kern->mr, tiles = (block.m1 - block.m0 + mr - 1) / mr;
  size_t m0 = block.m0 + tiles * (i % j->cuts) / j->cuts * mr;
  size_t m1 = block.m0 + tiles * (i % j->cuts + 1) / j->cuts * mr;
  block.m1 = m1 < block.m1 ? m1 : block.m1;
  block.m0 = m0;
  if (block.m0 >= block.m1) return;
  size_t slot = slot_take(&j->slots);
  gemm_part(j, &block, j->slots.base + slot * j->slots.each);
  slot_give(&j->slots, slot);
}

void kernel_gemm_run(const kernel_gemm *g, unsigned threads, void *scratch, size_t scratch_size) {
  if (g->m == 0 || g->n == 0) return;
  const strand__gemm_kernel *kern = kernel_of(g);
  size_t each =
      g->packed_a ? 0 : align64(strand__gemm_scratch_size(kern, g->m, g->n, g->k, g->packed != NULL));
  size_t parts = strand__gemm_useful_parts(kern, g->m, g->n, g->k, threads ? threads : 1);
  if (each && parts > scratch_size / each) parts = scratch_size / each;
  if (parts > SLOTS_MAX) parts = SLOTS_MAX;
  if (parts == 0) parts = 1; /* the plan always leaves room for one */
  if (parts == 1) {
    gemm_part(&(gemm_job){g, kern, 1, 1, {0, scratch, each}}, NULL, scratch);
    return;
  }
  /* At most `parts` threads, each with its own scratch slot, share the
   * tasks. */
  strand__gemm_block first;
  strand__gemm_partition(kern, g->m, g->n, parts, 0, &first);
  size_t block_tiles = (first.m1 - first.m0 + kern->mr - 1) / kern->mr;
  size_t cuts = g->packed && block_tiles >= GEMM_CUT_MIN_TILES * GEMM_TASKS_PER_THREAD &&
                        strand__gemm_useful_parts(kern, g->m, g->n, g->k,
                                                  parts * GEMM_TASKS_PER_THREAD) ==
                            parts * GEMM_TASKS_PER_THREAD
                    ? GEMM_TASKS_PER_THREAD
                    : 1;
  gemm_job j = {g, kern, parts, cuts, {0, scratch, each}};
  strand__parallel_for(parts * cuts, gemm_task, &j, (unsigned)parts);
}

/* ---- Gemm ------------------------------------------------------------------------- */

typedef struct gemm_params {
  kernel_activation activation; /* first: set by the session when it fuses */
  float alpha, beta;
  bool trans_a, trans_b;
  const void *packed; /* B packed, or NULL */
  float *bias;        /* beta * C as a row of n, or NULL */
  size_t bias_n;
} gemm_params;

static bool accepts_gemm(const strand_dtype *d, size_t n) {
  return n >= 2 && n <= 3 && kernel_accepts_float32(d, n);
}

/* Packs a constant 2-D float32 B (op(B) is k×n). */
static strand_status pack_constant(kernel_prepare *p, const onnx_tensor *b, bool trans_b,
                                   const void **packed) {
  size_t k = (size_t)(trans_b ? b->dims[1] : b->dims[0]);
  size_t n = (size_t)(trans_b ? b->dims[0] : b->dims[1]);
  size_t bytes;
  if (!strand__gemm_pack_b_size(NULL, k, n, &bytes))
    return strand__fail(STRAND_E_UNSUPPORTED, "input B of %zu×%zu is too large to pack", k, n);
  void *mem;
  strand_status st = kernel_alloc(p, bytes, STRAND_MEMORY_WEIGHTS, &mem);
  if (st) return st;
  strand__gemm_pack_b(NULL, trans_b, k, n, b->data, (size_t)b->dims[1], mem);
  *packed = mem;
  return STRAND_OK;
}

static strand_status prepare_gemm(kernel_prepare *p, void **out) {
  gemm_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  int64_t ta, tb;
  st = kernel_attr_float(p->node, "alpha", 1.0f, &params->alpha);
  if (!st) st = kernel_attr_float(p->node, "beta", 1.0f, &params->beta);
  if (!st) st = kernel_attr_int(p->node, "transA", 0, &ta);
  if (!st) st = kernel_attr_int(p->node, "transB", 0, &tb);
  if (st) return st;
  params->trans_a = ta != 0;
  params->trans_b = tb != 0;
  const onnx_tensor *b = kernel_constant_input(p, 1);
  if (!b || b->dtype != STRAND_DTYPE_FLOAT32 || b->rank != 2 || !b->count) return STRAND_OK;
  st = pack_constant(p, b, params->trans_b, &params->packed);
  if (st) return st;
  /* A constant C that is one row (the bias) joins the epilogue. */
  const onnx_tensor *c = kernel_constant_input(p, 2);
  size_t n = (size_t)(params->trans_b ? b->dims[0] : b->dims[1]);
  if (!c || c->dtype != STRAND_DTYPE_FLOAT32 || c->rank > 2 || (c->rank == 2 && c->dims[0] != 1))
    return STRAND_OK;
  if (c->count != n && c->count != 1) return STRAND_OK; /* infer reports it */
  st = kernel_alloc(p, n * sizeof(float), STRAND_MEMORY_WEIGHTS, (void **)&params->bias);
  if (st) return st;
  const float *cv = c->data;
  for (size_t j = 0; j < n; j++) params->bias[j] = params->beta * cv[c->count == 1 ? 0 : j];
  params->bias_n = n;
  return STRAND_OK;
}

static strand_status infer_gemm(const kernel_call *c) {
  const gemm_params *p = c->params;
  const kernel_tensor *a = c->inputs[0], *b = c->inputs[1], *bias = kernel_input(c, 2);
  char sa[160], sb[160];
  if (a->rank != 2 || b->rank != 2)
    return strand__fail(STRAND_E_SHAPE, "A %s and B %s must be matrices",
                        kernel_shape_text(a, sa, sizeof sa), kernel_shape_text(b, sb, sizeof sb));
  int64_t m = p->trans_a ? a->dims[1] : a->dims[0], k = p->trans_a ? a->dims[0] : a->dims[1];
  int64_t kb = p->trans_b ? b->dims[1] : b->dims[0], n = p->trans_b ? b->dims[0] : b->dims[1];
  if (k != kb)
    return strand__fail(STRAND_E_SHAPE, "A %s%s and B %s%s do not chain: %lld vs %lld",
                        kernel_shape_text(a, sa, sizeof sa), p->trans_a ? " (transposed)" : "",
                        kernel_shape_text(b, sb, sizeof sb), p->trans_b ? " (transposed)" : "",
                        (long long)k, (long long)kb);
  int64_t dims[2] = {m, n};
  if (bias) {
    bool ok = bias->rank <= 2;
    for (size_t i = 0; i < bias->rank && ok; i++) {
      int64_t want = dims[2 - bias->rank + i];
      ok = bias->dims[i] == want || bias->dims[i] == 1;
    }
    if (!ok)
      return strand__fail(STRAND_E_SHAPE, "C %s does not broadcast to [%lld, %lld]",
                          kernel_shape_text(bias, sa, sizeof sa), (long long)m, (long long)n);
  }
  kernel_set_shape(c->outputs[0], STRAND_DTYPE_FLOAT32, 2, dims);
  return STRAND_OK;
}

static void gemm_shape(const kernel_call *c, size_t *m, size_t *n, size_t *k) {
  const gemm_params *p = c->params;
  const kernel_tensor *a = c->inputs[0], *b = c->inputs[1];
  *m = (size_t)(p->trans_a ? a->dims[1] : a->dims[0]);
  *k = (size_t)(p->trans_a ? a->dims[0] : a->dims[1]);
  *n = (size_t)(p->trans_b ? b->dims[0] : b->dims[1]);
}

static size_t scratch_gemm(const kernel_call *c) {
  const gemm_params *p = c->params;
  size_t m, n, k;
  gemm_shape(c, &m, &n, &k);
  const strand__gemm_kernel *kern = p->packed ? strand__gemm_packed_kernel(p->packed) : NULL;
  return kernel_gemm_scratch(kern, m, n, k, p->packed != NULL, c->threads);
}

static strand_status run_gemm(const kernel_call *c) {
  const gemm_params *p = c->params;
  const kernel_tensor *a = c->inputs[0], *b = c->inputs[1], *bias = kernel_input(c, 2);
  kernel_tensor *out = c->outputs[0];
  size_t m, n, k;
  gemm_shape(c, &m, &n, &k);
  strand__gemm_epilogue ep = {p->bias, p->activation.kind, p->activation.lo, p->activation.hi};
  float beta = 0;
  if (!p->bias && bias && p->beta != 0 && out->count) {
    kernel_broadcast_copy(c->threads, bias, out);
    beta = p->beta;
  }
  kernel_gemm g = {NULL, p->trans_a, p->trans_b, m, n, k, p->alpha, beta, a->data,
                   a->dims[1] ? (size_t)a->dims[1] : 1, b->data, b->dims[1] ? (size_t)b->dims[1] : 1,
                   p->packed, out->data, n ? n : 1, p->bias || p->activation.kind ? &ep : NULL, NULL};
  kernel_gemm_run(&g, c->threads, c->scratch, c->scratch_size);
  return STRAND_OK;
}

const kernel_def kernel_Gemm = {"Gemm", "", 7, KERNEL_OPSET_MAX, 0, KERNEL_FUSES_ACTIVATION, accepts_gemm, prepare_gemm, infer_gemm,
                                scratch_gemm, run_gemm};

/* ---- MatMul ----------------------------------------------------------------------- */

typedef struct matmul_params {
  kernel_activation activation; /* first: set by the session when it fuses */
  const void *packed;           /* a constant 2-D B, packed */
  const float *bias;            /* added per column before the activation, or NULL */
} matmul_params;

bool kernel_matmul_absorb_bias(void *params, const float *bias, size_t n) {
  matmul_params *p = params;
  if (!p || !p->packed || p->bias || strand__gemm_packed_n(p->packed) != n) return false;
  p->bias = bias;
  return true;
}

static bool accepts_matmul(const strand_dtype *d, size_t n) {
  return n == 2 && kernel_accepts_float32(d, n);
}

static strand_status prepare_matmul(kernel_prepare *p, void **out) {
  matmul_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  const onnx_tensor *b = kernel_constant_input(p, 1);
  if (!b || b->dtype != STRAND_DTYPE_FLOAT32 || b->rank != 2 || !b->count) return STRAND_OK;
  return pack_constant(p, b, false, &params->packed);
}

/* The product's shape: A as [batch..., M, K] and B as [batch..., K, N], a
 * 1-D A being [1, K] and a 1-D B [K, 1]. */
typedef struct matmul_shape {
  size_t m, n, k;
  size_t batch_rank;
  int64_t batch[STRAND_MAX_RANK];
  size_t batches;
} matmul_shape;

static strand_status matmul_shape_of(const kernel_tensor *a, const kernel_tensor *b,
                                     matmul_shape *s) {
  char sa[160], sb[160];
  if (a->rank == 0 || b->rank == 0)
    return strand__fail(STRAND_E_SHAPE, "A %s and B %s must have at least one dimension",
                        kernel_shape_text(a, sa, sizeof sa), kernel_shape_text(b, sb, sizeof sb));
  int64_t ka = a->dims[a->rank - 1];
  int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
  if (ka != kb)
    return strand__fail(STRAND_E_SHAPE, "A %s and B %s do not chain: %lld vs %lld",
                        kernel_shape_text(a, sa, sizeof sa), kernel_shape_text(b, sb, sizeof sb),
                        (long long)ka, (long long)kb);
  s->k = (size_t)ka;
  s->m = a->rank == 1 ? 1 : (size_t)a->dims[a->rank - 2];
  s->n = b->rank == 1 ? 1 : (size_t)b->dims[b->rank - 1];
  size_t ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
  s->batch_rank = ra > rb ? ra : rb;
  s->batches = 1;
  for (size_t i = 0; i < s->batch_rank; i++) {
    size_t from_right = s->batch_rank - i; /* 1 for the innermost batch dim */
    int64_t da = from_right <= ra ? a->dims[ra - from_right] : 1;
    int64_t db = from_right <= rb ? b->dims[rb - from_right] : 1;
    if (da != db && da != 1 && db != 1)
      return strand__fail(STRAND_E_SHAPE, "A %s and B %s: batch dimensions cannot be broadcast "
                          "(%lld vs %lld)", kernel_shape_text(a, sa, sizeof sa),
                          kernel_shape_text(b, sb, sizeof sb), (long long)da, (long long)db);
    s->batch[i] = da == 1 ? db : da;
    s->batches *= (size_t)s->batch[i];
  }
  return STRAND_OK;
}

static strand_status infer_matmul(const kernel_call *c) {
  const kernel_tensor *a = c->inputs[0], *b = c->inputs[1];
  matmul_shape s;
  strand_status st = matmul_shape_of(a, b, &s);
  if (st) return st;
  int64_t dims[STRAND_MAX_RANK];
  size_t rank = 0;
  for (size_t i = 0; i < s.batch_rank; i++) dims[rank++] = s.batch[i];
  if (a->rank >= 2) dims[rank++] = (int64_t)s.m;
  if (b->rank >= 2) dims[rank++] = (int64_t)s.n;
  kernel_set_shape(c->outputs[0], STRAND_DTYPE_FLOAT32, rank, dims);
  return STRAND_OK;
}

/* B is one matrix: A's batch folds into M. */
static bool single_product(const kernel_tensor *b) { return b->rank <= 2; }

static size_t scratch_matmul(const kernel_call *c) {
  const matmul_params *p = c->params;
  const kernel_tensor *a = c->inputs[0], *b = c->inputs[1];
  matmul_shape s;
  if (matmul_shape_of(a, b, &s)) return 0;
  if (single_product(b)) {
    size_t rows = s.k ? a->count / s.k : s.m * s.batches;
    const strand__gemm_kernel *kern = p->packed ? strand__gemm_packed_kernel(p->packed) : NULL;
    return kernel_gemm_scratch(kern, rows, s.n, s.k, p->packed != NULL, c->threads);
  }
  size_t one = align64(strand__gemm_scratch_size(strand__gemm_kernel_default(), s.m, s.n, s.k, false));
  size_t split = kernel_gemm_scratch(NULL, s.m, s.n, s.k, false, c->threads);
  size_t each_thread = one * (c->threads ? c->threads : 1);
  return split > each_thread ? split : each_thread;
}

typedef struct batch_job {
  const kernel_tensor *a, *b;
  kernel_tensor *out;
  const matmul_shape *s;
  size_t a_strides[STRAND_MAX_RANK], b_strides[STRAND_MAX_RANK]; /* in matrices; 0: broadcast */
  size_t tasks;
  scratch_slots slots;
  const strand__gemm_epilogue *epilogue;
} batch_job;

static void batch_product(const batch_job *j, size_t batch, void *scratch, unsigned threads,
                          size_t scratch_size) {
  const matmul_shape *s = j->s;
  size_t ia = 0, ib = 0, rest = batch;
  for (size_t i = s->batch_rank; i-- > 0;) {
    size_t idx = rest % (size_t)s->batch[i];
    rest /= (size_t)s->batch[i];
    ia += idx * j->a_strides[i];
    ib += idx * j->b_strides[i];
  }
  const float *a = (const float *)j->a->data + ia * s->m * s->k;
  const float *b = (const float *)j->b->data + ib * s->k * s->n;
  float *c = (float *)j->out->data + batch * s->m * s->n;
  kernel_gemm g = {NULL, false, false, s->m, s->n, s->k, 1.0f, 0.0f, a, s->k ? s->k : 1, b,
                   s->n ? s->n : 1, NULL, c, s->n ? s->n : 1, j->epilogue, NULL};
  kernel_gemm_run(&g, threads, scratch, scratch_size);
}

static void batch_task(void *p, size_t task) {
  batch_job *j = p;
  size_t total = j->s->batches;
  size_t begin = total * task / j->tasks, end = total * (task + 1) / j->tasks;
  size_t slot = slot_take(&j->slots);
  for (size_t batch = begin; batch < end; batch++)
    batch_product(j, batch, j->slots.base + slot * j->slots.each, 1, j->slots.each);
  slot_give(&j->slots, slot);
}

static strand_status run_matmul(const kernel_call *c) {
  const matmul_params *p = c->params;
  const kernel_tensor *a = c->inputs[0], *b = c->inputs[1];
  kernel_tensor *out = c->outputs[0];
  matmul_shape s;
  strand_status st = matmul_shape_of(a, b, &s);
  if (st) return st;
  if (!out->count) return STRAND_OK;
  strand__gemm_epilogue ep = {p->bias, p->activation.kind, p->activation.lo, p->activation.hi};
  const strand__gemm_epilogue *epilogue = p->activation.kind || p->bias ? &ep : NULL;
  if (single_product(b)) {
    size_t rows = out->count / s.n;
    kernel_gemm g = {NULL, false, false, rows, s.n, s.k, 1.0f, 0.0f, a->data, s.k ? s.k : 1,
                     b->data, s.n, p->packed, out->data, s.n, epilogue, NULL};
    kernel_gemm_run(&g, c->threads, c->scratch, c->scratch_size);
    return STRAND_OK;
  }
  batch_job j = {a, b, out, &s, {0}, {0}, 1, {0, c->scratch, 0}, epilogue};
  size_t ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank - 2;
  size_t step_a = 1, step_b = 1;
  for (size_t i = s.batch_rank; i-- > 0;) {
    size_t from_right = s.batch_rank - i;
    int64_t da = from_right <= ra ? a->dims[ra - from_right] : 1;
    int64_t db = from_right <= rb ? b->dims[rb - from_right] : 1;
    j.a_strides[i] = da == 1 ? 0 : step_a;
    j.b_strides[i] = db == 1 ? 0 : step_b;
    step_a *= (size_t)da;
    step_b *= (size_t)db;
  }
  size_t each =
      align64(strand__gemm_scratch_size(strand__gemm_kernel_default(), s.m, s.n, s.k, false));
  size_t slots = c->threads ? c->threads : 1;
  if (each && slots > c->scratch_size / each) slots = c->scratch_size / each;
  if (slots > s.batches) slots = s.batches;
  if (slots > SLOTS_MAX) slots = SLOTS_MAX;
  if (slots <= 1 || s.batches < c->threads) {
    /* Few batches: one product after another, each split over the threads. */
    for (size_t batch = 0; batch < s.batches; batch++)
      batch_product(&j, batch, c->scratch, c->threads, c->scratch_size);
    return STRAND_OK;
  }
  /* Whole products as tasks, a few per thread (as many as there are
   * products, at most), each on a free scratch slot. */
  j.slots.each = each;
  j.tasks = slots * GEMM_TASKS_PER_THREAD * 2;
  if (j.tasks > s.batches) j.tasks = s.batches;
  strand__parallel_for(j.tasks, batch_task, &j, (unsigned)slots);
  return STRAND_OK;
}

const kernel_def kernel_MatMul = {"MatMul", "", 1, KERNEL_OPSET_MAX, 0, KERNEL_FUSES_ACTIVATION, accepts_matmul,
                                  prepare_matmul,
                                  infer_matmul, scratch_matmul, run_matmul};
