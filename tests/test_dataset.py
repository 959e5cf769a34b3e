"""The checks every adapter shares, the label map, and images in awkward modes."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from conftest import make_csv, make_folder, write_image
from fgvctune.data.dataset import LabelMap, encoded_image, folder_name, load_dataset
from fgvctune.errors import DataError, UsageError


def csv_root(tmp_path, rows):
    return make_csv(
        tmp_path / "d", [(path, label, split, (10 * i, 50, 90)) for i, (path, label, split) in enumerate(rows)]
    )


GOOD = [
    ("a0.jpg", "a", "train"),
    ("a1.jpg", "a", "train"),
    ("b0.jpg", "b", "train"),
    ("b1.jpg", "b", "train"),
    ("a2.jpg", "a", "val"),
    ("b2.jpg", "b", "val"),
]


def problems_of(root, **kw):
    return [str(p) for p in load_dataset("csv", root, strict=False, **kw).problems]


def test_missing_file(tmp_path):
    root = csv_root(tmp_path, GOOD)
    os.remove(root / "a1.jpg")
    with pytest.raises(DataError, match=r"labels.csv:3: missing file .*a1.jpg"):
        load_dataset("csv", root)


def test_truncated_and_non_images(tmp_path):
    root = csv_root(tmp_path, GOOD)
    data = (root / "a0.jpg").read_bytes()
    (root / "a0.jpg").write_bytes(data[: len(data) // 2])
    (root / "b0.jpg").write_bytes(b"this is not a picture")
    found = problems_of(root)
    assert any("labels.csv:2: truncated image" in p for p in found)
    assert any("labels.csv:4:" in p and "not an image" in p for p in found)


def test_truncated_png(tmp_path):
    root = make_csv(tmp_path / "d", [("a.png", "a", "train", (1, 2, 3)), ("b.png", "a", "val", (3, 2, 1))])
    data = (root / "a.png").read_bytes()
    (root / "a.png").write_bytes(data[:-20])
    assert any("labels.csv:2: truncated image" in p for p in problems_of(root))


def test_duplicate_entries(tmp_path):
    root = csv_root(tmp_path, GOOD + [("a0.jpg", "a", "train")])
    assert problems_of(root) == [
        f"{root / 'labels.csv'}:8: duplicate entry for a0.jpg (first at {root / 'labels.csv'}:2)"
    ]


def test_empty_class_and_eval_only_class(tmp_path):
    root = make_folder(tmp_path / "t", classes=("a", "b"))
    (root / "train" / "c").mkdir()
    write_image(root / "val" / "d" / "x.jpg")
    found = problems_of_folder(root)
    assert any("class 'c' has no samples in split 'train'" in p for p in found)
    assert any("class 'd' has no samples in split 'train'" in p for p in found)


def problems_of_folder(root):
    return [str(p) for p in load_dataset("folder", root, strict=False).problems]


def test_eval_class_missing_from_train_csv(tmp_path):
    root = csv_root(tmp_path, GOOD + [("z.jpg", "z", "val")])
    with pytest.raises(DataError, match="class 'z' has 1 sample\\(s\\) in 'val' but none in 'train'"):
        load_dataset("csv", root)
    dataset = load_dataset("csv", root, skip_bad=True)
    assert dataset.labels.classes == ("a", "b") and len(dataset.splits["val"]) == 2


def test_paths_escaping_root(tmp_path):
    root = csv_root(tmp_path, GOOD)
    write_image(tmp_path / "outside.jpg")
    with open(root / "labels.csv", "a", encoding="utf-8") as f:
        f.write(f"../outside.jpg,a,train\n{tmp_path / 'outside.jpg'},b,train\n")
    found = problems_of(root)
    assert sum("escapes the dataset root" in p for p in found) == 2


def test_empty_split_stops_even_with_skip(tmp_path):
    root = csv_root(tmp_path, GOOD[:4] + [("gone.jpg", "a", "val")])
    os.remove(root / "gone.jpg")
    with pytest.raises(DataError, match="split 'val' has no usable samples"):
        load_dataset("csv", root, skip_bad=True)


def test_skip_bad_keeps_the_good_and_lists_the_rest(tmp_path):
    root = csv_root(tmp_path, GOOD)
    os.remove(root / "b1.jpg")
    dataset = load_dataset("csv", root, skip_bad=True)
    assert len(dataset.splits["train"]) == 3
    assert "missing file" in dataset.skipped_report()


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "LA", "I;16"])
def test_awkward_image_modes_become_rgb(tmp_path, mode):
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    suffix = ".jpg" if fmt == "JPEG" else ".png"
    root = tmp_path / "d"
    write_image(root / "train" / "a" / f"x{suffix}", (200, 100, 50), mode=mode, fmt=fmt)
    write_image(root / "val" / "a" / "y.jpg")
    sample = load_dataset("folder", root).splits["train"][0]
    decoded = Image.open(io.BytesIO(encoded_image(sample)))
    assert decoded.mode in ("RGB", "L") and decoded.size == (40, 48)
    assert sample.reencode == (mode not in ("L",))


def test_label_map_round_trip(tmp_path):
    labels = LabelMap.from_names(["F/A-18", "Cessna 172", "a, b", "天鹅", "737-800"])
    path = tmp_path / "labels.csv"
    path.write_text(labels.to_csv(), encoding="utf-8")
    assert LabelMap.read(path) == labels
    assert labels.folder_ids["F_A-18"] == labels.ids["F/A-18"]
    assert [folder_name(n) for n in ("F/A-18", ".x", "")] == ["F_A-18", "_.x", "_"]


def test_folder_name_clash_is_an_error():
    with pytest.raises(DataError, match="same folder name"):
        LabelMap.from_names(["A/B", "A_B"])


def test_a_class_with_no_training_images_is_left_out_of_the_label_map(tmp_path):
    root = make_folder(tmp_path / "t", classes=("a", "b"))
    (root / "train" / "c").mkdir()
    write_image(root / "val" / "d" / "x.jpg")
    dataset = load_dataset("folder", root, skip_bad=True)
    assert dataset.labels.classes == ("a", "b") and len(dataset.splits["val"]) == 6


def test_the_first_problem_stops_and_says_how_many_more(tmp_path):
    root = csv_root(tmp_path, GOOD)
    os.remove(root / "a1.jpg")
    with pytest.raises(DataError, match=r"a1.jpg$"):
        load_dataset("csv", root)
    os.remove(root / "b0.jpg")
    with pytest.raises(DataError, match=r"a1.jpg \(and 1 more\)$"):
        load_dataset("csv", root)


def test_truncated_bmp_and_gif(tmp_path):
    rows = [("a.bmp", "a", "train", (1, 2, 3)), ("b.gif", "a", "train", (5, 5, 5)), ("c.png", "a", "val", (3, 2, 1))]
    root = make_csv(tmp_path / "d", rows)
    for name in ("a.bmp", "b.gif"):
        data = (root / name).read_bytes()
        (root / name).write_bytes(data[: len(data) // 2])
    found = problems_of(root)
    assert any("labels.csv:2:" in p and "a.bmp" in p for p in found)
    assert any("labels.csv:3:" in p and "b.gif" in p for p in found)


@pytest.mark.parametrize("train, evaluation", [("train", "train"), ("train", "")])
def test_training_needs_two_different_splits(tmp_path, train, evaluation):
    root = make_folder(tmp_path / "t", splits=("train",))
    with pytest.raises(UsageError, match="cannot tell which splits to train and evaluate on"):
        load_dataset("folder", root, roles=True, train_split=train, eval_split=evaluation)
