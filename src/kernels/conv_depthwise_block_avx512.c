/*
 * conv_depthwise_block_avx512.c — sixteen depthwise 3×3 planes of one
 * geometry at once with AVX-512, a channel in each lane (conv_depthwise.h,
 * conv_depthwise_block_avx512).
 *
 * A plane's own vectors run along its rows, which narrow planes (14×14,
 * 7×7) fill poorly and stride 2 makes pay a permute per vector. With the
 * sixteen channels side by side every output position is one vector:
 * nine loads and nine multiply-adds, whatever the plane's width or stride.
 * The sixteen input planes are turned into that layout, padding included
 * (16×16 transposes of 16 positions at a time, the padding written as
 * zeros), in the caller's scratch; each 16 outputs, in the planes' order,
 * are turned back into the sixteen output planes the same way. Only for
 * planes whose padded layout takes at most MOST_PADDED bytes: the
 * transposes cost about as much as the sums, and pay only where the
 * per-plane path wastes lanes or permutes.
 *
 * The sums are the per-plane AVX-512 path's, bit for bit: per kernel row a
 * partial sum w0·x0 + w1·x1 + w2·x2 (a multiply, then two multiply-adds),
 * added as (bias + row 0) + row 1 + row 2; taps in the padding read 0.
 *
 * Built without global -m flags: every function carries a target
 * attribute and is only entered on CPUs strand__cpu() reports AVX-512.
 */
#include "kernels/conv_depthwise.h"

/* The padded layout: the input rows and columns the outputs read, from
 * -pt and -pl, each cell the 16 channels' values (0 in the padding). */
static int64_t padded_rows(const conv_dw_plane *p) { return (p->OH - 1) * p->sh + 3; }
static int64_t padded_width(const conv_dw_plane *p) { return (p->OW - 1) * p->sw + 3; }

/* The largest padded layout taken, in bytes: 1024 cells (28×28 planes and
 * smaller). Measured in MobileNetV2 at batch 1 (per layer, against the
 * per-plane path): 14×14 and 7×7 planes 1.28–1.36x, 14 → 7 at stride 2
 * 1.66–1.84x, 28×28 1.02–1.14x; the 56×56 ones (215 KiB) 1.00x, and 56 →
 * 28 at stride 2 0.83x. */
#define MOST_PADDED ((size_t)1024 * 64)

enum { CHANNELS = 16 };

size_t conv_depthwise_block_scratch(const conv_dw_plane *p) {
  return (size_t)(padded_rows(p) * padded_width(p)) * CHANNELS * sizeof(float);
}

bool conv_depthwise_block_fits(const conv_dw_plane *p) {
  /* At stride 2 the per-plane path loses only where its rows leave over a
   * fifth of their vectors' lanes idle (7 outputs wide: 1.66-1.84x here;
   * 14 wide: 0.89-0.99x). */
  if (p->sh == 2 && 5 * p->OW >= 4 * CHANNELS * ((p->OW + CHANNELS - 1) / CHANNELS)) return false;
  return conv_depthwise_avx512_zero_padded(p) && p->OH > 0 && p->OW > 0 && p->H > 0 && p->W > 0 &&
         p->OH <= 1024 && p->OW <= 1024 && conv_depthwise_block_scratch(p) <= MOST_PADDED;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "kernels/lanes_avx512.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

/* r[k] lane i <- r[i] lane k. */
INLINE void transpose16(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  /* Per 128-bit lane L, r[4g + j] now holds column 4L + j of rows 4g..4g+3. */
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) {
    r[4 * g] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  /* A 4×4 transpose of 128-bit lanes among r[j], r[4 + j], r[8 + j], r[12 + j]. */
#pragma GCC unroll 4
  for (int j = 0; j < 4; j++) {
    const __m512 a = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x44),
                 b = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xee),
                 c = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x44),
                 d = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xee);
    t[j] = _mm512_shuffle_f32x4(a, c, 0x88);
    t[4 + j] = _mm512_shuffle_f32x4(a, c, 0xdd);
    t[8 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
    t[12 + j] = _mm512_shuffle_f32x4(b, d, 0xdd);
  }
#pragma GCC unroll 16
  for (int k = 0; k < 16; k++) r[k] = t[k];
}

INLINE void block(const conv_dw_plane *p, size_t x_stride, size_t y_stride, const float *bias,
                  float *padded, const int stride) {
  const int64_t W = p->W, OW = p->OW, in_size = p->H * W, out_size = p->OH * OW;
  const int64_t rows = padded_rows(p), width = padded_width(p);
  const size_t row_floats = (size_t)width * CHANNELS;
  __m512 w[9];
  {
    float lanes[9][CHANNELS];
    for (int i = 0; i < CHANNELS; i++)
      for (int k = 0; k < 9; k++) lanes[k][i] = p->w[i * 9 + k];
    for (int k = 0; k < 9; k++) w[k] = _mm512_loadu_ps(lanes[k]);
  }
  const __m512 b = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
  const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
  const strand__gemm_activation act = p->act;
  /* The padding's cells: zeros. */
  for (int64_t tr = 0; tr < rows; tr++) {
    float *row = padded + (size_t)tr * row_floats;
    const bool pad_row = tr < p->pt || tr >= p->pt + p->H;
    for (int64_t tc = 0; tc < width; tc++)
      if (pad_row || tc < p->pl || tc >= p->pl + W)
        _mm512_store_ps(row + (size_t)tc * CHANNELS, _mm512_setzero_ps());
  }
  /* The planes into the padded layout, 16 positions at a time. */
  int64_t ih = 0, iw = 0;
  for (int64_t pos0 = 0; pos0 < in_size; pos0 += CHANNELS) {
    const __mmask16 inside = lanes_between(0, in_size - pos0);
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < CHANNELS; i++)
      r[i] = _mm512_maskz_loadu_ps(inside, p->x + (size_t)i * x_stride + pos0);
    transpose16(r);
#pragma GCC unroll 16
    for (int k = 0; k < CHANNELS; k++) {
      const int64_t tr = ih + p->pt, tc = iw + p->pl;
      if (pos0 + k < in_size && tr < rows && tc < width)
        _mm512_store_ps(padded + (size_t)tr * row_floats + (size_t)tc * CHANNELS, r[k]);
      if (++iw == W) iw = 0, ih++;
    }
  }
  /* The outputs, 16 positions at a time, turned back into the planes. */
  int64_t oh = 0, ow = 0;
  for (int64_t pos0 = 0; pos0 < out_size; pos0 += CHANNELS) {
    const int64_t n = out_size - pos0 < CHANNELS ? out_size - pos0 : CHANNELS;
    __m512 o[16];
#pragma GCC unroll 16
    for (int k = 0; k < CHANNELS; k++) {
      if (k >= n) {
        o[k] = _mm512_setzero_ps();
        continue;
      }
      const float *x0 = padded + (size_t)(oh * stride) * row_floats + (size_t)(ow * stride) * CHANNELS,
                  *x1 = x0 + row_floats, *x2 = x1 + row_floats;
      __m512 part0 = _mm512_mul_ps(w[0], _mm512_load_ps(x0));
      part0 = _mm512_fmadd_ps(w[1], _mm512_load_ps(x0 + CHANNELS), part0);
      part0 = _mm512_fmadd_ps(w[2], _mm512_load_ps(x0 + 2 * CHANNELS), part0);
      __m512 part1 = _mm512_mul_ps(w[3], _mm512_load_ps(x1));
      part1 = _mm512_fmadd_ps(w[4], _mm512_load_ps(x1 + CHANNELS), part1);
      part1 = _mm512_fmadd_ps(w[5], _mm512_load_ps(x1 + 2 * CHANNELS), part1);
      __m512 part2 = _mm512_mul_ps(w[6], _mm512_load_ps(x2));
      part2 = _mm512_fmadd_ps(w[7], _mm512_load_ps(x2 + CHANNELS), part2);
      part2 = _mm512_fmadd_ps(w[8], _mm512_load_ps(x2 + 2 * CHANNELS), part2);
      const __m512 v = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(b, part0), part1), part2);
      o[k] = activate_avx512(v, act, lo, hi);
      if (++ow == OW) ow = 0, oh++;
    }
    transpose16(o);
    const __mmask16 keep = lanes_between(0, n);
#pragma GCC unroll 16
    for (int i = 0; i < CHANNELS; i++)
      _mm512_mask_storeu_ps(p->y + (size_t)i * y_stride + pos0, keep, o[i]);
  }
}

TARGET static void block_s1(const conv_dw_plane *p, size_t x_stride, size_t y_stride,
                            const float *bias, float *padded) {
  block(p, x_stride, y_stride, bias, padded, 1);
}

TARGET static void block_s2(const conv_dw_plane *p, size_t x_stride, size_t y_stride,
                            const float *bias, float *padded) {
  block(p, x_stride, y_stride, bias, padded, 2);
}

bool conv_depthwise_block_avx512(const conv_dw_plane *p, size_t x_stride, size_t y_stride,
                                 const float *bias, void *scratch) {
  if (!conv_depthwise_block_fits(p)) return false;
  if (p->sh == 1) block_s1(p, x_stride, y_stride, bias, scratch);
  else block_s2(p, x_stride, y_stride, bias, scratch);
  return true;
}

#else

bool conv_depthwise_block_avx512(const conv_dw_plane *p, size_t x_stride, size_t y_stride,
                                 const float *bias, void *scratch) {
  (void)p, (void)x_stride, (void)y_stride, (void)bias, (void)scratch;
  return false;
}

#endif
