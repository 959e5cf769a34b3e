"""The checks every adapter shares, the label map, and images in awkward modes."""

from __future__ import annotations

import io
import os
import resource
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import header_bomb, make_csv, make_folder, write_image, zip_tree
from fgvctune.data.dataset import LabelMap, Sample, decoded_image, encoded_image, folder_name, load_dataset
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
    with pytest.raises(DataError) as stopped:
        load_dataset("csv", root, skip_bad=True)
    assert (stopped.value.message, stopped.value.hint) == (
        "split 'val' has no usable samples",
        "check the annotations for that split",
    )


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
    with pytest.raises(DataError) as refused:
        LabelMap.from_names(["A/B", "A_B", "c"])
    assert (refused.value.message, refused.value.hint) == (
        "classes 'A/B', 'A_B' map to the same folder name 'A_B'",
        "rename one of them in the annotations",
    )


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


def test_every_problem_is_named_whole(tmp_path):
    """Each kind of bad sample, reported at its line with the file and what is wrong; the first one stops
    a strict load, saying how many more there are and what to do."""
    rows = [
        ("a0.jpg", "a", "train"),
        ("a1.jpg", "a", "train"),
        ("b0.jpg", "b", "train"),
        ("b1.png", "b", "train"),
        ("a2.jpg", "a", "train"),
        ("c0.png", "c", "train"),
        ("a3.jpg", "a", "val"),
        ("b2.jpg", "b", "val"),
    ]
    root = csv_root(tmp_path, rows)
    data = (root / "a1.jpg").read_bytes()
    (root / "a1.jpg").write_bytes(data[:-2])  # only the end marker gone
    (root / "a2.jpg").write_bytes(data[: len(data) // 2])
    (root / "b0.jpg").write_bytes(b"not a picture")
    (root / "b1.png").write_bytes((root / "b1.png").read_bytes()[:-20])
    png = bytearray((root / "c0.png").read_bytes())
    png[png.find(b"IDAT") + 6] ^= 0xFF  # a damaged chunk
    (root / "c0.png").write_bytes(bytes(png))
    write_image(tmp_path / "outside.jpg")
    with open(root / "labels.csv", "a", encoding="utf-8") as f:
        f.write("../outside.jpg,a,train\na0.jpg,a,train\ngone.jpg,a,val\n")
    table = root / "labels.csv"
    assert problems_of(root) == [
        f"{table}:10: path {root}/../outside.jpg escapes the dataset root {root}",
        f"{table}:11: duplicate entry for a0.jpg (first at {table}:2)",
        f"{table}:3: truncated image {root / 'a1.jpg'} (no JPEG end marker)",
        f"{table}:4: {root / 'b0.jpg'} is not an image PIL can read",
        f"{table}:5: truncated image {root / 'b1.png'}",
        f"{table}:6: truncated image {root / 'a2.jpg'}",
        f"{table}:7: unreadable image {root / 'c0.png'}: broken PNG file (bad header checksum in b'IDAT')",
        f"{table}:12: missing file {root / 'gone.jpg'}",
        f"{table}:9: class 'b' has 1 sample(s) in 'val' but none in 'train'",
    ]
    with pytest.raises(DataError) as stopped:
        load_dataset("csv", root)
    assert (stopped.value.message, stopped.value.hint) == (
        f"{table}:10: path {root}/../outside.jpg escapes the dataset root {root} (and 8 more)",
        "fix the data, or pass --skip-bad to leave bad samples out (they are listed in skipped.txt); "
        "`fgvctune info` shows every problem",
    )
    kept = load_dataset("csv", root, skip_bad=True)
    assert kept.skipped_report() == "".join(f"{p}\n" for p in problems_of(root))
    assert kept.counts_csv() == "split,class,count\ntrain,a,1\nval,a,1\n"


def test_a_label_the_adapter_does_not_declare(aircraft):
    path = aircraft / "data" / "images_variant_test.txt"
    path.write_text(path.read_text(encoding="utf-8") + "0000101 Concorde\n", encoding="utf-8")
    dataset = load_dataset("aircraft", aircraft, strict=False)
    assert [str(p) for p in dataset.problems] == [f"{path}:7: label 'Concorde' is not a declared class"]
    assert "Concorde" not in dataset.labels.classes and len(dataset.splits["test"]) == 6


def test_messages_about_splits_name_them_and_what_to_do(tmp_path):
    root = make_folder(tmp_path / "t", splits=("train",))
    with pytest.raises(UsageError) as refused:
        load_dataset("folder", root, ["val"])
    assert refused.value.message == "split 'val' is not in this dataset; it has: train"
    with pytest.raises(UsageError) as refused:
        load_dataset("folder", root, roles=True)
    assert (refused.value.message, refused.value.hint) == (
        "cannot tell which splits to train and evaluate on (this dataset has train)",
        "name them with --train-split and --val-split, or hold out part of 'train' to evaluate on with the adapter "
        "option --val-fraction (e.g. 0.1)",
    )


def test_opening_an_adapter_names_the_folder_and_the_options(tmp_path):
    from fgvctune.data.dataset import open_adapter

    with pytest.raises(DataError) as refused:
        open_adapter("csv", tmp_path / "nowhere")
    assert (refused.value.message, refused.value.hint) == (
        f"data directory {tmp_path / 'nowhere'} does not exist",
        "pass --data-dir with the dataset's folder",
    )
    with pytest.raises(UsageError) as refused:
        open_adapter("csv", tmp_path, levl="x", zz=1)
    assert refused.value.message == (
        "adapter 'csv' has no option 'levl'; its options: file, label_column, path_column, seed, split_column, "
        "val_fraction"
    )
    with pytest.raises(UsageError) as refused:
        open_adapter("folder", tmp_path, level="x")
    assert refused.value.message == "adapter 'folder' has no option 'level'; its options: seed, val_fraction"
    archive = tmp_path / "tree.zip"
    archive.write_bytes(b"")
    with pytest.raises(DataError, match="does not exist"):
        open_adapter("csv", archive)  # a file: only an adapter that reads archives takes one


def test_a_folder_tree_in_a_zip_archive(tmp_path):
    """Samples inside a container: the archive is listed, and messages show them as ARCHIVE:MEMBER."""
    from fgvctune.data.dataset import shown_name

    tree = make_folder(tmp_path / "t")
    archive = zip_tree(tree, tmp_path / "tree.zip")
    dataset = load_dataset("folder", archive)
    assert dataset.labels.classes == ("cat", "dog") and dataset.containers() == [archive]
    sample = dataset.splits["train"][0]
    assert shown_name(sample.path, tmp_path) == "tree.zip:train/cat/cat0.jpg"
    assert encoded_image(sample) == (tree / "train" / "cat" / "cat0.jpg").read_bytes()
    assert load_dataset("folder", tree).containers() == []
    assert shown_name(tree / "train" / "cat" / "cat0.jpg", tree) == "train/cat/cat0.jpg"
    assert shown_name(tmp_path / "elsewhere.jpg", tree) == str(tmp_path / "elsewhere.jpg")


def test_transformed_samples_are_written_as_png_or_jpeg():
    from pathlib import Path

    from fgvctune.data.dataset import Sample, transformed_suffix

    def suffix(name, **change):
        return transformed_suffix(Sample(Path(name), "a", name, **change))

    assert [suffix(n) for n in ("a.JPEG", "b.gif", "c.webp")] == [".JPEG", ".gif", ".webp"]
    assert [suffix(n, reencode=True) for n in ("a.PNG", "b.gif", "c.bmp", "d.tif", "e.tiff", "f.webp")] == [".png"] * 6
    assert [suffix(n, trim_bottom=1) for n in ("a.jpeg", "b.jpg")] == [".jpg", ".jpg"]
    assert suffix("a.png", box=(0, 0, 1, 1)) == ".png"


def test_label_map_file_errors(tmp_path):
    path = tmp_path / "labels.csv"
    with pytest.raises(DataError) as refused:
        LabelMap.read(path)
    assert refused.value.message == f"cannot read the label map {path}: No such file or directory"
    for rows in ("0,b,b\n1,a,a\n", "0,a,a\n2,b,b\n"):
        path.write_text("id,name,folder\n" + rows, encoding="utf-8")
        with pytest.raises(DataError) as refused:
            LabelMap.read(path)
        assert refused.value.message == f"{path}: ids must run 0..N-1 over the class names in sorted order"
    assert LabelMap.from_names(["b", "a", "b"]).to_csv() == "id,name,folder\n0,a,a\n1,b,b\n"


def test_an_image_claiming_more_pixels_than_the_limit_is_a_problem_that_skip_bad_skips(tmp_path):
    root = make_folder(tmp_path / "d")
    bomb = header_bomb(root / "train" / "cat" / "bomb.png", 30000)  # 74 bytes claiming 900 megapixels
    with pytest.raises(DataError) as caught:
        load_dataset("folder", root)
    message = caught.value.message  # cut in the middle when the paths are long
    assert message.startswith(str(bomb)) and message.endswith("(if it is real, set FGVCTUNE_MAX_PIXELS=900000000)")
    dataset = load_dataset("folder", root, skip_bad=True)
    assert len(dataset.splits["train"]) == 6
    assert f"{bomb} declares 30000x30000 pixels, over the limit of 200,000,000" in dataset.skipped_report()


def test_the_pixel_limit_is_set_through_the_environment(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "d")  # 40x48 images: 1,920 pixels
    monkeypatch.setenv("FGVCTUNE_MAX_PIXELS", "1000")
    refused = [p for p in load_dataset("folder", root, strict=False).problems if "declares 40x48 pixels" in str(p)]
    assert len(refused) == 12
    assert str(refused[0]).endswith("over the limit of 1,000 (if it is real, set FGVCTUNE_MAX_PIXELS=1920)")
    monkeypatch.setenv("FGVCTUNE_MAX_PIXELS", "1920")
    assert load_dataset("folder", root).problems == []
    monkeypatch.setenv("FGVCTUNE_MAX_PIXELS", "lots")
    with pytest.raises(UsageError, match="FGVCTUNE_MAX_PIXELS='lots' is not a number of pixels"):
        load_dataset("folder", root)


def test_pictures_are_decoded_reduced_to_the_size_drawn_and_keep_the_crop(tmp_path):
    image = Image.new("RGB", (800, 600), (220, 30, 30))
    image.paste((30, 30, 220), (400, 0, 800, 600))  # the right half blue
    image.save(tmp_path / "halves.jpg")
    sample = Sample(tmp_path / "halves.jpg", "a", "here", box=(400, 0, 800, 600))
    picture = decoded_image(sample, fit=100)
    assert picture.size == (67, 100) and picture.mode == "RGB"
    red, green, blue = np.asarray(picture).reshape(-1, 3).mean(axis=0)
    assert blue > 180 and red < 60


def test_a_picture_of_a_jpeg_claiming_11_gb_of_pixels_is_decoded_at_an_eighth(tmp_path, monkeypatch):
    monkeypatch.setenv("FGVCTUNE_MAX_PIXELS", str(60000**2))  # allowed, to see what decoding it takes
    bomb = header_bomb(tmp_path / "bomb.jpg", 60000)  # 60000x60000: 10.8 GB as RGB, 169 MB at an eighth
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    mapped = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + (1 << 30), hard))  # 1 GB more than this process holds now
    try:
        picture = decoded_image(Sample(bomb, "a", "here"), fit=300)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert picture.size == (300, 300)


def test_pils_own_pixel_guard_stays_in_place_and_an_image_past_it_is_one_line_and_no_warning(tmp_path, monkeypatch):
    """open_image raises PIL's limit to fgvctune's when it is below, and never removes or lowers it: code that opens
    images in the same process keeps PIL's decompression-bomb guard. An image past PIL's warning (225 megapixels)
    or its error (900) is fgvctune's one-line DataError, with no DecompressionBombWarning on the way."""
    import warnings

    from fgvctune.data.dataset import open_image

    good = write_image(tmp_path / "good.jpg")
    between = header_bomb(tmp_path / "between.png", 15000)
    beyond = header_bomb(tmp_path / "beyond.png", 30000)
    for own, kept in ((89_478_485, 200_000_000), (10**9, 10**9)):  # PIL's default, a user's higher limit
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", own)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning fails the test
            open_image(good).close()
            for path, side in ((between, 15000), (beyond, 30000)):
                with pytest.raises(DataError) as refused:
                    open_image(path)
                assert refused.value.message == (
                    f"{path} declares {side}x{side} pixels, over the limit of 200,000,000 "
                    f"(if it is real, set FGVCTUNE_MAX_PIXELS={side * side})"
                )
        assert Image.MAX_IMAGE_PIXELS == kept
