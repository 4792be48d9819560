/* object_cost — what an object costs at each leak-detection level: the time
 * to create and release a small tensor, per object, on one thread and on
 * several at once. Prints a table; repeat runs and take medians.
 *   bench_object_cost [objects-per-thread] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "strand.h"

static long per_thread = 200000;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *churn(void *arg) {
  (void)arg;
  int64_t shape[] = {16};
  for (long i = 0; i < per_thread; i++) {
    strand_tensor *t;
    if (strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &t) != STRAND_OK) abort();
    strand_tensor_release(t);
  }
  return NULL;
}

/* Nanoseconds per create+release, median of five runs. */
static double measure(int threads) {
  double runs[5];
  for (int r = 0; r < 5; r++) {
    pthread_t th[64];
    double t0 = now();
    for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, churn, NULL);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    runs[r] = (now() - t0) * 1e9 / (double)per_thread; /* per object, per thread */
  }
  for (int i = 0; i < 5; i++)
    for (int j = i + 1; j < 5; j++)
      if (runs[j] < runs[i]) {
        double x = runs[i];
        runs[i] = runs[j];
        runs[j] = x;
      }
  return runs[2];
}

int main(int argc, char **argv) {
  if (argc > 1) per_thread = atol(argv[1]);
  struct { strand_leak_level level; unsigned interval; const char *name; } levels[] = {
      {STRAND_LEAK_OFF, 0, "off"}, {STRAND_LEAK_COUNT, 0, "count"},
      {STRAND_LEAK_SAMPLE, 64, "sample:64"}, {STRAND_LEAK_ALL, 0, "all"}};
  printf("| leak level | ns per tensor create+release, 1 thread | same, 2 threads at once |\n");
  printf("|---|---|---|\n");
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
    strand_leak_set_level(levels[i].level, levels[i].interval);
    double one = measure(1), two = measure(2);
    printf("| %s | %.0f | %.0f |\n", levels[i].name, one, two);
  }
  strand_leak_set_level(STRAND_LEAK_OFF, 0);
  return 0;
}
