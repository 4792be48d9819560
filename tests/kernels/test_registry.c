/* The kernel table: every entry complete, no two entries for the same op
 * with overlapping opsets, and the loader's questions answered from it. */
#include "kernels/kernels_internal.h"

#include "test.h"

TEST(every_kernel_is_complete) {
  size_t n = kernel_count();
  CHECK(n > 0);
  CHECK(kernel_at(n) == NULL);
  for (size_t i = 0; i < n; i++) {
    const kernel_def *k = kernel_at(i);
    REQUIRE(k);
    CHECK(k->op_type && k->op_type[0]);
    CHECK(k->domain != NULL);
    CHECK(k->opset_min >= 1 && k->opset_min <= k->opset_max);
    CHECK(k->accepts && k->infer && k->run);
    for (size_t j = 0; j < i; j++) {
      const kernel_def *o = kernel_at(j);
      if (strcmp(o->op_type, k->op_type) || strcmp(o->domain, k->domain)) continue;
      if (o->opset_max >= k->opset_min && k->opset_max >= o->opset_min)
        test_fail(__FILE__, __LINE__, "%s has two kernels for overlapping opsets", k->op_type);
    }
  }
}

TEST(questions_are_answered_from_the_table) {
  CHECK(strand__kernel_supported("", "Conv", 17));
  CHECK(strand__kernel_supported("ai.onnx", "Relu", 13));
  CHECK(!strand__kernel_supported("", "Relu", 5));  /* consumed_inputs: not handled */
  CHECK(strand__kernel_supported("", "Relu", -1));  /* no opset imported: the newest */
  CHECK(!strand__kernel_supported("", "Frobnicate", 17));
  CHECK(!strand__kernel_supported("com.example", "Conv", 1));
  strand_dtype floats[2] = {STRAND_DTYPE_FLOAT32, STRAND_DTYPE_FLOAT32};
  strand_dtype mixed[2] = {STRAND_DTYPE_FLOAT32, STRAND_DTYPE_INT64};
  strand_dtype unknown[2] = {STRAND_DTYPE_UNDEFINED, STRAND_DTYPE_UNDEFINED};
  bool known = false;
  CHECK(kernel_find("", "MatMul", 17, floats, 2, &known) == &kernel_MatMul && known);
  CHECK(kernel_find("", "MatMul", 17, mixed, 2, &known) == NULL && known);
  CHECK(kernel_find("", "MatMul", 17, unknown, 2, &known) == &kernel_MatMul);
  CHECK(kernel_find("", "Nope", 17, floats, 2, &known) == NULL && !known);
}
