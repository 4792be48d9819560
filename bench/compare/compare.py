#!/usr/bin/env python3
"""strand against ONNX Runtime, side by side: throughput, load time, memory.

Normally started by bench/compare/run.sh, which builds strand and the venv:

    python bench/compare/compare.py --strand BUILD/strand [--models-dir DIR]
        [--quick] [--models mlp,resnet18,...] [--repeats R] [--seconds S]
        [--warmup S] [--batches 1,32] [--intra-ops 1,2] [--callers N]
        [--batching MAX:DELAY_US] [--no-write]

For each model x batch x intra-op cell, `strand bench --json` and
bench/compare/ort_bench.py (the same measurement with onnxruntime) run in
turn, each in a fresh process, R times, the order alternating between
repeats (strand first in even repeats, ONNX Runtime first in odd ones).
Both get the same input file (numpy, uniform in [-1, 1), fixed seed), the
same number of caller threads, the same intra-op threads (ONNX Runtime:
intra_op_num_threads=T, inter_op_num_threads=1, sequential execution, all
graph optimizations), and the same warm-up and measuring time. A cell
reports medians over its repeats; ratio = strand inf/s / ORT inf/s. In cells
with more than one intra-op thread ONNX Runtime is measured with its
threads spinning while they wait (its default) and without, and the faster
median is kept (--ort-spin best; spinning costs it dearly on a busy machine).

Then the many-callers case: N caller threads (default 32) sending batch-1
requests for the MLP to one shared session: ONNX Runtime (N Python threads;
InferenceSession.run releases the GIL, which bench/compare/ort_gil.py
measures), strand without batching, and strand with dynamic batching.

Writes bench/compare/results.json (every measurement), bench/compare/chart.png,
and the section of BENCHMARKS.md between the bench:compare markers (appended
when the markers are missing), unless --no-write.
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BEGIN = "<!-- bench:compare:begin -->"
END = "<!-- bench:compare:end -->"

# key: (label in the table, file name made by scripts/make_models.py, input shape without batch)
MODELS = {
    "mlp": ("MLP 784-512-512-10", "mlp512", (784,)),
    "resnet18": ("ResNet-18", "resnet18", (3, 224, 224)),
    "mobilenetv2": ("MobileNetV2", "mobilenetv2", (3, 224, 224)),
    "transformer": ("Transformer encoder (4x256, seq 128)", "transformer_encoder", (128, 256)),
    "lstm": ("LSTM 2x256, 64 steps", "lstm", (64, 256)),
}
INPUT_SEED = 20261126


def log(text):
    print(text, file=sys.stderr, flush=True)


def parse_list(text, kind, name):
    try:
        values = [kind(v) for v in text.split(",") if v]
    except ValueError:
        raise SystemExit(f"compare.py: {name} wants a comma-separated list, not {text!r}")
    if not values:
        raise SystemExit(f"compare.py: {name} is empty")
    return values


# ---- models and inputs --------------------------------------------------------

def ensure_models(keys, directory):
    missing = [MODELS[k][1] for k in keys
               if not os.path.exists(os.path.join(directory, MODELS[k][1] + ".onnx"))]
    if missing:
        log(f"exporting {', '.join(missing)} into {directory} (scripts/make_models.py)")
        subprocess.run([sys.executable, os.path.join(REPO, "scripts", "make_models.py"),
                        directory, "--only", ",".join(missing)], check=True,
                       stdout=sys.stderr)


def ensure_input(key, batch, directory):
    import numpy as np

    path = os.path.join(directory, "inputs", f"{MODELS[key][1]}.b{batch}.npy")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        rng = np.random.default_rng(INPUT_SEED)
        x = rng.uniform(-1, 1, (batch,) + MODELS[key][2]).astype(np.float32)
        np.save(path + ".tmp.npy", x)
        os.replace(path + ".tmp.npy", path)
    return path


# ---- one measurement ----------------------------------------------------------

def measure(command, timeout):
    """Runs one driver in a fresh process; its last stdout line is the JSON."""
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if done.returncode != 0:
        text = (done.stderr.strip() or done.stdout.strip()).splitlines()
        return {"error": f"exit {done.returncode}: {text[-1] if text else ''}"}
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"no JSON in the output: {done.stdout[-200:]!r}"}
    result["wall_s"] = time.monotonic() - started
    return result


def strand_command(args, model, batch, intra_op, threads, input_path, batching=None,
                   seconds=None):
    command = [args.strand, "bench", model, "--batch", str(batch), "--intra-op", str(intra_op),
               "--threads", str(threads), "--seconds", str(seconds or args.seconds),
               "--warmup", str(args.warmup), "--json", "--quiet"]
    if input_path:
        command += ["--input", input_path]
    if batching:
        command += ["--batching", batching]
    return command


def ort_command(args, model, batch, intra_op, threads, input_path, seconds=None, spin=True):
    command = [sys.executable, os.path.join(HERE, "ort_bench.py"), model, "--batch", str(batch),
               "--intra-op", str(intra_op), "--threads", str(threads),
               "--seconds", str(seconds or args.seconds), "--warmup", str(args.warmup)]
    if input_path:
        command += ["--input", input_path]
    if not spin:
        command.append("--no-spin")
    return command


def median_of(results, field):
    values = [r[field] for r in results if "error" not in r]
    return statistics.median(values) if values else None


def rss_growth(r):
    return r["peak_rss_bytes"] - r["baseline_rss_bytes"]


def summarize(results):
    ok = [r for r in results if "error" not in r]
    if not ok:
        return {"error": results[0]["error"] if results else "not run"}
    return {
        "inferences_per_s": statistics.median(r["inferences_per_s"] for r in ok),
        "load_ms": statistics.median(r["load_ms"] for r in ok),
        "rss_growth_bytes": statistics.median(rss_growth(r) for r in ok),
        "peak_rss_bytes": statistics.median(r["peak_rss_bytes"] for r in ok),
        "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in ok),
        "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in ok),
        "runs": sum(r["runs"] for r in ok),
        "repeats": len(ok),
        "errors": [r["error"] for r in results if "error" in r],
    }


# ---- the plan -----------------------------------------------------------------

def run_rotated(label, makers, repeats, timeout, progress):
    """Runs each (name, make) once per repeat, the order rotating between
    repeats so that none always goes first. Returns {name: [results]}."""
    results = {name: [] for name, _ in makers}
    for r in range(repeats):
        order = makers[r % len(makers):] + makers[:r % len(makers)]
        for name, make in order:
            progress.step(f"{label} [{name} {r + 1}/{repeats}]")
            result = measure(make(), timeout)
            results[name].append(result)
            if "error" in result:
                log(f"  {name}: {result['error']}")
    return results


class Progress:
    def __init__(self, total):
        self.total, self.done, self.start = total, 0, time.monotonic()

    def step(self, text):
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0
        self.done += 1
        log(f"[{self.done}/{self.total}, {elapsed:.0f} s, ~{eta:.0f} s left] {text}")


def machine():
    name, cores = platform.processor() or "unknown", os.cpu_count()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                name = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{name}, {cores} cores"


def git_revision():
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (" with local changes" if dirty else "")
    except OSError:
        return "unknown"


# ---- output -------------------------------------------------------------------

def fmt_rate(v):
    if v is None:
        return "error"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def fmt_ms(v):
    return "—" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def fmt_mib(v):
    return "—" if v is None else f"{v / 1048576:.1f}"


def markdown(report):
    a = report["settings"]
    lines = [BEGIN, "## strand against ONNX Runtime: throughput, load time and memory", ""]
    lines.append(f"Command: `{report['command']}` "
                 f"({a['repeats']} repeat{'s' if a['repeats'] != 1 else ''} per cell, "
                 f"{a['seconds']:g} s measured after {a['warmup']:g} s of warm-up per run; "
                 f"took {report['took_s'] / 60:.1f} min).")
    load = report.get("load_average")
    lines.append(f"Machine: {report['machine']}"
                 + (f" (1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at "
                    f"the end)" if load else "")
                 + f". Date: {report['date']}. strand "
                 f"{report['strand_version']} ({report['git']}), release build "
                 f"(RelWithDebInfo). ONNX Runtime {report['ort_version']} (PyPI, CPU provider).")
    lines.append("")
    lines.append("Each cell runs `strand bench --json` and `bench/compare/ort_bench.py` in turn, "
                 "each in a fresh process, alternating which goes first; both get the same "
                 "input file and one caller thread; ONNX Runtime has intra_op_num_threads = the "
                 "intra-op column, inter_op_num_threads=1, sequential execution and all graph "
                 "optimizations. "
                 + {"best": "Where the intra-op pool has more than one thread, ONNX Runtime "
                            "runs both with its threads spinning while they wait (its default) "
                            "and without (`session.intra_op.allow_spinning` = 0), and the faster "
                            "median is kept (marked † when it was without spinning): spinning "
                            "costs it dearly when the cores are busy. ",
                    "on": "ONNX Runtime's intra-op threads spin while waiting (its default). ",
                    "off": "ONNX Runtime's intra-op threads do not spin "
                           "(`session.intra_op.allow_spinning` = 0). "}[report["ort_spin"]]
                 + "Figures are medians over the repeats. Inferences/s = runs x "
                 "batch / seconds. Load = model load + session creation. RSS = the process's "
                 "peak resident set (VmHWM) minus its resident set just before loading the "
                 "model (so the Python interpreter and the libraries' start-up are not "
                 "counted for either). The machine is shared and noisy: compare ratios, not "
                 "absolute figures.")
    lines.append("")
    lines.append("| model | batch | intra-op | strand inf/s | ORT inf/s | strand/ORT | "
                 "strand load ms | ORT load ms | strand RSS MiB | ORT RSS MiB |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for c in report["cells"]:
        s, o = c["strand"], c["ort"]
        ratio = c.get("ratio")
        ratio_text = "—" if ratio is None else (f"**{ratio:.2f}**" if ratio < 1 else f"{ratio:.2f}")
        lines.append(
            f"| {c['label']} | {c['batch']} | {c['intra_op']} | "
            f"{fmt_rate(s.get('inferences_per_s'))} | {fmt_rate(o.get('inferences_per_s'))}"
            f"{'' if o.get('spinning', True) or 'error' in o else ' †'} | "
            f"{ratio_text} | {fmt_ms(s.get('load_ms'))} | {fmt_ms(o.get('load_ms'))} | "
            f"{fmt_mib(s.get('rss_growth_bytes'))} | {fmt_mib(o.get('rss_growth_bytes'))} |")
    g = report.get("geomean_ratio")
    short = [c for c in report["cells"] if c.get("ratio") is not None and c["ratio"] < 1]
    lines.append("")
    if g is not None:
        lines.append(f"Geometric mean of strand/ORT over {report['ratio_cells']} cells: "
                     f"**{g:.2f}** (goal: at least 1.2, and every cell at least 1.0; "
                     f"{len(short)} cell{'s' if len(short) != 1 else ''} below 1.0, in bold).")
    errors = [c for c in report["cells"] if c["strand"].get("error") or c["ort"].get("error")]
    for c in errors:
        for who in ("strand", "ort"):
            if c[who].get("error"):
                lines.append(f"- {c['label']} batch {c['batch']} intra-op {c['intra_op']}: "
                             f"{who} failed: `{c[who]['error']}`")
    m = report.get("callers")
    if m:
        lines.append("")
        lines.append(f"Many callers: {m['threads']} threads sending batch-1 requests for the "
                     f"MLP to one shared session, intra-op {m['intra_op']}, medians of "
                     f"{a['repeats']} runs of {m['seconds']:g} s. strand with batching: "
                     f"`--batching {m['batching']}`.")
        lines.append("")
        lines.append("| setup | inf/s | p50 ms | p99 ms | vs ORT |")
        lines.append("|---|---|---|---|---|")
        base = m["ort"].get("inferences_per_s")
        for name, key in (("ONNX Runtime (Python threads)", "ort"),
                          ("strand, no batching", "strand"),
                          ("strand, dynamic batching", "strand_batching")):
            r = m[key]
            v = r.get("inferences_per_s")
            vs = f"{v / base:.2f}x" if v and base else "—"
            lines.append(f"| {name} | {fmt_rate(v)} | {fmt_ms(r.get('p50_ms'))} | "
                         f"{fmt_ms(r.get('p99_ms'))} | {vs} |")
        gil = m.get("gil_check")
        if gil:
            lines.append("")
            lines.append(
                "ONNX Runtime's Python threads do run graphs at once: onnxruntime's binding wraps "
                "the session's Run in `py::gil_scoped_release` (onnxruntime_pybind_state.cc), "
                "and `bench/compare/ort_gil.py` measures it: while a second Python thread was "
                f"inside `run` {gil['runner_in_run_fraction']:.0%} of the time (MLP, batch 2048), "
                f"the main Python thread kept {gil['main_rate_ratio']:.0%} of the pure-Python "
                f"rate it had alone; a held GIL would have allowed at most "
                f"{gil['held_gil_bound']:.0%}. So the ORT figures above are not limited by the "
                "GIL during inference, only by Python's per-call overhead and GIL hand-overs "
                "between calls, which a Python service pays too.")
    lines.append("")
    lines.append("![strand against ONNX Runtime](bench/compare/chart.png)")
    lines.append(END)
    # Prose wrapped as the rest of BENCHMARKS.md is; tables, lists and markers kept whole.
    out = []
    for line in lines:
        if line.startswith(("|", "<!--", "!", "#", "- ")) or len(line) <= 78:
            out.append(line)
        else:
            out.extend(textwrap.wrap(line, 78, break_long_words=False, break_on_hyphens=False))
    return "\n".join(out) + "\n"


def write_benchmarks(section, path):
    text = open(path).read() if os.path.exists(path) else "# strand benchmarks\n"
    if BEGIN in text and END in text:
        a = text.index(BEGIN)
        b = text.index(END) + len(END)
        if b < len(text) and text[b] == "\n":
            b += 1
        text = text[:a] + section + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def chart(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    cells = [c for c in report["cells"] if c.get("ratio") is not None]
    m = report.get("callers")
    fig, axes = plt.subplots(1, 2 if m else 1, figsize=(13 if m else 8, max(4.0, 0.34 * len(cells) + 2.2)),
                             gridspec_kw={"width_ratios": [3, 2]} if m else None)
    ax = axes[0] if m else axes
    labels = [f"{c['label'].split(' (')[0]}  b{c['batch']}  t{c['intra_op']}" for c in cells]
    ratios = [c["ratio"] for c in cells]
    colors = ["#2a9d4b" if r >= 1 else "#d1495b" for r in ratios]
    y = list(range(len(cells)))[::-1]
    ax.barh(y, ratios, color=colors)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    lo, hi = min(ratios + [1.0]), max(ratios + [1.0])
    ticks = [t for t in (0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10) if lo / 1.6 <= t <= hi * 1.8]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("strand / ONNX Runtime throughput (log scale; right of 1 = strand faster)")
    g = report.get("geomean_ratio")
    ax.set_title((f"Throughput ratio per cell (geometric mean {g:.2f})" if g else
                  "Throughput ratio per cell") + "\nbN: batch N; tN: N intra-op threads",
                 fontsize=10)
    for yi, r in zip(y, ratios):
        ax.text(r, yi, f" {r:.2f}", va="center", fontsize=7)
    ax.set_xlim(lo / 1.6, hi * 1.8)
    if m:
        ax2 = axes[1]
        names = ["ORT\n(Python threads)", "strand", "strand\nbatching"]
        values = [m[k].get("inferences_per_s") or 0 for k in ("ort", "strand", "strand_batching")]
        ax2.bar(names, values, color=["#7a7a7a", "#3b75af", "#2a9d4b"])
        for i, v in enumerate(values):
            ax2.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
        ax2.set_ylabel("inferences/s")
        ax2.set_title(f"{m['threads']} callers, MLP batch 1, one session")
    fig.suptitle(f"strand {report['strand_version']} vs ONNX Runtime {report['ort_version']} — "
                 f"{report['machine']} — {report['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- main ---------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strand", required=True, help="the strand program (a release build)")
    ap.add_argument("--models-dir", help="where the exported models are (made when missing)")
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated, from {','.join(MODELS)} (default: all)")
    ap.add_argument("--repeats", type=int, help="pairs of runs per cell (default 3; --quick: 1)")
    ap.add_argument("--seconds", type=float, help="measured seconds per run (default 3; --quick: 1)")
    ap.add_argument("--warmup", type=float,
                    help="warm-up seconds per run, at least one run (default 1; --quick: 0.3)")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--intra-ops", default="1,2")
    ap.add_argument("--callers", type=int, default=32,
                    help="threads of the many-callers case; 0 skips it (default 32)")
    ap.add_argument("--callers-intra-op", type=int, default=1)
    ap.add_argument("--batching", default="8:1000",
                    help="strand's --batching in the many-callers case (default 8:1000)")
    ap.add_argument("--ort-spin", choices=("on", "off", "best"), default="best",
                    help="ONNX Runtime's spin-waiting intra-op threads (its default: on) in "
                         "cells with more than one intra-op thread: on, off, or best (measure "
                         "both, keep the faster; the default)")
    ap.add_argument("--quick", action="store_true", help="1 repeat, 1 s per run: a smoke test")
    ap.add_argument("--no-write", action="store_true",
                    help="print the section; leave BENCHMARKS.md, the chart and results.json alone")
    ap.add_argument("--command", default="bash bench/compare/run.sh",
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.seconds = args.seconds or (1.0 if args.quick else 3.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 1.0)
    if args.repeats < 1 or args.seconds <= 0 or args.warmup < 0:
        ap.error("--repeats wants 1 or more, --seconds above 0, --warmup 0 or more")
    keys = parse_list(args.models, str, "--models")
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        ap.error(f"unknown model {unknown}; known: {', '.join(MODELS)}")
    batches = parse_list(args.batches, int, "--batches")
    intra_ops = parse_list(args.intra_ops, int, "--intra-ops")
    if not os.access(args.strand, os.X_OK):
        ap.error(f"{args.strand} is not an executable strand program")
    if not re.fullmatch(r"\d+:\d+", args.batching):
        ap.error(f"--batching wants MAX:DELAY_US, not {args.batching!r}")
    directory = args.models_dir or os.path.join(os.path.dirname(os.path.abspath(args.strand)),
                                                "torch_models")
    os.makedirs(directory, exist_ok=True)
    import onnxruntime

    all_keys = list(dict.fromkeys(keys + (["mlp"] if args.callers else [])))
    ensure_models(all_keys, directory)
    per_run = args.seconds + args.warmup
    timeout = max(300, 20 * per_run)
    cells = [(k, b, t) for k in keys for b in batches for t in intra_ops]
    ort_runs = sum(2 if t != 1 and args.ort_spin == "best" else 1 for _, _, t in cells)
    total = (len(cells) + ort_runs) * args.repeats + (3 * args.repeats + 1 if args.callers else 0)
    log(f"{len(cells)} cells, {len(cells) + ort_runs} runs each repeat, {per_run:g} s each "
        f"plus start-up; ~{total * (per_run + 1.5) / 60:.0f} min expected")
    progress = Progress(total)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    report = {"settings": {"repeats": args.repeats, "seconds": args.seconds,
                           "warmup": args.warmup, "batches": batches, "intra_ops": intra_ops},
              "cells": [], "machine": machine(), "git": git_revision(),
              "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "ort_version": onnxruntime.__version__,
              "command": args.command}
    version = subprocess.run([args.strand, "--version"], capture_output=True, text=True)
    report["strand_version"] = version.stdout.strip().replace("strand ", "") or "unknown"

    for key, batch, intra_op in cells:
        label, name, _ = MODELS[key]
        model = os.path.join(directory, name + ".onnx")
        x = ensure_input(key, batch, directory)
        makers = [("strand", lambda: strand_command(args, model, batch, intra_op, 1, x))]
        # ONNX Runtime's intra-op threads spin while they wait, by default; on a busy
        # machine that costs it dearly. With --ort-spin best, cells with a thread pool
        # measure it both ways and keep the better median: the stricter bar for strand.
        spins = [args.ort_spin != "off"] if intra_op == 1 or args.ort_spin != "best" else [True, False]
        for spin in spins:
            makers.append(("ort" if spin else "ort-nospin",
                           lambda spin=spin: ort_command(args, model, batch, intra_op, 1, x,
                                                         spin=spin)))
        runs = run_rotated(f"{name} batch {batch} intra-op {intra_op}", makers, args.repeats,
                           timeout, progress)
        s = summarize(runs["strand"])
        candidates = [(summarize(v), k) for k, v in runs.items() if k != "strand"]
        o, o_key = max(candidates, key=lambda c: c[0].get("inferences_per_s") or 0)
        o["spinning"] = o_key == "ort"
        cell = {"model": key, "label": label, "batch": batch, "intra_op": intra_op,
                "strand": s, "ort": o, "runs": runs,
                "ort_alternatives": {k: summarize(v) for k, v in runs.items() if k != "strand"}}
        if s.get("inferences_per_s") and o.get("inferences_per_s"):
            cell["ratio"] = s["inferences_per_s"] / o["inferences_per_s"]
            log(f"  strand {fmt_rate(s['inferences_per_s'])} inf/s, ORT "
                f"{fmt_rate(o['inferences_per_s'])} inf/s{'' if o['spinning'] else ' (no spin)'}"
                f": ratio {cell['ratio']:.2f}")
        report["cells"].append(cell)

    ratios = [c["ratio"] for c in report["cells"] if c.get("ratio")]
    report["ratio_cells"] = len(ratios)
    if ratios:
        report["geomean_ratio"] = math.exp(sum(math.log(r) for r in ratios) / len(ratios))

    if args.callers:
        model = os.path.join(directory, MODELS["mlp"][1] + ".onnx")
        x = ensure_input("mlp", 1, directory)
        t = args.callers_intra_op
        runs = run_rotated(
            "many callers",
            [("strand", lambda: strand_command(args, model, 1, t, args.callers, x)),
             ("strand_batching",
              lambda: strand_command(args, model, 1, t, args.callers, x, args.batching)),
             ("ort", lambda: ort_command(args, model, 1, t, args.callers, x,
                                         spin=args.ort_spin != "off"))],
            args.repeats, timeout, progress)
        m = {"threads": args.callers, "intra_op": t, "batching": args.batching,
             "seconds": args.seconds, "runs": runs}
        for who in runs:
            m[who] = summarize(runs[who])
        # The GIL check: does a Python thread keep running while another is inside run?
        progress.step("GIL check: ONNX Runtime (bench/compare/ort_gil.py)")
        gil = measure([sys.executable, os.path.join(HERE, "ort_gil.py"), model], timeout)
        if "error" not in gil:
            m["gil_check"] = gil
        else:
            log(f"  GIL check: {gil['error']}")
        report["callers"] = m
        log(f"  many callers: ORT {fmt_rate(m['ort'].get('inferences_per_s'))}, strand "
            f"{fmt_rate(m['strand'].get('inferences_per_s'))}, strand batching "
            f"{fmt_rate(m['strand_batching'].get('inferences_per_s'))} inf/s")

    report["took_s"] = time.monotonic() - started
    report["load_average"] = [load_before, os.getloadavg()[0]]
    report["ort_spin"] = args.ort_spin
    section = markdown(report)
    if args.no_write:
        print(section)
        return
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(report, f, indent=1)
    chart(report, os.path.join(HERE, "chart.png"))
    write_benchmarks(section, os.path.join(REPO, "BENCHMARKS.md"))
    print(section)
    log(f"wrote BENCHMARKS.md (the bench:compare section), {os.path.join(HERE, 'chart.png')} "
        f"and {os.path.join(HERE, 'results.json')}")


if __name__ == "__main__":
    main()
