/*
 * conv_pointwise_avx512.c — the direct 1×1 Conv of conv_pointwise.h: per
 * run of blocks of 32 positions of one image (two vectors each; as many
 * blocks as keep their slice of X within 128 KiB), every panel of mr
 * output channels in turn over the whole run, so the slice stays in cache
 * while all panels pass over it and only mr output planes take stores at
 * a time; each block after is fetched while the first panel runs. A
 * plane's tail is one block of up to 32 positions (16 when
 * a few positions are left over) and, for those few (at most half a
 * panel: the 4 past 192 of a 14×14 plane, the 1 past 48 of a 7×7 one),
 * a pass that takes them one at a time across the channels instead of
 * as a mostly empty vector. The blocks of all images of a batch are
 * split over the threads.
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
  size_t mr = panel_rows(m);
  float *packed, *b;
  strand_status st = kernel_pack_panels(p, w, bias, m, c, mr, &packed, &b);
  if (st) return st;
  out->m = m;
  out->c = c;
  out->mr = mr;
  out->panels = packed;
  out->bias = b;
  return STRAND_OK;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "kernels/lanes_avx512.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { LANES = 16, MAX_MR = 14, BLOCK = 2 * LANES };
/* X a run of blocks may span, so that it stays in L2 while every panel
 * passes over it. */
#define GROUP_BYTES ((size_t)128 << 10)

bool conv_pointwise_usable(void) { return strand__cpu()->selected >= STRAND__CPU_AVX512; }

/* How one image's positions are cut: `pairs` blocks of 32, then a tail of
 * the remaining positions: a block of `tail_vector` positions (0: none;
 * up to 32, the last vector masked) and, after it, `left` positions (at
 * most half a panel) done one at a time across the output channels. */
typedef struct pointwise_layout {
  size_t pairs, tail_vector, left, units; /* units: blocks per image */
} pointwise_layout;

/* A masked vector tile costs a panel's mr rows per input channel whatever
 * the number of positions it holds; one position across the channels costs
 * one row. Positions past the last whole vector go the cheaper way. */
static pointwise_layout layout_of(size_t size, size_t mr) {
  pointwise_layout l = {size / BLOCK, 0, 0, 0};
  size_t tail = size - l.pairs * BLOCK, rem = tail % LANES;
  if (2 * rem <= mr) {
    l.tail_vector = tail - rem;
    l.left = rem;
  } else {
    l.tail_vector = tail;
  }
  l.units = l.pairs + (l.tail_vector ? 1 : 0) + (l.left ? 1 : 0);
  return l;
}

typedef struct pointwise_job {
  const conv_pointwise *pw;
  const float *x;
  size_t size;
  const kernel_activation *act;
  float *y;
  pointwise_layout layout;
  /* Each block's panels in `split` ranges of `per` (the last one shorter),
   * each range a work item of its own: more than one only when a batch
   * has too few blocks to keep the threads busy (7×7 planes at batch 1). */
  size_t split, per;
  /* Whole blocks a panel passes over before the next panel: as many as
   * keep their c × 32·group slice of X within GROUP_BYTES. */
  size_t group;
} pointwise_job;

static inline __mmask16 first_lanes(size_t n) {
  return n >= LANES ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* One mr × (vectors·16) tile: panel q, positions [j, j + count) of one
 * image (x, y: its planes), count <= vectors·16. While it runs, the
 * 32 positions from `ahead` (NULL: none) are fetched into the cache for
 * each input channel: the next block's X. */
INLINE void tile(const pointwise_job *job, const size_t mr, const int vectors, const float *x,
                 float *y, size_t q, size_t j, size_t count, const float *ahead) {
  const conv_pointwise *pw = job->pw;
  const size_t c = pw->c, size = job->size;
  const __mmask16 m0 = first_lanes(count), m1 = first_lanes(count > LANES ? count - LANES : 0);
  const float *a = pw->panels + q * c * mr;
  x += j;
  __m512 acc[MAX_MR][2];
#pragma GCC unroll 14
  for (size_t r = 0; r < mr; r++)
#pragma GCC unroll 2
    for (int v = 0; v < vectors; v++) acc[r][v] = _mm512_set1_ps(pw->bias[q * mr + r]);
  for (size_t k = 0; k < c; k++, a += mr, x += size) {
    if (ahead) {
      _mm_prefetch((const char *)(ahead + k * size), _MM_HINT_T0);
      _mm_prefetch((const char *)(ahead + k * size + LANES), _MM_HINT_T0);
    }
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, x);
    const __m512 b1 = vectors > 1 ? _mm512_maskz_loadu_ps(m1, x + LANES) : b0;
#pragma GCC unroll 14
    for (size_t r = 0; r < mr; r++) {
      const __m512 w = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(w, b0, acc[r][0]);
      if (vectors > 1) acc[r][1] = _mm512_fmadd_ps(w, b1, acc[r][1]);
    }
  }
  const size_t rows = pw->m - q * mr < mr ? pw->m - q * mr : mr;
  y += q * mr * size + j;
#pragma GCC unroll 14
  for (size_t r = 0; r < mr; r++) {
    if (r >= rows) break;
    _mm512_mask_storeu_ps(y + r * size, m0, activate_kernel_avx512(acc[r][0], job->act));
    if (vectors > 1)
      _mm512_mask_storeu_ps(y + r * size + LANES, m1, activate_kernel_avx512(acc[r][1], job->act));
  }
}

/* Positions [j, j + n) of one image, n <= 7, one at a time across the
 * output channels: for each panel its mr channels are one vector (a row
 * of the packed panel) times X's value at the position, several panels at
 * once for independent sums (the last group repeats the last panel rather
 * than vary in size; the repeats are not stored). Each output's sum is the
 * same chain as in a tile: bias, then w·x for each input channel in order. */
INLINE void positions(const pointwise_job *job, const size_t mr, const size_t n, const float *x,
                      float *y, size_t j, size_t qa, size_t qb) {
  enum { MOST = 4 };
  const size_t group = n <= 3 ? MOST : 2;
  const conv_pointwise *pw = job->pw;
  const size_t c = pw->c, size = job->size;
  const __mmask16 rows_mask = first_lanes(mr);
  for (size_t q0 = qa; q0 < qb; q0 += group) {
    const float *a[MOST];
    __m512 acc[MOST][7];
#pragma GCC unroll 4
    for (size_t p = 0; p < group; p++) {
      const size_t q = q0 + p < qb ? q0 + p : qb - 1;
      a[p] = pw->panels + q * c * mr;
#pragma GCC unroll 7
      for (size_t i = 0; i < n; i++) acc[p][i] = _mm512_maskz_loadu_ps(rows_mask, pw->bias + q * mr);
    }
    const float *xk = x + j;
    for (size_t k = 0; k < c; k++, xk += size) {
      __m512 xv[7];
#pragma GCC unroll 7
      for (size_t i = 0; i < n; i++) xv[i] = _mm512_set1_ps(xk[i]);
#pragma GCC unroll 4
      for (size_t p = 0; p < group; p++) {
        const __m512 w = _mm512_maskz_loadu_ps(rows_mask, a[p] + k * mr);
#pragma GCC unroll 7
        for (size_t i = 0; i < n; i++) acc[p][i] = _mm512_fmadd_ps(w, xv[i], acc[p][i]);
      }
    }
#pragma GCC unroll 4
    for (size_t p = 0; p < group; p++) {
      const size_t q = q0 + p, rows = q >= qb ? 0 : pw->m - q * mr < mr ? pw->m - q * mr : mr;
#pragma GCC unroll 7
      for (size_t i = 0; i < n; i++) {
        float out[LANES];
        _mm512_storeu_ps(out, activate_kernel_avx512(acc[p][i], job->act));
        for (size_t r = 0; r < rows; r++) y[(q * mr + r) * size + j + i] = out[r];
      }
    }
  }
}

/* Work items [begin, end) of the batch: item i is panel range i % split
 * of block i / split, block b being block b % units of image b / units. */
INLINE void blocks(const pointwise_job *job, const size_t mr, size_t begin, size_t end) {
  const conv_pointwise *pw = job->pw;
  const size_t panels = (pw->m + mr - 1) / mr, size = job->size;
  const pointwise_layout *l = &job->layout;
  for (size_t item = begin; item < end; item++) {
    const size_t blk = item / job->split, qa = item % job->split * job->per;
    const size_t qb = qa + job->per < panels ? qa + job->per : panels;
    const size_t image = blk / l->units, u = blk % l->units;
    const float *x = job->x + image * pw->c * size;
    float *y = job->y + image * pw->m * size;
    if (u < l->pairs) {
      /* A run of whole blocks of this image in the range, each panel over
       * all of them in turn: mr output planes are written at a time, not
       * all m (many store streams at once run at half speed into lines
       * not in cache). */
      size_t run = l->pairs - u < job->group ? l->pairs - u : job->group;
      if (run > end - item) run = end - item;
      if (job->split > 1) run = 1;
      const size_t j = u * BLOCK;
      /* Each next block of this image is fetched while the first panel
       * runs over the one before. */
      for (size_t b = 0; b < run; b++) {
        const size_t jb = j + b * BLOCK;
        const float *ahead = jb + BLOCK < size ? x + jb + BLOCK : NULL;
        tile(job, mr, 2, x, y, qa, jb, BLOCK, ahead);
      }
      for (size_t q = qa + 1; q < qb; q++)
        for (size_t b = 0; b < run; b++) tile(job, mr, 2, x, y, q, j + b * BLOCK, BLOCK, NULL);
      item += run - 1;
    } else if (u == l->pairs && l->tail_vector) {
      const size_t j = l->pairs * BLOCK;
      if (l->tail_vector > LANES)
        for (size_t q = qa; q < qb; q++) tile(job, mr, 2, x, y, q, j, l->tail_vector, NULL);
      else
        for (size_t q = qa; q < qb; q++) tile(job, mr, 1, x, y, q, j, l->tail_vector, NULL);
    } else {
      const size_t j = size - l->left;
      switch (l->left) {
      case 1: positions(job, mr, 1, x, y, j, qa, qb); break;
      case 2: positions(job, mr, 2, x, y, j, qa, qb); break;
      case 3: positions(job, mr, 3, x, y, j, qa, qb); break;
      case 4: positions(job, mr, 4, x, y, j, qa, qb); break;
      case 5: positions(job, mr, 5, x, y, j, qa, qb); break;
      case 6: positions(job, mr, 6, x, y, j, qa, qb); break;
      default: positions(job, mr, 7, x, y, j, qa, qb); break;
      }
    }
  }
}

TARGET static void blocks_8(void *p, size_t begin, size_t end) { blocks(p, 8, begin, end); }
TARGET static void blocks_12(void *p, size_t begin, size_t end) { blocks(p, 12, begin, end); }
TARGET static void blocks_14(void *p, size_t begin, size_t end) { blocks(p, 14, begin, end); }

void conv_pointwise_run(const conv_pointwise *pw, const float *x, size_t n, size_t size,
                        const kernel_activation *act, float *y, unsigned threads) {
  pointwise_job job = {pw, x, size, act, y, layout_of(size, pw->mr), 1, 0, 1};
  job.group = GROUP_BYTES / (pw->c * BLOCK * sizeof(float));
  if (job.group < 1) job.group = 1;
  const size_t panels = (pw->m + pw->mr - 1) / pw->mr, items = n * job.layout.units;
  /* At least 4 items per thread, when the panels allow it. */
  if (threads > 1 && items < 4 * (size_t)threads) {
    job.split = (4 * (size_t)threads + items - 1) / items;
    if (job.split > panels) job.split = panels;
  }
  job.per = (panels + job.split - 1) / job.split;
  job.split = (panels + job.per - 1) / job.per;
  kernel_range_fn fn = pw->mr == 8 ? blocks_8 : pw->mr == 12 ? blocks_12 : blocks_14;
  kernel_parallel(threads, items * job.split,
                  kernel_grain(job.per * pw->mr * pw->c * BLOCK / 8), fn, &job);
}

#else

bool conv_pointwise_usable(void) { return false; }

/* Never called: conv_pointwise_usable() is false. */
void conv_pointwise_run(const conv_pointwise *pw, const float *x, size_t n, size_t size,
                        const kernel_activation *act, float *y, unsigned threads) {
  (void)pw, (void)x, (void)n, (void)size, (void)act, (void)y, (void)threads;
}

#endif
