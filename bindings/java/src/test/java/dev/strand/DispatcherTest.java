package dev.strand;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class DispatcherTest {
  @Test
  void runsOnItsOwnNamedThread() throws Exception {
    try (Dispatcher d = Dispatcher.create("strand-test-d")) {
      Thread caller = Thread.currentThread();
      Thread ran = d.run(Thread::currentThread);
      assertNotSame(caller, ran);
      assertEquals("strand-test-d", ran.getName());
      assertTrue(ran.isDaemon());
      assertSame(ran, d.run(Thread::currentThread), "always the same thread");
      assertFalse(d.isCurrentThread());
      assertTrue(d.run(d::isCurrentThread));
      assertEquals(42, (int) d.run(() -> 42));
    }
  }

  @Test
  void nestedRunsAreInline() throws Exception {
    try (Dispatcher d = Dispatcher.create("strand-nest")) {
      String result = d.run(() -> {
        Thread outer = Thread.currentThread();
        return d.run(() -> d.run(() -> Thread.currentThread() == outer ? "inline" : "queued"));
      });
      assertEquals("inline", result);
    }
  }

  @Test
  void callersBlockAndTasksRunOneAtATime() throws Exception {
    try (Dispatcher d = Dispatcher.create("strand-serial", 4)) {
      int[] counter = {0}; // deliberately unsynchronized: only the dispatcher touches it
      ExecutorService pool = Executors.newFixedThreadPool(8);
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < 8; t++) {
        futures.add(pool.submit(() -> {
          for (int i = 0; i < 250; i++) {
            d.run(() -> {
              int c = counter[0];
              Thread.onSpinWait();
              counter[0] = c + 1;
            });
          }
          return null;
        }));
      }
      for (Future<?> f : futures) {
        f.get(60, TimeUnit.SECONDS);
      }
      pool.shutdown();
      assertEquals(2000, (int) d.run(() -> counter[0]));
      Dispatcher.Stats stats = d.stats();
      assertTrue(stats.runs() >= 2001, stats.toString());
      assertTrue(stats.queueDepthPeak() <= 4, stats.toString());
      assertEquals(stats.runs() + stats.postsRun(), stats.runTime().count(), stats.toString());
    }
  }

  @Test
  void theTasksOwnExceptionIsRethrown() throws Exception {
    try (Dispatcher d = Dispatcher.create("strand-throw")) {
      IOException checked = new IOException("disk on fire");
      IOException got = assertThrows(IOException.class, () -> d.run(() -> {
        throw checked;
      }));
      assertSame(checked, got);
      IllegalArgumentException runtime = assertThrows(IllegalArgumentException.class,
          () -> d.run(() -> {
            throw new IllegalArgumentException("bad");
          }));
      assertEquals("bad", runtime.getMessage());
      StackOverflowError error = assertThrows(StackOverflowError.class, () -> d.run(() -> {
        throw new StackOverflowError("deep");
      }));
      assertEquals("deep", error.getMessage());
      // Inline runs rethrow too, and the dispatcher keeps working.
      assertThrows(IOException.class, () -> d.run(() -> d.run(() -> {
        throw new IOException("inner");
      })));
      assertEquals("still fine", d.run(() -> "still fine"));
    }
  }

  @Test
  void stoppedDispatcherRefusesWork() throws Exception {
    try (Dispatcher d = Dispatcher.create("strand-stop")) {
      d.run(() -> 1);
      d.stop(false);
      StrandException e = assertThrows(StrandException.class, () -> d.run(() -> 1));
      assertEquals(Status.CANCELED, e.status());
      assertFalse(e.strandMessage().isEmpty(), e.getMessage());
    }
  }

  @Test
  void closeWhileTasksAreQueued() throws Exception {
    Dispatcher d = Dispatcher.create("strand-close");
    ExecutorService pool = Executors.newFixedThreadPool(4);
    List<Future<Integer>> futures = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      int k = i;
      futures.add(pool.submit(() -> d.run(() -> {
        Thread.sleep(20);
        return k;
      })));
    }
    Thread.sleep(5);
    d.close(); // from another thread than the callers, while they wait
    for (int i = 0; i < 4; i++) {
      try {
        assertEquals(i, futures.get(i).get(30, TimeUnit.SECONDS));
      } catch (java.util.concurrent.ExecutionException e) {
        assertTrue(e.getCause() instanceof IllegalStateException, e.toString());
      }
    }
    pool.shutdown();
    assertThrows(IllegalStateException.class, () -> d.run(() -> 1));
    assertEquals("Dispatcher[strand-close] is closed",
        assertThrows(IllegalStateException.class, d::stats).getMessage());
  }

  @Test
  void closedFromItsOwnThread() throws Exception {
    Dispatcher d = Dispatcher.create("strand-self");
    d.run(() -> {
      d.close();
      return null;
    });
    assertTrue(d.isClosed());
  }
}
