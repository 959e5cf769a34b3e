"""Split helpers adapters share, public for plug-in authors: split names as Hugging Face `datasets` reads them
from file and folder names, and a stratified hold-out for datasets that ship no validation split.

    from fgvctune.data.splits import held_out, split_name, stratified

An adapter with a `val_fraction` option (and `seed`) ends its `read()` with `return held_out(listing,
self.val_fraction, self.seed)`: 0 leaves the listing as it is.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import replace

from fgvctune.data.dataset import Listing, Sample
from fgvctune.errors import UsageError

# HF's split keywords (datasets.data_files.SPLIT_KEYWORDS), each to the split name `datasets` gives it.
ALIASES = {
    **dict.fromkeys(("train", "training"), "train"),
    **dict.fromkeys(("validation", "valid", "val", "dev"), "validation"),
    **dict.fromkeys(("test", "testing", "eval", "evaluation"), "test"),
}
HUB_SHARD = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}$")  # the Hub's data/{split}-00000-of-00002.parquet


def split_name(name: str) -> str | None:
    """A shard's or folder's split: the Hub's `{split}-00000-of-00002` (any split name, aliases mapped), else the
    first alias among the name's words, digits ignored (`imagenet-train-000001`, `val2017`), else None."""
    stem = name.split(".")[0]
    hub = HUB_SHARD.match(stem)
    if hub:
        return ALIASES.get(hub.group("split").lower(), hub.group("split"))
    for word in re.split(r"[^A-Za-z0-9]+", stem.lower()):
        word = word.rstrip("0123456789")
        if word in ALIASES:
            return ALIASES[word]
    return None


# The splits a dataset trains and evaluates on when none are named: its first training-like split, and its first
# validation-like one, else its test split (the published validation set selects the best checkpoint).
TRAIN_NAMES = ("train", "trainval", "training")
EVAL_NAMES = ("validation", "val", "valid", "dev", "test", "testing", "eval", "evaluation")


def roles(names, unlabeled=()) -> tuple[str | None, str | None]:
    """(train split, evaluation split) among split `names` by TRAIN_NAMES and EVAL_NAMES; unlabeled splits are
    never either."""
    labelled = [n for n in names if n not in unlabeled]
    train = next((n for n in TRAIN_NAMES if n in labelled), None)
    return train, next((n for n in EVAL_NAMES if n in labelled), None)


def stratified(samples: list[Sample], fraction: float, seed: int, held: str = "val", kept: str = "train"):
    """Hold out `fraction` of each class as split `held`, the rest as `kept`, the same way for the same seed and
    samples (every class keeps at least one sample to train on)."""
    by_class = defaultdict(list)
    for s in samples:
        by_class[s.label].append(s)
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(by_class):
        members = sorted(by_class[label], key=lambda s: str(s.path))
        rng.shuffle(members)
        count = min(round(len(members) * fraction), len(members) - 1)  # keep one to train on
        val += members[:count]
        train += members[count:]
    return {kept: train, held: val}


def held_out(listing: Listing, fraction: float, seed: int, held: str = "val") -> Listing:
    """`listing` with `fraction` of its training split (or of its only split) held out as split `held`, which
    becomes the evaluation split (a test split stays, for the end), stratified by `stratified`; unchanged for 0.
    One line for a fraction outside [0, 1), for a dataset that has a split `held` already, and for one whose
    training split cannot be told."""
    if not 0 <= fraction < 1:
        raise UsageError(f"--val-fraction must be at least 0 and below 1, got {fraction}")
    if not fraction:
        return listing
    if held in listing.splits:
        raise UsageError(
            f"--val-fraction: this dataset already has a split {held!r}",
            hint="drop --val-fraction, or name the splits with --train-split and --val-split",
        )
    labelled = [s for s in listing.splits if s not in listing.unlabeled]
    source = listing.train_split or (labelled[0] if len(labelled) == 1 else None)
    if source is None or source in listing.unlabeled:
        raise UsageError(
            f"--val-fraction: cannot tell which split to hold {held!r} out of (this dataset has "
            f"{', '.join(listing.splits)})"
        )
    parts = stratified(listing.splits[source], fraction, seed, held=held, kept=source)
    splits = {}
    for name, samples in listing.splits.items():
        splits[name] = parts[source] if name == source else samples
        if name == source:
            splits[held] = parts[held]
    defaults = listing.default_splits
    if defaults is not None and source in defaults:
        defaults = [n for d in defaults for n in ((d, held) if d == source else (d,))]
    return replace(listing, splits=splits, default_splits=defaults, train_split=source, eval_split=held)
