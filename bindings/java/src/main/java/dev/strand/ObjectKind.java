package dev.strand;

/** The kinds of strand object ({@code strand_kind}). */
public enum ObjectKind {
  TENSOR("Tensor"),
  MODEL("Model"),
  SESSION("Session"),
  DISPATCHER("Dispatcher"),
  CANCEL_TOKEN("CancelToken");

  private final String className;

  ObjectKind(String className) {
    this.className = className;
  }

  /** The numeric value, as in strand.h. */
  public int code() {
    return ordinal();
  }

  /** The Java class name of objects of this kind ("Tensor"). */
  public String className() {
    return className;
  }

  static ObjectKind of(int code) {
    return code >= 0 && code < values().length ? values()[code] : null;
  }
}
