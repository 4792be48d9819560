#!/usr/bin/env python3
"""Time per node, strand against ONNX Runtime, on one model: which kernels hold a cell back.

    .venv/bin/python bench/compare/nodes.py --strand build/release/strand MODEL
        --input FILE.npy [--batch B] [--intra-op T] [--repeats R] [--seconds S]
        [--no-spin] [--all]

Each repeat runs, in turn and each in a fresh process:
  * `strand bench MODEL --profile --json` (the time inside each node's
    kernel, per run);
  * ONNX Runtime with its own profiler (SessionOptions.enable_profiling;
    the same session options as bench/compare/ort_bench.py), S seconds of
    runs after a warm-up, each node's "kernel_time" per run.
Medians over the repeats. ONNX Runtime fuses nodes (Conv with its Clip or
Relu, MatMul with Add) and renames them, so the nodes are paired by their
order among the heavy ones: Conv, Gemm, MatMul, LSTM and ONNX Runtime's
fused forms. When the two lists differ in length the pairing stops and
only the totals by op type are printed. ONNX Runtime's profiler adds a
little time of its own to each node; compare differences of a few percent
with that in mind, and the cell's own ratio with bench/compare/run.sh.
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ort_bench import session_options  # noqa: E402  (the harness's own options)

HEAVY = {"Conv", "Gemm", "MatMul", "LSTM", "FusedConv", "FusedMatMul", "FusedGemm", "NchwcConv"}


def ort_child(args):
    """Runs in its own process: prints {name: [op, [µs per run...]]} as JSON."""
    import numpy as np
    import onnxruntime as ort

    so = session_options(ort, args.intra_op, args.no_spin)
    with tempfile.TemporaryDirectory() as tmp:
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: np.load(args.input)}
        start = time.perf_counter()
        while time.perf_counter() - start < args.warmup:
            session.run(None, feed)
        start = time.perf_counter()
        runs = 0
        while time.perf_counter() - start < args.seconds:
            session.run(None, feed)
            runs += 1
        path = session.end_profiling()
        with open(path) as f:
            events = json.load(f)
    per = collections.OrderedDict()
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        name = e["name"][: -len("_kernel_time")]
        per.setdefault(name, [e["args"].get("op_name", ""), []])[1].append(e["dur"])
    # Keep each node's last `runs` samples: the measured runs, not the warm-up.
    out = {n: [op, v[-runs:] if runs else v] for n, (op, v) in per.items()}
    json.dump(out, sys.stdout)


def strand_profile(args):
    cmd = [args.strand, "bench", args.model, "--batch", str(args.batch), "--intra-op",
           str(args.intra_op), "--seconds", str(args.seconds), "--warmup", str(args.warmup),
           "--input", args.input, "--json", "--profile"]
    d = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    runs = d["profile"]["runs"]
    return [(n["name"], n["op_type"], n.get("kernel", ""), n["total_ms"] / runs)
            for n in d["profile"]["nodes"]]


def ort_profile(args):
    cmd = [sys.executable, os.path.abspath(__file__), "--ort-child", args.model, "--input",
           args.input, "--intra-op", str(args.intra_op), "--seconds", str(args.seconds),
           "--warmup", str(args.warmup)] + (["--no-spin"] if args.no_spin else [])
    d = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return [(n, op, statistics.median(v) / 1000.0) for n, (op, v) in d.items() if v]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--strand", help="the strand program (a release build)")
    ap.add_argument("--input", required=True, help="the model's one input, a .npy file")
    ap.add_argument("--batch", type=int, default=1, help="what the input's batch is (for strand)")
    ap.add_argument("--intra-op", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--no-spin", action="store_true",
                    help="ONNX Runtime's intra-op threads do not spin while they wait")
    ap.add_argument("--all", action="store_true", help="print every pair, not only the differing")
    ap.add_argument("--ort-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ort_child:
        ort_child(args)
        return 0
    if not args.strand:
        ap.error("--strand is required")

    s_heavy, o_heavy = collections.defaultdict(list), collections.defaultdict(list)
    s_ops, o_ops = collections.defaultdict(list), collections.defaultdict(list)
    s_names, o_names = {}, {}
    lengths = set()
    for r in range(args.repeats):
        order = (strand_profile, ort_profile) if r % 2 == 0 else (ort_profile, strand_profile)
        for fn in order:
            nodes = fn(args)
            heavy = [n for n in nodes if n[1] in HEAVY]
            totals = collections.Counter()
            if fn is strand_profile:
                lengths.add(("strand", len(heavy)))
                for i, (name, op, kernel, ms) in enumerate(heavy):
                    s_heavy[i].append(ms)
                    s_names[i] = f"{op} ({kernel}) {name[-20:]}" if kernel else f"{op} {name[-28:]}"
                for name, op, kernel, ms in nodes:
                    totals[op] += ms
                for op, ms in totals.items():
                    s_ops[op].append(ms)
            else:
                lengths.add(("ort", len(heavy)))
                for i, (name, op, ms) in enumerate(heavy):
                    o_heavy[i].append(ms)
                    o_names[i] = f"{op} {name[-28:]}"
                for name, op, ms in nodes:
                    totals[op] += ms
                for op, ms in totals.items():
                    o_ops[op].append(ms)
        print(f"repeat {r + 1} of {args.repeats} done", file=sys.stderr)

    med = statistics.median
    print(f"{os.path.basename(args.model)}, batch {args.batch}, intra-op {args.intra_op}: "
          f"ms per run inside each node, medians of {args.repeats}")
    counts = {who: n for who, n in lengths}
    if len(lengths) == 2 and counts["strand"] == counts["ort"]:
        print(f"{'#':>3}  {'strand node':44} {'ONNX Runtime node':34} {'strand':>8} "
              f"{'ORT':>8} {'diff':>8}")
        s_sum = o_sum = 0.0
        for i in sorted(s_heavy):
            s, o = med(s_heavy[i]), med(o_heavy[i])
            s_sum += s
            o_sum += o
            if args.all or abs(s - o) > 0.05 * max(s, o):
                print(f"{i:3d}  {s_names[i][:44]:44} {o_names[i][:34]:34} {s:8.3f} {o:8.3f} "
                      f"{s - o:+8.3f}")
        print(f"     {'heavy nodes in all':79} {s_sum:8.3f} {o_sum:8.3f} {s_sum - o_sum:+8.3f}")
    else:
        print(f"heavy nodes differ in number ({counts}): not paired")
    print(f"\n{'op type':24} {'strand':>8} {'ORT':>8}")
    for op in sorted(set(s_ops) | set(o_ops), key=lambda k: -max(
            med(s_ops[k]) if k in s_ops else 0, med(o_ops[k]) if k in o_ops else 0)):
        s = f"{med(s_ops[op]):8.3f}" if op in s_ops else f"{'-':>8}"
        o = f"{med(o_ops[op]):8.3f}" if op in o_ops else f"{'-':>8}"
        print(f"{op[:24]:24} {s} {o}")
    print(f"{'all nodes':24} {sum(med(v) for v in s_ops.values()):8.3f} "
          f"{sum(med(v) for v in o_ops.values()):8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
