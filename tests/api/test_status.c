/* Status texts, names, versions and the thread-local message. */
#include "test.h"

#include <pthread.h>

TEST(every_status_has_a_name_and_text) {
#define CHECK_ONE_(name, value, text)                                   \
  CHECK(strcmp(strand_strerror(STRAND_##name), text) == 0);             \
  CHECK(strcmp(strand_status_name(STRAND_##name), "STRAND_" #name) == 0);
  STRAND_STATUS_LIST(CHECK_ONE_)
#undef CHECK_ONE_
  CHECK(STRAND_OK == 0);
  CHECK(strcmp(strand_strerror((strand_status)999), "unknown status") == 0);
  CHECK(strcmp(strand_status_name((strand_status)-1), "STRAND_E_UNKNOWN") == 0);
}

TEST(version_matches_the_header) {
  CHECK(strcmp(strand_version(), STRAND_VERSION_STRING) == 0);
  CHECK(strand_version_number() == STRAND_VERSION_NUMBER);
}

static void *fail_on_other_thread(void *arg) {
  (void)arg;
  strand_tensor *t;
  int64_t shape[] = {-1};
  strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &t);
  return NULL;
}

TEST(messages_are_per_thread) {
  int64_t shape[] = {1LL << 62};
  strand_tensor *t;
  CHECK_STATUS(STRAND_E_SHAPE, strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &t));
  char mine[512];
  snprintf(mine, sizeof mine, "%s", strand_errmsg());
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, fail_on_other_thread, NULL) == 0);
  pthread_join(th, NULL);
  CHECK(strcmp(strand_errmsg(), mine) == 0); /* the other thread's failure is its own */
  CHECK(strstr(mine, "strand_tensor_create") != NULL);
}

TEST(kind_and_category_names) {
  CHECK(strcmp(strand_kind_name(STRAND_KIND_TENSOR), "tensor") == 0);
  CHECK(strcmp(strand_kind_name(STRAND_KIND_SESSION), "session") == 0);
  CHECK(strcmp(strand_kind_name((strand_kind)77), "unknown") == 0);
  CHECK(strcmp(strand_memory_category_name(STRAND_MEMORY_WEIGHTS), "weights") == 0);
  CHECK(strcmp(strand_memory_category_name((strand_memory_category)9), "unknown") == 0);
  CHECK(strcmp(strand_log_level_name(STRAND_LOG_DEBUG), "debug") == 0);
}
