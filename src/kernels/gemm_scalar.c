/* gemm_scalar.c — the portable SGEMM micro-kernel (any CPU, no intrinsics). */
#include "kernels/gemm.h"

enum { MR = 4, NR = 8 };

/* acc[r][j] += sum_p a[p*mr + r] * b[p*NR + j]; inlined with a constant mr
 * so that the full tile's loops have fixed trip counts. */
static inline void accumulate(size_t mr, size_t kc, const float *a, const float *b,
                              float acc[MR][NR]) {
  for (size_t p = 0; p < kc; p++) {
    for (size_t r = 0; r < mr; r++) {
      float x = a[p * mr + r];
      for (size_t j = 0; j < NR; j++) acc[r][j] += x * b[p * NR + j];
    }
  }
}

static void tile(size_t mr, size_t nr, size_t kc, const float *a, const float *b,
                 const float *next, float *c, size_t ldc, float alpha, float beta,
                 const strand__gemm_epilogue *ep, size_t col) {
  (void)next; /* no prefetching in portable C */
  float acc[MR][NR] = {{0}};
  if (mr == MR)
    accumulate(MR, kc, a, b, acc);
  else
    accumulate(mr, kc, a, b, acc);
  for (size_t r = 0; r < mr; r++) {
    float *c_row = c + r * ldc;
    for (size_t j = 0; j < nr; j++) {
      float v = alpha * acc[r][j];
      if (beta != 0) v += beta * c_row[j];
      if (ep) {
        if (ep->bias) v += ep->bias[col + j];
        v = strand__gemm_activate(v, ep);
      }
      c_row[j] = v;
    }
  }
}

void strand__gemm_kernel_scalar_init(strand__gemm_kernel *kernel) {
  *kernel = (strand__gemm_kernel){
      .name = "scalar 4x8", .level = STRAND__CPU_SCALAR, .mr = MR, .nr = NR, .tile = tile};
}
