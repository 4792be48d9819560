/*
 * test_recurrent.c — LSTM with constant (packed) weights at sizes where the
 * recurrent product runs in column chunks (4·hidden > 128 columns, the last
 * chunk partial) and the cell runs vector_math's path: against a double
 * reference of the ONNX equations, and each batch row bit for bit against
 * the same sequence run alone (dynamic batching stacks requests along the
 * batch and relies on it). Then the blocked path (gate columns in blocks of
 * hidden units, a step's product and cells split over threads by block):
 * every direction, both layouts, sequence_lens, Y and Y_h, against the
 * reference, bit for bit across thread counts and against rows run alone.
 */
#include "kernel_runner.h"

#include <stdbool.h>

enum { T = 5, IN = 7, H = 40, G = 4 * H };

static double sig(double x) { return 1 / (1 + exp(-x)); }

/* X [T, batch, IN] → Y [T, 1, batch, H]. */
static strand_tensor *run_lstm(const float *x, int64_t batch, const float *w, const float *r,
                               const float *b) {
  mb g = mb_new();
  char text[64];
  int64_t dx[3] = {T, batch, IN}, dw[3] = {1, G, IN}, dr[3] = {1, G, H}, db[2] = {1, 2 * G};
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, kr_dims_text(dx, 3, text, sizeof text));
  mb_initializer_float(&g, "w", dw, 3, w, (size_t)G * IN);
  mb_initializer_float(&g, "r", dr, 3, r, (size_t)G * H);
  mb_initializer_float(&g, "b", db, 2, b, 2 * (size_t)G);
  mb node = mb_node("lstm", "LSTM", "x,w,r,b", "y");
  mb_attr_int(&node, "hidden_size", H);
  mb_msg(&g, MB_GRAPH_NODE, &node);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb model = mb_model(17, &g);
  const char *names[1] = {"x"};
  float *values[1] = {(float *)x};
  const int64_t *shapes[1] = {dx};
  size_t ranks[1] = {3};
  return kr_run(&model, 1, names, values, shapes, ranks);
}

TEST(lstm_chunked_recurrence_matches_reference_and_rows_alone) {
  strand_threads_set_budget(1); /* the chunked path runs on one thread */
  kr_random rnd = {3};
  const int64_t batch = 3;
  float *x = kr_floats(&rnd, (size_t)T * batch * IN), *w = kr_floats(&rnd, (size_t)G * IN);
  float *r = kr_floats(&rnd, (size_t)G * H), *b = kr_floats(&rnd, 2 * (size_t)G);
  strand_tensor *y = run_lstm(x, batch, w, r, b);
  /* reference */
  double *want = calloc((size_t)T * batch * H, sizeof(double));
  if (!want) abort();
  for (int64_t n = 0; n < batch; n++) {
    double h[H] = {0}, c[H] = {0}, g[G];
    for (int t = 0; t < T; t++) {
      const float *xt = x + ((size_t)t * batch + n) * IN;
      for (int q = 0; q < G; q++) {
        double s = (double)b[q] + b[G + q];
        for (int i = 0; i < IN; i++) s += (double)xt[i] * w[q * IN + i];
        for (int i = 0; i < H; i++) s += h[i] * r[q * H + i];
        g[q] = s;
      }
      for (int i = 0; i < H; i++) { /* gates i, o, f, c */
        c[i] = sig(g[2 * H + i]) * c[i] + sig(g[i]) * tanh(g[3 * H + i]);
        h[i] = sig(g[H + i]) * tanh(c[i]);
        want[((size_t)t * batch + n) * H + i] = h[i];
      }
    }
  }
  kr_close(y, want, NULL, (size_t)T * batch * H, "lstm batch 3");
  /* each row alone */
  float *data = NULL;
  if (y) strand_tensor_data(y, (void **)&data);
  for (int64_t n = 0; n < batch && data; n++) {
    float xs[T * IN];
    for (int t = 0; t < T; t++) memcpy(xs + t * IN, x + ((size_t)t * batch + n) * IN, IN * sizeof(float));
    strand_tensor *alone = run_lstm(xs, 1, w, r, b);
    float *one = NULL;
    if (alone) strand_tensor_data(alone, (void **)&one);
    for (int t = 0; t < T && one; t++)
      if (memcmp(one + t * H, data + ((size_t)t * batch + n) * H, H * sizeof(float)) != 0)
        test_fail(__FILE__, __LINE__, "row %lld step %d differs from the row run alone",
                  (long long)n, t);
    strand_tensor_release(alone);
  }
  strand_tensor_release(y);
  free(want), free(x), free(w), free(r), free(b);
  strand_threads_set_budget(0);
}

/* ---- the blocked path ------------------------------------------------------------ */

typedef struct lstm_case {
  int64_t T, batch, in, hidden;
  const char *direction; /* "forward", "reverse", "bidirectional" */
  int64_t layout;
  const int32_t *lens;   /* batch values, or NULL */
} lstm_case;

static int64_t dirs_of(const lstm_case *k) { return strcmp(k->direction, "bidirectional") ? 1 : 2; }

/* Runs the case on X (in the case's layout) at a CPU budget of `threads`;
 * out[0] = Y, out[1] = Y_h (the caller releases them). */
static bool run_case(const lstm_case *k, const float *x, const float *w, const float *r,
                     const float *b, unsigned threads, strand_tensor *out[2]) {
  out[0] = out[1] = NULL;
  int64_t D = dirs_of(k), G4 = 4 * k->hidden;
  mb g = mb_new();
  char text[64];
  int64_t dx[3] = {k->layout ? k->batch : k->T, k->layout ? k->T : k->batch, k->in};
  int64_t dw[3] = {D, G4, k->in}, dr[3] = {D, G4, k->hidden}, db[2] = {D, 2 * G4};
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, kr_dims_text(dx, 3, text, sizeof text));
  mb_initializer_float(&g, "w", dw, 3, w, (size_t)(D * G4 * k->in));
  mb_initializer_float(&g, "r", dr, 3, r, (size_t)(D * G4 * k->hidden));
  mb_initializer_float(&g, "b", db, 2, b, (size_t)(D * 2 * G4));
  if (k->lens) {
    mb t = mb_tensor_raw("lens", 6 /* INT32 */, &k->batch, 1, k->lens,
                         (size_t)k->batch * sizeof(int32_t));
    mb_msg(&g, MB_GRAPH_INITIALIZER, &t);
  }
  mb node = mb_node("lstm", "LSTM", k->lens ? "x,w,r,b,lens" : "x,w,r,b", "y,y_h");
  mb_attr_int(&node, "hidden_size", k->hidden);
  mb_attr_string(&node, "direction", k->direction);
  mb_attr_int(&node, "layout", k->layout);
  mb_msg(&g, MB_GRAPH_NODE, &node);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y_h", 1, NULL);
  mb model = mb_model(17, &g);
  strand_threads_set_budget(threads);
  strand_session *s = session_from(&model);
  strand_tensor *in = NULL;
  strand_status st = s ? STRAND_OK : STRAND_E_INTERNAL;
  if (!st)
    st = strand_tensor_wrap(STRAND_DTYPE_FLOAT32, dx, 3, (void *)x,
                            (size_t)(k->T * k->batch * k->in) * sizeof(float), NULL, NULL, &in);
  const char *names[1] = {"x"};
  if (!st) st = strand_session_run(s, names, (const strand_tensor *const *)&in, 1, NULL, out, 2);
  if (st && s) test_fail(__FILE__, __LINE__, "run: %s", strand_errmsg());
  strand_tensor_release(in);
  strand_session_release(s);
  strand_threads_set_budget(0);
  return st == STRAND_OK;
}

/* The ONNX equations in double: Y and Y_h in the case's layout. */
static void reference_case(const lstm_case *k, const float *x, const float *w, const float *r,
                           const float *b, double *y, double *yh) {
  const int64_t NT = k->T, NB = k->batch, NI = k->in, NH = k->hidden, D = dirs_of(k), G4 = 4 * NH;
  double *h = calloc((size_t)NH, sizeof(double)), *c = calloc((size_t)NH, sizeof(double));
  double *g = calloc((size_t)G4, sizeof(double));
  if (!h || !c || !g) abort();
  for (int64_t d = 0; d < D; d++) {
    bool reverse = d == 1 || strcmp(k->direction, "reverse") == 0;
    const float *wd = w + d * G4 * NI, *rd = r + d * G4 * NH, *bd = b + d * 2 * G4;
    for (int64_t n = 0; n < NB; n++) {
      int64_t len = k->lens ? k->lens[n] : NT;
      for (int64_t i = 0; i < NH; i++) h[i] = c[i] = 0;
      for (int64_t t = 0; t < NT; t++) /* zeros past the length */
        for (int64_t i = 0; i < NH; i++)
          y[(k->layout ? ((n * NT + t) * D + d) * NH : ((t * D + d) * NB + n) * NH) + i] = 0;
      for (int64_t step = 0; step < len; step++) {
        int64_t t = reverse ? len - 1 - step : step;
        const float *xt = x + (k->layout ? n * NT + t : t * NB + n) * NI;
        for (int64_t q = 0; q < G4; q++) {
          double sum = (double)bd[q] + bd[G4 + q];
          for (int64_t i = 0; i < NI; i++) sum += (double)xt[i] * wd[q * NI + i];
          for (int64_t i = 0; i < NH; i++) sum += h[i] * rd[q * NH + i];
          g[q] = sum;
        }
        for (int64_t i = 0; i < NH; i++) { /* gates i, o, f, c */
          c[i] = sig(g[2 * NH + i]) * c[i] + sig(g[i]) * tanh(g[3 * NH + i]);
          h[i] = sig(g[NH + i]) * tanh(c[i]);
          y[(k->layout ? ((n * NT + t) * D + d) * NH : ((t * D + d) * NB + n) * NH) + i] = h[i];
        }
      }
      for (int64_t i = 0; i < NH; i++)
        yh[(k->layout ? n * D + d : d * NB + n) * NH + i] = h[i];
    }
  }
  free(h), free(c), free(g);
}

static bool same_bits(strand_tensor *a, strand_tensor *b) {
  size_t na = 0, nb = 0;
  void *pa = NULL, *pb = NULL;
  if (!a || !b || strand_tensor_byte_size(a, &na) || strand_tensor_byte_size(b, &nb) || na != nb)
    return false;
  strand_tensor_data(a, &pa);
  strand_tensor_data(b, &pb);
  return memcmp(pa, pb, na) == 0;
}

static void check_case(const lstm_case *k, const char *what) {
  kr_random rnd = {17};
  const int64_t NT = k->T, NB = k->batch, NI = k->in, NH = k->hidden, D = dirs_of(k), G4 = 4 * NH;
  float *x = kr_floats(&rnd, (size_t)(NT * NB * NI)), *w = kr_floats(&rnd, (size_t)(D * G4 * NI));
  float *r = kr_floats(&rnd, (size_t)(D * G4 * NH)), *b = kr_floats(&rnd, (size_t)(D * 2 * G4));
  double *y = calloc((size_t)(NT * D * NB * NH), sizeof(double));
  double *yh = calloc((size_t)(D * NB * NH), sizeof(double));
  if (!y || !yh) abort();
  reference_case(k, x, w, r, b, y, yh);
  strand_tensor *first[2];
  if (run_case(k, x, w, r, b, 1, first)) {
    kr_close(first[0], y, NULL, (size_t)(NT * D * NB * NH), what);
    kr_close(first[1], yh, NULL, (size_t)(D * NB * NH), what);
    /* The same bits on 2, 3 and 4 threads. */
    for (unsigned threads = 2; threads <= 4; threads++) {
      strand_tensor *other[2];
      if (!run_case(k, x, w, r, b, threads, other)) break;
      if (!same_bits(first[0], other[0]) || !same_bits(first[1], other[1]))
        test_fail(__FILE__, __LINE__, "%s: %u threads give other bits than one", what, threads);
      strand_tensor_release(other[0]);
      strand_tensor_release(other[1]);
    }
    /* Each row run alone (on 2 threads), bit for bit. */
    float *data = NULL, *hdata = NULL;
    strand_tensor_data(first[0], (void **)&data);
    strand_tensor_data(first[1], (void **)&hdata);
    float *xs = malloc((size_t)(NT * NI) * sizeof(float));
    if (!xs) abort();
    for (int64_t n = 0; n < NB; n++) {
      for (int64_t t = 0; t < NT; t++)
        memcpy(xs + t * NI, x + (k->layout ? n * NT + t : t * NB + n) * NI,
               (size_t)NI * sizeof(float));
      lstm_case one = *k;
      one.batch = 1;
      one.lens = k->lens ? k->lens + n : NULL;
      strand_tensor *alone[2];
      if (!run_case(&one, xs, w, r, b, 2, alone)) break;
      float *ya = NULL, *yha = NULL;
      strand_tensor_data(alone[0], (void **)&ya);
      strand_tensor_data(alone[1], (void **)&yha);
      bool same = true;
      for (int64_t t = 0; t < NT; t++)
        for (int64_t d = 0; d < D; d++) {
          const float *want = data + (k->layout ? (n * NT + t) * D + d : (t * D + d) * NB + n) * NH;
          const float *got = ya + (t * D + d) * NH; /* batch 1: both layouts */
          same = same && memcmp(want, got, (size_t)NH * sizeof(float)) == 0;
        }
      for (int64_t d = 0; d < D; d++)
        same = same && memcmp(hdata + (k->layout ? n * D + d : d * NB + n) * NH, yha + d * NH,
                              (size_t)NH * sizeof(float)) == 0;
      if (!same) test_fail(__FILE__, __LINE__, "%s: row %lld differs from the row run alone", what,
                           (long long)n);
      strand_tensor_release(alone[0]);
      strand_tensor_release(alone[1]);
    }
    free(xs);
  }
  strand_tensor_release(first[0]);
  strand_tensor_release(first[1]);
  free(x), free(w), free(r), free(b), free(y), free(yh);
}

/* hidden 72: blocks of 32, 32 and 8 units; batch 17: two row panels of the
 * 14-row tile, the last partial; big enough that a step splits over
 * threads. */
static const int32_t lens17[17] = {6, 0, 3, 6, 1, 5, 6, 2, 6, 4, 6, 6, 1, 0, 6, 3, 5};

TEST(lstm_blocked_forward_y_holds_state) {
  lstm_case k = {6, 17, 5, 72, "forward", 0, NULL};
  check_case(&k, "forward, layout 0");
}

TEST(lstm_blocked_bidirectional_with_lengths) {
  lstm_case k = {6, 17, 5, 72, "bidirectional", 0, lens17};
  check_case(&k, "bidirectional, layout 0, lengths");
}

TEST(lstm_blocked_reverse_batch_first_with_lengths) {
  lstm_case k = {6, 17, 5, 72, "reverse", 1, lens17};
  check_case(&k, "reverse, layout 1, lengths");
}

TEST(lstm_blocked_batch_first_one_block) {
  lstm_case k = {4, 33, 3, 24, "forward", 1, NULL}; /* one block of 24 units: no split */
  check_case(&k, "forward, layout 1, one block");
}
