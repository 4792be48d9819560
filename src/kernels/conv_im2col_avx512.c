/*
 * conv_im2col_avx512.c — conv_im2col.h's AVX-512 version. B is written a
 * panel at a time: the panel's 32 columns are cut where they cross output
 * rows, and for each piece every row of B gets its columns, 16 at a time
 * (one masked load at stride 1; two and an even-lane permute at stride 2;
 * the columns a tap reads in the padding masked to zero) and one masked
 * store: tap by tap, each tap's masks worked out once and used for every
 * input channel's row. The stores so stay within the panel; written a row
 * of B at a time across all panels, the same bytes took four times as long
 * (every store a different cache line, far from the last).
 *
 * Built without global -m flags: the functions carry target attributes and
 * run only when strand__cpu() reports AVX-512.
 */
#include "kernels/conv_im2col.h"
#include "kernels/conv_depthwise.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "kernels/lanes_avx512.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { LANES = 16, PANEL = 32 };

bool conv_im2col_avx512_takes(const conv_im2col *j) {
  const kernel_geometry *g = j->geo;
  return j->nr == PANEL && g->in[0] == 1 && g->out[0] == 1 && g->kernel[0] == 1 &&
         (g->stride[2] == 1 || g->stride[2] == 2) && g->dilation[2] == 1 &&
         g->kernel[2] <= CONV_IM2COL_MAX_KW;
}

/* Columns [lane, lane + len) of panel `panel` for output row oh, columns
 * ow .. ow + len (len <= 32 - lane), every row of B but the bias row. For
 * each kernel tap and vector of columns the masks are worked out once:
 * the lanes whose tap reads inside the input row, and at stride 2 the
 * elements of the two loads an even-lane permute takes them from (odd
 * elements are never taken, and elements outside the row are never
 * read); then every input channel gets the same loads, each from its own
 * plane, and the same masked store into its own row of B. */
INLINE void piece(const conv_im2col *j, float *panel, size_t lane, int64_t oh, int64_t ow,
                  int64_t len, const int64_t *lo, const int64_t *hi, __m512i evens) {
  const kernel_geometry *g = j->geo;
  const int64_t KH = g->kernel[1], KW = g->kernel[2], H = g->in[1], W = g->in[2];
  const int64_t stride = g->stride[2];
  const size_t plane = (size_t)(H * W), row_step = (size_t)(KH * KW) * PANEL;
  for (int64_t kh = 0; kh < KH; kh++) {
    const int64_t ih = oh * g->stride[1] - g->pad_begin[1] + kh * g->dilation[1];
    const bool inside = ih >= 0 && ih < H;
    for (int64_t kw = 0; kw < KW; kw++) {
      float *dst0 = panel + lane + (size_t)(kh * KW + kw) * PANEL;
      const int64_t offset = kw - g->pad_begin[2];
      for (int64_t c = 0; c < len; c += LANES) {
        const int64_t n = len - c < LANES ? len - c : LANES, c0 = ow + c;
        /* Lanes [a, b) read inside the row. */
        const int64_t a = lo[kw] - c0, b = inside ? (hi[kw] - c0 < n ? hi[kw] - c0 : n) : a;
        const __mmask16 keep = lanes_between(0, n);
        float *dst = dst0 + c;
        const float *src = j->x + (inside ? ih : 0) * W + stride * c0 + offset;
        if (stride == 1) {
          const __mmask16 m = lanes_between(a, b);
          for (size_t ch = 0; ch < j->cg; ch++, dst += row_step, src += plane)
            _mm512_mask_storeu_ps(dst, keep, _mm512_maskz_loadu_ps(m, src));
        } else {
          /* Lane l is element 2l of the 32 from src: elements [2a, 2b - 1). */
          const __mmask16 low = lanes_between(2 * a, 2 * b - 1);
          const __mmask16 high = lanes_between(2 * a - LANES, 2 * b - 1 - LANES);
          for (size_t ch = 0; ch < j->cg; ch++, dst += row_step, src += plane)
            _mm512_mask_storeu_ps(dst, keep,
                                  _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(low, src), evens,
                                                         _mm512_maskz_loadu_ps(high, src + LANES)));
        }
      }
    }
  }
}

TARGET void conv_im2col_panels_avx512(void *ctx, size_t begin, size_t end) {
  const conv_im2col *j = ctx;
  const kernel_geometry *g = j->geo;
  const int64_t KW = g->kernel[2], W = g->in[2], OW = g->out[2];
  const size_t k = j->cg * j->taps, panel_floats = j->rows * PANEL;
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  int64_t lo[CONV_IM2COL_MAX_KW], hi[CONV_IM2COL_MAX_KW]; /* output columns each kw reads inside */
  for (int64_t kw = 0; kw < KW; kw++)
    conv_tap_range(OW, g->stride[2], kw - g->pad_begin[2], W, &lo[kw], &hi[kw]);
  for (size_t q = begin; q < end; q++) {
    float *panel = j->panels + q * panel_floats;
    const size_t p0 = q * PANEL, p1 = p0 + PANEL < j->positions ? p0 + PANEL : j->positions;
    const size_t used = p1 - p0;
    if (used < PANEL) /* the columns past the positions read as zeros */
      for (size_t r = 0; r < j->rows; r++)
        for (size_t c = used; c < PANEL; c += LANES)
          _mm512_mask_storeu_ps(panel + r * PANEL + c, lanes_between(0, (int64_t)(PANEL - c)),
                                _mm512_setzero_ps());
    if (j->rows > k) /* the bias row */
      for (size_t c = 0; c < used; c += LANES)
        _mm512_mask_storeu_ps(panel + k * PANEL + c, lanes_between(0, (int64_t)(used - c)),
                              _mm512_set1_ps(1.0f));
    for (size_t p = p0; p < p1;) {
      const int64_t oh = j->oh0 + (int64_t)(p / (size_t)OW), ow = (int64_t)(p % (size_t)OW);
      const int64_t len = OW - ow < (int64_t)(p1 - p) ? OW - ow : (int64_t)(p1 - p);
      piece(j, panel, p - p0, oh, ow, len, lo, hi, evens);
      p += (size_t)len;
    }
  }
}

#else

bool conv_im2col_avx512_takes(const conv_im2col *j) {
  (void)j;
  return false;
}

/* Never called: conv_im2col_avx512_takes is false. */
void conv_im2col_panels_avx512(void *ctx, size_t begin, size_t end) {
  (void)ctx, (void)begin, (void)end;
}

#endif
