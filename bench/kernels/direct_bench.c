/*
 * direct_bench.c — single-thread throughput of the AVX-512 direct Conv
 * over few input channels (conv_direct.h) on network stems, as a fraction
 * of this CPU's FMA peak.
 *
 *   direct_bench [seconds-per-sample]
 *
 * Each shape runs conv_direct_run on one image (batch 1, one thread) with
 * the activation the network has after it. Medians of several samples,
 * best in parentheses. Prints a markdown table. Links strand_static and
 * uses internal symbols.
 */
#include "kernels/conv_direct.h"
#include "kernels/gemm.h"
#include "fma_peak.h"
#include "timing.h"

#include <stdio.h>
#include <stdlib.h>

#define SAMPLES 7

static double seconds_per_sample = 0.2;

typedef struct shape {
  const char *name;
  int h, c, m, k, stride, pad;
  strand__gemm_activation act;
} shape;

typedef struct one_pass {
  const conv_direct *d;
  const conv_direct_shape *s;
  const float *x;
  const kernel_activation *act;
  float *y;
} one_pass;

static void pass(void *ctx) {
  const one_pass *r = ctx;
  conv_direct_run(r->d, r->s, r->x, 1, r->act, r->y, 1);
}

static double measure(const shape *sh, double *best) {
  const int64_t H = sh->h, OH = (H + 2 * sh->pad - sh->k) / sh->stride + 1;
  const size_t in = (size_t)(H * H) * (size_t)sh->c, out = (size_t)(OH * OH) * (size_t)sh->m;
  const size_t wn = (size_t)sh->m * (size_t)sh->c * (size_t)(sh->k * sh->k);
  float *x = aligned_alloc(64, (in * sizeof(float) + 63) / 64 * 64);
  float *y = aligned_alloc(64, (out * sizeof(float) + 63) / 64 * 64);
  float *w = malloc(wn * sizeof(float)), *b = malloc((size_t)sh->m * sizeof(float));
  if (!x || !y || !w || !b) abort();
  for (size_t i = 0; i < in; i++) x[i] = (float)(i % 13) * 0.1f - 0.6f;
  for (size_t i = 0; i < wn; i++) w[i] = (float)(i % 7) * 0.05f - 0.15f;
  for (int i = 0; i < sh->m; i++) b[i] = 0.01f * (float)(i % 5);
  struct kernel_block *blocks = NULL;
  kernel_prepare p = {.blocks = &blocks};
  conv_direct d;
  if (conv_direct_prepare(&p, w, b, (size_t)sh->m, (size_t)sh->c, (size_t)sh->k, (size_t)sh->k, &d))
    abort();
  conv_direct_shape s = {H, H, OH, OH, sh->stride, sh->stride, 1, sh->pad, sh->pad};
  kernel_activation act = {sh->act, 0.0f, 6.0f};
  one_pass run = {&d, &s, x, &act, y};
  double flop = (double)(out * (size_t)sh->c * (size_t)(sh->k * sh->k)) * 2;
  double middle = rate_of(pass, &run, flop, seconds_per_sample, SAMPLES, best);
  kernel_free_blocks(&blocks);
  free(x), free(y), free(w), free(b);
  return middle;
}

int main(int argc, char **argv) {
  if (argc > 1) seconds_per_sample = atof(argv[1]);
  if (!conv_direct_usable()) {
    printf("direct_bench: this CPU (or STRAND_CPU) has no AVX-512; nothing to measure\n");
    return 0;
  }
  const double peak = fma_peak(true, seconds_per_sample);
  static const shape shapes[] = {
      {"MobileNetV2 stem", 224, 3, 32, 3, 2, 1, STRAND__GEMM_ACT_CLIP},
      {"3×3, stride 1", 112, 3, 32, 3, 1, 1, STRAND__GEMM_ACT_RELU},
  };
  enum { N = sizeof shapes / sizeof shapes[0] };
  printf("FMA peak %.1f GFLOP/s\n\n", peak);
  printf("| shape | input | c → m | kernel, stride | GFLOP/s | %% peak |\n"
         "|---|---|---|---|---:|---:|\n");
  for (int i = 0; i < N; i++) {
    double best, middle = measure(&shapes[i], &best);
    const shape *sh = &shapes[i];
    printf("| %s | %d×%d | %d → %d | %d×%d, %d | %.1f (%.1f) | %.0f%% |\n", sh->name, sh->h, sh->h,
           sh->c, sh->m, sh->k, sh->k, sh->stride, middle, best, 100 * middle / peak);
  }
  return 0;
}
