package dev.strand;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Every test ends with zero live strand objects: objects it left to the GC
 * on purpose are given a few seconds to be collected and cleaned; anything
 * still alive after that (an object held and never closed) fails the test.
 * Also restores the settings tests may change.
 */
public final class NoLeaksExtension implements BeforeEachCallback, AfterEachCallback {
  @Override
  public void beforeEach(ExtensionContext context) {
    Native.init();
  }

  @Override
  public void afterEach(ExtensionContext context) {
    try {
      if (TestSupport.liveObjects() != 0) {
        TestSupport.collectUntil("live strand objects to reach 0", 10,
            () -> TestSupport.liveObjects() == 0);
      }
      assertEquals(0, TestSupport.liveObjects(), () -> "live objects after the test: "
          + Strand.memoryStats() + "\n" + Strand.nativeLeakReport());
      assertEquals(0, Strand.openObjects(), "open Java handles after the test");
    } finally {
      Strand.setMemoryLimit(0);
      Strand.setLeakDetection(LeakLevel.COUNT);
    }
  }
}
