"""fgvctune's kernels wake OpenMP's sleeping threads only for work worth it (csrc/common.h, parallel_worth): small
work runs on the calling thread, large work on the pool, with the same results either way.

Each case runs in a fresh process, where OpenMP has not made its threads yet: a kernel that opens a parallel region
makes them, so the process's thread count (/proc/self/task) says whether a call went parallel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fgvctune.kernels import build

PROBE = r"""
import ctypes, json, os, sys
import numpy as np

library = ctypes.CDLL(sys.argv[1])
threads = lambda: len(os.listdir("/proc/self/task"))


def call(name, inputs, output_shape):
    # MindSpore's aot signature: the inputs' and the output's pointers, ranks, shapes and dtypes
    arrays = [np.ascontiguousarray(a) for a in inputs] + [np.zeros(output_shape, np.float32)]
    shapes = [(ctypes.c_int64 * a.ndim)(*a.shape) for a in arrays]
    count = len(arrays)
    status = getattr(library, name)(
        count,
        (ctypes.c_void_p * count)(*[a.ctypes.data for a in arrays]),
        (ctypes.c_int * count)(*[a.ndim for a in arrays]),
        (ctypes.POINTER(ctypes.c_int64) * count)(*[ctypes.cast(s, ctypes.POINTER(ctypes.c_int64)) for s in shapes]),
        (ctypes.c_char_p * count)(*[str(a.dtype).encode() for a in arrays]),
        None,
        None,
    )
    assert status == 0, name
    return arrays[-1]


rng = np.random.default_rng(0)
name, small, large = sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
report = {"before": threads()}
for size, shapes in (("small", small), ("large", large)):
    if name == "HSwishForward":
        x = rng.standard_normal(shapes[0]).astype(np.float32)
        y = call(name, [x], x.shape)
        expected = x * np.clip(x + 3, 0, 6) / 6
    else:  # DenseForward: x (M, K) @ w (N, K).T
        x, w = (rng.standard_normal(s).astype(np.float32) for s in shapes)
        y = call(name, [x, w, np.zeros(1, np.int64)], (x.shape[0], w.shape[0]))
        expected = x.astype(np.float64) @ w.T.astype(np.float64)
    report[size] = threads()
    report[size + "_error"] = float(np.abs(y - expected).max() / (np.abs(expected).max() + 1e-12))
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def library():
    path = build.library()
    if not path or not build.onednn():
        pytest.skip("fgvctune's kernels (with oneDNN) cannot be built here")
    return path


@pytest.mark.parametrize(
    "name, small, large",
    [
        # an elementwise kernel: 4,096 elements, then 4 million
        ("HSwishForward", [[4, 16, 8, 8]], [[16, 16, 128, 128]]),
        # a oneDNN matrix product: 32 x 256 x 256 multiply-adds, then 256 x 512 x 512
        ("DenseForward", [[32, 256], [256, 256]], [[256, 512], [512, 512]]),
    ],
)
def test_small_work_stays_on_the_calling_thread_and_large_work_uses_the_pool(library, name, small, large):
    environment = {**os.environ, "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    run = subprocess.run(
        [sys.executable, "-c", PROBE, library, name, json.dumps(small), json.dumps(large)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    assert report["small"] == report["before"], "a small call woke OpenMP's threads"
    assert report["large"] > report["before"], "a large call stayed on one thread"
    assert report["small_error"] < 1e-5 and report["large_error"] < 1e-5
