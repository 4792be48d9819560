/* latency.h — a fixed-size latency histogram for the commands that run a
 * model many times (bench, stress). Recording never allocates, so it can
 * sit on the hot path of every caller thread. */
#ifndef STRAND_TOOL_LATENCY_H
#define STRAND_TOOL_LATENCY_H

#include <stdint.h>

#define LATENCY_SUB 8 /* sub-buckets per power of two: about 12% resolution */
#define LATENCY_BUCKETS (64 * LATENCY_SUB)

/* Nanoseconds, log-linear: values below LATENCY_SUB exactly, then
 * LATENCY_SUB buckets per power of two. Zero-initialise to start empty.
 * One writer at a time; merge per-thread histograms after joining. */
typedef struct latency_histogram {
  uint64_t counts[LATENCY_BUCKETS];
  uint64_t total;
  uint64_t max_ns;
  uint64_t sum_ns;
} latency_histogram;

void latency_add(latency_histogram *h, uint64_t ns);
void latency_merge(latency_histogram *into, const latency_histogram *from);

/* The value at quantile p (0 < p <= 1), in nanoseconds: the middle of the
 * bucket holding the ceil(p * total)-th smallest value, never above the
 * largest value recorded. 0 for an empty histogram. */
double latency_quantile_ns(const latency_histogram *h, double p);

/* The mean in nanoseconds; 0 for an empty histogram. */
double latency_mean_ns(const latency_histogram *h);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t latency_now_ns(void);

#endif
