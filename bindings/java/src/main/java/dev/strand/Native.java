package dev.strand;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The JNI surface (native/strand_jni.c). Handles are {@code long}s; text
 * crosses as UTF-8 bytes ending in NUL ({@link #text}). Every method may be
 * called from any thread. Callers guarantee that a handle they pass is alive
 * for the whole call (see {@link StrandObject}).
 */
final class Native {
  /** Must equal BINDING_ABI in strand_jni.c. */
  static final int ABI = 5;

  static {
    NativeLoader.load();
    int abi = abiVersion();
    if (abi != ABI) {
      throw new UnsatisfiedLinkError(
          "strand: the native library speaks interface " + abi + ", these classes " + ABI
              + ": the jar and libstrand_jni come from different builds");
    }
    Config.apply();
  }

  private Native() {}

  /** Makes sure the library is loaded and configured. */
  static void init() {}

  /** {@code s} as UTF-8 with a terminating NUL, for the native side. */
  static byte[] text(String s) {
    byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
    byte[] out = new byte[utf8.length + 1];
    System.arraycopy(utf8, 0, out, 0, utf8.length);
    return out;
  }

  // ---- library-wide
  static native int abiVersion();

  static native String version();

  static native int versionNumber();

  static native String statusName(int status);

  static native String dtypeName(int dtype);

  static native long[] memoryStats();

  static native void setMemoryLimit(long bytes);

  static native void resetMemoryPeaks();

  static native long parseBytes(byte[] text);

  static native void setLeakLevel(int level, int sampleInterval);

  static native int leakLevel();

  static native void setOrigin(byte[] text);

  static native void leakReport(List<NativeLeakSite> out);

  static native long misuseCount();

  static native void setLogLevel(int level);

  static native int logLevel();

  static native void setThreadBudget(int threads);

  static native int threadBudget();

  static native String lastMessage();

  // ---- every kind
  static native void retain(int kind, long handle);

  static native void release(int kind, long handle);

  static native boolean releaseOnForeignThread(int kind, long handle);

  // ---- tensors
  /**
   * The element type of a primitive array, for the copies below (the
   * ARRAY_ values of strand_jni.c): byte 0, short 1, int 2, long 3, float 4,
   * double 5, boolean 6; -1 for anything else.
   */
  static int arrayKind(Object array) {
    if (array instanceof float[]) {
      return 4;
    } else if (array instanceof byte[]) {
      return 0;
    } else if (array instanceof long[]) {
      return 3;
    } else if (array instanceof int[]) {
      return 2;
    } else if (array instanceof double[]) {
      return 5;
    } else if (array instanceof short[]) {
      return 1;
    } else if (array instanceof boolean[]) {
      return 6;
    }
    return -1;
  }

  /** A tensor filled from {@code array} (of {@link #arrayKind} {@code kind}), or zeros for null. */
  static native long tensorCreate(int dtype, long[] shape, Object array, int kind, long byteCount);

  static native long tensorWrap(int dtype, long[] shape, ByteBuffer buffer, long offset, long length);

  static native long[] tensorInfo(long handle);

  static native void tensorRead(long handle, Object array, int kind, long byteCount);

  static native void tensorWrite(long handle, Object array, int kind, long byteCount);

  static native void tensorCopyDirect(long handle, ByteBuffer buffer, long offset, boolean intoTensor);

  static native long tensorReadNpy(byte[] path);

  static native void tensorWriteNpy(long handle, byte[] path);

  // ---- models
  static native long modelLoad(byte[] path);

  static native long modelLoadBytes(byte[] data, int offset, int length);

  static native long modelLoadDirect(ByteBuffer buffer, long offset, long length);

  static native ValueInfo[] modelValues(long handle, boolean outputs);

  static native String[] modelText(long handle);

  static native long[] modelNumbers(long handle);

  static native String modelOpsetDomain(long handle, int index);

  static native long modelOpsetVersion(long handle, int index);

  static native void modelCheckSupported(long handle);

  // ---- sessions
  /** {@code batchDelayMicros} is strand's uint32_t; {@code dispatcher} 0 for none. */
  /** sliceRows: -1 for STRAND_SLICE_OFF. */
  static native long sessionCreate(long model, int intraOpThreads, int batchMaxRows,
      int batchDelayMicros, long dispatcher, int sliceRows);

  static native long sessionModel(long handle);

  /** Longs that {@link #sessionRun} writes per output, at most: handle, dtype,
   * byte size, rank, then up to 16 dimensions. */
  static final int OUT_INFO = 4 + 16;

  /** Runs; fills {@code out} (OUT_INFO longs per output) with { handle,
   * dtype, byte size, rank, dims... } per output and returns the longs written. */
  static native int sessionRun(long handle, int[] inputIndices, long[] inputs, int[] outputIndices,
      long[] out);

  /** {@link #sessionRun} with one input and every output. */
  static native int sessionRun1(long handle, int inputIndex, long input, long[] out);

  /**
   * {@link #sessionRun} through strand_session_run_with_options: {@code token}
   * 0 for none; {@code nanosLeft} the time left before the deadline, which
   * the native side adds to CLOCK_MONOTONIC ({@link RunOptions#NO_LIMIT}:
   * none; 0 or less: already passed).
   */
  static native int sessionRunWithOptions(long handle, int[] inputIndices, long[] inputs,
      int[] outputIndices, long[] out, long token, long nanosLeft);

  /** {@link #sessionRun1} with options, as {@link #sessionRunWithOptions}. */
  static native int sessionRun1WithOptions(long handle, int inputIndex, long input, long[] out,
      long token, long nanosLeft);

  /** The 13 fields of strand_session_stats in order. */
  static native long[] sessionStats(long handle);

  static native void sessionSetProfiling(long handle, boolean on);

  static native void sessionResetProfile(long handle);

  /** Per node in graph order: calls, then total nanoseconds. */
  static native long[] sessionProfile(long handle);

  /** Per node in graph order: name, op type, then kernel. */
  static native String[] sessionProfileNames(long handle);

  // ---- cancel tokens
  static native long cancelTokenCreate();

  static native void cancelTokenCancel(long handle);

  static native void cancelTokenReset(long handle);

  static native boolean cancelTokenIsCanceled(long handle);

  // ---- dispatchers
  static native long dispatcherCreate(byte[] name, long queueCapacity);

  static native int dispatcherRun(long handle, Dispatcher.Task task);

  static native boolean dispatcherIsCurrent(long handle);

  static native void dispatcherStop(long handle, boolean cancel);

  static native double[] dispatcherStats(long handle);
}
