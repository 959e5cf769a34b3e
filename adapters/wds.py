"""WebDataset tar shards, read as `webdataset.WebDataset(urls)` reads them: the shard names expanded as its braces
are, each shard's members grouped by key, the image and its label side by side. Images stay inside the shards.

A key is a member's name up to the first dot of its file name and a field is the rest, lower-cased
(`n01440764_10026.jpg` and `n01440764_10026.cls` are one sample; `img_0.v2.jpg` is field `v2.jpg` of key
`img_0`); consecutive members with the same key are one sample. A field's kind is its last extension, as
webdataset's decoders take it. Where webdataset yields a sample that fgvctune cannot train on, or raises, the
sample is a problem naming its shard and key: nothing is left out in silence.

The brace patterns of --shards are expanded by wds_braces.py.
"""

from __future__ import annotations

import glob
import json
import os
import re
import tarfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from fgvctune import Listing, Problem, Sample
from fgvctune.data import containers
from fgvctune.data.containers import Member
from fgvctune.data.splits import held_out, roles, split_name
from fgvctune.errors import DataError
from fgvctune.fileio import stays_below
from fgvctune_adapters.wds_braces import braces

# What webdataset's image decoder takes (autodecode.IMAGE_EXTENSIONS, as PIL opens them) and what fgvctune reads.
IMAGES = frozenset("jpg jpeg png webp bmp gif tif tiff ppm pgm pbm pnm".split())
SHARD_SUFFIXES = (".tar", ".tar.gz", ".tgz")
KEY = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")  # webdataset's base_plus_ext
META = re.compile(r"__[^/]*__($|/)")  # members webdataset skips (tar_file_iterator's skip_meta)
CLASSES_LIMIT = 16 << 20  # bytes of a --classes file


@dataclass
class WdsAdapter:
    """WebDataset .tar shards: a folder of them (split folders too), a glob, or a brace pattern."""

    data_dir: Path
    shards: str = field(
        default="",
        metadata={
            "help": "glob or brace pattern of the shards in the folder ({train,val}-{000000..000009}.tar); "
            "default: the .tar, .tar.gz and .tgz files at the top and one folder down (train/, val/, test/)"
        },
    )
    label_key: str = field(
        default="cls",
        metadata={"help": "cls (an integer), txt (a class name) or json:FIELD (a name, or an integer as cls is)"},
    )
    classes: str = field(default="", metadata={"help": "file of class names, one per line in id order (for ids)"})
    val_fraction: float | None = field(
        default=None,
        metadata={
            "help": "share of the train split (of all shards, where none names a split) held out as 'val', "
            "stratified; refused beside a validation split (default: 0.2 where no split is named, else none)"
        },
    )
    seed: int = field(default=0, metadata={"help": "with --val-fraction: seed of the stratified split"})

    def read(self) -> Listing:
        root = Path(self.data_dir)
        kind, _, json_field = self.label_key.partition(":")
        if kind not in ("cls", "txt", "json") or (kind == "json") != bool(json_field):
            raise DataError(f"--label-key {self.label_key!r}: use cls, txt or json:FIELD")
        paths = expand(root, self.shards) if self.shards else discover(root)
        if not paths:
            raise DataError(
                f"no .tar, .tar.gz or .tgz shards in {root} or its split folders",
                hint="pass --shards with a glob or brace pattern",
            )
        rule = LabelRule(kind, json_field, self._class_names(root))
        splits = shard_splits(root, paths)
        unnamed = [shard_name(p, root) for p in paths if splits[p] is None]
        if unnamed and len(unnamed) < len(paths):
            raise DataError(
                f"{unnamed[0]}: cannot tell its split while other shards name theirs",
                hint="put the shards in split folders (train/, val/) or name each by its split (train-000000.tar)",
            )
        pooled = bool(unnamed)
        problems: list[Problem] = []
        by_split: dict[str, list[Sample]] = {}
        for path in paths:
            split = "train" if pooled else splits[path]  # a pooled shard's problems: of the split most samples join
            samples, found = self._read_shard(path, shard_name(path, root), split, rule)
            problems += found
            by_split.setdefault(split, []).extend(samples)
        train, evaluated = roles(by_split)
        listing = Listing(root, by_split, rule.names, problems, train_split=train, eval_split=evaluated)
        # Pooled shards are held out of by default; the publisher's splits only with a fraction given.
        fraction = self.val_fraction if self.val_fraction is not None else (0.2 if pooled else 0.0)
        return held_out(listing, fraction, self.seed)

    def _class_names(self, root: Path) -> list[str] | None:
        if not self.classes:
            return None
        path = root / self.classes
        if not path.is_file():
            raise DataError(f"--classes {path} does not exist")
        if path.stat().st_size > CLASSES_LIMIT:  # names of 21,841 ImageNet-21k classes take half a megabyte
            raise DataError(f"--classes {path}: larger than {CLASSES_LIMIT >> 20} MiB: not a file of class names")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataError(f"--classes {path}: not UTF-8 text", hint="one class name per line, in id order") from None
        return [line.strip() for line in text.splitlines() if line.strip()]

    def _read_shard(self, path: Path, name: str, split: str, rule: LabelRule):
        try:
            shard = Shard.read(path, rule.kind)
        except DataError as exc:
            return [], [Problem(name, f"{exc.message}: its samples are left out; download it again", split)]
        samples, problems = [], []
        for group in groups(shard.members):
            where = f"{name}:{group.key}"
            try:
                found = sample_of(group, shard, rule)
            except Refused as exc:
                problems.append(Problem(where, str(exc), split))
                continue
            if found is not None:
                image, label = found
                samples.append(Sample(path=Member(path, "tar", image, filename=image), label=label, where=where))
        return samples, problems


@dataclass(frozen=True)
class LabelRule:
    """What a sample's label is: the field kind of --label-key (cls, txt, json), its JSON field, --classes' names."""

    kind: str
    json_field: str = ""
    names: list[str] | None = None


@dataclass(frozen=True)
class Shard:
    """One shard as read once, forward: its regular members' names in stored order, the bytes of its label
    members by position (a label over the member limit is its DataError), and how often each name occurs."""

    members: list[str]
    label_bytes: dict[int, bytes | DataError]
    copies: Counter

    @classmethod
    def read(cls, path: Path, kind: str) -> Shard:
        members, label_bytes = listing_of(path, kind)
        return cls(members, label_bytes, Counter(members))


class Group(NamedTuple):
    """The members webdataset's group_by_keys makes one sample: its key, its fields (the rest of a member's name,
    lower-cased) by position, and the first member that repeats a field, if any."""

    key: str
    fields: dict[str, int]
    repeated: str


def sample_of(group: Group, shard: Shard, rule: LabelRule) -> tuple[str, str] | None:
    """(image member, label) of one group of members, None for files that are no sample (a README, metadata), or
    Refused saying why the group, a sample to webdataset, is not one fgvctune can use."""
    fields = group.fields
    images = [f for f in fields if last_extension(f) in IMAGES]
    labels = [f for f in fields if last_extension(f) == rule.kind]
    if group.repeated:
        raise Refused(f"member {group.repeated} repeats a field of this key (webdataset stops there: rename one)")
    if not images and not labels:
        return None
    if len(images) > 1:
        dotted = " (a key ends at the first dot of a name)" if any("." in f for f in images) else ""
        raise Refused(f"two images under one key ({', '.join(images)}){dotted}")
    if not images:
        others = ", ".join(f for f in fields if f not in labels)
        raise Refused(f"a .{rule.kind} label but no image{f' (only {others})' if others else ''}")
    image = shard.members[fields[images[0]]]
    if not stays_below(group.key):
        raise Refused("the key leads out of the shard's folder (an absolute or ../ name)")
    if shard.copies[image] > 1:
        raise Refused(f"{image} is in the shard {shard.copies[image]} times (members are read by name: rename one)")
    if not labels:
        raise Refused(f"an image but no .{rule.kind} label")
    field_name = rule.kind if rule.kind in fields else labels[0]
    if len(labels) > 1 and field_name != rule.kind:
        raise Refused(f"two labels under one key ({', '.join(labels)})")
    raw = shard.label_bytes[fields[field_name]]
    if isinstance(raw, DataError):
        raise Refused(f".{field_name}: {raw.message}")
    return image, label_of(raw.decode("utf-8", "replace").strip(), field_name, rule)


class Refused(Exception):
    """Why a group of members is not a sample fgvctune can use."""


def label_of(raw: str, field_name: str, rule: LabelRule) -> str:
    """The class name a label member (field `field_name`) holds: a .txt's text, a .json field's string, or an id (a
    .cls, a .json field's integer) mapped through --classes when given."""
    if rule.kind == "txt":
        if not raw:
            raise Refused(f"the .{field_name} label is empty")
        return raw
    if rule.kind == "json":
        try:
            value = json.loads(raw).get(rule.json_field)
        except (json.JSONDecodeError, AttributeError):
            raise Refused(f"the .{field_name} is not a JSON object") from None
        if value is None:
            raise Refused(f"the .{field_name} has no {rule.json_field!r}")
        if isinstance(value, (list, dict)):
            raise Refused(
                f"the .{field_name}'s {rule.json_field!r} is not one label (fgvctune is single-label): {raw[:40]!r}"
            )
        if not isinstance(value, int) or isinstance(value, bool):
            return str(value)  # a class name
        raw = str(value)
    if not re.fullmatch(r"-?\d+", raw):
        raise Refused(f"the .{field_name} is not an integer ({raw[:20]!r})")
    if rule.names is None:
        return raw
    if not 0 <= int(raw) < len(rule.names):
        raise Refused(f"class id {raw} is outside the {len(rule.names)} names of --classes")
    return rule.names[int(raw)]


def last_extension(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def listing_of(path: Path, kind: str) -> tuple[list[str], dict[int, bytes | DataError]]:
    """A shard's regular members' names in stored order, and by position the bytes of those whose last
    extension is `kind` (the labels, small), read in the same forward pass; a label over the member limit is
    its DataError. A shard that cannot be read to its end is a DataError."""
    members, labels = [], {}
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            plain = f.read(2) != b"\x1f\x8b" and path.suffix.lower() not in (".gz", ".tgz", ".bz2", ".xz")
        with tarfile.open(path, "r:" if plain else "r:*") as tar:
            for info in tar:
                if not info.isreg():
                    continue
                if plain and info.offset_data + info.size > size:
                    raise tarfile.ReadError(f"{info.name} ends past the end of the file")
                position = len(members)
                members.append(info.name)
                if last_extension(info.name).lower() == kind:
                    try:
                        labels[position] = containers._read_limited(tar.extractfile(info), info.size)
                    except DataError as exc:
                        labels[position] = exc
            if plain and size - tar.offset < tarfile.BLOCKSIZE:  # cut where a member begins: tarfile sees an end
                raise tarfile.ReadError("it stops without the blocks that end an archive")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path.name} is not a complete tar archive ({exc})") from None
    return members, labels


def groups(members: list[str]):
    """A Group per sample, as webdataset's group_by_keys makes them."""
    current = None
    for position, name in enumerate(members):
        if ("/" not in name and name.startswith("__") and name.endswith("__")) or META.match(name):
            continue
        match = KEY.match(name)
        if not match:
            continue
        key, suffix = match.group(1), match.group(2).lower()
        if current is None or key != current.key:
            if current is not None:
                yield current
            current = Group(key, {}, "")
        if suffix in current.fields:
            current = current._replace(repeated=current.repeated or name)
        else:
            current.fields[suffix] = position
    if current is not None:
        yield current


def shard_name(path: Path, root: Path) -> str:
    """A shard as messages name it: its path below the dataset's folder."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def discover(root: Path) -> list[Path]:
    """The shards at the top of `root` and one folder down (split folders: train/, val/, test/)."""
    folders = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [
        p
        for folder in folders
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(SHARD_SUFFIXES)
    ]


def shard_splits(root: Path, paths: list[Path]) -> dict[Path, str | None]:
    """Each shard's split: its nearest split folder's name as written (train/, val/, test_seen/: `-s val` names
    it), else the split its own name says, as `datasets` maps it (train-000000.tar, imagenet-val-000001.tar ->
    validation), else None."""
    splits = {}
    for path in paths:
        parts = path.relative_to(root).parts[:-1] if path.is_relative_to(root) else ()
        folder = next((part for part in reversed(parts) if split_name(part)), None)
        splits[path] = folder or split_name(path.name)
    return splits


def expand(root: Path, pattern: str) -> list[Path]:
    """The shards a pattern names, in its order: braces expanded as webdataset expands them, then each name a
    file, or a glob that matches some. A file the pattern names but that is missing is a DataError."""
    found: dict[Path, None] = {}
    for name in braces(pattern):
        if glob.has_magic(name):
            here = str(Path(glob.escape(str(root))) / name)
            matches = sorted(Path(p) for p in glob.glob(here, recursive=True) if Path(p).is_file())
            if not matches:
                within = f" (from --shards {pattern!r})" if name != pattern else ""
                raise DataError(f"no shards match {name!r} in {root}{within}")
            found.update(dict.fromkeys(matches))
        elif (root / name).is_file():
            found[root / name] = None
        else:
            raise DataError(f"shard {root / name} of {pattern!r} does not exist")
    return list(found)
