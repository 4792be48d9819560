/*
 * validate.c — what the ops strand knows require of a node: input and output
 * counts, required inputs present, and required attributes with their types.
 *
 * One table, one row per (op, first opset the row applies to); rows for an op
 * are listed newest first and the first row whose `since` <= the node's
 * opset applies. Ops not in the table (and other domains) are not checked
 * here: they load, and are reported as unsupported if no kernel runs them.
 * A row errs on the lenient side where opsets differ in ways not listed.
 */
#include "graph/graph_internal.h"

#include <stdio.h>
#include <string.h>

#define MANY 255 /* no upper bound on a count */

typedef struct attr_need {
  const char *name;
  onnx_attr_type type;
} attr_need;

typedef struct op_rule {
  const char *op_type;
  int since;
  uint8_t min_inputs, max_inputs, min_outputs, max_outputs;
  attr_need required[3];
  bool empty_inputs_allowed; /* leading inputs may be "" (Loop's M and cond) */
} op_rule;

#define F ONNX_ATTR_FLOAT
#define I ONNX_ATTR_INT
#define S ONNX_ATTR_STRING
#define G ONNX_ATTR_GRAPH
#define IS ONNX_ATTR_INTS

/* ROW(op, since, min inputs, max inputs, min outputs, max outputs,
 *     required attributes...) */
#define ROW(op, since_, in_min, in_max, out_min, out_max, ...)                    \
  {.op_type = op, .since = since_, .min_inputs = in_min, .max_inputs = in_max,   \
   .min_outputs = out_min, .max_outputs = out_max, .required = {__VA_ARGS__}}
#define LOOP_ROW(op, since_, in_min, in_max, out_min, out_max, ...)               \
  {.op_type = op, .since = since_, .min_inputs = in_min, .max_inputs = in_max,   \
   .min_outputs = out_min, .max_outputs = out_max, .required = {__VA_ARGS__},    \
   .empty_inputs_allowed = true}
#define UNARY(op) ROW(op, 1, 1, 1, 1, 1, {0})
#define BINARY(op) ROW(op, 1, 2, 2, 1, 1, {0})
#define VARIADIC(op) ROW(op, 1, 1, MANY, 1, 1, {0})

static const op_rule rules[] = {
    /* elementwise and activations */
    UNARY("Relu"), UNARY("Sigmoid"), UNARY("Tanh"), UNARY("Exp"), UNARY("Log"), UNARY("Sqrt"),
    UNARY("Abs"), UNARY("Neg"), UNARY("Reciprocal"), UNARY("Floor"), UNARY("Ceil"),
    UNARY("Round"), UNARY("Sign"), UNARY("Erf"), UNARY("Not"), UNARY("Softplus"),
    UNARY("Softsign"), UNARY("Sin"), UNARY("Cos"), UNARY("Tan"), UNARY("Asin"), UNARY("Acos"),
    UNARY("Atan"), UNARY("Sinh"), UNARY("Cosh"), UNARY("Asinh"), UNARY("Acosh"),
    UNARY("Atanh"), UNARY("IsNaN"), UNARY("Identity"), UNARY("HardSwish"), UNARY("Mish"),
    UNARY("Elu"), UNARY("Selu"), UNARY("LeakyRelu"), UNARY("HardSigmoid"),
    UNARY("ThresholdedRelu"), UNARY("Celu"), UNARY("Gelu"), UNARY("Softmax"),
    UNARY("LogSoftmax"), UNARY("Hardmax"), UNARY("Flatten"), UNARY("Shape"), UNARY("Size"),
    UNARY("GlobalAveragePool"), UNARY("GlobalMaxPool"), UNARY("GlobalLpPool"),
    UNARY("Transpose"), UNARY("NonZero"), UNARY("ArgMax"), UNARY("ArgMin"),
    UNARY("ConstantOfShape"), UNARY("EyeLike"), UNARY("Shrink"),
    ROW("LRN", 1, 1, 1, 1, 1, {"size", I}),
    ROW("DepthToSpace", 1, 1, 1, 1, 1, {"blocksize", I}),
    ROW("SpaceToDepth", 1, 1, 1, 1, 1, {"blocksize", I}),
    ROW("Cast", 1, 1, 1, 1, 1, {"to", I}),
    BINARY("CastLike"), BINARY("Add"), BINARY("Sub"), BINARY("Mul"), BINARY("Div"),
    BINARY("Pow"), BINARY("MatMul"), BINARY("Equal"), BINARY("Less"), BINARY("Greater"),
    BINARY("LessOrEqual"), BINARY("GreaterOrEqual"), BINARY("And"), BINARY("Or"),
    BINARY("Xor"), BINARY("PRelu"), BINARY("Mod"), BINARY("BitShift"), BINARY("Expand"),
    BINARY("Gather"), BINARY("GatherElements"), BINARY("GatherND"),
    ROW("Tile", 6, 2, 2, 1, 1, {0}),
    ROW("Tile", 1, 3, 3, 1, 1, {0}),
    VARIADIC("Sum"), VARIADIC("Max"), VARIADIC("Min"), VARIADIC("Mean"),
    ROW("Concat", 4, 1, MANY, 1, 1, {"axis", I}),
    ROW("Concat", 1, 1, MANY, 1, 1, {0}),
    ROW("Where", 9, 3, 3, 1, 1, {0}),
    /* convolution, pooling, normalisation */
    ROW("Conv", 1, 2, 3, 1, 1, {0}),
    ROW("ConvTranspose", 1, 2, 3, 1, 1, {0}),
    ROW("MaxPool", 1, 1, 1, 1, 2, {"kernel_shape", IS}),
    ROW("AveragePool", 1, 1, 1, 1, 1, {"kernel_shape", IS}),
    ROW("LpPool", 1, 1, 1, 1, 1, {"kernel_shape", IS}),
    ROW("BatchNormalization", 1, 5, 5, 1, 5, {0}),
    ROW("InstanceNormalization", 1, 3, 3, 1, 1, {0}),
    ROW("LayerNormalization", 17, 2, 3, 1, 3, {0}),
    ROW("Gemm", 11, 2, 3, 1, 1, {0}),
    ROW("Gemm", 1, 3, 3, 1, 1, {0}),
    /* shapes */
    ROW("Reshape", 5, 2, 2, 1, 1, {0}),
    ROW("Reshape", 1, 1, 1, 1, 1, {"shape", IS}),
    ROW("Unsqueeze", 13, 2, 2, 1, 1, {0}),
    ROW("Unsqueeze", 1, 1, 1, 1, 1, {"axes", IS}),
    ROW("Squeeze", 13, 1, 2, 1, 1, {0}),
    ROW("Squeeze", 1, 1, 1, 1, 1, {0}),
    ROW("Slice", 10, 3, 5, 1, 1, {0}),
    ROW("Slice", 1, 1, 1, 1, 1, {"starts", IS}, {"ends", IS}),
    ROW("Split", 1, 1, 2, 1, MANY, {0}),
    ROW("Pad", 11, 2, 4, 1, 1, {0}),
    ROW("Pad", 2, 1, 1, 1, 1, {"pads", IS}),
    ROW("Clip", 11, 1, 3, 1, 1, {0}),
    ROW("Clip", 1, 1, 1, 1, 1, {0}),
    ROW("Dropout", 12, 1, 3, 1, 2, {0}),
    ROW("Dropout", 1, 1, 1, 1, 2, {0}),
    ROW("ReduceMean", 1, 1, 2, 1, 1, {0}),
    ROW("ReduceSum", 1, 1, 2, 1, 1, {0}),
    ROW("ReduceMax", 1, 1, 2, 1, 1, {0}),
    ROW("ReduceMin", 1, 1, 2, 1, 1, {0}),
    ROW("ReduceProd", 1, 1, 2, 1, 1, {0}),
    ROW("TopK", 10, 2, 2, 2, 2, {0}),
    ROW("TopK", 1, 1, 1, 2, 2, {"k", I}),
    ROW("Range", 11, 3, 3, 1, 1, {0}),
    ROW("Einsum", 12, 1, MANY, 1, 1, {"equation", S}),
    ROW("Resize", 11, 1, 4, 1, 1, {0}),
    ROW("Resize", 10, 2, 2, 1, 1, {0}),
    ROW("Constant", 1, 0, 0, 1, 1, {0}),
    /* control flow */
    ROW("If", 1, 1, 1, 1, MANY, {"then_branch", G}, {"else_branch", G}),
    LOOP_ROW("Loop", 1, 2, MANY, 1, MANY, {"body", G}),
    ROW("Scan", 9, 1, MANY, 1, MANY, {"body", G}, {"num_scan_inputs", I}),
    /* quantisation */
    ROW("QuantizeLinear", 10, 2, 3, 1, 1, {0}),
    ROW("DequantizeLinear", 10, 2, 3, 1, 1, {0}),
};

#undef F
#undef I
#undef S
#undef G
#undef IS

static const op_rule *find_rule(const graph_node *node) {
  if (node->domain[0]) return NULL;
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    if (strcmp(rules[i].op_type, node->op_type) == 0 && node->opset >= rules[i].since)
      return &rules[i];
  return NULL;
}

static const char *plural(size_t n, const char *word, char *buf, size_t size) {
  snprintf(buf, size, "%zu %s%s", n, word, n == 1 ? "" : "s");
  return buf;
}

static strand_status check_counts(const graph_node *node, const op_rule *rule) {
  char have[64];
  if (node->n_inputs < rule->min_inputs || (rule->max_inputs != MANY && node->n_inputs > rule->max_inputs)) {
    if (rule->min_inputs == rule->max_inputs)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "has %s, expected %u (opset %lld)",
                          plural(node->n_inputs, "input", have, sizeof have), rule->min_inputs,
                          (long long)node->opset);
    if (rule->max_inputs == MANY)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "has %s, expected at least %u (opset %lld)",
                          plural(node->n_inputs, "input", have, sizeof have), rule->min_inputs,
                          (long long)node->opset);
    return strand__fail(STRAND_E_MALFORMED_MODEL, "has %s, expected %u to %u (opset %lld)",
                        plural(node->n_inputs, "input", have, sizeof have), rule->min_inputs,
                        rule->max_inputs, (long long)node->opset);
  }
  if (node->n_outputs < rule->min_outputs ||
      (rule->max_outputs != MANY && node->n_outputs > rule->max_outputs)) {
    if (rule->min_outputs == rule->max_outputs)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "has %s, expected %u",
                          plural(node->n_outputs, "output", have, sizeof have), rule->min_outputs);
    if (rule->max_outputs == MANY)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "has %s, expected at least %u",
                          plural(node->n_outputs, "output", have, sizeof have), rule->min_outputs);
    return strand__fail(STRAND_E_MALFORMED_MODEL, "has %s, expected %u to %u",
                        plural(node->n_outputs, "output", have, sizeof have), rule->min_outputs,
                        rule->max_outputs);
  }
  /* The first min_inputs inputs are required (variadic ops: all of them). */
  size_t required = rule->empty_inputs_allowed ? 0
                    : rule->max_inputs == MANY ? node->n_inputs
                                               : rule->min_inputs;
  for (size_t i = 0; i < required && i < node->n_inputs; i++)
    if (node->inputs[i] < 0)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "input %zu is required but empty", i);
  if (node->n_outputs && node->outputs[0] < 0)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "output 0 is required but empty");
  return STRAND_OK;
}

/* Constant carries its value in exactly one attribute. */
static strand_status check_constant(const graph_node *node) {
  static const char *const values[] = {"value",       "value_float",  "value_floats",
                                       "value_int",   "value_ints",   "value_string",
                                       "value_strings", "sparse_value"};
  const onnx_attr *found = NULL;
  size_t count = 0;
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    const onnx_attr *a = graph_node_attr(node, values[i]);
    if (a) {
      count++;
      found = a;
    }
  }
  if (count == 0)
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "has no value attribute (value, value_float, value_ints, ...)");
  if (count > 1)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "has %zu value attributes, expected exactly one",
                        count);
  if (strcmp(found->name, "value_string") == 0 || strcmp(found->name, "value_strings") == 0)
    return strand__fail(STRAND_E_UNSUPPORTED, "attribute \"%s\": string tensors are not "
                        "supported", found->name);
  if (strcmp(found->name, "sparse_value") == 0)
    return strand__fail(STRAND_E_UNSUPPORTED, "attribute \"sparse_value\": sparse tensors are "
                        "not supported");
  onnx_attr_type expected = strcmp(found->name, "value") == 0         ? ONNX_ATTR_TENSOR
                            : strcmp(found->name, "value_float") == 0  ? ONNX_ATTR_FLOAT
                            : strcmp(found->name, "value_floats") == 0 ? ONNX_ATTR_FLOATS
                            : strcmp(found->name, "value_int") == 0    ? ONNX_ATTR_INT
                                                                       : ONNX_ATTR_INTS;
  if (found->type != expected)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"%s\" has type %s, expected %s",
                        found->name, onnx_attr_type_name(found->type),
                        onnx_attr_type_name(expected));
  return STRAND_OK;
}

/* Attribute names whose type is the same in every op of the default domain
 * that has them; a present attribute of another type is malformed whether
 * or not it is required. */
static const attr_need typed_names[] = {
    {"alpha", ONNX_ATTR_FLOAT}, {"beta", ONNX_ATTR_FLOAT}, {"epsilon", ONNX_ATTR_FLOAT},
    {"momentum", ONNX_ATTR_FLOAT}, {"gamma", ONNX_ATTR_FLOAT}, {"bias", ONNX_ATTR_FLOAT},
    {"lambd", ONNX_ATTR_FLOAT}, {"axis", ONNX_ATTR_INT}, {"keepdims", ONNX_ATTR_INT},
    {"transA", ONNX_ATTR_INT}, {"transB", ONNX_ATTR_INT}, {"group", ONNX_ATTR_INT},
    {"ceil_mode", ONNX_ATTR_INT}, {"count_include_pad", ONNX_ATTR_INT}, {"storage_order", ONNX_ATTR_INT},
    {"kernel_shape", ONNX_ATTR_INTS}, {"strides", ONNX_ATTR_INTS}, {"dilations", ONNX_ATTR_INTS},
    {"pads", ONNX_ATTR_INTS}, {"perm", ONNX_ATTR_INTS}, {"output_padding", ONNX_ATTR_INTS},
    {"output_shape", ONNX_ATTR_INTS}, {"auto_pad", ONNX_ATTR_STRING}, {"mode", ONNX_ATTR_STRING},
    {"to", ONNX_ATTR_INT}, {"select_last_index", ONNX_ATTR_INT}, {"hidden_size", ONNX_ATTR_INT},
    {"direction", ONNX_ATTR_STRING}, {"largest", ONNX_ATTR_INT}, {"sorted", ONNX_ATTR_INT},
};

static strand_status check_attribute_types(const graph_node *node) {
  for (size_t i = 0; i < sizeof typed_names / sizeof typed_names[0]; i++) {
    const onnx_attr *a = graph_node_attr(node, typed_names[i].name);
    if (a && a->type != typed_names[i].type)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"%s\" has type %s, expected %s",
                          typed_names[i].name, onnx_attr_type_name(a->type),
                          onnx_attr_type_name(typed_names[i].type));
  }
  return STRAND_OK;
}

strand_status graph_check_node(const graph *g, const graph_node *node) {
  (void)g;
  const op_rule *rule = find_rule(node);
  if (!rule) return STRAND_OK;
  strand_status st = check_counts(node, rule);
  if (st) return st;
  st = check_attribute_types(node);
  if (st) return st;
  for (size_t i = 0; i < sizeof rule->required / sizeof rule->required[0]; i++) {
    const attr_need *need = &rule->required[i];
    if (!need->name) break;
    const onnx_attr *a = graph_node_attr(node, need->name);
    if (!a)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "required attribute \"%s\" is missing",
                          need->name);
    if (a->type != need->type)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "attribute \"%s\" has type %s, expected %s",
                          need->name, onnx_attr_type_name(a->type),
                          onnx_attr_type_name(need->type));
  }
  if (!node->domain[0] && strcmp(node->op_type, "Constant") == 0) return check_constant(node);
  return STRAND_OK;
}
