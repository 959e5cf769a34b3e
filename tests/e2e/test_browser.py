"""The run report in a real browser (headless Chromium): its figures shown, its screenshot a picture, no
horizontal scrolling on a laptop's screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import FAST, browser, fgvctune, page_text, self_contained

pytestmark = pytest.mark.e2e


def screenshot(page: Path, path: Path, height: int = 900) -> Image.Image:
    browser(page, f"--screenshot={path}", f"--window-size=1366,{height}")
    assert path.is_file(), "chromium wrote no screenshot"
    return Image.open(path).convert("RGB")


def test_run_report_in_a_browser(digits_run, tmp_path):
    """`train` wrote the report; Chromium shows its figures, and its screenshot is a picture, not a blank page."""
    page = digits_run / "report.html"
    html = page.read_text(encoding="utf-8")
    self_contained(html)
    assert html.count("data:image/png;base64,") >= 3  # curves, confusion matrix, top losses
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
        "Top losses",
        "true:",
        "mean per-class",
    ):
        assert words in text, words
    result = (digits_run / "eval-val" / "eval.json").read_text()
    assert '"top_losses"' in result
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


def test_doctor_page_in_a_browser(digits_run, digits, tmp_path):
    """doctor.html in Chromium: every kind's section, a thumbnail per listed sample (up to the page's limit), the
    given and suggested labels, a real picture, no horizontal scrolling."""
    from fgvctune.doctor import diagnose
    from fgvctune.results.doctor_report import SHOWN

    found = diagnose("folder", digits, tmp_path / "out", run=digits_run)
    page = tmp_path / "out" / "doctor.html"
    html = page.read_text(encoding="utf-8")
    self_contained(html)
    shown = sum(min(found.count(kind), SHOWN) for kind in found.kinds)
    assert found.count("label") and html.count('src="data:image/png;base64,') == shown
    text = page_text(page)
    for words in ("Label issues", "Outliers", "Near duplicates", "given:", "suggested:", "overlapping classes"):
        assert words in text, words
    first = next(f for f in found.found if f.issue == "label")
    assert f"{first.split}: {first.id}" in text
    shot = screenshot(page, tmp_path / "shot.png")
    assert len(shot.getcolors(maxcolors=1_000_000)) > 500, "the screenshot is (nearly) blank"
    fits_a_laptop(page, tmp_path)
