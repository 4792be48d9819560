package dev.strand;

import java.time.Duration;
import java.util.Objects;

/**
 * Options of one run ({@code strand_run_options}): a timeout, a deadline and
 * a {@link CancelToken}; immutable, with {@code with...} copies:
 * <pre>{@code
 * RunOptions o = RunOptions.none().withTimeout(Duration.ofMillis(20)).withCancel(token);
 * try (Result r = session.run("input", x, o)) { ... }
 * }</pre>
 *
 * <p>A run past its deadline (or timeout) stops at its next node boundary and
 * throws {@link StrandException} with {@link Status#DEADLINE}; a run whose
 * token is canceled throws {@link Status#CANCELED}; either way with strand's
 * message naming the node that was about to run
 * ({@code node "fc2" (Gemm): deadline passed 0.213 ms before this node ran}), and no
 * output is left behind. A run waiting to be batched stops waiting at once.
 *
 * <p>Clocks. A deadline is a {@link System#nanoTime()} value. It never reaches
 * strand as such: right before the native call the binding takes the time
 * left ({@code deadline - System.nanoTime()}, the overflow-safe comparison
 * that nanoTime's contract asks for) and the native side adds it to its own
 * reading of {@code CLOCK_MONOTONIC}, strand's clock. So nothing assumes
 * that the JVM's nanoTime is CLOCK_MONOTONIC (it is on Linux, but only by
 * implementation); the two readings are taken within a microsecond or so,
 * which can only make the deadline that much later. A timeout counts from
 * the start of the {@code Session.run} call (so it also bounds a retry after
 * a garbage collection, see {@link Strand#setMemoryLimit}); with both, the
 * earlier one counts. A deadline already passed stops the run before its
 * first node.
 *
 * <p>Thread safety: immutable; one value may serve any number of runs at once.
 */
public final class RunOptions {
  private static final RunOptions NONE = new RunOptions(0, false, 0, null);

  /** The timeout in nanoseconds, 0 for none (saturated at Long.MAX_VALUE). */
  private final long timeoutNanos;
  private final boolean hasDeadline;
  /** A System.nanoTime() value, when hasDeadline. */
  private final long deadlineNanos;
  private final CancelToken cancel;

  private RunOptions(long timeoutNanos, boolean hasDeadline, long deadlineNanos,
      CancelToken cancel) {
    this.timeoutNanos = timeoutNanos;
    this.hasDeadline = hasDeadline;
    this.deadlineNanos = deadlineNanos;
    this.cancel = cancel;
  }

  /** No timeout, no deadline, no token: a plain run. */
  public static RunOptions none() {
    return NONE;
  }

  /** {@code none().withTimeout(timeout)}. */
  public static RunOptions timeout(Duration timeout) {
    return NONE.withTimeout(timeout);
  }

  /** {@code none().withDeadline(nanoTime)}. */
  public static RunOptions deadline(long nanoTime) {
    return NONE.withDeadline(nanoTime);
  }

  /** {@code none().withCancel(token)}. */
  public static RunOptions cancel(CancelToken token) {
    return NONE.withCancel(token);
  }

  /**
   * The run must be over {@code timeout} after {@code Session.run} is
   * called; it must be positive (use a deadline for time that may have run
   * out already). strand looks at the clock at node boundaries, so a
   * timeout of 1 µs stops a run of many nodes part way or before its first
   * node. {@code null} removes it.
   */
  public RunOptions withTimeout(Duration timeout) {
    if (timeout == null) {
      return new RunOptions(0, hasDeadline, deadlineNanos, cancel);
    }
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("the timeout must be positive: " + timeout);
    }
    long nanos;
    try {
      nanos = timeout.toNanos();
    } catch (ArithmeticException tooLong) {
      nanos = Long.MAX_VALUE; // about 292 years: never
    }
    return new RunOptions(nanos, hasDeadline, deadlineNanos, cancel);
  }

  /**
   * The run must be over when {@link System#nanoTime()} reaches
   * {@code nanoTime} (see the class comment for how it becomes strand's
   * CLOCK_MONOTONIC deadline). A value in the past stops the run before its
   * first node.
   */
  public RunOptions withDeadline(long nanoTime) {
    return new RunOptions(timeoutNanos, true, nanoTime, cancel);
  }

  /** Removes the deadline. */
  public RunOptions withoutDeadline() {
    return new RunOptions(timeoutNanos, false, 0, cancel);
  }

  /**
   * The token the run watches; {@code null} removes it. The token must be
   * open when a run starts, which holds it in flight until it returns.
   */
  public RunOptions withCancel(CancelToken token) {
    return new RunOptions(timeoutNanos, hasDeadline, deadlineNanos, token);
  }

  /** The timeout, or null. */
  public Duration timeout() {
    return timeoutNanos == 0 ? null : Duration.ofNanos(timeoutNanos);
  }

  public boolean hasDeadline() {
    return hasDeadline;
  }

  /** The deadline as a System.nanoTime() value; meaningful when {@link #hasDeadline()}. */
  public long deadlineNanoTime() {
    return deadlineNanos;
  }

  /** The token, or null. */
  public CancelToken cancelToken() {
    return cancel;
  }

  /** True with neither a time limit nor a token: a run takes the plain path. */
  boolean isNone() {
    return timeoutNanos == 0 && !hasDeadline && cancel == null;
  }

  /** A time limit's marker for "none" in {@link #nanosLeft}. */
  static final long NO_LIMIT = Long.MAX_VALUE;

  /** The most negative time left reported: far enough in the past, and no
   * arithmetic on it can overflow. */
  private static final long LONG_AGO = -(1L << 62);

  /**
   * The time left at {@code start} (a System.nanoTime() reading at the
   * start of the run call) under the timeout and the deadline, the earlier
   * counting; {@link #NO_LIMIT} without either.
   */
  long nanosLeftAt(long start) {
    long left = NO_LIMIT;
    if (timeoutNanos != 0) {
      left = timeoutNanos;
    }
    if (hasDeadline) {
      left = Math.min(left, Math.max(deadlineNanos - start, LONG_AGO));
    }
    return left;
  }

  /** What is left of {@code leftAtStart} now: the value the native side adds
   * to CLOCK_MONOTONIC. */
  static long nanosLeft(long leftAtStart, long start) {
    if (leftAtStart == NO_LIMIT) {
      return NO_LIMIT;
    }
    long elapsed = System.nanoTime() - start;
    return leftAtStart - Math.max(elapsed, 0); // below NO_LIMIT: leftAtStart is
  }

  @Override
  public String toString() {
    return "RunOptions[timeout=" + timeout() + ", deadline="
        + (hasDeadline ? "nanoTime " + deadlineNanos : "none") + ", cancel=" + cancel + "]";
  }
}
