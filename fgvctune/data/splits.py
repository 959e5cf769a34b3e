"""Split helpers adapters share, public for plug-in authors: split names as Hugging Face `datasets` reads them
from file and folder names, and a stratified hold-out for datasets that ship no validation split.

    from fgvctune.data.splits import split_name, stratified
"""

from __future__ import annotations

import random
import re
from collections import defaultdict

from fgvctune.data.dataset import Sample

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
