package dev.strand;

/**
 * A snapshot of strand's native memory and objects: memory the garbage
 * collector cannot see. Fields are read one after another, so under
 * concurrent activity they need not add up exactly.
 */
public final class MemoryStats {
  /** Where the counts by kind end (see Native.memoryStats). */
  private static final int KINDS_END = 11 + ObjectKind.values().length;

  private final long[] v;

  MemoryStats(long[] raw) {
    this.v = raw;
  }

  /** Live bytes in one category. */
  public long liveBytes(MemoryCategory category) {
    return v[category.ordinal()];
  }

  /** Peak bytes in one category since the start (or the last reset). */
  public long peakBytes(MemoryCategory category) {
    return v[4 + category.ordinal()];
  }

  /** Live bytes, all categories together. */
  public long totalLiveBytes() {
    return v[8];
  }

  public long totalPeakBytes() {
    return v[9];
  }

  /** The process-wide limit; 0 when there is none. */
  public long limitBytes() {
    return v[10];
  }

  /** Live native objects of one kind. */
  public long liveObjects(ObjectKind kind) {
    return v[11 + kind.ordinal()];
  }

  /** Live native objects of every kind. */
  public long totalLiveObjects() {
    return v[KINDS_END];
  }

  /** Successful allocations since the start. */
  public long allocations() {
    return v[KINDS_END + 1];
  }

  /** Allocations refused by the limit or by the system. */
  public long failedAllocations() {
    return v[KINDS_END + 2];
  }

  @Override
  public String toString() {
    StringBuilder b = new StringBuilder("MemoryStats[live ").append(totalLiveBytes()).append(" bytes (");
    for (MemoryCategory c : MemoryCategory.values()) {
      b.append(c.ordinal() == 0 ? "" : ", ").append(c.name().toLowerCase()).append(' ').append(liveBytes(c));
    }
    b.append("), peak ").append(totalPeakBytes());
    if (limitBytes() > 0) {
      b.append(", limit ").append(limitBytes());
    }
    b.append(", objects ").append(totalLiveObjects()).append(" (");
    for (ObjectKind k : ObjectKind.values()) {
      b.append(k.ordinal() == 0 ? "" : ", ").append(k.name().toLowerCase()).append(' ').append(liveObjects(k));
    }
    return b.append(")]").toString();
  }
}
