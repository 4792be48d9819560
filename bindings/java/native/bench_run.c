/*
 * bench_run.c — the C half of the JNI overhead benchmark: the cost of one
 * strand_session_run on a model with a batch-1 float input, made the way the
 * Java binding makes it (a new input tensor filled from host memory, a new
 * output tensor, both released), so that the difference to
 * dev.strand.bench.RunOverhead is what JNI and the Java wrappers add.
 *
 *   strand_jni_bench_c MODEL [ITERATIONS] [ROUNDS]
 *
 * Prints one line per round and a summary line:
 *   c: model=... iterations=N best_ns_per_run=X median_ns_per_run=Y
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strand.h"

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int fail(const char *what) {
  fprintf(stderr, "strand_jni_bench_c: %s: %s\n", what, strand_errmsg());
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL [ITERATIONS] [ROUNDS]\n", argv[0]);
    return 2;
  }
  long iterations = argc > 2 ? atol(argv[2]) : 200000;
  int rounds = argc > 3 ? atoi(argv[3]) : 7;
  if (iterations < 1 || rounds < 1 || rounds > 100) return 2;
  strand_model *model;
  if (strand_model_load(argv[1], &model)) return fail("loading the model");
  strand_value_info in;
  if (strand_model_input(model, 0, &in)) return fail("reading input 0");
  /* Batch 1: every unknown dimension becomes 1. */
  int64_t shape[STRAND_MAX_RANK];
  size_t elements = 1;
  for (size_t i = 0; i < in.rank; i++) {
    shape[i] = in.dims[i] < 0 ? 1 : in.dims[i];
    elements *= (size_t)shape[i];
  }
  float *host = malloc(elements * sizeof(float));
  if (!host) return 1;
  for (size_t i = 0; i < elements; i++) host[i] = (float)(i % 7) * 0.25f - 0.5f;
  const char *name = in.name;
  strand_session *session;
  strand_status st = strand_session_create(model, NULL, &session);
  strand_model_release(model);
  if (st) return fail("creating the session");

  double per_run[100];
  for (int r = 0; r < rounds; r++) {
    double start = now_ns();
    for (long i = 0; i < iterations; i++) {
      strand_tensor *x, *y = NULL;
      void *data;
      if (strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, in.rank, &x)) return fail("input");
      strand_tensor_data(x, &data);
      memcpy(data, host, elements * sizeof(float));
      if (strand_session_run(session, &name, (const strand_tensor *const *)&x, 1, NULL, &y, 1))
        return fail("running");
      strand_tensor_release(x);
      strand_tensor_release(y);
    }
    per_run[r] = (now_ns() - start) / (double)iterations;
    printf("c: round %d: %.1f ns/run\n", r + 1, per_run[r]);
  }
  qsort(per_run, (size_t)rounds, sizeof per_run[0], compare_doubles);
  printf("c: model=%s iterations=%ld best_ns_per_run=%.1f median_ns_per_run=%.1f\n", argv[1],
         iterations, per_run[0], per_run[rounds / 2]);
  strand_session_release(session);
  free(host);
  return 0;
}
