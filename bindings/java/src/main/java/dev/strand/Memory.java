package dev.strand;

import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * Native allocation from Java: sets strand's origin text to the Java
 * creation stack around the native call (when traced), and when strand
 * refuses an allocation because of its memory limit while unclosed objects
 * exist (some of them may be garbage the collector has not found yet), asks
 * the GC once, lets the cleaners run, and retries before throwing (again
 * while the cleaners are still releasing objects, for at most a second).
 *
 * <p>Thread safety: any. Concurrent failures share one collection.
 */
final class Memory {
  /** How long to wait for the cleaners after a collection, at most. */
  static final long CLEANER_WAIT_NANOS = 1_000_000_000L;
  /** The cleaners count as done when nothing was freed for this long. */
  static final long CLEANER_QUIET_NANOS = 50_000_000L;

  private static final LongAdder FREED = new LongAdder();
  private static final LongAdder RETRIES = new LongAdder();
  private static final Object GC_LOCK = new Object();
  private static volatile long collections;

  private Memory() {}

  static void freed() {
    FREED.increment();
  }

  /** Allocations that succeeded when retried after a collection, since the start. */
  static long retries() {
    return RETRIES.sum();
  }

  /** Collections this class asked for, since the start. */
  static long collections() {
    return collections;
  }

  static long allocate(Leaks.Site site, LongSupplier call) {
    if (site != null) {
      Native.setOrigin(site.origin());
    }
    try {
      long seen = collections;
      try {
        return call.getAsLong();
      } catch (StrandException e) {
        if (e.status() != Status.MEMORY_LIMIT || !collectGarbage(seen)) {
          throw e;
        }
      }
      return retryWhileCleanersFree(call::getAsLong); // boxes on this rare path only
    } finally {
      if (site != null) {
        Native.setOrigin(null);
      }
    }
  }

  static <T> T allocate(Leaks.Site site, Supplier<T> call) {
    if (site != null) {
      Native.setOrigin(site.origin());
    }
    try {
      long seen = collections;
      try {
        return call.get();
      } catch (StrandException e) {
        if (e.status() != Status.MEMORY_LIMIT || !collectGarbage(seen)) {
          throw e;
        }
      }
      return retryWhileCleanersFree(call);
    } finally {
      if (site != null) {
        Native.setOrigin(null);
      }
    }
  }

  /** After a collection: retries while the cleaners are still releasing objects. */
  private static <T> T retryWhileCleanersFree(Supplier<T> call) {
    long start = System.nanoTime();
    for (;;) {
      long freed = FREED.sum();
      try {
        T value = call.get();
        RETRIES.increment();
        return value;
      } catch (StrandException e) {
        if (!cleanersStillFreeing(e, freed, start)) {
          throw e;
        }
      }
    }
  }

  /**
   * After a retry failed on the limit: true when the cleaners have released
   * something since {@code freedBefore} (or do so within two quiet periods),
   * and {@link #CLEANER_WAIT_NANOS} since {@code start} have not passed: the
   * collection found more garbage than the cleaners had released when the
   * first retry came (a cleaner thread starved of CPU on a busy machine), so
   * another retry may succeed.
   */
  private static boolean cleanersStillFreeing(StrandException e, long freedBefore, long start) {
    if (e.status() != Status.MEMORY_LIMIT) {
      return false;
    }
    long waitStart = System.nanoTime();
    while (System.nanoTime() - start < CLEANER_WAIT_NANOS
        && System.nanoTime() - waitStart < 2 * CLEANER_QUIET_NANOS) {
      if (FREED.sum() != freedBefore) {
        return true;
      }
      try {
        Thread.sleep(2);
      } catch (InterruptedException interrupted) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
    return false;
  }

  /**
   * Runs the GC and waits for the cleaners, unless no object is open (then
   * garbage cannot be holding native memory) or another thread has done so
   * since {@code seen}. Returns true when a retry may succeed.
   */
  static boolean collectGarbage(long seen) {
    if (Leaks.open() == 0) {
      return false;
    }
    synchronized (GC_LOCK) {
      if (collections != seen) {
        return true; // another thread collected after this one failed
      }
      System.gc();
      awaitCleaners(CLEANER_WAIT_NANOS);
      collections++;
    }
    return true;
  }

  /** Waits until the cleaners have been quiet for a while, or `limit` passed. */
  static void awaitCleaners(long limitNanos) {
    long start = System.nanoTime();
    long last = FREED.sum();
    long quietSince = start;
    while (System.nanoTime() - start < limitNanos) {
      try {
        Thread.sleep(2);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
      long now = FREED.sum();
      long t = System.nanoTime();
      if (now != last) {
        last = now;
        quietSince = t;
      } else if (t - quietSince >= CLEANER_QUIET_NANOS) {
        return;
      }
    }
  }
}
