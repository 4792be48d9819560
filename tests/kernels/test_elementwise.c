/* Broadcasting at sizes that split over several threads, with the split
 * falling inside rows: Add, Mul, Max (variadic), Where and Expand against a
 * naive reference, over random shapes. */
#include "kernel_runner.h"

/* The flat index of output element `i` in an input of shape `in` (right
 * aligned, broadcast where 1). */
static size_t source_index(size_t i, const int64_t *out, size_t rank, const int64_t *in,
                           size_t in_rank) {
  size_t at = 0, stride = 1;
  for (size_t d = rank; d-- > 0;) {
    size_t idx = i % (size_t)out[d];
    i /= (size_t)out[d];
    if (d + in_rank < rank) continue;
    size_t k = d - (rank - in_rank);
    if (in[k] != 1) at += idx * stride;
    stride *= (size_t)in[k];
  }
  return at;
}

/* Shapes a (full rank, some dims 1) and b (maybe shorter) that broadcast
 * to `out`. */
static void random_broadcast(kr_random *r, size_t rank, int64_t *out, int64_t *a, size_t *ra,
                             int64_t *b, size_t *rb) {
  for (size_t d = 0; d < rank; d++) out[d] = kr_int(r, 1, 9);
  out[rank - 1] = kr_int(r, 30, 300);
  *ra = rank;
  *rb = rank - (size_t)kr_int(r, 0, (int)rank - 1);
  size_t shift = rank - *rb;
  for (size_t d = 0; d < rank; d++) a[d] = d < shift || kr_int(r, 0, 2) ? out[d] : 1;
  for (size_t d = 0; d < *rb; d++) b[d] = a[shift + d] == 1 || kr_int(r, 0, 2) ? out[shift + d] : 1;
}

static size_t product(const int64_t *dims, size_t rank) {
  size_t n = 1;
  for (size_t d = 0; d < rank; d++) n *= (size_t)dims[d];
  return n;
}

static void check_binary(const char *op, kr_random *r) {
  int64_t out[5], a[5], b[5];
  size_t rank = (size_t)kr_int(r, 1, 5), ra, rb;
  random_broadcast(r, rank, out, a, &ra, b, &rb);
  size_t na = product(a, ra), nb = product(b, rb), n = product(out, rank);
  float *x = kr_floats(r, na), *y = kr_floats(r, nb);
  mb g = mb_new();
  char text[64];
  mb_value_info(&g, MB_GRAPH_INPUT, "a", 1, kr_dims_text(a, ra, text, sizeof text));
  mb_value_info(&g, MB_GRAPH_INPUT, "b", 1, kr_dims_text(b, rb, text, sizeof text));
  mb_add_node(&g, "op", op, "a,b", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb m = mb_model(17, &g);
  const char *names[2] = {"a", "b"};
  float *values[2] = {x, y};
  const int64_t *shapes[2] = {a, b};
  size_t ranks[2] = {ra, rb};
  strand_tensor *got = kr_run(&m, 2, names, values, shapes, ranks);
  double *want = malloc(n * sizeof *want);
  if (!want) abort();
  for (size_t i = 0; i < n; i++) {
    float u = x[source_index(i, out, rank, a, ra)], v = y[source_index(i, out, rank, b, rb)];
    want[i] = strcmp(op, "Add") == 0 ? (double)(u + v) : strcmp(op, "Mul") == 0 ? (double)(u * v)
                                                                               : (u > v ? u : v);
  }
  char what[160], ta[64], tb[64];
  snprintf(what, sizeof what, "%s [%s] [%s]", op, kr_dims_text(a, ra, ta, sizeof ta),
           kr_dims_text(b, rb, tb, sizeof tb));
  kr_close(got, want, NULL, n, what);
  strand_tensor_release(got);
  free(want);
  free(x);
  free(y);
}

TEST(broadcast_sweep_matches_reference) {
  strand_threads_set_budget(4);
  kr_random r = {31337};
  static const char *const ops[3] = {"Add", "Mul", "Max"};
  for (int i = 0; i < 90 && !test_failed_now(); i++) check_binary(ops[i % 3], &r);
  strand_threads_set_budget(0);
}

/* Where over three broadcast operands and Expand, large. */
TEST(where_and_expand_large) {
  strand_threads_set_budget(4);
  kr_random r = {4242};
  int64_t cdims[3] = {4, 1, 1000}, xdims[2] = {37, 1000}, ydims[3] = {4, 37, 1};
  size_t nc = 4000, nx = 37000, ny = 4 * 37, n = 4 * 37 * 1000;
  float *x = kr_floats(&r, nx), *y = kr_floats(&r, ny);
  unsigned char *c = malloc(nc);
  if (!c) abort();
  for (size_t i = 0; i < nc; i++) c[i] = kr_next(&r) & 1;
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "37,1000");
  mb_value_info(&g, MB_GRAPH_INPUT, "y", 1, "4,37,1");
  mb t = mb_tensor_raw("c", 9, cdims, 3, c, nc);
  mb_msg(&g, MB_GRAPH_INITIALIZER, &t);
  mb_add_node(&g, "where", "Where", "c,x,y", "z");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "z", 1, NULL);
  mb m = mb_model(17, &g);
  const char *names[2] = {"x", "y"};
  float *values[2] = {x, y};
  const int64_t *shapes[2] = {xdims, ydims};
  size_t ranks[2] = {2, 3};
  strand_tensor *got = kr_run(&m, 2, names, values, shapes, ranks);
  int64_t out[3] = {4, 37, 1000};
  double *want = malloc(n * sizeof *want);
  if (!want) abort();
  for (size_t i = 0; i < n; i++)
    want[i] = c[source_index(i, out, 3, cdims, 3)] ? x[source_index(i, out, 3, xdims, 2)]
                                                   : y[source_index(i, out, 3, ydims, 3)];
  kr_close(got, want, NULL, n, "Where");
  strand_tensor_release(got);

  /* Expand [37, 1] to [3, 37, 500]. */
  int64_t edims[2] = {37, 1}, target[3] = {3, 37, 500}, one = 3;
  g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "37,1");
  mb_initializer_int64(&g, "shape", &one, 1, target, 3);
  mb_add_node(&g, "expand", "Expand", "x,shape", "z");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "z", 1, NULL);
  m = mb_model(17, &g);
  const int64_t *eshapes[1] = {edims};
  size_t eranks[1] = {2};
  got = kr_run(&m, 1, names, values, eshapes, eranks);
  size_t ne = 3 * 37 * 500;
  for (size_t i = 0; i < ne; i++) want[i] = x[source_index(i, target, 3, edims, 2)];
  kr_close(got, want, NULL, ne, "Expand");
  strand_tensor_release(got);
  free(want);
  free(c);
  free(x);
  free(y);
  strand_threads_set_budget(0);
}

/* A transformer's residual Add (128×256 = 32768 elements, two ranges of
 * half each on two threads) and a bias Add one row longer with b a row
 * broadcast over it (the split falls inside a row), against the
 * reference, on 2 and 3 threads. */
static void check_add(const int64_t *da, size_t ra, const int64_t *db, size_t rb) {
  kr_random r = {777};
  size_t na = product(da, ra), nb = product(db, rb);
  float *x = kr_floats(&r, na), *y = kr_floats(&r, nb);
  double *want = malloc(na * sizeof *want);
  if (!want) abort();
  for (size_t i = 0; i < na; i++) want[i] = (double)(x[i] + y[source_index(i, da, ra, db, rb)]);
  for (unsigned threads = 2; threads <= 3; threads++) {
    strand_threads_set_budget(threads);
    mb g = mb_new();
    char text[64];
    mb_value_info(&g, MB_GRAPH_INPUT, "a", 1, kr_dims_text(da, ra, text, sizeof text));
    mb_value_info(&g, MB_GRAPH_INPUT, "b", 1, kr_dims_text(db, rb, text, sizeof text));
    mb_add_node(&g, "op", "Add", "a,b", "y");
    mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
    mb m = mb_model(17, &g);
    const char *names[2] = {"a", "b"};
    float *values[2] = {x, y};
    const int64_t *shapes[2] = {da, db};
    size_t ranks[2] = {ra, rb};
    strand_tensor *got = kr_run(&m, 2, names, values, shapes, ranks);
    kr_close(got, want, NULL, na, threads == 2 ? "Add on 2 threads" : "Add on 3 threads");
    strand_tensor_release(got);
  }
  strand_threads_set_budget(0);
  free(want), free(x), free(y);
}

TEST(residual_add_at_one_grain_splits) {
  int64_t a[2] = {128, 256}, row[1] = {257}, odd[2] = {129, 257};
  check_add(a, 2, a, 2);
  check_add(odd, 2, row, 1);
}
