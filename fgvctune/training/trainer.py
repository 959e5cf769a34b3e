"""The training core: one loop for every adapter, read mode and strategy.

`Trainer` sets a run up (data, model, strategy), runs its epochs and writes its files; the compiled
step is in step.py, the terminal's progress in progress.py, clean stopping in interrupts.py. A run
folder holds everything a run makes (`results/runfiles.py` names the files). Every file is written
atomically after each epoch, so a killed run loses at most the epoch it was in.
"""

from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from fgvctune import config as config_module
from fgvctune.config import TrainConfig
from fgvctune.data.dataset import LABELS_FILE, load_dataset
from fgvctune.errors import ModelError, UsageError
from fgvctune.fileio import atomic_write_text, written_as
from fgvctune.results.runfiles import (
    BEST,
    CONFIG_FILE,
    COUNTS_FILE,
    DUPLICATES_FILE,
    LAST,
    RESULTS_FILE,
    SKIPPED_FILE,
    STRATEGY_FILE,
    as_written,
    read_results,
    results_text,
    strategy_text,
    working_in,
)
from fgvctune.training.interrupts import Interrupted, interrupts_deferred, reclaim_ctrl_c
from fgvctune.training.progress import Progress, epoch_line
from fgvctune.training.step import EMA_PREFIX as EMA
from fgvctune.training.step import NesterovMomentum, TrainStep, carried_over


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
    **options,
) -> Run:
    """Fine-tune a MindCV model; every TrainConfig key is also a keyword here.

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
    # One run per folder. Data-parallel workers share theirs: the launcher (`train --workers`) holds it for them.
    with nullcontext() if config.distribute else working_in(folder):
        if not resume and (folder / RESULTS_FILE).exists():
            raise UsageError(
                f"{folder} already holds a run", hint=f"continue it with --resume {folder}, or pick another --output"
            )
        return Trainer(config, folder, resume=bool(resume), verbose=verbose, progress=progress, log=log).run()


class Trainer:
    def __init__(
        self, config: TrainConfig, folder: Path, resume: bool, verbose: bool, progress: bool, log, writes: bool = True
    ):
        self.config, self.folder, self.resume = config, folder, resume
        self.verbose, self.progress, self.log = verbose, progress, log
        self.writes = writes  # False: set up and step without writing a run folder (lr-find)
        self.resumed: dict = {}  # last.ckpt's entries, from reading its epoch until they are loaded

    # -- set-up ---------------------------------------------------------------------------------
    def run(self) -> Run:
        self.set_up()
        return self._loop()

    def set_up(self) -> None:
        """Data, model and loss; the run's files (config, labels, counts) when it writes them."""
        from fgvctune import runtime
        from fgvctune.data import duplicates
        from fgvctune.training import distributed

        c = self.config
        if c.ckpt_path and not Path(c.ckpt_path).is_file():
            raise ModelError(f"checkpoint {c.ckpt_path} does not exist", hint="check --ckpt-path")
        self.ms = runtime.start(self.verbose, c.mode, c.device_target, c.seed)
        self.dist = distributed.setup(c.distribute)
        if not self.dist.is_writer:
            self.log = lambda message: None  # rank 0 speaks for all
        if c.device_target != "CPU":
            self.log(f"note: --seed repeats runs exactly on the CPU; {c.device_target} kernels are not checked for it")
        random.seed(c.seed)
        np.random.seed(c.seed)
        import mindspore.dataset as ds

        ds.config.set_seed(c.seed)

        self.dataset = load_dataset(
            c.adapter,
            c.data_dir,
            options=c.adapter_options,
            skip_bad=c.skip_bad,
            train_split=c.train_split,
            eval_split=c.val_split,
            roles=True,
        )
        for note in self.dataset.notes:  # splits this run does not use, and what is wrong with them
            self.log(f"note: {note}")
        classes = len(self.dataset.labels)
        if c.num_classes and c.num_classes != classes:
            raise UsageError(
                f"num_classes is {c.num_classes} but the data has {classes} classes",
                hint="drop num_classes: it comes from the data",
            )
        c.num_classes = classes
        c.train_split, c.val_split = self.dataset.train_split, self.dataset.eval_split
        self._note_imbalance()
        found = duplicates.check(self.dataset, c.dedupe, self.log)
        if self.dist.is_writer and self.writes:
            self._write_run_files(found)
        self._build_data()
        self._build_model()

    def _note_imbalance(self) -> None:
        """Say so when the largest training class has more than 5x the images of the smallest."""
        c = self.config
        if c.class_weights or c.sampler:
            return
        counts = self.dataset.counts()[self.dataset.train_split]
        small, large = min(counts, key=counts.get), max(counts, key=counts.get)
        fewest, most = counts[small], counts[large]
        if most > 5 * fewest:
            self.log(
                f"note: the classes are imbalanced: {large!r} has {most} training images, {small!r} {fewest} "
                f"({most / fewest:.1f}x); consider --class-weights balanced or --sampler balanced"
            )

    def _write_run_files(self, found) -> None:
        from fgvctune.data import duplicates

        self.folder.mkdir(parents=True, exist_ok=True)
        if found.within or found.across:
            atomic_write_text(self.folder / DUPLICATES_FILE, duplicates.csv_text(found, self.dataset.root))
        atomic_write_text(self.folder / CONFIG_FILE, config_module.dump_yaml(self.config))
        atomic_write_text(self.folder / LABELS_FILE, self.dataset.labels.to_csv())
        atomic_write_text(self.folder / COUNTS_FILE, self.dataset.counts_csv())
        if self.dataset.problems:
            atomic_write_text(self.folder / SKIPPED_FILE, self.dataset.skipped_report())

    def _build_data(self) -> None:
        from fgvctune.data import pipeline

        c, d = self.config, self.dataset
        tree = pipeline.class_tree(d, c) if c.read == "offline" else None
        shard = pipeline.Shard(self.dist.size, self.dist.rank)
        # Each epoch gets a pipeline of its own, seeded from (seed, epoch): see pipeline.py.
        self.train_batches = lambda epoch: pipeline.loader(
            d, d.train_split, c, training=True, shard=shard, tree=tree, epoch=epoch
        ).create_tuple_iterator(num_epochs=1)
        self.val_loader = pipeline.loader(d, d.eval_split, c, training=False, shard=shard, tree=tree)
        batches = len(d.splits[d.train_split]) // shard.count // c.batch_size
        k = c.gradient_accumulation_steps
        if k > 1 and batches < k:  # (no batch at all is the pipeline's error: batch_size too large)
            raise UsageError(
                f"gradient_accumulation_steps {k} is more than the {batches} batches of an epoch",
                hint="pass a smaller --gradient-accumulation-steps or --batch-size",
            )
        # An epoch is whole accumulation cycles (its last batches % k batches are left out), so no
        # half-accumulated gradient crosses an epoch's end, where checkpoints are written.
        self.steps_per_epoch = batches // k  # optimizer updates; the rate schedule counts these
        self.log(
            f"data: {c.adapter} at {c.data_dir}, {len(d.labels)} classes, "
            f"{len(d.splits[d.train_split])} {d.train_split} / {len(d.splits[d.eval_split])} {d.eval_split} images, "
            f"read {c.read}"
            + (f" from {tree}" if tree else "")
            + (", training batches drawn class-balanced from the source" if c.sampler == "balanced" else "")
        )
        if shard.count > 1:
            from fgvctune.training.distributed import workers_line

            self.log(workers_line(shard.count, len(d.splits[d.train_split]), len(d.splits[d.eval_split]), c, d))

    def _build_model(self) -> None:
        import mindcv

        from fgvctune.models.factory import create_network

        c = self.config
        # Each worker drops its own units: the dropout seed differs by rank.
        self.network, report = create_network(
            c.model,
            c.num_classes,
            c.pretrained,
            c.ckpt_path,
            seed=c.seed * 1000 + self.dist.rank,
            cache_dir=c.cache_dir,
            **{k: getattr(c, k) for k in ("drop_rate", "drop_path_rate") if getattr(c, k) >= 0},
        )
        self.learnable = {p.name for p in self.network.trainable_params()}
        self.log(f"model: {c.model}, {report.summary()}")
        self._mixed_precision()
        weights = None
        if c.class_weights:
            from fgvctune.training.balance import class_weights

            found = class_weights(c.class_weights, self.dataset, self.dataset.train_split)
            self.log("class weights: " + ", ".join(f"{n} {w:.3g}" for n, w in zip(self.dataset.labels.classes, found)))
            weights = self.ms.Tensor(found, self.ms.float32)
        self.loss_fn = mindcv.create_loss(name="CE", label_smoothing=c.label_smoothing, weight=weights)
        lr = c.lr * (self.dist.size if c.scale_lr else 1)
        self.lr_steps = list(
            mindcv.create_scheduler(
                steps_per_epoch=self.steps_per_epoch,
                scheduler=c.scheduler,
                lr=lr,
                min_lr=c.min_lr,
                warmup_epochs=c.warmup_epochs,
                warmup_factor=c.warmup_factor,
                decay_epochs=c.decay_epochs or max(1, c.epoch_size - c.warmup_epochs),
                decay_rate=c.decay_rate,
                num_epochs=c.epoch_size,
            )
        )

    def _mixed_precision(self) -> None:
        """amp_level: MindSpore casts the network's ops to float16 (O1: a list of ops, O2: all but BatchNorm,
        O3: all); the loss stays float32."""
        c = self.config
        if c.amp_level == "O0":
            return
        from mindspore import amp

        from fgvctune.fileio import cache_root
        from fgvctune.kernels import cells as kernels

        kernels.restore(self.network)  # fgvctune's CPU kernels are float32 kernels: MindSpore's own ops cast
        # O1 rewrites the network's code into ./rewritten_network/ and imports it from there (graph mode then
        # compiles it from that file): made in the cache folder, never in the user's working directory.
        rewritten = cache_root(c.cache_dir) / "amp"
        rewritten.mkdir(parents=True, exist_ok=True)
        here = os.getcwd()
        os.chdir(rewritten)
        try:
            amp.auto_mixed_precision(self.network, c.amp_level)
        finally:
            os.chdir(here)
        if c.device_target == "CPU":
            self.log(f"note: amp_level {c.amp_level} on the CPU runs float16 kernels, slower than float32 here")

    def build_step(self, head_only: bool, start_step: int = 0):
        """Strategy, optimizer and compiled train step for one phase of training."""
        import mindcv

        from fgvctune.kernels import fold
        from fgvctune.training import strategy

        c = self.config
        plan = strategy.plan(
            self.network,
            c.model,
            c.freeze,
            c.linear_probe,
            c.lr_mult,
            c.layer_decay,
            c.weight_decay_filter,
            head_only=head_only,
            learnable=self.learnable,
        )
        self.frozen_norms = strategy.apply(self.network, plan)
        # Frozen blocks' BatchNorm runs in inference mode: fold it (and unfold what this phase trains).
        self.folded = fold.fold(self.network, frozen_only=True)
        self.strategy = plan
        if self.dist.is_writer and self.writes:
            atomic_write_text(self.folder / STRATEGY_FILE, strategy_text(plan.rows()))
        groups = strategy.param_groups(self.network, plan, self.lr_steps, c.weight_decay)
        if c.nesterov and c.opt in ("momentum", "nesterov"):  # MindCV's nn.Momentum would ignore it on the CPU
            optimizer = NesterovMomentum(groups, self.lr_steps, c.momentum, c.weight_decay)
        else:
            optimizer = mindcv.create_optimizer(
                groups,
                opt=c.opt,
                lr=self.lr_steps,
                weight_decay=c.weight_decay,
                momentum=c.momentum,
                nesterov=c.nesterov,
                weight_decay_filter="auto",
            )
        if start_step:
            optimizer.global_step.set_data(self.ms.Tensor([start_step], self.ms.int32))
        self.optimizer = optimizer
        dynamic = c.loss_scale_type == "dynamic" or (c.loss_scale_type == "auto" and c.amp_level != "O0")
        self.step = TrainStep(
            self.network,
            self.loss_fn,
            optimizer,
            self.dist.reducer(optimizer.parameters),
            accumulate=c.gradient_accumulation_steps,
            clip=c.clip_value if c.clip_grad else 0.0,
            loss_scale=c.loss_scale,
            dynamic_scale=dynamic,
            ema_decay=c.ema_decay if c.ema else 0.0,
            ema_warmup=c.ema_warmup,
            ema_names=strategy.changing(self.network, plan, self.frozen_norms),
        )
        trainable = sum(p.size for p in plan.params if p.trainable)
        total = sum(p.size for p in plan.params)
        phase = "head only (gradual unfreezing)" if head_only else "strategy"
        self.log(
            f"{phase}: {trainable:,} of {total:,} parameters train, {len(plan.frozen)} tensors frozen, "
            f"{len(groups) - 1} optimizer group(s), {self.folded} frozen BatchNorm(s) folded"
        )
        self.trainable = trainable

    # -- the loop -------------------------------------------------------------------------------
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
                self.log(epoch_line(row, c.epoch_size, self._k, improved))
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
                losses += float(loss.asnumpy()) * n
                correct += int((logits.asnumpy().argmax(axis=1) == truth).sum())
                seen += n
                step_index = epoch * self.steps_per_epoch + min(bar.done // k, self.steps_per_epoch - 1)
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

    @contextmanager
    def _evaluated_weights(self):
        """The weights validation and best.ckpt see: with --ema the moving average, put in the network
        for the moment and the training weights put back exactly after."""
        if not self.config.ema:
            yield
            return
        followed = list(self.step.followed)
        raw = [p.asnumpy().copy() for p in followed]
        for param, average in zip(followed, self.step.averages):
            param.set_data(self.ms.Tensor(average.asnumpy()))
        try:
            yield
        finally:
            for param, values in zip(followed, raw):
                param.set_data(self.ms.Tensor(values))

    # -- files ----------------------------------------------------------------------------------
    def _save(self, cell, name: str, epoch: int) -> None:
        """Save through a temporary name, so a reader sees the old checkpoint or the new one.

        The network's settings from a converted PyTorch checkpoint are recorded in every checkpoint.
        """
        from fgvctune.models import torchcompat

        entries = {"fgvctune_epoch": epoch, **torchcompat.record(self.network)}
        with written_as(self.folder / name) as tmp:
            self.ms.save_checkpoint(cell, str(tmp), append_dict=entries)

    def _restore(self) -> tuple[int, list[dict]]:
        from fgvctune.models.checkpoint import read_checkpoint

        last = self.folder / LAST
        if not last.is_file():
            return 0, []
        self.resumed = read_checkpoint(last)  # loaded into the train step once it is built (_load_last)
        if "fgvctune_epoch" not in self.resumed:  # written last: a file cut short between entries lacks it
            raise ModelError(
                f"{last} holds no epoch number: it is cut short, or not a checkpoint of fgvctune train",
                hint=f"delete it to train {self.folder} again from its first epoch",
            )
        epoch = int(self.resumed["fgvctune_epoch"].asnumpy())
        rows = [r for r in read_results(self.folder) if r["epoch"] <= epoch]
        if epoch >= self.config.epoch_size:
            raise UsageError(f"{self.folder} already finished its {self.config.epoch_size} epochs")
        self.log(f"resuming {self.folder} after epoch {epoch}")
        return epoch, rows

    def _load_last(self) -> None:
        from fgvctune.kernels import fold

        if self.resumed:
            params = {k: v for k, v in self.resumed.items() if not k.startswith("fgvctune_")}
            self.resumed = {}
            self.ms.load_param_into_net(self.step, carried_over(params), strict_load=False)
            fold.fold(self.network, frozen_only=True)  # the folded constants from the weights just loaded

    def _after_training(self, run: Run) -> None:
        """Rank 0 alone: the curves, then the report (which evaluates best.ckpt on the eval split)."""
        from fgvctune.results.plots import training_curves
        from fgvctune.results.report import write_report

        training_curves(self.folder)
        if self.dist.size > 1:
            self.ms.reset_auto_parallel_context()  # the evaluation is this process's alone
        self.log(f"report: {write_report(self.folder, verbose=self.verbose)}")
