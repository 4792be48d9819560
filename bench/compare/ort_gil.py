#!/usr/bin/env python3
"""Does onnxruntime's InferenceSession.run release the GIL? One JSON object.

    python bench/compare/ort_gil.py MODEL [--batch B] [--seconds S]

The main thread counts steps of a pure-Python loop for S seconds, first
alone, then while a second Python thread calls run (intra-op 1) over and
over. If run held the GIL, the main thread could only step while the other
thread is outside run, so its rate would fall to at most the fraction of
time the other thread spends outside run (a few percent with long runs). If
run releases the GIL, the main thread keeps most of its rate (all of it with
a core to spare; about half when both threads share one busy core).
onnxruntime's binding does release it: onnxruntime_pybind_state.cc wraps
the session's Run in py::gil_scoped_release ("release GIL to allow multiple
python threads to invoke Run() in parallel"); this measures it.
"""
import argparse
import json
import threading
import time


def spin(seconds):
    steps = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        steps += 1
    return steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    value = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else args.batch if a == 0 else 1
             for a, d in enumerate(value.shape)]
    feeds = {value.name: np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)}
    session.run(None, feeds)

    alone = spin(args.seconds)
    stop = threading.Event()
    in_run = [0.0, 0]

    def runner():
        while not stop.is_set():
            t = time.perf_counter()
            session.run(None, feeds)
            in_run[0] += time.perf_counter() - t
            in_run[1] += 1

    thread = threading.Thread(target=runner)
    thread.start()
    time.sleep(0.02)
    start = time.perf_counter()
    before = in_run[0]
    meanwhile = spin(args.seconds)
    wall = time.perf_counter() - start
    stop.set()
    thread.join()
    # The runner's time inside run during the spin (runs that straddle its
    # ends are counted whole: a slight overestimate, which only makes the
    # held-GIL bound below looser).
    fraction = min(1.0, (in_run[0] - before) / wall)
    ratio = meanwhile / alone
    print(json.dumps({
        "main_steps_alone": alone, "main_steps_with_runner": meanwhile,
        "main_rate_ratio": ratio, "runner_in_run_fraction": fraction, "runs": in_run[1],
        "held_gil_bound": 1.0 - fraction,
        "gil_released": ratio > (1.0 - fraction) + 0.2,
    }))


if __name__ == "__main__":
    main()
