/*
 * timing.h — the clock and the median the kernel microbenchmarks share.
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

#endif /* STRAND_BENCH_KERNELS_TIMING_H */
