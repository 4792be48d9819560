#!/usr/bin/env python3
"""Writes the small ONNX models and TensorProto files the model tests load.

Run from anywhere:  python3 tests/data/make_models.py
Needs the `onnx` and `numpy` packages. Output goes to tests/data/onnx/; every
file is a few KB. The files are committed; rerun after changing this script.
The models are encoded by onnx's own serializer, so the tests check strand
against the reference encoder rather than against strand's own writer.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx")
OPSET = [helper.make_opsetid("", 17)]


def save(model, name, check=True):
    model.producer_name = "strand-tests"
    model.producer_version = "1.0"
    if check:
        onnx.checker.check_model(model)
    path = os.path.join(OUT, name)
    onnx.save(model, path)
    size = os.path.getsize(path)
    assert size < 50 * 1024, f"{name} is {size} bytes"
    print(f"{name}: {size} bytes")


def weights(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def mlp():
    """[batch, 4] -> Gemm -> Relu -> Gemm -> Softmax -> [batch, 3]."""
    inits = [
        numpy_helper.from_array(weights((8, 4), 1), "w1"),
        numpy_helper.from_array(weights((8,), 2), "b1"),
        numpy_helper.from_array(weights((3, 8), 3), "w2"),
        numpy_helper.from_array(weights((3,), 4), "b2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu1"),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"], name="fc2", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 3])],
        inits)
    save(helper.make_model(graph, opset_imports=OPSET), "mlp.onnx")


def cnn():
    """Conv -> Relu -> MaxPool -> Flatten -> Gemm; the output shape is left to
    inference."""
    inits = [
        numpy_helper.from_array(weights((4, 3, 3, 3), 5), "conv.w"),
        numpy_helper.from_array(weights((4,), 6), "conv.b"),
        numpy_helper.from_array(weights((10, 64), 7), "fc.w"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["c"], name="conv",
                         pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc.w"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits)
    save(helper.make_model(graph, opset_imports=OPSET), "cnn.onnx", check=False)


def shape_chain():
    """x.reshape(x.shape[0], -1) the way exporters write it: Shape -> Gather
    -> Unsqueeze -> Concat -> Reshape, all foldable for a static x."""
    inits = [
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axes0"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus_one"),
    ]
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"], name="unsqueeze"),
        helper.make_node("Concat", ["batch1", "minus_one"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape"),
    ]
    graph = helper.make_graph(
        nodes, "shape_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits)
    save(helper.make_model(graph, opset_imports=OPSET), "shape_chain.onnx", check=False)


def control_flow():
    """If whose branches use outer values, and a Loop with a body."""
    then_graph = helper.make_graph(
        [helper.make_node("Add", ["x", "bias"], ["then_out"], name="then_add")],
        "then", [], [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [2])])
    else_graph = helper.make_graph(
        [helper.make_node("Sub", ["x", "bias"], ["else_out"], name="else_sub")],
        "else", [], [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [2])])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="keep_going"),
         helper.make_node("Add", ["acc_in", "x"], ["acc_out"], name="accumulate")],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [2])])
    nodes = [
        helper.make_node("If", ["flag"], ["chosen"], name="branch", then_branch=then_graph,
                         else_branch=else_graph),
        helper.make_node("Loop", ["trips", "", "chosen"], ["total"], name="loop", body=body),
    ]
    graph = helper.make_graph(
        nodes, "control_flow",
        [helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("trips", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.array([0.5, -0.5], dtype=np.float32), "bias")])
    save(helper.make_model(graph, opset_imports=OPSET), "control_flow.onnx")


def typed_fields():
    """Initializers in the typed *_data fields (not raw_data), one per
    element type that uses them, each passed to an output."""
    specs = [
        ("f32", TensorProto.FLOAT, [1.5, -2.0, 3.25]),
        ("f16", TensorProto.FLOAT16, np.array([1.0, -2.0, 0.5], dtype=np.float16)),
        ("bf16", TensorProto.BFLOAT16, [1.0, 2.0, -3.0]),
        ("i8", TensorProto.INT8, [-128, 0, 127]),
        ("u8", TensorProto.UINT8, [0, 1, 255]),
        ("i16", TensorProto.INT16, [-32768, 5, 32767]),
        ("u16", TensorProto.UINT16, [0, 7, 65535]),
        ("i32", TensorProto.INT32, [-2147483648, 0, 2147483647]),
        ("i64", TensorProto.INT64, [-(2**63), 0, 2**63 - 1]),
        ("u32", TensorProto.UINT32, [0, 1, 4294967295]),
        ("u64", TensorProto.UINT64, [0, 1, 2**64 - 1]),
        ("f64", TensorProto.DOUBLE, [0.1, -0.2, 1e300]),
        ("b", TensorProto.BOOL, [True, False, True]),
    ]
    inits, nodes, outputs = [], [], []
    for name, dtype, values in specs:
        if dtype == TensorProto.FLOAT16:
            t = helper.make_tensor(name, dtype, [3], values.view(np.uint16).tolist(), raw=False)
            t.ClearField("int32_data")
            t.int32_data.extend(values.view(np.uint16).tolist())
        elif dtype == TensorProto.BFLOAT16:
            bits = [int(np.array(v, dtype=np.float32).view(np.uint32)) >> 16 for v in values]
            t = TensorProto(name=name, data_type=dtype, dims=[3])
            t.int32_data.extend(bits)
        else:
            t = helper.make_tensor(name, dtype, [3], values, raw=False)
        assert not t.raw_data
        inits.append(t)
        nodes.append(helper.make_node("Identity", [name], [name + "_out"], name="id_" + name))
        outputs.append(helper.make_tensor_value_info(name + "_out", dtype, [3]))
    graph = helper.make_graph(nodes, "typed_fields", [], outputs, inits)
    save(helper.make_model(graph, opset_imports=OPSET), "typed_fields.onnx")


def external():
    """Weights in an external file beside the model."""
    os.makedirs(os.path.join(OUT, "external"), exist_ok=True)
    w = numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(8, 8), "w")
    b = numpy_helper.from_array(np.arange(8, dtype=np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc")], "external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [w, b])
    model = helper.make_model(graph, opset_imports=OPSET)
    onnx.external_data_helper.convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    model.producer_name = "strand-tests"
    model.producer_version = "1.0"
    onnx.save(model, os.path.join(OUT, "external", "model.onnx"))
    print("external/model.onnx + weights.bin")


def unsupported():
    """Features strand refuses by name."""
    seq = helper.make_graph(
        [helper.make_node("SequenceLength", ["s"], ["n"])], "sequence",
        [helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("n", TensorProto.INT64, [])])
    save(helper.make_model(seq, opset_imports=OPSET), "sequence_input.onnx")
    sparse = helper.make_graph(
        [helper.make_node("Identity", ["sp"], ["y"])], "sparse", [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    values = helper.make_tensor("sp_values", TensorProto.FLOAT, [1], [1.0])
    indices = helper.make_tensor("sp_indices", TensorProto.INT64, [1], [2])
    sparse.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))
    sparse.sparse_initializer[0].values.name = "sp"
    save(helper.make_model(sparse, opset_imports=OPSET), "sparse_initializer.onnx", check=False)


def tensor_files():
    """TensorProto files in the layout of ONNX test data."""
    x = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    t = numpy_helper.from_array(x, "input")
    with open(os.path.join(OUT, "input_0.pb"), "wb") as f:
        f.write(t.SerializeToString())
    i = helper.make_tensor("ids", TensorProto.INT64, [4], [1, -2, 3, 2**40], raw=False)
    with open(os.path.join(OUT, "ids_typed.pb"), "wb") as f:
        f.write(i.SerializeToString())
    print("input_0.pb, ids_typed.pb")


def main():
    os.makedirs(OUT, exist_ok=True)
    np.random.seed(0)
    mlp()
    cnn()
    shape_chain()
    control_flow()
    typed_fields()
    external()
    unsupported()
    tensor_files()
    return 0


if __name__ == "__main__":
    sys.exit(main())
