/* Every kernel case of tests/data/kernels (small models with ONNX Runtime's
 * outputs, written by tests/data/make_kernel_cases.py) run through a
 * session: the planning run, a planned run, and a single-threaded session,
 * each compared with the expected outputs (floats within the case's
 * tolerance, everything else exactly).
 *
 *   kernels_test_cases              every case
 *   STRAND_KERNEL_CASE=conv_3x3_pad kernels_test_cases   one case */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "test.h"

#define MAX_IO 8

typedef struct loaded {
  strand_session *session;
  size_t n_inputs, n_outputs;
  char input_names[MAX_IO][128];
  const char *names[MAX_IO];
  strand_tensor *inputs[MAX_IO];
  strand_tensor *expected[MAX_IO];
} loaded;

static void unload(loaded *l) {
  for (size_t i = 0; i < MAX_IO; i++) {
    strand_tensor_release(l->inputs[i]);
    strand_tensor_release(l->expected[i]);
  }
  strand_session_release(l->session);
  memset(l, 0, sizeof *l);
}

static int file_exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f) fclose(f);
  return f != NULL;
}

static double element(const void *data, strand_dtype dtype, size_t i) {
  switch (dtype) {
  case STRAND_DTYPE_FLOAT32: return ((const float *)data)[i];
  case STRAND_DTYPE_FLOAT64: return ((const double *)data)[i];
  default: return 0;
  }
}

/* Compares one output; returns 1 when it matches. */
static int matches(const char *name, size_t k, const strand_tensor *got, const strand_tensor *want,
                   double rtol, double atol) {
  strand_dtype dg, dw;
  const int64_t *sg, *sw;
  size_t rg, rw, bytes_g, bytes_w, n;
  strand_tensor_dtype(got, &dg);
  strand_tensor_dtype(want, &dw);
  strand_tensor_shape(got, &sg, &rg);
  strand_tensor_shape(want, &sw, &rw);
  if (dg != dw || rg != rw) {
    fprintf(stderr, "    %s output %zu: %s rank %zu, expected %s rank %zu\n", name, k,
            strand_dtype_name(dg), rg, strand_dtype_name(dw), rw);
    return 0;
  }
  for (size_t i = 0; i < rg; i++)
    if (sg[i] != sw[i]) {
      fprintf(stderr, "    %s output %zu: dimension %zu is %lld, expected %lld\n", name, k, i,
              (long long)sg[i], (long long)sw[i]);
      return 0;
    }
  void *a, *b;
  strand_tensor_data(got, &a);
  strand_tensor_data(want, &b);
  strand_tensor_byte_size(got, &bytes_g);
  strand_tensor_byte_size(want, &bytes_w);
  strand_tensor_element_count(want, &n);
  if (dw == STRAND_DTYPE_FLOAT32 || dw == STRAND_DTYPE_FLOAT64) {
    for (size_t i = 0; i < n; i++) {
      double x = element(a, dw, i), y = element(b, dw, i);
      if (isnan(x) && isnan(y)) continue;
      if (x == y) continue;
      if (!(fabs(x - y) <= atol + rtol * fabs(y))) {
        fprintf(stderr, "    %s output %zu: element %zu is %.9g, expected %.9g\n", name, k, i, x, y);
        return 0;
      }
    }
    return 1;
  }
  if (bytes_g != bytes_w || (bytes_w && memcmp(a, b, bytes_w) != 0)) {
    fprintf(stderr, "    %s output %zu: the %s data differ\n", name, k, strand_dtype_name(dw));
    return 0;
  }
  return 1;
}

static int load_case(const char *name, unsigned threads, loaded *l) {
  char dir[1024], path[1200];
  snprintf(dir, sizeof dir, "%s/%s", test_source_path("tests/data/kernels"), name);
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  strand_model *model = NULL;
  if (strand_model_load(path, &model)) {
    test_fail(__FILE__, __LINE__, "%s: load: %s", name, strand_errmsg());
    return 0;
  }
  strand_session_options options = {.struct_size = sizeof options, .intra_op_threads = threads};
  strand_status st = strand_session_create(model, &options, &l->session);
  strand_model_output_count(model, &l->n_outputs);
  strand_model_release(model);
  if (st) {
    test_fail(__FILE__, __LINE__, "%s: create: %s", name, strand_errmsg());
    return 0;
  }
  for (size_t k = 0; k < MAX_IO; k++) {
    snprintf(path, sizeof path, "%s/test_data_set_0/input_%zu.pb", dir, k);
    if (!file_exists(path)) break;
    if (strand_tensor_read_pb(path, &l->inputs[k], l->input_names[k], sizeof l->input_names[k])) {
      test_fail(__FILE__, __LINE__, "%s: %s: %s", name, path, strand_errmsg());
      return 0;
    }
    l->names[k] = l->input_names[k];
    l->n_inputs = k + 1;
  }
  for (size_t k = 0; k < l->n_outputs && k < MAX_IO; k++) {
    snprintf(path, sizeof path, "%s/test_data_set_0/output_%zu.pb", dir, k);
    if (strand_tensor_read_pb(path, &l->expected[k], NULL, 0)) {
      test_fail(__FILE__, __LINE__, "%s: %s: %s", name, path, strand_errmsg());
      return 0;
    }
  }
  return 1;
}

static void run_case(const char *name, double rtol, double atol) {
  for (unsigned threads = 0; threads < 2; threads++) {
    loaded l;
    memset(&l, 0, sizeof l);
    if (!load_case(name, threads, &l)) {
      unload(&l);
      return;
    }
    for (int round = 0; round < (threads ? 1 : 2); round++) {
      strand_tensor *outs[MAX_IO] = {NULL};
      strand_status st = strand_session_run(l.session, l.names, (const strand_tensor *const *)l.inputs,
                                            l.n_inputs, NULL, outs, l.n_outputs);
      if (st) {
        test_fail(__FILE__, __LINE__, "%s: run %d: %s: %s", name, round, strand_status_name(st),
                  strand_errmsg());
      } else {
        for (size_t k = 0; k < l.n_outputs; k++)
          if (!matches(name, k, outs[k], l.expected[k], rtol, atol))
            test_fail(__FILE__, __LINE__, "%s: output %zu differs (run %d, %s)", name, k, round,
                      threads ? "one thread" : "pool");
      }
      for (size_t k = 0; k < MAX_IO; k++) strand_tensor_release(outs[k]);
    }
    unload(&l);
  }
}

TEST(every_kernel_case_matches_onnxruntime) {
  FILE *list = fopen(test_source_path("tests/data/kernels/cases.txt"), "r");
  REQUIRE(list);
  const char *only = getenv("STRAND_KERNEL_CASE");
  char line[512];
  int cases = 0;
  while (fgets(line, sizeof line, list)) {
    char name[256];
    double rtol, atol;
    if (line[0] == '#' || sscanf(line, "%255s %lf %lf", name, &rtol, &atol) != 3) continue;
    if (only && strcmp(only, name) != 0) continue;
    run_case(name, rtol, atol);
    cases++;
  }
  fclose(list);
  CHECK(cases > 0);
}
