/*
 * test_conv_pointwise.c — the direct 1×1 Conv (conv_pointwise.h) bit for
 * bit against a plain loop that follows its documented sum: per output,
 * bias, then one fmaf(w, x, sum) per input channel in order, then the
 * activation. Sizes on both sides of every vector and block boundary and
 * MobileNet's planes (7×7, 14×14: the few positions past the last vector
 * go across the channels), output channel counts that pick each panel
 * height with partial panels, batches of 1 to 3 images, 1 and 3 threads,
 * with and without bias, each activation; and each image of a batch must
 * come out with the same bits as when it runs alone. Large planes too,
 * where each panel passes over a run of blocks.
 *
 * Outputs are allocated at their exact size, with a sentinel on each side
 * that must survive (and ASan reports a write past them).
 */
#include "kernel_runner.h"
#include "test.h"

#include "kernels/conv_pointwise.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL 4321.0f

static kr_random rng = {11};

static float activate(float v, const kernel_activation *act) {
  if (act->kind == STRAND__GEMM_ACT_RELU) return v < 0 ? 0.0f : v;
  if (act->kind == STRAND__GEMM_ACT_CLIP) return v < act->lo ? act->lo : v > act->hi ? act->hi : v;
  return v;
}

/* Runs n images of m × c × size through the kernel on `threads` threads
 * and checks every output bit against the reference; then image by image
 * alone against the batch's bits. */
static void check(size_t m, size_t c, size_t size, size_t n, bool bias, int act_kind,
                  unsigned threads) {
  float *x = kr_floats(&rng, n * c * size), *w = kr_floats(&rng, m * c);
  float *b = bias ? kr_floats(&rng, m) : NULL;
  size_t out = n * m * size;
  float *y = malloc((out + 2) * sizeof *y), *alone = malloc((m * size + 2) * sizeof *alone);
  if (!y || !alone) abort();
  for (size_t i = 0; i < out + 2; i++) y[i] = SENTINEL;
  kernel_activation act = {(strand__gemm_activation)act_kind, -0.25f, 0.5f};
  struct kernel_block *blocks = NULL;
  kernel_prepare p = {.blocks = &blocks};
  conv_pointwise pw;
  CHECK_OK(conv_pointwise_prepare(&p, w, b, m, c, &pw));
  conv_pointwise_run(&pw, x, n, size, &act, y + 1, threads);
  CHECK(y[0] == SENTINEL && y[out + 1] == SENTINEL);
  int bad = 0;
  for (size_t img = 0; img < n; img++)
    for (size_t o = 0; o < m; o++)
      for (size_t j = 0; j < size; j++) {
        float sum = b ? b[o] : 0.0f;
        for (size_t k = 0; k < c; k++) sum = fmaf(w[o * c + k], x[(img * c + k) * size + j], sum);
        float want = activate(sum, &act), got = y[1 + (img * m + o) * size + j];
        if (memcmp(&want, &got, sizeof got) != 0 && bad++ < 3)
          printf("    m %zu c %zu size %zu n %zu threads %u act %d: image %zu channel %zu "
                 "position %zu is %.9g, want %.9g\n", m, c, size, n, threads, act_kind, img, o,
                 j, got, want);
      }
  CHECK(bad == 0);
  for (size_t img = 0; img < n && !bad; img++) {
    alone[0] = alone[m * size + 1] = SENTINEL;
    conv_pointwise_run(&pw, x + img * c * size, 1, size, &act, alone + 1, threads == 1 ? 3 : 1);
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

TEST(conv_pointwise_matches_fma_chain) {
  if (!conv_pointwise_usable()) {
    printf("    skipped: the direct 1x1 path needs AVX-512\n");
    return;
  }
  strand_threads_set_budget(4);
  /* Panel heights: 14 for most, 12 for 24 and 36, 8 for 8 and 16. */
  static const size_t ms[] = {1, 5, 8, 13, 14, 16, 24, 29, 36, 40};
  for (size_t size = 1; size <= 70 && !test_failed_now(); size++)
    check(ms[size % 10], 1 + size % 19, size, 1 + size % 3, size % 4 != 1, (int)(size % 3),
          size % 2 ? 1 : 3);
  static const size_t sizes[] = {49, 196, 97, 100, 112, 113, 127, 784};
  for (size_t i = 0; i < 8 && !test_failed_now(); i++)
    for (size_t t = 0; t < 10 && !test_failed_now(); t += 3)
      check(ms[t], 48 + 7 * i, sizes[i], 1 + (i + t) % 3, (i + t) % 3 != 0, (int)((i + t) % 3),
            (i + t) % 2 ? 1 : 3);
  strand_threads_set_budget(0);
}

/* Large planes, where a panel passes over a run of blocks before the next
 * panel (runs as long as the input channels allow, cut where a thread's
 * range or an image ends): 112×112 and 56×56 planes and one of 3000
 * positions, few and many input channels, on 1, 2 and 3 threads. */
TEST(conv_pointwise_runs_of_blocks_match_fma_chain) {
  if (!conv_pointwise_usable()) {
    printf("    skipped: the direct 1x1 path needs AVX-512\n");
    return;
  }
  strand_threads_set_budget(4);
  static const struct { size_t m, c, size, n; } shapes[] = {
      {24, 16, 12544, 1}, {16, 32, 12544, 2}, {29, 3, 3136, 3}, {14, 144, 3136, 1},
      {36, 24, 3000, 2},  {8, 1, 12544, 1},   {13, 40, 3001, 2}};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0] && !test_failed_now(); i++)
    for (unsigned threads = 1; threads <= 3 && !test_failed_now(); threads++)
      check(shapes[i].m, shapes[i].c, shapes[i].size, shapes[i].n, i % 2 == 0, (int)(i % 3),
            threads);
  strand_threads_set_budget(0);
}
