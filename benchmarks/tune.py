"""What `fgvctune tune` finds on the bundled sample: the best trial against the worst, over seeds.

    .venv/bin/python benchmarks/tune.py [--seeds 3] [--trials 6] [--epochs 5] [--pruning-startup 2]

For each seed, `fgvctune tune` (its own process, a study of its own) searches SPACE on the bundled FGVC-Aircraft
sample at the manufacturer level (128 trainval / 64 test images, 3 classes), from scratch (MindCV's ImageNet weights
cannot be fetched here; from scratch on 128 images the features separate the manufacturers, not the 8 variants),
with --trials finished trials of --epochs epochs, the median pruner on after --pruning-startup completed trials.
Per seed: the best trial's validation top-1 (the study's objective: a run's best epoch), the worst finished trial's
(pruned ones included, at the epochs they trained), best - worst (mean ± sd over the seeds and its 95% interval by
Student's t, paired by seed), the wall time, and the trials pruned with the epochs they trained. The trial seeds
are the study's seed: trials differ only by the values searched.

About 3 minutes per seed with the defaults on a 2-core Xeon (a trial of 8 epochs: about 30 s, a third of it compiling
the graph); run it alone, as every trial uses both cores. Measured 2026-12-06 (2-core Intel Xeon, load 2.8-3.1 as a
test ran alongside): best 100.0% in every seed, worst 37.5% (the majority class: rates too small to learn in 8
epochs), best - worst +62.5 points; 0, 4 and 3 trials pruned, each after 5 epochs; 171-185 s a study.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, load, table  # noqa: E402
from parity import mean_sd, paired  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SPACE = """\
lr: {low: 1.0e-4, high: 0.1, log: true}
freeze: [0, 7]
image_resize: [32, 48]
label_smoothing: {low: 0.0, high: 0.2}
"""
# The sample from scratch at small sizes: the rest of each trial's config (the adapter's --level last).
BASE = ["-a", "aircraft", "-d", str(REPO / "data" / "aircraft-sample"), "--no-pretrained", "--batch-size", "16"]
BASE += ["--scale", "0.5", "1.0", "--level", "manufacturer"]  # momentum SGD: the plain defaults, from scratch


def tune(folder: Path, seed: int, trials: int, epochs: int, pruning_startup: int) -> dict:
    """One study in `folder`: the finished trials' rows of trials.csv and the wall time."""
    folder.mkdir(parents=True)
    space = folder / "space.yaml"
    space.write_text(SPACE, encoding="utf-8")
    command = [sys.executable, "-m", "fgvctune", "tune", "--seed", str(seed), "--epoch-size", str(epochs)]
    command += ["--space", str(space), "--trials", str(trials), "--pruning-startup", str(pruning_startup)]
    command += ["--cache-dir", str(folder.parent / "cache"), "-o", str(folder / "tune"), *BASE]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"fgvctune tune failed (seed {seed}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    with open(folder / "tune" / "trials.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["state"] in ("COMPLETE", "PRUNED") and r["best_val_top1"]]
    return {"rows": rows, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--pruning-startup", type=int, default=2)
    args = parser.parse_args()
    print(describe())
    print(f"load before: {load()}; {args.trials} trials of {args.epochs} epochs per seed; space:\n{SPACE}")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    best, worst, lines = [], [], []
    headers = ["seed", "best", "worst", "best - worst", "pruned", "seconds", "load"]
    with tempfile.TemporaryDirectory() as root:
        for seed in seeds:
            study = tune(Path(root) / f"seed-{seed}", seed, args.trials, args.epochs, args.pruning_startup)
            top1 = {int(r["trial"]): float(r["best_val_top1"]) for r in study["rows"]}
            completed = [float(r["best_val_top1"]) for r in study["rows"] if r["state"] == "COMPLETE"]
            pruned = [int(r["epochs"]) for r in study["rows"] if r["state"] == "PRUNED"]
            best.append(max(completed))
            worst.append(min(top1.values()))
            said = f"{len(pruned)} (epochs {', '.join(map(str, pruned))})" if pruned else "0"
            gap = f"{best[-1] - worst[-1]:+.1%}"
            lines.append([seed, f"{best[-1]:.1%}", f"{worst[-1]:.1%}", gap, said, f"{study['seconds']:.0f}", load()])
            print(table(headers, lines[-1:]), flush=True)
    print()
    print(table(headers, lines))
    print(f"best: {mean_sd(best)}; worst: {mean_sd(worst)}; best - worst: {paired(best, worst)} (95% CI, t)")
    print(f"seconds per study: {statistics.mean(float(line[5]) for line in lines):.0f}")


if __name__ == "__main__":
    main()
