package dev.strand;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Optional;

/**
 * A graph input or output as the model declares it (or as strand inferred
 * it): name, element type and shape, where a dimension may be unknown (-1)
 * and may carry a symbolic name ("batch"). Immutable.
 */
public final class ValueInfo {
  private final String name;
  private final DType dtype;
  private final boolean rankKnown;
  private final long[] dims;
  private final List<String> dimNames;

  /** Made by the native library (the signature is part of the JNI interface). */
  ValueInfo(String name, int dtype, boolean rankKnown, long[] dims, String[] dimNames) {
    this.name = name;
    this.dtype = DType.of(dtype);
    this.rankKnown = rankKnown;
    this.dims = dims;
    this.dimNames = Collections.unmodifiableList(Arrays.asList(dimNames));
  }

  public String name() {
    return name;
  }

  /** {@link DType#UNDEFINED} when not known. */
  public DType dtype() {
    return dtype;
  }

  /** False when even the rank is unknown (then the shape is empty). */
  public boolean rankKnown() {
    return rankKnown;
  }

  public int rank() {
    return dims.length;
  }

  /** A copy of the dimensions; -1 for a symbolic or unknown one. */
  public long[] shape() {
    return dims.clone();
  }

  /** The symbolic name of dimension {@code i} ("batch"), if it has one. */
  public Optional<String> dimName(int i) {
    return Optional.ofNullable(dimNames.get(i));
  }

  /** Per dimension, its symbolic name or null. */
  public List<String> dimNames() {
    return dimNames;
  }

  /** "input: float32 [batch, 16]". */
  @Override
  public String toString() {
    StringBuilder b = new StringBuilder(name).append(": ").append(dtype).append(' ');
    if (!rankKnown) {
      return b.append("[?]").toString();
    }
    b.append('[');
    for (int i = 0; i < dims.length; i++) {
      if (i > 0) {
        b.append(", ");
      }
      String n = dimNames.get(i);
      b.append(n != null ? n : dims[i] < 0 ? "?" : Long.toString(dims[i]));
    }
    return b.append(']').toString();
  }
}
