"""Tiny datasets made in tmp_path, in each layout the adapters read."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "aircraft-sample"

COLOURS = {"707-320": (200, 30, 30), "F/A-18": (30, 200, 30), "Cessna 172": (30, 30, 200)}
FAMILIES = {"707-320": "Boeing 707", "F/A-18": "F/A-18", "Cessna 172": "Cessna 172"}
MAKERS = {"707-320": "Boeing", "F/A-18": "McDonnell Douglas", "Cessna 172": "Cessna"}


def write_image(path: Path, colour=(128, 64, 32), size=(40, 48), mode="RGB", fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, format=fmt)
    return path


def make_aircraft(root: Path, per_split: int = 2) -> Path:
    """An FGVC-Aircraft tree: 3 variants/families/manufacturers, four splits, boxes."""
    data = root / "data"
    rows = {"train": [], "val": [], "test": []}
    boxes = []
    number = 100
    for variant, colour in COLOURS.items():
        for split in rows:
            for _ in range(per_split):
                number += 1
                image_id = f"{number:07d}"
                write_image(data / "images" / f"{image_id}.jpg", colour, size=(60, 50))
                rows[split].append((image_id, variant))
                boxes.append(f"{image_id} 11 6 50 25\n")
    rows["trainval"] = rows["train"] + rows["val"]
    for level, plural, name_of in (
        ("variant", "variants", lambda v: v),
        ("family", "families", FAMILIES.get),
        ("manufacturer", "manufacturers", MAKERS.get),
    ):
        (data / f"{plural}.txt").write_text("".join(f"{name_of(v)}\n" for v in COLOURS), encoding="utf-8")
        for split, entries in rows.items():
            text = "".join(f"{i} {name_of(v)}\n" for i, v in entries)
            (data / f"images_{level}_{split}.txt").write_text(text, encoding="utf-8")
    (data / "images_box.txt").write_text("".join(boxes), encoding="utf-8")
    return root


def make_csv(root: Path, rows, header=("filepath", "label", "split"), name="labels.csv") -> Path:
    """rows: (relative path, label, split or None, colour)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / name, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for path, label, split, colour in rows:
            write_image(root / path, colour)
            writer.writerow([path, label] + ([split] if split is not None else []))
    return root


def make_folder(root: Path, classes=("cat", "dog"), splits=("train", "val"), per_class=3) -> Path:
    for split in splits:
        for k, name in enumerate(classes):
            for i in range(per_class):
                write_image(root / split / name / f"{name}{i}.jpg", (60 * k + 20, 100, 40 * i))
    return root


@pytest.fixture
def aircraft(tmp_path) -> Path:
    return make_aircraft(tmp_path / "fgvc-aircraft-2013b")


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_folder(tmp_path / "tree")


# Training on the bundled sample at a size two CPU cores handle in seconds.
FAST = dict(image_resize=64, batch_size=16, scale=[0.5, 1.0], num_parallel_workers=2)


def finetune_settings(base: Path, cache: str, **options) -> dict:
    """Fine-tuning the sample's variants from the base run's checkpoint, in seconds."""
    return {
        "adapter": "aircraft",
        "data_dir": str(SAMPLE),
        "ckpt_path": str(base),
        "pretrained": False,
        "epoch_size": 5,
        "lr": 0.05,
        "cache_dir": cache,
        **FAST,
        **options,
    }


def train_command(folder: Path, base: Path, cache: str, epochs: int) -> list[str]:
    """The same fine-tuning through the real command, for tests that signal or kill the process."""
    import sys

    return [
        sys.executable,
        "-m",
        "fgvctune",
        "train",
        "-a",
        "aircraft",
        "-d",
        str(SAMPLE),
        "--ckpt-path",
        str(base),
        "--no-pretrained",
        "--epoch-size",
        str(epochs),
        "--lr",
        "0.02",
        "--cache-dir",
        cache,
        "-o",
        str(folder),
        "--image-resize",
        "64",
        "--batch-size",
        "16",
    ]


def checkpoint(path: Path) -> dict:
    """A checkpoint's entries as numpy arrays."""
    import mindspore as ms

    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items()}


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def base(tmp_path_factory, cache) -> Path:
    """A finished run on a related task (the sample's manufacturers, from scratch); yields its best.ckpt."""
    from fgvctune.trainer import train

    folder = tmp_path_factory.mktemp("runs") / "base"
    run = train(
        adapter="aircraft",
        data_dir=str(SAMPLE),
        adapter_options={"level": "manufacturer"},
        pretrained=False,
        epoch_size=10,
        lr=0.05,
        cache_dir=cache,
        output=folder,
        progress=False,
        **FAST,
    )
    assert run.best["val_top1"] > 0.8
    return folder / "best.ckpt"
