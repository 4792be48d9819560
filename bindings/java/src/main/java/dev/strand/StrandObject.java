package dev.strand;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.ref.Cleaner;

/**
 * A Java handle on one reference to a native strand object.
 *
 * <p>Lifetime. {@link #close()} drops the reference. It is idempotent and may
 * be called from any thread, also while other threads are inside a call on
 * this object: every call marks itself in flight ({@link Handle#acquire}), and
 * the native reference is dropped when the last call in flight ends. After
 * {@code close()} any other use throws {@link IllegalStateException} naming
 * the object ("Tensor[float32, 2x3] is closed").
 *
 * <p>Garbage. Every object is registered with a {@link Cleaner}. One that
 * becomes unreachable without having been closed is released on the cleaner
 * thread (safe: strand objects may be released from any thread) and counted
 * as a leak ({@link Strand#leakReport()}), with its creation stack when leak
 * detection is at SAMPLE or ALL.
 *
 * <p>Scopes. An object created on a thread inside a {@link ResourceScope}
 * belongs to that scope, which closes it at its end unless it is detached.
 *
 * <p>Thread safety: every method may be called from any thread at once.
 */
public abstract sealed class StrandObject implements AutoCloseable
    permits Tensor, Model, Session, Dispatcher, CancelToken {
  static {
    Native.init(); // configuration (leak level, limit) before the first object
  }

  /**
   * The cleaners, each with its own thread. A Cleaner keeps its registrations
   * in one list behind one lock, taken at every creation and every close;
   * threads pick a cleaner by their id, so that many threads creating and
   * closing objects at once do not all wait for one lock.
   */
  private static final Cleaner[] CLEANERS = new Cleaner[4];

  static {
    for (int i = 0; i < CLEANERS.length; i++) {
      String name = "strand-cleaner-" + i;
      CLEANERS[i] = Cleaner.create(runnable -> {
        Thread t = new Thread(runnable, name);
        t.setDaemon(true);
        return t;
      });
    }
  }

  final Handle handle;
  private final Cleaner.Cleanable cleanable;
  /** The scope this object belongs to, or null. */
  volatile ResourceScope scope;

  /**
   * Takes over one native reference.
   *
   * @param description what {@code toString()} and closed-object messages
   *     show; its {@code toString()} runs only when needed
   * @param bytes native bytes the object holds, for the leak report
   * @param scoped whether the object joins the thread's current scope (run
   *     outputs belong to their Result instead)
   */
  StrandObject(ObjectKind kind, long address, Object description, Leaks.Site site, long bytes,
      boolean scoped) {
    handle = new Handle(kind, address, description, site, bytes);
    Leaks.opened();
    cleanable = CLEANERS[(int) Thread.currentThread().getId() & (CLEANERS.length - 1)]
        .register(this, handle);
    if (scoped) {
      ResourceScope.adopt(this);
    }
  }

  /** The kind of native object. */
  public final ObjectKind kind() {
    return handle.kind;
  }

  /** True once {@link #close()} has been called (or the object was collected). */
  public final boolean isClosed() {
    return handle.isClosed();
  }

  /**
   * Drops this handle's native reference: now, or when the last call in
   * flight on another thread returns. Idempotent; any thread.
   */
  @Override
  public final void close() {
    if (handle.close()) {
      ResourceScope owner = scope;
      if (owner != null) {
        owner.forget(this);
      }
    }
    cleanable.clean(); // unregisters; its action sees the handle closed and does nothing
  }

  /** Marks a call in flight and returns the native address; throws
   * IllegalStateException when closed. Pair with {@link #release()}. */
  final long acquire() {
    return handle.acquire();
  }

  final void release() {
    handle.release();
  }

  @Override
  public String toString() {
    return handle.description.toString();
  }

  /**
   * The state shared by a Java object and its cleaner. It never refers to
   * the Java object, so that the object can become unreachable.
   *
   * <p>{@code state} holds the number of calls in flight and a CLOSED bit.
   * Whoever moves it to exactly CLOSED (closed, no call in flight) drops the
   * native reference: the closer when no call is in flight, else the last
   * call to end. Once CLOSED is set no call can start, so this happens once.
   */
  static final class Handle implements Runnable {
    private static final int CLOSED = 1 << 30;
    private static final VarHandle STATE;

    static {
      try {
        STATE = MethodHandles.lookup().findVarHandle(Handle.class, "state", int.class);
      } catch (ReflectiveOperationException e) {
        throw new ExceptionInInitializerError(e);
      }
    }

    final ObjectKind kind;
    final long address;
    final Object description;
    final Leaks.Site site;
    final long bytes;
    @SuppressWarnings("unused") // through STATE
    private volatile int state;

    Handle(ObjectKind kind, long address, Object description, Leaks.Site site, long bytes) {
      this.kind = kind;
      this.address = address;
      this.description = description;
      this.site = site;
      this.bytes = bytes;
    }

    long acquire() {
      int s;
      do {
        s = state;
        if ((s & CLOSED) != 0) {
          throw closedError();
        }
      } while (!STATE.weakCompareAndSet(this, s, s + 1));
      return address;
    }

    void release() {
      if ((int) STATE.getAndAdd(this, -1) - 1 == CLOSED) {
        free();
      }
    }

    boolean isClosed() {
      return (state & CLOSED) != 0;
    }

    /** Sets CLOSED; false when it was already set. */
    boolean close() {
      int old = (int) STATE.getAndBitwiseOr(this, CLOSED);
      if ((old & CLOSED) != 0) {
        return false;
      }
      if (old == 0) {
        free();
      }
      return true;
    }

    /** The cleaner's action: after close() a no-op; otherwise the object was
     * collected unclosed. Runs on the cleaner thread. */
    @Override
    public void run() {
      if (close()) {
        Leaks.leaked(kind, site, bytes);
      }
    }

    IllegalStateException closedError() {
      return new IllegalStateException(description + " is closed");
    }

    private void free() {
      Native.release(kind.code(), address);
      Leaks.closed();
      Memory.freed();
    }
  }
}
