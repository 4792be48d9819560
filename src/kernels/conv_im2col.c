/*
 * conv_im2col.c — the portable im2col of conv_im2col.h, for any geometry,
 * a row of B at a time, and the choice of the AVX-512 one where it
 * applies.
 */
#include "kernels/conv_im2col.h"
#include "kernels/conv_depthwise.h"
#include "kernels/vector_math.h"

#include <string.h>

/* Columns [i, i + n) of B's row `r`: src[j·stride] for j < n, or `fill`
 * everywhere when src is NULL. A run is cut where it crosses panels. */
static void put_run(const conv_im2col *j, size_t r, size_t i, const float *src, int64_t stride,
                    size_t n, float fill) {
  const size_t nr = j->nr, panel = j->rows * nr;
  while (n) {
    size_t lane = i % nr, take = nr - lane < n ? nr - lane : n;
    float *dst = j->panels + i / nr * panel + r * nr + lane;
    if (!src) {
      for (size_t t = 0; t < take; t++) dst[t] = fill;
    } else if (stride == 1) {
      memcpy(dst, src, take * sizeof(float));
      src += take;
    } else if (stride == 2) {
      strand__vec_gather_even(dst, src, take);
      src += 2 * take;
    } else {
      for (size_t t = 0; t < take; t++) dst[t] = src[(int64_t)t * stride];
      src += (int64_t)take * stride;
    }
    i += take;
    n -= take;
  }
}

/* kernel_range_fn: rows [begin, end) of B, every column. */
static void rows_portable(void *ctx, size_t begin, size_t end) {
  const conv_im2col *j = ctx;
  const kernel_geometry *g = j->geo;
  const int64_t KH = g->kernel[1], KW = g->kernel[2];
  const int64_t D = g->in[0], H = g->in[1], W = g->in[2];
  const int64_t OD = g->out[0], OW = g->out[2];
  const size_t taps = j->taps, k = j->cg * taps;
  const size_t padded = (j->positions + j->nr - 1) / j->nr * j->nr;
  for (size_t r = begin; r < end; r++) {
    put_run(j, r, j->positions, NULL, 1, padded - j->positions, 0.0f);
    if (r == k) { /* the bias row */
      put_run(j, r, 0, NULL, 1, j->positions, 1.0f);
      continue;
    }
    size_t ch = r / taps, tap = r % taps, i = 0;
    int64_t kd = (int64_t)(tap / (size_t)(KH * KW)), kh = (int64_t)(tap / (size_t)KW % (size_t)KH),
            kw = (int64_t)(tap % (size_t)KW);
    const float *x = j->x + ch * (size_t)(D * H * W);
    int64_t offset_w = kw * g->dilation[2] - g->pad_begin[2], lo, hi;
    conv_tap_range(OW, g->stride[2], offset_w, W, &lo, &hi);
    for (int64_t od = 0; od < OD; od++) {
      int64_t id = od * g->stride[0] - g->pad_begin[0] + kd * g->dilation[0];
      for (int64_t oh = j->oh0; oh < j->oh1; oh++, i += (size_t)OW) {
        int64_t ih = oh * g->stride[1] - g->pad_begin[1] + kh * g->dilation[1];
        if (id < 0 || id >= D || ih < 0 || ih >= H || lo == hi) {
          put_run(j, r, i, NULL, 1, (size_t)OW, 0.0f);
          continue;
        }
        const float *row = x + (id * H + ih) * W;
        put_run(j, r, i, NULL, 1, (size_t)lo, 0.0f);
        put_run(j, r, i + (size_t)lo, row + lo * g->stride[2] + offset_w, g->stride[2],
                (size_t)(hi - lo), 0.0f);
        put_run(j, r, i + (size_t)hi, NULL, 1, (size_t)(OW - hi), 0.0f);
      }
    }
  }
}

void conv_im2col_run(const conv_im2col *j, unsigned threads) {
  if (strand__cpu()->selected >= STRAND__CPU_AVX512 && conv_im2col_avx512_takes(j)) {
    size_t panels = (j->positions + j->nr - 1) / j->nr;
    kernel_parallel(threads, panels, kernel_grain(j->rows * j->nr), conv_im2col_panels_avx512,
                    (void *)j);
    return;
  }
  kernel_parallel(threads, j->rows, kernel_grain(j->positions), rows_portable, (void *)j);
}
