package dev.strand;

/** Options for {@link Session#create}; immutable, with {@code with...} copies. */
public final class SessionOptions {
  private static final SessionOptions DEFAULTS = new SessionOptions(0);

  private final int intraOpThreads;

  private SessionOptions(int intraOpThreads) {
    this.intraOpThreads = intraOpThreads;
  }

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
    return new SessionOptions(threads);
  }

  public int intraOpThreads() {
    return intraOpThreads;
  }

  @Override
  public String toString() {
    return "SessionOptions[intraOpThreads=" + intraOpThreads + "]";
  }
}
