"""Adapter discovery through the `fgvctune.adapters` entry points, and adapter option parsing."""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from conftest import REPO, write_image
from fgvctune import registry
from fgvctune.cli import app
from fgvctune.errors import UsageError

PLUGIN_SOURCE = REPO / "examples" / "listfile-adapter"


def place_distribution(site, name: str, entry_points: str) -> None:
    """What `pip install` leaves behind for a distribution: a dist-info with its entry points."""
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[fgvctune.adapters]\n{entry_points}\n")


@pytest.fixture
def fresh_registry(monkeypatch):
    monkeypatch.setattr(registry, "_adapters", {})
    monkeypatch.setattr(registry, "_loaded", False)


@pytest.fixture
def plugin_installed(tmp_path, monkeypatch, fresh_registry):
    site = tmp_path / "site"
    place_distribution(site, "fgvctune-listfile", "listfile = fgvctune_listfile:ListFileAdapter")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(PLUGIN_SOURCE))
    return site


def test_builtins_come_through_entry_points(fresh_registry):
    sources = {info.name: info.source for info in registry.available()}
    assert {"aircraft", "csv", "folder"} <= set(sources)
    assert sources["aircraft"].startswith("fgvctune ")


def test_third_party_adapter_is_listed_and_converts(plugin_installed, tmp_path):
    data = tmp_path / "lists"
    for split, names in (("train", ["a1", "a2", "b1"]), ("val", ["a3", "b2"])):
        lines = []
        for n in names:
            write_image(data / "img" / f"{n}.png", (ord(n[0]) * 2, 20, 20))
            lines.append(f"{n}.png class {n[0]}\n")
        (data / f"{split}.txt").write_text("".join(lines))
    runner = CliRunner()
    listed = runner.invoke(app, ["adapters"])
    assert listed.exit_code == 0 and "listfile  (fgvctune-listfile 0.1.0)" in listed.output
    assert "--images text" in listed.output
    result = runner.invoke(
        app, ["convert", "-a", "listfile", "-d", str(data), "-o", str(tmp_path / "out"), "--images", "img"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out" / "train").iterdir()) == ["class a", "class b"]


def test_broken_plugin_warns_and_the_rest_works(tmp_path, monkeypatch, fresh_registry, caplog):
    site = tmp_path / "site"
    place_distribution(site, "broken-plugin", "broken = no_such_module_anywhere:Adapter")
    monkeypatch.syspath_prepend(str(site))
    with caplog.at_level(logging.WARNING, logger="fgvctune"):
        names = [info.name for info in registry.available()]
    assert "broken" not in names and "aircraft" in names
    assert "adapter plugin 'broken' from broken-plugin 0.1.0 failed to load" in caplog.text


def test_unknown_adapter_names_the_known_ones():
    with pytest.raises(UsageError, match="unknown adapter 'nope'; available: .*aircraft"):
        registry.get("nope")


def test_parse_options_types_and_errors():
    aircraft = registry.get("aircraft")
    assert registry.parse_options(aircraft, ["--level", "family", "--crop-box"]) == {
        "level": "family",
        "crop_box": True,
    }
    assert registry.parse_options(aircraft, ["--level=manufacturer", "--no-strip-banner"]) == {
        "level": "manufacturer",
        "strip_banner": False,
    }
    csv = registry.get("csv")
    assert registry.parse_options(csv, ["--val-fraction", "0.25", "--seed=3"]) == {"val_fraction": 0.25, "seed": 3}
    with pytest.raises(UsageError, match="--level must be one of variant, family, manufacturer"):
        registry.parse_options(aircraft, ["--level", "model"])
    with pytest.raises(UsageError, match="--seed needs an integer"):
        registry.parse_options(csv, ["--seed", "x"])
    with pytest.raises(UsageError, match="no such option --levl"):
        registry.parse_options(aircraft, ["--levl", "x"])
