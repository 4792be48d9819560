/*
 * fma_peak.h — this CPU's single-thread FMA peak, shared by the kernel
 * microbenchmarks that report a fraction of it.
 */
#ifndef STRAND_BENCH_KERNELS_FMA_PEAK_H
#define STRAND_BENCH_KERNELS_FMA_PEAK_H

#include "timing.h"

#include <stdbool.h>

enum { PEAK_SAMPLES = 9 };

#if defined(__x86_64__) && defined(__GNUC__)
/* Independent FMA chains written in assembly, so that no compiler keeps the
 * accumulators in memory: 12 chains cover a 4-cycle latency at two FMAs per
 * cycle (one more than any current core issues). The registers are zeroed
 * first: leftover denormals would take slow paths. */
#define FMA12(w)                                                                           \
  "vfmadd231ps %%" w "14, %%" w "15, %%" w "0\n\t"                                        \
  "vfmadd231ps %%" w "14, %%" w "15, %%" w "1\n\t"                                        \
  "vfmadd231ps %%" w "14, %%" w "15, %%" w "2\n\t"                                        \
  "vfmadd231ps %%" w "14, %%" w "15, %%" w "3\n\t"                                        \
  "vfmadd231ps %%" w "14, %%" w "15, %%" w "4\n\t"                                        \
  "vfmadd231ps %%" w "14, %%" w "15, %%" w "5\n\t"                                        \
  "vfmadd231ps %%" w "14, %%" w "15, %%" w "6\n\t"                                        \
  "vfmadd231ps %%" w "14, %%" w "15, %%" w "7\n\t"                                        \
  "vfmadd231ps %%" w "14, %%" w "15, %%" w "8\n\t"                                        \
  "vfmadd231ps %%" w "14, %%" w "15, %%" w "9\n\t"                                        \
  "vfmadd231ps %%" w "14, %%" w "15, %%" w "10\n\t"                                       \
  "vfmadd231ps %%" w "14, %%" w "15, %%" w "11\n\t"
#define CLOBBERS                                                                           \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",  \
      "xmm11", "xmm14", "xmm15", "cc"

__attribute__((target("avx512f"), noinline)) static void fma_loop_zmm(long iterations) {
  __asm__ volatile("vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
                   ".irp r, 1,2,3,4,5,6,7,8,9,10,11,14,15\n\t"
                   "vmovaps %%zmm0, %%zmm\\r\n\t"
                   ".endr\n\t"
                   "1:\n\t" FMA12("zmm") "dec %0\n\tjnz 1b"
                   : "+r"(iterations)
                   :
                   : CLOBBERS);
}

__attribute__((target("avx2,fma"), noinline)) static void fma_loop_ymm(long iterations) {
  __asm__ volatile("vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
                   ".irp r, 1,2,3,4,5,6,7,8,9,10,11,14,15\n\t"
                   "vmovaps %%ymm0, %%ymm\\r\n\t"
                   ".endr\n\t"
                   "1:\n\t" FMA12("ymm") "dec %0\n\tjnz 1b"
                   : "+r"(iterations)
                   :
                   : CLOBBERS);
}

/* Best GFLOP/s of the loop over PEAK_SAMPLES samples of about
 * seconds_per_sample each (sharing the core only ever lowers a sample):
 * 12 FMAs per iteration, 2 flops per lane. */
static double fma_peak(bool zmm, double seconds_per_sample) {
  long iterations = 1 << 20;
  double samples[PEAK_SAMPLES];
  for (int s = 0; s < PEAK_SAMPLES + 1; s++) {
    double t0 = now();
    if (zmm)
      fma_loop_zmm(iterations);
    else
      fma_loop_ymm(iterations);
    double dt = now() - t0;
    if (s == 0) { /* warm-up; sizes the samples */
      iterations = (long)((double)iterations * seconds_per_sample / dt) + 1;
      continue;
    }
    samples[s - 1] = 12.0 * (zmm ? 16 : 8) * 2 * (double)iterations / dt * 1e-9;
  }
  median(samples, PEAK_SAMPLES);
  return samples[PEAK_SAMPLES - 1];
}
#endif

#endif /* STRAND_BENCH_KERNELS_FMA_PEAK_H */
