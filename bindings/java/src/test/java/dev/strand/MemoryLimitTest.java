package dev.strand;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The limit, and the retry after a collection when garbage may hold native memory. */
class MemoryLimitTest {
  private static final int MIB = 1 << 20;

  @Test
  void limitIsParsedAndVisible() {
    assertEquals(3L << 30, Strand.parseBytes("3G"));
    assertEquals(1536L << 20, Strand.parseBytes("1.5G"));
    StrandException e = assertThrows(StrandException.class, () -> Strand.parseBytes("lots"));
    assertEquals(Status.INVALID_ARGUMENT, e.status());
    Strand.setMemoryLimit("64M");
    assertEquals(64L << 20, Strand.memoryLimit());
    assertEquals(64L << 20, Strand.memoryStats().limitBytes());
  }

  @Test
  void garbageIsCollectedBeforeGivingUp() {
    long base = Strand.memoryStats().totalLiveBytes();
    Strand.setMemoryLimit(base + 4 * MIB);
    long retries = Strand.memoryLimitRetries();
    long leaks = Strand.leakCount();
    leakMegabytes(3); // unreachable and unclosed: only the GC can give this back
    try (Tensor t = Tensor.zeros(DType.UINT8, 2 * MIB)) {
      assertEquals(2 * MIB, t.byteSize());
    }
    assertEquals(retries + 1, Strand.memoryLimitRetries(), "one retry after one collection");
    assertEquals(leaks + 3, Strand.leakCount());
  }

  private static void leakMegabytes(int n) {
    for (int i = 0; i < n; i++) {
      Tensor.zeros(DType.UINT8, MIB);
    }
  }

  @Test
  void withoutGarbageTheLimitIsAnError() {
    long base = Strand.memoryStats().totalLiveBytes();
    Strand.setMemoryLimit(base + MIB);
    long retries = Strand.memoryLimitRetries();
    try (Tensor held = Tensor.zeros(DType.UINT8, MIB / 2)) {
      StrandException e = assertThrows(StrandException.class,
          () -> Tensor.zeros(DType.FLOAT32, MIB));
      assertEquals(Status.MEMORY_LIMIT, e.status());
      assertTrue(e.strandMessage().contains("limit"), e.getMessage());
      assertEquals(held.byteSize(), MIB / 2);
    }
    assertEquals(retries, Strand.memoryLimitRetries());
  }
}
