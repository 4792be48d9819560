package dev.strand;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Objects left to the garbage collector: released on the cleaner thread and counted. */
class LeakTest {
  @Test
  void unclosedTensorsAreReleasedByTheCleanerAndCounted() {
    long leaksBefore = Strand.leakCount();
    long bytesBefore = Strand.memoryStats().liveBytes(MemoryCategory.TENSOR);
    leakTensors(100, 1000);
    assertTrue(Strand.memoryStats().liveBytes(MemoryCategory.TENSOR) >= bytesBefore + 100 * 4000);
    TestSupport.collectUntil("the cleaners to release 100 tensors", 20,
        () -> Strand.leakCount() - leaksBefore == 100);
    assertEquals(bytesBefore, Strand.memoryStats().liveBytes(MemoryCategory.TENSOR));
    assertEquals(0, TestSupport.liveObjects());
    assertEquals(0, Strand.misuseCount(), "never a double release");
  }

  private static void leakTensors(int count, int floats) {
    for (int i = 0; i < count; i++) {
      Tensor.zeros(DType.FLOAT32, floats);
    }
  }

  @Test
  void leaksAreReportedByCreationSiteWithTheJavaStack() {
    Strand.setLeakDetection(LeakLevel.ALL);
    long before = Strand.leakCount();
    leakFromHere(25);
    TestSupport.collectUntil("25 leaks", 20, () -> Strand.leakCount() - before == 25);
    List<LeakSite> report = Strand.leakReport();
    LeakSite site = report.stream()
        .filter(s -> s.stack().map(st -> st.contains("leakFromHere")).orElse(false))
        .findFirst().orElseThrow(() -> new AssertionError("no site in " + report));
    assertEquals(25, site.count(), "one site, aggregated");
    assertEquals(ObjectKind.TENSOR, site.kind());
    assertEquals(25 * 8, site.bytes());
    String stack = site.stack().orElseThrow();
    assertTrue(stack.startsWith("at dev.strand.LeakTest.leakFromHere"), stack);
    assertFalse(stack.contains("dev.strand.Tensor."), "the binding's own frames are left out: " + stack);
  }

  private static void leakFromHere(int count) {
    for (int i = 0; i < count; i++) {
      Tensor.of(new long[] {i}, 1);
    }
  }

  @Test
  void strandsOwnReportShowsTheJavaOrigin() {
    Strand.setLeakDetection(LeakLevel.ALL);
    try (Tensor t = Tensor.of(new float[] {1, 2}, 2)) {
      List<NativeLeakSite> sites = Strand.nativeLeakReport();
      NativeLeakSite site = sites.stream()
          .filter(s -> s.origin().contains("strandsOwnReportShowsTheJavaOrigin"))
          .findFirst().orElseThrow(() -> new AssertionError("no origin in " + sites));
      assertEquals(ObjectKind.TENSOR, site.kind());
      assertTrue(site.traced());
      assertEquals(1, site.count());
      assertEquals(8, site.bytes());
      assertTrue(site.origin().startsWith("Java stack:\nat dev.strand.LeakTest."), site.origin());
      assertFalse(t.isClosed());
    }
  }

  @Test
  void sampledLevelTracesOneInN() {
    Strand.setLeakDetection(LeakLevel.SAMPLE, 10);
    long before = Strand.leakCount();
    leakSampled(100);
    TestSupport.collectUntil("100 leaks", 20, () -> Strand.leakCount() - before == 100);
    long traced = Strand.leakReport().stream()
        .filter(s -> s.stack().map(st -> st.contains("leakSampled")).orElse(false))
        .mapToLong(LeakSite::count).sum();
    assertEquals(10, traced, "one in ten");
  }

  private static void leakSampled(int count) {
    for (int i = 0; i < count; i++) {
      Tensor.zeros(DType.UINT8, 1);
    }
  }

  @Test
  void everyKindIsCleaned() {
    long before = Strand.leakCount();
    leakOneOfEach();
    TestSupport.collectUntil("a leaked model and dispatcher", 20,
        () -> Strand.leakCount() - before == 2);
    assertEquals(0, TestSupport.liveObjects());
  }

  private static void leakOneOfEach() {
    Model.load(TestSupport.model("mlp_tiny.onnx"));
    Dispatcher.create("strand-leaked");
  }

  @Test
  void levelFromSystemPropertyIsParsed() {
    assertEquals(LeakLevel.SAMPLE, Config.parseLeakLevel("sample:5"));
    assertEquals(5, Config.sampleInterval("sample:5"));
    assertEquals(LeakLevel.ALL, Config.parseLeakLevel(" ALL "));
    assertEquals(LeakLevel.COUNT, Strand.leakDetection(), "surefire sets strand.leakDetection=count");
  }
}
