/*
 * Slicing (strand_session_options.slice_rows): a run of B rows made as runs
 * of fewer rows gives the outputs of the whole run bit for bit, and only
 * models whose rows were proven independent are sliced. Every model here is
 * run by a session that never slices (the reference) and by sliced ones on
 * the same inputs; models whose rows mix (a mean over the batch, a softmax
 * across it, a product that contracts it, rows reversed, the batch size used
 * as data, a reshape that interleaves rows) must never be sliced and must
 * still give the reference's outputs. Also: slices across threads, from
 * many callers at once, with caller-supplied and misaligned tensors, row
 * counts with odd divisors, deadlines, memory limits.
 */
#include "model_builder.h"
#include "session_from.h"
#include "test.h"
#include "test_tensors.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef void (*build_fn)(mb *g);

/* ---- models --------------------------------------------------------------------- */

static void add_floats(mb *g, const char *name, const int64_t *dims, size_t rank, float scale) {
  size_t n = 1;
  for (size_t i = 0; i < rank; i++) n *= (size_t)dims[i];
  float *v = malloc(n * sizeof *v);
  if (!v) abort();
  for (size_t i = 0; i < n; i++) v[i] = scale * (float)((int)(i * 37 % 17) - 8) / 8.0f;
  mb_initializer_float(g, name, dims, rank, v, n);
  free(v);
}

static void add_ints(mb *g, const char *name, const int64_t *v, size_t n) {
  mb_initializer_int64(g, name, (int64_t[]){(int64_t)n}, 1, v, n);
}

static void add_scalar_int(mb *g, const char *name, int64_t v) {
  mb_initializer_int64(g, name, NULL, 0, &v, 1);
}

static void add_node_int(mb *g, const char *op, const char *in, const char *out, const char *attr,
                         int64_t value) {
  mb n = mb_node(NULL, op, in, out);
  mb_attr_int(&n, attr, value);
  mb_msg(g, MB_GRAPH_NODE, &n);
}

static void add_node_ints(mb *g, const char *op, const char *in, const char *out,
                          const char *attr, const int64_t *v, size_t count) {
  mb n = mb_node(NULL, op, in, out);
  mb_attr_ints(&n, attr, v, count);
  mb_msg(g, MB_GRAPH_NODE, &n);
}

/* x [batch, 8] -> MatMul + Add -> Relu -> Gemm -> y [batch, 4]. */
static void build_mlp(mb *g) {
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,8");
  add_floats(g, "w1", (int64_t[]){8, 16}, 2, 1.0f);
  add_floats(g, "b1", (int64_t[]){16}, 1, 0.5f);
  add_floats(g, "w2", (int64_t[]){4, 16}, 2, 1.0f);
  add_floats(g, "b2", (int64_t[]){4}, 1, 0.25f);
  mb_add_node(g, NULL, "MatMul", "x,w1", "h0");
  mb_add_node(g, NULL, "Add", "h0,b1", "h1");
  mb_add_node(g, NULL, "Relu", "h1", "h2");
  add_node_int(g, "Gemm", "h2,w2,b2", "y", "transB", 1);
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,4");
}

/* x [batch, 256] -> MatMul [256, 1024] -> Relu -> MatMul [1024, 256] -> y:
 * half a million multiply-adds a row, in products of one row per row. */
static void build_wide_mlp(mb *g) {
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,256");
  add_floats(g, "w1", (int64_t[]){256, 1024}, 2, 0.125f);
  add_floats(g, "w2", (int64_t[]){1024, 256}, 2, 0.125f);
  mb_add_node(g, NULL, "MatMul", "x,w1", "h0");
  mb_add_node(g, NULL, "Relu", "h0", "h1");
  mb_add_node(g, NULL, "MatMul", "h1,w2", "y");
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,256");
}

/* x [batch, 3, 6, 6] -> Conv -> Relu -> MaxPool -> GlobalAveragePool ->
 * Flatten -> Gemm -> y [batch, 5]. */
static void build_cnn(mb *g) {
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,3,6,6");
  add_floats(g, "w", (int64_t[]){4, 3, 3, 3}, 4, 0.5f);
  add_floats(g, "b", (int64_t[]){4}, 1, 0.1f);
  add_floats(g, "fc", (int64_t[]){4, 5}, 2, 1.0f);
  mb conv = mb_node(NULL, "Conv", "x,w,b", "c");
  mb_attr_ints(&conv, "pads", (int64_t[]){1, 1, 1, 1}, 4);
  mb_msg(g, MB_GRAPH_NODE, &conv);
  mb_add_node(g, NULL, "Relu", "c", "r");
  mb pool = mb_node(NULL, "MaxPool", "r", "p");
  mb_attr_ints(&pool, "kernel_shape", (int64_t[]){2, 2}, 2);
  mb_attr_ints(&pool, "strides", (int64_t[]){2, 2}, 2);
  mb_msg(g, MB_GRAPH_NODE, &pool);
  mb_add_node(g, NULL, "GlobalAveragePool", "p", "gap");
  add_node_int(g, "Flatten", "gap", "f", "axis", 1);
  mb_add_node(g, NULL, "Gemm", "f,fc", "y");
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,5");
}

/* Attention-like: the batch moves to axis 1, is merged with heads (rows
 * with a factor), then under a sequence axis (rows with an outer count),
 * and back, with shapes computed from Shape as exporters write them and a
 * scale taken from a dim that does not hold rows. x, y [batch, 4, 8]. */
static void build_attention(mb *g) {
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,4,8");
  add_floats(g, "w", (int64_t[]){8, 8}, 2, 1.0f);
  add_ints(g, "heads", (int64_t[]){0, -1, 4}, 3);
  add_ints(g, "flat", (int64_t[]){-1, 8}, 2);
  add_ints(g, "seq", (int64_t[]){4}, 1);
  add_ints(g, "width", (int64_t[]){8}, 1);
  add_ints(g, "zero", (int64_t[]){0}, 1);
  add_scalar_int(g, "two", 2);
  add_node_ints(g, "Transpose", "x", "t0", "perm", (int64_t[]){1, 0, 2}, 3); /* [4, B, 8] */
  mb_add_node(g, NULL, "Reshape", "t0,heads", "t1");                          /* [4, 2B, 4] */
  add_node_int(g, "Softmax", "t1", "t2", "axis", -1);
  mb_add_node(g, NULL, "Reshape", "t2,flat", "t3");                           /* [4B, 8] */
  mb_add_node(g, NULL, "MatMul", "t3,w", "t4");
  mb_add_node(g, NULL, "Shape", "x", "shape");
  mb_add_node(g, NULL, "Gather", "shape,two", "d2");                          /* 8: no rows */
  add_node_int(g, "Cast", "d2", "d2f", "to", 1);
  mb_add_node(g, NULL, "Sqrt", "d2f", "scale");
  mb_add_node(g, NULL, "Mul", "t4,scale", "t5");
  mb_add_node(g, NULL, "Gather", "shape,zero", "rows");                       /* [B] */
  add_node_int(g, "Concat", "seq,rows,width", "back", "axis", 0);
  mb_add_node(g, NULL, "Reshape", "t5,back", "t6");                           /* [4, B, 8] */
  add_node_ints(g, "Transpose", "t6", "y", "perm", (int64_t[]){1, 0, 2}, 3);
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,4,8");
}

/* A constant as big as the input (ConstantOfShape of its shape), added. */
static void build_fill(mb *g) {
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,6");
  mb_add_node(g, NULL, "Shape", "x", "shape");
  mb one = mb_tensor_raw(NULL, 1, (int64_t[]){1}, 1, &(float){1.5f}, sizeof(float));
  mb fill = mb_node(NULL, "ConstantOfShape", "shape", "c");
  mb_attr_tensor(&fill, "value", &one);
  mb_msg(g, MB_GRAPH_NODE, &fill);
  mb_add_node(g, NULL, "Add", "x,c", "y");
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,6");
}

/* Models whose rows mix; x and y [batch, 4]. */
static void build_minus_mean(mb *g) {
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,4");
  add_node_ints(g, "ReduceMean", "x", "m", "axes", (int64_t[]){0}, 1);
  mb_add_node(g, NULL, "Sub", "x,m", "y");
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,4");
}

static void build_softmax_over_rows(mb *g) {
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,4");
  add_node_int(g, "Softmax", "x", "y", "axis", 0);
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,4");
}

static void build_softmax_transposed(mb *g) {
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,4");
  mb_add_node(g, NULL, "Transpose", "x", "t");
  add_node_int(g, "Softmax", "t", "s", "axis", -1);
  mb_add_node(g, NULL, "Transpose", "s", "y");
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,4");
}

static void build_gram(mb *g) { /* x (xT x): contracts the rows */
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,4");
  mb_add_node(g, NULL, "Transpose", "x", "t");
  mb_add_node(g, NULL, "MatMul", "t,x", "gram");
  mb_add_node(g, NULL, "MatMul", "x,gram", "y");
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,4");
}

static void build_reversed(mb *g) {
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,4");
  add_ints(g, "starts", (int64_t[]){-1}, 1);
  add_ints(g, "ends", (int64_t[]){INT64_MIN}, 1);
  add_ints(g, "axes", (int64_t[]){0}, 1);
  add_ints(g, "steps", (int64_t[]){-1}, 1);
  mb_add_node(g, NULL, "Slice", "x,starts,ends,axes,steps", "y");
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,4");
}

static void build_times_rows(mb *g) { /* the batch size used as data */
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,4");
  add_scalar_int(g, "zero", 0);
  mb_add_node(g, NULL, "Shape", "x", "shape");
  mb_add_node(g, NULL, "Gather", "shape,zero", "n");
  add_node_int(g, "Cast", "n", "nf", "to", 1);
  mb_add_node(g, NULL, "Mul", "x,nf", "y");
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,4");
}

static void build_interleaved(mb *g) { /* [B,4] -> [B,2,2] -> [2,B,2] -> [B,4] */
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,4");
  add_ints(g, "split", (int64_t[]){-1, 2, 2}, 3);
  add_ints(g, "join", (int64_t[]){-1, 4}, 2);
  mb_add_node(g, NULL, "Reshape", "x,split", "a");
  add_node_ints(g, "Transpose", "a", "b", "perm", (int64_t[]){1, 0, 2}, 3);
  mb_add_node(g, NULL, "Reshape", "b,join", "y");
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,4");
}

static void build_no_rule(mb *g) { /* TopK keeps rows apart, but has no rule */
  mb_value_info(g, MB_GRAPH_INPUT, "x", 1, "batch,4");
  add_ints(g, "k", (int64_t[]){2}, 1);
  mb_add_node(g, NULL, "TopK", "x,k", "y,i");
  mb_value_info(g, MB_GRAPH_OUTPUT, "y", 1, "batch,2");
  mb_value_info(g, MB_GRAPH_OUTPUT, "i", 7, "batch,2");
}

/* ---- running ---------------------------------------------------------------------- */

static strand_session *open_model(build_fn build, unsigned slice_rows, unsigned threads) {
  mb g = mb_new();
  build(&g);
  mb m = mb_model(17, &g);
  strand_session_options o = {.struct_size = sizeof o, .intra_op_threads = threads,
                              .slice_rows = slice_rows};
  return session_from_options(&m, &o);
}

#define MAX_OUT 2

static strand_status run_all(strand_session *s, const strand_tensor *x, strand_tensor **outs,
                             size_t n_out) {
  const char *in = "x";
  for (size_t i = 0; i < n_out; i++) outs[i] = NULL;
  return strand_session_run(s, &in, &x, 1, NULL, outs, n_out);
}

/* Runs s on x `times` times, dropping the outputs (to plan, then prove). */
static void run_times(strand_session *s, const strand_tensor *x, int times) {
  for (int run = 0; run < times; run++) {
    strand_tensor *y = NULL;
    CHECK_OK(run_all(s, x, &y, 1));
    strand_tensor_release(y);
  }
}

static bool same_tensor(const strand_tensor *a, const strand_tensor *b) {
  size_t na = 0, nb = 1;
  void *da = NULL, *db = NULL;
  const int64_t *sa, *sb;
  size_t ra, rb;
  strand_tensor_byte_size(a, &na);
  strand_tensor_byte_size(b, &nb);
  strand_tensor_data(a, &da);
  strand_tensor_data(b, &db);
  strand_tensor_shape(a, &sa, &ra);
  strand_tensor_shape(b, &sb, &rb);
  return na == nb && ra == rb && memcmp(sa, sb, ra * sizeof *sa) == 0 &&
         (na == 0 || memcmp(da, db, na) == 0);
}

static void release_all(strand_tensor **t, size_t n) {
  for (size_t i = 0; i < n; i++) strand_tensor_release(t[i]);
}

static uint64_t sliced_runs(strand_session *s, uint64_t *slices) {
  strand_session_stats st = {.struct_size = sizeof st};
  if (strand_session_get_stats(s, &st)) return UINT64_MAX;
  if (slices) *slices = st.slices;
  return st.sliced_runs;
}

/* Runs `build` on x (dims) three times with slice_rows/threads and once
 * with slicing off; every output must be the same bytes. Returns the runs
 * made as slices. */
static uint64_t compare(build_fn build, const int64_t *dims, size_t rank, size_t n_out,
                        unsigned slice_rows, unsigned threads) {
  strand_session *whole = open_model(build, STRAND_SLICE_OFF, 1);
  strand_session *sliced = open_model(build, slice_rows, threads);
  strand_tensor *x = test_input_tensor(dims, rank, 3);
  strand_tensor *want[MAX_OUT] = {0}, *got[MAX_OUT] = {0};
  uint64_t runs = UINT64_MAX;
  if (!whole || !sliced || !x) {
    test_fail(__FILE__, __LINE__, "setup failed");
    goto out;
  }
  CHECK_OK(run_all(whole, x, want, n_out));
  /* Plans whole, proves and slices (or not), slices (or not). */
  for (int run = 0; run < 3; run++) {
    strand_status st = run_all(sliced, x, got, n_out);
    if (st) test_fail(__FILE__, __LINE__, "run %d: %s", run, strand_errmsg());
    for (size_t i = 0; i < n_out && !st; i++)
      if (!same_tensor(want[i], got[i])) test_fail(__FILE__, __LINE__, "run %d output %zu differs", run, i);
    release_all(got, n_out);
  }
  runs = sliced_runs(sliced, NULL);
  CHECK(sliced_runs(whole, NULL) == 0);
out:
  release_all(want, n_out);
  strand_tensor_release(x);
  strand_session_release(whole);
  strand_session_release(sliced);
  return runs;
}

/* ---- models whose rows are independent ------------------------------------------- */

TEST(independent_rows_are_sliced_and_give_the_same_bytes) {
  const int64_t mlp[] = {12, 8}, cnn[] = {6, 3, 6, 6}, att[] = {6, 4, 8}, fill[] = {10, 6};
  struct { build_fn build; const int64_t *dims; size_t rank; } cases[] = {
      {build_mlp, mlp, 2}, {build_cnn, cnn, 4}, {build_attention, att, 3}, {build_fill, fill, 2}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    /* One row per slice, two slices on two threads, strand's choice. */
    CHECK(compare(cases[c].build, cases[c].dims, cases[c].rank, 1, 1, 1) == 2);
    CHECK(compare(cases[c].build, cases[c].dims, cases[c].rank, 1, (unsigned)cases[c].dims[0] / 2,
                  2) == 2);
    CHECK(compare(cases[c].build, cases[c].dims, cases[c].rank, 1, 0, 2) != UINT64_MAX);
    if (test_failed_now()) test_fail(__FILE__, __LINE__, "in case %zu", c);
  }
}

TEST(slices_are_the_largest_divisor_of_the_rows) {
  /* 7 rows in slices of at most 2: seven slices of one; 12 in at most 5:
   * slices of 4. */
  strand_session *s = open_model(build_mlp, 2, 1);
  strand_tensor *x7 = test_input_tensor((int64_t[]){7, 8}, 2, 1);
  strand_tensor *x12 = test_input_tensor((int64_t[]){12, 8}, 2, 2);
  uint64_t slices = 0;
  REQUIRE(s && x7 && x12);
  run_times(s, x7, 3);
  CHECK(sliced_runs(s, &slices) == 2);
  CHECK(slices == 14);
  strand_session_release(s);
  s = open_model(build_mlp, 5, 1);
  if (s) run_times(s, x12, 3);
  CHECK(sliced_runs(s, &slices) == 2);
  CHECK(slices == 6);
  strand_session_release(s);
  strand_tensor_release(x7);
  strand_tensor_release(x12);
}

/* strand's own choice (slice_rows 0): products of one row per row get
 * slices of at least 8 rows, no more than the threads' share; one thread
 * gets none; a model with little work per run is never sliced. */
TEST(strand_picks_slices_where_they_pay) {
  const int64_t rows32[] = {32, 256}, rows12[] = {12, 8};
  strand_session *s = open_model(build_wide_mlp, 0, 2);
  strand_tensor *x = test_input_tensor(rows32, 2, 4);
  uint64_t slices = 0;
  REQUIRE(s && x);
  run_times(s, x, 3);
  if (strand_threads_get_budget() >= 2) {
    CHECK(sliced_runs(s, &slices) == 2);
    CHECK(slices == 4); /* 16 rows each: the share of two threads */
  }
  strand_tensor_release(x);
  strand_session_release(s);
  CHECK(compare(build_wide_mlp, rows32, 2, 1, 0, 1) == 0);
  CHECK(compare(build_mlp, rows12, 2, 1, 0, 2) == 0);
}

TEST(one_row_and_slicing_off_never_slice) {
  const int64_t one[] = {1, 8}, many[] = {16, 8};
  CHECK(compare(build_mlp, one, 2, 1, 1, 2) == 0);
  CHECK(compare(build_mlp, many, 2, 1, STRAND_SLICE_OFF, 2) == 0);
  /* Slices as large as the batch: nothing to slice. */
  CHECK(compare(build_mlp, many, 2, 1, 16, 1) == 0);
}

/* ---- models whose rows mix ---------------------------------------------------------- */

TEST(rows_that_mix_are_never_sliced) {
  const int64_t dims[] = {6, 4};
  struct { const char *name; build_fn build; size_t n_out; } cases[] = {
      {"mean over the batch", build_minus_mean, 1},
      {"softmax across rows", build_softmax_over_rows, 1},
      {"softmax across rows, transposed", build_softmax_transposed, 1},
      {"product contracting rows", build_gram, 1},
      {"rows reversed", build_reversed, 1},
      {"row count as data", build_times_rows, 1},
      {"rows interleaved by a reshape", build_interleaved, 1},
      {"an op without a rule", build_no_rule, 2}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    uint64_t runs = compare(cases[c].build, dims, 2, cases[c].n_out, 1, 2);
    if (runs != 0) test_fail(__FILE__, __LINE__, "%s: %llu sliced runs", cases[c].name,
                             (unsigned long long)runs);
  }
}

/* ---- runs -------------------------------------------------------------------------- */

TEST(caller_outputs_are_filled_in_place_or_refused) {
  strand_session *ref = open_model(build_cnn, STRAND_SLICE_OFF, 1);
  strand_session *s = open_model(build_cnn, 2, 2);
  strand_tensor *x = test_input_tensor((int64_t[]){8, 3, 6, 6}, 4, 5);
  strand_tensor *want = NULL, *mine = NULL, *wrong = NULL;
  REQUIRE(ref && s && x);
  CHECK_OK(run_all(ref, x, &want, 1));
  CHECK_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, (int64_t[]){8, 5}, 2, &mine));
  CHECK_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, (int64_t[]){8, 6}, 2, &wrong));
  const char *in = "x";
  for (int run = 0; run < 3; run++) {
    strand_tensor *out = mine;
    CHECK_OK(strand_session_run(s, &in, (const strand_tensor *const *)&x, 1, NULL, &out, 1));
    CHECK(out == mine && same_tensor(want, mine));
    out = wrong;
    CHECK_STATUS(STRAND_E_SHAPE,
                 strand_session_run(s, &in, (const strand_tensor *const *)&x, 1, NULL, &out, 1));
    CHECK_MSG("has shape [8, 5]");
  }
  CHECK(sliced_runs(s, NULL) == 2);
  strand_tensor_release(want);
  strand_tensor_release(mine);
  strand_tensor_release(wrong);
  strand_tensor_release(x);
  strand_session_release(ref);
  strand_session_release(s);
}

TEST(misaligned_inputs_and_outputs_slice_too) {
  strand_session *ref = open_model(build_mlp, STRAND_SLICE_OFF, 1);
  strand_session *s = open_model(build_mlp, 3, 2);
  strand_tensor *x = test_input_tensor((int64_t[]){9, 8}, 2, 7), *want = NULL;
  REQUIRE(ref && s && x);
  CHECK_OK(run_all(ref, x, &want, 1));
  /* Both buffers one byte off float alignment. */
  unsigned char *in_buf = malloc(9 * 8 * sizeof(float) + 1), *out_buf = malloc(9 * 4 * sizeof(float) + 1);
  void *xd;
  strand_tensor_data(x, &xd);
  memcpy(in_buf + 1, xd, 9 * 8 * sizeof(float));
  strand_tensor *xin = NULL, *out = NULL;
  CHECK_OK(strand_tensor_wrap(STRAND_DTYPE_FLOAT32, (int64_t[]){9, 8}, 2, in_buf + 1,
                              9 * 8 * sizeof(float), NULL, NULL, &xin));
  CHECK_OK(strand_tensor_wrap(STRAND_DTYPE_FLOAT32, (int64_t[]){9, 4}, 2, out_buf + 1,
                              9 * 4 * sizeof(float), NULL, NULL, &out));
  const char *in = "x";
  for (int run = 0; run < 3 && xin && out; run++) {
    strand_tensor *o = out;
    CHECK_OK(strand_session_run(s, &in, (const strand_tensor *const *)&xin, 1, NULL, &o, 1));
    CHECK(same_tensor(want, out));
  }
  CHECK(sliced_runs(s, NULL) == 2);
  strand_tensor_release(xin);
  strand_tensor_release(out);
  free(in_buf);
  free(out_buf);
  strand_tensor_release(want);
  strand_tensor_release(x);
  strand_session_release(ref);
  strand_session_release(s);
}

TEST(a_passed_deadline_stops_a_sliced_run) {
  strand_session *s = open_model(build_cnn, 1, 2);
  strand_tensor *x = test_input_tensor((int64_t[]){8, 3, 6, 6}, 4, 1), *y = NULL;
  REQUIRE(s && x);
  run_times(s, x, 2); /* plan, then prove */
  strand_run_options o = {.struct_size = sizeof o, .deadline_ns = 1};
  const char *in = "x";
  y = NULL;
  CHECK_STATUS(STRAND_E_DEADLINE, strand_session_run_with_options(
                                      s, &o, &in, (const strand_tensor *const *)&x, 1, NULL, &y, 1));
  CHECK(y == NULL);
  CHECK(sliced_runs(s, NULL) == 1);
  strand_tensor_release(x);
  strand_session_release(s);
}

TEST(a_memory_limit_fails_a_slice_cleanly) {
  strand_session *s = open_model(build_cnn, 1, 1);
  strand_tensor *x = test_input_tensor((int64_t[]){8, 3, 6, 6}, 4, 1), *y = NULL;
  REQUIRE(s && x);
  run_times(s, x, 1); /* whole: plans */
  strand_memory_stats m = {.struct_size = sizeof m};
  CHECK_OK(strand_memory_get_stats(&m));
  /* The first slice plans and needs an arena of its own: no room. */
  strand_memory_set_limit(m.total_live_bytes + 64);
  strand_status st = run_all(s, x, &y, 1);
  CHECK(st == STRAND_E_MEMORY_LIMIT);
  CHECK(y == NULL);
  strand_memory_set_limit(0);
  run_times(s, x, 2);
  CHECK(sliced_runs(s, NULL) == 2);
  strand_tensor_release(x);
  strand_session_release(s);
}

/* Every allocation of a run that proves and slices, failed in turn: the run
 * fails with STRAND_E_OUT_OF_MEMORY or gives the right bytes, nothing
 * leaks, and a failure never keeps later runs from slicing (a failed proof
 * is not a verdict). */
TEST(each_failed_allocation_of_a_sliced_run_is_clean) {
  strand_session *ref = open_model(build_attention, STRAND_SLICE_OFF, 1);
  strand_tensor *x = test_input_tensor((int64_t[]){4, 4, 8}, 3, 9), *want = NULL;
  REQUIRE(ref && x);
  CHECK_OK(run_all(ref, x, &want, 1));
  strand_session_release(ref);
  int untouched = 0;
  for (uint64_t n = 1; n < 2000 && untouched < 3 && !test_failed_now(); n++) {
    strand_session *s = open_model(build_attention, 1, 2);
    REQUIRE(s);
    run_times(s, x, 1); /* plans whole, unarmed */
    strand_memory_stats before = {.struct_size = sizeof before};
    strand_memory_stats after = {.struct_size = sizeof after};
    CHECK_OK(strand_memory_get_stats(&before));
    strand_tensor *y = NULL;
    strand_memory_fail_nth(n);
    strand_status st = run_all(s, x, &y, 1);
    strand_memory_fail_nth(0);
    CHECK_OK(strand_memory_get_stats(&after));
    CHECK(st == STRAND_OK || st == STRAND_E_OUT_OF_MEMORY);
    CHECK(st != STRAND_OK || same_tensor(want, y));
    CHECK(st == STRAND_OK || y == NULL);
    strand_tensor_release(y);
    if (after.failed_allocations == before.failed_allocations) untouched++;
    for (int run = 0; run < 2; run++) {
      CHECK_OK(run_all(s, x, &y, 1));
      CHECK(same_tensor(want, y));
      strand_tensor_release(y);
    }
    CHECK(sliced_runs(s, NULL) >= 1);
    if (test_failed_now()) fprintf(stderr, "    failing allocation %llu\n", (unsigned long long)n);
    strand_session_release(s);
  }
  CHECK(untouched == 3);
  strand_tensor_release(want);
  strand_tensor_release(x);
}

/* Many callers slicing one session at once, each with its own row count. */
typedef struct callers {
  strand_session *sliced, *whole;
  atomic_int next;
} callers;

static void *caller(void *arg) {
  callers *c = arg;
  int id = atomic_fetch_add(&c->next, 1);
  int64_t rows = 2 + id % 5;
  strand_tensor *x = test_input_tensor((int64_t[]){rows, 4, 8}, 3, (unsigned)id), *want = NULL, *got = NULL;
  if (!x || run_all(c->whole, x, &want, 1)) {
    test_fail(__FILE__, __LINE__, "caller %d: setup: %s", id, strand_errmsg());
  } else {
    for (int run = 0; run < 20; run++) {
      if (run_all(c->sliced, x, &got, 1)) {
        test_fail(__FILE__, __LINE__, "caller %d run %d: %s", id, run, strand_errmsg());
        break;
      }
      if (!same_tensor(want, got)) test_fail(__FILE__, __LINE__, "caller %d run %d differs", id, run);
      strand_tensor_release(got);
    }
  }
  strand_tensor_release(want);
  strand_tensor_release(x);
  return NULL;
}

TEST(many_callers_slice_one_session_at_once) {
  callers c = {open_model(build_attention, 1, 2), open_model(build_attention, STRAND_SLICE_OFF, 1),
               0};
  REQUIRE(c.sliced && c.whole);
  test_run_threads(8, caller, &c);
  CHECK(sliced_runs(c.sliced, NULL) > 0);
  strand_session_release(c.sliced);
  strand_session_release(c.whole);
}
