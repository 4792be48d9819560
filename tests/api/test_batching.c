/* Dynamic batching (strand_session_options.batch_max_rows), through strand.h
 * only: every caller gets bit for bit what its own unbatched run gives, on
 * MLPs (packed SGEMM, with K above the cache block) and a CNN; the kernels'
 * per-row results do not depend on how many rows are stacked; runs that
 * cannot be stacked run alone with their usual result or error; runs waiting
 * to be batched stop at once when canceled or past their deadline; the
 * session may be released while runs are queued; every allocation failure
 * of a batched run is clean. Run under ThreadSanitizer too. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "model_builder.h"
#include "test.h"

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t next_random(uint32_t *state) {
  *state = *state * 1664525u + 1013904223u;
  return *state;
}

static float random_float(uint32_t *state, float scale) {
  return ((float)(next_random(state) >> 8) / (float)(1u << 24) - 0.5f) * scale;
}

/* A model: "mlp_tiny", "cnn_tiny" from models/, or "mlp_784" built here
 * (784-512-10, Gemm + Relu, random weights). Its input width per row. */
typedef struct model_case {
  const char *name;
  int64_t dims[4]; /* dims[0] is the batch */
  size_t rank;
} model_case;

static const model_case cases[] = {
    {"mlp_tiny", {0, 16}, 2},
    {"cnn_tiny", {0, 1, 28, 28}, 4},
    {"mlp_784", {0, 784}, 2},
};

static strand_model *load_case(const model_case *c) {
  strand_model *model = NULL;
  if (strcmp(c->name, "mlp_784") != 0) {
    char path[128];
    snprintf(path, sizeof path, "models/%s.onnx", c->name);
    if (strand_model_load(test_source_path(path), &model))
      test_fail(__FILE__, __LINE__, "load %s: %s", path, strand_errmsg());
    return model;
  }
  static const int64_t sizes[3] = {784, 512, 10};
  uint32_t state = 12345;
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "input", 1, "batch,784");
  for (int layer = 0; layer < 2; layer++) {
    int64_t in = sizes[layer], out = sizes[layer + 1];
    size_t n = (size_t)(in * out);
    float *w = malloc(n * sizeof *w), *bias = malloc((size_t)out * sizeof *bias);
    for (size_t i = 0; i < n; i++) w[i] = random_float(&state, 0.1f);
    for (int64_t i = 0; i < out; i++) bias[i] = random_float(&state, 0.2f);
    char wn[16], bn[16], a[16], y[16], r[16];
    snprintf(wn, sizeof wn, "w%d", layer);
    snprintf(bn, sizeof bn, "b%d", layer);
    int64_t wd[2] = {out, in};
    mb_initializer_float(&g, wn, wd, 2, w, n);
    mb_initializer_float(&g, bn, &out, 1, bias, (size_t)out);
    free(w);
    free(bias);
    snprintf(a, sizeof a, "%s", layer == 0 ? "input" : "h0");
    snprintf(y, sizeof y, "%s", layer == 1 ? "output" : "g0");
    char inputs[64];
    snprintf(inputs, sizeof inputs, "%s,%s,%s", a, wn, bn);
    mb gemm = mb_node(layer ? "fc1" : "fc0", "Gemm", inputs, y);
    mb_attr_int(&gemm, "transB", 1);
    mb_msg(&g, MB_GRAPH_NODE, &gemm);
    if (layer == 0) {
      snprintf(r, sizeof r, "h0");
      mb_add_node(&g, "relu0", "Relu", "g0", r);
    }
  }
  mb_value_info(&g, MB_GRAPH_OUTPUT, "output", 1, "batch,10");
  mb m = mb_model(13, &g);
  if (strand_model_load_buffer(m.data, m.size, &model))
    test_fail(__FILE__, __LINE__, "load mlp_784: %s", strand_errmsg());
  mb_free(&m);
  return model;
}

static strand_session *session_for(strand_model *model, unsigned max_rows, uint32_t delay_us,
                                   unsigned intra_op_threads) {
  strand_session_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.intra_op_threads = intra_op_threads;
  o.batch_max_rows = max_rows;
  o.batch_delay_us = delay_us;
  strand_session *s = NULL;
  if (strand_session_create(model, &o, &s))
    test_fail(__FILE__, __LINE__, "session: %s", strand_errmsg());
  return s;
}

static strand_tensor *make_input(const model_case *c, int64_t rows, uint32_t seed) {
  int64_t dims[4];
  memcpy(dims, c->dims, sizeof dims);
  dims[0] = rows;
  strand_tensor *t = NULL;
  if (strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, c->rank, &t)) return NULL;
  size_t n = 0;
  strand_tensor_element_count(t, &n);
  float *x;
  strand_tensor_data(t, (void **)&x);
  uint32_t state = seed * 2654435761u + 7;
  for (size_t i = 0; i < n; i++) x[i] = random_float(&state, 2.0f);
  return t;
}

static const char *input_name = "input";

static strand_status run1(strand_session *s, strand_tensor *x, strand_tensor **y) {
  return strand_session_run(s, &input_name, (const strand_tensor *const *)&x, 1, NULL, y, 1);
}

static int same_bits(const strand_tensor *a, const strand_tensor *b) {
  const int64_t *da, *db;
  size_t ra, rb, na, nb;
  if (strand_tensor_shape(a, &da, &ra) || strand_tensor_shape(b, &db, &rb) || ra != rb) return 0;
  if (memcmp(da, db, ra * sizeof *da) != 0) return 0;
  strand_tensor_byte_size(a, &na);
  strand_tensor_byte_size(b, &nb);
  void *pa, *pb;
  strand_tensor_data(a, &pa);
  strand_tensor_data(b, &pb);
  return na == nb && memcmp(pa, pb, na) == 0;
}

/* ---- the kernels: a row's result does not depend on the rows beside it -------- */

/* Runs `rows` rows stacked (unbatched session) and each row alone; every row
 * of the stacked output must equal the row run alone, bit for bit. */
static void rows_independent(const model_case *c, unsigned intra_op_threads) {
  strand_model *model = load_case(c);
  REQUIRE(model);
  strand_session *s = session_for(model, 0, 0, intra_op_threads);
  strand_model_release(model);
  REQUIRE(s);
  static const int64_t counts[] = {1, 2, 3, 5, 6, 7, 13, 16, 31, 64};
  for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
    int64_t rows = counts[k];
    strand_tensor *x = make_input(c, rows, (uint32_t)(100 + k)), *y = NULL;
    REQUIRE_OK(run1(s, x, &y));
    size_t in_bytes, out_bytes;
    strand_tensor_byte_size(x, &in_bytes);
    strand_tensor_byte_size(y, &out_bytes);
    void *xd, *yd;
    strand_tensor_data(x, &xd);
    strand_tensor_data(y, &yd);
    int mismatched_rows = 0;
    for (int64_t r = 0; r < rows; r++) {
      strand_tensor *one = make_input(c, 1, 0), *y1 = NULL;
      void *od;
      strand_tensor_data(one, &od);
      memcpy(od, (char *)xd + (size_t)r * (in_bytes / (size_t)rows), in_bytes / (size_t)rows);
      CHECK_OK(run1(s, one, &y1));
      void *y1d;
      strand_tensor_data(y1, &y1d);
      size_t row_bytes = out_bytes / (size_t)rows;
      if (memcmp(y1d, (char *)yd + (size_t)r * row_bytes, row_bytes) != 0) mismatched_rows++;
      strand_tensor_release(one);
      strand_tensor_release(y1);
    }
    if (mismatched_rows)
      test_fail(__FILE__, __LINE__, "%s (%u threads): %d of %lld rows differ when stacked",
                c->name, intra_op_threads, mismatched_rows, (long long)rows);
    strand_tensor_release(x);
    strand_tensor_release(y);
  }
  strand_session_release(s);
}

TEST(kernels_give_each_row_the_same_bits_stacked_or_alone) {
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    rows_independent(&cases[i], 1);
    rows_independent(&cases[i], 0);
  }
}

/* ---- many threads through the batcher ------------------------------------------ */

#define THREADS 16
#define REQUESTS 24 /* per thread */

typedef struct workload {
  strand_session *session;
  const model_case *model;
  unsigned max_rows;
  strand_tensor *inputs[THREADS][REQUESTS];
  strand_tensor *expected[THREADS][REQUESTS]; /* unbatched, one thread */
  strand_tensor *given[THREADS][REQUESTS];    /* caller-supplied output, or NULL */
  atomic_int next, mismatches, failures;
} workload;

/* Request (t, i): mostly 1-3 rows; every 7th too many rows to stack, every
 * 5th with a caller-supplied output (neither can be batched). */
static int64_t request_rows(int t, int i, unsigned max_rows) {
  if (i % 7 == 6) return max_rows + 1;
  return 1 + (t + i) % 3;
}

static void *batch_runner(void *arg) {
  workload *w = arg;
  int me = atomic_fetch_add(&w->next, 1);
  for (int i = 0; i < REQUESTS; i++) {
    strand_tensor *out = w->given[me][i];
    strand_status st = run1(w->session, w->inputs[me][i], &out);
    if (st) {
      atomic_fetch_add(&w->failures, 1);
      fprintf(stderr, "    thread %d request %d: %s\n", me, i, strand_errmsg());
    } else if (!same_bits(out, w->expected[me][i])) {
      atomic_fetch_add(&w->mismatches, 1);
    }
    if (out != w->given[me][i]) strand_tensor_release(out);
  }
  return NULL;
}

static void batched_threads(const model_case *c, unsigned max_rows, uint32_t delay_us) {
  strand_model *model = load_case(c);
  REQUIRE(model);
  strand_session *plain = session_for(model, 0, 0, 0);
  workload *w = calloc(1, sizeof *w);
  w->session = session_for(model, max_rows, delay_us, 0);
  strand_model_release(model);
  REQUIRE(plain && w->session);
  w->model = c;
  w->max_rows = max_rows;
  uint64_t eligible_rows = 0, eligible = 0;
  for (int t = 0; t < THREADS; t++)
    for (int i = 0; i < REQUESTS; i++) {
      int64_t rows = request_rows(t, i, max_rows);
      w->inputs[t][i] = make_input(c, rows, (uint32_t)(t * 1000 + i));
      CHECK_OK(run1(plain, w->inputs[t][i], &w->expected[t][i]));
      if (i % 5 == 4) {
        const int64_t *dims;
        size_t rank;
        strand_tensor_shape(w->expected[t][i], &dims, &rank);
        CHECK_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, rank, &w->given[t][i]));
      } else if (rows <= (int64_t)max_rows) {
        eligible++;
        eligible_rows += (uint64_t)rows;
      }
    }
  test_run_threads(THREADS, batch_runner, w);
  CHECK(atomic_load(&w->failures) == 0);
  CHECK(atomic_load(&w->mismatches) == 0);
  strand_session_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_session_get_stats(w->session, &st));
  CHECK(st.runs == THREADS * REQUESTS);
  /* Every eligible run went through the batcher, and some were stacked. */
  CHECK(st.batched_runs == eligible);
  CHECK(st.batched_rows == eligible_rows);
  CHECK(st.batches > 0 && st.batches < st.batched_runs);
  fprintf(stderr, "    %s max %u delay %u us: %llu runs in %llu batches (mean %.2f), mean "
          "wait %.1f us\n", c->name, max_rows, delay_us, (unsigned long long)st.batched_runs,
          (unsigned long long)st.batches, (double)st.batched_runs / (double)st.batches,
          (double)st.batch_wait_ns / 1e3 / (double)st.batched_runs);
  for (int t = 0; t < THREADS; t++)
    for (int i = 0; i < REQUESTS; i++) {
      strand_tensor_release(w->inputs[t][i]);
      strand_tensor_release(w->expected[t][i]);
      strand_tensor_release(w->given[t][i]);
    }
  strand_session_release(w->session);
  strand_session_release(plain);
  free(w);
}

TEST(sixteen_threads_get_their_unbatched_bits) {
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) batched_threads(&cases[i], 8, 2000);
  batched_threads(&cases[0], 32, 500);
}

/* ---- what is not batched --------------------------------------------------------- */

TEST(unbatchable_runs_keep_their_results_and_errors) {
  strand_model *model = load_case(&cases[0]);
  REQUIRE(model);
  strand_session *s = session_for(model, 8, 100, 0);
  strand_model_release(model);
  REQUIRE(s);
  /* Wrong dtype: the unbatched message. */
  int64_t dims[2] = {1, 16};
  strand_tensor *bad = NULL, *y = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT64, dims, 2, &bad));
  CHECK_STATUS(STRAND_E_DTYPE, run1(s, bad, &y));
  CHECK_MSG("input \"input\": expected float32, given float64");
  CHECK(y == NULL);
  strand_tensor_release(bad);
  /* Wrong width. */
  dims[1] = 15;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 2, &bad));
  CHECK_STATUS(STRAND_E_SHAPE, run1(s, bad, &y));
  CHECK_MSG("input \"input\": dimension 1 is 15, expected 16");
  strand_tensor_release(bad);
  /* Zero rows. */
  dims[0] = 0;
  dims[1] = 16;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 2, &bad));
  CHECK_OK(run1(s, bad, &y));
  strand_tensor_release(y);
  y = NULL;
  strand_tensor_release(bad);
  /* An unknown output name. */
  strand_tensor *x = make_input(&cases[0], 1, 1);
  const char *out_name = "nope";
  CHECK_STATUS(STRAND_E_NOT_FOUND, strand_session_run(s, &input_name,
                                                      (const strand_tensor *const *)&x, 1,
                                                      &out_name, &y, 1));
  CHECK_MSG("no output named \"nope\"");
  strand_tensor_release(x);
  /* A released input: misuse, counted once. */
  strand_tensor *gone = make_input(&cases[0], 1, 2);
  strand_tensor_release(gone);
  uint64_t misuse = strand_misuse_count();
  CHECK_STATUS(STRAND_E_MISUSE, run1(s, gone, &y));
  CHECK_MSG("input \"input\"");
  CHECK_MSG("already released");
  CHECK(strand_misuse_count() == misuse + 1);
  CHECK(y == NULL);
  strand_session_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_session_get_stats(s, &st));
  CHECK(st.batched_runs == 0 && st.batches == 0);
  strand_session_release(s);
}

/* A model without a symbolic batch dimension runs every run alone. */
TEST(models_without_a_batch_dimension_run_alone) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "input", 1, "2,3");
  mb_add_node(&g, "neg", "Neg", "input", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb m = mb_model(17, &g);
  strand_model *model = NULL;
  CHECK_OK(strand_model_load_buffer(m.data, m.size, &model));
  mb_free(&m);
  REQUIRE(model);
  strand_session *s = session_for(model, 8, 100, 0);
  strand_model_release(model);
  REQUIRE(s);
  int64_t dims[2] = {2, 3};
  strand_tensor *x = NULL, *y = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 2, &x));
  CHECK_OK(run1(s, x, &y));
  strand_session_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_session_get_stats(s, &st));
  CHECK(st.runs == 1 && st.batched_runs == 0);
  strand_tensor_release(x);
  strand_tensor_release(y);
  strand_session_release(s);
}

/* ---- waiting runs stop when canceled or late -------------------------------------- */

typedef struct waiter {
  strand_session *session;
  strand_tensor *x, *expected;
  atomic_int status;
  atomic_int started;
} waiter;

static void *leader_run(void *arg) {
  waiter *w = arg;
  strand_tensor *y = NULL;
  atomic_store(&w->started, 1);
  strand_status st = run1(w->session, w->x, &y);
  if (!st && !same_bits(y, w->expected)) st = STRAND_E_INTERNAL;
  atomic_store(&w->status, (int)st);
  strand_tensor_release(y);
  return NULL;
}

typedef struct delayed_cancel {
  strand_cancel_token *token;
  unsigned delay_us;
} delayed_cancel;

static void *cancel_after(void *arg) {
  delayed_cancel *d = arg;
  usleep(d->delay_us);
  strand_cancel_token_cancel(d->token);
  return NULL;
}

/* A leader waits 300 ms for company (max rows far away); a second run waits
 * behind it and is canceled (or times out) after 20 ms: it returns at once,
 * long before the leader's delay is over. */
TEST(queued_runs_stop_when_canceled_or_late) {
  strand_model *model = load_case(&cases[0]);
  REQUIRE(model);
  strand_session *plain = session_for(model, 0, 0, 0);
  strand_session *s = session_for(model, 64, 300000, 0);
  strand_model_release(model);
  REQUIRE(plain && s);
  waiter w = {s, make_input(&cases[0], 1, 5), NULL, 0, 0};
  CHECK_OK(run1(plain, w.x, &w.expected));
  strand_tensor *x = make_input(&cases[0], 2, 6);
  for (int mode = 0; mode < 2; mode++) {
    atomic_store(&w.started, 0);
    pthread_t leader, canceler;
    pthread_create(&leader, NULL, leader_run, &w);
    while (!atomic_load(&w.started)) {}
    usleep(5000);
    strand_cancel_token *t = NULL;
    REQUIRE_OK(strand_cancel_token_create(&t));
    delayed_cancel d = {t, 20000};
    strand_run_options o = {sizeof o, 0, 0, NULL};
    if (mode == 0) {
      o.cancel = t;
      pthread_create(&canceler, NULL, cancel_after, &d);
    } else {
      o.timeout_us = 20000;
    }
    strand_tensor *y = NULL;
    uint64_t start = now_ns();
    strand_status st = strand_session_run_with_options(
        s, &o, &input_name, (const strand_tensor *const *)&x, 1, NULL, &y, 1);
    uint64_t took = now_ns() - start;
    CHECK(st == (mode == 0 ? STRAND_E_CANCELED : STRAND_E_DEADLINE));
    CHECK_MSG(mode == 0 ? "canceled by the run's token while waiting to be batched"
                        : "deadline passed while waiting to be batched");
    CHECK(y == NULL);
    CHECK(took < 200000000u); /* well before the leader's 300 ms */
    if (mode == 0) pthread_join(canceler, NULL);
    pthread_join(leader, NULL);
    CHECK(atomic_load(&w.status) == STRAND_OK);
    strand_cancel_token_release(t);
  }
  strand_session_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_session_get_stats(s, &st));
  CHECK(st.runs == 2 && st.runs_canceled == 2);
  strand_tensor_release(x);
  strand_tensor_release(w.x);
  strand_tensor_release(w.expected);
  strand_session_release(s);
  strand_session_release(plain);
}

typedef struct timed_waiter {
  waiter w;
  uint64_t took_ns;
} timed_waiter;

static void *timed_leader_run(void *arg) {
  timed_waiter *t = arg;
  uint64_t start = now_ns();
  leader_run(&t->w);
  t->took_ns = now_ns() - start;
  return NULL;
}

/* Who runs a batch. A leader of 1 row waits (delay 2 s) and a run of 2
 * rows makes it 3 = max rows: that run takes the batch and runs it, and
 * both return at once with their own bits. A leader of 2 rows and a run of
 * 2 more make 4 > 3: the leader is woken, runs alone at once, and the
 * second run, leader now, waits out its delay (200 ms) and runs alone. */
TEST(the_run_that_fills_a_batch_runs_it_and_an_overflow_wakes_the_leader) {
  strand_model *model = load_case(&cases[0]);
  REQUIRE(model);
  strand_session *plain = session_for(model, 0, 0, 0);
  REQUIRE(plain);
  for (int overflow = 0; overflow < 2; overflow++) {
    strand_session *s = session_for(model, 3, overflow ? 200000 : 2000000, 0);
    REQUIRE(s);
    const int64_t first_rows = overflow ? 2 : 1, second_rows = 2;
    timed_waiter t = {{s, make_input(&cases[0], first_rows, 31), NULL, 0, 0}, 0};
    strand_tensor *x = make_input(&cases[0], second_rows, 32), *want = NULL, *y = NULL;
    CHECK_OK(run1(plain, t.w.x, &t.w.expected));
    CHECK_OK(run1(plain, x, &want));
    pthread_t leader;
    pthread_create(&leader, NULL, timed_leader_run, &t);
    while (!atomic_load(&t.w.started)) {}
    usleep(20000); /* the leader is queued and collecting by now */
    uint64_t start = now_ns();
    CHECK_OK(run1(s, x, &y));
    uint64_t took = now_ns() - start;
    pthread_join(leader, NULL);
    CHECK(atomic_load(&t.w.status) == STRAND_OK);
    CHECK(y && same_bits(y, want));
    strand_session_stats st = {.struct_size = sizeof st};
    CHECK_OK(strand_session_get_stats(s, &st));
    if (!overflow) {
      /* One stacked batch, long before the 2 s delay. */
      CHECK(st.batches == 1 && st.batched_runs == 2 && st.batched_rows == 3);
      CHECK(took < 1000000000u && t.took_ns < 1000000000u);
    } else {
      /* Two batches of one: the leader at once, the second after its delay. */
      CHECK(st.batches == 2 && st.batched_runs == 2 && st.batched_rows == 4);
      CHECK(t.took_ns < 150000000u);
      CHECK(took >= 190000000u);
    }
    if (test_failed_now())
      printf("    overflow %d: batches %llu, runs %llu, rows %llu; took %.1f ms (leader %.1f ms)\n",
             overflow, (unsigned long long)st.batches, (unsigned long long)st.batched_runs,
             (unsigned long long)st.batched_rows, took / 1e6, t.took_ns / 1e6);
    strand_tensor_release(x);
    strand_tensor_release(want);
    strand_tensor_release(y);
    strand_tensor_release(t.w.x);
    strand_tensor_release(t.w.expected);
    strand_session_release(s);
  }
  strand_session_release(plain);
  strand_model_release(model);
}

/* The leader itself is canceled while it collects: the next run in the queue
 * takes over and everyone else still gets a right answer. */
TEST(a_canceled_leader_hands_over) {
  strand_model *model = load_case(&cases[0]);
  REQUIRE(model);
  strand_session *plain = session_for(model, 0, 0, 0);
  strand_session *s = session_for(model, 64, 100000, 0);
  strand_model_release(model);
  REQUIRE(plain && s);
  strand_cancel_token *t = NULL;
  REQUIRE_OK(strand_cancel_token_create(&t));
  strand_tensor *x = make_input(&cases[0], 1, 9);
  waiter w = {s, make_input(&cases[0], 3, 10), NULL, 0, 0};
  CHECK_OK(run1(plain, w.x, &w.expected));
  /* This thread leads (it queues first), the other follows. */
  pthread_t follower, canceler;
  delayed_cancel d = {t, 30000};
  pthread_create(&canceler, NULL, cancel_after, &d);
  pthread_create(&follower, NULL, leader_run, &w); /* starts within the 30 ms */
  strand_run_options o = {sizeof o, 0, 0, t};
  strand_tensor *y = NULL;
  strand_status st = strand_session_run_with_options(
      s, &o, &input_name, (const strand_tensor *const *)&x, 1, NULL, &y, 1);
  CHECK(st == STRAND_E_CANCELED);
  CHECK(y == NULL);
  pthread_join(canceler, NULL);
  pthread_join(follower, NULL);
  CHECK(atomic_load(&w.status) == STRAND_OK);
  strand_cancel_token_release(t);
  strand_tensor_release(x);
  strand_tensor_release(w.x);
  strand_tensor_release(w.expected);
  strand_session_release(s);
  strand_session_release(plain);
}

/* ---- the session released while runs are queued ---------------------------------- */

typedef struct orphan {
  strand_session *session;
  strand_tensor *x, *expected;
  atomic_int ready, wrong;
} orphan;

static void *orphan_runner(void *arg) {
  orphan *o = arg;
  strand_session *s = o->session;
  if (strand_session_retain(s)) atomic_fetch_add(&o->wrong, 1); /* before the hand-off */
  atomic_fetch_add(&o->ready, 1);
  for (int i = 0; i < 4; i++) {
    strand_tensor *y = NULL;
    if (run1(s, o->x, &y) || !same_bits(y, o->expected)) atomic_fetch_add(&o->wrong, 1);
    strand_tensor_release(y);
  }
  strand_session_release(s);
  return NULL;
}

static void *orphan_releaser(void *arg) {
  orphan *o = arg;
  while (atomic_load(&o->ready) < 8) {}
  usleep(2000); /* the runners are now queued behind a 20 ms delay */
  strand_session_release(o->session);
  return NULL;
}

static void *orphan_thread(void *arg) {
  static atomic_int n;
  return atomic_fetch_add(&n, 1) % 9 == 8 ? orphan_releaser(arg) : orphan_runner(arg);
}

TEST(session_released_while_runs_are_queued) {
  strand_model *model = load_case(&cases[0]);
  REQUIRE(model);
  strand_session *plain = session_for(model, 0, 0, 0);
  orphan o = {session_for(model, 64, 20000, 0), make_input(&cases[0], 1, 3), NULL, 0, 0};
  strand_model_release(model);
  REQUIRE(plain && o.session);
  CHECK_OK(run1(plain, o.x, &o.expected));
  test_run_threads(9, orphan_thread, &o);
  CHECK(atomic_load(&o.wrong) == 0);
  strand_memory_stats m = {.struct_size = sizeof m};
  CHECK_OK(strand_memory_get_stats(&m));
  CHECK(m.live_objects[STRAND_KIND_SESSION] == 1); /* `plain` only */
  strand_tensor_release(o.x);
  strand_tensor_release(o.expected);
  strand_session_release(plain);
}

/* ---- allocation failures ----------------------------------------------------------- */

typedef struct pair_run {
  strand_session *session;
  strand_tensor *x[2], *expected[2];
  atomic_int next;
  strand_status status[2];
  int right[2];
} pair_run;

static void *pair_runner(void *arg) {
  pair_run *p = arg;
  int me = atomic_fetch_add(&p->next, 1);
  strand_tensor *y = NULL;
  p->status[me] = run1(p->session, p->x[me], &y);
  p->right[me] = p->status[me] ? y == NULL : same_bits(y, p->expected[me]);
  strand_tensor_release(y);
  return NULL;
}

/* Two threads whose runs stack (max 3 rows = 1 + 2: the second arrival
 * completes the batch) while the n-th allocation fails, n = 1, 2, ...: each
 * run returns OK with the right output or STRAND_E_OUT_OF_MEMORY with no
 * output, nothing leaks, and the sweep reaches an n past every allocation.
 * (A failure inside the stacked run sends both runs alone, where the one
 * armed failure is spent already: most such runs still succeed.) */
TEST(every_allocation_failure_of_a_batched_run_is_clean) {
  strand_model *model = load_case(&cases[0]);
  REQUIRE(model);
  strand_session *plain = session_for(model, 0, 0, 1);
  pair_run p;
  memset(&p, 0, sizeof p);
  p.x[0] = make_input(&cases[0], 1, 21);
  p.x[1] = make_input(&cases[0], 2, 22);
  for (int i = 0; i < 2; i++) CHECK_OK(run1(plain, p.x[i], &p.expected[i]));
  strand_session_release(plain);
  int untouched = 0;
  uint64_t injected = 0;
  for (uint64_t n = 1; n < 1000 && untouched < 3; n++) {
    strand_session *s = session_for(model, 3, 1000000, 1);
    REQUIRE(s);
    strand_tensor *warm = NULL; /* plan the 3-row shape first, unarmed */
    strand_tensor *x3 = make_input(&cases[0], 3, 1);
    CHECK_OK(run1(s, x3, &warm));
    strand_tensor_release(warm);
    strand_tensor_release(x3);
    p.session = s;
    atomic_store(&p.next, 0);
    strand_memory_stats before = {.struct_size = sizeof before};
    strand_memory_stats after = {.struct_size = sizeof after};
    CHECK_OK(strand_memory_get_stats(&before));
    strand_memory_fail_nth(n);
    test_run_threads(2, pair_runner, &p);
    strand_memory_fail_nth(0);
    CHECK_OK(strand_memory_get_stats(&after));
    for (int i = 0; i < 2; i++) {
      CHECK(p.status[i] == STRAND_OK || p.status[i] == STRAND_E_OUT_OF_MEMORY);
      CHECK(p.right[i]);
    }
    injected += after.failed_allocations - before.failed_allocations;
    strand_session_stats st = {.struct_size = sizeof st};
    CHECK_OK(strand_session_get_stats(s, &st));
    if (after.failed_allocations == before.failed_allocations) {
      /* n is past every allocation the pair makes: both stacked, both right. */
      untouched++;
      CHECK(p.status[0] == STRAND_OK && p.status[1] == STRAND_OK);
      /* The warm-up was a batch of its own. */
      CHECK(st.batches == 2 && st.batched_runs == 3 && st.batched_rows == 6);
    }
    if (test_failed_now())
      fprintf(stderr, "    n=%llu: statuses %d %d, batches %llu runs %llu, failed allocs %llu\n",
              (unsigned long long)n, p.status[0], p.status[1], (unsigned long long)st.batches,
              (unsigned long long)st.batched_runs,
              (unsigned long long)(after.failed_allocations - before.failed_allocations));
    strand_session_release(s);
    strand_memory_stats m = {.struct_size = sizeof m};
    CHECK_OK(strand_memory_get_stats(&m));
    CHECK(m.live_objects[STRAND_KIND_SESSION] == 0);
    CHECK(m.live_objects[STRAND_KIND_TENSOR] == 4); /* the inputs and expectations */
    if (test_failed_now()) break;
  }
  CHECK(injected > 0);
  CHECK(untouched == 3);
  strand_model_release(model);
  for (int i = 0; i < 2; i++) {
    strand_tensor_release(p.x[i]);
    strand_tensor_release(p.expected[i]);
  }
}
