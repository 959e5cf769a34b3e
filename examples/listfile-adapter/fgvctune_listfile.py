"""A complete fgvctune adapter plugin in one file.

<data-dir>/<split>.txt holds one '<image path> <class name>' line per image, paths relative to
<data-dir>/<images>; class names may contain spaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fgvctune import Listing, Problem, Sample


@dataclass
class ListFileAdapter:
    """MMPretrain-style list files: <split>.txt with '<image path> <class>' lines."""

    data_dir: Path
    images: str = field(default=".", metadata={"help": "folder the image paths are relative to"})

    def read(self) -> Listing:
        splits, problems = {}, []
        for list_file in sorted(self.data_dir.glob("*.txt")):
            samples = splits[list_file.stem] = []
            for number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
                path, _, label = line.strip().partition(" ")
                if not label:
                    problems.append(Problem(f"{list_file}:{number}", "expected '<image path> <class name>'"))
                    continue
                samples.append(Sample(self.data_dir / self.images / path, label.strip(), f"{list_file}:{number}"))
        return Listing(
            root=self.data_dir,
            splits=splits,
            problems=problems,
            train_split="train" if "train" in splits else None,
            eval_split="val" if "val" in splits else None,
        )
