package dev.strand;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Cancel tokens, deadlines and timeouts (RunOptions), on chains of Neg nodes
 * made by {@link TestModels#negChain}: every node boundary is a place where a
 * run can stop, and a stopped run's message names the node it stopped before.
 */
@SuppressWarnings("try") // scopes are opened for what they close
class CancelTest {
  /** Nodes of the chain that runs are stopped in the middle of. */
  private static final int LONG_CHAIN = 4000;
  private static final int ROWS = 16;

  @BeforeEach
  void needsSessions() {
    assumeTrue(TestSupport.sessionsWork(), "the native library cannot run sessions yet");
  }

  private static Session chain(int nodes) {
    try (Model m = Model.load(TestModels.negChain(nodes))) {
      return m.newSession();
    }
  }

  private static Tensor input(int rows) {
    return Tensor.of(TestModels.chainInput(rows), rows, TestModels.WIDTH);
  }

  /** y must be x times (-1)^nodes, exactly. */
  private static void assertChainResult(float[] x, int nodes, Result r) {
    float[] y = r.get("y").toFloatArray();
    float[] want = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      want[i] = nodes % 2 == 0 ? x[i] : -x[i];
    }
    assertArrayEquals(want, y);
  }

  private static StrandException assertStopped(Status status, Runnable run) {
    StrandException e = assertThrows(StrandException.class, run::run);
    assertEquals(status, e.status(), e::getMessage);
    assertEquals("STRAND_E_" + status.name(), e.statusName());
    return e;
  }

  @Test
  void tokenFlagIsStickyUntilReset() {
    long before = Strand.memoryStats().liveObjects(ObjectKind.CANCEL_TOKEN);
    try (CancelToken t = CancelToken.create()) {
      assertEquals(ObjectKind.CANCEL_TOKEN, t.kind());
      assertTrue(t.toString().matches("CancelToken\\[#\\d+\\]"), t.toString());
      assertEquals(before + 1, Strand.memoryStats().liveObjects(ObjectKind.CANCEL_TOKEN));
      assertFalse(t.isCanceled());
      t.cancel();
      assertTrue(t.isCanceled());
      t.cancel();
      assertTrue(t.isCanceled());
      t.reset();
      assertFalse(t.isCanceled());
    }
    assertEquals(before, Strand.memoryStats().liveObjects(ObjectKind.CANCEL_TOKEN));
  }

  /** A token left to the GC is released by a cleaner and reported under its kind and site. */
  @Test
  void unclosedTokensAreCleanedAndReported() {
    Strand.setLeakDetection(LeakLevel.ALL);
    long before = Strand.leakCount();
    leakTokens(10);
    TestSupport.collectUntil("10 token leaks", 20, () -> Strand.leakCount() - before == 10);
    assertEquals(0, Strand.memoryStats().liveObjects(ObjectKind.CANCEL_TOKEN));
    LeakSite site = Strand.leakReport().stream()
        .filter(l -> l.stack().map(st -> st.startsWith("at dev.strand.CancelTest.leakTokens"))
            .orElse(false))
        .findFirst().orElseThrow(() -> new AssertionError("no site in " + Strand.leakReport()));
    assertEquals(ObjectKind.CANCEL_TOKEN, site.kind());
    assertEquals(10, site.count());
  }

  private static void leakTokens(int count) {
    for (int i = 0; i < count; i++) {
      CancelToken.create().cancel();
    }
  }

  @Test
  void closedTokenIsRefusedByName() {
    try (ResourceScope scope = ResourceScope.open()) {
      Session s = chain(3);
      Tensor x = input(2);
      CancelToken t = CancelToken.create("request-17");
      RunOptions o = RunOptions.cancel(t);
      t.close();
      t.close(); // idempotent
      for (Runnable use : new Runnable[] {
          () -> s.run("x", x, o),
          () -> s.run(Map.of("x", x), o),
          () -> s.run(Map.of("x", x), o, "y"),
          t::cancel, t::reset, t::isCanceled}) {
        IllegalStateException e = assertThrows(IllegalStateException.class, use::run);
        assertEquals("CancelToken[request-17] is closed", e.getMessage());
      }
      Session.Stats stats = s.stats();
      assertEquals(0, stats.runs() + stats.runsFailed() + stats.runsCanceled(), stats::toString);
    }
  }

  /** A token canceled before the run stops it before its first node; reset lets runs through. */
  @Test
  void canceledTokenStopsBeforeTheFirstNodeAndResetLetsRunsThrough() {
    try (ResourceScope scope = ResourceScope.open()) {
      Session s = chain(5);
      Tensor x = input(3);
      float[] xs = x.toFloatArray();
      CancelToken t = CancelToken.create();
      t.cancel();
      RunOptions o = RunOptions.none().withCancel(t);
      StrandException e = assertStopped(Status.CANCELED, () -> s.run("x", x, o)); // planning run
      assertEquals("node \"n0\" (Neg): canceled by the run's token before this node ran",
          e.strandMessage());
      assertTrue(t.isCanceled());
      t.reset();
      try (Result r = s.run("x", x, o)) {
        assertChainResult(xs, 5, r);
      }
      t.cancel();
      e = assertStopped(Status.CANCELED, () -> s.run(Map.of("x", x), o, "y")); // planned run
      assertTrue(e.strandMessage().startsWith("node \"n0\" (Neg): canceled"), e.getMessage());
      t.reset();
      try (Result r = s.run(Map.of("x", x), o)) {
        assertChainResult(xs, 5, r);
      }
      Session.Stats stats = s.stats();
      assertEquals(2, stats.runs(), stats::toString);
      assertEquals(2, stats.runsCanceled(), stats::toString);
      assertEquals(0, stats.runsFailed(), stats::toString);
    }
  }

  @Test
  void deadlinesAndTimeouts() {
    try (ResourceScope scope = ResourceScope.open()) {
      Session s = chain(2000);
      Tensor x = input(1);
      float[] xs = x.toFloatArray();
      // A deadline already passed stops the run before its first node.
      StrandException e = assertStopped(Status.DEADLINE,
          () -> s.run("x", x, RunOptions.deadline(System.nanoTime() - 1)));
      assertTrue(e.strandMessage().matches(
          "node \"n0\" \\(Neg\\): deadline passed \\d+\\.\\d{3} ms before this node ran"),
          e.getMessage());
      // An hour ago: the message says so (the deadline is not moved to "now").
      e = assertStopped(Status.DEADLINE,
          () -> s.run("x", x, RunOptions.deadline(System.nanoTime() - 3_600_000_000_000L)));
      double lateMillis = Double.parseDouble(
          e.strandMessage().replaceAll(".*deadline passed ([0-9.]+) ms.*", "$1"));
      assertTrue(lateMillis >= 3_600_000 && lateMillis < 3_660_000, e.getMessage());
      // An hour away, as a deadline or a timeout: no effect.
      try (Result r = s.run("x", x, RunOptions.deadline(System.nanoTime() + 3_600_000_000_000L))) {
        assertChainResult(xs, 2000, r);
      }
      try (Result r = s.run(Map.of("x", x), RunOptions.timeout(Duration.ofHours(1)))) {
        assertChainResult(xs, 2000, r);
      }
      // Longer than a long can count in nanoseconds: never.
      try (Result r = s.run("x", x, RunOptions.timeout(Duration.ofDays(365L * 1000)))) {
        assertChainResult(xs, 2000, r);
      }
      // With both, the earlier counts.
      assertStopped(Status.DEADLINE, () -> s.run("x", x,
          RunOptions.timeout(Duration.ofHours(1)).withDeadline(System.nanoTime() - 1)));
      // 1 µs ends a 2000-node run part way or before it starts (each node
      // takes longer than that).
      e = assertStopped(Status.DEADLINE,
          () -> s.run("x", x, RunOptions.timeout(Duration.ofNanos(1000))));
      assertTrue(e.strandMessage().matches("node \"n\\d+\" \\(Neg\\): deadline passed.*"),
          e.getMessage());
      Session.Stats stats = s.stats();
      assertEquals(3, stats.runs(), stats::toString);
      assertEquals(4, stats.runsCanceled(), stats::toString);
      assertEquals(0, stats.runsFailed(), stats::toString);
    }
  }

  /** The 1 µs timeout on a real model (a CNN): DEADLINE, and the session goes on working. */
  @Test
  void microsecondTimeoutOnACnn() {
    try (ResourceScope scope = ResourceScope.open()) {
      Session s = Model.load(TestSupport.model("cnn_tiny.onnx")).newSession();
      Tensor x = Tensor.readNpy(TestSupport.model("cnn_tiny.input.npy"));
      Tensor expected = Tensor.readNpy(TestSupport.model("cnn_tiny.expected.npy"));
      for (int i = 0; i < 3; i++) { // planning and planned
        StrandException e = assertStopped(Status.DEADLINE,
            () -> s.run("input", x, RunOptions.timeout(Duration.ofNanos(1000))));
        assertTrue(e.strandMessage().matches("node .*: deadline passed [0-9.]+ ms before this node ran"),
            e.getMessage());
      }
      try (Result r = s.run("input", x, RunOptions.timeout(Duration.ofSeconds(60)))) {
        SessionTest.assertClose(expected.toFloatArray(), r.get(0).toFloatArray(), 1e-4, 1e-5);
      }
      assertEquals(3, s.stats().runsCanceled());
    }
  }

  @Test
  void optionsAreChecked() {
    assertThrows(IllegalArgumentException.class, () -> RunOptions.timeout(Duration.ZERO));
    assertThrows(IllegalArgumentException.class, () -> RunOptions.timeout(Duration.ofMillis(-1)));
    RunOptions o = RunOptions.timeout(Duration.ofMillis(5)).withDeadline(42);
    assertEquals(Duration.ofMillis(5), o.timeout());
    assertTrue(o.hasDeadline());
    assertEquals(42, o.deadlineNanoTime());
    assertNull(o.withTimeout(null).timeout());
    assertFalse(o.withoutDeadline().hasDeadline());
    assertNull(o.cancelToken());
    assertTrue(RunOptions.none().isNone());
    assertEquals("RunOptions[timeout=PT0.005S, deadline=nanoTime 42, cancel=null]", o.toString());
    try (ResourceScope scope = ResourceScope.open()) {
      // null and none() are plain runs
      Session s = chain(2);
      Tensor x = input(1);
      try (Result r = s.run("x", x, null)) {
        assertChainResult(x.toFloatArray(), 2, r);
      }
      try (Result r = s.run(Map.of("x", x), RunOptions.none(), "y")) {
        assertChainResult(x.toFloatArray(), 2, r);
      }
    }
  }

  /** Cancels a run from another thread a quarter of a run's time after it starts. */
  private static final class Canceler implements AutoCloseable {
    private final ExecutorService thread = Executors.newSingleThreadExecutor();

    Future<?> cancelAfter(CancelToken token, long nanos, CountDownLatch go, boolean close) {
      return thread.submit(() -> {
        go.await();
        LockSupport.parkNanos(nanos);
        token.cancel();
        if (close) {
          token.close();
        }
        return null;
      });
    }

    @Override
    public void close() throws InterruptedException {
      thread.shutdown();
      assertTrue(thread.awaitTermination(30, TimeUnit.SECONDS));
    }
  }

  /**
   * A run canceled from another thread mid-run: CANCELED naming a node past
   * the first, no output left behind. Runs that finish first (a loaded
   * machine may oversleep) must be right; up to 40 attempts for 3 stops
   * mid-way.
   */
  @Test
  void canceledFromAnotherThreadMidRun() throws Exception {
    try (ResourceScope scope = ResourceScope.open(); Canceler canceler = new Canceler()) {
      Session s = chain(LONG_CHAIN);
      Tensor x = input(ROWS);
      float[] xs = x.toFloatArray();
      long t0 = System.nanoTime();
      try (Result r = s.run("x", x)) { // plans
        assertChainResult(xs, LONG_CHAIN, r);
      }
      long t1 = System.nanoTime();
      try (Result r = s.run("x", x)) {
        assertChainResult(xs, LONG_CHAIN, r);
      }
      long runNanos = Math.max(System.nanoTime() - t1, 1000);
      CancelToken token = CancelToken.create("mid-run");
      long liveBefore = TestSupport.liveObjects();
      long misuseBefore = Strand.misuseCount();
      int canceled = 0;
      int midway = 0;
      for (int attempt = 0; attempt < 40 && midway < 3; attempt++) {
        token.reset();
        CountDownLatch go = new CountDownLatch(1);
        Future<?> cancel = canceler.cancelAfter(token, runNanos / 4, go, false);
        go.countDown();
        try (Result r = s.run("x", x, RunOptions.cancel(token))) {
          assertChainResult(xs, LONG_CHAIN, r);
        } catch (StrandException e) {
          assertEquals(Status.CANCELED, e.status(), e::getMessage);
          assertTrue(e.strandMessage().matches(
              "node \"n\\d+\" \\(Neg\\): canceled by the run's token before this node ran"),
              e.getMessage());
          canceled++;
          if (!e.strandMessage().startsWith("node \"n0\" ")) {
            midway++;
          }
        }
        cancel.get(30, TimeUnit.SECONDS);
        assertEquals(liveBefore, TestSupport.liveObjects(), "a stopped run left objects behind");
      }
      assertTrue(midway > 0, "no run was stopped mid-way; a run takes " + runNanos + " ns, planning "
          + (t1 - t0) + " ns");
      assertEquals(canceled, s.stats().runsCanceled());
      assertEquals(misuseBefore, Strand.misuseCount());
    }
  }

  /**
   * Closing the token while a run watches it is safe: the run holds it in
   * flight; the native token goes when the run returns.
   */
  @Test
  void tokenClosedWhileARunWatchesIt() throws Exception {
    try (ResourceScope scope = ResourceScope.open(); Canceler canceler = new Canceler()) {
      Session s = chain(LONG_CHAIN);
      Tensor x = input(ROWS);
      float[] xs = x.toFloatArray();
      s.run("x", x).close();
      long t1 = System.nanoTime();
      s.run("x", x).close();
      long runNanos = Math.max(System.nanoTime() - t1, 1000);
      ExecutorService runner = Executors.newSingleThreadExecutor();
      try {
        for (int attempt = 0; attempt < 10; attempt++) {
          // Closed only: the run goes on and finishes.
          CancelToken token = CancelToken.create();
          CountDownLatch started = new CountDownLatch(1);
          Future<float[]> run = runner.submit(() -> {
            started.countDown();
            try (Result r = s.run("x", x, RunOptions.cancel(token))) {
              return r.get("y").toFloatArray();
            }
          });
          started.await();
          LockSupport.parkNanos(runNanos / 4);
          token.close();
          try {
            assertArrayEquals(xs, run.get(60, TimeUnit.SECONDS)); // an even chain: y = x
          } catch (ExecutionException e) {
            // The close came before the run took the token in flight.
            assertEquals(token + " is closed", e.getCause().getMessage());
          }
          assertTrue(token.isClosed());
          // Canceled and closed from the other thread mid-run.
          CancelToken second = CancelToken.create();
          CountDownLatch go = new CountDownLatch(1);
          Future<?> cancel = canceler.cancelAfter(second, runNanos / 4, go, true);
          go.countDown();
          try (Result r = s.run("x", x, RunOptions.cancel(second))) {
            assertChainResult(xs, LONG_CHAIN, r);
          } catch (StrandException e) {
            assertEquals(Status.CANCELED, e.status());
          } catch (IllegalStateException e) {
            assertTrue(e.getMessage().endsWith("is closed"), e.getMessage());
          }
          cancel.get(30, TimeUnit.SECONDS);
          assertEquals(0, Strand.memoryStats().liveObjects(ObjectKind.CANCEL_TOKEN));
        }
      } finally {
        runner.shutdown();
        assertTrue(runner.awaitTermination(30, TimeUnit.SECONDS));
      }
    }
  }

  /** Many threads run one session with tokens of their own while another cancels them. */
  @Test
  void threadsCancelEachOther() throws Exception {
    int threads = 8;
    try (ResourceScope scope = ResourceScope.open()) {
      Session s = chain(500);
      Tensor x = input(2);
      float[] xs = x.toFloatArray();
      CancelToken[] tokens = new CancelToken[threads];
      for (int i = 0; i < threads; i++) {
        tokens[i] = CancelToken.create("t" + i);
      }
      ExecutorService pool = Executors.newFixedThreadPool(threads + 1);
      try {
        CountDownLatch done = new CountDownLatch(threads);
        Future<?> canceler = pool.submit(() -> {
          while (done.getCount() > 0) {
            for (CancelToken t : tokens) {
              t.cancel();
              LockSupport.parkNanos(50_000);
            }
          }
          return null;
        });
        Future<?>[] runners = new Future<?>[threads];
        int[] stopped = new int[threads];
        for (int i = 0; i < threads; i++) {
          int me = i;
          runners[i] = pool.submit(() -> {
            try {
              for (int round = 0; round < 10; round++) {
                tokens[me].reset();
                RunOptions o = RunOptions.cancel(tokens[me]);
                if (round % 3 == 0) {
                  o = o.withTimeout(Duration.ofNanos(200_000));
                }
                try (Result r = s.run("x", x, o)) {
                  assertChainResult(xs, 500, r);
                } catch (StrandException e) {
                  assertTrue(e.status() == Status.CANCELED || e.status() == Status.DEADLINE,
                      e::getMessage);
                  stopped[me]++;
                }
              }
            } finally {
              done.countDown();
            }
            return null;
          });
        }
        int total = 0;
        for (int i = 0; i < threads; i++) {
          runners[i].get(120, TimeUnit.SECONDS);
          total += stopped[i];
        }
        canceler.get(30, TimeUnit.SECONDS);
        Session.Stats stats = s.stats();
        assertEquals(threads * 10, stats.runs() + stats.runsCanceled(), stats::toString);
        assertEquals(total, stats.runsCanceled(), stats::toString);
        assertTrue(total > 0, "no run was stopped: " + stats);
        assertEquals(0, stats.runsFailed(), stats::toString);
      } finally {
        pool.shutdown();
        assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
      }
    }
  }
}
