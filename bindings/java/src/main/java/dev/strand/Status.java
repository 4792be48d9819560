package dev.strand;

/** strand's status codes ({@code strand_status}); a value never changes meaning. */
public enum Status {
  OK(0),
  INVALID_ARGUMENT(1),
  MALFORMED_MODEL(2),
  UNSUPPORTED(3),
  OUT_OF_MEMORY(4),
  MEMORY_LIMIT(5),
  IO(6),
  MISUSE(7),
  SHAPE(8),
  DTYPE(9),
  NOT_FOUND(10),
  CANCELED(11),
  DEADLINE(12),
  BUSY(13),
  INTERNAL(14),
  /** A code this version of the binding does not know. */
  UNKNOWN(-1);

  private final int code;

  Status(int code) {
    this.code = code;
  }

  /** The numeric value, as in strand.h. */
  public int code() {
    return code;
  }

  /** The status with {@code code}, or {@link #UNKNOWN}. */
  public static Status of(int code) {
    for (Status s : values()) {
      if (s.code == code) {
        return s;
      }
    }
    return UNKNOWN;
  }
}
