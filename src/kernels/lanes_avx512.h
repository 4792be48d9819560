/*
 * lanes_avx512.h — the lane masks the AVX-512 kernel files share. Included
 * after <immintrin.h>, inside those files' x86-64 sections.
 */
#ifndef STRAND_KERNELS_LANES_AVX512_H
#define STRAND_KERNELS_LANES_AVX512_H

#include <stdint.h>

/* Lanes j of [0, 16) with lo <= j < hi (none when hi <= lo). */
static inline __mmask16 lanes_between(int64_t lo, int64_t hi) {
  if (lo < 0) lo = 0;
  if (hi > 16) hi = 16;
  if (hi <= lo) return 0;
  return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

#endif /* STRAND_KERNELS_LANES_AVX512_H */
