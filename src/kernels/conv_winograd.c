/*
 * conv_winograd.c — Conv by F(2×2, 3×3) and F(4×4, 3×3); see
 * conv_winograd.h. The input and output transforms use AVX-512 (16 tiles,
 * or 16 output channels, per vector); conv.c takes this path only on CPUs
 * strand__cpu() reports AVX-512 capable.
 *
 * Layouts per image, r the block side, n = r + 2, E = n², T = tiles
 * (⌈OH/r⌉ · ⌈OW/r⌉, row-major):
 *   V  c × E × T   V_e[ci][t] at (ci·E + e)·T + t, read by the product as
 *                  op(A) = V_eᵀ (T × c, leading dimension E·T)
 *   M  T × E × m   M_e = V_eᵀ · U_e, M_e[t][j] at (t·E + e)·m + j
 * with e = n·a + b for element (a, b) of an n×n block. Element-minor
 * layouts keep the E values one transform writes or reads within a few
 * KiB (E planes apart they fall into the same few L1 sets).
 */
#include "kernels/conv_winograd.h"

#include "core/core_internal.h"

#include <string.h>

/* Fewest tiles of 4×4 for the larger block (two full rows of the GEMM's
 * 14-row tile in each product), and the share of F(2×2, 3×3)'s
 * multiplications it must stay under (conv_winograd_tile_for). ResNet-18's
 * 14×14 plane (16 tiles, 27% fewer multiplications) measured as fast or
 * faster with 2×2 blocks, at 0.44 times the weights. */
#define TILE4_MIN_TILES 28
#define TILE4_MAX_SHARE 0.8

static int64_t blocks(int64_t size, int64_t side) { return (size + side - 1) / side; }

unsigned conv_winograd_tile_for(int64_t oh, int64_t ow) {
  if (oh <= 0 || ow <= 0) return 2;
  double t2 = (double)(blocks(oh, 2) * blocks(ow, 2)), t4 = (double)(blocks(oh, 4) * blocks(ow, 4));
  return t4 >= TILE4_MIN_TILES && t4 * 36 <= TILE4_MAX_SHARE * t2 * 16 ? 4 : 2;
}

/* G for each block side: U = G g Gᵀ, (r+2) × 3. */
static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double G4[6][3] = {{0.25, 0, 0},
                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                {0, 0, 1}};

strand_status conv_winograd_prepare(kernel_prepare *p, const float *w, size_t m, size_t c,
                                    unsigned tile, conv_winograd *out) {
  memset(out, 0, sizeof *out);
  const unsigned side = tile + 2, elements = side * side;
  size_t bytes;
  if (!strand__gemm_pack_b_size(NULL, c, m, &bytes))
    return strand__fail(STRAND_E_UNSUPPORTED, "Conv weights of %zu×%zu×3×3 are too large to "
                        "pack", m, c);
  float *u; /* U_e for one e at a time: m × c */
  strand_status st = strand__alloc(m * c * sizeof(float), STRAND_MEMORY_SCRATCH, (void **)&u);
  if (st) return st;
  /* Element (a, b) of U = G g Gᵀ is row a of G·g (three values) dotted
   * with row b of G, in double. The zeros of G add nothing (for finite
   * weights). */
  const double(*G)[3] = tile == 4 ? G4 : G2;
  for (unsigned e = 0; e < elements && !st; e++) {
    const double *ga = G[e / side], *gb = G[e % side];
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
  out->tile = tile;
  out->elements = elements;
  return st;
}

static size_t tiles(const conv_winograd *wg, const conv_winograd_shape *s) {
  return (size_t)blocks(s->OH, wg->tile) * (size_t)blocks(s->OW, wg->tile);
}

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

size_t conv_winograd_scratch(const conv_winograd *wg, const conv_winograd_shape *s,
                             unsigned threads) {
  size_t t = tiles(wg, s);
  return align64(wg->elements * wg->c * t * sizeof(float)) +
         align64(wg->elements * t * wg->m * sizeof(float)) +
         kernel_gemm_scratch(strand__gemm_packed_kernel(wg->packed[0]), t, wg->m, wg->c, true,
                             threads);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "kernels/lanes_avx512.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { LANES = 16 };

bool conv_winograd_usable(void) { return strand__cpu()->selected >= STRAND__CPU_AVX512; }

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

/* F(2×2, 3×3)'s V for input channels [begin, end): per tile row, 16
 * tiles a vector. */
TARGET static void input_channels_2(void *p, size_t begin, size_t end) {
  const input_job *j = p;
  const conv_winograd_shape *s = j->s;
  const int64_t TH = (s->OH + 1) / 2, TW = (s->OW + 1) / 2, T = TH * TW;
  const size_t step = (size_t)T; /* between elements e of one channel */
  const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odds = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  for (size_t ci = begin; ci < end; ci++) {
    const float *x = j->x + ci * (size_t)(s->H * s->W);
    float *v = j->v + ci * j->wg->elements * (size_t)T;
    for (int64_t ti = 0; ti < TH; ti++)
      for (int64_t tj = 0; tj < TW; tj += LANES) {
        __m512 h[4][4];
        for (int rr = 0; rr < 4; rr++) {
          int64_t r = 2 * ti - s->pt + rr;
          if (r < 0 || r >= s->H) {
            for (int q = 0; q < 4; q++) h[rr][q] = _mm512_setzero_ps();
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
        for (int b = 0; b < 4; b++) {
          _mm512_mask_storeu_ps(to + (size_t)(0 * 4 + b) * step, keep, _mm512_sub_ps(h[0][b], h[2][b]));
          _mm512_mask_storeu_ps(to + (size_t)(1 * 4 + b) * step, keep, _mm512_add_ps(h[1][b], h[2][b]));
          _mm512_mask_storeu_ps(to + (size_t)(2 * 4 + b) * step, keep, _mm512_sub_ps(h[2][b], h[1][b]));
          _mm512_mask_storeu_ps(to + (size_t)(3 * 4 + b) * step, keep, _mm512_sub_ps(h[1][b], h[3][b]));
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
  size_t m0, m1; /* the output channels made: [m0, m1), m0 a multiple of 16 */
} output_job;

/* F(2×2, 3×3)'s Y for tiles [begin, end), the job's channels: per tile,
 * 16 output channels a vector, the 2×2 results scattered to their planes. */
TARGET static void output_tiles_2(void *p, size_t begin, size_t end) {
  const output_job *j = p;
  const conv_winograd_shape *s = j->s;
  const int64_t TW = (s->OW + 1) / 2, OW = s->OW, OH = s->OH;
  const size_t m = j->wg->m, step = m, out_size = (size_t)(OH * OW);
  const __m512i index = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5,
                                                            4, 3, 2, 1, 0),
                                           _mm512_set1_epi32((int)out_size));
  for (size_t t = begin; t < end; t++) {
    int64_t oh = (int64_t)t / TW * 2, ow = (int64_t)t % TW * 2;
    bool down = oh + 1 < OH, right = ow + 1 < OW;
    for (size_t m0 = j->m0; m0 < j->m1; m0 += LANES) {
      __mmask16 keep = lanes_between(0, (int64_t)(j->m1 - m0));
      const float *from = j->mt + (t * j->wg->elements) * m + m0;
      __m512 r[4][4];
      for (int e = 0; e < 16; e++)
        r[e / 4][e % 4] = _mm512_maskz_loadu_ps(keep, from + (size_t)e * step);
      /* Aᵀ M A, Aᵀ = [1 1 1 0; 0 1 -1 -1]. */
      __m512 s0[4], s1[4];
      for (int b = 0; b < 4; b++) {
        s0[b] = _mm512_add_ps(_mm512_add_ps(r[0][b], r[1][b]), r[2][b]);
        s1[b] = _mm512_sub_ps(_mm512_sub_ps(r[1][b], r[2][b]), r[3][b]);
      }
      __m512 bias = j->bias ? _mm512_maskz_loadu_ps(keep, j->bias + m0) : _mm512_setzero_ps();
      __m512 y00 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]), bias);
      __m512 y01 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]), bias);
      __m512 y10 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]), bias);
      __m512 y11 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]), bias);
      float *base = j->y + m0 * out_size + (size_t)(oh * OW + ow);
      _mm512_mask_i32scatter_ps(base, keep, index, activate_kernel_avx512(y00, j->act), 4);
      if (right)
        _mm512_mask_i32scatter_ps(base + 1, keep, index, activate_kernel_avx512(y01, j->act), 4);
      if (down)
        _mm512_mask_i32scatter_ps(base + OW, keep, index, activate_kernel_avx512(y10, j->act), 4);
      if (down && right)
        _mm512_mask_i32scatter_ps(base + OW + 1, keep, index,
                                  activate_kernel_avx512(y11, j->act), 4);
    }
  }
}

/* One side of F(4×4, 3×3)'s input transform: out[a] = Σ_q Bᵀ[a][q]·d[q],
 *   Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
 *         0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]. */
INLINE void input_side_4(const __m512 d[6], __m512 out[6]) {
  const __m512 four = _mm512_set1_ps(4), five = _mm512_set1_ps(-5), two = _mm512_set1_ps(2);
  __m512 d4_d2 = _mm512_sub_ps(d[4], d[2]), d3_d1 = _mm512_sub_ps(d[3], d[1]);
  __m512 d12 = _mm512_add_ps(d[1], d[2]), d1_2 = _mm512_sub_ps(d[1], d[2]);
  __m512 d4_d3 = _mm512_sub_ps(d[4], d[3]), d34 = _mm512_add_ps(d[3], d[4]);
  out[0] = _mm512_fmadd_ps(four, d[0], _mm512_fmadd_ps(five, d[2], d[4]));
  out[1] = _mm512_fnmadd_ps(four, d12, d34);
  out[2] = _mm512_fmadd_ps(four, d1_2, d4_d3);
  out[3] = _mm512_fmadd_ps(two, d3_d1, d4_d2);
  out[4] = _mm512_fnmadd_ps(two, d3_d1, d4_d2);
  out[5] = _mm512_fmadd_ps(four, d[1], _mm512_fmadd_ps(five, d[3], d[5]));
}

/* F(4×4, 3×3)'s V for input channels [begin, end): per tile row, 16 tiles
 * a vector. Tile k of a vector starts at column c + 4k: four vectors from c
 * deinterleave into columns c + 4k + q (q < 4), and q = 4, 5 are q = 0, 1
 * of the next tile. */
TARGET static void input_channels_4(void *p, size_t begin, size_t end) {
  const input_job *j = p;
  const conv_winograd_shape *s = j->s;
  const int64_t TH = blocks(s->OH, 4), TW = blocks(s->OW, 4), T = TH * TW;
  const size_t step = (size_t)T; /* between elements e of one channel */
  const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odds = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  const __m512i next0 = _mm512_set_epi32(16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
  const __m512i next1 = _mm512_set_epi32(17, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
  for (size_t ci = begin; ci < end; ci++) {
    const float *x = j->x + ci * (size_t)(s->H * s->W);
    float *v = j->v + ci * j->wg->elements * (size_t)T;
    for (int64_t ti = 0; ti < TH; ti++)
      for (int64_t tj = 0; tj < TW; tj += LANES) {
        __m512 h[6][6];
        for (int rr = 0; rr < 6; rr++) {
          int64_t r = 4 * ti - s->pt + rr;
          if (r < 0 || r >= s->H) {
            for (int q = 0; q < 6; q++) h[rr][q] = _mm512_setzero_ps();
            continue;
          }
          const float *row = x + r * s->W;
          const int64_t c = 4 * tj - s->pl;
          __m512 a[5];
          for (int i = 0; i < 5; i++) {
            int64_t at = c + i * LANES;
            a[i] = _mm512_maskz_loadu_ps(lanes_between(-at, s->W - at), row + at);
          }
          __m512 e01 = _mm512_permutex2var_ps(a[0], evens, a[1]);
          __m512 o01 = _mm512_permutex2var_ps(a[0], odds, a[1]);
          __m512 e23 = _mm512_permutex2var_ps(a[2], evens, a[3]);
          __m512 o23 = _mm512_permutex2var_ps(a[2], odds, a[3]);
          __m512 d[6];
          d[0] = _mm512_permutex2var_ps(e01, evens, e23);
          d[1] = _mm512_permutex2var_ps(o01, evens, o23);
          d[2] = _mm512_permutex2var_ps(e01, odds, e23);
          d[3] = _mm512_permutex2var_ps(o01, odds, o23);
          d[4] = _mm512_permutex2var_ps(d[0], next0, a[4]);
          d[5] = _mm512_permutex2var_ps(d[1], next1, a[4]);
          input_side_4(d, h[rr]);
        }
        __mmask16 keep = lanes_between(0, TW - tj);
        float *to = v + ti * TW + tj;
        for (int b = 0; b < 6; b++) {
          __m512 col[6], out[6];
          for (int rr = 0; rr < 6; rr++) col[rr] = h[rr][b];
          input_side_4(col, out);
          for (int a = 0; a < 6; a++)
            _mm512_mask_storeu_ps(to + (size_t)(6 * a + b) * step, keep, out[a]);
        }
      }
  }
}

/* One side of F(4×4, 3×3)'s output transform: out[i] = Σ_a Aᵀ[i][a]·m[a],
 *   Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. */
INLINE void output_side_4(const __m512 m[6], __m512 out[4]) {
  __m512 p12 = _mm512_add_ps(m[1], m[2]), n12 = _mm512_sub_ps(m[1], m[2]);
  __m512 p34 = _mm512_add_ps(m[3], m[4]), n34 = _mm512_sub_ps(m[3], m[4]);
  out[0] = _mm512_add_ps(_mm512_add_ps(m[0], p12), p34);
  out[1] = _mm512_fmadd_ps(_mm512_set1_ps(2), n34, n12);
  out[2] = _mm512_fmadd_ps(_mm512_set1_ps(4), p34, p12);
  out[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8), n34, n12), m[5]);
}

/* Stores one output row of a 4×4 block for 16 channels: y[q] holds column
 * q of channels 0..15; channel k's `cols` values go to to + k·plane. A
 * 4×16 transpose in registers, then one 4-float store per channel (16
 * scatters of single floats cost twice as much). */
INLINE void store_row_4(const __m512 y[4], float *to, size_t plane, int channels, int cols) {
  __m512 t0 = _mm512_unpacklo_ps(y[0], y[1]), t1 = _mm512_unpackhi_ps(y[0], y[1]);
  __m512 t2 = _mm512_unpacklo_ps(y[2], y[3]), t3 = _mm512_unpackhi_ps(y[2], y[3]);
  __m512 u[4]; /* u[r], 128-bit lane l: the four columns of channel 4l + r */
  u[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
  u[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
  u[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
  u[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
  const __mmask8 mask = (__mmask8)((1u << cols) - 1u);
  __m128 lane[LANES];
  for (int r = 0; r < 4; r++) {
    lane[r] = _mm512_castps512_ps128(u[r]);
    lane[4 + r] = _mm512_extractf32x4_ps(u[r], 1);
    lane[8 + r] = _mm512_extractf32x4_ps(u[r], 2);
    lane[12 + r] = _mm512_extractf32x4_ps(u[r], 3);
  }
  for (int k = 0; k < channels; k++) {
    if (cols == 4) _mm_storeu_ps(to + (size_t)k * plane, lane[k]);
    else _mm_mask_storeu_ps(to + (size_t)k * plane, mask, lane[k]);
  }
}

/* F(4×4, 3×3)'s Y for tiles [begin, end): per tile, 16 output channels a
 * vector, the 4×4 results stored to their planes (those inside it). */
TARGET static void output_tiles_4(void *p, size_t begin, size_t end) {
  const output_job *j = p;
  const conv_winograd_shape *s = j->s;
  const int64_t TW = blocks(s->OW, 4), OW = s->OW, OH = s->OH;
  const size_t m = j->wg->m, step = m, out_size = (size_t)(OH * OW);
  for (size_t t = begin; t < end; t++) {
    int64_t oh = (int64_t)t / TW * 4, ow = (int64_t)t % TW * 4;
    int rows = OH - oh < 4 ? (int)(OH - oh) : 4, cols = OW - ow < 4 ? (int)(OW - ow) : 4;
    for (size_t m0 = j->m0; m0 < j->m1; m0 += LANES) {
      __mmask16 keep = lanes_between(0, (int64_t)(j->m1 - m0));
      const float *from = j->mt + (t * j->wg->elements) * m + m0;
      __m512 sides[4][6]; /* Aᵀ M: row i, column b */
      for (int b = 0; b < 6; b++) {
        __m512 col[6], out[4];
        for (int a = 0; a < 6; a++)
          col[a] = _mm512_maskz_loadu_ps(keep, from + (size_t)(6 * a + b) * step);
        output_side_4(col, out);
        for (int i = 0; i < 4; i++) sides[i][b] = out[i];
      }
      __m512 bias = j->bias ? _mm512_maskz_loadu_ps(keep, j->bias + m0) : _mm512_setzero_ps();
      float *base = j->y + m0 * out_size + (size_t)(oh * OW + ow);
      const int channels = j->m1 - m0 < LANES ? (int)(j->m1 - m0) : LANES;
      for (int i = 0; i < rows; i++) {
        __m512 y[4];
        output_side_4(sides[i], y);
        for (int q = 0; q < 4; q++)
          y[q] = activate_kernel_avx512(_mm512_add_ps(y[q], bias), j->act);
        store_row_4(y, base + i * OW, out_size, channels, cols);
      }
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
  bool by_tiles;   /* parts split the tiles (rows of M), not the channels */
  unsigned char *scratch;
  size_t each;
  const output_job *out; /* with parts > 1: each part's Y follows its products */
} products_job;

/* Block `part` of all E products M_e = V_eᵀ · U_e, with scratch slot
 * `part`: one hand-off for the E rather than one each. The blocks are
 * those kernel_gemm_run would make for one product (the same split of the
 * same T × m output), so the bits do not depend on the grouping. */
static void products(void *p, size_t part) {
  const products_job *j = p;
  const size_t T = j->T, m = j->wg->m;
  strand__gemm_block block;
  const strand__gemm_block *b = NULL;
  if (j->parts > 1) {
    if (j->by_tiles) {
      block.m0 = T * part / j->parts;
      block.m1 = T * (part + 1) / j->parts;
      block.n0 = 0;
      block.n1 = m;
    } else {
      strand__gemm_partition(j->kern, T, m, j->parts, part, &block);
    }
    if (block.m0 >= block.m1 || block.n0 >= block.n1) return;
    b = &block;
  }
  void *scratch = j->scratch + part * j->each;
  for (unsigned e = 0; e < j->wg->elements; e++)
    strand__gemm_packed(true, T, 1.0f, j->v + (size_t)e * T, j->wg->elements * T,
                        j->wg->packed[e], 0.0f, j->mt + (size_t)e * m, j->wg->elements * m, NULL,
                        b, scratch);
  if (b && j->out) {
    /* The block's tiles and channels are all of M this part wrote and
     * all the output transform reads for them: the same thread goes on,
     * with no hand-off and with M in its own caches. */
    output_job out = *j->out;
    out.m0 = b->n0;
    out.m1 = b->n1;
    (j->wg->tile == 4 ? output_tiles_4 : output_tiles_2)(&out, b->m0, b->m1);
  }
}

void conv_winograd_run(const conv_winograd *wg, const conv_winograd_shape *s, const float *x,
                       const float *bias, const kernel_activation *act, float *y,
                       unsigned threads, void *scratch, size_t scratch_size) {
  const size_t T = tiles(wg, s), c = wg->c, m = wg->m, E = wg->elements;
  float *v = scratch;
  float *mt = (float *)((unsigned char *)scratch + align64(E * c * T * sizeof(float)));
  unsigned char *gemm_scratch = (unsigned char *)mt + align64(E * T * m * sizeof(float));
  size_t gemm_size = scratch_size - (size_t)(gemm_scratch - (unsigned char *)scratch);
  input_job in = {wg, s, x, v};
  kernel_parallel(threads, c, kernel_grain(T * 40), wg->tile == 4 ? input_channels_4 : input_channels_2,
                  &in);
  const strand__gemm_kernel *kern = strand__gemm_packed_kernel(wg->packed[0]);
  size_t each = align64(strand__gemm_scratch_size(kern, T, m, c, true));
  size_t parts = strand__gemm_useful_parts(kern, T, m, c, threads ? threads : 1);
  if (each && parts > gemm_size / each) parts = gemm_size / each;
  if (parts == 0) parts = 1; /* the scratch always has room for one */
  output_job out = {wg, s, mt, bias, act, y, 0, m};
  /* Parts split the tiles when a product's weights (c × m) are at most 8
   * times its input (T × c): each part then packs only its own tiles of V
   * and reads all of U. Split by channels (strand__gemm_partition's choice
   * at 2 threads), each part packed all of V. ResNet-18 at batch 1 and two
   * threads, per Conv: layer2 (T 49, m 128) 0.68 → 0.59-0.61 ms, layer3
   * (T 49, m 256) 0.79-0.87 → 0.77-0.80; layer4 (T 16, m 512: 16 MiB of
   * U) lost split by tiles (1.09 → 1.27) and keeps the channels. Rows of
   * M are computed alike wherever a part starts: the bits do not move. */
  const bool by_tiles = m <= 8 * T;
  products_job pj = {wg, T, v, mt, kern, parts, by_tiles, gemm_scratch, each, &out};
  if (parts > 1) {
    strand__parallel_for(parts, products, &pj, threads);
    return;
  }
  products(&pj, 0);
  kernel_parallel(threads, T, kernel_grain(m * 8), wg->tile == 4 ? output_tiles_4 : output_tiles_2,
                  &out);
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
