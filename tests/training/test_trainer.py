"""The training core end to end: real MindSpore/MindCV training on the bundled sample and on real digits."""

from __future__ import annotations

import csv
import re
import shutil
import signal
import sys

import pytest
import yaml

from conftest import (
    DIGITS,
    FAST,
    SAMPLE,
    busy_core,
    checkpoint,
    fgvctune,
    finetune_settings,
    plant_copies,
    running,
    wait_for,
)
from fgvctune.config import resolve
from fgvctune.data.dataset import LabelMap
from fgvctune.data.tree import convert
from fgvctune.errors import DataError, UsageError
from fgvctune.models.dropout import is_counter
from fgvctune.results.runfiles import read_results
from fgvctune.training.trainer import Trainer, train

CHANCE = 1 / 8  # eight variants in the sample


def finetune(folder, base, cache, **options):
    return train(output=folder, progress=False, **finetune_settings(base, cache, **options))


def weights_of(path) -> dict:
    """A checkpoint's network entries: weights and BatchNorm statistics, no bookkeeping."""
    return {k: v for k, v in checkpoint(path).items() if k != "fgvctune_epoch" and not is_counter(k)}


def finetune_with_snapshots(folder, base, cache, **options) -> list[dict]:
    """Fine-tune, keeping the network after every epoch: [after epoch 1, after epoch 2, ...]."""
    snapshots = []

    def log(message: str) -> None:
        if message.startswith("epoch "):  # logged once the epoch's files are written
            network = weights_of(folder / "best.ckpt")  # best.ckpt holds the network's entries only
            last = checkpoint(folder / "last.ckpt")
            snapshots.append({name: last[name] for name in network})

    train(output=folder, progress=False, log=log, **finetune_settings(base, cache, **options))
    return snapshots


def changed(before: dict, after: dict) -> set[str]:
    return {k for k in after if k in before and before[k].tobytes() != after[k].tobytes()}


@pytest.mark.e2e
def test_full_finetune_writes_a_complete_run_folder(tmp_path, base, cache):
    folder = tmp_path / "full"
    snapshots = finetune_with_snapshots(folder, base, cache)
    assert len(snapshots) == 5
    assert changed(snapshots[-2], snapshots[-1]) == set(snapshots[-1])  # every weight and statistic trains
    assert sorted(p.name for p in folder.iterdir()) == [
        "best.ckpt",
        "config.yaml",
        "counts.csv",
        "curves.png",
        "eval-test",
        "labels.csv",
        "last.ckpt",
        "report.html",
        "results.txt",
        "strategy.csv",
    ]
    rows = read_results(folder)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert max(r["val_top1"] for r in rows) > 2 * CHANCE
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


def test_learns_real_images(digits_run):
    """Handwritten digits from scratch: well above the 10% of chance after three epochs."""
    rows = read_results(digits_run)
    assert rows[-1]["val_top1"] > 0.6 and rows[-1]["train_loss"] < rows[0]["train_loss"]


FROZEN_BLOCKS = tuple(f"features.{i}." for i in range(7))


def test_dropout_drops_at_every_training_step(digits_run):
    """MobileNetV3 keeps its dropout in a SequentialCell, which runs its own list of cells: the seeded dropout
    swapped in there must be the one that runs, once per step (a swap that missed that list left the model
    without any dropout, and it learnt worse)."""
    saved = checkpoint(digits_run / "last.ckpt")
    counters = {k: int(v) for k, v in saved.items() if k.endswith("dropout_calls")}
    assert counters == {"classifier.2.dropout_calls": int(saved["global_step"][0])}
    assert int(saved["global_step"][0]) > 0


@pytest.mark.e2e
@pytest.mark.parametrize(
    "strategy, trains",
    [
        ({"linear_probe": True}, lambda name: name.startswith("classifier.3.")),
        ({"freeze": "all"}, lambda name: name.startswith(("classifier.0.", "classifier.3."))),
        ({"freeze": "7"}, lambda name: not name.startswith(FROZEN_BLOCKS)),
    ],
    ids=["linear-probe", "freeze-all", "freeze-7"],
)
def test_each_strategy_moves_exactly_its_parameters(tmp_path, base, cache, strategy, trains):
    """Between two epochs every trained weight and BatchNorm statistic changes and every frozen one is
    byte-identical; frozen ones are also still the starting checkpoint's."""
    first, second = finetune_with_snapshots(tmp_path / "run", base, cache, epoch_size=2, **strategy)
    expected = {name for name in first if trains(name)}
    assert changed(first, second) == expected
    start = weights_of(base)
    frozen = set(first) - expected
    assert not changed(start, first) & frozen
    assert any("moving_" in name for name in frozen)


@pytest.mark.e2e
def test_gradual_unfreezing_trains_the_head_alone_first(tmp_path, base, cache):
    """--unfreeze-after 2: the feature blocks are the starting checkpoint's, byte for byte, through
    epoch 2 while the head learns; in epoch 3 they move too."""
    snapshots = finetune_with_snapshots(tmp_path / "run", base, cache, epoch_size=3, unfreeze_after=2)
    start = weights_of(base)
    features = {name for name in start if name.startswith("features.")}
    for epoch in (0, 1):
        assert not changed(start, snapshots[epoch]) & features, f"features moved in epoch {epoch + 1}"
    head = {"classifier.0.weight", "classifier.3.weight"}
    assert head <= changed(snapshots[0], snapshots[1])
    assert features <= changed(snapshots[1], snapshots[2])


@pytest.mark.e2e
def test_same_seed_same_run_on_a_busy_machine(tmp_path, digits_400, cache):
    """The same command twice, with the default two pipeline workers, every random augmentation on
    and another process taking a core: identical results, labels and checkpoints, byte for byte."""
    command = [
        "train",
        *("-a", "folder", "-d", str(digits_400), "--no-pretrained", "--cache-dir", cache),
        *("--image-resize", "32", "--batch-size", "32", "--epoch-size", "1", "--seed", "5"),
        *("--auto-augment", "randaug-m7-mstd0.5", "--re-prob", "0.25", "--mixup", "0.2", "--color-jitter", "0.3"),
    ]
    with busy_core():
        for name in ("a", "b"):
            result = fgvctune(*command, "-o", str(tmp_path / name), log=tmp_path / f"{name}.log")
            assert result.returncode == 0, result.stdout[-2000:]
    a, b = tmp_path / "a", tmp_path / "b"
    assert [_without_seconds(r) for r in read_results(a)] == [_without_seconds(r) for r in read_results(b)]
    for name in ("labels.csv", "best.ckpt", "last.ckpt"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _without_seconds(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "seconds"}


RESUMED = {
    # the phase change of gradual unfreezing, Adam's state, random augmentation, the EMA of the weights
    "unfreezing": (
        *("--opt", "adamw", "--lr", "0.002", "--unfreeze-after", "1", "--auto-augment", "randaug-m7-mstd0.5"),
        *("--mixup", "0.2", "--re-prob", "0.25", "--ema", "--ema-decay", "0.9", "--ema-warmup", "0"),
    ),
    # class-balanced draws, gradients accumulated over two batches and clipped, a dynamic loss scale
    "balanced": (
        *("--sampler", "balanced", "--class-weights", "balanced", "--gradient-accumulation-steps", "2"),
        *("--batch-size", "8", "--clip-grad", "--clip-value", "1", "--loss-scale-type", "dynamic"),
        *("--ema", "--ema-decay", "0.9", "--ema-warmup", "0"),
    ),
    # a ResNet's frozen blocks folded and fused (kernels/fuse.py), made again from the weights resumed
    "fused": ("--model", "resnet18", "--freeze", "3"),
}


@pytest.mark.e2e
@pytest.mark.parametrize("features", RESUMED)
def test_resume_after_kill_ends_as_the_uninterrupted_run(tmp_path, base, cache, features):
    """kill -9 after epoch 1, resume: the same results rows and the same last.ckpt bytes as a run that was
    never interrupted."""
    start = [] if "--model" in RESUMED[features] else ["--ckpt-path", str(base)]  # base: the default model's
    settings = [
        *("train", "-a", "aircraft", "-d", str(SAMPLE), *start, "--no-pretrained"),
        *("--cache-dir", cache, "--image-resize", "32", "--batch-size", "16", "--epoch-size", "3"),
        *RESUMED[features],
    ]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert fgvctune(*settings, "-o", str(whole), log=tmp_path / "whole.log").returncode == 0
    with running([sys.executable, "-m", "fgvctune", *settings, "-o", str(broken)], tmp_path / "broken.log") as process:
        wait_for((broken / "last.ckpt").is_file, process)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finished = int(checkpoint(broken / "last.ckpt")["fgvctune_epoch"])  # the kill may land mid-epoch
    assert 1 <= finished < 3, "the run should be killed part-way"
    resumed = fgvctune("train", "--resume", str(broken), log=tmp_path / "resumed.log")
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert f"resuming {broken} after epoch {finished}" in resumed.stdout
    assert "Traceback" not in resumed.stdout and "Exception ignored" not in resumed.stdout
    assert [_without_seconds(r) for r in read_results(broken)] == [_without_seconds(r) for r in read_results(whole)]
    for name in ("last.ckpt", "best.ckpt"):
        assert (broken / name).read_bytes() == (whole / name).read_bytes(), name


@pytest.mark.e2e
def test_ctrl_c_stops_cleanly_with_finished_epochs_saved(tmp_path, base, cache):
    from conftest import train_command

    folder = tmp_path / "run"
    with running(train_command(folder, base, cache, 30), tmp_path / "run.log") as process:
        wait_for(lambda: read_results(folder), process)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=300)
    output = (tmp_path / "run.log").read_text()
    assert process.returncode == 130, output[-2000:]
    last = output.strip().splitlines()[-1]
    assert "interrupted;" in last and f"--resume {folder}" in last and "Traceback" not in output
    saved = int(checkpoint(folder / "last.ckpt")["fgvctune_epoch"])
    assert saved == len(read_results(folder)) >= 1


@pytest.mark.e2e
def test_chosen_splits_and_early_stop(tmp_path, base, cache):
    """Train on `train`, evaluate on `val`; with a learning rate too small to change the weights, val top-1 stops
    improving at once, so --early-stop 2 ends the run two epochs after its best, before epoch 6."""
    lines = []
    run = train(
        output=tmp_path / "run",
        progress=False,
        log=lines.append,
        **finetune_settings(
            base, cache, train_split="train", val_split="val", lr=1e-9, scheduler="constant", early_stop=2, epoch_size=6
        ),
    )
    assert (run.config.train_split, run.config.val_split) == ("train", "val")
    assert "64 train / 64 val images" in lines[0]
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["val_split"] == "val"
    # BatchNorm's moving statistics still move, so val top-1 may improve once early on; then 2 epochs without a
    # better one end the run before its 6 epochs.
    tops = [r["val_top1"] for r in run.rows]
    assert len(tops) < 6 and max(tops[-2:]) <= max(tops[:-2]) and tops.index(max(tops)) == len(tops) - 3
    assert "early stop: no better val top-1 for 2 epochs" in lines


@pytest.mark.e2e
def test_skip_bad_leaves_a_broken_image_out_of_training(tmp_path, base, cache):
    data = tmp_path / "sample"
    shutil.copytree(SAMPLE, data)
    first = (data / "data" / "images_variant_trainval.txt").read_text().splitlines()[0]
    victim = data / "data" / "images" / f"{first.split()[0]}.jpg"
    victim.write_bytes(victim.read_bytes()[:300])
    options = dict(data_dir=str(data), epoch_size=1, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError, match=rf"images_variant_trainval.txt:1: truncated image .*{victim.name}"):
        finetune(tmp_path / "refused", base, cache, **options)
    lines = []
    train(
        output=tmp_path / "run",
        progress=False,
        log=lines.append,
        **finetune_settings(base, cache, **options, skip_bad=True),
    )
    assert "127 trainval / 64 test images" in lines[0]
    assert victim.name in (tmp_path / "run" / "skipped.txt").read_text()


def test_without_dedupe_train_warns_how_many_evaluation_images_have_a_training_copy(tmp_path):
    """Copies of test images planted in trainval: before training (set_up, what `train` does first), the warning
    counts them, duplicates.csv lists the pairs, and without --dedupe every image stays in training."""
    from fgvctune.training.trainer import Trainer

    planted = plant_copies(tmp_path / "planted")
    settings = dict(adapter="aircraft", data_dir=str(tmp_path / "planted"), pretrained=False, **FAST)
    config = resolve(None, cache_dir=str(tmp_path / "cache"), **settings)
    lines = []
    Trainer(config, tmp_path / "run", resume=False, verbose=False, progress=False, log=lines.append).set_up()
    warnings = [re.match(r"warning: (\d+) test image\(s\) have a copy in trainval", line) for line in lines]
    counts = [int(found.group(1)) for found in warnings if found]
    assert counts == [len(set(planted["across"].values()))], lines
    assert "--dedupe" in next(line for line, found in zip(lines, warnings) if found)
    with open(tmp_path / "run" / "duplicates.csv", newline="") as f:
        across = {(row["first"], row["second"]) for row in csv.DictReader(f) if row["where"] == "across"}
    assert across == {(str(copy), str(source)) for copy, source in planted["across"].items()}
    assert any("133 trainval / 64 test images" in line for line in lines), lines  # 128 + 5 planted: none left out
    assert not (tmp_path / "run" / "skipped.txt").exists()


@pytest.mark.e2e
def test_csv_online_in_memory_with_awkward_image_modes(tmp_path, base, cache):
    """CSV rows with their own split column name, read online into memory; the images are CMYK and
    greyscale JPEGs, GIFs, WebPs and RGBA PNGs (the last three re-encoded: MindSpore decodes neither
    GIF nor WebP, and would keep the colours under transparent pixels)."""
    from PIL import Image

    modes = [("CMYK", ".jpg"), ("L", ".jpg"), ("P", ".gif"), ("RGB", ".webp"), ("RGBA", ".png")]
    rows = []
    for split, subset in (("trainval", "fit"), ("test", "holdout")):
        for i, line in enumerate((SAMPLE / "data" / f"images_variant_{split}.txt").read_text().splitlines()):
            image, label = line.split(" ", 1)
            mode, suffix = modes[i % len(modes)]
            target = tmp_path / "data" / f"{image}{suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(SAMPLE / "data" / "images" / f"{image}.jpg") as im:
                im.convert(mode).save(target)
            rows.append((target.name, label, subset))
    with open(tmp_path / "data" / "table.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "label", "subset"), *rows])
    run = finetune(
        tmp_path / "run",
        base,
        cache,
        adapter="csv",
        data_dir=str(tmp_path / "data"),
        adapter_options={"split_column": "subset"},
        train_split="fit",
        val_split="holdout",
        read="online",
        in_memory=True,
        epoch_size=3,
    )
    assert (run.config.train_split, run.config.val_split) == ("fit", "holdout")
    assert run.best["val_top1"] > 2 * CHANCE


@pytest.mark.e2e
def test_folder_adapter_in_pynative_mode(tmp_path, base, cache):
    """--mode pynative runs eagerly: neither the train step nor the network is ever compiled into a graph (in
    graph mode both are, at their first call)."""
    import mindspore as ms

    tree = tmp_path / "tree"
    convert("aircraft", SAMPLE, tree)
    settings = finetune_settings(base, cache, adapter="folder", data_dir=str(tree), mode="pynative", epoch_size=1)
    config = resolve(**{**settings, "batch_size": 32})
    trainer = Trainer(config, tmp_path / "run", resume=False, verbose=False, progress=False, log=print)
    run = trainer.run()
    assert run.config.train_split == "trainval" and len(run.rows) == 1
    assert not trainer.step.compile_cache and not trainer.network.compile_cache
    assert ms.get_context("mode") == ms.PYNATIVE_MODE
    assert LabelMap.read(tmp_path / "run" / "labels.csv").classes[5] == "F_A-18"  # the tree's folder names


@pytest.mark.e2e
def test_every_augmentation_trains_on_real_images(tmp_path, digits, cache):
    """Mixup and CutMix turn labels into soft rows (the one-hot path of the loop); with RandAugment,
    random erasing, colour jitter and flips on too, the digits are still learnt."""
    run = train(
        data_dir=str(digits),
        output=tmp_path / "run",
        progress=False,
        cache_dir=cache,
        opt="adamw",
        lr=0.005,
        epoch_size=3,
        **{**DIGITS, "hflip": 0.2},
        vflip=0.1,
        auto_augment="randaug-m5-mstd0.5",
        re_prob=0.2,
        color_jitter=0.3,
        mixup=0.2,
        cutmix=0.5,
        cutmix_prob=0.5,
    )
    assert run.best["val_top1"] > 0.4 and all(0 <= r["train_acc"] <= 1 for r in run.rows)


def test_inconsistent_settings_are_refused(tmp_path, base, cache):
    with pytest.raises(UsageError, match="num_classes is 5 but the data has 8 classes"):
        finetune(tmp_path / "a", base, cache, num_classes=5)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.txt").write_text("epoch\n")
    with pytest.raises(UsageError, match="already holds a run"):
        finetune(tmp_path / "b", base, cache)
    with pytest.raises(UsageError, match="batch_size 200 is larger than the 128 training images"):
        finetune(tmp_path / "c", base, cache, batch_size=200)


def test_rows_in_memory_are_the_rows_results_txt_gives_back(tmp_path):
    """A resumed run reads its earlier rows from results.txt; the uninterrupted run decided "better"
    on its rows in memory. Both must be the same numbers, or the two pick different best epochs."""
    from fgvctune.results.runfiles import RESULTS_FILE, as_written, results_text

    rows = [
        {"epoch": 1, "train_loss": 2 / 3, "train_acc": 0.28125, "val_top1": 9 / 32, "val_top5": 1.0, "lr": 1e-3 / 7},
        {"epoch": 2, "train_loss": 0.1, "train_acc": 0.5, "val_top1": 0.28125, "val_top5": 0.99999, "lr": 0.002},
    ]
    rows = [{**r, "seconds": 1.25, "images_per_second": 3.0} for r in rows]
    (tmp_path / RESULTS_FILE).write_text(results_text(rows))
    written = [as_written(r) for r in rows]
    assert [{k: r[k] for k in read} for r, read in zip(written, read_results(tmp_path))] == read_results(tmp_path)
    assert written[0]["val_top1"] == read_results(tmp_path)[0]["val_top1"] != rows[0]["val_top1"]


@pytest.mark.e2e
def test_a_second_train_in_a_running_runs_folder_stops_at_once_naming_it(tmp_path, cache):
    """Two real `fgvctune train` processes on one --output: the second stops at once with one line naming the first
    (its pid), touching nothing; the first finishes as if alone, and its lock file goes with it."""
    from fgvctune.results.runfiles import LOCK_FILE

    folder = tmp_path / "run"
    command = [
        *(sys.executable, "-m", "fgvctune", "train", "-a", "aircraft", "-d", str(SAMPLE), "--no-pretrained"),
        *("--epoch-size", "1", "--cache-dir", cache, "--image-resize", "32", "--batch-size", "16", "-o", str(folder)),
    ]
    with running(command, tmp_path / "first.log") as first:
        wait_for((folder / LOCK_FILE).is_file, first, seconds=120)
        second = fgvctune(*command[3:], log=tmp_path / "second.log", timeout=120)
        assert first.poll() is None, "the first run should still be running"
        assert second.returncode == 2
        assert second.stdout.strip().splitlines() == [
            f"error: {folder} is in use by another run (pid {first.pid}) (wait for it to finish, or pick another "
            f"--output; {folder / LOCK_FILE} names its command)"
        ]
        assert (folder / LOCK_FILE).read_text().splitlines()[1].endswith(" ".join(command[1:]))
        assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()[-2000:]
    assert [r["epoch"] for r in read_results(folder)] == [1]
    assert not (folder / LOCK_FILE).exists() and "in use" not in (tmp_path / "first.log").read_text()


@pytest.mark.parametrize("damage", ["cut in half", "garbage", "cut before its epoch"])
def test_resuming_from_a_damaged_last_ckpt_is_one_line(tmp_path, cache, damage):
    """last.ckpt cut short (mid-entry, or between entries so that its epoch number, written last, is gone) or
    replaced by garbage: `train --resume` stops with one line naming it and what to do."""
    import mindspore as ms
    from typer.testing import CliRunner

    from fgvctune.cli import app
    from fgvctune.config import dump_yaml

    folder = tmp_path / "run"
    folder.mkdir()
    settings = dict(adapter="aircraft", data_dir=str(SAMPLE), pretrained=False, epoch_size=2, cache_dir=cache, **FAST)
    (folder / "config.yaml").write_text(dump_yaml(resolve(**settings)))
    last = folder / "last.ckpt"
    ms.save_checkpoint(
        ms.nn.Dense(64, 8), str(last), append_dict={} if damage == "cut before its epoch" else {"fgvctune_epoch": 1}
    )
    if damage == "cut in half":
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    elif damage == "garbage":
        last.write_bytes(b"\x00not a checkpoint" * 64)
    damaged = last.read_bytes()
    result = CliRunner().invoke(app, ["train", "--resume", str(folder)])
    assert result.exit_code == 1, result.output
    if damage == "cut before its epoch":
        expected = (
            f"error: {last} holds no epoch number: it is cut short, or not a checkpoint of fgvctune train "
            f"(delete it to train {folder} again from its first epoch)"
        )
    else:
        expected = (
            f"error: {last} is not a readable MindSpore checkpoint (The file may be corrupted, and the content "
            "cannot be parsed.)"
        )
    assert expected in result.output.splitlines(), result.output
    assert "Traceback" not in result.output and last.read_bytes() == damaged
