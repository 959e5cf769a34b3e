"""One picture of the data: the checks every adapter's answer (contract.py) goes through, and load_dataset.

An adapter only says which classes exist and which (image path, label) samples each split holds.
Everything else (validation, label ids, the class tree, the mappable source) is built here from that: the label map
in labels.py, the image checks and decoding in images.py; their names are importable from here too, as before.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from fgvctune.data.containers import Member
from fgvctune.data.contract import IMAGE_EXTENSIONS, Listing, Problem, Sample  # noqa: F401 (their old home)
from fgvctune.data.images import (  # noqa: F401 (their old home)
    MAX_IMAGE_PIXELS,
    MAX_PIXELS_VARIABLE,
    decoded_image,
    encoded_image,
    inspect_image,
    max_image_pixels,
    open_image,
    shown_name,
    transformed_suffix,
)
from fgvctune.data.labels import LABELS_FILE, LabelMap, folder_name  # noqa: F401 (their old home)
from fgvctune.data.splits import held_out
from fgvctune.errors import DataError, UsageError

# Set to 1, symbolic links in a dataset are followed wherever they lead (a tree of links made by `convert --mode
# symlink`, a folder linked to another disk); by default only while they stay inside the dataset folder.
FOLLOW_LINKS_VARIABLE = "FGVCTUNE_FOLLOW_LINKS"


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
    excluded: list[Problem] = field(default_factory=list)  # samples --exclude left out (skipped.txt lists them)
    relabelled: list = field(default_factory=list)  # edits.Relabelled: the samples --relabel changed

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
        return "".join(f"{p}\n" for p in self.problems + self.excluded)


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
    exclude: str | os.PathLike = "",
    relabel: str | os.PathLike = "",
) -> Dataset:
    """Read a dataset through its adapter and check the splits the command uses.

    With `strict` (the default) the first problem raises DataError unless `skip_bad` is set, in
    which case bad samples are left out and listed in `Dataset.problems`. `relocated` maps a source
    path to where it lives now (files that an interrupted `convert --mode move` already moved).
    Only the chosen splits are checked: an adapter's problems in other splits become `Dataset.notes`.
    Splits without labels may be chosen with `unlabeled` (info, predict); otherwise naming one is one line saying
    it cannot be `purpose`, and the default splits leave them out.
    `exclude` and `relabel` name files of sample ids to leave out or give a new label (edits.py), applied to the
    adapter's listing before any check: an excluded broken file is no problem.
    """
    from fgvctune.data import edits

    reader = open_adapter(adapter, data_dir, **(options or {}))
    if relocated and hasattr(reader, "moved"):  # an adapter that lists by walking folders would miss them
        reader.moved = frozenset(relocated)
    listing = reader.read()
    excluded, relabelled = [], []
    if exclude or relabel:
        listing, excluded, relabelled = edits.apply(listing, edits.read_edits(exclude, relabel))
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
        excluded=[p for p in excluded if p.split in chosen],
        relabelled=[r for r in relabelled if r.split in chosen],
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
