"""What `fgvctune doctor` finds, measured against labels flipped on purpose, and what excluding it buys.

    .venv/bin/python benchmarks/doctor.py [--seeds 5] [--rates 0.05,0.15] [--datasets digits,sample] [--retrain]

For each dataset, rate and seed, that share of the training labels is flipped to another class at random (the
seed's), in a class tree of hard links to the clean images (the noisy data, as a user would have it on disk). Then:

1. `fgvctune train` on the noisy data (the run the user has), from scratch (no pretrained weights here);
2. `fgvctune doctor RUN --split train --issues label`: its label issues against the flips, precision (found that
   were flipped) and recall (flipped that were found);
3. `fgvctune train --exclude doctor.csv` and `--relabel doctor.csv` on the noisy data, and `train` on the clean
   data: final top-1 on the same clean evaluation split, each against the noisy run, paired over seeds (95%
   interval, Student's t).

The datasets: scikit-learn's 1,797 real handwritten digits (32 px, 75% train / 25% val per class), and the bundled
FGVC-Aircraft sample at the manufacturer level (128 trainval / 64 test images, 3 classes: from scratch on 128
images the features separate the manufacturers; the 8 variants need pretrained weights, which cannot be fetched
here). With --retrain the doctor trains a fgvctune run per fold (`--folds 5 --retrain`) instead of the logistic
regression on features.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, load, table  # noqa: E402
from parity import mean_sd, paired, sample_tree  # noqa: E402

FGVCTUNE = [sys.executable, "-m", "fgvctune"]
# Each dataset's clean class tree, and the settings its runs train with (from scratch: nothing to download).
SETTINGS = {
    "digits": "--no-pretrained --image-resize 32 --batch-size 32 --scale 0.7 1.0 --hflip 0 --opt adamw --lr 0.005 "
    "--epoch-size 3",
    "sample": "--no-pretrained --image-resize 32 --batch-size 16 --scale 0.5 1.0 --lr 0.05 --epoch-size 10",
}


def digits_tree(root: Path) -> Path:
    """The 1,797 digits as 32 px RGB PNGs, every fourth of each class held out for val."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    seen: dict[int, int] = {}
    for index in np.random.default_rng(0).permutation(len(data.images)):
        label = int(data.target[index])
        seen[label] = seen.get(label, 0) + 1
        split = "val" if seen[label] % 4 == 0 else "train"
        path = root / split / str(label) / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = (data.images[index] * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32), Image.BILINEAR).convert("RGB").save(path)
    return root


def manufacturer_tree(root: Path) -> Path:
    return sample_tree(root, "manufacturer")


DATASETS = {"digits": digits_tree, "sample": manufacturer_tree}


def noisy_tree(clean: Path, out: Path, rate: float, seed: int) -> set[str]:
    """`out`: `clean` as hard links, with `rate` of the training images (rounded) in another class's folder, chosen
    at random by `seed`; returns their ids in `out` (train/<class>/<file>)."""
    classes = sorted(p.name for p in (clean / "train").iterdir())
    images = sorted((clean / "train").glob("*/*"))
    rng = random.Random(seed)
    flipped = set(rng.sample(range(len(images)), round(rate * len(images))))
    ids = set()
    for split in ("train", "val"):
        for i, path in enumerate(sorted((clean / split).glob("*/*"))):
            label = path.parent.name
            if split == "train" and i in flipped:
                label = rng.choice([c for c in classes if c != label])
                ids.add(f"train/{label}/{path.name}")
            target = out / split / label / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    return ids


def fgvctune(*args: str) -> float:
    """Run a command; its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run([*FGVCTUNE, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"fgvctune {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - started


def train(tree: Path, out: Path, dataset: str, seed: int, *extra: str) -> float:
    """Final val top-1 of a run."""
    fgvctune("train", "-a", "folder", "-d", str(tree), "-o", str(out), f"--seed={seed}", *SETTINGS[dataset].split(),
             "--cache-dir", str(out.parent / "cache"), *extra)  # fmt: skip
    return float((out / "results.txt").read_text().splitlines()[-1].split("\t")[3])


def found_issues(doctor_csv: Path) -> set[str]:
    import csv

    with open(doctor_csv, newline="") as f:
        return {row["id"] for row in csv.DictReader(f) if row["issue"] == "label"}


def one_seed(dataset: str, clean: Path, rate: float, seed: int, work: Path, retrain: bool) -> dict:
    tree = work / "tree"
    flips = noisy_tree(clean, tree, rate, seed)
    noisy = train(tree, work / "noisy", dataset, seed)
    how = ["--folds", "5", "--retrain"] if retrain else []
    seconds = fgvctune("doctor", str(work / "noisy"), "--split", "train", "--issues", "label", "-o",
                       str(work / "doctor"), "--seed", str(seed), *how)  # fmt: skip
    found = found_issues(work / "doctor" / "doctor.csv")
    report = work / "doctor" / "doctor.csv"
    return {
        "flips": len(flips),
        "found": len(found),
        "precision": len(found & flips) / len(found) if found else 1.0,
        "recall": len(found & flips) / len(flips) if flips else 1.0,
        "doctor_seconds": seconds,
        "noisy": noisy,
        "exclude": train(tree, work / "exclude", dataset, seed, "--exclude", str(report)),
        "relabel": train(tree, work / "relabel", dataset, seed, "--relabel", str(report)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--rates", default="0.05,0.15")
    parser.add_argument("--datasets", default="digits,sample")
    parser.add_argument("--retrain", action="store_true", help="the doctor trains a run per fold")
    args = parser.parse_args()
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    rates = [float(r) for r in args.rates.split(",")]
    print(describe())
    print(f"load at start {load()}; {args.seeds} seeds; doctor {'--retrain' if args.retrain else 'linear'}", flush=True)
    rows, accuracy = [], []
    for name in args.datasets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            clean = DATASETS[name](Path(tmp) / "clean")
            images = sum(1 for _ in (clean / "train").glob("*/*"))
            clean_top1 = {seed: train(clean, Path(tmp) / f"clean-{seed}", name, seed) for seed in seeds}
            for rate in rates:
                results = []
                for seed in seeds:
                    r = one_seed(name, clean, rate, seed, Path(tmp) / f"{rate}-{seed}", args.retrain)
                    results.append(r)
                    print(f"  {name} {rate:.0%} seed {seed}: {r['flips']} flipped, {r['found']} found, precision "
                          f"{r['precision']:.2f} recall {r['recall']:.2f} ({r['doctor_seconds']:.0f} s); top-1 noisy "
                          f"{r['noisy']:.3f} exclude {r['exclude']:.3f} relabel {r['relabel']:.3f} clean "
                          f"{clean_top1[seed]:.3f}; load {load()}", flush=True)  # fmt: skip
                column = {key: [r[key] for r in results] for key in results[0]}
                rows.append([
                    f"{name} ({images} train)", f"{rate:.0%}", f"{statistics.mean(column['flips']):.0f}",
                    f"{statistics.mean(column['found']):.1f}", mean_sd(column["precision"]),
                    mean_sd(column["recall"]), f"{statistics.mean(column['doctor_seconds']):.0f}",
                ])  # fmt: skip
                clean_runs = [clean_top1[seed] for seed in seeds]
                accuracy.append([
                    name, f"{rate:.0%}", mean_sd(column["noisy"]), mean_sd(column["exclude"]),
                    paired(column["exclude"], column["noisy"]), mean_sd(column["relabel"]),
                    paired(column["relabel"], column["noisy"]), mean_sd(clean_runs),
                    paired(clean_runs, column["noisy"]),
                ])  # fmt: skip
    print("\nlabel issues found by `fgvctune doctor --issues label` against the flipped labels (mean ± sd over seeds)")
    print(table(["dataset", "flipped", "flips", "found", "precision", "recall", "doctor s"], rows))
    print("\nfinal top-1 on the clean evaluation split (mean ± sd; differences paired over seeds, 95% CI)")
    print(table(["dataset", "flipped", "noisy", "--exclude", "- noisy", "--relabel", "- noisy", "clean", "- noisy"],
                accuracy))  # fmt: skip
    print(f"load at end {load()}")


if __name__ == "__main__":
    main()
