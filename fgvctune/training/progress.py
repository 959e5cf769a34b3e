"""What the terminal shows while a run trains: a transient progress bar per epoch, and each epoch's line."""

from __future__ import annotations

import sys


class Progress:
    """A transient progress bar on stderr with loss, learning rate and images per second."""

    def __init__(self, total: int, title: str, enabled: bool):
        self.total, self.title, self.done = total, title, 0
        self.enabled = enabled and sys.stderr.isatty()  # a bar in a log file is just noise
        self._bar = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.title, total=self.total, info="")
        return self

    def advance(self, loss: float, lr: float, rate: float) -> None:
        self.done += 1
        if self._bar:
            self._bar.update(self._task, advance=1, info=f"loss {loss:.4f} lr {lr:.3g} {rate:.1f} img/s")

    def __exit__(self, *exc):
        if self._bar:
            self._bar.__exit__(*exc)
        return False


def epoch_line(row: dict, epochs: int, k: int, improved: bool) -> str:
    """The line printed after each epoch (`k` is the top-k the run reports beside top-1)."""
    return (
        f"epoch {row['epoch']}/{epochs}  loss {row['train_loss']:.4f}  "
        f"train acc {row['train_acc']:.1%}  val top-1 {row['val_top1']:.1%}  top-{k} {row['val_top5']:.1%}  "
        f"lr {row['lr']:.3g}  {row['images_per_second']:.1f} img/s  {row['seconds']:.1f} s"
        + ("  *best*" if improved else "")
    )
