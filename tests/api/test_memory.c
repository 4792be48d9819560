/* Memory accounting and the limit through the public header. */
#include "test.h"

#include "model_builder.h"
#include "session_from.h"

#include <unistd.h>

TEST(limit_refuses_with_a_clear_message_and_changes_nothing) {
  strand_memory_set_limit(1 << 20);
  strand_memory_stats before = {.struct_size = sizeof before};
  strand_memory_stats after = {.struct_size = sizeof after};
  CHECK_OK(strand_memory_get_stats(&before));
  int64_t big[] = {512, 1024}; /* 2 MiB of float32 */
  strand_tensor *t = NULL;
  CHECK_STATUS(STRAND_E_MEMORY_LIMIT, strand_tensor_create(STRAND_DTYPE_FLOAT32, big, 2, &t));
  CHECK_MSG("asked for 2.0 MiB (2097152 bytes) of tensor memory");
  CHECK_MSG("with 0 B in use");
  CHECK_MSG("the limit is 1.0 MiB (1048576 bytes)");
  CHECK(t == NULL);
  CHECK_OK(strand_memory_get_stats(&after));
  CHECK(after.total_live_bytes == before.total_live_bytes);
  CHECK(after.live_objects[STRAND_KIND_TENSOR] == before.live_objects[STRAND_KIND_TENSOR]);
  CHECK(after.failed_allocations == before.failed_allocations + 1);
  CHECK(after.limit_bytes == 1 << 20);

  int64_t small[] = {128, 1024}; /* 512 KiB fits */
  strand_tensor *a, *b = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, small, 2, &a));
  CHECK_STATUS(STRAND_E_MEMORY_LIMIT, strand_tensor_create(STRAND_DTYPE_FLOAT32, small, 2, &b));
  CHECK_MSG("in use");
  CHECK_OK(strand_memory_get_stats(&after));
  CHECK(after.live_bytes[STRAND_MEMORY_TENSOR] == 512 * 1024);
  strand_tensor_release(a);
  CHECK_OK(strand_memory_get_stats(&after));
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
  strand_memory_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_memory_get_stats(&st));
  CHECK(st.peak_bytes[STRAND_MEMORY_TENSOR] == 4000);
  CHECK(st.total_peak_bytes >= 4000);
  CHECK(st.live_bytes[STRAND_MEMORY_TENSOR] == 0);
  strand_memory_reset_peaks();
  CHECK_OK(strand_memory_get_stats(&st));
  CHECK(st.peak_bytes[STRAND_MEMORY_TENSOR] == 0);
}

/* True when every byte of `p` from `from` to `to` is `sentinel`. */
static int bytes_are(const void *p, size_t from, size_t to, unsigned char sentinel) {
  for (size_t i = from; i < to; i++)
    if (((const unsigned char *)p)[i] != sentinel) return 0;
  return 1;
}

TEST(stats_refuse_a_null_out) {
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_memory_get_stats(NULL));
  CHECK_MSG("strand_memory_get_stats: out is NULL");
}

/* A struct_size left unset (0), or too small to hold `live_bytes`, is
 * refused with a message naming the field, and the struct is untouched. */
TEST(stats_refuse_a_struct_size_unset_or_too_small) {
  strand_memory_stats unset;
  memset(&unset, 0, sizeof unset);
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_memory_get_stats(&unset));
  CHECK_MSG("out->struct_size is 0");
  CHECK_MSG("set it to sizeof(strand_memory_stats)");
  CHECK(bytes_are(&unset, 0, sizeof unset, 0));

  const size_t too_small[] = {sizeof(size_t),
                              offsetof(strand_memory_stats, live_bytes) + sizeof(uint64_t),
                              offsetof(strand_memory_stats, peak_bytes) - 1};
  for (size_t i = 0; i < sizeof too_small / sizeof too_small[0]; i++) {
    strand_memory_stats st;
    memset(&st, 0xab, sizeof st);
    st.struct_size = too_small[i];
    CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_memory_get_stats(&st));
    CHECK_MSG("set it to sizeof(strand_memory_stats)");
    CHECK(st.struct_size == too_small[i]);
    CHECK(bytes_are(&st, sizeof st.struct_size, sizeof st, 0xab));
  }
}

/* A caller built against an older, smaller struct gets exactly the prefix
 * it has room for: the bytes past it stay as they were, and struct_size
 * stays at its size. */
TEST(stats_fill_only_an_older_callers_prefix) {
  int64_t shape[] = {250};
  strand_tensor *t = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &t));
  const size_t old_size = offsetof(strand_memory_stats, limit_bytes);
  strand_memory_stats old;
  memset(&old, 0xab, sizeof old);
  old.struct_size = old_size;
  CHECK_OK(strand_memory_get_stats(&old));
  CHECK(old.struct_size == old_size);
  CHECK(old.live_bytes[STRAND_MEMORY_TENSOR] == 1000);
  CHECK(old.peak_bytes[STRAND_MEMORY_TENSOR] >= 1000);
  CHECK(old.total_live_bytes >= 1000 && old.total_peak_bytes >= old.total_live_bytes);
  CHECK(bytes_are(&old, old_size, sizeof old, 0xab));
  strand_tensor_release(t);
}

/* A caller built against a newer, larger struct gets every field this
 * version has, struct_size set back to this version's size, and nothing
 * written past it. */
TEST(stats_tell_a_newer_caller_what_was_filled) {
  strand_memory_stats now = {.struct_size = sizeof now};
  CHECK_OK(strand_memory_get_stats(&now));
  CHECK(now.struct_size == sizeof(strand_memory_stats));
  struct {
    strand_memory_stats stats;
    uint64_t later;
  } newer;
  memset(&newer, 0xcd, sizeof newer);
  newer.stats.struct_size = sizeof newer;
  CHECK_OK(strand_memory_get_stats(&newer.stats));
  CHECK(newer.stats.struct_size == sizeof(strand_memory_stats));
  CHECK(newer.stats.total_live_objects == 0 && newer.stats.total_live_bytes == 0);
  CHECK(newer.stats.limit_bytes == now.limit_bytes);
  CHECK(newer.stats.failed_allocations == now.failed_allocations);
  CHECK(newer.later == 0xcdcdcdcdcdcdcdcdull);
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

/* x [rows, 1024] -> `nodes` Neg nodes -> Shape -> y: big values inside,
 * a small output. */
static strand_session *neg_chain(int nodes) {
  mb g = mb_new();
  mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "rows,1024");
  char in[32] = "x", out[32], name[32];
  for (int i = 0; i < nodes; i++) {
    snprintf(name, sizeof name, "n%d", i);
    snprintf(out, sizeof out, "v%d", i);
    mb_add_node(&g, name, "Neg", in, out);
    snprintf(in, sizeof in, "%s", out);
  }
  mb_add_node(&g, "shape", "Shape", in, "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 7, NULL);
  mb m = mb_model(17, &g);
  return session_from(&m);
}
#endif

/* A session's working memory (the planning run's values, the arenas)
 * leaves the process's resident set when the session is released, even
 * after a large free has made glibc raise its mmap threshold (blocks below
 * it would otherwise come from malloc's heaps and stay there). Skipped
 * under AddressSanitizer, whose allocator strand then uses for every
 * block. */
TEST(a_released_session_gives_its_memory_back) {
#if defined(__SANITIZE_ADDRESS__)
  fprintf(stderr, "    skipped under AddressSanitizer\n");
#else
  int64_t warm[] = {(30 << 20) / 4}; /* 30 MiB: raises glibc's threshold */
  strand_tensor *w = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, warm, 1, &w));
  strand_tensor_release(w);
  strand_session *s = neg_chain(8);
  REQUIRE(s);
  int64_t dims[] = {4096, 1024}; /* 16 MiB a value */
  strand_tensor *x = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, dims, 2, &x));
  long before = resident_bytes();
  const char *name = "x";
  for (int i = 0; i < 2; i++) { /* the planning run, then a planned one */
    strand_tensor *y = NULL;
    CHECK_OK(strand_session_run(s, &name, (const strand_tensor *const *)&x, 1, NULL, &y, 1));
    strand_tensor_release(y);
  }
  long during = resident_bytes();
  strand_session_release(s);
  long after = resident_bytes();
  strand_tensor_release(x);
  fprintf(stderr, "    resident: %ld MiB before the runs, %ld MiB after them, %ld MiB once "
          "the session is released\n", before >> 20, during >> 20, after >> 20);
  CHECK(during - before >= (long)(32 << 20)); /* the arena: two 16 MiB values */
  CHECK(after - before < (long)(8 << 20));
#endif
}
