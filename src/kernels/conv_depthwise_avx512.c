/*
 * conv_depthwise_avx512.c — a depthwise plane with AVX-512: 16 outputs of
 * a row per vector, up to four vectors in flight; every tap is one masked
 * load (column stride 1) or two masked loads and an even-lane permute
 * (stride 2), the mask leaving out columns in the padding, so edges need
 * no special case. Bias and activation are applied in registers. A 3×3
 * plane at stride 2, or at unit strides with rows that fill most of their
 * vectors, runs four output rows at a time, each input row loaded once for
 * all the output rows that read it; narrower ones at unit strides padded
 * by one run as one flat run of outputs across their rows instead.
 *
 * MaxPool's planes (pool.c) run here too, with the same masked loads.
 *
 * Built without global -m flags: every function carries a target
 * attribute and is only entered on CPUs strand__cpu() reports AVX-512.
 */
#include "kernels/conv_depthwise.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "kernels/lanes_avx512.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { LANES = 16, VECTORS = 4 };

/* x[c + j*stride] for j < 16, 0 where c + j*stride is outside [0, W). */
INLINE __m512 taps(const float *row, int64_t c, int64_t W, int64_t stride, __m512i evens) {
  if (stride == 1) return _mm512_maskz_loadu_ps(lanes_between(-c, W - c), row + c);
  __m512 a = _mm512_maskz_loadu_ps(lanes_between(-c, W - c), row + c);
  __m512 b = _mm512_maskz_loadu_ps(lanes_between(-c - LANES, W - c - LANES), row + c + LANES);
  return _mm512_permutex2var_ps(a, evens, b);
}

/* As taps, with every column known inside. */
INLINE __m512 taps_inside(const float *row, int64_t c, int64_t stride, __m512i evens) {
  if (stride == 1) return _mm512_loadu_ps(row + c);
  return _mm512_permutex2var_ps(_mm512_loadu_ps(row + c), evens, _mm512_loadu_ps(row + c + LANES));
}

/* Outputs [ow0, ow0 + count*16) of row oh (the last vector masked to OW). */
INLINE void row_block(const conv_dw_plane *p, const int64_t KH, const int64_t KW, int64_t oh,
                      int64_t ow0, int count, int64_t stride,
                      __m512i evens) {
  __m512 acc[VECTORS];
  const __m512 bias = _mm512_set1_ps(p->bias);
  for (int v = 0; v < count; v++) acc[v] = bias;
  /* Every column any tap reads, stride 2's odd lanes included, is inside. */
  const int64_t first = ow0 * stride - p->pl, last = first + count * LANES * stride - 1 +
                                                     (KW - 1) * p->dw;
  const bool inside = first >= 0 && last < p->W;
#pragma GCC unroll 3
  for (int64_t kh = 0; kh < KH; kh++) {
    int64_t ih = oh * p->sh - p->pt + kh * p->dh;
    if (ih < 0 || ih >= p->H) continue;
    const float *row = p->x + ih * p->W;
#pragma GCC unroll 3
    for (int64_t kw = 0; kw < KW; kw++) {
      const __m512 wv = _mm512_set1_ps(p->w[kh * KW + kw]);
      int64_t c = ow0 * stride - p->pl + kw * p->dw;
      if (inside)
        for (int v = 0; v < count; v++)
          acc[v] = _mm512_fmadd_ps(wv, taps_inside(row, c + v * LANES * stride, stride, evens), acc[v]);
      else
        for (int v = 0; v < count; v++)
          acc[v] = _mm512_fmadd_ps(wv, taps(row, c + v * LANES * stride, p->W, stride, evens), acc[v]);
    }
  }
  const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
  float *out = p->y + oh * p->OW + ow0;
  for (int v = 0; v < count; v++)
    _mm512_mask_storeu_ps(out + v * LANES, lanes_between(0, p->OW - ow0 - v * LANES),
                          activate_avx512(acc[v], p->act, lo, hi));
}

/* Row oh of a 3×3 plane without dilation whose three input rows are all
 * inside, 16 outputs at a time: per input row three taps into a partial
 * sum of its own (three independent FMA chains), added as
 * (bias + row 0) + row 1 + row 2. Columns in the padding are masked. */
INLINE void row_3x3(const conv_dw_plane *p, int64_t oh, int64_t stride, const __m512 w[9],
                    __m512i evens, __m512i odds) {
  const int64_t W = p->W, OW = p->OW;
  const float *r[3];
  r[0] = p->x + (oh * p->sh - p->pt) * W;
  r[1] = r[0] + W;
  r[2] = r[1] + W;
  const __m512 bias = _mm512_set1_ps(p->bias), lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
  float *out = p->y + oh * OW;
  for (int64_t ow0 = 0; ow0 < OW; ow0 += LANES) {
    const int64_t c = ow0 * stride - p->pl;
    __m512 part[3];
    if (stride == 1) {
      const __mmask16 m0 = lanes_between(-c, W - c), m1 = lanes_between(-c - 1, W - c - 1),
                      m2 = lanes_between(-c - 2, W - c - 2);
#pragma GCC unroll 3
      for (int k = 0; k < 3; k++) {
        __m512 t = _mm512_mul_ps(w[3 * k], _mm512_maskz_loadu_ps(m0, r[k] + c));
        t = _mm512_fmadd_ps(w[3 * k + 1], _mm512_maskz_loadu_ps(m1, r[k] + c + 1), t);
        part[k] = _mm512_fmadd_ps(w[3 * k + 2], _mm512_maskz_loadu_ps(m2, r[k] + c + 2), t);
      }
    } else {
      /* Columns c + 2j + kw: kw 0 and 1 are the even and odd lanes of the
       * 32 columns from c, kw 2 the even lanes moved down one lane, column
       * c + 32 entering the last. */
      const __mmask16 a0 = lanes_between(-c, W - c), b0 = lanes_between(-c - LANES, W - c - LANES),
                      a2 = lanes_between(-c - 2 * LANES, W - c - 2 * LANES) & 1u;
#pragma GCC unroll 3
      for (int k = 0; k < 3; k++) {
        const __m512 x0 = _mm512_maskz_loadu_ps(a0, r[k] + c),
                     x1 = _mm512_maskz_loadu_ps(b0, r[k] + c + LANES),
                     x2 = _mm512_maskz_loadu_ps(a2, r[k] + c + 2 * LANES);
        const __m512 even = _mm512_permutex2var_ps(x0, evens, x1);
        __m512 t = _mm512_mul_ps(w[3 * k], even);
        t = _mm512_fmadd_ps(w[3 * k + 1], _mm512_permutex2var_ps(x0, odds, x1), t);
        const __m512 next = _mm512_castsi512_ps(
            _mm512_alignr_epi32(_mm512_castps_si512(x2), _mm512_castps_si512(even), 1));
        part[k] = _mm512_fmadd_ps(w[3 * k + 2], next, t);
      }
    }
    __m512 v = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(bias, part[0]), part[1]), part[2]);
    _mm512_mask_storeu_ps(out + ow0, lanes_between(0, OW - ow0),
                          activate_avx512(v, p->act, lo, hi));
  }
}

/* A 3×3 plane without dilation: row_3x3 where the rows are inside, the
 * general rows elsewhere (the padding at the top and bottom). */
INLINE void plane_3x3(const conv_dw_plane *p, int64_t stride) {
  const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odds = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  __m512 w[9];
  for (int k = 0; k < 9; k++) w[k] = _mm512_set1_ps(p->w[k]);
  for (int64_t oh = 0; oh < p->OH; oh++) {
    int64_t ih = oh * p->sh - p->pt;
    if (ih >= 0 && ih + 2 < p->H) {
      row_3x3(p, oh, stride, w, evens, odds);
      continue;
    }
    for (int64_t ow0 = 0; ow0 < p->OW; ow0 += LANES) row_block(p, 3, 3, oh, ow0, 1, stride, evens);
  }
}

/* One tap row of plane_3x3_flat: w0·x[-1] + w1·x[0] + w2·x[1], lanes
 * outside `rows` (and, for the side taps, `left` / `right`) read as 0. */
INLINE __m512 tap_row(const float *x, __m512 w0, __m512 w1, __m512 w2, __mmask16 rows,
                      __mmask16 left, __mmask16 right) {
  __m512 t = _mm512_mul_ps(w0, _mm512_maskz_loadu_ps(rows & left, x - 1));
  t = _mm512_fmadd_ps(w1, _mm512_maskz_loadu_ps(rows, x), t);
  return _mm512_fmadd_ps(w2, _mm512_maskz_loadu_ps(rows & right, x + 1), t);
}

/* A 3×3 plane at unit strides without dilation, padded by one on every
 * side (OH = H, OW = W), as one flat run of H·W outputs, 16 at a time
 * whatever W is: a tap (kh, kw) of output i reads X at i + (kh-1)·W +
 * (kw-1), one masked load per tap, the mask leaving out lanes whose tap
 * row or column is in the padding. Narrow planes (7×7, 14×14) then fill
 * whole vectors instead of one short vector per row; two vectors per pass
 * keep two chains of sums in flight. The sums are row_3x3's: per tap row
 * three taps into a partial sum, added as (bias + row 0) + row 1 + row 2. */
INLINE void plane_3x3_flat(const conv_dw_plane *p) {
  const int64_t W = p->W, size = p->H * W;
  const float *wp = p->w;
  const __m512 w0 = _mm512_set1_ps(wp[0]), w1 = _mm512_set1_ps(wp[1]), w2 = _mm512_set1_ps(wp[2]),
               w3 = _mm512_set1_ps(wp[3]), w4 = _mm512_set1_ps(wp[4]), w5 = _mm512_set1_ps(wp[5]),
               w6 = _mm512_set1_ps(wp[6]), w7 = _mm512_set1_ps(wp[7]), w8 = _mm512_set1_ps(wp[8]);
  const __m512 bias = _mm512_set1_ps(p->bias), lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
  /* Read once: the stores through y could alias p for all the compiler knows. */
  const strand__gemm_activation act = p->act;
  const float *const in = p->x;
  float *const out = p->y;
  /* Bits at 0, W, 2W, ... below 16: shifted by a column's first lane (when
   * below 16), the lanes of that column within a vector. */
  uint32_t comb = 0;
  for (int64_t j = 0; j < LANES; j += W) comb |= 1u << j;
  int64_t r = 0; /* the column of output i0 */
  const int64_t step = LANES % W; /* r's advance per vector, modulo W */
  /* Two vectors per pass: their sums are independent chains. */
  for (int64_t i0 = 0; i0 < size; i0 += 2 * LANES) {
    __m512 v[2];
    __mmask16 inside[2];
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
      const int64_t at = i0 + h * LANES;
      inside[h] = lanes_between(0, size - at);
      /* Tap row 0 reads the row above (none for row 0), row 2 the row below. */
      const __mmask16 above = lanes_between(W - at, LANES) & inside[h],
                      below = lanes_between(0, size - W - at) & inside[h];
      /* Lane 0 is in column r: column 0 comes at lane W - r (0 when r is
       * 0), column W - 1 at lane W - 1 - r. */
      const int64_t first = r ? W - r : 0, last = W - 1 - r;
      const __mmask16 left = (__mmask16)~(first < LANES ? comb << first : 0u),
                      right = (__mmask16)~(last < LANES ? comb << last : 0u);
      const float *x = in + at;
      const __m512 part0 = tap_row(x - W, w0, w1, w2, above, left, right),
                   part1 = tap_row(x, w3, w4, w5, inside[h], left, right),
                   part2 = tap_row(x + W, w6, w7, w8, below, left, right);
      v[h] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(bias, part0), part1), part2);
      r += step;
      if (r >= W) r -= W;
    }
    _mm512_mask_storeu_ps(out + i0, inside[0], activate_avx512(v[0], act, lo, hi));
    if (inside[1])
      _mm512_mask_storeu_ps(out + i0 + LANES, inside[1], activate_avx512(v[1], act, lo, hi));
  }
}

/* A 3×3 plane without dilation, at equal row and column strides of 1 or
 * 2, ROWS output rows at a time, 16 outputs of each per vector (the last
 * vector of a row masked): each of the input rows the group reads is
 * loaded once per vector column (at stride 1 three shifted masked loads;
 * at stride 2 the even, odd and next-even columns as in row_3x3) and
 * serves every output row of the group that reads it: at stride 1 each
 * input row serves three output rows, at stride 2 every other one two.
 * The sums are row_3x3's: per output row and kernel row a partial sum of
 * three taps, added as (bias + row 0) + row 1 + row 2; input rows in the
 * padding are loaded as zeros, columns in it masked as in row_3x3. */
INLINE void plane_3x3_tall(const conv_dw_plane *p, const int stride) {
  enum { ROWS = 4, MOST_IN = 2 * (ROWS - 1) + 3 };
  const int in_rows = (ROWS - 1) * stride + 3;
  const int64_t H = p->H, W = p->W, OH = p->OH, OW = p->OW;
  const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odds = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  __m512 w[9];
  for (int k = 0; k < 9; k++) w[k] = _mm512_set1_ps(p->w[k]);
  const __m512 bias = _mm512_set1_ps(p->bias), lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
  /* Read once: the stores through y could alias p for all the compiler knows. */
  const strand__gemm_activation act = p->act;
  const float *const in = p->x;
  float *const out = p->y;
  const int64_t pt = p->pt, pl = p->pl;
  for (int64_t oh0 = 0; oh0 < OH; oh0 += ROWS) {
    const int64_t rows = OH - oh0 < ROWS ? OH - oh0 : ROWS;
    /* Input row j of the group is row oh0·stride - pt + j; outside: all
     * lanes off. */
    const float *row[MOST_IN];
    __mmask16 live[MOST_IN];
#pragma GCC unroll 9
    for (int j = 0; j < in_rows; j++) {
      const int64_t ih = oh0 * stride - pt + j;
      const bool inside = ih >= 0 && ih < H;
      row[j] = in + (inside ? ih : 0) * W;
      live[j] = inside ? (__mmask16)0xffff : 0;
    }
    for (int64_t ow0 = 0; ow0 < OW; ow0 += LANES) {
      const int64_t c = ow0 * stride - pl;
      /* Stride 1: the columns from c, c + 1, c + 2. Stride 2: the 32 from
       * c and the one at c + 32. */
      const int64_t c1 = c + (stride == 1 ? 1 : LANES), c2 = c + (stride == 1 ? 2 : 2 * LANES);
      const __mmask16 m0 = lanes_between(-c, W - c), m1 = lanes_between(-c1, W - c1),
                      m2 = lanes_between(-c2, W - c2) & (stride == 1 ? 0xffffu : 1u);
      __m512 part[ROWS][3];
#pragma GCC unroll 9
      for (int j = 0; j < in_rows; j++) {
        __m512 x0, x1, x2;
        if (stride == 1) {
          x0 = _mm512_maskz_loadu_ps(m0 & live[j], row[j] + c);
          x1 = _mm512_maskz_loadu_ps(m1 & live[j], row[j] + c1);
          x2 = _mm512_maskz_loadu_ps(m2 & live[j], row[j] + c2);
        } else {
          const __m512 a = _mm512_maskz_loadu_ps(m0 & live[j], row[j] + c),
                       b = _mm512_maskz_loadu_ps(m1 & live[j], row[j] + c1),
                       z = _mm512_maskz_loadu_ps(m2 & live[j], row[j] + c2);
          x0 = _mm512_permutex2var_ps(a, evens, b);
          x1 = _mm512_permutex2var_ps(a, odds, b);
          x2 = _mm512_castsi512_ps(
              _mm512_alignr_epi32(_mm512_castps_si512(z), _mm512_castps_si512(x0), 1));
        }
        /* Output row r reads input row j with kernel row j - r·stride. */
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; r++) {
          const int k = j - r * stride;
          if (k < 0 || k > 2) continue;
          __m512 t = _mm512_mul_ps(w[3 * k], x0);
          t = _mm512_fmadd_ps(w[3 * k + 1], x1, t);
          part[r][k] = _mm512_fmadd_ps(w[3 * k + 2], x2, t);
        }
      }
      const __mmask16 cols = lanes_between(0, OW - ow0);
#pragma GCC unroll 4
      for (int r = 0; r < ROWS; r++) {
        if (r >= rows) break;
        const __m512 v =
            _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(bias, part[r][0]), part[r][1]), part[r][2]);
        _mm512_mask_storeu_ps(out + (oh0 + r) * OW + ow0, cols, activate_avx512(v, act, lo, hi));
      }
    }
  }
}

/* KH, KW: p's, as constants where the caller can make them so. */
INLINE void plane(const conv_dw_plane *p, const int64_t KH, const int64_t KW, int64_t stride) {
  const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  for (int64_t oh = 0; oh < p->OH; oh++) {
    int64_t ow0 = 0;
    for (; ow0 + VECTORS * LANES <= p->OW; ow0 += VECTORS * LANES)
      row_block(p, KH, KW, oh, ow0, VECTORS, stride, evens);
    /* The rest: 1 to VECTORS vectors, the last one partial. */
    switch ((p->OW - ow0 + LANES - 1) / LANES) {
    case 4: row_block(p, KH, KW, oh, ow0, 4, stride, evens); break;
    case 3: row_block(p, KH, KW, oh, ow0, 3, stride, evens); break;
    case 2: row_block(p, KH, KW, oh, ow0, 2, stride, evens); break;
    case 1: row_block(p, KH, KW, oh, ow0, 1, stride, evens); break;
    default: break;
    }
  }
}

/* Up to 16 outputs (lanes `keep`) of a 3×3 stride-2 MaxPool, window rows
 * from ih0 and columns from c. Taps outside the plane read as -inf, which
 * never beats a number; taps go in the portable loop's order, each kept
 * with its ordered >=, so every output gets its bits. False (nothing
 * stored) when a kept lane ends at -inf: that may be a window without a
 * number, which the general loop decides. */
INLINE bool max_3x3_s2(const conv_dw_plane *p, int64_t ih0, int64_t c, __mmask16 keep,
                       float *out) {
  const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odds = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  const __m512 low = _mm512_set1_ps(-__builtin_inff());
  const __mmask16 in_a = lanes_between(-c, p->W - c), in_b = lanes_between(-c - LANES, p->W - c - LANES);
  const __mmask16 in_a2 = lanes_between(-c - 2, p->W - c - 2);
  const __mmask16 in_b2 = lanes_between(-c - 2 - LANES, p->W - c - 2 - LANES);
  __m512 best = low;
#pragma GCC unroll 3
  for (int kh = 0; kh < 3; kh++) {
    if (ih0 + kh < 0 || ih0 + kh >= p->H) continue;
    const float *row = p->x + (ih0 + kh) * p->W + c;
    __m512 a = _mm512_mask_loadu_ps(low, in_a, row), b = _mm512_mask_loadu_ps(low, in_b, row + LANES);
    __m512 a2 = _mm512_mask_loadu_ps(low, in_a2, row + 2);
    __m512 b2 = _mm512_mask_loadu_ps(low, in_b2, row + 2 + LANES);
    __m512 tap[3] = {_mm512_permutex2var_ps(a, evens, b), _mm512_permutex2var_ps(a, odds, b),
                     _mm512_permutex2var_ps(a2, evens, b2)};
#pragma GCC unroll 3
    for (int kw = 0; kw < 3; kw++)
      best = _mm512_mask_mov_ps(best, _mm512_cmp_ps_mask(tap[kw], best, _CMP_GE_OQ), tap[kw]);
  }
  if (_mm512_mask_cmp_ps_mask(keep, best, low, _CMP_EQ_OQ)) return false;
  _mm512_mask_storeu_ps(out, keep, best);
  return true;
}

/* MaxPool over a plane (pool.c's rule: NaN never wins; a window without
 * a number gives -FLT_MAX), 16 outputs at a time, taps in the order the
 * portable loop takes them, kept with an ordered >= as it does. */
INLINE void max_plane(const conv_dw_plane *p, int64_t stride) {
  const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512 none = _mm512_set1_ps(-3.402823466e+38f);
  const bool s2_3x3 = stride == 2 && p->sh == 2 && p->KH == 3 && p->KW == 3 && p->dh == 1 &&
                      p->dw == 1;
  for (int64_t oh = 0; oh < p->OH; oh++) {
    float *out = p->y + oh * p->OW;
    for (int64_t ow0 = 0; ow0 < p->OW; ow0 += LANES) {
      if (s2_3x3 && max_3x3_s2(p, oh * 2 - p->pt, ow0 * 2 - p->pl,
                               lanes_between(0, p->OW - ow0), out + ow0))
        continue;
      __m512 best = _mm512_set1_ps(-__builtin_inff());
      __mmask16 found = 0;
      for (int64_t kh = 0; kh < p->KH; kh++) {
        int64_t ih = oh * p->sh - p->pt + kh * p->dh;
        if (ih < 0 || ih >= p->H) continue;
        const float *row = p->x + ih * p->W;
        for (int64_t kw = 0; kw < p->KW; kw++) {
          int64_t c = ow0 * stride - p->pl + kw * p->dw;
          /* Lanes whose column is inside: the taps the window has. */
          __mmask16 inside;
          __m512 v;
          if (stride == 1) {
            inside = lanes_between(-c, p->W - c);
            v = _mm512_maskz_loadu_ps(inside, row + c);
          } else {
            __mmask16 a = lanes_between(-c, p->W - c), b = lanes_between(-c - LANES, p->W - c - LANES);
            v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(a, row + c), evens,
                                       _mm512_maskz_loadu_ps(b, row + c + LANES));
            /* Lane j reads column c + 2j: inside when 0 <= c + 2j < W. */
            int64_t lo = c >= 0 ? 0 : (-c + 1) / 2, hi = p->W - c <= 0 ? 0 : (p->W - c + 1) / 2;
            inside = lanes_between(lo, hi);
          }
          __mmask16 take = _mm512_mask_cmp_ps_mask(inside, v, best, _CMP_GE_OQ);
          best = _mm512_mask_mov_ps(best, take, v);
          found |= take;
        }
      }
      _mm512_mask_storeu_ps(out + ow0, lanes_between(0, p->OW - ow0),
                            _mm512_mask_mov_ps(none, found, best));
    }
  }
}

TARGET static void max_plane_s1(const conv_dw_plane *p) { max_plane(p, 1); }
TARGET static void max_plane_s2(const conv_dw_plane *p) { max_plane(p, 2); }

bool pool_max_plane_avx512(const conv_dw_plane *p) {
  if (p->sw == 1) max_plane_s1(p);
  else if (p->sw == 2) max_plane_s2(p);
  else return false;
  return true;
}

TARGET static void plane_3x3_s1(const conv_dw_plane *p) { plane_3x3(p, 1); }
TARGET static void plane_3x3_flat_s1(const conv_dw_plane *p) { plane_3x3_flat(p); }
TARGET static void plane_3x3_tall_s1(const conv_dw_plane *p) { plane_3x3_tall(p, 1); }
TARGET static void plane_3x3_tall_s2(const conv_dw_plane *p) { plane_3x3_tall(p, 2); }
TARGET static void plane_3x3_s2(const conv_dw_plane *p) { plane_3x3(p, 2); }
TARGET static void plane_s1(const conv_dw_plane *p) { plane(p, p->KH, p->KW, 1); }
TARGET static void plane_s2(const conv_dw_plane *p) { plane(p, p->KH, p->KW, 2); }

/* Whether a 3×3 unit-stride plane OW outputs wide takes plane_3x3_tall:
 * when its rows fill at least 80% of their vectors (OW 16, 28, 32, 40,
 * 56, 112, ...); narrower or emptier rows run flat (measured: at 14 and 24
 * columns the flat run was faster, at 28 and up the tall one by 10-60%).
 * At stride 2 every width takes it: against the row-by-row path it
 * measured as fast or faster from 2 output columns up (+30% at 14 and 7,
 * +25% at 28, +4-11% at 56). */
static bool tall_fits(int64_t OW) {
  return OW >= LANES && 5 * OW >= 4 * LANES * ((OW + LANES - 1) / LANES);
}

/* Padded by one on every side: the flat run, unless rows fill whole
 * vectors anyway. */
static bool flat_fits(const conv_dw_plane *p) {
  return p->pt == 1 && p->pl == 1 && p->OH == p->H && p->OW == p->W && p->W % LANES != 0;
}

bool conv_depthwise_avx512_zero_padded(const conv_dw_plane *p) {
  if (p->KH != 3 || p->KW != 3 || p->dh != 1 || p->dw != 1) return false;
  if (p->sh == 2 && p->sw == 2) return true;
  return p->sh == 1 && p->sw == 1 && (tall_fits(p->OW) || flat_fits(p));
}

bool conv_depthwise_plane_avx512(const conv_dw_plane *p) {
  bool three = p->KH == 3 && p->KW == 3 && p->dh == 1 && p->dw == 1;
  bool flat = three && p->sh == 1 && p->sw == 1 && flat_fits(p);
  if (three && p->sh == 1 && p->sw == 1 && tall_fits(p->OW)) plane_3x3_tall_s1(p);
  else if (three && p->sh == 2 && p->sw == 2) plane_3x3_tall_s2(p);
  else if (flat) plane_3x3_flat_s1(p);
  else if (p->sw == 1) three ? plane_3x3_s1(p) : plane_s1(p);
  else if (p->sw == 2) three ? plane_3x3_s2(p) : plane_s2(p);
  else return false;
  return true;
}

#else

bool conv_depthwise_avx512_zero_padded(const conv_dw_plane *p) {
  (void)p;
  return false;
}

bool conv_depthwise_plane_avx512(const conv_dw_plane *p) {
  (void)p;
  return false;
}

bool pool_max_plane_avx512(const conv_dw_plane *p) {
  (void)p;
  return false;
}

#endif
