"""Brace patterns as webdataset expands a shard list (the braceexpand package's rules, with its escapes): comma lists,
numeric and letter ranges, nested and repeated groups; held to MAX_NAMES names. Read by the wds adapter's --shards.
"""

from __future__ import annotations

import itertools
import re
import string

from fgvctune.errors import DataError

INT_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)(?:\.\.-?(\d+))?$")
CHAR_RANGE = re.compile(r"^([A-Za-z])\.\.([A-Za-z])(?:\.\.-?(\d+))?$")
ALPHABET = string.ascii_uppercase + string.ascii_lowercase
MAX_NAMES = 1_000_000  # names one pattern may stand for


def braces(pattern: str) -> list[str]:
    """Every name a brace pattern stands for: comma lists (`{train,val}`), ranges (`{000..009}`, zero padding
    kept; `{a..e}`; `{0..9..2}`), nested and repeated groups; a backslash escapes the next character."""
    return [re.sub(r"\\(.)", r"\1", name) for name in _pattern(pattern, pattern)]


def _pattern(text: str, whole: str) -> list[str]:
    start = pos = depth = 0
    items: list[list[str]] = []
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            pos += 2
            continue
        if char == "{":
            if depth == 0 and pos > start:
                items.append([text[start:pos]])
                start = pos
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                inner = text[start + 1 : pos]
                choices = _expression(inner, whole)
                items += [choices] if choices is not None else [["{"], _pattern(inner, whole), ["}"]]
                start = pos + 1
        pos += 1
    if depth != 0:
        raise DataError(f"--shards {whole!r}: unbalanced braces", hint="escape a literal brace as \\{")
    if start < pos:
        items.append([text[start:]])
    total = 1
    for item in items:
        total *= len(item)
    if total > MAX_NAMES:
        raise DataError(f"--shards {whole!r} stands for {total:,} names, more than {MAX_NAMES:,}")
    return ["".join(parts) for parts in itertools.product(*items)]


def _expression(text: str, whole: str) -> list[str] | None:
    numbers = INT_RANGE.match(text)
    if numbers:
        first, last, step = numbers.groups()
        padded = any(s.startswith(("0", "-0")) for s in (first, last) if s not in ("0", "-0"))
        width = max(len(first), len(last)) if padded else 0
        step = (int(step) or 1) if step else 1
        a, b = int(first), int(last)
        values = range(a, b + 1, step) if a < b else range(a, b - 1, -step)
        if len(values) > MAX_NAMES:
            raise DataError(f"--shards {whole!r}: the range {{{text}}} holds more than {MAX_NAMES:,} names")
        return ["%0*d" % (width, v) for v in values]
    letters = CHAR_RANGE.match(text)
    if letters:
        first, last, step = letters.groups()
        step = (int(step) or 1) if step else 1
        a, b = ALPHABET.index(first), ALPHABET.index(last)
        return list(ALPHABET[a : b + 1 : step] if a < b else ALPHABET[a : (b or -len(ALPHABET)) - 1 : -step])
    return _sequence(text, whole)


def _sequence(text: str, whole: str) -> list[str] | None:
    start = pos = depth = total = 0
    items: list[list[str]] = []
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            pos += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(_listed(total, text[start:pos], text, whole))
            total += len(items[-1])
            start = pos + 1
        pos += 1
    if depth != 0 or not items:
        return None  # not a list: the braces stay as they are
    items.append(_listed(total, text[start:], text, whole))
    return [name for item in items for name in item]


def _listed(total: int, part: str, text: str, whole: str) -> list[str]:
    """The names of one item of a comma list, refused once the list so far (`total` names before it) stands for
    more than MAX_NAMES (each item is within the limit; together they may not be)."""
    names = _pattern(part, whole)
    if total + len(names) > MAX_NAMES:
        raise DataError(f"--shards {whole!r}: the list {{{text}}} stands for more than {MAX_NAMES:,} names")
    return names
