/*
 * timing.h — the clock, the median and the sampling loop the kernel
 * microbenchmarks share.
 */
#ifndef STRAND_BENCH_KERNELS_TIMING_H
#define STRAND_BENCH_KERNELS_TIMING_H

#include <stdlib.h>
#include <time.h>

static inline double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int compare_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

/* Sorts v; returns its median. */
static inline double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, compare_double);
  return v[n / 2];
}

#define RATE_SAMPLES_MAX 16

/* Runs pass(ctx) over and over for `seconds` a sample, `samples` samples
 * (at most RATE_SAMPLES_MAX), each a rate of `work` units per pass in G
 * per second. Returns the median rate and sets *best to the highest. */
static inline double rate_of(void (*pass)(void *ctx), void *ctx, double work, double seconds,
                             int samples, double *best) {
  double rates[RATE_SAMPLES_MAX];
  if (samples > RATE_SAMPLES_MAX) samples = RATE_SAMPLES_MAX;
  for (int k = 0; k < samples; k++) {
    long passes = 0;
    double t0 = now(), t;
    do {
      pass(ctx);
      passes++;
    } while ((t = now() - t0) < seconds);
    rates[k] = (double)passes * work / t * 1e-9;
  }
  double middle = median(rates, samples);
  *best = rates[samples - 1];
  return middle;
}

#endif /* STRAND_BENCH_KERNELS_TIMING_H */
