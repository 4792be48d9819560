package dev.strand;

/**
 * One entry of strand's own leak report ({@code strand_leak_report}): live
 * native objects aggregated by creation site, with the C backtrace and the
 * origin text the binding attached (the Java stack) when traced.
 */
public final class NativeLeakSite {
  private final ObjectKind kind;
  private final long count;
  private final long bytes;
  private final boolean traced;
  private final String trace;
  private final String origin;

  /** Made by the native library (the signature is part of the JNI interface). */
  NativeLeakSite(int kind, long count, long bytes, boolean traced, String trace, String origin) {
    this.kind = ObjectKind.of(kind);
    this.count = count;
    this.bytes = bytes;
    this.traced = traced;
    this.trace = trace;
    this.origin = origin;
  }

  public ObjectKind kind() {
    return kind;
  }

  /** Live objects created here. */
  public long count() {
    return count;
  }

  /** Native bytes they hold. */
  public long bytes() {
    return bytes;
  }

  /** False for objects without a trace, grouped by kind only. */
  public boolean traced() {
    return traced;
  }

  /** The symbolized C backtrace, one frame per line; "" when not traced. */
  public String trace() {
    return trace;
  }

  /** The Java creation stack the binding attached; "" when none. */
  public String origin() {
    return origin;
  }

  @Override
  public String toString() {
    return count + " live " + (kind == null ? "object" : kind.className()) + (count == 1 ? "" : "s")
        + " (" + bytes + " bytes)" + (origin.isEmpty() ? "" : "\n" + origin)
        + (trace.isEmpty() ? "" : "\n" + trace);
  }
}
