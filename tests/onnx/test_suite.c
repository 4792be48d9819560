/* Every model of a directory tree (the ONNX backend test data, by default)
 * loads, or fails with STRAND_E_UNSUPPORTED naming the feature; none is
 * called malformed and none crashes. The directory comes from
 * STRAND_ONNX_SUITE; without it the test is skipped with a note.
 * tests/onnx_suite/check_models.sh finds the directory and runs this. */
#include <ftw.h>
#include <stdlib.h>

#include "test.h"

static size_t loaded, unsupported;

static int visit(const char *path, const struct stat *info, int kind, struct FTW *ftw) {
  (void)info;
  (void)ftw;
  size_t n = strlen(path);
  if (kind != FTW_F || n < 5 || strcmp(path + n - 5, ".onnx") != 0) return 0;
  strand_model *m;
  strand_status st = strand_model_load(path, &m);
  if (st == STRAND_OK) {
    loaded++;
    size_t ops;
    if (strand_model_op_count(m, &ops) != STRAND_OK) test_fail(__FILE__, __LINE__, "%s", path);
    strand_model_release(m);
  } else if (st == STRAND_E_UNSUPPORTED && strstr(strand_errmsg(), "not supported")) {
    unsupported++;
    printf("     unsupported: %s: %s\n", path, strand_errmsg());
  } else {
    test_fail(__FILE__, __LINE__, "%s: %s: %s", path, strand_status_name(st), strand_errmsg());
  }
  return 0;
}

TEST(suite_models_load_or_name_what_is_unsupported) {
  const char *dir = getenv("STRAND_ONNX_SUITE");
  if (!dir || !*dir) {
    printf("     skipped: set STRAND_ONNX_SUITE to a directory of .onnx models "
           "(see tests/onnx_suite/check_models.sh)\n");
    return;
  }
  CHECK(nftw(dir, visit, 16, FTW_PHYS) == 0);
  printf("     %zu loaded, %zu unsupported\n", loaded, unsupported);
  CHECK(loaded > 0);
}
