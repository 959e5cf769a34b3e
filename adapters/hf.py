"""A Hugging Face dataset, read as `datasets.load_dataset(path)` / `load_from_disk(path)` read it: the Hub's Parquet
shards, `save_to_disk`'s Arrow files, `datasets`' own cache folders, or an `imagefolder` tree (with metadata.csv /
metadata.jsonl, or labelled by its folder names). A name that is not a local folder is a Hub dataset id.

This module holds the adapter and what it reads from the files (columns, labels, rows); hf_files.py says which files
make which split, hf_imagefolder.py reads an imagefolder tree. Images stay inside their shards (a sample is a row, see
fgvctune.data.containers); class names come from the schema's ClassLabel, else the README's `dataset_info`, else the
label column's values. HF's label -1 means "no label".
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from fgvctune import Listing, Problem, Sample
from fgvctune.data.containers import Member
from fgvctune.data.splits import held_out, roles
from fgvctune.errors import DataError, UsageError
from fgvctune_adapters.hf_files import (
    cache_tables,
    file_kind,
    json_file,
    json_object,
    read_card,
    saved_tables,
    split_files,
    suffixes,
)
from fgvctune_adapters.hf_imagefolder import imagefolder


@dataclass
class HfAdapter:
    """A Hugging Face dataset: a folder of Parquet shards (Hub layout), save_to_disk Arrow, an imagefolder tree, or
    a Hub dataset id."""

    data_dir: Path
    image_column: str = field(default="", metadata={"help": "Column holding the images (default: found by type)."})
    label_column: str = field(default="", metadata={"help": "Column holding the labels (default: found by type)."})
    subset: str = field(default="", metadata={"help": "Config (subset) to read, for a folder with several."})
    revision: str = field(default="", metadata={"help": "The Hub revision, for a Hub id."})
    val_fraction: float = field(
        default=0.0,
        metadata={
            "help": "With no validation split, the share of train held out as 'validation', stratified (a test "
            "split stays for the end)."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the stratified --val-fraction hold-out."})

    reads_names = True  # --data-dir may be a Hub dataset id (`beans`, `user/name`)

    def read(self) -> Listing:
        root = Path(self.data_dir)
        if not root.exists():
            from fgvctune.data.hub import dataset_folder

            root = Path(dataset_folder(str(self.data_dir), self.revision, self.subset))
        elif self.revision:
            raise UsageError(
                f"--revision {self.revision} is for a Hub dataset id; {root} is a local folder",
                hint="drop --revision, or pass the dataset's Hub id (user/name) as the data directory",
            )
        listing = self._read(root)
        return held_out(listing, self.val_fraction, self.seed, held="validation")

    def _read(self, root: Path) -> Listing:
        saved = (root / "dataset_dict.json").is_file() or (root / "state.json").is_file()
        tables = saved_tables(root) if saved else cache_tables(root)
        if tables:
            if self.subset:
                what = "save_to_disk folder" if saved else "folder of datasets' cache"
                raise UsageError(
                    f"--subset {self.subset}: {root} is a {what}, which holds one subset",
                    hint="drop --subset (it names a config of a README's `configs:`)",
                )
            return self._tables(root, tables, {}, "")
        card = read_card(root)
        config, files = split_files(root, card, self.subset)
        kind = file_kind(root, files)
        if kind == "imagefolder":
            return _listing(root, *imagefolder(root, files, self.label_column))
        tables = {split: [(p, kind) for p in ps if f".{kind}" in suffixes(p)] for split, ps in files.items()}
        return self._tables(root, tables, card, config)

    def _tables(self, root: Path, tables: dict[str, list], card: dict, config: str) -> Listing:
        splits: dict[str, list[Sample]] = {}
        problems: list[Problem] = []
        unlabeled: set[str] = set()
        classes = None
        for split, files in tables.items():
            samples = splits.setdefault(split, [])
            # Rows with no label (null, -1, ""): a count and the first of each kind, a problem unless the whole
            # split has none (an unlabeled split, such as a competition's test split).
            missing: dict[str, list] = {}
            labelled = 0
            for path, kind in files:
                shown = path.relative_to(root) if path.is_relative_to(root) else path
                try:
                    schema, features = _schema(path, kind)
                except DataError as exc:  # an unreadable file: a problem of its split, not of every command
                    problems.append(Problem(str(shown), exc.message, split=split))
                    continue
                image, label = _columns(path, schema, features, self.image_column, self.label_column)
                names = _class_names(features.get(label)) or _readme_names(card, label, config)
                classes = classes or names
                try:
                    for row, (cell, value) in enumerate(_rows(path, kind, image, label)):
                        where = f"{shown}:{row}"
                        source = _source(root, path, kind, row, image, cell)
                        if isinstance(value, int) and names is not None and value != -1:
                            if not 0 <= value < len(names):
                                why = f"label {value} is outside the {len(names)} ClassLabel names"
                                problems.append(Problem(where, why, split=split))
                                continue
                            value = names[value]
                        why = _no_label(value)
                        if why:
                            first = missing.setdefault(why, [where, 0])
                            first[1] += 1
                            samples.append(Sample(path=source, label="", where=where))
                            continue
                        labelled += 1
                        samples.append(Sample(path=source, label=str(value), where=where))
                except _CutShort as exc:
                    problems.append(Problem(str(shown), exc.message, split=split))
            if missing and not labelled:
                unlabeled.add(split)
            elif missing:
                for why, (where, count) in missing.items():
                    more = f", as in {count} rows of split {split!r}" if count > 1 else ""
                    problems.append(Problem(where, why + more, split=split))
                splits[split] = [s for s in samples if s.label != ""]  # "" only ever marks a row with no label
        return _listing(root, splits, classes, problems, unlabeled)


def _no_label(value) -> str:
    """Why a row's label value is no label (HF's null and -1, an empty name), else ''."""
    if value is None:
        return "the label is null"
    if isinstance(value, int) and value == -1:
        return "the label is -1 (no label)"
    return "the label is empty" if str(value) == "" else ""


def _listing(root: Path, splits: dict, classes, problems, unlabeled=()) -> Listing:
    # A Hub cache snapshot (<repo>/snapshots/<revision>) is links into <repo>/blobs: they may lead there.
    repo = root.absolute().parent.parent
    hub = root.absolute().parent.name == "snapshots" and (repo / "blobs").is_dir()
    train, evaluated = roles(splits, unlabeled)
    return Listing(
        root=root,
        links_root=repo if hub else None,
        splits=splits,
        classes=list(classes) if classes else None,
        problems=problems,
        train_split=train,
        eval_split=evaluated,
        unlabeled=frozenset(unlabeled),
    )


def _source(root: Path, path: Path, kind: str, row: int, column: str, cell):
    """The image of a row: inside the shard, or the file its `path` names when the row has no bytes."""
    if isinstance(cell, dict) and cell.get("bytes") is None and cell.get("path"):
        return root / cell["path"]
    filename = cell.get("path") or "" if isinstance(cell, dict) else ""
    return Member(path, kind, str(row), column=column, filename=filename)


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
        # The Problem this becomes names the file already: the library's first line says why, kept short.
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        why = why if len(why) <= 120 else why[:119] + "…"
        raise DataError(f"not a readable {kind} file ({why})") from None
    meta = (schema.metadata or {}).get(b"huggingface")
    info = json_object(meta, f"{path}'s huggingface metadata").get("info") if meta else {}
    features = info.get("features", {}) if isinstance(info, dict) else {}
    if not features and kind == "arrow" and (path.parent / "dataset_info.json").is_file():
        features = json_file(path.parent / "dataset_info.json").get("features", {})
    return schema, features if isinstance(features, dict) else {}


def _is_list(schema, features: dict, name: str) -> bool:
    import pyarrow as pa

    kind = schema.field(name).type
    declared = features.get(name)
    return (
        pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_fixed_size_list(kind)
        or isinstance(declared, list)
        or (isinstance(declared, dict) and declared.get("_type") in ("Sequence", "List", "LargeList"))
    )


def _columns(path: Path, schema, features: dict, image: str, label: str) -> tuple[str, str]:
    import pyarrow as pa

    names = list(schema.names)
    if image and image not in names:
        raise DataError(f"{path} has no column {image!r}; its columns: {', '.join(names)}")
    if label and label not in names:
        raise DataError(f"{path} has no column {label!r}; its columns: {', '.join(names)}")

    def is_image(name):
        kind = schema.field(name).type
        declared = (features.get(name) or {}).get("_type") == "Image" if isinstance(features.get(name), dict) else False
        return declared or (pa.types.is_struct(kind) and {"bytes", "path"} <= {f.name for f in kind})

    def binary(name):
        kind = schema.field(name).type
        return pa.types.is_binary(kind) or pa.types.is_large_binary(kind)

    if image and not (is_image(image) or binary(image)):
        raise DataError(f"{path}: column {image!r} holds {schema.field(image).type}, not images")
    images = [image] if image else [n for n in names if is_image(n)]
    if not images:
        raw = [n for n in names if binary(n)]
        raise DataError(
            f"{path} is not a dataset of images: no image column among {', '.join(names)}",
            hint=f"if column {raw[0]!r} holds encoded images, name it with --image-column {raw[0]}" if raw else "",
        )
    if len(images) > 1:
        raise DataError(
            f"{path} has several image columns ({', '.join(images)})", hint="choose one with --image-column"
        )
    if not label:

        def class_label(name):
            feature = features.get(name)
            while isinstance(feature, dict) and feature.get("_type") in ("Sequence", "List", "LargeList"):
                feature = feature.get("feature")
            if isinstance(feature, list) and feature:
                feature = feature[0]
            return isinstance(feature, dict) and feature.get("_type") == "ClassLabel"

        def plain(name):
            kind = schema.field(name).type
            return pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)

        others = [n for n in names if n != images[0]]
        labelled = [n for n in others if class_label(n)] or [n for n in others if plain(n)]
        preferred = [n for n in labelled if n.lower() in ("label", "labels")]
        labelled = preferred if len(preferred) == 1 else labelled
        if len(labelled) != 1:
            found = f"candidates {', '.join(labelled)}" if labelled else "no integer or string column"
            raise DataError(
                f"{path}: cannot tell the label column ({found}; columns: {', '.join(names)})",
                hint="name it with --label-column",
            )
        label = labelled[0]
    if _is_list(schema, features, label):
        raise DataError(
            f"{path}: column {label!r} holds lists of labels (multi-label); fgvctune trains single-label classifiers",
            hint="name a column with one label per image with --label-column",
        )
    return images[0], label


def _class_names(feature) -> list[str] | None:
    if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" and feature.get("names"):
        return [str(n) for n in feature["names"]]
    return None


def _readme_names(card: dict, label: str, subset: str) -> list[str] | None:
    """Class names from the card's YAML `dataset_info` (the Hub's dataset card); None if it has none."""
    infos = card.get("dataset_info")
    for info in infos if isinstance(infos, list) else [infos]:
        if not isinstance(info, dict) or info.get("config_name", "default") != (subset or "default"):
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


class _CutShort(Exception):
    """A file that cannot be read past some row (an Arrow stream cut short, a damaged Parquet page): the rows read
    so far stand, and the file is one problem."""

    def __init__(self, message: str):
        self.message = message


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

    rows = 0

    def stopped(exc: Exception):
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        what = "cut short" if kind == "arrow" else "damaged"
        return _CutShort(f"{what} after {rows} rows ({reason})")

    with contextlib.ExitStack() as stack:
        try:
            if kind == "parquet":
                parquet = stack.enter_context(pq.ParquetFile(path))
                batches = parquet.iter_batches(batch_size=128, columns=[image, label])
            else:
                batches = iter(pa.ipc.open_stream(stack.enter_context(pa.memory_map(str(path)))))
        except (OSError, pa.ArrowException) as exc:
            raise stopped(exc) from None
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (OSError, pa.ArrowException) as exc:
                raise stopped(exc) from None
            rows += batch.num_rows
            yield from cells(batch)
