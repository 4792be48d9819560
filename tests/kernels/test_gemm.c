/*
 * test_gemm.c — every SGEMM variant (scalar, AVX2, AVX-512; packed and
 * unpacked B) against the reference triple loop, and the SIMD variants
 * against scalar.
 *
 * Tolerance: inputs are uniform in [-1, 1]; a result element may differ
 * from the double-precision reference by
 *   1e-5 * ((k + 1) * |alpha| * max|a| * max|b| + |beta| * max|c| + max|bias|)
 * (float rounding grows with the length k of each dot product; 1e-5 is
 * about 84 ulps of 1.0, far above what summation order changes cause).
 *
 * Buffers are allocated at exactly the size the matrices need, (rows-1)*ld
 * + cols floats, so that ASan reports any read or write past them; the gaps
 * between rows of C (ldc > n) hold a sentinel that must survive.
 */
#include "test.h"

#include "kernels/gemm.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>

static const size_t edge_sizes[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 64, 65, 127, 257};
#define EDGE_COUNT (sizeof edge_sizes / sizeof edge_sizes[0])
#define SENTINEL 12345.0f

static uint32_t rng = 1;

static float random_float(void) {
  rng = rng * 1664525u + 1013904223u;
  return (float)(rng >> 8) / (float)(1u << 23) - 1.0f; /* [-1, 1) */
}

static size_t matrix_floats(size_t rows, size_t cols, size_t ld) {
  return rows && cols ? (rows - 1) * ld + cols : 0;
}

/* An exactly sized matrix, elements random, gaps between rows SENTINEL. */
static float *new_matrix(size_t rows, size_t cols, size_t ld) {
  size_t count = matrix_floats(rows, cols, ld);
  float *p = malloc(count ? count * sizeof(float) : 1);
  if (!p) abort();
  for (size_t i = 0; i < count; i++) p[i] = (i % ld) < cols ? random_float() : SENTINEL;
  return p;
}

static float max_abs(const float *p, size_t rows, size_t cols, size_t ld) {
  float m = 0;
  for (size_t i = 0; i < rows; i++)
    for (size_t j = 0; j < cols; j++) m = fmaxf(m, fabsf(p[i * ld + j]));
  return m;
}

typedef struct gemm_case {
  bool trans_a, trans_b;
  size_t m, n, k;
  float alpha, beta;
  size_t pad_a, pad_b, pad_c; /* ld beyond the minimum */
  strand__gemm_activation activation;
  bool bias;
} gemm_case;

/* The inputs of a case, shared by every variant run on it. */
typedef struct gemm_data {
  gemm_case cs;
  size_t lda, ldb, ldc;
  float *a, *b, *c0, *bias, *expected;
  strand__gemm_epilogue epilogue;
  float tolerance;
} gemm_data;

static void data_make(gemm_data *d, const gemm_case *cs) {
  memset(d, 0, sizeof *d);
  d->cs = *cs;
  size_t a_rows = cs->trans_a ? cs->k : cs->m, a_cols = cs->trans_a ? cs->m : cs->k;
  size_t b_rows = cs->trans_b ? cs->n : cs->k, b_cols = cs->trans_b ? cs->k : cs->n;
  d->lda = a_cols + cs->pad_a;
  d->ldb = b_cols + cs->pad_b;
  d->ldc = cs->n + cs->pad_c;
  d->a = new_matrix(a_rows, a_cols, d->lda);
  d->b = new_matrix(b_rows, b_cols, d->ldb);
  d->c0 = new_matrix(cs->m, cs->n, d->ldc);
  if (cs->beta == 0) /* C must not be read: NaN must not reach the result */
    for (size_t i = 0; i < cs->m; i++)
      for (size_t j = 0; j < cs->n; j++) d->c0[i * d->ldc + j] = NAN;
  d->bias = cs->bias ? new_matrix(1, cs->n, cs->n) : NULL;
  d->epilogue = (strand__gemm_epilogue){
      .bias = d->bias, .activation = cs->activation, .clip_min = -0.25f, .clip_max = 0.5f};

  size_t c_count = matrix_floats(cs->m, cs->n, d->ldc);
  d->expected = malloc(c_count ? c_count * sizeof(float) : 1);
  if (c_count) memcpy(d->expected, d->c0, c_count * sizeof(float));
  strand__gemm_reference(cs->trans_a, cs->trans_b, cs->m, cs->n, cs->k, cs->alpha, d->a, d->lda,
                         d->b, d->ldb, cs->beta, d->expected, d->ldc, &d->epilogue);

  float max_a = max_abs(d->a, a_rows, a_cols, d->lda), max_b = max_abs(d->b, b_rows, b_cols, d->ldb);
  float max_c = cs->beta == 0 ? 0 : max_abs(d->c0, cs->m, cs->n, d->ldc);
  float max_bias = d->bias ? max_abs(d->bias, 1, cs->n, cs->n) : 0;
  d->tolerance = 1e-5f * ((float)(cs->k + 1) * fabsf(cs->alpha) * max_a * max_b +
                          fabsf(cs->beta) * max_c + max_bias);
}

static void data_free(gemm_data *d) {
  free(d->a), free(d->b), free(d->c0), free(d->bias), free(d->expected);
}

/* Runs one variant on a fresh copy of C (whole or block by block) and
 * returns it; the caller frees it. */
static float *run_variant(const gemm_data *d, const strand__gemm_kernel *kernel, bool packed,
                          size_t parts) {
  const gemm_case *cs = &d->cs;
  size_t c_count = matrix_floats(cs->m, cs->n, d->ldc);
  float *c = malloc(c_count ? c_count * sizeof(float) : 1);
  if (!c) abort();
  if (c_count) memcpy(c, d->c0, c_count * sizeof(float));

  void *packed_b = NULL;
  if (packed) {
    size_t bytes = 0;
    if (!strand__gemm_pack_b_size(kernel, cs->k, cs->n, &bytes)) abort();
    packed_b = aligned_alloc(64, bytes);
    if (!packed_b) abort();
    strand__gemm_pack_b(kernel, cs->trans_b, cs->k, cs->n, d->b, d->ldb, packed_b);
  }
  size_t scratch_bytes = strand__gemm_scratch_size(kernel, cs->m, cs->n, cs->k, packed);
  void *scratch = malloc(scratch_bytes ? scratch_bytes : 1);
  if (!scratch) abort();

  for (size_t index = 0; index < parts; index++) {
    strand__gemm_block block, *blockp = NULL;
    if (parts > 1) {
      strand__gemm_partition(kernel, cs->m, cs->n, parts, index, &block);
      blockp = &block;
    }
    if (packed)
      strand__gemm_packed(cs->trans_a, cs->m, cs->alpha, d->a, d->lda, packed_b, cs->beta, c,
                          d->ldc, &d->epilogue, blockp, scratch);
    else
      strand__gemm(kernel, cs->trans_a, cs->trans_b, cs->m, cs->n, cs->k, cs->alpha, d->a,
                   d->lda, d->b, d->ldb, cs->beta, c, d->ldc, &d->epilogue, blockp, scratch);
  }
  free(scratch);
  free(packed_b);
  return c;
}

static void describe(char *out, size_t size, const gemm_data *d, const char *variant) {
  const gemm_case *cs = &d->cs;
  snprintf(out, size,
           "%s: %c%c m=%zu n=%zu k=%zu alpha=%g beta=%g lda=%zu ldb=%zu ldc=%zu act=%d bias=%d",
           variant, cs->trans_a ? 'T' : 'N', cs->trans_b ? 'T' : 'N', cs->m, cs->n, cs->k,
           (double)cs->alpha, (double)cs->beta, d->lda, d->ldb, d->ldc, (int)cs->activation,
           (int)cs->bias);
}

/* Every element within tolerance of `want`, gaps untouched. Reports the
 * first bad element; returns whether all were good. */
static bool compare(const gemm_data *d, const float *got, const float *want, const char *variant) {
  const gemm_case *cs = &d->cs;
  for (size_t i = 0; i < cs->m; i++) {
    for (size_t j = 0; j < d->ldc && i * d->ldc + j < matrix_floats(cs->m, cs->n, d->ldc); j++) {
      float g = got[i * d->ldc + j], w = want[i * d->ldc + j];
      bool ok = j < cs->n ? isfinite(g) && fabsf(g - w) <= d->tolerance : g == SENTINEL;
      if (!ok) {
        char what[256];
        describe(what, sizeof what, d, variant);
        test_fail(__FILE__, __LINE__, "%s: C[%zu][%zu] = %.9g, expected %.9g (tolerance %.3g)",
                  what, i, j, (double)g, (double)w, (double)d->tolerance);
        return false;
      }
    }
  }
  return true;
}

static const strand__gemm_kernel *kernels[STRAND__CPU_LEVEL_COUNT];

static void load_kernels(void) {
  static bool noted;
  for (int level = 0; level < STRAND__CPU_LEVEL_COUNT; level++) {
    kernels[level] = strand__gemm_kernel_for((strand__cpu_level)level);
    if (!kernels[level] && !noted)
      printf("    note: this CPU lacks %s; its kernel is not tested\n",
             strand__cpu_level_name((strand__cpu_level)level));
  }
  noted = true;
}

/* All variants on one case: each kernel unpacked and packed against the
 * reference, each SIMD kernel against scalar. `parts` > 1 also runs the
 * product block by block. Returns false after the first failure. */
static bool check_case(const gemm_case *cs, size_t parts) {
  gemm_data d;
  data_make(&d, cs);
  bool ok = true;
  float *scalar = NULL;
  for (int level = 0; level < STRAND__CPU_LEVEL_COUNT && ok; level++) {
    const strand__gemm_kernel *kernel = kernels[level];
    if (!kernel) continue;
    for (int packed = 0; packed < 2 && ok; packed++) {
      char variant[64];
      snprintf(variant, sizeof variant, "%s%s parts=%zu", strand__gemm_kernel_name(kernel),
               packed ? " packed" : "", parts);
      float *got = run_variant(&d, kernel, packed, parts);
      ok = compare(&d, got, d.expected, variant);
      if (ok && level == STRAND__CPU_SCALAR && !packed) {
        scalar = got;
        continue;
      }
      if (ok && scalar) {
        char against[96];
        snprintf(against, sizeof against, "%s vs scalar", variant);
        ok = compare(&d, got, scalar, against);
      }
      free(got);
    }
  }
  free(scalar);
  data_free(&d);
  return ok;
}

/* ---- tests ---------------------------------------------------------------- */

TEST(cpu_detection_is_consistent) {
  const strand__cpu_info *cpu = strand__cpu();
  CHECK(cpu == strand__cpu());
  CHECK(cpu->selected <= cpu->hardware);
  CHECK(cpu->hardware < STRAND__CPU_LEVEL_COUNT);
  if (cpu->hardware >= STRAND__CPU_AVX2) CHECK(cpu->avx2 && cpu->fma);
  if (cpu->hardware >= STRAND__CPU_AVX512)
    CHECK(cpu->avx512f && cpu->avx512bw && cpu->avx512dq && cpu->avx512vl);
  CHECK(cpu->l1d_bytes >= 4096 && cpu->l2_bytes >= cpu->l1d_bytes);
  for (int level = 0; level < STRAND__CPU_LEVEL_COUNT; level++)
    CHECK((strand__gemm_kernel_for((strand__cpu_level)level) != NULL) ==
          (level <= (int)cpu->hardware));
  CHECK(strand__gemm_kernel_for(STRAND__CPU_LEVEL_COUNT) == NULL);
  CHECK(strand__gemm_kernel_level(strand__gemm_kernel_default()) == cpu->selected);
  /* STRAND_CPU lowers the selection, never raises it */
  strand__cpu_level wanted;
  if (strand__cpu_parse_level(getenv("STRAND_CPU"), &wanted))
    CHECK(cpu->selected == (wanted < cpu->hardware ? wanted : cpu->hardware));
  else
    CHECK(cpu->selected == cpu->hardware);
  printf("    cpu: hardware %s, selected %s, L1d %zu, L2 %zu\n",
         strand__cpu_level_name(cpu->hardware), strand__cpu_level_name(cpu->selected),
         cpu->l1d_bytes, cpu->l2_bytes);
}

TEST(cpu_level_names_parse) {
  strand__cpu_level level = STRAND__CPU_LEVEL_COUNT;
  CHECK(strand__cpu_parse_level("scalar", &level) && level == STRAND__CPU_SCALAR);
  CHECK(strand__cpu_parse_level("avx2", &level) && level == STRAND__CPU_AVX2);
  CHECK(strand__cpu_parse_level("avx512", &level) && level == STRAND__CPU_AVX512);
  level = STRAND__CPU_AVX2;
  CHECK(!strand__cpu_parse_level("AVX512", &level) && level == STRAND__CPU_AVX2);
  CHECK(!strand__cpu_parse_level("", &level));
  CHECK(!strand__cpu_parse_level(NULL, &level));
  CHECK(strcmp(strand__cpu_level_name(STRAND__CPU_AVX512), "avx512") == 0);
  CHECK(strcmp(strand__cpu_level_name((strand__cpu_level)7), "unknown") == 0);
}

/* Every m, n, k of the edge sizes, plain and with both operands transposed. */
TEST(gemm_edge_sizes_all_variants) {
  load_kernels();
  int failures = 0;
  for (size_t im = 0; im < EDGE_COUNT; im++)
    for (size_t in = 0; in < EDGE_COUNT; in++)
      for (size_t ik = 0; ik < EDGE_COUNT; ik++) {
        size_t m = edge_sizes[im], n = edge_sizes[in], k = edge_sizes[ik];
        if (m * n * k > 257 * 65 * 65) continue; /* the largest ones: see below */
        bool trans = (im + in + ik) % 2;
        gemm_case cs = {.trans_a = trans, .trans_b = trans, .m = m, .n = n, .k = k,
                        .alpha = 1, .beta = 0};
        if (!check_case(&cs, 1) && ++failures > 3) return;
      }
  static const size_t big[][3] = {{257, 257, 257}, {127, 257, 65}, {257, 33, 257}, {65, 127, 257}};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    gemm_case cs = {.m = big[i][0], .n = big[i][1], .k = big[i][2], .alpha = 1, .beta = 0};
    if (!check_case(&cs, 1)) return;
  }
}

/* The four transpose combinations with alpha/beta pairs and leading
 * dimensions beyond the minimum, on a spread of edge shapes. */
TEST(gemm_transposes_alpha_beta_strides) {
  load_kernels();
  static const float alphas[] = {1.0f, -0.5f, 2.0f, 0.0f};
  static const float betas[] = {0.0f, 1.0f, -1.5f, 0.25f};
  int count = 0;
  for (int t = 0; t < 4; t++)
    for (size_t s = 0; s < 60; s++) {
      size_t m = edge_sizes[(s * 7 + (size_t)t) % EDGE_COUNT];
      size_t n = edge_sizes[(s * 5 + 3) % EDGE_COUNT];
      size_t k = edge_sizes[(s * 3 + 1 + (size_t)t) % EDGE_COUNT];
      if (m * n * k > 300000) k = 17;
      gemm_case cs = {.trans_a = t & 1, .trans_b = t & 2, .m = m, .n = n, .k = k,
                      .alpha = alphas[s % 4], .beta = betas[(s / 4) % 4],
                      .pad_a = s % 3 ? 0 : 5, .pad_b = s % 2 ? 3 : 0, .pad_c = s % 5 ? 0 : 16};
      if (!check_case(&cs, 1)) return;
      count++;
    }
  CHECK(count == 240);
}

TEST(gemm_epilogues) {
  load_kernels();
  static const strand__gemm_activation acts[] = {STRAND__GEMM_ACT_NONE, STRAND__GEMM_ACT_RELU,
                                                 STRAND__GEMM_ACT_CLIP};
  static const size_t shapes[][3] = {{1, 17, 33}, {15, 64, 16}, {17, 65, 7},  {33, 31, 127},
                                     {64, 33, 257}, {7, 257, 3}, {300, 40, 600}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int a = 0; a < 3; a++)
      for (int bias = 0; bias < 2; bias++) {
        gemm_case cs = {.trans_a = s % 2, .trans_b = (s / 2) % 2, .m = shapes[s][0],
                        .n = shapes[s][1], .k = shapes[s][2], .alpha = a == 2 ? 0.75f : 1.0f,
                        .beta = bias ? 0.5f : 0.0f, .activation = acts[a], .bias = bias,
                        .pad_c = 2};
        if (!check_case(&cs, 1)) return;
      }
}

/* Several cache blocks in every direction (m > mc, n > nc, k > kc). */
TEST(gemm_many_blocks) {
  load_kernels();
  gemm_case cs = {.m = 600, .n = 1100, .k = 530, .alpha = 1, .beta = 0.5f,
                  .bias = true, .activation = STRAND__GEMM_ACT_RELU, .pad_a = 1};
  const strand__gemm_kernel *kern = strand__gemm_kernel_default();
  CHECK(cs.m > kern->mc && cs.n > kern->nc && cs.k > kern->kc);
  check_case(&cs, 1);
  cs.trans_a = cs.trans_b = true;
  check_case(&cs, 1);
}

/* k == 0: C = act(beta*C + bias); m or n == 0: nothing is touched. */
TEST(gemm_empty_dimensions) {
  load_kernels();
  gemm_case cs = {.m = 5, .n = 9, .k = 0, .alpha = 1, .beta = 0.5f, .bias = true,
                  .activation = STRAND__GEMM_ACT_CLIP};
  check_case(&cs, 1);
  cs.beta = 0;
  check_case(&cs, 3);
  for (int level = 0; level < STRAND__CPU_LEVEL_COUNT; level++) {
    if (!kernels[level]) continue;
    float c = 3.0f, a = 1.0f, b = 1.0f;
    strand__gemm(kernels[level], false, false, 0, 1, 1, 1, &a, 1, &b, 1, 0, &c, 1, NULL, NULL, NULL);
    strand__gemm(kernels[level], false, false, 1, 0, 1, 1, &a, 1, &b, 1, 0, &c, 1, NULL, NULL, NULL);
    CHECK(c == 3.0f);
    CHECK(strand__gemm_scratch_size(kernels[level], 0, 5, 5, false) == 0);
  }
}

/* Blocks from strand__gemm_partition are disjoint, cover C, and align to the
 * register tile; running them one by one gives the whole product. */
TEST(gemm_partition_blocks) {
  load_kernels();
  const strand__gemm_kernel *kern = strand__gemm_kernel_default();
  static const size_t shapes[][2] = {{1, 1}, {1, 512}, {32, 512}, {3136, 64}, {128, 1024},
                                     {17, 33}, {1000, 3}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    size_t m = shapes[s][0], n = shapes[s][1];
    unsigned char *hits = calloc(m * n, 1);
    for (size_t parts = 1; parts <= 9; parts++) {
      memset(hits, 0, m * n);
      for (size_t i = 0; i < parts; i++) {
        strand__gemm_block b;
        strand__gemm_partition(kern, m, n, parts, i, &b);
        CHECK(b.m0 <= b.m1 && b.m1 <= m && b.n0 <= b.n1 && b.n1 <= n);
        CHECK(b.m0 % kern->mr == 0 && b.n0 % kern->nr == 0);
        for (size_t r = b.m0; r < b.m1; r++)
          for (size_t c = b.n0; c < b.n1; c++) hits[r * n + c]++;
      }
      size_t bad = 0;
      for (size_t e = 0; e < m * n; e++) bad += hits[e] != 1;
      CHECK(bad == 0);
    }
    free(hits);
  }
  CHECK(strand__gemm_useful_parts(kern, 1, 1, 1, 8) == 1);
  CHECK(strand__gemm_useful_parts(kern, 1024, 1024, 1024, 2) == 2);
  CHECK(strand__gemm_useful_parts(kern, 1024, 1024, 1024, 1) == 1);
  CHECK(strand__gemm_useful_parts(kern, SIZE_MAX / 2, SIZE_MAX / 2, 3, 4) == 4);

  gemm_case cs = {.m = 45, .n = 70, .k = 33, .alpha = 1, .beta = 1, .bias = true,
                  .activation = STRAND__GEMM_ACT_RELU};
  for (size_t parts = 2; parts <= 7; parts++)
    if (!check_case(&cs, parts)) return;
  gemm_case mlp = {.trans_b = true, .m = 1, .n = 512, .k = 100, .alpha = 1, .beta = 0};
  check_case(&mlp, 4);
}

TEST(gemm_packed_b_layout) {
  load_kernels();
  size_t bytes = 0;
  for (int level = 0; level < STRAND__CPU_LEVEL_COUNT; level++) {
    const strand__gemm_kernel *kern = kernels[level];
    if (!kern) continue;
    CHECK(strand__gemm_pack_b_size(kern, 784, 512, &bytes));
    CHECK(bytes % 64 == 0 && bytes >= 784 * 512 * sizeof(float));
    CHECK(strand__gemm_pack_b_size(kern, 0, 0, &bytes) && bytes == 64);
    CHECK(!strand__gemm_pack_b_size(kern, SIZE_MAX / 8, 1024, &bytes));
    CHECK(!strand__gemm_pack_b_size(kern, 2, SIZE_MAX - 2, &bytes));
    float b[6] = {1, 2, 3, 4, 5, 6};
    CHECK(strand__gemm_pack_b_size(kern, 2, 3, &bytes));
    void *packed = aligned_alloc(64, bytes);
    strand__gemm_pack_b(kern, false, 2, 3, b, 3, packed);
    CHECK(strand__gemm_packed_k(packed) == 2 && strand__gemm_packed_n(packed) == 3);
    CHECK(strand__gemm_packed_kernel(packed) == kern);
    free(packed);
  }
}

/* A packed B filled by hand through strand__gemm_pack_b_begin, at the
 * place its documentation gives each element, is the packed B that
 * strand__gemm_pack_b makes: the same bytes, and the same product. */
TEST(gemm_packed_b_filled_by_hand) {
  load_kernels();
  const size_t k = 37, n = 71; /* a partial last panel */
  float *b = malloc(k * n * sizeof(float));
  for (size_t i = 0; i < k * n; i++) b[i] = (float)((i * 7919) % 113) - 56.0f;
  for (int level = 0; level < STRAND__CPU_LEVEL_COUNT; level++) {
    const strand__gemm_kernel *kern = kernels[level];
    if (!kern) continue;
    size_t bytes, nr = kern->nr, padded = (n + nr - 1) / nr * nr;
    CHECK(strand__gemm_pack_b_size(kern, k, n, &bytes));
    unsigned char *want = aligned_alloc(64, bytes), *got = aligned_alloc(64, bytes);
    memset(want, 0xab, bytes);
    memset(got, 0xcd, bytes);
    strand__gemm_pack_b(kern, false, k, n, b, n, want);
    float *panels = strand__gemm_pack_b_begin(kern, k, n, got);
    CHECK((unsigned char *)panels == got + 64);
    for (size_t j = 0; j < padded; j++)
      for (size_t p = 0; p < k; p++)
        panels[j / nr * k * nr + p * nr + j % nr] = j < n ? b[p * n + j] : 0.0f;
    CHECK(memcmp(want + 64, got + 64, padded * k * sizeof(float)) == 0);
    CHECK(strand__gemm_packed_k(got) == k && strand__gemm_packed_n(got) == n);
    CHECK(strand__gemm_packed_kernel(got) == kern);
    free(want);
    free(got);
  }
  free(b);
}

/* One packed B shared by several threads at once, each with its own
 * scratch and rows of C (the session's concurrent-run pattern). */
typedef struct shared_job {
  const void *packed;
  const float *a;
  float *c;
  size_t m, k, n;
  int next_slice;
  pthread_mutex_t lock;
} shared_job;

#define SLICES 8

static void *shared_worker(void *arg) {
  shared_job *job = arg;
  for (;;) {
    pthread_mutex_lock(&job->lock);
    int slice = job->next_slice++;
    pthread_mutex_unlock(&job->lock);
    if (slice >= SLICES) return NULL;
    size_t rows = job->m / SLICES;
    const strand__gemm_kernel *kern = strand__gemm_packed_kernel(job->packed);
    void *scratch = malloc(strand__gemm_scratch_size(kern, rows, job->n, job->k, true));
    for (int rep = 0; rep < 4; rep++)
      strand__gemm_packed(false, rows, 1, job->a + (size_t)slice * rows * job->k, job->k,
                          job->packed, 0, job->c + (size_t)slice * rows * job->n, job->n, NULL,
                          NULL, scratch);
    free(scratch);
  }
}

TEST(gemm_packed_b_shared_by_threads) {
  shared_job job = {.m = 64, .k = 96, .n = 80};
  pthread_mutex_init(&job.lock, NULL);
  float *a = new_matrix(job.m, job.k, job.k), *b = new_matrix(job.k, job.n, job.n);
  float *c = calloc(job.m * job.n, sizeof(float)), *want = calloc(job.m * job.n, sizeof(float));
  size_t bytes = 0;
  REQUIRE(strand__gemm_pack_b_size(NULL, job.k, job.n, &bytes));
  void *packed = aligned_alloc(64, bytes);
  strand__gemm_pack_b(NULL, false, job.k, job.n, b, job.n, packed);
  job.packed = packed, job.a = a, job.c = c;
  test_run_threads(4, shared_worker, &job);
  strand__gemm_reference(false, false, job.m, job.n, job.k, 1, a, job.k, b, job.n, 0, want, job.n,
                         NULL);
  size_t bad = 0;
  for (size_t i = 0; i < job.m * job.n; i++) bad += !(fabsf(c[i] - want[i]) <= 1e-5f * 97);
  CHECK(bad == 0);
  free(a), free(b), free(c), free(want), free(packed);
  pthread_mutex_destroy(&job.lock);
}

/* Row i of an m-row product equals row i multiplied alone, bit for bit,
 * for every kernel, packed or not, whole or split into blocks, with
 * alpha, beta and a bias + Relu epilogue (dynamic batching stacks rows and
 * splits the result back, so a caller's answer must not depend on its
 * company). Sizes cross the register tiles (14 and 6 rows, 32 and 16
 * columns), the wide tiles (1 and 2 rows over 4 panels) and the k
 * blocking (k > 288 is cut into steps). */
static bool rows_match_alone(const strand__gemm_kernel *kern, bool packed, size_t m, size_t n,
                             size_t k, size_t parts) {
  float *a = new_matrix(m, k, k), *b = new_matrix(k, n, n), *bias = new_matrix(1, n, n);
  float *c0 = new_matrix(m, n, n);
  float *all = malloc(m * n * sizeof(float)), *one = malloc(n * sizeof(float));
  if (!all || !one) abort();
  memcpy(all, c0, m * n * sizeof(float));
  strand__gemm_epilogue ep = {bias, STRAND__GEMM_ACT_RELU, 0, 0};
  const float alpha = 0.75f, beta = 0.5f;
  void *pb = NULL;
  if (packed) {
    size_t bytes = 0;
    if (!strand__gemm_pack_b_size(kern, k, n, &bytes)) abort();
    pb = aligned_alloc(64, bytes);
    strand__gemm_pack_b(kern, false, k, n, b, n, pb);
  }
  void *scratch = malloc(strand__gemm_scratch_size(kern, m, n, k, packed) + 1);
  for (size_t part = 0; part < parts; part++) {
    strand__gemm_block block;
    strand__gemm_partition(kern, m, n, parts, part, &block);
    if (packed)
      strand__gemm_packed(false, m, alpha, a, k, pb, beta, all, n, &ep, &block, scratch);
    else
      strand__gemm(kern, false, false, m, n, k, alpha, a, k, b, n, beta, all, n, &ep, &block,
                   scratch);
  }
  bool same = true;
  for (size_t i = 0; i < m && same; i++) {
    memcpy(one, c0 + i * n, n * sizeof(float));
    if (packed)
      strand__gemm_packed(false, 1, alpha, a + i * k, k, pb, beta, one, n, &ep, NULL, scratch);
    else
      strand__gemm(kern, false, false, 1, n, k, alpha, a + i * k, k, b, n, beta, one, n, &ep,
                   NULL, scratch);
    if (memcmp(one, all + i * n, n * sizeof(float)) != 0) {
      test_fail(__FILE__, __LINE__, "%s %s m %zu n %zu k %zu parts %zu: row %zu differs from "
                "the row alone", strand__gemm_kernel_name(kern), packed ? "packed" : "unpacked",
                m, n, k, parts, i);
      same = false;
    }
  }
  free(a), free(b), free(bias), free(c0), free(all), free(one), free(scratch), free(pb);
  return same;
}

TEST(gemm_rows_match_rows_alone) {
  load_kernels();
  static const size_t ms[] = {2, 3, 5, 13, 14, 15, 29, 32};
#ifdef STRAND_SANITIZER
  /* Sanitizer builds are unoptimized and instrumented: the sizes that cross
   * every tile and the k blocking, without the largest products. */
  static const size_t ns[] = {1, 17, 33, 129};
  static const size_t ks[] = {1, 7, 300};
#else
  static const size_t ns[] = {1, 10, 17, 32, 33, 100, 129, 257};
  static const size_t ks[] = {1, 7, 64, 300, 784};
#endif
  for (int level = 0; level < STRAND__CPU_LEVEL_COUNT; level++) {
    if (!kernels[level]) continue;
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
      for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
          for (int packed = 0; packed < 2; packed++)
            if (!rows_match_alone(kernels[level], packed, ms[mi], ns[ni], ks[ki],
                                  1 + (mi + ni) % 3))
              return;
  }
}

/* ---- packed A ---------------------------------------------------------------- */

/* A packed in column ranges (in any order, each call writing only its own
 * floats) equals A packed whole, and strand__gemm_packed_ab gives every
 * element of C, whole or by partition blocks, the bits
 * strand__gemm_packed gives it. Sizes cross the register tiles (14, 6 and 4
 * rows; the edge panels of fewer than 8 rows are where a kernel's
 * transpose stores past its steps) and the k blocking (k > 288). */
static bool packed_a_matches(const strand__gemm_kernel *kern, size_t m, size_t n, size_t k,
                             size_t parts) {
  float *a = new_matrix(m, k, k), *b = new_matrix(k, n, n), *bias = new_matrix(1, n, n);
  float *c0 = new_matrix(m, n, n);
  size_t bytes = 0;
  if (!strand__gemm_pack_b_size(kern, k, n, &bytes)) abort();
  void *pb = aligned_alloc(64, bytes);
  strand__gemm_pack_b(kern, false, k, n, b, n, pb);
  float *whole = malloc(m * k * sizeof(float)), *pieces[2];
  float *want = malloc(m * n * sizeof(float)), *got = malloc(m * n * sizeof(float));
  void *scratch = malloc(strand__gemm_scratch_size(kern, m, n, k, true) + 1);
  if (!whole || !want || !got || !scratch) abort();
  strand__gemm_pack_a(kern, m, k, a, k, 0, k, whole);
  /* Odd ranges into pieces[0], the others into pieces[1], both filled with
   * SENTINEL first: every float must be written by exactly one of them. */
  size_t cuts[] = {0, k / 3, k / 3 + (k > 5), 2 * k / 3 + 1, k};
  for (int s = 0; s < 2; s++) {
    pieces[s] = malloc(m * k * sizeof(float));
    if (!pieces[s]) abort();
    for (size_t i = 0; i < m * k; i++) pieces[s][i] = SENTINEL;
  }
  for (size_t r = 4; r-- > 0;) /* last range first */
    strand__gemm_pack_a(kern, m, k, a, k, cuts[r], cuts[r + 1], pieces[r % 2]);
  bool ok = true;
  for (size_t i = 0; i < m * k && ok; i++) {
    bool in0 = pieces[0][i] != SENTINEL, in1 = pieces[1][i] != SENTINEL;
    float v = in0 ? pieces[0][i] : pieces[1][i];
    if (in0 == in1 || memcmp(&v, &whole[i], sizeof v) != 0) {
      test_fail(__FILE__, __LINE__, "%s m %zu k %zu: packed float %zu written by %d ranges or "
                "differs from the whole pack", strand__gemm_kernel_name(kern), m, k, i,
                (int)in0 + (int)in1);
      ok = false;
    }
  }
  strand__gemm_epilogue ep = {bias, STRAND__GEMM_ACT_RELU, 0, 0};
  const float alpha = 0.75f, beta = 0.5f;
  memcpy(want, c0, m * n * sizeof(float));
  memcpy(got, c0, m * n * sizeof(float));
  strand__gemm_packed(false, m, alpha, a, k, pb, beta, want, n, &ep, NULL, scratch);
  for (size_t part = 0; part < parts; part++) {
    strand__gemm_block block;
    strand__gemm_partition(kern, m, n, parts, part, &block);
    strand__gemm_packed_ab(m, alpha, whole, pb, beta, got, n, &ep, &block);
  }
  if (ok && memcmp(want, got, m * n * sizeof(float)) != 0) {
    test_fail(__FILE__, __LINE__, "%s m %zu n %zu k %zu parts %zu: packed A gives other bits",
              strand__gemm_kernel_name(kern), m, n, k, parts);
    ok = false;
  }
  free(a), free(b), free(bias), free(c0), free(pb), free(whole), free(pieces[0]);
  free(pieces[1]), free(want), free(got), free(scratch);
  return ok;
}

TEST(gemm_packed_a_matches_packed_b_product) {
  load_kernels();
  static const size_t ms[] = {1, 3, 4, 13, 14, 18, 32};
  static const size_t ns[] = {1, 33, 129};
  static const size_t ks[] = {1, 7, 40, 300};
  for (int level = 0; level < STRAND__CPU_LEVEL_COUNT; level++) {
    if (!kernels[level]) continue;
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
      for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
          if (!packed_a_matches(kernels[level], ms[mi], ns[ni], ks[ki], 1 + (mi + ki) % 3)) return;
  }
}

/* Threads pack their own column ranges of one A into one buffer at once
 * (the blocked LSTM's step): the result is A packed whole (and, under
 * ThreadSanitizer, no two threads write the same float). */
typedef struct pack_a_job {
  const strand__gemm_kernel *kern;
  const float *a;
  float *packed;
  size_t m, k, ranges;
  int next;
  pthread_mutex_t lock;
} pack_a_job;

static void *pack_a_worker(void *arg) {
  pack_a_job *job = arg;
  for (;;) {
    pthread_mutex_lock(&job->lock);
    size_t r = (size_t)job->next++;
    pthread_mutex_unlock(&job->lock);
    if (r >= job->ranges) return NULL;
    strand__gemm_pack_a(job->kern, job->m, job->k, job->a, job->k, job->k * r / job->ranges,
                        job->k * (r + 1) / job->ranges, job->packed);
  }
}

TEST(gemm_packed_a_ranges_packed_by_threads) {
  load_kernels();
  for (int level = 0; level < STRAND__CPU_LEVEL_COUNT; level++) {
    if (!kernels[level]) continue;
    pack_a_job job = {.kern = kernels[level], .m = 32, .k = 300, .ranges = 9};
    pthread_mutex_init(&job.lock, NULL);
    float *a = new_matrix(job.m, job.k, job.k);
    float *whole = malloc(job.m * job.k * sizeof(float));
    job.packed = malloc(job.m * job.k * sizeof(float));
    if (!whole || !job.packed) abort();
    job.a = a;
    strand__gemm_pack_a(job.kern, job.m, job.k, a, job.k, 0, job.k, whole);
    test_run_threads(4, pack_a_worker, &job);
    CHECK(memcmp(whole, job.packed, job.m * job.k * sizeof(float)) == 0);
    free(a), free(whole), free(job.packed);
    pthread_mutex_destroy(&job.lock);
  }
}

/* Every kernel's transpose writes exactly kc * out_stride floats (the
 * contract in gemm.h that lets threads pack neighbouring ranges of one A):
 * nothing past the panel, whatever the rows, stride and steps, and the
 * right values with zeros in the rows past `rows`. */
TEST(transpose_writes_exactly_its_panel) {
  load_kernels();
  enum { MAXK = 41, GUARD = 64 };
  float src[32 * MAXK];
  for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) src[i] = (float)(i + 1);
  float *dst = malloc((32 * MAXK + GUARD) * sizeof(float));
  REQUIRE(dst);
  size_t bad = 0;
  for (int level = 0; level < STRAND__CPU_LEVEL_COUNT; level++) {
    const strand__gemm_kernel *kernel = kernels[level];
    if (!kernel || !kernel->transpose) continue;
    for (size_t stride = 1; stride <= 32; stride++)
      for (size_t rows = 1; rows <= stride; rows++)
        for (size_t kc = 1; kc <= MAXK; kc += (kc < 18 ? 1 : 7)) {
          size_t panel = kc * stride;
          for (size_t i = 0; i < panel + GUARD; i++) dst[i] = -1.0f;
          kernel->transpose(src, MAXK, rows, kc, stride, dst);
          for (size_t p = 0; p < kc; p++)
            for (size_t r = 0; r < stride; r++)
              bad += dst[p * stride + r] != (r < rows ? src[r * MAXK + p] : 0.0f);
          for (size_t i = panel; i < panel + GUARD; i++) bad += dst[i] != -1.0f;
          if (bad) {
            fprintf(stderr, "    %s: rows %zu stride %zu kc %zu\n", kernel->name, rows, stride, kc);
            goto done;
          }
        }
  }
done:
  CHECK(bad == 0);
  free(dst);
}
