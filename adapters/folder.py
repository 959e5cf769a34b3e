"""An ImageNet-style class tree: root/<split>/<class>/<image>."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fgvctune import IMAGE_EXTENSIONS, Listing, Sample
from fgvctune.errors import DataError


@dataclass
class FolderAdapter:
    """An ImageNet-style tree root/<split>/<class>/<image>; hidden files are ignored."""

    data_dir: Path

    def read(self) -> Listing:
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
        names = list(splits)
        return Listing(
            root=self.data_dir,
            splits=splits,
            classes=sorted(classes),
            train_split=next((s for s in ("train", "trainval") if s in names), None),
            eval_split=next((s for s in ("val", "test", "validation") if s in names), None),
        )


def _hidden(parts) -> bool:
    return any(part.startswith(".") for part in parts)


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
