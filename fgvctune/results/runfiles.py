"""The files of a run folder: their names, and how each is read and written.

`train` writes them, everything after training (eval, predict, plots, compare, report) reads them; this module
is the one place that spells their names and knows their layout.

    config.yaml   the resolved configuration         labels.csv   class ids and names
    results.txt   a row per finished epoch            skipped.txt  samples left out (--skip-bad, --dedupe, --exclude)
    last.ckpt     weights, optimizer state, epoch     best.ckpt    weights with the best val top-1
    counts.csv    images per split and class trained  strategy.csv blocks: parameters, trainable, rate x
    curves.png    loss and accuracy per epoch         report.html  the whole run on one page
    eval-<split>/ eval.json, confusion.csv/.png       predict-<split>/, predict-images/: pred.txt or
    export/       the exported network, labels.csv      predictions.csv, and predictions.png
    duplicates.csv  copies found inside a split or across train and eval (when there are any)
    eval-<split>/top-losses/  the Grad-CAM pictures of the evaluation's top losses
    relabelled.csv  samples --relabel gave another label: split, id, was, now, the list's file and line
    doctor/       doctor.csv and doctor.html of `fgvctune doctor RUN`
    launch.yaml, msrun-logs/  the configuration and logs of data-parallel workers (train --workers)
    tracking.json, tensorboard-logs/  with --log-to: the MLflow run and TensorBoard event files the run logs to
    lr-find.csv, lr-find.png  the sweep of `fgvctune lr-find` (in a folder of its own)
    .fgvctune.lock  while a run (train, compare, lr-find) works in the folder: its pid and command line

labels.csv, counts.csv, skipped.txt and relabelled.csv are also a class tree's files: their names are the data
room's, used here.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path

from fgvctune.data.dataset import LABELS_FILE, LabelMap
from fgvctune.data.edits import RELABELLED_FILE
from fgvctune.data.tree import COUNTS_FILE, SKIPPED_FILE
from fgvctune.errors import UsageError
from fgvctune.fileio import LockTaken, locked_or_taken

CONFIG_FILE = "config.yaml"
RESULTS_FILE = "results.txt"
STRATEGY_FILE = "strategy.csv"
REPORT_FILE = "report.html"  # a run's page, and a comparison's
CURVES_FILE = "curves.png"
DUPLICATES_FILE = "duplicates.csv"
EVAL_FILE = "eval.json"
CONFUSION_FILE = "confusion.csv"
CONFUSION_PICTURE = "confusion.png"
PRED_FILE = "pred.txt"  # predict on a split
PREDICTIONS_FILE = "predictions.csv"  # predict on image files
PREDICTIONS_PICTURE = "predictions.png"
TOP_LOSSES_FOLDER = "top-losses"  # in eval-<split>/: the top losses' Grad-CAM pictures, 01.png, 02.png, ...
EXPORT_FOLDER = "export"
STRATEGY_COLUMNS = ("block", "prefix", "params", "trainable", "lr_mult")
BEST, LAST = "best.ckpt", "last.ckpt"
CHECKPOINT_SUFFIX = ".ckpt"  # --checkpoint best means best.ckpt
LOCK_FILE = ".fgvctune.lock"
LAUNCH_CONFIG = "launch.yaml"  # train --workers: the configuration the workers start from
MSRUN_LOGS = "msrun-logs"
LR_FIND_TABLE, LR_FIND_PICTURE = "lr-find.csv", "lr-find.png"
# A comparison's folder (fgvctune compare): a run folder per strategy, and these (and its report.html).
COMPARE_CONFIG = "compare.yaml"  # the configuration every strategy starts from
COMPARE_TABLE = "compare.csv"
COMPARE_MARKDOWN = "compare.md"
TRACKING_FILE = "tracking.json"  # --log-to: the TensorBoard folder and MLflow run a run (or compare, tune) logs to
TENSORBOARD_FOLDER = "tensorboard-logs"
COLUMNS = ("epoch", "train_loss", "train_acc", "val_top1", "val_top5", "lr", "seconds")


@contextmanager
def working_in(folder: str | Path):
    """Hold `folder` for this process's run while the block runs: a second run started in it stops at once with
    one line naming this one, instead of the two replacing each other's files. A folder made here and left empty
    (the run stopped before writing anything) is removed."""
    folder = Path(folder)
    made = not folder.exists()
    command = getattr(sys, "orig_argv", [sys.executable, *sys.argv])  # orig_argv: Python 3.10 and later
    note = f"pid {os.getpid()}\n{shlex.join(command)}\n"  # the line an error shows, and the whole command
    try:
        with ExitStack() as held:
            try:
                held.enter_context(locked_or_taken(folder / LOCK_FILE, note))
            except LockTaken as taken:
                holder = taken.holder.splitlines()[0] if taken.holder else "just starting"
                raise UsageError(
                    f"{folder} is in use by another run ({holder})",
                    hint=f"wait for it to finish, or pick another --output; {folder / LOCK_FILE} names its command",
                ) from None
            yield
    finally:
        if made:
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty: the run wrote its files


def is_run(folder: str | Path) -> bool:
    return (Path(folder) / CONFIG_FILE).is_file()


def require_run(folder: str | Path) -> Path:
    folder = Path(folder)
    if not is_run(folder):
        raise UsageError(f"{folder} is not a run folder (no {CONFIG_FILE})", hint="pass the --output of a train run")
    return folder


def checkpoint_file(folder: str | Path, checkpoint: str) -> Path:
    """A run's checkpoint by name (best, last) or by file name (best.ckpt)."""
    name = checkpoint if checkpoint.endswith(CHECKPOINT_SUFFIX) else checkpoint + CHECKPOINT_SUFFIX
    return Path(folder) / name


def read_config(folder: str | Path):
    from fgvctune.config import resolve

    return resolve(require_run(folder) / CONFIG_FILE)


def read_labels(folder: str | Path) -> LabelMap:
    return LabelMap.read(Path(folder) / LABELS_FILE)


def read_tracking(folder: str | Path) -> dict:
    """tracking.json: {"tensorboard": folder name, "mlflow": {uri, experiment_id, run_id, url}}; {} without one."""
    from fgvctune.fileio import read_user_text

    path = Path(folder) / TRACKING_FILE
    if not path.is_file():
        return {}
    try:  # a run folder may come from elsewhere: read bounded, its shape checked
        record = json.loads(read_user_text(path, 1 << 20, "tracking file"))
    except (ValueError, RecursionError):
        record = None
    mlflow = record.get("mlflow") if isinstance(record, dict) else None
    if isinstance(record, dict) and (mlflow is None or _strings(mlflow, "uri", "run_id", "experiment_id")):
        return record
    raise UsageError(f"{path}: not a tracking file fgvctune wrote", hint="remove it to start new tracking runs")


def _strings(value, *keys: str) -> bool:
    return isinstance(value, dict) and all(isinstance(value.get(k), str) for k in keys)


def read_results(folder: str | Path) -> list[dict]:
    path = Path(folder) / RESULTS_FILE
    if not path.is_file():
        return []
    return [_parse(line) for line in path.read_text(encoding="utf-8").splitlines()[1:]]


def results_text(rows: list[dict]) -> str:
    return "\n".join(["\t".join(COLUMNS)] + [_line(r) for r in rows]) + "\n"


def as_written(row: dict) -> dict:
    """A row with the precision results.txt keeps, so a run that goes on from the file (resumed) decides
    "better" and "early stop" on exactly the numbers the uninterrupted run decided on."""
    return {**row, **_parse(_line(row))}


def _line(r: dict) -> str:
    return (
        f"{r['epoch']}\t{r['train_loss']:.4f}\t{r['train_acc']:.4f}\t{r['val_top1']:.4f}\t"
        f"{r['val_top5']:.4f}\t{r['lr']:.6g}\t{r['seconds']:.1f}"
    )


def _parse(line: str) -> dict:
    return {k: (int(v) if k == "epoch" else float(v)) for k, v in zip(COLUMNS, line.split("\t"))}


def read_skipped(folder: str | Path) -> list[str]:
    path = Path(folder) / SKIPPED_FILE
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []


def read_relabelled(folder: str | Path) -> list[dict]:
    """relabelled.csv's rows: split, id, was, now, where."""
    path = Path(folder) / RELABELLED_FILE
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_counts(folder: str | Path) -> dict[str, dict[str, int]]:
    """split -> {class: images}, in the order written; empty for a run made before counts.csv existed."""
    path = Path(folder) / COUNTS_FILE
    if not path.is_file():
        return {}
    counts: dict[str, dict[str, int]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            counts.setdefault(row["split"], {})[row["class"]] = int(row["count"])
    return counts


def strategy_text(rows: list[dict]) -> str:
    """The rows of `Strategy.rows()` (what `fgvctune layers` prints) as CSV."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=STRATEGY_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def read_strategy(folder: str | Path) -> list[dict]:
    path = Path(folder) / STRATEGY_FILE
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{**row, "params": int(row["params"])} for row in csv.DictReader(f)]


def eval_folder(folder: str | Path, split: str) -> Path:
    return Path(folder) / f"eval-{split}"


def predict_folder(folder: str | Path, split: str | None = None) -> Path:
    """Where predict writes by default: predict-<split>, or predict-images for image files."""
    return Path(folder) / f"predict-{split or 'images'}"


def read_eval(folder: str | Path, split: str) -> dict | None:
    """eval.json of the run's best checkpoint on a split, if it is newer than that checkpoint."""
    path = eval_folder(folder, split) / EVAL_FILE
    best = Path(folder) / BEST
    if not path.is_file() or not best.is_file() or path.stat().st_mtime < best.stat().st_mtime:
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return result if Path(result.get("checkpoint", "")).name == BEST else None


def eval_image(entry: dict):
    """Where an image of eval.json (a top loss) is: its file, or a Member of its container."""
    from fgvctune.data.containers import Member

    if entry.get("member"):
        return Member(**{**entry["member"], "container": Path(entry["member"]["container"])})
    return Path(entry["path"])


def confusion_text(names, confusion) -> str:
    """confusion.csv: a row per true class, a column per predicted class, counts in the cells."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["true \\ predicted", *names])
    for name, row in zip(names, confusion):
        writer.writerow([name, *map(int, row)])
    return buf.getvalue()


def read_duplicates(folder: str | Path) -> list[dict]:
    path = Path(folder) / DUPLICATES_FILE
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def compare_text(rows: list[dict]) -> str:
    """compare.csv: a row per strategy, figures as the table shows them."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["strategy", "top1", "mean_per_class", "trainable_params", "seconds", "runs", "top1_std", "mean_per_class_std"]
    )
    for r in rows:
        writer.writerow(
            [
                r["strategy"],
                f"{r['top1']:.4f}",
                f"{r['mean_per_class']:.4f}",
                r["trainable_params"],
                f"{r['seconds']:.1f}",
                len(r["runs"]),
                "" if r["top1_std"] is None else f"{r['top1_std']:.4f}",
                "" if r["mean_per_class_std"] is None else f"{r['mean_per_class_std']:.4f}",
            ]
        )
    return buf.getvalue()


def read_rows(output: str | Path) -> list[dict]:
    """compare.csv back as rows, with the run folders of each strategy."""
    output = Path(output)
    with open(output / COMPARE_TABLE, newline="", encoding="utf-8") as f:
        rows = []
        for r in csv.DictReader(f):
            name, count = r["strategy"], int(r.get("runs") or 1)
            runs = sorted(p.relative_to(output).as_posix() for p in (output / name).glob("seed-*")) if count > 1 else []
            rows.append(
                {
                    "strategy": name,
                    "top1": float(r["top1"]),
                    "top1_std": float(r["top1_std"]) if r.get("top1_std") else None,
                    "mean_per_class": float(r["mean_per_class"]),
                    "mean_per_class_std": float(r["mean_per_class_std"]) if r.get("mean_per_class_std") else None,
                    "trainable_params": int(r["trainable_params"]),
                    "seconds": float(r["seconds"]),
                    "runs": runs or [name],
                }
            )
    return rows
