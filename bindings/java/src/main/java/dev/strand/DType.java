package dev.strand;

/** Element types; the codes equal ONNX's TensorProto.DataType numbers. */
public enum DType {
  FLOAT32(1, 4, "float32"),
  UINT8(2, 1, "uint8"),
  INT8(3, 1, "int8"),
  UINT16(4, 2, "uint16"),
  INT16(5, 2, "int16"),
  INT32(6, 4, "int32"),
  INT64(7, 8, "int64"),
  BOOL(9, 1, "bool"),
  FLOAT16(10, 2, "float16"),
  FLOAT64(11, 8, "float64"),
  UINT32(12, 4, "uint32"),
  UINT64(13, 8, "uint64"),
  BFLOAT16(16, 2, "bfloat16"),
  /** Not known (a model that does not declare an input's type). */
  UNDEFINED(0, 0, "undefined");

  private final int code;
  private final int size;
  private final String typeName;

  DType(int code, int size, String typeName) {
    this.code = code;
    this.size = size;
    this.typeName = typeName;
  }

  /** The numeric code, as in strand.h and ONNX. */
  public int code() {
    return code;
  }

  /** Bytes per element (bool is one byte); 0 for UNDEFINED. */
  public int size() {
    return size;
  }

  /** strand's lower-case name ("float32"). */
  public String typeName() {
    return typeName;
  }

  /** The type with {@code code}, or {@link #UNDEFINED}. */
  public static DType of(int code) {
    for (DType t : values()) {
      if (t.code == code) {
        return t;
      }
    }
    return UNDEFINED;
  }

  /** The Java array element class holding this type's bits. */
  Class<?> arrayElement() {
    switch (this) {
      case FLOAT32:
        return float.class;
      case FLOAT64:
        return double.class;
      case INT32:
      case UINT32:
        return int.class;
      case INT64:
      case UINT64:
        return long.class;
      case INT16:
      case UINT16:
      case FLOAT16:
      case BFLOAT16:
        return short.class;
      case INT8:
      case UINT8:
      case BOOL:
        return byte.class;
      default:
        return void.class;
    }
  }

  @Override
  public String toString() {
    return typeName;
  }
}
