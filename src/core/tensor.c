/* tensor.c — the tensor object: dtype, shape and data, owned or borrowed. */
#include "core/tensor_internal.h"

#include <string.h>

#define TENSOR_ALIGNMENT 64

static void tensor_destroy(strand__object *self) {
  strand_tensor *t = (strand_tensor *)self;
  if (t->release) t->release(t->data, t->release_context);
  else if (t->owns_data) strand__free_aligned(t->data, t->byte_size, STRAND_MEMORY_TENSOR);
}

strand_status strand__shape_check(strand_dtype dtype, const int64_t *shape, size_t rank,
                                  const char *function, size_t *elements, size_t *bytes) {
  size_t item = strand_dtype_size(dtype);
  if (item == 0)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: %d is not a strand dtype", function,
                        (int)dtype);
  if (rank > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: rank %zu exceeds the maximum of %d",
                        function, rank, STRAND_MAX_RANK);
  if (rank > 0 && !shape)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: shape is NULL for rank %zu", function,
                        rank);
  size_t count = 1;
  bool overflow = false;
  for (size_t i = 0; i < rank; i++) {
    if (shape[i] < 0)
      return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: dimension %zu is %lld; dimensions "
                          "must be >= 0", function, i, (long long)shape[i]);
    if ((uint64_t)shape[i] > SIZE_MAX || !strand__size_mul(count, (size_t)shape[i], &count))
      overflow = true;
  }
  /* A zero dimension makes the tensor empty whatever the others claim. */
  for (size_t i = 0; i < rank; i++)
    if (shape[i] == 0) {
      count = 0;
      overflow = false;
    }
  size_t total;
  if (overflow || !strand__size_mul(count, item, &total) || total > (SIZE_MAX >> 1)) {
    char dims[256];
    size_t len = 0;
    for (size_t i = 0; i < rank && len < sizeof dims - 24; i++)
      len += (size_t)snprintf(dims + len, sizeof dims - len, "%s%lld", i ? ", " : "",
                              (long long)shape[i]);
    dims[len] = '\0';
    return strand__fail(STRAND_E_SHAPE, "%s: shape [%s] of %s holds more bytes than memory can "
                        "address", function, dims, strand_dtype_name(dtype));
  }
  *elements = count;
  *bytes = total;
  return STRAND_OK;
}

/* Allocates and initialises the shell; data fields are the caller's. */
static strand_status tensor_new(strand_dtype dtype, const int64_t *shape, size_t rank,
                                size_t elements, size_t bytes, const void *site,
                                strand_tensor **out) {
  void *p;
  strand_status st = strand__alloc(sizeof(strand_tensor), STRAND_MEMORY_OTHER, &p);
  if (st != STRAND_OK) return st;
  strand_tensor *t = p;
  memset(t, 0, sizeof *t);
  t->dtype = dtype;
  t->rank = rank;
  if (rank) memcpy(t->dims, shape, rank * sizeof(int64_t));
  t->element_count = elements;
  t->byte_size = bytes;
  strand__object_init(&t->header, STRAND_KIND_TENSOR, sizeof *t, tensor_destroy, site);
  *out = t;
  return STRAND_OK;
}

strand_status strand__tensor_create_at(strand_dtype dtype, const int64_t *shape, size_t rank,
                                       const void *site, const char *function, bool zero_fill,
                                       strand_tensor **out) {
  strand__init();
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out is NULL", function);
  size_t elements, bytes;
  strand_status st = strand__shape_check(dtype, shape, rank, function, &elements, &bytes);
  if (st != STRAND_OK) return st;
  void *data = NULL;
  if (bytes) {
    st = strand__alloc_aligned(bytes, TENSOR_ALIGNMENT, STRAND_MEMORY_TENSOR, &data);
    if (st != STRAND_OK) return strand__fail_context(st, "%s", function);
    if (zero_fill) memset(data, 0, bytes);
  }
  strand_tensor *t;
  st = tensor_new(dtype, shape, rank, elements, bytes, site, &t);
  if (st != STRAND_OK) {
    strand__free_aligned(data, bytes, STRAND_MEMORY_TENSOR);
    return strand__fail_context(st, "%s", function);
  }
  t->data = data;
  t->owns_data = data != NULL;
  strand__object_add_bytes(&t->header, (int64_t)bytes);
  *out = t;
  return STRAND_OK;
}

STRAND_NOINLINE strand_status strand_tensor_create(strand_dtype dtype, const int64_t *shape,
                                                   size_t rank, strand_tensor **out) {
  return strand__tensor_create_at(dtype, shape, rank, __builtin_return_address(0),
                                  "strand_tensor_create", true, out);
}

STRAND_NOINLINE strand_status strand_tensor_wrap(strand_dtype dtype, const int64_t *shape,
                                                 size_t rank, void *data, size_t byte_size,
                                                 strand_release_fn release, void *context,
                                                 strand_tensor **out) {
  strand__init();
  static const char fn[] = "strand_tensor_wrap";
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out is NULL", fn);
  size_t elements, bytes;
  strand_status st = strand__shape_check(dtype, shape, rank, fn, &elements, &bytes);
  if (st != STRAND_OK) return st;
  if (bytes != byte_size)
    return strand__fail(STRAND_E_SHAPE, "%s: the buffer holds %zu bytes but %zu elements of %s "
                        "need %zu", fn, byte_size, elements, strand_dtype_name(dtype), bytes);
  if (!data && bytes)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: data is NULL for %zu bytes", fn, bytes);
  strand_tensor *t;
  st = tensor_new(dtype, shape, rank, elements, bytes, __builtin_return_address(0), &t);
  if (st != STRAND_OK) return strand__fail_context(st, "%s", fn);
  t->data = bytes ? data : NULL;
  t->release = release;
  t->release_context = context;
  if (release) t->data = data;
  *out = t;
  return STRAND_OK;
}

strand_status strand_tensor_retain(strand_tensor *tensor) {
  strand_status st = strand__object_check(tensor, STRAND_KIND_TENSOR, "strand_tensor_retain");
  if (st != STRAND_OK) return st;
  return strand__object_retain(&tensor->header, "strand_tensor_retain");
}

void strand_tensor_release(strand_tensor *tensor) {
  strand__object_release_checked(tensor, STRAND_KIND_TENSOR, "strand_tensor_release");
}

static strand_status check_out(const strand_tensor *tensor, const void *out, const char *fn) {
  strand_status st = strand__object_check(tensor, STRAND_KIND_TENSOR, fn);
  if (st != STRAND_OK) return st;
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: out is NULL", fn);
  return STRAND_OK;
}

strand_status strand_tensor_dtype(const strand_tensor *tensor, strand_dtype *out) {
  strand_status st = check_out(tensor, out, "strand_tensor_dtype");
  if (st == STRAND_OK) *out = tensor->dtype;
  return st;
}

strand_status strand_tensor_shape(const strand_tensor *tensor, const int64_t **dims,
                                  size_t *rank) {
  strand_status st = check_out(tensor, dims, "strand_tensor_shape");
  if (st == STRAND_OK && !rank)
    st = strand__fail(STRAND_E_INVALID_ARGUMENT, "strand_tensor_shape: rank is NULL");
  if (st != STRAND_OK) return st;
  *dims = tensor->rank ? tensor->dims : NULL;
  *rank = tensor->rank;
  return STRAND_OK;
}

strand_status strand_tensor_element_count(const strand_tensor *tensor, size_t *out) {
  strand_status st = check_out(tensor, out, "strand_tensor_element_count");
  if (st == STRAND_OK) *out = tensor->element_count;
  return st;
}

strand_status strand_tensor_byte_size(const strand_tensor *tensor, size_t *out) {
  strand_status st = check_out(tensor, out, "strand_tensor_byte_size");
  if (st == STRAND_OK) *out = tensor->byte_size;
  return st;
}

strand_status strand_tensor_data(const strand_tensor *tensor, void **out) {
  strand_status st = check_out(tensor, out, "strand_tensor_data");
  if (st == STRAND_OK) *out = tensor->data;
  return st;
}
