/*
 * conv_depthwise_avx2.c — a depthwise plane with AVX2 + FMA: 8 outputs of
 * a row per vector, up to four vectors in flight; every tap is one masked
 * load (column stride 1) or two masked loads and an even-lane shuffle
 * (stride 2), the mask leaving out columns in the padding. Bias and
 * activation are applied in registers.
 *
 * Built without global -m flags: every function carries a target
 * attribute and is only entered on CPUs strand__cpu() reports AVX2.
 */
#include "kernels/conv_depthwise.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { LANES = 8, VECTORS = 4 };

/* All ones in lanes j of [0, 8) with lo <= j < hi. */
INLINE __m256i lanes_between(int64_t lo, int64_t hi) {
  if (lo < 0) lo = 0;
  if (hi > LANES) hi = LANES;
  if (hi < lo) hi = lo;
  const __m256i index = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
  __m256i above = _mm256_cmpgt_epi32(index, _mm256_set1_epi32((int)lo - 1));
  __m256i below = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), index);
  return _mm256_and_si256(above, below);
}

INLINE __m256 load(const float *row, int64_t c, int64_t W) {
  if (c >= 0 && c + LANES <= W) return _mm256_loadu_ps(row + c);
  if (c >= W || c + LANES <= 0) return _mm256_setzero_ps();
  return _mm256_maskload_ps(row + c, lanes_between(-c, W - c));
}

/* x[c + j*stride] for j < 8, 0 where c + j*stride is outside [0, W). */
INLINE __m256 taps(const float *row, int64_t c, int64_t W, int64_t stride) {
  if (stride == 1) return load(row, c, W);
  __m256 a = load(row, c, W), b = load(row, c + LANES, W);
  __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)); /* a0 a2 b0 b2 | a4 a6 b4 b6 */
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* As taps, with every column known inside. */
INLINE __m256 taps_inside(const float *row, int64_t c, int64_t stride) {
  if (stride == 1) return _mm256_loadu_ps(row + c);
  __m256 a = _mm256_loadu_ps(row + c), b = _mm256_loadu_ps(row + c + LANES);
  __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

INLINE __m256 activate(__m256 v, strand__gemm_activation act, __m256 lo, __m256 hi) {
  if (act == STRAND__GEMM_ACT_RELU) return _mm256_max_ps(_mm256_setzero_ps(), v);
  if (act == STRAND__GEMM_ACT_CLIP) return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
  return v;
}

/* Outputs [ow0, ow0 + count*8) of row oh (the last vector masked to OW). */
INLINE void row_block(const conv_dw_plane *p, const int64_t KH, const int64_t KW, int64_t oh,
                      int64_t ow0, int count, int64_t stride) {
  __m256 acc[VECTORS];
  const __m256 bias = _mm256_set1_ps(p->bias);
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
      const __m256 wv = _mm256_set1_ps(p->w[kh * KW + kw]);
      int64_t c = ow0 * stride - p->pl + kw * p->dw;
      if (inside)
        for (int v = 0; v < count; v++)
          acc[v] = _mm256_fmadd_ps(wv, taps_inside(row, c + v * LANES * stride, stride), acc[v]);
      else
        for (int v = 0; v < count; v++)
          acc[v] = _mm256_fmadd_ps(wv, taps(row, c + v * LANES * stride, p->W, stride), acc[v]);
    }
  }
  const __m256 lo = _mm256_set1_ps(p->lo), hi = _mm256_set1_ps(p->hi);
  float *out = p->y + oh * p->OW + ow0;
  for (int v = 0; v < count; v++) {
    __m256 r = activate(acc[v], p->act, lo, hi);
    int64_t room = p->OW - ow0 - v * LANES;
    if (room >= LANES) _mm256_storeu_ps(out + v * LANES, r);
    else _mm256_maskstore_ps(out + v * LANES, lanes_between(0, room), r);
  }
}

/* KH, KW: p's, as constants where the caller can make them so. */
INLINE void plane(const conv_dw_plane *p, const int64_t KH, const int64_t KW, int64_t stride) {
  for (int64_t oh = 0; oh < p->OH; oh++) {
    int64_t ow0 = 0;
    for (; ow0 + VECTORS * LANES <= p->OW; ow0 += VECTORS * LANES)
      row_block(p, KH, KW, oh, ow0, VECTORS, stride);
    /* The rest: 1 to VECTORS vectors, the last one partial. */
    switch ((p->OW - ow0 + LANES - 1) / LANES) {
    case 4: row_block(p, KH, KW, oh, ow0, 4, stride); break;
    case 3: row_block(p, KH, KW, oh, ow0, 3, stride); break;
    case 2: row_block(p, KH, KW, oh, ow0, 2, stride); break;
    case 1: row_block(p, KH, KW, oh, ow0, 1, stride); break;
    default: break;
    }
  }
}

TARGET static void plane_3x3_s1(const conv_dw_plane *p) { plane(p, 3, 3, 1); }
TARGET static void plane_3x3_s2(const conv_dw_plane *p) { plane(p, 3, 3, 2); }
TARGET static void plane_s1(const conv_dw_plane *p) { plane(p, p->KH, p->KW, 1); }
TARGET static void plane_s2(const conv_dw_plane *p) { plane(p, p->KH, p->KW, 2); }

bool conv_depthwise_plane_avx2(const conv_dw_plane *p) {
  bool three = p->KH == 3 && p->KW == 3;
  if (p->sw == 1) three ? plane_3x3_s1(p) : plane_s1(p);
  else if (p->sw == 2) three ? plane_3x3_s2(p) : plane_s2(p);
  else return false;
  return true;
}

#else

bool conv_depthwise_plane_avx2(const conv_dw_plane *p) {
  (void)p;
  return false;
}

#endif
