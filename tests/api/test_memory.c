/* Memory accounting and the limit through the public header. */
#include "test.h"

#include <unistd.h>

TEST(limit_refuses_with_a_clear_message_and_changes_nothing) {
  strand_memory_set_limit(1 << 20);
  strand_memory_stats before, after;
  strand_memory_get_stats(&before);
  int64_t big[] = {512, 1024}; /* 2 MiB of float32 */
  strand_tensor *t = NULL;
  CHECK_STATUS(STRAND_E_MEMORY_LIMIT, strand_tensor_create(STRAND_DTYPE_FLOAT32, big, 2, &t));
  CHECK_MSG("asked for 2.0 MiB (2097152 bytes) of tensor memory");
  CHECK_MSG("with 0 B in use");
  CHECK_MSG("the limit is 1.0 MiB (1048576 bytes)");
  CHECK(t == NULL);
  strand_memory_get_stats(&after);
  CHECK(after.total_live_bytes == before.total_live_bytes);
  CHECK(after.live_objects[STRAND_KIND_TENSOR] == before.live_objects[STRAND_KIND_TENSOR]);
  CHECK(after.failed_allocations == before.failed_allocations + 1);
  CHECK(after.limit_bytes == 1 << 20);

  int64_t small[] = {128, 1024}; /* 512 KiB fits */
  strand_tensor *a, *b = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, small, 2, &a));
  CHECK_STATUS(STRAND_E_MEMORY_LIMIT, strand_tensor_create(STRAND_DTYPE_FLOAT32, small, 2, &b));
  CHECK_MSG("in use");
  strand_memory_get_stats(&after);
  CHECK(after.live_bytes[STRAND_MEMORY_TENSOR] == 512 * 1024);
  strand_tensor_release(a);
  strand_memory_get_stats(&after);
  CHECK(after.live_bytes[STRAND_MEMORY_TENSOR] == 0);
  CHECK(after.total_live_bytes == 0);
  CHECK(after.peak_bytes[STRAND_MEMORY_TENSOR] >= 512 * 1024);
  strand_memory_set_limit(0);
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, big, 2, &t));
  strand_tensor_release(t);
}

TEST(limit_below_current_use_keeps_memory_and_refuses_more) {
  int64_t shape[] = {1024};
  strand_tensor *a, *b = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT64, shape, 1, &a));
  strand_memory_set_limit(100);
  CHECK_STATUS(STRAND_E_MEMORY_LIMIT, strand_tensor_create(STRAND_DTYPE_UINT8, shape, 1, &b));
  strand_tensor_release(a);
  strand_memory_set_limit(0);
}

TEST(peaks_follow_use_and_reset) {
  strand_memory_reset_peaks();
  int64_t shape[] = {1000};
  strand_tensor *a;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_INT32, shape, 1, &a));
  strand_tensor_release(a);
  strand_memory_stats st;
  strand_memory_get_stats(&st);
  CHECK(st.peak_bytes[STRAND_MEMORY_TENSOR] == 4000);
  CHECK(st.total_peak_bytes >= 4000);
  CHECK(st.live_bytes[STRAND_MEMORY_TENSOR] == 0);
  strand_memory_reset_peaks();
  strand_memory_get_stats(&st);
  CHECK(st.peak_bytes[STRAND_MEMORY_TENSOR] == 0);
  strand_memory_get_stats(NULL);
}

TEST(byte_counts_parse_with_suffixes) {
  struct { const char *text; uint64_t value; } good[] = {
      {"0", 0}, {"512", 512}, {"64K", 65536}, {"64k", 65536}, {"3M", 3ULL << 20},
      {"2G", 2ULL << 30}, {"1T", 1ULL << 40}, {"1.5G", 3ULL << 29}, {"10MiB", 10ULL << 20},
      {"7B", 7}, {" 8K ", 8192}, {"18446744073709551615", UINT64_MAX}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    uint64_t v = 1;
    CHECK_OK(strand_parse_bytes(good[i].text, &v));
    if (v != good[i].value)
      test_fail(__FILE__, __LINE__, "\"%s\" parsed as %llu", good[i].text, (unsigned long long)v);
  }
  const char *bad[] = {"", "K", "-1", "12Q", "1..5G", "99999999999999999999", "20000000T", "0x10"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t v = 42;
    CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_parse_bytes(bad[i], &v));
    CHECK(v == 42);
  }
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_parse_bytes(NULL, NULL));
}

TEST(fail_nth_fails_exactly_that_allocation) {
  int64_t shape[] = {8};
  strand_tensor *a = NULL, *b = NULL, *c = NULL;
  strand_memory_fail_nth(3); /* a: data + shell; b: data fails */
  CHECK_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &a));
  CHECK_STATUS(STRAND_E_OUT_OF_MEMORY, strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &b));
  CHECK_MSG("injected");
  CHECK_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &c)); /* disarmed after firing */
  CHECK(b == NULL);
  strand_tensor_release(a);
  strand_tensor_release(c);
}

#if !defined(__SANITIZE_ADDRESS__)
/* Resident set of this process, in bytes (Linux). */
static long resident_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}
#endif

/* Large tensors (and arenas, which take the same path) give their pages
 * back when released, even after a large free has made glibc raise its
 * mmap threshold (blocks below it would otherwise come from malloc's heaps
 * and stay resident). Skipped under AddressSanitizer, whose allocator
 * strand then uses for every block. */
TEST(large_blocks_go_back_to_the_system_when_released) {
#if defined(__SANITIZE_ADDRESS__)
  fprintf(stderr, "    skipped under AddressSanitizer\n");
#else
  int64_t warm[] = {(30 << 20) / 4}; /* 30 MiB: raises glibc's threshold */
  strand_tensor *w = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, warm, 1, &w));
  strand_tensor_release(w);
  enum { N = 16 };
  strand_tensor *t[N];
  long before = resident_bytes();
  int64_t dims[] = {(8 << 20) / 4}; /* 8 MiB each */
  for (int i = 0; i < N; i++) {
    REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 1, &t[i]));
    void *data;
    REQUIRE_OK(strand_tensor_data(t[i], &data));
    memset(data, 1, 8 << 20);
  }
  long full = resident_bytes();
  for (int i = 0; i < N; i++) strand_tensor_release(t[i]);
  long after = resident_bytes();
  fprintf(stderr, "    resident: %ld MiB before, %ld MiB with 128 MiB of tensors, %ld MiB after\n",
          before >> 20, full >> 20, after >> 20);
  CHECK(full - before >= (long)(120 << 20));
  CHECK(after - before < (long)(16 << 20));
#endif
}
