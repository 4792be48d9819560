package dev.strand;

import java.util.Objects;
import java.util.concurrent.Callable;

/**
 * A thread of strand's own that runs what it is given, one task at a time,
 * in order: for code that must stay on one thread, or that wants every call
 * into a model funnelled through one.
 *
 * <p>{@link #run(Callable)} runs the task on the dispatcher's thread and
 * returns its value: at once and inline when called on that thread (so
 * funnelled code may call funnelled code without deadlock), otherwise after
 * the tasks queued before it, the caller blocking meanwhile. Whatever the
 * task throws is rethrown to the caller as is.
 *
 * <p>The dispatcher's thread is a native thread attached to the JVM as a
 * daemon under the dispatcher's name. {@link #close()} stops it after the
 * queued tasks have run; tasks in progress finish first.
 *
 * <p>Thread safety: any (see {@link StrandObject}).
 */
public final class Dispatcher extends StrandObject {
  private final String name;
  /** The dispatcher's thread, once a task has run on it. */
  private volatile Thread thread;

  private Dispatcher(long address, String name, Leaks.Site site) {
    super(ObjectKind.DISPATCHER, address, "Dispatcher[" + name + "]", site, 0, true);
    this.name = name;
  }

  /** A dispatcher named "strand-dispatcher" with room for 1024 waiting tasks. */
  public static Dispatcher create() {
    return create("strand-dispatcher", 0);
  }

  /** A dispatcher whose thread is called {@code name}. */
  public static Dispatcher create(String name) {
    return create(name, 0);
  }

  /**
   * A dispatcher whose thread is called {@code name} (the system keeps 15
   * bytes), with room for {@code queueCapacity} waiting tasks (0: 1024); a
   * run blocks while the queue is full.
   */
  public static Dispatcher create(String name, int queueCapacity) {
    Objects.requireNonNull(name, "name");
    if (queueCapacity < 0) {
      throw new IllegalArgumentException("queueCapacity must be >= 0");
    }
    byte[] n = Native.text(name);
    Leaks.Site site = Leaks.capture();
    long address = Memory.allocate(site, () -> Native.dispatcherCreate(n, queueCapacity));
    return new Dispatcher(address, name, site);
  }

  public String name() {
    return name;
  }

  /** True on the dispatcher's own thread. */
  public boolean isCurrentThread() {
    Thread t = thread;
    if (t != null) {
      return t == Thread.currentThread();
    }
    long address = acquire();
    try {
      return Native.dispatcherIsCurrent(address);
    } finally {
      release();
    }
  }

  /**
   * Runs {@code task} on the dispatcher's thread and returns its value, or
   * throws what it threw. Inline on the dispatcher's thread; otherwise queued
   * behind the tasks accepted before it while the caller blocks
   * (uninterruptibly).
   *
   * @throws StrandException CANCELED when the dispatcher was stopped before
   *     the task could start (it then never runs)
   * @throws IllegalStateException when this dispatcher is closed
   * @throws Exception whatever the task threw
   */
  public <T> T run(Callable<T> task) throws Exception {
    Objects.requireNonNull(task, "task");
    long address = acquire();
    try {
      if (thread == Thread.currentThread()) {
        return task.call();
      }
      Task t = new Task(this, task);
      int status = Native.dispatcherRun(address, t);
      if (!t.completed) {
        if (status == Status.OK.code()) {
          status = Status.INTERNAL.code();
        }
        String message = status == Status.INTERNAL.code()
            ? "the task could not run on " + this + "'s thread (it could not be attached to the JVM)"
            : Native.lastMessage();
        throw new StrandException(status, Native.statusName(status), message);
      }
      if (t.error != null) {
        throw sneaky(t.error);
      }
      @SuppressWarnings("unchecked")
      T value = (T) t.value;
      return value;
    } finally {
      release();
    }
  }

  /** {@link #run(Callable)} for code that returns nothing and throws no checked exception. */
  public void run(Runnable task) {
    Objects.requireNonNull(task, "task");
    try {
      run(() -> {
        task.run();
        return null;
      });
    } catch (RuntimeException | Error e) {
      throw e;
    } catch (Exception e) {
      throw new IllegalStateException(e); // a Runnable cannot throw one
    }
  }

  /**
   * Stops the dispatcher: runs and posts are refused from now on (CANCELED),
   * except runs made on its own thread. Queued runs still run, or with
   * {@code cancel} are refused (their callers get CANCELED). Returns when the
   * queue is empty and the thread has ended (unless called on that thread).
   */
  public void stop(boolean cancel) {
    long address = acquire();
    try {
      Native.dispatcherStop(address, cancel);
    } finally {
      release();
    }
  }

  /** Counters and latency percentiles since creation. */
  public Stats stats() {
    long address = acquire();
    try {
      double[] s = Native.dispatcherStats(address);
      return new Stats((long) s[0], (long) s[1], (long) s[2], (long) s[3], (long) s[4], (long) s[5],
          (long) s[6], (long) s[7], new Latency((long) s[8], s[9], s[10], s[11], s[12]),
          new Latency((long) s[13], s[14], s[15], s[16], s[17]));
    } finally {
      release();
    }
  }

  /**
   * A dispatcher's counters since creation (strand_dispatcher_stats).
   *
   * @param runs runs whose task ran, queued or inline (inline runs that the
   *     Java side made without entering native code are not counted)
   * @param queueWait from accepted to started, for queued tasks
   * @param runTime from started to finished
   */
  public record Stats(long runs, long runsInline, long runsCanceled, long posts, long postsRun,
      long postsRefused, long queueDepth, long queueDepthPeak, Latency queueWait, Latency runTime) {}

  /** Latencies of one kind in microseconds, from a histogram with about 12% resolution. */
  public record Latency(long count, double p50Micros, double p90Micros, double p99Micros,
      double maxMicros) {}

  @SuppressWarnings("unchecked")
  private static <E extends Throwable> E sneaky(Throwable t) throws E {
    throw (E) t;
  }

  /**
   * One queued task. runOnDispatcher() is called by the native library on
   * the dispatcher's thread; the native run's completion orders its writes
   * before the caller's reads (volatile for the Java memory model's sake).
   */
  static final class Task {
    private final Dispatcher dispatcher;
    private final Callable<?> callable;
    volatile Object value;
    volatile Throwable error;
    volatile boolean completed;

    Task(Dispatcher dispatcher, Callable<?> callable) {
      this.dispatcher = dispatcher;
      this.callable = callable;
    }

    /** Runs on the dispatcher's thread; never throws. */
    void runOnDispatcher() {
      if (dispatcher.thread == null) {
        dispatcher.thread = Thread.currentThread();
      }
      try {
        value = callable.call();
      } catch (Throwable t) {
        error = t;
      } finally {
        completed = true;
      }
    }
  }
}
