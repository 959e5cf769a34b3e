"""The set-up half of the Trainer: the run's data, network, loss, rate schedule and compiled step, and the files
a run writes before its first epoch (config, labels, counts, strategy)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

from fgvctune import config as config_module
from fgvctune.data.dataset import LABELS_FILE, load_dataset
from fgvctune.data.edits import RELABELLED_FILE, relabelled_csv
from fgvctune.errors import ModelError, UsageError
from fgvctune.fileio import atomic_write_text
from fgvctune.results.runfiles import (
    CONFIG_FILE,
    COUNTS_FILE,
    DUPLICATES_FILE,
    SKIPPED_FILE,
    STRATEGY_FILE,
    strategy_text,
)
from fgvctune.training.step import NesterovMomentum, TrainStep


def why_new_classifier(ckpt_path: str, classes) -> str:
    """Why a run starting from `ckpt_path` gets a new classifier even where the checkpoint's fits its shape, or ""
    to keep it. Kept only when the run that saved the checkpoint (its labels.csv, beside it) had these classes in
    this order: a classifier of the same count trained on other classes starts worse than a fresh one (on digits
    5-9 from a base of digits 0-4, 12.9 points worse after 15 epochs: docs/performance.md)."""
    from fgvctune.data.labels import LabelMap

    if not ckpt_path:
        return ""
    labels = Path(ckpt_path).parent / LABELS_FILE
    if not labels.is_file():
        return f"no {LABELS_FILE} beside the checkpoint says it was trained on these classes"
    if tuple(LabelMap.read(labels).classes) != tuple(classes):
        return f"trained on other classes, says {labels}"
    return ""


class SetUp:
    """Builds what `Trainer` runs; `set_up` is all of it but the step, which `build_step` makes per phase."""

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
            exclude=c.exclude,
            relabel=c.relabel,
        )
        d = self.dataset
        if d.excluded or d.relabelled:
            self.log(
                f"{len(d.excluded)} sample(s) left out by --exclude (skipped.txt), "
                f"{len(d.relabelled)} relabelled by --relabel ({RELABELLED_FILE})"
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
        if self.dataset.problems or self.dataset.excluded:
            atomic_write_text(self.folder / SKIPPED_FILE, self.dataset.skipped_report())
        if self.dataset.relabelled:
            atomic_write_text(self.folder / RELABELLED_FILE, relabelled_csv(self.dataset.relabelled))

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

        from fgvctune.weights.loading import create_network  # a PyTorch --ckpt-path too

        c = self.config
        # Each worker drops its own units: the dropout seed differs by rank.
        self.network, report = create_network(
            c.model,
            c.num_classes,
            c.pretrained,
            c.ckpt_path,
            seed=c.seed * 1000 + self.dist.rank,
            cache_dir=c.cache_dir,
            new_classifier=why_new_classifier(c.ckpt_path, self.dataset.labels.classes),
            **{k: getattr(c, k) for k in ("drop_rate", "drop_path_rate") if getattr(c, k) >= 0},
        )
        self.learnable = {p.name for p in self.network.trainable_params()}
        self.log(f"model: {c.model}, {report.summary()}")
        if taken := config_module.recipe_keys(c):
            settings = ", ".join(f"{k} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in taken.items())
            self.log(f"fine-tuning recipe: {settings} (--recipe none for the plain defaults)")
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

        from fgvctune.kernels import fuse
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
            c.head_lr_mult,
            head_only=head_only,
            learnable=self.learnable,
        )
        self.frozen_norms = strategy.apply(self.network, plan)
        # Frozen blocks' BatchNorm runs in inference mode: fold it (and unfold what this phase trains), and fuse
        # what no gradient passes through (kernels/fuse.py).
        self.folded = fuse.fold_and_fuse(self.network, frozen_only=True, cache_dir=c.cache_dir)
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
