"""MobileNetV3's depthwise convolutions, forward and backward, op by op: MindSpore's Conv2D with one group per channel
and fgvctune's own kernel (kernels/csrc/depthwise.cc) against PyTorch's when it is installed.

    .venv/bin/python benchmarks/depthwise.py [--torch-python PATH] [--repeats 20]

The shapes are mobilenet_v3_small_100's 5x5 depthwise layers at 224 px, batch 16 (features.7-8 at 14x14 with 240
channels, features.12-13 at 7x7 with 576), the ones that take most of a `--freeze 7` step (profile_ops.py). Time per
call of forward plus the gradients of the input and the weight, in ms (the loss, a squared sum, included on every
side).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, load, table  # noqa: E402

SHAPES = [(16, 240, 14, 5), (16, 576, 7, 5)]  # batch, channels, height = width, kernel


def mindspore_times(repeats: int) -> dict:
    import numpy as np

    from fgvctune import runtime

    ms = runtime.start()
    from mindspore import nn

    class SquaredSum(nn.Cell):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def construct(self, x):
            return (self.inner(x) ** 2).sum()

    from fgvctune.kernels import cells

    times = {}
    for batch, channels, size, k in SHAPES:
        x = ms.Tensor(np.random.default_rng(0).standard_normal((batch, channels, size, size)).astype(np.float32))
        for name in ("MindSpore", "fgvctune kernel"):
            conv = nn.Conv2d(channels, channels, k, pad_mode="pad", padding=k // 2, group=channels)
            if name != "MindSpore" and not cells.swap(conv, "depthwise"):
                continue  # no C++ compiler here
            grad = ms.jit(ms.value_and_grad(SquaredSum(conv), 0, conv.trainable_params()))
            for _ in range(3):
                out = grad(x)
            out[0].asnumpy()
            started = time.perf_counter()
            for _ in range(repeats):
                out = grad(x)
            out[0].asnumpy()
            times[f"{name} {channels}x{size}x{size}"] = 1000 * (time.perf_counter() - started) / repeats
    return times


def torch_times(repeats: int) -> dict:
    import torch

    times = {}
    for batch, channels, size, k in SHAPES:
        x = torch.randn(batch, channels, size, size, requires_grad=True)
        conv = torch.nn.Conv2d(channels, channels, k, padding=k // 2, groups=channels)
        for _ in range(3):
            (conv(x) ** 2).sum().backward()
        started = time.perf_counter()
        for _ in range(repeats):
            (conv(x) ** 2).sum().backward()
        times[f"PyTorch {channels}x{size}x{size}"] = 1000 * (time.perf_counter() - started) / repeats
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", default=sys.executable, help="the python that has torch")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--side", choices=["mindspore", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        times = mindspore_times(args.repeats) if args.side == "mindspore" else torch_times(args.repeats)
        print(json.dumps(times))
        sys.stdout.flush()
        os._exit(0)  # skip MindSpore's noisy teardown
    print(describe())
    rows = []
    for side, python in (("mindspore", sys.executable), ("torch", args.torch_python)):
        command = [python, __file__, "--side", side, "--repeats", str(args.repeats)]
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "GLOG_v": "3"})
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if not lines:
            rows.append([side, "failed: " + (result.stderr.strip().splitlines() or ["?"])[-1][:60], load()])
            continue
        rows += [[name, f"{ms:.2f}", load()] for name, ms in json.loads(lines[-1]).items()]
    print(table(["depthwise 5x5, forward + both gradients", "ms per call", "load"], rows))


if __name__ == "__main__":
    main()
