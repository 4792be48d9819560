"""ONNX Runtime's side of bench/model_load.c: session creation time and
resident-set growth for MODEL, one JSON line.
    python bench/ort_load.py MODEL [--repeat N] [--threads T]"""
import argparse
import json
import os
import time


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import onnxruntime as ort  # imported before timing: its own start-up is not the model's

    times, growth = [], None
    for r in range(args.repeat):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        before = resident_bytes()
        t0 = time.perf_counter()
        session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
        times.append((time.perf_counter() - t0) * 1e3)
        if r == 0:
            growth = resident_bytes() - before
        del session
    times.sort()
    print(json.dumps({"runtime": "onnxruntime", "version": ort.__version__, "model": args.model,
                      "load_ms_median": round(times[len(times) // 2], 3),
                      "load_ms_best": round(times[0], 3), "rss_growth_bytes": growth}))


if __name__ == "__main__":
    main()
