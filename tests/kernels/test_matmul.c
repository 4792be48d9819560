/* Gemm and MatMul against a naive reference: every transpose combination,
 * alpha and beta, the forms of C (bias row folded into the product, scalar,
 * full matrix, absent), B constant (packed at session creation) or given at
 * run time, batched MatMul with broadcasting, and sizes that split over
 * several threads. */
#include "kernel_runner.h"

#include <stdbool.h>

static double at(const float *m, int trans, int rows, int cols, int i, int j) {
  (void)rows;
  return trans ? m[(size_t)j * rows + i] : m[(size_t)i * cols + j];
}

/* c_form: 0 none, 1 row [n], 2 scalar [1], 3 matrix [m, n], 4 column [m, 1]. */
static void check_gemm(int m, int n, int k, int ta, int tb, float alpha, float beta, int c_form,
                       int b_constant, kr_random *r) {
  float *a = kr_floats(r, (size_t)m * k), *b = kr_floats(r, (size_t)k * n);
  float *c = kr_floats(r, (size_t)m * n);
  int64_t adims[2] = {ta ? k : m, ta ? m : k}, bdims[2] = {tb ? n : k, tb ? k : n};
  int64_t cdims[2];
  size_t crank = 0, cn = 0;
  switch (c_form) {
  case 1: cdims[0] = n, crank = 1, cn = (size_t)n; break;
  case 2: cdims[0] = 1, crank = 1, cn = 1; break;
  case 3: cdims[0] = m, cdims[1] = n, crank = 2, cn = (size_t)m * n; break;
  case 4: cdims[0] = m, cdims[1] = 1, crank = 2, cn = (size_t)m; break;
  default: break;
  }
  mb g = mb_new();
  char text[64];
  mb_value_info(&g, MB_GRAPH_INPUT, "a", 1, kr_dims_text(adims, 2, text, sizeof text));
  if (b_constant) mb_initializer_float(&g, "b", bdims, 2, b, (size_t)k * n);
  else mb_value_info(&g, MB_GRAPH_INPUT, "b", 1, kr_dims_text(bdims, 2, text, sizeof text));
  if (c_form) mb_initializer_float(&g, "c", cdims, crank, c, cn);
  mb node = mb_node("gemm", "Gemm", c_form ? "a,b,c" : "a,b", "y");
  mb_attr_int(&node, "transA", ta);
  mb_attr_int(&node, "transB", tb);
  mb_attr_float(&node, "alpha", alpha);
  mb_attr_float(&node, "beta", beta);
  mb_msg(&g, MB_GRAPH_NODE, &node);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb model = mb_model(17, &g);
  const char *names[2] = {"a", "b"};
  float *values[2] = {a, b};
  const int64_t *shapes[2] = {adims, bdims};
  size_t ranks[2] = {2, 2};
  strand_tensor *y = kr_run(&model, b_constant ? 1 : 2, names, values, shapes, ranks);

  double *want = malloc((size_t)m * n * sizeof *want), *scale = malloc((size_t)m * n * sizeof *scale);
  if (!want || !scale) abort();
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double sum = 0, mag = 0;
      for (int p = 0; p < k; p++) {
        double t = at(a, ta, m, k, i, p) * at(b, tb, k, n, p, j);
        sum += t;
        mag += fabs(t);
      }
      double cv = 0;
      switch (c_form) {
      case 1: cv = c[j]; break;
      case 2: cv = c[0]; break;
      case 3: cv = c[(size_t)i * n + j]; break;
      case 4: cv = c[i]; break;
      default: break;
      }
      want[(size_t)i * n + j] = alpha * sum + beta * cv;
      scale[(size_t)i * n + j] = fabs(alpha) * mag + fabs(beta * cv);
    }
  char what[160];
  snprintf(what, sizeof what, "gemm %dx%dx%d ta%d tb%d alpha %g beta %g c%d %s", m, n, k, ta, tb,
           (double)alpha, (double)beta, c_form, b_constant ? "packed" : "runtime");
  kr_close(y, want, scale, (size_t)m * n, what);
  strand_tensor_release(y);
  free(want);
  free(scale);
  free(a);
  free(b);
  free(c);
}

TEST(gemm_sweep_matches_reference) {
  strand_threads_set_budget(4);
  kr_random r = {99};
  for (int i = 0; i < 120 && !test_failed_now(); i++) {
    int big = i % 5 == 0;
    int m = kr_int(&r, 1, big ? 150 : 20), n = kr_int(&r, 1, big ? 150 : 20),
        k = kr_int(&r, 1, big ? 300 : 20);
    float alpha = i % 3 ? 1.0f : kr_float(&r, -2, 2), beta = i % 4 ? 1.0f : kr_float(&r, -2, 2);
    check_gemm(m, n, k, kr_int(&r, 0, 1), kr_int(&r, 0, 1), alpha, beta, kr_int(&r, 0, 4),
               kr_int(&r, 0, 1), &r);
  }
  strand_threads_set_budget(0);
}

static void check_matmul(size_t ra, const int64_t *da, size_t rb, const int64_t *db, int b_constant,
                         kr_random *r) {
  size_t na = 1, nb = 1;
  for (size_t i = 0; i < ra; i++) na *= (size_t)da[i];
  for (size_t i = 0; i < rb; i++) nb *= (size_t)db[i];
  float *a = kr_floats(r, na), *b = kr_floats(r, nb);
  mb g = mb_new();
  char text[64];
  mb_value_info(&g, MB_GRAPH_INPUT, "a", 1, kr_dims_text(da, ra, text, sizeof text));
  if (b_constant) mb_initializer_float(&g, "b", db, rb, b, nb);
  else mb_value_info(&g, MB_GRAPH_INPUT, "b", 1, kr_dims_text(db, rb, text, sizeof text));
  mb_add_node(&g, "mm", "MatMul", "a,b", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb model = mb_model(17, &g);
  const char *names[2] = {"a", "b"};
  float *values[2] = {a, b};
  const int64_t *shapes[2] = {da, db};
  size_t ranks[2] = {ra, rb};
  strand_tensor *y = kr_run(&model, b_constant ? 1 : 2, names, values, shapes, ranks);

  /* numpy semantics: 1-D operands promoted, batch dims broadcast. */
  int64_t M = ra == 1 ? 1 : da[ra - 2], K = da[ra - 1], N = rb == 1 ? 1 : db[rb - 1];
  size_t bra = ra > 2 ? ra - 2 : 0, brb = rb > 2 ? rb - 2 : 0, br = bra > brb ? bra : brb;
  int64_t batch[8];
  size_t batches = 1;
  for (size_t i = 0; i < br; i++) {
    int64_t x = i + bra >= br ? da[i + bra - br] : 1, z = i + brb >= br ? db[i + brb - br] : 1;
    batch[i] = x > z ? x : z;
    batches *= (size_t)batch[i];
  }
  size_t total = batches * (size_t)(M * N);
  double *want = malloc(total * sizeof *want), *scale = malloc(total * sizeof *scale);
  if (!want || !scale) abort();
  for (size_t bi = 0; bi < batches; bi++) {
    size_t rest = bi, ia = 0, ib = 0, sa = 1, sb = 1;
    for (size_t i = br; i-- > 0;) {
      size_t idx = rest % (size_t)batch[i];
      rest /= (size_t)batch[i];
      int64_t x = i + bra >= br ? da[i + bra - br] : 1, z = i + brb >= br ? db[i + brb - br] : 1;
      if (x != 1) ia += idx * sa;
      if (z != 1) ib += idx * sb;
      sa *= (size_t)x;
      sb *= (size_t)z;
    }
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double sum = 0, mag = 0;
        for (int64_t p = 0; p < K; p++) {
          double t = (double)a[ia * M * K + i * K + p] * b[ib * K * N + p * N + j];
          sum += t;
          mag += fabs(t);
        }
        want[bi * M * N + i * N + j] = sum;
        scale[bi * M * N + i * N + j] = mag;
      }
  }
  char what[160], ta[64], tb[64];
  snprintf(what, sizeof what, "matmul [%s] x [%s] %s", kr_dims_text(da, ra, ta, sizeof ta),
           kr_dims_text(db, rb, tb, sizeof tb), b_constant ? "packed" : "runtime");
  kr_close(y, want, scale, total, what);
  strand_tensor_release(y);
  free(want);
  free(scale);
  free(a);
  free(b);
}

TEST(matmul_shapes_match_reference) {
  strand_threads_set_budget(4);
  kr_random r = {5};
  struct { size_t ra; int64_t da[4]; size_t rb; int64_t db[4]; } shapes[] = {
      {2, {7, 9}, 2, {9, 5}},           {3, {4, 33, 64}, 2, {64, 70}},
      {1, {9}, 2, {9, 4}},              {2, {3, 9}, 1, {9}},
      {1, {6}, 1, {6}},                 {3, {2, 5, 6}, 3, {2, 6, 3}},
      {4, {2, 1, 5, 6}, 3, {3, 6, 4}},  {2, {5, 6}, 3, {4, 6, 7}},
      {1, {6}, 3, {3, 6, 2}},           {4, {3, 2, 40, 50}, 4, {3, 2, 50, 60}},
      {3, {1, 130, 96}, 2, {96, 120}},  {2, {0, 4}, 2, {4, 3}},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    for (int constant = 0; constant < 2; constant++)
      check_matmul(shapes[i].ra, shapes[i].da, shapes[i].rb, shapes[i].db, constant, &r);
  strand_threads_set_budget(0);
}

/* MatMul with a constant B followed by Add of a constant bias row (and a
 * Relu): the session folds the Add and the Relu into the product's
 * epilogue (runtime/fuse_sequence.c). Each form is checked against the
 * reference and, bit for bit, against the same graph with the bias given
 * as a graph input (which cannot be fused). form: 0 Add(bias[n], mm) then
 * Relu; 1 Add(mm, bias[1, 1, n]); 2 mm read twice (Add(bias, mm) + mm: not
 * fused); 3 bias a full [rows, n] matrix (not a row: not fused). */
static strand_tensor *run_bias_graph(int form, bool bias_input, const int64_t *da, const float *a,
                                     const int64_t *db, const float *b, const int64_t *dc,
                                     size_t crank, const float *c, size_t cn) {
  mb g = mb_new();
  char text[64];
  mb_value_info(&g, MB_GRAPH_INPUT, "a", 1, kr_dims_text(da, 3, text, sizeof text));
  mb_initializer_float(&g, "b", db, 2, b, (size_t)(db[0] * db[1]));
  if (bias_input) mb_value_info(&g, MB_GRAPH_INPUT, "c", 1, kr_dims_text(dc, crank, text, sizeof text));
  else mb_initializer_float(&g, "c", dc, crank, c, cn);
  mb_add_node(&g, "mm", "MatMul", "a,b", "m");
  switch (form) {
  case 0:
    mb_add_node(&g, "add", "Add", "c,m", "t");
    mb_add_node(&g, "relu", "Relu", "t", "y");
    break;
  case 2:
    mb_add_node(&g, "add", "Add", "c,m", "t");
    mb_add_node(&g, "add2", "Add", "t,m", "y");
    break;
  default: mb_add_node(&g, "add", "Add", "m,c", "y"); break;
  }
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb model = mb_model(17, &g);
  const char *names[2] = {"a", "c"};
  float *values[2] = {(float *)a, (float *)c};
  const int64_t *shapes[2] = {da, dc};
  size_t ranks[2] = {3, crank};
  return kr_run(&model, bias_input ? 2 : 1, names, values, shapes, ranks);
}

TEST(matmul_bias_relu_fusion) {
  kr_random r = {11};
  const int64_t da[3] = {2, 5, 33}, db[2] = {33, 40};
  const size_t rows = 10, n = 40, k = 33;
  float *a = kr_floats(&r, rows * k), *b = kr_floats(&r, k * n), *c = kr_floats(&r, rows * n);
  for (int form = 0; form < 4; form++) {
    int64_t dc[3] = {(int64_t)n};
    size_t crank = 1, cn = n;
    if (form == 1) dc[0] = 1, dc[1] = 1, dc[2] = (int64_t)n, crank = 3;
    if (form == 3) dc[0] = 2, dc[1] = 5, dc[2] = (int64_t)n, crank = 3, cn = rows * n;
    strand_tensor *fused = run_bias_graph(form, false, da, a, db, b, dc, crank, c, cn);
    strand_tensor *plain = run_bias_graph(form, true, da, a, db, b, dc, crank, c, cn);
    double want[400], scale[400];
    for (size_t i = 0; i < rows; i++)
      for (size_t j = 0; j < n; j++) {
        double sum = 0, mag = 0;
        for (size_t p = 0; p < k; p++) {
          sum += (double)a[i * k + p] * b[p * n + j];
          mag += fabs((double)a[i * k + p] * b[p * n + j]);
        }
        double bias = form == 3 ? c[i * n + j] : c[j];
        double v = sum + bias;
        if (form == 0 && v < 0) v = 0;
        if (form == 2) v += sum, mag *= 2;
        want[i * n + j] = v;
        scale[i * n + j] = mag + fabs(bias);
      }
    char what[64];
    snprintf(what, sizeof what, "matmul + bias form %d", form);
    kr_close(fused, want, scale, rows * n, what);
    void *x = NULL, *y = NULL;
    if (fused && plain) {
      strand_tensor_data(fused, &x);
      strand_tensor_data(plain, &y);
      if (memcmp(x, y, rows * n * sizeof(float)) != 0)
        test_fail(__FILE__, __LINE__, "%s: fused and unfused graphs differ", what);
    }
    strand_tensor_release(fused);
    strand_tensor_release(plain);
  }
  free(a), free(b), free(c);
}

/* Splits with more tasks than threads: a packed product whose blocks are
 * cut into row ranges (300 rows: 22 register tiles of 14), and batched
 * products taken one head at a time, each task on a free scratch slot.
 * Against the reference, and bit for bit whatever the thread count. */
static strand_tensor *run_matmul_at(unsigned threads, size_t ra, const int64_t *da, float *a,
                                    size_t rb, const int64_t *db, float *b, int b_constant) {
  size_t nb = 1;
  for (size_t i = 0; i < rb; i++) nb *= (size_t)db[i];
  mb g = mb_new();
  char text[64];
  mb_value_info(&g, MB_GRAPH_INPUT, "a", 1, kr_dims_text(da, ra, text, sizeof text));
  if (b_constant) mb_initializer_float(&g, "b", db, rb, b, nb);
  else mb_value_info(&g, MB_GRAPH_INPUT, "b", 1, kr_dims_text(db, rb, text, sizeof text));
  mb_add_node(&g, "mm", "MatMul", "a,b", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb model = mb_model(17, &g);
  const char *names[2] = {"a", "b"};
  float *values[2] = {a, b};
  const int64_t *shapes[2] = {da, db};
  size_t ranks[2] = {ra, rb};
  strand_threads_set_budget(threads);
  strand_tensor *y = kr_run(&model, b_constant ? 1 : 2, names, values, shapes, ranks);
  strand_threads_set_budget(0);
  return y;
}

TEST(matmul_more_tasks_than_threads_same_bits) {
  kr_random r = {23};
  struct { size_t ra; int64_t da[3]; size_t rb; int64_t db[3]; int constant; } cases[] = {
      {3, {2, 150, 96}, 2, {96, 120}, 1},   /* packed: row ranges */
      {3, {9, 40, 24}, 3, {9, 24, 33}, 0},  /* nine heads, one task each */
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    strand_threads_set_budget(3);
    check_matmul(cases[c].ra, cases[c].da, cases[c].rb, cases[c].db, cases[c].constant, &r);
    strand_threads_set_budget(0);
    size_t na = 1, nb = 1;
    for (size_t i = 0; i < cases[c].ra; i++) na *= (size_t)cases[c].da[i];
    for (size_t i = 0; i < cases[c].rb; i++) nb *= (size_t)cases[c].db[i];
    float *a = kr_floats(&r, na), *b = kr_floats(&r, nb);
    strand_tensor *one = run_matmul_at(1, cases[c].ra, cases[c].da, a, cases[c].rb, cases[c].db, b,
                                       cases[c].constant);
    for (unsigned threads = 2; threads <= 4 && one; threads++) {
      strand_tensor *many = run_matmul_at(threads, cases[c].ra, cases[c].da, a, cases[c].rb,
                                          cases[c].db, b, cases[c].constant);
      size_t bytes = 0, bytes_many = 0;
      void *p = NULL, *q = NULL;
      strand_tensor_byte_size(one, &bytes);
      if (many) strand_tensor_byte_size(many, &bytes_many);
      if (many) strand_tensor_data(one, &p), strand_tensor_data(many, &q);
      if (!many || bytes != bytes_many || memcmp(p, q, bytes) != 0)
        test_fail(__FILE__, __LINE__, "case %zu: %u threads give other bits than one", c, threads);
      strand_tensor_release(many);
    }
    strand_tensor_release(one);
    free(a), free(b);
  }
}
