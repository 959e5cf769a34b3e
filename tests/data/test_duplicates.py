"""Duplicates and leakage: planted copies of real images are found, the sample has none, --dedupe
leaves out exactly the training copies of evaluation images."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import FAST, SAMPLE, fgvctune, header_bomb, plant_copies
from fgvctune.cli import app
from fgvctune.data.dataset import load_dataset
from fgvctune.data.duplicates import find_duplicates, fingerprint, popcount

runner = CliRunner()


def test_a_file_claiming_900_megapixels_has_no_fingerprint_and_is_not_decoded(tmp_path):
    digest, dhash, thumbnails = fingerprint(header_bomb(tmp_path / "bomb.png", 30000))
    assert len(digest) == 16 and dhash is None and thumbnails is None


def test_popcount_counts_bits():
    values = np.array([0, 1, 0xFF, 2**63, 2**64 - 1, 0x5555555555555555], dtype=np.uint64)
    assert popcount(values).tolist() == [0, 1, 8, 1, 64, 32]


def test_the_sample_has_no_duplicates():
    found = find_duplicates(load_dataset("aircraft", SAMPLE))
    assert found.images == 192 and not found.within and not found.across
    result = runner.invoke(app, ["info", "-a", "aircraft", "-d", str(SAMPLE)])
    assert result.exit_code == 0 and "no duplicates among 192 images" in result.output


def test_planted_copies_are_found(tmp_path):
    planted = plant_copies(tmp_path / "planted")
    found = find_duplicates(load_dataset("aircraft", tmp_path / "planted"))
    across = {(p.first.path, p.second.path): p.kind for p in found.across}
    assert set(across) == set(planted["across"].items())
    assert sorted(across.values()) == ["exact", "near", "near", "near"]
    assert all(p.first_split == "trainval" and p.second_split == "test" for p in found.across)
    assert {(p.first.path, p.second.path) for p in found.within} == {
        tuple(sorted(pair)) for pair in planted["within"].items()
    }
    result = runner.invoke(app, ["info", "-a", "aircraft", "-d", str(tmp_path / "planted")])
    assert result.exit_code == 0, result.output  # duplicates are a warning, not a problem
    assert "4 pair(s) across trainval and test (1 exact, 3 near): 4 test image(s) with a copy" in result.output
    for copy, source in planted["across"].items():
        assert f"trainval:images/{copy.name} = test:images/{source.name}" in result.output


@pytest.mark.e2e
def test_dedupe_leaves_out_exactly_the_training_copies(tmp_path, cache):
    planted = plant_copies(tmp_path / "planted")
    run = tmp_path / "run"
    settings = [f"--{k.replace('_', '-')}" for k in ("image_resize", "batch_size")]
    result = fgvctune(
        "train",
        "-a",
        "aircraft",
        "-d",
        str(tmp_path / "planted"),
        "--no-pretrained",
        "--epoch-size",
        "1",
        "--dedupe",
        "--cache-dir",
        cache,
        settings[0],
        str(FAST["image_resize"]),
        settings[1],
        str(FAST["batch_size"]),
        "-o",
        str(run),
        log=tmp_path / "train.log",
    )
    assert result.returncode == 0, result.stdout
    assert "--dedupe: 4 trainval image(s) left out, copies of test images" in result.stdout
    assert "warning: 1 duplicate pair(s) inside a split" in result.stdout
    skipped = (run / "skipped.txt").read_text().splitlines()
    assert len(skipped) == 4
    for copy, source in planted["across"].items():
        assert any(copy.stem in line and str(source) in line for line in skipped)
    with open(run / "counts.csv", newline="") as f:
        counts = {}
        for row in csv.DictReader(f):
            counts[row["split"]] = counts.get(row["split"], 0) + int(row["count"])
    assert counts == {"trainval": 128 + 5 - 4, "test": 64}


def test_a_picture_repeated_is_listed_once_per_file(tmp_path):
    """One picture 3 times in train and 2 times in val (and distinct pictures besides): every copy is
    listed in a pair, without a pair for every two of them, and all 3 training copies are copies."""
    sources = sorted((SAMPLE / "data" / "images").glob("*.jpg"))
    for split, count in (("train", 3), ("val", 2)):
        folder = tmp_path / split / "a"
        folder.mkdir(parents=True)
        for i in range(count):
            shutil.copyfile(sources[0], folder / f"copy{i}.jpg")
        for i, source in enumerate(sources[1 + 10 * count : 4 + 10 * count]):
            shutil.copyfile(source, folder / f"other{i}.jpg")
    found = find_duplicates(load_dataset("folder", tmp_path))
    assert [p.kind for p in found.within] == ["exact"] * 3 and len(found.across) == 4
    assert sorted(p.name for p in found.copies) == ["copy0.jpg", "copy1.jpg", "copy2.jpg"]
    assert sorted(p.name for p in found.leaked) == ["copy0.jpg", "copy1.jpg"]


@pytest.mark.parametrize("side", [28, 32])
def test_copies_of_small_images_are_found_and_lookalikes_are_not(tmp_path, side):
    """Real handwritten digits at Fashion-MNIST's and CIFAR's size (200 of them, many near-identical
    strokes within a class), with copies of validation images planted in train: exact, re-encoded,
    resized up and down with different filters and centre-cropped by a pixel. Each copy is found,
    and no two distinct digits are taken for copies, not even the set's closest two (two scans of a 1
    that differ by at most 3 of 16 levels, in a few pixels), one in each split. The digits are enlarged
    without smoothing: sharp edges, like MNIST's strokes, are where resampling filters disagree most."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    taken: dict[int, int] = {}
    chosen = {}
    for index, label in enumerate(digits.target):
        taken[label] = taken.get(label, 0) + 1
        if taken[label] <= 20:
            chosen[index] = "train" if taken[label] <= 15 else "val"
    lookalikes = {1585: "train", 1648: "val"}
    originals = {}
    for index, split in {**chosen, **lookalikes}.items():
        path = tmp_path / split / str(digits.target[index]) / f"{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray((digits.images[index] * 255 / 16).astype(np.uint8)).convert("RGB")
        image.resize((side, side), Image.NEAREST).save(path)
        originals[index] = path
    changes = {
        "exact": None,
        "re-encoded": lambda im: im,
        "enlarged twice, bilinear": lambda im: im.resize((2 * side, 2 * side), Image.BILINEAR),
        "enlarged to 40 px, bicubic": lambda im: im.resize((40, 40), Image.BICUBIC),
        "shrunk to 24 px": lambda im: im.resize((24, 24), Image.BILINEAR),
        "cropped a pixel a side": lambda im: im.crop((1, 1, side - 1, side - 1)),
    }
    sources = [originals[index] for index, split in chosen.items() if split == "val"]
    planted = {}
    for n, (kind, change) in enumerate(changes.items()):
        for source in sources[n::10][:2]:  # two copies of each kind, of different digits
            copy = tmp_path / "train" / source.parent.name / f"copy-{n}-{source.stem}.jpg"
            if change is None:
                copy = copy.with_suffix(".png")
                shutil.copyfile(source, copy)
            else:
                with Image.open(source) as im:
                    change(im.convert("RGB")).save(copy, quality=90)
            planted[copy] = (source, kind)
    found = find_duplicates(load_dataset("folder", tmp_path))
    across = {(p.first.path, p.second.path) for p in found.across}
    missed = [kind for copy, (source, kind) in planted.items() if (copy, source) not in across]
    assert not missed, f"planted copies not found: {missed}"
    assert across == {(copy, source) for copy, (source, _) in planted.items()}, "distinct digits paired"
    assert not found.within
