/* External data: weights in files beside the model, and every way a
 * location might try to leave the model's directory. Works in a fresh
 * temporary directory per test. */
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_builder.h"
#include "runtime/runtime_internal.h"
#include "test.h"

static char dir[512];
static char outside[256];

static const char *in_dir(const char *name) {
  static char path[4][PATH_MAX];
  static int slot;
  char *p = path[slot++ & 3];
  snprintf(p, PATH_MAX, "%s/%s", dir, name);
  return p;
}

static void make_dirs(void) {
  strcpy(outside, "/tmp/strand_external_XXXXXX");
  if (!mkdtemp(outside)) abort();
  snprintf(dir, sizeof dir, "%s/model", outside);
  if (mkdir(dir, 0700) != 0) abort();
  float w[64];
  for (int i = 0; i < 64; i++) w[i] = (float)i;
  mb b = mb_new();
  mb_raw(&b, w, sizeof w);
  if (mb_write_file(&b, in_dir("weights.bin")) != 0) abort();
  /* a secret outside the model's directory */
  char secret[PATH_MAX];
  snprintf(secret, sizeof secret, "%s/secret.bin", outside);
  if (mb_write_file(&b, secret) != 0) abort();
  mb_free(&b);
}

static void remove_dirs(void) {
  char command[PATH_MAX + 16];
  snprintf(command, sizeof command, "rm -rf '%s'", outside);
  if (system(command) != 0) test_fail(__FILE__, __LINE__, "cannot remove %s", outside);
}

/* A model whose initializer "w" (float32 [count]) lives at `location`. */
static void write_model(int64_t count, const char *location, const char *offset,
                        const char *length) {
  mb t = mb_new();
  mb_int(&t, MB_TENSOR_DIMS, count);
  mb_int(&t, MB_TENSOR_DATA_TYPE, 1);
  mb_str(&t, MB_TENSOR_NAME, "w");
  const char *keys[] = {"location", "offset", "length"};
  const char *values[] = {location, offset, length};
  for (int i = 0; i < 3; i++) {
    if (!values[i]) continue;
    mb e = mb_new();
    mb_str(&e, 1, keys[i]);
    mb_str(&e, 2, values[i]);
    mb_msg(&t, MB_TENSOR_EXTERNAL_DATA, &e);
  }
  mb_int(&t, MB_TENSOR_DATA_LOCATION, 1);
  mb g = mb_new();
  mb_str(&g, MB_GRAPH_NAME, "ext");
  mb_msg(&g, MB_GRAPH_INITIALIZER, &t);
  mb_add_node(&g, "r", "Relu", "w", "y");
  mb_value_info(&g, MB_GRAPH_OUTPUT, "y", 1, NULL);
  mb m = mb_model(17, &g);
  if (mb_write_file(&m, in_dir("model.onnx")) != 0) abort();
  mb_free(&m);
}

static strand_status load(strand_model **out) { return strand_model_load(in_dir("model.onnx"), out); }

static const onnx_tensor *weight(const strand_model *m) {
  const graph *g = strand__model_graph(m);
  return g->values[graph_find(g, "w")].constant;
}

TEST(external_weights_are_mapped_in_place) {
  make_dirs();
  write_model(64, "weights.bin", "0", "256");
  strand_model *m;
  CHECK_OK(load(&m));
  if (m) {
    const onnx_tensor *w = weight(m);
    CHECK(w->external && w->storage == ONNX_STORAGE_MAPPED);
    CHECK(((const float *)w->data)[63] == 63.0f);
    strand_memory_stats stats = {.struct_size = sizeof stats};
    CHECK_OK(strand_memory_get_stats(&stats));
    CHECK(stats.live_bytes[STRAND_MEMORY_WEIGHTS] == 0);
    strand_model_release(m);
  }
  /* without offset and length: the whole file */
  write_model(64, "weights.bin", NULL, NULL);
  CHECK_OK(load(&m));
  strand_model_release(m);
  /* a misaligned offset is copied, and the copy is counted */
  write_model(8, "weights.bin", "2", "32");
  CHECK_OK(load(&m));
  if (m) {
    const onnx_tensor *w = weight(m);
    CHECK(w->storage == ONNX_STORAGE_COPIED && (uintptr_t)w->data % 4 == 0);
    strand_memory_stats stats = {.struct_size = sizeof stats};
    CHECK_OK(strand_memory_get_stats(&stats));
    CHECK(stats.live_bytes[STRAND_MEMORY_WEIGHTS] >= 32);
    strand_model_release(m);
  }
  /* a symbolic link that stays inside is fine */
  CHECK(symlink("weights.bin", in_dir("alias.bin")) == 0);
  write_model(64, "alias.bin", NULL, NULL);
  CHECK_OK(load(&m));
  strand_model_release(m);
  remove_dirs();
}

TEST(locations_cannot_leave_the_directory) {
  make_dirs();
  strand_model *m;
  write_model(64, "/etc/passwd", NULL, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));
  CHECK_MSG("tensor \"w\": external data location \"/etc/passwd\" is an absolute path");

  write_model(64, "../secret.bin", NULL, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));
  CHECK_MSG("external data location \"../secret.bin\" contains \"..\"");

  write_model(64, "sub/../../secret.bin", NULL, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));
  CHECK_MSG("contains \"..\"");

  write_model(64, "..", NULL, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));

  char target[PATH_MAX];
  snprintf(target, sizeof target, "%s/secret.bin", outside);
  CHECK(symlink(target, in_dir("escape.bin")) == 0);
  write_model(64, "escape.bin", NULL, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));
  CHECK_MSG("external data location \"escape.bin\" resolves to");
  CHECK_MSG("outside the model's directory");

  CHECK(symlink(outside, in_dir("up")) == 0);
  write_model(64, "up/secret.bin", NULL, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));
  CHECK_MSG("outside the model's directory");

  write_model(64, "", NULL, NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));
  CHECK_MSG("external data location is empty");
  remove_dirs();
}

TEST(external_ranges_are_checked) {
  make_dirs();
  strand_model *m;
  write_model(64, "missing.bin", NULL, NULL);
  CHECK_STATUS(STRAND_E_IO, load(&m));
  CHECK_MSG("missing.bin\": No such file or directory");

  write_model(64, "weights.bin", "300", NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));
  CHECK_MSG("external data offset 300 is past the end of \"weights.bin\" (256 bytes)");

  write_model(64, "weights.bin", "16", "256");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));
  CHECK_MSG("offset 16 + length 256 is past the end");

  write_model(64, "weights.bin", "0", "128");
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));
  CHECK_MSG("external data in \"weights.bin\" has 128 bytes, expected 256 (64 float32 elements)");

  write_model(64, "weights.bin", "-1", NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));
  CHECK_MSG("external_data offset \"-1\" is not a non-negative integer");

  write_model(64, "weights.bin", "99999999999999999999999", NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));

  write_model(64, NULL, "0", NULL);
  CHECK_STATUS(STRAND_E_MALFORMED_MODEL, load(&m));
  CHECK_MSG("external data without a \"location\" entry");

  CHECK(mkdir(in_dir("adir"), 0700) == 0);
  write_model(64, "adir", NULL, NULL);
  CHECK_STATUS(STRAND_E_IO, load(&m));
  CHECK_MSG("not a regular file");
  remove_dirs();
}

TEST(the_committed_external_model_loads) {
  strand_model *m;
  REQUIRE_OK(strand_model_load(test_source_path("tests/data/onnx/external/model.onnx"), &m));
  uint64_t params, bytes;
  CHECK_OK(strand_model_parameter_count(m, &params, &bytes));
  CHECK(params == 72 && bytes == 288);
  const graph *g = strand__model_graph(m);
  const onnx_tensor *w = g->values[graph_find(g, "w")].constant;
  CHECK(w->external && ((const float *)w->data)[9] == 9.0f);
  strand_model_release(m);
}

TEST(failing_external_loads_leak_nothing) {
  make_dirs();
  write_model(64, "weights.bin", "0", "256");
  for (uint64_t n = 1; n < 200; n++) {
    strand_memory_fail_nth(n);
    strand_model *m = NULL;
    strand_status st = load(&m);
    strand_memory_fail_nth(0);
    if (st == STRAND_OK) {
      strand_model_release(m);
      break;
    }
    CHECK(st == STRAND_E_OUT_OF_MEMORY);
    strand_memory_stats stats = {.struct_size = sizeof stats};
    CHECK_OK(strand_memory_get_stats(&stats));
    CHECK(stats.total_live_bytes == 0 && stats.total_live_objects == 0);
  }
  remove_dirs();
}
