"""Where a training step's time goes, op type by op type: MindSpore's profiler over fgvctune's step.

    .venv/bin/python benchmarks/profile_ops.py resnet50 [--steps 3] [--top 12]
        [--kind train|freeze7|probe|infer|latency] [--plain]

The cases of train_step.py (random tensors at 224 px, batch 16 for training, 32 for inference, 1 for latency;
`freeze7` and `probe` with frozen blocks as `train` sets them up), on fgvctune's model (`--plain`: MindCV's model
without fgvctune's swaps or folding, oneDNN still capped). The profiler's raw output goes to a temporary folder and is
deleted; what is printed is the top op types by their share of all op time.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, load, table  # noqa: E402
from train_step import BATCHES, SIZE, mindspore_step  # noqa: E402


def op_times(folder: Path) -> dict[str, float]:
    """Total time per op type (ms) from the profiler's CPU op-type table."""
    totals: dict[str, float] = defaultdict(float)
    for path in folder.rglob("*.csv"):
        if not path.name.startswith("cpu_op_type_info"):
            continue
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                kind = row.get("op_type")
                total = row.get("total_compute_time") or row.get("total_time")
                if kind and total:
                    totals[kind] += float(total)
        if totals:
            break
    return dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--kind", default="train", choices=list(BATCHES))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--plain", action="store_true", help="MindCV's model without fgvctune's swaps")
    args = parser.parse_args()

    from fgvctune import runtime

    ms = runtime.start()
    batch = BATCHES[args.kind]
    step, images, labels = mindspore_step(args.model, args.kind, SIZE, batch, tuned=not args.plain)
    for _ in range(2):
        out = step(images, labels)
    (out[0] if isinstance(out, tuple) else out).asnumpy()
    with tempfile.TemporaryDirectory() as tmp:
        profiler = ms.Profiler(output_path=tmp)
        for _ in range(args.steps):
            out = step(images, labels)
        (out[0] if isinstance(out, tuple) else out).asnumpy()
        profiler.stop()
        profiler.analyse()
        totals = op_times(Path(tmp))
        if not totals:
            print("the profiler wrote no op table; files:", *sorted(p.name for p in Path(tmp).rglob("*")))
            return
    whole = sum(totals.values())
    print(describe())
    print(
        f"{args.model}, {args.kind} at 224 px, batch {batch}, {'MindCV plain' if args.plain else 'fgvctune'}, "
        f"{args.steps} profiled steps, load {load()}; op time per step {whole / args.steps:.0f} ms"
    )
    rows = sorted(totals.items(), key=lambda kv: -kv[1])[: args.top]
    print(
        table(
            ["op type", "ms per step", "share"],
            [[kind, f"{t / args.steps:.1f}", f"{t / whole:.1%}"] for kind, t in rows],
        )
    )


if __name__ == "__main__":
    main()
