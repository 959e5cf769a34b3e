"""One picture of the data: what adapters answer, the label map, and the checks every adapter shares.

An adapter only says which classes exist and which (image path, label) samples each split holds.
Everything else (validation, label ids, the class tree, the mappable source) is built here from that.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from fgvctune.data.containers import Member, read_member
from fgvctune.errors import DataError, UsageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
LABELS_FILE = "labels.csv"


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
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except OSError as exc:
            raise DataError(f"cannot read the label map {path}: {exc.strerror}") from None
        names = [row["name"] for row in sorted(rows, key=lambda r: int(r["id"]))]
        if [int(r["id"]) for r in rows] != list(range(len(rows))) or names != sorted(names):
            raise DataError(f"{path}: ids must run 0..N-1 over the class names in sorted order")
        return cls(tuple(names))


@dataclass
class Dataset:
    """A checked dataset: the chosen splits with only good samples, and the label map."""

    root: Path
    adapter: str
    labels: LabelMap
    splits: dict[str, list[Sample]]
    train_split: str | None
    eval_split: str | None
    problems: list[Problem]  # everything found; with skip_bad, the samples behind them are left out

    def counts(self) -> dict[str, Counter]:
        return {split: Counter(s.label for s in samples) for split, samples in self.splits.items()}

    def counts_csv(self) -> str:
        """counts.csv: one row per (split, class), zero for a class a split lacks; `convert` and `train` write it."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["split", "class", "count"])
        for split, counter in self.counts().items():
            writer.writerows([split, name, counter.get(name, 0)] for name in self.labels.classes)
        return buf.getvalue()

    def containers(self) -> list[Path]:
        """The shards and archives the samples live in (none for images in files of their own)."""
        return sorted({s.path.container for ss in self.splits.values() for s in ss if isinstance(s.path, Member)})

    def skipped_report(self) -> str:
        return "".join(f"{p}\n" for p in self.problems)


def open_adapter(adapter: str, data_dir: str | os.PathLike, **options):
    """Instantiate a registered adapter with its options."""
    from fgvctune.data import registry

    info = registry.get(adapter)
    data_dir = Path(data_dir)
    # An adapter that says so also reads an archive of its layout (the folder adapter's .tar, .tar.gz, .zip).
    archive = data_dir.is_file() and getattr(info.cls, "reads_archives", False)
    if not archive and not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} does not exist", hint="pass --data-dir with the dataset's folder")
    names = {f.name for f in info.options()}
    unknown = sorted(set(options) - names)
    if unknown:
        raise UsageError(
            f"adapter {adapter!r} has no option {unknown[0]!r}; its options: {', '.join(sorted(names)) or 'none'}"
        )
    return info.cls(data_dir=data_dir, **options)


def load_dataset(
    adapter: str,
    data_dir: str | os.PathLike,
    splits: list[str] | None = None,
    options: dict | None = None,
    skip_bad: bool = False,
    strict: bool = True,
    check_images: bool = True,
    relocated: dict[Path, Path] | None = None,
    train_split: str = "",
    eval_split: str = "",
    roles: bool = False,
) -> Dataset:
    """Read a dataset through its adapter and check it.

    With `strict` (the default) the first problem raises DataError unless `skip_bad` is set, in
    which case bad samples are left out and listed in `Dataset.problems`. `relocated` maps a source
    path to where it lives now (files that an interrupted `convert --mode move` already moved).
    """
    listing = open_adapter(adapter, data_dir, **(options or {})).read()
    train_name = train_split or listing.train_split
    eval_name = eval_split or listing.eval_split
    if roles:
        if not train_name or not eval_name or train_name == eval_name:
            raise UsageError(
                f"cannot tell which splits to train and evaluate on (this dataset has {', '.join(listing.splits)})",
                hint="name them with --train-split and --val-split",
            )
        chosen = [train_name, eval_name]
    else:
        chosen = list(splits or listing.default_splits or listing.splits)
    for split in chosen:
        if split not in listing.splits:
            raise UsageError(
                f"split {split!r} is not in this dataset; it has: {', '.join(listing.splits) or 'no splits'}"
            )
    train = train_name if train_name in chosen else None
    evaluated = eval_name if eval_name in chosen else None
    problems = list(listing.problems)
    kept: dict[str, list[Sample]] = {}
    for split in chosen:
        good, found = _check_samples(listing.splits[split], listing.root, relocated or {}, check_images)
        kept[split] = good
        problems += found

    declared = listing.classes
    if declared is not None:
        known = set(declared)
        for split in chosen:
            unknown = [s for s in kept[split] if s.label not in known]
            problems += [Problem(s.where, f"label {s.label!r} is not a declared class") for s in unknown]
            kept[split] = [s for s in kept[split] if s.label in known]
    # A class must be trainable: present in the training split (without one: the classes present).
    reference = kept[train] if train else [s for ss in kept.values() for s in ss]
    present = {s.label for s in reference}
    classes = set(declared) if declared is not None else present
    if train:
        for name in sorted(classes - present):
            problems.append(Problem(train, f"class {name!r} has no samples in split {train!r}"))
    classes &= present
    if train:
        for split in chosen:
            if split == train:
                continue
            unseen = Counter(s.label for s in kept[split] if s.label not in classes)
            for name, n in sorted(unseen.items()):
                first = next(s for s in kept[split] if s.label == name)
                problems.append(
                    Problem(first.where, f"class {name!r} has {n} sample(s) in {split!r} but none in {train!r}")
                )
            kept[split] = [s for s in kept[split] if s.label in classes]

    if problems and strict and not skip_bad:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DataError(
            f"{problems[0]}{more}",
            hint="fix the data, or pass --skip-bad to leave bad samples out (they are listed in skipped.txt); "
            "`fgvctune info` shows every problem",
        )
    for split in chosen:
        if not kept[split] and strict:
            raise DataError(f"split {split!r} has no usable samples", hint="check the annotations for that split")
    return Dataset(
        root=listing.root,
        adapter=adapter,
        labels=LabelMap.from_names(classes),
        splits=kept,
        train_split=train,
        eval_split=evaluated,
        problems=problems,
    )


def _inside(path: Path, root: Path) -> bool:
    path, root = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(root))
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _check_samples(samples, root: Path, relocated, check_images: bool):
    good, problems, seen = [], [], {}
    candidates = []
    for s in samples:
        inside = isinstance(s.path, Member)
        here = s.path if inside else relocated.get(s.path, s.path)
        file = s.path.container if inside else s.path
        key = str(s.path) if inside else os.path.normpath(os.path.abspath(s.path))
        if not _inside(file, root):
            problems.append(Problem(s.where, f"path {file} escapes the dataset root {root}"))
        elif key in seen:
            problems.append(Problem(s.where, f"duplicate entry for {s.path.name} (first at {seen[key]})"))
        elif not Path(file if inside else here).is_file():
            problems.append(Problem(s.where, f"missing file {file}"))
        else:
            seen[key] = s.where
            candidates.append((s, here))
    if not check_images:
        return [s for s, _ in candidates], problems
    # Image headers are I/O bound: a few threads hide the latency.
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(pool.map(lambda item: inspect_image(item[1]), candidates))
    for (s, _), verdict in zip(candidates, verdicts):
        if isinstance(verdict, str):
            problems.append(Problem(s.where, verdict))
        else:
            good.append(replace(s, reencode=verdict) if verdict else s)
    return good, problems


def inspect_image(source: Path | Member) -> bool | str:
    """True if the image must be re-encoded as RGB before MindSpore decodes it, False if it is
    fine as it is, or a message saying why it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = read_member(source, named=False) if isinstance(source, Member) else None
    except DataError as exc:
        return exc.message
    path = source
    try:
        with Image.open(_opened(source, data)) as im:
            fmt, mode = im.format, im.mode
            im.verify()  # PNG: checks every chunk's CRC up to IEND
        if fmt == "JPEG":
            if data is not None:
                tail = data[-4096:]
            else:
                with open(path, "rb") as f:
                    f.seek(max(0, os.path.getsize(path) - 4096))
                    tail = f.read()
            if b"\xff\xd9" not in tail:
                return f"truncated image {path} (no JPEG end marker)"
        elif fmt != "PNG":
            with Image.open(_opened(source, data)) as im:
                im.load()
    except UnidentifiedImageError:
        return f"{path} is not an image PIL can read"
    except (OSError, SyntaxError, ValueError) as exc:
        if "truncated" in str(exc).lower():
            return f"truncated image {path}"
        return f"unreadable image {path}: {exc}"
    return not (fmt in ("JPEG", "PNG") and mode in ("RGB", "L"))


def _opened(source: Path | Member, data: bytes | None = None):
    """What PIL opens: the file, or a container member's bytes."""
    if isinstance(source, Member):
        return io.BytesIO(source.read_bytes() if data is None else data)
    return source


def encoded_image(sample: Sample, path: Path | None = None) -> bytes:
    """The encoded bytes training sees for a sample: the file itself, or a cropped/RGB re-encoding."""
    path = path or sample.path
    if not sample.transformed:
        return path.read_bytes() if isinstance(path, Member) else Path(path).read_bytes()
    from PIL import Image

    with Image.open(_opened(path)) as im:
        im.load()
        if im.mode == "I" or im.mode.startswith("I;16"):
            im = im.point(lambda v: v / 256).convert("L")  # 16-bit greys: PIL's own convert clips them to white
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            flat = Image.new("RGB", im.size, (255, 255, 255))
            flat.paste(im, mask=im.getchannel("A"))
            im = flat
        else:
            im = im.convert("RGB")
    width, height = im.size
    left, upper, right, lower = sample.box or (0, 0, width, height)
    lower = min(lower, height - sample.trim_bottom)
    im = im.crop((max(0, left), max(0, upper), min(right, width), max(lower, upper + 1)))
    buf = io.BytesIO()
    if transformed_suffix(sample) == ".png":
        im.save(buf, format="PNG")
    else:
        im.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def shown_name(source: Path | Member, root: Path) -> str:
    """How messages and files show a sample: its path under the dataset's folder (a member as SHARD:KEY)."""
    if isinstance(source, Member):
        return f"{shown_name(source.container, root)}:{source.key}"
    try:
        return str(Path(source).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(source)


def transformed_suffix(sample: Sample) -> str:
    """File suffix for a sample's bytes as `encoded_image` returns them."""
    if not sample.transformed:
        return sample.path.suffix
    return ".png" if sample.path.suffix.lower() in (".png", ".gif", ".bmp", ".tif", ".tiff", ".webp") else ".jpg"
