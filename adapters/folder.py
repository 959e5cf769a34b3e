"""An ImageNet-style class tree: root/<split>/<class>/<image>, as folders or inside a .tar, .tar.gz or .zip."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fgvctune import IMAGE_EXTENSIONS, Listing, Sample
from fgvctune.data.containers import Member, tar_index
from fgvctune.errors import DataError

ARCHIVES = (".tar", ".tar.gz", ".tgz", ".zip")


@dataclass
class FolderAdapter:
    """An ImageNet-style tree root/<split>/<class>/<image>, or an archive of one; hidden files are ignored."""

    data_dir: Path
    reads_archives = True  # --data-dir may name a .tar, .tar.gz or .zip holding the tree

    def read(self) -> Listing:
        if Path(self.data_dir).is_file():
            return _archive(Path(self.data_dir))
        splits: dict[str, list[Sample]] = {}
        classes: set[str] = set()
        for split_dir in _visible_dirs(self.data_dir):
            samples = splits[split_dir.name] = []
            for class_dir in _visible_dirs(split_dir):
                classes.add(class_dir.name)
                for path in sorted(class_dir.rglob("*")):
                    relative = path.relative_to(class_dir).parts
                    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not _hidden(relative):
                        samples.append(Sample(path=path, label=class_dir.name, where=str(path)))
        if not splits:
            raise DataError(f"{self.data_dir} has no split folders", hint="expected <data-dir>/<split>/<class>/<image>")
        return _listing(Path(self.data_dir), splits, classes)


def _listing(root: Path, splits: dict, classes: set) -> Listing:
    names = list(splits)
    return Listing(
        root=root,
        splits=splits,
        classes=sorted(classes),
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
                names, kind = [i.filename for i in z.infolist() if not i.is_dir()], "zip"
        except zipfile.BadZipFile as exc:
            raise DataError(f"{path} is not a readable zip archive ({exc})") from None
    else:
        names, kind = list(tar_index(path)), "tar"
    # Image files, hidden ones (and macOS's __MACOSX copies) left out, at <split>/<class>/<image>, or one folder
    # deeper when the archive holds the dataset's folder: the depth most of them have.
    images = [
        (name, PurePosixPath(name).parts)
        for name in sorted(names)
        if Path(name).suffix.lower() in IMAGE_EXTENSIONS and not _hidden(PurePosixPath(name).parts)
    ]
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
    return _listing(path.parent, splits, classes)


def _hidden(parts) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
