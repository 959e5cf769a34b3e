"""Pictures of a run, drawn with matplotlib (no display needed)."""

from __future__ import annotations

from pathlib import Path

CURVES_FILE = "curves.png"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(folder: str | Path) -> Path:
    """Loss and accuracy per epoch from results.txt, as curves.png in the run folder."""
    from fgvctune.errors import UsageError
    from fgvctune.train import read_results

    folder = Path(folder)
    rows = read_results(folder)
    if not rows:
        raise UsageError(f"{folder} has no finished epochs to plot (no results.txt rows)")
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    left.plot(epochs, [r["train_loss"] for r in rows], marker="o", label="train loss")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    for key, label in (("train_acc", "train accuracy"), ("val_top1", "val top-1"), ("val_top5", "val top-5")):
        right.plot(epochs, [100 * r[key] for r in rows], marker="o", label=label)
    right.set_xlabel("epoch")
    right.set_ylabel("%")
    right.set_ylim(0, 100)
    right.legend()
    figure.suptitle(folder.name)
    figure.tight_layout()
    return _save(figure, folder / CURVES_FILE)


def _save(figure, path: Path) -> Path:
    import io

    from fgvctune.fileio import atomic_write_bytes

    buf = io.BytesIO()
    figure.savefig(buf, format="png")
    _pyplot().close(figure)
    atomic_write_bytes(path, buf.getvalue())
    return path
