/*
 * bench_run.c — the C half of the JNI overhead benchmark: the cost of one
 * strand_session_run on a model with a batch-1 float input, made the way the
 * Java binding makes it (a new input tensor filled from host memory, a new
 * output tensor whose data is copied out to host memory, both released), on
 * a session with one intra-op thread, so that the difference to
 * dev.strand.bench.RunOverhead is what JNI and the Java wrappers add.
 *
 *   strand_jni_bench_c MODEL [ITERATIONS] [ROUNDS]
 *
 * Prints one line per round and a summary line:
 *   c: model=... iterations=N best_ns_per_run=X median_ns_per_run=Y median_cpu_ns_per_run=Z
 * (wall-clock time, and CPU time of the whole process, per run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strand.h"

static double clock_ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* CPU time of every thread of the process: unlike the wall clock, not
 * inflated by time spent waiting for a core on a shared machine. */
static double cpu_ns(void) { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }

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
  strand_value_info out_info;
  if (strand_model_output(model, 0, &out_info)) return fail("reading output 0");
  size_t out_elements = 1;
  for (size_t i = 0; i < out_info.rank; i++)
    out_elements *= (size_t)(out_info.dims[i] < 0 ? 1 : out_info.dims[i]);
  float *host_out = malloc(out_elements * sizeof(float));
  if (!host_out) return 1;
  strand_session_options options;
  memset(&options, 0, sizeof options);
  options.struct_size = sizeof options;
  options.intra_op_threads = 1;
  strand_session *session;
  strand_status st = strand_session_create(model, &options, &session);
  strand_model_release(model);
  if (st) return fail("creating the session");

  double per_run[100], cpu_per_run[100];
  double checksum = 0; /* keeps the copies out of the optimizer's reach */
  for (int r = -1; r < rounds; r++) { /* round -1 warms up, untimed */
    double start = now_ns(), cpu_start = cpu_ns();
    for (long i = 0; i < iterations; i++) {
      strand_tensor *x, *y = NULL;
      void *data;
      if (strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, in.rank, &x)) return fail("input");
      strand_tensor_data(x, &data);
      memcpy(data, host, elements * sizeof(float));
      if (strand_session_run(session, &name, (const strand_tensor *const *)&x, 1, NULL, &y, 1))
        return fail("running");
      size_t out_bytes;
      void *out_data;
      if (strand_tensor_byte_size(y, &out_bytes) || out_bytes != out_elements * sizeof(float) ||
          strand_tensor_data(y, &out_data))
        return fail("reading the output");
      memcpy(host_out, out_data, out_bytes);
      checksum += host_out[0];
      strand_tensor_release(x);
      strand_tensor_release(y);
    }
    if (r < 0) continue;
    per_run[r] = (now_ns() - start) / (double)iterations;
    cpu_per_run[r] = (cpu_ns() - cpu_start) / (double)iterations;
    printf("c: round %d: %.1f ns/run, %.1f cpu ns/run\n", r + 1, per_run[r], cpu_per_run[r]);
  }
  qsort(per_run, (size_t)rounds, sizeof per_run[0], compare_doubles);
  qsort(cpu_per_run, (size_t)rounds, sizeof cpu_per_run[0], compare_doubles);
  printf("c: model=%s iterations=%ld best_ns_per_run=%.1f median_ns_per_run=%.1f "
         "median_cpu_ns_per_run=%.1f%s\n",
         argv[1], iterations, per_run[0], per_run[rounds / 2], cpu_per_run[rounds / 2],
         checksum == 42.0 ? " " : "");
  strand_session_release(session);
  free(host);
  free(host_out);
  return 0;
}
