/*
 * sgemm_bench.c — single-thread SGEMM throughput against this CPU's FMA peak.
 *
 *   sgemm_bench [seconds-per-sample]
 *
 * Measures the FMA peak (independent vfmadd chains on zmm and ymm
 * registers), then strand__gemm on the shapes strand meets most: square
 * 1024³, batch-1 and batch-32 MLP layers, transformer projections and a
 * convolution lowered to GEMM. GEMM figures are the median (and the best)
 * of several samples; the peak is the best sample, since sharing the core
 * can only lower one. Prints markdown tables. Links strand_static and uses
 * internal symbols (src/ on the include path).
 */
#include "kernels/gemm.h"
#include "fma_peak.h"
#include "timing.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>


#define SAMPLES 9

static double seconds_per_sample = 0.2;


typedef struct timing {
  double median, best; /* seconds per call */
} timing;

/* ---- GEMM ---- */

typedef struct shape {
  const char *name;
  size_t m, n, k;
  bool trans_b;
  size_t copies; /* of B, used in turn: enough that B comes from memory (0: one) */
} shape;

static float *random_matrix(size_t count, unsigned *seed) {
  float *p = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
  if (!p) abort();
  for (size_t i = 0; i < count; i++) {
    *seed = *seed * 1103515245u + 12345u;
    p[i] = (float)((*seed >> 9) & 0xffff) / 32768.0f - 1.0f;
  }
  return p;
}

/* Seconds per C = A·op(B) with `kernel` (median and best sample), B
 * packed beforehand when `packed` (packing is not timed: a session does it
 * once). With s->copies, each call takes the next copy of B, as a model's
 * layers each read their own weights. */
static timing time_gemm(const strand__gemm_kernel *kernel, const shape *s, bool packed) {
  enum { MAX_COPIES = 64 };
  unsigned seed = 7;
  size_t m = s->m, n = s->n, k = s->k, copies = s->copies ? s->copies : 1;
  if (copies > MAX_COPIES) abort();
  float *a = random_matrix(m * k, &seed), *b[MAX_COPIES];
  for (size_t q = 0; q < copies; q++) b[q] = random_matrix(k * n, &seed);
  float *c = random_matrix(m * n, &seed);
  size_t ldb = s->trans_b ? k : n;
  size_t scratch_bytes = strand__gemm_scratch_size(kernel, m, n, k, packed), packed_bytes = 0;
  void *scratch = malloc(scratch_bytes ? scratch_bytes : 1), *pb[MAX_COPIES] = {NULL};
  if (packed) {
    if (!strand__gemm_pack_b_size(kernel, k, n, &packed_bytes)) abort();
    for (size_t q = 0; q < copies; q++) {
      pb[q] = aligned_alloc(64, packed_bytes);
      strand__gemm_pack_b(kernel, s->trans_b, k, n, b[q], ldb, pb[q]);
    }
  }
  double samples[SAMPLES];
  long reps = 1;
  for (int i = 0; i < SAMPLES + 1; i++) {
    double t0 = now();
    for (long r = 0; r < reps; r++) {
      size_t q = (size_t)r % copies;
      if (packed)
        strand__gemm_packed(false, m, 1.0f, a, k, pb[q], 0.0f, c, n, NULL, NULL, scratch);
      else
        strand__gemm(kernel, false, s->trans_b, m, n, k, 1.0f, a, k, b[q], ldb, 0.0f, c, n,
                     NULL, NULL, scratch);
    }
    double dt = now() - t0;
    if (i == 0) { /* warm-up; sizes the repetitions */
      reps = (long)(seconds_per_sample / (dt > 1e-9 ? dt : 1e-9));
      if (reps < 1) reps = 1;
      continue;
    }
    samples[i - 1] = dt / (double)reps;
  }
  for (size_t q = 0; q < copies; q++) free(b[q]), free(pb[q]);
  free(a), free(c), free(scratch);
  timing t = {.median = median(samples, SAMPLES)};
  t.best = samples[0];
  return t;
}

int main(int argc, char **argv) {
  if (argc > 1) seconds_per_sample = atof(argv[1]);
  const strand__cpu_info *cpu = strand__cpu();
  printf("CPU: hardware %s, selected %s; L1d %zu KiB, L2 %zu KiB, L3 %zu KiB\n\n",
         strand__cpu_level_name(cpu->hardware), strand__cpu_level_name(cpu->selected),
         cpu->l1d_bytes / 1024, cpu->l2_bytes / 1024, cpu->l3_bytes / 1024);

  double peak[STRAND__CPU_LEVEL_COUNT] = {0};
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu->hardware >= STRAND__CPU_AVX512) peak[STRAND__CPU_AVX512] = fma_peak(true, seconds_per_sample);
  if (cpu->hardware >= STRAND__CPU_AVX2) peak[STRAND__CPU_AVX2] = fma_peak(false, seconds_per_sample);
#endif
  printf("| FMA peak, 1 thread (best of %d) | GFLOP/s |\n|---|---:|\n", SAMPLES);
  if (peak[STRAND__CPU_AVX512] > 0) printf("| AVX-512 (zmm) | %.1f |\n", peak[STRAND__CPU_AVX512]);
  if (peak[STRAND__CPU_AVX2] > 0) printf("| AVX2 (ymm) | %.1f |\n", peak[STRAND__CPU_AVX2]);
  printf("\n");

  static const shape shapes[] = {
      {"square", 1024, 1024, 1024, false, 0},
      {"square, B^T", 1024, 1024, 1024, true, 0},
      {"MLP batch 1, W^T", 1, 512, 784, true, 0},
      {"MLP batch 32, W^T", 32, 512, 784, true, 0},
      {"transformer", 128, 256, 256, false, 0},
      {"transformer", 128, 1024, 256, false, 0},
      {"conv as GEMM", 3136, 64, 576, false, 0},
      /* ResNet-18's last Winograd layers at batch 1: 16 tiles, 1 MiB of
       * weights per product, 64 MiB in turn (past L3) */
      {"16 rows, B from memory", 16, 512, 512, false, 64},
  };
  printf("GFLOP/s: median of %d samples of %.2f s (best sample in parentheses: the host\n"
         "is shared, the best shows the code, the median the moment). Packed: B packed once\n"
         "beforehand, as for weights. B GB/s: packed B read per second, what bounds batch 1.\n\n",
         SAMPLES, seconds_per_sample);
  printf("| kernel | shape | M×N×K | GFLOP/s | %% peak | packed B GFLOP/s | %% peak | B GB/s |\n");
  printf("|---|---|---|---:|---:|---:|---:|---:|\n");
  for (int level = cpu->hardware; level >= STRAND__CPU_SCALAR; level--) {
    const strand__gemm_kernel *kernel = strand__gemm_kernel_for((strand__cpu_level)level);
    if (!kernel) continue;
    double level_peak = peak[level];
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
      const shape *s = &shapes[i];
      if (level == STRAND__CPU_SCALAR && i > 0) break; /* one figure is enough */
      double flops = 2.0 * (double)s->m * (double)s->n * (double)s->k * 1e-9;
      timing raw = time_gemm(kernel, s, false), packed = time_gemm(kernel, s, true);
      double b_gb = (double)s->k * (double)s->n * sizeof(float) * 1e-9;
      printf("| %s | %s | %zu×%zu×%zu | %.1f (%.1f) | ", strand__gemm_kernel_name(kernel),
             s->name, s->m, s->n, s->k, flops / raw.median, flops / raw.best);
      if (level_peak > 0)
        printf("%.0f%% (%.0f%%) | ", 100 * flops / raw.median / level_peak,
               100 * flops / raw.best / level_peak);
      else
        printf("- | ");
      printf("%.1f (%.1f) | ", flops / packed.median, flops / packed.best);
      if (level_peak > 0)
        printf("%.0f%% (%.0f%%) | ", 100 * flops / packed.median / level_peak,
               100 * flops / packed.best / level_peak);
      else
        printf("- | ");
      printf("%.1f |\n", b_gb / packed.median);
      fflush(stdout);
    }
  }
  return 0;
}
