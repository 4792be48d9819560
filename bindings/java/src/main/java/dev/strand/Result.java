package dev.strand;

import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

/**
 * The outputs of one run, by name, in the order asked for. The result owns
 * its tensors: {@link #close()} closes those not {@link #detach detached}.
 * Inside a {@link ResourceScope} the result (not each tensor) belongs to the
 * scope; a detached tensor joins the scope current on the detaching thread.
 *
 * <p>Thread safety: any; methods synchronize on the result.
 */
public final class Result implements AutoCloseable, Iterable<Map.Entry<String, Tensor>> {
  private final String[] names;
  private final Tensor[] tensors;
  private boolean closed;
  /** The scope this result belongs to, or null. */
  volatile ResourceScope scope;

  private Result(String[] names, Tensor[] tensors) {
    this.names = names;
    this.tensors = tensors;
    ResourceScope.adopt(this);
  }

  /** Takes over the native outputs of a run: the first {@code length} longs
   * of {@code out} hold, per output, { handle, dtype, bytes, rank, dims... }. */
  static Result adopt(String[] names, long[] out, int length, Leaks.Site site) {
    Tensor[] tensors = new Tensor[names.length];
    int at = 0;
    int made = 0;
    try {
      for (; made < names.length; made++) {
        tensors[made] = Tensor.adopt(out[at], out, at + 1, site, false);
        at += 4 + (int) out[at + 3];
      }
      return new Result(names, tensors);
    } catch (Throwable t) {
      for (int i = 0; i < made; i++) {
        tensors[i].close();
      }
      for (; at < length; at += 4 + (int) out[at + 3]) {
        Native.release(ObjectKind.TENSOR.code(), out[at]);
      }
      throw t;
    }
  }

  /** The number of outputs. */
  public synchronized int size() {
    return names.length;
  }

  /** The output names, in order. */
  public List<String> names() {
    return List.of(names);
  }

  /** Output {@code i}. */
  public synchronized Tensor get(int i) {
    checkOpen();
    Tensor t = tensors[i];
    if (t == null) {
      throw new IllegalStateException("output \"" + names[i] + "\" was detached from this result");
    }
    return t;
  }

  /** The output named {@code name}. */
  public synchronized Tensor get(String name) {
    return get(indexOf(name));
  }

  /** The outputs by name, in order (a snapshot; the tensors stay the result's). */
  public synchronized Map<String, Tensor> asMap() {
    checkOpen();
    Map<String, Tensor> map = new LinkedHashMap<>();
    for (int i = 0; i < names.length; i++) {
      if (tensors[i] != null) {
        map.put(names[i], tensors[i]);
      }
    }
    return Collections.unmodifiableMap(map);
  }

  /**
   * Takes output {@code name} out of the result: closing the result no
   * longer closes it, and the caller owns it (it joins the calling thread's
   * current scope, if any).
   */
  public synchronized Tensor detach(String name) {
    int i = indexOf(name);
    Tensor t = get(i);
    tensors[i] = null;
    ResourceScope.adopt(t);
    return t;
  }

  @Override
  public Iterator<Map.Entry<String, Tensor>> iterator() {
    List<Map.Entry<String, Tensor>> entries = new ArrayList<>();
    for (Map.Entry<String, Tensor> e : asMap().entrySet()) {
      entries.add(new AbstractMap.SimpleImmutableEntry<>(e));
    }
    return entries.iterator();
  }

  public synchronized boolean isClosed() {
    return closed;
  }

  /** Closes every tensor not detached. Idempotent; any thread. */
  @Override
  public void close() {
    Tensor[] toClose;
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      toClose = tensors.clone();
    }
    ResourceScope owner = scope;
    if (owner != null) {
      owner.forget(this);
    }
    for (Tensor t : toClose) {
      if (t != null) {
        t.close();
      }
    }
  }

  @Override
  public synchronized String toString() {
    StringBuilder b = new StringBuilder("Result{");
    for (int i = 0; i < names.length; i++) {
      b.append(i == 0 ? "" : ", ").append(names[i]).append('=')
          .append(tensors[i] == null ? "detached" : tensors[i].toString());
    }
    return b.append(closed ? "} (closed)" : "}").toString();
  }

  private int indexOf(String name) {
    for (int i = 0; i < names.length; i++) {
      if (names[i].equals(name)) {
        return i;
      }
    }
    throw new NoSuchElementException("no output named \"" + name + "\" in " + List.of(names));
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("Result" + List.of(names) + " is closed");
    }
  }
}
