/*
 * gemm_avx2.c — the AVX2+FMA SGEMM micro-kernel: a 6×16 tile of C in 12 ymm
 * accumulators; per k step two B vectors are loaded and each of the 6 A
 * values is broadcast into two FMAs. Edge tiles (fewer rows, 8 columns or
 * fewer) have their own compiled instances. Also the 8×8 transposing pack.
 *
 * Every function carries a target attribute, so this file is built without
 * global -m flags and is only entered on CPUs that strand__cpu() reports as
 * AVX2+FMA capable.
 */
#include "kernels/gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

enum { MR = 6, NR = 16, LANES = 8, NV = NR / LANES };

/* Lanes [0, count) of a ymm (count <= 8) as a maskload/maskstore mask. */
INLINE __m256i lane_mask(size_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Loads `count` (1..8) floats; lanes past count are zero and not read. */
INLINE __m256 load_part(const float *p, size_t count, __m256i mask) {
  return count >= LANES ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

INLINE void store_part(float *p, size_t count, __m256i mask, __m256 x) {
  if (count >= LANES)
    _mm256_storeu_ps(p, x);
  else
    _mm256_maskstore_ps(p, mask, x);
}

/* acc[r][v] += a[r] * b[v*LANES ...]: one k step of the tile. */
INLINE void k_step(const size_t mr, const size_t nv, const float *a, const float *b,
                   __m256 acc[MR][NV]) {
  __m256 bv[NV];
#pragma GCC unroll 2
  for (size_t v = 0; v < nv; v++) bv[v] = _mm256_loadu_ps(b + v * LANES);
#pragma GCC unroll 6
  for (size_t r = 0; r < mr; r++) {
    __m256 x = _mm256_broadcast_ss(a + r);
#pragma GCC unroll 2
    for (size_t v = 0; v < nv; v++) acc[r][v] = _mm256_fmadd_ps(x, bv[v], acc[r][v]);
  }
}

/* One tile with a compile-time row count `mr` (1..MR) and vector count `nv`
 * (1..NV, covering nr: 8*(nv-1) < nr <= 8*nv). The B panel rows are NR
 * floats apart and zero past nr, so whole vectors may be loaded; C and bias
 * are accessed through masks, never past column nr. */
INLINE void tile_body(const size_t mr, const size_t nv, size_t nr, size_t kc, const float *a,
                      const float *b, const float *next, float *c, size_t ldc, float alpha,
                      float beta, const strand__gemm_epilogue *ep, size_t col) {
  /* One chain of fused multiply-adds per element, whatever mr: a row
   * computed in a batch of M rows must give the bits it gives alone
   * (dynamic batching relies on it). Splitting k into several sets of
   * accumulators would hide FMA latency for short tiles, but only if the
   * split depended on the columns alone, never on mr; there is none. */
  __m256 acc[MR][NV];
#pragma GCC unroll 6
  for (size_t r = 0; r < mr; r++)
#pragma GCC unroll 2
    for (size_t v = 0; v < nv; v++) acc[r][v] = _mm256_setzero_ps();

#pragma GCC unroll 6
  for (size_t r = 0; r < mr; r++) {
    _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch((const char *)(c + r * ldc + nr - 1), _MM_HINT_T0);
  }

  /* Row p of the next panel toward L2 with row p of this one. */
#pragma GCC unroll 2
  for (size_t p = 0; p < kc; p++) {
    if (next) _mm_prefetch((const char *)(next + p * NR), _MM_HINT_T1);
    k_step(mr, nv, a, b, acc);
    a += mr;
    b += NR;
  }

  size_t counts[NV];
  __m256i masks[NV];
#pragma GCC unroll 2
  for (size_t v = 0; v < nv; v++) {
    counts[v] = nr - v * LANES;
    masks[v] = lane_mask(counts[v] < LANES ? counts[v] : LANES);
  }
  const __m256 valpha = _mm256_set1_ps(alpha), vbeta = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (size_t r = 0; r < mr; r++) {
    float *c_row = c + r * ldc;
#pragma GCC unroll 2
    for (size_t v = 0; v < nv; v++) {
      __m256 x = acc[r][v];
      if (alpha != 1.0f) x = _mm256_mul_ps(x, valpha);
      if (beta != 0.0f)
        x = _mm256_fmadd_ps(vbeta, load_part(c_row + v * LANES, counts[v], masks[v]), x);
      if (ep) {
        if (ep->bias)
          x = _mm256_add_ps(x, load_part(ep->bias + col + v * LANES, counts[v], masks[v]));
        /* max(lo, x) and min(hi, x) with x second: a NaN x passes through */
        if (ep->activation == STRAND__GEMM_ACT_RELU)
          x = _mm256_max_ps(_mm256_setzero_ps(), x);
        else if (ep->activation == STRAND__GEMM_ACT_CLIP)
          x = _mm256_min_ps(_mm256_set1_ps(ep->clip_max),
                            _mm256_max_ps(_mm256_set1_ps(ep->clip_min), x));
      }
      store_part(c_row + v * LANES, counts[v], masks[v], x);
    }
  }
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
#define ROWS(X) X(1) X(2) X(3) X(4) X(5) X(6)
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

/* In place: r[j] becomes column j of the 8×8 block whose rows were r[i]. */
INLINE void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) { /* rows 2i, 2i+1 interleaved per 128-bit lane */
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  /* u[4g + c], lane l: rows 4g..4g+3 of column 4l + c */
#pragma GCC unroll 2
  for (int g = 0; g < 2; g++) {
    __m256d t0 = _mm256_castps_pd(t[4 * g]), t1 = _mm256_castps_pd(t[4 * g + 1]);
    __m256d t2 = _mm256_castps_pd(t[4 * g + 2]), t3 = _mm256_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm256_castpd_ps(_mm256_unpacklo_pd(t0, t2));
    u[4 * g + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(t0, t2));
    u[4 * g + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(t1, t3));
    u[4 * g + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(t1, t3));
  }
#pragma GCC unroll 4
  for (int c = 0; c < 4; c++) {
    r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);     /* lane 0 of each */
    r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31); /* lane 1 of each */
  }
}

/* strand__gemm_transpose_fn, in 8×8 blocks: 8 masked row loads, the
 * register transpose, then one (masked) store of up to 8 floats per p. */
static TARGET void transpose(const float *src, size_t ld, size_t rows, size_t kc,
                             size_t out_stride, float *dst) {
  if (rows == 1 && out_stride == 1) {
    for (size_t p = 0; p < kc; p++) dst[p] = src[p];
    return;
  }
  /* With one group of lanes, a whole-vector store may run past step p into
   * the steps after it, which the next stores rewrite (masked stores are
   * slow on some CPUs), as long as it ends inside the panel: the stores near
   * the end are masked, so nothing past kc * out_stride is ever written. */
  const bool overlap = out_stride <= LANES;
  const size_t panel = kc * out_stride;
  for (size_t g = 0; g < out_stride; g += LANES) {
    size_t group_rows = rows > g ? rows - g : 0;
    size_t lanes = out_stride - g < LANES ? out_stride - g : LANES;
    __m256i store_mask = lane_mask(lanes);
    for (size_t p0 = 0; p0 < kc; p0 += LANES) {
      size_t cols = kc - p0 < LANES ? kc - p0 : LANES;
      __m256i load_mask = lane_mask(cols);
      __m256 r[LANES];
#pragma GCC unroll 8
      for (size_t i = 0; i < LANES; i++) {
        /* rows are separate streams (A often comes from L3): fetch ahead */
        if (i < group_rows)
          _mm_prefetch((const char *)(src + (g + i) * ld + p0 + 4 * LANES), _MM_HINT_T0);
        r[i] = i < group_rows ? load_part(src + (g + i) * ld + p0, cols, load_mask)
                              : _mm256_setzero_ps();
      }
      transpose8(r);
#pragma GCC unroll 8
      for (size_t j = 0; j < LANES; j++) {
        if (j >= cols) break;
        float *out = dst + (p0 + j) * out_stride + g;
        if (overlap && (p0 + j) * out_stride + g + LANES <= panel)
          _mm256_storeu_ps(out, r[j]); /* spills into step p+1, rewritten next */
        else
          store_part(out, lanes, store_mask, r[j]);
      }
    }
  }
}

void strand__gemm_kernel_avx2_init(strand__gemm_kernel *kernel) {
  *kernel = (strand__gemm_kernel){.name = "avx2 6x16",
                                  .level = STRAND__CPU_AVX2,
                                  .mr = MR,
                                  .nr = NR,
                                  .tile = tile,
                                  .transpose = transpose};
}

#else
void strand__gemm_kernel_avx2_init(strand__gemm_kernel *kernel) {
  *kernel = (strand__gemm_kernel){.name = "avx2 (not built)", .level = STRAND__CPU_AVX2};
}
#endif
