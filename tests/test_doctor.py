"""fgvctune doctor (doctor.py): planted label flips found in real digits, out-of-sample probabilities, its
lists taken by --exclude, K retrained runs, and bad input in one line."""

from __future__ import annotations

import csv
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fgvctune.cli import app
from fgvctune.data.dataset import load_dataset, shown_name
from fgvctune.doctor import _linear, diagnose

runner = CliRunner()


def flipped_copy(tree: Path, out: Path, share: float, seed: int = 0) -> set[str]:
    """`tree` as hard links in `out`, `share` of its training images in another class's folder; their ids."""
    images = sorted((tree / "train").glob("*/*"))
    classes = sorted(p.name for p in (tree / "train").iterdir())
    rng = random.Random(seed)
    chosen = set(rng.sample(images, round(share * len(images))))
    flips = set()
    for path in sorted(tree.glob("*/*/*")):
        label = path.parent.name
        if path in chosen:
            label = rng.choice([c for c in classes if c != label])
            flips.add(f"train/{label}/{path.name}")
        target = out / path.parent.parent.name / label / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    return flips


def rows(doctor_csv: Path) -> list[dict]:
    with open(doctor_csv, newline="") as f:
        return list(csv.DictReader(f))


def test_planted_label_flips_are_found(digits_run, digits, tmp_path, monkeypatch):
    """5% of the digits' training labels flipped: the label issues doctor finds are mostly those flips, and it
    finds most of them (floors below the benchmark's lowest seed: benchmarks/doctor.py, README). No process pool
    is forked on the way (cleanlab's would be, by default; a fork beside MindSpore's threads can hang)."""
    import multiprocessing

    def no_pool(*args, **kwargs):
        raise AssertionError("doctor forked a process pool")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    flips = flipped_copy(digits, tmp_path / "noisy", 0.05)
    found = diagnose(
        "folder", tmp_path / "noisy", tmp_path / "out", ["train"], run=digits_run, issues=("label",), folds=5
    )
    listed = rows(tmp_path / "out" / "doctor.csv")
    assert [r["id"] for r in listed] == [f.id for f in found.found]
    labels = {r["id"] for r in listed if r["issue"] == "label"}
    precision, recall = len(labels & flips) / len(labels), len(labels & flips) / len(flips)
    assert precision >= 0.6 and recall >= 0.6, (precision, recall, len(labels), len(flips))
    scores = [float(r["score"]) for r in listed]
    assert scores == sorted(scores)  # worst first
    # A flip found is mostly given its true class (its folder in the clean tree) as the suggested label.
    truth = {p.name: p.parent.name for p in (digits / "train").glob("*/*")}
    suggested = [truth[Path(r["id"]).name] == r["suggested"] for r in listed if r["id"] in flips]
    assert sum(suggested) >= 0.8 * len(suggested), suggested
    # ids are as every command names samples: --exclude doctor.csv leaves out exactly these.
    kept = load_dataset("folder", tmp_path / "noisy", ["train"], exclude=tmp_path / "out" / "doctor.csv")
    every = load_dataset("folder", tmp_path / "noisy", ["train"])
    ids = {shown_name(s.path, every.root) for s in every.splits["train"]}
    assert ids - {shown_name(s.path, kept.root) for s in kept.splits["train"]} == labels


def test_out_of_sample_probabilities_know_nothing_of_their_own_label():
    """Labels that are pure noise: a classifier fitted on all samples would recall them (300 features, 120
    samples), the K-fold probabilities stay near chance."""
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(120, 300)), rng.integers(0, 3, 120)
    probabilities = _linear(features, labels, folds=5, seed=0, progress=False)
    assert probabilities.shape == (120, 3) and np.allclose(probabilities.sum(axis=1), 1)
    assert (probabilities.argmax(axis=1) == labels).mean() < 0.5


def test_fewer_samples_of_a_class_than_folds_is_one_line(digits_run, few_digits, tmp_path):
    result = runner.invoke(app, ["doctor", str(digits_run), "-d", str(few_digits), "--split", "train", "-o", "x"])
    assert result.exit_code == 2, result.output
    assert "class '0' has 4 sample(s), fewer than --folds 5" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not Path("x").exists()


@pytest.mark.parametrize(
    "option, text, said",
    [
        ("--exclude", "train/7/0001.png\n", "'train/7/0001.png' is not a sample of"),
        ("--relabel", "id,label\ntrain/0/x.png,9\n", "'train/0/x.png' is not a sample of"),
        ("--issues", "labels", "--issues labels: choose among label, outlier, near_duplicate"),
        ("--folds", "1", "--folds must be at least 2"),
    ],
)
def test_doctors_bad_input_is_one_line(digits_run, few_digits, tmp_path, option, text, said):
    value = text
    if option in ("--exclude", "--relabel"):
        value = str(tmp_path / "list")
        Path(value).write_text(text)
    result = runner.invoke(
        app, ["doctor", str(digits_run), "-d", str(few_digits), "-o", str(tmp_path / "o"), option, value]
    )
    assert result.exit_code == 2, result.output
    assert said in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.e2e
def test_retrain_trains_a_run_per_fold_without_its_fold(digits_run, digits_400, tmp_path):
    """--retrain --folds 2: two runs, each trained without one half of the training split (its skipped.txt), the
    halves disjoint and together the whole split; every sample gets probabilities."""
    found = diagnose("folder", digits_400, tmp_path / "out", run=digits_run, folds=2, retrain=True, epochs=1)
    train_ids = {shown_name(s.path, found.dataset.root) for s in found.dataset.splits["train"]}
    halves = []
    for k in (1, 2):
        run = tmp_path / "out" / "folds" / f"fold-{k}"
        assert (run / "best.ckpt").is_file()
        skipped = (run / "skipped.txt").read_text().splitlines()
        halves.append({line.split(": left out by --exclude")[0] for line in skipped})
    root = str(found.dataset.root.resolve()) + "/"
    halves = [{h.replace(root, "") for h in half} for half in halves]
    assert halves[0] & halves[1] == set() and halves[0] | halves[1] == train_ids
    assert (tmp_path / "out" / "doctor.csv").is_file() and "2 fgvctune runs" in found.probabilities


def test_doctor_without_its_extra_says_which_to_install(monkeypatch, digits_run, tmp_path):
    monkeypatch.setitem(sys.modules, "cleanlab", None)  # as if not installed: importing it raises ImportError
    result = runner.invoke(app, ["doctor", str(digits_run), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and 'pip install "fgvctune[doctor]"' in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_a_checkpoint_reads_the_images_as_its_run_does(digits_run, few_digits, tmp_path):
    """--ckpt-path with --model and --image-resize: the same features, so the same findings, as naming its run."""
    flipped_copy(few_digits, tmp_path / "noisy", 0.25)
    by_run = diagnose("folder", tmp_path / "noisy", tmp_path / "a", folds=3, run=digits_run)
    by_file = diagnose(
        "folder", tmp_path / "noisy", tmp_path / "b", folds=3, ckpt_path=digits_run / "best.ckpt", image_resize=32
    )
    assert by_run.found and [(f.id, f.issue, f.score) for f in by_file.found] == [
        (f.id, f.issue, f.score) for f in by_run.found
    ]
