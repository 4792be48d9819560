package dev.strand;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;

/**
 * A region of code whose strand objects are closed together at its end:
 * <pre>{@code
 * try (ResourceScope scope = ResourceScope.open()) {
 *   Tensor x = Tensor.of(data, 1, 16);
 *   Result r = session.run("input", x);
 *   keep = scope.detach(r.detach("output"));   // survives the scope
 * }                                            // x and r are closed here
 * }</pre>
 *
 * <p>Every {@link Tensor}, {@link Model}, {@link Session}, {@link Dispatcher},
 * {@link CancelToken} and {@link Result} created on this thread while the
 * scope is the innermost open one belongs to it, as does anything {@link #register registered}. At
 * the end the scope closes its members in reverse order of creation, except
 * those {@link #detach detached} or {@link #moveToOuter moved} to the
 * enclosing scope. Members closed earlier simply leave the scope.
 *
 * <p>Scopes nest per thread; objects created on other threads (a pool's, the
 * dispatcher's) belong to those threads' scopes. A scope must be closed on
 * the thread that opened it; closing it first closes scopes opened inside it
 * that are still open.
 *
 * <p>Thread safety: membership changes (an object closed elsewhere leaving
 * the scope, detach) may come from any thread; open and close are the
 * owning thread's.
 */
public final class ResourceScope implements AutoCloseable {
  private static final ThreadLocal<ResourceScope> CURRENT = new ThreadLocal<>();

  private final ResourceScope parent;
  private final Thread owner;
  private final LinkedHashSet<AutoCloseable> members = new LinkedHashSet<>(); // guarded by this
  private boolean closed; // guarded by this

  private ResourceScope(ResourceScope parent) {
    this.parent = parent;
    this.owner = Thread.currentThread();
  }

  /** Opens a scope on this thread, inside the current one if any. */
  public static ResourceScope open() {
    ResourceScope scope = new ResourceScope(CURRENT.get());
    CURRENT.set(scope);
    return scope;
  }

  /** The innermost open scope of this thread. */
  public static Optional<ResourceScope> current() {
    return Optional.ofNullable(CURRENT.get());
  }

  /**
   * Runs {@code body} in a new scope and returns its value; a value that is a
   * member of the scope is moved to the enclosing scope (or, without one,
   * detached), everything else is closed.
   */
  public static <T, E extends Exception> T with(Body<T, E> body) throws E {
    try (ResourceScope scope = open()) {
      T value = body.apply(scope);
      if (value instanceof AutoCloseable) {
        scope.moveToOuter((AutoCloseable) value);
      }
      return value;
    }
  }

  /** The code of {@link #with}. */
  @FunctionalInterface
  public interface Body<T, E extends Exception> {
    T apply(ResourceScope scope) throws E;
  }

  /** Makes {@code resource} a member: the scope closes it at its end. */
  public <T extends AutoCloseable> T register(T resource) {
    add(resource);
    return resource;
  }

  /** Takes {@code resource} out of the scope; the caller now closes it. */
  public <T extends AutoCloseable> T detach(T resource) {
    synchronized (this) {
      if (!members.remove(resource)) {
        return resource;
      }
    }
    setScope(resource, null);
    return resource;
  }

  /**
   * Moves {@code resource} to the enclosing scope, which closes it at its own
   * end; without an enclosing scope (or after it was closed) it is detached.
   */
  public <T extends AutoCloseable> T moveToOuter(T resource) {
    boolean member;
    synchronized (this) {
      member = members.remove(resource);
    }
    if (member) {
      setScope(resource, null);
      if (parent != null) {
        parent.add(resource);
      }
    }
    return resource;
  }

  /** The enclosing scope. */
  public Optional<ResourceScope> parent() {
    return Optional.ofNullable(parent);
  }

  /** The number of members now. */
  public synchronized int size() {
    return members.size();
  }

  public synchronized boolean isClosed() {
    return closed;
  }

  /**
   * Closes the members in reverse order of joining. If a close throws, the
   * others are still closed and the first failure is thrown afterwards.
   *
   * @throws IllegalStateException on a thread other than the one that opened it
   */
  @Override
  public void close() {
    if (Thread.currentThread() != owner) {
      throw new IllegalStateException("a ResourceScope must be closed on the thread that opened it ("
          + owner.getName() + "), not on " + Thread.currentThread().getName());
    }
    synchronized (this) {
      if (closed) {
        return;
      }
    }
    // Scopes opened inside this one and left open end first.
    ResourceScope inner = CURRENT.get();
    while (inner != null && inner != this && inner.isInside(this)) {
      inner.close();
      inner = CURRENT.get();
    }
    List<AutoCloseable> toClose;
    synchronized (this) {
      closed = true;
      toClose = new ArrayList<>(members);
      members.clear();
    }
    if (CURRENT.get() == this) {
      if (parent != null) {
        CURRENT.set(parent);
      } else {
        CURRENT.remove();
      }
    }
    RuntimeException failure = null;
    for (int i = toClose.size() - 1; i >= 0; i--) {
      AutoCloseable member = toClose.get(i);
      setScope(member, null);
      try {
        member.close();
      } catch (Exception e) {
        if (failure == null) {
          failure = e instanceof RuntimeException ? (RuntimeException) e
              : new IllegalStateException("closing " + member + " failed", e);
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    if (failure != null) {
      throw failure;
    }
  }

  @Override
  public synchronized String toString() {
    return "ResourceScope[" + members.size() + " members" + (closed ? ", closed]" : "]");
  }

  // ---- called by the objects

  static void adopt(AutoCloseable resource) {
    ResourceScope scope = CURRENT.get();
    if (scope != null) {
      scope.add(resource);
    }
  }

  /** A member closed by other means leaves the scope. */
  void forget(AutoCloseable resource) {
    synchronized (this) {
      members.remove(resource);
    }
  }

  private void add(AutoCloseable resource) {
    synchronized (this) {
      if (closed) {
        throw new IllegalStateException(this + " is closed");
      }
      members.add(resource);
    }
    setScope(resource, this);
  }

  private boolean isInside(ResourceScope outer) {
    for (ResourceScope s = parent; s != null; s = s.parent) {
      if (s == outer) {
        return true;
      }
    }
    return false;
  }

  private static void setScope(AutoCloseable resource, ResourceScope scope) {
    if (resource instanceof StrandObject) {
      ((StrandObject) resource).scope = scope;
    } else if (resource instanceof Result) {
      ((Result) resource).scope = scope;
    }
  }
}
