#!/usr/bin/env python3
"""Writes the .npy fixtures that tests/io/test_npy.c reads, with NumPy itself.

    python3 tests/data/make_npy.py [OUTDIR]      (default: tests/data/npy)

Needs numpy and ml_dtypes (scripts/venv.sh installs both). Two kinds of file:

  * arrays strand must read. Their dtype, shape and values are also written
    to expected.txt in plain text, so the C test compares strand's reading
    against what NumPy meant, not against strand's own writer:
        NAME DTYPE RANK DIM... : VALUE...
    Integers are decimal; floats are Python's repr of the value as a double
    ('inf', '-inf', 'nan', '-0.0' included), exact for every float type here;
    bools are 0 or 1. Lines starting with '#' are comments.
  * arrays strand must refuse (Fortran order, big-endian, object, complex,
    strings, structured, datetime), named unsupported_*.npy; the C test holds
    the expected statuses.

The output is deterministic: running the script again gives identical files.
"""
import os
import sys

import numpy as np
import numpy.lib.format as npformat

try:
    import ml_dtypes
except ImportError:  # pragma: no cover
    sys.exit("make_npy.py needs ml_dtypes (pip install ml_dtypes, or scripts/venv.sh)")

STRAND_NAMES = {
    np.dtype(np.float16): "float16",
    np.dtype(np.float32): "float32",
    np.dtype(np.float64): "float64",
    np.dtype(np.int8): "int8",
    np.dtype(np.int16): "int16",
    np.dtype(np.int32): "int32",
    np.dtype(np.int64): "int64",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.uint16): "uint16",
    np.dtype(np.uint32): "uint32",
    np.dtype(np.uint64): "uint64",
    np.dtype(np.bool_): "bool",
    np.dtype(ml_dtypes.bfloat16): "bfloat16",
}


def text(value, dtype):
    if dtype == np.dtype(np.bool_):
        return "1" if value else "0"
    if dtype.kind in "iu":
        return str(int(value))
    return repr(float(value))


def readable(name, array, version=None):
    """An array strand reads: the file plus its line in expected.txt."""
    path = os.path.join(OUT, name + ".npy")
    with open(path, "wb") as f:
        if version is None:
            np.save(f, array)
        else:
            npformat.write_array(f, array, version=version)
    flat = array.reshape(-1)
    fields = [name + ".npy", STRAND_NAMES[array.dtype], str(array.ndim)]
    fields += [str(d) for d in array.shape]
    fields.append(":")
    fields += [text(v, array.dtype) for v in flat]
    EXPECTED.append(" ".join(fields))


def refused(name, array, **kwargs):
    with open(os.path.join(OUT, "unsupported_" + name + ".npy"), "wb") as f:
        np.save(f, array, **kwargs)


def main():
    f32 = np.float32
    readable("float32_2x3", np.array([[0.5, -1.25, 3.0e38], [np.inf, -np.inf, np.nan]], f32))
    readable("float32_neg_zero", np.array([-0.0, 1.0e-45, 1.17549435e-38], f32))
    readable("float16_6", np.array([0.0, -0.0, 65504.0, 5.96e-8, 1 / 3, -2.0], np.float16))
    readable("bfloat16_2x2", np.array([[1.0, -2.5], [3.140625, 1.0e38]], ml_dtypes.bfloat16))
    readable("float64_4", np.array([np.pi, -1.0e308, 5.0e-324, -np.inf], np.float64))
    readable("int8_4", np.array([-128, 127, 0, -1], np.int8))
    readable("int16_3", np.array([-32768, 32767, 12345], np.int16))
    readable("int32_3", np.array([-(2**31), 2**31 - 1, -7], np.int32))
    readable("int64_3", np.array([-(2**63), 2**63 - 1, 1 << 40], np.int64))
    readable("uint8_4", np.array([0, 1, 128, 255], np.uint8))
    readable("uint16_2", np.array([0, 65535], np.uint16))
    readable("uint32_2", np.array([4000000000, 1], np.uint32))
    readable("uint64_3", np.array([2**64 - 1, 2**63, 3], np.uint64))
    readable("bool_2x2", np.array([[True, False], [False, True]]))
    readable("scalar_float64", np.array(42.5))
    readable("scalar_bool", np.array(True))
    readable("rank5_int16", np.arange(12, dtype=np.int16).reshape(1, 2, 1, 3, 2) - 5)
    readable("empty_float32_0x3", np.zeros((0, 3), f32))
    readable("empty_uint8_2x0x4", np.zeros((2, 0, 4), np.uint8))
    readable("version2_float32", np.array([[1.5, 2.5]], f32), version=(2, 0))
    readable("version3_int32", np.array([1, -2, 3], np.int32), version=(3, 0))
    # A 1-D array is both C and Fortran contiguous; NumPy writes False.
    readable("fortran_1d_float64", np.asfortranarray(np.array([1.0, 2.0])))

    refused("fortran_2x3", np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)))
    refused("big_endian_int32", np.array([1, 2], dtype=">i4"))
    refused("object", np.array([1, "a"], dtype=object), allow_pickle=True)
    refused("complex64", np.array([1 + 2j], np.complex64))
    refused("unicode", np.array(["abc"]))
    refused("structured", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i2")]))
    refused("datetime", np.array(["2024-01-01"], dtype="datetime64[ns]"))

    with open(os.path.join(OUT, "expected.txt"), "w") as f:
        f.write("# written by tests/data/make_npy.py with numpy %s; do not edit\n"
                % np.__version__)
        f.write("# NAME DTYPE RANK DIM... : VALUE...\n")
        for line in EXPECTED:
            f.write(line + "\n")


OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "npy")
EXPECTED = []

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    main()
