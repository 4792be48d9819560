package dev.strand;

/**
 * A failing strand call: its {@link Status}, the status's symbolic name
 * ({@code STRAND_E_SHAPE}) and strand's detail message, which names the
 * argument, node, tensor or dimension at fault.
 */
public class StrandException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final int code;
  private final String statusName;
  private final String strandMessage;

  /** Made by the native library (the signature is part of the JNI interface). */
  StrandException(int code, String statusName, String strandMessage) {
    super(statusName + ": " + (strandMessage.isEmpty() ? Status.of(code).name() : strandMessage));
    this.code = code;
    this.statusName = statusName;
    this.strandMessage = strandMessage;
  }

  StrandException(Status status, String strandMessage) {
    this(status.code(), "STRAND_E_" + status.name(), strandMessage);
  }

  /** The status; {@link Status#UNKNOWN} for a code newer than this binding. */
  public Status status() {
    return Status.of(code);
  }

  /** The numeric status code. */
  public int code() {
    return code;
  }

  /** The symbolic name, as strand spells it ({@code "STRAND_E_SHAPE"}). */
  public String statusName() {
    return statusName;
  }

  /** strand's own detail text ({@code strand_errmsg()}), possibly empty. */
  public String strandMessage() {
    return strandMessage;
  }
}
