"""A Hugging Face dataset card (the README's YAML header) as `datasets` reads it: its `configs:` by name, the
config taken when none is named, a config's `data_dir` (kept inside the dataset) and its `data_files` as
split -> patterns. One rule for the `hf` adapter,
which reads the files, and for hub.py, which fetches only those of the chosen config.

    from fgvctune.data.card import chosen_config, config_dir, front_matter, named_configs, split_patterns
"""

from __future__ import annotations

import re

from fgvctune.config import parse_yaml
from fgvctune.errors import DataError, FgvctuneError
from fgvctune.fileio import stays_below

HEADER = re.compile(r"\ufeff?---\s*\n(.*?)\n---\s*(\n|$)", re.S)
FIX = "fix the YAML header between the README's --- lines"


def front_matter(text: str, where: str) -> dict:
    """The card's YAML header, {} without one. A header that is not YAML, or not a mapping, is a DataError naming
    `where` (the README): `datasets` refuses such a card too, rather than read the files with no configs."""
    match = HEADER.match(text)
    if not match:
        return {}
    try:
        card = parse_yaml("\n" + match.group(1), where)[0]  # "\n": YAML's line numbers count from the README's
    except FgvctuneError as exc:
        raise DataError(exc.message, hint=FIX) from None
    if not isinstance(card, dict):
        raise DataError(f"{where}: the YAML header is not a mapping of keys", hint=FIX)
    return card


def named_configs(card: dict, where: str) -> dict[str, dict]:
    """The card's `configs:` by config_name, {} without any; `where` (the README) names a malformed list."""
    configs = card.get("configs")
    if not configs:
        return {}
    if not isinstance(configs, list) or not all(isinstance(c, dict) and "config_name" in c for c in configs):
        raise DataError(f"{where}: configs must be a list of entries with a config_name")
    return {str(c["config_name"]): c for c in configs}


def chosen_config(configs: dict[str, dict], subset: str, what: str, error: type[FgvctuneError] = DataError) -> str:
    """`subset`, else the config `datasets` takes (MetadataConfigs.get_default_config_name): the only one, the one
    named `default`, or the one marked `default`. `what` names the dataset in the `error` raised otherwise."""
    if subset:
        if subset not in configs:
            raise error(f"{what} has no subset {subset!r}; its subsets: {', '.join(configs)}")
        return subset
    defaults = [n for n, c in configs.items() if len(configs) == 1 or n == "default" or c.get("default")]
    if len(defaults) != 1:
        raise error(
            f"{what} holds several subsets ({', '.join(configs)})"
            + (f", {' and '.join(defaults)} both marked default" if defaults else ""),
            hint="choose one with --subset NAME",
        )
    return defaults[0]


def config_dir(config: dict, where: str) -> str:
    """A config's `data_dir` ('' without one), refused when it leads out of the dataset's folder (absolute, or
    through `..`): `where` names the README and the config."""
    folder = str(config.get("data_dir") or "").strip()
    if folder and not stays_below(folder):
        raise DataError(
            f"{where}: data_dir {folder!r} is not a folder inside the dataset",
            hint="name a folder of the dataset, relative to its README.md",
        )
    return folder.strip("/")


def split_patterns(data_files, where: str) -> dict[str, list[str]]:
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
