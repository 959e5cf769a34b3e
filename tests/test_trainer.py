"""The training core end to end: real MindSpore/MindCV training on the bundled sample, tiny images."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO, SAMPLE, checkpoint, finetune_settings, train_command
from fgvctune.dataset import LabelMap
from fgvctune.errors import UsageError
from fgvctune.runfiles import read_results
from fgvctune.trainer import train
from fgvctune.tree import convert

CHANCE = 1 / 8  # eight variants in the sample


def finetune(folder, base, cache, **options):
    return train(output=folder, progress=False, **finetune_settings(base, cache, **options))


def test_full_finetune_writes_a_complete_run_folder(tmp_path, base, cache):
    folder = tmp_path / "full"
    run = finetune(folder, base, cache)
    assert sorted(p.name for p in folder.iterdir()) == [
        "best.ckpt",
        "config.yaml",
        "curves.png",
        "labels.csv",
        "last.ckpt",
        "results.txt",
    ]
    rows = read_results(folder)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5] == [r["epoch"] for r in run.rows]
    assert [r["val_top1"] for r in rows] == pytest.approx([r["val_top1"] for r in run.rows], abs=1e-4)
    assert max(r["val_top1"] for r in rows) > 3 * CHANCE
    assert all(r["val_top1"] <= r["val_top5"] <= 1 for r in rows)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["num_classes"] == 8 and config["train_split"] == "trainval" and config["val_split"] == "test"
    labels = LabelMap.read(folder / "labels.csv")
    assert "F/A-18" in labels.classes and len(labels) == 8
    last, best = checkpoint(folder / "last.ckpt"), checkpoint(folder / "best.ckpt")
    assert int(last["fgvctune_epoch"]) == 5 and any(k.startswith("moments.") for k in last)
    assert not any(k.startswith("moments.") for k in best)
    best_epoch = max(rows, key=lambda r: r["val_top1"])["epoch"]
    assert int(best["fgvctune_epoch"]) == best_epoch
    assert best["classifier.3.weight"].shape == (8, 1024)


@pytest.mark.parametrize(
    "strategy, frozen_prefixes",
    [
        ({"freeze": "7"}, [f"features.{i}." for i in range(7)]),
        ({"linear_probe": True}, ["features.", "classifier.0."]),
        ({"freeze": "all", "lr_mult": ["classifier.3=1.2"]}, ["features."]),
    ],
    ids=["freeze-7", "linear-probe", "freeze-all"],
)
def test_frozen_weights_and_batchnorm_statistics_stay_put(tmp_path, base, cache, strategy, frozen_prefixes):
    run = finetune(tmp_path / "run", base, cache, **strategy)
    before, after = checkpoint(base), checkpoint(tmp_path / "run" / "last.ckpt")
    frozen = [k for k in before if k.startswith(tuple(frozen_prefixes))]
    moving = [k for k in frozen if "moving_" in k]
    assert frozen and moving
    for name in frozen:
        assert before[name].tobytes() == after[name].tobytes(), name
    learned = [k for k in before if k.startswith("classifier.3.")] + (
        [k for k in before if k.startswith("features.12.")]
        if "freeze" in strategy and strategy["freeze"] == "7"
        else []
    )
    changed = [k for k in learned if k.startswith("classifier.3.") or before[k].tobytes() != after[k].tobytes()]
    assert changed == learned
    assert run.best["val_top1"] > 2 * CHANCE


def test_lr_multipliers_layer_decay_and_gradual_unfreezing(tmp_path, base, cache):
    run = finetune(
        tmp_path / "run", base, cache, lr_mult=["classifier=1.2", "features.13=1.05"], layer_decay=0.8, unfreeze_after=2
    )
    assert len(run.rows) == 5 and run.best["val_top1"] > 2 * CHANCE
    before, after = checkpoint(base), checkpoint(tmp_path / "run" / "last.ckpt")
    assert before["features.0.weight"].tobytes() != after["features.0.weight"].tobytes()  # unfrozen at epoch 3


def test_csv_adapter_online_reading(tmp_path, base, cache):
    rows = []
    for split in ("trainval", "test"):
        for line in (SAMPLE / "data" / f"images_variant_{split}.txt").read_text().splitlines():
            image, label = line.split(" ", 1)
            rows.append((f"data/images/{image}.jpg", label, "train" if split == "trainval" else "val"))
    table = tmp_path / "sample.csv"
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows([("filepath", "label", "split"), *rows])
    run = finetune(
        tmp_path / "run", base, cache, adapter="csv", adapter_options={"file": str(table)}, read="online", epoch_size=3
    )
    assert run.config.train_split == "train" and run.best["val_top1"] > 2 * CHANCE


def test_folder_adapter_in_pynative_mode(tmp_path, base, cache):
    tree = tmp_path / "tree"
    convert("aircraft", SAMPLE, tree)
    run = finetune(
        tmp_path / "run",
        base,
        cache,
        adapter="folder",
        data_dir=str(tree),
        mode="pynative",
        epoch_size=1,
        batch_size=32,
    )
    assert run.config.train_split == "trainval" and len(run.rows) == 1
    assert LabelMap.read(tmp_path / "run" / "labels.csv").classes[5] == "F_A-18"  # the tree's folder names


def test_resume_after_kill_continues_at_the_right_epoch(tmp_path, base, cache):
    folder = tmp_path / "run"
    command = train_command(folder, base, cache, 6)
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while len(read_results(folder)) < 2 and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = read_results(folder)
    assert 2 <= len(done) < 6, "the run should be killed part-way"
    resumed = subprocess.run(
        [sys.executable, "-m", "fgvctune", "train", "--resume", str(folder)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {folder} after epoch" in resumed.stdout
    rows = read_results(folder)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    first = int(resumed.stdout.split("after epoch ")[1].split()[0])
    assert first >= len(done) - 1 and rows[:first] == done[:first]
    assert "Exception ignored" not in resumed.stderr and "Traceback" not in resumed.stderr


def test_inconsistent_settings_are_refused(tmp_path, base, cache):
    with pytest.raises(UsageError, match="num_classes is 5 but the data has 8 classes"):
        finetune(tmp_path / "a", base, cache, num_classes=5)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.txt").write_text("epoch\n")
    with pytest.raises(UsageError, match="already holds a run"):
        finetune(tmp_path / "b", base, cache)
    with pytest.raises(UsageError, match="batch_size 200 is larger than the 128 training images"):
        finetune(tmp_path / "c", base, cache, batch_size=200)


def test_same_seed_same_run(tmp_path, base, cache):
    first = finetune(tmp_path / "a", base, cache, epoch_size=1, seed=7)
    second = finetune(tmp_path / "b", base, cache, epoch_size=1, seed=7)
    keys = ("train_loss", "train_acc", "val_top1", "val_top5")
    assert [first.rows[0][k] for k in keys] == [second.rows[0][k] for k in keys]
    assert (
        checkpoint(tmp_path / "a" / "last.ckpt")["classifier.3.weight"].tobytes()
        == checkpoint(tmp_path / "b" / "last.ckpt")["classifier.3.weight"].tobytes()
    )


def test_ctrl_c_stops_cleanly_with_finished_epochs_saved(tmp_path, base, cache):
    folder = tmp_path / "run"
    command = train_command(folder, base, cache, 30)
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not read_results(folder) and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert "interrupted;" in last and f"--resume {folder}" in last and "Traceback" not in err
    saved = int(checkpoint(folder / "last.ckpt")["fgvctune_epoch"])
    assert saved == len(read_results(folder)) >= 1
