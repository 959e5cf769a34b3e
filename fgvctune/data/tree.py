"""Offline reading: write a dataset as an ImageNet-style class tree OUT/<split>/<class folder>/<image>.

Every file lands through a temporary name and an atomic rename, and a manifest written before any
file is placed records where each one comes from, so a rerun completes an interrupted conversion
(for `move` too: files already moved are found in the tree and never lost). Every path written or removed
goes through `fileio.inside`: nothing lands or goes outside the output folder, whatever the data or an old
manifest says.
"""

from __future__ import annotations

import errno
import filecmp
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fgvctune.data.containers import Member
from fgvctune.data.contract import IMAGE_EXTENSIONS
from fgvctune.data.dataset import Dataset, load_dataset
from fgvctune.data.edits import RELABELLED_FILE, relabelled_csv
from fgvctune.data.images import encoded_image, transformed_suffix
from fgvctune.data.labels import LABELS_FILE, folder_name
from fgvctune.errors import DataError, UsageError
from fgvctune.fileio import atomic_write_bytes, atomic_write_text, inside, stays_below

MODES = ("hardlink", "symlink", "copy", "move")
MANIFEST = ".fgvctune-tree.json"
COUNTS_FILE = "counts.csv"
SKIPPED_FILE = "skipped.txt"


@dataclass
class ConvertResult:
    out: Path
    dataset: Dataset
    placed: int  # files written in this run
    unchanged: int  # files already in place from an earlier run

    @property
    def files(self) -> list[Path]:
        d = self.dataset
        names = [LABELS_FILE, COUNTS_FILE] + ([SKIPPED_FILE] if d.problems or d.excluded else [])
        names += [RELABELLED_FILE] if d.relabelled else []
        return [self.out / name for name in names]


def convert(
    adapter: str,
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    splits: list[str] | None = None,
    options: dict | None = None,
    mode: str = "hardlink",
    force: bool = False,
    skip_bad: bool = False,
    progress: bool = False,
    dataset: Dataset | None = None,
    exclude: str | os.PathLike = "",
    relabel: str | os.PathLike = "",
) -> ConvertResult:
    """Write the class tree; `dataset` skips reading and checking when the caller already did. `exclude` and
    `relabel` are files of sample ids (edits.py): left out, or written under their new class."""
    if mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    out = Path(out)
    manifest = _read_manifest(out)
    if manifest is None and out.is_dir() and any(out.iterdir()) and not force:
        raise DataError(
            f"output folder {out} already holds files that fgvctune did not write",
            hint="choose an empty --out, or pass --force to write into it anyway",
        )
    previous = manifest["files"] if manifest else {}
    moved_before = manifest is not None and manifest["mode"] == "move"
    # Files an earlier `move` already placed are read from the tree, where they now live. (One still at its source
    # too was copied across file systems and not yet removed there: it is moved again, which removes it.)
    relocated = {
        Path(src): out / dst for dst, src in previous.items() if (out / dst).is_file() and not os.path.lexists(src)
    }
    relocated = relocated if moved_before else {}
    if dataset is None:
        dataset = load_dataset(
            adapter,
            data_dir,
            splits,
            options,
            skip_bad=skip_bad,
            relocated=relocated,
            purpose="converted (a class tree needs labels)",
            exclude=exclude,
            relabel=relabel,
        )
    plan = _plan(dataset, out)

    stale = sorted(set(previous) - set(plan))
    if stale and moved_before:
        raise DataError(
            f"{out} holds {len(stale)} moved original(s) that this conversion would not keep, e.g. {stale[0]}",
            hint="rerun with the options of the earlier `--mode move`, or move those files back first",
        )
    out.mkdir(parents=True, exist_ok=True)
    # The journal goes first: an interrupted run is completed by the next one.
    files = {dst: str(sample.path) for dst, sample in plan.items()}
    _write_manifest(out, adapter, mode, files, complete=False)
    _remove_leftovers(out, stale)

    placed = unchanged = 0
    items = list(plan.items())
    for dst, sample in _track(items, "placing images", progress):
        source = relocated.get(sample.path, sample.path)
        if _place(sample, source if isinstance(source, Member) else Path(source), out / dst, mode):
            placed += 1
        else:
            unchanged += 1

    atomic_write_text(out / LABELS_FILE, dataset.labels.to_csv())
    atomic_write_text(out / COUNTS_FILE, dataset.counts_csv())
    _write_or_remove(out / SKIPPED_FILE, dataset.skipped_report())
    _write_or_remove(out / RELABELLED_FILE, relabelled_csv(dataset.relabelled) if dataset.relabelled else "")
    _write_manifest(out, adapter, mode, files, complete=True)
    return ConvertResult(out=out, dataset=dataset, placed=placed, unchanged=unchanged)


def _write_or_remove(path: Path, text: str) -> None:
    """Write `text`; with none, remove an earlier conversion's file, which no longer holds."""
    if text:
        atomic_write_text(path, text)
    elif path.exists():
        path.unlink()


def _plan(dataset: Dataset, out: Path) -> dict[str, object]:
    """Relative destination -> sample, with unique file names inside each class folder; every destination inside
    `out` (checked here, before anything is written)."""
    plan, checked = {}, set()
    for split, samples in dataset.splits.items():
        if not stays_below(split) or "/" in split:  # one folder name, inside the tree
            raise DataError(
                f"split {split!r} cannot be a folder of the class tree", hint="rename it in the annotations"
            )
        for sample in samples:
            folder = f"{split}/{folder_name(sample.label)}"
            name = sample.path.stem + transformed_suffix(sample)
            if f"{folder}/{name}" in plan:  # same file name from two source folders (or shards)
                name = _flat_name(sample.path, dataset.root, transformed_suffix(sample))
            plan[f"{folder}/{name}"] = sample
            if folder not in checked:  # once per class folder (file names have no /): it may be a link elsewhere
                inside(out, f"{folder}/{name}")
                checked.add(folder)
    return plan


def _flat_name(source: Path | Member, root: Path, suffix: str) -> str:
    """A name unique in the dataset: the source's path under the root (and a member's key), joined by __."""
    if isinstance(source, Member):
        key = PurePosixPath(source.key)
        key = key.with_suffix("") if key.suffix.lower() in IMAGE_EXTENSIONS else key
        container = os.path.relpath(source.container, root).replace(os.sep, "__")
        return f"{container}__{key.as_posix().replace('/', '__')}{suffix}"
    return str(Path(os.path.relpath(source, root).replace(os.sep, "__")).with_suffix(suffix))


def _place(sample, source: Path | Member, dst: Path, mode: str) -> bool:
    """Put one file in the tree; False when it was already there."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    # Cropped, re-encoded or inside a container: a new file, the source stays as it is whatever the mode.
    if sample.transformed or isinstance(source, Member):
        data = encoded_image(sample, source)
        if dst.is_file() and dst.read_bytes() == data:
            return False
        atomic_write_bytes(dst, data)
        return True
    if mode == "move":
        return _move(source, dst)
    if mode == "hardlink":
        if dst.exists() and os.path.samefile(source, dst):
            return False
        _via_temp(dst, lambda tmp: _link_or_copy(source, tmp))
    elif mode == "symlink":
        target = os.path.abspath(source)
        if dst.is_symlink() and os.readlink(dst) == target:
            return False
        _via_temp(dst, lambda tmp: os.symlink(target, tmp))
    else:
        if dst.is_file() and not dst.is_symlink() and _same_content_stamp(source, dst):
            return False
        _via_temp(dst, lambda tmp: shutil.copy2(source, tmp))
    return True


def _move(source: Path, dst: Path) -> bool:
    if dst.is_file() and not source.exists():
        return False  # moved by an earlier run
    if dst.is_file() and source.exists() and os.path.samefile(source, dst):
        return False
    if dst.is_file() and source.exists() and filecmp.cmp(source, dst, shallow=False):
        source.unlink()  # an earlier run copied across file systems and stopped before removing the source
        return True
    try:
        os.replace(source, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _via_temp(dst, lambda tmp: shutil.copy2(source, tmp))
        source.unlink()
    return True


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copy2(source, target)  # another file system: hardlinks cannot cross it


def _same_content_stamp(a: Path, b: Path) -> bool:
    sa, sb = a.stat(), b.stat()
    return sa.st_size == sb.st_size and int(sa.st_mtime) == int(sb.st_mtime)


def _via_temp(dst: Path, make) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    if tmp.exists() or tmp.is_symlink():
        tmp.unlink()
    make(tmp)
    os.replace(tmp, dst)


def _remove_leftovers(out: Path, stale: list[str]) -> None:
    """Drop files an earlier run placed that this plan does not keep, and temporaries of killed runs; never
    anything outside `out` (a manifest's entries are checked when it is read; a folder linked in is not entered)."""
    for rel in stale:
        path = inside(out, rel)
        if path.is_file() or path.is_symlink():
            path.unlink()
    for tmp in _in_tree(out, out.glob("*/*/.*.tmp*")):
        tmp.unlink()
    for folder in sorted(_in_tree(out, out.glob("*/*")), reverse=True):
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()


def _in_tree(out: Path, paths) -> list[Path]:
    """Those of `paths`, found by a glob under `out`, that really are inside it (a glob follows linked folders)."""
    kept = []
    for path in paths:
        try:
            kept.append(inside(out, path.relative_to(out).as_posix()))
        except DataError:
            pass
    return kept


def _read_manifest(out: Path) -> dict | None:
    path = out / MANIFEST
    if not path.is_file():
        return None
    damaged = DataError(f"{path} is damaged", hint="remove the output folder, or pass a new --out")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise damaged from None
    if not isinstance(record, dict) or record.get("mode") not in MODES or not isinstance(record.get("files"), dict):
        raise damaged
    files = record["files"]
    if not all(isinstance(source, str) for source in files.values()):
        raise damaged
    # Its entries are removed or read back later: one outside the folder refuses the whole manifest, up front.
    for dst in files:
        try:
            inside(out, dst)
        except DataError as exc:
            raise DataError(
                f"{path}: {exc.message}",
                hint="fgvctune did not write this manifest: remove it, or pass a new --out",
            ) from None
    return record


def _write_manifest(out: Path, adapter: str, mode: str, files: dict, complete: bool) -> None:
    record = {"version": 1, "adapter": adapter, "mode": mode, "complete": complete, "files": files}
    atomic_write_text(out / MANIFEST, json.dumps(record, indent=1, ensure_ascii=False))


def _track(items, description: str, enabled: bool):
    if not enabled or len(items) < 200:
        return items
    from rich.console import Console
    from rich.progress import track

    return track(items, description=description, console=Console(stderr=True), transient=True)
