package dev.strand;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A loaded ONNX model, immutable and shared freely: any number of sessions
 * and threads may use one model at once. A session keeps its own native
 * reference, so a model may be closed as soon as its sessions exist.
 *
 * <p>Thread safety: any (see {@link StrandObject}).
 */
public final class Model extends StrandObject {
  private final List<ValueInfo> inputs;
  private final List<ValueInfo> outputs;

  private Model(long address, String description, Leaks.Site site, List<ValueInfo> inputs,
      List<ValueInfo> outputs) {
    super(ObjectKind.MODEL, address, description, site, 0, true);
    this.inputs = inputs;
    this.outputs = outputs;
  }

  /**
   * Loads an ONNX file. Weights are used in place from a read-only mapping of
   * the file where possible; external data is read from the file's directory.
   *
   * @throws StrandException IO, MALFORMED_MODEL (naming the node, field or
   *     offset), UNSUPPORTED, MEMORY_LIMIT, ...
   */
  public static Model load(Path path) {
    byte[] p = Native.text(path.toString());
    Leaks.Site site = Leaks.capture();
    long address = Memory.allocate(site, () -> Native.modelLoad(p));
    return adopt(address, "Model[" + path + "]", site);
  }

  /** Loads a model from bytes (strand copies them; the array may be reused at once). */
  public static Model load(byte[] bytes) {
    return load(bytes, 0, bytes.length);
  }

  /** Loads a model from {@code length} bytes of {@code bytes} at {@code offset}. */
  public static Model load(byte[] bytes, int offset, int length) {
    Leaks.Site site = Leaks.capture();
    long address = Memory.allocate(site, () -> Native.modelLoadBytes(bytes, offset, length));
    return adopt(address, "Model[" + length + " bytes]", site);
  }

  /** Loads a model from a buffer's bytes between position and limit (copied). */
  public static Model load(ByteBuffer buffer) {
    if (!buffer.isDirect()) {
      byte[] bytes = new byte[buffer.remaining()];
      buffer.duplicate().get(bytes);
      return load(bytes);
    }
    Leaks.Site site = Leaks.capture();
    int position = buffer.position();
    int length = buffer.remaining();
    long address = Memory.allocate(site, () -> Native.modelLoadDirect(buffer, position, length));
    return adopt(address, "Model[" + length + " bytes]", site);
  }

  /** Takes over one native reference to a model. */
  static Model adopt(long address, String description, Leaks.Site site) {
    List<ValueInfo> in;
    List<ValueInfo> out;
    try {
      in = List.of(Native.modelValues(address, false));
      out = List.of(Native.modelValues(address, true));
    } catch (Throwable t) {
      Native.release(ObjectKind.MODEL.code(), address);
      throw t;
    }
    return new Model(address, description, site, in, out);
  }

  /** The inputs the caller supplies (initializer-backed ones excluded), in order. */
  public List<ValueInfo> inputs() {
    checkOpen();
    return inputs;
  }

  public List<ValueInfo> outputs() {
    checkOpen();
    return outputs;
  }

  /** The input named {@code name}. */
  public ValueInfo input(String name) {
    return find(inputs(), name, "input");
  }

  /** The output named {@code name}. */
  public ValueInfo output(String name) {
    return find(outputs(), name, "output");
  }

  /** The producer's name ("pytorch"); "" when absent. */
  public String producerName() {
    return text()[0];
  }

  /** The producer's version; "" when absent. */
  public String producerVersion() {
    return text()[1];
  }

  /** The main graph's name; "" when absent. */
  public String graphName() {
    return text()[2];
  }

  /** ModelProto.ir_version. */
  public long irVersion() {
    return numbers()[0];
  }

  /** Elements in all initializers. */
  public long parameterCount() {
    return numbers()[1];
  }

  /** Bytes in all initializers. */
  public long parameterBytes() {
    return numbers()[2];
  }

  /** Imported operator sets: domain ("" for ONNX's own) to version, in the file's order. */
  public Map<String, Long> opsets() {
    long address = acquire();
    try {
      int n = (int) Native.modelNumbers(address)[3];
      Map<String, Long> out = new LinkedHashMap<>();
      for (int i = 0; i < n; i++) {
        out.put(Native.modelOpsetDomain(address, i), Native.modelOpsetVersion(address, i));
      }
      return Collections.unmodifiableMap(out);
    } finally {
      release();
    }
  }

  /**
   * Returns when strand can run every node; otherwise throws UNSUPPORTED
   * listing the op types without a kernel.
   */
  public void checkSupported() {
    long address = acquire();
    try {
      Native.modelCheckSupported(address);
    } finally {
      release();
    }
  }

  /** A session with default options. */
  public Session newSession() {
    return Session.create(this, SessionOptions.defaults());
  }

  public Session newSession(SessionOptions options) {
    return Session.create(this, options);
  }

  private String[] text() {
    long address = acquire();
    try {
      return Native.modelText(address);
    } finally {
      release();
    }
  }

  private long[] numbers() {
    long address = acquire();
    try {
      return Native.modelNumbers(address);
    } finally {
      release();
    }
  }

  private void checkOpen() {
    if (isClosed()) {
      throw handle.closedError();
    }
  }

  private ValueInfo find(List<ValueInfo> values, String name, String what) {
    for (ValueInfo v : values) {
      if (v.name().equals(name)) {
        return v;
      }
    }
    throw new IllegalArgumentException(this + " has no " + what + " named \"" + name + "\"");
  }
}
