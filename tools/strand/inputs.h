/* inputs.h — the input tensors of a model for the commands that run it
 * (bench, stress, run): shapes with the batch dimension bound, values from
 * a seeded generator or from files. The three share the generator: with
 * seed S, `run --random` makes the values `bench` makes at batch 1, and
 * stress makes its input set p from the state
 * inputs_mix(S * 0x9e3779b97f4a7c15 + p). */
#ifndef STRAND_TOOL_INPUTS_H
#define STRAND_TOOL_INPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "strand.h"

#define INPUTS_MAX 64 /* graph inputs a model may have here */

typedef struct model_inputs {
  size_t count;
  const char *names[INPUTS_MAX];     /* borrowed from the model */
  strand_dtype dtypes[INPUTS_MAX];
  int64_t dims[INPUTS_MAX][STRAND_MAX_RANK];
  size_t ranks[INPUTS_MAX];
  int batch_axis[INPUTS_MAX];        /* the dimension bound to the batch; -1: none */
  strand_tensor *tensors[INPUTS_MAX]; /* owned; NULL until made or read */
} model_inputs;

/* 1 when dimension `d` of `v` is the batch: a symbolic dimension whose name
 * says so ("batch", "Batch", "N"), or an unknown leading dimension. */
int inputs_is_batch_dim(const strand_value_info *v, size_t d);

/* Describes the inputs of `model` (which must outlive `in`): each batch
 * dimension is bound to `batch`, every other unknown dimension to 1; an
 * undefined dtype is taken as float32. No tensor is made yet. Returns 0, or
 * -1 with a message in `error` (a model with more than INPUTS_MAX inputs). */
int inputs_describe(strand_model *model, uint64_t batch, model_inputs *in, char *error,
                    size_t error_size);

/* Reads a tensor from `path`: an ONNX TensorProto when the name ends in
 * ".pb", else a .npy file. A failure leaves the message in strand_errmsg(). */
strand_status inputs_read_file(const char *path, strand_tensor **out);

/* Reads the value of input `name` from a .npy or .pb file and takes its
 * shape (so a file sets the batch). Returns 0; -2 when the model has no
 * input `name` or it was read already; -1 when the file cannot be read;
 * with a message in `error` naming the input or the file. */
int inputs_read(model_inputs *in, const char *name, const char *path, char *error,
                size_t error_size);

/* splitmix64's finalizer: one step of the generator, whose state starts at
 * inputs_mix(seed); also a hash (stress picks input sets with it). */
uint64_t inputs_mix(uint64_t x);

/* Makes a tensor of `dtype` and shape dims[0..rank) and fills it from the
 * generator whose state is *state, one step a value: floats uniform in
 * [-1, 1), integers 0..9, bools 0 or 1, float16 and bfloat16 zeros. The
 * same state gives the same values on every platform. A failure leaves the
 * message in strand_errmsg() and *state unchanged. */
strand_status inputs_random_tensor(strand_dtype dtype, const int64_t *dims, size_t rank,
                                   uint64_t *state, strand_tensor **out);

/* Makes every input not read from a file, in order, with
 * inputs_random_tensor from the state inputs_mix(seed). Returns 0, or -1
 * with a message in `error`. */
int inputs_fill_random(model_inputs *in, uint64_t seed, char *error, size_t error_size);

/* The batch the inputs hold: the size of the first input's batch
 * dimension, or 0 when no input has one. */
int64_t inputs_batch(const model_inputs *in);

/* Releases the tensors; `in` can be described again. */
void inputs_release(model_inputs *in);

#endif
