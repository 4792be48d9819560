/*
 * gemm.h — CPU feature detection and single-precision matrix multiplication
 * for the kernels layer (to be merged into kernels_internal.h).
 *
 * All matrices are row-major float32. op(X) is X or its transpose:
 *   C[i][j] = act(alpha * sum_p op(A)[i][p] * op(B)[p][j] + beta * C[i][j] + bias[j])
 * with op(A) m×k, op(B) k×n, C m×n. beta == 0 means C is not read (NaN or
 * garbage in C does not propagate), as in BLAS.
 *
 * Storage: op(A)[i][p] is a[i*lda + p], or a[p*lda + i] when trans_a;
 *          op(B)[p][j] is b[p*ldb + j], or b[j*ldb + p] when trans_b;
 *          C[i][j] is c[i*ldc + j].
 * Only the elements a matrix actually has are read: a buffer of exactly
 * (rows-1)*ld + cols floats is enough.
 *
 * Kernels never allocate and never start threads. The caller provides
 * scratch memory (strand__gemm_scratch_size) and, for several threads, runs
 * strand__gemm_partition's blocks on its own thread pool, each with its own
 * scratch. Every function here may be called from any thread at any time.
 */
#ifndef STRAND_KERNELS_GEMM_H
#define STRAND_KERNELS_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- CPU features (cpu.c) ---------------------------------------------- */

/* Instruction-set levels, each including the ones below it. */
typedef enum strand__cpu_level {
  STRAND__CPU_SCALAR = 0, /* portable C, whatever the compiler's baseline is */
  STRAND__CPU_AVX2 = 1,   /* AVX2 + FMA, with the OS saving YMM state */
  STRAND__CPU_AVX512 = 2, /* AVX-512 F/BW/DQ/VL, with the OS saving ZMM state */
  STRAND__CPU_LEVEL_COUNT
} strand__cpu_level;

typedef struct strand__cpu_info {
  bool avx2, fma, avx512f, avx512bw, avx512dq, avx512vl; /* usable: CPU and OS */
  strand__cpu_level hardware; /* best level the CPU and OS support */
  strand__cpu_level selected; /* hardware, lowered by STRAND_CPU */
  size_t l1d_bytes, l2_bytes, l3_bytes; /* per core (L3: as reported); defaults if unknown */
} strand__cpu_info;

/* Detected once (thread-safe) on first call; the environment switch
 * STRAND_CPU=avx512|avx2|scalar lowers `selected` (it never raises it above
 * what the hardware supports; an unknown value is ignored with a warning). */
const strand__cpu_info *strand__cpu(void);

/* Parses a STRAND_CPU value. False (and *out untouched) for anything but
 * "scalar", "avx2" or "avx512". */
bool strand__cpu_parse_level(const char *text, strand__cpu_level *out);

/* "scalar", "avx2", "avx512"; "unknown" outside the enum. */
const char *strand__cpu_level_name(strand__cpu_level level);

/* ---- SGEMM (gemm.c and gemm_<isa>.c) ----------------------------------- */

/* A micro-kernel family with its register tile (mr × nr) and cache blocking
 * (mc × kc block of A, kc × nc block of B), fixed at first use. */
typedef struct strand__gemm_kernel strand__gemm_kernel;

/* The kernel for `level`, or NULL when this CPU (or this build) lacks it. */
const strand__gemm_kernel *strand__gemm_kernel_for(strand__cpu_level level);
/* The kernel for strand__cpu()->selected. Never NULL. */
const strand__gemm_kernel *strand__gemm_kernel_default(void);
strand__cpu_level strand__gemm_kernel_level(const strand__gemm_kernel *kernel);
const char *strand__gemm_kernel_name(const strand__gemm_kernel *kernel);

typedef enum strand__gemm_activation {
  STRAND__GEMM_ACT_NONE = 0,
  STRAND__GEMM_ACT_RELU = 1, /* x < 0 ? 0 : x  (NaN stays NaN) */
  STRAND__GEMM_ACT_CLIP = 2  /* x < lo ? lo : x > hi ? hi : x  (NaN stays NaN) */
} strand__gemm_activation;

/* Applied to each element after alpha/beta, while the tile is in registers. */
typedef struct strand__gemm_epilogue {
  const float *bias; /* n floats, bias[j] added to column j; NULL for none */
  strand__gemm_activation activation;
  float clip_min, clip_max; /* for STRAND__GEMM_ACT_CLIP; clip_min <= clip_max */
} strand__gemm_epilogue;

/* The activation of one element, as every kernel applies it. */
static inline float strand__gemm_activate(float x, const strand__gemm_epilogue *epilogue) {
  switch (epilogue->activation) {
  case STRAND__GEMM_ACT_RELU: return x < 0 ? 0 : x;
  case STRAND__GEMM_ACT_CLIP:
    return x < epilogue->clip_min ? epilogue->clip_min
           : x > epilogue->clip_max ? epilogue->clip_max
                                    : x;
  default: return x;
  }
}

/* A block of C: rows [m0, m1), columns [n0, n1). */
typedef struct strand__gemm_block {
  size_t m0, m1, n0, n1;
} strand__gemm_block;

/* Bytes of scratch strand__gemm (b_packed false) or strand__gemm_packed
 * (b_packed true) needs for an m×n×k product or any block of it. Bounded by
 * the cache blocking (well under a few MB) whatever the sizes; any alignment
 * of the scratch pointer is fine. */
size_t strand__gemm_scratch_size(const strand__gemm_kernel *kernel, size_t m, size_t n,
                                 size_t k, bool b_packed);

/* C = act(alpha*op(A)*op(B) + beta*C + bias) on `block` of C (NULL: all of
 * it). `kernel` NULL means strand__gemm_kernel_default(). `epilogue` may be
 * NULL. `scratch` holds strand__gemm_scratch_size(kernel, m, n, k, false)
 * bytes, used by this call only. */
void strand__gemm(const strand__gemm_kernel *kernel, bool trans_a, bool trans_b, size_t m,
                  size_t n, size_t k, float alpha, const float *a, size_t lda,
                  const float *b, size_t ldb, float beta, float *c, size_t ldc,
                  const strand__gemm_epilogue *epilogue, const strand__gemm_block *block,
                  void *scratch);

/* ---- packed B (weights) ---- */

/* Bytes to hold op(B) (k×n) packed for `kernel` (NULL: the default), a
 * multiple of 64. False when the size overflows size_t. */
bool strand__gemm_pack_b_size(const strand__gemm_kernel *kernel, size_t k, size_t n,
                              size_t *out_bytes);

/* Packs op(B) into `packed` (64-byte aligned, strand__gemm_pack_b_size
 * bytes; meant for STRAND_MEMORY_WEIGHTS at session creation). The packed
 * buffer records the kernel, k and n; it is read-only afterwards and may be
 * shared by any number of concurrent strand__gemm_packed calls. */
void strand__gemm_pack_b(const strand__gemm_kernel *kernel, bool trans_b, size_t k, size_t n,
                         const float *b, size_t ldb, void *packed);

/* Starts a packed B that the caller fills in place of strand__gemm_pack_b
 * (a B computed at run time, such as im2col's): writes the header of a k×n
 * packed B for `kernel` (NULL: the default) into `packed` (64-byte
 * aligned, strand__gemm_pack_b_size bytes) and returns its panels. Column
 * j, row p of B goes to panels[(j / nr)·k·nr + p·nr + j % nr] (nr the
 * kernel's); the caller must write every such float for j < n, and zeros
 * for n <= j < n rounded up to nr. */
float *strand__gemm_pack_b_begin(const strand__gemm_kernel *kernel, size_t k, size_t n,
                                 void *packed);
/* k and n of a packed B. */
size_t strand__gemm_packed_k(const void *packed);
size_t strand__gemm_packed_n(const void *packed);
const strand__gemm_kernel *strand__gemm_packed_kernel(const void *packed);

/* As strand__gemm with op(B) taken from `packed` (its k and n), by the
 * kernel it was packed for: pass strand__gemm_packed_kernel(packed) to
 * strand__gemm_scratch_size (b_packed true) and strand__gemm_partition. For
 * a `block`, n0 must be a multiple of that kernel's nr (partition's blocks
 * are). */
void strand__gemm_packed(bool trans_a, size_t m, float alpha, const float *a, size_t lda,
                         const void *packed, float beta, float *c, size_t ldc,
                         const strand__gemm_epilogue *epilogue,
                         const strand__gemm_block *block, void *scratch);

/* ---- packed A (rows computed ahead, e.g. by a recurrence's previous step) ---- */

/* Packs columns [p0, p1) of the m×k row-major A (a[i*lda + p]; only those
 * columns are read) into `packed` (m*k floats, any float alignment), laid
 * out for strand__gemm_packed_ab with a packed B of `kernel` (NULL: the
 * default). Calls for disjoint column ranges write disjoint floats, so
 * several threads may pack their own columns of one A at once. */
void strand__gemm_pack_a(const strand__gemm_kernel *kernel, size_t m, size_t k, const float *a,
                         size_t lda, size_t p0, size_t p1, float *packed);

/* As strand__gemm_packed (trans_a false) with every column of the m×k A
 * already packed by strand__gemm_pack_a for packed_b's kernel; needs no
 * scratch. A `block`'s m0 and m1 must be multiples of the kernel's mr (m1
 * may be m), as strand__gemm_partition's are. Each element of C gets the
 * bits strand__gemm_packed gives it. */
void strand__gemm_packed_ab(size_t m, float alpha, const float *packed_a, const void *packed_b,
                            float beta, float *c, size_t ldc,
                            const strand__gemm_epilogue *epilogue,
                            const strand__gemm_block *block);

/* ---- parallelism hook ---- */

/* How many parts an m×n×k product is worth splitting into, at most
 * `max_parts` (at least 1): each part keeps enough work to repay a hand-off. */
size_t strand__gemm_useful_parts(const strand__gemm_kernel *kernel, size_t m, size_t n,
                                 size_t k, size_t max_parts);

/* Block `index` (< parts) of a split of the m×n output into `parts` disjoint
 * blocks covering it, as even as the register tile allows. Boundaries are
 * multiples of the kernel's mr and nr (so the blocks suit packed B). A block
 * may be empty (m0 == m1 or n0 == n1) when there is too little work. */
void strand__gemm_partition(const strand__gemm_kernel *kernel, size_t m, size_t n,
                            size_t parts, size_t index, strand__gemm_block *out);

/* ---- reference ---- */

/* The naive triple loop with double accumulation; same contract as
 * strand__gemm. For tests. */
void strand__gemm_reference(bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                            float alpha, const float *a, size_t lda, const float *b,
                            size_t ldb, float beta, float *c, size_t ldc,
                            const strand__gemm_epilogue *epilogue);

/* ---- between gemm.c and the micro-kernel files ------------------------- */

/* Computes one register tile: C[0..mr)[0..nr) (row stride ldc) =
 *   alpha * Apanel·Bpanel + beta * C  (beta == 0: C not read)
 * then, if `epilogue` is non-NULL, adds epilogue->bias[col + j] and applies
 * the activation. Apanel holds kc steps of mr floats (a[p*mr + r]);
 * Bpanel holds kc rows of kernel nr floats (b[p*NR + j]), zero beyond nr.
 * 1 <= mr <= MR, 1 <= nr <= NR, kc >= 1. Reads and writes nothing else.
 * `next` is the B panel the sweep's following call reads (kc rows like
 * Bpanel), or NULL: a kernel may prefetch it while it computes, so that a
 * B streamed from memory (a large layer's weights at batch 1, which only a
 * few tiles of rows share) arrives in cache in time. Prefetching never
 * faults and never changes a result. */
typedef void strand__gemm_tile_fn(size_t mr, size_t nr, size_t kc, const float *a,
                                  const float *b, const float *next, float *c, size_t ldc,
                                  float alpha, float beta,
                                  const strand__gemm_epilogue *epilogue, size_t col);

/* The packing primitive: dst[p*out_stride + r] = src[r*ld + p] for p < kc,
 * r < rows, and 0 for rows <= r < out_stride (rows <= out_stride <= 32).
 * Reads only those rows*kc elements of src; writes exactly kc*out_stride
 * floats of dst. Packs row-major A and transposed B into panels. */
typedef void strand__gemm_transpose_fn(const float *src, size_t ld, size_t rows, size_t kc,
                                       size_t out_stride, float *dst);

/* As strand__gemm_tile_fn for 1 <= mr <= wide_rows and up to wide_panels
 * B panels side by side: panel q at b + q*stride, nr columns in all
 * (1 <= nr <= wide_panels*NR; every panel but the last is full). Each
 * element of C must get exactly the bits `tile` would give it. */
typedef void strand__gemm_wide_fn(size_t mr, size_t nr, size_t kc, const float *a,
                                  const float *b, size_t stride, float *c, size_t ldc,
                                  float alpha, float beta, const strand__gemm_epilogue *epilogue,
                                  size_t col);

/* What must hold for every kernel (dynamic batching stacks rows and
 * relies on it): an element of C is computed by the same operations
 * whatever m, the block, and the tile shape are, so row i of an m-row
 * product equals the same row multiplied alone, bit for bit. */
struct strand__gemm_kernel {
  const char *name;
  strand__cpu_level level;
  size_t mr, nr;      /* register tile */
  size_t mc, kc, nc;  /* cache blocking: set once from the cache sizes */
  strand__gemm_tile_fn *tile;
  strand__gemm_wide_fn *wide; /* NULL: none; else for rows <= wide_rows */
  size_t wide_rows, wide_panels;
  strand__gemm_transpose_fn *transpose; /* NULL: gemm.c's portable one */
};

/* Filled by gemm_<isa>.c; tile NULL when the build lacks the ISA. */
void strand__gemm_kernel_scalar_init(strand__gemm_kernel *kernel);
void strand__gemm_kernel_avx2_init(strand__gemm_kernel *kernel);
void strand__gemm_kernel_avx512_init(strand__gemm_kernel *kernel);

#endif /* STRAND_KERNELS_GEMM_H */
