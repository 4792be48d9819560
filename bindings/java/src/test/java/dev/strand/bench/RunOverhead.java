package dev.strand.bench;

import dev.strand.Model;
import dev.strand.Result;
import dev.strand.Session;
import dev.strand.SessionOptions;
import dev.strand.Tensor;
import dev.strand.ValueInfo;
import com.sun.management.OperatingSystemMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The Java half of the JNI overhead benchmark (native/bench_run.c is the C
 * half): one prediction at batch 1 made the way an application makes it (a
 * tensor from a float[], Session.run with a named input, the output copied
 * to a float[], the result and the input closed), on a session with one
 * intra-op thread, timed over many iterations after a warm-up. A command that
 * prints numbers, not a test:
 *
 * <pre>  java -cp target/classes:target/test-classes dev.strand.bench.RunOverhead MODEL [ITERATIONS] [ROUNDS]</pre>
 *
 * Last line: {@code java: model=... iterations=N best_ns_per_run=X median_ns_per_run=Y
 * median_cpu_ns_per_run=Z}: wall-clock time, and CPU time of the whole process
 * (the garbage collector, the JIT and the cleaner threads included), per run.
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
    try (Model model = Model.load(Path.of(args[0])); Session session = Session.create(model, SessionOptions.defaults().withIntraOpThreads(1))) {
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
      long[] outShape = session.outputs().get(0).shape();
      int outElements = 1;
      for (long d : outShape) {
        outElements *= (int) Math.max(d, 1);
      }
      float[] out = new float[outElements];
      double sink = 0;
      // Warm-up: at least 20000 predictions and two seconds, so that the JIT
      // has compiled the path whatever the model's size.
      long warmUpEnd = System.nanoTime() + 2_000_000_000L;
      for (int i = 0; i < 20_000 || System.nanoTime() < warmUpEnd; i++) {
        sink += once(session, name, host, shape, out);
      }
      OperatingSystemMXBean os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
      double[] perRun = new double[rounds];
      double[] cpuPerRun = new double[rounds];
      for (int r = 0; r < rounds; r++) {
        long start = System.nanoTime();
        long cpuStart = os.getProcessCpuTime();
        for (int i = 0; i < iterations; i++) {
          sink += once(session, name, host, shape, out);
        }
        perRun[r] = (System.nanoTime() - start) / (double) iterations;
        cpuPerRun[r] = (os.getProcessCpuTime() - cpuStart) / (double) iterations;
        System.out.printf("java: round %d: %.1f ns/run, %.1f cpu ns/run%n", r + 1, perRun[r], cpuPerRun[r]);
      }
      Arrays.sort(perRun);
      Arrays.sort(cpuPerRun);
      System.out.printf("java: model=%s iterations=%d best_ns_per_run=%.1f median_ns_per_run=%.1f"
          + " median_cpu_ns_per_run=%.1f%s%n", args[0], iterations, perRun[0], perRun[rounds / 2],
          cpuPerRun[rounds / 2], sink == 42 ? " " : "");
    }
  }

  private static float once(Session session, String name, float[] host, long[] shape, float[] out) {
    try (Tensor x = Tensor.of(host, shape); Result r = session.run(name, x)) {
      r.get(0).copyTo(out);
      return out[0];
    }
  }
}
