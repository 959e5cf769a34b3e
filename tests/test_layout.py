"""The package's rooms and their one-way layers, checked on the code itself.

    config, errors, fileio            under everything
    data          models              each imports only the above and itself
    results                           + data, models
    training                          + results
    cli, comparison, tutorial         anything

A back-pointing import, even one inside a function (most of fgvctune's imports are, to keep start-up
fast), fails here rather than in review.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from conftest import REPO

PACKAGE = REPO / "fgvctune"
BASE = {"fgvctune", "fgvctune.config", "fgvctune.errors", "fgvctune.fileio"}
ROOMS = ("data", "models", "results", "training")
# What each room may import besides the base and itself.
BELOW = {"data": set(), "models": set(), "results": {"data", "models"}, "training": {"data", "models", "results"}}


def module_names() -> dict[str, object]:
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


MODULES = module_names()


def room(module: str) -> str:
    if module in BASE:
        return "base"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else "top"


def imports(path) -> set[str]:
    """Every fgvctune module the file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fgvctune":
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "fgvctune"}
    return found


def allowed(source: str, target: str) -> bool:
    have, want = room(source), room(target)
    if want in ("base", have) or have == "top":
        return True
    return have != "base" and want in BELOW[have]


def test_the_rooms_exist_and_say_what_they_own():
    for name in ROOMS:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "May import" in doc, f"fgvctune/{name}/__init__.py must say what the room owns and imports"


def test_every_import_points_down():
    wrong = [
        f"{source} imports {target} ({room(source)} -> {room(target)})"
        for source, path in MODULES.items()
        for target in sorted(imports(path))
        if not allowed(source, target)
    ]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_circles():
    graph = {source: {t for t in imports(path) if t in MODULES and t != "fgvctune"} for source, path in MODULES.items()}
    state: dict[str, int] = {}
    circles = []

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(trail[trail.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])
    assert not circles, "import circles:\n" + "\n".join(circles)


CHECK_ROOM = """
import importlib, json, pkgutil, sys
room = sys.argv[1]
package = importlib.import_module("fgvctune." + room)
for info in pkgutil.iter_modules(package.__path__):
    importlib.import_module(f"fgvctune.{room}.{info.name}")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "fgvctune")))
"""


@pytest.mark.parametrize("name", ROOMS)
def test_importing_a_room_loads_no_room_above_it(name):
    """In a fresh interpreter, every module of the room imported: nothing of a layer above is loaded."""
    done = subprocess.run(
        [sys.executable, "-c", CHECK_ROOM, name], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert any(m.startswith(f"fgvctune.{name}.") for m in loaded)
    above = [m for m in loaded if not allowed(f"fgvctune.{name}.x", m)]
    assert not above, f"importing fgvctune.{name} loads {above}"


def test_every_room_is_packaged():
    """A wheel holds only the packages pyproject.toml lists: a room left out would install without it."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    rooms = {".".join(p.parent.relative_to(REPO).parts) for p in PACKAGE.rglob("__init__.py")}
    assert rooms <= listed, f"not in pyproject.toml's packages: {sorted(rooms - listed)}"
