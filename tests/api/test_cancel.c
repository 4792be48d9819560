/* Cancel tokens, deadlines and timeouts (strand_session_run_with_options),
 * through strand.h only: the token object, runs stopped before they start,
 * runs stopped mid-way from another thread (main graph and If branches),
 * deadlines, and the statistics. Run under ThreadSanitizer too. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "model_builder.h"
#include "session_from.h"
#include "test.h"

#define WIDTH 256

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* x [batch, WIDTH] -> n0 -> n1 ... -> y: `nodes` Neg nodes named n0, n1... */
static strand_session *chain_session(int nodes) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,256");
  char in[32] = "x", out[32], name[32];
  for (int i = 0; i < nodes; i++) {
    snprintf(name, sizeof name, "n%d", i);
    if (i == nodes - 1) snprintf(out, sizeof out, "y");
    else snprintf(out, sizeof out, "v%d", i);
    mb_add_node(&g, name, "Neg", in, out);
    snprintf(in, sizeof in, "%s", out);
  }
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb m = mb_model(17, &g);
  return session_from(&m);
}

/* cond (bool), x [batch, WIDTH]; If "if_1": then `nodes` Neg nodes t0...
 * over x, else one Neg "e0". */
static strand_session *if_session(int nodes) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "cond", 9, "");
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,256");
  mb then = mb_new();
  mb_str(&then, MB_GRAPH_NAME, "then");
  char in[32] = "x", out[32], name[32];
  for (int i = 0; i < nodes; i++) {
    snprintf(name, sizeof name, "t%d", i);
    if (i == nodes - 1) snprintf(out, sizeof out, "then_out");
    else snprintf(out, sizeof out, "tv%d", i);
    mb_add_node(&then, name, "Neg", in, out);
    snprintf(in, sizeof in, "%s", out);
  }
  mb_value_info(&then, MB_GRAPH_OUTPUT, "then_out", 1, NULL);
  mb els = mb_new();
  mb_str(&els, MB_GRAPH_NAME, "else");
  mb_add_node(&els, "e0", "Neg", "x", "else_out");
  mb_value_info(&els, MB_GRAPH_OUTPUT, "else_out", 1, NULL);
  mb n = mb_node("if_1", "If", "cond", "y");
  mb_attr_graph(&n, "then_branch", &then);
  mb_attr_graph(&n, "else_branch", &els);
  mb_msg(&g, MB_GRAPH_NODE, &n);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb m = mb_model(17, &g);
  return session_from(&m);
}

static strand_tensor *input(int64_t rows) {
  int64_t dims[2] = {rows, WIDTH};
  strand_tensor *t = NULL;
  if (strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 2, &t)) return NULL;
  float *x;
  strand_tensor_data(t, (void **)&x);
  for (int64_t i = 0; i < rows * WIDTH; i++) x[i] = (float)(i % 17) - 8.5f;
  return t;
}

static strand_tensor *cond_tensor(int value) {
  strand_tensor *t = NULL;
  if (strand_tensor_create(STRAND_DTYPE_BOOL, NULL, 0, &t)) return NULL;
  unsigned char *c;
  strand_tensor_data(t, (void **)&c);
  *c = (unsigned char)value;
  return t;
}

/* Every element of y is (-1)^nodes times x's. */
static int chain_result_ok(const strand_tensor *y, const strand_tensor *x, int nodes) {
  size_t n = 0, m = 0;
  strand_tensor_element_count(y, &n);
  strand_tensor_element_count(x, &m);
  if (n != m) return 0;
  const float *a, *b;
  strand_tensor_data(y, (void **)&a);
  strand_tensor_data(x, (void **)&b);
  for (size_t i = 0; i < n; i++)
    if (a[i] != (nodes % 2 ? -b[i] : b[i])) return 0;
  return 1;
}

static strand_status run_chain(strand_session *s, const strand_run_options *o, strand_tensor *x,
                               strand_tensor **y) {
  const char *name = "x";
  return strand_session_run_with_options(s, o, &name, (const strand_tensor *const *)&x, 1, NULL,
                                         y, 1);
}

/* ---- the token ----------------------------------------------------------------- */

TEST(token_flag_is_sticky_until_reset) {
  strand_cancel_token *t = NULL;
  REQUIRE_OK(strand_cancel_token_create(&t));
  CHECK(strand_cancel_token_is_canceled(t) == 0);
  CHECK_OK(strand_cancel_token_cancel(t));
  CHECK(strand_cancel_token_is_canceled(t) == 1);
  CHECK_OK(strand_cancel_token_cancel(t));
  CHECK(strand_cancel_token_is_canceled(t) == 1);
  CHECK_OK(strand_cancel_token_reset(t));
  CHECK(strand_cancel_token_is_canceled(t) == 0);
  CHECK_OK(strand_cancel_token_retain(t));
  strand_cancel_token_release(t);
  CHECK(strand_cancel_token_is_canceled(t) == 0);
  strand_memory_stats m = {.struct_size = sizeof m};
  CHECK_OK(strand_memory_get_stats(&m));
  CHECK(m.live_objects[STRAND_KIND_CANCEL_TOKEN] == 1);
  strand_cancel_token_release(t);
  CHECK_OK(strand_memory_get_stats(&m));
  CHECK(m.live_objects[STRAND_KIND_CANCEL_TOKEN] == 0);
}

TEST(token_misuse_is_answered) {
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_cancel_token_create(NULL));
  CHECK_MSG("strand_cancel_token_create: out is NULL");
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_cancel_token_cancel(NULL));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_cancel_token_reset(NULL));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_cancel_token_retain(NULL));
  CHECK(strand_cancel_token_is_canceled(NULL) == 0);
  strand_cancel_token_release(NULL);
  strand_cancel_token *t = NULL;
  REQUIRE_OK(strand_cancel_token_create(&t));
  strand_cancel_token_release(t);
  uint64_t misuse = strand_misuse_count();
  CHECK_STATUS(STRAND_E_MISUSE, strand_cancel_token_cancel(t));
  CHECK_MSG("strand_cancel_token_cancel");
  CHECK(strand_cancel_token_is_canceled(t) == 0);
  CHECK(strand_misuse_count() == misuse + 2);
  /* A handle of another kind. */
  strand_tensor *x = input(1);
  CHECK_STATUS(STRAND_E_MISUSE, strand_cancel_token_cancel((strand_cancel_token *)x));
  CHECK_MSG("tensor");
  strand_tensor_release(x);
}

/* ---- runs stopped before they start -------------------------------------------- */

TEST(options_are_checked) {
  strand_session *s = chain_session(3);
  REQUIRE(s);
  strand_tensor *x = input(2), *y = NULL;
  strand_run_options o = {0};
  o.struct_size = sizeof o - 1;
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, run_chain(s, &o, x, &y));
  CHECK_MSG("strand_session_run_with_options: options->struct_size is");
  CHECK(y == NULL);
  /* NULL options: a plain run. */
  CHECK_OK(run_chain(s, NULL, x, &y));
  CHECK(y && chain_result_ok(y, x, 3));
  strand_tensor_release(y);
  y = NULL;
  /* A released token. */
  strand_cancel_token *t = NULL;
  REQUIRE_OK(strand_cancel_token_create(&t));
  strand_cancel_token_release(t);
  o.struct_size = sizeof o;
  o.cancel = t;
  CHECK_STATUS(STRAND_E_MISUSE, run_chain(s, &o, x, &y));
  CHECK_MSG("options->cancel");
  CHECK(y == NULL);
  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(s, &stats));
  CHECK(stats.runs == 1 && stats.runs_canceled == 0);
  strand_tensor_release(x);
  strand_session_release(s);
}

/* A token canceled before the run: it stops before its first node, on the
 * planning run and on a planned one, and changes no output. */
TEST(canceled_token_stops_before_the_first_node) {
  strand_session *s = chain_session(5);
  REQUIRE(s);
  strand_tensor *x = input(3), *y = NULL;
  strand_cancel_token *t = NULL;
  REQUIRE_OK(strand_cancel_token_create(&t));
  REQUIRE_OK(strand_cancel_token_cancel(t));
  strand_run_options o = {sizeof o, 0, 0, t};
  CHECK_STATUS(STRAND_E_CANCELED, run_chain(s, &o, x, &y)); /* planning */
  CHECK_MSG("node \"n0\" (Neg): canceled by the run's token before this node ran");
  CHECK(y == NULL);
  CHECK_OK(strand_cancel_token_reset(t));
  CHECK_OK(run_chain(s, &o, x, &y));
  CHECK(y && chain_result_ok(y, x, 5));
  strand_tensor *kept = y;
  CHECK_OK(strand_cancel_token_cancel(t));
  CHECK_STATUS(STRAND_E_CANCELED, run_chain(s, &o, x, &y)); /* planned */
  CHECK_MSG("node \"n0\" (Neg)");
  CHECK(y == kept);
  strand_tensor_release(kept);
  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(s, &stats));
  CHECK(stats.runs == 1);
  CHECK(stats.runs_canceled == 2);
  CHECK(stats.runs_failed == 0);
  /* The token outlives its releases only while a run watches it. */
  strand_cancel_token_release(t);
  strand_tensor_release(x);
  strand_session_release(s);
}

TEST(deadline_in_the_past_and_timeouts) {
  strand_session *s = chain_session(2000);
  REQUIRE(s);
  strand_tensor *x = input(1), *y = NULL;
  strand_run_options o = {sizeof o, 1, 0, NULL}; /* 1 ns after boot: long gone */
  CHECK_STATUS(STRAND_E_DEADLINE, run_chain(s, &o, x, &y));
  CHECK_MSG("node \"n0\" (Neg): deadline passed");
  CHECK(y == NULL);
  /* A deadline an hour away, and a timeout of an hour: no effect. */
  o.deadline_ns = now_ns() + 3600ull * 1000000000u;
  CHECK_OK(run_chain(s, &o, x, &y));
  CHECK(y && chain_result_ok(y, x, 2000));
  strand_tensor_release(y);
  y = NULL;
  o.deadline_ns = 0;
  o.timeout_us = 3600ull * 1000000u;
  CHECK_OK(run_chain(s, &o, x, &y));
  CHECK(y && chain_result_ok(y, x, 2000));
  strand_tensor_release(y);
  y = NULL;
  /* With both, the earlier counts. */
  o.deadline_ns = 1;
  CHECK_STATUS(STRAND_E_DEADLINE, run_chain(s, &o, x, &y));
  /* A 1 µs timeout ends a 2000-node run part way (each node takes longer
   * than that), at some node. */
  o.deadline_ns = 0;
  o.timeout_us = 1;
  CHECK_STATUS(STRAND_E_DEADLINE, run_chain(s, &o, x, &y));
  CHECK_MSG("(Neg): deadline passed");
  CHECK(y == NULL);
  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(s, &stats));
  CHECK(stats.runs == 2 && stats.runs_canceled == 3 && stats.runs_failed == 0);
  strand_tensor_release(x);
  strand_session_release(s);
}

/* ---- runs stopped mid-way from another thread ---------------------------------- */

typedef struct canceler {
  strand_cancel_token *token;
  atomic_int go;
  unsigned delay_us;
} canceler;

static void *cancel_later(void *arg) {
  canceler *c = arg;
  while (!atomic_load(&c->go)) {}
  usleep(c->delay_us);
  strand_cancel_token_cancel(c->token);
  return NULL;
}

/* Cancels each run of `s` from another thread `delay_us` after it starts,
 * at most `attempts` times, until 3 runs stopped with the message holding
 * `where`; returns how many did. Runs that finish first (a loaded machine
 * may oversleep the delay) must be right; stopped ones change no output. */
static int cancel_mid_run(strand_session *s, int n_inputs, const char *const *names,
                          strand_tensor **inputs, int nodes, const char *where, int attempts,
                          unsigned delay_us) {
  int stopped = 0;
  strand_cancel_token *t = NULL;
  if (strand_cancel_token_create(&t)) return 0;
  for (int i = 0; i < attempts && stopped < 3; i++) {
    strand_cancel_token_reset(t);
    canceler c = {t, 0, delay_us};
    pthread_t thread;
    pthread_create(&thread, NULL, cancel_later, &c);
    strand_run_options o = {sizeof o, 0, 0, t};
    strand_tensor *y = NULL;
    atomic_store(&c.go, 1);
    strand_status st = strand_session_run_with_options(
        s, &o, names, (const strand_tensor *const *)inputs, (size_t)n_inputs, NULL, &y, 1);
    if (st == STRAND_OK) {
      CHECK(chain_result_ok(y, inputs[n_inputs - 1], nodes));
    } else {
      CHECK(st == STRAND_E_CANCELED);
      CHECK(y == NULL);
      CHECK_MSG("canceled by the run's token before this node ran");
      if (strstr(strand_errmsg(), where)) stopped++;
    }
    strand_tensor_release(y);
    pthread_join(thread, NULL);
  }
  strand_cancel_token_release(t);
  return stopped;
}

TEST(cancel_from_another_thread_mid_run) {
  strand_session *s = chain_session(4000);
  REQUIRE(s);
  strand_tensor *x = input(16), *y = NULL;
  CHECK_OK(run_chain(s, NULL, x, &y)); /* plans */
  strand_tensor_release(y);
  const char *name = "x";
  /* Stops part way: at a node other than the first. */
  int stopped = cancel_mid_run(s, 1, &name, &x, 4000, "(Neg)", 40, 200);
  CHECK(stopped > 0);
  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(s, &stats));
  CHECK(stats.runs_canceled == (uint64_t)stopped);
  strand_tensor_release(x);
  strand_session_release(s);
}

TEST(cancel_reaches_inside_if_branches) {
  strand_session *s = if_session(3000);
  REQUIRE(s);
  strand_tensor *in[2] = {cond_tensor(1), input(16)};
  const char *names[2] = {"cond", "x"};
  /* Canceled before: stops at the If itself. */
  strand_cancel_token *t = NULL;
  REQUIRE_OK(strand_cancel_token_create(&t));
  REQUIRE_OK(strand_cancel_token_cancel(t));
  strand_run_options o = {sizeof o, 0, 0, t};
  strand_tensor *y = NULL;
  CHECK_STATUS(STRAND_E_CANCELED, strand_session_run_with_options(
                                      s, &o, names, (const strand_tensor *const *)in, 2, NULL, &y, 1));
  CHECK_MSG("node \"if_1\" (If): canceled");
  CHECK(y == NULL);
  strand_cancel_token_release(t);
  /* Canceled while the branch runs: the message names the branch node. */
  int stopped = cancel_mid_run(s, 2, names, in, 3000, "node \"if_1\" (If): then_branch: node \"t",
                               40, 200);
  CHECK(stopped > 0);
  strand_tensor_release(in[0]);
  strand_tensor_release(in[1]);
  strand_session_release(s);
}

/* Many threads run one session with tokens of their own while others cancel
 * them: each run either completes right or stops cleanly. */
#define THREADS 8
typedef struct storm {
  strand_session *session;
  strand_tensor *x;
  strand_cancel_token *tokens[THREADS];
  atomic_int next, done, canceled, wrong;
} storm;

static void *storm_runner(void *arg) {
  storm *sh = arg;
  int me = atomic_fetch_add(&sh->next, 1);
  if (me >= THREADS) { /* a canceler */
    while (atomic_load(&sh->done) < THREADS) {
      for (int i = 0; i < THREADS; i++) {
        strand_cancel_token_cancel(sh->tokens[i]);
        usleep(50);
      }
    }
    return NULL;
  }
  const char *name = "x";
  for (int round = 0; round < 10; round++) {
    strand_cancel_token_reset(sh->tokens[me]);
    strand_run_options o = {sizeof o, 0, round % 3 == 0 ? 200 : 0, sh->tokens[me]};
    strand_tensor *y = NULL;
    strand_status st = strand_session_run_with_options(
        sh->session, &o, &name, (const strand_tensor *const *)&sh->x, 1, NULL, &y, 1);
    if (st == STRAND_OK) {
      if (!chain_result_ok(y, sh->x, 500)) atomic_fetch_add(&sh->wrong, 1);
    } else if ((st == STRAND_E_CANCELED || st == STRAND_E_DEADLINE) && !y) {
      atomic_fetch_add(&sh->canceled, 1);
    } else {
      atomic_fetch_add(&sh->wrong, 1);
    }
    strand_tensor_release(y);
  }
  atomic_fetch_add(&sh->done, 1);
  return NULL;
}

TEST(threads_cancel_each_other) {
  storm sh = {0};
  sh.session = chain_session(500);
  REQUIRE(sh.session);
  sh.x = input(2);
  for (int i = 0; i < THREADS; i++) REQUIRE_OK(strand_cancel_token_create(&sh.tokens[i]));
  test_run_threads(THREADS + 2, storm_runner, &sh);
  CHECK(atomic_load(&sh.wrong) == 0);
  strand_session_stats stats = {.struct_size = sizeof stats};
  CHECK_OK(strand_session_get_stats(sh.session, &stats));
  CHECK(stats.runs + stats.runs_canceled == THREADS * 10);
  CHECK(stats.runs_canceled == (uint64_t)atomic_load(&sh.canceled));
  for (int i = 0; i < THREADS; i++) strand_cancel_token_release(sh.tokens[i]);
  strand_tensor_release(sh.x);
  strand_session_release(sh.session);
}
