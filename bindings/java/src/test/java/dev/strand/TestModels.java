package dev.strand;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * ONNX models made in the test itself, as bytes for {@link Model#load(byte[])}:
 * a minimal protobuf writer for the few fields they need (the field numbers
 * are onnx.proto's; tests/model_builder.h does the same for the C suite).
 */
final class TestModels {
  private TestModels() {}

  /** Width of the chain's rows. */
  static final int WIDTH = 256;

  /**
   * x [batch, 256] float32 -> Neg "n0" -> Neg "n1" -> ... -> y [batch, 256]:
   * {@code nodes} Neg nodes, so y is x times (-1)^nodes, and every node
   * boundary is a point where a token or a deadline can stop the run (the
   * model tests/api/test_cancel.c builds).
   */
  static byte[] negChain(int nodes) {
    Proto graph = new Proto();
    for (int i = 0; i < nodes; i++) {
      Proto node = new Proto();
      node.string(1, i == 0 ? "x" : "v" + (i - 1)); // NodeProto.input
      node.string(2, i == nodes - 1 ? "y" : "v" + i); // NodeProto.output
      node.string(3, "n" + i); // NodeProto.name
      node.string(4, "Neg"); // NodeProto.op_type
      graph.message(1, node); // GraphProto.node
    }
    graph.string(2, "neg_chain"); // GraphProto.name
    graph.message(11, valueInfo("x")); // GraphProto.input
    graph.message(12, valueInfo("y")); // GraphProto.output
    Proto opset = new Proto();
    opset.string(1, ""); // OperatorSetIdProto.domain
    opset.varint(2, 17); // OperatorSetIdProto.version
    Proto model = new Proto();
    model.varint(1, 8); // ModelProto.ir_version
    model.string(2, "strand-java-tests"); // ModelProto.producer_name
    model.message(7, graph); // ModelProto.graph
    model.message(8, opset); // ModelProto.opset_import
    return model.bytes();
  }

  /** A float32 value of shape [batch, 256]. */
  private static Proto valueInfo(String name) {
    Proto batch = new Proto();
    batch.string(2, "batch"); // Dimension.dim_param
    Proto width = new Proto();
    width.varint(1, WIDTH); // Dimension.dim_value
    Proto shape = new Proto();
    shape.message(1, batch); // TensorShapeProto.dim
    shape.message(1, width);
    Proto tensor = new Proto();
    tensor.varint(1, 1); // TypeProto.Tensor.elem_type: FLOAT
    tensor.message(2, shape); // TypeProto.Tensor.shape
    Proto type = new Proto();
    type.message(1, tensor); // TypeProto.tensor_type
    Proto info = new Proto();
    info.string(1, name); // ValueInfoProto.name
    info.message(2, type); // ValueInfoProto.type
    return info;
  }

  /** A chain's input: rows x 256 values that are exact in float32 and never 0. */
  static float[] chainInput(int rows) {
    float[] x = new float[rows * WIDTH];
    for (int i = 0; i < x.length; i++) {
      x[i] = (i % 17) - 8.5f;
    }
    return x;
  }

  /** One protobuf message being written. */
  private static final class Proto {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    void varint(int field, long value) {
      raw(field << 3); // wire type 0
      raw(value);
    }

    void string(int field, String value) {
      bytes(field, value.getBytes(StandardCharsets.UTF_8));
    }

    void message(int field, Proto value) {
      bytes(field, value.bytes());
    }

    byte[] bytes() {
      return out.toByteArray();
    }

    private void bytes(int field, byte[] value) {
      raw((field << 3) | 2); // wire type 2: length-delimited
      raw(value.length);
      out.write(value, 0, value.length);
    }

    private void raw(long value) {
      while ((value & ~0x7FL) != 0) {
        out.write((int) ((value & 0x7F) | 0x80));
        value >>>= 7;
      }
      out.write((int) value);
    }
  }
}
