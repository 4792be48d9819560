package dev.strand;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.ref.WeakReference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@SuppressWarnings("try")
class TensorTest {
  @Test
  void everyJavaArrayTypeRoundTrips() {
    try (Tensor f = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor d = Tensor.of(new double[] {1.5, -2.5}, 2);
        Tensor i = Tensor.of(new int[] {7, -8, 9}, 3, 1);
        Tensor l = Tensor.of(new long[] {Long.MAX_VALUE, Long.MIN_VALUE});
        Tensor s = Tensor.of(new short[] {-3, 4}, 1, 2);
        Tensor b = Tensor.of(new byte[] {-1, 0, 1}, 3);
        Tensor z = Tensor.of(new boolean[] {true, false, true}, 3)) {
      assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, f.toFloatArray());
      assertArrayEquals(new double[] {1.5, -2.5}, d.toDoubleArray());
      assertArrayEquals(new int[] {7, -8, 9}, i.toIntArray());
      assertArrayEquals(new long[] {Long.MAX_VALUE, Long.MIN_VALUE}, l.toLongArray());
      assertArrayEquals(new short[] {-3, 4}, s.toShortArray());
      assertArrayEquals(new byte[] {-1, 0, 1}, b.toByteArray());
      assertArrayEquals(new boolean[] {true, false, true}, z.toBooleanArray());
      assertArrayEquals(new byte[] {1, 0, 1}, z.toByteArray());

      assertEquals(DType.FLOAT32, f.dtype());
      assertArrayEquals(new long[] {2, 3}, f.shape());
      assertEquals(6, f.elementCount());
      assertEquals(24, f.byteSize());
      assertEquals(DType.INT64, l.dtype());
      assertArrayEquals(new long[] {2}, l.shape(), "no shape: a vector");
      assertEquals(DType.BOOL, z.dtype());
      assertEquals("Tensor[float32, 2x3]", f.toString());
      assertEquals("Tensor[int32, 3x1]", i.toString());
    }
  }

  @Test
  void otherElementTypesKeepTheirBits() {
    try (Tensor u8 = Tensor.of(DType.UINT8, new byte[] {(byte) 255}, 1);
        Tensor h = Tensor.of(DType.FLOAT16, new short[] {0x3c00}, 1);
        Tensor u64 = Tensor.of(DType.UINT64, new long[] {-1L}, 1);
        Tensor scalar = Tensor.scalar(2.5f)) {
      assertArrayEquals(new byte[] {(byte) 255}, u8.toByteArray());
      assertArrayEquals(new short[] {0x3c00}, h.toShortArray());
      assertArrayEquals(new long[] {-1L}, u64.toLongArray());
      assertEquals(0, scalar.rank());
      assertEquals("Tensor[float32, scalar]", scalar.toString());
      assertArrayEquals(new float[] {2.5f}, scalar.toFloatArray());
    }
  }

  @Test
  void zerosAndWrites() {
    try (Tensor t = Tensor.zeros(DType.FLOAT32, 2, 2)) {
      assertArrayEquals(new float[4], t.toFloatArray());
      t.copyFrom(new float[] {1, 2, 3, 4});
      float[] out = new float[4];
      t.copyTo(out);
      assertArrayEquals(new float[] {1, 2, 3, 4}, out);
    }
    try (Tensor empty = Tensor.zeros(DType.INT32, 0, 5)) {
      assertEquals(0, empty.byteSize());
      assertEquals(0, empty.toIntArray().length);
    }
  }

  @Test
  void badArgumentsAreRefusedClearly() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Tensor.of(new float[5], 2, 3));
    assertTrue(e.getMessage().contains("5 elements") && e.getMessage().contains("Tensor[float32, 2x3]"),
        e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Tensor.of(DType.FLOAT32, new int[4], 4));
    assertTrue(e.getMessage().contains("float[]"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(DType.FLOAT32, -1, 2));
    assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(DType.UNDEFINED, 1));
    assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(DType.FLOAT32, new long[17]));
    try (Tensor t = Tensor.of(new float[] {1}, 1)) {
      IllegalStateException s = assertThrows(IllegalStateException.class, t::toIntArray);
      assertTrue(s.getMessage().contains("Tensor[float32, 1]"), s.getMessage());
    }
  }

  @Test
  void useAfterCloseNamesTheObject() {
    Tensor t = Tensor.of(new float[6], 2, 3);
    t.close();
    t.close(); // idempotent
    assertTrue(t.isClosed());
    IllegalStateException e = assertThrows(IllegalStateException.class, t::toFloatArray);
    assertEquals("Tensor[float32, 2x3] is closed", e.getMessage());
    assertThrows(IllegalStateException.class, () -> t.copyFrom(new float[6]));
    assertThrows(IllegalStateException.class, () -> t.copyTo(ByteBuffer.allocate(24)));
    assertEquals("Tensor[float32, 2x3]", t.toString(), "describing still works");
    assertArrayEquals(new long[] {2, 3}, t.shape(), "metadata still readable");
  }

  @Test
  void closeFromAnotherThread() throws Exception {
    Tensor t = Tensor.of(new float[] {1, 2}, 2);
    Thread closer = new Thread(t::close);
    closer.start();
    closer.join();
    assertTrue(t.isClosed());
    assertEquals(0, TestSupport.liveObjects());
  }

  @Test
  void wrapsADirectBufferWithoutCopying() {
    ByteBuffer buffer = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
    buffer.asFloatBuffer().put(new float[] {1, 2, 3, 4});
    try (Tensor t = Tensor.wrap(buffer, DType.FLOAT32, 2, 2)) {
      assertTrue(t.isWrapped());
      assertArrayEquals(new float[] {1, 2, 3, 4}, t.toFloatArray());
      buffer.putFloat(0, 42f); // the tensor sees the buffer's writes
      assertEquals(42f, t.toFloatArray()[0]);
      t.copyFrom(new float[] {5, 6, 7, 8}); // and the buffer the tensor's
      assertEquals(8f, buffer.getFloat(12));
      assertEquals(0, Strand.memoryStats().liveBytes(MemoryCategory.TENSOR),
          "wrapped bytes are the buffer's, not strand's");
    }
  }

  @Test
  void wrapRefusesWhatItCannotShare() {
    assertThrows(IllegalArgumentException.class,
        () -> Tensor.wrap(ByteBuffer.allocate(16), DType.FLOAT32, 4));
    ByteOrder other = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN
        ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
    assertThrows(IllegalArgumentException.class,
        () -> Tensor.wrap(ByteBuffer.allocateDirect(16).order(other), DType.FLOAT32, 4));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Tensor.wrap(ByteBuffer.allocateDirect(12).order(ByteOrder.nativeOrder()), DType.FLOAT32, 4));
    assertTrue(e.getMessage().contains("12 bytes"), e.getMessage());
    // Bytes need no order.
    try (Tensor t = Tensor.wrap(ByteBuffer.allocateDirect(3).order(other), DType.UINT8, 3)) {
      assertEquals(3, t.byteSize());
    }
  }

  @Test
  void wrappedBufferLivesUntilTheLastNativeReference() {
    WeakReference<ByteBuffer> ref = wrapAndClose();
    TestSupport.collectUntil("the wrapped buffer to be collected", 10, () -> ref.get() == null);
  }

  private static WeakReference<ByteBuffer> wrapAndClose() {
    ByteBuffer buffer = ByteBuffer.allocateDirect(1024).order(ByteOrder.nativeOrder());
    Tensor t = Tensor.wrap(buffer, DType.FLOAT32, 256);
    WeakReference<ByteBuffer> ref = new WeakReference<>(buffer);
    t.close();
    return ref;
  }

  /** The release callback of a wrapped buffer runs on a thread the JVM has
   * never seen: it attaches it, drops the buffer, and the thread ends cleanly. */
  @Test
  void wrappedBufferReleasedOnAForeignThread() {
    WeakReference<ByteBuffer> ref = wrapAndHandOff();
    for (int i = 0; i < 3; i++) {
      System.gc();
    }
    assertNotNull(ref.get(), "the native reference still holds the buffer");
    assertTrue(Native.releaseOnForeignThread(ObjectKind.TENSOR.code(), HANDED_OFF.get()));
    TestSupport.collectUntil("the buffer to be collected after a foreign release", 10,
        () -> ref.get() == null);
    assertEquals(0, TestSupport.liveObjects());
  }

  private static final AtomicReference<Long> HANDED_OFF = new AtomicReference<>();

  private static WeakReference<ByteBuffer> wrapAndHandOff() {
    ByteBuffer buffer = ByteBuffer.allocateDirect(64).order(ByteOrder.nativeOrder());
    Tensor t = Tensor.wrap(buffer, DType.INT64, 8);
    long address = t.acquire();
    try {
      Native.retain(ObjectKind.TENSOR.code(), address); // a reference of the test's own
    } finally {
      t.release();
    }
    t.close();
    HANDED_OFF.set(address);
    return new WeakReference<>(buffer);
  }

  @Test
  void buffersInAndOut() {
    try (Tensor t = Tensor.of(new int[] {1, 2, 3}, 3)) {
      ByteBuffer direct = t.toByteBuffer();
      assertEquals(12, direct.remaining());
      assertEquals(ByteOrder.nativeOrder(), direct.order());
      assertEquals(3, direct.getInt(8));

      ByteBuffer heap = ByteBuffer.allocate(20).order(ByteOrder.nativeOrder());
      heap.position(4);
      t.copyTo(heap);
      assertEquals(16, heap.position());
      assertEquals(1, heap.getInt(4));

      ByteBuffer src = ByteBuffer.allocateDirect(12).order(ByteOrder.nativeOrder());
      src.asIntBuffer().put(new int[] {9, 8, 7});
      t.copyFrom(src);
      assertEquals(12, src.position());
      assertArrayEquals(new int[] {9, 8, 7}, t.toIntArray());

      ByteBuffer heapSrc = ByteBuffer.allocate(12).order(ByteOrder.nativeOrder());
      heapSrc.asIntBuffer().put(new int[] {4, 5, 6});
      t.copyFrom(heapSrc);
      assertArrayEquals(new int[] {4, 5, 6}, t.toIntArray());
      assertThrows(IllegalArgumentException.class, () -> t.copyTo(ByteBuffer.allocate(4)));
    }
  }

  @Test
  void npyFiles(@TempDir Path dir) {
    try (Tensor input = Tensor.readNpy(TestSupport.model("mlp_tiny.input.npy"))) {
      assertEquals(DType.FLOAT32, input.dtype());
      assertEquals(2, input.rank());
      assertEquals(16, input.dim(1));
      Path copy = dir.resolve("copy ü.npy");
      input.writeNpy(copy);
      assertTrue(Files.exists(copy));
      try (Tensor back = Tensor.readNpy(copy)) {
        assertArrayEquals(input.toFloatArray(), back.toFloatArray());
      }
    }
    StrandException e = assertThrows(StrandException.class,
        () -> Tensor.readNpy(dir.resolve("missing.npy")));
    assertEquals(Status.IO, e.status());
    assertEquals("STRAND_E_IO", e.statusName());
    assertTrue(e.strandMessage().contains("missing.npy"), e.getMessage());
  }

  @Test
  void nativeBytesAreVisible() {
    long before = Strand.memoryStats().liveBytes(MemoryCategory.TENSOR);
    try (Tensor t = Tensor.zeros(DType.FLOAT64, 1000)) {
      MemoryStats stats = Strand.memoryStats();
      assertEquals(before + 8000, stats.liveBytes(MemoryCategory.TENSOR));
      assertEquals(1, stats.liveObjects(ObjectKind.TENSOR));
      assertTrue(stats.toString().contains("tensor 8000"), stats.toString());
    }
    assertEquals(before, Strand.memoryStats().liveBytes(MemoryCategory.TENSOR));
  }

  @Test
  void enumsMatchTheNativeLibrary() {
    for (Status s : Status.values()) {
      if (s != Status.UNKNOWN) {
        assertEquals("STRAND_" + (s == Status.OK ? "OK" : "E_" + s.name()), Native.statusName(s.code()));
      }
    }
    for (DType t : DType.values()) {
      assertEquals(t.typeName(), Native.dtypeName(t.code()));
    }
    assertFalse(Strand.version().isEmpty());
    assertEquals(Strand.versionNumber() / 10000 + ".", Strand.version().substring(0, 2));
  }
}
