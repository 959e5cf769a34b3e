"""--exclude and --relabel: samples left out or given another label, by their ids, after the adapter has read them.

A sample's id is how every command names it: its path under the dataset's folder, or SHARD:KEY for an image inside
a container (`shown_name`). The files may be `fgvctune doctor`'s doctor.csv, a pred.txt, or any CSV or text file:

    --exclude   every id in the file: its `id` (or `image`) column, or one id per line without a header
    --relabel   an id and a new label a row: columns `id` and `label`, doctor.csv's label issues (their
                `suggested` label), or two columns without a header

Blank lines and lines starting with # are passed over. An id that is not in the dataset, or a label that is not
among its classes, is an error naming the file and line: a list made for other data is not applied by halves.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from pathlib import Path

from fgvctune.data.contract import Listing, Problem
from fgvctune.data.images import shown_name
from fgvctune.errors import UsageError
from fgvctune.fileio import read_user_text

RELABELLED_FILE = "relabelled.csv"  # beside skipped.txt: the samples --relabel changed
MAX_LIST_BYTES = 256 << 20  # a list of a million ids is tens of MiB; one this large is something else
ID_COLUMNS = ("id", "image", "sample")
LABEL_COLUMNS = ("label", "new_label")
HINT = "ids are paths under the dataset's folder (SHARD:KEY inside a container), as doctor.csv and pred.txt name them"


@dataclass(frozen=True)
class Relabelled:
    split: str
    id: str
    was: str
    now: str
    where: str  # FILE:LINE of the --relabel row


@dataclass
class Edits:
    exclude: dict[str, str] = field(default_factory=dict)  # id -> FILE:LINE that named it
    relabel: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (new label, FILE:LINE)

    def __bool__(self) -> bool:
        return bool(self.exclude or self.relabel)


def read_edits(exclude: str | Path | None = None, relabel: str | Path | None = None) -> Edits:
    edits = Edits()
    if exclude:
        for where, row in _rows(Path(exclude), "--exclude"):
            edits.exclude.setdefault(row[0], where)
    if relabel:
        for where, row in _rows(Path(relabel), "--relabel", labels=True):
            edits.relabel[row[0]] = (row[1], where)
    return edits


def apply(listing: Listing, edits: Edits) -> tuple[Listing, list[Problem], list[Relabelled]]:
    """The listing without the excluded samples and with the new labels; what was left out (as problems, for
    skipped.txt) and what was relabelled. Every id and label is checked against the whole listing first."""
    ids = {split: [shown_name(s.path, listing.root) for s in samples] for split, samples in listing.splits.items()}
    known = {i for names in ids.values() for i in names}
    for name, where in [*edits.exclude.items(), *((i, w) for i, (_, w) in edits.relabel.items())]:
        if name not in known:
            raise UsageError(f"{where}: {name!r} is not a sample of {listing.root}", hint=HINT)
    classes = set(listing.classes) if listing.classes is not None else None
    if classes is None:
        classes = {s.label for split, ss in listing.splits.items() if split not in listing.unlabeled for s in ss}
    for name, (label, where) in edits.relabel.items():
        if label not in classes:
            shown = ", ".join(sorted(classes)[:8]) + (", ..." if len(classes) > 8 else "")
            raise UsageError(f"{where}: label {label!r} is not among the dataset's classes ({shown})")
    splits, left_out, relabelled = {}, [], []
    for split, samples in listing.splits.items():
        kept = []
        for sample, name in zip(samples, ids[split]):
            if name in edits.exclude:
                left_out.append(Problem(sample.where, f"left out by --exclude {edits.exclude[name]}", split))
                continue
            if name in edits.relabel and split not in listing.unlabeled:
                label, where = edits.relabel[name]
                if label != sample.label:
                    relabelled.append(Relabelled(split, name, sample.label, label, where))
                    sample = replace(sample, label=label)
            kept.append(sample)
        splits[split] = kept
    return replace(listing, splits=splits), left_out, relabelled


def relabelled_csv(rows: list[Relabelled]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["split", "id", "was", "now", "where"])
    writer.writerows([r.split, r.id, r.was, r.now, r.where] for r in rows)
    return buf.getvalue()


def _rows(path: Path, option: str, labels: bool = False):
    """(FILE:LINE, [id] or [id, label]) for each row of a list file."""
    text = read_user_text(path, MAX_LIST_BYTES, f"{option} list")
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")]
    if not lines:
        return
    delimiter = "\t" if "\t" in lines[0][1] else ","
    try:
        rows = [
            (n, [cell.strip() for cell in row])
            for (n, line) in lines
            for row in csv.reader([line], delimiter=delimiter)
        ]
    except csv.Error as exc:
        raise UsageError(f"{path}: not a CSV file ({exc})") from None
    head = [cell.lower() for cell in rows[0][1]]
    id_column = next((head.index(c) for c in ID_COLUMNS if c in head), None)
    if id_column is None:  # no header: the first column, and for labels the second
        if labels and any(len(row) < 2 for _, row in rows):
            n = next(n for n, row in rows if len(row) < 2)
            raise UsageError(f"{path}:{n}: a --relabel row needs a sample id and a label", hint="id,label")
        yield from ((f"{path}:{n}", row[:2] if labels else row[:1]) for n, row in rows)
        return
    label_column, only = None, None
    if labels:
        if "issue" in head and "suggested" in head:  # doctor.csv: its label issues take their suggested label
            label_column, only = head.index("suggested"), head.index("issue")
        else:
            label_column = next((head.index(c) for c in LABEL_COLUMNS if c in head), None)
        if label_column is None:
            raise UsageError(f"{path}:{rows[0][0]}: no label column", hint="name the columns id,label")
    width = max(id_column, label_column or 0) + 1
    for n, row in rows[1:]:
        if len(row) < width:
            raise UsageError(f"{path}:{n}: {len(row)} column(s), the header has {len(head)}")
        if only is not None and row[only] != "label":
            continue
        yield f"{path}:{n}", [row[id_column], row[label_column]] if labels else [row[id_column]]
