package dev.strand;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

@SuppressWarnings("try") // scopes are opened for what they close
class SessionTest {
  @BeforeEach
  void needsSessions() {
    assumeTrue(TestSupport.sessionsWork(), "the native library cannot run sessions yet");
  }

  static void assertClose(float[] want, float[] got, double rtol, double atol) {
    assertEquals(want.length, got.length);
    for (int i = 0; i < want.length; i++) {
      double tolerance = atol + rtol * Math.abs(want[i]);
      if (!(Math.abs(got[i] - want[i]) <= tolerance)) {
        throw new AssertionError("element " + i + ": " + got[i] + " vs " + want[i]);
      }
    }
  }

  private static void matchesPytorch(String name) {
    try (ResourceScope scope = ResourceScope.open()) {
      Model model = Model.load(TestSupport.model(name + ".onnx"));
      Session session = model.newSession();
      model.close(); // the session keeps its own reference
      Tensor input = Tensor.readNpy(TestSupport.model(name + ".input.npy"));
      Tensor expected = Tensor.readNpy(TestSupport.model(name + ".expected.npy"));
      for (int round = 0; round < 3; round++) {
        try (Result r = session.run(Map.of("input", input))) {
          assertEquals(List.of("output"), r.names());
          Tensor out = r.get("output");
          assertArrayEquals(expected.shape(), out.shape());
          assertClose(expected.toFloatArray(), out.toFloatArray(), 1e-4, 1e-5);
        }
      }
      Session.Stats stats = session.stats();
      assertEquals(3, stats.runs());
      assertEquals(1, stats.planningRuns());
    }
  }

  /**
   * Per-node profile: off until turned on; then each run adds one call to
   * every node that runs (cnn_tiny's Relu nodes join its Convs and its
   * Flatten is a view: none); each node names its kernel; reset gives
   * zeros; four threads' runs all count; a closed session refuses.
   */
  @Test
  void profileCountsEachNodesCalls() throws Exception {
    try (ResourceScope scope = ResourceScope.open()) {
      Model model = Model.load(TestSupport.model("cnn_tiny.onnx"));
      Session session = Session.create(model, SessionOptions.defaults().withIntraOpThreads(1));
      model.close();
      Tensor input = Tensor.readNpy(TestSupport.model("cnn_tiny.input.npy"));
      session.run(Map.of("input", input)).close();
      List<Session.NodeProfile> nodes = session.profile();
      assertEquals(8, nodes.size());
      for (Session.NodeProfile node : nodes) {
        assertEquals(0, node.calls(), node::toString);
      }
      session.setProfiling(true);
      for (int i = 0; i < 3; i++) {
        session.run(Map.of("input", input)).close();
      }
      nodes = session.profile();
      assertEquals("Conv", nodes.get(0).opType());
      assertEquals("Gemm", nodes.get(7).opType());
      assertEquals("im2col", nodes.get(3).kernel()); /* its 3x3 Conv over 8 channels */
      assertEquals("", nodes.get(7).kernel());
      for (Session.NodeProfile node : nodes) {
        boolean idle = node.opType().equals("Relu") || node.opType().equals("Flatten");
        assertEquals(idle ? 0 : 3, node.calls(), node::toString);
        assertEquals(nodes.indexOf(node), node.index());
        assertTrue(idle || node.totalNanos() > 0, node::toString);
      }
      session.resetProfile();
      ExecutorService pool = Executors.newFixedThreadPool(4);
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        done.add(pool.submit(() -> {
          for (int i = 0; i < 25; i++) {
            session.run(Map.of("input", input)).close();
          }
        }));
      }
      for (Future<?> f : done) {
        f.get(60, TimeUnit.SECONDS);
      }
      pool.shutdown();
      for (Session.NodeProfile node : session.profile()) {
        boolean idle = node.opType().equals("Relu") || node.opType().equals("Flatten");
        assertEquals(idle ? 0 : 100, node.calls(), node::toString);
      }
      session.setProfiling(false);
      session.close();
      assertThrows(IllegalStateException.class, session::profile);
      assertThrows(IllegalStateException.class, () -> session.setProfiling(true));
    }
  }

  @Test
  void mlpMatchesPytorch() {
    matchesPytorch("mlp_tiny");
  }

  @Test
  void cnnMatchesPytorch() {
    matchesPytorch("cnn_tiny");
  }

  @Test
  void outputsByNameAndErrors() {
    try (ResourceScope scope = ResourceScope.open()) {
      Session s = Session.create(Model.load(TestSupport.model("mlp_tiny.onnx")),
          SessionOptions.defaults().withIntraOpThreads(1));
      Tensor x = Tensor.zeros(DType.FLOAT32, 3, 16);
      try (Result r = s.run(Map.of("input", x), "output")) {
        assertArrayEquals(new long[] {3, 4}, r.get(0).shape());
      }
      StrandException e = assertThrows(StrandException.class, () -> s.run(Map.of("input", x), "nope"));
      assertEquals(Status.NOT_FOUND, e.status());
      e = assertThrows(StrandException.class, () -> s.run("nope", x));
      assertEquals(Status.NOT_FOUND, e.status());
      assertTrue(e.getMessage().contains("\"nope\""), e.getMessage());

      e = assertThrows(StrandException.class, () -> s.run("input", Tensor.zeros(DType.INT32, 1, 16)));
      assertEquals(Status.DTYPE, e.status());
      assertTrue(e.strandMessage().contains("input"), e.getMessage());
      e = assertThrows(StrandException.class, () -> s.run("input", Tensor.zeros(DType.FLOAT32, 1, 15)));
      assertEquals(Status.SHAPE, e.status());
      e = assertThrows(StrandException.class, () -> s.run(Map.of()));
      assertEquals(Status.INVALID_ARGUMENT, e.status());

      try (Model m = s.model()) {
        assertEquals("input", m.inputs().get(0).name());
      }
      assertEquals(1, s.inputs().size());
    }
  }

  @Test
  void wrappedBufferAsInput() {
    try (ResourceScope scope = ResourceScope.open()) {
      Session s = Model.load(TestSupport.model("mlp_tiny.onnx")).newSession();
      Tensor file = Tensor.readNpy(TestSupport.model("mlp_tiny.input.npy"));
      ByteBuffer buffer = file.toByteBuffer();
      Tensor wrapped = Tensor.wrap(buffer, DType.FLOAT32, 2, 16);
      float[] a = s.run("input", file).get("output").toFloatArray();
      float[] b = s.run("input", wrapped).get("output").toFloatArray();
      assertArrayEquals(a, b);
      assertEquals(ByteOrder.nativeOrder(), buffer.order());
    }
  }

  @Test
  void resultUseAfterClose() {
    try (ResourceScope scope = ResourceScope.open()) {
      Session s = Model.load(TestSupport.model("mlp_tiny.onnx")).newSession();
      Result r = s.run("input", Tensor.zeros(DType.FLOAT32, 1, 16));
      Tensor out = r.get("output");
      r.close();
      assertTrue(out.isClosed());
      assertThrows(IllegalStateException.class, () -> r.get(0));
      assertEquals("Tensor[float32, 1x4] is closed",
          assertThrows(IllegalStateException.class, out::toFloatArray).getMessage());
      s.close();
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> s.run("input", Tensor.zeros(DType.FLOAT32, 1, 16)));
      assertTrue(e.getMessage().matches("Session\\[Model\\[.*mlp_tiny.onnx\\]\\] is closed"), e.getMessage());
    }
  }

  /** Close a tensor from one thread while another runs with it: a clean result or a clear exception. */
  @Test
  void tensorClosedWhileAnotherThreadRunsWithIt() throws Exception {
    try (Model m = Model.load(TestSupport.model("mlp_tiny.onnx"));
        Session s = m.newSession();
        Tensor reference = Tensor.readNpy(TestSupport.model("mlp_tiny.input.npy"))) {
      float[] input = reference.toFloatArray();
      float[] want;
      try (Result r = s.run("input", reference)) {
        want = r.get(0).toFloatArray();
      }
      ExecutorService pool = Executors.newFixedThreadPool(2);
      int clean = 0;
      int refused = 0;
      try {
        for (int i = 0; i < 300; i++) {
          Tensor x = Tensor.of(input, 2, 16);
          CountDownLatch start = new CountDownLatch(1);
          Future<float[]> run = pool.submit(() -> {
            start.await();
            try (Result r = s.run("input", x)) {
              return r.get(0).toFloatArray();
            }
          });
          Future<?> close = pool.submit(() -> {
            start.await();
            for (int spin = ThreadLocalRandom.current().nextInt(2000); spin > 0; spin--) {
              Thread.onSpinWait();
            }
            x.close();
            return null;
          });
          start.countDown();
          close.get(30, TimeUnit.SECONDS);
          try {
            assertArrayEquals(want, run.get(30, TimeUnit.SECONDS));
            clean++;
          } catch (java.util.concurrent.ExecutionException e) {
            assertTrue(e.getCause() instanceof IllegalStateException, e.toString());
            assertEquals("Tensor[float32, 2x16] is closed", e.getCause().getMessage());
            refused++;
          }
        }
      } finally {
        pool.shutdown();
      }
      assertEquals(300, clean + refused);
      assertEquals(0, Strand.misuseCount());
    }
  }

  /** Close the session while other threads are mid-run: the native session lives until they end. */
  @Test
  void sessionClosedWhileRunsAreInFlight() throws Exception {
    Model m = Model.load(TestSupport.model("mlp_tiny.onnx"));
    Session s = m.newSession();
    m.close();
    AtomicInteger ok = new AtomicInteger();
    AtomicInteger refused = new AtomicInteger();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    List<Thread> threads = new ArrayList<>();
    CountDownLatch running = new CountDownLatch(4);
    for (int t = 0; t < 4; t++) {
      Thread thread = new Thread(() -> {
        try (Tensor x = Tensor.zeros(DType.FLOAT32, 8, 16)) {
          running.countDown();
          while (true) {
            try (Result r = s.run("input", x)) {
              assertEquals(32, r.get(0).elementCount());
              ok.incrementAndGet();
            } catch (IllegalStateException e) {
              assertTrue(e.getMessage().endsWith("is closed"));
              refused.incrementAndGet();
              return;
            }
          }
        } catch (Throwable e) {
          failure.set(e);
        }
      });
      threads.add(thread);
      thread.start();
    }
    running.await();
    Thread.sleep(50);
    s.close();
    for (Thread t : threads) {
      t.join(30_000);
    }
    if (failure.get() != null) {
      throw new AssertionError(failure.get());
    }
    assertEquals(4, refused.get());
    assertTrue(ok.get() > 0);
  }

  @Test
  void asyncAndThroughADispatcher() throws Exception {
    try (ResourceScope scope = ResourceScope.open()) {
      Session s = Model.load(TestSupport.model("mlp_tiny.onnx")).newSession();
      Tensor x = Tensor.readNpy(TestSupport.model("mlp_tiny.input.npy"));
      Tensor expected = Tensor.readNpy(TestSupport.model("mlp_tiny.expected.npy"));
      ExecutorService pool = Executors.newFixedThreadPool(2);
      try (Result r = s.runAsync(Map.of("input", x), pool).get(30, TimeUnit.SECONDS)) {
        assertClose(expected.toFloatArray(), r.get(0).toFloatArray(), 1e-4, 1e-5);
      } finally {
        pool.shutdown();
      }
      Dispatcher d = Dispatcher.create("strand-funnel");
      float[] viaDispatcher = d.run(() -> {
        try (Result r = s.run("input", x)) {
          return r.get(0).toFloatArray();
        }
      });
      assertClose(expected.toFloatArray(), viaDispatcher, 1e-4, 1e-5);
    }
  }
}
