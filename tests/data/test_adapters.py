"""Each built-in adapter against fixtures in its own layout, plus one contract every adapter keeps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from conftest import SAMPLE, make_csv, make_folder, write_image, zip_tree
from fgvctune.data import registry
from fgvctune.data.dataset import encoded_image, load_dataset
from fgvctune.data.tree import convert
from fgvctune.errors import DataError, UsageError


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
    with pytest.raises(DataError) as stopped:
        load_dataset("aircraft", aircraft)
    assert stopped.value.message == f"{path}:7: expected '<image id> <class name>'"


def test_aircraft_rejects_folder_without_class_file(tmp_path):
    with pytest.raises(DataError) as refused:
        load_dataset("aircraft", tmp_path, options={"level": "family"})
    assert (refused.value.message, refused.value.hint) == (
        f"{tmp_path} is not an FGVC-Aircraft folder: no families.txt in it or in its data/",
        "point --data-dir at fgvc-aircraft-2013b or its data/ folder",
    )


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
    with pytest.raises(DataError) as refused:
        load_dataset("csv", root)
    assert (refused.value.message, refused.value.hint) == (f"{root} has 2 CSV files", "name the file with --file")
    with pytest.raises(DataError) as refused:
        load_dataset("csv", root, options={"file": "mine.csv"})
    assert (refused.value.message, refused.value.hint) == (
        f"{root / 'mine.csv'}: no column 'filepath/path'; it has image, species",
        "name the column with --path-column",
    )
    with pytest.raises(DataError) as refused:
        load_dataset("csv", root, options={"file": "mine.csv", "path_column": "image"})
    assert (refused.value.message, refused.value.hint) == (
        f"{root / 'mine.csv'}: no column 'label'; it has image, species",
        "name the column with --label-column",
    )
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


def test_aircraft_bad_lines_are_each_reported_and_every_good_line_read(aircraft):
    """A blank line, a line without a class and an image without a box, in the middle of the files:
    with --skip-bad each is reported at its line and everything after it is still read."""
    data = aircraft / "data"
    path = data / "images_variant_test.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0], "", "0009999", *lines[1:]]) + "\n", encoding="utf-8")
    boxes = (data / "images_box.txt").read_text(encoding="utf-8").splitlines()
    unboxed = lines[1].split()[0]
    kept = [b for b in boxes if not b.startswith(unboxed)]
    (data / "images_box.txt").write_text("\n".join([kept[0], "", *kept[1:]]) + "\n", encoding="utf-8")
    dataset = load_dataset("aircraft", aircraft, ["test"], {"crop_box": True}, skip_bad=True)
    assert [str(p.where).rsplit(":", 1)[1] for p in dataset.problems] == ["3", "4"]
    assert [p.message for p in dataset.problems] == [
        "expected '<image id> <class name>'",
        f"image {unboxed} has no line in images_box.txt",
    ]
    assert len(dataset.splits["test"]) == len(lines) - 1


def test_aircraft_without_trainval_and_test_falls_back_to_train_and_val(aircraft):
    for level in ("variant", "family", "manufacturer"):
        for split in ("trainval", "test"):
            (aircraft / "data" / f"images_{level}_{split}.txt").unlink()
    dataset = load_dataset("aircraft", aircraft)
    assert (dataset.train_split, dataset.eval_split) == ("train", "val")
    assert list(dataset.splits) == ["train", "val"]


def test_csv_bad_rows_are_each_reported_and_every_good_row_read(tmp_path):
    """Rows with an empty path, an empty label (labels such as "NA" and "None" are names, not missing)
    or an empty split, in the middle of the file: each is reported with its line, the rest are read."""
    rows = [(f"img/{i}.jpg", label, "train", (30 * i, 0, 0)) for i, label in enumerate(["NA", "None", "x"])]
    root = make_csv(tmp_path / "csv", rows + [("img/v.jpg", "x", "val", (0, 9, 0))])
    table = root / "labels.csv"
    lines = table.read_text(encoding="utf-8").splitlines()
    bad = [",x,train", "img/0.jpg,,train", "img/1.jpg,x,"]
    table.write_text("\n".join([lines[0], lines[1], *bad, *lines[2:]]) + "\n", encoding="utf-8")
    dataset = load_dataset("csv", root, skip_bad=True)
    assert [(str(p.where).rsplit(":", 1)[1], p.message) for p in dataset.problems] == [
        ("3", "empty filepath"),
        ("4", "empty label"),
        ("5", "empty split"),
    ]
    assert dataset.labels.classes == ("NA", "None", "x")
    assert [len(dataset.splits[s]) for s in ("train", "val")] == [3, 1]


@pytest.mark.parametrize("fraction", [1, 1.5, -0.1])
def test_csv_val_fraction_outside_zero_to_one_is_refused(tmp_path, fraction):
    root = make_csv(
        tmp_path / "csv", [("a.jpg", "x", None, (1, 1, 1)), ("b.jpg", "x", None, (2, 2, 2))], ("path", "label")
    )
    with pytest.raises(UsageError) as refused:
        load_dataset("csv", root, options={"val_fraction": fraction})
    assert refused.value.message == f"--val-fraction must be at least 0 and below 1, got {fraction}"
    assert list(load_dataset("csv", root, options={"val_fraction": 0}).splits) == ["train"]  # 0: none held out


def test_csv_split_keeps_one_image_of_each_class_to_train_on(tmp_path):
    rows = [("a.jpg", "x", None, (1, 1, 1)), ("b.jpg", "x", None, (2, 2, 2)), ("c.jpg", "y", None, (3, 3, 3))]
    dataset = load_dataset("csv", make_csv(tmp_path / "csv", rows, ("path", "label")), options={"val_fraction": 0.9})
    assert sorted(s.label for s in dataset.splits["train"]) == ["x", "y"]
    assert [s.label for s in dataset.splits["val"]] == ["x"]


@pytest.mark.parametrize("adapter", ["csv", "folder"])
@pytest.mark.parametrize("train, evaluation", [("trainval", "test"), ("train", "validation")])
def test_csv_and_folder_find_the_usual_split_names(tmp_path, adapter, train, evaluation):
    if adapter == "folder":
        root = make_folder(tmp_path / "tree", splits=(train, evaluation))
    else:
        rows = [(f"{s}/{c}.jpg", c, s, (k, 0, 0)) for s in (train, evaluation) for k, c in enumerate("pq")]
        root = make_csv(tmp_path / "csv", rows)
    dataset = load_dataset(adapter, root)
    assert (dataset.train_split, dataset.eval_split) == (train, evaluation)


def test_aircraft_file_problems_are_named(aircraft):
    data = aircraft / "data"
    (data / "images_box.txt").write_text("0000101 1 2 3\n", encoding="utf-8")
    with pytest.raises(DataError) as refused:
        load_dataset("aircraft", aircraft, options={"crop_box": True})
    assert refused.value.message == f"{data / 'images_box.txt'}:1: expected '<image id> xmin ymin xmax ymax'"
    (data / "images_box.txt").unlink()
    with pytest.raises(DataError) as refused:
        load_dataset("aircraft", aircraft, options={"crop_box": True})
    assert refused.value.message == f"missing annotation file {data / 'images_box.txt'}"
    (data / "variants.txt").write_bytes(b"707-320\n\xff\n")
    with pytest.raises(DataError) as refused:
        load_dataset("aircraft", aircraft)
    assert refused.value.message == f"{data / 'variants.txt'} is not UTF-8 text (invalid start byte at byte 8)"
    for annotation in data.glob("images_variant_*.txt"):
        annotation.unlink()
    (data / "variants.txt").write_text("707-320\n", encoding="utf-8")
    with pytest.raises(DataError) as refused:
        load_dataset("aircraft", aircraft)
    assert refused.value.message == f"{data} has no images_variant_<split>.txt annotation files"


def test_csv_file_problems_are_named(tmp_path):
    with pytest.raises(DataError) as refused:
        load_dataset("csv", tmp_path)
    assert (refused.value.message, refused.value.hint) == (f"{tmp_path} has no *.csv file", "name the file with --file")
    with pytest.raises(DataError) as refused:
        load_dataset("csv", tmp_path, options={"file": "gone.csv"})
    assert refused.value.message == f"CSV file {tmp_path / 'gone.csv'} does not exist"
    (tmp_path / "bad.csv").write_bytes(b"filepath,label\n\xff\xfe,x\n")
    with pytest.raises(DataError) as refused:
        load_dataset("csv", tmp_path)
    assert refused.value.message.startswith(f"{tmp_path / 'bad.csv'}: not a readable CSV file (")


def test_csv_file_named_by_its_absolute_path(tmp_path):
    root = make_csv(tmp_path / "elsewhere", [("a.jpg", "x", "train", (1, 1, 1)), ("b.jpg", "x", "val", (2, 2, 2))])
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (root / name).rename(images / name)
    dataset = load_dataset("csv", images, options={"file": str(root / "labels.csv")})
    assert [s.path for s in dataset.splits["train"]] == [images / "a.jpg"]


def test_folder_problems_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as refused:
        load_dataset("folder", tmp_path / "empty")
    assert (refused.value.message, refused.value.hint) == (
        f"{tmp_path / 'empty'} has no split or class folders",
        "expected <data-dir>/<split>/<class>/<image> or <data-dir>/<class>/<image>",
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("not a tree")
    with pytest.raises(DataError) as refused:
        load_dataset("folder", notes)
    assert (refused.value.message, refused.value.hint) == (
        f"{notes} is not a folder or an archive",
        "pass a folder, or one of .tar, .tar.gz, .tgz, .zip",
    )
    broken = tmp_path / "tree.zip"
    broken.write_bytes(b"PK not really")
    with pytest.raises(DataError) as refused:
        load_dataset("folder", broken)
    assert refused.value.message == f"{broken} is not a readable zip archive (File is not a zip file)"


def test_folder_archive_with_the_dataset_folder_around_the_tree(tmp_path):
    """The usual archive: one folder holding <split>/<class>/<image>; images at another depth are not samples."""
    import zipfile

    tree = make_folder(tmp_path / "birds")
    archive = zip_tree(tree, tmp_path / "birds.zip", names_from=tmp_path)
    with zipfile.ZipFile(archive, "a") as z:
        z.write(tree / "train" / "cat" / "cat0.jpg", "birds/cover.jpg")
        z.write(tree / "train" / "cat" / "cat0.jpg", "__MACOSX/birds/train/cat/._cat0.jpg")
    dataset = load_dataset("folder", archive)
    assert dataset.labels.classes == ("cat", "dog")
    assert {split: len(samples) for split, samples in dataset.splits.items()} == {"train": 6, "val": 6}
    assert dataset.splits["train"][0].where == "birds.zip:birds/train/cat/cat0.jpg"
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("readme.txt", "nothing here")
    with pytest.raises(DataError) as refused:
        load_dataset("folder", empty)
    assert refused.value.message == f"{empty} holds no <split>/<class>/<image> or <class>/<image> files"


def test_links_in_the_dataset_folder_are_followed_only_while_they_stay_inside(tmp_path):
    """A CSV row, or a folder tree's file or class folder, that is a symbolic link: read when its target is in
    the dataset folder, a problem naming it when the target is outside."""
    decoy = write_image(tmp_path / "decoy" / "cat" / "keep.png", (1, 2, 3))
    data = make_csv(tmp_path / "data", [("a.png", "cat", "train", (9, 9, 9)), ("b.png", "dog", "train", (5, 5, 5))])
    (data / "same.png").symlink_to(data / "a.png")
    (data / "out.png").symlink_to(decoy)
    (data / "outdir").symlink_to(decoy.parent)
    with open(data / "labels.csv", "a", encoding="utf-8") as f:
        f.write("same.png,dog,train\nout.png,cat,train\noutdir/keep.png,cat,train\n")
    dataset = load_dataset("csv", data, skip_bad=True)
    assert [s.path.name for s in dataset.splits["train"]] == ["a.png", "b.png", "same.png"]
    hint = "outside the dataset folder (set FGVCTUNE_FOLLOW_LINKS=1 to read it)"
    assert [str(p) for p in dataset.problems] == [
        f"{data / 'labels.csv'}:5: out.png is a link to {decoy}, {hint}",
        f"{data / 'labels.csv'}:6: outdir/keep.png is a link to {decoy}, {hint}",
    ]

    tree = make_folder(tmp_path / "tree", per_class=1)
    (tree / "train" / "cat" / "out.png").symlink_to(decoy)
    (tree / "train" / "bird").symlink_to(decoy.parent)
    with pytest.raises(DataError, match=r": train/(cat/out|bird/keep)\.png is a link to .*, outside the dataset"):
        load_dataset("folder", tree)
    dataset = load_dataset("folder", tree, skip_bad=True)
    assert sorted(s.path.name for s in dataset.splits["train"]) == ["cat0.jpg", "dog0.jpg"]


def test_links_out_of_the_dataset_are_followed_when_the_user_says_so(tmp_path, monkeypatch):
    """A tree of links that `convert --mode symlink` made, read back: every file is a link to the original."""
    source = make_folder(tmp_path / "source", per_class=1)
    links = convert("folder", source, tmp_path / "links", mode="symlink").out
    with pytest.raises(DataError, match="cat0.jpg, outside the dataset folder"):
        load_dataset("folder", links)
    monkeypatch.setenv("FGVCTUNE_FOLLOW_LINKS", "1")
    dataset = load_dataset("folder", links)
    assert sorted(s.path.name for s in dataset.splits["train"]) == ["cat0.jpg", "dog0.jpg"]


def test_a_hub_snapshots_links_into_its_blobs_are_followed(tmp_path):
    """The Hub's cache keeps each file once in <repo>/blobs and links to it from <repo>/snapshots/<revision>."""
    repo = tmp_path / "hub" / "datasets--someone--pets"
    snapshot = repo / "snapshots" / "0123abcd"
    for split in ("train", "validation"):
        for name, colour in (("cat", (200, 0, 0)), ("dog", (0, 0, 200))):
            blob = write_image(repo / "blobs" / f"{split}-{name}", colour, fmt="PNG")
            (snapshot / split / name).mkdir(parents=True, exist_ok=True)
            (snapshot / split / name / "1.png").symlink_to(os.path.relpath(blob, snapshot / split / name))
    (snapshot / "train" / "metadata.csv").write_text("file_name,label\ncat/1.png,cat\ndog/1.png,dog\n")
    (snapshot / "validation" / "metadata.csv").write_text("file_name,label\ncat/1.png,cat\ndog/1.png,dog\n")
    dataset = load_dataset("hf", snapshot)
    assert {split: len(samples) for split, samples in dataset.splits.items()} == {"train": 2, "validation": 2}
    outside = write_image(tmp_path / "secret.png")
    (snapshot / "train" / "cat" / "2.png").symlink_to(outside)
    with open(snapshot / "train" / "metadata.csv", "a") as f:
        f.write("cat/2.png,cat\n")
    with pytest.raises(DataError, match="2.png is a link to .*secret.png, outside the dataset folder"):
        load_dataset("hf", snapshot)


def test_folder_archive_with_a_member_of_no_name_reads_the_rest(tmp_path):
    import zipfile

    archive = zip_tree(make_folder(tmp_path / "tree", per_class=1), tmp_path / "tree.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr(zipfile.ZipInfo(""), b"nameless")
    assert sum(map(len, load_dataset("folder", archive).splits.values())) == 4
