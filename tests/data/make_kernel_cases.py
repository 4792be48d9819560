#!/usr/bin/env python3
"""Writes small one-op (or few-op) models with inputs and ONNX Runtime's
outputs, for tests/kernels/test_cases.c.

Run from anywhere:  .venv/bin/python tests/data/make_kernel_cases.py
Needs numpy, onnx and onnxruntime (scripts/venv.sh). Output: tests/data/kernels/
in the ONNX test-data layout (CASE/model.onnx, CASE/test_data_set_0/input_K.pb,
output_K.pb) plus cases.txt, one line per case: `NAME RTOL ATOL`. The files are
committed (the whole directory stays well under 200 KB); rerun after changing
this script.
"""
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels")
CASES = []
RNG = np.random.default_rng(20240611)

NP_TO_ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.int64): TensorProto.INT64, np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.bool_): TensorProto.BOOL, np.dtype(np.float16): TensorProto.FLOAT16,
    np.dtype(np.int16): TensorProto.INT16,
}


def rand(*shape, low=-2.0, high=2.0):
    return RNG.uniform(low, high, size=shape).astype(np.float32)


def ints(*shape, low=-5, high=5, dtype=np.int64):
    return RNG.integers(low, high, size=shape).astype(dtype)


def case(name, nodes, inputs, outputs, initializers=None, opset=17, rtol=1e-5, atol=1e-6,
         input_shapes=None, expected=None):
    """inputs: list of (name, array); outputs: list of names. input_shapes may
    give symbolic shapes for graph inputs (default: the arrays' shapes).
    expected: the outputs, for the few models ONNX Runtime cannot run."""
    input_shapes = input_shapes or {}
    graph_inputs = [
        helper.make_tensor_value_info(n, NP_TO_ONNX[a.dtype], input_shapes.get(n, list(a.shape)))
        for n, a in inputs]
    graph_outputs = [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in outputs]
    inits = [numpy_helper.from_array(a, n) for n, a in (initializers or [])]
    graph = helper.make_graph(nodes, name, graph_inputs, graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    model.producer_name = "strand-tests"
    model = onnx.shape_inference.infer_shapes(model)
    # Fill in the outputs' types where inference found them.
    known = {v.name: v for v in list(model.graph.value_info) + list(model.graph.output)}
    for o in model.graph.output:
        if o.name in known and known[o.name].type.tensor_type.elem_type:
            o.CopyFrom(known[o.name])
        elif not o.type.tensor_type.elem_type:  # inference gave up: the first input's type
            o.CopyFrom(helper.make_tensor_value_info(o.name, graph_inputs[0].type.tensor_type.elem_type,
                                                     None))
    if expected is None:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        results = sess.run(outputs, {n: a for n, a in inputs})
    else:
        results = expected
    for o, r in zip(model.graph.output, results):  # old opsets want output shapes
        if not o.type.tensor_type.HasField("shape"):
            o.CopyFrom(helper.make_tensor_value_info(o.name, o.type.tensor_type.elem_type,
                                                     list(np.asarray(r).shape)))
    onnx.checker.check_model(model)
    d = os.path.join(OUT, name)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    for k, (n, a) in enumerate(inputs):
        t = numpy_helper.from_array(a, n)
        with open(os.path.join(d, "test_data_set_0", f"input_{k}.pb"), "wb") as f:
            f.write(t.SerializeToString())
    for k, (n, a) in enumerate(zip(outputs, results)):
        t = numpy_helper.from_array(np.asarray(a), n)
        with open(os.path.join(d, "test_data_set_0", f"output_{k}.pb"), "wb") as f:
            f.write(t.SerializeToString())
    CASES.append((name, rtol, atol))


def node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


def unary(op, x, opset=17, rtol=1e-5, atol=1e-6, name=None, **attrs):
    case(name or op.lower(), [node(op, ["x"], ["y"], **attrs)], [("x", x)], ["y"], opset=opset,
         rtol=rtol, atol=atol)


def binary(op, a, b, name, opset=17, **kw):
    case(name, [node(op, ["a", "b"], ["y"])], [("a", a), ("b", b)], ["y"], opset=opset, **kw)


def elementwise():
    binary("Add", rand(2, 3, 4), rand(4), "add_broadcast_last")
    binary("Add", rand(2, 1, 4), rand(3, 1), "add_broadcast_both")
    binary("Add", rand(), rand(2, 3), "add_scalar")
    binary("Add", ints(2, 3), ints(3), "add_int64")
    binary("Sub", rand(3, 4), rand(3, 1), "sub_broadcast_column")
    binary("Mul", rand(2, 3, 5), rand(2, 1, 5), "mul_broadcast_middle")
    binary("Mul", ints(4, dtype=np.int32), ints(4, dtype=np.int32), "mul_int32")
    binary("Div", rand(2, 3), rand(2, 3, low=0.5, high=2.0), "div")
    binary("Div", ints(6, low=-20, high=20), np.array([3, -3, 7, -7, 2, 5], np.int64), "div_int64")
    nonzero = np.array([3, -3, 7, -7, 2, 5], np.int64)
    case("mod_int64", [node("Mod", ["a", "b"], ["y"])], [("a", ints(6, low=-20, high=20)), ("b", nonzero)],
         ["y"])
    case("mod_int32_fmod", [node("Mod", ["a", "b"], ["y"], fmod=1)],
         [("a", ints(6, low=-20, high=20, dtype=np.int32)), ("b", nonzero.astype(np.int32))], ["y"])
    case("mod_float_fmod", [node("Mod", ["a", "b"], ["y"], fmod=1)],
         [("a", rand(2, 3, low=-9, high=9)), ("b", rand(3, low=0.5, high=3))], ["y"])
    binary("Pow", rand(3, 4, low=0.1, high=2.0), rand(4, low=-2, high=2), "pow", rtol=1e-5)
    binary("Pow", rand(5, low=0.1, high=3), np.array(2, np.int64), "pow_int_exponent")
    for op in ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"]:
        a, b = ints(3, 4, low=0, high=3).astype(np.float32), ints(4, low=0, high=3).astype(np.float32)
        binary(op, a, b, op.lower())
    binary("Equal", ints(5, low=0, high=3), ints(5, low=0, high=3), "equal_int64")
    bools = lambda *s: RNG.integers(0, 2, size=s).astype(np.bool_)
    for op in ["And", "Or", "Xor"]:
        binary(op, bools(2, 3), bools(3), op.lower())
    unary("Not", bools(7))
    case("where", [node("Where", ["c", "x", "y"], ["z"])],
         [("c", bools(2, 1, 4)), ("x", rand(3, 4)), ("y", rand(2, 3, 1))], ["z"])
    case("where_int64", [node("Where", ["c", "x", "y"], ["z"])],
         [("c", bools(6)), ("x", ints(6)), ("y", ints(1))], ["z"])
    for op in ["Max", "Min", "Sum", "Mean"]:
        case(op.lower() + "_variadic", [node(op, ["a", "b", "c"], ["y"])],
             [("a", rand(2, 1, 3)), ("b", rand(4, 1)), ("c", rand(3))], ["y"])
    case("max_single", [node("Max", ["a"], ["y"])], [("a", rand(3, 2))], ["y"])
    case("min_int64", [node("Min", ["a", "b"], ["y"])], [("a", ints(2, 3)), ("b", ints(3))], ["y"])
    unary("Abs", rand(10))
    unary("Neg", rand(10))
    unary("Abs", ints(8), name="abs_int64")
    unary("Exp", rand(10))
    unary("Log", rand(10, low=0.01, high=5))
    unary("Sqrt", rand(10, low=0, high=5))
    unary("Reciprocal", rand(10, low=0.5, high=3))
    unary("Floor", rand(10))
    unary("Ceil", rand(10))
    unary("Erf", rand(10))


def activations():
    x = rand(2, 3, 5, low=-4, high=4)
    unary("Relu", x)
    unary("LeakyRelu", x, alpha=0.2)
    unary("Sigmoid", rand(20, low=-20, high=20))
    unary("Tanh", x)
    unary("HardSigmoid", x, alpha=0.3, beta=0.4)
    unary("HardSwish", x, opset=17)
    unary("Elu", x, alpha=0.7)
    unary("Selu", x)
    unary("Softplus", rand(20, low=-30, high=30))
    unary("Gelu", x, opset=20)
    unary("Gelu", x, opset=20, approximate="tanh", name="gelu_tanh", rtol=1e-5, atol=1e-5)
    case("clip", [node("Clip", ["x", "lo", "hi"], ["y"])],
         [("x", x), ("lo", np.array(-1, np.float32)), ("hi", np.array(0.5, np.float32))], ["y"])
    case("clip_min_only", [node("Clip", ["x", "lo"], ["y"])],
         [("x", x), ("lo", np.array(0.2, np.float32))], ["y"])
    case("clip_opset6", [node("Clip", ["x"], ["y"], min=-0.5, max=1.0)], [("x", x)], ["y"], opset=6)
    case("prelu", [node("PRelu", ["x", "slope"], ["y"])],
         [("x", rand(2, 3, 4, 4))], ["y"], initializers=[("slope", rand(3, 1, 1))])


def matmul():
    case("gemm_bias", [node("Gemm", ["a", "w", "b"], ["y"], transB=1)], [("a", rand(3, 5))], ["y"],
         initializers=[("w", rand(4, 5)), ("b", rand(4))], rtol=1e-5, atol=1e-5)
    case("gemm_alpha_beta", [node("Gemm", ["a", "w", "c"], ["y"], alpha=0.5, beta=2.0, transA=1)],
         [("a", rand(5, 3)), ("c", rand(3, 4))], ["y"], initializers=[("w", rand(5, 4))],
         rtol=1e-5, atol=1e-5)
    case("gemm_runtime_b", [node("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1, beta=0.5)],
         [("a", rand(6, 3)), ("b", rand(7, 6))], ["y"], initializers=[("c", rand(1))],
         rtol=1e-5, atol=1e-5)
    case("gemm_no_c", [node("Gemm", ["a", "b"], ["y"])], [("a", rand(2, 3)), ("b", rand(3, 2))],
         ["y"], rtol=1e-5, atol=1e-5)
    case("gemm_large", [node("Gemm", ["a", "w", "b"], ["y"], transB=1)], [("a", rand(17, 40))],
         ["y"], initializers=[("w", rand(29, 40)), ("b", rand(29))], rtol=1e-4, atol=1e-4)
    case("matmul_const", [node("MatMul", ["a", "w"], ["y"])], [("a", rand(2, 3, 8))], ["y"],
         initializers=[("w", rand(8, 5))], rtol=1e-5, atol=1e-5)
    case("matmul_batched", [node("MatMul", ["a", "b"], ["y"])],
         [("a", rand(2, 1, 3, 4)), ("b", rand(3, 4, 5))], ["y"], rtol=1e-5, atol=1e-5)
    case("matmul_vector_left", [node("MatMul", ["a", "b"], ["y"])],
         [("a", rand(4)), ("b", rand(2, 4, 3))], ["y"], rtol=1e-5, atol=1e-5)
    case("matmul_vector_right", [node("MatMul", ["a", "b"], ["y"])],
         [("a", rand(2, 3, 4)), ("b", rand(4))], ["y"], rtol=1e-5, atol=1e-5)


def conv():
    x = rand(2, 4, 7, 6)
    def c(name, w, attrs, bias=True, inp=x, rtol=1e-4, atol=1e-5):
        ins = ["x", "w", "b"] if bias else ["x", "w"]
        inits = [("w", w)] + ([("b", rand(w.shape[0]))] if bias else [])
        case(name, [node("Conv", ins, ["y"], **attrs)], [("x", inp)], ["y"], initializers=inits,
             rtol=rtol, atol=atol)
    c("conv_3x3_pad", rand(5, 4, 3, 3), dict(pads=[1, 1, 1, 1]))
    c("conv_stride2", rand(3, 4, 3, 3), dict(strides=[2, 2]), bias=False)
    c("conv_dilation", rand(3, 4, 2, 3), dict(dilations=[2, 2], pads=[1, 0, 2, 1]))
    c("conv_groups", rand(6, 2, 3, 3), dict(group=2, pads=[1, 1, 1, 1]))
    c("conv_depthwise", rand(4, 1, 3, 3), dict(group=4, pads=[1, 1, 1, 1], strides=[2, 1]))
    c("conv_depthwise_multiplier", rand(8, 1, 3, 3), dict(group=4, pads=[0, 1, 2, 1]))
    c("conv_pointwise", rand(5, 4, 1, 1), {})
    c("conv_same_upper", rand(3, 4, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2]))
    c("conv_same_lower", rand(3, 4, 4, 2), dict(auto_pad="SAME_LOWER"))
    c("conv_valid", rand(3, 4, 3, 3), dict(auto_pad="VALID", strides=[1, 2]))
    c("conv_1d", rand(3, 4, 3), dict(pads=[1, 2], strides=[2]), inp=rand(2, 4, 9))
    c("conv_3d", rand(2, 4, 2, 3, 2), dict(pads=[1, 0, 1, 0, 1, 0]), inp=rand(1, 4, 3, 4, 5))


def conv_transpose():
    x = rand(2, 4, 5, 4)
    def t(name, w, attrs, bias=True, inp=x):
        ins = ["x", "w", "b"] if bias else ["x", "w"]
        inits = [("w", w)] + ([("b", rand(w.shape[1] * attrs.get("group", 1)))] if bias else [])
        case(name, [node("ConvTranspose", ins, ["y"], **attrs)], [("x", inp)], ["y"],
             initializers=inits, rtol=1e-4, atol=1e-5)
    t("convtranspose", rand(4, 3, 3, 3), {})
    t("convtranspose_stride_pads", rand(4, 2, 3, 3), dict(strides=[2, 2], pads=[1, 0, 1, 2]),
      bias=False)
    t("convtranspose_output_padding", rand(4, 3, 3, 2), dict(strides=[2, 3], output_padding=[1, 2]))
    t("convtranspose_groups_dilation", rand(4, 2, 2, 3), dict(group=2, dilations=[2, 1]))
    t("convtranspose_output_shape", rand(4, 3, 3, 3), dict(strides=[2, 2], output_shape=[10, 8]))
    t("convtranspose_same_upper", rand(4, 3, 3, 3), dict(strides=[2, 2], auto_pad="SAME_UPPER"))
    t("convtranspose_1d", rand(4, 2, 3), dict(strides=[2]), inp=rand(1, 4, 6))
    t("convtranspose_3d", rand(4, 2, 2, 2, 2), dict(strides=[1, 2, 1]), inp=rand(1, 4, 2, 3, 2))


def pools():
    x = rand(2, 3, 7, 8)
    def p(name, op, attrs, inp=x, outs=("y",), opset=17):
        case(name, [node(op, ["x"], list(outs), **attrs)], [("x", inp)], list(outs), opset=opset)
    p("maxpool_2x2", "MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2]))
    p("maxpool_3x3_pad", "MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    p("maxpool_ceil", "MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1))
    p("maxpool_dilation", "MaxPool", dict(kernel_shape=[2, 2], dilations=[2, 2]))
    p("maxpool_indices", "MaxPool", dict(kernel_shape=[2, 3], strides=[2, 2], pads=[0, 1, 1, 0]),
      outs=("y", "i"))
    p("maxpool_1d", "MaxPool", dict(kernel_shape=[3], strides=[2]), inp=rand(2, 3, 9))
    p("maxpool_same", "MaxPool", dict(kernel_shape=[3, 3], auto_pad="SAME_UPPER", strides=[2, 2]))
    p("avgpool", "AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2]))
    p("avgpool_pad_exclude", "AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    p("avgpool_pad_include", "AveragePool",
      dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1))
    p("avgpool_ceil", "AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1))
    p("global_avgpool", "GlobalAveragePool", {})
    p("global_maxpool", "GlobalMaxPool", {})


def normalization():
    x = rand(2, 3, 4, 5)
    stats = [("s", rand(3)), ("b", rand(3)), ("m", rand(3)), ("v", rand(3, low=0.1, high=2))]
    case("batchnorm", [node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
         [("x", x)], ["y"], initializers=stats, rtol=1e-5, atol=1e-5)
    case("batchnorm_runtime_stats",
         [node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
         [("x", rand(2, 3))] + stats, ["y"], rtol=1e-5, atol=1e-5)
    case("layernorm", [node("LayerNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)],
         [("x", rand(2, 3, 8))], ["y"], initializers=[("s", rand(8)), ("b", rand(8))],
         rtol=1e-5, atol=1e-5)
    case("layernorm_axis1_stats", [node("LayerNormalization", ["x", "s"], ["y", "mean", "inv"], axis=1)],
         [("x", rand(2, 3, 4))], ["y", "mean", "inv"], initializers=[("s", rand(3, 4))],
         rtol=1e-5, atol=1e-5)
    case("softmax", [node("Softmax", ["x"], ["y"])], [("x", rand(2, 3, 5, low=-10, high=10))], ["y"])
    case("softmax_axis1", [node("Softmax", ["x"], ["y"], axis=1)], [("x", rand(2, 3, 5))], ["y"])
    case("softmax_opset11", [node("Softmax", ["x"], ["y"], axis=1)], [("x", rand(2, 3, 5))], ["y"],
         opset=11)
    case("logsoftmax", [node("LogSoftmax", ["x"], ["y"])], [("x", rand(3, 6, low=-10, high=10))],
         ["y"], rtol=1e-5, atol=1e-5)


def shape_ops():
    x = rand(2, 3, 4)
    case("identity", [node("Identity", ["x"], ["y"])], [("x", x)], ["y"])
    case("dropout", [node("Dropout", ["x"], ["y", "mask"])], [("x", x)], ["y", "mask"])
    # training mode with a constant ratio of 0 drops nothing
    case("dropout_training_zero_ratio", [node("Dropout", ["x", "r", "t"], ["y", "mask"])],
         [("x", x)], ["y", "mask"],
         initializers=[("r", np.array(0, np.float32)), ("t", np.array(True))],
         expected=[x, np.ones(x.shape, np.bool_)])
    for axis in (0, 2, -1):
        case(f"flatten_axis{axis}".replace("-", "m"), [node("Flatten", ["x"], ["y"], axis=axis)],
             [("x", x)], ["y"])
    case("reshape", [node("Reshape", ["x", "s"], ["y"])], [("x", x)], ["y"],
         initializers=[("s", np.array([0, -1, 2], np.int64))])
    case("reshape_allowzero", [node("Reshape", ["x", "s"], ["y"], allowzero=1)],
         [("x", rand(0, 3))], ["y"], initializers=[("s", np.array([3, 0], np.int64))], opset=14)
    case("squeeze", [node("Squeeze", ["x", "a"], ["y"])], [("x", rand(1, 3, 1, 2))], ["y"],
         initializers=[("a", np.array([0, -2], np.int64))])
    case("squeeze_all", [node("Squeeze", ["x"], ["y"])], [("x", rand(1, 3, 1, 2))], ["y"])
    case("squeeze_opset11", [node("Squeeze", ["x"], ["y"], axes=[2])], [("x", rand(1, 3, 1, 2))],
         ["y"], opset=11)
    case("unsqueeze", [node("Unsqueeze", ["x", "a"], ["y"])], [("x", x)], ["y"],
         initializers=[("a", np.array([0, -1, 2], np.int64))])
    case("unsqueeze_opset11", [node("Unsqueeze", ["x"], ["y"], axes=[1])], [("x", x)], ["y"],
         opset=11)
    case("transpose", [node("Transpose", ["x"], ["y"], perm=[2, 0, 1])], [("x", x)], ["y"])
    case("transpose_default", [node("Transpose", ["x"], ["y"])], [("x", rand(2, 3, 4, 5))], ["y"])
    case("transpose_int64", [node("Transpose", ["x"], ["y"], perm=[1, 0])], [("x", ints(3, 5))],
         ["y"])
    case("concat", [node("Concat", ["a", "b", "c"], ["y"], axis=1)],
         [("a", rand(2, 1, 3)), ("b", rand(2, 4, 3)), ("c", rand(2, 2, 3))], ["y"])
    case("concat_last", [node("Concat", ["a", "b"], ["y"], axis=-1)],
         [("a", ints(2, 3)), ("b", ints(2, 1))], ["y"])
    case("gather", [node("Gather", ["x", "i"], ["y"], axis=1)], [("x", x)], ["y"],
         initializers=[("i", np.array([[0, -1], [2, 1]], np.int64))])
    case("gather_scalar", [node("Gather", ["x", "i"], ["y"])], [("x", x), ("i", np.array(1, np.int64))],
         ["y"])
    case("gather_int32_indices", [node("Gather", ["x", "i"], ["y"], axis=-1)],
         [("x", x), ("i", np.array([3, 0, 3], np.int32))], ["y"])
    case("shape", [node("Shape", ["x"], ["y"])], [("x", x)], ["y"])
    case("shape_slice", [node("Shape", ["x"], ["y"], start=1, end=-1)], [("x", rand(2, 3, 4, 5))],
         ["y"], opset=15)
    case("size", [node("Size", ["x"], ["y"])], [("x", x)], ["y"])
    f = np.array([-2.7, -0.5, 0.0, 0.4, 1.5, 3.99, 1e3, -1e3], np.float32)
    for to, name in [(TensorProto.INT64, "int64"), (TensorProto.INT32, "int32"),
                     (TensorProto.BOOL, "bool"), (TensorProto.DOUBLE, "double"),
                     (TensorProto.FLOAT16, "float16"), (TensorProto.UINT8, "uint8_inrange")]:
        inp = f if name != "uint8_inrange" else np.abs(f[:6])
        case(f"cast_float_to_{name}", [node("Cast", ["x"], ["y"], to=to)], [("x", inp)], ["y"])
    case("cast_int64_to_float", [node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
         [("x", ints(6, low=-100, high=100))], ["y"])
    case("cast_bool_to_int32", [node("Cast", ["x"], ["y"], to=TensorProto.INT32)],
         [("x", RNG.integers(0, 2, size=5).astype(np.bool_))], ["y"])
    case("cast_float16_to_float", [node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
         [("x", rand(7).astype(np.float16))], ["y"])
    case("expand", [node("Expand", ["x", "s"], ["y"])], [("x", rand(3, 1))], ["y"],
         initializers=[("s", np.array([2, 1, 4], np.int64))])
    case("constant_of_shape", [node("ConstantOfShape", ["s"], ["y"],
                                    value=numpy_helper.from_array(np.array([7], np.int64)))],
         [("s", np.array([2, 3], np.int64))], ["y"])
    case("constant_of_shape_default", [node("ConstantOfShape", ["s"], ["y"])],
         [("s", np.array([4], np.int64))], ["y"])
    case("range_float", [node("Range", ["a", "b", "c"], ["y"])],
         [("a", np.array(1.0, np.float32)), ("b", np.array(3.1, np.float32)),
          ("c", np.array(0.3, np.float32))], ["y"])
    case("range_int64", [node("Range", ["a", "b", "c"], ["y"])],
         [("a", np.array(10, np.int64)), ("b", np.array(-3, np.int64)),
          ("c", np.array(-4, np.int64))], ["y"])
    s = lambda *v: np.array(v, np.int64)
    case("slice", [node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], [("x", rand(5, 6, 7))],
         ["y"], initializers=[("st", s(1, -1)), ("en", s(4, -7)), ("ax", s(0, 2)), ("sp", s(2, -2))])
    case("slice_clamp", [node("Slice", ["x", "st", "en"], ["y"])], [("x", rand(4, 5))], ["y"],
         initializers=[("st", s(-100, 2)), ("en", s(100, 2**62))])
    case("slice_runtime", [node("Slice", ["x", "st", "en", "ax"], ["y"])],
         [("x", rand(4, 5)), ("st", s(1)), ("en", s(-1)), ("ax", s(1))], ["y"])
    case("slice_opset9", [node("Slice", ["x"], ["y"], starts=[0, 1], ends=[2, 100], axes=[1, 0])],
         [("x", rand(4, 5))], ["y"], opset=9)
    # The shape arithmetic an exporter writes for x.view(x.size(0), -1), at run time.
    nodes = [
        node("Shape", ["x"], ["shape"]),
        node("Gather", ["shape", "zero"], ["batch"], axis=0),
        node("Unsqueeze", ["batch", "axes"], ["batch1"]),
        node("Concat", ["batch1", "minus_one"], ["target"], axis=0),
        node("Reshape", ["x", "target"], ["flat"]),
        node("Relu", ["flat"], ["y"]),
    ]
    case("shape_arithmetic", nodes, [("x", rand(3, 2, 4))], ["y"],
         initializers=[("zero", np.array(0, np.int64)), ("axes", s(0)), ("minus_one", s(-1))],
         input_shapes={"x": ["batch", 2, 4]})


def resize():
    x = rand(1, 2, 3, 4)
    f = lambda *v: np.array(v, np.float32)
    s = lambda *v: np.array(v, np.int64)
    def r(name, attrs, scales=None, sizes=None, inp=x, opset=18):
        ins = ["x", "", "sc"] if scales is not None else ["x", "", "", "sz"]
        inits = [("sc", scales)] if scales is not None else [("sz", sizes)]
        case(name, [node("Resize", ins, ["y"], **attrs)], [("x", inp)], ["y"], initializers=inits,
             opset=opset, rtol=1e-5, atol=1e-5)
    r("resize_nearest", {}, scales=f(1, 1, 2, 2))
    r("resize_nearest_down", dict(nearest_mode="floor", coordinate_transformation_mode="asymmetric"),
      scales=f(1, 1, 0.6, 0.5))
    r("resize_nearest_ceil_sizes", dict(nearest_mode="ceil"), sizes=s(1, 2, 5, 7))
    r("resize_nearest_prefer_ceil", dict(nearest_mode="round_prefer_ceil",
                                         coordinate_transformation_mode="align_corners"),
      sizes=s(1, 2, 7, 3))
    r("resize_linear", dict(mode="linear"), scales=f(1, 1, 2, 1.5))
    r("resize_linear_align", dict(mode="linear", coordinate_transformation_mode="align_corners"),
      sizes=s(1, 2, 6, 9))
    r("resize_linear_pytorch", dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
      sizes=s(1, 2, 1, 7))
    r("resize_linear_symmetric", dict(mode="linear",
                                      coordinate_transformation_mode="half_pixel_symmetric"),
      scales=f(1, 1, 0.7, 1.9), opset=19)
    r("resize_linear_asymmetric_down", dict(mode="linear", coordinate_transformation_mode="asymmetric"),
      scales=f(1, 1, 0.5, 0.5))
    r("resize_axes", dict(mode="linear", axes=[3, 2]), sizes=s(8, 5))
    r("resize_nearest_int32", {}, scales=f(2, 3), inp=ints(2, 3, dtype=np.int32))
    r("resize_opset13", dict(mode="linear"), scales=f(1, 1, 2, 2), opset=13)


def recurrent():
    T, B, I, H = 4, 3, 5, 6
    x = rand(T, B, I, low=-1, high=1)
    def weights(gates, dirs):
        return [("w", rand(dirs, gates * H, I, low=-0.5, high=0.5)),
                ("r", rand(dirs, gates * H, H, low=-0.5, high=0.5)),
                ("b", rand(dirs, 2 * gates * H, low=-0.5, high=0.5))]
    lens = np.array([4, 2, 3], np.int32)
    for op, gates in (("LSTM", 4), ("GRU", 3)):
        low = op.lower()
        outs = ["y", "yh", "yc"] if op == "LSTM" else ["y", "yh"]
        case(f"{low}_forward", [node(op, ["x", "w", "r", "b"], outs, hidden_size=H)], [("x", x)], outs,
             initializers=weights(gates, 1), rtol=1e-5, atol=1e-5)
        case(f"{low}_bidirectional_lens",
             [node(op, ["x", "w", "r", "b", "lens", "h0"], outs, hidden_size=H,
                   direction="bidirectional")],
             [("x", x), ("lens", lens), ("h0", rand(2, B, H))], outs,
             initializers=weights(gates, 2), rtol=1e-5, atol=1e-5)
        case(f"{low}_reverse_runtime_weights",
             [node(op, ["x", "w", "r"], outs, hidden_size=H, direction="reverse", clip=0.8)],
             [("x", x), ("w", rand(1, gates * H, I, low=-0.5, high=0.5)),
              ("r", rand(1, gates * H, H, low=-0.5, high=0.5))], outs, rtol=1e-5, atol=1e-5)
        # ONNX Runtime has no batch-first layout: the expected values come from
        # the sequence-first model on the transposed input, transposed back.
        xb, wts = rand(B, T, I), weights(gates, 1)
        ref = helper.make_model(helper.make_graph(
            [node(op, ["x", "w", "r", "b"], outs, hidden_size=H)], "ref",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, B, I])],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
            [numpy_helper.from_array(a, n) for n, a in wts]),
            opset_imports=[helper.make_opsetid("", 17)])
        got = ort.InferenceSession(ref.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            outs, {"x": xb.transpose(1, 0, 2).copy()})
        expected = [got[0].transpose(2, 0, 1, 3).copy()] + [g.transpose(1, 0, 2).copy() for g in got[1:]]
        case(f"{low}_batch_first", [node(op, ["x", "w", "r", "b"], outs, hidden_size=H, layout=1)],
             [("x", xb)], outs, initializers=wts, rtol=1e-5, atol=1e-5, expected=expected)
    case("lstm_peepholes_activations",
         [node("LSTM", ["x", "w", "r", "b", "", "h0", "c0", "p"], ["y", "yh", "yc"], hidden_size=H,
               activations=["HardSigmoid", "Tanh", "Softsign"], activation_alpha=[0.3],
               activation_beta=[0.4], input_forget=1)],
         [("x", x), ("h0", rand(1, B, H)), ("c0", rand(1, B, H))], ["y", "yh", "yc"],
         initializers=weights(4, 1) + [("p", rand(1, 3 * H))], rtol=1e-5, atol=1e-5)
    case("gru_linear_before_reset",
         [node("GRU", ["x", "w", "r", "b"], ["y", "yh"], hidden_size=H, linear_before_reset=1)],
         [("x", x)], ["y", "yh"], initializers=weights(3, 1), rtol=1e-5, atol=1e-5)


def fusions():
    """Producers that absorb the activation after them, and cases they must not."""
    x = rand(1, 3, 6, 6)
    w, b = rand(4, 3, 3, 3), rand(4)
    lo, hi = np.array(-0.5, np.float32), np.array(0.7, np.float32)
    case("fused_conv_relu", [node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                             node("Relu", ["c"], ["y"])], [("x", x)], ["y"],
         initializers=[("w", w), ("b", b)], rtol=1e-4, atol=1e-5)
    case("fused_conv_clip", [node("Conv", ["x", "w"], ["c"]), node("Clip", ["c", "lo", "hi"], ["y"])],
         [("x", x)], ["y"], initializers=[("w", w), ("lo", lo), ("hi", hi)], rtol=1e-4, atol=1e-5)
    case("fused_depthwise_clip",
         [node("Conv", ["x", "dw", "db"], ["c"], group=3, pads=[1, 1, 1, 1]),
          node("Clip", ["c", "zero", "six"], ["y"])], [("x", x)], ["y"],
         initializers=[("dw", rand(3, 1, 3, 3)), ("db", rand(3)), ("zero", np.array(0, np.float32)),
                       ("six", np.array(0.5, np.float32))], rtol=1e-4, atol=1e-5)
    case("fused_gemm_relu", [node("Gemm", ["a", "gw", "gb"], ["c"], transB=1), node("Relu", ["c"], ["y"])],
         [("a", rand(3, 5))], ["y"], initializers=[("gw", rand(4, 5)), ("gb", rand(4))],
         rtol=1e-5, atol=1e-5)
    case("fused_matmul_clip_opset6", [node("MatMul", ["a", "mw"], ["c"]),
                                      node("Clip", ["c"], ["y"], min=-0.2, max=0.3)],
         [("a", rand(2, 3, 5))], ["y"], initializers=[("mw", rand(5, 4))], opset=9,
         rtol=1e-5, atol=1e-5)
    case("unfused_two_readers", [node("Conv", ["x", "w"], ["c"]), node("Relu", ["c"], ["r"]),
                                 node("Add", ["c", "r"], ["y"])], [("x", x)], ["y"],
         initializers=[("w", w)], rtol=1e-4, atol=1e-5)
    case("unfused_graph_output", [node("Gemm", ["a", "gw"], ["c"], transB=1), node("Relu", ["c"], ["y"])],
         [("a", rand(3, 5))], ["c", "y"], initializers=[("gw", rand(4, 5))], rtol=1e-5, atol=1e-5)
    case("unfused_runtime_bound", [node("MatMul", ["a", "mw"], ["c"]), node("Clip", ["c", "lo"], ["y"])],
         [("a", rand(2, 5)), ("lo", lo)], ["y"], initializers=[("mw", rand(5, 4))],
         rtol=1e-5, atol=1e-5)


def reductions():
    x = rand(3, 4, 5)
    s = lambda *v: np.array(v, np.int64)
    for op in ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
               "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare"]:
        case(op.lower(), [node(op, ["x", "a"], ["y"])], [("x", x)], ["y"],
             initializers=[("a", s(0, -1))], opset=18, rtol=1e-5, atol=1e-5)
    case("reducelogsum", [node("ReduceLogSum", ["x", "a"], ["y"], keepdims=0)],
         [("x", rand(3, 4, 5, low=0.1, high=2))], ["y"], initializers=[("a", s(1))], opset=18,
         rtol=1e-5, atol=1e-5)
    case("reducemean_all", [node("ReduceMean", ["x"], ["y"], keepdims=0)], [("x", x)], ["y"],
         opset=18, rtol=1e-5, atol=1e-6)
    case("reducemean_opset13", [node("ReduceMean", ["x"], ["y"], axes=[1])], [("x", x)], ["y"],
         opset=13, rtol=1e-5, atol=1e-6)
    case("reducesum_opset13_noop", [node("ReduceSum", ["x", "a"], ["y"], noop_with_empty_axes=1)],
         [("x", x)], ["y"], initializers=[("a", np.array([], np.int64))], opset=13)
    case("reducesum_int64", [node("ReduceSum", ["x", "a"], ["y"], keepdims=0)], [("x", ints(3, 4))],
         ["y"], initializers=[("a", s(1))], opset=13)
    case("reducemax_opset11", [node("ReduceMax", ["x"], ["y"], axes=[0, 2], keepdims=0)],
         [("x", x)], ["y"], opset=11)
    case("argmax", [node("ArgMax", ["x"], ["y"], axis=1)], [("x", x)], ["y"])
    ties = np.array([[1, 3, 3, 0], [2, 2, 1, 2]], np.float32)
    case("argmax_last", [node("ArgMax", ["x"], ["y"], axis=-1, keepdims=0, select_last_index=1)],
         [("x", ties)], ["y"])
    case("argmin", [node("ArgMin", ["x"], ["y"], axis=0, keepdims=0)], [("x", ties)], ["y"])


def rearrange():
    x = rand(2, 6, 3)
    s = lambda *v: np.array(v, np.int64)
    case("split_sizes", [node("Split", ["x", "s"], ["a", "b", "c"], axis=1)], [("x", x)],
         ["a", "b", "c"], initializers=[("s", s(1, 3, 2))])
    case("split_equal", [node("Split", ["x"], ["a", "b"], axis=-1)], [("x", rand(2, 4))], ["a", "b"])
    case("split_num_outputs", [node("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3)],
         [("x", rand(2, 7))], ["a", "b", "c"], opset=18)
    case("split_opset11", [node("Split", ["x"], ["a", "b"], axis=0, split=[1, 1])], [("x", x)],
         ["a", "b"], opset=11)
    case("tile", [node("Tile", ["x", "r"], ["y"])], [("x", rand(2, 3))], ["y"],
         initializers=[("r", s(2, 3))])
    case("tile_int64", [node("Tile", ["x", "r"], ["y"])], [("x", ints(2, 1, 3))], ["y"],
         initializers=[("r", s(1, 4, 2))])
    case("pad_constant", [node("Pad", ["x", "p", "v"], ["y"])], [("x", rand(2, 3))], ["y"],
         initializers=[("p", s(1, 0, 2, 1)), ("v", np.array(1.5, np.float32))])
    case("pad_negative", [node("Pad", ["x", "p"], ["y"])], [("x", rand(3, 4))], ["y"],
         initializers=[("p", s(-1, 2, 0, -2))])
    for mode in ("reflect", "edge"):
        case(f"pad_{mode}", [node("Pad", ["x", "p"], ["y"], mode=mode)], [("x", rand(2, 3, 4))],
             ["y"], initializers=[("p", s(0, 1, 2, 0, 2, 3))])
    case("pad_wrap", [node("Pad", ["x", "p"], ["y"], mode="wrap")], [("x", rand(3, 4))], ["y"],
         initializers=[("p", s(1, 2, 2, 3))], opset=19)
    case("pad_axes", [node("Pad", ["x", "p", "", "a"], ["y"])], [("x", rand(2, 3, 4))], ["y"],
         initializers=[("p", s(1, 2)), ("a", s(-1))], opset=18)
    case("pad_opset2", [node("Pad", ["x"], ["y"], pads=[0, 1, 1, 0], value=2.0)],
         [("x", rand(2, 3))], ["y"], opset=2)
    k = lambda v: np.array([v], np.int64)
    case("topk", [node("TopK", ["x", "k"], ["v", "i"])], [("x", rand(3, 7))], ["v", "i"],
         initializers=[("k", k(3))])
    case("topk_smallest_axis0", [node("TopK", ["x", "k"], ["v", "i"], axis=0, largest=0)],
         [("x", rand(6, 2, 3))], ["v", "i"], initializers=[("k", k(2))])
    case("topk_ties", [node("TopK", ["x", "k"], ["v", "i"])],
         [("x", np.array([[1, 3, 3, 0, 3], [2, 2, 1, 2, 0]], np.float32))], ["v", "i"],
         initializers=[("k", k(4))])
    case("topk_opset1", [node("TopK", ["x"], ["v", "i"], k=2)], [("x", rand(2, 5))], ["v", "i"],
         opset=1)
    case("instancenorm", [node("InstanceNormalization", ["x", "s", "b"], ["y"])],
         [("x", rand(2, 3, 4, 5))], ["y"], initializers=[("s", rand(3)), ("b", rand(3))],
         rtol=1e-5, atol=1e-5)


def extra_types():
    """Element types beyond the common ones (drawn last: earlier cases keep their data)."""
    x8 = ints(1, 2, 5, 6, low=-128, high=127, dtype=np.int8)
    case("maxpool_int8", [node("MaxPool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 1],
                               pads=[1, 0, 1, 1], dilations=[1, 2])], [("x", x8)], ["y"], opset=12)
    big = np.array([[2**62 + 3, 2**62 + 1, -2**62, 2**62 + 2, 7]], np.int64)
    case("topk_int64_exact", [node("TopK", ["x", "k"], ["v", "i"])], [("x", big)], ["v", "i"],
         initializers=[("k", np.array([3], np.int64))])


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for family in (elementwise, activations, matmul, conv, conv_transpose, pools, normalization, shape_ops,
                   reductions, rearrange, fusions, resize, recurrent, extra_types):
        family()
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("# name rtol atol — written by tests/data/make_kernel_cases.py\n")
        for name, rtol, atol in CASES:
            f.write(f"{name} {rtol:g} {atol:g}\n")
    total = sum(os.path.getsize(os.path.join(r, n)) for r, _, fs in os.walk(OUT) for n in fs)
    print(f"{len(CASES)} cases, {total} bytes in {OUT}")
    assert total < 200 * 1024, "the kernel cases must stay small"


if __name__ == "__main__":
    sys.exit(main())
