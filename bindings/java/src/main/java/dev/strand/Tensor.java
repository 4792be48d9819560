package dev.strand;

import java.lang.reflect.Array;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;

/**
 * An n-dimensional array of one element type, dense and in row-major order,
 * held in native memory (counted in {@link Strand#memoryStats()}), or a view
 * of a direct {@link ByteBuffer} made without copying.
 *
 * <p>Element type and shape never change. The data may be written by
 * whoever holds the tensor ({@link #copyFrom(Object)}); as with any shared
 * memory, writers need exclusive access.
 *
 * <p>Java arrays per element type: float[] float32; double[] float64; int[]
 * int32, uint32; long[] int64, uint64; short[] int16, uint16, float16,
 * bfloat16 (raw bits); byte[] int8, uint8, bool; boolean[] bool. Unsigned
 * and half-precision values keep their bits.
 *
 * <p>Thread safety: any (see {@link StrandObject}).
 */
public final class Tensor extends StrandObject {
  private final DType dtype;
  private final long[] shape;
  private final long byteSize;
  /** The wrapped buffer, kept so that it outlives this object's uses. */
  private final ByteBuffer buffer;

  private Tensor(long address, DType dtype, long[] shape, long byteSize, ByteBuffer buffer,
      Leaks.Site site, boolean scoped) {
    super(ObjectKind.TENSOR, address, new Description(dtype, shape), site, byteSize, scoped);
    this.dtype = dtype;
    this.shape = shape;
    this.byteSize = byteSize;
    this.buffer = buffer;
  }

  /** Takes over a native reference described by {dtype, byte size, rank, dims...} at `at`. */
  static Tensor adopt(long address, long[] info, int at, Leaks.Site site, boolean scoped) {
    int rank = (int) info[at + 2];
    long[] dims = Arrays.copyOfRange(info, at + 3, at + 3 + rank);
    return new Tensor(address, DType.of((int) info[at]), dims, info[at + 1], null, site, scoped);
  }

  private static Tensor adopt(long address, Leaks.Site site) {
    long[] info;
    try {
      info = Native.tensorInfo(address);
    } catch (Throwable t) {
      Native.release(ObjectKind.TENSOR.code(), address);
      throw t;
    }
    return adopt(address, info, 0, site, true);
  }

  // ---- creating

  /** A tensor of zeros. */
  public static Tensor zeros(DType dtype, long... shape) {
    checkDtype(dtype);
    long[] dims = checkShape(shape);
    Leaks.Site site = Leaks.capture();
    long address = Memory.allocate(site, () -> Native.tensorCreate(dtype.code(), dims, null, -1, 0));
    return adopt(address, site);
  }

  /** A float32 tensor holding a copy of {@code data}; without a shape, a vector. */
  public static Tensor of(float[] data, long... shape) {
    return ofTyped(DType.FLOAT32, Objects.requireNonNull(data, "data is null"), data.length, shape);
  }

  /** A float64 tensor holding a copy of {@code data}. */
  public static Tensor of(double[] data, long... shape) {
    return ofTyped(DType.FLOAT64, Objects.requireNonNull(data, "data is null"), data.length, shape);
  }

  /** An int32 tensor holding a copy of {@code data}. */
  public static Tensor of(int[] data, long... shape) {
    return ofTyped(DType.INT32, Objects.requireNonNull(data, "data is null"), data.length, shape);
  }

  /** An int64 tensor holding a copy of {@code data}. */
  public static Tensor of(long[] data, long... shape) {
    return ofTyped(DType.INT64, Objects.requireNonNull(data, "data is null"), data.length, shape);
  }

  /** An int16 tensor holding a copy of {@code data}. */
  public static Tensor of(short[] data, long... shape) {
    return ofTyped(DType.INT16, Objects.requireNonNull(data, "data is null"), data.length, shape);
  }

  /** An int8 tensor holding a copy of {@code data}. */
  public static Tensor of(byte[] data, long... shape) {
    return ofTyped(DType.INT8, Objects.requireNonNull(data, "data is null"), data.length, shape);
  }

  /** A bool tensor holding a copy of {@code data}. */
  public static Tensor of(boolean[] data, long... shape) {
    return ofTyped(DType.BOOL, Objects.requireNonNull(data, "data is null"), data.length, shape);
  }

  /**
   * A tensor of {@code dtype} holding a copy of {@code array}, a primitive
   * array of the matching Java type (see the class comment) with exactly as
   * many elements as {@code shape} needs. Without a shape, the tensor is a
   * vector of the array's length (see {@link #scalar(DType, Object)} for rank 0).
   */
  public static Tensor of(DType dtype, Object array, long... shape) {
    if (shape == null || shape.length == 0) {
      shape = new long[] {array == null ? 0 : Array.getLength(array)};
    }
    return create(dtype, array, shape);
  }

  /** A rank-0 tensor from a one-element primitive array ({@code new float[] {2f}}). */
  public static Tensor scalar(DType dtype, Object array) {
    return create(dtype, array, new long[0]);
  }

  /** A float32 scalar. */
  public static Tensor scalar(float value) {
    return create(DType.FLOAT32, new float[] {value}, new long[0]);
  }

  /** An int64 scalar. */
  public static Tensor scalar(long value) {
    return create(DType.INT64, new long[] {value}, new long[0]);
  }

  /** Tensor.of for an array known to be of dtype's Java type: no reflection. */
  private static Tensor ofTyped(DType dtype, Object array, int length, long[] shape) {
    long[] dims = shape == null || shape.length == 0 ? new long[] {length} : checkShape(shape);
    long bytes = byteSize(dtype, dims);
    if ((long) length * dtype.size() != bytes) {
      throw new IllegalArgumentException("the data has " + length + " elements but "
          + describe(dtype, dims) + " has " + bytes / dtype.size());
    }
    Leaks.Site site = Leaks.capture();
    int kind = Native.arrayKind(array);
    long address = Memory.allocate(site, () -> Native.tensorCreate(dtype.code(), dims, array, kind, bytes));
    return new Tensor(address, dtype, dims, bytes, null, site, true);
  }

  private static Tensor create(DType dtype, Object array, long[] shape) {
    checkDtype(dtype);
    long[] dims = checkShape(shape);
    long bytes = checkArray(dtype, array, dims, "data");
    Leaks.Site site = Leaks.capture();
    int kind = Native.arrayKind(array);
    long address = Memory.allocate(site, () -> Native.tensorCreate(dtype.code(), dims, array, kind, bytes));
    return new Tensor(address, dtype, dims, bytes, null, site, true);
  }

  /**
   * A tensor over the bytes of a direct buffer between its position and its
   * limit, without copying: writes through either side are seen by the
   * other. The tensor keeps the buffer alive until the last native reference
   * is gone (a session run in progress included), whatever happens to this
   * object. Multi-byte elements are read in native byte order, so a buffer
   * with more than one byte per element must have {@code order(ByteOrder.nativeOrder())}.
   *
   * @throws IllegalArgumentException for a heap buffer, a wrong byte order, or
   *     a size that differs from what {@code dtype} and {@code shape} need
   */
  public static Tensor wrap(ByteBuffer buffer, DType dtype, long... shape) {
    checkDtype(dtype);
    long[] dims = checkShape(shape);
    if (!buffer.isDirect()) {
      throw new IllegalArgumentException("Tensor.wrap needs a direct ByteBuffer; use Tensor.of to copy");
    }
    if (dtype.size() > 1 && buffer.order() != ByteOrder.nativeOrder()) {
      throw new IllegalArgumentException("the buffer's byte order is " + buffer.order()
          + "; " + dtype + " data is read in native order (" + ByteOrder.nativeOrder() + ")");
    }
    if (buffer.isReadOnly()) {
      throw new IllegalArgumentException("Tensor.wrap needs a writable buffer");
    }
    long bytes = byteSize(dtype, dims);
    if (buffer.remaining() != bytes) {
      throw new IllegalArgumentException("the buffer holds " + buffer.remaining() + " bytes but "
          + describe(dtype, dims) + " needs " + bytes);
    }
    Leaks.Site site = Leaks.capture();
    int position = buffer.position();
    long address = Memory.allocate(site,
        () -> Native.tensorWrap(dtype.code(), dims, buffer, position, bytes));
    return new Tensor(address, dtype, dims, bytes, buffer, site, true);
  }

  /** Reads a NumPy .npy file (see strand.h for the element types). */
  public static Tensor readNpy(Path path) {
    byte[] p = Native.text(path.toString());
    Leaks.Site site = Leaks.capture();
    long address = Memory.allocate(site, () -> Native.tensorReadNpy(p));
    return adopt(address, site);
  }

  // ---- describing

  public DType dtype() {
    return dtype;
  }

  /** A copy of the shape. */
  public long[] shape() {
    return shape.clone();
  }

  public int rank() {
    return shape.length;
  }

  /** Dimension {@code i}. */
  public long dim(int i) {
    return shape[i];
  }

  public long elementCount() {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  public long byteSize() {
    return byteSize;
  }

  /** True when the data lives in a wrapped ByteBuffer rather than strand's memory. */
  public boolean isWrapped() {
    return buffer != null;
  }

  // ---- reading and writing

  public float[] toFloatArray() {
    return (float[]) toArray(DType.FLOAT32);
  }

  public double[] toDoubleArray() {
    return (double[]) toArray(DType.FLOAT64);
  }

  /** int32 or uint32 (bits kept). */
  public int[] toIntArray() {
    return (int[]) toArray(DType.INT32, DType.UINT32);
  }

  /** int64 or uint64 (bits kept). */
  public long[] toLongArray() {
    return (long[]) toArray(DType.INT64, DType.UINT64);
  }

  /** int16, uint16, float16 or bfloat16 (bits kept). */
  public short[] toShortArray() {
    return (short[]) toArray(DType.INT16, DType.UINT16, DType.FLOAT16, DType.BFLOAT16);
  }

  /** int8, uint8 or bool. */
  public byte[] toByteArray() {
    return (byte[]) toArray(DType.INT8, DType.UINT8, DType.BOOL);
  }

  public boolean[] toBooleanArray() {
    requireDtype(DType.BOOL);
    boolean[] out = new boolean[checkedLength()];
    read(out);
    return out;
  }

  /** A copy of the data in a new direct buffer in native byte order. */
  public ByteBuffer toByteBuffer() {
    if (byteSize > Integer.MAX_VALUE) {
      throw new UnsupportedOperationException(this + " holds more than 2 GiB");
    }
    ByteBuffer out = ByteBuffer.allocateDirect((int) byteSize).order(ByteOrder.nativeOrder());
    copyTo(out);
    out.flip();
    return out;
  }

  /** Copies the data into a primitive array of the matching type and size. */
  public void copyTo(Object array) {
    checkArray(dtype, array, shape, "destination");
    read(array);
  }

  /** Copies the data into {@code dst} at its position, which advances. */
  public void copyTo(ByteBuffer dst) {
    if (dst.remaining() < byteSize) {
      throw new IllegalArgumentException("the buffer has " + dst.remaining() + " bytes left; "
          + this + " needs " + byteSize);
    }
    if (dst.isReadOnly()) {
      throw new IllegalArgumentException("the buffer is read-only");
    }
    int position = dst.position();
    if (dst.isDirect()) {
      long address = acquire();
      try {
        Native.tensorCopyDirect(address, dst, position, false);
      } finally {
        release();
      }
    } else if (dst.hasArray()) {
      byte[] bytes = new byte[(int) byteSize];
      read(bytes, byteSize);
      dst.put(bytes);
      return;
    }
    dst.position(position + (int) byteSize);
  }

  /** Overwrites the data from a primitive array of the matching type and size. */
  public void copyFrom(Object array) {
    long bytes = checkArray(dtype, array, shape, "source");
    long address = acquire();
    try {
      Native.tensorWrite(address, array, Native.arrayKind(array), bytes);
    } finally {
      release();
    }
  }

  /** Overwrites the data from {@code src} at its position, which advances. */
  public void copyFrom(ByteBuffer src) {
    if (src.remaining() < byteSize) {
      throw new IllegalArgumentException("the buffer has " + src.remaining() + " bytes left; "
          + this + " needs " + byteSize);
    }
    int position = src.position();
    if (src.isDirect()) {
      long address = acquire();
      try {
        Native.tensorCopyDirect(address, src, position, true);
      } finally {
        release();
      }
      src.position(position + (int) byteSize);
    } else {
      byte[] bytes = new byte[(int) byteSize];
      src.get(bytes);
      long address = acquire();
      try {
        Native.tensorWrite(address, bytes, 0, byteSize);
      } finally {
        release();
      }
    }
  }

  /** Writes the tensor to a NumPy .npy file, replacing any file there. */
  public void writeNpy(Path path) {
    byte[] p = Native.text(path.toString());
    long address = acquire();
    try {
      Native.tensorWriteNpy(address, p);
    } finally {
      release();
    }
  }

  private Object toArray(DType... accepted) {
    requireDtype(accepted);
    Object out = Array.newInstance(dtype.arrayElement(), checkedLength());
    read(out);
    return out;
  }

  private void read(Object array) {
    read(array, byteSize);
  }

  private void read(Object array, long bytes) {
    long address = acquire();
    try {
      Native.tensorRead(address, array, Native.arrayKind(array), bytes);
    } finally {
      release();
    }
  }

  private int checkedLength() {
    long n = elementCount();
    if (n > Integer.MAX_VALUE - 8) {
      throw new UnsupportedOperationException(this + " has too many elements for a Java array");
    }
    return (int) n;
  }

  private void requireDtype(DType... accepted) {
    for (DType t : accepted) {
      if (t == dtype) {
        if (isClosed()) {
          throw handle.closedError();
        }
        return;
      }
    }
    throw new IllegalStateException(this + " is not " + Arrays.toString(accepted));
  }

  // ---- checks shared by the constructors

  private static void checkDtype(DType dtype) {
    if (dtype == null || dtype == DType.UNDEFINED) {
      throw new IllegalArgumentException("a tensor needs a defined element type");
    }
  }

  private static long[] checkShape(long[] shape) {
    long[] dims = shape == null ? new long[0] : shape.clone();
    if (dims.length > 16) {
      throw new IllegalArgumentException("rank " + dims.length + " exceeds strand's maximum of 16");
    }
    for (int i = 0; i < dims.length; i++) {
      if (dims[i] < 0) {
        throw new IllegalArgumentException("dimension " + i + " is " + dims[i] + "; dimensions must be >= 0");
      }
    }
    return dims;
  }

  private static long byteSize(DType dtype, long[] dims) {
    long n = dtype.size();
    try {
      for (long d : dims) {
        n = Math.multiplyExact(n, d);
      }
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException(describe(dtype, dims) + " is too large");
    }
    return n;
  }

  /** Checks that `array` holds dtype's elements, as many as dims need; returns the byte size. */
  private static long checkArray(DType dtype, Object array, long[] dims, String what) {
    if (array == null) {
      throw new NullPointerException(what + " is null");
    }
    Class<?> element = array.getClass().getComponentType();
    boolean fits = element == dtype.arrayElement() || (dtype == DType.BOOL && element == boolean.class);
    if (!fits) {
      throw new IllegalArgumentException("a " + array.getClass().getSimpleName()
          + " cannot hold " + dtype + " elements" + (dtype.arrayElement() == void.class
          ? "" : "; use " + dtype.arrayElement().getName() + "[]"));
    }
    long bytes = byteSize(dtype, dims);
    long length = Array.getLength(array);
    if (length * dtype.size() != bytes) {
      throw new IllegalArgumentException("the " + what + " has " + length + " elements but "
          + describe(dtype, dims) + " has " + bytes / dtype.size());
    }
    return bytes;
  }

  static String describe(DType dtype, long[] dims) {
    StringBuilder b = new StringBuilder("Tensor[").append(dtype).append(", ");
    if (dims.length == 0) {
      b.append("scalar");
    }
    for (int i = 0; i < dims.length; i++) {
      b.append(i == 0 ? "" : "x").append(dims[i]);
    }
    return b.append(']').toString();
  }

  /** Builds "Tensor[float32, 2x3]" only when asked. */
  private static final class Description {
    private final DType dtype;
    private final long[] dims;

    Description(DType dtype, long[] dims) {
      this.dtype = dtype;
      this.dims = dims;
    }

    @Override
    public String toString() {
      return describe(dtype, dims);
    }
  }
}
