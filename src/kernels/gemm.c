/*
 * gemm.c — the SGEMM driver: kernel selection, cache blocking, packing,
 * packed-B weights, the parallel split and the reference.
 *
 * Loop nest (GotoBLAS/BLIS structure), for one block of C:
 *
 *   for jc in n, step NC            B block kc×nc: packed once, kept in L2
 *     for pc in k, step KC
 *       for ic in m, step MC        A block mc×kc: packed into MR-row panels
 *         for ir in mc, step MR     A micro-panel MR×kc: stays in L1
 *           for jr in nc, step NR   B micro-panel kc×NR: streamed from L2
 *             tile                  MR×NR of C in registers
 *
 * With B packed ahead (weights), nothing needs packing per jc block: the
 * order is pc, ic (A block packed once), jc, ir, jr instead.
 *
 * beta applies on the first pc step only (then C accumulates with beta 1),
 * the epilogue (bias, activation) on the last one.
 */
#include "kernels/gemm.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>

#define CACHE_LINE 64
#define PACKED_MAGIC 0x42475053u /* "SPGB" */

/* The header of a packed B; panels follow at byte 64. Panel q holds op(B)
 * columns [q*nr, q*nr + nr) for all k rows: row p at panel + p*nr, columns
 * beyond n zero. Panel q starts at q * k * nr floats. */
typedef struct packed_header {
  uint32_t magic;
  uint32_t level;
  uint64_t k, n, nr;
} packed_header;
_Static_assert(sizeof(packed_header) <= CACHE_LINE, "packed B header fits one line");

static strand__gemm_kernel kernels[STRAND__CPU_LEVEL_COUNT];
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }
static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }
static size_t clamp_size(size_t x, size_t lo, size_t hi) { return x < lo ? lo : x > hi ? hi : x; }

/* Blocking from the cache sizes. The A micro-panel (mr×kc) should stay in
 * L1 while B micro-panels stream past it (kc from half of L1, within
 * [128, 288]: longer k runs measured slower with the AVX2 kernel, shorter
 * ones cost C traffic); the B block (kc×nc) and the A block (mc×kc) share L2, half
 * and a quarter of it. */
static void set_blocking(strand__gemm_kernel *kern, const strand__cpu_info *cpu) {
  size_t kc = cpu->l1d_bytes / 2 / (sizeof(float) * kern->mr);
  kc = clamp_size(kc / 16 * 16, 128, 288);
  size_t nc = cpu->l2_bytes / 2 / (sizeof(float) * kc);
  nc = clamp_size(nc / kern->nr * kern->nr, kern->nr, 64 * kern->nr);
  size_t mc = cpu->l2_bytes / 4 / (sizeof(float) * kc);
  mc = clamp_size(mc / kern->mr * kern->mr, kern->mr, 64 * kern->mr);
  kern->kc = kc;
  kern->nc = nc;
  kern->mc = mc;
}

/* The step that cuts `total` into as few pieces of at most `limit` as
 * possible, of even length (a multiple of `unit`, limit permitting):
 * k = 784 with kc = 256 runs as 4 × 196 rather than 3 × 256 + 16. */
static size_t balanced_step(size_t total, size_t limit, size_t unit) {
  size_t pieces = (total + limit - 1) / limit;
  size_t step = round_up((total + pieces - 1) / pieces, unit);
  return step <= limit ? step : limit;
}

static void init_kernels(void) {
  const strand__cpu_info *cpu = strand__cpu();
  strand__gemm_kernel_scalar_init(&kernels[STRAND__CPU_SCALAR]);
  if (cpu->hardware >= STRAND__CPU_AVX2) strand__gemm_kernel_avx2_init(&kernels[STRAND__CPU_AVX2]);
  if (cpu->hardware >= STRAND__CPU_AVX512)
    strand__gemm_kernel_avx512_init(&kernels[STRAND__CPU_AVX512]);
  for (int i = 0; i < STRAND__CPU_LEVEL_COUNT; i++)
    if (kernels[i].tile) set_blocking(&kernels[i], cpu);
}

const strand__gemm_kernel *strand__gemm_kernel_for(strand__cpu_level level) {
  if ((unsigned)level >= STRAND__CPU_LEVEL_COUNT) return NULL;
  pthread_once(&kernels_once, init_kernels);
  return kernels[level].tile ? &kernels[level] : NULL;
}

const strand__gemm_kernel *strand__gemm_kernel_default(void) {
  for (int level = strand__cpu()->selected; level > STRAND__CPU_SCALAR; level--) {
    const strand__gemm_kernel *kern = strand__gemm_kernel_for((strand__cpu_level)level);
    if (kern) return kern;
  }
  return strand__gemm_kernel_for(STRAND__CPU_SCALAR);
}

strand__cpu_level strand__gemm_kernel_level(const strand__gemm_kernel *kernel) {
  return kernel->level;
}

const char *strand__gemm_kernel_name(const strand__gemm_kernel *kernel) { return kernel->name; }

/* ---- packing ------------------------------------------------------------ */

/* Portable strand__gemm_transpose_fn, in 8×8 blocks so that both the
 * reads and the writes stay within a few cache lines at a time. */
static void transpose_portable(const float *src, size_t ld, size_t rows, size_t kc,
                               size_t out_stride, float *dst) {
  for (size_t p0 = 0; p0 < kc; p0 += 8) {
    size_t p1 = min_size(p0 + 8, kc);
    for (size_t r0 = 0; r0 < rows; r0 += 8) {
      size_t r1 = min_size(r0 + 8, rows);
      for (size_t r = r0; r < r1; r++)
        for (size_t p = p0; p < p1; p++) dst[p * out_stride + r] = src[r * ld + p];
    }
    if (rows < out_stride)
      for (size_t p = p0; p < p1; p++)
        memset(dst + p * out_stride + rows, 0, (out_stride - rows) * sizeof(float));
  }
}

#if defined(__GNUC__)
#define GEMM_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define GEMM_ALWAYS_INLINE static inline
#endif

/* dst[p*dst_stride + r] = src[p*ld + r] for p < steps, r < n. */
GEMM_ALWAYS_INLINE void copy_steps_n(float *dst, size_t dst_stride, const float *src, size_t ld,
                                     size_t steps, size_t n) {
  for (size_t p = 0; p < steps; p++) memcpy(dst + p * dst_stride, src + p * ld, n * sizeof(float));
}

/* copy_steps_n with n a constant for the kernels' mr and nr, so that each
 * row is a few inline vector moves rather than a memcpy call (the packing
 * of short rows was call overhead more than copying). */
static void copy_steps(float *dst, size_t dst_stride, const float *src, size_t ld, size_t steps,
                       size_t n) {
  switch (n) {
  case 32: copy_steps_n(dst, dst_stride, src, ld, steps, 32); break;
  case 16: copy_steps_n(dst, dst_stride, src, ld, steps, 16); break;
  case 14: copy_steps_n(dst, dst_stride, src, ld, steps, 14); break;
  case 8: copy_steps_n(dst, dst_stride, src, ld, steps, 8); break;
  case 6: copy_steps_n(dst, dst_stride, src, ld, steps, 6); break;
  case 4: copy_steps_n(dst, dst_stride, src, ld, steps, 4); break;
  default: copy_steps_n(dst, dst_stride, src, ld, steps, n); break;
  }
}

/* `rows` rows of row-major A (lda apart), `steps` columns from src, into
 * the panel layout dst[p*rows + r]: a transpose, or for one row a copy. */
static void panel_rows(strand__gemm_transpose_fn *transpose, const float *src, size_t lda,
                       size_t rows, size_t steps, float *dst) {
  if (rows == 1) memcpy(dst, src, steps * sizeof(float));
  else transpose(src, lda, rows, steps, rows, dst);
}

/* Packs rows [i0, i0+mc) × columns [p0, p0+kc) of op(A) into mr-row panels:
 * panel q (rows i0+q ... for q a multiple of mr) starts at dst + q*kc and
 * holds kc steps of rows_q = min(mr, mc - q) floats (a[p*rows_q + r]). */
static void pack_a(const strand__gemm_kernel *kern, bool trans_a, const float *a, size_t lda,
                   size_t i0, size_t mc, size_t p0, size_t kc, float *dst) {
  strand__gemm_transpose_fn *transpose = kern->transpose ? kern->transpose : transpose_portable;
  for (size_t q = 0; q < mc; q += kern->mr) {
    size_t rows = min_size(kern->mr, mc - q);
    if (trans_a) {
      copy_steps(dst, rows, a + p0 * lda + i0 + q, lda, kc, rows);
    } else {
      panel_rows(transpose, a + (i0 + q) * lda + p0, lda, rows, kc, dst);
    }
    dst += rows * kc;
  }
}

/* Packs op(B) rows [p0, p0+kc) × columns [j0, j0+nc) into nr-column panels
 * of kc rows each (panel q at dst + q*kc*nr), zero-filling columns past nc. */
static void pack_b(const strand__gemm_kernel *kern, bool trans_b, const float *b, size_t ldb,
                   size_t p0, size_t kc, size_t j0, size_t nc, float *dst) {
  strand__gemm_transpose_fn *transpose = kern->transpose ? kern->transpose : transpose_portable;
  const size_t nr = kern->nr;
  for (size_t q = 0; q < nc; q += nr) {
    size_t cols = min_size(nr, nc - q);
    if (trans_b) {
      transpose(b + (j0 + q) * ldb + p0, ldb, cols, kc, nr, dst);
    } else {
      copy_steps(dst, nr, b + p0 * ldb + j0 + q, ldb, kc, cols);
      if (cols < nr)
        for (size_t p = 0; p < kc; p++)
          memset(dst + p * nr + cols, 0, (nr - cols) * sizeof(float));
    }
    dst += kc * nr;
  }
}

/* ---- the driver ----------------------------------------------------------- */

/* k == 0: the product is empty, C = act(beta*C + bias). */
static void scale_block(float beta, float *c, size_t ldc, const strand__gemm_epilogue *ep,
                        size_t m0, size_t m1, size_t n0, size_t n1) {
  for (size_t i = m0; i < m1; i++)
    for (size_t j = n0; j < n1; j++) {
      float v = beta == 0 ? 0 : beta * c[i * ldc + j];
      if (ep) {
        if (ep->bias) v += ep->bias[j];
        v = strand__gemm_activate(v, ep);
      }
      c[i * ldc + j] = v;
    }
}

typedef struct b_source {
  bool packed;
  /* packed: panels from strand__gemm_pack_b */
  const float *panels;
  size_t k;
  /* raw */
  bool trans_b;
  const float *b;
  size_t ldb;
} b_source;

static float *align_up(void *p) {
  return (float *)(((uintptr_t)p + CACHE_LINE - 1) & ~(uintptr_t)(CACHE_LINE - 1));
}

static size_t a_block_floats(const strand__gemm_kernel *kern, size_t m, size_t k) {
  return round_up(min_size(kern->mc, round_up(m, kern->mr)) * min_size(kern->kc, k),
                  CACHE_LINE / sizeof(float));
}

static size_t b_block_floats(const strand__gemm_kernel *kern, size_t n, size_t k) {
  return round_up(min_size(kern->kc, k) * min_size(kern->nc, round_up(n, kern->nr)),
                  CACHE_LINE / sizeof(float));
}

size_t strand__gemm_scratch_size(const strand__gemm_kernel *kernel, size_t m, size_t n, size_t k,
                                 bool b_packed) {
  const strand__gemm_kernel *kern = kernel ? kernel : strand__gemm_kernel_default();
  if (m == 0 || n == 0 || k == 0) return 0;
  size_t floats = a_block_floats(kern, m, k);
  if (!b_packed) floats += b_block_floats(kern, n, k);
  return floats * sizeof(float) + CACHE_LINE;
}

/* The micro loops over one packed A block (mc rows, kc steps) and nc
 * columns of B panels (`panel_stride` floats apart, row 0 of this k block
 * at b_panels), writing C from c (row ic, column col). With `cold`, B was
 * packed beforehand and may be in memory only (weights): the first row of
 * tiles, which reads the panels from there, has each tile prefetch the
 * next one; the rows after it find them in L2. */
static void sweep(const strand__gemm_kernel *kern, const float *a_buf, size_t mc, size_t kc,
                  const float *b_panels, size_t panel_stride, size_t nc, bool cold, float *c,
                  size_t ldc, float alpha, float beta_step, const strand__gemm_epilogue *ep_step,
                  size_t col) {
  const size_t mr = kern->mr, nr = kern->nr;
  for (size_t ir = 0; ir < mc; ir += mr) {
    size_t rows = min_size(mr, mc - ir);
    const float *a_panel = a_buf + ir * kc;
    float *c_row = c + ir * ldc;
    if (kern->wide && rows <= kern->wide_rows) {
      const size_t step = kern->wide_panels * nr;
      for (size_t jr = 0; jr < nc; jr += step)
        kern->wide(rows, min_size(step, nc - jr), kc, a_panel, b_panels + jr / nr * panel_stride,
                   panel_stride, c_row + jr, ldc, alpha, beta_step, ep_step, col + jr);
      continue;
    }
    for (size_t jr = 0; jr < nc; jr += nr) {
      const float *panel = b_panels + jr / nr * panel_stride;
      const float *next = cold && ir == 0 && jr + nr < nc ? panel + panel_stride : NULL;
      kern->tile(rows, min_size(nr, nc - jr), kc, a_panel, panel, next, c_row + jr, ldc, alpha,
                 beta_step, ep_step, col + jr);
    }
  }
}

/* a_packed: A packed whole by strand__gemm_pack_a (then a, lda, trans_a and
 * scratch are unused; B is packed). */
static void run(const strand__gemm_kernel *kern, bool trans_a, size_t m, size_t n, size_t k,
                float alpha, const float *a, size_t lda, const float *a_packed,
                const b_source *bs, float beta, float *c, size_t ldc,
                const strand__gemm_epilogue *ep, const strand__gemm_block *block,
                void *scratch) {
  assert(a_packed || lda >= (trans_a ? m : k) || m == 0 || k == 0);
  assert(!a_packed || bs->packed);
  assert(ldc >= n || m == 0 || n == 0);
  size_t m0 = 0, m1 = m, n0 = 0, n1 = n;
  if (block) {
    m0 = block->m0, m1 = min_size(block->m1, m);
    n0 = block->n0, n1 = min_size(block->n1, n);
  }
  if (m0 >= m1 || n0 >= n1) return;
  if (k == 0) {
    scale_block(beta, c, ldc, ep, m0, m1, n0, n1);
    return;
  }
  const size_t mr = kern->mr, nr = kern->nr;
  float *a_buf = a_packed ? NULL : align_up(scratch);
  float *b_buf = a_packed ? NULL : a_buf + a_block_floats(kern, m1 - m0, k);
  assert(!a_packed || (m0 % mr == 0 && (m1 % mr == 0 || m1 == m)));
  assert(!bs->packed || n0 % nr == 0);

  const size_t nc_step = balanced_step(n1 - n0, kern->nc, nr);
  const size_t kc_step = balanced_step(k, kern->kc, 8);
  const size_t mc_step = balanced_step(m1 - m0, kern->mc, mr);
  if (bs->packed) {
    /* B needs no packing: each A block is packed once and swept across
     * every column block (an A block and a B block fit L2 together), rather
     * than packed again for each column block. Each element still sums its
     * k blocks in order, so the bits are those of the other order. */
    const size_t panel_stride = bs->k * nr;
    for (size_t pc = 0; pc < k; pc += kc_step) {
      size_t kc = min_size(kc_step, k - pc);
      float beta_step = pc == 0 ? beta : 1.0f;
      const strand__gemm_epilogue *ep_step = pc + kc == k ? ep : NULL;
      for (size_t ic = m0; ic < m1; ic += mc_step) {
        size_t mc = min_size(mc_step, m1 - ic);
        /* Packed whole, the k block at m·pc holds its panels in row order
         * (rows ic on at ic·kc), as pack_a lays out a block of them. */
        if (a_packed) a_buf = (float *)a_packed + m * pc + ic * kc;
        else pack_a(kern, trans_a, a, lda, ic, mc, pc, kc, a_buf);
        for (size_t jc = n0; jc < n1; jc += nc_step)
          sweep(kern, a_buf, mc, kc, bs->panels + jc * bs->k + pc * nr, panel_stride,
                min_size(nc_step, n1 - jc), true, c + ic * ldc + jc, ldc, alpha, beta_step,
                ep_step, jc);
      }
    }
    return;
  }
  for (size_t jc = n0; jc < n1; jc += nc_step) {
    size_t nc = min_size(nc_step, n1 - jc);
    for (size_t pc = 0; pc < k; pc += kc_step) {
      size_t kc = min_size(kc_step, k - pc);
      pack_b(kern, bs->trans_b, bs->b, bs->ldb, pc, kc, jc, nc, b_buf);
      float beta_step = pc == 0 ? beta : 1.0f;
      const strand__gemm_epilogue *ep_step = pc + kc == k ? ep : NULL;
      for (size_t ic = m0; ic < m1; ic += mc_step) {
        size_t mc = min_size(mc_step, m1 - ic);
        pack_a(kern, trans_a, a, lda, ic, mc, pc, kc, a_buf);
        sweep(kern, a_buf, mc, kc, b_buf, kc * nr, nc, false, c + ic * ldc + jc, ldc, alpha,
              beta_step, ep_step, jc);
      }
    }
  }
}

void strand__gemm(const strand__gemm_kernel *kernel, bool trans_a, bool trans_b, size_t m,
                  size_t n, size_t k, float alpha, const float *a, size_t lda, const float *b,
                  size_t ldb, float beta, float *c, size_t ldc,
                  const strand__gemm_epilogue *epilogue, const strand__gemm_block *block,
                  void *scratch) {
  const strand__gemm_kernel *kern = kernel ? kernel : strand__gemm_kernel_default();
  assert(ldb >= (trans_b ? k : n) || k == 0 || n == 0);
  b_source bs = {.packed = false, .trans_b = trans_b, .b = b, .ldb = ldb};
  run(kern, trans_a, m, n, k, alpha, a, lda, NULL, &bs, beta, c, ldc, epilogue, block, scratch);
}

/* ---- packed B ------------------------------------------------------------- */

bool strand__gemm_pack_b_size(const strand__gemm_kernel *kernel, size_t k, size_t n,
                              size_t *out_bytes) {
  const strand__gemm_kernel *kern = kernel ? kernel : strand__gemm_kernel_default();
  size_t panels = n / kern->nr + (n % kern->nr != 0), columns, floats, bytes;
  if (!__builtin_mul_overflow(panels, kern->nr, &columns) &&
      !__builtin_mul_overflow(columns, k, &floats) &&
      !__builtin_mul_overflow(floats, sizeof(float), &bytes) &&
      !__builtin_add_overflow(bytes, 2 * CACHE_LINE - 1, &bytes)) {
    *out_bytes = bytes / CACHE_LINE * CACHE_LINE;
    return true;
  }
  return false;
}

float *strand__gemm_pack_b_begin(const strand__gemm_kernel *kernel, size_t k, size_t n,
                                 void *packed) {
  const strand__gemm_kernel *kern = kernel ? kernel : strand__gemm_kernel_default();
  assert(((uintptr_t)packed & (CACHE_LINE - 1)) == 0);
  packed_header *h = packed;
  *h = (packed_header){.magic = PACKED_MAGIC, .level = kern->level, .k = k, .n = n, .nr = kern->nr};
  return (float *)((char *)packed + CACHE_LINE);
}

void strand__gemm_pack_b(const strand__gemm_kernel *kernel, bool trans_b, size_t k, size_t n,
                         const float *b, size_t ldb, void *packed) {
  const strand__gemm_kernel *kern = kernel ? kernel : strand__gemm_kernel_default();
  float *panels = strand__gemm_pack_b_begin(kern, k, n, packed);
  if (k && n) pack_b(kern, trans_b, b, ldb, 0, k, 0, n, panels);
}

static const packed_header *header_of(const void *packed) {
  const packed_header *h = packed;
  assert(h->magic == PACKED_MAGIC);
  return h;
}

size_t strand__gemm_packed_k(const void *packed) { return (size_t)header_of(packed)->k; }
size_t strand__gemm_packed_n(const void *packed) { return (size_t)header_of(packed)->n; }

const strand__gemm_kernel *strand__gemm_packed_kernel(const void *packed) {
  return strand__gemm_kernel_for((strand__cpu_level)header_of(packed)->level);
}

void strand__gemm_packed(bool trans_a, size_t m, float alpha, const float *a, size_t lda,
                         const void *packed, float beta, float *c, size_t ldc,
                         const strand__gemm_epilogue *epilogue,
                         const strand__gemm_block *block, void *scratch) {
  const packed_header *h = header_of(packed);
  const strand__gemm_kernel *kern = strand__gemm_kernel_for((strand__cpu_level)h->level);
  assert(kern && kern->nr == h->nr);
  b_source bs = {.packed = true,
                 .panels = (const float *)((const char *)packed + CACHE_LINE),
                 .k = (size_t)h->k};
  run(kern, trans_a, m, (size_t)h->n, (size_t)h->k, alpha, a, lda, NULL, &bs, beta, c, ldc,
      epilogue, block, scratch);
}

/* ---- packed A ------------------------------------------------------------- */

void strand__gemm_pack_a(const strand__gemm_kernel *kernel, size_t m, size_t k, const float *a,
                         size_t lda, size_t p0, size_t p1, float *packed) {
  const strand__gemm_kernel *kern = kernel ? kernel : strand__gemm_kernel_default();
  strand__gemm_transpose_fn *transpose = kern->transpose ? kern->transpose : transpose_portable;
  if (p1 > k) p1 = k;
  if (m == 0 || p0 >= p1) return;
  const size_t kc_step = balanced_step(k, kern->kc, 8); /* as run() blocks k */
  for (size_t pc = 0; pc < k; pc += kc_step) {
    size_t kc = min_size(kc_step, k - pc);
    size_t lo = p0 > pc ? p0 : pc, hi = min_size(p1, pc + kc);
    if (lo >= hi) continue;
    float *block = packed + m * pc;
    /* Threads packing neighbouring ranges write disjoint floats: a
     * transpose writes exactly its kc * out_stride floats. */
    for (size_t q = 0; q < m; q += kern->mr) {
      size_t rows = min_size(kern->mr, m - q);
      panel_rows(transpose, a + q * lda + lo, lda, rows, hi - lo, block + q * kc + (lo - pc) * rows);
    }
  }
}

void strand__gemm_packed_ab(size_t m, float alpha, const float *packed_a, const void *packed_b,
                            float beta, float *c, size_t ldc,
                            const strand__gemm_epilogue *epilogue,
                            const strand__gemm_block *block) {
  const packed_header *h = header_of(packed_b);
  const strand__gemm_kernel *kern = strand__gemm_kernel_for((strand__cpu_level)h->level);
  assert(kern && kern->nr == h->nr);
  b_source bs = {.packed = true,
                 .panels = (const float *)((const char *)packed_b + CACHE_LINE),
                 .k = (size_t)h->k};
  run(kern, false, m, (size_t)h->n, (size_t)h->k, alpha, NULL, 0, packed_a, &bs, beta, c, ldc,
      epilogue, block, NULL);
}

/* ---- parallel split -------------------------------------------------------- */

/* Below this many multiply-adds (a few microseconds) a part does not repay
 * waking a thread. Batch 1 of a 784→512 layer (401k, bound by reading the
 * weights) is worth two. */
#define MIN_FMAS_PER_PART ((size_t)1 << 17)

size_t strand__gemm_useful_parts(const strand__gemm_kernel *kernel, size_t m, size_t n,
                                 size_t k, size_t max_parts) {
  const strand__gemm_kernel *kern = kernel ? kernel : strand__gemm_kernel_default();
  if (max_parts <= 1 || m == 0 || n == 0) return 1;
  size_t tiles, mn, fmas;
  if (__builtin_mul_overflow(m / kern->mr + (m % kern->mr != 0),
                             n / kern->nr + (n % kern->nr != 0), &tiles))
    tiles = SIZE_MAX;
  if (__builtin_mul_overflow(m, n, &mn) || __builtin_mul_overflow(mn, k ? k : 1, &fmas))
    fmas = SIZE_MAX;
  size_t parts = fmas / MIN_FMAS_PER_PART;
  parts = min_size(min_size(parts, tiles), max_parts);
  return parts ? parts : 1;
}

/* Rows of a grid of `tiles` split into `parts`: [start(i), start(i+1)). */
static size_t split_point(size_t tiles, size_t parts, size_t i) {
  return (size_t)((unsigned long long)tiles * i / parts);
}

void strand__gemm_partition(const strand__gemm_kernel *kernel, size_t m, size_t n, size_t parts,
                            size_t index, strand__gemm_block *out) {
  const strand__gemm_kernel *kern = kernel ? kernel : strand__gemm_kernel_default();
  const size_t mr = kern->mr, nr = kern->nr;
  size_t tiles_m = m / mr + (m % mr != 0), tiles_n = n / nr + (n % nr != 0);
  if (parts == 0) parts = 1;
  assert(index < parts);
  /* Grid gm × gn == parts minimising the largest block, then the data one
   * block reads (its rows of A plus its columns of B). */
  size_t best_gm = 1, best_work = SIZE_MAX, best_edge = SIZE_MAX;
  for (size_t gm = 1; gm <= parts; gm++) {
    if (parts % gm) continue;
    size_t gn = parts / gm;
    size_t bm = (tiles_m + gm - 1) / gm, bn = (tiles_n + gn - 1) / gn;
    size_t work = bm * mr * bn * nr, edge = bm * mr + bn * nr;
    if (work < best_work || (work == best_work && edge < best_edge)) {
      best_gm = gm, best_work = work, best_edge = edge;
    }
  }
  size_t gm = best_gm, gn = parts / best_gm;
  size_t im = index / gn, in = index % gn;
  out->m0 = min_size(split_point(tiles_m, gm, im) * mr, m);
  out->m1 = min_size(split_point(tiles_m, gm, im + 1) * mr, m);
  out->n0 = min_size(split_point(tiles_n, gn, in) * nr, n);
  out->n1 = min_size(split_point(tiles_n, gn, in + 1) * nr, n);
}

/* ---- reference ---------------------------------------------------------- */

void strand__gemm_reference(bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                            float alpha, const float *a, size_t lda, const float *b,
                            size_t ldb, float beta, float *c, size_t ldc,
                            const strand__gemm_epilogue *epilogue) {
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) {
      double sum = 0;
      for (size_t p = 0; p < k; p++) {
        double x = trans_a ? a[p * lda + i] : a[i * lda + p];
        double y = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        sum += x * y;
      }
      double v = (double)alpha * sum;
      if (beta != 0) v += (double)beta * c[i * ldc + j];
      if (epilogue && epilogue->bias) v += epilogue->bias[j];
      c[i * ldc + j] = epilogue ? strand__gemm_activate((float)v, epilogue) : (float)v;
    }
}
