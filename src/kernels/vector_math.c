/*
 * vector_math.c — see vector_math.h. exp is Cephes' expf scheme: n =
 * round(x·log2 e), r = x − n·ln 2 in two parts, a degree-5 polynomial, then
 * a scale by 2^n (scalef / ldexpf, both exact or correctly rounded). tanh
 * uses Cephes' odd polynomial below |x| 0.625 and (1 − e)/(1 + e) with
 * e = exp(−2|x|) above. Both paths run the same operations in the same
 * order, with fused multiply-adds where written (fmaf in the portable one).
 */
#include "kernels/vector_math.h"

#include "kernels/gemm.h"

#include <math.h>
#include <string.h>

#define EXP_HI 88.7228394f   /* above: +inf */
#define EXP_LO (-104.0f)     /* below: 0 after scaling */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define P0 1.9875691500E-4f
#define P1 1.3981999507E-3f
#define P2 8.3334519073E-3f
#define P3 4.1665795894E-2f
#define P4 1.6666665459E-1f
#define P5 5.0000001201E-1f
#define TANH_SMALL 0.625f
#define T0 (-5.70498872745E-3f)
#define T1 2.06390887954E-2f
#define T2 (-5.37397155531E-2f)
#define T3 1.33314422036E-1f
#define T4 (-3.33332819422E-1f)

/* ---- portable --------------------------------------------------------------- */

static float exp1(float x) {
  if (x != x) return x;
  float v = x > EXP_HI ? EXP_HI : x < EXP_LO ? EXP_LO : x;
  float n = nearbyintf(v * LOG2E);
  float r = fmaf(n, -LN2_HI, v);
  r = fmaf(n, -LN2_LO, r);
  float z = r * r;
  float p = fmaf(P0, r, P1);
  p = fmaf(p, r, P2);
  p = fmaf(p, r, P3);
  p = fmaf(p, r, P4);
  p = fmaf(p, r, P5);
  p = fmaf(p, z, r) + 1.0f;
  return ldexpf(p, (int)n);
}

static float sigmoid1(float x) { return 1.0f / (1.0f + exp1(-x)); }

static float tanh1(float x) {
  float a = fabsf(x);
  if (a < TANH_SMALL) {
    float z = x * x;
    float p = fmaf(T0, z, T1);
    p = fmaf(p, z, T2);
    p = fmaf(p, z, T3);
    p = fmaf(p, z, T4);
    return copysignf(fabsf(fmaf(p * z, x, x)), x); /* keeps -0 */
  }
  float e = exp1(-2.0f * a);
  return copysignf((1.0f - e) / (1.0f + e), x);
}

void strand__vec_sigmoid_portable(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = sigmoid1(x[i]);
}

void strand__vec_tanh_portable(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = tanh1(x[i]);
}

/* 16 lane sums, as the vector path keeps them, then added lane 0 first. */
float strand__vec_exp_shifted_portable(float *y, const float *x, size_t n, float shift) {
  float lanes[16] = {0};
  for (size_t i = 0; i < n; i++) {
    y[i] = exp1(x[i] - shift);
    lanes[i % 16] += y[i];
  }
  float sum = 0;
  for (int l = 0; l < 16; l++) sum += lanes[l];
  return sum;
}

void strand__vec_lstm_cell_portable(size_t h, const float *xw, const float *gr,
                                    const float *bias, float *c, float *hout) {
  for (size_t i = 0; i < h; i++) {
    float g[4];
    for (size_t q = 0; q < 4; q++) {
      g[q] = xw[q * h + i] + gr[q * h + i];
      if (bias) g[q] += bias[q * h + i];
    }
    float it = sigmoid1(g[0]), ot = sigmoid1(g[1]), ft = sigmoid1(g[2]), ct = tanh1(g[3]);
    float cn = fmaf(ft, c[i], it * ct);
    c[i] = cn;
    hout[i] = ot * tanh1(cn);
  }
}

void strand__vec_layer_norm_portable(float *y, const float *x, size_t n, const float *scale,
                                     const float *bias, float epsilon, float *mean_out,
                                     float *inv_out) {
  float lanes[16] = {0};
  for (size_t i = 0; i < n; i++) lanes[i % 16] += x[i];
  float sum = 0;
  for (int l = 0; l < 16; l++) sum += lanes[l];
  float mean = sum / (float)n;
  for (int l = 0; l < 16; l++) lanes[l] = 0;
  for (size_t i = 0; i < n; i++) {
    float d = x[i] - mean;
    lanes[i % 16] = fmaf(d, d, lanes[i % 16]);
  }
  float squares = 0;
  for (int l = 0; l < 16; l++) squares += lanes[l];
  float inv = 1.0f / sqrtf(squares / (float)n + epsilon);
  for (size_t i = 0; i < n; i++)
    y[i] = fmaf((x[i] - mean) * inv, scale[i], bias ? bias[i] : 0.0f);
  *mean_out = mean;
  *inv_out = inv;
}

static void relu_portable(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] < 0 ? 0 : x[i];
}

static float max_portable(const float *x, size_t n) {
  float m = x[0];
  for (size_t i = 1; i < n; i++)
    if (x[i] > m || m != m) m = x[i];
  return m;
}

/* ---- AVX-512 ----------------------------------------------------------------- */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX512_PATH 1
#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

INLINE __mmask16 lanes_of(size_t count) {
  return count >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1);
}

INLINE __m512 exp16(__m512 x) {
  __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  __m512 v = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EXP_LO)), _mm512_set1_ps(EXP_HI));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(LOG2E)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_HI), v);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_LO), r);
  __m512 z = _mm512_mul_ps(r, r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(P0), r, _mm512_set1_ps(P1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P5));
  p = _mm512_add_ps(_mm512_fmadd_ps(p, z, r), _mm512_set1_ps(1.0f));
  return _mm512_mask_mov_ps(_mm512_scalef_ps(p, n), nan, x);
}

INLINE __m512 sigmoid16(__m512 x) {
  __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

INLINE __m512 tanh16(__m512 x) {
  const __m512 sign = _mm512_set1_ps(-0.0f), one = _mm512_set1_ps(1.0f);
  __m512 a = _mm512_andnot_ps(sign, x);
  __m512 z = _mm512_mul_ps(x, x);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(T0), z, _mm512_set1_ps(T1));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(T2));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(T3));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(T4));
  __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
  __m512 e = exp16(_mm512_mul_ps(_mm512_set1_ps(-2.0f), a));
  __m512 t = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
  __mmask16 is_small = _mm512_cmp_ps_mask(a, _mm512_set1_ps(TANH_SMALL), _CMP_LT_OQ);
  __m512 v = _mm512_mask_mov_ps(t, is_small, small);
  /* copysign(|v|, x): keeps -0 (t >= 0 or NaN) */
  return _mm512_or_ps(_mm512_andnot_ps(sign, v), _mm512_and_ps(sign, x));
}

static TARGET void sigmoid_avx512(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = lanes_of(n - i);
    _mm512_mask_storeu_ps(y + i, m, sigmoid16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

static TARGET void tanh_avx512(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = lanes_of(n - i);
    _mm512_mask_storeu_ps(y + i, m, tanh16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

static TARGET void relu_avx512(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = lanes_of(n - i);
    __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    /* max(0, v) with v second: NaN passes through */
    _mm512_mask_storeu_ps(y + i, m, _mm512_max_ps(_mm512_setzero_ps(), v));
  }
}

static TARGET float exp_shifted_avx512(float *y, const float *x, size_t n, float shift) {
  __m512 acc = _mm512_setzero_ps(), s = _mm512_set1_ps(shift);
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = lanes_of(n - i);
    __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s));
    _mm512_mask_storeu_ps(y + i, m, e);
    acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(m, e));
  }
  float lanes[16];
  _mm512_storeu_ps(lanes, acc);
  float sum = 0;
  for (int l = 0; l < 16; l++) sum += lanes[l];
  return sum;
}

static TARGET float max_avx512(const float *x, size_t n) {
  float m = max_portable(x, n < 16 ? n : 16);
  if (n <= 16 || m != m) return n <= 16 ? m : max_portable(x, n);
  __m512 acc = _mm512_set1_ps(m);
  __mmask16 any_nan = 0;
  for (size_t i = 16; i < n; i += 16) {
    __mmask16 k = lanes_of(n - i);
    __m512 v = _mm512_mask_loadu_ps(acc, k, x + i);
    any_nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    acc = _mm512_max_ps(acc, v);
  }
  if (any_nan) return max_portable(x, n);
  return _mm512_reduce_max_ps(acc);
}

static TARGET void gather_even_avx512(float *y, const float *x, size_t n) {
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (size_t i = 0; i < n; i += 16) {
    size_t left = n - i, reads = left > 16 ? 32 : 2 * left - 1; /* x[2i .. 2i + reads) */
    __m512 lo = _mm512_maskz_loadu_ps(lanes_of(reads), x + 2 * i);
    __m512 hi = _mm512_maskz_loadu_ps(lanes_of(reads > 16 ? reads - 16 : 0), x + 2 * i + 16);
    _mm512_mask_storeu_ps(y + i, lanes_of(left), _mm512_permutex2var_ps(lo, evens, hi));
  }
}

static TARGET void scale_avx512(float *y, size_t n, float s) {
  __m512 vs = _mm512_set1_ps(s);
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = lanes_of(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), vs));
  }
}

INLINE __m512 arith16(strand__vec_op op, __m512 a, __m512 b) {
  switch (op) {
  case STRAND__VEC_ADD: return _mm512_add_ps(a, b);
  case STRAND__VEC_SUB: return _mm512_sub_ps(a, b);
  case STRAND__VEC_MUL: return _mm512_mul_ps(a, b);
  default: return _mm512_div_ps(a, b);
  }
}

/* One instance per operator and operand form, so that the loop holds no
 * branch. */
INLINE void arith_loop(strand__vec_op op, float *z, const float *a, bool a_steps,
                       const float *b, bool b_steps, size_t n) {
  const __m512 a0 = _mm512_set1_ps(a[0]), b0 = _mm512_set1_ps(b[0]);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 x = a_steps ? _mm512_loadu_ps(a + i) : a0, y = b_steps ? _mm512_loadu_ps(b + i) : b0;
    _mm512_storeu_ps(z + i, arith16(op, x, y));
  }
  if (i < n) {
    __mmask16 m = lanes_of(n - i);
    /* Lanes past n hold 1: a division there is harmless and its result is
     * not stored. */
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 x = a_steps ? _mm512_mask_loadu_ps(one, m, a + i) : a0;
    __m512 y = b_steps ? _mm512_mask_loadu_ps(one, m, b + i) : b0;
    _mm512_mask_storeu_ps(z + i, m, arith16(op, x, y));
  }
}

#define ARITH_FORMS(OP)                                                       \
  if (a_steps && b_steps) arith_loop(OP, z, a, true, b, true, n);             \
  else if (a_steps) arith_loop(OP, z, a, true, b, false, n);                  \
  else arith_loop(OP, z, a, false, b, true, n);

/* At least one operand steps (the caller handles two repeated values). */
static TARGET void arith_avx512(strand__vec_op op, float *z, const float *a, bool a_steps,
                                const float *b, bool b_steps, size_t n) {
  switch (op) {
  case STRAND__VEC_ADD: ARITH_FORMS(STRAND__VEC_ADD) break;
  case STRAND__VEC_SUB: ARITH_FORMS(STRAND__VEC_SUB) break;
  case STRAND__VEC_MUL: ARITH_FORMS(STRAND__VEC_MUL) break;
  default: ARITH_FORMS(STRAND__VEC_DIV) break;
  }
}

static TARGET void layer_norm_avx512(float *y, const float *x, size_t n, const float *scale,
                                     const float *bias, float epsilon, float *mean_out,
                                     float *inv_out) {
  float lanes[16];
  __m512 acc = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16)
    acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(lanes_of(n - i), x + i));
  _mm512_storeu_ps(lanes, acc);
  float sum = 0;
  for (int l = 0; l < 16; l++) sum += lanes[l];
  const float mean = sum / (float)n;
  const __m512 vm = _mm512_set1_ps(mean);
  acc = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = lanes_of(n - i);
    __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vm);
    acc = _mm512_fmadd_ps(d, d, acc);
  }
  _mm512_storeu_ps(lanes, acc);
  float squares = 0;
  for (int l = 0; l < 16; l++) squares += lanes[l];
  const float inv = 1.0f / sqrtf(squares / (float)n + epsilon);
  const __m512 vi = _mm512_set1_ps(inv);
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = lanes_of(n - i);
    __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vi);
    __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + i) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, scale + i), b));
  }
  *mean_out = mean;
  *inv_out = inv;
}

static TARGET void lstm_cell_avx512(size_t h, const float *xw, const float *gr, const float *bias,
                                    float *c, float *hout) {
  for (size_t i = 0; i < h; i += 16) {
    __mmask16 m = lanes_of(h - i);
    __m512 g[4];
    for (size_t q = 0; q < 4; q++) {
      g[q] = _mm512_add_ps(_mm512_maskz_loadu_ps(m, xw + q * h + i),
                           _mm512_maskz_loadu_ps(m, gr + q * h + i));
      if (bias) g[q] = _mm512_add_ps(g[q], _mm512_maskz_loadu_ps(m, bias + q * h + i));
    }
    __m512 it = sigmoid16(g[0]), ot = sigmoid16(g[1]), ft = sigmoid16(g[2]), ct = tanh16(g[3]);
    __m512 cn = _mm512_fmadd_ps(ft, _mm512_maskz_loadu_ps(m, c + i), _mm512_mul_ps(it, ct));
    _mm512_mask_storeu_ps(c + i, m, cn);
    _mm512_mask_storeu_ps(hout + i, m, _mm512_mul_ps(ot, tanh16(cn)));
  }
}
#endif

static bool use_avx512(void) {
#ifdef HAVE_AVX512_PATH
  return strand__cpu()->selected >= STRAND__CPU_AVX512;
#else
  return false;
#endif
}

/* ---- dispatch ------------------------------------------------------------------ */

#ifdef HAVE_AVX512_PATH
#define DISPATCH(avx512_call, portable_call) \
  if (use_avx512()) {                        \
    avx512_call;                             \
  } else {                                   \
    portable_call;                           \
  }
#else
#define DISPATCH(avx512_call, portable_call) portable_call;
#endif

void strand__vec_relu(float *y, const float *x, size_t n) {
  DISPATCH(relu_avx512(y, x, n), relu_portable(y, x, n))
}

void strand__vec_sigmoid(float *y, const float *x, size_t n) {
  DISPATCH(sigmoid_avx512(y, x, n), strand__vec_sigmoid_portable(y, x, n))
}

void strand__vec_tanh(float *y, const float *x, size_t n) {
  DISPATCH(tanh_avx512(y, x, n), strand__vec_tanh_portable(y, x, n))
}

float strand__vec_exp_shifted(float *y, const float *x, size_t n, float shift) {
  DISPATCH(return exp_shifted_avx512(y, x, n, shift),
           return strand__vec_exp_shifted_portable(y, x, n, shift))
}

float strand__vec_max(const float *x, size_t n) {
  DISPATCH(return max_avx512(x, n), return max_portable(x, n))
}

void strand__vec_gather_even(float *y, const float *x, size_t n) {
  DISPATCH(gather_even_avx512(y, x, n), for (size_t i = 0; i < n; i++) y[i] = x[2 * i])
}

void strand__vec_scale(float *y, size_t n, float s) {
  DISPATCH(scale_avx512(y, n, s), for (size_t i = 0; i < n; i++) y[i] *= s)
}

static float arith1(strand__vec_op op, float a, float b) {
  switch (op) {
  case STRAND__VEC_ADD: return a + b;
  case STRAND__VEC_SUB: return a - b;
  case STRAND__VEC_MUL: return a * b;
  default: return a / b;
  }
}

void strand__vec_arith(strand__vec_op op, float *z, const float *a, bool a_steps,
                       const float *b, bool b_steps, size_t n) {
  if (n == 0) return;
  if (!a_steps && !b_steps) {
    float r = arith1(op, a[0], b[0]);
    for (size_t i = 0; i < n; i++) z[i] = r;
    return;
  }
  DISPATCH(arith_avx512(op, z, a, a_steps, b, b_steps, n),
           for (size_t i = 0; i < n; i++) z[i] = arith1(op, a_steps ? a[i] : a[0],
                                                        b_steps ? b[i] : b[0]))
}

void strand__vec_lstm_cell(size_t h, const float *xw, const float *gr, const float *bias,
                           float *c, float *hout) {
  DISPATCH(lstm_cell_avx512(h, xw, gr, bias, c, hout),
           strand__vec_lstm_cell_portable(h, xw, gr, bias, c, hout))
}

void strand__vec_layer_norm(float *y, const float *x, size_t n, const float *scale,
                            const float *bias, float epsilon, float *mean_out, float *inv_out) {
  DISPATCH(layer_norm_avx512(y, x, n, scale, bias, epsilon, mean_out, inv_out),
           strand__vec_layer_norm_portable(y, x, n, scale, bias, epsilon, mean_out, inv_out))
}
