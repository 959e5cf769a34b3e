"""Pictures of a run, drawn with matplotlib (no display needed)."""

from __future__ import annotations

from pathlib import Path

from fgvctune.results.runfiles import CURVES_FILE, LABELS_FILE, read_results


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(folder: str | Path) -> Path:
    """Loss and accuracy per epoch from results.txt, as curves.png in the run folder."""
    return _save(curves_figure(folder), Path(folder) / CURVES_FILE)


def curves_figure(folder: str | Path):
    """The figure of curves.png: train loss (left), train accuracy and val top-1/top-k (right) per epoch."""
    from fgvctune.errors import UsageError

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
    _whole_epochs(left, epochs)
    k = _top_k_of(folder)
    for key, label in (("train_acc", "train accuracy"), ("val_top1", "val top-1"), ("val_top5", f"val top-{k}")):
        right.plot(epochs, [100 * r[key] for r in rows], marker="o", label=label)
    right.set_xlabel("epoch")
    right.set_ylabel("%")
    right.set_ylim(0, 100)
    right.legend()
    _whole_epochs(right, epochs)
    figure.suptitle(folder.name)
    figure.tight_layout()
    return figure


def lr_find_plot(rates, losses, smoothed, suggestion: float, path: Path) -> Path:
    """lr-find.png: the loss (raw and smoothed) against the learning rate on a log axis, the suggestion marked."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    axes.plot(rates, losses, color="#bbb", label="loss")
    axes.plot(rates, smoothed, color="#1f77b4", label="smoothed loss")
    axes.axvline(suggestion, color="#d62728", linestyle="--", label=f"suggested {suggestion:.2g}")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss")
    top = max(smoothed[0], min(smoothed)) * 1.5 if smoothed else None
    if top:
        axes.set_ylim(min(min(losses), min(smoothed)) * 0.9, top)
    axes.legend()
    figure.tight_layout()
    return _save(figure, path)


def _whole_epochs(axes, epochs) -> None:
    """Epochs are counted: ticks only at whole numbers (matplotlib would put 1.5, 2.5 on short runs, and
    0.96, 0.98, ... around a single epoch)."""
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if len(set(epochs)) == 1:  # one epoch: its one tick, a window one epoch wide each side
        axes.set_xlim(epochs[0] - 1, epochs[0] + 1)
        axes.set_xticks([epochs[0]])


def comparison_curves(runs: dict[str, list[list[dict]]], title: str = "") -> bytes:
    """Val top-1 and train loss per epoch of several strategies on one picture, as PNG bytes.

    runs: strategy -> the results rows of each of its runs (one per seed); several runs are drawn as
    their mean with a band of one standard deviation.
    """
    import numpy as np

    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    drawn = [1]
    for name, row_lists in runs.items():
        length = min((len(rows) for rows in row_lists), default=0)
        if not length:
            continue
        epochs = [r["epoch"] for r in row_lists[0][:length]]
        drawn += epochs
        for axes, key, scale in ((left, "val_top1", 100), (right, "train_loss", 1)):
            values = np.array([[scale * r[key] for r in rows[:length]] for rows in row_lists])
            mean = values.mean(axis=0)
            (line,) = axes.plot(epochs, mean, marker="o", label=name)
            if len(values) > 1:
                spread = values.std(axis=0, ddof=1)
                axes.fill_between(epochs, mean - spread, mean + spread, color=line.get_color(), alpha=0.15)
    left.set_ylabel("val top-1 %")
    left.set_ylim(0, 100)
    right.set_ylabel("train loss")
    for axes in (left, right):
        axes.set_xlabel("epoch")
        _whole_epochs(axes, drawn[1:] or drawn)
        axes.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return png(figure)


def _top_k_of(folder: Path) -> int:
    """The k of a run's top-k column: 5, or the class count when smaller."""
    from fgvctune.data.dataset import LabelMap
    from fgvctune.results.metrics import top_k

    labels = folder / LABELS_FILE
    return top_k(len(LabelMap.read(labels))) if labels.is_file() else 5


def confusion_matrix(confusion, names, path: Path, title: str = "") -> Path:
    """A confusion matrix with class names, counts written in the cells when there is room."""
    import numpy as np

    plt = _pyplot()
    n = len(names)
    side = min(4 + 0.35 * n, 30)
    figure, axes = plt.subplots(figsize=(side + 1.5, side), dpi=100)
    image = axes.imshow(confusion, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = np.arange(n)
    font = max(4, min(9, 300 // max(n, 1)))
    axes.set_xticks(ticks, labels=names, rotation=90, fontsize=font)
    axes.set_yticks(ticks, labels=names, fontsize=font)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if n <= 30:
        peak = confusion.max() or 1
        for i in range(n):
            for j in range(n):
                if confusion[i, j]:
                    colour = "white" if confusion[i, j] > peak / 2 else "black"
                    axes.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=font, color=colour)
    axes.set_title(title)
    figure.tight_layout()
    return _save(figure, path)


def image_grid(tiles, path: Path, title: str = "", columns: int = 4) -> Path:
    """Images with captions in a grid, written to `path` (grid_figure)."""
    return _save(grid_figure(tiles, title, columns), path)


def grid_figure(tiles, title: str = "", columns: int = 4):
    """Images with captions in a grid; tiles are (sample, caption, wrong), wrong ones framed in red. A tile's sample
    may be a picture already made instead (an RGB array, such as a Grad-CAM overlay: gradcam.py)."""
    import numpy as np

    from fgvctune.data.dataset import decoded_image

    plt = _pyplot()
    rows = max(1, -(-len(tiles) // columns))
    dpi, side = 100, 3  # a tile is 3 inches wide
    figure, axes = plt.subplots(rows, columns, figsize=(side * columns, 3.2 * rows), dpi=dpi, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (sample, caption, wrong) in zip(axes.flat, tiles):
        if isinstance(sample, np.ndarray):
            ax.imshow(sample)
        else:  # decoded no larger than drawn, whatever the file claims
            ax.imshow(decoded_image(sample, fit=side * dpi))
        ax.set_title(caption, fontsize=8, color="red" if wrong else "black")
        if wrong:
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor("red")
                spine.set_linewidth(3)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def png(figure) -> bytes:
    """A figure as PNG bytes (closed afterwards)."""
    import io

    buf = io.BytesIO()
    figure.savefig(buf, format="png")
    _pyplot().close(figure)
    return buf.getvalue()


def _save(figure, path: Path) -> Path:
    from fgvctune.fileio import atomic_write_bytes

    atomic_write_bytes(path, png(figure))
    return path
