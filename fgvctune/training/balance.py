"""Imbalanced classes: weights for the loss (`--class-weights`); the balanced sampler is the data room's
(`pipeline.balanced_order`)."""

from __future__ import annotations

import csv
from pathlib import Path

from fgvctune.data.dataset import Dataset
from fgvctune.errors import UsageError


def class_weights(given: str, dataset: Dataset, split: str) -> list[float]:
    """A loss weight per class, in label-id order.

    `balanced`: inverse frequency in the training split, scaled so the average over its samples is 1
    (scikit-learn's "balanced"), so the loss keeps its size. Otherwise a CSV file of `class,weight` rows
    (a header row is allowed) naming every class.
    """
    counts = dataset.counts()[split]
    classes = dataset.labels.classes
    if given == "balanced":
        total = sum(counts.values())
        return [total / (len(classes) * counts[name]) for name in classes]
    path = Path(given)
    if not path.is_file():
        raise UsageError(f"--class-weights {given}: not 'balanced' and no such file", hint="a CSV of class,weight rows")
    weights: dict[str, float] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise UsageError(f"{path}:{number}: expected class,weight, got {','.join(row)!r}")
            name, value = row[0].strip(), row[1].strip()
            try:
                weight = float(value)
            except ValueError:
                if number == 1:
                    continue  # a header
                raise UsageError(f"{path}:{number}: weight {value!r} is not a number") from None
            if name not in classes:
                raise UsageError(f"{path}:{number}: {name!r} is not a class of this dataset")
            if weight < 0:
                raise UsageError(f"{path}:{number}: weight {value} is negative")
            weights[name] = weight
    missing = [name for name in classes if name not in weights]
    if missing:
        raise UsageError(f"{path} gives no weight for {', '.join(map(repr, missing[:5]))}", hint="name every class")
    return [weights[name] for name in classes]
