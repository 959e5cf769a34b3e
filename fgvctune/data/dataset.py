"""One picture of the data: the label map, and the checks every adapter's answer (contract.py) goes through.

An adapter only says which classes exist and which (image path, label) samples each split holds.
Everything else (validation, label ids, the class tree, the mappable source) is built here from that.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
import threading
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from fgvctune.data.containers import Member, read_member
from fgvctune.data.contract import IMAGE_EXTENSIONS, Listing, Problem, Sample  # noqa: F401 (their old home)
from fgvctune.data.splits import held_out
from fgvctune.errors import DataError, UsageError

LABELS_FILE = "labels.csv"
# An image whose header claims more pixels is refused before it is decoded (a few bytes can claim gigapixels).
# 200 megapixels is above any camera's single frame (the largest, medium-format backs, take 150) and decodes to
# 600 MB of RGB; the environment variable raises it for larger scans and panoramas.
MAX_IMAGE_PIXELS = 200_000_000
MAX_PIXELS_VARIABLE = "FGVCTUNE_MAX_PIXELS"
# Set to 1, symbolic links in a dataset are followed wherever they lead (a tree of links made by `convert --mode
# symlink`, a folder linked to another disk); by default only while they stay inside the dataset folder.
FOLLOW_LINKS_VARIABLE = "FGVCTUNE_FOLLOW_LINKS"


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
    # What the command does not use but the user should hear of: a split not chosen that has problems or no labels.
    notes: list[str] = field(default_factory=list)
    unlabeled: frozenset[str] = frozenset()  # chosen splits whose samples carry no label ("")

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
    # An adapter that says so resolves a name that is not a local path itself (the hf adapter's Hub ids).
    named = not data_dir.exists() and getattr(info.cls, "reads_names", False)
    if not archive and not named and not data_dir.is_dir():
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
    unlabeled: bool = False,
    purpose: str = "trained or evaluated on",
) -> Dataset:
    """Read a dataset through its adapter and check the splits the command uses.

    With `strict` (the default) the first problem raises DataError unless `skip_bad` is set, in
    which case bad samples are left out and listed in `Dataset.problems`. `relocated` maps a source
    path to where it lives now (files that an interrupted `convert --mode move` already moved).
    Only the chosen splits are checked: an adapter's problems in other splits become `Dataset.notes`.
    Splits without labels may be chosen with `unlabeled` (info, predict); otherwise naming one is one line saying
    it cannot be `purpose`, and the default splits leave them out.
    """
    reader = open_adapter(adapter, data_dir, **(options or {}))
    if relocated and hasattr(reader, "moved"):  # an adapter that lists by walking folders would miss them
        reader.moved = frozenset(relocated)
    listing = reader.read()
    train_name = train_split or listing.train_split
    eval_name = eval_split or listing.eval_split
    if roles:
        if not train_name or not eval_name or train_name == eval_name:
            raise UsageError(
                f"cannot tell which splits to train and evaluate on (this dataset has {', '.join(listing.splits)})",
                hint=_roles_hint(reader, listing),
            )
        chosen = [train_name, eval_name]
    elif splits:
        chosen = list(splits)
    else:
        chosen = list(listing.default_splits or listing.splits)
        if not unlabeled:  # (a split named on purpose is refused below, in one line)
            chosen = [s for s in chosen if s not in listing.unlabeled]
    for split in chosen:
        if split not in listing.splits:
            raise UsageError(
                f"split {split!r} is not in this dataset; it has: {', '.join(listing.splits) or 'no splits'}"
            )
        if split in listing.unlabeled and not unlabeled:
            raise UsageError(
                f"split {split!r} has no labels (-1): it can be predicted, not {purpose}",
                hint=_roles_hint(reader, listing) if roles else f"`fgvctune predict --split {split}`",
            )
        if not listing.splits[split] and strict:
            found = next((p for p in listing.problems if p.split == split), None)
            if found is not None and found.where.startswith("--"):  # an option emptied it (a hold-out), not the data
                said, hint = f"has no samples: {found}", "choose other splits"
            else:
                said = f"has no readable samples: {found}" if found else "is empty (0 samples)"
                hint = "fix the dataset, or choose other splits"
            raise DataError(f"split {split!r} of {listing.root} {said}", hint=hint)
    if not chosen and strict:
        raise DataError(f"{listing.root} has no labelled split", hint=f"its splits can be predicted, not {purpose}")
    train = train_name if train_name in chosen else None
    evaluated = eval_name if eval_name in chosen else None
    problems = [p for p in listing.problems if p.split is None or p.split in chosen]
    notes = _notes_on_unused(listing, chosen)
    kept: dict[str, list[Sample]] = {}
    for split in chosen:
        good, found = _check_samples(
            listing.splits[split], listing.root, relocated or {}, check_images, listing.links_root
        )
        kept[split] = good
        problems += [replace(p, split=split) for p in found]
    labelled = [s for s in chosen if s not in listing.unlabeled]  # an unlabeled split never bears on the classes

    declared = listing.classes
    if declared is not None:
        known = set(declared)
        for split in labelled:
            unknown = [s for s in kept[split] if s.label not in known]
            problems += [Problem(s.where, f"label {s.label!r} is not a declared class", split) for s in unknown]
            kept[split] = [s for s in kept[split] if s.label in known]
    # A class must be trainable: present in the training split (without one: the classes present).
    reference = kept[train] if train else [s for split in labelled for s in kept[split]]
    present = {s.label for s in reference}
    classes = set(declared) if declared is not None else present
    if train:
        for name in sorted(classes - present):
            problems.append(Problem(train, f"class {name!r} has no samples in split {train!r}", train))
    classes &= present
    if train:
        for split in labelled:
            if split == train:
                continue
            unseen = Counter(s.label for s in kept[split] if s.label not in classes)
            for name, n in sorted(unseen.items()):
                first = next(s for s in kept[split] if s.label == name)
                problems.append(
                    Problem(first.where, f"class {name!r} has {n} sample(s) in {split!r} but none in {train!r}", split)
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
        notes=notes,
        unlabeled=frozenset(s for s in chosen if s in listing.unlabeled),
    )


def _roles_hint(reader, listing: Listing) -> str:
    """How to name the train/eval roles; where the adapter's --val-fraction would give an evaluation split (a
    trial hold-out succeeds), how to hold one out too."""
    hint = "name them with --train-split and --val-split"
    if not any(f.name == "val_fraction" for f in dataclasses.fields(reader)):
        return hint
    try:  # (0.5 holds out a sample of every class that has two: if it holds out none, no fraction will)
        trial = held_out(listing, 0.5, 0)
    except UsageError:
        return hint
    if not trial.splits[trial.eval_split]:
        return hint
    source = trial.train_split
    return hint + f", or hold out part of {source!r} to evaluate on with the adapter option --val-fraction (e.g. 0.1)"


def _notes_on_unused(listing: Listing, chosen: list[str]) -> list[str]:
    """Notes on the splits a command leaves alone: those without labels, and those with problems."""
    notes = []
    for split, samples in listing.splits.items():
        if split in chosen:
            continue
        found = sum(1 for p in listing.problems if p.split == split)
        said = [f"{len(samples)} unlabeled samples"] if split in listing.unlabeled else []
        said += [f"{found} problem(s)"] if found else []
        if said:
            notes.append(f"split {split!r} (not used): {', '.join(said)}")
    return notes


class _Within:
    """Whether a sample's file is in the dataset folder: by its path, and once symbolic links are resolved (unless
    FOLLOW_LINKS_VARIABLE=1), so that a link in the dataset is followed only while it stays in `links_root`.
    Folders are resolved once each: a dataset of 100,000 files has a few hundred."""

    def __init__(self, root: Path, links_root: Path | None):
        self.root = root
        self.plain = os.path.normpath(os.path.abspath(root))
        self.real = os.path.realpath(links_root or root)
        self.follow = os.environ.get(FOLLOW_LINKS_VARIABLE, "").strip() == "1"
        self.folders: dict[str, str] = {}

    def problem(self, file) -> str | None:
        path = os.path.normpath(os.path.abspath(file))
        if not _below(path, self.plain):
            return f"path {file} escapes the dataset root {self.root}"
        if self.follow:
            return None
        folder, name = os.path.split(path)
        if folder not in self.folders:
            self.folders[folder] = os.path.realpath(folder)
        real = os.path.realpath(path) if os.path.islink(path) else os.path.join(self.folders[folder], name)
        if not _below(real, self.real):
            shown = os.path.relpath(path, self.plain)
            return f"{shown} is a link to {real}, outside the dataset folder (set {FOLLOW_LINKS_VARIABLE}=1 to read it)"
        return None


def _below(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _check_samples(samples, root: Path, relocated, check_images: bool, links_root: Path | None = None):
    good, problems, seen = [], [], {}
    candidates = []
    within = _Within(root, links_root)
    for s in samples:
        inside = isinstance(s.path, Member)
        here = s.path if inside else relocated.get(s.path, s.path)
        file = s.path.container if inside else s.path
        key = str(s.path) if inside else os.path.normpath(os.path.abspath(s.path))
        outside = within.problem(file)
        if outside:
            problems.append(Problem(s.where, outside))
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
    from PIL import UnidentifiedImageError

    try:
        data = read_member(source, named=False) if isinstance(source, Member) else None
    except DataError as exc:
        return exc.message
    path = source
    try:
        with open_image(source, data) as im:
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
            with open_image(source, data) as im:
                im.load()
    except DataError as exc:
        return exc.message
    except UnidentifiedImageError:
        return f"{path} is not an image PIL can read"
    except (OSError, SyntaxError, ValueError) as exc:
        if "truncated" in str(exc).lower():
            return f"truncated image {path}"
        return f"unreadable image {path}: {exc}"
    return not (fmt in ("JPEG", "PNG") and mode in ("RGB", "L"))


def max_image_pixels() -> int:
    """The most pixels an image's header may claim: MAX_IMAGE_PIXELS, or the environment's MAX_PIXELS_VARIABLE."""
    value = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
    if not value:
        return MAX_IMAGE_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise UsageError(f"{MAX_PIXELS_VARIABLE}={value!r} is not a number of pixels", hint="e.g. 400000000")
    return limit


def open_image(source: Path | Member | io.BytesIO, data: bytes | None = None):
    """An image opened by PIL (its header read, no pixels decoded yet) from a file, a container member, or
    `data`, the bytes of either already read. DataError, naming the image, when its header claims more pixels
    than `max_image_pixels()`: a few bytes can claim gigapixels that decoding would allocate."""
    from PIL import Image

    limit = max_image_pixels()
    # PIL's own guard (a warning past Image.MAX_IMAGE_PIXELS, an error past twice it) stays for the whole process:
    # raised to fgvctune's limit if below it, never lowered or removed. Past fgvctune's limit PIL's error or
    # warning would be a traceback or a stray line naming no file: fgvctune says it instead, in one line.
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = limit
    if data is not None:
        file = io.BytesIO(data)
    elif isinstance(source, Member):
        file = io.BytesIO(source.read_bytes())
    else:
        file = source
    name = source if isinstance(source, (str, os.PathLike, Member)) else "an image"
    try:
        with _pil_warnings, warnings.catch_warnings():  # (catch_warnings changes the process's filters)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(file)
    except Image.DecompressionBombError:
        width, height = _declared_size(file)
        raise DataError(_over_limit(name, width, height, limit)) from None
    width, height = im.size
    if width * height > limit:
        im.close()
        raise DataError(_over_limit(name, width, height, limit))
    return im


_pil_warnings = threading.Lock()  # open_image's warning filter, one thread at a time


def _over_limit(name, width: int, height: int, limit: int) -> str:
    return (
        f"{name} declares {width}x{height} pixels, over the limit of {limit:,} "
        f"(if it is real, set {MAX_PIXELS_VARIABLE}={width * height})"
    )


def _declared_size(file) -> tuple[int, int]:
    """The size an image's header declares, read by the PIL format plugin that accepts it, without the pixel
    check of Image.open (which refused it, saying only the product)."""
    from PIL import Image

    with open(file, "rb") if isinstance(file, (str, os.PathLike)) else contextlib.nullcontext(file) as f:
        f.seek(0)
        prefix = f.read(16)
        for fmt in Image.ID:
            factory, accept = Image.OPEN[fmt]
            accepted = accept is None or accept(prefix)
            if accepted and not isinstance(accepted, str):  # (a str is PIL's warning that it nearly accepts)
                f.seek(0)
                try:
                    return factory(f, "").size
                except Exception:  # not this format after all: PIL's own loop goes on to the next one too
                    continue
    return (0, 0)


def decoded_image(sample: Sample, path: Path | Member | None = None, fit: int | None = None):
    """The RGB image training sees for a sample: cropped to its box, its banner trimmed, transparency on white.

    With `fit`, no larger than `fit` pixels a side, and reduced while decoding where the format allows (a JPEG
    decodes at 1/2, 1/4 or 1/8 of its size in PIL's draft mode): a picture costs what it shows, not what the
    file's header claims."""
    from PIL import Image

    with open_image(path or sample.path) as im:
        full_width, full_height = im.size
        left, upper, right, lower = sample.box or (0, 0, full_width, full_height)
        lower = min(lower, full_height - sample.trim_bottom)
        if fit:
            shrink = fit / max(1, right - left, lower - upper)  # so that the part kept is still `fit` a side
            if shrink < 1:
                im.draft(None, (max(1, int(full_width * shrink)), max(1, int(full_height * shrink))))
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
    scale = im.width / full_width  # below 1 when decoded in draft mode
    width, height = im.size
    left, upper, right, lower = (round(v * scale) for v in (left, upper, right, lower))
    im = im.crop((max(0, left), max(0, upper), min(right, width), max(lower, upper + 1)))
    if fit:
        im.thumbnail((fit, fit))
    return im


def encoded_image(sample: Sample, path: Path | None = None) -> bytes:
    """The encoded bytes training sees for a sample: the file itself, or a cropped/RGB re-encoding."""
    path = path or sample.path
    if not sample.transformed:
        return path.read_bytes() if isinstance(path, Member) else Path(path).read_bytes()
    im = decoded_image(sample, path)
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
