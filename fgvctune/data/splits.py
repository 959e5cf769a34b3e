"""Split helpers adapters share, public for plug-in authors: split names as Hugging Face `datasets` reads them
from file and folder names, and a stratified hold-out for datasets that ship no validation split.

    from fgvctune.data.splits import held_out, split_name, stratified

An adapter with a `val_fraction` option (and `seed`) ends its `read()` with `return held_out(listing,
self.val_fraction, self.seed)`: 0 leaves the listing as it is, and held_out checks the fraction's range.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from dataclasses import replace

from fgvctune.data.contract import Listing, Problem, Sample
from fgvctune.errors import UsageError

# HF's split keywords (datasets.data_files.SPLIT_KEYWORDS), each to the split name `datasets` gives it.
ALIASES = {
    **dict.fromkeys(("train", "training"), "train"),
    **dict.fromkeys(("validation", "valid", "dev", "val"), "validation"),
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
# validation-like one, else its test split (the published validation set selects the best checkpoint). ALIASES
# says which names are which; `trainval` (train and validation together, as VOC ships it) trains too.
TRAIN_NAMES = (*(n for n, s in ALIASES.items() if s == "train"), "trainval")
VALIDATION_NAMES = tuple(n for n, s in ALIASES.items() if s == "validation")
EVAL_NAMES = (*VALIDATION_NAMES, *(n for n, s in ALIASES.items() if s == "test"))


def roles(names, unlabeled=()) -> tuple[str | None, str | None]:
    """(train split, evaluation split) among split `names`: by TRAIN_NAMES and EVAL_NAMES, in any case (`Train/`),
    else by the one name whose words say it (`train2017`, `imagenet-val`: `split_name`); unlabeled splits are never
    either. Where two names say the same role (`test_seen`, `test_unseen`), neither takes it: the user names one."""
    labelled = [n for n in names if n not in unlabeled]
    by_name = {}
    for n in labelled:
        by_name.setdefault(n.lower(), n)
    said = defaultdict(list)
    for n in labelled:
        said[split_name(n)].append(n)

    def said_once(split):
        return said[split][0] if len(said[split]) == 1 else None

    train = next((by_name[n] for n in TRAIN_NAMES if n in by_name), None) or said_once("train")
    evaluated = next((by_name[n] for n in EVAL_NAMES if n in by_name), None)
    if evaluated is None:
        evaluated = said_once("validation") if said["validation"] else said_once("test")
    return train, evaluated


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


def holds_from(listing: Listing) -> str | None:
    """The split `held_out` holds out of: the training split, else the only labelled one (None: cannot tell)."""
    labelled = [s for s in listing.splits if s not in listing.unlabeled]
    return listing.train_split or (labelled[0] if len(labelled) == 1 else None)


def held_out(listing: Listing, fraction: float, seed: int, held: str = "val") -> Listing:
    """`listing` with `fraction` of its training split (or of its only labelled split) held out as split `held`,
    which becomes the evaluation split (a test split stays, for the end), stratified by `stratified`; unchanged
    for 0. When `held` names a split already (an unlabeled one, or the source itself), the held-out part takes the
    first free name of `val`, `validation`, `held_out`. One line for a fraction outside [0, 1), for a dataset
    that has a labelled validation split already (by any of its names, `val2017` too), for one whose training
    split cannot be told, for one with no name free; a fraction that holds out no sample (classes too small) is a
    problem of the held-out split."""
    if not 0 <= fraction < 1:
        raise UsageError(f"--val-fraction must be at least 0 and below 1, got {fraction}")
    if not fraction:
        return listing
    source = holds_from(listing)
    if source is None or source in listing.unlabeled:
        raise UsageError(
            f"--val-fraction: cannot tell which split to hold {held!r} out of (this dataset has "
            f"{', '.join(listing.splits)})"
        )
    published = next(
        (s for s in listing.splits if s != source and s not in listing.unlabeled and split_name(s) == "validation"),
        None,
    )
    if published is not None:
        raise UsageError(
            f"--val-fraction: this dataset already has a validation split {published!r}",
            hint="drop --val-fraction, or name the splits with --train-split and --val-split",
        )
    names = (held, "val", "validation", "held_out")
    held = next((n for n in names if n not in listing.splits), None)
    if held is None:
        raise UsageError(
            f"--val-fraction: no name is free for the held-out split ({', '.join(dict.fromkeys(names))} are taken)",
            hint="rename one of those splits",
        )
    parts = stratified(listing.splits[source], fraction, seed, held=held, kept=source)
    problems = listing.problems
    if not parts[held]:  # a problem of the held-out split: it stops the commands that use it, in one line
        largest = max(Counter(s.label for s in listing.splits[source]).values(), default=0)
        problems = [
            *problems,
            Problem(
                "--val-fraction",
                f"{fraction} holds out no sample of {source!r}: its classes are too small (the largest has "
                f"{largest}; each keeps one to train on)",
                held,
            ),
        ]
    splits = {}
    for name, samples in listing.splits.items():
        splits[name] = parts[source] if name == source else samples
        if name == source:
            splits[held] = parts[held]
    defaults = listing.default_splits
    if defaults is not None and source in defaults:
        defaults = [n for d in defaults for n in ((d, held) if d == source else (d,))]
    return replace(
        listing, splits=splits, problems=problems, default_splits=defaults, train_split=source, eval_split=held
    )
