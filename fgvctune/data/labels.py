"""The label map: class names sorted as strings, a class's id its position, and the folder each class's images go in.

labels.csv, the map as a run folder and a class tree keep it, is written and read here.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fgvctune.errors import DataError

LABELS_FILE = "labels.csv"


def folder_name(label: str) -> str:
    """The class folder for a label: "/" becomes "_" as in the tutorial; never hidden, never empty."""
    name = label.replace("/", "_").replace("\\", "_").replace("\0", "_")
    if not name or name.startswith("."):
        name = "_" + name
    return name


@dataclass(frozen=True)
class LabelMap:
    """Class names sorted as strings; a class's id is its position (the tutorial's label2id)."""

    classes: tuple[str, ...]

    @classmethod
    def from_names(cls, names) -> LabelMap:
        classes = tuple(sorted(set(names)))
        folders = Counter(folder_name(c) for c in classes)
        clashes = [c for c in classes if folders[folder_name(c)] > 1]
        if clashes:
            raise DataError(
                f"classes {', '.join(map(repr, clashes))} map to the same folder name {folder_name(clashes[0])!r}",
                hint="rename one of them in the annotations",
            )
        return cls(classes)

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def ids(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    @property
    def folder_ids(self) -> dict[str, int]:
        """Folder name -> id, for MindSpore's ImageFolderDataset (whose own order would sort folder names)."""
        return {folder_name(name): i for i, name in enumerate(self.classes)}

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["id", "name", "folder"])
        for i, name in enumerate(self.classes):
            writer.writerow([i, name, folder_name(name)])
        return buf.getvalue()

    @classmethod
    def read(cls, path: Path) -> LabelMap:
        rewrite = "it is the run's; remake it with `fgvctune train` or restore it"
        try:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
        except OSError as exc:
            raise DataError(f"cannot read the label map {path}: {exc.strerror}") from None
        except (UnicodeDecodeError, csv.Error):
            raise DataError(f"{path}: not a label map (UTF-8 CSV text)", hint=rewrite) from None
        if not {"id", "name"} <= set(reader.fieldnames or ()):
            raise DataError(f"{path}:1: a label map's header is id,name,folder, got {reader.fieldnames}", hint=rewrite)
        for line, row in enumerate(rows, start=2):
            if not (row["id"] or "").isdecimal() or row["name"] is None:
                raise DataError(f"{path}:{line}: expected a class id (0, 1, ...) and its name, got {row}", hint=rewrite)
        names = [row["name"] for row in sorted(rows, key=lambda r: int(r["id"]))]
        if [int(r["id"]) for r in rows] != list(range(len(rows))) or names != sorted(names):
            raise DataError(f"{path}: ids must run 0..N-1 over the class names in sorted order")
        return cls(tuple(names))
