"""A class tree: ImageNet-style root/<split>/<class>/<image>, or root/<class>/<image> (one split, as
torchvision's ImageFolder and `datasets`' imagefolder read it), as folders or inside a .tar, .tar.gz or .zip."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from fgvctune import IMAGE_EXTENSIONS, Listing, Problem, Sample
from fgvctune.data.containers import Member, tar_index
from fgvctune.data.splits import EVAL_NAMES, TRAIN_NAMES, held_out, roles
from fgvctune.errors import DataError
from fgvctune.fileio import stays_below

ARCHIVES = (".tar", ".tar.gz", ".tgz", ".zip")
SPLIT = "train"  # the one split of a <class>/<image> tree


@dataclass
class FolderAdapter:
    """A class tree root/<split>/<class>/<image> or root/<class>/<image>, or an archive of one; hidden files are
    ignored."""

    data_dir: Path
    val_fraction: float = field(
        default=0.0,
        metadata={
            "help": "share of 'train' held out as 'val', stratified, beside a test split if there is one "
            "(0: none; refused when the tree has a validation split)"
        },
    )
    seed: int = field(default=0, metadata={"help": "with --val-fraction: seed of the stratified split"})
    reads_archives = True  # --data-dir may name a .tar, .tar.gz or .zip holding the tree
    # Images an interrupted `convert --mode move` already took out of the tree (load_dataset sets them): listed
    # as if still here, so rerunning the same command sees the same dataset and finishes the move.
    moved = frozenset()  # of Paths; not annotated, so not an option

    def read(self) -> Listing:
        root = Path(self.data_dir)
        listing = _archive(root) if root.is_file() else self._tree(root)
        return held_out(listing, self.val_fraction, self.seed)

    def _tree(self, root: Path) -> Listing:
        top = _visible_dirs(root)
        if not top:
            raise DataError(
                f"{root} has no split or class folders",
                hint="expected <data-dir>/<split>/<class>/<image> or <data-dir>/<class>/<image>",
            )
        moved = _by_folder(p.relative_to(root).parts for p in self.moved if p.is_relative_to(root))
        flat = [d for d in top if _holds_images(d, moved, root)]
        if len(flat) == len(top) or (flat and not any(_images_below(d, moved, root) for d in top if d not in flat)):
            # <class>/<image>: every first-level folder holding images holds them directly
            samples = [s for d in top for s in self._images(d, d.name, moved, root)]
            return _listing(root, {SPLIT: samples}, {d.name for d in top})
        if flat:
            raise DataError(
                f"{root}: cannot tell the layout: {flat[0].name}/ holds images directly (a <class>/<image> tree) "
                f"but {next(d for d in top if d not in flat).name}/ holds them in folders (<split>/<class>/<image>)",
                hint="give every image the same depth",
            )
        splits: dict[str, list[Sample]] = {}
        classes: set[str] = set()
        for split_dir in top:
            samples = splits[split_dir.name] = []
            for class_dir in _visible_dirs(split_dir):
                classes.add(class_dir.name)
                samples += self._images(class_dir, class_dir.name, moved, root)
        return _listing(root, splits, classes)

    def _images(self, class_dir: Path, label: str, moved: dict, root: Path) -> list[Sample]:
        """The images anywhere below a class folder, those already moved out of it included."""
        gone = {root.joinpath(*parts) for parts in moved.get(class_dir.relative_to(root).parts, ())}
        samples = []
        for path in sorted(set(class_dir.rglob("*")) | gone):
            relative = path.relative_to(class_dir).parts
            image = path.suffix.lower() in IMAGE_EXTENSIONS and not _hidden(relative)
            if image and (path.is_file() or path in gone):
                samples.append(Sample(path=path, label=label, where=str(path)))
        return samples


def _listing(root: Path, splits: dict, classes: set, problems: list | None = None) -> Listing:
    train, evaluated = roles(splits)
    return Listing(
        root=root,
        splits=splits,
        classes=sorted(classes),
        problems=problems or [],
        train_split=train,
        eval_split=evaluated,
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
    # Image files, hidden ones (and macOS's __MACOSX copies) left out, at <split>/<class>/<image> or
    # <class>/<image>, or one folder deeper when the archive holds the dataset's folder: the depth most have.
    images, problems = [], []
    for name in sorted(names):
        if Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if not stays_below(name):  # `/etc/x.jpg`, `../x.jpg`: its split or class would be `/` or `..`
            problems.append(Problem(f"{path.name}:{name}", "the member's name leads out of the archive's folder"))
        elif not _hidden(PurePosixPath(name).parts):
            images.append((name, PurePosixPath(name).parts))
    depths = Counter(len(p) for _, p in images if len(p) in (2, 3, 4))
    depth = depths.most_common(1)[0][0] if depths else 3
    tops = {p[0] for _, p in images if len(p) == depth}
    # Three deep is <split>/<class>/<image>, or a <class>/<image> tree in a folder: one that is no split's name.
    one_split = depth == 2 or (depth == 3 and len(tops) == 1 and not _split_like(next(iter(tops))))
    splits: dict[str, list[Sample]] = {}
    classes: set[str] = set()
    for name, p in images:
        if len(p) != depth:
            continue
        split, label = (SPLIT if one_split else p[-3]), p[-2]
        classes.add(label)
        splits.setdefault(split, []).append(
            Sample(path=Member(path, kind, name, filename=p[-1]), label=label, where=f"{path.name}:{name}")
        )
    if not splits:
        raise DataError(f"{path} holds no <split>/<class>/<image> or <class>/<image> files")
    return _listing(path.parent, splits, classes, problems)


def _by_folder(moved) -> dict[tuple, list[tuple]]:
    """Moved files (path parts below the root) by the split or class folder they were in, one and two deep: grouped
    once, so that each folder looks up its own and no folder walks them all."""
    grouped: dict[tuple, list[tuple]] = {}
    for parts in moved:
        for depth in (1, 2):
            if len(parts) > depth:
                grouped.setdefault(parts[:depth], []).append(parts)
    return grouped


def _holds_images(folder: Path, moved: dict, root: Path) -> bool:
    """Whether image files lie directly in `folder` (or did, before a `move`)."""
    parts = folder.relative_to(root).parts
    if any(len(m) == len(parts) + 1 and _image_name(m[-1]) for m in moved.get(parts, ())):
        return True
    return any(p.is_file() and _image_name(p.name) for p in folder.iterdir())


def _images_below(folder: Path, moved: dict, root: Path) -> bool:
    """Whether image files lie in the visible folders below `folder` (or did, before a `move`)."""
    parts = folder.relative_to(root).parts
    if any(len(m) > len(parts) + 1 and _image_name(m[-1]) for m in moved.get(parts, ())):
        return True
    return any(
        p.is_file() and _image_name(p.name) and not _hidden(p.relative_to(folder).parts)
        for d in _visible_dirs(folder)
        for p in d.rglob("*")
    )


def _split_like(name: str) -> bool:
    """A folder name that names a split, as `datasets` reads split folders (train, val, test, ...)."""
    return name.lower() in TRAIN_NAMES or name.lower() in EVAL_NAMES


def _image_name(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _hidden(parts) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
