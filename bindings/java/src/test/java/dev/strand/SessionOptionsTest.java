package dev.strand;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** SessionOptions that reach the native session: dynamic batching and a dispatcher. */
@SuppressWarnings("try") // scopes are opened for what they close
class SessionOptionsTest {
  private static final int THREADS = 8;
  private static final int REQUESTS = 40;
  private static final int MAX_ROWS = 8;

  @BeforeEach
  void needsSessions() {
    assumeTrue(TestSupport.sessionsWork(), "the native library cannot run sessions yet");
  }

  @Test
  void optionsAreCheckedAndKept() {
    SessionOptions d = SessionOptions.defaults();
    assertEquals(0, d.intraOpThreads());
    assertEquals(0, d.batchMaxRows());
    assertEquals(0, d.batchDelayMicros());
    assertNull(d.dispatcher());
    SessionOptions o = d.withIntraOpThreads(2).withBatching(32, Duration.ofNanos(200_001));
    assertEquals(2, o.intraOpThreads());
    assertEquals(32, o.batchMaxRows());
    assertEquals(201, o.batchDelayMicros(), "a part of a microsecond counts as one");
    assertEquals(1, d.withBatching(4, Duration.ofNanos(1)).batchDelayMicros());
    assertEquals(0, d.withBatching(4, Duration.ZERO).batchDelayMicros());
    assertEquals(0xFFFF_FFFFL, d.withBatchDelayMicros(0xFFFF_FFFFL).batchDelayMicros());
    assertThrows(IllegalArgumentException.class, () -> d.withBatchMaxRows(-1));
    assertThrows(IllegalArgumentException.class, () -> d.withBatchDelayMicros(-1));
    assertThrows(IllegalArgumentException.class, () -> d.withBatchDelayMicros(1L << 32));
    assertThrows(IllegalArgumentException.class, () -> d.withBatching(4, Duration.ofSeconds(5000)));
    assertThrows(IllegalArgumentException.class, () -> d.withBatching(4, Duration.ofSeconds(-1)));
    assertEquals("SessionOptions[intraOpThreads=2, batchMaxRows=32, batchDelayMicros=201, "
        + "dispatcher=null, sliceRows=0]", o.toString());
    assertEquals(0, d.sliceRows());
    assertEquals(3, d.withSliceRows(3).sliceRows());
    assertEquals(SessionOptions.SLICE_OFF, d.withSliceRows(SessionOptions.SLICE_OFF).sliceRows());
    assertThrows(IllegalArgumentException.class, () -> d.withSliceRows(-2));
  }

  /**
   * Slices of one row on two threads give the bits of a session that never
   * slices, and the statistics show the runs made as slices (only the
   * native session's slicing counts them); SLICE_OFF never slices.
   */
  @Test
  void slicedRunsGiveWholeBits() {
    try (ResourceScope scope = ResourceScope.open()) {
      Model model = Model.load(TestSupport.model("mlp_tiny.onnx"));
      Session whole = model.newSession(SessionOptions.defaults()
          .withSliceRows(SessionOptions.SLICE_OFF));
      Session sliced = model.newSession(SessionOptions.defaults()
          .withIntraOpThreads(2).withSliceRows(1));
      float[] input = requestInput(6, 42);
      int[] expected;
      try (Tensor x = Tensor.of(input, 6, 16); Result r = whole.run("input", x)) {
        expected = bits(r.get("output").toFloatArray());
      }
      for (int run = 0; run < 3; run++) {
        try (Tensor x = Tensor.of(input, 6, 16); Result r = sliced.run("input", x)) {
          assertArrayEquals(expected, bits(r.get("output").toFloatArray()), "run " + run);
        }
      }
      Session.Stats stats = sliced.stats();
      assertEquals(2, stats.slicedRuns(), "the first run plans whole; the next two slice");
      assertEquals(12, stats.slices());
      assertEquals(0, whole.stats().slicedRuns());
    }
  }

  /** A request's input: rows of 16 values from a seed, never 0. */
  private static float[] requestInput(int rows, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    float[] x = new float[rows * 16];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (random.nextDouble(-2, 2));
    }
    return x;
  }

  /** Request (t, i): 1-3 rows, every 7th more rows than a batch may hold. */
  private static int requestRows(int t, int i) {
    return i % 7 == 6 ? MAX_ROWS + 1 : 1 + (t + i) % 3;
  }

  private static int[] bits(float[] values) {
    int[] out = new int[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = Float.floatToRawIntBits(values[i]);
    }
    return out;
  }

  /**
   * Eight threads at once on a batching session: each run's outputs are bit
   * for bit those of an unbatched session, and the statistics show runs
   * stacked (fewer batches than batched runs), which only the native
   * session's batcher can produce.
   */
  @Test
  void batchedRunsGiveUnbatchedBits() throws Exception {
    try (ResourceScope scope = ResourceScope.open()) {
      Model model = Model.load(TestSupport.model("mlp_tiny.onnx"));
      Session plain = model.newSession();
      Session batched = model.newSession(SessionOptions.defaults()
          .withBatching(MAX_ROWS, Duration.ofMillis(2)));
      float[][][] inputs = new float[THREADS][REQUESTS][];
      int[][][] expected = new int[THREADS][REQUESTS][];
      long eligible = 0;
      long eligibleRows = 0;
      for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < REQUESTS; i++) {
          int rows = requestRows(t, i);
          inputs[t][i] = requestInput(rows, t * 1000L + i);
          try (Tensor x = Tensor.of(inputs[t][i], rows, 16); Result r = plain.run("input", x)) {
            expected[t][i] = bits(r.get("output").toFloatArray());
          }
          if (rows <= MAX_ROWS) {
            eligible++;
            eligibleRows += rows;
          }
        }
      }
      ExecutorService pool = Executors.newFixedThreadPool(THREADS);
      CyclicBarrier start = new CyclicBarrier(THREADS);
      List<Future<Integer>> futures = new ArrayList<>();
      try {
        for (int t = 0; t < THREADS; t++) {
          int me = t;
          futures.add(pool.submit(() -> {
            start.await();
            int mismatches = 0;
            for (int i = 0; i < REQUESTS; i++) {
              int rows = requestRows(me, i);
              try (Tensor x = Tensor.of(inputs[me][i], rows, 16);
                  Result r = batched.run("input", x)) {
                if (!java.util.Arrays.equals(expected[me][i], bits(r.get("output").toFloatArray()))) {
                  mismatches++;
                }
              }
            }
            return mismatches;
          }));
        }
        for (Future<Integer> f : futures) {
          assertEquals(0, f.get(120, TimeUnit.SECONDS), "outputs that differ from unbatched ones");
        }
      } finally {
        pool.shutdown();
        assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
      }
      Session.Stats st = batched.stats();
      System.err.printf("    batching: %d runs in %d batches (mean %.2f), mean wait %.1f us%n",
          st.batchedRuns(), st.batches(), st.meanBatchRuns(), st.meanBatchWaitNanos() / 1e3);
      assertEquals(THREADS * REQUESTS, st.runs(), st::toString);
      assertEquals(eligible, st.batchedRuns(), st::toString);
      assertEquals(eligibleRows, st.batchedRows(), st::toString);
      assertTrue(st.batches() > 0 && st.batches() < st.batchedRuns(), "no runs were stacked: " + st);
      assertTrue(st.batchWaitNanos() > 0, st::toString);
      Session.Stats p = plain.stats();
      assertEquals(0, p.batches(), p::toString);
      assertEquals(0, p.batchedRuns(), p::toString);
    }
  }

  /**
   * A run waiting for company stops waiting at once when its token is
   * canceled or its deadline passes (the session waits up to 2 s for
   * company, the run far less), and the session serves the next run.
   */
  @Test
  void waitingToBeBatchedStopsOnCancelAndDeadline() throws Exception {
    try (ResourceScope scope = ResourceScope.open()) {
      Session s = Model.load(TestSupport.model("mlp_tiny.onnx"))
          .newSession(SessionOptions.defaults().withBatching(4, Duration.ofSeconds(2)));
      Tensor x = Tensor.zeros(DType.FLOAT32, 1, 16);
      long t0 = System.nanoTime();
      StrandException e = assertThrows(StrandException.class,
          () -> s.run("input", x, RunOptions.timeout(Duration.ofMillis(20))));
      long waited = System.nanoTime() - t0;
      assertEquals(Status.DEADLINE, e.status(), e::getMessage);
      assertTrue(e.strandMessage().startsWith(
          "strand_session_run: deadline passed while waiting to be batched"), e.getMessage());
      assertTrue(waited < 1_500_000_000L, "waited " + waited / 1e6 + " ms");

      CancelToken token = CancelToken.create();
      ExecutorService canceler = Executors.newSingleThreadExecutor();
      try {
        Future<?> cancel = canceler.submit(() -> {
          Thread.sleep(20);
          token.cancel();
          return null;
        });
        long t1 = System.nanoTime();
        e = assertThrows(StrandException.class, () -> s.run("input", x, RunOptions.cancel(token)));
        waited = System.nanoTime() - t1;
        cancel.get(30, TimeUnit.SECONDS);
        assertEquals(Status.CANCELED, e.status(), e::getMessage);
        assertTrue(e.strandMessage().startsWith(
            "strand_session_run: canceled by the run's token while waiting to be batched"),
            e.getMessage());
        assertTrue(waited < 1_500_000_000L, "waited " + waited / 1e6 + " ms");
      } finally {
        canceler.shutdown();
        assertTrue(canceler.awaitTermination(30, TimeUnit.SECONDS));
      }
      Session.Stats st = s.stats();
      assertEquals(2, st.runsCanceled(), st::toString);
      assertEquals(0, st.runs(), st::toString);
    }
  }

  /**
   * A bound session runs on the dispatcher's thread: the dispatcher counts
   * every run, a run waits while the dispatcher's thread is busy with
   * something else, a run made on that thread runs inline, and a stopped
   * dispatcher refuses runs. Outputs are the unbound session's, bit for bit.
   */
  @Test
  void boundSessionRunsOnTheDispatcherThread() throws Exception {
    try (ResourceScope scope = ResourceScope.open()) {
      Model model = Model.load(TestSupport.model("mlp_tiny.onnx"));
      Dispatcher d = Dispatcher.create("strand-bound");
      SessionOptions options = SessionOptions.defaults().withDispatcher(d);
      assertSame(d, options.dispatcher());
      Session bound = model.newSession(options);
      Session plain = model.newSession();
      Tensor x = Tensor.readNpy(TestSupport.model("mlp_tiny.input.npy"));
      int[] want;
      try (Result r = plain.run("input", x)) {
        want = bits(r.get(0).toFloatArray());
      }
      d.run(() -> null); // the dispatcher's thread is known to the Java side from here on
      Dispatcher.Stats before = d.stats();
      for (int i = 0; i < 3; i++) {
        try (Result r = bound.run("input", x)) {
          assertArrayEquals(want, bits(r.get(0).toFloatArray()));
        }
      }
      Dispatcher.Stats after = d.stats();
      assertEquals(before.runs() + 3, after.runs(), after::toString);
      assertEquals(before.runsInline(), after.runsInline(), after::toString);

      // While the dispatcher's thread is busy, a run of the bound session waits for it.
      ExecutorService pool = Executors.newFixedThreadPool(2);
      try {
        CountDownLatch busy = new CountDownLatch(1);
        CountDownLatch free = new CountDownLatch(1);
        Future<?> blocker = pool.submit(() -> d.run(() -> {
          busy.countDown();
          free.await();
          return null;
        }));
        assertTrue(busy.await(30, TimeUnit.SECONDS));
        Future<int[]> waiting = pool.submit(() -> {
          try (Result r = bound.run("input", x)) {
            return bits(r.get(0).toFloatArray());
          }
        });
        assertThrows(TimeoutException.class, () -> waiting.get(200, TimeUnit.MILLISECONDS),
            "the bound run did not wait for the dispatcher's thread");
        try (Result r = plain.run("input", x)) { // an unbound session does not wait
          assertArrayEquals(want, bits(r.get(0).toFloatArray()));
        }
        free.countDown();
        blocker.get(30, TimeUnit.SECONDS);
        assertArrayEquals(want, waiting.get(30, TimeUnit.SECONDS));
      } finally {
        pool.shutdown();
        assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
      }

      // On the dispatcher's thread itself: inline, no deadlock.
      long inline = d.stats().runsInline();
      int[] onThread = d.run(() -> {
        assertTrue(d.isCurrentThread());
        try (Result r = bound.run("input", x)) {
          return bits(r.get(0).toFloatArray());
        }
      });
      assertArrayEquals(want, onThread);
      assertEquals(inline + 1, d.stats().runsInline());

      // The session keeps the native dispatcher: the Java handle may go first.
      d.close();
      try (Result r = bound.run("input", x)) {
        assertArrayEquals(want, bits(r.get(0).toFloatArray()));
      }
    }
  }

  @Test
  void stoppedDispatcherRefusesRunsOfItsSessions() throws Exception {
    try (ResourceScope scope = ResourceScope.open()) {
      Dispatcher d = Dispatcher.create("strand-stopped");
      Session bound = Model.load(TestSupport.model("mlp_tiny.onnx"))
          .newSession(SessionOptions.defaults().withDispatcher(d));
      Tensor x = Tensor.zeros(DType.FLOAT32, 2, 16);
      bound.run("input", x).close();
      // A token's stop and its message cross from the dispatcher's thread.
      CancelToken t = CancelToken.create();
      t.cancel();
      StrandException e = assertThrows(StrandException.class,
          () -> bound.run("input", x, RunOptions.cancel(t)));
      assertEquals(Status.CANCELED, e.status(), e::getMessage);
      assertTrue(e.strandMessage().endsWith("canceled by the run's token before this node ran"),
          e.getMessage());
      d.stop(false);
      e = assertThrows(StrandException.class, () -> bound.run("input", x));
      assertEquals(Status.CANCELED, e.status(), e::getMessage);
      assertTrue(e.strandMessage().contains("dispatcher \"strand-stopped\" is stopped"),
          e.getMessage());
      assertEquals(1, bound.stats().runs());
      assertEquals(1, bound.stats().runsCanceled()); // the token's; the refusal is not a cancel
    }
  }

  @Test
  void closedDispatcherIsRefusedByName() {
    try (ResourceScope scope = ResourceScope.open()) {
      Model model = Model.load(TestSupport.model("mlp_tiny.onnx"));
      Dispatcher d = Dispatcher.create("strand-gone");
      SessionOptions options = SessionOptions.defaults().withDispatcher(d);
      d.close();
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> model.newSession(options));
      assertEquals("Dispatcher[strand-gone] is closed", e.getMessage());
    }
  }

  /** A bound session that batches: runs from many threads are stacked on the dispatcher's thread. */
  @Test
  void boundBatchingSessionGivesUnbatchedBits() throws Exception {
    try (ResourceScope scope = ResourceScope.open()) {
      Model model = Model.load(TestSupport.model("mlp_tiny.onnx"));
      Dispatcher d = Dispatcher.create("strand-bb");
      Session plain = model.newSession();
      Session bound = model.newSession(SessionOptions.defaults().withDispatcher(d)
          .withBatching(MAX_ROWS, Duration.ofMillis(1)));
      float[][] inputs = new float[THREADS][];
      int[][] want = new int[THREADS][];
      for (int t = 0; t < THREADS; t++) {
        inputs[t] = requestInput(1 + t % 3, 77 + t);
        try (Tensor x = Tensor.of(inputs[t], 1 + t % 3, 16); Result r = plain.run("input", x)) {
          want[t] = bits(r.get(0).toFloatArray());
        }
      }
      ExecutorService pool = Executors.newFixedThreadPool(THREADS);
      try {
        List<Future<Boolean>> futures = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
          int me = t;
          futures.add(pool.submit(() -> {
            boolean same = true;
            for (int i = 0; i < 10; i++) {
              try (Tensor x = Tensor.of(inputs[me], 1 + me % 3, 16);
                  Result r = bound.run(Map.of("input", x))) {
                same &= java.util.Arrays.equals(want[me], bits(r.get(0).toFloatArray()));
              }
            }
            return same;
          }));
        }
        for (Future<Boolean> f : futures) {
          assertTrue(f.get(120, TimeUnit.SECONDS));
        }
      } finally {
        pool.shutdown();
        assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
      }
      assertEquals(THREADS * 10, bound.stats().runs());
    }
  }
}
