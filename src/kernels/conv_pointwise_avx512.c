/*
 * conv_pointwise_avx512.c — the direct 1×1 Conv of conv_pointwise.h: per
 * 32 positions (two vectors, the last block masked), every panel of mr
 * output channels in turn, so the c × 32 slice of X stays in cache while
 * all panels pass over it. Blocks of positions are split over the threads.
 *
 * Built without global -m flags: the kernels carry target attributes and
 * run only when strand__cpu() reports AVX-512.
 */
#include "kernels/conv_pointwise.h"

#include <string.h>

/* The panel height for m output channels: the one with the least work,
 * counting rows padded up to a whole panel and the lower speed of short
 * panels (8 rows: 16 FMAs per 10 loads; 14 rows: 28 per 16). The rates
 * are estimates from those ratios, not measurements. */
static size_t panel_rows(size_t m) {
  static const size_t rows[3] = {14, 12, 8};
  static const double rate[3] = {1.0, 0.95, 0.75};
  size_t best = 14;
  double least = 0;
  for (int i = 0; i < 3; i++) {
    double work = (double)((m + rows[i] - 1) / rows[i] * rows[i]) / rate[i];
    if (i == 0 || work < least) {
      least = work;
      best = rows[i];
    }
  }
  return best;
}

strand_status conv_pointwise_prepare(kernel_prepare *p, const float *w, const float *bias,
                                     size_t m, size_t c, conv_pointwise *out) {
  memset(out, 0, sizeof *out);
  size_t mr = panel_rows(m), panels = (m + mr - 1) / mr;
  float *packed, *b;
  strand_status st = kernel_alloc(p, panels * mr * c * sizeof(float), STRAND_MEMORY_WEIGHTS,
                                  (void **)&packed);
  if (!st) st = kernel_alloc(p, panels * mr * sizeof(float), STRAND_MEMORY_WEIGHTS, (void **)&b);
  if (st) return st;
  /* kernel_alloc's memory is zero: rows past m stay zero. */
  for (size_t q = 0; q < panels; q++)
    for (size_t r = 0; r < mr && q * mr + r < m; r++) {
      for (size_t k = 0; k < c; k++) packed[(q * c + k) * mr + r] = w[(q * mr + r) * c + k];
      if (bias) b[q * mr + r] = bias[q * mr + r];
    }
  out->m = m;
  out->c = c;
  out->mr = mr;
  out->panels = packed;
  out->bias = b;
  return STRAND_OK;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { LANES = 16, MAX_MR = 14, BLOCK = 2 * LANES };

bool conv_pointwise_usable(void) { return strand__cpu()->selected >= STRAND__CPU_AVX512; }

typedef struct pointwise_job {
  const conv_pointwise *pw;
  const float *x;
  size_t size;
  const kernel_activation *act;
  float *y;
} pointwise_job;

INLINE __m512 activate(__m512 v, const kernel_activation *act) {
  if (act->kind == STRAND__GEMM_ACT_RELU) return _mm512_max_ps(_mm512_setzero_ps(), v);
  if (act->kind == STRAND__GEMM_ACT_CLIP)
    return _mm512_min_ps(_mm512_set1_ps(act->hi), _mm512_max_ps(_mm512_set1_ps(act->lo), v));
  return v;
}

static inline __mmask16 first_lanes(size_t n) {
  return n >= LANES ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* One mr × 32 tile: panel q, positions [j, j + count), count <= 32. */
INLINE void tile(const pointwise_job *job, const size_t mr, size_t q, size_t j, size_t count) {
  const conv_pointwise *pw = job->pw;
  const size_t c = pw->c, size = job->size;
  const __mmask16 m0 = first_lanes(count), m1 = first_lanes(count > LANES ? count - LANES : 0);
  const float *a = pw->panels + q * c * mr, *x = job->x + j;
  __m512 acc[MAX_MR][2];
#pragma GCC unroll 14
  for (size_t r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm512_set1_ps(pw->bias[q * mr + r]);
  for (size_t k = 0; k < c; k++, a += mr, x += size) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, x), b1 = _mm512_maskz_loadu_ps(m1, x + LANES);
#pragma GCC unroll 14
    for (size_t r = 0; r < mr; r++) {
      const __m512 w = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(w, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(w, b1, acc[r][1]);
    }
  }
  const size_t rows = pw->m - q * mr < mr ? pw->m - q * mr : mr;
  float *y = job->y + q * mr * size + j;
#pragma GCC unroll 14
  for (size_t r = 0; r < mr; r++) {
    if (r >= rows) break;
    _mm512_mask_storeu_ps(y + r * size, m0, activate(acc[r][0], job->act));
    _mm512_mask_storeu_ps(y + r * size + LANES, m1, activate(acc[r][1], job->act));
  }
}

INLINE void blocks(const pointwise_job *job, const size_t mr, size_t begin, size_t end) {
  const size_t panels = (job->pw->m + mr - 1) / mr;
  for (size_t blk = begin; blk < end; blk++) {
    size_t j = blk * BLOCK, count = job->size - j < BLOCK ? job->size - j : BLOCK;
    for (size_t q = 0; q < panels; q++) tile(job, mr, q, j, count);
  }
}

TARGET static void blocks_8(void *p, size_t begin, size_t end) { blocks(p, 8, begin, end); }
TARGET static void blocks_12(void *p, size_t begin, size_t end) { blocks(p, 12, begin, end); }
TARGET static void blocks_14(void *p, size_t begin, size_t end) { blocks(p, 14, begin, end); }

void conv_pointwise_run(const conv_pointwise *pw, const float *x, size_t size,
                        const kernel_activation *act, float *y, unsigned threads) {
  pointwise_job job = {pw, x, size, act, y};
  size_t count = (size + BLOCK - 1) / BLOCK;
  kernel_range_fn fn = pw->mr == 8 ? blocks_8 : pw->mr == 12 ? blocks_12 : blocks_14;
  kernel_parallel(threads, count, kernel_grain(pw->m * pw->c * BLOCK / 8), fn, &job);
}

#else

bool conv_pointwise_usable(void) { return false; }

/* Never called: conv_pointwise_usable() is false. */
void conv_pointwise_run(const conv_pointwise *pw, const float *x, size_t size,
                        const kernel_activation *act, float *y, unsigned threads) {
  (void)pw, (void)x, (void)size, (void)act, (void)y, (void)threads;
}

#endif
