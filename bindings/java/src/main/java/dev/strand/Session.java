package dev.strand;

import java.util.ArrayList;
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
 * <p>A run may be given {@link RunOptions}: a timeout, a deadline and a
 * {@link CancelToken}. {@link SessionOptions} may turn on dynamic batching
 * (concurrent small runs stacked into one) and bind the session to a
 * {@link Dispatcher}, whose thread then makes every run.
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
   * the middle of a run. A dispatcher in {@code options} must be open; the
   * session keeps a native reference to it.
   */
  public static Session create(Model model, SessionOptions options) {
    Objects.requireNonNull(options, "options");
    List<ValueInfo> in = model.inputs();
    List<ValueInfo> out = model.outputs();
    Dispatcher dispatcher = options.dispatcher();
    long m = model.acquire();
    try {
      long d = dispatcher == null ? 0 : dispatcher.acquire();
      try {
        Leaks.Site site = Leaks.capture();
        long address = Memory.allocate(site, () -> Native.sessionCreate(m,
            options.intraOpThreads(), options.batchMaxRows(), (int) options.batchDelayMicros(), d,
            options.sliceRows()));
        return new Session(address, "Session[" + model + "]", in, out, site);
      } finally {
        if (dispatcher != null) {
          dispatcher.release();
        }
      }
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
    return run(inputName, input, null);
  }

  /**
   * Runs the model on one input under {@code options} (a timeout, a
   * deadline, a cancel token; null or {@link RunOptions#none()}: a plain
   * run) and returns every output.
   *
   * @throws StrandException CANCELED when the options' token stopped the
   *     run, DEADLINE when its deadline or timeout did, with strand's message
   *     naming the node that was about to run
   * @throws IllegalStateException naming the token when it is closed
   */
  public Result run(String inputName, Tensor input, RunOptions options) {
    Integer index = inputIndex.get(inputName);
    if (index == null || inputs.size() != 1) {
      return run(Map.of(inputName, input), options); // the general path names what is wrong
    }
    return run1(index, Objects.requireNonNull(input, () -> "input \"" + inputName + "\" is null"),
        plainOrNull(options));
  }

  /** Runs the model and returns every output, in the model's order. */
  public Result run(Map<String, Tensor> inputs) {
    return run(inputs, (RunOptions) null);
  }

  /**
   * Runs the model under {@code options} and returns every output, in the
   * model's order; see {@link #run(String, Tensor, RunOptions)}.
   */
  public Result run(Map<String, Tensor> inputs, RunOptions options) {
    RunOptions o = plainOrNull(options);
    if (inputs.size() == 1 && this.inputs.size() == 1) {
      Map.Entry<String, Tensor> e = inputs.entrySet().iterator().next();
      Integer index = inputIndex.get(e.getKey());
      Tensor t = e.getValue();
      if (index != null && t != null) {
        return run1(index, t, o);
      }
    }
    return run(inputs, null, outputNames, o);
  }

  /** Runs the model and returns the outputs named, in that order; others are not computed. */
  public Result run(Map<String, Tensor> inputs, String... outputs) {
    return run(inputs, (RunOptions) null, List.of(outputs));
  }

  /** Runs the model and returns the outputs named, in that order; others are not computed. */
  public Result run(Map<String, Tensor> inputs, List<String> outputs) {
    return run(inputs, (RunOptions) null, outputs);
  }

  /**
   * Runs the model under {@code options} and returns the outputs named, in
   * that order; see {@link #run(String, Tensor, RunOptions)}.
   */
  public Result run(Map<String, Tensor> inputs, RunOptions options, String... outputs) {
    return run(inputs, options, List.of(outputs));
  }

  /**
   * Runs the model under {@code options} and returns the outputs named, in
   * that order; see {@link #run(String, Tensor, RunOptions)}.
   */
  public Result run(Map<String, Tensor> inputs, RunOptions options, List<String> outputs) {
    RunOptions o = plainOrNull(options);
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
    return run(inputs, indices, names, o);
  }

  /** {@link #run(Map)} on {@code executor}; the future completes with the result or the failure. */
  public CompletableFuture<Result> runAsync(Map<String, Tensor> inputs, Executor executor) {
    return CompletableFuture.supplyAsync(() -> run(inputs), executor);
  }

  /**
   * {@link #run(Map, RunOptions)} on {@code executor}. A timeout counts from
   * the moment the run starts on the executor; a deadline is absolute.
   */
  public CompletableFuture<Result> runAsync(Map<String, Tensor> inputs, RunOptions options,
      Executor executor) {
    return CompletableFuture.supplyAsync(() -> run(inputs, options), executor);
  }

  /** Null (the plain path) for null options, which the overloads with
   * options take as "none", or options that ask for nothing. */
  private static RunOptions plainOrNull(RunOptions options) {
    return options == null || options.isNone() ? null : options;
  }

  /**
   * The run itself. The session, every input tensor and the options' token
   * are marked in flight for the duration, so that a concurrent close() of
   * any of them waits for the run instead of freeing what it uses.
   * {@code options} is null for a plain run.
   */
  private Result run(Map<String, Tensor> inputs, int[] outputIndices, String[] names,
      RunOptions options) {
    long start = options == null ? 0 : System.nanoTime();
    int n = inputs.size();
    int[] indices = new int[n];
    long[] handles = new long[n];
    Tensor[] held = new Tensor[n];
    int acquired = 0;
    CancelToken token = options == null ? null : options.cancelToken();
    long session = acquire();
    try {
      long tokenHandle = token == null ? 0 : token.acquire();
      try {
        for (Map.Entry<String, Tensor> e : inputs.entrySet()) {
          Integer index = inputIndex.get(e.getKey());
          if (index == null) {
            throw new StrandException(Status.NOT_FOUND, "input \"" + e.getKey() + "\": " + this
                + " has no such input (inputs: " + String.join(", ", inputIndex.keySet()) + ")");
          }
          Tensor t = Objects.requireNonNull(e.getValue(),
              () -> "input \"" + e.getKey() + "\" is null");
          handles[acquired] = t.acquire();
          held[acquired] = t;
          indices[acquired] = index;
          acquired++;
        }
        Leaks.Site site = Leaks.capture();
        long[] out = new long[names.length * Native.OUT_INFO];
        int length;
        if (options == null) {
          length = (int) Memory.allocate(site,
              () -> Native.sessionRun(session, indices, handles, outputIndices, out));
        } else {
          long left = options.nanosLeftAt(start);
          length = (int) Memory.allocate(site, () -> Native.sessionRunWithOptions(session, indices,
              handles, outputIndices, out, tokenHandle, RunOptions.nanosLeft(left, start)));
        }
        return Result.adopt(names, out, length, site);
      } finally {
        for (int i = 0; i < acquired; i++) {
          held[i].release();
        }
        if (token != null) {
          token.release();
        }
      }
    } finally {
      release();
    }
  }

  /**
   * The run of a one-input model with every output: the common case, with
   * nothing to look up or copy on the way in. The session, the input and
   * the token are in flight for the duration, as in
   * {@link #run(Map, int[], String[], RunOptions)}.
   */
  private Result run1(int index, Tensor input, RunOptions options) {
    long start = options == null ? 0 : System.nanoTime();
    long session = acquire();
    try {
      long x = input.acquire();
      try {
        Leaks.Site site = Leaks.capture();
        long[] out = new long[outputNames.length * Native.OUT_INFO];
        int length;
        if (options == null) {
          length = (int) Memory.allocate(site, () -> Native.sessionRun1(session, index, x, out));
        } else {
          length = run1With(session, index, x, out, options, start, site);
        }
        return Result.adopt(outputNames, out, length, site);
      } finally {
        input.release();
      }
    } finally {
      release();
    }
  }

  /** The native part of run1 with options: holds the token for the call. */
  private static int run1With(long session, int index, long x, long[] out, RunOptions options,
      long start, Leaks.Site site) {
    CancelToken token = options.cancelToken();
    long tokenHandle = token == null ? 0 : token.acquire();
    try {
      long left = options.nanosLeftAt(start);
      return (int) Memory.allocate(site, () -> Native.sessionRun1WithOptions(session, index, x, out,
          tokenHandle, RunOptions.nanosLeft(left, start)));
    } finally {
      if (token != null) {
        token.release();
      }
    }
  }

  /** The session's counters since creation. */
  public Stats stats() {
    long address = acquire();
    try {
      long[] s = Native.sessionStats(address);
      return new Stats(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11],
          s[12], s[13], s[14]);
    } finally {
      release();
    }
  }

  /**
   * Turns per-node timing of this session's runs on or off
   * (strand_session_set_profiling): while on, every kernel call a run makes
   * adds one call and its wall time to that node's figures. Runs from any
   * thread count; off by default. Thread safety: any.
   */
  public void setProfiling(boolean on) {
    long address = acquire();
    try {
      Native.sessionSetProfiling(address, on);
    } finally {
      release();
    }
  }

  /** Sets every node's calls and time to zero (strand_session_reset_profile). */
  public void resetProfile() {
    long address = acquire();
    try {
      Native.sessionResetProfile(address);
    } finally {
      release();
    }
  }

  /**
   * Every node of the graph in order, with its calls and time so far
   * (strand_session_get_profile). Nodes fused into the one before them, and
   * nodes a plan turned into views, show no calls; a sliced run counts one
   * call per slice, a stacked batch one. Thread safety: any.
   */
  public List<NodeProfile> profile() {
    long address = acquire();
    try {
      String[] names = Native.sessionProfileNames(address);
      long[] figures = Native.sessionProfile(address);
      int n = Math.min(names.length / 3, figures.length / 2);
      List<NodeProfile> nodes = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        nodes.add(new NodeProfile(i, names[3 * i], names[3 * i + 1], names[3 * i + 2],
            figures[2 * i], figures[2 * i + 1]));
      }
      return List.copyOf(nodes);
    } finally {
      release();
    }
  }

  /**
   * One node's figures (strand_node_profile).
   *
   * @param index the node's position in the graph
   * @param name the node's name ("" when it has none)
   * @param opType its op type
   * @param kernel how it runs, chosen at session creation, for ops with
   *     several ways ("winograd 4x4", "im2col", "depthwise", ... for Conv);
   *     "" for the others
   * @param calls kernel calls counted
   * @param totalNanos their wall time, summed
   */
  public record NodeProfile(int index, String name, String opType, String kernel, long calls,
      long totalNanos) {}

  /**
   * A session's counters since creation (strand_session_stats), each read
   * atomically, one after the other.
   *
   * @param runs runs that succeeded
   * @param runsFailed runs that failed after starting, except those in
   *     {@code runsCanceled}
   * @param planningRuns runs that planned (the rest reused a cached plan)
   * @param plansCached plans cached now
   * @param plansEvicted plans dropped to make room
   * @param arenas arenas in the pool: the most runs at once so far
   * @param arenaBytes bytes of all arenas
   * @param weightBytes bytes of repacked weights and kernel parameters
   * @param runsCanceled runs stopped by a cancel token or a deadline
   * @param batches batches dynamic batching ran (a batch of one included)
   * @param batchedRuns callers' runs served by them
   * @param batchedRows rows in them
   * @param batchWaitNanos time callers' runs waited to be stacked, summed
   * @param slicedRuns runs made as slices ({@link SessionOptions#withSliceRows})
   * @param slices slices made by them
   */
  public record Stats(long runs, long runsFailed, long planningRuns, long plansCached,
      long plansEvicted, long arenas, long arenaBytes, long weightBytes, long runsCanceled,
      long batches, long batchedRuns, long batchedRows, long batchWaitNanos, long slicedRuns,
      long slices) {
    /** Callers' runs per batch (batchedRuns / batches); 0 before the first batch. */
    public double meanBatchRuns() {
      return batches == 0 ? 0 : (double) batchedRuns / batches;
    }

    /** The mean time a batched run waited to be stacked, in nanoseconds; 0 before the first. */
    public double meanBatchWaitNanos() {
      return batchedRuns == 0 ? 0 : (double) batchWaitNanos / batchedRuns;
    }
  }

  private static Map<String, Integer> index(List<ValueInfo> values) {
    Map<String, Integer> map = new HashMap<>();
    for (int i = 0; i < values.size(); i++) {
      map.put(values.get(i).name(), i);
    }
    return map;
  }
}
