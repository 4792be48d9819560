package dev.strand;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;

/**
 * Runs a model. Any number of threads may call {@link #run} on one session
 * at once; each run has its own working memory. {@link #close()} while runs
 * are in progress is safe: the native session goes when the last one returns.
 *
 * <p>Thread safety: any (see {@link StrandObject}).
 */
public final class Session extends StrandObject {
  private final List<ValueInfo> inputs;
  private final List<ValueInfo> outputs;
  private final Map<String, Integer> inputIndex;
  private final Map<String, Integer> outputIndex;
  private final String[] outputNames;

  private Session(long address, String description, List<ValueInfo> inputs,
      List<ValueInfo> outputs, Leaks.Site site) {
    super(ObjectKind.SESSION, address, description, site, 0, true);
    this.inputs = inputs;
    this.outputs = outputs;
    inputIndex = index(inputs);
    outputIndex = index(outputs);
    outputNames = outputs.stream().map(ValueInfo::name).toArray(String[]::new);
  }

  /** A session for {@code model}; the model may be closed afterwards. */
  public static Session create(Model model) {
    return create(model, SessionOptions.defaults());
  }

  /**
   * A session for {@code model}. Every node gets its kernel now, so a model
   * strand cannot run fails here (UNSUPPORTED, naming the node), never in
   * the middle of a run.
   */
  public static Session create(Model model, SessionOptions options) {
    Objects.requireNonNull(options, "options");
    List<ValueInfo> in = model.inputs();
    List<ValueInfo> out = model.outputs();
    long m = model.acquire();
    try {
      Leaks.Site site = Leaks.capture();
      long address = Memory.allocate(site, () -> Native.sessionCreate(m, options.intraOpThreads()));
      return new Session(address, "Session[" + model + "]", in, out, site);
    } finally {
      model.release();
    }
  }

  public List<ValueInfo> inputs() {
    return inputs;
  }

  /** The model this session runs, as a new handle that the caller closes. */
  public Model model() {
    long address = acquire();
    try {
      long model = Native.sessionModel(address);
      return Model.adopt(model, "Model[of " + this + "]", Leaks.capture());
    } finally {
      release();
    }
  }

  public List<ValueInfo> outputs() {
    return outputs;
  }

  /** Runs the model on one input and returns every output. */
  public Result run(String inputName, Tensor input) {
    Integer index = inputIndex.get(inputName);
    if (index == null || inputs.size() != 1) {
      return run(Map.of(inputName, input)); // the general path names what is wrong
    }
    return run1(index, Objects.requireNonNull(input, () -> "input \"" + inputName + "\" is null"));
  }

  /** Runs the model and returns every output, in the model's order. */
  public Result run(Map<String, Tensor> inputs) {
    if (inputs.size() == 1 && this.inputs.size() == 1) {
      Map.Entry<String, Tensor> e = inputs.entrySet().iterator().next();
      Integer index = inputIndex.get(e.getKey());
      Tensor t = e.getValue();
      if (index != null && t != null) {
        return run1(index, t);
      }
    }
    return run(inputs, null, outputNames);
  }

  /** Runs the model and returns the outputs named, in that order; others are not computed. */
  public Result run(Map<String, Tensor> inputs, String... outputs) {
    return run(inputs, List.of(outputs));
  }

  /** Runs the model and returns the outputs named, in that order; others are not computed. */
  public Result run(Map<String, Tensor> inputs, List<String> outputs) {
    int[] indices = new int[outputs.size()];
    String[] names = new String[indices.length];
    for (int i = 0; i < indices.length; i++) {
      names[i] = outputs.get(i);
      Integer index = outputIndex.get(names[i]);
      if (index == null) {
        throw new StrandException(Status.NOT_FOUND, "output \"" + names[i] + "\": " + this
            + " has no such output (outputs: " + String.join(", ", outputNames) + ")");
      }
      indices[i] = index;
    }
    return run(inputs, indices, names);
  }

  /** {@link #run(Map)} on {@code executor}; the future completes with the result or the failure. */
  public CompletableFuture<Result> runAsync(Map<String, Tensor> inputs, Executor executor) {
    return CompletableFuture.supplyAsync(() -> run(inputs), executor);
  }

  /**
   * The run itself. Every input tensor and the session are marked in flight
   * for the duration, so that a concurrent close() of any of them waits for
   * the run instead of freeing what it uses.
   */
  private Result run(Map<String, Tensor> inputs, int[] outputIndices, String[] names) {
    int n = inputs.size();
    int[] indices = new int[n];
    long[] handles = new long[n];
    Tensor[] held = new Tensor[n];
    int acquired = 0;
    long session = acquire();
    try {
      for (Map.Entry<String, Tensor> e : inputs.entrySet()) {
        Integer index = inputIndex.get(e.getKey());
        if (index == null) {
          throw new StrandException(Status.NOT_FOUND, "input \"" + e.getKey() + "\": " + this
              + " has no such input (inputs: " + String.join(", ", inputIndex.keySet()) + ")");
        }
        Tensor t = Objects.requireNonNull(e.getValue(), () -> "input \"" + e.getKey() + "\" is null");
        handles[acquired] = t.acquire();
        held[acquired] = t;
        indices[acquired] = index;
        acquired++;
      }
      Leaks.Site site = Leaks.capture();
      long[] out = new long[names.length * Native.OUT_INFO];
      int length = (int) Memory.allocate(site,
          () -> Native.sessionRun(session, indices, handles, outputIndices, out));
      return Result.adopt(names, out, length, site);
    } finally {
      for (int i = 0; i < acquired; i++) {
        held[i].release();
      }
      release();
    }
  }

  /**
   * The run of a one-input model with every output: the common case, with
   * nothing to look up or copy on the way in. The session and the input
   * are in flight for the duration, as in {@link #run(Map, int[], String[])}.
   */
  private Result run1(int index, Tensor input) {
    long session = acquire();
    try {
      long x = input.acquire();
      try {
        Leaks.Site site = Leaks.capture();
        long[] out = new long[outputNames.length * Native.OUT_INFO];
        int length = (int) Memory.allocate(site, () -> Native.sessionRun1(session, index, x, out));
        return Result.adopt(outputNames, out, length, site);
      } finally {
        input.release();
      }
    } finally {
      release();
    }
  }

  /** The session's counters since creation. */
  public Stats stats() {
    long address = acquire();
    try {
      long[] s = Native.sessionStats(address);
      return new Stats(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
    } finally {
      release();
    }
  }

  /**
   * A session's counters since creation (strand_session_stats).
   *
   * @param runs runs that succeeded
   * @param runsFailed runs that failed after starting
   * @param planningRuns runs that planned (the rest reused a cached plan)
   * @param plansCached plans cached now
   * @param plansEvicted plans dropped to make room
   * @param arenas arenas in the pool: the most runs at once so far
   * @param arenaBytes bytes of all arenas
   * @param weightBytes bytes of repacked weights and kernel parameters
   */
  public record Stats(long runs, long runsFailed, long planningRuns, long plansCached,
      long plansEvicted, long arenas, long arenaBytes, long weightBytes) {}

  private static Map<String, Integer> index(List<ValueInfo> values) {
    Map<String, Integer> map = new HashMap<>();
    for (int i = 0; i < values.size(); i++) {
      map.put(values.get(i).name(), i);
    }
    return map;
  }
}
