/*
 * test_conv_depthwise.c — every depthwise plane variant (portable, AVX2,
 * AVX-512; those the CPU has) against a double-precision reference, over
 * widths on both sides of every vector and block boundary (1..70, 112),
 * column strides 1 and 2 (the SIMD ones) and 3 (portable only), kernels
 * 1..5, dilations, pads wider than the kernel, and each activation; 3×3
 * planes of every height 1..10 on wide rows at stride 1, 1..19 at any
 * width at stride 2.
 *
 * Planes are allocated at their exact size so that ASan reports a write
 * past one; the float slots around the output hold a sentinel that must
 * survive. Tolerance: 1e-5 * (|bias| + sum of |w*x|) per output. Also
 * MaxPool's AVX-512 plane, bit for bit against pool.c's rule.
 */
#include "test.h"

#include "kernels/conv_depthwise.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL 4321.0f

static uint32_t rng = 7;

static float random_float(void) {
  rng = rng * 1664525u + 1013904223u;
  return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static int random_int(int lo, int hi) {
  rng = rng * 1664525u + 1013904223u;
  return lo + (int)((rng >> 8) % (uint32_t)(hi - lo + 1));
}

typedef bool variant_fn(const conv_dw_plane *p);

static bool run_scalar(const conv_dw_plane *p) {
  conv_depthwise_plane_scalar(p);
  return true;
}

/* Checks `variant` on one geometry; false when it declined. */
static bool check_plane(variant_fn *variant, const char *name, int64_t H, int64_t W, int64_t K,
                        int64_t s, int64_t d, int64_t pad, strand__gemm_activation act) {
  int64_t eff = (K - 1) * d + 1;
  int64_t OH = (H + 2 * pad - eff) / s + 1, OW = (W + 2 * pad - eff) / s + 1;
  if (OH < 1 || OW < 1) return true;
  float *x = malloc((size_t)(H * W) * sizeof *x), *w = malloc((size_t)(K * K) * sizeof *w);
  float *y = malloc((size_t)(OH * OW + 2) * sizeof *y);
  if (!x || !w || !y) abort();
  for (int64_t i = 0; i < H * W; i++) x[i] = random_float();
  for (int64_t i = 0; i < K * K; i++) w[i] = random_float();
  for (int64_t i = 0; i < OH * OW + 2; i++) y[i] = SENTINEL;
  float bias = random_float();
  conv_dw_plane p = {x, w, y + 1, H, W, OH, OW, K, K, s, s, d, d, pad, pad, bias, act, -0.25f, 0.5f};
  bool ran = variant(&p);
  if (ran) {
    int bad = 0;
    CHECK(y[0] == SENTINEL && y[OH * OW + 1] == SENTINEL);
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        double sum = bias, mag = fabs(bias);
        for (int64_t kh = 0; kh < K; kh++)
          for (int64_t kw = 0; kw < K; kw++) {
            int64_t ih = oh * s - pad + kh * d, iw = ow * s - pad + kw * d;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            sum += (double)w[kh * K + kw] * x[ih * W + iw];
            mag += fabs((double)w[kh * K + kw] * x[ih * W + iw]);
          }
        if (act == STRAND__GEMM_ACT_RELU) sum = sum < 0 ? 0 : sum;
        if (act == STRAND__GEMM_ACT_CLIP) sum = sum < -0.25 ? -0.25 : sum > 0.5 ? 0.5 : sum;
        double got = y[1 + oh * OW + ow];
        if (!(fabs(got - sum) <= 1e-5 * (mag + 1e-3))) {
          if (bad++ < 3)
            printf("    %s: H %lld W %lld K %lld s %lld d %lld pad %lld act %d: (%lld, %lld) is "
                   "%.7g, want %.7g\n", name, (long long)H, (long long)W, (long long)K,
                   (long long)s, (long long)d, (long long)pad, (int)act, (long long)oh,
                   (long long)ow, got, sum);
        }
      }
    CHECK(bad == 0);
  }
  free(x);
  free(w);
  free(y);
  return ran;
}

static void sweep(variant_fn *variant, const char *name, bool simd) {
  static const strand__gemm_activation acts[3] = {STRAND__GEMM_ACT_NONE, STRAND__GEMM_ACT_RELU,
                                                   STRAND__GEMM_ACT_CLIP};
  /* MobileNet's 3×3 pad 1 at every width up to 70 and 112, both strides. */
  for (int64_t W = 1; W <= 113 && !test_failed_now(); W += W < 70 ? 1 : 42)
    for (int64_t s = 1; s <= 2; s++)
      CHECK(check_plane(variant, name, 3 + W % 5, W, 3, s, 1, 1, acts[W % 3]));
  /* 3×3 at stride 2, and at stride 1 on rows that fill most of their
   * vectors (AVX-512 takes them four output rows at a time): every
   * remainder of output rows by 4, pads 0..2 (at 2 the first and last
   * output rows read a row that is all padding), planes shorter than the
   * kernel, rows of 1 to 56 outputs. */
  static const int64_t tall[2][7] = {{16, 28, 30, 31, 40, 56, 58}, {3, 8, 13, 28, 33, 57, 112}};
  for (int64_t s = 1; s <= 2; s++)
    for (size_t i = 0; i < 7 && !test_failed_now(); i++)
      for (int64_t pad = 0; pad <= 2; pad++)
        for (int64_t H = 1; H <= 10 * s - (s - 1); H++)
          CHECK(check_plane(variant, name, H, tall[s - 1][i], 3, s, 1, pad, acts[(H + pad) % 3]));
  /* Random geometry: kernels 1..5, dilations 1..2, pads 0..3, strides 1..3. */
  for (int i = 0; i < 300 && !test_failed_now(); i++) {
    int64_t K = random_int(1, 5), d = random_int(1, 2), pad = random_int(0, 3);
    int64_t s = random_int(1, 3), H = random_int(1, 12), W = random_int(1, 75);
    bool ran = check_plane(variant, name, H, W, K, s, d, pad, acts[i % 3]);
    if (simd) CHECK(ran == (s <= 2) || (H + 2 * pad - (K - 1) * d - 1) < 0 ||
                    (W + 2 * pad - (K - 1) * d - 1) < 0);
    else CHECK(ran);
  }
}

TEST(depthwise_plane_scalar_matches_reference) { sweep(run_scalar, "scalar", false); }

TEST(depthwise_plane_avx2_matches_reference) {
  if (strand__cpu()->hardware < STRAND__CPU_AVX2) {
    printf("    skipped: no AVX2 on this CPU\n");
    return;
  }
  sweep(conv_depthwise_plane_avx2, "avx2", true);
}

TEST(depthwise_plane_avx512_matches_reference) {
  if (strand__cpu()->hardware < STRAND__CPU_AVX512) {
    printf("    skipped: no AVX-512 on this CPU\n");
    return;
  }
  sweep(conv_depthwise_plane_avx512, "avx512", true);
}

/* MaxPool's AVX-512 plane against pool.c's rule, bit for bit: NaN never
 * wins, -inf does, a window with no number (all NaN, or wholly in the
 * padding that ceil_mode can reach) gives -FLT_MAX. */
TEST(max_pool_plane_avx512_matches_rule) {
  if (strand__cpu()->hardware < STRAND__CPU_AVX512) {
    printf("    skipped: no AVX-512 on this CPU\n");
    return;
  }
  /* The first 400 planes random; then 3×3 stride-2 planes wide enough
   * for the unmasked path (ResNet's stem pool), some nearly all NaN so
   * that whole windows have no number, and with ±0 ties. */
  for (int i = 0; i < 700 && !test_failed_now(); i++) {
    bool wide = i >= 400;
    int64_t K = wide ? 3 : random_int(1, 4), s = wide ? 2 : random_int(1, 3);
    int64_t pad = random_int(0, K - 1);
    int64_t H = random_int(1, 9), W = wide ? random_int(33, 120) : random_int(1, 70);
    int64_t extra = random_int(0, 1); /* ceil_mode */
    if (H + 2 * pad < K || W + 2 * pad < K) continue;
    int64_t OH = (H + 2 * pad - K) / s + 1 + extra, OW = (W + 2 * pad - K) / s + 1 + extra;
    float *x = malloc((size_t)(H * W) * sizeof *x), *y = malloc((size_t)(OH * OW + 2) * sizeof *y);
    if (!x || !y) abort();
    int nan_in_20 = wide && i % 4 == 0 ? 19 : 1;
    for (int64_t k = 0; k < H * W; k++) {
      int kind = random_int(0, 19);
      x[k] = kind < nan_in_20 ? NAN : kind == 19 ? -INFINITY : kind == 18 ? 0.0f
           : kind == 17 ? -0.0f : random_float();
    }
    for (int64_t k = 0; k < OH * OW + 2; k++) y[k] = SENTINEL;
    conv_dw_plane p = {x, NULL, y + 1, H, W, OH, OW, K, K, s, s, 1, 1, pad, pad, 0.0f,
                       STRAND__GEMM_ACT_NONE, 0.0f, 0.0f};
    bool ran = pool_max_plane_avx512(&p);
    CHECK(ran == (s <= 2));
    if (ran) {
      CHECK(y[0] == SENTINEL && y[OH * OW + 1] == SENTINEL);
      int bad = 0;
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          float best = -INFINITY;
          bool found = false;
          for (int64_t kh = 0; kh < K; kh++)
            for (int64_t kw = 0; kw < K; kw++) {
              int64_t ih = oh * s - pad + kh, iw = ow * s - pad + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              if (x[ih * W + iw] >= best) {
                best = x[ih * W + iw];
                found = true;
              }
            }
          float want = found ? best : -FLT_MAX, got = y[1 + oh * OW + ow];
          if (memcmp(&want, &got, sizeof got) != 0 && bad++ < 3)
            printf("    H %lld W %lld K %lld s %lld pad %lld: (%lld, %lld) is %g, want %g\n",
                   (long long)H, (long long)W, (long long)K, (long long)s, (long long)pad,
                   (long long)oh, (long long)ow, got, want);
        }
      CHECK(bad == 0);
    }
    free(x);
    free(y);
  }
}

/* x with, one value in 8, a special one: NaN, ±inf, ±0, a subnormal or
 * a large number. */
static float special_or_random(void) {
  static const float specials[7] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-40f, 3e30f};
  int kind = random_int(0, 55);
  return kind < 7 ? specials[kind] : random_float();
}

static bool same_bits_or_both_nan(float a, float b) {
  return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

/* The 16-channel block path against the per-plane AVX-512 path, bit for
 * bit, plane by plane: strides 1 and 2, pads of 1 or 0..2 on each side,
 * planes of 1..30 rows and columns (positions on both sides of every 16),
 * with and without bias, each activation, planes spaced more than their
 * size apart, special values in x and w. Geometries the block path does
 * not take must be declined with nothing written. */
TEST(depthwise_blocks_avx512_give_each_plane_its_bits) {
  if (strand__cpu()->hardware < STRAND__CPU_AVX512) {
    printf("    skipped: no AVX-512 on this CPU\n");
    return;
  }
  static const strand__gemm_activation acts[3] = {STRAND__GEMM_ACT_NONE, STRAND__GEMM_ACT_RELU,
                                                   STRAND__GEMM_ACT_CLIP};
  int taken = 0, declined = 0;
  for (int i = 0; i < 600 && !test_failed_now(); i++) {
    const int64_t s = random_int(1, 2), K = i % 10 == 9 ? random_int(1, 5) : 3;
    /* Every other case padded by one on every side, as MobileNet's are. */
    const bool ones = i % 2 == 0;
    const int64_t d = i % 13 == 12 ? 2 : 1, pt = ones ? 1 : random_int(0, 2);
    const int64_t pl = ones ? 1 : random_int(0, 2), pb = ones ? 1 : random_int(0, 2);
    const int64_t pr = ones ? 1 : random_int(0, 2);
    const int64_t H = random_int(1, 30), W = random_int(1, 30), eff = (K - 1) * d + 1;
    if (H + pt + pb < eff || W + pl + pr < eff) continue;
    const int64_t OH = (H + pt + pb - eff) / s + 1, OW = (W + pl + pr - eff) / s + 1;
    const size_t x_stride = (size_t)(H * W + random_int(0, 5));
    const size_t y_stride = (size_t)(OH * OW + random_int(0, 5));
    const size_t y_count = 15 * y_stride + (size_t)(OH * OW);
    float *x = malloc((15 * x_stride + (size_t)(H * W)) * sizeof *x);
    float *w = malloc((size_t)(16 * K * K) * sizeof *w), *bias = malloc(16 * sizeof *bias);
    float *y = malloc((y_count + 2) * sizeof *y), *want = malloc((size_t)(OH * OW) * sizeof *want);
    if (!x || !w || !bias || !y || !want) abort();
    for (size_t k = 0; k < 15 * x_stride + (size_t)(H * W); k++) x[k] = special_or_random();
    for (int64_t k = 0; k < 16 * K * K; k++) w[k] = i % 5 == 0 ? special_or_random() : random_float();
    for (int k = 0; k < 16; k++) bias[k] = random_float();
    for (size_t k = 0; k < y_count + 2; k++) y[k] = SENTINEL;
    const bool with_bias = i % 4 != 0;
    conv_dw_plane p = {x, w, y + 1, H, W, OH, OW, K, K, s, s, d, d, pt, pl, 0.0f, acts[i % 3],
                       -0.25f, 0.5f};
    const size_t bytes = conv_depthwise_block_scratch(&p);
    void *scratch = aligned_alloc(64, bytes ? (bytes + 63) / 64 * 64 : 64);
    if (!scratch) abort();
    memset(scratch, 0xff, bytes); /* NaNs: scratch comes with no zeros in it */
    const bool fits = conv_depthwise_block_fits(&p);
    if (K != 3 || d != 1 || (s == 2 && 5 * OW >= 4 * 16 * ((OW + 15) / 16))) CHECK(!fits);
    if (fits) CHECK(conv_depthwise_avx512_zero_padded(&p));
    const bool ran = conv_depthwise_block_avx512(&p, x_stride, y_stride, with_bias ? bias : NULL,
                                                 scratch);
    CHECK(ran == fits);
    CHECK(y[0] == SENTINEL && y[y_count + 1] == SENTINEL);
    int bad = 0;
    for (int c = 0; c < 16 && ran; c++) {
      conv_dw_plane one = p;
      one.x = x + (size_t)c * x_stride;
      one.w = w + c * K * K;
      one.y = want;
      one.bias = with_bias ? bias[c] : 0.0f;
      REQUIRE(conv_depthwise_plane_avx512(&one));
      const float *got = y + 1 + (size_t)c * y_stride;
      for (int64_t k = 0; k < OH * OW; k++)
        if (!same_bits_or_both_nan(got[k], want[k]) && bad++ < 3)
          printf("    H %lld W %lld s %lld pads %lld,%lld,%lld,%lld: channel %d output %lld is "
                 "%g, the plane path gives %g\n", (long long)H, (long long)W, (long long)s,
                 (long long)pt, (long long)pl, (long long)pb, (long long)pr, c, (long long)k,
                 got[k], want[k]);
      /* The gap after each plane is not written. */
      for (size_t k = (size_t)(OH * OW); c < 15 && k < y_stride; k++)
        if (got[k] != SENTINEL && bad++ < 3) printf("    channel %d's gap was written\n", c);
    }
    if (!ran)
      for (size_t k = 0; k < y_count + 2; k++)
        if (y[k] != SENTINEL && bad++ < 1) printf("    a declined call wrote its output\n");
    CHECK(bad == 0);
    taken += ran;
    declined += !ran;
    free(x);
    free(w);
    free(bias);
    free(y);
    free(want);
    free(scratch);
  }
  /* Both kinds were seen. */
  printf("    %d calls taken, %d declined\n", taken, declined);
  CHECK(taken > 250 && declined > 100);
  /* Too big a padded layout is declined: a 112×112 plane. */
  conv_dw_plane big = {NULL, NULL, NULL, 112, 112, 112, 112, 3, 3, 1, 1, 1, 1, 1, 1, 0.0f,
                       STRAND__GEMM_ACT_NONE, 0.0f, 0.0f};
  CHECK(!conv_depthwise_block_fits(&big));
}
