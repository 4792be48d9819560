package dev.strand;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * Library-wide functions: version, native memory, leak detection, logging
 * and the CPU budget.
 *
 * <p>Configuration read when the library loads (system properties win over
 * the environment): {@code strand.leakDetection} / STRAND_LEAK_DETECTION,
 * {@code strand.memoryLimit} / STRAND_MEMORY_LIMIT, {@code strand.log} /
 * STRAND_LOG, {@code strand.threads} / STRAND_THREADS; and
 * {@code strand.library.path} to load libstrand_jni from a given file or
 * directory instead of the jar.
 *
 * <p>Thread safety: any.
 */
public final class Strand {
  static {
    Native.init();
  }

  private Strand() {}

  /** The native library's version ("0.1.0"). */
  public static String version() {
    return Native.version();
  }

  /** MAJOR * 10000 + MINOR * 100 + PATCH. */
  public static int versionNumber() {
    return Native.versionNumber();
  }

  // ---- native memory

  /** Native bytes and objects now. */
  public static MemoryStats memoryStats() {
    return new MemoryStats(Native.memoryStats());
  }

  /** Sets the process-wide limit on strand's native bytes; 0 removes it. */
  public static void setMemoryLimit(long bytes) {
    if (bytes < 0) {
      throw new IllegalArgumentException("the limit must be >= 0");
    }
    Native.setMemoryLimit(bytes);
  }

  /** Sets the limit from text such as "512M" or "1.5G" (1024-based). */
  public static void setMemoryLimit(String bytes) {
    Native.setMemoryLimit(parseBytes(bytes));
  }

  /** The limit; 0 when there is none. */
  public static long memoryLimit() {
    return memoryStats().limitBytes();
  }

  /** Parses "512", "64K", "1.5G" (K, M, G, T are 1024-based). */
  public static long parseBytes(String text) {
    return Native.parseBytes(Native.text(text.trim()));
  }

  /** Resets every peak figure to the current live figure. */
  public static void resetMemoryPeaks() {
    Native.resetMemoryPeaks();
  }

  /**
   * Allocations that failed on the memory limit and succeeded when retried
   * after a garbage collection, since the start.
   */
  public static long memoryLimitRetries() {
    return Memory.retries();
  }

  // ---- leaks

  /** The leak-detection level. */
  public static LeakLevel leakDetection() {
    return LeakLevel.of(Native.leakLevel());
  }

  /**
   * Sets the level for objects created from now on; {@code sampleInterval} is
   * N for SAMPLE (0 selects 64).
   */
  public static void setLeakDetection(LeakLevel level, int sampleInterval) {
    int n = sampleInterval == 0 ? Config.DEFAULT_SAMPLE_INTERVAL : sampleInterval;
    if (n < 0) {
      throw new IllegalArgumentException("sampleInterval must be >= 0");
    }
    Native.setLeakLevel(level.ordinal(), n);
    Leaks.configure(level, n);
  }

  public static void setLeakDetection(LeakLevel level) {
    setLeakDetection(level, 0);
  }

  /** Objects garbage-collected without close(), since the start. */
  public static long leakCount() {
    return Leaks.leaked();
  }

  /**
   * Objects garbage-collected without close(), aggregated by creation site
   * (with the Java stack when detection was at SAMPLE or ALL), largest count
   * first.
   */
  public static List<LeakSite> leakReport() {
    return Leaks.report();
  }

  /** Objects created through this binding and not yet closed nor collected. */
  public static long openObjects() {
    return Leaks.open();
  }

  /**
   * strand's own report of live native objects by creation site (C backtrace
   * plus the Java stack as origin, for traced objects).
   */
  public static List<NativeLeakSite> nativeLeakReport() {
    List<NativeLeakSite> sites = new ArrayList<>();
    Native.leakReport(sites);
    return sites;
  }

  /** Writes {@link #leakReport()} readably; nothing when there were no leaks. */
  public static void printLeakReport(PrintStream out) {
    for (LeakSite site : leakReport()) {
      out.println(site);
    }
  }

  /** Released or foreign handles detected by strand since the start (0 with this binding). */
  public static long misuseCount() {
    return Native.misuseCount();
  }

  // ---- logging and threads

  /** strand's log level: 0 off, 1 error, 2 warn, 3 info, 4 debug, 5 trace. */
  public static void setLogLevel(String level) {
    int l = Config.logLevel(level.trim().toLowerCase());
    if (l < 0) {
      throw new IllegalArgumentException("expected off, error, warn, info, debug or trace");
    }
    Native.setLogLevel(l);
  }

  /** Threads strand may keep busy on one call, the caller included. */
  public static int threadBudget() {
    return Native.threadBudget();
  }

  /** Sets the CPU budget (1..1024; 0 restores the detected value). */
  public static void setThreadBudget(int threads) {
    Native.setThreadBudget(threads);
  }
}
