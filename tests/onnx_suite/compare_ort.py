#!/usr/bin/env python3
"""Runs ONNX models with strand (through libstrand's C API, by ctypes) and with
ONNX Runtime on the same random inputs, and compares every output.

  compare_ort.py [--lib build/release/libstrand.so] [--batch 1,8]
                 [--rtol 1e-4] [--atol 1e-5] [--runs 2] [--sliced] MODEL.onnx...

Symbolic dimensions are bound to each --batch value (other unknown dims to 1).
Each model runs --runs times per batch (the first run plans, the next use the
plan). Prints the worst error per output and PASS or FAIL; exits 1 on any FAIL.

--sliced also checks slicing (strand_session_options.slice_rows) at every
batch above 1: sessions with slices of 1 row, of half the batch, and of
strand's own choice on 2 threads must give bit-identical outputs to a session
that never slices, and must all actually have sliced
(strand_session_stats.sliced_runs), unless --unsliceable names the model.
"""
import argparse
import ctypes
import os
import sys
import time

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64,
          9: np.bool_, 10: np.float16, 11: np.float64}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}


class SessionOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("intra_op_threads", ctypes.c_uint),
                ("batch_max_rows", ctypes.c_uint), ("batch_delay_us", ctypes.c_uint32),
                ("dispatcher", ctypes.c_void_p), ("slice_rows", ctypes.c_uint)]


class SessionStats(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t)] + [(n, ctypes.c_uint64) for n in (
        "runs", "runs_failed", "planning_runs", "plans_cached", "plans_evicted", "arenas",
        "arena_bytes", "weight_bytes", "runs_canceled", "batches", "batched_runs", "batched_rows",
        "batch_wait_ns", "sliced_runs", "slices")]


SLICE_OFF = 0xffffffff


class Strand:
    def __init__(self, path):
        lib = ctypes.CDLL(path)
        vp, sz, i64p = ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int64)
        lib.strand_errmsg.restype = ctypes.c_char_p
        lib.strand_model_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(vp)]
        lib.strand_session_create.argtypes = [vp, vp, ctypes.POINTER(vp)]
        lib.strand_session_get_stats.argtypes = [vp, ctypes.POINTER(SessionStats)]
        lib.strand_tensor_wrap.argtypes = [ctypes.c_int, i64p, sz, vp, sz, vp, vp, ctypes.POINTER(vp)]
        lib.strand_session_run.argtypes = [vp, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(vp), sz,
                                           vp, ctypes.POINTER(vp), sz]
        lib.strand_tensor_shape.argtypes = [vp, ctypes.POINTER(i64p), ctypes.POINTER(sz)]
        lib.strand_tensor_dtype.argtypes = [vp, ctypes.POINTER(ctypes.c_int)]
        lib.strand_tensor_data.argtypes = [vp, ctypes.POINTER(vp)]
        lib.strand_tensor_byte_size.argtypes = [vp, ctypes.POINTER(sz)]
        for name in ("strand_tensor_release", "strand_session_release", "strand_model_release"):
            getattr(lib, name).argtypes = [vp]
        lib.strand_model_output_count.argtypes = [vp, ctypes.POINTER(sz)]
        self.lib = lib

    def check(self, status, what):
        if status:
            raise RuntimeError(f"{what}: status {status}: {self.lib.strand_errmsg().decode()}")

    def open(self, model_path, slice_rows=None, intra_op=0):
        lib, model, session = self.lib, ctypes.c_void_p(), ctypes.c_void_p()
        self.check(lib.strand_model_load(model_path.encode(), ctypes.byref(model)), "load")
        options = None
        if slice_rows is not None:
            options = SessionOptions(ctypes.sizeof(SessionOptions), intra_op, 0, 0, None, slice_rows)
            options = ctypes.byref(options)
        status = lib.strand_session_create(model, options, ctypes.byref(session))
        count = ctypes.c_size_t()
        lib.strand_model_output_count(model, ctypes.byref(count))
        lib.strand_model_release(model)
        self.check(status, "session")
        return session, count.value

    def run(self, session, n_outputs, feeds):
        lib = self.lib
        names = (ctypes.c_char_p * len(feeds))(*[n.encode() for n in feeds])
        tensors = (ctypes.c_void_p * len(feeds))()
        arrays = []
        for i, (name, a) in enumerate(feeds.items()):
            a = np.ascontiguousarray(a)
            arrays.append(a)
            dims = (ctypes.c_int64 * max(a.ndim, 1))(*a.shape)
            t = ctypes.c_void_p()
            self.check(lib.strand_tensor_wrap(CODES[a.dtype], dims, a.ndim,
                                              a.ctypes.data_as(ctypes.c_void_p), a.nbytes, None, None,
                                              ctypes.byref(t)), f"input {name}")
            tensors[i] = t.value
        outputs = (ctypes.c_void_p * n_outputs)()
        start = time.perf_counter()
        status = lib.strand_session_run(session, names, tensors, len(feeds), None, outputs, n_outputs)
        elapsed = time.perf_counter() - start
        for t in tensors:
            lib.strand_tensor_release(t)
        self.check(status, "run")
        results = []
        for t in outputs:
            dims, rank, dtype, data, size = (ctypes.POINTER(ctypes.c_int64)(), ctypes.c_size_t(),
                                             ctypes.c_int(), ctypes.c_void_p(), ctypes.c_size_t())
            lib.strand_tensor_shape(t, ctypes.byref(dims), ctypes.byref(rank))
            lib.strand_tensor_dtype(t, ctypes.byref(dtype))
            lib.strand_tensor_data(t, ctypes.byref(data))
            lib.strand_tensor_byte_size(t, ctypes.byref(size))
            shape = [dims[i] for i in range(rank.value)]
            raw = ctypes.string_at(data.value, size.value) if size.value else b""
            results.append(np.frombuffer(raw, DTYPES[dtype.value]).reshape(shape).copy())
            lib.strand_tensor_release(t)
        return results, elapsed


    def sliced_runs(self, session):
        stats = SessionStats(struct_size=ctypes.sizeof(SessionStats))
        self.check(self.lib.strand_session_get_stats(session, ctypes.byref(stats)), "stats")
        return stats.sliced_runs


def check_slicing(strand, path, name, feeds, batch, must_slice):
    """Sliced sessions against one that never slices: bit for bit."""
    failed = False
    whole, n_outputs = strand.open(path, SLICE_OFF, 1)
    try:
        expected, _ = strand.run(whole, n_outputs, feeds)
    finally:
        strand.lib.strand_session_release(whole)
    for rows, threads in ((1, 1), (max(batch // 2, 1), 2), (0, 2)):
        session, _ = strand.open(path, rows, threads)
        try:
            for run in range(3):  # plans whole, proves and slices, slices
                got, _ = strand.run(session, n_outputs, feeds)
                same = all(g.shape == e.shape and g.tobytes() == e.tobytes()
                           for g, e in zip(got, expected))
                failed |= not same
                if not same:
                    print(f"FAIL {name} batch {batch} slice_rows {rows} threads {threads} run {run}: "
                          "outputs differ from the unsliced run")
            sliced = strand.sliced_runs(session)
        finally:
            strand.lib.strand_session_release(session)
        if must_slice and sliced == 0:
            failed = True
            print(f"FAIL {name} batch {batch} slice_rows {rows or 'auto'}: never sliced")
        elif not must_slice and sliced:
            failed = True
            print(f"FAIL {name} batch {batch} slice_rows {rows}: sliced a model whose rows mix")
        else:
            print(f"PASS {name} batch {batch} slice_rows {rows or 'auto'} threads {threads}: "
                  f"bit-identical to unsliced, {sliced} sliced runs")
    return failed


def make_inputs(sess, batch, rng):
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) and d >= 0 else (batch if isinstance(d, str) else 1)
                 for d in i.shape]
        if i.type == "tensor(float)":
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
        elif i.type == "tensor(int64)":
            feeds[i.name] = rng.integers(0, 10, shape).astype(np.int64)
        else:
            raise RuntimeError(f"input {i.name}: type {i.type} not handled by this script")
    return feeds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--lib", default=os.path.join(ROOT, "build", "release", "libstrand.so"))
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sliced", action="store_true")
    ap.add_argument("--unsliceable", default="", help="comma-separated model file names")
    args = ap.parse_args()
    strand = Strand(args.lib)
    rng = np.random.default_rng(args.seed)
    failed = False
    for path in args.models:
        name = os.path.basename(path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        session, n_outputs = strand.open(path)
        try:
            for batch in [int(b) for b in args.batch.split(",")]:
                feeds = make_inputs(sess, batch, rng)
                expected = sess.run(None, feeds)
                for run in range(args.runs):
                    got, elapsed = strand.run(session, n_outputs, feeds)
                    for k, (g, e) in enumerate(zip(got, expected)):
                        e = np.asarray(e)
                        ok = g.shape == e.shape and np.allclose(g, e, rtol=args.rtol, atol=args.atol)
                        err = float(np.max(np.abs(g.astype(np.float64) - e))) if g.shape == e.shape and g.size else 0.0
                        rel = err / max(float(np.max(np.abs(e))), 1e-30) if e.size else 0.0
                        verdict = "PASS" if ok else "FAIL"
                        failed |= not ok
                        print(f"{verdict} {name} batch {batch} run {run} output {k} {list(g.shape)}: "
                              f"max abs error {err:.3g} ({rel:.3g} of max), {elapsed * 1e3:.1f} ms")
                if args.sliced and batch > 1:
                    failed |= check_slicing(strand, path, name, feeds, batch,
                                            name not in args.unsliceable.split(","))
        finally:
            strand.lib.strand_session_release(session)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
