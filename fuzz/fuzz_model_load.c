/*
 * fuzz_model_load.c — libFuzzer target: any bytes given to
 * strand_model_load_buffer must give a status, never a crash, a hang or a
 * leak. A model that loads is also queried (every op and value) and
 * released. Built by fuzz/build.sh with clang -fsanitize=fuzzer,address;
 * fuzz/fuzz_driver.c runs the same target over files without libFuzzer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "strand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  strand_model *model = NULL;
  strand_status st = strand_model_load_buffer(data, size, &model);
  if (st == STRAND_OK) {
    size_t n = 0;
    strand_value_info info;
    strand_op_info op;
    if (strand_model_input_count(model, &n) == STRAND_OK)
      for (size_t i = 0; i < n; i++) strand_model_input(model, i, &info);
    if (strand_model_output_count(model, &n) == STRAND_OK)
      for (size_t i = 0; i < n; i++) strand_model_output(model, i, &info);
    if (strand_model_op_count(model, &n) == STRAND_OK)
      for (size_t i = 0; i < n; i++) strand_model_op(model, i, &op);
    strand_model_check_supported(model);
    strand_model_release(model);
  } else if (model != NULL) {
    abort(); /* a failing call leaves its out-parameter untouched */
  }
  /* Nothing may outlive the call. */
  strand_memory_stats stats = {.struct_size = sizeof stats};
  if (strand_memory_get_stats(&stats) != STRAND_OK) abort();
  if (stats.total_live_bytes != 0 || stats.total_live_objects != 0) abort();
  return 0;
}
