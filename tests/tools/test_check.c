/*
 * test_check.c — `strand check`: builds small ONNX test-data directories
 * (model.onnx, test_data_set_N/input_K.pb, output_K.pb) and runs the strand
 * program over them, checking its lines and exit statuses: PASS, FAIL on a
 * value, a shape or a dtype, NaN equal to NaN, tolerances and their flags,
 * inputs matched by name, UNSUPPORTED for an op without a kernel, ERROR for
 * a broken directory, --json, --quiet, usage errors.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model_builder.h"
#include "test.h"

static char root[4096];

/* A fresh directory for this program's fixtures. */
static const char *fixture_root(void) {
  if (!root[0]) {
    snprintf(root, sizeof root, "%s/test-check-XXXXXX", STRAND_BINARY_DIR);
    if (!mkdtemp(root)) {
      snprintf(root, sizeof root, "/tmp/strand-test-check-XXXXXX");
      if (!mkdtemp(root)) root[0] = '\0';
    }
  }
  return root;
}

static void path_join(char *out, size_t size, const char *a, const char *b) {
  snprintf(out, size, "%s/%s", a, b);
}

/* Makes ROOT/name and ROOT/name/test_data_set_0; writes model bytes there. */
static int make_case(const char *name, mb *model, char *dir, size_t size) {
  path_join(dir, size, fixture_root(), name);
  char sub[4096], file[4096];
  path_join(sub, sizeof sub, dir, "test_data_set_0");
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) return -1;
  if (mkdir(sub, 0777) != 0 && errno != EEXIST) return -1;
  path_join(file, sizeof file, dir, "model.onnx");
  int rc = mb_write_file(model, file);
  mb_free(model);
  return rc;
}

/* A model: y = OP(a, b) over float32 (or int64 when `elem` is 7) [2,3]. */
static mb binary_model(const char *op, int elem) {
  mb g = mb_new();
  mb_str(&g, MB_GRAPH_NAME, "g");
  mb_value_info(&g, MB_GRAPH_INPUT, "a", elem, "2,3");
  mb_value_info(&g, MB_GRAPH_INPUT, "b", elem, "2,3");
  mb_add_node(&g, "n", op, "a,b", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", elem, "2,3");
  return mb_model(17, &g);
}

/* Writes a tensor of dtype/shape with the given values as DIR/test_data_set_0/FILE. */
static int write_pb(const char *dir, const char *file, const char *name, strand_dtype dtype,
                    const int64_t *shape, size_t rank, const void *values) {
  strand_tensor *t = NULL;
  if (strand_tensor_create(dtype, shape, rank, &t) != STRAND_OK) return -1;
  size_t bytes = 0;
  void *data = NULL;
  strand_tensor_byte_size(t, &bytes);
  strand_tensor_data(t, &data);
  if (bytes) memcpy(data, values, bytes);
  char path[4096];
  snprintf(path, sizeof path, "%s/test_data_set_0/%s", dir, file);
  strand_status st = strand_tensor_write_pb(t, path, name);
  strand_tensor_release(t);
  return st == STRAND_OK ? 0 : -1;
}

static const int64_t shape23[] = {2, 3};
static const float a_values[] = {1, -2, 3.5f, 0, 10, -7};
static const float b_values[] = {0.5f, 4, -1, 2, 0.25f, 7};

/* A float Add case whose expected output is `expected` (6 values, float32 [2,3]). */
static int add_case(const char *name, const float *expected, char *dir, size_t size) {
  mb m = binary_model("Add", 1);
  if (make_case(name, &m, dir, size) != 0) return -1;
  if (write_pb(dir, "input_0.pb", "a", STRAND_DTYPE_FLOAT32, shape23, 2, a_values) != 0) return -1;
  if (write_pb(dir, "input_1.pb", "b", STRAND_DTYPE_FLOAT32, shape23, 2, b_values) != 0) return -1;
  return write_pb(dir, "output_0.pb", "y", STRAND_DTYPE_FLOAT32, shape23, 2, expected);
}

static void sum_values(float *out) {
  for (int i = 0; i < 6; i++) out[i] = a_values[i] + b_values[i];
}

/* Runs `strand ARGS` and returns its exit status (-1 when it did not exit
 * normally); its stdout and stderr together land in `out`. */
static int run_strand(const char *args, char *out, size_t size) {
  char command[16384];
  snprintf(command, sizeof command, "%s/strand %s 2>&1", STRAND_BINARY_DIR, args);
  out[0] = '\0';
  FILE *p = popen(command, "r");
  if (!p) return -1;
  size_t n = fread(out, 1, size - 1, p);
  out[n] = '\0';
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define CHECK_HAS(text, needle)                                                                 \
  do {                                                                                          \
    if (!strstr((text), (needle)))                                                              \
      test_fail(__FILE__, __LINE__, "output lacks \"%s\":\n%s", (needle), (text));              \
  } while (0)

static char out[65536];

TEST(program_exists) {
  char path[4096];
  snprintf(path, sizeof path, "%s/strand", STRAND_BINARY_DIR);
  REQUIRE(access(path, X_OK) == 0);
  REQUIRE(fixture_root()[0]);
}

TEST(pass_and_summary) {
  char dir[4096], args[8192];
  float sum[6];
  sum_values(sum);
  REQUIRE(add_case("add_pass", sum, dir, sizeof dir) == 0);
  snprintf(args, sizeof args, "check %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 0);
  CHECK_HAS(out, "PASS add_pass (1 data set, worst |err| 0 in output \"y\")");
  CHECK_HAS(out, "check: 1 passed, 0 failed, 0 unsupported");
}

TEST(fail_on_a_value) {
  char dir[4096], args[8192];
  float sum[6];
  sum_values(sum);
  sum[4] = 10.5f; /* 10 + 0.25 = 10.25 */
  REQUIRE(add_case("add_value", sum, dir, sizeof dir) == 0);
  snprintf(args, sizeof args, "check %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 1);
  CHECK_HAS(out, "FAIL add_value: output \"y\" [2,3]: element 4 [1,1]: got 10.25 expected 10.5 "
                 "(|err| 0.25 > tol 0.00106)");
  CHECK_HAS(out, "check: 0 passed, 1 failed, 0 unsupported");
  /* A looser tolerance lets it pass, in either spelling of the flag. */
  snprintf(args, sizeof args, "check --rtol 0.1 %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 0);
  CHECK_HAS(out, "PASS add_value");
  snprintf(args, sizeof args, "check %s --atol=0.3", dir);
  CHECK(run_strand(args, out, sizeof out) == 0);
  CHECK_HAS(out, "worst |err| 0.25 in output \"y\"");
}

TEST(tolerance_edges) {
  char dir[4096], args[8192];
  float sum[6];
  sum_values(sum);
  sum[0] = 1.5f + 1e-5f; /* within atol 1e-5 + rtol 1e-4 * 1.5 */
  sum[5] = 0.0f + 9e-6f; /* within atol */
  REQUIRE(add_case("add_close", sum, dir, sizeof dir) == 0);
  snprintf(args, sizeof args, "check %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 0);
  snprintf(args, sizeof args, "check --rtol 0 --atol 0 %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 1);
  CHECK_HAS(out, "2 of 6 elements differ");
}

TEST(nan_equals_nan_and_infinities_must_match) {
  char dir[4096], args[8192];
  float a[6], b[6], y[6];
  memcpy(a, a_values, sizeof a);
  memcpy(b, b_values, sizeof b);
  a[1] = (float)NAN;
  a[2] = (float)INFINITY;
  for (int i = 0; i < 6; i++) y[i] = a[i] + b[i];
  mb m = binary_model("Add", 1);
  REQUIRE(make_case("add_nan", &m, dir, sizeof dir) == 0);
  REQUIRE(write_pb(dir, "input_0.pb", "a", STRAND_DTYPE_FLOAT32, shape23, 2, a) == 0);
  REQUIRE(write_pb(dir, "input_1.pb", "b", STRAND_DTYPE_FLOAT32, shape23, 2, b) == 0);
  REQUIRE(write_pb(dir, "output_0.pb", "y", STRAND_DTYPE_FLOAT32, shape23, 2, y) == 0);
  snprintf(args, sizeof args, "check %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 0);
  CHECK_HAS(out, "PASS add_nan");
  /* An expected finite value where strand gives infinity fails, whatever the tolerance. */
  y[2] = 1e30f;
  REQUIRE(write_pb(dir, "output_0.pb", "y", STRAND_DTYPE_FLOAT32, shape23, 2, y) == 0);
  snprintf(args, sizeof args, "check --rtol 1e9 %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 1);
  CHECK_HAS(out, "element 2 [0,2]: got inf expected 1.00000002e+30 (not equal)");
}

TEST(fail_on_shape_and_dtype) {
  char dir[4096], args[8192];
  float sum[6];
  double sum64[6];
  sum_values(sum);
  for (int i = 0; i < 6; i++) sum64[i] = sum[i];
  static const int64_t shape32[] = {3, 2};
  REQUIRE(add_case("add_shape", sum, dir, sizeof dir) == 0);
  REQUIRE(write_pb(dir, "output_0.pb", "y", STRAND_DTYPE_FLOAT32, shape32, 2, sum) == 0);
  snprintf(args, sizeof args, "check %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 1);
  CHECK_HAS(out, "FAIL add_shape: output \"y\": shape [2,3], expected [3,2]");

  REQUIRE(add_case("add_dtype", sum, dir, sizeof dir) == 0);
  REQUIRE(write_pb(dir, "output_0.pb", "y", STRAND_DTYPE_FLOAT64, shape23, 2, sum64) == 0);
  snprintf(args, sizeof args, "check %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 1);
  CHECK_HAS(out, "FAIL add_dtype: output \"y\" [2,3]: dtype float32, expected float64");
}

TEST(integers_exactly) {
  char dir[4096], args[8192];
  static const int64_t a[6] = {1, 2, 3, 4, 5, -6};
  static const int64_t b[6] = {10, 20, 30, 40, 50, 60};
  int64_t y[6];
  for (int i = 0; i < 6; i++) y[i] = a[i] + b[i];
  mb m = binary_model("Add", 7);
  REQUIRE(make_case("add_int64", &m, dir, sizeof dir) == 0);
  REQUIRE(write_pb(dir, "input_0.pb", "a", STRAND_DTYPE_INT64, shape23, 2, a) == 0);
  REQUIRE(write_pb(dir, "input_1.pb", "b", STRAND_DTYPE_INT64, shape23, 2, b) == 0);
  REQUIRE(write_pb(dir, "output_0.pb", "y", STRAND_DTYPE_INT64, shape23, 2, y) == 0);
  snprintf(args, sizeof args, "check %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 0);
  y[5] += 1;
  REQUIRE(write_pb(dir, "output_0.pb", "y", STRAND_DTYPE_INT64, shape23, 2, y) == 0);
  snprintf(args, sizeof args, "check --rtol 1 --atol 100 %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 1);
  CHECK_HAS(out, "element 5 [1,2]: got 54 expected 55");
}

TEST(inputs_matched_by_name_then_position) {
  char dir[4096], args[8192];
  float y[6];
  for (int i = 0; i < 6; i++) y[i] = a_values[i] - b_values[i];
  /* Files in the opposite order of the model's inputs, named. */
  mb m = binary_model("Sub", 1);
  REQUIRE(make_case("sub_named", &m, dir, sizeof dir) == 0);
  REQUIRE(write_pb(dir, "input_0.pb", "b", STRAND_DTYPE_FLOAT32, shape23, 2, b_values) == 0);
  REQUIRE(write_pb(dir, "input_1.pb", "a", STRAND_DTYPE_FLOAT32, shape23, 2, a_values) == 0);
  REQUIRE(write_pb(dir, "output_0.pb", "y", STRAND_DTYPE_FLOAT32, shape23, 2, y) == 0);
  snprintf(args, sizeof args, "check %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 0);
  /* Without names, by position. */
  m = binary_model("Sub", 1);
  REQUIRE(make_case("sub_unnamed", &m, dir, sizeof dir) == 0);
  REQUIRE(write_pb(dir, "input_0.pb", NULL, STRAND_DTYPE_FLOAT32, shape23, 2, a_values) == 0);
  REQUIRE(write_pb(dir, "input_1.pb", NULL, STRAND_DTYPE_FLOAT32, shape23, 2, b_values) == 0);
  REQUIRE(write_pb(dir, "output_0.pb", NULL, STRAND_DTYPE_FLOAT32, shape23, 2, y) == 0);
  snprintf(args, sizeof args, "check %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 0);
  /* A name the model does not have. */
  REQUIRE(write_pb(dir, "input_1.pb", "c", STRAND_DTYPE_FLOAT32, shape23, 2, b_values) == 0);
  CHECK(run_strand(args, out, sizeof out) == 1);
  CHECK_HAS(out, "ERROR sub_unnamed: test_data_set_0/input_1.pb: \"c\" is not an input of the model");
}

TEST(errors_for_broken_directories) {
  char dir[4096], args[8192], path[4200];
  float sum[6];
  sum_values(sum);
  REQUIRE(add_case("add_missing", sum, dir, sizeof dir) == 0);
  snprintf(path, sizeof path, "%s/test_data_set_0/input_1.pb", dir);
  REQUIRE(remove(path) == 0);
  snprintf(args, sizeof args, "check %s %s/nowhere", dir, fixture_root());
  CHECK(run_strand(args, out, sizeof out) == 1);
  CHECK_HAS(out, "ERROR add_missing: test_data_set_0: no file gives input \"b\"");
  CHECK_HAS(out, "ERROR nowhere: no model.onnx");
  CHECK_HAS(out, "check: 0 passed, 0 failed, 0 unsupported, 2 errors");
}

TEST(unsupported_op) {
  char dir[4096], args[8192];
  float sum[6];
  sum_values(sum);
  mb m = binary_model("NoSuchOp", 1);
  REQUIRE(make_case("no_kernel", &m, dir, sizeof dir) == 0);
  REQUIRE(write_pb(dir, "input_0.pb", "a", STRAND_DTYPE_FLOAT32, shape23, 2, a_values) == 0);
  REQUIRE(write_pb(dir, "input_1.pb", "b", STRAND_DTYPE_FLOAT32, shape23, 2, b_values) == 0);
  REQUIRE(write_pb(dir, "output_0.pb", "y", STRAND_DTYPE_FLOAT32, shape23, 2, sum) == 0);
  snprintf(args, sizeof args, "check %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 0); /* UNSUPPORTED alone does not fail */
  CHECK_HAS(out, "UNSUPPORTED no_kernel: ");
  CHECK_HAS(out, "NoSuchOp");
  CHECK_HAS(out, "check: 0 passed, 0 failed, 1 unsupported");
}

TEST(json_quiet_and_parent_directories) {
  char dir[4096], args[8192];
  float sum[6];
  sum_values(sum);
  REQUIRE(add_case("add_json", sum, dir, sizeof dir) == 0);
  snprintf(args, sizeof args, "check --json %s", dir);
  CHECK(run_strand(args, out, sizeof out) == 0);
  CHECK_HAS(out, "{\"name\": \"add_json\", \"dir\": ");
  CHECK_HAS(out, "\"result\": \"PASS\", \"data_sets\": 1, \"worst_error\": 0, "
                 "\"worst_output\": \"y\", \"status\": null, \"message\": \"\"");
  /* The fixture root holds every case of this program: one line each. */
  snprintf(args, sizeof args, "check --quiet %s", fixture_root());
  run_strand(args, out, sizeof out);
  CHECK(strstr(out, "PASS ") == NULL);
  CHECK_HAS(out, "UNSUPPORTED no_kernel");
  CHECK_HAS(out, "check: ");
}

TEST(usage_errors) {
  char args[8192];
  CHECK(run_strand("check", out, sizeof out) == 2);
  CHECK_HAS(out, "no directory given");
  snprintf(args, sizeof args, "check --rtol x %s", fixture_root());
  CHECK(run_strand(args, out, sizeof out) == 2);
  CHECK_HAS(out, "--rtol needs a number");
  snprintf(args, sizeof args, "check --atol %s", "");
  CHECK(run_strand(args, out, sizeof out) == 2);
  CHECK(run_strand("check --frobnicate x", out, sizeof out) == 2);
  CHECK(run_strand("check --help", out, sizeof out) == 0);
  CHECK_HAS(out, "usage: strand check");
}

/* Last: removes the fixtures (registration order is file order). */
TEST(cleanup) {
  if (!root[0]) return;
  char command[8192];
  snprintf(command, sizeof command, "rm -rf '%s'", root);
  CHECK(system(command) == 0);
}
