/*
 * vector_math.h — float32 pointwise math over arrays (exp, sigmoid, tanh,
 * Relu, the LSTM cell), one AVX-512 path and one portable path.
 *
 * What must hold:
 * - Each output element depends only on its own inputs (and, for the
 *   reductions, on the array length): never on where in a vector it fell
 *   or on the length of a neighbouring row. Tails run the same instructions
 *   under a mask, so a row gives bit-identical results whether it is
 *   computed alone or as one row of a batch.
 * - Accuracy (both paths): exp within 2 ulp over [-87, 88], 0 below and
 *   +inf above; sigmoid and tanh within 2e-7 absolute. NaN in, NaN out.
 * - The portable path follows the same algorithm with fmaf, so it gives
 *   the same bits on any CPU where it runs (it is also the test's mirror of
 *   the AVX-512 one).
 * Functions may be called from any thread; none allocates. y may equal x.
 */
#ifndef STRAND_KERNELS_VECTOR_MATH_H
#define STRAND_KERNELS_VECTOR_MATH_H

#include <stdbool.h>
#include <stddef.h>

/* y[i] = x[2i] for i < n (a stride-2 window's columns); reads x[0] to
 * x[2n-2] only. y must not overlap x. */
void strand__vec_gather_even(float *y, const float *x, size_t n);

/* y[i] = x[i] < 0 ? 0 : x[i] (NaN stays NaN). */
void strand__vec_relu(float *y, const float *x, size_t n);
/* y[i] = 1 / (1 + exp(-x[i])). */
void strand__vec_sigmoid(float *y, const float *x, size_t n);
/* y[i] = tanh(x[i]). */
void strand__vec_tanh(float *y, const float *x, size_t n);
/* y[i] = exp(x[i] - shift); returns the sum of the y[i] (lanes summed in
 * an order that depends only on n). */
float strand__vec_exp_shifted(float *y, const float *x, size_t n, float shift);
/* The largest x[i] (n >= 1; NaNs are skipped unless all are NaN). */
float strand__vec_max(const float *x, size_t n);
/* y[i] *= s. */
void strand__vec_scale(float *y, size_t n, float s);

/* The four float arithmetic operators of elementwise Add, Sub, Mul, Div. */
typedef enum strand__vec_op {
  STRAND__VEC_ADD,
  STRAND__VEC_SUB,
  STRAND__VEC_MUL,
  STRAND__VEC_DIV
} strand__vec_op;

/* z[i] = a[i] op b[i] for i < n, where an operand whose `steps` is false
 * is one value repeated (a[0] or b[0] for every i). Each element is the
 * correctly rounded single-precision result, as the scalar expression
 * gives it (no operation is fused). z may equal a or b. */
void strand__vec_arith(strand__vec_op op, float *z, const float *a, bool a_steps,
                       const float *b, bool b_steps, size_t n);

/* One step of the standard ONNX LSTM cell for one batch row (gate order
 * i, o, f, c; sigmoid, tanh, tanh; no clip, no peepholes):
 *   g = xw + gr (+ bias when non-NULL: 4h floats added after)
 *   c' = σ(g_f)·c + σ(g_i)·tanh(g_c);  h' = σ(g_o)·tanh(c')
 * xw, gr and bias hold 4h floats; c and h hold h floats, updated in place. */
void strand__vec_lstm_cell(size_t h, const float *xw, const float *gr, const float *bias,
                           float *c, float *hout);

/* One row of LayerNormalization over n >= 1 floats:
 *   y[i] = (x[i] - mean) * inv * scale[i] + bias[i],  inv = 1/sqrt(var + epsilon)
 * (bias NULL: none); mean and var summed in 16 float lanes (an order that
 * depends only on n), the variance from the deviations. *mean_out and
 * *inv_out receive mean and inv. y may equal x. */
void strand__vec_layer_norm(float *y, const float *x, size_t n, const float *scale,
                            const float *bias, float epsilon, float *mean_out, float *inv_out);

/* The portable path, whatever the CPU (for tests). */
void strand__vec_layer_norm_portable(float *y, const float *x, size_t n, const float *scale,
                                     const float *bias, float epsilon, float *mean_out,
                                     float *inv_out);
void strand__vec_sigmoid_portable(float *y, const float *x, size_t n);
void strand__vec_tanh_portable(float *y, const float *x, size_t n);
float strand__vec_exp_shifted_portable(float *y, const float *x, size_t n, float shift);
void strand__vec_lstm_cell_portable(size_t h, const float *xw, const float *gr,
                                    const float *bias, float *c, float *hout);

#endif /* STRAND_KERNELS_VECTOR_MATH_H */
