"""`datasets`' imagefolder builder as it reads a folder of images: a sample per row of metadata.csv / metadata.jsonl
(file_name and a label column), or without metadata a sample per image, labelled by its folder's name. Read by the
hf adapter once hf_files.py has found the imagefolder's files.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fgvctune import Problem, Sample
from fgvctune.errors import DataError
from fgvctune.fileio import stays_below
from fgvctune_adapters.hf_files import IMAGE_SUFFIXES, METADATA_FILES, json_object


def imagefolder(root: Path, files: dict[str, list[Path]], label_column: str):
    """datasets' imagefolder: with metadata files, a sample per metadata row (file_name and a label column);
    without, a sample per image, labelled by its folder's name when there are several such names and every image
    is as deep as the others (across all splits). Returns the splits' samples, the class names (None: from the
    labels), the problems and the splits without labels, for the adapter's Listing."""
    metadata = {split: [p for p in paths if p.name in METADATA_FILES] for split, paths in files.items()}
    images = {split: [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES] for split, paths in files.items()}
    splits: dict[str, list[Sample]] = {}
    problems: list[Problem] = []
    if any(metadata.values()):
        for split, metas in metadata.items():
            splits[split] = []
            for meta in metas:
                _metadata_samples(root, meta, split, label_column, splits[split], problems)
        return splits, None, problems, set()
    labels = {p.parent.name for ps in images.values() for p in ps}
    depths = {len(p.absolute().parts) for ps in images.values() for p in ps}
    labelled = len(labels) > 1 and len(depths) == 1
    listed = {p for ps in files.values() for p in ps}
    stray = [root / m for m in METADATA_FILES if (root / m).is_file() and root / m not in listed]
    if stray and labelled and all(len({p.parent for p in ps}) == 1 for ps in images.values() if ps):
        # `datasets` reads a metadata file only among its split's files: this one it ignores, and it labels each
        # image by its split folder's name, a class per split.
        raise DataError(
            f"{stray[0]} is not read beside split folders (datasets reads metadata only inside a split's folder)",
            hint="write a metadata file into each split folder, its file_name relative to that folder",
        )
    for split, paths in images.items():
        where = lambda p: p.relative_to(root).as_posix()  # noqa: E731
        splits[split] = [Sample(path=p, label=p.parent.name if labelled else "", where=where(p)) for p in paths]
    unlabeled = set() if labelled else set(splits)
    return splits, sorted(labels) if labelled else None, problems, unlabeled


def _metadata_samples(root: Path, meta: Path, split: str, label_column: str, samples: list, problems: list):
    if meta.suffix == ".parquet":
        raise DataError(f"{meta}: metadata.parquet is not read", hint="write the metadata as metadata.csv or .jsonl")
    rows = _metadata_rows(meta)
    if not rows:
        return
    columns = list(rows[0][1])
    if "file_name" not in columns:
        raise DataError(f"{meta} has no file_name column; its columns: {', '.join(columns)}")
    label = label_column or _metadata_label(meta, columns)
    for line, row in rows:
        where = f"{meta.relative_to(root)}:{line}"
        name = row.get("file_name")
        if not name:
            problems.append(Problem(where, "no file_name", split=split))
            continue
        path = meta.parent / str(name)
        if not stays_below(str(name)):
            problems.append(Problem(where, f"{name} is outside the dataset folder", split=split))
        elif Path(str(name)).suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(Problem(where, f"{name} is not an image file name", split=split))
        elif row.get(label) in (None, ""):
            problems.append(Problem(where, f"no {label} for {name}", split=split))
        else:
            samples.append(Sample(path=path, label=str(row[label]), where=where))


def _metadata_rows(path: Path) -> list[tuple[int, dict]]:
    try:
        if path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                return [(i + 2, row) for i, row in enumerate(csv.DictReader(f))]
        lines = path.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not a readable metadata file ({exc})") from None
    return [(i, json_object(line, f"{path}:{i}")) for i, line in enumerate(lines, 1) if line.strip()]


def _metadata_label(path: Path, columns: list[str]) -> str:
    candidates = [c for c in columns if c != "file_name"]
    preferred = [c for c in candidates if c in ("label", "labels", "class", "category")]
    if len(preferred) == 1 or len(candidates) == 1:
        return (preferred or candidates)[0]
    raise DataError(
        f"{path}: cannot tell the label column among {', '.join(candidates) or 'no other column'}",
        hint="name it with --label-column",
    )
