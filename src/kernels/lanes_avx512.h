/*
 * lanes_avx512.h — the lane masks and the in-register activation the
 * AVX-512 kernel files share. Included after <immintrin.h>, inside those
 * files' x86-64 sections whose functions carry an AVX-512 target.
 */
#ifndef STRAND_KERNELS_LANES_AVX512_H
#define STRAND_KERNELS_LANES_AVX512_H

#include "kernels/gemm.h"
#include "kernels/kernels_internal.h"

#include <stdint.h>

/* Lanes j of [0, 16) with lo <= j < hi (none when hi <= lo). */
static inline __mmask16 lanes_between(int64_t lo, int64_t hi) {
  if (lo < 0) lo = 0;
  if (hi > 16) hi = 16;
  if (hi <= lo) return 0;
  return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

/* act(v) for ReLU and Clip (between lo and hi); v itself for none. */
static inline __attribute__((always_inline, target("avx512f"))) __m512
activate_avx512(__m512 v, strand__gemm_activation act, __m512 lo, __m512 hi) {
  if (act == STRAND__GEMM_ACT_RELU) return _mm512_max_ps(_mm512_setzero_ps(), v);
  if (act == STRAND__GEMM_ACT_CLIP) return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
  return v;
}

/* activate_avx512 for a kernel's fused activation. */
static inline __attribute__((always_inline, target("avx512f"))) __m512
activate_kernel_avx512(__m512 v, const kernel_activation *act) {
  return activate_avx512(v, act->kind, _mm512_set1_ps(act->lo), _mm512_set1_ps(act->hi));
}

#endif /* STRAND_KERNELS_LANES_AVX512_H */
