"""Each built-in adapter against fixtures in its own layout, plus one contract every adapter keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import SAMPLE, make_csv, write_image
from fgvctune import registry
from fgvctune.dataset import encoded_image, load_dataset
from fgvctune.errors import DataError


def annotation_counts(data: Path, level: str, split: str):
    lines = (data / f"images_{level}_{split}.txt").read_text(encoding="utf-8").splitlines()
    return len(lines), {line.split(" ", 1)[1] for line in lines}


@pytest.mark.parametrize("level", ["variant", "family", "manufacturer"])
@pytest.mark.parametrize("split", ["train", "val", "trainval", "test"])
def test_aircraft_counts_match_annotation_files(aircraft, level, split):
    dataset = load_dataset("aircraft", aircraft, [split], {"level": level})
    count, names = annotation_counts(aircraft / "data", level, split)
    assert len(dataset.splits[split]) == count
    assert set(dataset.labels.classes) == names


def test_aircraft_accepts_root_or_data_folder_and_keeps_real_names(aircraft):
    from_root = load_dataset("aircraft", aircraft)
    from_data = load_dataset("aircraft", aircraft / "data")
    assert from_root.labels == from_data.labels
    assert "F/A-18" in from_root.labels.classes
    assert list(from_root.splits) == ["trainval", "test"]
    assert (from_root.train_split, from_root.eval_split) == ("trainval", "test")


def test_aircraft_crop_and_banner(aircraft):
    cropped = load_dataset("aircraft", aircraft, ["test"], {"crop_box": True}).splits["test"][0]
    assert Image.open(__import__("io").BytesIO(encoded_image(cropped))).size == (40, 20)
    trimmed = load_dataset("aircraft", aircraft, ["test"], {"strip_banner": True}).splits["test"][0]
    assert Image.open(__import__("io").BytesIO(encoded_image(trimmed))).size == (60, 30)


def test_aircraft_broken_line_names_file_and_line(aircraft):
    path = aircraft / "data" / "images_variant_test.txt"
    path.write_text(path.read_text() + "0009999\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"images_variant_test.txt:7: expected"):
        load_dataset("aircraft", aircraft)


def test_aircraft_rejects_folder_without_class_file(tmp_path):
    with pytest.raises(DataError, match="not an FGVC-Aircraft folder"):
        load_dataset("aircraft", tmp_path)


def test_bundled_sample_has_the_promised_shape():
    dataset = load_dataset("aircraft", SAMPLE, ["train", "val", "trainval", "test"])
    assert len(dataset.labels) >= 6 and any("/" in c for c in dataset.labels.classes)
    for level, least in (("family", 2), ("manufacturer", 2)):
        assert len(load_dataset("aircraft", SAMPLE, options={"level": level}).labels) >= least
    assert (SAMPLE / "data" / "images_box.txt").is_file()
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < 3 * 1024 * 1024


def test_csv_default_columns_and_awkward_labels(tmp_path):
    rows = [
        (f"img/{i}.jpg", label, split, (40 * i % 255, 10, 10))
        for i, (label, split) in enumerate(
            [("Cessna 172", "train"), ("a, b", "train"), ("天鹅", "train"), ("Cessna 172", "val"), ("a, b", "val")]
        )
    ]
    root = make_csv(tmp_path / "csv", rows)
    dataset = load_dataset("csv", root)
    assert dataset.labels.classes == ("Cessna 172", "a, b", "天鹅")
    assert [len(dataset.splits[s]) for s in ("train", "val")] == [3, 2]
    assert (dataset.train_split, dataset.eval_split) == ("train", "val")


def test_csv_chosen_columns_and_named_file(tmp_path):
    root = make_csv(
        tmp_path / "csv",
        [("a.png", "x", None, (1, 2, 3)), ("b.png", "y", None, (9, 9, 9))],
        header=("image", "species"),
        name="mine.csv",
    )
    make_csv(root, [], name="other.csv")
    with pytest.raises(DataError, match="2 CSV files"):
        load_dataset("csv", root)
    with pytest.raises(DataError, match="no column 'filepath/path'"):
        load_dataset("csv", root, options={"file": "mine.csv"})
    dataset = load_dataset(
        "csv",
        root,
        options={"file": "mine.csv", "path_column": "image", "label_column": "species", "val_fraction": 0.5},
        strict=False,
    )
    assert dataset.labels.classes == ("x", "y")


def test_csv_stratified_split_is_deterministic_and_stratified(tmp_path):
    rows = [(f"{c}/{i}.jpg", c, None, (i * 20, 0, 0)) for c in ("p", "q") for i in range(10)]
    root = make_csv(tmp_path / "csv", rows, header=("path", "label"))
    first = load_dataset("csv", root, options={"val_fraction": 0.3, "seed": 1})
    again = load_dataset("csv", root, options={"val_fraction": 0.3, "seed": 1})
    other = load_dataset("csv", root, options={"val_fraction": 0.3, "seed": 2})
    assert first.splits == again.splits
    assert first.splits["val"] != other.splits["val"]
    assert sorted(s.label for s in first.splits["val"]) == ["p"] * 3 + ["q"] * 3


def test_folder_extensions_any_case_and_hidden_ignored(folder):
    write_image(folder / "train" / "cat" / "UPPER.JPG")
    write_image(folder / "train" / "cat" / ".hidden.jpg")
    write_image(folder / "train" / ".cache" / "x.jpg")
    (folder / "train" / "cat" / "notes.txt").write_text("not an image")
    dataset = load_dataset("folder", folder)
    assert dataset.labels.classes == ("cat", "dog")
    assert len(dataset.splits["train"]) == 7
    assert (dataset.train_split, dataset.eval_split) == ("train", "val")


@pytest.mark.parametrize("name", ["aircraft", "csv", "folder"])
def test_adapter_contract(name, aircraft, folder, tmp_path):
    """Every registered adapter: a dataclass with data_dir, documented options, and a Listing from read()."""
    info = registry.get(name)
    assert info.summary and all(f.metadata.get("help") for f in info.options())
    data_dir = {
        "aircraft": aircraft,
        "folder": folder,
        "csv": make_csv(tmp_path / "c", [("a.jpg", "x", "train", (1, 1, 1)), ("b.jpg", "x", "val", (2, 2, 2))]),
    }[name]
    listing = info.cls(data_dir=data_dir).read()
    assert listing.splits
    for samples in listing.splits.values():
        assert samples and all(s.where and s.label and s.path.is_file() for s in samples)
