"""results/runfiles.py: the one place a run folder's file names are spelled."""

from __future__ import annotations

import ast

from conftest import REPO
from fgvctune.results import runfiles

# Names runfiles gives that other code spells for something else: a suffix the weights room checks too, and the
# export folder, named as its command is.
NOT_FILES = {"CHECKPOINT_SUFFIX", "EXPORT_FOLDER"}


def run_file_names() -> dict[str, str]:
    """runfiles' names of files and folders (its own and those it takes from the data room): constant -> value."""
    return {
        name: value
        for name, value in vars(runfiles).items()
        if name.isupper() and isinstance(value, str) and name not in NOT_FILES
    }


def literals() -> dict[str, list[str]]:
    """Every whole string literal in fgvctune's code: value -> where it is spelled (file:line)."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "fgvctune").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.setdefault(node.value, []).append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_every_run_file_name_is_spelled_once_in_the_package():
    names = run_file_names()
    assert {"BEST", "PRED_FILE", "CURVES_FILE", "COUNTS_FILE", "LABELS_FILE", "MSRUN_LOGS"} <= set(names)
    spelled = literals()
    twice = {
        f"{name} = {value!r}": spelled.get(value, [])
        for name, value in names.items()
        if len(spelled.get(value, [])) != 1
    }
    assert not twice, twice
