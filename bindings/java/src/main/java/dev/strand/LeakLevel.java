package dev.strand;

/**
 * How much leak detection records ({@code strand_leak_level}). Objects that
 * are garbage-collected without {@code close()} are counted at every level;
 * {@link #SAMPLE} and {@link #ALL} also record the Java stack of their creation.
 */
public enum LeakLevel {
  /** Live objects counted by kind only. */
  OFF,
  /** Every object registered natively; no stacks. */
  COUNT,
  /** One object in N (per thread) keeps its creation stack. */
  SAMPLE,
  /** Every object keeps its creation stack (slow: a stack walk per object). */
  ALL;

  static LeakLevel of(int code) {
    return code >= 0 && code < values().length ? values()[code] : OFF;
  }
}
