"""Which files make which split of which config of a Hugging Face dataset folder, as `datasets` resolves them
(datasets/data_files.py and load.py): the README's YAML `configs:` (fgvctune.data.card), else the sharded names
`data/{split}-00000-of-00001*.*`, else the split keywords in folder names, then in file names, else everything is
`train`; `save_to_disk`'s dataset_dict.json/state.json; `datasets`' own cache folders; and which builder the files
call for (Parquet, Arrow, imagefolder, or one the hf adapter refuses, named). Read by the hf adapter.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

from fgvctune.data.card import chosen_config, config_dir, front_matter, named_configs, split_patterns
from fgvctune.data.splits import ALIASES
from fgvctune.errors import DataError
from fgvctune.fileio import stays_below

# datasets.data_files: SPLIT_PATTERN_SHARDED, SPLIT_KEYWORDS, KEYWORDS_IN_*_BASE_PATTERNS (fsspec >= 2023.12).
SHARDED = "data/{split}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]*.*"
KEYWORDS = {split: [k for k, name in ALIASES.items() if name == split] for split in dict.fromkeys(ALIASES.values())}
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


def read_card(root: Path) -> dict:
    """The README's YAML header (the dataset card), {} without one; a header that cannot be read is a DataError."""
    readme = root / "README.md"
    if not readme.is_file():
        return {}
    return front_matter(readme.read_text(encoding="utf-8", errors="replace"), str(readme))


def split_files(root: Path, card: dict, subset: str) -> tuple[str, dict[str, list[Path]]]:
    """(config name, split -> data files): the README's `configs:`, else the default patterns of `datasets`."""
    configs = named_configs(card, str(root / "README.md"))
    if configs:
        chosen = chosen_config(configs, subset, str(root))
        config = configs[chosen]
        folder = config_dir(config, f"{root / 'README.md'}: config {chosen!r}")
        base = root / folder if folder else root
        files = _walk(base)
        if config.get("data_files") is not None:
            patterns = split_patterns(config["data_files"], f"{root / 'README.md'}: config {chosen!r}'s data_files")
        else:
            patterns = _default_patterns(base, files)
    else:
        if subset and subset != "default":
            raise DataError(f"{root} has no subset {subset!r}; its subsets: default (its README names no configs)")
        chosen, base = "default", root
        files = _walk(base)
        patterns = _default_patterns(base, files)
    found = {split: _resolved(base, files, pats) for split, pats in patterns.items()}
    if not any(found.values()):
        _no_dataset(root)
    return chosen, found


def _default_patterns(base: Path, files: list[str]) -> dict[str, list[str]]:
    """datasets.data_files._get_data_files_patterns: the first kind of pattern that matches any of `files` (those
    under `base`)."""
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
    """Every file under `base` as a relative POSIX path (links to files included, as datasets' glob does); none
    when `base` is no folder."""
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


def _resolved(base: Path, files: list[str], patterns: list[str]) -> list[Path]:
    """The files of one split among `files` (under `base`): each pattern's matches in turn, each file once."""
    seen: dict[str, None] = {}
    for pattern in patterns:
        pattern = str(pattern)
        if not stays_below(pattern.replace("*", "x")):
            raise DataError(f"{base / 'README.md'}: the pattern {pattern!r} leads out of {base}")
        for path in _matches(files, pattern.removeprefix("./")):
            seen.setdefault(path)
    return [base / p for p in seen]


def suffixes(path: Path) -> set[str]:
    return {"." + s.lower() for s in path.name.split(".")[1:]}


def file_kind(root: Path, files: dict[str, list[Path]]) -> str:
    """datasets.load.infer_module_for_data_files: the most common extension decides (Parquet on a draw)."""
    counts = Counter()
    for paths in files.values():
        for path in paths:
            if path.name in METADATA_FILES:
                continue
            for suffix in suffixes(path):
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
def saved_tables(root: Path) -> dict[str, list]:
    """save_to_disk: dataset_dict.json with a folder per split (names as saved), or one split's folder, whose
    state.json `_split` names it (a slice's `train[:50%]` is split `train`)."""
    if (root / "dataset_dict.json").is_file():
        names = json_file(root / "dataset_dict.json").get("splits") or []
        if not isinstance(names, list):
            raise DataError(f"{root / 'dataset_dict.json'}: its splits are not a list of names")
        folders = [(str(name), _within(root, str(name), "dataset_dict.json")) for name in names]
    else:
        name = json_file(root / "state.json").get("_split")
        if not name:
            info = json_file(root / "dataset_info.json") if (root / "dataset_info.json").is_file() else {}
            name = next(iter(info.get("splits") or {"train": None}))
        folders = [(str(name).split("[")[0] or "train", root)]
    tables = {}
    for split, folder in folders:
        state = json_file(folder / "state.json")
        files = state.get("_data_files", [])
        if not isinstance(files, list) or not all(isinstance(f, dict) and "filename" in f for f in files):
            raise DataError(f"{folder / 'state.json'}: _data_files must list {{'filename': ...}} entries")
        tables[split] = [(_within(folder, str(f["filename"]), "state.json"), "arrow") for f in files]
    return tables


def cache_tables(root: Path) -> dict[str, list]:
    """A folder of `datasets`' cache: dataset_info.json and `<builder>-<split>.arrow` or
    `<builder>-<split>-00000-of-00002.arrow` files (datasets.naming.filenames_for_dataset_split); {} if not one."""
    if not (root / "dataset_info.json").is_file() or not any(root.glob("*.arrow")):
        return {}
    info = json_file(root / "dataset_info.json")
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


def json_file(path: Path) -> dict:
    """The JSON object in a file of the dataset, or one line saying why there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} ({exc})") from None
    return json_object(text, str(path))


def json_object(text: str | bytes, where: str) -> dict:
    """A JSON object, or one line naming `where` (deep nesting included: json raises RecursionError there)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{where}: not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected a JSON object, found {type(value).__name__}")
    return value
