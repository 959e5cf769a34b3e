"""What one op costs in a MindSpore graph on this CPU, by size: a chain of hard swishes through fgvctune's kernel
(kernels/csrc/activation.cc, on the calling thread below common.h's kParallelWork, on OpenMP's threads from it) and
through MindSpore's HSwish, in graph mode.

    .venv/bin/python benchmarks/op_cost.py [--ops 50] [--repeats 100]

Microseconds per op: a graph of `--ops` hard swishes in a row, timed over `--repeats` calls (each waiting for its
result), less a graph of one, divided by the ops between them. Small tensors show the cost of the op itself
(launch, and waking threads where a kernel does); large ones its arithmetic.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, load, table  # noqa: E402

SIZES = [1_024, 16_384, 65_536, 262_144, 524_288, 1_048_576, 4_194_304]  # floats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()

    from fgvctune import runtime

    ms = runtime.start()
    import numpy as np
    from mindspore import nn

    from fgvctune.kernels import build, cells

    class Chain(nn.Cell):
        def __init__(self, count: int, kernel: bool):
            super().__init__()
            self.count = count
            self.act = cells.HardSwish(nn.HSwish(), build.library()) if kernel else nn.HSwish()

        def construct(self, x):
            for _ in range(self.count):
                x = self.act(x)
            return x

    def seconds(network, x) -> float:
        for _ in range(3):
            network(x).asnumpy()
        started = time.perf_counter()
        for _ in range(args.repeats):
            network(x).asnumpy()
        return (time.perf_counter() - started) / args.repeats

    if not build.library():
        sys.exit("fgvctune's kernels cannot be built here")
    chains = {kernel: (Chain(1, kernel), Chain(args.ops, kernel)) for kernel in (True, False)}
    rows = []
    for size in SIZES:
        x = ms.Tensor(np.random.default_rng(0).standard_normal(size).astype(np.float32))
        row = [f"{size:,}"]
        for kernel in (True, False):
            one, many = chains[kernel]
            row.append(f"{(seconds(many, x) - seconds(one, x)) / (args.ops - 1) * 1e6:.1f}")
        rows.append(row)
    print(describe())
    print(f"hard swish, a graph of {args.ops} in a row, {args.repeats} calls, load {load()}")
    print(table(["floats", "fgvctune's kernel (us per op)", "MindSpore's HSwish (us per op)"], rows))


if __name__ == "__main__":
    main()
