"""A Hugging Face Hub dataset id (`beans`, `user/name`) as a local folder: the snapshot in huggingface_hub's own
cache, downloaded when online, the cache alone with HF_HUB_OFFLINE=1.

Only the files of the chosen subset are fetched: the README's YAML `configs:` name them (`data_files`, `data_dir`);
without configs the whole dataset is fetched (it is one subset, as `datasets` reads it). huggingface_hub is the
optional `hub` extra, imported here only; each of its errors becomes one line.

    from fgvctune.data.hub import dataset_folder
    root = dataset_folder("user/name", revision="main", subset="small")
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from fgvctune.errors import DataError, FgvctuneError, UsageError

# The Hub's repo id rule (huggingface_hub.utils.validate_repo_id): an optional owner, a name of word characters,
# '-' and '.', no '--' or '..', neither end a '-' or '.', 96 characters at most.
PART = r"[\w\-.]+"
HUB_ID = re.compile(rf"^(?:{PART}/)?{PART}$")
CARD_FILES = ["README.md", "dataset_infos.json"]  # the card (class names, configs) and the older infos file


def looks_like_id(name: str) -> bool:
    """Whether `name` can be a Hub dataset id at all (a local path such as `./x` or `/data/x` cannot)."""
    return (
        len(name) <= 96
        and bool(HUB_ID.match(name))
        and "--" not in name
        and ".." not in name
        and not any(part[:1] in "-." or part[-1:] in "-." for part in name.split("/"))
    )


def dataset_folder(name: str, revision: str = "", subset: str = "") -> Path:
    """The local snapshot folder of Hub dataset `name` at `revision` (default: its main branch), holding at least
    the files of `subset` (default: the dataset's default config)."""
    if not looks_like_id(name):
        raise DataError(f"data directory {name} does not exist", hint="pass --data-dir with the dataset's folder")
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise DataError(
            f"data directory {name} does not exist; reading it as a Hugging Face Hub dataset needs huggingface_hub",
            hint="install fgvctune's hub extra: pip install 'fgvctune[hub]'",
        ) from None
    try:
        return _fetch(name, revision or None, subset)
    except FgvctuneError:
        raise
    except Exception as error:
        raise _one_line(error, name, revision, subset) from None


def _fetch(name: str, revision: str | None, subset: str) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError

    try:  # the card first: it says which files the subset needs
        readme = Path(hf_hub_download(name, "README.md", repo_type="dataset", revision=revision))
    except EntryNotFoundError:  # no card, or (offline) none cached: then the whole snapshot, or its error
        readme = None
    patterns = subset_patterns(readme.read_text(encoding="utf-8", errors="replace"), subset, name) if readme else None
    return _snapshot(name, revision, None if patterns is None else CARD_FILES + patterns)


def _snapshot(name: str, revision: str | None, allow: list[str] | None) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(name, repo_type="dataset", revision=revision, allow_patterns=allow))


def subset_patterns(card: str, subset: str, name: str) -> list[str] | None:
    """The repo paths (fnmatch patterns) the README's `configs:` give the config `datasets` would read (see
    fgvctune.data.card); None when the card has no configs or the config names no files (`datasets` then reads the
    whole repository)."""
    from fgvctune.data.card import chosen_config, config_dir, front_matter, named_configs, split_patterns

    where = f"Hub dataset {name}'s README.md"
    configs = named_configs(front_matter(card, where), where)
    if not configs:
        return None
    chosen = chosen_config(configs, subset, f"Hub dataset {name}", UsageError)
    config = configs[chosen]
    base = config_dir(config, f"{where}: config {chosen!r}")
    files = config.get("data_files")
    patterns = split_patterns(files, f"{where}: config {chosen!r}'s data_files") if files else {}
    paths = [str(p) for split in patterns.values() for p in split if p]
    if not paths:
        return [f"{base}/*"] if base else None
    # fnmatch's `*` also crosses '/': a pattern fetches at least what `datasets`' glob would read.
    return [posixpath.join(base, p.removeprefix("./")) if base else p.removeprefix("./") for p in paths]


def _one_line(error: Exception, name: str, revision: str, subset: str) -> FgvctuneError:
    """huggingface_hub's error, said in one line with what to do."""
    from huggingface_hub import constants
    from huggingface_hub.utils import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    page = f"https://huggingface.co/datasets/{name}"
    download = f"go online, or download it first: hf download {name} --repo-type dataset" + (
        f" --revision {revision}" if revision else ""
    )
    if isinstance(error, GatedRepoError):
        return DataError(f"Hub dataset {name} is gated", hint=f"accept its terms at {page}, then `hf auth login`")
    if isinstance(error, RepositoryNotFoundError):
        return DataError(
            f"data directory {name} does not exist, and the Hugging Face Hub has no dataset {name!r}",
            hint="pass --data-dir with the dataset's folder or a Hub id (user/name); `hf auth login` for a private one",
        )
    if isinstance(error, RevisionNotFoundError):
        return DataError(
            f"Hub dataset {name} has no revision {revision!r}", hint="pass --revision with a branch, tag or commit"
        )
    if isinstance(error, LocalEntryNotFoundError):
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hub cannot be reached"
        held = "only part of it is" if type(error).__name__ == "IncompleteSnapshotError" else "it is not"
        what = name + (f" (subset {subset!r})" if subset else "") + (f" at {revision!r}" if revision else "")
        return DataError(
            f"Hub dataset {what}: {held} in the Hugging Face cache ({constants.HF_HUB_CACHE}) and {why}", hint=download
        )
    if isinstance(error, HFValidationError):
        return UsageError(f"Hub dataset {name}: {str(error).splitlines()[0]}")
    if isinstance(error, HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", "?")
        return DataError(f"the Hugging Face Hub answered {status} for dataset {name}", hint=f"see {page}")
    if isinstance(error, OSError) or type(error).__module__.split(".")[0] in ("httpx", "requests"):
        # a proxy or connection error huggingface_hub passes on, a full disk
        return DataError(f"Hub dataset {name}: {type(error).__name__}: {error}", hint=download)
    raise error
