/*
 * depthwise_bench.c — single-thread throughput of the AVX-512 depthwise
 * 3×3 planes on MobileNetV2's layer shapes.
 *
 *   depthwise_bench [seconds-per-sample]
 *
 * Each shape runs conv_depthwise_plane_avx512 over all its channels (bias,
 * Clip 0..6, as MobileNetV2 has them) with the input in cache after the
 * first pass, so the figures are the kernels' own, not the memory's.
 * Stride-2 planes, and unit-stride ones whose output rows fill most of
 * their vectors, go four rows at a time ("tall"); the others as one flat
 * run. Medians of several samples, in multiply-adds
 * per second; the best sample in parentheses. Prints a markdown table.
 * Links strand_static and uses internal symbols (src/ on the include path).
 */
#include "kernels/conv_depthwise.h"
#include "kernels/gemm.h"
#include "timing.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SAMPLES 9

static double seconds_per_sample = 0.2;


typedef struct shape {
  int h, channels, stride;
} shape;

typedef struct one_pass {
  conv_dw_plane *p;
  const float *x;
  float *y;
  size_t in, out;
  int channels;
} one_pass;

/* Every channel's plane once. */
static void pass(void *ctx) {
  const one_pass *r = ctx;
  for (int c = 0; c < r->channels; c++) {
    r->p->x = r->x + (size_t)c * r->in;
    r->p->y = r->y + (size_t)c * r->out;
    conv_depthwise_plane_avx512(r->p);
  }
}

/* G multiply-adds per second over `channels` planes of h × h, stride s,
 * padded by one: median and best of SAMPLES samples. */
static void measure(const shape *sh, double *middle, double *best) {
  const int h = sh->h, s = sh->stride, oh = (h + 2 - 3) / s + 1;
  const size_t in = (size_t)h * h, out = (size_t)oh * oh;
  float *x = aligned_alloc(64, (in * sh->channels * sizeof(float) + 63) / 64 * 64);
  float *y = aligned_alloc(64, (out * sh->channels * sizeof(float) + 63) / 64 * 64);
  if (!x || !y) abort();
  for (size_t i = 0; i < in * sh->channels; i++) x[i] = (float)(i % 13) * 0.1f - 0.6f;
  float w[9];
  for (int i = 0; i < 9; i++) w[i] = 0.1f * (float)i - 0.4f;
  conv_dw_plane p = {x, w, y, h, h, oh, oh, 3, 3, s, s, 1, 1, 1, 1, 0.5f,
                     STRAND__GEMM_ACT_CLIP, 0.0f, 6.0f};
  one_pass run = {&p, x, y, in, out, sh->channels};
  *middle = rate_of(pass, &run, sh->channels * (double)out * 9, seconds_per_sample, SAMPLES, best);
  free(x);
  free(y);
}

/* The path conv_depthwise_plane_avx512 takes: four rows at a time at
 * stride 2, and at stride 1 when the output rows fill 80% of their
 * vectors (its tall_fits); else the flat run. */
static const char *path_of(const shape *sh) {
  const int ow = (sh->h + 2 - 3) / sh->stride + 1, vectors = (ow + 15) / 16;
  return sh->stride == 2 || (ow >= 16 && 5 * ow >= 4 * 16 * vectors) ? "tall" : "flat";
}

int main(int argc, char **argv) {
  if (argc > 1) seconds_per_sample = atof(argv[1]);
  if (strand__cpu()->selected < STRAND__CPU_AVX512) {
    printf("depthwise_bench: this CPU (or STRAND_CPU) has no AVX-512; nothing to measure\n");
    return 0;
  }
  static const shape shapes[] = {{112, 32, 1}, {112, 96, 2}, {56, 144, 1}, {56, 144, 2},
                                 {28, 192, 1}, {28, 192, 2}, {14, 384, 1}, {14, 576, 1},
                                 {14, 576, 2}, {7, 960, 1}};
  printf("| plane | channels | stride | path | G multiply-adds/s |\n|---|---|---|---|---|\n");
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    double middle, best;
    measure(&shapes[i], &middle, &best);
    printf("| %d×%d | %d | %d | %s | %.1f (%.1f) |\n", shapes[i].h, shapes[i].h,
           shapes[i].channels, shapes[i].stride,
           path_of(&shapes[i]), middle, best);
  }
  return 0;
}
