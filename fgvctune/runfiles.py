"""The files of a run folder: their names, and how each is read and written.

`train` writes them, everything after training (eval, plots, compare, report) reads them; this module
is the one place that knows their layout.

    config.yaml   the resolved configuration         labels.csv   class ids and names
    results.txt   a row per finished epoch            skipped.txt  samples left out (--skip-bad)
    last.ckpt     weights, optimizer state, epoch     best.ckpt    weights with the best val top-1
"""

from __future__ import annotations

from pathlib import Path

from fgvctune.dataset import LABELS_FILE, LabelMap
from fgvctune.errors import UsageError

CONFIG_FILE = "config.yaml"
RESULTS_FILE = "results.txt"
SKIPPED_FILE = "skipped.txt"
BEST, LAST = "best.ckpt", "last.ckpt"
COLUMNS = ("epoch", "train_loss", "train_acc", "val_top1", "val_top5", "lr", "seconds")


def is_run(folder: str | Path) -> bool:
    return (Path(folder) / CONFIG_FILE).is_file()


def require_run(folder: str | Path) -> Path:
    folder = Path(folder)
    if not is_run(folder):
        raise UsageError(f"{folder} is not a run folder (no {CONFIG_FILE})", hint="pass the --output of a train run")
    return folder


def read_config(folder: str | Path):
    from fgvctune.config import resolve

    return resolve(require_run(folder) / CONFIG_FILE)


def read_labels(folder: str | Path) -> LabelMap:
    return LabelMap.read(Path(folder) / LABELS_FILE)


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
