/*
 * conv_winograd.c — Conv by F(2×2, 3×3); see conv_winograd.h. The input
 * and output transforms use AVX-512 (16 tiles, or 16 output channels, per
 * vector); conv.c takes this path only on CPUs strand__cpu() reports
 * AVX-512 capable.
 *
 * Layouts per image, T = tiles (⌈OH/2⌉ · ⌈OW/2⌉, row-major):
 *   V  16 × c × T   V_e[ci][t], read by the product as op(A) = V_eᵀ (T × c)
 *   M  16 × T × m   M_e = V_eᵀ · U_e
 * with e = 4a + b for element (a, b) of a 4×4 block.
 */
#include "kernels/conv_winograd.h"

#include "core/core_internal.h"

#include <string.h>

enum { TILE = 4, ELEMENTS = 16 };

strand_status conv_winograd_prepare(kernel_prepare *p, const float *w, size_t m, size_t c,
                                    conv_winograd *out) {
  memset(out, 0, sizeof *out);
  size_t bytes;
  if (!strand__gemm_pack_b_size(NULL, c, m, &bytes))
    return strand__fail(STRAND_E_UNSUPPORTED, "Conv weights of %zu×%zu×3×3 are too large to "
                        "pack", m, c);
  float *u; /* U_e for one e at a time: m × c */
  strand_status st = strand__alloc(m * c * sizeof(float), STRAND_MEMORY_SCRATCH, (void **)&u);
  if (st) return st;
  /* U = G g Gᵀ, G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1], in double: element
   * (a, b) is row a of G·g (three values) dotted with row b of G. The
   * entries of G are exact in binary, so the zeros add nothing (for finite
   * weights). */
  static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  for (int e = 0; e < ELEMENTS && !st; e++) {
    const double *ga = G[e / 4], *gb = G[e % 4];
    for (size_t i = 0; i < m * c; i++) {
      const float *g = w + i * 9;
      double t0 = ga[0] * g[0] + ga[1] * g[3] + ga[2] * g[6];
      double t1 = ga[0] * g[1] + ga[1] * g[4] + ga[2] * g[7];
      double t2 = ga[0] * g[2] + ga[1] * g[5] + ga[2] * g[8];
      u[i] = (float)(gb[0] * t0 + gb[1] * t1 + gb[2] * t2);
    }
    void *mem;
    st = kernel_alloc(p, bytes, STRAND_MEMORY_WEIGHTS, &mem);
    if (st) break;
    /* B = U_eᵀ (c × m): u is m × c, so transposed with ldb c. */
    strand__gemm_pack_b(NULL, true, c, m, u, c, mem);
    out->packed[e] = mem;
  }
  strand__free(u, m * c * sizeof(float), STRAND_MEMORY_SCRATCH);
  out->m = m;
  out->c = c;
  return st;
}

static size_t tiles(const conv_winograd_shape *s) {
  return (size_t)((s->OH + 1) / 2) * (size_t)((s->OW + 1) / 2);
}

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

size_t conv_winograd_scratch(const conv_winograd *wg, const conv_winograd_shape *s,
                             unsigned threads) {
  size_t t = tiles(s);
  return align64(ELEMENTS * wg->c * t * sizeof(float)) +
         align64(ELEMENTS * t * wg->m * sizeof(float)) +
         kernel_gemm_scratch(strand__gemm_packed_kernel(wg->packed[0]), t, wg->m, wg->c, true,
                             threads);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { LANES = 16 };

bool conv_winograd_usable(void) { return strand__cpu()->selected >= STRAND__CPU_AVX512; }

static inline __mmask16 lanes_between(int64_t lo, int64_t hi) {
  if (lo < 0) lo = 0;
  if (hi > LANES) hi = LANES;
  if (hi <= lo) return 0;
  return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

typedef struct input_job {
  const conv_winograd *wg;
  const conv_winograd_shape *s;
  const float *x;
  float *v;
} input_job;

/* Columns c + 2k (even) and c + 2k + 1 (odd) for k < 16, 0 outside [0, W). */
INLINE void pairs(const float *row, int64_t c, int64_t W, __m512i evens, __m512i odds,
                  __m512 *even, __m512 *odd) {
  __m512 a = _mm512_maskz_loadu_ps(lanes_between(-c, W - c), row + c);
  __m512 b = _mm512_maskz_loadu_ps(lanes_between(-c - LANES, W - c - LANES), row + c + LANES);
  *even = _mm512_permutex2var_ps(a, evens, b);
  *odd = _mm512_permutex2var_ps(a, odds, b);
}

/* V for input channels [begin, end): per tile row, 16 tiles a vector. */
TARGET static void input_channels(void *p, size_t begin, size_t end) {
  const input_job *j = p;
  const conv_winograd_shape *s = j->s;
  const int64_t TH = (s->OH + 1) / 2, TW = (s->OW + 1) / 2, T = TH * TW;
  const size_t plane = (size_t)T * j->wg->c;
  const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odds = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  for (size_t ci = begin; ci < end; ci++) {
    const float *x = j->x + ci * (size_t)(s->H * s->W);
    float *v = j->v + ci * (size_t)T;
    for (int64_t ti = 0; ti < TH; ti++)
      for (int64_t tj = 0; tj < TW; tj += LANES) {
        __m512 h[TILE][TILE];
        for (int rr = 0; rr < TILE; rr++) {
          int64_t r = 2 * ti - s->pt + rr;
          if (r < 0 || r >= s->H) {
            for (int q = 0; q < TILE; q++) h[rr][q] = _mm512_setzero_ps();
            continue;
          }
          const float *row = x + r * s->W;
          int64_t c = 2 * tj - s->pl;
          __m512 d0, d1, d2, d3;
          pairs(row, c, s->W, evens, odds, &d0, &d1);
          pairs(row, c + 2, s->W, evens, odds, &d2, &d3);
          /* d Bᵀ along the row: Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
          h[rr][0] = _mm512_sub_ps(d0, d2);
          h[rr][1] = _mm512_add_ps(d1, d2);
          h[rr][2] = _mm512_sub_ps(d2, d1);
          h[rr][3] = _mm512_sub_ps(d1, d3);
        }
        __mmask16 keep = lanes_between(0, TW - tj);
        float *to = v + ti * TW + tj;
        for (int b = 0; b < TILE; b++) {
          _mm512_mask_storeu_ps(to + (size_t)(0 * 4 + b) * plane, keep, _mm512_sub_ps(h[0][b], h[2][b]));
          _mm512_mask_storeu_ps(to + (size_t)(1 * 4 + b) * plane, keep, _mm512_add_ps(h[1][b], h[2][b]));
          _mm512_mask_storeu_ps(to + (size_t)(2 * 4 + b) * plane, keep, _mm512_sub_ps(h[2][b], h[1][b]));
          _mm512_mask_storeu_ps(to + (size_t)(3 * 4 + b) * plane, keep, _mm512_sub_ps(h[1][b], h[3][b]));
        }
      }
  }
}

typedef struct output_job {
  const conv_winograd *wg;
  const conv_winograd_shape *s;
  const float *mt, *bias;
  const kernel_activation *act;
  float *y;
} output_job;

INLINE __m512 activate(__m512 v, const kernel_activation *act) {
  if (act->kind == STRAND__GEMM_ACT_RELU) return _mm512_max_ps(_mm512_setzero_ps(), v);
  if (act->kind == STRAND__GEMM_ACT_CLIP)
    return _mm512_min_ps(_mm512_set1_ps(act->hi), _mm512_max_ps(_mm512_set1_ps(act->lo), v));
  return v;
}

/* Y for tiles [begin, end): per tile, 16 output channels a vector, the
 * 2×2 results scattered to their planes. */
TARGET static void output_tiles(void *p, size_t begin, size_t end) {
  const output_job *j = p;
  const conv_winograd_shape *s = j->s;
  const int64_t TW = (s->OW + 1) / 2, OW = s->OW, OH = s->OH;
  const size_t m = j->wg->m, T = tiles(s), plane = T * m, out_size = (size_t)(OH * OW);
  const __m512i index = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5,
                                                            4, 3, 2, 1, 0),
                                           _mm512_set1_epi32((int)out_size));
  for (size_t t = begin; t < end; t++) {
    int64_t oh = (int64_t)t / TW * 2, ow = (int64_t)t % TW * 2;
    bool down = oh + 1 < OH, right = ow + 1 < OW;
    for (size_t m0 = 0; m0 < m; m0 += LANES) {
      __mmask16 keep = lanes_between(0, (int64_t)(m - m0));
      const float *from = j->mt + t * m + m0;
      __m512 r[TILE][TILE];
      for (int e = 0; e < ELEMENTS; e++)
        r[e / 4][e % 4] = _mm512_maskz_loadu_ps(keep, from + (size_t)e * plane);
      /* Aᵀ M A, Aᵀ = [1 1 1 0; 0 1 -1 -1]. */
      __m512 s0[TILE], s1[TILE];
      for (int b = 0; b < TILE; b++) {
        s0[b] = _mm512_add_ps(_mm512_add_ps(r[0][b], r[1][b]), r[2][b]);
        s1[b] = _mm512_sub_ps(_mm512_sub_ps(r[1][b], r[2][b]), r[3][b]);
      }
      __m512 bias = j->bias ? _mm512_maskz_loadu_ps(keep, j->bias + m0) : _mm512_setzero_ps();
      __m512 y00 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]), bias);
      __m512 y01 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]), bias);
      __m512 y10 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]), bias);
      __m512 y11 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]), bias);
      float *base = j->y + m0 * out_size + (size_t)(oh * OW + ow);
      _mm512_mask_i32scatter_ps(base, keep, index, activate(y00, j->act), 4);
      if (right) _mm512_mask_i32scatter_ps(base + 1, keep, index, activate(y01, j->act), 4);
      if (down) _mm512_mask_i32scatter_ps(base + OW, keep, index, activate(y10, j->act), 4);
      if (down && right)
        _mm512_mask_i32scatter_ps(base + OW + 1, keep, index, activate(y11, j->act), 4);
    }
  }
}

typedef struct products_job {
  const conv_winograd *wg;
  size_t T;
  const float *v;
  float *mt;
  const strand__gemm_kernel *kern;
  size_t parts;
  unsigned char *scratch;
  size_t each;
} products_job;

/* Block `part` of all 16 products M_e = V_eᵀ · U_e, with scratch slot
 * `part`: one hand-off for the 16 rather than one each. The blocks are
 * those kernel_gemm_run would make for one product (the same split of the
 * same T × m output), so the bits do not depend on the grouping. */
static void products(void *p, size_t part) {
  const products_job *j = p;
  const size_t T = j->T, c = j->wg->c, m = j->wg->m;
  strand__gemm_block block;
  const strand__gemm_block *b = NULL;
  if (j->parts > 1) {
    strand__gemm_partition(j->kern, T, m, j->parts, part, &block);
    if (block.m0 >= block.m1 || block.n0 >= block.n1) return;
    b = &block;
  }
  void *scratch = j->scratch + part * j->each;
  for (int e = 0; e < ELEMENTS; e++)
    strand__gemm_packed(true, T, 1.0f, j->v + (size_t)e * c * T, T, j->wg->packed[e], 0.0f,
                        j->mt + (size_t)e * T * m, m, NULL, b, scratch);
}

void conv_winograd_run(const conv_winograd *wg, const conv_winograd_shape *s, const float *x,
                       const float *bias, const kernel_activation *act, float *y,
                       unsigned threads, void *scratch, size_t scratch_size) {
  const size_t T = tiles(s), c = wg->c, m = wg->m;
  float *v = scratch;
  float *mt = (float *)((unsigned char *)scratch + align64(ELEMENTS * c * T * sizeof(float)));
  unsigned char *gemm_scratch = (unsigned char *)mt + align64(ELEMENTS * T * m * sizeof(float));
  size_t gemm_size = scratch_size - (size_t)(gemm_scratch - (unsigned char *)scratch);
  input_job in = {wg, s, x, v};
  kernel_parallel(threads, c, kernel_grain(T * 40), input_channels, &in);
  const strand__gemm_kernel *kern = strand__gemm_packed_kernel(wg->packed[0]);
  size_t each = align64(strand__gemm_scratch_size(kern, T, m, c, true));
  size_t parts = strand__gemm_useful_parts(kern, T, m, c, threads ? threads : 1);
  if (each && parts > gemm_size / each) parts = gemm_size / each;
  if (parts == 0) parts = 1; /* the scratch always has room for one */
  products_job pj = {wg, T, v, mt, kern, parts, gemm_scratch, each};
  if (parts == 1)
    products(&pj, 0);
  else
    strand__parallel_for(parts, products, &pj, threads);
  output_job out = {wg, s, mt, bias, act, y};
  kernel_parallel(threads, T, kernel_grain(m * 8), output_tiles, &out);
}

#else

bool conv_winograd_usable(void) { return false; }

/* Never called: conv_winograd_usable() is false. */
void conv_winograd_run(const conv_winograd *wg, const conv_winograd_shape *s, const float *x,
                       const float *bias, const kernel_activation *act, float *y,
                       unsigned threads, void *scratch, size_t scratch_size) {
  (void)wg, (void)s, (void)x, (void)bias, (void)act, (void)y, (void)threads, (void)scratch;
  (void)scratch_size;
}

#endif
