#!/usr/bin/env python3
"""ONNX Runtime's side of `strand bench`: the same measurement, one JSON object.

    python bench/compare/ort_bench.py MODEL [--threads N] [--batch B] [--intra-op T]
        [--seconds S] [--warmup S] [--input NAME=FILE.npy]... [--seed S]

Measured the way `strand bench` measures (tools/strand/bench.c):
  * one InferenceSession (CPU provider; intra_op_num_threads=T, 0 meaning
    ONNX Runtime's default; inter_op_num_threads=1; sequential execution;
    all graph optimizations), shared by N Python threads;
  * load_ms: the InferenceSession constructor (model load + session creation);
  * every thread warms up (at least one run, until --warmup seconds have
    passed), then all start together; no run starts after the deadline, the
    runs in flight finish and count, and the time is taken when the last
    thread returns; inferences/s = runs x batch / seconds;
  * peak_rss_bytes: VmHWM at the end; baseline_rss_bytes: VmRSS after
    importing numpy and onnxruntime, before the session is made.
Inputs come from .npy files (the harness writes them, and gives the same
files to strand) or, for inputs not given, from numpy's generator seeded
with --seed (uniform in [-1, 1); symbolic batch dimensions bound to --batch,
other unknown ones to 1).

InferenceSession.run releases the GIL while the graph runs, so N Python
threads do run N graphs at once; bench/compare/ort_gil.py measures this and
compare.py reports it next to the many-callers figures.
"""
import argparse
import json
import os
import sys
import threading
import time


def proc_status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def session_options(ort, intra_op, no_spin):
    """The options of every ONNX Runtime session the harness measures: T
    intra-op threads (0: ONNX Runtime's default), one inter-op thread,
    sequential execution, all graph optimizations; with no_spin, intra-op
    threads that sleep rather than spin while they wait."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if no_spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def is_batch_dim(dim, axis):
    if isinstance(dim, int):
        return False
    name = dim or ""
    return "batch" in name or "Batch" in name or name == "N" or axis == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--intra-op", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--input", action="append", default=[], metavar="NAME=FILE")
    ap.add_argument("--no-spin", action="store_true",
                    help="session.intra_op.allow_spinning=0 (ONNX Runtime's default is to spin)")
    args = ap.parse_args()
    if args.threads < 1 or args.batch < 1 or args.intra_op < 0 or args.seconds <= 0 \
            or args.warmup < 0:
        ap.error("--threads and --batch want 1 or more, --intra-op 0 or more, "
                 "--seconds above 0, --warmup 0 or more")

    import numpy as np
    import onnxruntime as ort

    baseline_rss = proc_status_bytes("VmRSS")
    opts = session_options(ort, args.intra_op, args.no_spin)
    t0 = time.perf_counter()
    session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3

    given = {}
    for spec in args.input:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = session.get_inputs()[0].name, spec
        given[name] = np.load(path)
    rng = np.random.default_rng(args.seed)
    feeds = {}
    batch = args.batch
    for value in session.get_inputs():
        if value.name in given:
            feeds[value.name] = given[value.name]
            for axis, dim in enumerate(value.shape):
                if is_batch_dim(dim, axis):
                    batch = int(given[value.name].shape[axis])
                    break
            continue
        shape = [d if isinstance(d, int) else (args.batch if is_batch_dim(d, a) else 1)
                 for a, d in enumerate(value.shape)]
        if value.type != "tensor(float)":
            sys.exit(f"ort_bench.py: input {value.name!r} is {value.type}; only float "
                     "inputs are generated here (give a file)")
        feeds[value.name] = rng.uniform(-1, 1, shape).astype(np.float32)

    stop = threading.Event()
    go = threading.Event()
    lock = threading.Lock()
    warm_runs = [0]
    latencies = []
    warming = [args.threads]
    errors = []
    warmup_start = time.perf_counter()

    def worker():
        mine = []
        warmed = False
        try:
            if args.warmup > 0:
                while not stop.is_set():
                    session.run(None, feeds)
                    with lock:
                        warm_runs[0] += 1
                    if time.perf_counter() - warmup_start >= args.warmup:
                        break
            with lock:
                warming[0] -= 1
            warmed = True
            go.wait()
            while not stop.is_set():
                start = time.perf_counter_ns()
                session.run(None, feeds)
                mine.append(time.perf_counter_ns() - start)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            errors.append(repr(e))
            stop.set()
            if not warmed:
                with lock:
                    warming[0] -= 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for t in threads:
        t.start()
    while True:
        with lock:
            if warming[0] <= 0:
                break
        time.sleep(0.005)
    start = time.perf_counter()
    go.set()
    deadline = start + args.seconds
    while time.perf_counter() < deadline and not stop.is_set():
        time.sleep(min(0.01, max(0.0, deadline - time.perf_counter())))
    stop.set()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        sys.exit(f"ort_bench.py: a run failed: {errors[0]}")

    lat = np.sort(np.array(latencies, dtype=np.float64)) / 1e6
    runs = len(lat)

    def quantile(p):
        if runs == 0:
            return 0.0
        rank = max(1, int(np.ceil(p * runs)))
        return float(lat[rank - 1])

    print(json.dumps({
        "model": args.model, "runtime": "onnxruntime", "version": ort.__version__,
        "threads": args.threads, "batch": batch, "intra_op": args.intra_op,
        "spinning": not args.no_spin,
        "warmup_s": args.warmup, "warmup_runs": warm_runs[0], "runs": runs,
        "seconds": seconds, "runs_per_s": runs / seconds,
        "inferences_per_s": runs * batch / seconds,
        "latency_ms": {"p50": quantile(0.5), "p90": quantile(0.9), "p99": quantile(0.99),
                       "max": float(lat[-1]) if runs else 0.0,
                       "mean": float(lat.mean()) if runs else 0.0},
        "load_ms": load_ms,
        "peak_rss_bytes": proc_status_bytes("VmHWM"), "baseline_rss_bytes": baseline_rss,
    }))


if __name__ == "__main__":
    main()
