"""End to end on FGVC-sized JPEGs: `fgvctune train` against a PyTorch loop (timm model, torchvision ImageFolder,
DataLoader with 2 workers, SGD), side by side in one run, in images per second per steady epoch.

    .venv/bin/python benchmarks/end_to_end.py [--model mobilenet_v3_small_100] [--epochs 3] [--images 960]
        [--torch-python /path/to/venv/bin/python] [--variants plain downscale online online-downscale]

Generated photo-like JPEGs of 1024x680 (FGVC-Aircraft's size), 8 classes, a class tree root/{train,val}/<class>;
training at 224 px, batch 32, random resized crop and flip (both sides the same), from random weights. Epoch 1
compiles and warms up; the figures are the later epochs, training only (each side's validation pass is not timed).
Each fgvctune variant is one `fgvctune train` run: `plain` reads the full-size tree offline (fgvctune's old
default), `downscale` with `--downscale`, `online` and `online-downscale` read online.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import MODELS, describe, load, table  # noqa: E402

VARIANTS = {
    "plain": ["--read", "offline", "--no-downscale"],
    "downscale": ["--read", "offline", "--downscale"],
    "online": ["--read", "online", "--no-downscale"],
    "online-downscale": ["--read", "online", "--downscale"],
}
SIZE, BATCH, CLASSES = 224, 32, 8


def make_tree(root: Path, images: int, val: int, size=(1024, 680), seed: int = 0) -> Path:
    """root/{train,val}/<class>/<n>.jpg: photo-like pictures (smooth fields, gradients, fine noise) so that
    decoding costs what a photo's does; 32 distinct pictures reused."""
    import random

    from PIL import Image

    rng = random.Random(seed)
    pictures = []
    for i in range(32):
        base = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), 8 * i))
        noise = Image.effect_noise(size, 40).convert("RGB")
        gradient = Image.linear_gradient("L").rotate(rng.randrange(360)).resize(size).convert("RGB")
        pictures.append(Image.blend(Image.blend(base, gradient, 0.3), noise, 0.25))
    for split, count in (("train", images), ("val", val)):
        for n in range(count):
            path = root / split / f"class-{n % CLASSES}" / f"{n:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            pictures[n % len(pictures)].save(path, "JPEG", quality=90)
    return root


def fgvctune_run(data: Path, out: Path, model: str, epochs: int, variant: str, cache: Path) -> list[float]:
    fgvctune = Path(sys.executable).with_name("fgvctune")
    command = [
        str(fgvctune),
        "train",
        "-a",
        "folder",
        "-d",
        str(data),
        "--model",
        model,
        "--no-pretrained",
        "--image-resize",
        str(SIZE),
        "--batch-size",
        str(BATCH),
        "--epoch-size",
        str(epochs),
        "--num-parallel-workers",
        "2",
        "--cache-dir",
        str(cache),
        "-o",
        str(out),
        *VARIANTS[variant],
    ]
    env = {**os.environ, "GLOG_v": "3"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    rates = [float(x) for x in re.findall(r"([\d.]+) img/s", result.stdout)]
    if result.returncode != 0 or len(rates) < epochs:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
        raise SystemExit(f"fgvctune train failed: {' | '.join(tail)}")
    return rates


def torch_loop(data: str, model: str, epochs: int) -> None:
    """The PyTorch side, run in the torch venv: prints one images-per-second figure per epoch."""
    import timm
    import torch
    from torchvision import datasets, transforms

    torch.manual_seed(0)
    network = timm.create_model(MODELS[model], num_classes=CLASSES)
    transform = transforms.Compose(
        [
            transforms.RandomResizedCrop(SIZE),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    loader = torch.utils.data.DataLoader(
        datasets.ImageFolder(os.path.join(data, "train"), transform),
        batch_size=BATCH,
        shuffle=True,
        drop_last=True,
        num_workers=2,
    )
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    network.train()
    for _ in range(epochs):
        started, seen = time.perf_counter(), 0
        for images, labels in loader:
            optimizer.zero_grad()
            loss_fn(network(images), labels).backward()
            optimizer.step()
            seen += len(labels)
        print(f"{seen / (time.perf_counter() - started):.2f} img/s", flush=True)


def torch_run(python: str, data: Path, model: str, epochs: int) -> list[float] | str:
    result = subprocess.run(
        [python, __file__, "--torch-loop", str(data), "--model", model, "--epochs", str(epochs)],
        capture_output=True,
        text=True,
    )
    rates = [float(x) for x in re.findall(r"([\d.]+) img/s", result.stdout)]
    if result.returncode != 0 or len(rates) < epochs:
        error = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return "not installed" if "No module named" in error else f"failed: {error[:60]}"
    return rates


def steady(rates: list[float]) -> str:
    later = rates[1:] or rates
    return f"{min(later):.1f} to {max(later):.1f}" if len(later) > 1 else f"{later[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v3_small_100", choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=960)
    parser.add_argument("--val-images", type=int, default=64)
    parser.add_argument("--variants", nargs="+", default=["plain", "downscale"], choices=list(VARIANTS))
    parser.add_argument("--torch-python", default=sys.executable, help="the python that has torch and timm")
    parser.add_argument("--torch-loop", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_loop:
        torch_loop(args.torch_loop, args.model, args.epochs)
        return
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        data = make_tree(Path(tmp) / "data", args.images, args.val_images)
        print(
            f"{args.model} (timm: {MODELS[args.model]}), {args.images} generated 1024x680 JPEGs, {CLASSES} classes, "
            f"{SIZE} px, batch {BATCH}, {args.epochs} epochs; images per second per epoch after the first "
            f"(training only); target: fgvctune / PyTorch >= 1.3"
        )
        theirs = torch_run(args.torch_python, data, args.model, args.epochs)
        theirs_load = load()
        theirs_mean = sum(theirs[1:]) / len(theirs[1:]) if isinstance(theirs, list) and len(theirs) > 1 else None
        rows = []
        for variant in args.variants:
            ours = fgvctune_run(data, Path(tmp) / f"run-{variant}", args.model, args.epochs, variant, Path(tmp) / "c")
            ours_mean = sum(ours[1:]) / len(ours[1:]) if len(ours) > 1 else ours[0]
            ratio = f"{ours_mean / theirs_mean:.2f}" if theirs_mean else "-"
            rows.append([f"fgvctune train, {variant}", steady(ours), ratio, load()])
        rows.append(["PyTorch loop", steady(theirs) if isinstance(theirs, list) else theirs, "1.00", theirs_load])
        print(table(["run", "images/s per steady epoch", "against PyTorch (means)", "load"], rows))


if __name__ == "__main__":
    main()
