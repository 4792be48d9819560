package dev.strand;

import java.time.Duration;
import java.util.Objects;

/**
 * Options for {@link Session#create} ({@code strand_session_options});
 * immutable, with {@code with...} copies:
 * <pre>{@code
 * SessionOptions.defaults()
 *     .withIntraOpThreads(1)
 *     .withBatching(32, Duration.ofNanos(200_000))   // stack up to 32 rows, wait up to 200 µs
 *     .withDispatcher(dispatcher);                   // every run on the dispatcher's thread
 * }</pre>
 */
public final class SessionOptions {
  /** The largest delay strand takes (its field is 32 bits of microseconds). */
  static final long MAX_BATCH_DELAY_MICROS = 0xFFFF_FFFFL;

  /** {@link #withSliceRows} value that turns slicing off (STRAND_SLICE_OFF). */
  public static final int SLICE_OFF = -1;

  private static final SessionOptions DEFAULTS = new SessionOptions(0, 0, 0, null, 0);

  private final int intraOpThreads;
  private final int batchMaxRows;
  private final long batchDelayMicros;
  private final Dispatcher dispatcher;
  private final int sliceRows;

  private SessionOptions(int intraOpThreads, int batchMaxRows, long batchDelayMicros,
      Dispatcher dispatcher, int sliceRows) {
    this.intraOpThreads = intraOpThreads;
    this.batchMaxRows = batchMaxRows;
    this.batchDelayMicros = batchDelayMicros;
    this.dispatcher = dispatcher;
    this.sliceRows = sliceRows;
  }

  /** One thread budget per run, no batching, no dispatcher. */
  public static SessionOptions defaults() {
    return DEFAULTS;
  }

  /**
   * The most threads one run may keep busy, the calling thread included; 0
   * (the default) means the process's CPU budget; 1 runs everything on the
   * caller.
   */
  public SessionOptions withIntraOpThreads(int threads) {
    if (threads < 0) {
      throw new IllegalArgumentException("intraOpThreads must be >= 0");
    }
    return new SessionOptions(threads, batchMaxRows, batchDelayMicros, dispatcher, sliceRows);
  }

  /**
   * Dynamic batching: runs that arrive while others wait, and whose inputs
   * differ only in their first (batch) dimension, are stacked into one run of
   * at most {@code maxRows} rows and split back; each caller gets exactly the
   * outputs its own run would have given, bit for bit. 0 or 1 (the default)
   * turns batching off. It pays when many threads send small requests; see
   * {@link Session.Stats#batches()}. Only models whose every input and output
   * has one symbolic first dimension qualify (others run every run on its
   * own); runs that cannot be stacked (other shapes, more rows than
   * {@code maxRows}) run on their own at once. A run made on the session's
   * dispatcher thread is never batched.
   */
  public SessionOptions withBatchMaxRows(int maxRows) {
    if (maxRows < 0) {
      throw new IllegalArgumentException("batchMaxRows must be >= 0");
    }
    return new SessionOptions(intraOpThreads, maxRows, batchDelayMicros, dispatcher, sliceRows);
  }

  /**
   * The longest the first run of a batch waits for company, in microseconds
   * (strand's unit; 0, the default, means 100 µs when batching is on), at
   * most 2^32 - 1. A run waiting for company stops waiting at once when its
   * {@link CancelToken} is canceled or its deadline passes.
   */
  public SessionOptions withBatchDelayMicros(long micros) {
    if (micros < 0 || micros > MAX_BATCH_DELAY_MICROS) {
      throw new IllegalArgumentException(
          "batchDelayMicros must be within 0.." + MAX_BATCH_DELAY_MICROS + ", not " + micros);
    }
    return new SessionOptions(intraOpThreads, batchMaxRows, micros, dispatcher, sliceRows);
  }

  /**
   * {@link #withBatchMaxRows} and {@link #withBatchDelayMicros} at once, the
   * delay as a {@link Duration}: a positive delay below one microsecond
   * counts as one (zero would mean strand's default of 100 µs).
   */
  public SessionOptions withBatching(int maxRows, Duration delay) {
    Objects.requireNonNull(delay, "delay");
    if (delay.isNegative()) {
      throw new IllegalArgumentException("the batch delay must not be negative: " + delay);
    }
    long micros;
    if (delay.getSeconds() > MAX_BATCH_DELAY_MICROS / 1_000_000L) {
      micros = Long.MAX_VALUE; // refused below, with the figure
    } else {
      micros = delay.getSeconds() * 1_000_000L + (delay.getNano() + 999) / 1000;
    }
    if (micros > MAX_BATCH_DELAY_MICROS) {
      throw new IllegalArgumentException("the batch delay must be at most "
          + MAX_BATCH_DELAY_MICROS + " µs: " + delay);
    }
    return withBatchMaxRows(maxRows).withBatchDelayMicros(micros);
  }

  /**
   * Binds the session to {@code dispatcher}: every run then executes on the
   * dispatcher's thread while the caller blocks (a caller already on that
   * thread runs inline), for hosts that need all work on one thread. The
   * session keeps a native reference to the dispatcher, so the dispatcher
   * may be closed before the session; runs after the dispatcher was
   * {@link Dispatcher#stop stopped} fail with {@link Status#CANCELED}.
   * {@code null} (the default) runs on the calling thread. The dispatcher
   * must be open when the session is created.
   */
  public SessionOptions withDispatcher(Dispatcher dispatcher) {
    return new SessionOptions(intraOpThreads, batchMaxRows, batchDelayMicros, dispatcher,
        sliceRows);
  }

  /**
   * Slicing: a run of many rows may be made as several runs of fewer rows,
   * spread over the run's intra-op threads, when strand has proven that each
   * output row depends only on the same input row (outputs are then
   * bit-identical to the whole run's). 0 (the default): strand picks the
   * rows per slice; {@link #SLICE_OFF}: never slice; N &gt;= 1: slices of
   * the largest divisor of the run's rows that is at most N. See
   * {@link Session.Stats#slicedRuns()}.
   */
  public SessionOptions withSliceRows(int rows) {
    if (rows < SLICE_OFF) {
      throw new IllegalArgumentException("sliceRows must be >= 0 or SLICE_OFF, not " + rows);
    }
    return new SessionOptions(intraOpThreads, batchMaxRows, batchDelayMicros, dispatcher, rows);
  }

  public int intraOpThreads() {
    return intraOpThreads;
  }

  /** 0 or 1: batching is off. */
  public int batchMaxRows() {
    return batchMaxRows;
  }

  /** 0: strand's default (100 µs). */
  public long batchDelayMicros() {
    return batchDelayMicros;
  }

  /** 0: strand picks; {@link #SLICE_OFF}: never; else the most rows per slice. */
  public int sliceRows() {
    return sliceRows;
  }

  /** The dispatcher runs execute on, or null. */
  public Dispatcher dispatcher() {
    return dispatcher;
  }

  @Override
  public String toString() {
    return "SessionOptions[intraOpThreads=" + intraOpThreads + ", batchMaxRows=" + batchMaxRows
        + ", batchDelayMicros=" + batchDelayMicros + ", dispatcher=" + dispatcher
        + ", sliceRows=" + sliceRows + "]";
  }
}
