/* Conv against a naive reference over a sweep of shapes and attributes:
 * groups (depthwise included), strides, dilations, explicit and automatic
 * padding, 1-D to 3-D, sizes that split over several threads. */
#include "kernel_runner.h"
#include "kernels/conv_winograd.h"

typedef struct conv_case {
  int spatial, n, c, m, group;
  int in[3], kernel[3], stride[3], dilation[3], pad_begin[3], pad_end[3];
  const char *auto_pad; /* NULL: explicit pads */
  int bias;
  int relu; /* a Relu after the Conv (fused into it by the session) */
  int w_input; /* W (and B) as graph inputs, not constants: nothing packed */
} conv_case;

/* Output size and the padding actually applied. */
static int out_size(const conv_case *k, int d, int *pb) {
  int eff = (k->kernel[d] - 1) * k->dilation[d] + 1, in = k->in[d], s = k->stride[d];
  if (k->auto_pad && strcmp(k->auto_pad, "VALID") == 0) {
    *pb = 0;
    return (in - eff) / s + 1;
  }
  if (k->auto_pad) {
    int out = (in + s - 1) / s, total = (out - 1) * s + eff - in;
    if (total < 0) total = 0;
    *pb = strcmp(k->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
    return out;
  }
  *pb = k->pad_begin[d];
  return (in + k->pad_begin[d] + k->pad_end[d] - eff) / s + 1;
}

/* The CPU budget of check_conv's planning run (0: the test's own). */
static unsigned planning_budget;

static void check_conv(const conv_case *k, kr_random *r) {
  int sp = k->spatial, cg = k->c / k->group, mg = k->m / k->group;
  int64_t xdims[5] = {k->n, k->c}, wdims[5] = {k->m, cg}, bdims[1] = {k->m};
  int out[3], pb[3];
  size_t xn = (size_t)k->n * k->c, wn = (size_t)k->m * cg, on = (size_t)k->n * k->m, taps = 1;
  for (int d = 0; d < sp; d++) {
    xdims[2 + d] = k->in[d];
    wdims[2 + d] = k->kernel[d];
    xn *= (size_t)k->in[d];
    wn *= (size_t)k->kernel[d];
    taps *= (size_t)k->kernel[d];
    out[d] = out_size(k, d, &pb[d]);
    on *= (size_t)out[d];
  }
  float *x = kr_floats(r, xn), *w = kr_floats(r, wn), *b = kr_floats(r, (size_t)k->m);

  mb g = mb_new();
  char shape[128];
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, kr_dims_text(xdims, (size_t)sp + 2, shape, sizeof shape));
  char wshape[128];
  if (k->w_input) {
    mb_value_info(&g, MB_GRAPH_INPUT, "w", 1, kr_dims_text(wdims, (size_t)sp + 2, wshape, sizeof wshape));
    if (k->bias) mb_value_info(&g, MB_GRAPH_INPUT, "b", 1, "m");
  } else {
    mb_initializer_float(&g, "w", wdims, (size_t)sp + 2, w, wn);
    if (k->bias) mb_initializer_float(&g, "b", bdims, 1, b, (size_t)k->m);
  }
  mb node = mb_node("conv", "Conv", k->bias ? "x,w,b" : "x,w", "y");
  int64_t v[6] = {0};
  for (int d = 0; d < sp; d++) v[d] = k->stride[d];
  mb_attr_ints(&node, "strides", v, (size_t)sp);
  for (int d = 0; d < sp; d++) v[d] = k->dilation[d];
  mb_attr_ints(&node, "dilations", v, (size_t)sp);
  for (int d = 0; d < sp; d++) v[d] = k->kernel[d];
  mb_attr_ints(&node, "kernel_shape", v, (size_t)sp);
  if (k->group > 1) mb_attr_int(&node, "group", k->group);
  if (k->auto_pad) {
    mb_attr_string(&node, "auto_pad", k->auto_pad);
  } else {
    for (int d = 0; d < sp; d++) {
      v[d] = k->pad_begin[d];
      v[sp + d] = k->pad_end[d];
    }
    mb_attr_ints(&node, "pads", v, (size_t)sp * 2);
  }
  mb_msg(&g, MB_GRAPH_NODE, &node);
  if (k->relu) {
    mb_add_node(&g, "relu", "Relu", "y", "z");
    mb_value_info(&g, MB_GRAPH_OUTPUT, "z", 1, NULL);
  } else {
    mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  }
  mb m = mb_model(17, &g);
  const char *names[3] = {"x", "w", "b"};
  float *values[3] = {x, w, b};
  const int64_t *shapes[3] = {xdims, wdims, bdims};
  size_t ranks[3] = {(size_t)sp + 2, (size_t)sp + 2, 1};
  strand_tensor *y = kr_run_budget(&m, k->w_input ? (k->bias ? 3 : 2) : 1, names, values, shapes,
                                   ranks, planning_budget);

  /* The reference, as 3-D with leading 1s. */
  int I[3] = {1, 1, 1}, O[3] = {1, 1, 1}, K[3] = {1, 1, 1}, S[3] = {1, 1, 1}, D[3] = {1, 1, 1},
      P[3] = {0, 0, 0};
  for (int d = 0; d < sp; d++) {
    int at = 3 - sp + d;
    I[at] = k->in[d], O[at] = out[d], K[at] = k->kernel[d], S[at] = k->stride[d];
    D[at] = k->dilation[d], P[at] = pb[d];
  }
  double *want = calloc(on, sizeof *want), *scale = calloc(on, sizeof *scale);
  if (!want || !scale) abort();
  size_t at = 0;
  for (int n = 0; n < k->n; n++)
    for (int mo = 0; mo < k->m; mo++) {
      int grp = mo / mg;
      for (int o0 = 0; o0 < O[0]; o0++)
        for (int o1 = 0; o1 < O[1]; o1++)
          for (int o2 = 0; o2 < O[2]; o2++, at++) {
            double sum = k->bias ? b[mo] : 0, mag = k->bias ? fabs(b[mo]) : 0;
            for (int ci = 0; ci < cg; ci++)
              for (int k0 = 0; k0 < K[0]; k0++)
                for (int k1 = 0; k1 < K[1]; k1++)
                  for (int k2 = 0; k2 < K[2]; k2++) {
                    int i0 = o0 * S[0] - P[0] + k0 * D[0], i1 = o1 * S[1] - P[1] + k1 * D[1],
                        i2 = o2 * S[2] - P[2] + k2 * D[2];
                    if (i0 < 0 || i0 >= I[0] || i1 < 0 || i1 >= I[1] || i2 < 0 || i2 >= I[2]) continue;
                    size_t xi = ((((size_t)n * k->c + (size_t)(grp * cg + ci)) * I[0] + i0) * I[1] + i1) * I[2] + i2;
                    size_t wi = (((size_t)mo * cg + ci) * K[0] + k0) * K[1] * K[2] + (size_t)k1 * K[2] + k2;
                    sum += (double)x[xi] * w[wi];
                    mag += fabs((double)x[xi] * w[wi]);
                  }
            want[at] = k->relu && sum < 0 ? 0 : sum;
            scale[at] = mag;
          }
    }
  char what[200];
  snprintf(what, sizeof what, "conv %dD n%d c%d m%d g%d in %dx%dx%d k %dx%dx%d s %d d %d %s%s%s",
           sp, k->n, k->c, k->m, k->group, k->in[0], k->in[1], k->in[2], k->kernel[0],
           k->kernel[1], k->kernel[2], k->stride[0], k->dilation[0],
           k->auto_pad ? k->auto_pad : "pads", k->relu ? " relu" : "", k->w_input ? " W input" : "");
  kr_close(y, want, scale, on, what);
  strand_tensor_release(y);
  free(want);
  free(scale);
  free(x);
  free(w);
  free(b);
}

TEST(conv_sweep_matches_reference) {
  strand_threads_set_budget(4); /* split work even on small machines */
  kr_random r = {12345};
  static const char *const pads[4] = {NULL, "SAME_UPPER", "SAME_LOWER", "VALID"};
  for (int i = 0; i < 160; i++) {
    conv_case k;
    memset(&k, 0, sizeof k);
    k.spatial = i % 7 == 0 ? 1 : i % 11 == 0 ? 3 : 2;
    k.n = kr_int(&r, 1, 2);
    int shape = kr_int(&r, 0, 3); /* 0 dense, 1 grouped, 2 depthwise, 3 depthwise multiplier */
    k.group = shape == 0 ? 1 : shape == 1 ? kr_int(&r, 2, 3) : kr_int(&r, 2, 8);
    k.c = k.group * (shape >= 2 ? 1 : kr_int(&r, 1, 6));
    k.m = k.group * (shape == 3 ? 2 : kr_int(&r, 1, 6));
    k.bias = kr_int(&r, 0, 1);
    k.auto_pad = pads[kr_int(&r, 0, 3)];
    for (int d = 0; d < k.spatial; d++) {
      k.kernel[d] = kr_int(&r, 1, k.spatial == 3 ? 3 : 5);
      k.stride[d] = kr_int(&r, 1, 3);
      k.dilation[d] = kr_int(&r, 1, 2);
      k.pad_begin[d] = kr_int(&r, 0, 2);
      k.pad_end[d] = kr_int(&r, 0, 2);
      int eff = (k.kernel[d] - 1) * k.dilation[d] + 1;
      k.in[d] = eff + kr_int(&r, 0, k.spatial == 3 ? 4 : 14);
    }
    for (int d = k.spatial; d < 3; d++) k.in[d] = k.kernel[d] = 1;
    check_conv(&k, &r);
    k.w_input = 1; /* the same shape with W unknown until the run */
    check_conv(&k, &r);
    if (test_failed_now()) break;
  }
  strand_threads_set_budget(0);
}

/* Big enough that im2col + GEMM splits into several blocks. */
TEST(conv_large_matches_reference) {
  strand_threads_set_budget(4);
  kr_random r = {777};
  conv_case k = {2, 1, 32, 48, 1, {30, 30, 1}, {3, 3, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 0}, {1, 1, 0},
                 NULL, 1, 1, 0};
  check_conv(&k, &r);
  conv_case pointwise = {2, 2, 64, 40, 1, {12, 12, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0}, {0},
                         NULL, 1, 0, 0};
  check_conv(&pointwise, &r);
  conv_case depthwise = {2, 2, 32, 32, 32, {20, 20, 1}, {3, 3, 1}, {2, 2, 1}, {1, 1, 1}, {1, 1, 0},
                         {1, 1, 0}, NULL, 1, 1, 0};
  check_conv(&depthwise, &r);
  strand_threads_set_budget(0);
}

/* The im2col path at sizes that cut it into several chunks of output rows
 * and panels with a partial last one, split over threads: a stem (7×7,
 * stride 2, 3 channels), a stride-2 3×3 layer with more input channels
 * than one k block, a grouped one with column dilation, a 5×5 one at unit
 * stride over rows wider than a vector; W packed at creation (bias row or
 * not), and W given at run time. */
TEST(conv_im2col_chunks_match_reference) {
  strand_threads_set_budget(4);
  kr_random r = {4242};
  conv_case stem = {2, 1, 3, 16, 1, {113, 115, 1}, {7, 7, 1}, {2, 2, 1}, {1, 1, 1}, {3, 3, 0},
                    {3, 2, 0}, NULL, 1, 1, 0};
  conv_case deep = {2, 2, 300, 40, 1, {15, 13, 1}, {3, 3, 1}, {2, 2, 1}, {1, 1, 1}, {1, 1, 0},
                    {1, 0, 0}, NULL, 1, 0, 0};
  conv_case grouped = {2, 1, 24, 36, 3, {29, 31, 1}, {5, 3, 1}, {2, 1, 1}, {1, 2, 1}, {2, 1, 0},
                       {2, 1, 0}, NULL, 0, 1, 0};
  conv_case wide = {2, 1, 6, 10, 1, {9, 40, 1}, {5, 5, 1}, {1, 1, 1}, {1, 1, 1}, {2, 2, 0},
                    {2, 1, 0}, NULL, 1, 0, 0};
  conv_case *cases[4] = {&stem, &deep, &grouped, &wide};
  /* Two threads make the stem's four chunks two each, side by side; four
   * split each chunk. The runs at two threads are planned at one, whose
   * scratch holds one chunk's panels only. */
  for (unsigned budget = 2; budget <= 4; budget += 2) {
    strand_threads_set_budget(budget);
    planning_budget = budget == 2 ? 1 : 0;
    for (int i = 0; i < 4 && !test_failed_now(); i++)
      for (int w_input = 0; w_input < 2; w_input++) {
        for (int bias = 0; bias < 2; bias++) {
          cases[i]->w_input = w_input;
          cases[i]->bias = bias;
          check_conv(cases[i], &r);
        }
      }
  }
  planning_budget = 0;
  strand_threads_set_budget(0);
}

/* A 2-D 3×3 Conv at unit strides and dilations over an h × w input with
 * pads (top, left) and (bottom, right), one group: what the Winograd path
 * takes. */
static conv_case winograd_case(int n, int c, int m, int h, int w, const int begin[2],
                               const int end[2], int bias, int relu) {
  conv_case k;
  memset(&k, 0, sizeof k);
  k.spatial = 2;
  k.n = n;
  k.group = 1;
  k.c = c;
  k.m = m;
  k.bias = bias;
  k.relu = relu;
  k.in[0] = h;
  k.in[1] = w;
  k.in[2] = 1;
  for (int d = 0; d < 2; d++) {
    k.kernel[d] = 3;
    k.stride[d] = 1;
    k.dilation[d] = 1;
    k.pad_begin[d] = begin[d];
    k.pad_end[d] = end[d];
  }
  k.kernel[2] = 1;
  return k;
}

/* The Winograd path (constant 3×3 W, unit strides and dilations, one
 * group, at least 16 channels in and out, on AVX-512 CPUs; im2col
 * elsewhere), on planes that mostly get 2×2 blocks: odd and even output
 * sizes (partial 2×2 tiles), more than 16 tile columns (two vectors of
 * tiles), channel counts that are not multiples of 16, asymmetric and wide
 * pads, with and without bias, and batches. */
TEST(conv_winograd_shapes_match_reference) {
  strand_threads_set_budget(4);
  kr_random r = {4242};
  static const int sizes[][2] = {{1, 1}, {2, 3}, {5, 7}, {8, 8}, {9, 40}, {14, 14}, {3, 35}};
  for (int i = 0; i < 7; i++) {
    int begin[2], end[2];
    for (int d = 0; d < 2; d++) {
      begin[d] = (i + d) % 3;
      end[d] = (i + 2 * d + 1) % 3;
      if (sizes[i][d] + begin[d] + end[d] < 3) end[d] = 3 - sizes[i][d] - begin[d];
    }
    conv_case k = winograd_case(1 + i % 2, 16 + 7 * (i % 3), 16 + 5 * i, sizes[i][0],
                                sizes[i][1], begin, end, i % 3 != 1, i % 2);
    check_conv(&k, &r);
    if (test_failed_now()) break;
  }
  strand_threads_set_budget(0);
}

/* Winograd products big enough to split over threads, where each thread
 * goes on to the output transform of the tiles and channels it computed:
 * splits by tiles (49, 49 and 196 tiles, at most 8 output channels per
 * tile: 80 and 112 outputs, a partial last panel) and by channels (a 7×7
 * plane's 16 tiles against 160 outputs), on both block sides, at two and
 * four threads (49 tiles in parts that start inside a 14-row panel). */
TEST(conv_winograd_split_over_threads_match_reference) {
  kr_random r = {4444};
  const int pad[2] = {1, 1};
  conv_case cases[4] = {winograd_case(1, 128, 80, 28, 28, pad, pad, 1, 1),
                        winograd_case(1, 128, 112, 14, 14, pad, pad, 1, 0),
                        winograd_case(2, 96, 64, 56, 56, pad, pad, 0, 1),
                        winograd_case(1, 256, 160, 7, 7, pad, pad, 1, 1)};
  for (unsigned budget = 2; budget <= 4; budget += 2) {
    strand_threads_set_budget(budget);
    for (int i = 0; i < 4 && !test_failed_now(); i++) check_conv(&cases[i], &r);
  }
  strand_threads_set_budget(0);
}

/* Which Winograd blocks a plane gets: 4×4 on ResNet's 56 and 28 planes,
 * 2×2 on its 14×14 and 7×7 ones (16 and 4 tiles of 4×4 would mostly stream
 * the larger weights), on a plane too thin to gain, and when the size is
 * unknown. */
TEST(conv_winograd_block_side_follows_the_plane) {
  CHECK(conv_winograd_tile_for(56, 56) == 4);
  CHECK(conv_winograd_tile_for(28, 28) == 4);
  CHECK(conv_winograd_tile_for(14, 14) == 2);
  CHECK(conv_winograd_tile_for(24, 24) == 4);
  CHECK(conv_winograd_tile_for(7, 7) == 2);
  CHECK(conv_winograd_tile_for(1, 1000) == 2);
  CHECK(conv_winograd_tile_for(-1, 56) == 2);
  CHECK(conv_winograd_tile_for(56, -1) == 2);
}

/* F(4×4, 3×3) (planes with at least 28 blocks of 4×4): every remainder of
 * rows and columns by 4, more than 16 tile columns (a second vector of
 * tiles, whose last tile reads two columns past its vector's 64), pads up
 * to 2 on either side, channel counts off multiples of 16, bias and Relu,
 * batches. Each shape is checked to take the 4×4 blocks. */
TEST(conv_winograd_4x4_blocks_match_reference) {
  strand_threads_set_budget(4);
  kr_random r = {4343};
  static const int sizes[][2] = {{24, 24}, {18, 67}, {21, 30}, {21, 64}, {15, 70}, {23, 25}};
  for (int i = 0; i < 6; i++) {
    int begin[2], end[2], out[2];
    for (int d = 0; d < 2; d++) {
      begin[d] = (i + d) % 3;
      end[d] = (2 * i + d + 1) % 3;
      out[d] = sizes[i][d] + begin[d] + end[d] - 2;
    }
    CHECK(conv_winograd_tile_for(out[0], out[1]) == 4);
    conv_case k = winograd_case(1 + i % 2, 16 + 9 * (i % 3), 16 + 11 * i, sizes[i][0],
                                sizes[i][1], begin, end, i % 3 != 2, i % 2);
    check_conv(&k, &r);
    if (test_failed_now()) break;
  }
  strand_threads_set_budget(0);
}

/* The direct 1×1 path (constant W, unit strides, no padding, one group, on
 * AVX-512 CPUs; the packed SGEMM elsewhere): output channel counts that
 * pick each panel height (8, 12, 14) and leave partial panels, position
 * counts on both sides of the 32-position block, with and without bias,
 * with a fused Relu, batches. Also the bias-row path of 1×1 Convs with
 * fewer input than output channels when the direct path is not taken. */
/* Depthwise layers the AVX-512 path takes 16 channels at a time (3×3,
 * zero-padded geometry, up to 28×28): 40 channels, so two blocks and 8
 * channels left to the per-plane path; stride 1 on one thread (blocks)
 * and on four (planes), stride 2 down to 7×7 split over four threads in
 * parts; two images. Planes the blocks decline (other pads, 5×5) too. */
TEST(conv_depthwise_blocks_match_reference) {
  kr_random r = {4242};
  static const conv_case cases[] = {
      {2, 2, 40, 40, 40, {14, 14, 1}, {3, 3, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 0}, {1, 1, 0}, NULL, 1, 1, 0},
      {2, 2, 40, 40, 40, {14, 14, 1}, {3, 3, 1}, {2, 2, 1}, {1, 1, 1}, {1, 1, 0}, {1, 1, 0}, NULL, 1, 0, 0},
      {2, 1, 48, 48, 48, {7, 7, 1}, {3, 3, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 0}, {1, 1, 0}, NULL, 0, 1, 0},
      {2, 1, 32, 32, 32, {28, 28, 1}, {3, 3, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 0}, {1, 1, 0}, NULL, 1, 0, 0},
      {2, 1, 32, 32, 32, {9, 11, 1}, {3, 3, 1}, {1, 1, 1}, {1, 1, 1}, {2, 0, 0}, {0, 1, 0}, NULL, 1, 0, 0},
      {2, 1, 32, 32, 32, {9, 9, 1}, {5, 5, 1}, {1, 1, 1}, {1, 1, 1}, {2, 2, 0}, {2, 2, 0}, NULL, 1, 0, 0},
  };
  for (unsigned budget = 1; budget <= 4; budget += 3) {
    strand_threads_set_budget(budget);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] && !test_failed_now(); i++)
      check_conv(&cases[i], &r);
  }
  strand_threads_set_budget(0);
}

TEST(conv_pointwise_shapes_match_reference) {
  strand_threads_set_budget(4);
  kr_random r = {99};
  static const int ms[] = {1, 8, 12, 16, 24, 29, 96, 160};
  static const int hw[][2] = {{1, 1}, {4, 8}, {1, 33}, {7, 7}, {5, 13}, {2, 64}, {3, 31}, {9, 9}};
  for (int i = 0; i < 8; i++) {
    conv_case k;
    memset(&k, 0, sizeof k);
    k.spatial = 2;
    k.n = 1 + i % 3;
    k.group = 1;
    k.c = 1 + 9 * i;
    k.m = ms[i];
    k.bias = i % 4 != 2;
    k.relu = i % 2;
    k.in[0] = hw[i][0];
    k.in[1] = hw[i][1];
    k.in[2] = 1;
    for (int d = 0; d < 3; d++) k.kernel[d] = k.stride[d] = k.dilation[d] = 1;
    check_conv(&k, &r);
    if (test_failed_now()) break;
  }
  strand_threads_set_budget(0);
}
