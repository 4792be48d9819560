/*
 * conv_depthwise.c — a depthwise plane in portable C: for each output row,
 * every tap adds its shifted input row over the range of outputs where it
 * is inside the image (no bounds checks inside the loop, contiguous at
 * stride 1); 3×3 taps without dilation, over rows and columns fully
 * inside, keep nine products per output in a register.
 */
#include "kernels/conv_depthwise.h"

void conv_tap_range(int64_t n_out, int64_t stride, int64_t offset, int64_t n_in, int64_t *lo,
                    int64_t *hi) {
  int64_t a = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t b = n_in - 1 - offset < 0 ? 0 : (n_in - 1 - offset) / stride + 1;
  if (a > n_out) a = n_out;
  if (b > n_out) b = n_out;
  if (b < a) b = a;
  *lo = a;
  *hi = b;
}

/* Adds every tap's contribution to output row `out` (already holding the
 * bias) over outputs [a, b). */
static void row_taps(const conv_dw_plane *p, int64_t oh, float *out, int64_t a, int64_t b) {
  const int64_t sw = p->sw;
  for (int64_t kh = 0; kh < p->KH; kh++) {
    int64_t ih = oh * p->sh - p->pt + kh * p->dh;
    if (ih < 0 || ih >= p->H) continue;
    const float *row = p->x + ih * p->W;
    for (int64_t kw = 0; kw < p->KW; kw++) {
      float wv = p->w[kh * p->KW + kw];
      int64_t offset = kw * p->dw - p->pl, lo, hi;
      conv_tap_range(p->OW, sw, offset, p->W, &lo, &hi);
      if (lo < a) lo = a;
      if (hi > b) hi = b;
      if (lo >= hi) continue;
      const float *in = row + (lo * sw + offset); /* the tap of output lo */
      float *to = out + lo;
      int64_t count = hi - lo;
      if (sw == 1)
        for (int64_t i = 0; i < count; i++) to[i] += wv * in[i];
      else if (sw == 2)
        for (int64_t i = 0; i < count; i++) to[i] += wv * in[2 * i];
      else
        for (int64_t i = 0; i < count; i++) to[i] += wv * in[i * sw];
    }
  }
}

/* 3×3 taps without dilation over outputs [a, b) of a row whose three input
 * rows r0..r2 and all three columns of every output are inside the image. */
static void row_3x3(const float *r0, const float *r1, const float *r2, const float *w, float bias,
                    int64_t stride, int64_t offset, float *out, int64_t a, int64_t b) {
  const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6],
              w7 = w[7], w8 = w[8];
  r0 += a * stride + offset;
  r1 += a * stride + offset;
  r2 += a * stride + offset;
  out += a;
  int64_t count = b - a;
  if (stride == 1) {
    for (int64_t i = 0; i < count; i++)
      out[i] = bias + w0 * r0[i] + w1 * r0[i + 1] + w2 * r0[i + 2] + w3 * r1[i] + w4 * r1[i + 1] +
               w5 * r1[i + 2] + w6 * r2[i] + w7 * r2[i + 1] + w8 * r2[i + 2];
  } else {
    for (int64_t i = 0; i < count; i++) {
      int64_t j = i * stride;
      out[i] = bias + w0 * r0[j] + w1 * r0[j + 1] + w2 * r0[j + 2] + w3 * r1[j] + w4 * r1[j + 1] +
               w5 * r1[j + 2] + w6 * r2[j] + w7 * r2[j + 1] + w8 * r2[j + 2];
    }
  }
}

void conv_depthwise_plane_scalar(const conv_dw_plane *p) {
  const int64_t OW = p->OW, sw = p->sw;
  const float b = p->bias;
  const strand__gemm_epilogue act = {NULL, p->act, p->lo, p->hi};
  bool three = p->KH == 3 && p->KW == 3 && p->dh == 1 && p->dw == 1;
  /* The outputs whose three columns are all inside: [c0, c1). */
  int64_t c0 = 0, c1 = 0, lo, hi;
  if (three) {
    conv_tap_range(OW, sw, -p->pl, p->W, &c0, &hi);
    conv_tap_range(OW, sw, 2 - p->pl, p->W, &lo, &c1);
    if (lo > c0) c0 = lo;
    if (hi < c1) c1 = hi;
    if (c1 < c0) c1 = c0;
  }
  for (int64_t oh = 0; oh < p->OH; oh++) {
    float *out = p->y + oh * OW;
    int64_t ih = oh * p->sh - p->pt;
    if (three && ih >= 0 && ih + 2 < p->H && c0 < c1) {
      for (int64_t ow = 0; ow < c0; ow++) out[ow] = b;
      for (int64_t ow = c1; ow < OW; ow++) out[ow] = b;
      row_taps(p, oh, out, 0, c0);
      row_taps(p, oh, out, c1, OW);
      const float *r0 = p->x + ih * p->W;
      row_3x3(r0, r0 + p->W, r0 + 2 * p->W, p->w, b, sw, -p->pl, out, c0, c1);
    } else {
      for (int64_t ow = 0; ow < OW; ow++) out[ow] = b;
      row_taps(p, oh, out, 0, OW);
    }
    if (p->act != STRAND__GEMM_ACT_NONE)
      for (int64_t ow = 0; ow < OW; ow++) out[ow] = strand__gemm_activate(out[ow], &act);
  }
}
