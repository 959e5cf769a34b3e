"""The training core: one loop for every adapter, read mode and strategy.

`Trainer` sets a run up (data, model, strategy: setup.py), runs its epochs and writes its files (checkpoints:
resume.py); the compiled step is in step.py, the terminal's progress in progress.py, clean stopping in
interrupts.py. A run folder holds everything a run makes (`results/runfiles.py` names the files). Every file
is written atomically after each epoch, so a killed run loses at most the epoch it was in.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from fgvctune import config as config_module
from fgvctune.config import TrainConfig
from fgvctune.errors import UsageError
from fgvctune.fileio import atomic_write_text
from fgvctune.results.runfiles import BEST, CONFIG_FILE, LAST, RESULTS_FILE, as_written, results_text, working_in
from fgvctune.training import tracking
from fgvctune.training.interrupts import Interrupted, interrupts_deferred, reclaim_ctrl_c
from fgvctune.training.progress import Progress, epoch_line
from fgvctune.training.resume import Checkpoints
from fgvctune.training.setup import SetUp
from fgvctune.training.step import EMA_PREFIX as EMA
from fgvctune.training.step import averaged_weights, carried_over


@dataclass
class Run:
    folder: Path
    config: TrainConfig
    rows: list[dict] = field(default_factory=list)
    trainable_params: int = 0
    writer: bool = True  # False on data-parallel workers other than rank 0, which speaks for all

    @property
    def best(self) -> dict | None:
        return max(self.rows, key=lambda r: r["val_top1"]) if self.rows else None


def default_output(config: TrainConfig) -> Path:
    return Path("runs") / f"{config.model}-{config.adapter}-{datetime.now():%Y%m%d-%H%M%S}"


def train(
    config: TrainConfig | None = None,
    *,
    config_file: str | Path | None = None,
    output: str | Path | None = None,
    resume: str | Path | None = None,
    verbose: bool = False,
    progress: bool = True,
    log=print,
    on_epoch=None,
    **options,
) -> Run:
    """Fine-tune a MindCV model; every TrainConfig key is also a keyword here.

    `on_epoch(row)` is called after each epoch's files have landed (`tune` reports to its pruner there; an
    exception it raises ends the run, its finished epochs saved).

    >>> fgvctune.train(adapter="aircraft", data_dir="data/aircraft-sample", epoch_size=5, freeze="7")
    """
    if resume:
        folder = Path(resume)
        if not (folder / CONFIG_FILE).is_file():
            raise UsageError(
                f"{folder} is not a run folder (no {CONFIG_FILE})", hint="pass the folder of an earlier run"
            )
        config = config_module.resolve(folder / CONFIG_FILE)
        if options.get("distribute") is not None:  # the one setting a resumed run may change: how it runs
            config.distribute = options["distribute"]
    else:
        config = config or config_module.resolve(config_file, **options)
        if not config.adapter or not config.data_dir:
            raise UsageError("no dataset given", hint="pass --adapter and --data-dir (or set them in --config)")
        folder = Path(output) if output else default_output(config)
    tracking.check(config, folder if resume else None)
    # One run per folder. Data-parallel workers share theirs: the launcher (`train --workers`) holds it for them.
    with nullcontext() if config.distribute else working_in(folder):
        if not resume and (folder / RESULTS_FILE).exists():
            raise UsageError(
                f"{folder} already holds a run", hint=f"continue it with --resume {folder}, or pick another --output"
            )
        trainer = Trainer(config, folder, resume=bool(resume), verbose=verbose, progress=progress, log=log)
        trainer.on_epoch = on_epoch
        return trainer.run()


class Trainer(SetUp, Checkpoints):
    """A run: set up (setup.py), its epochs (here), its checkpoints (resume.py), then its curves and report."""

    def __init__(
        self, config: TrainConfig, folder: Path, resume: bool, verbose: bool, progress: bool, log, writes: bool = True
    ):
        self.config, self.folder, self.resume = config, folder, resume
        self.verbose, self.progress, self.log = verbose, progress, log
        self.writes = writes  # False: set up and step without writing a run folder (lr-find)
        self.resumed: dict = {}  # last.ckpt's entries, from reading its epoch until they are loaded
        self.on_epoch = None  # train()'s callback
        self.trackers = tracking.NOTHING

    def run(self) -> Run:
        self.set_up()
        if self.dist.is_writer and self.writes:  # TensorBoard and MLflow (--log-to): rank 0, like the run's files
            self.trackers = tracking.start(self.config, self.folder, self.resume, log=self.log)
        with self.trackers:
            return self._loop()

    def _loop(self) -> Run:
        c = self.config
        rows: list[dict] = []
        start_epoch = 0
        if self.resume:
            start_epoch, rows = self._restore()
        phase_head = c.unfreeze_after > start_epoch
        self.build_step(head_only=phase_head, start_step=start_epoch * self.steps_per_epoch)
        if self.resume:
            self._load_last()
        best = max((r["val_top1"] for r in rows), default=-1.0)
        since_best = len(rows) - 1 - next((i for i, r in enumerate(rows) if r["val_top1"] == best), len(rows) - 1)
        run = Run(self.folder, c, rows, writer=self.dist.is_writer)
        try:
            for epoch in range(start_epoch, c.epoch_size):
                if phase_head and epoch >= c.unfreeze_after:
                    phase_head = False
                    head_state = carried_over(self.step.parameters_dict())
                    self.build_step(head_only=False, start_step=epoch * self.steps_per_epoch)
                    # The head keeps its optimizer state, as a run resumed at this epoch does.
                    self.ms.load_param_into_net(self.step, head_state, strict_load=False)
                row = as_written(self._epoch(epoch))
                rows.append(row)
                improved = row["val_top1"] > best
                if improved:
                    best, since_best = row["val_top1"], 0
                else:
                    since_best += 1
                if self.dist.is_writer:
                    with interrupts_deferred():  # an epoch's files land together or not at all
                        atomic_write_text(self.folder / RESULTS_FILE, results_text(rows))
                        if improved:
                            with self._evaluated_weights():
                                self._save(self.network, BEST, epoch + 1)
                        self._save(self.step, LAST, epoch + 1)
                self.trackers.epoch(row)
                self.log(epoch_line(row, c.epoch_size, self._k, improved))
                if self.on_epoch:
                    self.on_epoch(row)
                if c.early_stop and since_best >= c.early_stop:
                    self.log(f"early stop: no better val top-1 for {c.early_stop} epochs")
                    break
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted; {len(rows)} finished epoch(s) are saved in {self.folder}",
                hint=f"continue with: fgvctune train --resume {self.folder}",
            ) from None
        run.rows = rows
        run.trainable_params = self.trainable
        if self.dist.is_writer:
            self._after_training(run)
            self.trackers.finish(self.folder)
        return run

    @property
    def _k(self) -> int:
        from fgvctune.results.metrics import top_k

        return top_k(self.config.num_classes)

    def _epoch(self, epoch: int) -> dict:
        from fgvctune.results import metrics
        from fgvctune.training import strategy

        c = self.config
        reclaim_ctrl_c()
        self.step.set_train(True)
        strategy.set_train_mode(self.network, True, self.frozen_norms)
        losses, correct, seen = 0.0, 0, 0
        cycle_loss = 0.0  # the batches of one update (gradient accumulation), for the trackers' per-step loss
        started = time.perf_counter()
        k = c.gradient_accumulation_steps
        batches = self.steps_per_epoch * k
        bar = Progress(batches, f"epoch {epoch + 1}/{c.epoch_size}", self.progress and self.dist.is_writer)
        with bar:
            for index, (images, labels) in enumerate(self.train_batches(epoch)):
                if index == batches:
                    break  # the batches of an unfinished accumulation cycle
                loss, logits = self.step(images, labels, (index + 1) % k == 0) if k > 1 else self.step(images, labels)
                n = images.shape[0]
                truth = labels.asnumpy()
                truth = truth.argmax(axis=1) if truth.ndim == 2 else truth
                batch_loss = float(loss.asnumpy())
                losses += batch_loss * n
                cycle_loss += batch_loss
                correct += int((logits.asnumpy().argmax(axis=1) == truth).sum())
                seen += n
                step_index = epoch * self.steps_per_epoch + min(bar.done // k, self.steps_per_epoch - 1)
                if (index + 1) % k == 0:
                    self.trackers.step(step_index + 1, cycle_loss / k, self.lr_steps[step_index])
                    cycle_loss = 0.0
                bar.advance(
                    loss=losses / seen,
                    lr=self.lr_steps[step_index],
                    rate=seen / max(time.perf_counter() - started, 1e-9),
                )
        train_seconds = time.perf_counter() - started
        self.dist.average_statistics(self.network, self.learnable)
        if c.ema:
            # the averages of the BatchNorm statistics, like the statistics themselves
            self.dist.average([p for p in self.step.averages if p.name[len(EMA) :] not in self.learnable])
        with self._evaluated_weights():
            logits, labels = metrics.predict(self.network, self.val_loader, c.batch_size)
        counts = self.dist.sum(
            [
                metrics.correct_at(logits, labels, 1),
                metrics.correct_at(logits, labels, self._k),
                len(labels),
                correct,
                seen,
                losses,
            ]
        )
        top1, topk, total, correct, seen, losses = counts
        return {
            "epoch": epoch + 1,
            "train_loss": losses / max(seen, 1),
            "train_acc": correct / max(seen, 1),
            "val_top1": top1 / max(total, 1),
            "val_top5": topk / max(total, 1),
            "lr": self.lr_steps[min((epoch + 1) * self.steps_per_epoch, len(self.lr_steps)) - 1],
            "seconds": time.perf_counter() - started,
            "images_per_second": seen / max(train_seconds, 1e-9),  # all workers together
        }

    def _evaluated_weights(self):
        """The weights validation and best.ckpt see: with --ema the moving average, for the block's time."""
        return averaged_weights(self.step) if self.config.ema else nullcontext()

    def _after_training(self, run: Run) -> None:
        """Rank 0 alone: the curves, then the report (which evaluates best.ckpt on the eval split)."""
        from fgvctune.results.plots import training_curves
        from fgvctune.results.report import write_report

        training_curves(self.folder)
        if self.dist.size > 1:
            self.ms.reset_auto_parallel_context()  # the evaluation is this process's alone
        self.log(f"report: {write_report(self.folder, verbose=self.verbose)}")
