"""The duplicate and leakage check on 10,000 images, against one training epoch over the same images.

Generates a folder dataset of distinct photo-like 400x300 JPEGs (8,000 train, 2,000 val, 100 classes),
plants copies of 100 val images in train (exact, re-encoded, resized, centre-cropped by 3% a side),
times `find_duplicates` (fingerprinting, then matching) and checks it found exactly the planted copies.
Then measures training throughput (mobilenet_v3_small_100, 224 px, batch 16, the input pipeline
attached) on a slice of the same images and gives the epoch time for all of them.

    .venv/bin/python benchmarks/duplicates.py [--images 10000] [--train-images 480]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, table  # noqa: E402

PLANTED = ("exact", "re-encoded", "resized", "cropped 3%")


def make_dataset(root: Path, count: int, classes: int = 100, planted: int = 100) -> dict[Path, Path]:
    """Distinct pictures (smooth colour fields, shapes and noise, each its own); returns {train copy: val image}."""
    import shutil

    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    val_every = 5  # one in five images is a val image
    paths = []
    for i in range(count):
        split = "val" if (i // classes) % val_every == 0 else "train"
        folder = root / split / f"class{i % classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        corners = rng.integers(0, 256, size=(2, 2, 3)).astype(np.uint8)
        image = Image.fromarray(corners).resize((400, 300), Image.BILINEAR)
        draw = ImageDraw.Draw(image)
        for _ in range(4):
            x, y = rng.integers(0, 360), rng.integers(0, 260)
            w, h = rng.integers(20, 160, size=2)
            draw.ellipse([x, y, x + w, y + h], fill=tuple(int(c) for c in rng.integers(0, 256, size=3)))
        noise = rng.normal(0, 12, size=(300, 400, 3))
        pixels = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    copies = {}
    sources = [p for p in paths if p.parent.parent.name == "val"][:planted]
    for n, source in enumerate(sources):
        kind = PLANTED[n % len(PLANTED)]
        target = root / "train" / source.parent.name / f"copy-{source.stem}.jpg"
        if kind == "exact":
            shutil.copyfile(source, target)
        else:
            with Image.open(source) as im:
                im = im.convert("RGB")
                if kind == "resized":
                    im = im.resize((300, 225), Image.BILINEAR)
                elif kind == "cropped 3%":
                    im = im.crop((12, 9, 388, 291))
                im.save(target, quality=75)
        copies[target] = source
    return copies


def epoch_rate(root: Path, images: int, cache: str) -> float:
    """Training images per second, input pipeline attached, on `images` training images at 224 px."""
    import shutil

    from fgvctune.training.trainer import train

    small = root.parent / "slice"
    for split, count in (("train", images), ("val", 32)):
        files = sorted((root / split).rglob("*.jpg"))[:count]
        for f in files:
            target = small / split / f.parent.name / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
    lines = []
    train(
        adapter="folder",
        data_dir=str(small),
        pretrained=False,
        image_resize=224,
        batch_size=16,
        epoch_size=2,  # the first epoch compiles the graph; the second is the figure
        cache_dir=cache,
        output=root.parent / "run",
        progress=False,
        log=lines.append,
    )
    rates = [float(m.group(1)) for line in lines if (m := re.search(r"([\d.]+) img/s", line))]
    return rates[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--train-images", type=int, default=480, help="images for the training-rate measurement")
    args = parser.parse_args()
    print(describe())
    from fgvctune.data.dataset import load_dataset
    from fgvctune.data.duplicates import find_duplicates

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        started = time.perf_counter()
        planted = make_dataset(root, args.images)
        print(
            f"generated {args.images} images and {len(planted)} planted copies in {time.perf_counter() - started:.0f} s"
        )
        dataset = load_dataset("folder", root, check_images=False)
        started = time.perf_counter()
        found = find_duplicates(dataset)
        check = time.perf_counter() - started
        print(found.summary())
        pairs = {(p.first.path, p.second.path) for p in found.across}
        kinds = {copy: PLANTED[n % len(PLANTED)] for n, copy in enumerate(planted)}
        recall = [
            [
                kind,
                f"{sum((c, planted[c]) in pairs for c in kinds if kinds[c] == kind)} of "
                f"{list(kinds.values()).count(kind)}",
            ]
            for kind in PLANTED
        ]
        print(table(["planted copy", "found"], recall))
        wrong = len(pairs - set(planted.items())) + len(found.within)
        print(f"pairs reported that were not planted: {wrong}")
        rate = epoch_rate(root, args.train_images, str(Path(tmp) / "cache"))
        files = found.images
        rows = [
            ["duplicate check (exact + near, all splits)", f"{check:.1f}", f"{files / check:.0f}"],
            [f"one training epoch over the {len(dataset.splits['train'])} train images", "", f"{rate:.1f}"],
        ]
        epoch = len(dataset.splits["train"]) / rate
        rows[1][1] = f"{epoch:.0f}"
        print(table(["task", "seconds", "images/s"], rows))
        print(f"the check takes {check / epoch:.1%} of one epoch")


if __name__ == "__main__":
    main()
