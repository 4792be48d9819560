#!/usr/bin/env python3
"""Builds a corpus of hostile ONNX model files from valid ones.

    VENV=$(scripts/venv.sh)
    $VENV/bin/python scripts/make_hostile_models.py OUTDIR [--seed N] [MODEL.onnx ...]

The inputs default to models/mlp_tiny.onnx and models/cnn_tiny.onnx; two
minimal models (one Relu; one Add with an initializer) are built here as well,
small enough to be cut at every byte. The output is a function of the inputs
and the seed only: the same command gives the same bytes.

Every file's name says what it is (truncated_mlp_tiny_at_000512.onnx,
dims_initializer_2pow62.onnx, ...). OUTDIR/manifest.tsv lists each file with
    file  kind  expect  note
where expect is
    error  strand must refuse the file with a status (a well-defined fault:
           bad bytes, a length past the end, a cycle, a missing tensor ...);
    any    the file may or may not be a valid model (a flipped weight bit, a
           truncation at a field boundary, deep but legal nesting): strand may
           accept or refuse it, but must not crash, hang or leak;
    ok     a valid model, kept as a control.
Nothing here runs strand; tests read the manifest.

Kinds: valid, truncated, bitflip, dims, length, wire, nesting, graph,
initializer, attribute, opset, external, names, repeated.
"""
import argparse
import os
import random
import struct
import sys

try:
    import onnx
    from onnx import TensorProto, helper
except ImportError:  # pragma: no cover
    sys.exit("make_hostile_models.py needs onnx: VENV=$(scripts/venv.sh); "
             "$VENV/bin/python scripts/make_hostile_models.py OUTDIR")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODELS = [os.path.join(REPO, "models", "mlp_tiny.onnx"),
                  os.path.join(REPO, "models", "cnn_tiny.onnx")]
BIT_FLIP_FILES = 300

# ---- protobuf wire format -------------------------------------------------------

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5

# Field numbers used below (onnx.proto).
MODEL_IR_VERSION, MODEL_GRAPH, MODEL_OPSET = 1, 7, 8
GRAPH_NODE, GRAPH_NAME, GRAPH_INITIALIZER, GRAPH_INPUT, GRAPH_OUTPUT = 1, 2, 5, 11, 12
NODE_INPUT, NODE_OUTPUT, NODE_NAME, NODE_OP_TYPE, NODE_ATTRIBUTE = 1, 2, 3, 4, 5
ATTRIBUTE_NAME, ATTRIBUTE_G, ATTRIBUTE_TYPE = 1, 6, 20
TENSOR_DIMS, TENSOR_DATA_TYPE, TENSOR_FLOAT_DATA, TENSOR_NAME, TENSOR_RAW_DATA = 1, 2, 4, 8, 9


def varint(value):
    """Encodes an unsigned varint; negative values as 10-byte two's complement."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(field, wire_type):
    return varint(field << 3 | wire_type)


def length_field(field, content):
    return key(field, LENGTH) + varint(len(content)) + content


def varint_field(field, value):
    return key(field, VARINT) + varint(value)


def read_varint(buf, at):
    shift = value = 0
    while True:
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


class Field:
    """One field of a message: where its tag, length and value lie."""

    def __init__(self, number, wire_type, tag_start, value_start, value_end):
        self.number, self.wire_type = number, wire_type
        self.tag_start, self.value_start, self.value_end = tag_start, value_start, value_end


def fields(buf):
    """The fields of a (valid) message, in order."""
    out, at = [], 0
    while at < len(buf):
        tag_start = at
        tag, at = read_varint(buf, at)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == VARINT:
            _, end = read_varint(buf, at)
            start = at
        elif wire_type == FIXED64:
            start, end = at, at + 8
        elif wire_type == FIXED32:
            start, end = at, at + 4
        elif wire_type == LENGTH:
            size, start = read_varint(buf, at)
            end = start + size
        else:
            raise ValueError("groups are not expected in the input models")
        out.append(Field(number, wire_type, tag_start, start, end))
        at = end
    return out


def find(buf, number, index=0):
    matches = [f for f in fields(buf) if f.number == number and f.wire_type == LENGTH]
    return matches[index]


def edit(buf, path, replace):
    """Replaces the length-delimited field reached by `path`, a list of
    (field number, occurrence) from the outermost message down, with
    replace(field, content) (the field's whole encoding). The containers on the
    way keep truthful lengths, so only the replaced field lies, if it does."""
    number, index = path[0]
    f = find(buf, number, index)
    content = buf[f.value_start:f.value_end]
    if len(path) == 1:
        new = replace(f, content)
    else:
        new = length_field(number, edit(content, path[1:], replace))
    return buf[:f.tag_start] + new + buf[f.value_end:]


def claim_length(claimed):
    """A replacement keeping the content but claiming another length."""
    return lambda f, content: key(f.number, LENGTH) + varint(claimed) + content


def top_level_boundaries(buf):
    return {f.value_end for f in fields(buf)} | {0}


# ---- the corpus -----------------------------------------------------------------

class Corpus:
    def __init__(self, directory):
        self.directory = directory
        self.rows = []
        self.names = set()

    def add(self, name, data, kind, expect, note):
        if isinstance(data, onnx.ModelProto):
            data = data.SerializeToString()
        name = name + ".onnx"
        assert name not in self.names, name
        assert expect in ("error", "any", "ok"), expect
        self.names.add(name)
        with open(os.path.join(self.directory, name), "wb") as f:
            f.write(data)
        self.rows.append((name, kind, expect, note))

    def write_manifest(self):
        with open(os.path.join(self.directory, "manifest.tsv"), "w") as f:
            f.write("# file\tkind\texpect\tnote (written by scripts/make_hostile_models.py)\n")
            for row in sorted(self.rows):
                f.write("\t".join(row) + "\n")


def minimal_relu():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
                             producer_name="make_hostile_models")


def minimal_add():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [1, 4],
                              struct.pack("<4f", 0.5, -1.0, 2.0, 0.0), raw=True)
    graph = helper.make_graph([helper.make_node("Add", ["x", "bias"], ["y"], name="add")], "g",
                              [x], [y], initializer=[bias])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
                             producer_name="make_hostile_models")


def copy(model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    return m


# ---- byte-level damage ------------------------------------------------------------

def truncations(corpus, name, data, rng, every_byte):
    boundaries = top_level_boundaries(data)
    size = len(data)
    if every_byte:
        lengths = set(range(size))
    else:
        lengths = set(range(0, min(size, 16)))
        power = 16
        while power < size:
            lengths |= {power - 1, power, power + 1}
            power *= 2
        lengths |= {b + d for b in boundaries for d in (-1, 0, 1)}
        lengths |= {rng.randrange(size) for _ in range(32)}
        lengths |= {size - 1, size - 2}
        lengths = {n for n in lengths if 0 <= n < size}
    for n in sorted(lengths):
        at_boundary = n in boundaries and n > 0
        corpus.add(f"truncated_{name}_at_{n:06d}", data[:n], "truncated",
                   "any" if at_boundary else "error",
                   f"first {n} of {size} bytes" + (" (a top-level field boundary)"
                                                     if at_boundary else ""))


def bit_flips(corpus, name, data, rng, count):
    for i in range(count):
        damaged = bytearray(data)
        flips = rng.choice((1, 1, 1, 2, 4, 8))
        where = []
        for _ in range(flips):
            bit = rng.randrange(len(data) * 8)
            damaged[bit // 8] ^= 1 << (bit % 8)
            where.append(bit)
        corpus.add(f"bitflip_{name}_{i:03d}", bytes(damaged), "bitflip", "any",
                   "flipped bits " + ",".join(map(str, sorted(where))))


def wire_damage(corpus, base):
    data = base.SerializeToString()
    graph = find(data, MODEL_GRAPH)
    rest = len(data) - graph.value_start

    def add(name, damaged, expect, note, kind="length"):
        corpus.add(name, damaged, kind, expect, note)

    # Lengths that point past the end of the file, or of their container.
    for claimed, label in ((rest + 1, "eof_plus_1"), (1 << 31, "2pow31"), (1 << 32, "2pow32"),
                           ((1 << 63) - 1, "int64max"), ((1 << 64) - 1, "uint64max")):
        add(f"length_graph_{label}", edit(data, [(MODEL_GRAPH, 0)], claim_length(claimed)),
            "error", f"the graph field claims {claimed} bytes; {rest} follow")
    init = find(graph_bytes(data), GRAPH_INITIALIZER)
    add("length_initializer_past_graph",
        edit(data, [(MODEL_GRAPH, 0), (GRAPH_INITIALIZER, 0)],
             claim_length(init.value_end - init.value_start + 64)),
        "error", "an initializer claims 64 bytes more than it has; the graph is honest")
    add("length_raw_data_past_eof",
        edit(data, [(MODEL_GRAPH, 0), (GRAPH_INITIALIZER, 0), (TENSOR_RAW_DATA, 0)],
             claim_length(1 << 40)),
        "error", "raw_data claims 2^40 bytes")
    add("length_raw_data_past_initializer",
        edit(data, [(MODEL_GRAPH, 0), (GRAPH_INITIALIZER, 0), (TENSOR_RAW_DATA, 0)],
             lambda f, c: key(f.number, LENGTH) + varint(len(c) + 8) + c),
        "error", "raw_data claims 8 bytes more than its initializer holds")
    add("length_node_name_2pow40",
        edit(data, [(MODEL_GRAPH, 0), (GRAPH_NODE, 0), (NODE_NAME, 0)], claim_length(1 << 40)),
        "error", "a node name claims 2^40 bytes")
    add("length_node_past_graph",
        edit(data, [(MODEL_GRAPH, 0), (GRAPH_NODE, 0)],
             lambda f, c: key(f.number, LENGTH) + varint(len(c) + 3) + c),
        "error", "a node claims 3 bytes more than it has, eating into the next field")
    add("length_node_short_by_one",
        edit(data, [(MODEL_GRAPH, 0), (GRAPH_NODE, 0)],
             lambda f, c: key(f.number, LENGTH) + varint(len(c) - 1) + c),
        "error", "a node claims one byte less than it has")

    # Broken varints and tags.
    add("wire_varint_overlong_11_bytes",
        edit(data, [(MODEL_GRAPH, 0)],
             lambda f, c: key(f.number, LENGTH) + b"\x80" * 10 + b"\x01" + c),
        "error", "the graph's length is an 11-byte varint", "wire")
    add("wire_varint_10_bytes_overflowing",
        data[:graph.tag_start] + varint_field(MODEL_IR_VERSION, 0)[:1] + b"\xff" * 9 + b"\x7f"
        + data[graph.tag_start:], "any",
        "a 10-byte varint whose last byte overflows 64 bits (protobuf drops the excess)", "wire")
    add("wire_varint_unterminated_at_eof", data + varint_field(MODEL_IR_VERSION, 0)[:1]
        + b"\x80\x80\x80", "error", "the file ends inside a varint", "wire")
    add("wire_tag_unterminated_at_eof", data + b"\x80", "error", "the file ends inside a tag",
        "wire")
    for wire_type in (6, 7):
        add(f"wire_type_{wire_type}", data + key(20, wire_type) + b"\x00", "error",
            f"a tag with the undefined wire type {wire_type}", "wire")
    add("wire_field_number_zero", data + key(0, VARINT) + b"\x01", "error",
        "a tag with field number 0", "wire")
    add("wire_group_unterminated", data + key(99, START_GROUP) + varint_field(1, 5), "error",
        "an unknown group that never ends", "wire")
    add("wire_group_end_without_start", data + key(99, END_GROUP), "error",
        "an end-group tag with no group open", "wire")
    add("wire_group_mismatched_end", data + key(99, START_GROUP) + key(98, END_GROUP), "error",
        "a group closed with another field's number", "wire")
    add("wire_fixed64_at_eof", data + key(99, FIXED64) + b"\x01\x02\x03", "error",
        "a fixed64 field cut after 3 bytes", "wire")
    add("wire_fixed32_at_eof", data + key(99, FIXED32) + b"\x01", "error",
        "a fixed32 field cut after 1 byte", "wire")
    add("wire_graph_as_varint",
        data[:graph.tag_start] + varint_field(MODEL_GRAPH, 5) + data[graph.value_end:], "error",
        "the graph field has wire type varint", "wire")
    add("wire_graph_twice", data[:graph.value_end] + data[graph.tag_start:graph.value_end]
        + data[graph.value_end:], "any",
        "the graph field appears twice (protobuf merges them: duplicate names)", "wire")
    add("wire_unknown_fields_everywhere",
        edit(data, [(MODEL_GRAPH, 0), (GRAPH_NODE, 0)],
             lambda f, c: length_field(f.number, c + varint_field(999, 1)
                                       + length_field(1000, b"junk") + key(1001, FIXED32)
                                       + b"abcd")) + varint_field(12345, 7),
        "ok", "unknown fields of each wire type, which a reader must skip", "wire")

    # Packed repeated fields whose claimed byte counts are huge.
    add("repeated_packed_dims_claims_2pow40",
        edit(data, [(MODEL_GRAPH, 0), (GRAPH_INITIALIZER, 0)],
             lambda f, c: length_field(f.number, key(TENSOR_DIMS, LENGTH) + varint(1 << 40)
                                       + c)),
        "error", "packed dims claim 2^40 bytes", "repeated")
    add("repeated_packed_float_data_claims_2pow62",
        edit(data, [(MODEL_GRAPH, 0), (GRAPH_INITIALIZER, 0)],
             lambda f, c: length_field(f.number, c + key(TENSOR_FLOAT_DATA, LENGTH)
                                       + varint(1 << 62) + b"\x00" * 16)),
        "error", "packed float_data claims 2^62 bytes (16 follow)", "repeated")
    add("repeated_packed_float_data_odd_length",
        edit(data, [(MODEL_GRAPH, 0), (GRAPH_INITIALIZER, 0)],
             lambda f, c: length_field(f.number, c + length_field(TENSOR_FLOAT_DATA,
                                                                  b"\x00" * 7))),
        "error", "packed float_data of 7 bytes (not a multiple of 4)", "repeated")


def graph_bytes(data):
    f = find(data, MODEL_GRAPH)
    return data[f.value_start:f.value_end]


# ---- deep nesting ------------------------------------------------------------------

def nested_if(depth):
    """A graph whose one If node's then_branch holds a graph whose If node's
    then_branch ... `depth` levels down, encoded bottom-up by hand so that no
    Python recursion or protobuf depth limit gets in the way."""
    inner = length_field(GRAPH_NAME, b"leaf")
    for level in range(depth):
        attribute = (length_field(ATTRIBUTE_NAME, b"then_branch") + varint_field(ATTRIBUTE_TYPE, 5)
                     + length_field(ATTRIBUTE_G, inner))
        node = (length_field(NODE_INPUT, b"cond") + length_field(NODE_OUTPUT, b"out")
                + length_field(NODE_OP_TYPE, b"If") + length_field(NODE_ATTRIBUTE, attribute))
        inner = length_field(GRAPH_NODE, node) + length_field(GRAPH_NAME, b"g%d" % level)
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])
    io = (length_field(GRAPH_INPUT, cond.SerializeToString())
          + length_field(GRAPH_OUTPUT, out.SerializeToString()))
    opset = helper.make_opsetid("", 17).SerializeToString()
    return (varint_field(MODEL_IR_VERSION, 8) + length_field(MODEL_GRAPH, inner + io)
            + length_field(MODEL_OPSET, opset))


def nesting(corpus):
    for depth in (1000, 20000):
        corpus.add(f"nesting_if_graphs_{depth}_deep", nested_if(depth), "nesting", "any",
                   f"If nodes whose then_branch graphs nest {depth} deep (no else_branch)")
    base = minimal_relu().SerializeToString()
    for depth in (1000, 100000):
        corpus.add(f"nesting_unknown_groups_{depth}_deep",
                   base + key(77, START_GROUP) * depth + key(77, END_GROUP) * depth,
                   "nesting", "any", f"an unknown field's groups nested {depth} deep")
    # Nested unknown length-delimited messages cost a reader nothing (skipped
    # whole), but one that parses them eagerly recurses.
    blob = b""
    for _ in range(5000):
        blob = length_field(77, blob)
    corpus.add("nesting_unknown_messages_5000_deep", base + blob, "nesting", "any",
               "an unknown length-delimited field nesting 5000 deep")


# ---- semantic damage -----------------------------------------------------------------

def semantic(corpus, mlp, cnn):
    def variant(kind, name, base, change, expect, note):
        m = copy(base)
        change(m)
        corpus.add(f"{kind}_{name}", m, kind, expect, note)

    w = mlp.graph.initializer[0]  # 0.weight [32, 16], first Gemm's B

    # Absurd dimensions.
    def set_dims(dims):
        def change(m):
            t = m.graph.initializer[0]
            del t.dims[:]
            t.dims.extend(dims)
        return change

    for dims, label in (([1 << 62, 16], "2pow62"), ([-5, 16], "neg5"),
                        ([(1 << 63) - 1, 16], "int64max"), ([-(1 << 63), 16], "int64min"),
                        ([1 << 31, 1 << 31, 1 << 31], "product_overflow"),
                        ([0, 16], "zero_with_data"), ([32, 16, 1 << 40], "rank3_huge"),
                        ([1] * 100 + [32, 16], "rank102")):
        shown = dims if len(dims) < 8 else f"of rank {len(dims)}"
        variant("dims", f"initializer_{label}", mlp, set_dims(dims), "error",
                f"initializer {w.name} claims dims {shown}")

    def set_input_dim(value, which="input"):
        def change(m):
            values = m.graph.input if which == "input" else m.graph.output
            d = values[0].type.tensor_type.shape.dim[1]
            d.Clear()
            d.dim_value = value
        return change

    for value, label in ((1 << 62, "2pow62"), (-5, "neg5"), (0, "zero")):
        variant("dims", f"graph_input_{label}", mlp, set_input_dim(value),
                "any" if value == 0 else "error", f"graph input dimension 1 is {value}")
    variant("dims", "graph_output_neg5", mlp, set_input_dim(-5, "output"), "error",
            "graph output dimension 1 is -5")

    def dims_rank(n):
        def change(m):
            t = m.graph.initializer[0]
            del t.dims[:]
            t.dims.extend([1] * n)
            t.raw_data = t.raw_data[:4]
        return change

    variant("repeated", "initializer_200000_dims", mlp, dims_rank(200000), "error",
            "an initializer with 200000 dimensions of 1 (one element)")

    # Initializer data against its claims.
    def data(change_tensor):
        def change(m):
            change_tensor(m.graph.initializer[0])
        return change

    def set_raw(raw):
        def change(t):
            t.raw_data = raw
        return change

    def set_type(data_type):
        def change(t):
            t.data_type = data_type
        return change

    def to_float_data(count):
        def change(t):
            t.ClearField("raw_data")
            t.float_data.extend([0.25] * count)
        return change

    def both(t):
        t.float_data.extend([0.25] * 512)

    def as_int64(t):
        t.ClearField("raw_data")
        t.data_type = TensorProto.INT64
        t.int64_data.extend([1] * 512)

    def external(location, offset=None, length=None):
        def change(t):
            t.ClearField("raw_data")
            t.data_location = TensorProto.EXTERNAL
            entries = [("location", location)]
            if offset is not None:
                entries.append(("offset", str(offset)))
            if length is not None:
                entries.append(("length", str(length)))
            for k, v in entries:
                e = t.external_data.add()
                e.key, e.value = k, v
        return change

    size = len(w.raw_data)
    cases = [
        ("raw_data_short", set_raw(w.raw_data[:-4]),
         f"raw_data of {size - 4} bytes; dims need {size}"),
        ("raw_data_long", set_raw(w.raw_data + b"\0" * 4),
         f"raw_data of {size + 4} bytes; dims need {size}"),
        ("raw_data_empty", set_raw(b""), "no data at all for 512 elements"),
        ("float_data_short", to_float_data(511), "float_data of 511 values; dims need 512"),
        ("float_data_long", to_float_data(513), "float_data of 513 values; dims need 512"),
        ("raw_and_float_data", both, "both raw_data and float_data are set"),
        ("dtype_int64_keeping_float_bytes", set_type(TensorProto.INT64),
         "data_type INT64 over 2048 bytes of floats: 8 * 512 bytes needed"),
        ("dtype_int64_consistent", as_int64, "a valid INT64 tensor where Gemm needs float"),
        ("dtype_undefined", set_type(TensorProto.UNDEFINED), "data_type 0 (UNDEFINED)"),
        ("dtype_999", set_type(999), "data_type 999"),
        ("dtype_negative", set_type(-1), "data_type -1"),
        ("dtype_string", set_type(TensorProto.STRING), "data_type STRING with raw_data"),
        ("dtype_complex64", set_type(TensorProto.COMPLEX64), "data_type COMPLEX64"),
    ]
    for label, change_tensor, note in cases:
        variant("initializer", label, mlp, data(change_tensor), "error", f"{w.name}: {note}")
    ext = [
        ("path_traversal", external("../../../../../../etc/passwd"),
         "location ../../../../../../etc/passwd"),
        ("absolute_path", external("/etc/passwd"), "location /etc/passwd"),
        ("missing_file", external("no_such_weights.bin"), "location no_such_weights.bin (absent)"),
        ("huge_offset", external("no_such_weights.bin", 1 << 62, 2048), "offset 2^62"),
        ("negative_length", external("no_such_weights.bin", 0, -1), "length -1"),
        ("no_location", external("", 0, 2048), "empty location"),
    ]
    for label, change_tensor, note in ext:
        variant("external", label, mlp, data(change_tensor), "error",
                f"{w.name}: external data, {note}")

    # Graph structure.
    def cycle(m):
        m.graph.node[0].input[0] = m.graph.node[3].output[0]

    def self_loop(m):
        m.graph.node[1].input[0] = m.graph.node[1].output[0]

    def duplicate_output(m):
        m.graph.node[3].output[0] = m.graph.node[1].output[0]

    def output_is_input(m):
        m.graph.node[1].output[0] = "input"

    def output_is_initializer(m):
        m.graph.node[1].output[0] = m.graph.initializer[0].name

    def duplicate_initializer(m):
        t = m.graph.initializer.add()
        t.CopyFrom(m.graph.initializer[0])

    def duplicate_initializer_other_shape(m):
        t = m.graph.initializer.add()
        t.CopyFrom(m.graph.initializer[1])
        t.name = m.graph.initializer[0].name

    def duplicate_graph_input(m):
        m.graph.input.add().CopyFrom(m.graph.input[0])

    def duplicate_graph_output(m):
        m.graph.output.add().CopyFrom(m.graph.output[0])

    def output_not_produced(m):
        m.graph.output[0].name = "produced_by_nobody"

    def missing_initializer(m):
        del m.graph.initializer[0]

    def missing_all_initializers(m):
        del m.graph.initializer[:]

    def dangling_input(m):
        m.graph.node[2].input[0] = "no_such_tensor"

    def empty_required_input(m):
        m.graph.node[0].input[1] = ""

    def no_nodes(m):
        del m.graph.node[:]

    def no_outputs(m):
        del m.graph.output[:]

    def unknown_op(m):
        m.graph.node[1].op_type = "NoSuchOp"

    def unknown_domain(m):
        m.graph.node[1].domain = "com.example.nowhere"

    def too_few_inputs(m):
        del m.graph.node[0].input[1:]

    def too_many_inputs(m):
        m.graph.node[1].input.extend(["input"] * 4)

    def too_many_outputs(m):
        m.graph.node[1].output.append("extra_output")

    def no_type(m):
        m.graph.input[0].ClearField("type")

    def input_elem_undefined(m):
        m.graph.input[0].type.tensor_type.elem_type = 0

    def input_sequence(m):
        v = m.graph.input[0]
        v.ClearField("type")
        v.type.sequence_type.elem_type.tensor_type.elem_type = TensorProto.FLOAT

    def initializer_is_input_too(m):
        t = m.graph.initializer[0]
        m.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))

    def initializer_is_input_other_shape(m):
        t = m.graph.initializer[0]
        m.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, [3, 3]))

    def sparse_initializer(m):
        values = helper.make_tensor("sparse_values", TensorProto.FLOAT, [1], [1.0])
        indices = helper.make_tensor("sparse_indices", TensorProto.INT64, [1], [0])
        m.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))

    graph_cases = [
        ("cycle_through_four_nodes", cycle, "error", "the first Gemm reads the last Relu's output"),
        ("self_loop", self_loop, "error", "a Relu reads its own output"),
        ("duplicate_node_output", duplicate_output, "error", "two nodes write the same tensor"),
        ("node_output_shadows_graph_input", output_is_input, "error", "a node writes 'input'"),
        ("node_output_shadows_initializer", output_is_initializer, "error",
         "a node writes an initializer's name"),
        ("duplicate_initializer_name", duplicate_initializer, "error",
         "two initializers named alike (same data)"),
        ("duplicate_initializer_name_other_shape", duplicate_initializer_other_shape, "error",
         "two initializers named alike (different shapes)"),
        ("duplicate_graph_input", duplicate_graph_input, "error", "'input' listed twice"),
        ("duplicate_graph_output", duplicate_graph_output, "any", "'output' listed twice"),
        ("output_not_produced", output_not_produced, "error", "the graph output has no producer"),
        ("missing_initializer", missing_initializer, "error", "0.weight is read but not defined"),
        ("missing_all_initializers", missing_all_initializers, "error", "no initializers at all"),
        ("dangling_node_input", dangling_input, "error", "a node reads 'no_such_tensor'"),
        ("empty_required_input", empty_required_input, "error", "Gemm's B input is ''"),
        ("no_nodes", no_nodes, "error", "the graph has no nodes but names an output"),
        ("no_outputs", no_outputs, "any", "the graph has no outputs (useless, not invalid)"),
        ("unknown_op", unknown_op, "error", "op_type NoSuchOp"),
        ("unknown_domain", unknown_domain, "error", "a Relu in domain com.example.nowhere"),
        ("too_few_inputs", too_few_inputs, "error", "Gemm with one input"),
        ("too_many_inputs", too_many_inputs, "error", "Relu with five inputs"),
        ("too_many_outputs", too_many_outputs, "error", "Relu with two outputs"),
        ("input_without_type", no_type, "error", "the graph input has no type"),
        ("input_elem_type_undefined", input_elem_undefined, "error", "input elem_type 0"),
        ("input_is_a_sequence", input_sequence, "error", "the graph input is a sequence"),
        ("initializer_also_graph_input", initializer_is_input_too, "any",
         "an initializer also listed as a graph input (legal: an overridable default)"),
        ("initializer_also_input_other_shape", initializer_is_input_other_shape, "error",
         "an initializer listed as an input of another shape"),
        ("sparse_initializer", sparse_initializer, "any", "an unused sparse initializer"),
    ]
    for label, change, expect, note in graph_cases:
        variant("graph", label, mlp, change, expect, note)

    many = copy(minimal_relu())
    for i in range(100000):
        many.graph.node.add()
    corpus.add("repeated_100000_empty_nodes", many, "repeated", "error",
               "100000 nodes with no op_type after a valid Relu")
    many_inputs = copy(minimal_relu())
    many_inputs.graph.node[0].input.extend(["x"] * 100000)
    corpus.add("repeated_node_with_100001_inputs", many_inputs, "repeated", "error",
               "a Relu with 100001 inputs")

    # Attributes (on the CNN's Conv, MaxPool and Gemm).
    def set_attr(node_index, name, value):
        def change(m):
            node = m.graph.node[node_index]
            for i, a in enumerate(node.attribute):
                if a.name == name:
                    del node.attribute[i]
                    break
            node.attribute.append(helper.make_attribute(name, value))
        return change

    def attr_wrong_type(node_index, name):
        def change(m):
            node = m.graph.node[node_index]
            for a in node.attribute:
                if a.name == name:
                    a.Clear()
                    a.name = name
                    a.type = onnx.AttributeProto.STRING
                    a.s = b"seven"
        return change

    def attr_type_mismatch(node_index, name):
        def change(m):
            for a in m.graph.node[node_index].attribute:
                if a.name == name:
                    a.type = onnx.AttributeProto.GRAPH  # says GRAPH, holds ints
        return change

    def duplicate_attr(node_index, name):
        def change(m):
            node = m.graph.node[node_index]
            for a in list(node.attribute):
                if a.name == name:
                    node.attribute.add().CopyFrom(a)
        return change

    conv, pool, gemm = 0, 2, 7
    attribute_cases = [
        ("conv_kernel_shape_negative", set_attr(conv, "kernel_shape", [-5, -5]),
         "kernel_shape [-5, -5]"),
        ("conv_kernel_shape_2pow62", set_attr(conv, "kernel_shape", [1 << 62, 1 << 62]),
         "kernel_shape [2^62, 2^62]"),
        ("conv_kernel_shape_wrong_rank", set_attr(conv, "kernel_shape", [3, 3, 3]),
         "kernel_shape of 3 dims for a 2-D conv"),
        ("conv_strides_zero", set_attr(conv, "strides", [0, 0]), "strides [0, 0]"),
        ("conv_strides_negative", set_attr(conv, "strides", [-1, -1]), "strides [-1, -1]"),
        ("conv_pads_2pow62", set_attr(conv, "pads", [1 << 62] * 4), "pads 2^62"),
        ("conv_pads_negative_huge", set_attr(conv, "pads", [-(1 << 62)] * 4), "pads -2^62"),
        ("conv_pads_wrong_count", set_attr(conv, "pads", [1, 1, 1]), "3 pads for a 2-D conv"),
        ("conv_dilations_2pow62", set_attr(conv, "dilations", [1 << 62, 1]), "dilations [2^62, 1]"),
        ("conv_group_zero", set_attr(conv, "group", 0), "group 0"),
        ("conv_group_3", set_attr(conv, "group", 3), "group 3 for 1 input channel"),
        ("conv_auto_pad_bogus", set_attr(conv, "auto_pad", "SIDEWAYS"), "auto_pad SIDEWAYS"),
        ("conv_kernel_shape_is_string", attr_wrong_type(conv, "kernel_shape"),
         "kernel_shape is a string"),
        ("conv_attribute_type_lies", attr_type_mismatch(conv, "strides"),
         "strides says GRAPH, holds ints"),
        ("conv_duplicate_attribute", duplicate_attr(conv, "strides"), "strides given twice"),
        ("maxpool_kernel_zero", set_attr(pool, "kernel_shape", [0, 0]),
         "MaxPool kernel_shape [0, 0]"),
        ("maxpool_kernel_larger_than_input", set_attr(pool, "kernel_shape", [100, 100]),
         "MaxPool kernel 100x100 on 28x28"),
        ("gemm_trans_b_is_string", attr_wrong_type(gemm, "transB"), "Gemm transB is a string"),
        ("gemm_trans_b_2", set_attr(gemm, "transB", 2), "Gemm transB 2"),
        ("gemm_alpha_is_string", attr_wrong_type(gemm, "alpha"), "Gemm alpha is a string"),
    ]
    for label, change, note in attribute_cases:
        # A kernel larger than its input is legal with padding rules of some
        # runtimes; transB 2 is "non-zero" to others.
        expect = "any" if label in ("maxpool_kernel_larger_than_input", "gemm_trans_b_2") \
            else "error"
        variant("attribute", label, cnn, change, expect, note)

    # Opsets and versions.
    def opset(version):
        def change(m):
            del m.opset_import[:]
            if version is not None:
                m.opset_import.append(helper.make_opsetid("", version))
        return change

    def ir(version):
        def change(m):
            m.ir_version = version
        return change

    def two_opsets(m):
        m.opset_import.append(helper.make_opsetid("", 13))

    opset_cases = [
        ("missing", opset(None), "error", "no opset_import"),
        ("version_1", opset(1), "error", "default domain at opset 1 (Gemm, Relu differ)"),
        ("version_2pow62", opset(1 << 62), "error", "default domain at opset 2^62"),
        ("version_negative", opset(-3), "error", "default domain at opset -3"),
        ("default_domain_twice", two_opsets, "any", "the default domain imported at 17 and 13"),
        ("ir_version_0", ir(0), "any", "ir_version 0"),
        ("ir_version_2pow62", ir(1 << 62), "any", "ir_version 2^62"),
        ("ir_version_negative", ir(-1), "any", "ir_version -1"),
    ]
    for label, change, expect, note in opset_cases:
        variant("opset", label, mlp, change, expect, note)

    # Names.
    def rename_tensor(new):
        def change(m):
            old = m.graph.node[1].output[0]
            m.graph.node[1].output[0] = new
            m.graph.node[2].input[0] = new
            assert old
        return change

    def rename_node(new):
        def change(m):
            m.graph.node[1].name = new
        return change

    names_cases = [
        ("tensor_name_with_nul", rename_tensor("a\0b"), "any", "a tensor name with a NUL byte"),
        ("tensor_name_256kib", rename_tensor("n" * (1 << 18)), "any",
         "a tensor name of 256 KiB"),
        ("tensor_name_empty_everywhere", rename_tensor(""), "error",
         "a node output named '' (absent) read by the next node"),
        ("node_name_with_control_chars", rename_node("\x1b[31mred\x1b[0m\n\r"), "any",
         "a node name with terminal escapes and newlines"),
    ]
    for label, change, expect, note in names_cases:
        variant("names", label, mlp, change, expect, note)
    # Invalid UTF-8 in a node name, edited at the wire level.
    data = mlp.SerializeToString()
    bad = edit(data, [(MODEL_GRAPH, 0), (GRAPH_NODE, 1), (NODE_NAME, 0)],
               lambda f, c: length_field(f.number, b"\xff\xfe\xc0\x80bad"))
    corpus.add("names_node_name_invalid_utf8", bad, "names", "any",
               "a node name that is not UTF-8")
    bad = edit(data, [(MODEL_GRAPH, 0), (GRAPH_INITIALIZER, 0), (TENSOR_NAME, 0)],
               lambda f, c: length_field(f.number, b"0.weight\xff"))
    corpus.add("names_initializer_name_invalid_utf8", bad, "names", "error",
               "an initializer name that is not UTF-8 (so the Gemm's B is missing)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", help="output directory (created; existing .onnx files "
                        "in it are removed)")
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS,
                        help="valid models to damage (default: models/*_tiny.onnx)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args()

    os.makedirs(args.directory, exist_ok=True)
    for name in os.listdir(args.directory):
        if name.endswith(".onnx") or name == "manifest.tsv":
            os.remove(os.path.join(args.directory, name))
    corpus = Corpus(args.directory)
    rng = random.Random(args.seed)

    relu, add = minimal_relu(), minimal_add()
    corpus.add("valid_minimal_relu", relu, "valid", "ok", "one Relu")
    corpus.add("valid_minimal_add", add, "valid", "ok", "one Add with a 1x4 initializer")
    truncations(corpus, "minimal_relu", relu.SerializeToString(), rng, every_byte=True)
    truncations(corpus, "minimal_add", add.SerializeToString(), rng, every_byte=True)

    loaded = []
    for path in args.models:
        name = os.path.splitext(os.path.basename(path))[0]
        with open(path, "rb") as f:
            data = f.read()
        model = onnx.load_from_string(data)
        loaded.append((name, model, data))
        corpus.add(f"valid_{name}", data, "valid", "ok", f"{os.path.basename(path)} as given")
        truncations(corpus, name, data, rng, every_byte=False)
    # Shared in inverse proportion to size: small models get more flips.
    weights = [1 / len(data) for _, _, data in loaded]
    for (name, _, data), weight in zip(loaded, weights):
        bit_flips(corpus, name, data, rng, round(BIT_FLIP_FILES * weight / sum(weights)))

    by_name = {name: model for name, model, _ in loaded}
    if "mlp_tiny" not in by_name or "cnn_tiny" not in by_name:
        sys.exit("the structural cases edit mlp_tiny and cnn_tiny: pass both (or no models)")
    mlp, cnn = by_name["mlp_tiny"], by_name["cnn_tiny"]
    wire_damage(corpus, mlp)
    nesting(corpus)
    semantic(corpus, mlp, cnn)
    corpus.write_manifest()
    total = sum(os.path.getsize(os.path.join(args.directory, r[0])) for r in corpus.rows)
    print(f"{args.directory}: {len(corpus.rows)} files, {total / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
