package dev.strand;

import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A flag that one thread sets and runs watch ({@code strand_cancel_token}):
 * a run given the token ({@link RunOptions#withCancel}) stops at its next
 * node boundary once the token is canceled and throws {@link StrandException}
 * with {@link Status#CANCELED}, leaking nothing; a run still waiting to be
 * batched stops waiting at once. One token may watch any number of runs, on
 * any threads; canceling is sticky until {@link #reset()}.
 *
 * <p>A run holds the token in flight (see {@link StrandObject}), so closing
 * the token while runs watch it is safe: the native token goes when the last
 * of them returns. A closed token given to a run makes the run throw
 * {@link IllegalStateException} naming the token before anything runs.
 *
 * <p>Thread safety: any (see {@link StrandObject}).
 */
public final class CancelToken extends StrandObject {
  private static final AtomicLong SERIAL = new AtomicLong();

  private CancelToken(long address, String description, Leaks.Site site) {
    super(ObjectKind.CANCEL_TOKEN, address, description, site, 0, true);
  }

  /** A token, not canceled, shown as {@code CancelToken[#N]} (N counts tokens made). */
  public static CancelToken create() {
    return make("#" + SERIAL.incrementAndGet());
  }

  /** A token, not canceled, shown as {@code CancelToken[name]} in messages. */
  public static CancelToken create(String name) {
    return make(Objects.requireNonNull(name, "name"));
  }

  private static CancelToken make(String name) {
    Leaks.Site site = Leaks.capture();
    long address = Memory.allocate(site, Native::cancelTokenCreate);
    return new CancelToken(address, "CancelToken[" + name + "]", site);
  }

  /**
   * Cancels: every run watching the token, now or later, stops at its next
   * node boundary, until {@link #reset()}. A run may still finish in full if
   * no node boundary came after the cancel, and a run already stacked by
   * dynamic batching finishes (it serves others too).
   */
  public void cancel() {
    long address = acquire();
    try {
      Native.cancelTokenCancel(address);
    } finally {
      release();
    }
  }

  /** Clears the flag, so the token may watch new runs; runs already stopped stay stopped. */
  public void reset() {
    long address = acquire();
    try {
      Native.cancelTokenReset(address);
    } finally {
      release();
    }
  }

  public boolean isCanceled() {
    long address = acquire();
    try {
      return Native.cancelTokenIsCanceled(address);
    } finally {
      release();
    }
  }
}
