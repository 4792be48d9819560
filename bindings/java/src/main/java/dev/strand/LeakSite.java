package dev.strand;

import java.util.Optional;

/**
 * Objects of one kind, created at one site, that the garbage collector found
 * without {@code close()} having been called (their native memory was then
 * released on the cleaner thread).
 */
public final class LeakSite {
  private final ObjectKind kind;
  private final long count;
  private final long bytes;
  private final String stack;

  LeakSite(ObjectKind kind, long count, long bytes, String stack) {
    this.kind = kind;
    this.count = count;
    this.bytes = bytes;
    this.stack = stack;
  }

  public ObjectKind kind() {
    return kind;
  }

  /** Objects leaked from this site. */
  public long count() {
    return count;
  }

  /** Tensor data bytes they held (0 for other kinds). */
  public long bytes() {
    return bytes;
  }

  /** The Java stack of their creation ("at ..." lines), when leak detection
   * was at SAMPLE or ALL; empty for untraced objects, grouped by kind. */
  public Optional<String> stack() {
    return Optional.ofNullable(stack);
  }

  @Override
  public String toString() {
    return count + " " + kind.className() + (count == 1 ? "" : "s") + " leaked"
        + (bytes > 0 ? " (" + bytes + " bytes)" : "")
        + (stack == null ? ", creation site not recorded" : ", created\n  " + stack.replace("\n", "\n  "));
  }
}
