/* TensorProto files: reading ONNX test data, writing byte-for-byte what
 * onnx's serializer writes, round trips, and errors. */
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"

static const char *data(const char *name) {
  static char path[2][1024];
  static int slot;
  char *p = path[slot++ & 1];
  snprintf(p, sizeof path[0], "%s", test_source_path("tests/data/onnx"));
  size_t n = strlen(p);
  snprintf(p + n, sizeof path[0] - n, "/%s", name);
  return p;
}

static size_t read_all(const char *path, unsigned char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

TEST(onnx_test_data_is_read) {
  strand_tensor *t;
  char name[32] = "unchanged";
  REQUIRE_OK(strand_tensor_read_pb(data("input_0.pb"), &t, name, sizeof name));
  CHECK(strcmp(name, "input") == 0);
  strand_dtype dtype;
  const int64_t *dims;
  size_t rank;
  CHECK_OK(strand_tensor_dtype(t, &dtype));
  CHECK_OK(strand_tensor_shape(t, &dims, &rank));
  CHECK(dtype == STRAND_DTYPE_FLOAT32 && rank == 2 && dims[0] == 2 && dims[1] == 3);
  void *p;
  CHECK_OK(strand_tensor_data(t, &p));
  for (int i = 0; i < 6; i++) CHECK(((float *)p)[i] == (float)i / 4);
  strand_tensor_release(t);

  REQUIRE_OK(strand_tensor_read_pb(data("ids_typed.pb"), &t, NULL, 0));
  CHECK_OK(strand_tensor_data(t, &p));
  const int64_t *ids = p;
  CHECK(ids[0] == 1 && ids[1] == -2 && ids[3] == (int64_t)1 << 40);
  strand_tensor_release(t);
}

TEST(writing_matches_onnx_byte_for_byte) {
  strand_tensor *t;
  REQUIRE_OK(strand_tensor_read_pb(data("input_0.pb"), &t, NULL, 0));
  char out[] = "/tmp/strand_pb_XXXXXX";
  int fd = mkstemp(out);
  REQUIRE(fd >= 0);
  close(fd);
  CHECK_OK(strand_tensor_write_pb(t, out, "input"));
  unsigned char a[256], b[256];
  size_t na = read_all(data("input_0.pb"), a, sizeof a), nb = read_all(out, b, sizeof b);
  CHECK(na > 0 && na == nb && memcmp(a, b, na) == 0);
  strand_tensor_release(t);
  unlink(out);
}

TEST(round_trips_keep_dtype_shape_and_bytes) {
  static const struct {
    strand_dtype dtype;
    size_t rank;
    int64_t dims[3];
  } cases[] = {{STRAND_DTYPE_FLOAT16, 2, {2, 2}}, {STRAND_DTYPE_BOOL, 1, {5}},
               {STRAND_DTYPE_INT8, 3, {1, 2, 3}},  {STRAND_DTYPE_FLOAT64, 0, {0}},
               {STRAND_DTYPE_UINT64, 1, {0}},      {STRAND_DTYPE_BFLOAT16, 1, {3}}};
  char out[] = "/tmp/strand_pb_XXXXXX";
  int fd = mkstemp(out);
  REQUIRE(fd >= 0);
  close(fd);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    strand_tensor *t, *back;
    REQUIRE_OK(strand_tensor_create(cases[c].dtype, cases[c].dims, cases[c].rank, &t));
    void *p;
    size_t bytes;
    CHECK_OK(strand_tensor_data(t, &p));
    CHECK_OK(strand_tensor_byte_size(t, &bytes));
    for (size_t i = 0; i < bytes; i++) ((unsigned char *)p)[i] = (unsigned char)(i * 7 % 2);
    CHECK_OK(strand_tensor_write_pb(t, out, NULL));
    char name[8] = "x";
    CHECK_OK(strand_tensor_read_pb(out, &back, name, sizeof name));
    CHECK(name[0] == '\0');
    strand_dtype dtype;
    const int64_t *dims;
    size_t rank, back_bytes;
    void *q;
    CHECK_OK(strand_tensor_dtype(back, &dtype));
    CHECK_OK(strand_tensor_shape(back, &dims, &rank));
    CHECK_OK(strand_tensor_byte_size(back, &back_bytes));
    CHECK_OK(strand_tensor_data(back, &q));
    CHECK(dtype == cases[c].dtype && rank == cases[c].rank && back_bytes == bytes);
    for (size_t i = 0; i < rank; i++) CHECK(dims[i] == cases[c].dims[i]);
    CHECK(bytes == 0 || memcmp(p, q, bytes) == 0);
    strand_tensor_release(t);
    strand_tensor_release(back);
  }
  unlink(out);
}

TEST(tensor_file_errors) {
  strand_tensor *t = (strand_tensor *)0x1;
  char name[3] = "ab";
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT,
               strand_tensor_read_pb(data("input_0.pb"), &t, name, sizeof name));
  CHECK_MSG("the tensor's name \"input\" needs 6 bytes, name_size is 3");
  CHECK(strcmp(name, "ab") == 0 && t == (strand_tensor *)0x1);
  CHECK_STATUS(STRAND_E_IO, strand_tensor_read_pb(data("missing.pb"), &t, NULL, 0));
  CHECK_MSG("missing.pb\": No such file or directory");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, strand_tensor_read_pb(data("mlp.onnx"), &t, NULL, 0));
  CHECK_MSG("tensor file \"");
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_read_pb(NULL, &t, NULL, 0));
  strand_tensor *real;
  REQUIRE_OK(strand_tensor_create(STRAND_DTYPE_FLOAT32, NULL, 0, &real));
  CHECK_STATUS(STRAND_E_IO, strand_tensor_write_pb(real, "/nonexistent/dir/t.pb", NULL));
  CHECK_MSG("\"/nonexistent/dir/t.pb\"");
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_write_pb(real, NULL, NULL));
  CHECK_STATUS(STRAND_E_INVALID_ARGUMENT, strand_tensor_write_pb(NULL, "/tmp/x.pb", NULL));
  strand_tensor_release(real);
}

/* Thread safety: any — threads read one shared file and write files of
 * their own at the same time, a tensor made on one thread written by
 * another. */
static _Atomic int pb_thread_errors;
static _Atomic int pb_thread_index;

typedef struct {
  strand_tensor *shared;
  char input[1024]; /* data() keeps its paths in static buffers: made once */
} pb_threads;

static void *read_and_write_pb(void *arg) {
  pb_threads *job = arg;
  strand_tensor *shared = job->shared;
  int me = atomic_fetch_add(&pb_thread_index, 1);
  char path[256];
  snprintf(path, sizeof path, "/tmp/strand_pb_thread_%d_%d.pb", (int)getpid(), me);
  for (int i = 0; i < 50; i++) {
    strand_tensor *t = NULL, *back = NULL;
    char name[32];
    if (strand_tensor_read_pb(job->input, &t, name, sizeof name) != STRAND_OK ||
        strand_tensor_write_pb(shared, path, "shared") != STRAND_OK ||
        strand_tensor_read_pb(path, &back, name, sizeof name) != STRAND_OK ||
        strcmp(name, "shared") != 0) {
      atomic_fetch_add(&pb_thread_errors, 1);
    } else {
      void *a, *b;
      strand_tensor_data(shared, &a);
      strand_tensor_data(back, &b);
      if (memcmp(a, b, 6 * sizeof(float)) != 0) atomic_fetch_add(&pb_thread_errors, 1);
    }
    strand_tensor_release(t);
    strand_tensor_release(back);
  }
  unlink(path);
  return NULL;
}

TEST(threads_read_and_write_at_once) {
  pb_threads job;
  char name[32];
  snprintf(job.input, sizeof job.input, "%s", data("input_0.pb"));
  REQUIRE_OK(strand_tensor_read_pb(job.input, &job.shared, name, sizeof name));
  atomic_store(&pb_thread_errors, 0);
  test_run_threads(4, read_and_write_pb, &job);
  CHECK(atomic_load(&pb_thread_errors) == 0);
  strand_tensor_release(job.shared);
}
