package dev.strand;

import java.lang.System.Logger.Level;
import java.util.Locale;

/**
 * System properties read once, when the native library is loaded. Each wins
 * over strand's environment twin; a value that cannot be parsed is ignored
 * with a warning, as strand does with the environment.
 * <ul>
 *   <li>{@code strand.leakDetection}: off | count | sample | sample:N | all
 *       ({@code STRAND_LEAK_DETECTION})
 *   <li>{@code strand.memoryLimit}: bytes with an optional K, M, G or T suffix
 *       ({@code STRAND_MEMORY_LIMIT})
 *   <li>{@code strand.log}: off | error | warn | info | debug | trace ({@code STRAND_LOG})
 *   <li>{@code strand.threads}: the CPU budget ({@code STRAND_THREADS})
 * </ul>
 */
final class Config {
  static final System.Logger LOG = System.getLogger("dev.strand");
  static final int DEFAULT_SAMPLE_INTERVAL = 64;

  private Config() {}

  static void apply() {
    String leak = System.getProperty("strand.leakDetection");
    int interval = DEFAULT_SAMPLE_INTERVAL;
    if (leak != null && !leak.isBlank()) {
      try {
        interval = sampleInterval(leak);
        Native.setLeakLevel(parseLeakLevel(leak).ordinal(), interval);
      } catch (IllegalArgumentException e) {
        LOG.log(Level.WARNING, "strand.leakDetection=" + leak + " ignored: " + e.getMessage());
      }
    } else {
      String env = System.getenv("STRAND_LEAK_DETECTION");
      if (env != null) {
        try {
          interval = sampleInterval(env);
        } catch (IllegalArgumentException e) {
          // strand itself warns about the environment
        }
      }
    }
    Leaks.configure(LeakLevel.of(Native.leakLevel()), interval);

    String limit = System.getProperty("strand.memoryLimit");
    if (limit != null && !limit.isBlank()) {
      try {
        Native.setMemoryLimit(Native.parseBytes(Native.text(limit.trim())));
      } catch (StrandException e) {
        LOG.log(Level.WARNING, "strand.memoryLimit=" + limit + " ignored: " + e.strandMessage());
      }
    }
    String log = System.getProperty("strand.log");
    if (log != null && !log.isBlank()) {
      int level = logLevel(log.trim().toLowerCase(Locale.ROOT));
      if (level < 0) {
        LOG.log(Level.WARNING, "strand.log=" + log + " ignored: expected off, error, warn, info, debug or trace");
      } else {
        Native.setLogLevel(level);
      }
    }
    String threads = System.getProperty("strand.threads");
    if (threads != null && !threads.isBlank()) {
      try {
        String t = threads.trim();
        Native.setThreadBudget(t.equals("auto") ? 0 : Integer.parseInt(t));
      } catch (NumberFormatException | StrandException e) {
        LOG.log(Level.WARNING, "strand.threads=" + threads + " ignored: expected 0..1024 or auto");
      }
    }
  }

  /** off | count | sample | sample:N | all. */
  static LeakLevel parseLeakLevel(String text) {
    String t = text.trim().toLowerCase(Locale.ROOT);
    switch (t) {
      case "off":
        return LeakLevel.OFF;
      case "count":
        return LeakLevel.COUNT;
      case "all":
        return LeakLevel.ALL;
      default:
        if (t.equals("sample") || t.startsWith("sample:")) {
          sampleInterval(t);
          return LeakLevel.SAMPLE;
        }
        throw new IllegalArgumentException("expected off, count, sample, sample:N or all");
    }
  }

  /** N of "sample:N", else the default. */
  static int sampleInterval(String text) {
    String t = text.trim().toLowerCase(Locale.ROOT);
    if (!t.startsWith("sample:")) {
      return DEFAULT_SAMPLE_INTERVAL;
    }
    try {
      long n = Long.parseLong(t.substring(7));
      if (n >= 1 && n <= Integer.MAX_VALUE) {
        return (int) n;
      }
    } catch (NumberFormatException e) {
      // fall through
    }
    throw new IllegalArgumentException("sample:N needs N from 1 to " + Integer.MAX_VALUE);
  }

  static int logLevel(String name) {
    String[] names = {"off", "error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < names.length; i++) {
      if (names[i].equals(name)) {
        return i;
      }
    }
    return -1;
  }
}
