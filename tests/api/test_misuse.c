/* Misuse through the public header: double release, use after release,
 * foreign handles — detected, reported and counted, never obeyed. */
#include "test.h"

static int logged;
static char last_log[512];
static void capture_log(strand_log_level level, const char *message, void *ctx) {
  (void)ctx;
  if (level == STRAND_LOG_ERROR) {
    logged++;
    snprintf(last_log, sizeof last_log, "%s", message);
  }
}

TEST(double_release_is_detected_and_logged) {
  strand_log_set_callback(capture_log, NULL);
  logged = 0;
  strand_tensor *t;
  int64_t shape[] = {4};
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &t));
  uint64_t before = strand_misuse_count();
  strand_tensor_release(t);
  strand_tensor_release(t); /* the second release must not free anything */
  CHECK(strand_misuse_count() == before + 1);
  CHECK(logged == 1);
  CHECK(strstr(last_log, "already released") != NULL);
  CHECK(strstr(last_log, "strand_tensor_release") != NULL);
  strand_log_set_callback(NULL, NULL);
}

TEST(use_after_release_is_misuse) {
  strand_log_set_level(STRAND_LOG_OFF);
  strand_tensor *t;
  int64_t shape[] = {2, 2};
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_INT32, shape, 2, &t));
  strand_tensor_release(t);
  uint64_t before = strand_misuse_count();
  strand_dtype dt = STRAND_DTYPE_UNDEFINED;
  void *data = NULL;
  CHECK_STATUS(STRAND_E_MISUSE, strand_tensor_dtype(t, &dt));
  CHECK_MSG("already released");
  CHECK(dt == STRAND_DTYPE_UNDEFINED);
  CHECK_STATUS(STRAND_E_MISUSE, strand_tensor_data(t, &data));
  CHECK(data == NULL);
  CHECK_STATUS(STRAND_E_MISUSE, strand_tensor_retain(t));
  CHECK(strand_misuse_count() == before + 3);
  strand_log_set_level(STRAND_LOG_WARN);
}

TEST(foreign_handles_are_misuse) {
  strand_log_set_level(STRAND_LOG_OFF);
  uint64_t not_a_tensor[32] = {0};
  strand_tensor *fake = (strand_tensor *)not_a_tensor;
  size_t bytes = 7;
  CHECK_STATUS(STRAND_E_MISUSE, strand_tensor_byte_size(fake, &bytes));
  CHECK_MSG("is not a strand tensor handle");
  CHECK(bytes == 7);
  uint64_t before = strand_misuse_count();
  strand_tensor_release(fake);
  CHECK(strand_misuse_count() == before + 1);
  strand_tensor_release(NULL); /* a no-op, not misuse */
  CHECK(strand_misuse_count() == before + 1);
  strand_log_set_level(STRAND_LOG_WARN);
}

TEST(many_released_handles_stay_detectable_for_a_while) {
  strand_log_set_level(STRAND_LOG_OFF);
  enum { N = 512 };
  strand_tensor *ts[N];
  for (int i = 0; i < N; i++) REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_UINT8, NULL, 0, &ts[i]));
  for (int i = 0; i < N; i++) strand_tensor_release(ts[i]);
  uint64_t before = strand_misuse_count();
  for (int i = 0; i < N; i++) {
    size_t n;
    CHECK_STATUS(STRAND_E_MISUSE, strand_tensor_element_count(ts[i], &n));
  }
  CHECK(strand_misuse_count() == before + N);
  strand_log_set_level(STRAND_LOG_WARN);
}
