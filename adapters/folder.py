"""An ImageNet-style class tree: root/<split>/<class>/<image>, as folders or inside a .tar, .tar.gz or .zip."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fgvctune import IMAGE_EXTENSIONS, Listing, Problem, Sample
from fgvctune.data.containers import Member, tar_index
from fgvctune.errors import DataError
from fgvctune.fileio import stays_below

ARCHIVES = (".tar", ".tar.gz", ".tgz", ".zip")


@dataclass
class FolderAdapter:
    """An ImageNet-style tree root/<split>/<class>/<image>, or an archive of one; hidden files are ignored."""

    data_dir: Path
    reads_archives = True  # --data-dir may name a .tar, .tar.gz or .zip holding the tree
    # Images an interrupted `convert --mode move` already took out of the tree (load_dataset sets them): listed
    # as if still here, so rerunning the same command sees the same dataset and finishes the move.
    moved = frozenset()  # of Paths; not annotated, so not an option

    def read(self) -> Listing:
        if Path(self.data_dir).is_file():
            return _archive(Path(self.data_dir))
        splits: dict[str, list[Sample]] = {}
        classes: set[str] = set()
        moved_from = _by_class_folder(self.moved, Path(self.data_dir))
        for split_dir in _visible_dirs(self.data_dir):
            samples = splits[split_dir.name] = []
            for class_dir in _visible_dirs(split_dir):
                classes.add(class_dir.name)
                moved = moved_from.get(class_dir, set())
                for path in sorted(set(class_dir.rglob("*")) | moved):
                    relative = path.relative_to(class_dir).parts
                    image = path.suffix.lower() in IMAGE_EXTENSIONS and not _hidden(relative)
                    if image and (path.is_file() or path in moved):
                        samples.append(Sample(path=path, label=class_dir.name, where=str(path)))
        if not splits:
            raise DataError(f"{self.data_dir} has no split folders", hint="expected <data-dir>/<split>/<class>/<image>")
        return _listing(Path(self.data_dir), splits, classes)


def _listing(root: Path, splits: dict, classes: set, problems: list | None = None) -> Listing:
    names = list(splits)
    return Listing(
        root=root,
        splits=splits,
        classes=sorted(classes),
        problems=problems or [],
        train_split=next((s for s in ("train", "trainval") if s in names), None),
        eval_split=next((s for s in ("val", "test", "validation") if s in names), None),
    )


def _archive(path: Path) -> Listing:
    """The tree inside an archive, read in place (members, never unpacked); a top folder around it is allowed."""
    import zipfile

    if not path.name.lower().endswith(ARCHIVES):
        raise DataError(f"{path} is not a folder or an archive", hint=f"pass a folder, or one of {', '.join(ARCHIVES)}")
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as z:
                # Not ZipInfo.is_dir, which fails on an empty name.
                names, kind = [i.filename for i in z.infolist() if not i.filename.endswith("/")], "zip"
        except zipfile.BadZipFile as exc:
            raise DataError(f"{path} is not a readable zip archive ({exc})") from None
    else:
        names, kind = list(tar_index(path)), "tar"
    # Image files, hidden ones (and macOS's __MACOSX copies) left out, at <split>/<class>/<image>, or one folder
    # deeper when the archive holds the dataset's folder: the depth most of them have.
    images, problems = [], []
    for name in sorted(names):
        if Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if not stays_below(name):  # `/etc/x.jpg`, `../x.jpg`: its split or class would be `/` or `..`
            problems.append(Problem(f"{path.name}:{name}", "the member's name leads out of the archive's folder"))
        elif not _hidden(PurePosixPath(name).parts):
            images.append((name, PurePosixPath(name).parts))
    depths = Counter(len(p) for _, p in images if len(p) in (3, 4))
    depth = depths.most_common(1)[0][0] if depths else 3
    splits: dict[str, list[Sample]] = {}
    classes: set[str] = set()
    for name, p in images:
        if len(p) != depth:
            continue
        split, label = p[-3], p[-2]
        classes.add(label)
        splits.setdefault(split, []).append(
            Sample(path=Member(path, kind, name, filename=p[-1]), label=label, where=f"{path.name}:{name}")
        )
    if not splits:
        raise DataError(f"{path} holds no <split>/<class>/<image> files")
    return _listing(path.parent, splits, classes, problems)


def _by_class_folder(paths, root: Path) -> dict[Path, set[Path]]:
    """`paths` under root/<split>/<class>/, by that class folder (others are none of this tree's)."""
    folders: dict[Path, set[Path]] = {}
    for path in paths:
        parts = path.relative_to(root).parts if path.is_relative_to(root) else ()
        if len(parts) > 2:
            folders.setdefault(root / parts[0] / parts[1], set()).add(path)
    return folders


def _hidden(parts) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
