"""WebDataset tar shards, read as they are: members grouped by key, the image and its label side by side.

The key is a member's name up to the first dot of its file name, as webdataset groups them
(`n01440764_10026.jpg` and `n01440764_10026.cls` are one sample). Images stay inside the shards.
"""

from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from fgvctune import Listing, Problem, Sample
from fgvctune.data.containers import Member, read_member, tar_index
from fgvctune.data.splits import split_name, stratified
from fgvctune.errors import DataError
from fgvctune.fileio import stays_below

IMAGES = ("jpg", "jpeg", "png", "webp")
BRACES = re.compile(r"\{(\d+)\.\.(\d+)\}")


@dataclass
class WdsAdapter:
    """WebDataset .tar shards: a folder of them, a glob, or a brace pattern (train-{000000..000009}.tar)."""

    data_dir: Path
    shards: str = field(default="*.tar", metadata={"help": "glob or brace pattern of the shards, in the folder"})
    label_key: str = field(
        default="cls", metadata={"help": "cls (an integer), txt (a class name) or json:FIELD (a name in the json)"}
    )
    classes: str = field(default="", metadata={"help": "file of class names, one per line in id order (for cls)"})
    val_fraction: float = field(default=0.2, metadata={"help": "shards without split names: share held out as 'val'"})
    seed: int = field(default=0, metadata={"help": "shards without split names: seed of the stratified split"})

    def read(self) -> Listing:
        root = Path(self.data_dir)
        paths = expand(root, self.shards)
        if not paths:
            raise DataError(
                f"no shards match {self.shards!r} in {root}", hint="pass --shards with a glob or brace pattern"
            )
        names = self._class_names(root)
        problems: list[Problem] = []
        by_split: dict[str, list[Sample]] = {}
        for path in paths:
            split = split_name(path.name)
            samples, found = self._read_shard(path, root, names)
            problems += found
            by_split.setdefault(split or "", []).extend(samples)
        if "" in by_split:
            if len(by_split) > 1:
                unnamed = [p.name for p in paths if split_name(p.name) is None]
                raise DataError(f"{unnamed[0]}: cannot tell its split while other shards name theirs")
            if not 0 < self.val_fraction < 1:
                raise DataError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
            by_split = stratified(by_split[""], self.val_fraction, self.seed)
        listed = list(by_split)
        return Listing(
            root=root,
            splits=by_split,
            classes=names,
            problems=problems,
            train_split="train" if "train" in listed else None,
            eval_split=next((s for s in ("validation", "val", "test") if s in listed), None),
        )

    def _class_names(self, root: Path) -> list[str] | None:
        if not self.classes:
            return None
        path = root / self.classes
        if not path.is_file():
            raise DataError(f"--classes {path} does not exist")
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def _read_shard(self, path: Path, root: Path, names: list[str] | None):
        key_kind, _, json_field = self.label_key.partition(":")
        if key_kind not in ("cls", "txt", "json") or (key_kind == "json") != bool(json_field):
            raise DataError(f"--label-key {self.label_key!r}: use cls, txt or json:FIELD")
        groups: dict[str, dict[str, str]] = {}
        for member in tar_index(path):
            match = re.match(r"^((?:.*/|)[^./]+)\.([^/]*)$", member)
            if match:
                groups.setdefault(match.group(1), {})[match.group(2).lower()] = member
        samples, problems = [], []
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        for key, members in groups.items():
            where = f"{shown}:{key}"
            images = [ext for ext in members if ext in IMAGES]
            if not images:
                continue  # other files in the shard (a README, metadata): not samples
            if len(images) > 1:
                problems.append(Problem(where, f"two images under one key ({', '.join(images)})"))
                continue
            if not stays_below(key):
                problems.append(Problem(where, "the key leads out of the shard's folder (an absolute or ../ name)"))
                continue
            if key_kind not in members:
                problems.append(Problem(where, f"an image but no .{key_kind} label"))
                continue
            try:
                raw = read_member(Member(path, "tar", members[key_kind]), named=False)
            except DataError as exc:  # cut short, or over the size limit
                problems.append(Problem(where, f".{key_kind}: {exc.message}"))
                continue
            raw = raw.decode("utf-8", "replace").strip()
            label = self._label(raw, key_kind, json_field, names, where, problems)
            if label is not None:
                image = members[images[0]]
                samples.append(Sample(path=Member(path, "tar", image, filename=image), label=label, where=where))
        return samples, problems

    @staticmethod
    def _label(raw: str, kind: str, json_field: str, names, where: str, problems: list) -> str | None:
        if kind == "json":
            try:
                value = json.loads(raw).get(json_field)
            except (json.JSONDecodeError, AttributeError):
                problems.append(Problem(where, "the .json is not a JSON object"))
                return None
            if value is None:
                problems.append(Problem(where, f"the .json has no {json_field!r}"))
                return None
            return str(value)
        if kind == "txt":
            if not raw:
                problems.append(Problem(where, "the .txt label is empty"))
            return raw or None
        if not re.fullmatch(r"-?\d+", raw):
            problems.append(Problem(where, f"the .cls is not an integer ({raw[:20]!r})"))
            return None
        if names is None:
            return raw
        if not 0 <= int(raw) < len(names):
            problems.append(Problem(where, f"class id {raw} is outside the {len(names)} names of --classes"))
            return None
        return names[int(raw)]


def expand(root: Path, pattern: str) -> list[Path]:
    """Shards matching a glob or a brace pattern (`train-{000000..000009}.tar`, with its zero padding)."""
    match = BRACES.search(pattern)
    if match:
        first, last = match.groups()
        width = len(first)
        names = [
            pattern[: match.start()] + f"{i:0{width}d}" + pattern[match.end() :]
            for i in range(int(first), int(last) + 1)
        ]
        missing = [n for n in names if not (root / n).is_file()]
        if missing:
            raise DataError(f"shard {root / missing[0]} of {pattern!r} does not exist")
        return [root / n for n in names]
    return sorted(Path(p) for p in glob.glob(str(Path(glob.escape(str(root))) / pattern)) if Path(p).is_file())
