"""The run report: one self-contained page, loaded by a real browser (headless Chromium)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import FAST, browser, fgvctune, page_text, run_cli, self_contained
from fgvctune.cli import app

runner = CliRunner()


def screenshot(page: Path, path: Path, height: int = 900) -> Image.Image:
    browser(page, f"--screenshot={path}", f"--window-size=1366,{height}")
    assert path.is_file(), "chromium wrote no screenshot"
    return Image.open(path).convert("RGB")


def test_run_report_in_a_browser(digits_run, tmp_path):
    """`train` wrote the report; Chromium shows its figures, and its screenshot is a picture, not a blank page."""
    page = digits_run / "report.html"
    html = page.read_text(encoding="utf-8")
    self_contained(html)
    assert html.count("data:image/png;base64,") >= 3  # curves, confusion matrix, mistakes
    text = page_text(page)
    for words in (
        "run: digits",
        "best val top-1",
        "full fine-tuning: every block trains",
        "features.0",
        "train on train , evaluate on val",
        "imbalance",
        "No files were left out",
        "Per-class accuracy, worst first",
        "Confusion matrix",
        "Worst mistakes",
        "true:",
        "mean per-class",
    ):
        assert words in text, words
    result = (digits_run / "eval-val" / "eval.json").read_text()
    assert '"mistakes"' in result
    shot = screenshot(page, tmp_path / "shot.png")
    assert shot.size == (1366, 900)
    colours = shot.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 500, "the screenshot is (nearly) blank"
    fits_a_laptop(page, tmp_path)


def fits_a_laptop(page: Path, tmp_path: Path) -> None:
    """No horizontal scrolling at 1366 pixels: in a window taller than the page, the bottom rows show the
    page's background alone, not a scroll bar."""
    tall = screenshot(page, tmp_path / "tall.png", height=5000)
    bottom = tall.crop((0, 5000 - 16, 1366, 5000))
    assert len(bottom.getcolors(maxcolors=1_000_000)) == 1, "the page is wider than a laptop's screen"


def test_report_command_remakes_the_page_from_the_files(digits_run, tmp_path):
    """Re-made from the run folder's files, without MindSpore: the same page (but for its date) from the same
    files, a changed page from a changed file."""
    from fgvctune.results.runfiles import read_results, results_text

    run = Path(shutil.copytree(digits_run, tmp_path / digits_run.name))  # copy2: eval.json stays newer than best.ckpt
    before = (run / "report.html").read_text(encoding="utf-8")
    result = run_cli("report", str(run))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("no mindspore")
    after = (run / "report.html").read_text(encoding="utf-8")
    made = re.compile(r"made by fgvctune on [0-9: -]+")
    assert made.sub("", before) == made.sub("", after)
    rows = read_results(run)
    rows[0]["val_top1"] = 0.9999  # the first epoch now the best
    (run / "results.txt").write_text(results_text(rows), encoding="utf-8")
    result = run_cli("report", str(run))
    assert result.returncode == 0 and result.stdout.strip().endswith("no mindspore"), result.stderr
    assert "Best val top-1 100.0% at epoch 1" in (run / "report.html").read_text(encoding="utf-8")
    missing = run_cli("report", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "is not a run folder" in missing.stderr


def test_report_evaluates_again_when_best_ckpt_is_newer_than_its_evaluation(digits_run, tmp_path):
    """An eval.json newer than best.ckpt is shown as it is; once best.ckpt is newer, `report` evaluates it again."""
    run = Path(shutil.copytree(digits_run, tmp_path / digits_run.name))
    path = run / "eval-val" / "eval.json"
    real = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**real, "top1": 0.0123}), encoding="utf-8")
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "top-1 <b>1.23%</b>" in (run / "report.html").read_text(encoding="utf-8")
    written = (run / "best.ckpt").stat().st_mtime
    os.utime(path, (written - 60, written - 60))  # evaluated before best.ckpt was written
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    again = json.loads(path.read_text(encoding="utf-8"))
    assert again["top1"] == pytest.approx(real["top1"]) and again["checkpoint"] == str(run / "best.ckpt")
    assert f"top-1 <b>{real['top1']:.2%}</b>" in (run / "report.html").read_text(encoding="utf-8")


def test_report_shows_duplicates_and_left_out_files(tmp_path, cache):
    """A run on data with planted copies: the report lists the pairs and the files --dedupe left out."""
    from conftest import plant_copies

    plant_copies(tmp_path / "planted")
    run = tmp_path / "run"
    result = fgvctune(
        *("train", "-a", "aircraft", "-d", str(tmp_path / "planted"), "--no-pretrained", "--epoch-size", "1"),
        *("--image-resize", str(FAST["image_resize"]), "--cache-dir", cache, "--dedupe", "-o", str(run)),
        log=tmp_path / "train.log",
    )
    assert result.returncode == 0, result.stdout
    text = page_text(run / "report.html")
    assert "Duplicates: 4 pair(s) across training and evaluation, 1 inside a split" in text
    assert "their training copies were left out (--dedupe)" in text
    assert "Left out of this run: 4 (skipped.txt)" in text and "3000004.jpg" in text
    fits_a_laptop(run / "report.html", tmp_path)


def test_curves_count_whole_epochs(tmp_path):
    """Two epochs: matplotlib alone would tick 1.0, 1.2, ... 2.0; epochs are whole numbers."""
    from fgvctune.results.plots import curves_figure
    from fgvctune.results.runfiles import results_text

    (tmp_path / "labels.csv").write_text("id,name,folder\n0,a,a\n1,b,b\n")
    row = dict(train_loss=1.0, train_acc=0.5, val_top1=0.5, val_top5=1.0, lr=0.1, seconds=1.0)
    (tmp_path / "results.txt").write_text(results_text([{**row, "epoch": 1}, {**row, "epoch": 2}]))
    figure = curves_figure(tmp_path)
    figure.canvas.draw()
    for axes in figure.axes:
        low, high = axes.get_xlim()
        ticks = [t for t in axes.get_xticks() if low <= t <= high]
        assert ticks == [1, 2], ticks
    (tmp_path / "results.txt").write_text(results_text([{**row, "epoch": 1}]))
    figure = curves_figure(tmp_path)
    figure.canvas.draw()
    for axes in figure.axes:
        low, high = axes.get_xlim()
        assert [t for t in axes.get_xticks() if low <= t <= high] == [1]
