/* latency.c — the latency histogram of latency.h. */
#include "latency.h"

#include <math.h>
#include <time.h>

static size_t bucket_of(uint64_t v) {
  if (v < LATENCY_SUB) return (size_t)v;
  int e = 63 - __builtin_clzll(v); /* >= 3: LATENCY_SUB is 8 */
  uint64_t sub = (v >> (e - 3)) & (LATENCY_SUB - 1);
  return (size_t)(e - 2) * LATENCY_SUB + (size_t)sub;
}

/* The middle of bucket `b`, in nanoseconds. */
static double bucket_middle(size_t b) {
  if (b < LATENCY_SUB) return (double)b;
  int e = (int)(b / LATENCY_SUB) + 2;
  double low = ldexp((double)(LATENCY_SUB + b % LATENCY_SUB), e - 3);
  return low + ldexp(1.0, e - 3) / 2;
}

void latency_add(latency_histogram *h, uint64_t ns) {
  h->counts[bucket_of(ns)]++;
  h->total++;
  h->sum_ns += ns;
  if (ns > h->max_ns) h->max_ns = ns;
}

void latency_merge(latency_histogram *into, const latency_histogram *from) {
  for (size_t b = 0; b < LATENCY_BUCKETS; b++) into->counts[b] += from->counts[b];
  into->total += from->total;
  into->sum_ns += from->sum_ns;
  if (from->max_ns > into->max_ns) into->max_ns = from->max_ns;
}

double latency_quantile_ns(const latency_histogram *h, double p) {
  if (h->total == 0) return 0;
  uint64_t rank = (uint64_t)ceil(p * (double)h->total), seen = 0;
  if (rank == 0) rank = 1;
  for (size_t b = 0; b < LATENCY_BUCKETS; b++) {
    seen += h->counts[b];
    if (seen >= rank) {
      double v = bucket_middle(b);
      return v > (double)h->max_ns ? (double)h->max_ns : v;
    }
  }
  return (double)h->max_ns;
}

double latency_mean_ns(const latency_histogram *h) {
  return h->total ? (double)h->sum_ns / (double)h->total : 0;
}

uint64_t latency_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
