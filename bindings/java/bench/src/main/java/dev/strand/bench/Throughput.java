package dev.strand.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.strand.Model;
import dev.strand.Result;
import dev.strand.Session;
import dev.strand.SessionOptions;
import dev.strand.Tensor;
import dev.strand.ValueInfo;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;

/**
 * Session.run throughput from Java: strand's binding or ONNX Runtime's Java
 * API, on one shared session with one intra-op thread, from T application
 * threads. Each prediction is what a service does per request at batch 1: a
 * tensor made from a float[], run, the first output copied to a float[],
 * everything closed. Both engines get the same input, and the outputs of the
 * first prediction are printed so that run.sh can check the two agree.
 *
 * <pre>  java -cp ... dev.strand.bench.Throughput strand|ort MODEL THREADS WARMUP_S MEASURE_S</pre>
 *
 * Last line: {@code throughput: engine=E model=M threads=T runs=N seconds=S per_second=X
 * first=[...]}.
 */
public final class Throughput {
  private Throughput() {}

  /** One engine's prediction; implementations are used from many threads at once. */
  interface Engine extends AutoCloseable {
    /** Predicts `input` and copies the first output into `output`. */
    void predict(float[] input, float[] output) throws Exception;

    @Override
    void close() throws Exception;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println("usage: Throughput strand|ort MODEL THREADS WARMUP_S MEASURE_S");
      System.exit(2);
    }
    String engineName = args[0];
    Path model = Path.of(args[1]);
    int threads = Integer.parseInt(args[2]);
    double warmup = Double.parseDouble(args[3]);
    double measure = Double.parseDouble(args[4]);

    long[] inShape;
    int outElements;
    String inName;
    try (Model m = Model.load(model)) { // the shapes, from strand's reading of the model
      ValueInfo in = m.inputs().get(0);
      inName = in.name();
      inShape = batchOne(in.shape());
      outElements = (int) elements(batchOne(m.outputs().get(0).shape()));
    }
    float[] input = new float[(int) elements(inShape)];
    for (int i = 0; i < input.length; i++) {
      input[i] = (i % 7) * 0.25f - 0.5f;
    }

    try (Engine engine = engineName.equals("strand") ? strand(model, inName, inShape)
        : engineName.equals("ort") ? ort(model, inName, inShape) : null) {
      if (engine == null) {
        throw new IllegalArgumentException("engine must be strand or ort, not " + engineName);
      }
      float[] first = new float[outElements];
      engine.predict(input, first);

      LongAdder runs = new LongAdder();
      AtomicBoolean stop = new AtomicBoolean();
      AtomicReference<Throwable> failure = new AtomicReference<>();
      List<Thread> workers = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        Thread w = new Thread(() -> {
          float[] out = new float[outElements];
          try {
            while (!stop.get()) {
              engine.predict(input, out);
              runs.increment();
            }
          } catch (Throwable e) {
            failure.compareAndSet(null, e);
            stop.set(true);
          }
        }, "bench-" + t);
        w.start();
        workers.add(w);
      }
      Thread.sleep((long) (warmup * 1000));
      long before = runs.sum();
      long start = System.nanoTime();
      Thread.sleep((long) (measure * 1000));
      long after = runs.sum();
      double seconds = (System.nanoTime() - start) / 1e9;
      stop.set(true);
      for (Thread w : workers) {
        w.join();
      }
      if (failure.get() != null) {
        throw new RuntimeException("a prediction failed", failure.get());
      }
      long n = after - before;
      StringBuilder head = new StringBuilder("[");
      for (int i = 0; i < Math.min(4, first.length); i++) {
        head.append(i == 0 ? "" : ",").append(String.format("%.5f", first[i]));
      }
      System.out.printf("throughput: engine=%s model=%s threads=%d runs=%d seconds=%.2f per_second=%.1f"
          + " first=%s]%n", engineName, model.getFileName(), threads, n, seconds, n / seconds, head);
    }
  }

  private static Engine strand(Path path, String inName, long[] shape) {
    Session session;
    try (Model model = Model.load(path)) {
      session = Session.create(model, SessionOptions.defaults().withIntraOpThreads(1));
    }
    return new Engine() {
      @Override
      public void predict(float[] input, float[] output) {
        try (Tensor x = Tensor.of(input, shape); Result r = session.run(inName, x)) {
          r.get(0).copyTo(output);
        }
      }

      @Override
      public void close() {
        session.close();
      }
    };
  }

  private static Engine ort(Path path, String inName, long[] shape) throws OrtException {
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    options.setIntraOpNumThreads(1);
    options.setInterOpNumThreads(1);
    options.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
    options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
    OrtSession session = env.createSession(path.toString(), options);
    return new Engine() {
      @Override
      public void predict(float[] input, float[] output) throws OrtException {
        try (OnnxTensor x = OnnxTensor.createTensor(env, FloatBuffer.wrap(input), shape);
            OrtSession.Result r = session.run(Map.of(inName, x))) {
          ((OnnxTensor) r.get(0)).getFloatBuffer().get(output);
        }
      }

      @Override
      public void close() throws OrtException {
        session.close();
        options.close();
      }
    };
  }

  private static long[] batchOne(long[] shape) {
    long[] s = shape.clone();
    for (int i = 0; i < s.length; i++) {
      s[i] = s[i] < 0 ? 1 : s[i];
    }
    return s;
  }

  private static long elements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }
}
