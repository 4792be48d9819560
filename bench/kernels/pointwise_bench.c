/*
 * pointwise_bench.c — single-thread throughput of the AVX-512 1×1 Conv
 * (conv_pointwise.h) on MobileNetV2's 1×1 layer shapes, as a fraction of
 * this CPU's FMA peak.
 *
 *   pointwise_bench [seconds-per-sample]
 *
 * Each shape runs conv_pointwise_run on one image (batch 1, one thread),
 * with Clip 0..6 on the expansions and none on the projections, as
 * MobileNetV2 has them. The input is in cache after the first pass when
 * it fits, so small planes show the kernel and the large ones also the
 * memory. `count` is how many layers of the shape the model has; the last
 * column is the shape's share of the model's 1×1 time at these rates.
 * Medians of several samples, best in parentheses. Prints a markdown
 * table. Links strand_static and uses internal symbols.
 */
#include "kernels/conv_pointwise.h"
#include "kernels/gemm.h"
#include "fma_peak.h"
#include "timing.h"

#include <stdio.h>
#include <stdlib.h>

#define SAMPLES 7

static double seconds_per_sample = 0.2;

typedef struct shape {
  int h, in, out, count;
} shape;

typedef struct one_pass {
  const conv_pointwise *pw;
  const float *x;
  size_t size;
  const kernel_activation *act;
  float *y;
} one_pass;

static void pass(void *ctx) {
  const one_pass *r = ctx;
  conv_pointwise_run(r->pw, r->x, 1, r->size, r->act, r->y, 1);
}

static double measure(const shape *sh, double *best) {
  const size_t size = (size_t)sh->h * sh->h, c = (size_t)sh->in, m = (size_t)sh->out;
  float *x = aligned_alloc(64, (size * c * sizeof(float) + 63) / 64 * 64);
  float *y = aligned_alloc(64, (size * m * sizeof(float) + 63) / 64 * 64);
  float *w = malloc(m * c * sizeof(float)), *b = malloc(m * sizeof(float));
  if (!x || !y || !w || !b) abort();
  for (size_t i = 0; i < size * c; i++) x[i] = (float)(i % 13) * 0.1f - 0.6f;
  for (size_t i = 0; i < m * c; i++) w[i] = (float)(i % 7) * 0.05f - 0.15f;
  for (size_t i = 0; i < m; i++) b[i] = 0.01f * (float)(i % 5);
  struct kernel_block *blocks = NULL;
  kernel_prepare p = {.blocks = &blocks};
  conv_pointwise pw;
  if (conv_pointwise_prepare(&p, w, b, m, c, &pw)) abort();
  kernel_activation act = {sh->out > sh->in ? STRAND__GEMM_ACT_CLIP : STRAND__GEMM_ACT_NONE, 0.0f,
                           6.0f};
  one_pass run = {&pw, x, size, &act, y};
  double middle = rate_of(pass, &run, (double)(size * c * m) * 2, seconds_per_sample, SAMPLES, best);
  kernel_free_blocks(&blocks);
  free(x), free(y), free(w), free(b);
  return middle;
}

int main(int argc, char **argv) {
  if (argc > 1) seconds_per_sample = atof(argv[1]);
  if (!conv_pointwise_usable()) {
    printf("pointwise_bench: this CPU (or STRAND_CPU) has no AVX-512; nothing to measure\n");
    return 0;
  }
  const double peak = fma_peak(true, seconds_per_sample);
  static const shape shapes[] = {
      {112, 32, 16, 1}, {112, 16, 96, 1},  {56, 96, 24, 1},   {56, 24, 144, 2},
      {56, 144, 24, 1}, {28, 144, 32, 1},  {28, 32, 192, 3},  {28, 192, 32, 2},
      {14, 192, 64, 1}, {14, 64, 384, 4},  {14, 384, 64, 3},  {14, 384, 96, 1},
      {14, 96, 576, 3}, {14, 576, 96, 2},  {7, 576, 160, 1},  {7, 160, 960, 3},
      {7, 960, 160, 2}, {7, 960, 320, 1},  {7, 320, 1280, 1}};
  enum { N = sizeof shapes / sizeof shapes[0] };
  double middle[N], best[N], seconds[N], total = 0;
  for (int i = 0; i < N; i++) {
    middle[i] = measure(&shapes[i], &best[i]);
    const shape *sh = &shapes[i];
    seconds[i] = sh->count * 2.0 * sh->h * sh->h * sh->in * sh->out / (middle[i] * 1e9);
    total += seconds[i];
  }
  printf("FMA peak %.1f GFLOP/s\n\n", peak);
  printf("| plane | in → out | layers | GFLOP/s | %% peak | share of 1×1 time |\n"
         "|---|---|---:|---:|---:|---:|\n");
  for (int i = 0; i < N; i++)
    printf("| %d×%d | %d → %d | %d | %.1f (%.1f) | %.0f%% | %.1f%% |\n", shapes[i].h, shapes[i].h,
           shapes[i].in, shapes[i].out, shapes[i].count, middle[i], best[i],
           100 * middle[i] / peak, 100 * seconds[i] / total);
  return 0;
}
