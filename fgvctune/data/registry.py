"""The adapter registry: a dict filled once, lazily, from the `fgvctune.adapters` entry points.

The built-in adapters are ordinary entry points of fgvctune's own distribution, so a third-party
package registers the same way: declare a class in the group and install the package.
"""

from __future__ import annotations

import dataclasses
import logging
import types
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Literal, Union, get_args, get_origin, get_type_hints

from fgvctune.errors import UsageError

ENTRY_POINT_GROUP = "fgvctune.adapters"
log = logging.getLogger("fgvctune")


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    cls: type
    source: str  # the distribution that provides it, e.g. "fgvctune 0.1.0"

    @property
    def summary(self) -> str:
        """The docstring's first paragraph, on one line."""
        paragraph = (self.cls.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(line.strip() for line in paragraph.splitlines())

    def options(self) -> list[dataclasses.Field]:
        """The adapter's options: every dataclass field except `data_dir`."""
        return [f for f in dataclasses.fields(self.cls) if f.name != "data_dir"]


_adapters: dict[str, AdapterInfo] = {}
_loaded = False


def register(cls: type, name: str | None = None, source: str = "python") -> type:
    """Register an adapter class (a dataclass with `data_dir` and a `read()` method)."""
    if not dataclasses.is_dataclass(cls) or not hasattr(cls, "read"):
        raise TypeError(f"{cls!r} is not an adapter: it needs to be a dataclass with a read() method")
    name = name or getattr(cls, "name", None) or cls.__name__.lower()
    _adapters[name] = AdapterInfo(name, cls, source)
    return cls


def _load_entry_points() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown distribution"
        try:
            cls = ep.load()
            register(cls, name=ep.name, source=dist)
        except Exception as exc:  # a broken plugin must not take the tool down
            log.warning("adapter plugin %r from %s failed to load and is skipped: %s", ep.name, dist, exc)


def available() -> list[AdapterInfo]:
    _load_entry_points()
    return [_adapters[name] for name in sorted(_adapters)]


def get(name: str) -> AdapterInfo:
    _load_entry_points()
    try:
        return _adapters[name]
    except KeyError:
        known = ", ".join(sorted(_adapters)) or "none"
        raise UsageError(
            f"unknown adapter {name!r}; available: {known}", hint="`fgvctune adapters` lists them with their options"
        ) from None


def parse_options(info: AdapterInfo, tokens: list[str]) -> dict:
    """Turn command-line tokens such as `--level family --crop-box` into the adapter's keyword arguments."""
    hints = {name: given(kind) for name, kind in get_type_hints(info.cls).items()}
    fields = {f.name: f for f in info.options()}
    options: dict = {}
    tokens = list(tokens)
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--"):
            raise UsageError(f"unexpected argument {token!r}")
        flag, has_value, value = token[2:].partition("=")
        key = flag.replace("-", "_")
        negated = key.startswith("no_") and key[3:] in fields and hints.get(key[3:]) is bool
        key = key[3:] if negated else key
        if key not in fields:
            names = ", ".join(f"--{n.replace('_', '-')}" for n in fields) or "none"
            raise UsageError(f"no such option --{flag} for adapter {info.name!r}; its options: {names}")
        kind = hints.get(key, str)
        if kind is bool:
            options[key] = (value.lower() in ("1", "true", "yes")) if has_value else not negated
            continue
        if not has_value:
            if not tokens:
                raise UsageError(f"option --{flag} needs a value")
            value = tokens.pop(0)
        options[key] = _convert(value, kind, flag)
    return options


def given(kind):
    """An option's type as typed: `float` for `float | None` (None: "not given", the adapter picks)."""
    if get_origin(kind) in (Union, types.UnionType):
        args = [a for a in get_args(kind) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return kind


def _convert(value: str, kind, flag: str):
    kind = given(kind)
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        if value not in choices:
            raise UsageError(f"--{flag} must be one of {', '.join(choices)}, got {value!r}")
        return value
    try:
        return kind(value) if kind in (int, float) else value
    except ValueError:
        raise UsageError(f"--{flag} needs {'an integer' if kind is int else 'a number'}, got {value!r}") from None


def describe_type(kind) -> str:
    kind = given(kind)
    if get_origin(kind) is Literal:
        return "|".join(get_args(kind))
    return {bool: "flag", int: "integer", float: "number"}.get(kind, "text")
