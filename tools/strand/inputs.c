/* inputs.c — the model inputs of inputs.h. */
#include "inputs.h"

#include <stdio.h>
#include <string.h>

int inputs_is_batch_dim(const strand_value_info *v, size_t d) {
  if (v->dims[d] >= 0) return 0;
  const char *name = v->dim_names ? v->dim_names[d] : NULL;
  if (name && (strstr(name, "batch") || strstr(name, "Batch") || strcmp(name, "N") == 0))
    return 1;
  return d == 0;
}

int inputs_describe(strand_model *model, uint64_t batch, model_inputs *in, char *error,
                    size_t error_size) {
  memset(in, 0, sizeof *in);
  size_t n = 0;
  if (strand_model_input_count(model, &n)) {
    snprintf(error, error_size, "reading the inputs: %s", strand_errmsg());
    return -1;
  }
  if (n > INPUTS_MAX) {
    snprintf(error, error_size, "the model has %zu inputs; at most %d are supported here", n,
             INPUTS_MAX);
    return -1;
  }
  in->count = n;
  for (size_t i = 0; i < n; i++) {
    strand_value_info v;
    if (strand_model_input(model, i, &v)) {
      snprintf(error, error_size, "reading input %zu: %s", i, strand_errmsg());
      return -1;
    }
    in->names[i] = v.name;
    in->dtypes[i] = v.dtype == STRAND_DTYPE_UNDEFINED ? STRAND_DTYPE_FLOAT32 : v.dtype;
    in->ranks[i] = v.rank_known ? v.rank : 0;
    in->batch_axis[i] = -1;
    for (size_t d = 0; d < in->ranks[i]; d++) {
      if (v.dims[d] >= 0) {
        in->dims[i][d] = v.dims[d];
      } else if (inputs_is_batch_dim(&v, d)) {
        in->dims[i][d] = (int64_t)batch;
        if (in->batch_axis[i] < 0) in->batch_axis[i] = (int)d;
      } else {
        in->dims[i][d] = 1;
      }
    }
  }
  return 0;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

strand_status inputs_read_file(const char *path, strand_tensor **out) {
  if (ends_with(path, ".pb")) return strand_tensor_read_pb(path, out, NULL, 0);
  return strand_tensor_read_npy(path, out);
}

int inputs_read(model_inputs *in, const char *name, const char *path, char *error,
                size_t error_size) {
  size_t i = 0;
  while (i < in->count && strcmp(in->names[i], name) != 0) i++;
  if (i == in->count) {
    snprintf(error, error_size, "the model has no input \"%s\"", name);
    return -2;
  }
  if (in->tensors[i]) {
    snprintf(error, error_size, "input \"%s\" is given twice", name);
    return -2;
  }
  strand_tensor *t = NULL;
  if (inputs_read_file(path, &t)) {
    snprintf(error, error_size, "reading input \"%s\" from %s: %s", name, path, strand_errmsg());
    return -1;
  }
  const int64_t *dims;
  size_t rank;
  strand_tensor_dtype(t, &in->dtypes[i]);
  strand_tensor_shape(t, &dims, &rank); /* strand's tensors have at most STRAND_MAX_RANK */
  in->ranks[i] = rank;
  for (size_t d = 0; d < rank; d++) in->dims[i][d] = dims[d];
  if (in->batch_axis[i] >= (int)rank) in->batch_axis[i] = -1;
  in->tensors[i] = t;
  return 0;
}

uint64_t inputs_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

strand_status inputs_random_tensor(strand_dtype dtype, const int64_t *dims, size_t rank,
                                   uint64_t *state, strand_tensor **out) {
  strand_tensor *t = NULL;
  strand_status st = strand_tensor_create(dtype, dims, rank, &t);
  if (st) return st;
  size_t n = 0, size = strand_dtype_size(dtype);
  void *data = NULL;
  strand_tensor_element_count(t, &n);
  strand_tensor_data(t, &data); /* zero-filled, so one low byte makes a small integer */
  for (size_t i = 0; i < n && data; i++) {
    uint64_t r = *state = inputs_mix(*state);
    double u = (double)(r >> 11) / 9007199254740992.0; /* [0, 1) */
    switch (dtype) {
    case STRAND_DTYPE_FLOAT32: ((float *)data)[i] = (float)(2 * u - 1); break;
    case STRAND_DTYPE_FLOAT64: ((double *)data)[i] = 2 * u - 1; break;
    case STRAND_DTYPE_INT64: ((int64_t *)data)[i] = (int64_t)(r % 10); break;
    case STRAND_DTYPE_INT32: ((int32_t *)data)[i] = (int32_t)(r % 10); break;
    case STRAND_DTYPE_BOOL: ((uint8_t *)data)[i] = (uint8_t)(r & 1); break;
    case STRAND_DTYPE_FLOAT16: case STRAND_DTYPE_BFLOAT16: break; /* zeros */
    default: ((uint8_t *)data)[i * size] = (uint8_t)(r % 10); break; /* little-endian low byte */
    }
  }
  *out = t;
  return STRAND_OK;
}

int inputs_fill_random(model_inputs *in, uint64_t seed, char *error, size_t error_size) {
  uint64_t state = inputs_mix(seed);
  for (size_t i = 0; i < in->count; i++) {
    if (in->tensors[i]) continue;
    if (inputs_random_tensor(in->dtypes[i], in->dims[i], in->ranks[i], &state, &in->tensors[i])) {
      snprintf(error, error_size, "making input \"%s\": %s", in->names[i], strand_errmsg());
      return -1;
    }
  }
  return 0;
}

int64_t inputs_batch(const model_inputs *in) {
  for (size_t i = 0; i < in->count; i++)
    if (in->batch_axis[i] >= 0) return in->dims[i][in->batch_axis[i]];
  return 0;
}

void inputs_release(model_inputs *in) {
  for (size_t i = 0; i < in->count; i++) {
    strand_tensor_release(in->tensors[i]);
    in->tensors[i] = NULL;
  }
}
