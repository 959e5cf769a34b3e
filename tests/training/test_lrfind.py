"""training/lrfind.py: the sweep through `fgvctune lr-find`, and its suggestion."""

from __future__ import annotations

import pytest

from conftest import SAMPLE, fgvctune


def test_lr_find_sweeps_suggests_and_leaves_the_checkpoint_alone(tmp_path, base, cache):
    """The sweep writes its two files and prints a suggestion; the starting checkpoint is unchanged. --verbose
    shows MindCV's own messages (its warning about the weight decay filter)."""
    before = base.read_bytes()
    out = tmp_path / "sweep"
    found = fgvctune(
        *("lr-find", "-a", "aircraft", "-d", str(SAMPLE), "--ckpt-path", str(base), "--no-pretrained"),
        *("--cache-dir", cache, "--image-resize", "32", "--batch-size", "16", "--steps", "30", "-o", str(out)),
        "--verbose",
        log=tmp_path / "lr-find.log",
    )
    assert found.returncode == 0, found.stdout[-2000:]
    assert "You are using AUTO weight decay filter" in found.stdout
    assert base.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["lr-find.csv", "lr-find.png"]
    rows = [line.split(",") for line in (out / "lr-find.csv").read_text().splitlines()[1:]]
    rates = [float(r[1]) for r in rows]
    assert 10 < len(rows) <= 30 and all(b > a for a, b in zip(rates, rates[1:]))
    assert rates[0] == pytest.approx(1e-7)
    suggestion = float(found.stdout.split("suggested lr ")[1].split()[0])
    assert rates[0] <= suggestion <= rates[-1]


def test_suggestion_is_the_steepest_descent_before_the_lowest_loss():
    from fgvctune.training.lrfind import suggest

    loss = [2.0] * 8 + [2.0 - 0.05 * i for i in range(1, 6)] + [1.7, 1.2, 1.0, 0.95, 0.9, 1.5, 3, 6, 9, 12]
    rates = [10 ** (-6 + i / 4) for i in range(len(loss))]
    steepest, lowest = suggest(rates, loss)
    assert steepest == rates[14] and lowest == rates[17]
