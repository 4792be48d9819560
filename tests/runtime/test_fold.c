/*
 * BatchNormalization folded into the Conv before it (src/runtime/fold.c):
 * Conv → BatchNormalization (→ Relu) on every Conv path (1×1 direct,
 * few-channel direct, Winograd, depthwise, im2col), with and without the
 * Conv's bias, against a reference that runs the Conv, then the
 * normalization, then the Relu in double; the BatchNormalization is
 * absorbed and the Relu joins the Conv. Left unfolded, with the same
 * results as written: statistics that are not constants, a Conv output that
 * is a graph output or has a second reader, a variance that makes the scale
 * infinite; training mode and opset 6 are refused as before.
 */
/* model_builder.h first: its parameter names would shadow the IR's types. */
#include "model_builder.h"
#include "session_from.h"
#include "test.h"

#include "runtime/executor.h"

#include <math.h>
#include <string.h>

typedef struct fold_case {
  int n, c, m, group, h, w, k, stride, pad;
  bool bias, relu;
  /* Ways to keep the fold from happening (each still runs correctly). */
  bool stats_input;   /* the mean is a graph input */
  bool conv_output;   /* the Conv's output is a graph output too */
  bool second_reader; /* the Conv's output is also added to the result */
  bool zero_var;      /* channel 0's variance 0, epsilon 0: an infinite scale */
} fold_case;

/* Data in [-1, 1) with a fixed pattern per seed. */
static void fill(float *v, size_t n, unsigned seed) {
  uint32_t s = seed * 2654435761u + 12345u;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    v[i] = (float)(s >> 8) / (float)(1u << 23) - 1.0f;
  }
}

static int find_node(const graph *g, const char *name) {
  for (size_t k = 0; k < g->n_nodes; k++)
    if (strcmp(g->nodes[k].name, name) == 0) return (int)k;
  return -1;
}

/* The model of case f with weights w and statistics stats (B, scale,
 * shift, mean, var: m floats each); `last` receives the name of the
 * output after the normalization ("n", or "r" after a Relu). */
static mb fold_model(const fold_case *f, const float *w, const float *stats, float epsilon,
                     const char **last_out) {
  const int cg = f->c / f->group;
  const size_t wn = (size_t)f->m * cg * f->k * f->k;
  const float *b = stats, *scale = stats + f->m, *shift = stats + 2 * f->m,
              *mean = stats + 3 * f->m, *var = stats + 4 * f->m;
  mb g = mb_new();
  char xs[64];
  snprintf(xs, sizeof xs, "%d,%d,%d,%d", f->n, f->c, f->h, f->w);
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, xs);
  int64_t wdims[4] = {f->m, cg, f->k, f->k}, mdims[1] = {f->m};
  mb_initializer_float(&g, "w", wdims, 4, w, wn);
  if (f->bias) mb_initializer_float(&g, "b", mdims, 1, b, (size_t)f->m);
  mb_initializer_float(&g, "scale", mdims, 1, scale, (size_t)f->m);
  mb_initializer_float(&g, "shift", mdims, 1, shift, (size_t)f->m);
  char ms[16];
  snprintf(ms, sizeof ms, "%d", f->m);
  if (f->stats_input) mb_value_info(&g, MB_GRAPH_INPUT, "mean", 1, ms);
  else mb_initializer_float(&g, "mean", mdims, 1, mean, (size_t)f->m);
  mb_initializer_float(&g, "var", mdims, 1, var, (size_t)f->m);
  mb node = mb_node("conv", "Conv", f->bias ? "x,w,b" : "x,w", "c");
  int64_t v2[4] = {f->k, f->k};
  mb_attr_ints(&node, "kernel_shape", v2, 2);
  v2[0] = v2[1] = f->stride;
  mb_attr_ints(&node, "strides", v2, 2);
  int64_t pads[4] = {f->pad, f->pad, f->pad, f->pad};
  mb_attr_ints(&node, "pads", pads, 4);
  if (f->group > 1) mb_attr_int(&node, "group", f->group);
  mb_msg(&g, MB_GRAPH_NODE, &node);
  mb bn = mb_node("bn", "BatchNormalization", "c,scale,shift,mean,var", "n");
  mb_attr_float(&bn, "epsilon", epsilon);
  mb_msg(&g, MB_GRAPH_NODE, &bn);
  const char *last = "n";
  if (f->relu) {
    mb_add_node(&g, "relu", "Relu", "n", "r");
    last = "r";
  }
  if (f->second_reader) {
    mb_add_node(&g, "add", "Add", "c,n", "s");
    mb_value_info(&g, MB_GRAPH_OUTPUT, "s", 1, NULL);
  }
  mb_value_info(&g, MB_GRAPH_OUTPUT, last, 1, NULL);
  if (f->conv_output) mb_value_info(&g, MB_GRAPH_OUTPUT, "c", 1, NULL);
  *last_out = last;
  return mb_model(15, &g);
}

static void check_fold(const fold_case *f, bool expect_folded) {
  const int cg = f->c / f->group, oh = (f->h + 2 * f->pad - f->k) / f->stride + 1,
            ow = (f->w + 2 * f->pad - f->k) / f->stride + 1;
  const size_t xn = (size_t)f->n * f->c * f->h * f->w, wn = (size_t)f->m * cg * f->k * f->k,
               yn = (size_t)f->n * f->m * oh * ow;
  float *x = malloc(xn * sizeof *x), *w = malloc(wn * sizeof *w), *stats = malloc(5 * f->m * sizeof *stats);
  double *want = malloc(yn * sizeof *want), *conv = malloc(yn * sizeof *conv),
         *mag = malloc(yn * sizeof *mag);
  REQUIRE(x && w && stats && want && conv && mag);
  fill(x, xn, 1);
  fill(w, wn, 2);
  fill(stats, 5 * (size_t)f->m, 3);
  float *b = stats, *scale = stats + f->m, *shift = stats + 2 * f->m, *mean = stats + 3 * f->m,
        *var = stats + 4 * f->m;
  for (int i = 0; i < f->m; i++) {
    var[i] = 0.25f + var[i] * var[i]; /* positive */
    scale[i] = 0.5f + scale[i];
  }
  const float epsilon = f->zero_var ? 0.0f : 1e-3f;
  if (f->zero_var) var[0] = 0;

  const char *last;
  mb m = fold_model(f, w, stats, epsilon, &last);
  strand_session *s = session_from(&m);
  REQUIRE(s);

  int conv_k = find_node(s->graph, "conv"), bn_k = find_node(s->graph, "bn");
  REQUIRE(conv_k >= 0 && bn_k >= 0);
  CHECK(s->nodes[bn_k].absorbed == expect_folded);
  CHECK((s->nodes[bn_k].kernel == NULL) == expect_folded);
  if (f->relu && !f->second_reader) {
    int relu_k = find_node(s->graph, "relu");
    /* The Relu joins the Conv exactly when the normalization did. */
    CHECK((s->nodes[relu_k].kernel == NULL) == expect_folded);
  }

  /* The reference: the Conv, the normalization, the Relu, in double. */
  for (int img = 0; img < f->n; img++)
    for (int o = 0; o < f->m; o++) {
      const int grp = o / (f->m / f->group);
      double a = scale[o] / sqrt((double)var[o] + epsilon);
      for (int y = 0; y < oh; y++)
        for (int xo = 0; xo < ow; xo++) {
          double sum = f->bias ? b[o] : 0, size = f->bias ? fabs(b[o]) : 0;
          for (int ci = 0; ci < cg; ci++)
            for (int ky = 0; ky < f->k; ky++)
              for (int kx = 0; kx < f->k; kx++) {
                int iy = y * f->stride - f->pad + ky, ix = xo * f->stride - f->pad + kx;
                if (iy < 0 || iy >= f->h || ix < 0 || ix >= f->w) continue;
                double t = (double)x[(((size_t)img * f->c + grp * cg + ci) * f->h + iy) * f->w + ix] *
                           w[(((size_t)o * cg + ci) * f->k + ky) * f->k + kx];
                sum += t;
                size += fabs(t);
              }
          size_t at = (((size_t)img * f->m + o) * oh + y) * ow + xo;
          conv[at] = sum;
          mag[at] = fabs(a) * size; /* what the folded Conv's rounding scales with */
          /* As BatchNormalization's kernel has it: a·x + (shift − mean·a). */
          double v = a * sum + (shift[o] - mean[o] * a);
          want[at] = f->relu && v < 0 ? 0 : v;
        }
    }

  const char *names[2] = {"x", "mean"};
  int64_t xdims[4] = {f->n, f->c, f->h, f->w}, mdims[1] = {f->m};
  strand_tensor *in[2] = {NULL, NULL};
  REQUIRE_OK(strand_tensor_wrap(STRAND_DTYPE_FLOAT32, xdims, 4, x, xn * sizeof *x, NULL, NULL, &in[0]));
  if (f->stats_input)
    REQUIRE_OK(strand_tensor_wrap(STRAND_DTYPE_FLOAT32, mdims, 1, mean, (size_t)f->m * sizeof *mean,
                                  NULL, NULL, &in[1]));
  const char *outs[2] = {last, f->conv_output ? "c" : f->second_reader ? "s" : NULL};
  size_t n_outs = outs[1] ? 2 : 1;
  strand_tensor *got[2] = {NULL, NULL};
  CHECK_OK(strand_session_run(s, names, (const strand_tensor *const *)in, f->stats_input ? 2 : 1,
                              outs, got, n_outs));
  if (got[0]) {
    float *yd;
    size_t count = 0;
    strand_tensor_element_count(got[0], &count);
    strand_tensor_data(got[0], (void **)&yd);
    CHECK(count == yn);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < yn && i < count; i++) {
      /* The Conv's rounding (1e-5 of the sum of |a·x·w| it adds up, as the
       * kernel tests allow; Winograd's transforms take most of it). */
      double tol = 1e-5 * (1 + fabs(want[i]) + mag[i]);
      bool ok = isfinite(want[i]) ? fabs(yd[i] - want[i]) <= tol : !isfinite(yd[i]);
      if (!ok && !bad++) first = i;
    }
    if (bad)
      test_fail(__FILE__, __LINE__, "%zu of %zu outputs off; first: %zu is %.9g, expected %.9g",
                bad, yn, first, (double)yd[first], want[first]);
  }
  if (got[1] && f->conv_output) {
    float *cd;
    strand_tensor_data(got[1], (void **)&cd);
    for (size_t i = 0; i < yn; i++)
      if (!(fabs(cd[i] - conv[i]) <= 1e-5 * (1 + mag[i]))) {
        test_fail(__FILE__, __LINE__, "conv output %zu is %.9g, expected %.9g", i, (double)cd[i],
                  conv[i]);
        break;
      }
  }
  for (int i = 0; i < 2; i++) {
    strand_tensor_release(got[i]);
    strand_tensor_release(in[i]);
  }
  strand_session_release(s);
  free(x);
  free(w);
  free(stats);
  free(want);
  free(conv);
  free(mag);
}

/* Every Conv path, bias or not, Relu or not: folded. */
TEST(batch_norm_folds_into_every_conv_path) {
  static const fold_case cases[] = {
      /* n  c   m   g   h   w   k  s  p  bias   relu  (the ways not to fold: none) */
      {1, 24, 40, 1, 9, 11, 1, 1, 0, false, true, false, false, false, false},   /* 1×1: the direct pointwise path */
      {2, 3, 16, 1, 15, 17, 3, 2, 1, false, true, false, false, false, false},   /* a stem: few input channels */
      {1, 16, 24, 1, 30, 30, 3, 1, 1, false, true, false, false, false, false},  /* Winograd, 4×4 blocks */
      {2, 16, 20, 1, 7, 9, 3, 1, 1, true, false, false, false, false, false},    /* Winograd, 2×2 blocks */
      {2, 32, 32, 32, 12, 10, 3, 2, 1, false, true, false, false, false, false}, /* depthwise */
      {1, 6, 10, 2, 13, 11, 5, 2, 2, true, true, false, false, false, false},    /* grouped 5×5: im2col */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    check_fold(&cases[i], true);
    if (test_failed_now()) break;
  }
}

/* What keeps the fold from happening; each case still gives the written
 * graph's results. */
TEST(batch_norm_stays_when_it_cannot_fold) {
  fold_case f = {1, 16, 24, 1, 8, 8, 3, 1, 1, true, true, false, false, false, false};
  fold_case stats = f, output = f, reader = f, infinite = f;
  stats.stats_input = true;
  output.conv_output = true;
  reader.second_reader = true;
  infinite.zero_var = true;
  infinite.relu = false;
  check_fold(&stats, false);
  check_fold(&output, false);
  check_fold(&reader, false);
  check_fold(&infinite, false);
}

/* Creating a session for a 1×1 Conv and a BatchNormalization at `opset`,
 * in training mode or not; the status, with the message left for the
 * caller to check. */
static strand_status create_tiny(int64_t opset, bool training) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "1,2,4,4");
  float w[2 * 2], stats[2] = {1, 1};
  fill(w, 4, 7);
  int64_t wdims[4] = {2, 2, 1, 1}, mdims[1] = {2};
  mb_initializer_float(&g, "w", wdims, 4, w, 4);
  const char *names[4] = {"scale", "shift", "mean", "var"};
  for (int i = 0; i < 4; i++) mb_initializer_float(&g, names[i], mdims, 1, stats, 2);
  mb_add_node(&g, "conv", "Conv", "x,w", "c");
  mb bn = mb_node("bn", "BatchNormalization", "c,scale,shift,mean,var", "n");
  if (training) mb_attr_int(&bn, "training_mode", 1);
  mb_msg(&g, MB_GRAPH_NODE, &bn);
  mb_value_info(&g, MB_GRAPH_OUTPUT, "n", 1, NULL);
  mb m = mb_model(opset, &g);
  strand_model *model = NULL;
  strand_status st = strand_model_load_buffer(m.data, m.size, &model);
  mb_free(&m);
  strand_session *s = NULL;
  if (!st) st = strand_session_create(model, NULL, &s);
  if (!st) CHECK(s != NULL);
  strand_session_release(s);
  strand_model_release(model);
  return st;
}

/* What the BatchNormalization kernel refuses stays refused with the fold:
 * training mode, and opset 6 (no kernel for it), each naming the cause. */
TEST(batch_norm_refused_before_stays_refused) {
  CHECK_OK(create_tiny(15, false));
  CHECK_STATUS(STRAND_E_UNSUPPORTED, create_tiny(15, true));
  CHECK_MSG("training_mode");
  CHECK_STATUS(STRAND_E_UNSUPPORTED, create_tiny(6, false));
  CHECK_MSG("BatchNormalization");
}

/* Every allocation of creating a folding session fails in turn: each time
 * the creation reports running out of memory and leaves nothing behind,
 * for a Conv whose folded weights are packed and freed (Winograd) and one
 * that keeps them (a 5×5 Conv on im2col). */
TEST(each_failed_allocation_of_a_fold_is_clean) {
  static const fold_case cases[] = {
      {1, 16, 24, 1, 30, 30, 3, 1, 1, false, true, false, false, false, false},
      {1, 6, 10, 2, 13, 11, 5, 2, 2, true, true, false, false, false, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const fold_case *f = &cases[i];
    size_t wn = (size_t)f->m * (f->c / f->group) * f->k * f->k;
    float *w = malloc(wn * sizeof *w), *stats = malloc(5 * (size_t)f->m * sizeof *stats);
    REQUIRE(w && stats);
    fill(w, wn, 4);
    fill(stats, 5 * (size_t)f->m, 5);
    for (int c = 0; c < f->m; c++) stats[4 * f->m + c] = 1.0f + stats[4 * f->m + c] * 0.5f;
    const char *last;
    mb m = fold_model(f, w, stats, 1e-5f, &last);
    strand_model *model = NULL;
    REQUIRE_OK(strand_model_load_buffer(m.data, m.size, &model));
    mb_free(&m);
    strand_memory_stats before = {.struct_size = sizeof before};
    strand_memory_stats after = {.struct_size = sizeof after};
    CHECK_OK(strand_memory_get_stats(&before));
    bool created = false;
    uint64_t n;
    for (n = 1; n < 1000 && !created; n++) {
      strand_session *s = NULL;
      strand_memory_fail_nth(n);
      strand_status st = strand_session_create(model, NULL, &s);
      strand_memory_fail_nth(0);
      if (st == STRAND_OK) {
        created = true;
        int bn = find_node(s->graph, "bn");
        CHECK(bn >= 0 && s->nodes[bn].absorbed);
      } else if (st != STRAND_E_OUT_OF_MEMORY) {
        test_fail(__FILE__, __LINE__, "allocation %llu: %s (%s)", (unsigned long long)n,
                  strand_status_name(st), strand_errmsg());
      }
      strand_session_release(s);
      CHECK_OK(strand_memory_get_stats(&after));
      if (after.total_live_bytes != before.total_live_bytes) {
        test_fail(__FILE__, __LINE__, "allocation %llu: %llu bytes left behind",
                  (unsigned long long)n,
                  (unsigned long long)(after.total_live_bytes - before.total_live_bytes));
        break;
      }
    }
    CHECK(created && n > 5);
    strand_model_release(model);
    free(w);
    free(stats);
  }
}
