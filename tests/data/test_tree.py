"""Offline reading: the class tree, each placement mode, reruns and the interrupted move."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import fgvctune.data.tree as tree_module
from conftest import make_csv, make_folder, write_archive, write_image
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


# -- nothing written or removed outside the output folder ------------------------------------------------------
def everything(root: Path) -> dict[str, bytes | str]:
    """Every file and link under `root`, with its bytes or its target."""
    return {
        str(p): f"-> {os.readlink(p)}" if p.is_symlink() else p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_symlink() or p.is_file()
    }


def hostile_archive(tmp_path: Path, kind: str, member: str) -> Path:
    """A class tree (classes cat and the temp root's top folder) in a .zip or .tar, plus `member`."""
    top = tmp_path.parts[1]  # "/tmp/NAME.jpg" has three parts: split "/", class "tmp", image NAME
    tree = make_folder(tmp_path / "tree", classes=("cat", top), per_class=1)
    data = (tree / "train" / "cat" / "cat0.jpg").read_bytes()
    files = [(p.relative_to(tree).as_posix(), p.read_bytes()) for p in sorted(tree.rglob("*.jpg"))] + [(member, data)]
    return write_archive(tmp_path / f"tree.{kind}", files)


@pytest.mark.parametrize("kind", ["zip", "tar"])
@pytest.mark.parametrize("member", ["/{top}/{unique}.jpg", "../{top}/{unique}.jpg", "train/../../decoy/x.jpg"])
def test_archive_members_that_leave_the_tree_are_problems_and_written_nowhere(tmp_path, kind, member):
    unique = f"fgvctune-test-{tmp_path.name}-{os.getpid()}"
    member = member.format(top=tmp_path.parts[1], unique=unique)
    archive = hostile_archive(tmp_path, kind, member)
    write_image(tmp_path / "decoy" / "x.jpg")
    before, out = everything(tmp_path), tmp_path / "out"
    escaped = Path("/", tmp_path.parts[1], f"{unique}.jpg")
    try:
        with pytest.raises(DataError) as refused:
            convert("folder", archive, out)
        assert refused.value.message == f"{archive.name}:{member}: the member's name leads out of the archive's folder"
        result = convert("folder", archive, out, skip_bad=True)
        assert list(result.dataset.splits) == ["train", "val"]
        assert (out / "skipped.txt").read_text() == f"{refused.value.message}\n"
        assert not escaped.exists()
    finally:
        if escaped.is_file():  # written by a fgvctune that did not check
            escaped.unlink()
    after = {path: data for path, data in everything(tmp_path).items() if not Path(path).is_relative_to(out)}
    assert after == before


def test_info_lists_no_split_named_after_a_member_that_leaves_the_tree(tmp_path):
    from typer.testing import CliRunner

    from fgvctune.cli import app

    archive = hostile_archive(tmp_path, "zip", f"/{tmp_path.parts[1]}/x.jpg")
    result = CliRunner().invoke(app, ["info", "-a", "folder", "-d", str(archive)])
    assert result.exit_code == 1  # the exit code of a dataset with problems
    splits = [line.split(":")[0].strip() for line in result.output.splitlines() if " images, " in line]
    assert splits == ["train (train)", "val (eval)"]
    problem = f"tree.zip:/{tmp_path.parts[1]}/x.jpg: the member's name leads out of the archive's folder"
    assert f"  {problem}\n" in result.output


@pytest.mark.parametrize("split", ["..", ".", "../decoy", "a/b"])
def test_a_split_that_is_not_one_folder_name_is_refused_before_anything_is_written(tmp_path, split):
    data = make_csv(tmp_path / "data", [("a.png", "cat", "train", (1, 2, 3)), ("b.png", "cat", split, (4, 5, 6))])
    (tmp_path / "decoy").mkdir()
    before = everything(tmp_path)
    with pytest.raises(DataError) as refused:
        convert("csv", data, tmp_path / "out")
    assert (refused.value.message, refused.value.hint) == (
        f"split {split!r} cannot be a folder of the class tree",
        "rename it in the annotations",
    )
    assert everything(tmp_path) == before and not (tmp_path / "out").exists()


def planted_manifest(out: Path, files: dict, mode: str = "copy") -> None:
    out.mkdir(parents=True, exist_ok=True)
    record = {"version": 1, "adapter": "folder", "mode": mode, "complete": True, "files": files}
    (out / MANIFEST).write_text(json.dumps(record), encoding="utf-8")


@pytest.mark.parametrize("mode", ["copy", "move"])
@pytest.mark.parametrize(
    "entry", ["../decoy/keep.jpg", "{decoy}/keep.jpg", "train/../../decoy/keep.jpg", "link/cat/keep.jpg"]
)
def test_a_manifest_naming_files_outside_its_folder_is_refused_before_anything_is_removed(tmp_path, entry, mode):
    tree = make_folder(tmp_path / "tree", per_class=1)
    decoy = tmp_path / "decoy"
    write_image(decoy / "keep.jpg")
    write_image(decoy / "cat" / "keep.jpg")
    out = tmp_path / "out"
    convert("folder", tree, out)
    (out / "link").symlink_to(decoy)  # a folder in the output that leads elsewhere
    entry = entry.format(decoy=decoy)
    files = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"]
    planted_manifest(out, {**files, entry: str(tree / "train" / "cat" / "gone.jpg")}, mode)
    before = everything(tmp_path)
    with pytest.raises(DataError) as refused:
        convert("folder", tree, out)
    assert refused.value.message.startswith(f"{out / MANIFEST}: ") and "\n" not in refused.value.message
    assert refused.value.hint == "fgvctune did not write this manifest: remove it, or pass a new --out"
    assert everything(tmp_path) == before


@pytest.mark.parametrize(
    "record", [[], {"files": []}, {"mode": "copy", "files": {"a": 1}}, {"mode": "zip", "files": {}}]
)
def test_a_manifest_of_the_wrong_shape_is_named_as_damaged(tmp_path, record):
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(DataError) as refused:
        convert("folder", make_folder(tmp_path / "tree", per_class=1), out)
    assert (refused.value.message, refused.value.hint) == (
        f"{out / MANIFEST} is damaged",
        "remove the output folder, or pass a new --out",
    )


def test_cleaning_up_never_enters_a_folder_linked_into_the_output(tmp_path):
    tree = make_folder(tmp_path / "tree", per_class=1)
    out = tmp_path / "out"
    convert("folder", tree, out)
    decoy = tmp_path / "decoy"
    (decoy / "empty").mkdir(parents=True)
    (decoy / "sub" / ".x.jpg.tmp-1").parent.mkdir()
    (decoy / "sub" / ".x.jpg.tmp-1").write_bytes(b"mine")
    (out / "link").symlink_to(decoy)
    convert("folder", tree, out)
    assert (decoy / "sub" / ".x.jpg.tmp-1").read_bytes() == b"mine" and (decoy / "empty").is_dir()


def test_move_over_a_different_file_of_the_same_size_keeps_the_original(tmp_path):
    """A file in the tree that is not the source's copy (edited, or planted) is never taken for it."""
    tree = make_folder(tmp_path / "tree", per_class=1)
    out = tmp_path / "out"
    convert("folder", tree, out, mode="copy")
    original = (tree / "train" / "cat" / "cat0.jpg").read_bytes()
    (out / "train" / "cat" / "cat0.jpg").write_bytes(bytes(len(original)))
    convert("folder", tree, out, mode="move")
    assert (out / "train" / "cat" / "cat0.jpg").read_bytes() == original


# -- an interrupted move finishes with the same command, whatever the adapter -----------------------------------
def moving_dataset(tmp_path: Path, adapter: str) -> tuple[Path, Path]:
    """Eight images to move (two splits, two classes, two each) and the folder they sit in."""
    if adapter == "folder":
        root = make_folder(tmp_path / "tree", per_class=2)
        return root, root
    rows = [
        (f"img/{split}{label}{i}.png", label, split, (40 * i, 90, 9 * len(split)))
        for split in ("train", "val")
        for label in ("cat", "dog")
        for i in range(2)
    ]
    root = make_csv(tmp_path / "data", rows)
    return root, root / "img"


@pytest.mark.parametrize("adapter", ["folder", "csv"])
@pytest.mark.parametrize("moved", range(9))
def test_interrupted_move_finishes_with_the_same_command(tmp_path, monkeypatch, adapter, moved):
    """Killed after `moved` of the eight files went (0: after the journal, 8: before labels.csv), the same
    command finishes the move: the tree a move that was never interrupted gives, nothing lost or left behind."""
    root, images = moving_dataset(tmp_path, adapter)
    originals = {p.name: p.read_bytes() for p in images.rglob("*.*")}
    out = tmp_path / "out"

    def killed(items, description, enabled):
        yield from items[:moved]
        raise KeyboardInterrupt

    monkeypatch.setattr(tree_module, "_track", killed)
    with pytest.raises(KeyboardInterrupt):
        convert(adapter, root, out, mode="move")
    monkeypatch.undo()
    found = {p.name: p.read_bytes() for p in [*images.rglob("*"), *out.glob("*/*/*")] if p.is_file()}
    assert {name: found.get(name) for name in originals} == originals  # nothing lost

    result = convert(adapter, root, out, mode="move")
    assert (result.placed, result.unchanged) == (8 - moved, moved)
    assert {p.name: p.read_bytes() for p in out.glob("*/*/*")} == originals
    assert not [p for p in images.rglob("*") if p.is_file()]
    assert json.loads((out / MANIFEST).read_text(encoding="utf-8"))["complete"] is True
    assert (out / "counts.csv").read_text() == "split,class,count\ntrain,cat,2\ntrain,dog,2\nval,cat,2\nval,dog,2\n"


def test_a_move_that_copied_a_file_but_did_not_remove_its_source_is_finished(tmp_path, monkeypatch):
    """Across file systems a move is a copy, then the source's removal: killed between the two, the rerun removes
    the source and keeps the copy."""
    root = make_folder(tmp_path / "tree", per_class=1)
    out = tmp_path / "out"

    def killed(items, description, enabled):
        yield from items[:1]
        raise KeyboardInterrupt

    monkeypatch.setattr(tree_module, "_track", killed)
    with pytest.raises(KeyboardInterrupt):
        convert("folder", root, out, mode="move")
    monkeypatch.undo()
    files = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"]
    dst, src = next((dst, src) for dst, src in files.items() if Path(src).exists())
    original = Path(src).read_bytes()
    (out / dst).parent.mkdir(parents=True, exist_ok=True)
    (out / dst).write_bytes(original)  # copied, source not yet removed
    convert("folder", root, out, mode="move")
    assert not Path(src).exists() and (out / dst).read_bytes() == original
    assert not [p for p in root.rglob("*") if p.is_file()]
