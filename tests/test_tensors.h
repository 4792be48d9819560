/*
 * test_tensors.h — float32 input tensors for tests whose expected values
 * come from the same formula (test_input_at) or from a second session.
 */
#ifndef STRAND_TEST_TENSORS_H
#define STRAND_TEST_TENSORS_H

#include <strand.h>

#include <stddef.h>
#include <stdint.h>

/* x[i] for a seed: a mix of signs, no two equal within a tensor. */
static inline float test_input_at(size_t i, unsigned seed) {
  float v = (float)((i * 7 + seed * 13) % 23) - 11.0f;
  return v + (float)i / 1024.0f;
}

/* A new tensor of these dims filled with test_input_at, or NULL when it
 * cannot be made (the caller's checks fail on NULL). */
static inline strand_tensor *test_input_tensor(const int64_t *dims, size_t rank, unsigned seed) {
  strand_tensor *t = NULL;
  if (strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, rank, &t)) return NULL;
  float *x;
  size_t n;
  strand_tensor_data(t, (void **)&x);
  strand_tensor_element_count(t, &n);
  for (size_t i = 0; i < n; i++) x[i] = test_input_at(i, seed);
  return t;
}

#endif /* STRAND_TEST_TENSORS_H */
