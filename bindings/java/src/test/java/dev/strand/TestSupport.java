package dev.strand;

import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.BooleanSupplier;

/** Paths, and waiting for the garbage collector and the cleaners. */
final class TestSupport {
  private TestSupport() {}

  static Path repo() {
    String root = System.getProperty("strand.repo.root");
    Path p = root != null ? Path.of(root) : Path.of("../..");
    return p.toAbsolutePath().normalize();
  }

  static Path model(String name) {
    Path p = repo().resolve("models").resolve(name);
    if (!Files.exists(p)) {
      fail("missing test model " + p);
    }
    return p;
  }

  /**
   * Collects garbage until {@code done} holds (the cleaners run on their own
   * thread, a little after each collection); fails after {@code seconds}.
   */
  static void collectUntil(String what, double seconds, BooleanSupplier done) {
    long deadline = System.nanoTime() + (long) (seconds * 1e9);
    while (!done.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("timed out waiting for " + what + "; " + Strand.memoryStats());
      }
      System.gc();
      try {
        Thread.sleep(10);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        fail("interrupted");
      }
    }
  }

  static long liveObjects() {
    return Strand.memoryStats().totalLiveObjects();
  }

  /** True when the native library can run sessions (until sessions are
   * implemented, session tests are skipped rather than failed). */
  static boolean sessionsWork() {
    return Capability.SESSIONS;
  }

  private static final class Capability {
    static final boolean SESSIONS = probe();

    private static boolean probe() {
      try (Model m = Model.load(model("mlp_tiny.onnx"));
          Session s = m.newSession();
          Tensor x = Tensor.zeros(DType.FLOAT32, 1, 16);
          Result r = s.run("input", x)) {
        return r.size() == 1;
      } catch (StrandException | UnsatisfiedLinkError e) {
        System.err.println("strand: sessions unavailable, session tests skipped: " + e);
        return false;
      }
    }
  }
}
