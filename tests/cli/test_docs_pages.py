"""The README as a front door and the reference pages in docs/: the pages build in MkDocs' strict mode, the
README's links lead to files that exist, and CI runs the test command the README states."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO

README = REPO / "README.md"


def test_the_docs_build_in_strict_mode(tmp_path):
    """A broken link or anchor, or a page left out of mkdocs.yml's nav, is an error (.ci/run builds them too). Not
    --quiet: MkDocs then counts no warnings, and strict mode passes a broken anchor."""
    mkdocs = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # no banner about MkDocs 2 in the output
    built = subprocess.run(mkdocs, cwd=REPO, capture_output=True, text=True, env=env)
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()


def test_every_page_is_in_the_navigation():
    """MkDocs names pages left out of nav only as a warning of the build; here by name."""
    import yaml

    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    assert {next(iter(entry.values())) for entry in nav} == {p.name for p in (REPO / "docs").glob("*.md")}


def test_the_readmes_links_lead_to_files_that_exist():
    """Relative links, as GitHub follows them; the docs pages' own links are checked by the strict build."""
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert {"docs/datasets.md", "docs/configuration.md", "docs/report.png"} <= set(local)
    assert [link for link in local if not (REPO / link).exists()] == []


def test_the_readme_opens_with_the_two_commands_and_ci_runs_its_test_command():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200
    first = lines[: lines.index("```bash", 0) + 3]
    demo, tests = first[-2:]
    assert demo.endswith("&& .venv/bin/fgvctune demo") and tests.endswith("&& .venv/bin/python -m pytest")
    assert tests in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
