package dev.strand;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class ResourceScopeTest {
  @Test
  void closesWhatWasCreatedInside() {
    Tensor a;
    Tensor b;
    Model m;
    try (ResourceScope scope = ResourceScope.open()) {
      a = Tensor.of(new float[] {1}, 1);
      b = Tensor.zeros(DType.INT8, 3);
      m = Model.load(TestSupport.model("mlp_tiny.onnx"));
      assertEquals(3, scope.size());
      assertSame(scope, ResourceScope.current().orElseThrow());
    }
    assertTrue(a.isClosed() && b.isClosed() && m.isClosed());
    assertTrue(ResourceScope.current().isEmpty());
  }

  @Test
  void detachedObjectsSurvive() {
    Tensor kept;
    try (ResourceScope scope = ResourceScope.open()) {
      kept = scope.detach(Tensor.of(new int[] {1, 2}, 2));
      Tensor.of(new int[] {3}, 1);
      assertEquals(1, scope.size());
    }
    assertFalse(kept.isClosed());
    assertEquals(2, kept.toIntArray()[1]);
    kept.close();
  }

  @Test
  void movedToTheOuterScope() {
    Tensor moved;
    try (ResourceScope outer = ResourceScope.open()) {
      try (ResourceScope inner = ResourceScope.open()) {
        assertSame(outer, inner.parent().orElseThrow());
        moved = inner.moveToOuter(Tensor.of(new long[] {7}, 1));
        assertEquals(0, inner.size());
      }
      assertFalse(moved.isClosed());
      assertEquals(1, outer.size());
    }
    assertTrue(moved.isClosed());
  }

  @Test
  void withReturnsItsValueToTheOuterScope() {
    try (ResourceScope outer = ResourceScope.open()) {
      AtomicReference<Tensor> temporary = new AtomicReference<>();
      Tensor value = ResourceScope.with(scope -> {
        temporary.set(Tensor.of(new float[] {1}, 1));
        return Tensor.of(new float[] {2}, 1);
      });
      assertTrue(temporary.get().isClosed());
      assertFalse(value.isClosed());
      assertEquals(1, outer.size());
    }
    // Without an outer scope the value is simply the caller's.
    Tensor free = ResourceScope.with(scope -> Tensor.of(new float[] {3}, 1));
    assertFalse(free.isClosed());
    free.close();
  }

  @Test
  void objectsClosedEarlyLeaveTheScope() {
    try (ResourceScope scope = ResourceScope.open()) {
      Tensor t = Tensor.of(new float[] {1}, 1);
      assertEquals(1, scope.size());
      t.close();
      assertEquals(0, scope.size());
    }
  }

  @Test
  void otherThreadsObjectsAreTheirOwn() throws Exception {
    AtomicReference<Tensor> made = new AtomicReference<>();
    try (ResourceScope scope = ResourceScope.open()) {
      Thread t = new Thread(() -> made.set(Tensor.of(new float[] {1}, 1)));
      t.start();
      t.join();
      assertEquals(0, scope.size());
    }
    assertFalse(made.get().isClosed());
    made.get().close();
  }

  @Test
  void closingAnOuterScopeClosesInnerOnes() {
    Tensor innerTensor;
    ResourceScope outer = ResourceScope.open();
    ResourceScope inner = ResourceScope.open();
    innerTensor = Tensor.of(new float[] {1}, 1);
    outer.close();
    assertTrue(inner.isClosed());
    assertTrue(innerTensor.isClosed());
    assertTrue(ResourceScope.current().isEmpty());
    inner.close(); // idempotent
  }

  @Test
  void mustBeClosedByItsThread() throws Exception {
    ResourceScope scope = ResourceScope.open();
    AtomicReference<Throwable> error = new AtomicReference<>();
    Thread t = new Thread(() -> {
      try {
        scope.close();
      } catch (Throwable e) {
        error.set(e);
      }
    });
    t.start();
    t.join();
    assertTrue(error.get() instanceof IllegalStateException, String.valueOf(error.get()));
    scope.close();
  }

  @Test
  void registersAnyCloseable() {
    boolean[] closed = {false};
    try (ResourceScope scope = ResourceScope.open()) {
      scope.register(() -> closed[0] = true);
    }
    assertTrue(closed[0]);
  }

  @Test
  void resultsAreScopedAsAWhole() {
    org.junit.jupiter.api.Assumptions.assumeTrue(TestSupport.sessionsWork(), "sessions not available");
    try (Model m = Model.load(TestSupport.model("mlp_tiny.onnx"));
        Session s = m.newSession();
        Tensor x = Tensor.zeros(DType.FLOAT32, 1, 16)) {
      Tensor kept;
      Result r;
      try (ResourceScope scope = ResourceScope.open()) {
        r = s.run("input", x);
        assertEquals(1, scope.size(), "the result, not its tensors");
        kept = scope.detach(r.detach("output"));
      }
      assertTrue(r.isClosed());
      assertFalse(kept.isClosed());
      assertEquals(4, kept.elementCount());
      kept.close();
    }
  }
}
