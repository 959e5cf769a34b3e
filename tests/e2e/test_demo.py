"""The main job, as the README's first command runs it (at a smaller size)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO

pytestmark = pytest.mark.e2e


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fgvctune",
            "demo",
            "-o",
            str(out),
            "--epoch-size",
            "1",
            "--base-epochs",
            "2",
            "--strategy",
            "linear-probe",
            "--strategy",
            "full",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env={"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr
    for step in range(1, 8):
        assert f"== {step}. " in result.stdout
    table = (out / "compare" / "compare.md").read_text()
    assert "| linear-probe |" in table and "| full |" in table
    written = [line.strip() for line in result.stdout.split("== written:")[1].splitlines() if line.strip()]
    assert len(written) == 14 and all(Path(p).is_file() for p in written if not p.endswith("top-losses"))
    heatmaps = sorted((Path(p) for p in written if p.endswith("top-losses")), key=str)
    assert len(heatmaps) == 1 and len(list(heatmaps[0].glob("*.png"))) == 12  # the top losses' Grad-CAM pictures
    assert sum(p.endswith("report.html") for p in written) == 2
    for picture in [p for p in written if p.endswith(".png")]:
        with Image.open(picture) as im:
            assert im.format == "PNG" and min(im.size) > 100
