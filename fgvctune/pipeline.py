"""From a checked dataset to batches: offline (class tree + create_dataset) or online (GeneratorDataset),
then MindCV's create_transforms and create_loader."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from fgvctune.config import TrainConfig
from fgvctune.dataset import Dataset
from fgvctune.errors import UsageError


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


def cache_root(config: TrainConfig) -> Path:
    if config.cache_dir:
        return Path(config.cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fgvctune"


def class_tree(dataset: Dataset, config: TrainConfig) -> Path:
    """Hardlink the dataset into a cached class tree (copies across file systems); reruns reuse it."""
    from fgvctune.tree import convert

    key = json.dumps(
        [dataset.adapter, str(Path(config.data_dir).resolve()), config.adapter_options, sorted(dataset.splits)],
        sort_keys=True,
    )
    out = cache_root(config) / "trees" / f"{dataset.adapter}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    convert(dataset.adapter, config.data_dir, out, dataset=dataset, mode="hardlink")
    return out


def raw_dataset(dataset: Dataset, split: str, config: TrainConfig, training: bool, shard: Shard, tree: Path | None):
    """The unbatched ["image", "label"] dataset of one split, read offline or online."""
    import mindspore.dataset as ds

    sampler = shard.sampler(len(dataset.splits[split]), training)
    if tree is not None:
        if sampler is None:
            from mindcv.data import create_dataset

            return create_dataset(
                name="",
                root=str(tree),
                split=split,
                shuffle=training,
                num_parallel_workers=config.num_parallel_workers,
                class_indexing=dataset.labels.folder_ids,
            )
        return ds.ImageFolderDataset(
            str(tree / split),
            sampler=sampler,
            num_parallel_workers=config.num_parallel_workers,
            class_indexing=dataset.labels.folder_ids,
        )
    from fgvctune.source import COLUMNS, ImageSource

    source = ImageSource.from_dataset(dataset, split, in_memory=config.in_memory)
    if sampler is None:
        return ds.GeneratorDataset(source, column_names=COLUMNS, shuffle=training)
    return ds.GeneratorDataset(source, column_names=COLUMNS, sampler=sampler)


def loader(
    dataset: Dataset, split: str, config: TrainConfig, training: bool, shard: Shard = Shard(), tree: Path | None = None
):
    """Batches of one split. Training drops the last partial batch; evaluation keeps every sample."""
    from mindcv.data import create_loader

    per_shard = len(dataset.splits[split]) // shard.count
    if training and per_shard < config.batch_size:
        raise UsageError(
            f"batch_size {config.batch_size} is larger than the {per_shard} training images"
            f"{' per worker' if shard.count > 1 else ''} of split {split!r}",
            hint="pass a smaller --batch-size",
        )
    transform = train_transforms(config) if training else eval_transforms(config)
    return create_loader(
        raw_dataset(dataset, split, config, training, shard, tree),
        batch_size=config.batch_size,
        drop_remainder=training,
        is_training=training,
        mixup=config.mixup if training else 0.0,
        cutmix=config.cutmix if training else 0.0,
        cutmix_prob=config.cutmix_prob,
        num_classes=len(dataset.labels),
        transform=transform,
        num_parallel_workers=config.num_parallel_workers,
    )


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
