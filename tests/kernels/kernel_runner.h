/*
 * kernel_runner.h — runs one-node models built with model_builder.h for the
 * kernel tests that compare strand with a naive reference written in the
 * test (larger and more varied shapes than the committed ONNX Runtime
 * cases). Header-only; public API only.
 */
#ifndef STRAND_TEST_KERNEL_RUNNER_H
#define STRAND_TEST_KERNEL_RUNNER_H

#include <math.h>
#include <stdint.h>

#include "model_builder.h"
#include "session_from.h"
#include "test.h"

/* A deterministic generator for test data. */
typedef struct kr_random {
  uint64_t state;
} kr_random;

static inline uint32_t kr_next(kr_random *r) {
  r->state = r->state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(r->state >> 33);
}

/* Uniform in [lo, hi). */
static inline float kr_float(kr_random *r, float lo, float hi) {
  return lo + (hi - lo) * (float)kr_next(r) / 2147483648.0f;
}

static inline int kr_int(kr_random *r, int lo, int hi) { /* [lo, hi] */
  return lo + (int)(kr_next(r) % (uint32_t)(hi - lo + 1));
}

static inline float *kr_floats(kr_random *r, size_t n) {
  float *v = malloc(n ? n * sizeof(float) : 1);
  if (!v) abort();
  for (size_t i = 0; i < n; i++) v[i] = kr_float(r, -1, 1);
  return v;
}

static inline const char *kr_dims_text(const int64_t *dims, size_t rank, char *buf, size_t size) {
  size_t n = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < rank && n < size; i++)
    n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? "," : "", (long long)dims[i]);
  return buf;
}

/* Loads model bytes `m` (freed), creates a session and runs it on the float
 * inputs given; returns the first output (caller releases) or NULL after
 * recording a failure. `names`/`values`/`shapes`/`ranks`: n_inputs each. */
/* As kr_run, the planning run with a CPU budget of `planning_budget` (0:
 * as it is) and the planned run with the budget as it was: kernels must
 * keep to the scratch the plan gave them whatever threads a later run has. */
static inline strand_tensor *kr_run_budget(mb *m, size_t n_inputs, const char *const *names,
                                           float *const *values, const int64_t *const *shapes,
                                           const size_t *ranks, unsigned planning_budget) {
  strand_session *s = session_from(m);
  if (!s) return NULL;
  strand_status st = STRAND_OK;
  strand_tensor *ins[8] = {NULL};
  for (size_t i = 0; i < n_inputs && !st; i++) {
    size_t count = 1;
    for (size_t d = 0; d < ranks[i]; d++) count *= (size_t)shapes[i][d];
    st = strand_tensor_wrap(STRAND_DTYPE_FLOAT32, shapes[i], ranks[i], values[i],
                            count * sizeof(float), NULL, NULL, &ins[i]);
  }
  strand_tensor *out = NULL;
  if (!st) {
    /* Twice: the planning run and a planned run must agree. */
    strand_tensor *first = NULL;
    unsigned budget = strand_threads_get_budget();
    if (planning_budget) strand_threads_set_budget(planning_budget);
    st = strand_session_run(s, names, (const strand_tensor *const *)ins, n_inputs, NULL, &first, 1);
    if (planning_budget) strand_threads_set_budget(budget);
    if (!st) st = strand_session_run(s, names, (const strand_tensor *const *)ins, n_inputs, NULL, &out, 1);
    if (!st) {
      size_t bytes = 0;
      void *a, *b;
      strand_tensor_byte_size(out, &bytes);
      strand_tensor_data(first, &a);
      strand_tensor_data(out, &b);
      if (bytes && memcmp(a, b, bytes) != 0)
        test_fail(__FILE__, __LINE__, "the planned run differs from the planning run");
    }
    strand_tensor_release(first);
  }
  if (st) test_fail(__FILE__, __LINE__, "run: %s: %s", strand_status_name(st), strand_errmsg());
  for (size_t i = 0; i < n_inputs; i++) strand_tensor_release(ins[i]);
  strand_session_release(s);
  return out;
}

static inline strand_tensor *kr_run(mb *m, size_t n_inputs, const char *const *names,
                                    float *const *values, const int64_t *const *shapes,
                                    const size_t *ranks) {
  return kr_run_budget(m, n_inputs, names, values, shapes, ranks, 0);
}

/* Checks `got` against `want` (n values, with `scale[i]` bounding each
 * value's rounding: the sum of the magnitudes that made it). */
static inline int kr_close(const strand_tensor *got, const double *want, const double *scale,
                           size_t n, const char *what) {
  size_t count = 0;
  float *g = NULL;
  if (!got || strand_tensor_element_count(got, &count) || count != n) {
    test_fail(__FILE__, __LINE__, "%s: %zu values, expected %zu", what, count, n);
    return 0;
  }
  strand_tensor_data(got, (void **)&g);
  for (size_t i = 0; i < n; i++) {
    double tol = 1e-5 * (scale ? scale[i] : fabs(want[i])) + 1e-6;
    if (!(fabs((double)g[i] - want[i]) <= tol)) {
      test_fail(__FILE__, __LINE__, "%s: element %zu is %.9g, expected %.9g", what, i,
                (double)g[i], want[i]);
      return 0;
    }
  }
  return 1;
}

#endif /* STRAND_TEST_KERNEL_RUNNER_H */
