/*
 * test_vector_math.c — vector_math's functions: the dispatched path (AVX-512
 * on CPUs that have it) gives the portable path's bits at every length (odd
 * tails included), both stay within the stated accuracy of double-precision
 * libm, special values (±inf, NaN, huge, tiny) come out right, and the LSTM
 * cell matches its equations.
 */
#include "test.h"

#include "kernels/gemm.h"
#include "kernels/vector_math.h"

#include <math.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static const size_t lengths[] = {0, 1, 3, 15, 16, 17, 31, 33, 100, 257};
#define LENGTHS (sizeof lengths / sizeof lengths[0])

static uint32_t rng = 7;
static float uniform(float lo, float hi) {
  rng = rng * 1664525u + 1013904223u;
  return lo + (hi - lo) * (float)(rng >> 8) / (float)(1u << 24);
}

static float *floats(size_t n, float lo, float hi) {
  float *p = malloc((n ? n : 1) * sizeof(float));
  if (!p) abort();
  for (size_t i = 0; i < n; i++) p[i] = uniform(lo, hi);
  return p;
}

static bool same_bits(const float *a, const float *b, size_t n) {
  return n == 0 || memcmp(a, b, n * sizeof(float)) == 0;
}

static double sigmoid_ref(double x) { return 1 / (1 + exp(-x)); }

TEST(vector_paths_agree_bit_for_bit) {
  printf("    note: dispatched path is %s\n",
         strand__cpu_level_name(strand__cpu()->selected));
  for (size_t li = 0; li < LENGTHS; li++) {
    size_t n = lengths[li];
    float *x = floats(n, -30, 30), *y = floats(n, 0, 1), *z = floats(n, 0, 1);
    strand__vec_sigmoid(y, x, n);
    strand__vec_sigmoid_portable(z, x, n);
    CHECK(same_bits(y, z, n));
    strand__vec_tanh(y, x, n);
    strand__vec_tanh_portable(z, x, n);
    CHECK(same_bits(y, z, n));
    float s1 = strand__vec_exp_shifted(y, x, n, 3.0f);
    float s2 = strand__vec_exp_shifted_portable(z, x, n, 3.0f);
    CHECK(same_bits(y, z, n));
    CHECK(memcmp(&s1, &s2, sizeof s1) == 0);
    free(x), free(y), free(z);
  }
}

TEST(vector_math_accuracy) {
  size_t n = 20000;
  float *x = floats(n, -20, 20), *y = floats(n, 0, 1);
  for (size_t i = 0; i < 2000; i++) x[i] = uniform(-1, 1) * powf(10, uniform(-8, 0));
  double worst_sig = 0, worst_tanh = 0, worst_exp = 0;
  strand__vec_sigmoid(y, x, n);
  for (size_t i = 0; i < n; i++) worst_sig = fmax(worst_sig, fabs(y[i] - sigmoid_ref(x[i])));
  strand__vec_tanh(y, x, n);
  for (size_t i = 0; i < n; i++) {
    /* 2e-7 absolute, and 1e-6 relative where tanh is small */
    double want = tanh((double)x[i]), err = fabs(y[i] - want);
    worst_tanh = fmax(worst_tanh, fabs(want) < 0.2 ? err / fabs(want) * 0.2 : err);
  }
  float *e = floats(n, -87, 88);
  strand__vec_exp_shifted(y, e, n, 0);
  for (size_t i = 0; i < n; i++) {
    double want = exp((double)e[i]);
    worst_exp = fmax(worst_exp, fabs(y[i] - want) / want);
  }
  printf("    worst: sigmoid %.3g abs, tanh %.3g abs (relative x 0.2 below 0.2), exp %.3g rel\n", worst_sig,
         worst_tanh, worst_exp);
  CHECK(worst_sig <= 2e-7);
  CHECK(worst_tanh <= 2e-7);
  CHECK(worst_exp <= 2.4e-7); /* 2 ulp */
  free(x), free(y), free(e);
}

TEST(vector_math_special_values) {
  const float in[] = {INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 0.0f, -0.0f, 88.7f, -87.0f,
                      -103.0f, 200.0f, 1e-30f};
  enum { N = sizeof in / sizeof in[0] };
  float y[N];
  strand__vec_sigmoid(y, in, N);
  CHECK(y[0] == 1 && y[1] == 0 && isnan(y[2]) && y[3] == 1 && y[4] == 0 && y[5] == 0.5f);
  strand__vec_tanh(y, in, N);
  CHECK(y[0] == 1 && y[1] == -1 && isnan(y[2]) && y[3] == 1 && y[4] == -1 && y[5] == 0);
  CHECK(signbit(y[6]) && y[11] == 1e-30f);
  strand__vec_exp_shifted(y, in, N, 0);
  CHECK(isinf(y[0]) && y[1] == 0 && isnan(y[2]) && isinf(y[3]) && y[4] == 0 && y[5] == 1);
  CHECK(isfinite(y[7]) && fabs(y[7] / exp((double)in[7]) - 1) < 3e-7);
  CHECK(y[8] > 0 && fabs(y[8] / exp(-87.0) - 1) < 3e-7);
  CHECK(y[9] >= 0 && y[9] < 1e-44f && isinf(y[10]));
  strand__vec_relu(y, in, N);
  CHECK(isinf(y[0]) && y[1] == 0 && isnan(y[2]) && y[4] == 0 && y[7] == 88.7f);
  float m = strand__vec_max(in, N);
  CHECK(isinf(m) && m > 0);
  float xs[40];
  for (int i = 0; i < 40; i++) xs[i] = (float)(i % 7);
  xs[33] = 100.0f;
  xs[20] = NAN;
  CHECK(strand__vec_max(xs, 40) == 100.0f); /* NaNs are skipped */
}

TEST(lstm_cell_matches_equations) {
  for (size_t li = 0; li < LENGTHS; li++) {
    size_t h = lengths[li];
    float *xw = floats(4 * h, -4, 4), *gr = floats(4 * h, -4, 4), *bias = floats(4 * h, -1, 1);
    float *c = floats(h, -2, 2), *c2 = malloc((h ? h : 1) * sizeof(float));
    float *out = floats(h, 0, 1), *out2 = floats(h, 0, 1);
    double *want_c = malloc((h ? h : 1) * sizeof(double)), *want_h = malloc((h ? h : 1) * sizeof(double));
    if (!c2 || !want_c || !want_h) abort();
    memcpy(c2, c, h * sizeof(float));
    for (size_t i = 0; i < h; i++) {
      double g[4];
      for (size_t q = 0; q < 4; q++)
        g[q] = (double)xw[q * h + i] + gr[q * h + i] + bias[q * h + i];
      want_c[i] = sigmoid_ref(g[2]) * c[i] + sigmoid_ref(g[0]) * tanh(g[3]);
      want_h[i] = sigmoid_ref(g[1]) * tanh(want_c[i]);
    }
    strand__vec_lstm_cell(h, xw, gr, bias, c, out);
    strand__vec_lstm_cell_portable(h, xw, gr, bias, c2, out2);
    CHECK(same_bits(c, c2, h));
    CHECK(same_bits(out, out2, h));
    for (size_t i = 0; i < h; i++) {
      CHECK(fabs(c[i] - want_c[i]) <= 2e-6);
      CHECK(fabs(out[i] - want_h[i]) <= 2e-6);
    }
    free(xw), free(gr), free(bias), free(c), free(c2), free(out), free(out2), free(want_c),
        free(want_h);
  }
}

TEST(layer_norm_row_matches_reference) {
  for (size_t li = 1; li < LENGTHS; li++) {
    size_t n = lengths[li];
    float *x = floats(n, -3, 5), *scale = floats(n, 0.5f, 1.5f), *bias = floats(n, -1, 1);
    float *y = floats(n, 0, 1), *z = floats(n, 0, 1);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
      const float *b = with_bias ? bias : NULL;
      float m1, i1, m2, i2;
      strand__vec_layer_norm(y, x, n, scale, b, 1e-5f, &m1, &i1);
      strand__vec_layer_norm_portable(z, x, n, scale, b, 1e-5f, &m2, &i2);
      CHECK(same_bits(y, z, n) && m1 == m2 && i1 == i2);
      double mean = 0, var = 0;
      for (size_t i = 0; i < n; i++) mean += x[i];
      mean /= (double)n;
      for (size_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
      double inv = 1 / sqrt(var / (double)n + 1e-5);
      CHECK(fabs(m1 - mean) <= 1e-6 && fabs(i1 - inv) <= 1e-5 * inv);
      for (size_t i = 0; i < n; i++) {
        double want = (x[i] - mean) * inv * scale[i] + (b ? b[i] : 0);
        CHECK(fabs(y[i] - want) <= 1e-5 * (1 + fabs(want)));
      }
    }
    /* in place */
    memcpy(z, x, n * sizeof(float));
    float m3, i3, m4, i4;
    strand__vec_layer_norm(z, z, n, scale, bias, 1e-5f, &m3, &i3);
    strand__vec_layer_norm(y, x, n, scale, bias, 1e-5f, &m4, &i4);
    CHECK(same_bits(y, z, n));
    free(x), free(scale), free(bias), free(y), free(z);
  }
}

/* `pairs` pairs of pages, the second of each inaccessible: a read past
 * the end of the first faults. NULL (and a failed check) if mapping fails;
 * unmap with munmap(map, 2 * pairs * page). */
static unsigned char *guarded_pages(size_t pairs, size_t page) {
  unsigned char *map = mmap(NULL, 2 * pairs * page, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(map != MAP_FAILED);
  if (map == MAP_FAILED) return NULL;
  for (size_t i = 0; i < pairs; i++) CHECK(mprotect(map + (2 * i + 1) * page, page, PROT_NONE) == 0);
  return map;
}

/* gather_even reads x[0 .. 2n-2] and writes y[0 .. n) only: x ends right
 * before an inaccessible page (a read past x[2n-2] faults), y's
 * neighbours stay untouched. */
TEST(gather_even_takes_every_other_float) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  unsigned char *map = guarded_pages(1, page);
  if (!map) return;
  for (size_t n = 0; n <= 40; n++) {
    size_t reads = n ? 2 * n - 1 : 0;
    float *x = (float *)(map + page) - reads, *y = floats(n + 2, 5, 6);
    for (size_t i = 0; i < reads; i++) x[i] = uniform(-1, 1);
    float before = y[0], after = y[n + 1];
    strand__vec_gather_even(y + 1, x, n);
    CHECK(y[0] == before && y[n + 1] == after);
    for (size_t i = 0; i < n; i++) CHECK(y[1 + i] == x[2 * i]);
    free(y);
    if (test_failed_now()) break;
  }
  munmap(map, 2 * page);
}

/* The scalar expression each element must equal, bit for bit. */
static float arith_ref(strand__vec_op op, float a, float b) {
  volatile float r; /* stored as a float: no wider intermediate */
  switch (op) {
  case STRAND__VEC_ADD: r = a + b; break;
  case STRAND__VEC_SUB: r = a - b; break;
  case STRAND__VEC_MUL: r = a * b; break;
  default: r = a / b; break;
  }
  return r;
}

static bool same_float(float x, float y) { return memcmp(&x, &y, sizeof x) == 0; }

/* Every operator and operand form (both step; one repeats), every tail
 * length, values that include ±0, ±inf, NaN, subnormals and divisions by
 * zero; reads stay within the n floats (an inaccessible page right after
 * them); z given its own buffer or one of the operands. */
TEST(arith_gives_the_scalar_bits_in_every_form) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  unsigned char *map = guarded_pages(2, page);
  if (!map) return;
  const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -3e-39f, 1e38f, 3.0f, -7.5f};
  const size_t n_special = sizeof special / sizeof special[0];
  for (size_t n = 0; n <= 40; n++)
    for (int op = STRAND__VEC_ADD; op <= STRAND__VEC_DIV; op++)
      for (int form = 0; form < 4; form++) { /* both step, a repeats, b repeats, z is a */
        float *a = (float *)(map + page) - n, *b = (float *)(map + 3 * page) - n;
        for (size_t i = 0; i < n; i++) {
          a[i] = i % 3 == 0 ? special[(i + n) % n_special] : uniform(-4, 4);
          b[i] = i % 4 == 1 ? special[(i * 7 + n) % n_special] : uniform(-4, 4);
        }
        bool a_steps = form != 1, b_steps = form != 2;
        float want[41], *z = floats(n + 2, 5, 6), before = z[0], after = z[n + 1];
        for (size_t i = 0; i < n; i++)
          want[i] = arith_ref((strand__vec_op)op, a_steps ? a[i] : a[0], b_steps ? b[i] : b[0]);
        if (form == 3) {
          strand__vec_arith((strand__vec_op)op, a, a, true, b, true, n);
          for (size_t i = 0; i < n; i++) CHECK(same_float(a[i], want[i]));
        } else {
          strand__vec_arith((strand__vec_op)op, z + 1, a, a_steps, b, b_steps, n);
          for (size_t i = 0; i < n; i++) CHECK(same_float(z[1 + i], want[i]));
          CHECK(z[0] == before && z[n + 1] == after);
        }
        free(z);
        if (test_failed_now()) goto done;
      }
done:
  munmap(map, 4 * page);
}
