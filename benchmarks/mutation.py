"""Mutation score of the modules whose tests need no training: registry, config, the label map, image checks,
dataset checks, tree and the adapters. Each module is mutated (mutmut 2) in a copy of the project, against the tests
that cover it; the script prints the score per module and lists the mutants that survived.

    .venv/bin/pip install -e ".[mutation]"
    .venv/bin/python benchmarks/mutation.py [--module fgvctune/data/tree.py ...]

It takes the better part of an hour on two cores; it is a benchmark, not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASET_TESTS = ["tests/data/test_dataset.py", "tests/data/test_adapters.py", "tests/data/test_source.py"]
# Module -> the tests that cover it and need no training (the plug-in test installs and trains: left out).
TARGETS = {
    "fgvctune/data/registry.py": ["tests/data/test_registry.py", "-k", "not pip"],
    "fgvctune/config.py": ["tests/cli/test_config.py"],
    "fgvctune/data/labels.py": ["tests/data/test_dataset.py", "tests/data/test_tree.py"],
    "fgvctune/data/images.py": DATASET_TESTS,
    "fgvctune/data/dataset.py": DATASET_TESTS,
    "fgvctune/data/tree.py": ["tests/data/test_tree.py"],
    "adapters/aircraft.py": ["tests/data/test_adapters.py", "tests/data/test_tree.py"],
    "adapters/csv.py": ["tests/data/test_adapters.py", "tests/data/test_dataset.py"],
    "adapters/folder.py": ["tests/data/test_adapters.py", "tests/data/test_dataset.py"],
}


def copy_project(into: Path) -> Path:
    """The tracked files, with `fgvctune_adapters` pointing at adapters/ as the installed package does."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    (into / "fgvctune_adapters").symlink_to("adapters")
    return into


def mutate(project: Path, module: str, tests: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(project))  # the copy's modules come before the installed ones
    # mutmut 2 counts only exit code 1 as a killed mutant; a mutant that breaks collection (exit 2) would
    # count as surviving, so every failure is made a 1. `-n 0`: a few fast tests per mutant need no worker processes.
    pytest = f"{sys.executable} -m pytest -n 0 -x -q -p no:cacheprovider {shlex.join(tests)}"
    runner = f"sh -c {shlex.quote(pytest + ' || exit 1')}"
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--paths-to-mutate", module, "--runner", runner, "--no-progress"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    cache = project / ".mutmut-cache"
    with sqlite3.connect(cache) as db:
        outcomes = db.execute("SELECT id, status FROM Mutant").fetchall()
    survivors = []
    for mutant, status in outcomes:
        if status == "bad_survived":
            diff = subprocess.run(
                [sys.executable, "-m", "mutmut", "show", str(mutant)],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
            ).stdout
            survivors.append(_changed_lines(diff))
    cache.unlink()
    statuses = [status for _, status in outcomes]
    return {
        "mutants": len(statuses),
        "killed": sum(s in ("ok_killed", "ok_suspicious", "bad_timeout") for s in statuses),
        "survived": statuses.count("bad_survived"),
        "survivors": survivors,
        "seconds": time.monotonic() - started,
    }


def _changed_lines(diff: str) -> str:
    lines = [line for line in diff.splitlines() if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))]
    return " -> ".join(line[1:].strip() for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="a module of the list (default: all)")
    args = parser.parse_args()
    modules = args.module or list(TARGETS)
    print(describe())
    rows, survivors = [], []
    with tempfile.TemporaryDirectory() as tmp:
        project = copy_project(Path(tmp) / "project")
        for module in modules:
            result = mutate(project, module, TARGETS[module])
            total, killed = result["mutants"], result["killed"]
            rows.append(
                [
                    module,
                    total,
                    killed,
                    result["survived"],
                    f"{killed / total:.1%}" if total else "-",
                    f"{result['seconds'] / 60:.0f} min",
                ]
            )
            survivors += [(module, line) for line in result["survivors"]]
            print(table(["module", "mutants", "killed", "survived", "score", "time"], rows[-1:]), flush=True)
    total = sum(r[1] for r in rows)
    killed = sum(r[2] for r in rows)
    survived = sum(r[3] for r in rows)
    rows.append(["all", total, killed, survived, f"{killed / max(total, 1):.1%}", ""])
    print("\nmutmut 2 over the modules whose tests need no training (timeouts count as killed)")
    print(table(["module", "mutants", "killed", "survived", "score", "time"], rows))
    print("\nsurviving mutants:")
    for module, change in survivors:
        print(f"  {module}: {change}")


if __name__ == "__main__":
    main()
