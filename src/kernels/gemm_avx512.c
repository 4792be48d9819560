/*
 * gemm_avx512.c — the AVX-512 SGEMM micro-kernel: a 14×32 tile of C in 28
 * zmm accumulators; per k step two B vectors are loaded and each of the 14
 * A values is broadcast into two FMAs. Edge tiles (fewer rows, 16 columns
 * or fewer) have their own compiled instances; one or two rows (batch 1)
 * run a wide tile over four panels (1×128: eight independent accumulators
 * streaming four panels of packed B). Also the 16×16 transposing pack.
 *
 * Every function carries a target attribute, so this file is built without
 * global -m flags and is only entered on CPUs that strand__cpu() reports as
 * AVX-512 capable.
 */
#include "kernels/gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { MR = 14, NR = 32, LANES = 16, NV = NR / LANES };

/* Mask of lanes [0, count). */
static __mmask16 first_lanes(size_t count) {
  return count >= LANES ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1);
}

/* acc[r][v] += a[r] * b[v*LANES ...]: one k step of the tile. */
INLINE void k_step(const size_t mr, const size_t nv, const float *a, const float *b,
                   __m512 acc[MR][NV]) {
  __m512 bv[NV];
#pragma GCC unroll 2
  for (size_t v = 0; v < nv; v++) bv[v] = _mm512_loadu_ps(b + v * LANES);
#pragma GCC unroll 14
  for (size_t r = 0; r < mr; r++) {
    __m512 x = _mm512_set1_ps(a[r]);
#pragma GCC unroll 2
    for (size_t v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
  }
}

/* The epilogue of one vector of C: alpha, beta, bias, activation, then a
 * masked store. Shared by every tile shape, so that an element's result
 * does not depend on the shape of the tile that computed it. */
INLINE void store_vector(__m512 x, __mmask16 mask, float *c, float alpha, float beta,
                         const strand__gemm_epilogue *ep, const float *bias) {
  if (alpha != 1.0f) x = _mm512_mul_ps(x, _mm512_set1_ps(alpha));
  if (beta != 0.0f)
    x = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask, c), x);
  if (ep) {
    if (ep->bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, bias));
    /* max(lo, x) and min(hi, x) with x second: a NaN x passes through */
    if (ep->activation == STRAND__GEMM_ACT_RELU)
      x = _mm512_max_ps(_mm512_setzero_ps(), x);
    else if (ep->activation == STRAND__GEMM_ACT_CLIP)
      x = _mm512_min_ps(_mm512_set1_ps(ep->clip_max),
                        _mm512_max_ps(_mm512_set1_ps(ep->clip_min), x));
  }
  _mm512_mask_storeu_ps(c, mask, x);
}

/* One tile with a compile-time row count `mr` (1..MR) and vector count `nv`
 * (1..NV, covering nr: 16*(nv-1) < nr <= 16*nv). The B panel rows are NR
 * floats apart and zero past nr, so whole vectors may be loaded; C and bias
 * are accessed through masks, never past column nr.
 *
 * Every element of C is one chain of fused multiply-adds over p = 0, 1, ...
 * from zero, whatever mr is: a row computed in a batch of M rows gives the
 * same bits as the row computed alone (dynamic batching relies on it).
 * Short tiles get their parallelism from several panels (tile_wide), never
 * from splitting k. */
INLINE void tile_body(const size_t mr, const size_t nv, size_t nr, size_t kc, const float *a,
                      const float *b, const float *next, float *c, size_t ldc, float alpha,
                      float beta, const strand__gemm_epilogue *ep, size_t col) {
  __m512 acc[MR][NV];
#pragma GCC unroll 14
  for (size_t r = 0; r < mr; r++)
#pragma GCC unroll 2
    for (size_t v = 0; v < nv; v++) acc[r][v] = _mm512_setzero_ps();

#pragma GCC unroll 14
  for (size_t r = 0; r < mr; r++) {
    _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch((const char *)(c + r * ldc + nr - 1), _MM_HINT_T0);
  }

  /* Row p of the next panel toward L2 with row p of this one: one
   * tile's time ahead, the latency of memory is hidden. */
#pragma GCC unroll 2
  for (size_t p = 0; p < kc; p++) {
    if (next) {
      _mm_prefetch((const char *)(next + p * NR), _MM_HINT_T1);
      _mm_prefetch((const char *)(next + p * NR + LANES), _MM_HINT_T1);
    }
    k_step(mr, nv, a, b, acc);
    a += mr;
    b += NR;
  }

  __mmask16 masks[NV];
#pragma GCC unroll 2
  for (size_t v = 0; v < nv; v++) masks[v] = first_lanes(nr - v * LANES);
#pragma GCC unroll 14
  for (size_t r = 0; r < mr; r++)
#pragma GCC unroll 2
    for (size_t v = 0; v < nv; v++)
      store_vector(acc[r][v], masks[v], c + r * ldc + v * LANES, alpha, beta, ep,
                   ep && ep->bias ? ep->bias + col + v * LANES : NULL);
}

/* ---- wide tiles: 1 or 2 rows across up to 4 panels ---- */

enum { WIDE_ROWS = 2, WIDE_PANELS = 4, WIDE_NV = WIDE_PANELS * NV };

/* As tile_body for `mr` rows and `nv` vectors (1..WIDE_NV) spread over
 * consecutive panels `stride` floats apart (vector v in panel v / NV), nr
 * columns in all (16*(nv-1) < nr <= 16*nv). Same chain per element. */
INLINE void wide_body(const size_t mr, const size_t nv, size_t nr, size_t kc, const float *a,
                      const float *b, size_t stride, float *c, size_t ldc, float alpha,
                      float beta, const strand__gemm_epilogue *ep, size_t col) {
  __m512 acc[WIDE_ROWS][WIDE_NV];
#pragma GCC unroll 2
  for (size_t r = 0; r < mr; r++)
#pragma GCC unroll 8
    for (size_t v = 0; v < nv; v++) acc[r][v] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (size_t p = 0; p < kc; p++) {
    __m512 bv[WIDE_NV];
#pragma GCC unroll 8
    for (size_t v = 0; v < nv; v++)
      bv[v] = _mm512_loadu_ps(b + (v / NV) * stride + p * NR + (v % NV) * LANES);
#pragma GCC unroll 2
    for (size_t r = 0; r < mr; r++) {
      __m512 x = _mm512_set1_ps(a[p * mr + r]);
#pragma GCC unroll 8
      for (size_t v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 2
  for (size_t r = 0; r < mr; r++)
#pragma GCC unroll 8
    for (size_t v = 0; v < nv; v++) {
      size_t at = (v / NV) * NR + (v % NV) * LANES; /* column within the wide tile */
      store_vector(acc[r][v], first_lanes(nr - v * LANES), c + r * ldc + at, alpha, beta, ep,
                   ep && ep->bias ? ep->bias + col + at : NULL);
    }
}

typedef void wide_fixed_fn(size_t nr, size_t kc, const float *a, const float *b, size_t stride,
                           float *c, size_t ldc, float alpha, float beta,
                           const strand__gemm_epilogue *ep, size_t col);

#define DEFINE_WIDE(R, V)                                                                     \
  static TARGET void wide_##R##_##V(size_t nr, size_t kc, const float *a, const float *b,    \
                                    size_t stride, float *c, size_t ldc, float alpha,        \
                                    float beta, const strand__gemm_epilogue *ep, size_t col) { \
    wide_body(R, V, nr, kc, a, b, stride, c, ldc, alpha, beta, ep, col);                     \
  }
#define DEFINE_WIDE_ROW(R)                                                                    \
  DEFINE_WIDE(R, 1) DEFINE_WIDE(R, 2) DEFINE_WIDE(R, 3) DEFINE_WIDE(R, 4) DEFINE_WIDE(R, 5)  \
  DEFINE_WIDE(R, 6) DEFINE_WIDE(R, 7) DEFINE_WIDE(R, 8)
DEFINE_WIDE_ROW(1)
DEFINE_WIDE_ROW(2)
#define WIDE_TABLE_ROW(R)                                                                     \
  {wide_##R##_1, wide_##R##_2, wide_##R##_3, wide_##R##_4, wide_##R##_5, wide_##R##_6,       \
   wide_##R##_7, wide_##R##_8},
static wide_fixed_fn *const wides[WIDE_ROWS][WIDE_NV] = {WIDE_TABLE_ROW(1) WIDE_TABLE_ROW(2)};
_Static_assert(WIDE_NV == 8 && WIDE_ROWS == 2, "the wide table lists 2 rows of 8 vectors");

/* Columns: nr across ceil(nr / NR) panels (all but the last full). */
static TARGET void tile_wide(size_t mr, size_t nr, size_t kc, const float *a, const float *b,
                             size_t stride, float *c, size_t ldc, float alpha, float beta,
                             const strand__gemm_epilogue *ep, size_t col) {
  wides[mr - 1][(nr - 1) / LANES](nr, kc, a, b, stride, c, ldc, alpha, beta, ep, col);
}

typedef void tile_fixed_fn(size_t nr, size_t kc, const float *a, const float *b,
                           const float *next, float *c, size_t ldc, float alpha, float beta,
                           const strand__gemm_epilogue *ep, size_t col);

#define DEFINE_TILE(R, V)                                                                  \
  static TARGET void tile_##R##_##V(size_t nr, size_t kc, const float *a, const float *b, \
                                    const float *next, float *c, size_t ldc, float alpha, \
                                    float beta, const strand__gemm_epilogue *ep,          \
                                    size_t col) {                                         \
    tile_body(R, V, nr, kc, a, b, next, c, ldc, alpha, beta, ep, col);                   \
  }
#define DEFINE_ROW(R) DEFINE_TILE(R, 1) DEFINE_TILE(R, 2)
#define ROWS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14)
ROWS(DEFINE_ROW)

#define TABLE_ROW(R) {tile_##R##_1, tile_##R##_2},
static tile_fixed_fn *const tiles[MR][NV] = {ROWS(TABLE_ROW)};
_Static_assert(NV == 2, "the table lists one and two vectors per row");

static TARGET void tile(size_t mr, size_t nr, size_t kc, const float *a, const float *b,
                        const float *next, float *c, size_t ldc, float alpha, float beta,
                        const strand__gemm_epilogue *ep, size_t col) {
  tiles[mr - 1][(nr - 1) / LANES](nr, kc, a, b, next, c, ldc, alpha, beta, ep, col);
}

/* ---- packing ---- */

/* In place: r[j] becomes column j of the 16×16 block whose rows were r[i]. */
INLINE void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) { /* rows 2i, 2i+1 interleaved per 128-bit lane */
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  /* u[4g + c], lane l: rows 4g..4g+3 of column 4l + c */
#pragma GCC unroll 4
  for (int g = 0; g < 4; g++) {
    __m512d t0 = _mm512_castps_pd(t[4 * g]), t1 = _mm512_castps_pd(t[4 * g + 1]);
    __m512d t2 = _mm512_castps_pd(t[4 * g + 2]), t3 = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  /* gather lane l of u[c], u[4+c], u[8+c], u[12+c] into column 4l + c */
#pragma GCC unroll 4
  for (int c = 0; c < 4; c++) {
    __m512 v = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);      /* lanes 0,1 of each */
    __m512 w = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xee);      /* lanes 2,3 of each */
    __m512 x = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
    __m512 y = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xee);
    r[c] = _mm512_shuffle_f32x4(v, x, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(v, x, 0xdd);
    r[8 + c] = _mm512_shuffle_f32x4(w, y, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(w, y, 0xdd);
  }
}

/* strand__gemm_transpose_fn, in 16×16 blocks: 16 masked row loads, the
 * register transpose, then one masked store of up to 16 floats per p. */
static TARGET void transpose(const float *src, size_t ld, size_t rows, size_t kc,
                             size_t out_stride, float *dst) {
  if (rows == 1 && out_stride == 1) {
    for (size_t p = 0; p < kc; p++) dst[p] = src[p];
    return;
  }
  /* With one group of lanes, a whole-vector store may run past step p into
   * the steps after it, which the next stores rewrite (cheaper than a masked
   * store), as long as it ends inside the panel: the stores near the end
   * are masked, so nothing past kc * out_stride is ever written. */
  const bool overlap = out_stride <= LANES;
  const size_t panel = kc * out_stride;
  for (size_t g = 0; g < out_stride; g += LANES) {
    size_t group_rows = rows > g ? rows - g : 0;
    __mmask16 store_mask = first_lanes(out_stride - g);
    for (size_t p0 = 0; p0 < kc; p0 += LANES) {
      size_t cols = kc - p0 < LANES ? kc - p0 : LANES;
      __mmask16 load_mask = first_lanes(cols);
      __m512 r[LANES];
#pragma GCC unroll 16
      for (size_t i = 0; i < LANES; i++) {
        /* rows are separate streams (A often comes from L3): fetch ahead */
        if (i < group_rows)
          _mm_prefetch((const char *)(src + (g + i) * ld + p0 + 2 * LANES), _MM_HINT_T0);
        r[i] = i < group_rows ? _mm512_maskz_loadu_ps(load_mask, src + (g + i) * ld + p0)
                              : _mm512_setzero_ps();
      }
      transpose16(r);
#pragma GCC unroll 16
      for (size_t j = 0; j < LANES; j++) {
        if (j >= cols) break;
        float *out = dst + (p0 + j) * out_stride + g;
        if (overlap && (p0 + j) * out_stride + g + LANES <= panel)
          _mm512_storeu_ps(out, r[j]); /* spills into step p+1, rewritten next */
        else
          _mm512_mask_storeu_ps(out, store_mask, r[j]);
      }
    }
  }
}

void strand__gemm_kernel_avx512_init(strand__gemm_kernel *kernel) {
  *kernel = (strand__gemm_kernel){.name = "avx512 14x32",
                                  .level = STRAND__CPU_AVX512,
                                  .mr = MR,
                                  .nr = NR,
                                  .tile = tile,
                                  .wide = tile_wide,
                                  .wide_rows = WIDE_ROWS,
                                  .wide_panels = WIDE_PANELS,
                                  .transpose = transpose};
}

#else
void strand__gemm_kernel_avx512_init(strand__gemm_kernel *kernel) {
  *kernel = (strand__gemm_kernel){.name = "avx512 (not built)", .level = STRAND__CPU_AVX512};
}
#endif
