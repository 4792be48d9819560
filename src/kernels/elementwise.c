/*
 * elementwise.c — elementwise ops with numpy broadcasting: arithmetic
 * (Add, Sub, Mul, Div, Pow, variadic Max, Min, Sum, Mean), comparisons,
 * logic, Where, and unary math (Abs, Neg, Exp, Log, Sqrt, Reciprocal,
 * Floor, Ceil, Erf).
 *
 * Broadcasting goes through kernel_broadcast (common.c): dimensions are
 * merged so that the innermost loop runs over the longest contiguous span,
 * with each input either advancing (stride 1) or repeating one element
 * (stride 0). Integer arithmetic wraps (computed in unsigned types, never
 * undefined); integer division by zero fails the run, and INT_MIN / -1
 * wraps. Max and Min propagate NaN.
 */
#include "kernels/kernels_internal.h"
#include "kernels/vector_math.h"

#include <math.h>
#include <string.h>

/* X(NAME, C type, unsigned type arithmetic wraps in) */
#define NUMERIC_TYPES(X)                                                             \
  X(FLOAT32, float, float) X(FLOAT64, double, double) X(INT8, int8_t, uint32_t)      \
  X(INT16, int16_t, uint32_t) X(INT32, int32_t, uint32_t) X(INT64, int64_t, uint64_t) \
  X(UINT8, uint8_t, uint32_t) X(UINT16, uint16_t, uint32_t) X(UINT32, uint32_t, uint32_t) \
  X(UINT64, uint64_t, uint64_t)

#define SIGNED_INTS(X) X(INT8, int8_t, uint32_t) X(INT16, int16_t, uint32_t) \
  X(INT32, int32_t, uint32_t) X(INT64, int64_t, uint64_t)
#define UNSIGNED_INTS(X) X(UINT8, uint8_t, uint32_t) X(UINT16, uint16_t, uint32_t) \
  X(UINT32, uint32_t, uint32_t) X(UINT64, uint64_t, uint64_t)

typedef enum binop {
  OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_FMOD, OP_POW, OP_MAX, OP_MIN,
  OP_EQUAL, OP_LESS, OP_GREATER, OP_LESS_EQUAL, OP_GREATER_EQUAL,
  OP_AND, OP_OR, OP_XOR
} binop;

/* ---- integer division ----------------------------------------------------- */

#define DEFINE_SIGNED_DIV(NAME, T, W)                                  \
  static inline T div_##NAME(T a, T b, int *zero) {                    \
    if (b == 0) {                                                      \
      *zero = 1;                                                       \
      return 0;                                                        \
    }                                                                  \
    if (b == -1) return (T)(0 - (W)a);                                 \
    return (T)(a / b);                                                 \
  }
#define DEFINE_UNSIGNED_DIV(NAME, T, W)                                \
  static inline T div_##NAME(T a, T b, int *zero) {                    \
    if (b == 0) {                                                      \
      *zero = 1;                                                       \
      return 0;                                                        \
    }                                                                  \
    return (T)(a / b);                                                 \
  }
SIGNED_INTS(DEFINE_SIGNED_DIV)
UNSIGNED_INTS(DEFINE_UNSIGNED_DIV)

static inline float div_FLOAT32(float a, float b, int *zero) {
  (void)zero;
  return a / b;
}
static inline double div_FLOAT64(double a, double b, int *zero) {
  (void)zero;
  return a / b;
}

/* Mod: the result takes the divisor's sign (Python's %), FMOD the
 * dividend's (C's fmod and %). */
#define DEFINE_SIGNED_MOD(NAME, T, W)                                  \
  static inline T mod_##NAME(T a, T b, int *zero) {                    \
    if (b == 0) {                                                      \
      *zero = 1;                                                       \
      return 0;                                                        \
    }                                                                  \
    if (b == -1) return 0;                                             \
    T r = (T)(a % b);                                                  \
    return r != 0 && ((r < 0) != (b < 0)) ? (T)(r + b) : r;            \
  }                                                                    \
  static inline T fmod_##NAME(T a, T b, int *zero) {                   \
    if (b == 0) {                                                      \
      *zero = 1;                                                       \
      return 0;                                                        \
    }                                                                  \
    return b == -1 ? (T)0 : (T)(a % b);                                \
  }
#define DEFINE_UNSIGNED_MOD(NAME, T, W)                                \
  static inline T mod_##NAME(T a, T b, int *zero) {                    \
    if (b == 0) {                                                      \
      *zero = 1;                                                       \
      return 0;                                                        \
    }                                                                  \
    return (T)(a % b);                                                 \
  }                                                                    \
  static inline T fmod_##NAME(T a, T b, int *zero) { return mod_##NAME(a, b, zero); }
SIGNED_INTS(DEFINE_SIGNED_MOD)
UNSIGNED_INTS(DEFINE_UNSIGNED_MOD)

static inline float fmod_FLOAT32(float a, float b, int *zero) {
  (void)zero;
  return fmodf(a, b);
}
static inline double fmod_FLOAT64(double a, double b, int *zero) {
  (void)zero;
  return fmod(a, b);
}
/* Floor Mod on floats (opset 28): a zero result takes the divisor's sign. */
static inline float mod_FLOAT32(float a, float b, int *zero) {
  float r = fmod_FLOAT32(a, b, zero);
  if (r == 0) return copysignf(0.0f, b);
  return (r < 0) != (b < 0) ? r + b : r;
}
static inline double mod_FLOAT64(double a, double b, int *zero) {
  double r = fmod_FLOAT64(a, b, zero);
  if (r == 0) return copysign(0.0, b);
  return (r < 0) != (b < 0) ? r + b : r;
}

/* Integer power by squaring, wrapping; a negative exponent gives 0 except
 * for bases 1 and -1 (what truncating 1 / a^-e gives). */
static int64_t ipow(int64_t base, int64_t e) {
  if (e < 0) {
    if (base == 1) return 1;
    if (base == -1) return (e & 1) ? -1 : 1;
    return 0;
  }
  uint64_t result = 1, b = (uint64_t)base;
  while (e) {
    if (e & 1) result *= b;
    b *= b;
    e >>= 1;
  }
  return (int64_t)result;
}

/* ---- the span loop ----------------------------------------------------------- */

typedef struct binary_job {
  binop op;
  strand_dtype dtype;
  const void *a, *b;
  void *out;
  _Atomic int zero_division;
} binary_job;

/* Runs EXPR (over `a` and `b` of type T) for n elements into OUT_T. The
 * strides (0 or 1) are hoisted out so each loop vectorizes. */
#define SPAN(T, OUT_T, EXPR)                                                   \
  do {                                                                         \
    const T *x_ = (const T *)j->a + offsets[0];                                \
    const T *y_ = (const T *)j->b + offsets[1];                                \
    OUT_T *z_ = (OUT_T *)j->out + out_offset;                                  \
    if (sa && sb) {                                                            \
      for (size_t i_ = 0; i_ < n; i_++) {                                      \
        T a = x_[i_], b = y_[i_];                                              \
        z_[i_] = (OUT_T)(EXPR);                                                \
      }                                                                        \
    } else if (sa) {                                                           \
      T b = y_[0];                                                             \
      for (size_t i_ = 0; i_ < n; i_++) {                                      \
        T a = x_[i_];                                                          \
        z_[i_] = (OUT_T)(EXPR);                                                \
      }                                                                        \
    } else if (sb) {                                                           \
      T a = x_[0];                                                             \
      for (size_t i_ = 0; i_ < n; i_++) {                                      \
        T b = y_[i_];                                                          \
        z_[i_] = (OUT_T)(EXPR);                                                \
      }                                                                        \
    } else {                                                                   \
      T a = x_[0], b = y_[0];                                                  \
      OUT_T r_ = (OUT_T)(EXPR);                                                \
      for (size_t i_ = 0; i_ < n; i_++) z_[i_] = r_;                           \
    }                                                                          \
  } while (0)

#define IS_NAN(x) ((x) != (x))

#define ARITH_CASES(NAME, T, W)                                                \
  case STRAND_DTYPE_##NAME:                                                    \
    switch (j->op) {                                                           \
    case OP_ADD: SPAN(T, T, (T)((W)a + (W)b)); break;                          \
    case OP_SUB: SPAN(T, T, (T)((W)a - (W)b)); break;                          \
    case OP_MUL: SPAN(T, T, (T)((W)a * (W)b)); break;                          \
    case OP_DIV: SPAN(T, T, div_##NAME(a, b, &zero)); break;                   \
    case OP_MOD: SPAN(T, T, mod_##NAME(a, b, &zero)); break;                   \
    case OP_FMOD: SPAN(T, T, fmod_##NAME(a, b, &zero)); break;                 \
    case OP_MAX: SPAN(T, T, IS_NAN(a) ? a : (a > b ? a : b)); break;           \
    case OP_MIN: SPAN(T, T, IS_NAN(a) ? a : (a < b ? a : b)); break;           \
    case OP_EQUAL: SPAN(T, uint8_t, a == b); break;                            \
    case OP_LESS: SPAN(T, uint8_t, a < b); break;                              \
    case OP_GREATER: SPAN(T, uint8_t, a > b); break;                           \
    case OP_LESS_EQUAL: SPAN(T, uint8_t, a <= b); break;                       \
    case OP_GREATER_EQUAL: SPAN(T, uint8_t, a >= b); break;                    \
    default: break;                                                            \
    }                                                                          \
    break;

/* The larger (or smaller) of two 16-bit floats compared as float32; NaN
 * propagates as in the float types. */
static inline uint16_t half_max(uint16_t a, uint16_t b, bool larger) {
  float x = kernel_half_to_float(a), y = kernel_half_to_float(b);
  if (IS_NAN(x)) return a;
  if (IS_NAN(y)) return b;
  return (larger ? x >= y : x <= y) ? a : b;
}
static inline uint16_t bfloat_max(uint16_t a, uint16_t b, bool larger) {
  float x = kernel_bfloat_to_float(a), y = kernel_bfloat_to_float(b);
  if (IS_NAN(x)) return a;
  if (IS_NAN(y)) return b;
  return (larger ? x >= y : x <= y) ? a : b;
}

static void binary_span(void *ctx, size_t n, const size_t *offsets, size_t out_offset,
                        const kernel_broadcast *bc) {
  binary_job *j = ctx;
  size_t last = bc->rank - 1;
  bool sa = bc->strides[0][last] != 0, sb = bc->strides[1][last] != 0;
  int zero = 0;
  _Static_assert(OP_ADD == 0 && OP_SUB == 1 && OP_MUL == 2 && OP_DIV == 3,
                 "the four float operators come first, in ops[]'s order");
  if (j->dtype == STRAND_DTYPE_FLOAT32 && j->op <= OP_DIV) {
    static const strand__vec_op ops[] = {STRAND__VEC_ADD, STRAND__VEC_SUB, STRAND__VEC_MUL,
                                         STRAND__VEC_DIV};
    strand__vec_arith(ops[j->op], (float *)j->out + out_offset, (const float *)j->a + offsets[0],
                      sa, (const float *)j->b + offsets[1], sb, n);
    return;
  }
  switch (j->op) {
  case OP_AND: SPAN(uint8_t, uint8_t, a && b); break;
  case OP_OR: SPAN(uint8_t, uint8_t, a || b); break;
  case OP_XOR: SPAN(uint8_t, uint8_t, (a != 0) != (b != 0)); break;
  case OP_POW:
    switch (j->dtype) {
    case STRAND_DTYPE_FLOAT32: SPAN(float, float, powf(a, b)); break;
    case STRAND_DTYPE_FLOAT64: SPAN(double, double, pow(a, b)); break;
    case STRAND_DTYPE_INT32: SPAN(int32_t, int32_t, (int32_t)ipow(a, b)); break;
    case STRAND_DTYPE_INT64: SPAN(int64_t, int64_t, ipow(a, b)); break;
    default: break;
    }
    break;
  default:
    switch (j->dtype) {
      NUMERIC_TYPES(ARITH_CASES)
    case STRAND_DTYPE_BOOL:
      if (j->op == OP_EQUAL) SPAN(uint8_t, uint8_t, a == b);
      break;
    case STRAND_DTYPE_FLOAT16: /* Max and Min: pick one operand's bits */
      if (j->op == OP_MAX) SPAN(uint16_t, uint16_t, half_max(a, b, true));
      else if (j->op == OP_MIN) SPAN(uint16_t, uint16_t, half_max(a, b, false));
      break;
    case STRAND_DTYPE_BFLOAT16:
      if (j->op == OP_MAX) SPAN(uint16_t, uint16_t, bfloat_max(a, b, true));
      else if (j->op == OP_MIN) SPAN(uint16_t, uint16_t, bfloat_max(a, b, false));
      break;
    default: break;
    }
    break;
  }
  if (zero) atomic_store_explicit(&j->zero_division, 1, memory_order_relaxed);
}

/* out = a op b, every shape set. */
static strand_status binary(unsigned threads, binop op, const kernel_tensor *a,
                            const kernel_tensor *b, kernel_tensor *out) {
  if (!out->count) return STRAND_OK;
  const kernel_tensor *ins[2] = {a, b};
  kernel_broadcast bc;
  kernel_broadcast_init(&bc, out, ins, 2);
  binary_job j = {op, a->dtype, a->data, b->data, out->data, 0};
  /* Cost 2 per element: two operands read for each one written (a
   * transformer's 128×256 residual Add, 32768 elements, then splits in
   * two rather than sitting exactly at one grain). */
  kernel_broadcast_run(threads, &bc, op == OP_POW ? 16 : 2, binary_span, &j);
  if (atomic_load_explicit(&j.zero_division, memory_order_relaxed))
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "integer %s by zero",
                        op == OP_DIV ? "division" : "modulo");
  return STRAND_OK;
}

/* ---- Pow with an exponent of another type --------------------------------------- */

typedef struct pow_job {
  const kernel_tensor *base, *exponent;
  kernel_tensor *out;
} pow_job;

/* An integer base to a floating exponent: exact (wrapping) for whole
 * exponents, else the real power truncated toward zero (0 when it is NaN
 * or out of int64's range). */
static int64_t int_pow(int64_t base, double e) {
  if (e == floor(e) && fabs(e) < 9.2e18) return ipow(base, (int64_t)e);
  double r = trunc(pow((double)base, e));
  return (r == r && fabs(r) < 9.2e18) ? (int64_t)r : 0;
}

static void pow_mixed_span(void *ctx, size_t n, const size_t *offsets, size_t out_offset,
                           const kernel_broadcast *bc) {
  const pow_job *j = ctx;
  size_t last = bc->rank - 1;
  size_t sa = bc->strides[0][last], sb = bc->strides[1][last];
  strand_dtype bt = j->base->dtype, et = j->exponent->dtype;
  for (size_t i = 0; i < n; i++) {
    double e = kernel_number_at(j->exponent->data, et, offsets[1] + i * sb);
    size_t at = offsets[0] + i * sa, to = out_offset + i;
    switch (bt) {
    case STRAND_DTYPE_FLOAT32:
      ((float *)j->out->data)[to] = powf(((const float *)j->base->data)[at], (float)e);
      break;
    case STRAND_DTYPE_FLOAT64:
      ((double *)j->out->data)[to] = pow(((const double *)j->base->data)[at], e);
      break;
    case STRAND_DTYPE_INT32:
      ((int32_t *)j->out->data)[to] = (int32_t)int_pow(((const int32_t *)j->base->data)[at], e);
      break;
    case STRAND_DTYPE_INT64:
      ((int64_t *)j->out->data)[to] = int_pow(((const int64_t *)j->base->data)[at], e);
      break;
    default: break;
    }
  }
}

/* ---- kernels ------------------------------------------------------------------- */

static strand_status infer_broadcast(const kernel_call *c, strand_dtype out_dtype) {
  int64_t dims[STRAND_MAX_RANK];
  size_t rank;
  strand_status st = kernel_broadcast_shape(c->inputs, c->n_inputs, dims, &rank);
  if (st) return st;
  kernel_set_shape(c->outputs[0], out_dtype, rank, dims);
  return STRAND_OK;
}

static strand_status infer_same_type(const kernel_call *c) {
  return infer_broadcast(c, c->inputs[0]->dtype);
}

static strand_status infer_bool(const kernel_call *c) {
  return infer_broadcast(c, STRAND_DTYPE_BOOL);
}

#define ARITH_DTYPES (KERNEL_DT_NUMBERS)

static bool two_same(const strand_dtype *d, size_t n, uint32_t mask) {
  return n == 2 && kernel_dtype_in(d[0], mask) && kernel_dtype_same(d[0], d[1]);
}

static bool accepts_arith(const strand_dtype *d, size_t n) { return two_same(d, n, ARITH_DTYPES); }
static bool accepts_compare(const strand_dtype *d, size_t n) {
  return two_same(d, n, ARITH_DTYPES);
}
static bool accepts_equal(const strand_dtype *d, size_t n) {
  return two_same(d, n, ARITH_DTYPES | KERNEL_DT(BOOL));
}
static bool accepts_logic(const strand_dtype *d, size_t n) {
  return two_same(d, n, KERNEL_DT(BOOL));
}

/* Pow: the output has the base's type; the exponent may be any number
 * type (an integer base also takes a floating exponent). */
static bool accepts_pow(const strand_dtype *d, size_t n) {
  if (n != 2) return false;
  uint32_t ints = KERNEL_DT(INT32) | KERNEL_DT(INT64);
  if (d[0] == STRAND_DTYPE_INT32 || d[0] == STRAND_DTYPE_INT64)
    return kernel_dtype_in(d[1], ints | KERNEL_DT_FLOATS);
  return kernel_dtype_in(d[0], KERNEL_DT_FLOATS) && kernel_dtype_in(d[1], KERNEL_DT_NUMBERS);
}

#define BINARY_RUN(NAME, OP)                                                   \
  static strand_status run_##NAME(const kernel_call *c) {                      \
    return binary(c->threads, OP, c->inputs[0], c->inputs[1], c->outputs[0]); \
  }
BINARY_RUN(add, OP_ADD)
BINARY_RUN(sub, OP_SUB)
BINARY_RUN(mul, OP_MUL)
BINARY_RUN(div, OP_DIV)
BINARY_RUN(equal, OP_EQUAL)
BINARY_RUN(less, OP_LESS)
BINARY_RUN(greater, OP_GREATER)
BINARY_RUN(less_equal, OP_LESS_EQUAL)
BINARY_RUN(greater_equal, OP_GREATER_EQUAL)
BINARY_RUN(and, OP_AND)
BINARY_RUN(or, OP_OR)
BINARY_RUN(xor, OP_XOR)

static strand_status run_pow(const kernel_call *c) {
  const kernel_tensor *a = c->inputs[0], *b = c->inputs[1];
  kernel_tensor *out = c->outputs[0];
  if (a->dtype == b->dtype) return binary(c->threads, OP_POW, a, b, out);
  if (!out->count) return STRAND_OK;
  const kernel_tensor *ins[2] = {a, b};
  kernel_broadcast bc;
  kernel_broadcast_init(&bc, out, ins, 2);
  pow_job j = {a, b, out};
  kernel_broadcast_run(c->threads, &bc, 16, pow_mixed_span, &j);
  return STRAND_OK;
}

#define BINARY_DEF(ID, NAME, OPSET_MIN, ACCEPTS, INFER)                          \
  const kernel_def kernel_##ID = {#ID, "", OPSET_MIN, KERNEL_OPSET_MAX, 0, 0, ACCEPTS, NULL,   \
                                  INFER, NULL, run_##NAME};
BINARY_DEF(Add, add, 7, accepts_arith, infer_same_type)
BINARY_DEF(Sub, sub, 7, accepts_arith, infer_same_type)
BINARY_DEF(Mul, mul, 7, accepts_arith, infer_same_type)
BINARY_DEF(Div, div, 7, accepts_arith, infer_same_type)
BINARY_DEF(Pow, pow, 7, accepts_pow, infer_same_type)
BINARY_DEF(Equal, equal, 7, accepts_equal, infer_bool)
BINARY_DEF(Less, less, 7, accepts_compare, infer_bool)
BINARY_DEF(Greater, greater, 7, accepts_compare, infer_bool)
BINARY_DEF(LessOrEqual, less_equal, 12, accepts_compare, infer_bool)
BINARY_DEF(GreaterOrEqual, greater_equal, 12, accepts_compare, infer_bool)
BINARY_DEF(And, and, 7, accepts_logic, infer_bool)
BINARY_DEF(Or, or, 7, accepts_logic, infer_bool)
BINARY_DEF(Xor, xor, 7, accepts_logic, infer_bool)

/* ---- Mod ------------------------------------------------------------------------------ */

typedef struct mod_params {
  bool fmod;
} mod_params;

static strand_status prepare_mod(kernel_prepare *p, void **out) {
  mod_params *params;
  strand_status st = kernel_alloc(p, sizeof *params, STRAND_MEMORY_OTHER, out);
  if (st) return st;
  params = *out;
  int64_t fmod_attr;
  st = kernel_attr_int(p->node, "fmod", 0, &fmod_attr);
  if (st) return st;
  params->fmod = fmod_attr != 0;
  strand_dtype t = kernel_input_value(p, 0)->dtype;
  bool floats_allowed = p->node->opset < 0 || p->node->opset >= 28;
  if (!params->fmod && !floats_allowed && (t == STRAND_DTYPE_FLOAT32 || t == STRAND_DTYPE_FLOAT64))
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"fmod\" is 0 for %s inputs; "
                        "floating-point Mod needs fmod=1", strand_dtype_name(t));
  return STRAND_OK;
}

static strand_status run_mod(const kernel_call *c) {
  const mod_params *p = c->params;
  return binary(c->threads, p->fmod ? OP_FMOD : OP_MOD, c->inputs[0], c->inputs[1], c->outputs[0]);
}

const kernel_def kernel_Mod = {"Mod", "", 10, KERNEL_OPSET_MAX, 0, 0, accepts_arith, prepare_mod, infer_same_type,
                               NULL, run_mod};

/* ---- variadic: Max, Min, Sum, Mean ---------------------------------------------- */

static bool accepts_variadic(const strand_dtype *d, size_t n) {
  if (n == 0 || !kernel_dtype_in(d[0], ARITH_DTYPES)) return false;
  for (size_t i = 1; i < n; i++)
    if (!kernel_dtype_same(d[0], d[i])) return false;
  return true;
}

/* Max and Min also take the 16-bit floats. */
static bool accepts_max_min(const strand_dtype *d, size_t n) {
  if (n == 0 || !kernel_dtype_in(d[0], ARITH_DTYPES | KERNEL_DT(FLOAT16) | KERNEL_DT(BFLOAT16)))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!kernel_dtype_same(d[0], d[i])) return false;
  return true;
}

static bool accepts_variadic_floats(const strand_dtype *d, size_t n) {
  return accepts_variadic(d, n) && kernel_dtype_in(d[0], KERNEL_DT_FLOATS);
}

static bool same_shape(const kernel_tensor *a, const kernel_tensor *b) {
  if (a->rank != b->rank) return false;
  for (size_t i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

static strand_status infer_variadic(const kernel_call *c) {
  for (size_t i = 0; i < c->n_inputs; i++)
    if (!c->inputs[i])
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "input %zu is absent", i);
  return infer_same_type(c);
}

/* out = in[0] op in[1] op ... ; the first step reads the inputs where
 * their broadcast already has the output's shape. */
static strand_status variadic(const kernel_call *c, binop op) {
  kernel_tensor *out = c->outputs[0];
  if (!out->count) return STRAND_OK;
  size_t n = c->n_inputs, next;
  if (n >= 2) {
    int64_t dims[STRAND_MAX_RANK];
    size_t rank;
    kernel_tensor probe = {.rank = 0};
    strand_status st = kernel_broadcast_shape(c->inputs, 2, dims, &rank);
    if (st) return st;
    kernel_set_shape(&probe, out->dtype, rank, dims);
    if (same_shape(&probe, out)) {
      st = binary(c->threads, op, c->inputs[0], c->inputs[1], out);
      if (st) return st;
      next = 2;
    } else {
      kernel_broadcast_copy(c->threads, c->inputs[0], out);
      next = 1;
    }
  } else {
    kernel_broadcast_copy(c->threads, c->inputs[0], out);
    next = 1;
  }
  for (size_t i = next; i < n; i++) {
    strand_status st = binary(c->threads, op, out, c->inputs[i], out);
    if (st) return st;
  }
  return STRAND_OK;
}

static strand_status run_max(const kernel_call *c) { return variadic(c, OP_MAX); }
static strand_status run_min(const kernel_call *c) { return variadic(c, OP_MIN); }
static strand_status run_sum(const kernel_call *c) { return variadic(c, OP_ADD); }

typedef struct scale_job {
  void *data;
  strand_dtype dtype;
  double factor;
} scale_job;

static void scale_range(void *p, size_t begin, size_t end) {
  const scale_job *j = p;
  if (j->dtype == STRAND_DTYPE_FLOAT32) {
    float *x = j->data, f = (float)j->factor;
    for (size_t i = begin; i < end; i++) x[i] *= f;
  } else {
    double *x = j->data;
    for (size_t i = begin; i < end; i++) x[i] *= j->factor;
  }
}

static strand_status run_mean(const kernel_call *c) {
  strand_status st = variadic(c, OP_ADD);
  if (st) return st;
  kernel_tensor *out = c->outputs[0];
  scale_job j = {out->data, out->dtype, 1.0 / (double)c->n_inputs};
  kernel_parallel(c->threads, out->count, kernel_grain(1), scale_range, &j);
  return STRAND_OK;
}

const kernel_def kernel_Max = {"Max", "", 6, KERNEL_OPSET_MAX, 0, 0, accepts_max_min, NULL,
                               infer_variadic, NULL, run_max};
const kernel_def kernel_Min = {"Min", "", 6, KERNEL_OPSET_MAX, 0, 0, accepts_max_min, NULL,
                               infer_variadic, NULL, run_min};
const kernel_def kernel_Sum = {"Sum", "", 6, KERNEL_OPSET_MAX, 0, 0, accepts_variadic, NULL,
                               infer_variadic, NULL, run_sum};
const kernel_def kernel_Mean = {"Mean", "", 6, KERNEL_OPSET_MAX, 0, 0, accepts_variadic_floats, NULL,
                                infer_variadic, NULL, run_mean};

/* ---- Where ------------------------------------------------------------------------ */

static bool accepts_where(const strand_dtype *d, size_t n) {
  return n == 3 && kernel_dtype_in(d[0], KERNEL_DT(BOOL)) && kernel_dtype_in(d[1], KERNEL_DT_ALL) &&
         kernel_dtype_same(d[1], d[2]);
}

static strand_status infer_where(const kernel_call *c) {
  return infer_broadcast(c, c->inputs[1]->dtype);
}

typedef struct where_job {
  const uint8_t *cond;
  const unsigned char *x, *y;
  unsigned char *out;
  size_t item;
} where_job;

static void where_span(void *ctx, size_t n, const size_t *offsets, size_t out_offset,
                       const kernel_broadcast *bc) {
  const where_job *j = ctx;
  size_t last = bc->rank - 1, item = j->item;
  size_t sc = bc->strides[0][last], sx = bc->strides[1][last], sy = bc->strides[2][last];
  const uint8_t *cond = j->cond + offsets[0];
  const unsigned char *x = j->x + offsets[1] * item, *y = j->y + offsets[2] * item;
  unsigned char *out = j->out + out_offset * item;
  if (item == 4) {
    const uint32_t *x4 = (const uint32_t *)x, *y4 = (const uint32_t *)y;
    uint32_t *o4 = (uint32_t *)out;
    for (size_t i = 0; i < n; i++) o4[i] = cond[i * sc] ? x4[i * sx] : y4[i * sy];
  } else if (item == 8) {
    const uint64_t *x8 = (const uint64_t *)x, *y8 = (const uint64_t *)y;
    uint64_t *o8 = (uint64_t *)out;
    for (size_t i = 0; i < n; i++) o8[i] = cond[i * sc] ? x8[i * sx] : y8[i * sy];
  } else {
    for (size_t i = 0; i < n; i++)
      memcpy(out + i * item, cond[i * sc] ? x + i * sx * item : y + i * sy * item, item);
  }
}

static strand_status run_where(const kernel_call *c) {
  kernel_tensor *out = c->outputs[0];
  if (!out->count) return STRAND_OK;
  kernel_broadcast bc;
  kernel_broadcast_init(&bc, out, c->inputs, 3);
  where_job j = {c->inputs[0]->data, c->inputs[1]->data, c->inputs[2]->data, out->data,
                 strand_dtype_size(out->dtype)};
  kernel_broadcast_run(c->threads, &bc, 1, where_span, &j);
  return STRAND_OK;
}

const kernel_def kernel_Where = {"Where", "", 9, KERNEL_OPSET_MAX, 0, 0, accepts_where, NULL, infer_where,
                                 NULL, run_where};

/* ---- unary math ----------------------------------------------------------------------- */

typedef enum unop {
  OP_ABS, OP_NEG, OP_EXP, OP_LOG, OP_SQRT, OP_RECIPROCAL, OP_FLOOR, OP_CEIL, OP_ERF, OP_NOT
} unop;

typedef struct unary_job {
  unop op;
  strand_dtype dtype;
  const void *in;
  void *out;
} unary_job;

#define UNARY_LOOP(T, EXPR)                                    \
  do {                                                         \
    const T *x_ = (const T *)j->in;                            \
    T *y_ = (T *)j->out;                                       \
    for (size_t i_ = begin; i_ < end; i_++) {                  \
      T x = x_[i_];                                            \
      y_[i_] = (T)(EXPR);                                      \
    }                                                          \
  } while (0)

static void unary_range(void *p, size_t begin, size_t end) {
  const unary_job *j = p;
  switch (j->dtype) {
  case STRAND_DTYPE_FLOAT32:
    switch (j->op) {
    case OP_ABS: UNARY_LOOP(float, fabsf(x)); break;
    case OP_NEG: UNARY_LOOP(float, -x); break;
    case OP_EXP: UNARY_LOOP(float, expf(x)); break;
    case OP_LOG: UNARY_LOOP(float, logf(x)); break;
    case OP_SQRT: UNARY_LOOP(float, sqrtf(x)); break;
    case OP_RECIPROCAL: UNARY_LOOP(float, 1.0f / x); break;
    case OP_FLOOR: UNARY_LOOP(float, floorf(x)); break;
    case OP_CEIL: UNARY_LOOP(float, ceilf(x)); break;
    case OP_ERF: UNARY_LOOP(float, erff(x)); break;
    default: break;
    }
    break;
  case STRAND_DTYPE_FLOAT64:
    switch (j->op) {
    case OP_ABS: UNARY_LOOP(double, fabs(x)); break;
    case OP_NEG: UNARY_LOOP(double, -x); break;
    case OP_EXP: UNARY_LOOP(double, exp(x)); break;
    case OP_LOG: UNARY_LOOP(double, log(x)); break;
    case OP_SQRT: UNARY_LOOP(double, sqrt(x)); break;
    case OP_RECIPROCAL: UNARY_LOOP(double, 1.0 / x); break;
    case OP_FLOOR: UNARY_LOOP(double, floor(x)); break;
    case OP_CEIL: UNARY_LOOP(double, ceil(x)); break;
    case OP_ERF: UNARY_LOOP(double, erf(x)); break;
    default: break;
    }
    break;
#define SIGNED_UNARY(NAME, T, W)                                        \
  case STRAND_DTYPE_##NAME:                                             \
    if (j->op == OP_ABS) UNARY_LOOP(T, x < 0 ? (T)(0 - (W)x) : x);      \
    else if (j->op == OP_NEG) UNARY_LOOP(T, (T)(0 - (W)x));             \
    break;
    SIGNED_INTS(SIGNED_UNARY)
#undef SIGNED_UNARY
#define UNSIGNED_UNARY(NAME, T, W)                                      \
  case STRAND_DTYPE_##NAME:                                             \
    if (j->op == OP_ABS) UNARY_LOOP(T, x);                              \
    break;
    UNSIGNED_INTS(UNSIGNED_UNARY)
#undef UNSIGNED_UNARY
  case STRAND_DTYPE_BOOL:
    if (j->op == OP_NOT) UNARY_LOOP(uint8_t, !x);
    break;
  default: break;
  }
}

static strand_status infer_unary(const kernel_call *c) {
  const kernel_tensor *x = c->inputs[0];
  kernel_set_shape(c->outputs[0], x->dtype, x->rank, x->dims);
  return STRAND_OK;
}

static strand_status unary(const kernel_call *c, unop op, size_t cost) {
  unary_job j = {op, c->inputs[0]->dtype, c->inputs[0]->data, c->outputs[0]->data};
  kernel_parallel(c->threads, c->outputs[0]->count, kernel_grain(cost), unary_range, &j);
  return STRAND_OK;
}

static bool accepts_one_float(const strand_dtype *d, size_t n) {
  return n == 1 && kernel_dtype_in(d[0], KERNEL_DT_FLOATS);
}
static bool accepts_one_number(const strand_dtype *d, size_t n) {
  return n == 1 && kernel_dtype_in(d[0], KERNEL_DT_FLOATS | KERNEL_DT_SIGNED_INTS);
}
static bool accepts_abs(const strand_dtype *d, size_t n) {
  return n == 1 && kernel_dtype_in(d[0], KERNEL_DT_NUMBERS);
}
static bool accepts_not(const strand_dtype *d, size_t n) {
  return n == 1 && kernel_dtype_in(d[0], KERNEL_DT(BOOL));
}

#define UNARY_DEF(ID, OP, COST, ACCEPTS, OPSET_MIN)                                          \
  static strand_status run_##ID(const kernel_call *c) { return unary(c, OP, COST); }       \
  const kernel_def kernel_##ID = {#ID, "", OPSET_MIN, KERNEL_OPSET_MAX, 0, 0, ACCEPTS, NULL,  \
                                  infer_unary, NULL, run_##ID};
UNARY_DEF(Abs, OP_ABS, 1, accepts_abs, 6)
UNARY_DEF(Neg, OP_NEG, 1, accepts_one_number, 6)
UNARY_DEF(Exp, OP_EXP, 8, accepts_one_float, 6)
UNARY_DEF(Log, OP_LOG, 8, accepts_one_float, 6)
UNARY_DEF(Sqrt, OP_SQRT, 4, accepts_one_float, 6)
UNARY_DEF(Reciprocal, OP_RECIPROCAL, 2, accepts_one_float, 6)
UNARY_DEF(Floor, OP_FLOOR, 1, accepts_one_float, 6)
UNARY_DEF(Ceil, OP_CEIL, 1, accepts_one_float, 6)
UNARY_DEF(Erf, OP_ERF, 8, accepts_one_float, 9)
UNARY_DEF(Not, OP_NOT, 1, accepts_not, 1)
