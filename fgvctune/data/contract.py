"""The adapter contract: what an adapter's `read()` answers (a `Listing` of `Sample`s per split, and the
`Problem`s it found). Plain data, imported by the checks (dataset.py) and the split helpers (splits.py) alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fgvctune.data.containers import Member

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Sample:
    """One image and its class name. `path` is the image file, or a `Member` of a container file (a Parquet or
    Arrow row, a tar or zip member: see containers.py) for images that live inside one."""

    path: Path | Member
    label: str
    where: str  # the file and line (or the path) that declared the sample, for messages
    box: tuple[int, int, int, int] | None = None  # crop (left, upper, right, lower), pixels
    trim_bottom: int = 0  # rows dropped at the bottom, e.g. FGVC's copyright banner
    reencode: bool = False  # set by validation for images MindSpore's decoder cannot take as they are

    @property
    def transformed(self) -> bool:
        """True when the bytes fed to training differ from the file on disk."""
        return self.box is not None or self.trim_bottom > 0 or self.reencode


@dataclass(frozen=True)
class Problem:
    where: str
    message: str
    split: str | None = None  # the split it belongs to, if any: a command reports only the splits it uses

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Listing:
    """An adapter's answer: the samples of each split, and the class list if the source declares one."""

    root: Path
    splits: dict[str, list[Sample]]
    classes: list[str] | None = None
    problems: list[Problem] = field(default_factory=list)  # lines the adapter could not turn into samples
    default_splits: list[str] | None = None  # what `convert` writes when no split is named
    train_split: str | None = None
    eval_split: str | None = None
    # Where symbolic links in the dataset may lead (default: root). A Hugging Face Hub snapshot's files are
    # links into the repository's blobs/ folder, beside the snapshot.
    links_root: Path | None = None
    # Splits whose samples carry no label (Hugging Face's -1, a competition's test split): their samples' label
    # is "". They can be predicted, not trained or evaluated on.
    unlabeled: frozenset[str] = frozenset()
