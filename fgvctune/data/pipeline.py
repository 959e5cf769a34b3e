"""From a checked dataset to batches: offline (class tree + create_dataset) or online (GeneratorDataset),
then MindCV's create_transforms and create_loader.

Training batches are a function of (seed, epoch) alone, whatever the number of pipeline workers and
however busy the cores are, so a run repeats exactly and a resumed run sees what the uninterrupted
one saw. Two things make it so:
- every epoch's pipeline is seeded from (seed, epoch), so each epoch shuffles and augments anew and
  epoch k is the same whether or not epochs 0..k-1 ran in this process;
- MindSpore's C++ random ops are repeatable across workers (each worker has its own generator and
  rows are dealt out in order), but Python ones (MindCV's auto-augment policies and Mixup,
  MindSpore's RandomErasing) draw from the process-wide `random` and `numpy.random` in whatever
  order the workers reach them. Each of those runs seeded from the epoch and its own input.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from fgvctune.config import TrainConfig
from fgvctune.data.dataset import Dataset
from fgvctune.errors import UsageError
from fgvctune.fileio import cache_root, locked


@dataclass
class Shard:
    """This process's share of the data in data-parallel training.

    Shards are exact index slices, never padded: for training each worker gets the same number of
    samples (up to count - 1 are left out per epoch, so every worker runs the same steps); for
    evaluation the shards together hold every sample exactly once.
    """

    count: int = 1
    index: int = 0

    def sampler(self, size: int, training: bool):
        import mindspore.dataset as ds

        if self.count == 1:
            return None
        end = size // self.count * self.count if training else size
        indices = list(range(self.index, end, self.count))
        return ds.SubsetRandomSampler(indices) if training else ds.SubsetSampler(indices)


def class_tree(dataset: Dataset, config: TrainConfig) -> Path:
    """Hardlink the dataset into a cached class tree (copies across file systems); reruns reuse it.
    With `config.downscale`, the tree returned is a cached downscaled copy of it (downscale.py)."""
    from fgvctune.data.tree import convert

    # The samples themselves are part of the key: --skip-bad and --dedupe runs leave some out.
    samples = hashlib.sha1(
        "\n".join(f"{split}\t{s.path}" for split in sorted(dataset.splits) for s in dataset.splits[split]).encode()
    ).hexdigest()
    key = json.dumps(
        [
            dataset.adapter,
            str(Path(config.data_dir).resolve()),
            config.adapter_options,
            sorted(dataset.splits),
            samples,
        ],
        sort_keys=True,
    )
    out = cache_root(config.cache_dir) / "trees" / f"{dataset.adapter}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    # One process at a time: data-parallel workers each build the same tree (one found the folder the other was
    # still filling and stopped, taking it for a folder of someone else's files).
    with locked(out.with_name(out.name + ".lock")):
        convert(dataset.adapter, config.data_dir, out, dataset=dataset, mode="hardlink")
        if config.downscale:
            from fgvctune.data.downscale import downscaled_tree, short_side

            return downscaled_tree(out, short_side(config), config.pipeline_workers)
    return out


def raw_dataset(
    dataset: Dataset, split: str, config: TrainConfig, training: bool, shard: Shard, tree: Path | None, seed: int = 0
):
    """The unbatched ["image", "label"] dataset of one split, read offline or online."""
    import mindspore.dataset as ds

    if training and config.sampler == "balanced":
        # Drawn from the samples, so read through the source whatever --read says (a tree's order is its own).
        from fgvctune.data.source import COLUMNS, ImageSource

        source = ImageSource.from_dataset(dataset, split, in_memory=config.in_memory, short=_short_side(config))
        order = balanced_order([s.label for s in dataset.splits[split]], random.Random(seed))
        mine = order[: len(order) // shard.count * shard.count][shard.index :: shard.count]
        return ds.GeneratorDataset(source, column_names=COLUMNS, sampler=ds.SubsetSampler(mine))
    sampler = shard.sampler(len(dataset.splits[split]), training)
    if tree is not None:
        if sampler is None:
            from mindcv.data import create_dataset

            return create_dataset(
                name="",
                root=str(tree),
                split=split,
                shuffle=training,
                num_parallel_workers=config.pipeline_workers,
                class_indexing=dataset.labels.folder_ids,
            )
        return ds.ImageFolderDataset(
            str(tree / split),
            sampler=sampler,
            num_parallel_workers=config.pipeline_workers,
            class_indexing=dataset.labels.folder_ids,
        )
    from fgvctune.data.containers import in_row_groups, reading_order
    from fgvctune.data.source import COLUMNS, ImageSource

    source = ImageSource.from_dataset(dataset, split, in_memory=config.in_memory, short=_short_side(config))
    samples = [s.path for s in dataset.splits[split]]
    if training and not config.in_memory and in_row_groups(samples):
        # Parquet shards are read a row group at a time: shuffle in that grain (see containers.reading_order).
        order = reading_order(samples, random.Random(seed))
        mine = order[: len(order) // shard.count * shard.count][shard.index :: shard.count]
        return ds.GeneratorDataset(source, column_names=COLUMNS, sampler=ds.SubsetSampler(mine))
    if sampler is None:
        return ds.GeneratorDataset(source, column_names=COLUMNS, shuffle=training)
    return ds.GeneratorDataset(source, column_names=COLUMNS, sampler=sampler)


def _short_side(config: TrainConfig) -> int | None:
    """With --downscale, the short side online reading decodes to (Pillow's draft mode); else None."""
    if not config.downscale:
        return None
    from fgvctune.data.downscale import short_side

    return short_side(config)


def balanced_order(labels: list[str], rng: random.Random) -> list[int]:
    """One epoch of `--sampler balanced`: as many draws as there are samples, every class drawn equally
    often (the remainder to classes chosen at random), each class's samples dealt out in shuffled rounds
    (every one before any twice), the whole shuffled."""
    by_class: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    classes = sorted(by_class)
    share, extra = divmod(len(labels), len(classes))
    lucky = set(rng.sample(classes, extra))
    order = []
    for name in classes:
        wanted = share + (name in lucky)
        members = by_class[name]
        while wanted > 0:
            round_ = rng.sample(members, len(members))[:wanted]
            order += round_
            wanted -= len(round_)
    rng.shuffle(order)
    return order


def loader(
    dataset: Dataset,
    split: str,
    config: TrainConfig,
    training: bool,
    shard: Shard = Shard(),
    tree: Path | None = None,
    epoch: int = 0,
):
    """Batches of one split. Training drops the last partial batch and augments as epoch `epoch` of a
    run seeded `config.seed`; evaluation keeps every sample. Iterate it right away: building it seeds
    MindSpore's dataset generators for that epoch."""
    import mindspore.dataset as ds
    from mindcv.data import create_loader

    per_shard = len(dataset.splits[split]) // shard.count
    if training and per_shard < config.batch_size:
        raise UsageError(
            f"batch_size {config.batch_size} is larger than the {per_shard} training images"
            f"{' per worker' if shard.count > 1 else ''} of split {split!r}",
            hint="pass a smaller --batch-size",
        )
    seed = epoch_seed(config.seed, epoch)
    if training:
        ds.config.set_seed(seed)  # also seeds `random` and `numpy.random`
        transform = [op if _is_cpp(op) else SeededPython(op, seed) for op in train_transforms(config)]
    else:
        transform = eval_transforms(config)
    batches = create_loader(
        raw_dataset(dataset, split, config, training, shard, tree, seed),
        batch_size=config.batch_size,
        drop_remainder=training,
        is_training=training,
        num_classes=len(dataset.labels),
        transform=transform,
        num_parallel_workers=config.pipeline_workers,
    )
    if training and config.mixup + config.cutmix > 0 and config.batch_size > 1:
        from mindcv.data.mixup import Mixup

        # As MindCV's create_loader mixes (labels become soft one-hot rows), with its Python draws seeded.
        mix = Mixup(
            mixup_alpha=config.mixup,
            cutmix_alpha=config.cutmix,
            cutmix_minmax=None,
            prob=config.cutmix_prob,
            switch_prob=0.5,
            label_smoothing=0.0,
            num_classes=len(dataset.labels),
        )
        batches = batches.map(
            operations=SeededPython(mix, seed),
            input_columns=["image", "label"],
            num_parallel_workers=config.pipeline_workers,
        )
    return batches


def epoch_seed(seed: int, epoch: int) -> int:
    """The data pipeline's seed for one epoch of a run."""
    return zlib.crc32(f"{seed}:{epoch}".encode()) & 0x7FFFFFFF


def _is_cpp(op) -> bool:
    """True for MindSpore's own operations that the pipeline runs in C++ on its numpy rows, with its per-worker
    generators. Ops such as RandomHorizontalFlip leave `implementation` unset (it follows the input's type):
    run from Python instead, each call would draw from a freshly seeded generator, the same flip for every
    image of an epoch."""
    from mindspore.dataset.transforms.transforms import Implementation, TensorOperation

    return isinstance(op, TensorOperation) and getattr(op, "implementation", None) != Implementation.PY


_PYTHON_DRAWS = threading.Lock()


class SeededPython:
    """A Python transform run with `random` and `numpy.random` seeded from the epoch and its input.

    Its input is already a function of (seed, epoch, sample), so its draws are too, whichever worker
    runs it. The lock keeps the seeding and the draws of one call together; Python transforms hold
    the GIL for most of their work anyway.
    """

    def __init__(self, op, seed: int):
        self.op, self.seed = op, seed

    def __call__(self, *columns):
        import random

        import numpy as np

        state = zlib.crc32(np.ascontiguousarray(columns[0]).data, self.seed)
        with _PYTHON_DRAWS:
            random.seed(state)
            np.random.seed(state)
            return self.op(*columns)


def train_transforms(config: TrainConfig):
    """MindCV's training augmentation for a configuration."""
    from mindcv.data import create_transforms

    return create_transforms(
        dataset_name="",
        image_resize=config.image_resize,
        is_training=True,
        auto_augment=config.auto_augment or None,
        scale=tuple(config.scale),
        ratio=tuple(config.ratio),
        hflip=config.hflip,
        vflip=config.vflip,
        color_jitter=config.color_jitter or None,
        interpolation=config.interpolation,
        re_prob=config.re_prob,
    )


def eval_transforms(config: TrainConfig):
    """MindCV's evaluation resize and centre crop for a configuration."""
    from mindcv.data import create_transforms

    return create_transforms(
        dataset_name="",
        image_resize=config.image_resize,
        is_training=False,
        crop_pct=config.crop_pct,
        interpolation=config.interpolation,
    )
