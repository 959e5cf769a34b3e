"""A Hugging Face dataset folder, read as it is: the Hub's Parquet shards, `save_to_disk`'s Arrow files, or an
`imagefolder` tree with metadata.csv / metadata.jsonl.

Images stay inside their shards (a sample is a row, see fgvctune.data.containers); class names come from the
schema's ClassLabel, else the README's `dataset_info`, else the label column's values.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from fgvctune import IMAGE_EXTENSIONS, Listing, Problem, Sample
from fgvctune.config import parse_yaml
from fgvctune.data.containers import Member
from fgvctune.data.splits import ALIASES, split_name
from fgvctune.errors import DataError, FgvctuneError
from fgvctune.fileio import stays_below


@dataclass
class HfAdapter:
    """A Hugging Face dataset folder: Parquet shards (Hub layout), save_to_disk Arrow, or imagefolder metadata."""

    data_dir: Path
    image_column: str = field(default="", metadata={"help": "Column holding the images (default: found by type)."})
    label_column: str = field(default="", metadata={"help": "Column holding the labels (default: found by type)."})
    subset: str = field(default="", metadata={"help": "Config (subset) to read, for a folder with several."})

    def read(self) -> Listing:
        root = Path(self.data_dir)
        config = self.subset
        if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
            tables = _arrow_tables(root)
        elif list(root.rglob("*.parquet")):
            tables, config = _parquet_tables(root, self.subset)
        elif _metadata_files(root):
            return _imagefolder(root, self.label_column)
        else:
            raise DataError(
                f"{root} holds no Hugging Face dataset",
                hint="expected Parquet shards (data/train-00000-of-00001.parquet), save_to_disk's dataset_dict.json, "
                "or an imagefolder tree with metadata.csv",
            )
        splits: dict[str, list[Sample]] = {}
        problems: list[Problem] = []
        classes = None
        order = ["train", "validation", "test"]
        for split, files in sorted(tables.items(), key=lambda t: order.index(t[0]) if t[0] in order else 3):
            for path, kind in files:
                schema, features = _schema(path, kind)
                image, label = _columns(path, schema, features, self.image_column, self.label_column)
                names = _class_names(features.get(label)) or _readme_names(root, label, config)
                classes = classes or names
                rows = _rows(path, kind, image, label)
                for row, (cell, value) in enumerate(rows):
                    where = f"{path.relative_to(root)}:{row}"
                    if value is None:
                        problems.append(Problem(where, "the label is null"))
                        continue
                    if isinstance(value, int) and names is not None:
                        if not 0 <= value < len(names):
                            problems.append(
                                Problem(where, f"label {value} is outside the {len(names)} ClassLabel names")
                            )
                            continue
                        value = names[value]
                    source = _source(root, path, kind, row, image, cell)
                    splits.setdefault(split, []).append(Sample(path=source, label=str(value), where=where))
        return _listing(root, splits, classes, problems)


def _listing(root: Path, splits: dict, classes, problems) -> Listing:
    names = list(splits)
    # A Hub cache snapshot (<repo>/snapshots/<revision>) is links into <repo>/blobs: they may lead there.
    repo = root.absolute().parent.parent
    hub = root.absolute().parent.name == "snapshots" and (repo / "blobs").is_dir()
    return Listing(
        root=root,
        links_root=repo if hub else None,
        splits=splits,
        classes=list(classes) if classes else None,
        problems=problems,
        train_split="train" if "train" in names else None,
        eval_split=next((s for s in ("validation", "test") if s in names), None),
    )


def _source(root: Path, path: Path, kind: str, row: int, column: str, cell):
    """The image of a row: inside the shard, or the file its `path` names when the row has no bytes."""
    if isinstance(cell, dict) and cell.get("bytes") is None and cell.get("path"):
        return root / cell["path"]
    filename = cell.get("path") or "" if isinstance(cell, dict) else ""
    return Member(path, kind, str(row), column=column, filename=filename)


# -- finding the files --------------------------------------------------------------------------------------
def _parquet_tables(root: Path, subset: str) -> tuple[dict[str, list], str]:
    """Split -> [(shard, 'parquet')]: `data/train-00000-of-00002.parquet`, `<subset>/train-*.parquet`,
    `<subset>/train/*.parquet` and the like, the split from the file name or its folder."""
    shards = sorted(root.rglob("*.parquet"))
    configs = sorted({_config(root, p) for p in shards})
    if subset:
        if subset not in configs:
            raise DataError(f"{root} has no subset {subset!r}; its subsets: {', '.join(configs)}")
        chosen = subset
    elif len(configs) > 1:
        raise DataError(f"{root} holds several subsets ({', '.join(configs)})", hint="choose one with --subset NAME")
    else:
        chosen = configs[0]
    tables: dict[str, list] = {}
    for path in shards:
        if _config(root, path) != chosen:
            continue
        split = split_name(path.name) or split_name(path.parent.name)
        if split is None:
            raise DataError(f"{path}: cannot tell its split from its name", hint="name shards like train-00000.parquet")
        tables.setdefault(split, []).append((path, "parquet"))
    return tables, chosen


def _config(root: Path, path: Path) -> str:
    """The subset a shard belongs to: its first folder under the dataset, unless that folder is a split or data/."""
    parts = path.relative_to(root).parts[:-1]
    parts = [p for p in parts if p != "data" and p.lower() not in ALIASES]
    return parts[0] if parts else "default"


def _arrow_tables(root: Path) -> dict[str, list]:
    """save_to_disk: dataset_dict.json with a folder per split, or one split's folder (state.json)."""
    if (root / "dataset_dict.json").is_file():
        names = _json(root / "dataset_dict.json").get("splits") or []
        if not isinstance(names, list):
            raise DataError(f"{root / 'dataset_dict.json'}: its splits are not a list of names")
        folders = [(ALIASES.get(str(name).lower(), str(name)), _within(root, str(name), "dataset_dict.json"))
                   for name in names]  # fmt: skip
    else:
        info = _json(root / "dataset_info.json")
        name = str(next(iter(info.get("splits") or {"train": None})))
        folders = [(ALIASES.get(name.lower(), name), root)]
    tables = {}
    for split, folder in folders:
        state = _json(folder / "state.json")
        files = state.get("_data_files", [])
        if not isinstance(files, list) or not all(isinstance(f, dict) and "filename" in f for f in files):
            raise DataError(f"{folder / 'state.json'}: _data_files must list {{'filename': ...}} entries")
        tables[split] = [(_within(folder, str(f["filename"]), "state.json"), "arrow") for f in files]
    return tables


def _within(folder: Path, name: str, listed_in: str) -> Path:
    """`folder / name`, refused when the name (from a JSON file of the dataset) leads out of the folder."""
    if not stays_below(name):
        raise DataError(f"{folder / listed_in} names {name!r}, which is not inside {folder}")
    return folder / name


def _json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} ({exc})") from None
    return _mapping(text, str(path))


def _mapping(text: str | bytes, where: str) -> dict:
    """A JSON object, or one line naming `where` (deep nesting included: json raises RecursionError there)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{where}: not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected a JSON object, found {type(value).__name__}")
    return value


# -- schema ---------------------------------------------------------------------------------------------------
def _schema(path: Path, kind: str):
    """The Arrow schema and HF's features (from the schema's `huggingface` metadata or dataset_info.json)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if kind == "parquet":
            schema = pq.read_schema(path)
        else:
            with pa.memory_map(str(path)) as source:
                schema = pa.ipc.open_stream(source).schema
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path} is not a readable {kind} file ({exc})") from None
    meta = (schema.metadata or {}).get(b"huggingface")
    info = _mapping(meta, f"{path}'s huggingface metadata").get("info") if meta else {}
    features = info.get("features", {}) if isinstance(info, dict) else {}
    if not features and kind == "arrow":
        features = _json(path.parent / "dataset_info.json").get("features", {})
    return schema, features if isinstance(features, dict) else {}


def _columns(path: Path, schema, features: dict, image: str, label: str) -> tuple[str, str]:
    import pyarrow as pa

    names = list(schema.names)
    if image and image not in names:
        raise DataError(f"{path} has no column {image!r}; its columns: {', '.join(names)}")
    if label and label not in names:
        raise DataError(f"{path} has no column {label!r}; its columns: {', '.join(names)}")

    def is_image(name):
        kind = schema.field(name).type
        declared = (features.get(name) or {}).get("_type") == "Image"
        return declared or (pa.types.is_struct(kind) and {"bytes", "path"} <= {f.name for f in kind})

    if image and not (is_image(image) or pa.types.is_binary(schema.field(image).type)):
        raise DataError(f"{path}: column {image!r} holds {schema.field(image).type}, not images")
    images = [image] if image else [n for n in names if is_image(n)]
    if not images:
        raise DataError(f"{path} is not a dataset of images: no image column among {', '.join(names)}")
    if len(images) > 1:
        raise DataError(
            f"{path} has several image columns ({', '.join(images)})", hint="choose one with --image-column"
        )
    if label:
        return images[0], label
    labelled = [n for n in names if (features.get(n) or {}).get("_type") == "ClassLabel"]
    if not labelled:
        labelled = [
            n
            for n in names
            if n != images[0]
            and (pa.types.is_integer(schema.field(n).type) or pa.types.is_string(schema.field(n).type))
        ]
    if len(labelled) != 1:
        found = f"candidates {', '.join(labelled)}" if labelled else "no integer or string column"
        raise DataError(
            f"{path}: cannot tell the label column ({found}; columns: {', '.join(names)})",
            hint="name it with --label-column",
        )
    return images[0], labelled[0]


def _class_names(feature) -> list[str] | None:
    if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" and feature.get("names"):
        return [str(n) for n in feature["names"]]
    return None


def _readme_names(root: Path, label: str, subset: str) -> list[str] | None:
    """Class names from the README's YAML `dataset_info` (the Hub's dataset card); None if it has none."""
    readme = root / "README.md"
    if not readme.is_file():
        return None
    # The card only names classes: one that cannot be read (not UTF-8, not YAML, with aliases) is no card.
    match = re.match(r"\ufeff?---\s*\n(.*?)\n---\s*(\n|$)", readme.read_text(encoding="utf-8", errors="replace"), re.S)
    try:
        card = parse_yaml(match.group(1), str(readme))[0] if match else None
    except FgvctuneError:
        return None
    infos = card.get("dataset_info") if isinstance(card, dict) else None
    for info in infos if isinstance(infos, list) else [infos]:
        if not isinstance(info, dict) or (subset and info.get("config_name", "default") != subset):
            continue
        for feature in info.get("features") or []:
            dtype = feature.get("dtype") if isinstance(feature, dict) else None
            names = dtype.get("class_label", {}).get("names") if isinstance(dtype, dict) else None
            if feature.get("name") != label or not names:
                continue
            if isinstance(names, dict):
                try:
                    return [str(names[k]) for k in sorted(names, key=int)]
                except ValueError:
                    return None
            return [str(n) for n in names] if isinstance(names, list) else None
    return None


def _rows(path: Path, kind: str, image: str, label: str):
    """(image cell without its bytes, label) per row, streamed a batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def cells(batch):
        images = batch.column(image)
        if pa.types.is_struct(images.type):
            paths = images.field("path").to_pylist()
            present = images.field("bytes").is_valid().to_pylist()
            null = images.is_null().to_pylist()
            shown = [
                None if n else {"path": p, "bytes": b"" if has else None} for p, has, n in zip(paths, present, null)
            ]
        else:
            shown = [b"" if valid else None for valid in images.is_valid().to_pylist()]
        return zip(shown, batch.column(label).to_pylist())

    if kind == "parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=128, columns=[image, label]):
            yield from cells(batch)
    else:
        with pa.memory_map(str(path)) as source:
            for batch in pa.ipc.open_stream(source):
                yield from cells(batch)


# -- imagefolder --------------------------------------------------------------------------------------------
def _metadata_files(root: Path) -> list[Path]:
    return sorted(p for name in ("metadata.csv", "metadata.jsonl") for p in root.rglob(name))


def _imagefolder(root: Path, label_column: str) -> Listing:
    """HF's imagefolder: metadata.csv/.jsonl (file_name plus a label column) at the root or in each split folder."""
    splits: dict[str, list[Sample]] = {}
    problems: list[Problem] = []
    for meta in _metadata_files(root):
        rows = _metadata_rows(meta)
        if not rows:
            continue
        columns = list(rows[0][1])
        if "file_name" not in columns:
            raise DataError(f"{meta} has no file_name column; its columns: {', '.join(columns)}")
        label = label_column or _metadata_label(meta, columns)
        for line, row in rows:
            where = f"{meta.relative_to(root)}:{line}"
            if not row.get("file_name"):
                problems.append(Problem(where, "no file_name"))
                continue
            path = meta.parent / str(row["file_name"])
            try:
                relative = path.relative_to(root).parts
            except ValueError:
                problems.append(Problem(where, f"{row['file_name']} is outside the dataset folder"))
                continue
            split = next((ALIASES[p.lower()] for p in relative[:-1] if p.lower() in ALIASES), None)
            if split is None:
                split = "train"
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                problems.append(Problem(where, f"{row['file_name']} is not an image file name"))
            elif row.get(label) in (None, ""):
                problems.append(Problem(where, f"no {label} for {row['file_name']}"))
            else:
                splits.setdefault(split, []).append(Sample(path=path, label=str(row[label]), where=where))
    return _listing(root, splits, None, problems)


def _metadata_rows(path: Path) -> list[tuple[int, dict]]:
    try:
        if path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                return [(i + 2, row) for i, row in enumerate(csv.DictReader(f))]
        lines = path.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not a readable metadata file ({exc})") from None
    return [(i, _mapping(line, f"{path}:{i}")) for i, line in enumerate(lines, 1) if line.strip()]


def _metadata_label(path: Path, columns: list[str]) -> str:
    candidates = [c for c in columns if c != "file_name"]
    preferred = [c for c in candidates if c in ("label", "labels", "class", "category")]
    if len(preferred) == 1 or len(candidates) == 1:
        return (preferred or candidates)[0]
    raise DataError(
        f"{path}: cannot tell the label column among {', '.join(candidates) or 'no other column'}",
        hint="name it with --label-column",
    )
