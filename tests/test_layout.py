"""The package's rooms and their one-way layers, checked on the code itself.

    config, errors, fileio, runtime        under everything (the base)
    data                                   the base alone
    kernels < models < weights             each the base and the rooms before it
    results                                + data, kernels, models, weights
    training                               + results
    cli, comparison, doctor, tuning,       anything
    tutorial
    adapters/                              the base, data, and each other

Inside a room, its modules are in an order (ORDER, from the bottom up): a module imports only those before it.
Each room's docstring names every module it holds; a module over 400 lines says why in its docstring. A
back-pointing import, even one inside a function (most of fgvctune's imports are, to keep start-up fast), fails
here rather than in review.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys

import pytest

from conftest import REPO

PACKAGE = REPO / "fgvctune"
ADAPTERS = REPO / "adapters"
BASE = {"fgvctune", "fgvctune.config", "fgvctune.errors", "fgvctune.fileio", "fgvctune.runtime"}
ROOMS = ("data", "kernels", "models", "weights", "results", "training")
# What each room may import besides the base and itself.
BELOW = {
    "data": set(),
    "kernels": set(),
    "models": {"kernels"},
    "weights": {"kernels", "models"},
    "results": {"data", "kernels", "models", "weights"},
    "training": {"data", "kernels", "models", "weights", "results"},
}
# Inside each room, its modules from the bottom up: each may import only the modules before it.
ORDER = {
    "data": [
        "containers",
        "contract",
        "splits",
        "labels",
        "images",
        "registry",
        "card",
        "hub",
        "edits",
        "dataset",
        "duplicates",
        "tree",
        "downscale",
        "source",
        "pipeline",
    ],
    "kernels": ["build", "cells", "swaps", "fold", "channels_last", "pooling", "fuse"],
    "models": ["network", "dropout", "torchcompat", "checkpoint", "factory"],
    "weights": ["torchfile", "maps", "convert", "loading"],
    "results": [
        "runfiles",
        "metrics",
        "page",
        "plots",
        "model",
        "scoring",
        "gradcam",
        "prediction",
        "evaluation",
        "export",
        "report",
        "comparison_report",
        "doctor_report",
    ],
    "training": [
        "balance",
        "distributed",
        "interrupts",
        "progress",
        "strategy",
        "step",
        "resume",
        "setup",
        "tracking",
        "trainer",
        "lrfind",
    ],
}
# Modules kept for an old import path (the README once showed it): each imports its target and nothing else,
# and no module of fgvctune imports them. The names each must keep are those the README showed.
ALIASES = {
    "fgvctune.models.weights": ("fgvctune.weights.convert", {"import_weights", "Reference"}),
    "fgvctune.dataset": ("fgvctune.data.dataset", {"Listing", "Problem", "Sample", "load_dataset"}),
}
LONG = 400
LONG_REASON = "Longer than 400 lines because"  # a module over LONG lines says why in its docstring


def module_names() -> dict[str, object]:
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


MODULES = module_names()
ADAPTER_MODULES = {f"fgvctune_adapters.{path.stem}": path for path in sorted(ADAPTERS.glob("*.py"))}


def room(module: str) -> str:
    if module in BASE:
        return "base"
    if module in ALIASES:
        return "alias"
    if module.split(".")[0] == "fgvctune_adapters":
        return "adapters"
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
    if have == "alias":
        return target == ALIASES[source][0]
    if want == "alias":
        return False  # the old paths are for users' code, never fgvctune's own
    if want == "base" or have == "top":
        return True
    if have == "adapters":
        return want == "data"
    if want == have:
        return below_in_room(source, target)
    return have != "base" and want in BELOW[have]


def below_in_room(source: str, target: str) -> bool:
    """Whether `target` comes before `source` in their room's ORDER (the room's package itself holds nothing)."""
    order = ORDER[room(source)]
    name, wanted = source.split(".")[2:3], target.split(".")[2:3]
    if not wanted:
        return True
    if not name or name[0] not in order or wanted[0] not in order:
        return False  # test_every_module_has_its_place_in_its_rooms_order names it
    return order.index(wanted[0]) < order.index(name[0])


def docstring(path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def test_the_rooms_exist_and_say_what_they_own():
    for name in ROOMS:
        doc = docstring(PACKAGE / name / "__init__.py")
        assert doc and "May import" in doc, f"fgvctune/{name}/__init__.py must say what the room owns and imports"


@pytest.mark.parametrize("name", ROOMS)
def test_each_rooms_docstring_names_every_module_it_holds(name):
    folder = PACKAGE / name
    held = [f"{p.name}" for p in sorted(folder.glob("*.py")) if p.name != "__init__.py"]
    held += [f"{p.name}/" for p in sorted(folder.iterdir()) if p.is_dir() and p.name != "__pycache__"]
    doc = docstring(folder / "__init__.py")
    unnamed = [entry for entry in held if not re.search(rf"(?<![\w/]){re.escape(entry)}", doc)]
    assert not unnamed, f"fgvctune/{name}/__init__.py's docstring does not name {unnamed}"


def test_every_module_has_its_place_in_its_rooms_order():
    for name in ROOMS:
        held = {m.split(".")[2] for m in MODULES if room(m) == name and m.count(".") == 2}
        order = ORDER[name]
        assert len(order) == len(set(order)), f"{name}'s order names a module twice"
        assert held == set(order), (
            f"fgvctune/{name}: not in ORDER: {sorted(held - set(order))}; no such module: {sorted(set(order) - held)}"
        )


def test_every_import_points_down():
    wrong = [
        f"{source} imports {target} ({room(source)} -> {room(target)})"
        for source, path in {**MODULES, **ADAPTER_MODULES}.items()
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


def test_no_module_is_over_400_lines_without_saying_why():
    long = {
        str(path.relative_to(REPO)): count
        for path in sorted([*PACKAGE.rglob("*.py"), *ADAPTERS.glob("*.py")])
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > LONG and LONG_REASON not in docstring(path)
    }
    assert not long, f'over {LONG} lines, with no "{LONG_REASON} ..." in the docstring: {long}'


@pytest.mark.parametrize("old", sorted(ALIASES))
def test_an_old_import_path_gives_the_same_objects(old):
    target, shown = ALIASES[old]
    module, new = importlib.import_module(old), importlib.import_module(target)
    kept = [name for name in dir(module) if not name.startswith("_")]
    assert shown <= set(kept)
    assert all(getattr(module, name) is getattr(new, name) for name in kept)


CHECK_ROOM = """
import importlib, json, pkgutil, sys
room, aliases = sys.argv[1], sys.argv[2:]
package = importlib.import_module("fgvctune." + room)
for info in pkgutil.iter_modules(package.__path__):
    if f"fgvctune.{room}.{info.name}" not in aliases:
        importlib.import_module(f"fgvctune.{room}.{info.name}")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "fgvctune")))
"""


@pytest.mark.parametrize("name", ROOMS)
def test_importing_a_room_loads_no_room_above_it(name):
    """In a fresh interpreter, every module of the room imported: nothing of a layer above is loaded."""
    done = subprocess.run(
        [sys.executable, "-c", CHECK_ROOM, name, *ALIASES], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert any(m.startswith(f"fgvctune.{name}.") for m in loaded)
    above = [m for m in loaded if room(m) not in ("base", name) and room(m) not in BELOW[name]]
    assert not above, f"importing fgvctune.{name} loads {above}"


def test_every_room_is_packaged():
    """A wheel holds only the packages pyproject.toml lists: a room left out would install without it."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    # [tool.setuptools]'s `packages = [...]`, read without tomllib (Python 3.11; fgvctune supports 3.9)
    listed = set(re.findall(r'"([\w.]+)"', re.search(r"(?ms)^\[tool\.setuptools\]$.*?^packages = \[(.*?)\]", text)[1]))
    rooms = {".".join(p.parent.relative_to(REPO).parts) for p in PACKAGE.rglob("__init__.py")}
    assert rooms <= listed, f"not in pyproject.toml's packages: {sorted(rooms - listed)}"
