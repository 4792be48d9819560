/*
 * test_bench.c — `strand bench`: runs the strand program on a small model
 * it builds (y = Relu(x), x float32 [batch, 4]) and checks the JSON object
 * (fields, run counts, batch bound from --batch or from an input file,
 * inferences/s = runs x batch / seconds), the --seconds and --warmup
 * modes, dynamic batching settings, the text summary, a run that fails,
 * and the exact message of each usage error.
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
static char relu_path[4096];
static char two_inputs_path[4096];

/* A fresh directory for this program's fixtures. */
static const char *fixture_root(void) {
  if (!root[0]) {
    snprintf(root, sizeof root, "%s/test-bench-XXXXXX", STRAND_BINARY_DIR);
    if (!mkdtemp(root)) {
      snprintf(root, sizeof root, "/tmp/strand-test-bench-XXXXXX");
      if (!mkdtemp(root)) root[0] = '\0';
    }
  }
  return root;
}

/* ROOT/relu.onnx: y = Relu(x), float32 [batch, 4]. */
static const char *relu_model(void) {
  if (!relu_path[0]) {
    mb g = mb_new();
    mb_str(&g, MB_GRAPH_NAME, "g");
    mb_value_info(&g, MB_GRAPH_INPUT, "x", 1, "batch,4");
    mb_add_node(&g, "relu", "Relu", "x", "y");
    mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, "batch,4");
    mb m = mb_model(17, &g);
    snprintf(relu_path, sizeof relu_path, "%s/relu.onnx", fixture_root());
    if (mb_write_file(&m, relu_path) != 0) relu_path[0] = '\0';
    mb_free(&m);
  }
  return relu_path;
}

/* ROOT/add.onnx: y = a + b, float32 [batch, 4] each. */
static const char *two_inputs_model(void) {
  if (!two_inputs_path[0]) {
    mb g = mb_new();
    mb_str(&g, MB_GRAPH_NAME, "g");
    mb_value_info(&g, MB_GRAPH_INPUT, "a", 1, "batch,4");
    mb_value_info(&g, MB_GRAPH_INPUT, "b", 1, "batch,4");
    mb_add_node(&g, "add", "Add", "a,b", "y");
    mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, "batch,4");
    mb m = mb_model(17, &g);
    snprintf(two_inputs_path, sizeof two_inputs_path, "%s/add.onnx", fixture_root());
    if (mb_write_file(&m, two_inputs_path) != 0) two_inputs_path[0] = '\0';
    mb_free(&m);
  }
  return two_inputs_path;
}

/* Writes a [rows, 4] tensor of `dtype` (float32 or int64) as ROOT/name. */
static int write_npy(const char *name, strand_dtype dtype, int64_t rows, char *path,
                     size_t size) {
  int64_t shape[2] = {rows, 4};
  strand_tensor *t = NULL;
  if (strand_tensor_create(dtype, shape, 2, &t) != STRAND_OK) return -1;
  snprintf(path, size, "%s/%s", fixture_root(), name);
  strand_status st = strand_tensor_write_npy(t, path);
  strand_tensor_release(t);
  return st == STRAND_OK ? 0 : -1;
}

/* Runs `strand ARGS`; stdout lands in `out`, stderr in `err`. Returns the
 * exit status, -1 when the program did not exit normally. */
static int run_strand(const char *args, char *out, size_t out_size, char *err, size_t err_size) {
  char command[32768], err_path[4200];
  snprintf(err_path, sizeof err_path, "%s/stderr.txt", fixture_root());
  snprintf(command, sizeof command, "%s/strand %s 2>%s", STRAND_BINARY_DIR, args, err_path);
  out[0] = err[0] = '\0';
  FILE *p = popen(command, "r");
  if (!p) return -1;
  size_t n = fread(out, 1, out_size - 1, p);
  out[n] = '\0';
  int status = pclose(p);
  FILE *e = fopen(err_path, "r");
  if (e) {
    n = fread(err, 1, err_size - 1, e);
    err[n] = '\0';
    fclose(e);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The number after `"key": ` in a JSON text; NAN when absent. */
static double json_number(const char *json, const char *key) {
  char needle[128];
  snprintf(needle, sizeof needle, "\"%s\": ", key);
  const char *at = strstr(json, needle);
  if (!at) return NAN;
  char *end;
  double v = strtod(at + strlen(needle), &end);
  return end == at + strlen(needle) ? NAN : v;
}

#define CHECK_HAS(text, needle)                                                                 \
  do {                                                                                          \
    if (!strstr((text), (needle)))                                                              \
      test_fail(__FILE__, __LINE__, "output lacks \"%s\":\n%s", (needle), (text));              \
  } while (0)

static char out[65536], err[65536];

TEST(program_exists) {
  char path[4096];
  snprintf(path, sizeof path, "%s/strand", STRAND_BINARY_DIR);
  REQUIRE(access(path, X_OK) == 0);
  REQUIRE(relu_model()[0]);
  REQUIRE(two_inputs_model()[0]);
}

TEST(json_count_mode) {
  char args[16384];
  snprintf(args, sizeof args, "bench %s --count 300 --threads 3 --batch 5 --intra-op 1 --json "
                              "--warmup 0.05",
           relu_model());
  REQUIRE(run_strand(args, out, sizeof out, err, sizeof err) == 0);
  /* One object on one line, and nothing else on stdout. */
  CHECK(out[0] == '{');
  CHECK(strchr(out, '\n') == out + strlen(out) - 1);
  CHECK(out[strlen(out) - 2] == '}');
  CHECK_HAS(out, "\"model\": \"");
  CHECK_HAS(out, "relu.onnx\"");
  CHECK(json_number(out, "runs") == 300);
  CHECK(json_number(out, "threads") == 3);
  CHECK(json_number(out, "batch") == 5);
  CHECK(json_number(out, "intra_op") == 1);
  CHECK_HAS(out, "\"batching\": null");
  CHECK(json_number(out, "warmup_runs") >= 3); /* at least one per thread */
  double seconds = json_number(out, "seconds"), ips = json_number(out, "inferences_per_s");
  CHECK(seconds > 0 && seconds < 60);
  CHECK(ips > 0);
  CHECK(fabs(ips - 300.0 * 5 / seconds) <= 1e-3 * ips + 1e-3);
  CHECK(fabs(json_number(out, "runs_per_s") - 300.0 / seconds) <= 1e-3 * ips + 1e-3);
  double p50 = json_number(out, "p50"), p90 = json_number(out, "p90"),
         p99 = json_number(out, "p99"), max = json_number(out, "max");
  CHECK(p50 > 0 && p50 <= p90 && p90 <= p99 && p99 <= max);
  CHECK_HAS(out, "\"latency_ms\": {\"p50\": ");
  CHECK(json_number(out, "load_ms") > 0);
  CHECK(json_number(out, "load_ms") >=
        json_number(out, "model_load_ms") + json_number(out, "session_create_ms") - 0.002);
  /* The input (5 x 4 floats) and the outputs are strand's own memory. */
  CHECK(json_number(out, "peak_native_bytes") >= 5 * 4 * sizeof(float));
  CHECK(json_number(out, "peak_rss_bytes") >= json_number(out, "baseline_rss_bytes"));
  CHECK(json_number(out, "peak_rss_bytes") > 0);
  CHECK(err[0] == '\0'); /* no progress line when stderr is not a terminal */
}

TEST(seconds_mode_and_warmup) {
  char args[16384];
  snprintf(args, sizeof args, "bench %s --seconds 0.3 --warmup 0.1 --threads 2 --json",
           relu_model());
  REQUIRE(run_strand(args, out, sizeof out, err, sizeof err) == 0);
  double seconds = json_number(out, "seconds");
  CHECK(seconds >= 0.3 && seconds < 10);
  CHECK(json_number(out, "runs") >= 2);
  CHECK(json_number(out, "warmup_runs") >= 2);
  CHECK(json_number(out, "warmup_s") == 0.1);
  /* --warmup 0: nothing before the measured runs. */
  snprintf(args, sizeof args, "bench %s --count 10 --warmup=0 --json", relu_model());
  REQUIRE(run_strand(args, out, sizeof out, err, sizeof err) == 0);
  CHECK(json_number(out, "warmup_runs") == 0);
  CHECK(json_number(out, "runs") == 10);
}

TEST(batching_settings_reach_the_session) {
  char args[16384];
  /* A long delay (100 ms) so that the 8 callers surely meet: the session
   * batches only if the settings reached it. */
  snprintf(args, sizeof args, "bench %s --count 400 --threads 8 --batching 8:100000 --json "
                              "--warmup 0",
           relu_model());
  REQUIRE(run_strand(args, out, sizeof out, err, sizeof err) == 0);
  CHECK_HAS(out, "\"batching\": {\"max_rows\": 8, \"delay_us\": 100000}");
  CHECK(json_number(out, "runs") == 400);
  double batches = json_number(out, "batches"), batched = json_number(out, "batched_runs");
  CHECK(batches > 0);
  CHECK(batched > batches); /* more than one run per stacked run on average */
  CHECK(batched <= 400);    /* only measured runs are counted */
  CHECK(json_number(out, "batched_rows") == batched);
  /* Without --batching nothing is stacked. */
  snprintf(args, sizeof args, "bench %s --count 100 --threads 4 --json --warmup 0", relu_model());
  REQUIRE(run_strand(args, out, sizeof out, err, sizeof err) == 0);
  CHECK(json_number(out, "batches") == 0);
}

TEST(summary_text) {
  char args[16384];
  snprintf(args, sizeof args, "bench %s --count 50 --batch 2 --warmup 0", relu_model());
  REQUIRE(run_strand(args, out, sizeof out, err, sizeof err) == 0);
  CHECK_HAS(out, "bench: ");
  CHECK_HAS(out, "threads 1, batch 2, intra-op the CPU budget (budget ");
  CHECK_HAS(out, "batching off");
  CHECK_HAS(out, "runs           50 in ");
  CHECK_HAS(out, "inferences/s");
  CHECK_HAS(out, "latency        p50 ");
  CHECK_HAS(out, "peak native    ");
  CHECK_HAS(out, "peak RSS       ");
}

/* 40 measured runs of the shipped cnn_tiny with --profile and `form`
 * (--quiet or --json); the exit status. */
static int run_profiled(const char *form) {
  char args[16384];
  snprintf(args, sizeof args, "bench %s --count 40 --intra-op 1 --warmup 0.05 --profile %s",
           test_source_path("models/cnn_tiny.onnx"), form);
  return run_strand(args, out, sizeof out, err, sizeof err);
}

/* --profile: the measured runs' node times, in the summary and the JSON;
 * the shipped cnn_tiny's Relu nodes join its Convs and show no calls. */
TEST(profile_by_op_type_and_node) {
  REQUIRE(run_profiled("--quiet") == 0);
  CHECK_HAS(out, "  profile        ");
  CHECK_HAS(out, " ms per run inside kernels, by op type (and kernel):");
  CHECK_HAS(out, "  Conv (im2col) "); /* its 3×3 Conv over 8 channels, on any CPU */
  CHECK_HAS(out, "  Gemm ");
  CHECK(strstr(out, "Relu") == NULL);
  CHECK_HAS(out, "the 5 slowest nodes (ms per run, calls):");
  CHECK_HAS(out, "        40  Gemm /fc/Gemm");
  CHECK_HAS(out, "        40  Conv (im2col) /features/features.3/Conv");
  REQUIRE(run_profiled("--json") == 0);
  CHECK_HAS(out, "\"profile\": {\"runs\": 40, \"total_ms\": ");
  CHECK_HAS(out, "{\"op_type\": \"Conv\", \"kernel\": \"im2col\", \"nodes\": ");
  CHECK_HAS(out, "{\"op_type\": \"Gemm\", \"kernel\": \"\", \"nodes\": 1, \"calls\": 40, ");
  CHECK_HAS(out, "\"op_type\": \"Conv\", \"kernel\": \"im2col\", \"calls\": 40, \"total_ms\": ");
  CHECK_HAS(out, "\"op_type\": \"Gemm\", \"kernel\": \"\", \"calls\": 40, \"total_ms\": ");
  CHECK(json_number(out, "total_ms") > 0);
  CHECK(out[strlen(out) - 2] == '}');
  /* Without --profile, no profile. */
  char args[16384];
  snprintf(args, sizeof args, "bench %s --count 5 --warmup 0 --json", relu_model());
  REQUIRE(run_strand(args, out, sizeof out, err, sizeof err) == 0);
  CHECK(strstr(out, "\"profile\"") == NULL);
}

TEST(inputs_from_files) {
  char args[16384], npy[4096], npy_int[4096];
  REQUIRE(write_npy("x7.npy", STRAND_DTYPE_FLOAT32, 7, npy, sizeof npy) == 0);
  /* The file sets the batch. */
  snprintf(args, sizeof args, "bench %s --input x=%s --count 20 --warmup 0 --json", relu_model(),
           npy);
  REQUIRE(run_strand(args, out, sizeof out, err, sizeof err) == 0);
  CHECK(json_number(out, "batch") == 7);
  snprintf(args, sizeof args, "bench %s --input %s --count 20 --warmup 0 --json", relu_model(),
           npy);
  REQUIRE(run_strand(args, out, sizeof out, err, sizeof err) == 0);
  CHECK(json_number(out, "batch") == 7);
  /* An explicit --batch must agree with it. */
  snprintf(args, sizeof args, "bench %s --input x=%s --batch 3 --count 20", relu_model(), npy);
  CHECK(run_strand(args, out, sizeof out, err, sizeof err) == 2);
  CHECK_HAS(err, "strand bench: --batch 3, but input \"x\" from a file has 7 rows in its batch "
                 "dimension (0)\n");
  /* A name the model does not have; a bare file for a model of two inputs. */
  snprintf(args, sizeof args, "bench %s --input z=%s --count 20", relu_model(), npy);
  CHECK(run_strand(args, out, sizeof out, err, sizeof err) == 2);
  CHECK_HAS(err, "strand bench: the model has no input \"z\"\n");
  snprintf(args, sizeof args, "bench %s --input %s --count 20", two_inputs_model(), npy);
  CHECK(run_strand(args, out, sizeof out, err, sizeof err) == 2);
  CHECK_HAS(err, "names no input, but ");
  CHECK_HAS(err, "add.onnx has 2 inputs: use --input NAME=FILE\n");
  /* One input from a file, the other made to match its batch. */
  snprintf(args, sizeof args, "bench %s --input b=%s --count 20 --warmup 0 --json",
           two_inputs_model(), npy);
  REQUIRE(run_strand(args, out, sizeof out, err, sizeof err) == 0);
  CHECK(json_number(out, "batch") == 7);
  /* A file of the wrong dtype: the run fails, naming the input. */
  REQUIRE(write_npy("x_int.npy", STRAND_DTYPE_INT64, 7, npy_int, sizeof npy_int) == 0);
  snprintf(args, sizeof args, "bench %s --input x=%s --count 20", relu_model(), npy_int);
  CHECK(run_strand(args, out, sizeof out, err, sizeof err) == 1);
  CHECK_HAS(err, "strand bench: a run of ");
  CHECK_HAS(err, "relu.onnx failed: STRAND_E_DTYPE: ");
  CHECK_HAS(err, "\"x\"");
  CHECK(out[0] == '\0');
  /* A file that is not there. */
  snprintf(args, sizeof args, "bench %s --input x=%s/missing.npy --count 20", relu_model(),
           fixture_root());
  CHECK(run_strand(args, out, sizeof out, err, sizeof err) == 1);
  CHECK_HAS(err, "strand bench: reading input \"x\" from ");
  CHECK_HAS(err, "missing.npy: ");
}

TEST(a_model_that_is_not_there) {
  char args[16384];
  snprintf(args, sizeof args, "bench %s/none.onnx --count 1", fixture_root());
  CHECK(run_strand(args, out, sizeof out, err, sizeof err) == 1);
  CHECK_HAS(err, "strand bench: loading ");
  CHECK_HAS(err, "none.onnx: ");
}

/* `strand bench ARGS` exits 2 and says exactly `message` on stderr. */
static void check_usage_error(const char *args, const char *message) {
  char command[32768];
  snprintf(command, sizeof command, "bench %s", args);
  int status = run_strand(command, out, sizeof out, err, sizeof err);
  if (status != 2) test_fail(__FILE__, __LINE__, "`strand %s` exited %d, not 2", command, status);
  if (strncmp(err, message, strlen(message)) != 0)
    test_fail(__FILE__, __LINE__, "`strand %s` said:\n%s\nnot:\n%s", command, err, message);
}

TEST(usage_errors) {
  char args[16384];
  const char *m = relu_model();
  check_usage_error("", "strand bench: no model given\nusage: strand bench MODEL");
  struct {
    const char *flags, *message;
  } cases[] = {
      {"--threads 0", "strand bench: --threads wants a whole number from 1 to 4096, not \"0\"\n"},
      {"--threads 4097",
       "strand bench: --threads wants a whole number from 1 to 4096, not \"4097\"\n"},
      {"--threads two", "strand bench: --threads wants a whole number from 1 to 4096, not \"two\"\n"},
      {"--batch -1", "strand bench: --batch wants a whole number from 1 to 1048576, not \"-1\"\n"},
      {"--batch 2.5", "strand bench: --batch wants a whole number from 1 to 1048576, not \"2.5\"\n"},
      {"--intra-op x", "strand bench: --intra-op wants a whole number from 0 to 1024, not \"x\"\n"},
      {"--count 0",
       "strand bench: --count wants a whole number from 1 to 9223372036854775807, not \"0\"\n"},
      {"--seconds 0", "strand bench: --seconds wants seconds above 0, at most 1000000, not \"0\"\n"},
      {"--seconds -2",
       "strand bench: --seconds wants seconds above 0, at most 1000000, not \"-2\"\n"},
      {"--seconds nan",
       "strand bench: --seconds wants seconds above 0, at most 1000000, not \"nan\"\n"},
      {"--warmup -1", "strand bench: --warmup wants seconds from 0 to 1000000, not \"-1\"\n"},
      {"--warmup 1s", "strand bench: --warmup wants seconds from 0 to 1000000, not \"1s\"\n"},
      {"--batching 32",
       "strand bench: --batching wants MAX:DELAY_US, MAX rows from 2 to 1048576 and DELAY_US "
       "from 0 to 10000000 microseconds, not \"32\"\n"},
      {"--batching 1:100",
       "strand bench: --batching wants MAX:DELAY_US, MAX rows from 2 to 1048576 and DELAY_US "
       "from 0 to 10000000 microseconds, not \"1:100\"\n"},
      {"--batching 8:-5",
       "strand bench: --batching wants MAX:DELAY_US, MAX rows from 2 to 1048576 and DELAY_US "
       "from 0 to 10000000 microseconds, not \"8:-5\"\n"},
      {"--batching :100",
       "strand bench: --batching wants MAX:DELAY_US, MAX rows from 2 to 1048576 and DELAY_US "
       "from 0 to 10000000 microseconds, not \":100\"\n"},
      {"--seconds 1 --count 5", "strand bench: --seconds and --count exclude each other\n"},
      {"--json=yes", "strand bench: --json takes no value\n"},
      {"--input=", "strand bench: --input wants NAME=FILE or FILE, not \"\"\n"},
      {"--frobnicate", "strand bench: unexpected argument \"--frobnicate\" (try --help)\n"},
      {"other.onnx", "strand bench: unexpected argument \"other.onnx\" (try --help)\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(args, sizeof args, "%s %s", m, cases[i].flags);
    check_usage_error(args, cases[i].message);
  }
  snprintf(args, sizeof args, "%s --threads", m);
  check_usage_error(args, "strand bench: --threads needs a value\n");
  /* --help is not an error. */
  CHECK(run_strand("bench --help", out, sizeof out, err, sizeof err) == 0);
  CHECK_HAS(out, "usage: strand bench MODEL");
  CHECK_HAS(out, "--batching MAX:DELAY_US");
  /* The command is listed. */
  CHECK(run_strand("--help", out, sizeof out, err, sizeof err) == 0);
  CHECK_HAS(out, "  bench    measure a model's throughput");
}

/* Last: removes the fixtures (registration order is file order). */
TEST(cleanup) {
  if (!root[0]) return;
  char command[8192];
  snprintf(command, sizeof command, "rm -rf '%s'", root);
  CHECK(system(command) == 0);
}
