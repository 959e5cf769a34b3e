"""A Hugging Face dataset, read as `datasets.load_dataset(path)` / `load_from_disk(path)` read it: the Hub's Parquet
shards, `save_to_disk`'s Arrow files, `datasets`' own cache folders, or an `imagefolder` tree (with metadata.csv /
metadata.jsonl, or labelled by its folder names). A name that is not a local folder is a Hub dataset id.

Which files make which split follows `datasets` (datasets/data_files.py and load.py): the README's YAML `configs:`,
else the sharded names `data/{split}-00000-of-00001*.*`, else the split keywords in folder names, then in file
names, else everything is `train`. Images stay inside their shards (a sample is a row, see
fgvctune.data.containers); class names come from the schema's ClassLabel, else the README's `dataset_info`, else the
label column's values. HF's label -1 means "no label".
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fgvctune import Listing, Problem, Sample
from fgvctune.config import parse_yaml
from fgvctune.data.containers import Member
from fgvctune.data.splits import held_out, roles
from fgvctune.errors import DataError, FgvctuneError
from fgvctune.fileio import stays_below

# datasets.data_files: SPLIT_PATTERN_SHARDED, SPLIT_KEYWORDS, KEYWORDS_IN_*_BASE_PATTERNS (fsspec >= 2023.12).
SHARDED = "data/{split}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]*.*"
KEYWORDS = {
    "train": ["train", "training"],
    "validation": ["validation", "valid", "dev", "val"],
    "test": ["test", "testing", "eval", "evaluation"],
}
_SEP = "-._ 0-9"
IN_DIR_NAME = ["**/{keyword}/**", "**/{keyword}[{sep}]*/**", "**/*[{sep}]{keyword}/**",
               "**/*[{sep}]{keyword}[{sep}]*/**"]  # fmt: skip
IN_FILE_NAME = ["**/{keyword}[{sep}]*", "**/*[{sep}]{keyword}[{sep}]*"]
FILES_TO_IGNORE = {"README.md", "config.json", "dataset_info.json", "dataset_infos.json", "dummy_data.zip",
                   "dataset_dict.json"}  # fmt: skip
SPLIT_NAME = re.compile(r"^\w+(\.\w+)*$")  # datasets.naming._split_re
METADATA_FILES = ("metadata.csv", "metadata.jsonl", "metadata.parquet")
# imagefolder's extensions (datasets.packaged_modules.imagefolder.ImageFolder.EXTENSIONS, PIL's readable formats)
IMAGE_SUFFIXES = frozenset(
    ".apng .blp .bmp .bufr .bw .cur .dcx .dds .dib .emf .eps .fit .fits .flc .fli .ftc .ftu .gbr .gif .grib .icb "
    ".icns .ico .iim .im .j2c .j2k .jfif .jp2 .jpc .jpe .jpeg .jpf .jpg .jpx .mpeg .mpg .msp .pbm .pcd .pcx .pgm "
    ".png .pnm .ppm .ps .psd .pxr .ras .rgb .rgba .sgi .tga .tif .tiff .vda .vst .webp .wmf .xbm .xpm".split()
)
# The other packaged builders `datasets` picks by extension: named when refused, with the adapter that reads them.
OTHER_KINDS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".txt": "text",
               ".tar": "webdataset", ".zip": "zip", ".wav": "audio", ".mp3": "audio", ".flac": "audio",
               ".mp4": "video", ".pdf": "pdf"}  # fmt: skip
ADAPTER_FOR = {"csv": "-a csv", "webdataset": "-a wds", "zip": "-a folder"}


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
        metadata={"help": "With no validation/test split, the share of train held out as 'validation', stratified."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the stratified --val-fraction hold-out."})

    reads_names = True  # --data-dir may be a Hub dataset id (`beans`, `user/name`)

    def read(self) -> Listing:
        root = Path(self.data_dir)
        if not root.exists():
            from fgvctune.data.hub import dataset_folder

            root = Path(dataset_folder(str(self.data_dir), self.revision, self.subset))
        listing = self._read(root)
        return held_out(listing, self.val_fraction, self.seed, held="validation")

    def _read(self, root: Path) -> Listing:
        if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
            tables, config = _arrow_tables(root), self.subset
        elif _cache_tables(root):
            tables, config = _cache_tables(root), self.subset
        else:
            card = _card(root)
            config, files = _data_files(root, card, self.subset)
            kind = _kind(root, files)
            if kind == "imagefolder":
                return _imagefolder(root, files, self.label_column)
            tables = {split: [(p, kind) for p in ps if f".{kind}" in _suffixes(p)] for split, ps in files.items()}
        return self._tables(root, tables, config)

    def _tables(self, root: Path, tables: dict[str, list], config: str) -> Listing:
        splits: dict[str, list[Sample]] = {}
        problems: list[Problem] = []
        unlabeled: set[str] = set()
        classes = None
        for split, files in tables.items():
            samples = splits.setdefault(split, [])
            missing: list[Problem] = []  # -1 or null labels: a problem each, unless the whole split has no labels
            labelled = 0
            for path, kind in files:
                shown = path.relative_to(root) if path.is_relative_to(root) else path
                try:
                    schema, features = _schema(path, kind)
                except DataError as exc:
                    if kind != "arrow":
                        raise
                    problems.append(Problem(str(shown), exc.message, split=split))
                    continue
                image, label = _columns(path, schema, features, self.image_column, self.label_column)
                names = _class_names(features.get(label)) or _readme_names(root, label, config)
                classes = classes or names
                try:
                    for row, (cell, value) in enumerate(_rows(path, kind, image, label)):
                        where = f"{shown}:{row}"
                        source = _source(root, path, kind, row, image, cell)
                        if value is None or value == -1:
                            missing.append(Problem(where, "the label is null" if value is None else "the label is -1 "
                                                   "(no label)", split=split))  # fmt: skip
                            samples.append(Sample(path=source, label="", where=where))
                            continue
                        labelled += 1
                        if isinstance(value, int) and names is not None:
                            if not 0 <= value < len(names):
                                problems.append(
                                    Problem(
                                        where,
                                        f"label {value} is outside the {len(names)} ClassLabel names",
                                        split=split,
                                    )  # fmt: skip
                                )
                                continue
                            value = names[value]
                        samples.append(Sample(path=source, label=str(value), where=where))
                except _CutShort as exc:
                    problems.append(Problem(str(shown), f"cut short after {exc.rows} rows ({exc.reason})", split=split))
            if missing and not labelled:
                unlabeled.add(split)
            elif missing:
                problems += missing
                splits[split] = [s for s in samples if s.label != ""]
        return _listing(root, splits, classes, problems, unlabeled)


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


# -- which files make which split, as datasets resolves them -------------------------------------------------
def _card(root: Path) -> dict:
    """The README's YAML header (the dataset card), {} without one; a card that cannot be read is no card."""
    readme = root / "README.md"
    if not readme.is_file():
        return {}
    match = re.match(r"\ufeff?---\s*\n(.*?)\n---\s*(\n|$)", readme.read_text(encoding="utf-8", errors="replace"), re.S)
    try:
        card = parse_yaml(match.group(1), str(readme))[0] if match else None
    except FgvctuneError:
        return {}
    return card if isinstance(card, dict) else {}


def _configs(root: Path, card: dict) -> dict[str, dict]:
    configs = card.get("configs")
    if not configs:
        return {}
    where = f"{root / 'README.md'}: configs"
    if not isinstance(configs, list) or not all(isinstance(c, dict) and "config_name" in c for c in configs):
        raise DataError(f"{where} must be a list of entries with a config_name")
    return {str(c["config_name"]): c for c in configs}


def _data_files(root: Path, card: dict, subset: str) -> tuple[str, dict[str, list[Path]]]:
    """(config name, split -> data files): the README's `configs:`, else the default patterns of `datasets`."""
    configs = _configs(root, card)
    if configs:
        if subset:
            if subset not in configs:
                raise DataError(f"{root} has no subset {subset!r}; its subsets: {', '.join(configs)}")
            chosen = subset
        else:
            defaults = [n for n, c in configs.items() if len(configs) == 1 or n == "default" or c.get("default")]
            if len(defaults) != 1:
                raise DataError(
                    f"{root} holds several subsets ({', '.join(configs)})"
                    + (f", {' and '.join(defaults)} both marked default" if defaults else ""),
                    hint="choose one with --subset NAME",
                )
            chosen = defaults[0]
        config = configs[chosen]
        base = root / str(config["data_dir"]) if config.get("data_dir") else root
        if config.get("data_files") is not None:
            patterns = _sanitized(config["data_files"], f"{root / 'README.md'}: config {chosen!r}'s data_files")
        else:
            patterns = _default_patterns(base)
    else:
        if subset and subset != "default":
            raise DataError(f"{root} has no subset {subset!r}; its subsets: default (its README names no configs)")
        chosen, base = "default", root
        patterns = _default_patterns(base)
    files = {split: _resolved(base, pats) for split, pats in patterns.items()}
    if not any(files.values()):
        _no_dataset(root)
    return chosen, files


def _sanitized(data_files, where: str) -> dict[str, list[str]]:
    """datasets.data_files.sanitize_patterns: a pattern, a list of them, or [{split, path}] entries."""
    if isinstance(data_files, str):
        return {"train": [data_files]}
    if isinstance(data_files, dict):
        return {str(k): v if isinstance(v, list) else [v] for k, v in data_files.items()}
    if isinstance(data_files, list):
        if not any(isinstance(p, dict) for p in data_files):
            return {"train": [str(p) for p in data_files]}
        if not all(isinstance(p, dict) and {"split", "path"} == set(p) for p in data_files):
            raise DataError(f"{where} must be a list of {{split, path}} entries")
        names = [str(p["split"]) for p in data_files]
        if len(set(names)) != len(names):
            raise DataError(f"{where} names a split twice ({', '.join(names)})")
        return {str(p["split"]): p["path"] if isinstance(p["path"], list) else [p["path"]] for p in data_files}
    raise DataError(f"{where} must be a pattern, a list of patterns, or a list of {{split, path}} entries")


def _default_patterns(base: Path) -> dict[str, list[str]]:
    """datasets.data_files._get_data_files_patterns: the first kind of pattern that matches any file."""
    files = _walk(base)
    sharded = _glob_regex(SHARDED.replace("{split}", "*"))
    names = {p for p in files if sharded.match(p)}
    if names:
        split_of = re.compile(r"(?P<split>.+)-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]*.*")
        found = {split_of.search(p.rsplit("/", 1)[-1]).group("split") for p in names}
        bad = sorted(s for s in found if not SPLIT_NAME.match(s))
        if bad:
            raise DataError(f"{base / 'data'}: shard names give the split {bad[0]!r}, not a split name (letters, "
                            "digits, _ and .)")  # fmt: skip
        order = [s for s in KEYWORDS if s in found] + sorted(found - set(KEYWORDS))
        return {split: [SHARDED.format(split=split)] for split in order}
    if any(p.endswith(".eval") for p in files):
        return {"logs": ["**/*.eval"]}
    for base_patterns in (IN_DIR_NAME, IN_FILE_NAME):
        patterns = {
            split: [p.format(keyword=k, sep=_SEP) for k in keywords for p in base_patterns]
            for split, keywords in KEYWORDS.items()
        }
        found = {s: pats for s, pats in patterns.items() if any(_matches(files, p) for p in pats)}
        if found:
            return found
    return {"train": ["**"]}


def _walk(base: Path) -> list[str]:
    """Every file under `base` as a relative POSIX path (links to files included, as datasets' glob does)."""
    found = []
    for folder, dirs, names in os.walk(base):
        dirs.sort()
        for name in sorted(names):
            full = Path(folder, name)
            if full.is_file():
                found.append(full.relative_to(base).as_posix())
    return found


def _matches(files: list[str], pattern: str) -> list[str]:
    """The files a pattern matches as datasets.data_files.resolve_pattern keeps them: no hidden file or __folder__
    the pattern does not name, none of FILES_TO_IGNORE unless named."""
    regex = _glob_regex(pattern)
    ignored = FILES_TO_IGNORE - {pattern.rsplit("/", 1)[-1]}
    parts = pattern.split("/")
    hidden = sum(1 for p in parts if p.startswith(".") and set(p) != {"."})
    special = sum(1 for p in parts[:-1] if p.startswith("__"))
    kept = []
    for path in files:
        names = path.split("/")
        if names[-1] in ignored or not regex.match(path):
            continue
        if sum(1 for p in names if p.startswith(".") and set(p) != {"."}) != hidden:
            continue
        if sum(1 for p in names[:-1] if p.startswith("__")) != special:
            continue
        kept.append(path)
    return kept


def _glob_regex(pattern: str) -> re.Pattern:
    """A glob as fsspec (>= 2023.12) reads it, like Python's glob: `**` a whole segment for any folders, `*` and
    `?` within a name, [...] a class."""
    out, segments = [], pattern.strip("/").split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            out.append(".+" if last else "(?:[^/]+/)*")
            continue
        j, text = 0, ""
        while j < len(segment):
            c = segment[j]
            if c == "*":
                text += "[^/]*"
            elif c == "?":
                text += "[^/]"
            elif c == "[" and "]" in segment[j + 2 :]:
                end = segment.index("]", j + 2)
                body = segment[j + 1 : end]
                body = "^" + body[1:] if body.startswith("!") else body
                text += "[" + body.replace("\\", "\\\\") + "]"
                j = end
            else:
                text += re.escape(c)
            j += 1
        out.append(text + ("" if last else "/"))
    return re.compile("^" + "".join(out) + "$")


def _resolved(base: Path, patterns: list[str]) -> list[Path]:
    """The files of one split: each pattern's matches in turn, each file once."""
    files = _walk(base) if base.is_dir() else []
    seen: dict[str, None] = {}
    for pattern in patterns:
        pattern = str(pattern)
        if not stays_below(pattern.replace("*", "x")):
            raise DataError(f"{base / 'README.md'}: the pattern {pattern!r} leads out of {base}")
        for path in _matches(files, pattern.lstrip("./") if pattern.startswith("./") else pattern):
            seen.setdefault(path)
    return [base / p for p in seen]


def _suffixes(path: Path) -> set[str]:
    return {"." + s.lower() for s in path.name.split(".")[1:]}


def _kind(root: Path, files: dict[str, list[Path]]) -> str:
    """datasets.load.infer_module_for_data_files: the most common extension decides (Parquet on a draw)."""
    counts = Counter()
    for paths in files.values():
        for path in paths:
            if path.name in METADATA_FILES:
                continue
            for suffix in _suffixes(path):
                kind = (
                    "parquet" if suffix == ".parquet" else "arrow" if suffix == ".arrow"
                    else "imagefolder" if suffix in IMAGE_SUFFIXES else OTHER_KINDS.get(suffix)
                )  # fmt: skip
                if kind:
                    counts[kind] += 1
    if not counts:
        _no_dataset(root)
    kind = max(counts, key=lambda k: (counts[k], k == "parquet", k == "arrow"))
    if kind not in ("parquet", "arrow", "imagefolder"):
        other = ADAPTER_FOR.get(kind)
        raise DataError(
            f"{root} holds {kind} files, which the hf adapter does not read (it reads Parquet, Arrow and imagefolder "
            "datasets)",
            hint=f"read them with {other}" if other else "convert them to Parquet with `datasets`",
        )
    return kind


def _no_dataset(root: Path):
    raise DataError(
        f"{root} holds no Hugging Face dataset (no Parquet, Arrow or image files)",
        hint="a folder tree of images reads with -a folder, a CSV of paths and labels with -a csv",
    )


# -- save_to_disk and datasets' cache -------------------------------------------------------------------------
def _arrow_tables(root: Path) -> dict[str, list]:
    """save_to_disk: dataset_dict.json with a folder per split (names as saved), or one split's folder, whose
    state.json `_split` names it."""
    if (root / "dataset_dict.json").is_file():
        names = _json(root / "dataset_dict.json").get("splits") or []
        if not isinstance(names, list):
            raise DataError(f"{root / 'dataset_dict.json'}: its splits are not a list of names")
        folders = [(str(name), _within(root, str(name), "dataset_dict.json")) for name in names]
    else:
        name = _json(root / "state.json").get("_split")
        if not name:
            info = _json(root / "dataset_info.json") if (root / "dataset_info.json").is_file() else {}
            name = next(iter(info.get("splits") or {"train": None}))
        folders = [(str(name), root)]
    tables = {}
    for split, folder in folders:
        state = _json(folder / "state.json")
        files = state.get("_data_files", [])
        if not isinstance(files, list) or not all(isinstance(f, dict) and "filename" in f for f in files):
            raise DataError(f"{folder / 'state.json'}: _data_files must list {{'filename': ...}} entries")
        tables[split] = [(_within(folder, str(f["filename"]), "state.json"), "arrow") for f in files]
    return tables


def _cache_tables(root: Path) -> dict[str, list]:
    """A folder of `datasets`' cache: dataset_info.json and `<builder>-<split>.arrow` or
    `<builder>-<split>-00000-of-00002.arrow` files (datasets.naming.filenames_for_dataset_split); {} if not one."""
    if not (root / "dataset_info.json").is_file() or not any(root.glob("*.arrow")):
        return {}
    info = _json(root / "dataset_info.json")
    splits = info.get("splits") if isinstance(info.get("splits"), dict) else {}
    arrows = sorted(p.name for p in root.glob("*-*.arrow"))
    tables = {}
    for split in splits:
        pattern = re.compile(rf"^[^/]*-{re.escape(str(split))}(-\d{{5}}-of-\d{{5}})?\.arrow$")
        tables[str(split)] = [(root / name, "arrow") for name in arrows if pattern.match(name)]
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
    if not features and kind == "arrow" and (path.parent / "dataset_info.json").is_file():
        features = _json(path.parent / "dataset_info.json").get("features", {})
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


def _readme_names(root: Path, label: str, subset: str) -> list[str] | None:
    """Class names from the README's YAML `dataset_info` (the Hub's dataset card); None if it has none."""
    infos = _card(root).get("dataset_info")
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
    """An Arrow file that ends before its stream does: the rows read so far stand."""

    def __init__(self, rows: int, reason: str):
        self.rows, self.reason = rows, reason


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
        return
    rows = 0
    with pa.memory_map(str(path)) as source:
        batches = iter(pa.ipc.open_stream(source))
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (OSError, pa.ArrowInvalid) as exc:
                raise _CutShort(rows, str(exc).splitlines()[0][:120]) from None
            rows += batch.num_rows
            yield from cells(batch)


# -- imagefolder --------------------------------------------------------------------------------------------
def _imagefolder(root: Path, files: dict[str, list[Path]], label_column: str) -> Listing:
    """datasets' imagefolder: with metadata files, a sample per metadata row (file_name and a label column);
    without, a sample per image, labelled by its folder's name when there are several such names and every image
    is as deep as the others (across all splits)."""
    metadata = {split: [p for p in paths if p.name in METADATA_FILES] for split, paths in files.items()}
    images = {split: [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES] for split, paths in files.items()}
    splits: dict[str, list[Sample]] = {}
    problems: list[Problem] = []
    if any(metadata.values()):
        for split, metas in metadata.items():
            splits[split] = []
            for meta in metas:
                _metadata_samples(root, meta, split, label_column, splits[split], problems)
        return _listing(root, splits, None, problems)
    labels = {p.parent.name for ps in images.values() for p in ps}
    depths = {len(p.absolute().parts) for ps in images.values() for p in ps}
    labelled = len(labels) > 1 and len(depths) == 1
    for split, paths in images.items():
        where = lambda p: p.relative_to(root).as_posix()  # noqa: E731
        splits[split] = [Sample(path=p, label=p.parent.name if labelled else "", where=where(p)) for p in paths]
    unlabeled = set() if labelled else set(splits)
    return _listing(root, splits, sorted(labels) if labelled else None, problems, unlabeled)


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
