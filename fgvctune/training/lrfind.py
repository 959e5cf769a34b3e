"""`fgvctune lr-find`: an exponential learning-rate sweep, as fastai's `lr_find`.

About 100 steps on the run's data and strategy from its starting weights, the rate growing from
`start` to `end` by the same factor each step, stopping once the smoothed loss passes four times its
lowest (the rates beyond say nothing more). The suggestion is the rate where the smoothed loss falls
fastest against log(rate), before its lowest point: the middle of the region where training makes the
most progress per step, the classic rule of fastai's first finder. Nothing is saved but the sweep:
the weights live in memory only, and no checkpoint is read for writing or written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from fgvctune.config import TrainConfig
from fgvctune.fileio import atomic_write_text
from fgvctune.results.runfiles import LR_FIND_PICTURE, LR_FIND_TABLE, working_in

SMOOTHING = 0.98  # fastai's: an exponential moving average of the loss, bias-corrected
DIVERGED = 4.0  # stop once the smoothed loss is this many times its lowest


@dataclass
class Sweep:
    rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    lowest: float  # the rate at the lowest smoothed loss
    files: list[Path]


def lr_find(
    config: TrainConfig,
    output: str | Path,
    steps: int = 100,
    start: float = 1e-7,
    end: float = 10.0,
    verbose: bool = False,
    log=print,
) -> Sweep:
    """Sweep the rate over `steps` steps of training (stopping early when the loss diverges)."""
    from fgvctune.errors import UsageError

    if not config.adapter or not config.data_dir:
        raise UsageError("no dataset given", hint="pass --adapter and --data-dir (or set them in --config)")
    if not 0 < start < end:
        raise UsageError(f"the sweep needs 0 < --start-lr < --end-lr, got {start:g} and {end:g}")
    if steps < 10:
        raise UsageError(f"--steps {steps}: a sweep needs at least 10 steps")
    output = Path(output)
    with working_in(output):  # one run per folder: a second lr-find (or train) here stops at once
        return _sweep(config, output, steps, start, end, verbose, log)


def _sweep(config: TrainConfig, output: Path, steps: int, start: float, end: float, verbose: bool, log) -> Sweep:
    from fgvctune.results.plots import lr_find_plot
    from fgvctune.training import strategy
    from fgvctune.training.trainer import Trainer

    trainer = Trainer(config, output, resume=False, verbose=verbose, progress=False, log=log, writes=False)
    trainer.set_up()
    rates = [start * (end / start) ** (i / (steps - 1)) for i in range(steps)]
    trainer.lr_steps = rates
    trainer.build_step(head_only=config.unfreeze_after > 0)
    k = config.gradient_accumulation_steps
    trainer.step.set_train(True)
    strategy.set_train_mode(trainer.network, True, trainer.frozen_norms)
    losses, smoothed, average, best = [], [], 0.0, math.inf
    for index, (images, labels) in enumerate(_batches(trainer)):
        update = (index + 1) % k == 0
        loss, _ = trainer.step(images, labels, update) if k > 1 else trainer.step(images, labels)
        if not update:
            continue
        value = float(loss.asnumpy())
        losses.append(value)
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        smoothed.append(average / (1 - SMOOTHING ** len(losses)))
        best = min(best, smoothed[-1])
        if not math.isfinite(value) or smoothed[-1] > DIVERGED * best or len(losses) == steps:
            break
    rates = rates[: len(losses)]
    suggestion, lowest = suggest(rates, smoothed)
    output.mkdir(parents=True, exist_ok=True)
    lines = ["step,lr,loss,smoothed_loss"]
    lines += [f"{i + 1},{r:.6g},{x:.6g},{y:.6g}" for i, (r, x, y) in enumerate(zip(rates, losses, smoothed))]
    atomic_write_text(output / LR_FIND_TABLE, "\n".join(lines) + "\n")
    plot = lr_find_plot(rates, losses, smoothed, suggestion, output / LR_FIND_PICTURE)
    return Sweep(rates, losses, smoothed, suggestion, lowest, [output / LR_FIND_TABLE, plot])


def _batches(trainer):
    """Training batches epoch after epoch, each epoch shuffled and augmented as in training."""
    epoch = 0
    while True:
        yield from trainer.train_batches(epoch)
        epoch += 1


def suggest(rates: list[float], smoothed: list[float]) -> tuple[float, float]:
    """(steepest descent of the smoothed loss against log rate before its lowest point, rate at the lowest)."""
    finite = [i for i, y in enumerate(smoothed) if math.isfinite(y)]
    low = min(finite, key=lambda i: smoothed[i])
    if low < 2:
        return rates[low], rates[low]
    slopes = [
        (smoothed[i + 1] - smoothed[i - 1]) / (math.log(rates[i + 1]) - math.log(rates[i - 1])) for i in range(1, low)
    ]
    steepest = 1 + min(range(len(slopes)), key=slopes.__getitem__)
    return rates[steepest], rates[low]
