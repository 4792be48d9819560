package dev.strand.bench;

import dev.strand.Model;
import dev.strand.Result;
import dev.strand.Session;
import dev.strand.Tensor;
import dev.strand.ValueInfo;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * The Java half of the JNI overhead benchmark (native/bench_run.c is the C
 * half): one prediction at batch 1 made the way an application makes it (a
 * tensor from a float[], Session.run with a named input, the result and the
 * input closed), timed over many iterations after a warm-up. A command that
 * prints numbers, not a test:
 *
 * <pre>  java -cp target/classes:target/test-classes dev.strand.bench.RunOverhead MODEL [ITERATIONS] [ROUNDS]</pre>
 *
 * Last line: {@code java: model=... iterations=N best_ns_per_run=X median_ns_per_run=Y}.
 */
public final class RunOverhead {
  private RunOverhead() {}

  public static void main(String[] args) {
    if (args.length < 1) {
      System.err.println("usage: RunOverhead MODEL [ITERATIONS] [ROUNDS]");
      System.exit(2);
    }
    int iterations = args.length > 1 ? Integer.parseInt(args[1]) : 200_000;
    int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 7;
    try (Model model = Model.load(Path.of(args[0])); Session session = model.newSession()) {
      ValueInfo in = session.inputs().get(0);
      long[] shape = in.shape();
      int elements = 1;
      for (int i = 0; i < shape.length; i++) {
        shape[i] = shape[i] < 0 ? 1 : shape[i];
        elements *= (int) shape[i];
      }
      float[] host = new float[elements];
      for (int i = 0; i < elements; i++) {
        host[i] = (i % 7) * 0.25f - 0.5f;
      }
      String name = in.name();
      double sink = 0;
      // Warm-up: let the JIT compile the path.
      for (int i = 0; i < Math.min(iterations, 50_000); i++) {
        sink += once(session, name, host, shape);
      }
      double[] perRun = new double[rounds];
      for (int r = 0; r < rounds; r++) {
        long start = System.nanoTime();
        for (int i = 0; i < iterations; i++) {
          sink += once(session, name, host, shape);
        }
        perRun[r] = (System.nanoTime() - start) / (double) iterations;
        System.out.printf("java: round %d: %.1f ns/run%n", r + 1, perRun[r]);
      }
      Arrays.sort(perRun);
      System.out.printf("java: model=%s iterations=%d best_ns_per_run=%.1f median_ns_per_run=%.1f%s%n",
          args[0], iterations, perRun[0], perRun[rounds / 2], sink == 42 ? " " : "");
    }
  }

  private static long once(Session session, String name, float[] host, long[] shape) {
    try (Tensor x = Tensor.of(host, shape); Result r = session.run(Map.of(name, x))) {
      return r.get(0).byteSize();
    }
  }
}
