/* The environment switches are read at the first call into strand. This
 * program sets them before that call, in a constructor that runs first. */
#include "test.h"

#include <stdlib.h>

__attribute__((constructor(101))) static void set_environment(void) {
  setenv("STRAND_LEAK_DETECTION", "sample:3", 1);
  setenv("STRAND_MEMORY_LIMIT", "64M", 1);
  setenv("STRAND_LOG", "error", 1);
  setenv("STRAND_LEAK_REPORT", "exit", 1);
}

TEST(environment_sets_level_limit_and_log) {
  CHECK(strand_leak_get_level() == STRAND_LEAK_SAMPLE);
  strand_memory_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_memory_get_stats(&st));
  CHECK(st.limit_bytes == 64ULL << 20);
  CHECK(strand_log_get_level() == STRAND_LOG_ERROR);
  /* every third tensor of this thread is traced */
  strand_tensor *t[6];
  for (int i = 0; i < 6; i++) REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, NULL, 0, &t[i]));
  for (int i = 0; i < 6; i++) strand_tensor_release(t[i]);
}

TEST(api_calls_override_the_environment) {
  CHECK_OK(strand_leak_set_level(STRAND_LEAK_OFF, 0));
  CHECK(strand_leak_get_level() == STRAND_LEAK_OFF);
  strand_memory_set_limit(0);
  strand_memory_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_memory_get_stats(&st));
  CHECK(st.limit_bytes == 0);
  CHECK_OK(strand_log_set_level(STRAND_LOG_WARN));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_log_set_level((strand_log_level)42));
  strand_leak_set_report_at_exit(0);
}
