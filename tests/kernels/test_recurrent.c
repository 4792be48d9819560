/*
 * test_recurrent.c — LSTM with constant (packed) weights at sizes where the
 * recurrent product runs in column chunks (4·hidden > 128 columns, the last
 * chunk partial) and the cell runs vector_math's path: against a double
 * reference of the ONNX equations, and each batch row bit for bit against
 * the same sequence run alone (dynamic batching stacks requests along the
 * batch and relies on it).
 */
#include "kernel_runner.h"

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
