package dev.strand;

import java.lang.System.Logger.Level;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.Collectors;

/**
 * The Java side of leak detection: objects that were garbage-collected
 * without {@code close()}, aggregated by creation site (the Java stack, when
 * the level is SAMPLE or ALL; the kind alone otherwise), and reported in the
 * log one line per site with a count, at a bounded rate.
 *
 * <p>Thread safety: everything here may be called from any thread at once
 * (creation threads, the cleaner thread, readers of the report).
 */
final class Leaks {
  /** Frames kept per creation stack. */
  static final int MAX_FRAMES = 24;
  /** The shortest time between two log lines for one site. */
  static final long SITE_LOG_INTERVAL_NANOS = 60_000_000_000L;
  /** At most this many leak lines per minute overall. */
  static final int LOG_LINES_PER_MINUTE = 10;

  private static volatile LeakLevel level = LeakLevel.COUNT;
  private static volatile int sampleInterval = Config.DEFAULT_SAMPLE_INTERVAL;
  private static final ThreadLocal<int[]> SAMPLE_COUNTER = ThreadLocal.withInitial(() -> new int[1]);

  /** Objects created and neither closed nor collected yet. */
  private static final LongAdder OPEN = new LongAdder();
  /** Objects collected without close, ever. */
  private static final LongAdder LEAKED = new LongAdder();
  private static final ConcurrentHashMap<String, SiteStats> SITES = new ConcurrentHashMap<>();

  /** Writes the leak lines, so that the cleaner thread never waits for a
   * logging backend (whose first use alone can take a tenth of a second). */
  private static final ExecutorService LOG_WRITER = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "strand-leak-log");
    t.setDaemon(true);
    return t;
  });
  private static final Object LOG_LOCK = new Object();
  private static long logWindowStart = System.nanoTime();
  private static int logLinesInWindow;
  private static long logLinesSuppressed;

  private static final StackWalker WALKER =
      StackWalker.getInstance(StackWalker.Option.RETAIN_CLASS_REFERENCE);
  private static final URL BINDING_LOCATION = location(Leaks.class);
  /** True for the binding's own classes (Java and Scala), whose frames a
   * creation stack leaves out. */
  private static final ClassValue<Boolean> INTERNAL = new ClassValue<>() {
    @Override
    protected Boolean computeValue(Class<?> type) {
      return BINDING_LOCATION != null && BINDING_LOCATION.equals(location(type));
    }
  };

  private Leaks() {}

  static void configure(LeakLevel newLevel, int interval) {
    sampleInterval = Math.max(1, interval);
    level = newLevel;
  }

  static LeakLevel level() {
    return level;
  }

  static int sampleInterval() {
    return sampleInterval;
  }

  /** Where an object about to be made is created, or null when this object is
   * not traced (levels OFF and COUNT, or not sampled). */
  static Site capture() {
    LeakLevel l = level;
    if (l == LeakLevel.ALL
        || (l == LeakLevel.SAMPLE && ++SAMPLE_COUNTER.get()[0] % sampleInterval == 0)) {
      return new Site(stack());
    }
    return null;
  }

  /** The caller's stack, the binding's own frames left out. */
  static String stack() {
    return WALKER.walk(frames -> frames
        .dropWhile(f -> INTERNAL.get(f.getDeclaringClass()))
        .limit(MAX_FRAMES)
        .map(f -> "at " + f.toStackTraceElement())
        .collect(Collectors.joining("\n")));
  }

  static void opened() {
    OPEN.increment();
  }

  static void closed() {
    OPEN.decrement();
  }

  static long open() {
    return OPEN.sum();
  }

  static long leaked() {
    return LEAKED.sum();
  }

  /** Counts an object the garbage collector found unclosed; runs on the
   * cleaner thread. */
  static void leaked(ObjectKind kind, Site site, long bytes) {
    LEAKED.increment();
    String key = site == null ? kind.name() : kind.name() + "\n" + site.stack;
    SiteStats stats = SITES.computeIfAbsent(key, k -> new SiteStats(kind, site));
    stats.count.increment();
    stats.bytes.add(bytes);
    stats.maybeLog();
  }

  /** The sites with leaks so far, largest count first. */
  static List<LeakSite> report() {
    List<LeakSite> sites = new ArrayList<>();
    for (SiteStats s : SITES.values()) {
      sites.add(new LeakSite(s.kind, s.count.sum(), s.bytes.sum(),
          s.site == null ? null : s.site.stack));
    }
    sites.sort(Comparator.comparingLong(LeakSite::count).reversed()
        .thenComparing(s -> s.kind().ordinal()));
    return sites;
  }

  private static boolean takeLogLine() {
    synchronized (LOG_LOCK) {
      long now = System.nanoTime();
      if (now - logWindowStart >= 60_000_000_000L) {
        if (logLinesSuppressed > 0) {
          String line = "strand: " + logLinesSuppressed
              + " leak log lines suppressed in the last minute; Strand.leakReport() has them all";
          LOG_WRITER.execute(() -> Config.LOG.log(Level.WARNING, line));
        }
        logWindowStart = now;
        logLinesInWindow = 0;
        logLinesSuppressed = 0;
      }
      if (logLinesInWindow < LOG_LINES_PER_MINUTE) {
        logLinesInWindow++;
        return true;
      }
      logLinesSuppressed++;
      return false;
    }
  }

  private static URL location(Class<?> type) {
    try {
      CodeSource source = type.getProtectionDomain().getCodeSource();
      return source == null ? null : source.getLocation();
    } catch (SecurityException e) {
      return null;
    }
  }

  /** A creation stack. */
  static final class Site {
    final String stack;
    private byte[] origin;

    Site(String stack) {
      this.stack = stack;
    }

    /** The stack as strand's origin text (UTF-8, NUL-terminated). */
    byte[] origin() {
      byte[] o = origin;
      if (o == null) {
        byte[] utf8 = ("Java stack:\n" + stack).getBytes(StandardCharsets.UTF_8);
        o = new byte[utf8.length + 1];
        System.arraycopy(utf8, 0, o, 0, utf8.length);
        origin = o;
      }
      return o;
    }
  }

  private static final class SiteStats {
    final ObjectKind kind;
    final Site site;
    final LongAdder count = new LongAdder();
    final LongAdder bytes = new LongAdder();
    final AtomicLong nextLog = new AtomicLong(System.nanoTime());
    volatile long logged;

    SiteStats(ObjectKind kind, Site site) {
      this.kind = Objects.requireNonNull(kind);
      this.site = site;
    }

    void maybeLog() {
      long now = System.nanoTime();
      long next = nextLog.get();
      if (now - next < 0 || !nextLog.compareAndSet(next, now + SITE_LOG_INTERVAL_NANOS)) {
        return;
      }
      if (!takeLogLine()) {
        return;
      }
      long total = count.sum();
      long fresh = total - logged;
      logged = total;
      String where = site == null
          ? "creation site not recorded (run with -Dstrand.leakDetection=sample or all)"
          : "created at\n  " + site.stack.replace("\n", "\n  ");
      String line = "strand: " + total + " " + kind.className()
          + (total == 1 ? " was" : "s were") + " garbage-collected without close() ("
          + fresh + " since the last report of this site); " + where;
      LOG_WRITER.execute(() -> Config.LOG.log(Level.WARNING, line));
    }
  }
}
