"""The training features measured on real images over several seeds: EMA on and off, test-time augmentation
on and off, class weights and the balanced sampler on a dataset made imbalanced, lr-find's suggestion beside a
sweep of final top-1, and the speed of each amp_level on this CPU.

    .venv/bin/python benchmarks/features.py [--seeds 3] [--epochs 12] [--parts ema,imbalance,lr,amp]

Data: scikit-learn's real handwritten digits through the `folder` adapter, 30 training and 15 validation images
per class at 32 px; the imbalanced set keeps 3 training images of digit 0 (10% of the others), the validation
set stays balanced. The recipe is parity.py's (mobilenet_v3_small from scratch, AdamW lr 0.003, wd 1e-4, label
smoothing 0.1, cosine with one warm-up epoch, batch 16) at 32 px. Every run is its own `fgvctune` process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import parity  # noqa: E402
from machine import describe, load, table  # noqa: E402
from parity import RECIPE, mean_sd  # noqa: E402

SETTINGS = {**RECIPE, "image_resize": 32}


def digits_tree(root: Path, small_class: int | None = None) -> Path:
    """Real digits, 30 training and 15 validation images per class, as a class tree of 32 px PNGs."""
    return parity.digits_tree(root, 30, 15, size=32, small_class=small_class)


def fgvctune(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "fgvctune", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"fgvctune {' '.join(args[:3])} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return done.stdout


def train(tree: Path, out: Path, seed: int, epochs: int, *extra: str) -> dict:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items()]
    started = time.perf_counter()
    said = fgvctune(
        *("train", "-a", "folder", "-d", str(tree), "--no-pretrained", f"--epoch-size={epochs}", f"--seed={seed}"),
        *("-o", str(out), "--cache-dir", str(out.parent / "cache"), *flags, *extra),
    )
    rows = [line.split("\t") for line in (out / "results.txt").read_text().splitlines()[1:]]
    evaluation = json.loads((out / "eval-val" / "eval.json").read_text())
    return {
        "final": float(rows[-1][3]),
        "top1": evaluation["top1"],
        "mean_per_class": evaluation["mean_per_class"],
        "rate": float(
            [line for line in said.splitlines() if line.startswith("epoch ")][-1].split(" img/s")[0].split()[-1]
        ),
        "seconds": time.perf_counter() - started,
    }


def evaluated(run: Path, tta: str) -> dict:
    return json.loads(fgvctune("eval", str(run), "--tta", tta, "--json", "-o", str(run / f"eval-{tta}")))


def ema_and_tta(root: Path, seeds: list[int], epochs: int) -> None:
    tree = digits_tree(root / "digits")
    rows, tta = [], {"none": [], "flip": [], "crops": []}
    variants = {
        "off": ("EMA off", ()),
        "mindcv": ("--ema (decay 0.9999, MindCV's warm-up over 2000 updates)", ("--ema",)),
        "short": ("--ema --ema-decay 0.99 --ema-warmup 50", ("--ema", "--ema-decay", "0.99", "--ema-warmup", "50")),
    }
    for key, (name, extra) in variants.items():
        found = [train(tree, root / f"EMA-{key}-{s}", s, epochs, *extra) for s in seeds]
        rows.append([name, mean_sd([r["final"] for r in found]), mean_sd([r["top1"] for r in found])])
        if not extra:
            for s in seeds:
                run = root / f"EMA-off-{s}"
                for mode in tta:
                    tta[mode].append(evaluated(run, mode)["top1"])
    print(table(["digits, 300 / 150, 32 px", "final val top-1", "best.ckpt top-1"], rows))
    print()
    names = {"none": "plain", "flip": "flip (image and mirror)", "crops": "five crops"}
    print(table(["best.ckpt of the EMA-off runs", "top-1"], [[names[m], mean_sd(v)] for m, v in tta.items()]))


def imbalance(root: Path, seeds: list[int], epochs: int) -> None:
    tree = digits_tree(root / "imbalanced", small_class=0)
    rows = []
    for name, extra in (
        ("plain", ()),
        ("--class-weights balanced", ("--class-weights", "balanced")),
        ("--sampler balanced", ("--sampler", "balanced")),
    ):
        folders = [root / f"imbalanced-{name.strip('-').split()[0]}-{s}" for s in seeds]
        found = [train(tree, folder, s, epochs, *extra) for s, folder in zip(seeds, folders)]
        zero = [json.loads((f / "eval-val" / "eval.json").read_text())["per_class"]["0"]["accuracy"] for f in folders]
        mean = mean_sd([r["mean_per_class"] for r in found])
        rows.append([name, mean, mean_sd([r["top1"] for r in found]), mean_sd(zero)])
    print(table(["digit 0 at 3 of 30 training images", "mean per-class", "top-1", "digit 0 accuracy"], rows))


def learning_rates(root: Path, seeds: list[int], epochs: int) -> None:
    tree = digits_tree(root / "digits-lr")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items() if k != "lr"]
    out = fgvctune(
        *("lr-find", "-a", "folder", "-d", str(tree), "--no-pretrained", "-o", str(root / "lr-find")),
        *("--cache-dir", str(root / "cache"), *flags),
    )
    print(out.strip().splitlines()[-3])
    rows = []
    for lr in (0.0003, 0.001, 0.003, 0.01, 0.03):
        found = [train(tree, root / f"lr-{lr}-{s}", s, epochs, f"--lr={lr}") for s in seeds]
        rows.append([f"{lr:g}", mean_sd([r["final"] for r in found])])
    print(table(["lr", "final val top-1"], rows))


def precision(root: Path, seeds: list[int], epochs: int) -> None:
    tree = digits_tree(root / "digits-amp")
    rows = []
    for level in ("O0", "O1", "O2", "O3"):
        found = train(tree, root / f"amp-{level}", seeds[0], 2, f"--amp-level={level}")
        rows.append([level, f"{found['rate']:.1f}"])
    print(table(["amp_level", "images/s (epoch 2, one run)"], rows))


PARTS = {"ema": ema_and_tta, "imbalance": imbalance, "lr": learning_rates, "amp": precision}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--parts", default=",".join(PARTS))
    args = parser.parse_args()
    print(describe())
    print(f"load before: {load()}")
    seeds = list(range(1, args.seeds + 1))
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts.split(","):
            started = time.perf_counter()
            print(f"\n## {part} ({args.epochs} epochs, seeds {seeds})")
            PARTS[part](Path(tmp), seeds, args.epochs)
            print(f"({time.perf_counter() - started:.0f} s; load {load()})")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
