/*
 * common.c — what every kernel file shares: shapes, the memory prepare
 * hands out, attribute readers, parallel ranges, numpy broadcasting and
 * copies.
 */
#include "kernels/kernels_internal.h"

#include <stdio.h>
#include <string.h>

/* ---- shapes ------------------------------------------------------------- */

void kernel_set_shape(kernel_tensor *t, strand_dtype dtype, size_t rank, const int64_t *dims) {
  t->dtype = dtype;
  t->rank = rank;
  for (size_t i = 0; i < rank; i++) t->dims[i] = dims[i];
}

const char *kernel_shape_text(const kernel_tensor *t, char *buf, size_t size) {
  size_t n = (size_t)snprintf(buf, size, "[");
  for (size_t i = 0; i < t->rank && n < size; i++)
    n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
  if (n < size) snprintf(buf + n, size - n, "]");
  return buf;
}

/* ---- memory from prepare ------------------------------------------------ */

#define BLOCK_HEADER 64

typedef struct kernel_block {
  struct kernel_block *next;
  size_t size; /* payload bytes */
  strand_memory_category category;
} kernel_block;
_Static_assert(sizeof(kernel_block) <= BLOCK_HEADER, "block header fits");

strand_status kernel_alloc(kernel_prepare *p, size_t size, strand_memory_category category,
                           void **out) {
  size_t total;
  if (!strand__size_add(size, BLOCK_HEADER, &total))
    return strand__fail(STRAND_E_OUT_OF_MEMORY, "kernel parameters of %zu bytes", size);
  void *mem;
  strand_status st = strand__alloc_aligned(total, 64, category, &mem);
  if (st) return st;
  memset(mem, 0, total);
  kernel_block *b = mem;
  b->size = size;
  b->category = category;
  b->next = *p->blocks;
  *p->blocks = b;
  *out = (unsigned char *)mem + BLOCK_HEADER;
  return STRAND_OK;
}

strand_status kernel_pack_panels(kernel_prepare *p, const float *w, const float *bias, size_t m,
                                 size_t k, size_t rows, float **panels, float **panel_bias) {
  size_t n = (m + rows - 1) / rows;
  float *packed, *b;
  strand_status st = kernel_alloc(p, n * rows * k * sizeof(float), STRAND_MEMORY_WEIGHTS,
                                  (void **)&packed);
  if (!st) st = kernel_alloc(p, n * rows * sizeof(float), STRAND_MEMORY_WEIGHTS, (void **)&b);
  if (st) return st;
  /* kernel_alloc's memory is zero: rows past m stay zero. */
  for (size_t q = 0; q < n; q++)
    for (size_t r = 0; r < rows && q * rows + r < m; r++) {
      for (size_t t = 0; t < k; t++) packed[(q * k + t) * rows + r] = w[(q * rows + r) * k + t];
      if (bias) b[q * rows + r] = bias[q * rows + r];
    }
  *panels = packed;
  *panel_bias = b;
  return STRAND_OK;
}

void kernel_free_block(kernel_block **blocks, void *payload) {
  for (kernel_block **at = blocks; *at; at = &(*at)->next)
    if ((unsigned char *)*at + BLOCK_HEADER == payload) {
      kernel_block *b = *at;
      *at = b->next;
      strand__free_aligned(b, b->size + BLOCK_HEADER, b->category);
      return;
    }
}

void kernel_free_blocks(kernel_block **blocks) {
  kernel_block *b = *blocks;
  while (b) {
    kernel_block *next = b->next;
    strand__free_aligned(b, b->size + BLOCK_HEADER, b->category);
    b = next;
  }
  *blocks = NULL;
}

size_t kernel_blocks_bytes(const kernel_block *blocks) {
  size_t total = 0;
  for (const kernel_block *b = blocks; b; b = b->next) total += b->size;
  return total;
}

const graph_value *kernel_input_value(const kernel_prepare *p, size_t k) {
  static const graph_value absent = {.name = "", .dtype = STRAND_DTYPE_UNDEFINED, .rank = -1,
                                     .producer = -1};
  if (k >= p->node->n_inputs || p->node->inputs[k] < 0) return &absent;
  return &p->graph->values[p->node->inputs[k]];
}

bool kernel_has_input(const kernel_prepare *p, size_t k) {
  if (p->constants && k < p->n_constants && p->constants[k]) return true;
  return k < p->node->n_inputs && p->node->inputs[k] >= 0;
}

const onnx_tensor *kernel_constant_input(const kernel_prepare *p, size_t k) {
  if (p->constants && k < p->n_constants && p->constants[k]) return p->constants[k];
  const graph_value *v = kernel_input_value(p, k);
  return (v->flags & GRAPH_VALUE_CONSTANT) ? v->constant : NULL;
}

/* ---- accepts helpers ----------------------------------------------------- */

static bool rest_same(const strand_dtype *dtypes, size_t n) {
  for (size_t i = 1; i < n; i++)
    if (!kernel_dtype_same(dtypes[0], dtypes[i])) return false;
  return true;
}

bool kernel_accepts_float32(const strand_dtype *dtypes, size_t n) {
  return n > 0 && kernel_dtype_in(dtypes[0], KERNEL_DT(FLOAT32)) && rest_same(dtypes, n);
}

bool kernel_accepts_floats(const strand_dtype *dtypes, size_t n) {
  return n > 0 && kernel_dtype_in(dtypes[0], KERNEL_DT_FLOATS) && rest_same(dtypes, n);
}

bool kernel_accepts_any(const strand_dtype *dtypes, size_t n) {
  return n == 0 || kernel_dtype_in(dtypes[0], KERNEL_DT_ALL);
}

/* ---- attributes ------------------------------------------------------------ */

static strand_status wrong_type(const onnx_attr *a, onnx_attr_type expected) {
  return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"%s\" has type %s, expected %s",
                      a->name, onnx_attr_type_name(a->type), onnx_attr_type_name(expected));
}

strand_status kernel_attr_int(const graph_node *node, const char *name, int64_t fallback,
                              int64_t *out) {
  const onnx_attr *a = graph_node_attr(node, name);
  if (!a) {
    *out = fallback;
    return STRAND_OK;
  }
  if (a->type != ONNX_ATTR_INT) return wrong_type(a, ONNX_ATTR_INT);
  *out = a->i;
  return STRAND_OK;
}

strand_status kernel_attr_float(const graph_node *node, const char *name, float fallback,
                                float *out) {
  const onnx_attr *a = graph_node_attr(node, name);
  if (!a) {
    *out = fallback;
    return STRAND_OK;
  }
  if (a->type != ONNX_ATTR_FLOAT) return wrong_type(a, ONNX_ATTR_FLOAT);
  *out = a->f;
  return STRAND_OK;
}

strand_status kernel_attr_string(const graph_node *node, const char *name, const char *fallback,
                                 const char **out) {
  const onnx_attr *a = graph_node_attr(node, name);
  if (!a) {
    *out = fallback;
    return STRAND_OK;
  }
  if (a->type != ONNX_ATTR_STRING) return wrong_type(a, ONNX_ATTR_STRING);
  *out = a->s.data;
  return STRAND_OK;
}

strand_status kernel_attr_ints(const graph_node *node, const char *name, const int64_t **values,
                               size_t *count) {
  static const int64_t none[1];
  const onnx_attr *a = graph_node_attr(node, name);
  *values = NULL;
  *count = 0;
  if (!a) return STRAND_OK;
  if (a->type != ONNX_ATTR_INTS) return wrong_type(a, ONNX_ATTR_INTS);
  *values = a->ints ? a->ints : none;
  *count = a->count;
  return STRAND_OK;
}

strand_status kernel_axis(int64_t axis, size_t rank, const char *what, size_t *out) {
  int64_t r = (int64_t)rank;
  if (axis < -r || axis >= r)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s is %lld, outside [%lld, %lld] for rank %zu",
                        what, (long long)axis, (long long)-r, (long long)(r - 1), rank);
  *out = (size_t)(axis < 0 ? axis + r : axis);
  return STRAND_OK;
}

double kernel_number_at(const void *data, strand_dtype dtype, size_t i) {
  switch (dtype) {
  case STRAND_DTYPE_FLOAT32: return ((const float *)data)[i];
  case STRAND_DTYPE_FLOAT64: return ((const double *)data)[i];
  case STRAND_DTYPE_INT8: return ((const int8_t *)data)[i];
  case STRAND_DTYPE_INT16: return ((const int16_t *)data)[i];
  case STRAND_DTYPE_INT32: return ((const int32_t *)data)[i];
  case STRAND_DTYPE_INT64: return (double)((const int64_t *)data)[i];
  case STRAND_DTYPE_UINT8: return ((const uint8_t *)data)[i];
  case STRAND_DTYPE_UINT16: return ((const uint16_t *)data)[i];
  case STRAND_DTYPE_UINT32: return ((const uint32_t *)data)[i];
  case STRAND_DTYPE_UINT64: return (double)((const uint64_t *)data)[i];
  case STRAND_DTYPE_BOOL: return ((const uint8_t *)data)[i] != 0;
  case STRAND_DTYPE_FLOAT16: return kernel_half_to_float(((const uint16_t *)data)[i]);
  case STRAND_DTYPE_BFLOAT16: return kernel_bfloat_to_float(((const uint16_t *)data)[i]);
  default: return 0;
  }
}

/* ---- parallel ranges --------------------------------------------------------- */

typedef struct range_job {
  kernel_range_fn fn;
  void *ctx;
  size_t n, chunk;
} range_job;

static void range_task(void *p, size_t task) {
  const range_job *j = p;
  size_t begin = task * j->chunk;
  size_t end = j->n - begin < j->chunk ? j->n : begin + j->chunk;
  j->fn(j->ctx, begin, end);
}

void kernel_parallel(unsigned threads, size_t n, size_t grain, kernel_range_fn fn, void *ctx) {
  if (n == 0) return;
  if (grain == 0) grain = 1;
  size_t tasks = n / grain;
  if (threads <= 1 || tasks <= 1) {
    fn(ctx, 0, n);
    return;
  }
  size_t most = (size_t)threads * 4;
  if (tasks > most) tasks = most;
  range_job j = {fn, ctx, n, (n + tasks - 1) / tasks};
  tasks = (n + j.chunk - 1) / j.chunk;
  strand__parallel_for(tasks, range_task, &j, threads);
}

/* ---- broadcasting ------------------------------------------------------------ */

strand_status kernel_broadcast_shape(const kernel_tensor *const *inputs, size_t n, int64_t *dims,
                                     size_t *rank) {
  size_t r = 0;
  for (size_t k = 0; k < n; k++)
    if (inputs[k] && inputs[k]->rank > r) r = inputs[k]->rank;
  for (size_t d = 0; d < r; d++) dims[d] = 1;
  for (size_t k = 0; k < n; k++) {
    const kernel_tensor *t = inputs[k];
    if (!t) continue;
    size_t shift = r - t->rank;
    for (size_t d = 0; d < t->rank; d++) {
      int64_t have = dims[shift + d], want = t->dims[d];
      if (want == have || want == 1) continue;
      if (have == 1) {
        dims[shift + d] = want;
        continue;
      }
      /* Name the first input that set the other size. */
      size_t other = 0;
      for (size_t j = 0; j < k; j++) {
        if (!inputs[j]) continue;
        size_t sj = r - inputs[j]->rank;
        if (shift + d >= sj && inputs[j]->dims[shift + d - sj] == have) {
          other = j;
          break;
        }
      }
      char a[160], b[160];
      return strand__fail(STRAND_E_SHAPE, "input %zu has shape %s and input %zu %s: they cannot "
                          "be broadcast (axis %lld: %lld vs %lld)", other,
                          kernel_shape_text(inputs[other], a, sizeof a), k,
                          kernel_shape_text(t, b, sizeof b), (long long)(shift + d) - (long long)r,
                          (long long)have, (long long)want);
    }
  }
  *rank = r;
  return STRAND_OK;
}

void kernel_broadcast_init(kernel_broadcast *b, const kernel_tensor *out,
                           const kernel_tensor *const *inputs, size_t n) {
  memset(b, 0, sizeof *b);
  b->n_inputs = n;
  /* Full-rank strides of each input, 0 where it broadcasts. */
  size_t r = out->rank;
  size_t strides[KERNEL_BROADCAST_MAX_INPUTS][STRAND_MAX_RANK];
  for (size_t k = 0; k < n; k++) {
    const kernel_tensor *t = inputs[k];
    size_t shift = r - t->rank, step = 1;
    for (size_t d = r; d-- > 0;) {
      if (d < shift || t->dims[d - shift] == 1) {
        strides[k][d] = 0;
      } else {
        strides[k][d] = step;
        step *= (size_t)t->dims[d - shift];
      }
    }
  }
  /* Merge from the innermost dimension out, dropping dims of size 1. */
  size_t merged_dims[STRAND_MAX_RANK];
  size_t merged_strides[KERNEL_BROADCAST_MAX_INPUTS][STRAND_MAX_RANK];
  size_t m = 0; /* merged dims so far, innermost first */
  for (size_t d = r; d-- > 0;) {
    size_t size = (size_t)out->dims[d];
    if (size == 1) continue;
    bool joins = m > 0;
    for (size_t k = 0; k < n && joins; k++)
      joins = strides[k][d] == merged_strides[k][m - 1] * merged_dims[m - 1];
    if (joins) {
      merged_dims[m - 1] *= size;
      continue;
    }
    merged_dims[m] = size;
    for (size_t k = 0; k < n; k++) merged_strides[k][m] = strides[k][d];
    m++;
  }
  if (m == 0) { /* a scalar, or every dim 1 (or the output is empty: handled by count) */
    merged_dims[0] = 1;
    for (size_t k = 0; k < n; k++) merged_strides[k][0] = 0;
    m = 1;
  }
  b->rank = m;
  for (size_t i = 0; i < m; i++) {
    b->dims[i] = merged_dims[m - 1 - i];
    for (size_t k = 0; k < n; k++) b->strides[k][i] = merged_strides[k][m - 1 - i];
  }
  b->inner = b->dims[m - 1];
  b->rows = 1;
  for (size_t i = 0; i + 1 < m; i++) b->rows *= b->dims[i];
  b->count = out->count ? b->rows * b->inner : 0;
}

void kernel_broadcast_seek(const kernel_broadcast *b, size_t row, kernel_broadcast_cursor *c) {
  for (size_t k = 0; k < b->n_inputs; k++) c->offset[k] = 0;
  for (size_t i = b->rank - 1; i-- > 0;) {
    size_t idx = row % b->dims[i];
    row /= b->dims[i];
    c->index[i] = idx;
    for (size_t k = 0; k < b->n_inputs; k++) c->offset[k] += idx * b->strides[k][i];
  }
}

void kernel_broadcast_next(const kernel_broadcast *b, kernel_broadcast_cursor *c) {
  for (size_t i = b->rank - 1; i-- > 0;) {
    if (++c->index[i] < b->dims[i]) {
      for (size_t k = 0; k < b->n_inputs; k++) c->offset[k] += b->strides[k][i];
      return;
    }
    c->index[i] = 0;
    for (size_t k = 0; k < b->n_inputs; k++) c->offset[k] -= (b->dims[i] - 1) * b->strides[k][i];
  }
}

typedef struct span_job {
  const kernel_broadcast *b;
  kernel_span_fn fn;
  void *ctx;
} span_job;

static void span_range(void *p, size_t begin, size_t end) {
  const span_job *j = p;
  const kernel_broadcast *b = j->b;
  size_t inner = b->inner, row = begin / inner, col = begin % inner;
  size_t last = b->rank - 1;
  kernel_broadcast_cursor c;
  kernel_broadcast_seek(b, row, &c);
  size_t pos = begin;
  while (pos < end) {
    size_t n = inner - col;
    if (n > end - pos) n = end - pos;
    size_t offsets[KERNEL_BROADCAST_MAX_INPUTS];
    for (size_t k = 0; k < b->n_inputs; k++) offsets[k] = c.offset[k] + col * b->strides[k][last];
    j->fn(j->ctx, n, offsets, pos, b);
    pos += n;
    col = 0;
    if (pos < end) kernel_broadcast_next(b, &c);
  }
}

void kernel_broadcast_run(unsigned threads, const kernel_broadcast *b, size_t cost,
                          kernel_span_fn fn, void *ctx) {
  span_job j = {b, fn, ctx};
  size_t grain = kernel_grain(cost);
  if (grain < 16) grain = 16;
  kernel_parallel(threads, b->count, grain, span_range, &j);
}

/* ---- copies ------------------------------------------------------------------ */

typedef struct copy_job {
  unsigned char *dst;
  const unsigned char *src;
} copy_job;

static void copy_range(void *p, size_t begin, size_t end) {
  const copy_job *j = p;
  memcpy(j->dst + begin, j->src + begin, end - begin);
}

void kernel_copy(unsigned threads, void *dst, const void *src, size_t bytes) {
  if (!bytes || dst == src) return;
  copy_job j = {dst, src};
  kernel_parallel(threads, bytes, (size_t)1 << 20, copy_range, &j);
}

typedef struct bcopy_job {
  const unsigned char *src;
  unsigned char *dst;
  size_t item;
} bcopy_job;

static void bcopy_span(void *p, size_t n, const size_t *offsets, size_t out_offset,
                       const kernel_broadcast *b) {
  const bcopy_job *j = p;
  size_t item = j->item;
  const unsigned char *s = j->src + offsets[0] * item;
  unsigned char *d = j->dst + out_offset * item;
  if (b->strides[0][b->rank - 1]) {
    memcpy(d, s, n * item);
    return;
  }
  switch (item) {
  case 1: memset(d, *s, n); break;
  case 4: {
    uint32_t v;
    memcpy(&v, s, 4);
    for (size_t i = 0; i < n; i++) memcpy(d + i * 4, &v, 4);
    break;
  }
  case 8: {
    uint64_t v;
    memcpy(&v, s, 8);
    for (size_t i = 0; i < n; i++) memcpy(d + i * 8, &v, 8);
    break;
  }
  default:
    for (size_t i = 0; i < n; i++) memcpy(d + i * item, s, item);
  }
}

void kernel_broadcast_copy(unsigned threads, const kernel_tensor *in, kernel_tensor *out) {
  if (!out->count) return;
  if (in->count == out->count) {
    kernel_copy(threads, out->data, in->data, out->count * strand_dtype_size(out->dtype));
    return;
  }
  kernel_broadcast b;
  const kernel_tensor *ins[1] = {in};
  kernel_broadcast_init(&b, out, ins, 1);
  bcopy_job j = {in->data, out->data, strand_dtype_size(out->dtype)};
  kernel_broadcast_run(threads, &b, 1, bcopy_span, &j);
}

/* ---- 16-bit floats -------------------------------------------------------- */

float kernel_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man) { /* subnormal: normalize */
    int shift = 0;
    while (!(man & 0x400u)) {
      man <<= 1;
      shift++;
    }
    bits = sign | ((uint32_t)(113 - shift) << 23) | ((man & 0x3ffu) << 13);
  } else {
    bits = sign;
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Round to nearest even; overflow gives infinity, NaN stays NaN. */
uint16_t kernel_float_to_half(float f) {
  uint32_t bits;
  memcpy(&bits, &f, 4);
  uint32_t sign = (bits >> 16) & 0x8000u, exp = (bits >> 23) & 0xffu, man = bits & 0x7fffffu;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
  int32_t e = (int32_t)exp - 112; /* rebias 127 -> 15 */
  if (e >= 0x1f) return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    man |= 0x800000u;
    uint32_t shift = (uint32_t)(14 - e);
    uint32_t half = man >> shift, rest = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rest > mid || (rest == mid && (half & 1u))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13), rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) half++; /* may carry into exp: right */
  return (uint16_t)half;
}

float kernel_bfloat_to_float(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t kernel_float_to_bfloat(float f) {
  uint32_t bits;
  memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u); /* NaN */
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return (uint16_t)(bits >> 16);
}
