"""The run report: one self-contained page, loaded by a real browser (headless Chromium)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import run_cli
from fgvctune.cli import app

runner = CliRunner()


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
