/*
 * conv_direct_avx512.c — the direct Conv of conv_direct.h: output rows of
 * every image are split over the threads; four rows at a time, each panel
 * of 8 output channels over all their blocks of 48 output columns (the
 * last one shorter) before the next panel, so the input rows they read
 * stay in L1 and only 8 output planes take stores at a time.
 *
 * Built without global -m flags: the kernels carry target attributes and
 * run only when strand__cpu() reports AVX-512.
 */
#include "kernels/conv_direct.h"

#include <string.h>

enum { PANEL = 8 };

strand_status conv_direct_prepare(kernel_prepare *p, const float *w, const float *bias, size_t m,
                                  size_t c, size_t kh, size_t kw, conv_direct *out) {
  memset(out, 0, sizeof *out);
  float *packed, *b;
  strand_status st = kernel_pack_panels(p, w, bias, m, c * kh * kw, PANEL, &packed, &b);
  if (st) return st;
  out->m = m;
  out->c = c;
  out->kh = kh;
  out->kw = kw;
  out->panels = packed;
  out->bias = b;
  return STRAND_OK;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "kernels/lanes_avx512.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { LANES = 16, MAX_VECTORS = 3, BLOCK = MAX_VECTORS * LANES, GROUP_ROWS = 4 };

bool conv_direct_usable(void) { return strand__cpu()->selected >= STRAND__CPU_AVX512; }

typedef struct direct_job {
  const conv_direct *d;
  const conv_direct_shape *s;
  const float *x;
  const kernel_activation *act;
  float *y;
} direct_job;

/* row[col + j·stride] for j < 16, 0 where that column is outside [0, W):
 * `inside` masks the 16 columns from col, `next` the 16 after (stride 2). */
INLINE __m512 columns(const float *row, int64_t col, const int64_t stride, __mmask16 inside,
                      __mmask16 next, __m512i evens) {
  const __m512 a = _mm512_maskz_loadu_ps(inside, row + col);
  if (stride == 1) return a;
  return _mm512_permutex2var_ps(a, evens, _mm512_maskz_loadu_ps(next, row + col + LANES));
}

/* The masks of a block's loads, for each kernel column and vector: the 16
 * columns from the vector's first (`inside`) and, at stride 2, the 16
 * after (`next`); the same for every row and panel. */
typedef struct block_masks {
  __mmask16 inside[CONV_DIRECT_MAX_KERNEL][MAX_VECTORS], next[CONV_DIRECT_MAX_KERNEL][MAX_VECTORS];
} block_masks;

static void masks_of(const conv_direct_shape *s, int64_t KW, int64_t stride, int64_t ow0,
                     block_masks *m) {
  for (int64_t kw = 0; kw < KW; kw++)
    for (int v = 0; v < MAX_VECTORS; v++) {
      const int64_t col = (ow0 + v * LANES) * stride - s->pl + kw;
      m->inside[kw][v] = lanes_between(-col, s->W - col);
      m->next[kw][v] = lanes_between(-col - LANES, s->W - col - LANES);
    }
}

/* Panel q over output row oh, columns [ow0, ow0 + count), count <= 16·vectors,
 * of one image (x, y: its planes); m: the block's masks. */
INLINE void tile(const direct_job *job, const int vectors, const int64_t stride, const float *x,
                 float *y, size_t q, int64_t oh, int64_t ow0, int64_t count,
                 const block_masks *m) {
  const conv_direct *d = job->d;
  const conv_direct_shape *s = job->s;
  const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const int64_t KH = (int64_t)d->kh, KW = (int64_t)d->kw;
  const size_t k = d->c * d->kh * d->kw;
  const float *a = d->panels + q * k * PANEL;
  __m512 acc[PANEL][MAX_VECTORS];
#pragma GCC unroll 8
  for (int r = 0; r < PANEL; r++)
#pragma GCC unroll 3
    for (int v = 0; v < vectors; v++) acc[r][v] = _mm512_set1_ps(d->bias[q * PANEL + r]);
  for (size_t ch = 0; ch < d->c; ch++) {
    const float *plane = x + ch * (size_t)(s->H * s->W);
    for (int64_t kh = 0; kh < KH; kh++, a += (size_t)KW * PANEL) {
      const int64_t ih = oh * s->sh - s->pt + kh * s->dh;
      if (ih < 0 || ih >= s->H) continue;
      const float *row = plane + ih * s->W;
      for (int64_t kw = 0; kw < KW; kw++) {
        const int64_t col = ow0 * stride - s->pl + kw;
        __m512 in[MAX_VECTORS];
#pragma GCC unroll 3
        for (int v = 0; v < vectors; v++)
          in[v] = columns(row, col + v * LANES * stride, stride, m->inside[kw][v], m->next[kw][v],
                          evens);
        const float *wt = a + kw * PANEL;
#pragma GCC unroll 8
        for (int r = 0; r < PANEL; r++) {
          const __m512 w = _mm512_set1_ps(wt[r]);
#pragma GCC unroll 3
          for (int v = 0; v < vectors; v++) acc[r][v] = _mm512_fmadd_ps(w, in[v], acc[r][v]);
        }
      }
    }
  }
  const size_t rows = d->m - q * PANEL < PANEL ? d->m - q * PANEL : PANEL;
  const size_t size = (size_t)(s->OH * s->OW);
  float *out = y + q * PANEL * size + (size_t)(oh * s->OW + ow0);
#pragma GCC unroll 8
  for (size_t r = 0; r < PANEL; r++) {
    if (r >= rows) break;
#pragma GCC unroll 3
    for (int v = 0; v < vectors; v++)
      _mm512_mask_storeu_ps(out + r * size + v * LANES, lanes_between(0, count - v * LANES),
                            activate_kernel_avx512(acc[r][v], job->act));
  }
}

/* Output rows [begin, end) of the batch: row i is row i % OH of image i / OH.
 * Up to GROUP_ROWS rows of an image at a time, each panel over all of them
 * before the next: 8 output planes are written at a time, not all m
 * (many store streams at once run at half speed into lines not in cache),
 * while the few input rows they read stay in L1. */
INLINE void rows(const direct_job *job, const int64_t stride, size_t begin, size_t end) {
  const conv_direct *d = job->d;
  const conv_direct_shape *s = job->s;
  const size_t panels = (d->m + PANEL - 1) / PANEL, OH = (size_t)s->OH;
  for (size_t i = begin; i < end;) {
    const size_t image = i / OH, oh = i % OH;
    size_t group = end - i < GROUP_ROWS ? end - i : GROUP_ROWS;
    if (group > OH - oh) group = OH - oh;
    const float *x = job->x + image * d->c * (size_t)(s->H * s->W);
    float *y = job->y + image * d->m * (size_t)(s->OH * s->OW);
    for (size_t q = 0; q < panels; q++)
      for (int64_t ow0 = 0; ow0 < s->OW; ow0 += BLOCK) {
        const int64_t count = s->OW - ow0 < BLOCK ? s->OW - ow0 : BLOCK;
        block_masks m;
        masks_of(s, (int64_t)d->kw, stride, ow0, &m);
        for (size_t r = oh; r < oh + group; r++) {
          if (count > 2 * LANES) tile(job, 3, stride, x, y, q, (int64_t)r, ow0, count, &m);
          else if (count > LANES) tile(job, 2, stride, x, y, q, (int64_t)r, ow0, count, &m);
          else tile(job, 1, stride, x, y, q, (int64_t)r, ow0, count, &m);
        }
      }
    i += group;
  }
}

TARGET static void rows_s1(void *p, size_t begin, size_t end) { rows(p, 1, begin, end); }
TARGET static void rows_s2(void *p, size_t begin, size_t end) { rows(p, 2, begin, end); }

void conv_direct_run(const conv_direct *d, const conv_direct_shape *s, const float *x, size_t n,
                     const kernel_activation *act, float *y, unsigned threads) {
  direct_job job = {d, s, x, act, y};
  size_t cost = d->m * d->c * d->kh * d->kw * (size_t)s->OW;
  kernel_parallel(threads, n * (size_t)s->OH, kernel_grain(cost), s->sw == 1 ? rows_s1 : rows_s2,
                  &job);
}

#else

bool conv_direct_usable(void) { return false; }

/* Never called: conv_direct_usable() is false. */
void conv_direct_run(const conv_direct *d, const conv_direct_shape *s, const float *x, size_t n,
                     const kernel_activation *act, float *y, unsigned threads) {
  (void)d, (void)s, (void)x, (void)n, (void)act, (void)y, (void)threads;
}

#endif
