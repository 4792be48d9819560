/* Tensors through the public header: creation, wrapping, queries, overflow
 * and bad-argument checks, and every allocation failure. */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

TEST(create_reports_dtype_shape_size_and_zeroed_data) {
  int64_t shape[] = {2, 3, 4};
  strand_tensor *t = NULL;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 3, &t));
  strand_dtype dt;
  CHECK_OK(strand_tensor_dtype(t, &dt));
  CHECK(dt == STRAND_DTYPE_FLOAT32);
  const int64_t *dims;
  size_t rank, count, bytes;
  CHECK_OK(strand_tensor_shape(t, &dims, &rank));
  CHECK(rank == 3 && dims[0] == 2 && dims[1] == 3 && dims[2] == 4);
  CHECK_OK(strand_tensor_element_count(t, &count));
  CHECK(count == 24);
  CHECK_OK(strand_tensor_byte_size(t, &bytes));
  CHECK(bytes == 96);
  void *data;
  CHECK_OK(strand_tensor_data(t, &data));
  CHECK(data != NULL && ((uintptr_t)data % 64) == 0);
  for (size_t i = 0; i < 24; i++) CHECK(((float *)data)[i] == 0.0f);
  strand_memory_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_memory_get_stats(&st));
  CHECK(st.live_bytes[STRAND_MEMORY_TENSOR] == 96);
  CHECK(st.live_objects[STRAND_KIND_TENSOR] == 1);
  strand_tensor_release(t);
}

TEST(every_dtype_has_its_size_and_name) {
  struct { strand_dtype dt; size_t size; const char *name; } expect[] = {
      {STRAND_DTYPE_FLOAT32, 4, "float32"}, {STRAND_DTYPE_FLOAT16, 2, "float16"},
      {STRAND_DTYPE_BFLOAT16, 2, "bfloat16"}, {STRAND_DTYPE_FLOAT64, 8, "float64"},
      {STRAND_DTYPE_INT8, 1, "int8"}, {STRAND_DTYPE_INT16, 2, "int16"},
      {STRAND_DTYPE_INT32, 4, "int32"}, {STRAND_DTYPE_INT64, 8, "int64"},
      {STRAND_DTYPE_UINT8, 1, "uint8"}, {STRAND_DTYPE_UINT16, 2, "uint16"},
      {STRAND_DTYPE_UINT32, 4, "uint32"}, {STRAND_DTYPE_UINT64, 8, "uint64"},
      {STRAND_DTYPE_BOOL, 1, "bool"}};
  for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
    CHECK(strand_dtype_size(expect[i].dt) == expect[i].size);
    CHECK(strcmp(strand_dtype_name(expect[i].dt), expect[i].name) == 0);
    int64_t shape[] = {5};
    strand_tensor *t;
    REQUIRE_OK(strand_tensor_create(expect[i].dt, shape, 1, &t));
    size_t bytes;
    CHECK_OK(strand_tensor_byte_size(t, &bytes));
    CHECK(bytes == 5 * expect[i].size);
    strand_tensor_release(t);
  }
  CHECK(strand_dtype_size((strand_dtype)8) == 0); /* ONNX string: not a strand dtype */
  CHECK(strcmp(strand_dtype_name((strand_dtype)99), "undefined") == 0);
}

TEST(scalar_and_empty_tensors) {
  strand_tensor *s, *e;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_INT64, NULL, 0, &s));
  const int64_t *dims = (const int64_t *)1;
  size_t rank = 9, count, bytes;
  CHECK_OK(strand_tensor_shape(s, &dims, &rank));
  CHECK(rank == 0 && dims == NULL);
  CHECK_OK(strand_tensor_element_count(s, &count));
  CHECK(count == 1);
  int64_t shape[] = {3, 0, 1LL << 62};
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 3, &e));
  CHECK_OK(strand_tensor_byte_size(e, &bytes));
  CHECK(bytes == 0);
  void *data = (void *)1;
  CHECK_OK(strand_tensor_data(e, &data));
  CHECK(data == NULL);
  strand_tensor_release(s);
  strand_tensor_release(e);
}

TEST(bad_arguments_are_named_and_leave_out_untouched) {
  strand_tensor *sentinel = (strand_tensor *)0x1234, *t = sentinel;
  int64_t ok[] = {2, 2}, negative[] = {2, -3};
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_create((strand_dtype)8, ok, 2, &t));
  CHECK_MSG("not a strand dtype");
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_create(STRAND_DTYPE_FLOAT32, negative, 2, &t));
  CHECK_MSG("dimension 1 is -3");
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_create(STRAND_DTYPE_FLOAT32, NULL, 2, &t));
  CHECK_MSG("shape is NULL");
  int64_t big[STRAND_MAX_RANK + 1];
  for (int i = 0; i <= STRAND_MAX_RANK; i++) big[i] = 1;
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT,
               strand_tensor_create(STRAND_DTYPE_FLOAT32, big, STRAND_MAX_RANK + 1, &t));
  CHECK_MSG("exceeds the maximum");
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_create(STRAND_DTYPE_FLOAT32, ok, 2, NULL));
  CHECK(t == sentinel);
  strand_dtype dt;
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_dtype(NULL, &dt));
  CHECK_MSG("NULL");
}

TEST(absurd_shapes_overflow_cleanly) {
  strand_tensor *t = NULL;
  int64_t huge[] = {1LL << 62};
  CHECK_STATUS(STRAND_E_SHAPE, strand_tensor_create(STRAND_DTYPE_FLOAT32, huge, 1, &t));
  CHECK_MSG("more bytes than memory can address");
  int64_t product[] = {1LL << 31, 1LL << 31, 1LL << 31};
  CHECK_STATUS(STRAND_E_SHAPE, strand_tensor_create(STRAND_DTYPE_INT8, product, 3, &t));
  int64_t max[] = {INT64_MAX, 2};
  CHECK_STATUS(STRAND_E_SHAPE, strand_tensor_create(STRAND_DTYPE_BOOL, max, 2, &t));
  CHECK(t == NULL);
  strand_memory_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_memory_get_stats(&st));
  CHECK(st.total_live_bytes == 0);
}

static _Atomic int released_calls;
static void *released_data;
static void count_release(void *data, void *context) {
  released_data = data;
  atomic_fetch_add((_Atomic int *)context, 1);
}

TEST(wrap_borrows_without_copy_and_calls_release_once) {
  float buffer[6] = {1, 2, 3, 4, 5, 6};
  int64_t shape[] = {2, 3};
  strand_tensor *t;
  atomic_store(&released_calls, 0);
  REQUIRE_OK(strand_tensor_wrap(STRAND_DTYPE_FLOAT32, shape, 2, buffer, sizeof buffer,
                                count_release, (void *)&released_calls, &t));
  void *data;
  CHECK_OK(strand_tensor_data(t, &data));
  CHECK(data == buffer);
  strand_memory_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_memory_get_stats(&st));
  CHECK(st.live_bytes[STRAND_MEMORY_TENSOR] == 0); /* the host's bytes are not strand's */
  CHECK_OK(strand_tensor_retain(t));
  strand_tensor_release(t);
  CHECK(atomic_load(&released_calls) == 0);
  strand_tensor_release(t);
  CHECK(atomic_load(&released_calls) == 1);
  CHECK(released_data == buffer);
}

TEST(wrap_failure_never_runs_the_callback) {
  float buffer[6];
  int64_t shape[] = {2, 3};
  strand_tensor *t = NULL;
  atomic_store(&released_calls, 0);
  CHECK_STATUS(STRAND_E_SHAPE, strand_tensor_wrap(STRAND_DTYPE_FLOAT32, shape, 2, buffer, 20,
                                                  count_release, (void *)&released_calls, &t));
  CHECK_MSG("holds 20 bytes but 6 elements of float32 need 24");
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_wrap(STRAND_DTYPE_FLOAT32, shape, 2, NULL,
                                                             24, count_release, NULL, &t));
  strand_memory_fail_nth(1);
  CHECK_STATUS(STRAND_E_OUT_OF_MEMORY, strand_tensor_wrap(STRAND_DTYPE_FLOAT32, shape, 2, buffer,
                                                          24, count_release,
                                                          (void *)&released_calls, &t));
  CHECK(t == NULL);
  CHECK(atomic_load(&released_calls) == 0);
}

static void *release_elsewhere(void *arg) {
  strand_tensor_release(arg);
  return NULL;
}

TEST(wrapped_release_callback_runs_on_the_releasing_thread) {
  static float buffer[4];
  int64_t shape[] = {4};
  strand_tensor *t;
  atomic_store(&released_calls, 0);
  REQUIRE_OK(strand_tensor_wrap(STRAND_DTYPE_FLOAT32, shape, 1, buffer, sizeof buffer,
                                count_release, (void *)&released_calls, &t));
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, release_elsewhere, t) == 0);
  pthread_join(th, NULL);
  CHECK(atomic_load(&released_calls) == 1);
}

/* A scripted sequence of API calls; every step's failure is handled. */
static int count_visits(const strand_leak_site *s, void *ctx) {
  (void)s;
  (*(int *)ctx)++;
  return 0;
}

static strand_status report_script(void) {
  strand_tensor *a = NULL, *b = NULL;
  int64_t shape[] = {3};
  int visits = 0;
  strand_status st = strand_leak_set_origin("sweep");
  if (st == STRAND_OK) st = strand_tensor_create(STRAND_DTYPE_FLOAT32, shape, 1, &a);
  if (st == STRAND_OK) st = strand_tensor_create(STRAND_DTYPE_UINT8, shape, 1, &b);
  if (st == STRAND_OK) st = strand_leak_report(count_visits, &visits);
  if (st != STRAND_OK && visits != 0) st = STRAND_E_INTERNAL; /* failed reports visit nothing */
  strand_tensor_release(a);
  strand_tensor_release(b);
  strand_leak_set_origin(NULL);
  return st;
}

TEST(every_allocation_failure_is_clean) {
  strand_leak_level before = strand_leak_get_level();
  REQUIRE_OK(strand_leak_set_level(STRAND_LEAK_ALL, 0));
  int failures = 0;
  for (uint64_t n = 1; n < 1000; n++) {
    strand_memory_stats ms = {.struct_size = sizeof ms};
    CHECK_OK(strand_memory_get_stats(&ms));
    uint64_t refused_before = ms.failed_allocations;
    strand_memory_fail_nth(n);
    strand_status st = report_script();
    strand_memory_fail_nth(0);
    CHECK_OK(strand_memory_get_stats(&ms));
    if (ms.total_live_bytes != 0 || ms.total_live_objects != 0) {
      test_fail(__FILE__, __LINE__, "failing allocation %llu left %llu bytes", (unsigned long long)n,
                (unsigned long long)ms.total_live_bytes);
      break;
    }
    if (ms.failed_allocations == refused_before) { /* the script ran past its last allocation */
      CHECK_OK(st);
      break;
    }
    /* A trace that cannot be allocated is skipped, not an error. */
    CHECK(st == STRAND_OK || st == STRAND_E_OUT_OF_MEMORY);
    failures++;
  }
  CHECK(failures >= 10); /* origin, 2 tensors x (data, shell, trace), report tables */
  strand_leak_set_level(before, 0);
}
