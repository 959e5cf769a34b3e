"""Offline reading: the class tree, each placement mode, reruns and the interrupted move."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import fgvctune.data.tree as tree_module
from conftest import make_csv, make_folder, write_image
from fgvctune.data.dataset import LabelMap
from fgvctune.data.tree import MANIFEST, convert
from fgvctune.errors import DataError, UsageError


def tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and p.parent != out}


@pytest.mark.parametrize("level", ["variant", "family", "manufacturer"])
def test_convert_writes_annotation_counts_and_label_map(aircraft, tmp_path, level):
    out = tmp_path / "out"
    result = convert("aircraft", aircraft, out, options={"level": level})
    data = aircraft / "data"
    for split in ("trainval", "test"):
        lines = (data / f"images_{level}_{split}.txt").read_text(encoding="utf-8").splitlines()
        assert len(list((out / split).glob("*/*.jpg"))) == len(lines)
    labels = LabelMap.read(out / "labels.csv")
    assert labels == result.dataset.labels
    if level != "manufacturer":
        assert "F/A-18" in labels.classes and (out / "trainval" / "F_A-18").is_dir()
    counts = (out / "counts.csv").read_text(encoding="utf-8").splitlines()
    assert counts[0] == "split,class,count" and len(counts) == 1 + 2 * len(labels)


def test_convert_each_split(aircraft, tmp_path):
    for split in ("train", "val", "trainval", "test"):
        out = tmp_path / split
        convert("aircraft", aircraft, out, splits=[split])
        assert [p.name for p in out.iterdir() if p.is_dir()] == [split]


@pytest.mark.parametrize("mode", ["hardlink", "symlink", "copy", "move"])
def test_placement_modes_give_the_same_tree(aircraft, tmp_path, mode):
    reference = tmp_path / "ref"
    convert("aircraft", aircraft, reference, mode="copy")
    images = aircraft / "data" / "images"
    before = len(list(images.iterdir()))
    out = tmp_path / mode
    result = convert("aircraft", aircraft, out, mode=mode)
    assert tree(out) == tree(reference)
    placed = next((out / "test").glob("*/*.jpg"))
    if mode == "hardlink":
        assert placed.stat().st_nlink == 2
    if mode == "symlink":
        assert placed.is_symlink() and Path(os.readlink(placed)).is_absolute()
    if mode == "move":
        assert len(list(images.iterdir())) == before - result.placed  # moved, not copied
    else:
        assert len(list(images.iterdir())) == before


@pytest.mark.parametrize("mode", ["hardlink", "symlink", "copy", "move"])
def test_rerun_is_safe_and_identical(aircraft, tmp_path, mode):
    out = tmp_path / "out"
    first = convert("aircraft", aircraft, out, mode=mode)
    snapshot = tree(out)
    again = convert("aircraft", aircraft, out, mode=mode)
    assert again.placed == 0 and again.unchanged == first.placed
    assert tree(out) == snapshot


def test_rerun_with_other_options_leaves_no_stale_folders(aircraft, tmp_path):
    out = tmp_path / "out"
    convert("aircraft", aircraft, out)
    convert("aircraft", aircraft, out, options={"level": "manufacturer"})
    assert sorted(p.name for p in (out / "test").iterdir()) == ["Boeing", "Cessna", "McDonnell Douglas"]


def test_foreign_output_folder_is_refused_unless_forced(aircraft, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    with pytest.raises(DataError) as refused:
        convert("aircraft", aircraft, out)
    assert (refused.value.message, refused.value.hint) == (
        f"output folder {out} already holds files that fgvctune did not write",
        "choose an empty --out, or pass --force to write into it anyway",
    )
    convert("aircraft", aircraft, out, force=True)
    assert (out / "precious.txt").read_text() == "mine"


def test_interrupted_move_loses_nothing_and_rerun_completes(aircraft, tmp_path, monkeypatch):
    images = aircraft / "data" / "images"
    originals = {p.name: p.read_bytes() for p in images.iterdir()}
    out = tmp_path / "out"
    real_move, calls = tree_module._move, []

    def dies_on_the_fifth(source, dst):
        calls.append(source)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_move(source, dst)

    monkeypatch.setattr(tree_module, "_move", dies_on_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        convert("aircraft", aircraft, out, mode="move")
    monkeypatch.setattr(tree_module, "_move", real_move)
    assert json.loads((out / MANIFEST).read_text(encoding="utf-8"))["complete"] is False

    everywhere = {p.name: p.read_bytes() for p in list(images.iterdir()) + list(out.glob("*/*/*.jpg"))}
    assert everywhere == originals  # nothing lost mid-way
    result = convert("aircraft", aircraft, out, mode="move")
    assert result.placed == len(originals) - 4
    assert {p.name: p.read_bytes() for p in out.glob("*/*/*.jpg")} == originals
    assert not list(images.iterdir())
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert {k: v for k, v in manifest.items() if k != "files"} == {
        "version": 1,
        "adapter": "aircraft",
        "mode": "move",
        "complete": True,
    }
    assert {Path(source).name for source in manifest["files"].values()} == set(originals)


def test_same_file_name_from_two_folders(tmp_path):
    rows = [
        ("x/a.jpg", "k", "train", (1, 1, 1)),
        ("y/a.jpg", "k", "train", (200, 1, 1)),
        ("z/b.jpg", "k", "val", (9, 9, 9)),
    ]
    root = make_csv(tmp_path / "d", rows)
    out = tmp_path / "out"
    convert("csv", root, out)
    assert sorted(p.name for p in (out / "train" / "k").iterdir()) == ["a.jpg", "y__a.jpg"]


def test_skip_bad_writes_skipped_list(aircraft, tmp_path):
    victim = next((aircraft / "data" / "images").iterdir())
    victim.unlink()
    with pytest.raises(DataError, match="missing file"):
        convert("aircraft", aircraft, tmp_path / "out")
    result = convert("aircraft", aircraft, tmp_path / "out", skip_bad=True)
    assert victim.name in (tmp_path / "out" / "skipped.txt").read_text()
    assert sum(len(s) for s in result.dataset.splits.values()) == 17


def test_rerun_of_a_cropped_tree_rewrites_only_the_changed_image(aircraft, tmp_path):
    out = tmp_path / "out"
    first = convert("aircraft", aircraft, out, options={"crop_box": True})
    assert convert("aircraft", aircraft, out, options={"crop_box": True}).placed == 0
    source = aircraft / "data" / "images" / "0000101.jpg"
    write_image(source, (0, 0, 255), size=(60, 50))
    again = convert("aircraft", aircraft, out, options={"crop_box": True})
    assert (again.placed, again.unchanged) == (1, first.placed - 1)


def test_counts_csv_counts_zero_for_a_class_missing_from_a_split(aircraft, tmp_path):
    path = aircraft / "data" / "images_variant_test.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    missing = lines[0].split(" ", 1)[1]
    path.write_text("".join(f"{line}\n" for line in lines if not line.endswith(f" {missing}")), encoding="utf-8")
    convert("aircraft", aircraft, tmp_path / "out")
    counts = (tmp_path / "out" / "counts.csv").read_text(encoding="utf-8").splitlines()
    assert f"test,{missing},0" in counts and f"trainval,{missing},4" in counts


def test_written_files_get_the_usual_permissions(aircraft, tmp_path):
    """Files fgvctune writes atomically are readable as any new file is (umask), not private to the writer."""
    from fgvctune.fileio import UMASK

    convert("aircraft", aircraft, tmp_path / "out", options={"crop_box": True})
    for name in ("labels.csv", "counts.csv", MANIFEST):
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o666 & ~UMASK
    cropped = next((tmp_path / "out" / "test").glob("*/*.jpg"))
    assert cropped.stat().st_mode & 0o777 == 0o666 & ~UMASK


def test_a_bad_mode_and_a_damaged_manifest_are_named(aircraft, tmp_path):
    with pytest.raises(UsageError) as refused:
        convert("aircraft", aircraft, tmp_path / "out", mode="zip")
    assert refused.value.message == "--mode must be one of hardlink, symlink, copy, move, got 'zip'"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / MANIFEST).write_text("{half", encoding="utf-8")
    with pytest.raises(DataError) as refused:
        convert("aircraft", aircraft, tmp_path / "out")
    assert (refused.value.message, refused.value.hint) == (
        f"{tmp_path / 'out' / MANIFEST} is damaged",
        "remove the output folder, or pass a new --out",
    )


def test_moved_originals_are_never_dropped_by_a_narrower_rerun(aircraft, tmp_path):
    out = tmp_path / "out"
    convert("aircraft", aircraft, out, mode="move")
    moved = sorted(str(p.relative_to(out)) for p in (out / "trainval").glob("*/*.jpg"))
    with pytest.raises(DataError) as refused:
        convert("aircraft", aircraft, out, splits=["test"], mode="move")
    assert (refused.value.message, refused.value.hint) == (
        f"{out} holds {len(moved)} moved original(s) that this conversion would not keep, e.g. {moved[0]}",
        "rerun with the options of the earlier `--mode move`, or move those files back first",
    )
    assert sorted(str(p.relative_to(out)) for p in (out / "trainval").glob("*/*.jpg")) == moved


def test_skipped_list_goes_once_the_data_is_fixed(aircraft, tmp_path):
    victim = next((aircraft / "data" / "images").iterdir())
    kept = victim.read_bytes()
    victim.unlink()
    out = tmp_path / "out"
    first = convert("aircraft", aircraft, out, skip_bad=True)
    assert first.files == [out / "labels.csv", out / "counts.csv", out / "skipped.txt"]
    victim.write_bytes(kept)
    again = convert("aircraft", aircraft, out)
    assert again.files == [out / "labels.csv", out / "counts.csv"] and not (out / "skipped.txt").exists()
    assert (again.placed, again.unchanged) == (1, first.placed)


def test_a_copy_replaced_within_the_same_second_is_copied_again(aircraft, tmp_path):
    """The copy mode's rerun compares size and whole-second modification time; either differing means a new file."""
    out = tmp_path / "out"
    convert("aircraft", aircraft, out, mode="copy")
    source = aircraft / "data" / "images" / "0000101.jpg"
    stamp = source.stat().st_mtime
    write_image(source, (0, 0, 255), size=(70, 50))
    os.utime(source, (stamp, stamp))
    again = convert("aircraft", aircraft, out, mode="copy")
    assert (again.placed, again.unchanged) == (1, 17)
    assert all(p.read_bytes() == source.read_bytes() for p in out.glob("*/*/0000101.jpg"))


def test_temporaries_of_a_killed_run_are_removed(aircraft, tmp_path):
    out = tmp_path / "out"
    convert("aircraft", aircraft, out)
    leftover = next((out / "test").glob("*/")) / f".0000999.jpg.tmp-{os.getpid() + 1}"
    leftover.write_bytes(b"half")
    convert("aircraft", aircraft, out)
    assert not leftover.exists()


def test_members_with_the_same_name_get_their_path_in_the_archive(tmp_path):
    """Two images of a class that both become x.png (re-encoded) from one archive: the second is named by its
    archive and member path."""
    import zipfile

    tree = tmp_path / "t"
    make_folder(tree, classes=("a",))
    write_image(tree / "train" / "a" / "x.png", mode="RGBA")
    write_image(tree / "train" / "a" / "x.gif", mode="P")
    archive = tmp_path / "tree.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            z.write(path, path.relative_to(tree).as_posix())
    out = tmp_path / "out"
    convert("folder", archive, out)
    names = sorted(p.name for p in (out / "train" / "a").iterdir())
    assert names == ["a0.jpg", "a1.jpg", "a2.jpg", "tree.zip__train__a__x.png", "x.png"]
