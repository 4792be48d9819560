/*
 * test_conv_direct.c — the direct Conv over few input channels
 * (conv_direct.h) bit for bit against a plain loop that follows its
 * documented sum: per output, bias, then for each input channel, kernel
 * row and column in order, one fmaf(w, x, sum), x being 0 for a column in
 * the padding and the tap left out for a row in the padding; then the
 * activation. Geometry on both sides of every vector and 48-column block
 * (widths 1 to 100 and 224), 1 to 4 input channels, kernels 1×1 to 3×3,
 * column strides 1 and 2, row strides 1 to 3, row dilation 2, pads up to
 * past the kernel, output channel counts with partial panels of 8, batches
 * of 1 to 3 images on 1 and 3 threads, each activation; and each image of
 * a batch must come out with the same bits as when it runs alone.
 */
#include "kernel_runner.h"
#include "test.h"

#include "kernels/conv_direct.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL 4321.0f

static kr_random rng = {5};

static int64_t random_int(int64_t lo, int64_t hi) { return kr_int(&rng, (int)lo, (int)hi); }

static float activate(float v, const kernel_activation *act) {
  if (act->kind == STRAND__GEMM_ACT_RELU) return v < 0 ? 0.0f : v;
  if (act->kind == STRAND__GEMM_ACT_CLIP) return v < act->lo ? act->lo : v > act->hi ? act->hi : v;
  return v;
}

static void check(size_t m, size_t c, int64_t K, const conv_direct_shape *s, size_t n, bool bias,
                  int act_kind, unsigned threads) {
  size_t in = (size_t)(s->H * s->W), size = (size_t)(s->OH * s->OW), out = n * m * size;
  float *x = kr_floats(&rng, n * c * in), *w = kr_floats(&rng, m * c * (size_t)(K * K));
  float *b = bias ? kr_floats(&rng, m) : NULL;
  float *y = malloc((out + 2) * sizeof *y), *alone = malloc((m * size + 2) * sizeof *alone);
  if (!y || !alone) abort();
  for (size_t i = 0; i < out + 2; i++) y[i] = SENTINEL;
  kernel_activation act = {(strand__gemm_activation)act_kind, -0.25f, 0.5f};
  struct kernel_block *blocks = NULL;
  kernel_prepare p = {.blocks = &blocks};
  conv_direct d;
  CHECK_OK(conv_direct_prepare(&p, w, b, m, c, (size_t)K, (size_t)K, &d));
  conv_direct_run(&d, s, x, n, &act, y + 1, threads);
  CHECK(y[0] == SENTINEL && y[out + 1] == SENTINEL);
  int bad = 0;
  for (size_t img = 0; img < n; img++)
    for (size_t o = 0; o < m; o++)
      for (int64_t oh = 0; oh < s->OH; oh++)
        for (int64_t ow = 0; ow < s->OW; ow++) {
          float sum = b ? b[o] : 0.0f;
          for (size_t ch = 0; ch < c; ch++)
            for (int64_t kh = 0; kh < K; kh++) {
              int64_t ih = oh * s->sh - s->pt + kh * s->dh;
              if (ih < 0 || ih >= s->H) continue;
              for (int64_t kw = 0; kw < K; kw++) {
                int64_t iw = ow * s->sw - s->pl + kw;
                float xv = iw < 0 || iw >= s->W ? 0.0f : x[(img * c + ch) * in + (size_t)(ih * s->W + iw)];
                sum = fmaf(w[((o * c + ch) * (size_t)K + (size_t)kh) * (size_t)K + (size_t)kw], xv, sum);
              }
            }
          float want = activate(sum, &act), got = y[1 + (img * m + o) * size + (size_t)(oh * s->OW + ow)];
          if (memcmp(&want, &got, sizeof got) != 0 && bad++ < 3)
            printf("    m %zu c %zu K %lld H %lld W %lld s %lld,%lld dh %lld pads %lld,%lld n %zu: "
                   "image %zu channel %zu (%lld, %lld) is %.9g, want %.9g\n", m, c, (long long)K,
                   (long long)s->H, (long long)s->W, (long long)s->sh, (long long)s->sw,
                   (long long)s->dh, (long long)s->pt, (long long)s->pl, n, img, o, (long long)oh,
                   (long long)ow, got, want);
        }
  CHECK(bad == 0);
  for (size_t img = 0; img < n && !bad; img++) {
    alone[0] = alone[m * size + 1] = SENTINEL;
    conv_direct_run(&d, s, x + img * c * in, 1, &act, alone + 1, threads == 1 ? 3 : 1);
    CHECK(alone[0] == SENTINEL && alone[m * size + 1] == SENTINEL);
    CHECK(memcmp(alone + 1, y + 1 + img * m * size, m * size * sizeof(float)) == 0);
  }
  kernel_free_blocks(&blocks);
  free(x);
  free(w);
  free(b);
  free(y);
  free(alone);
}

/* A geometry with the given sizes; false when the output would be empty. */
static bool shape(conv_direct_shape *s, int64_t H, int64_t W, int64_t K, int64_t sh, int64_t sw,
                  int64_t dh, int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
  int64_t span_h = H + pt + pb - ((K - 1) * dh + 1), span_w = W + pl + pr - K;
  if (span_h < 0 || span_w < 0) return false;
  conv_direct_shape t = {H, W, span_h / sh + 1, span_w / sw + 1, sh, sw, dh, pt, pl};
  *s = t;
  return true;
}

TEST(conv_direct_matches_fma_chain) {
  if (!conv_direct_usable()) {
    printf("    skipped: the direct path needs AVX-512\n");
    return;
  }
  strand_threads_set_budget(4);
  conv_direct_shape s;
  /* A stem: 3 channels, 3×3, stride 2, pad 1, at every width to 100. */
  for (int64_t W = 1; W <= 100 && !test_failed_now(); W++)
    if (shape(&s, 2 + W % 5, W, 3, 2, 2, 1, 1, 1, 1, 1))
      check(1 + (size_t)W % 20, 3, 3, &s, 1 + (size_t)W % 3, W % 4 != 1, (int)(W % 3),
            W % 2 ? 1 : 3);
  /* Random geometry. */
  for (int i = 0; i < 300 && !test_failed_now(); i++) {
    int64_t K = random_int(1, CONV_DIRECT_MAX_KERNEL), sh = random_int(1, 3), sw = random_int(1, 2), dh = random_int(1, 2);
    int64_t H = random_int(1, 9), W = random_int(1, 70);
    int64_t pt = random_int(0, K), pb = random_int(0, K), pl = random_int(0, K), pr = random_int(0, K);
    if (!shape(&s, H, W, K, sh, sw, dh, pt, pb, pl, pr)) continue;
    check((size_t)random_int(1, 20), (size_t)random_int(1, CONV_DIRECT_MAX_CHANNELS), K, &s,
          (size_t)random_int(1, 3), i % 4 != 1, i % 3, i % 2 ? 1 : 3);
  }
  /* MobileNetV2's stem, two images. */
  if (shape(&s, 224, 224, 3, 2, 2, 1, 1, 1, 1, 1)) check(32, 3, 3, &s, 2, true, 2, 3);
  strand_threads_set_budget(0);
}
