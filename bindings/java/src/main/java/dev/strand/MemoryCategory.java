package dev.strand;

/** Categories of strand's native memory ({@code strand_memory_category}). */
public enum MemoryCategory {
  /** Tensor data owned by strand. */
  TENSOR,
  /** Model weights copied or converted at load, and repacked by sessions. */
  WEIGHTS,
  /** Per-run working memory. */
  SCRATCH,
  /** Objects, graphs, plans, traces. */
  OTHER
}
