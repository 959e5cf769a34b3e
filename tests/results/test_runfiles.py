"""results/runfiles.py: the one place a run folder's file names are spelled."""

from __future__ import annotations

import ast
import json

import pytest

from conftest import REPO
from fgvctune.errors import UsageError
from fgvctune.results import runfiles
from fgvctune.results.runfiles import TRACKING_FILE, read_tracking

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


@pytest.mark.parametrize("text", ["[1, 2]", '{"mlflow": {"uri": 3}}', '{"mlflow": []}', "not json", "{" * 100000])
def test_a_tracking_file_not_fgvctunes_is_one_line(tmp_path, text):
    """tracking.json says where a resumed run logs: one of another shape stops with one line naming it."""
    (tmp_path / TRACKING_FILE).write_text(text)
    with pytest.raises(UsageError, match="not a tracking file fgvctune wrote"):
        read_tracking(tmp_path)
    record = {
        "tensorboard": "tensorboard-logs",
        "mlflow": {"uri": "sqlite:///x.db", "run_id": "r", "experiment_id": "1"},
    }
    (tmp_path / TRACKING_FILE).write_text(json.dumps(record))
    assert read_tracking(tmp_path) == record
