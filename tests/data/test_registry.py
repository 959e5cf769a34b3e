"""Adapter discovery through the `fgvctune.adapters` entry points, and adapter option parsing."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import sys
from typing import Literal, Optional, get_type_hints

import pytest

from conftest import REPO, SAMPLE, fgvctune, write_image
from fgvctune.data import registry
from fgvctune.errors import UsageError
from fgvctune.results.runfiles import read_results

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


def test_builtins_come_through_entry_points(fresh_registry):
    sources = {info.name: info.source for info in registry.available()}
    assert {"aircraft", "csv", "folder"} <= set(sources)
    assert sources["aircraft"].startswith("fgvctune ")


@pytest.mark.e2e
def test_plugin_installed_by_pip_converts_and_trains(tmp_path, base, cache):
    """The example plug-in, installed by pip from its own pyproject.toml, is found through its entry
    point by a fresh fgvctune process, which converts and fine-tunes through it."""
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--target", str(site), str(PLUGIN_SOURCE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    assert list(site.glob("fgvctune_listfile-0.1.0.dist-info/entry_points.txt"))
    data = tmp_path / "lists"
    data.mkdir()
    for split, name in (("train", "trainval"), ("val", "test")):
        lines = (SAMPLE / "data" / f"images_variant_{name}.txt").read_text().splitlines()
        entries = [line.split(" ", 1) for line in lines]
        (data / f"{split}.txt").write_text("".join(f"{image}.jpg {label}\n" for image, label in entries))
    shutil.copytree(SAMPLE / "data" / "images", data / "pictures")
    images = "pictures"
    env = dict(os.environ, PYTHONPATH=str(site))
    listed = fgvctune("adapters", log=tmp_path / "adapters.log", env=env)
    assert "listfile  (fgvctune-listfile 0.1.0)" in listed.stdout and "--images text" in listed.stdout
    converted = fgvctune(
        "convert", "-a", "listfile", "-d", str(data), "-o", str(tmp_path / "tree"), "--mode", "copy",
        "--images", images, log=tmp_path / "convert.log", env=env,
    )  # fmt: skip
    assert converted.returncode == 0, converted.stdout
    assert len(list((tmp_path / "tree" / "train").glob("*/*.jpg"))) == 128
    assert (tmp_path / "tree" / "val" / "F_A-18").is_dir()
    trained = fgvctune(
        "train", "-a", "listfile", "-d", str(data), "--ckpt-path", str(base), "--no-pretrained", "--epoch-size", "1",
        "--image-resize", "32", "--batch-size", "16", "--cache-dir", cache, "-o", str(tmp_path / "run"),
        "--images", images, log=tmp_path / "train.log", env=env,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-2000:]
    assert "128 train / 64 val images" in trained.stdout and read_results(tmp_path / "run")


OLD_STYLE_PLUGIN = """
from dataclasses import dataclass
from pathlib import Path

from fgvctune.dataset import IMAGE_EXTENSIONS, Listing, Sample  # the import path of the flat layout


@dataclass
class OldStyleAdapter:
    data_dir: Path

    def read(self) -> Listing:
        root = Path(self.data_dir)
        samples = {}
        for split in ("train", "val"):
            files = [p for p in sorted((root / split).glob("*/*")) if p.suffix in IMAGE_EXTENSIONS]
            samples[split] = [Sample(p, p.parent.name, str(p)) for p in files]
        return Listing(root, samples)
"""


def test_plugin_written_for_the_flat_layout_still_reads(tmp_path, monkeypatch, fresh_registry):
    """A published plug-in that imports the adapter contract from `fgvctune.dataset` keeps working."""
    from fgvctune import load_dataset

    site = tmp_path / "site"
    place_distribution(site, "old-style-plugin", "oldstyle = old_style_plugin:OldStyleAdapter")
    (site / "old_style_plugin.py").write_text(OLD_STYLE_PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    data = tmp_path / "folders"
    for split, colour in (("train", (200, 0, 0)), ("val", (0, 200, 0))):
        for name in ("a", "b"):
            write_image(data / split / name / f"{name}.png", colour)
    dataset = load_dataset("oldstyle", data)
    assert dataset.labels.classes == ("a", "b")
    assert {split: len(samples) for split, samples in dataset.splits.items()} == {"train": 2, "val": 2}


def test_broken_plugin_warns_and_the_rest_works(tmp_path, monkeypatch, fresh_registry, caplog):
    site = tmp_path / "site"
    place_distribution(site, "broken-plugin", "broken = no_such_module_anywhere:Adapter")
    monkeypatch.syspath_prepend(str(site))
    with caplog.at_level(logging.WARNING, logger="fgvctune"):
        names = [info.name for info in registry.available()]
    assert "broken" not in names and "aircraft" in names
    # On fgvctune's logger, which `--verbose` and a library user's logging settings govern.
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "fgvctune",
            "WARNING",
            "adapter plugin 'broken' from broken-plugin 0.1.0 failed to load and is skipped: "
            "No module named 'no_such_module_anywhere'",
        )
    ]


def test_unknown_adapter_names_the_known_ones():
    known = ", ".join(info.name for info in registry.available())
    with pytest.raises(UsageError) as refused:
        registry.get("nope")
    assert (refused.value.message, refused.value.hint) == (
        f"unknown adapter 'nope'; available: {known}",
        "`fgvctune adapters` lists them with their options",
    )
    assert known.startswith("aircraft, csv, folder")


def test_with_no_adapter_at_all_the_message_says_none(monkeypatch):
    monkeypatch.setattr(registry, "_adapters", {})
    monkeypatch.setattr(registry, "_loaded", True)
    with pytest.raises(UsageError) as refused:
        registry.get("aircraft")
    assert refused.value.message == "unknown adapter 'aircraft'; available: none"


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
    assert registry.parse_options(csv, ["--val-fraction", "0.25", "--seed=3", "--file", "a.csv"]) == {
        "val_fraction": 0.25,
        "seed": 3,
        "file": "a.csv",
    }


@pytest.mark.parametrize(
    "adapter, tokens, message",
    [
        ("aircraft", ["--level", "model"], "--level must be one of variant, family, manufacturer, got 'model'"),
        ("aircraft", ["family"], "unexpected argument 'family'"),
        ("aircraft", ["--level"], "option --level needs a value"),
        (
            "aircraft",
            ["--levl", "x"],
            "no such option --levl for adapter 'aircraft'; its options: --level, --crop-box, --strip-banner",
        ),
        ("csv", ["--seed", "x"], "--seed needs an integer, got 'x'"),
        ("csv", ["--val-fraction=half"], "--val-fraction needs a number, got 'half'"),
        (
            "folder",
            ["--level", "x"],
            "no such option --level for adapter 'folder'; its options: --val-fraction, --seed",
        ),
    ],
)
def test_bad_adapter_options_are_named(adapter, tokens, message):
    with pytest.raises(UsageError) as refused:
        registry.parse_options(registry.get(adapter), tokens)
    assert refused.value.message == message


def test_parse_options_flags_with_values_and_the_list_of_options():
    aircraft = registry.get("aircraft")
    assert registry.parse_options(aircraft, ["--crop-box=false", "--strip-banner=yes", "--level", "family"]) == {
        "crop_box": False,
        "strip_banner": True,
        "level": "family",
    }
    assert registry.parse_options(aircraft, ["--crop-box=1", "--strip-banner=TRUE"]) == {
        "crop_box": True,
        "strip_banner": True,
    }
    with pytest.raises(UsageError, match="its options: --level, --crop-box, --strip-banner$"):
        registry.parse_options(aircraft, ["--no-level"])
    assert [registry.describe_type(get_type_hints(aircraft.cls)[f.name]) for f in aircraft.options()] == [
        "variant|family|manufacturer",
        "flag",
        "flag",
    ]
    csv = registry.get("csv")
    assert [registry.describe_type(get_type_hints(csv.cls)[f.name]) for f in csv.options()] == [
        "text",
        "text",
        "text",
        "text",
        "number",
        "integer",
    ]


@dataclasses.dataclass
class MayBeGiven:
    """Options that may be left out: the adapter picks."""

    data_dir: str = ""
    share: float | None = dataclasses.field(default=None, metadata={"help": "a share (default: the adapter's)"})
    count: Optional[int] = dataclasses.field(default=None, metadata={"help": "a count"})
    level: Optional[Literal["a", "b"]] = dataclasses.field(default=None, metadata={"help": "a level"})

    def read(self):
        return None


def test_an_option_that_may_be_not_given_is_parsed_and_shown_as_its_type(fresh_registry):
    """`float | None` and `Optional[int]` are typed as float and int; `fgvctune adapters` shows no None default."""
    from typer.testing import CliRunner

    from fgvctune.cli import app

    registry.available()
    registry.register(MayBeGiven, name="maybe")
    info = registry.get("maybe")
    assert registry.parse_options(info, ["--share", "0.25", "--count=3", "--level", "b"]) == {
        "share": 0.25,
        "count": 3,
        "level": "b",
    }
    with pytest.raises(UsageError, match="^--count needs an integer, got 'x'$"):
        registry.parse_options(info, ["--count", "x"])
    hints = get_type_hints(MayBeGiven)
    assert [registry.describe_type(hints[f.name]) for f in info.options()] == ["number", "integer", "a|b"]
    shown = CliRunner().invoke(app, ["adapters"]).output
    assert "    --share number: a share (default: the adapter's)\n" in shown
    assert "    --val-fraction number: share of the train split" in shown and "[default: None]" not in shown


def test_a_class_that_is_not_an_adapter_is_refused():
    class NotADataclass:
        def read(self):
            return None

    @dataclasses.dataclass
    class NoRead:
        data_dir: str = ""

    for cls in (NotADataclass, NoRead):
        with pytest.raises(TypeError) as refused:
            registry.register(cls, name="broken")
        assert str(refused.value) == f"{cls!r} is not an adapter: it needs to be a dataclass with a read() method"


@dataclasses.dataclass
class Lines:
    """Images listed in a text file, one path and label
    per line.

    A second paragraph that `fgvctune adapters` leaves out."""

    data_dir: str = ""

    def read(self):
        return None


def test_register_by_hand_names_and_sources(fresh_registry):
    """A class registered from Python: named by its `name`, else its class name in lower case; its
    registration stands on later lookups, and `summary` is its docstring's first paragraph, on one line."""
    named = dataclasses.make_dataclass(
        "Named", [("data_dir", str, "")], namespace={"name": "short", "read": Lines.read}
    )
    registry.available()  # the entry points are read
    registry.register(Lines)
    registry.register(named)
    registry.register(Lines, name="aircraft", source="my notebook")
    infos = {info.name: info for info in registry.available()}
    assert infos["lines"].cls is Lines and infos["short"].cls is named
    assert (infos["aircraft"].cls, infos["aircraft"].source) == (Lines, "my notebook")
    assert infos["lines"].source == "python"
    assert infos["lines"].summary == "Images listed in a text file, one path and label per line."
