"""A model's scores on samples, in order, with test-time augmentation (flip, crops) when asked.

A split is read online, in order, through the mappable source, so every sample counts exactly once (no
batch size that shrinks, no dropped remainder) and each score is tied to its image.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fgvctune.data.dataset import Sample, load_dataset
from fgvctune.errors import DataError, UsageError
from fgvctune.results.model import Model

TTA = ("flip", "crops")


@dataclass
class Scores:
    samples: list[Sample]
    logits: np.ndarray  # with test-time augmentation, the log of the views' mean probabilities
    truth: np.ndarray  # label ids in the model's label map; -1 for a sample without a label
    plain: np.ndarray | None = None  # with test-time augmentation, the logits of the plain view alone

    @property
    def predicted(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    @property
    def probabilities(self) -> np.ndarray:
        return softmax(self.logits)


def score_split(
    model: Model,
    split: str | None = None,
    adapter: str = "",
    data_dir: str = "",
    options: dict | None = None,
    batch_size: int = 0,
    tta: str = "",
    unlabeled: bool = False,
) -> tuple[str, Scores]:
    """Run the model over a split of its own dataset, or of another whose classes match by name. With
    `unlabeled` (prediction) the split may be one without labels: its samples' truth is -1."""
    c = model.config
    if not adapter and not data_dir:
        split = split or c.val_split
        dataset = load_dataset(
            c.adapter,
            c.data_dir,
            [split],
            c.adapter_options,
            skip_bad=c.skip_bad,
            unlabeled=unlabeled,
            exclude=c.exclude,
            relabel=c.relabel,
        )
    else:
        chosen = [split] if split else None
        dataset = load_dataset(adapter or c.adapter, data_dir or c.data_dir, chosen, options, unlabeled=unlabeled)
    split = split or dataset.eval_split or next(iter(dataset.splits))
    samples = dataset.splits[split]
    if split in dataset.unlabeled:  # scored under any known label, then told apart by truth -1
        scores = score(model, [replace(s, label=model.labels.classes[0]) for s in samples], batch_size, tta)
        return split, replace(scores, samples=samples, truth=np.full(len(samples), -1, dtype=scores.truth.dtype))
    unknown = sorted({s.label for s in samples} - set(model.labels.classes))
    if unknown:
        raise DataError(
            f"split {split!r} has classes the model does not know: {', '.join(map(repr, unknown[:5]))}",
            hint="evaluate on data whose class names match the run's labels.csv",
        )
    return split, score(model, samples, batch_size, tta)


def score(model: Model, samples: list[Sample], batch_size: int = 0, tta: str = "") -> Scores:
    """The model's logits for samples, in order. With test-time augmentation (`flip`: the image and its
    mirror; `crops`: the four corners and the centre of the image resized to its evaluation size divided
    by crop_pct), each view is one forward pass and a sample's score is the mean of its views' softmax."""
    from fgvctune.data.pipeline import eval_transforms
    from fgvctune.results import metrics

    if tta and tta not in TTA:
        raise UsageError(f"--tta {tta!r}: use flip, crops or none")
    c = model.config
    batch_size = batch_size or c.batch_size
    size = c.image_resize
    if tta == "crops":  # the whole resized square; the crops are cut from it below
        transform = eval_transforms(replace(c, image_resize=int(size / c.crop_pct), crop_pct=1.0))
    else:
        transform = eval_transforms(c)
    loader = eval_loader(model, samples, batch_size, transform)
    logits, truth = metrics.predict(model.network, loader, batch_size, views=lambda x: views(x, tta, size))
    if len(truth) != len(samples):
        raise RuntimeError(f"scored {len(truth)} of {len(samples)} samples")
    if not tta:
        return Scores(samples, logits[0], truth)
    mean = np.mean([softmax(x) for x in logits], axis=0)
    return Scores(samples, np.log(np.maximum(mean, 1e-30)), truth, plain=logits[0])


def eval_loader(model: Model, samples: list[Sample], batch_size: int, transform: list):
    """MindCV's evaluation loader over samples, in order: (image, one-hot label) batches of `batch_size`."""
    import mindspore.dataset as ds
    from mindcv.data import create_loader

    from fgvctune.data.source import COLUMNS, ImageSource

    return create_loader(
        ds.GeneratorDataset(ImageSource(samples, model.labels), column_names=COLUMNS, shuffle=False),
        batch_size=batch_size,
        is_training=False,
        transform=transform,
        num_classes=len(model.labels),
        num_parallel_workers=model.config.pipeline_workers,
    )


def views(images: np.ndarray, tta: str, size: int) -> list[np.ndarray]:
    """The views of a batch (N, C, H, W) a test-time augmentation scores, the plain one first."""
    if tta == "flip":
        return [images, np.ascontiguousarray(images[..., ::-1])]
    if tta == "crops":
        height, width = images.shape[2:]
        top, left = (height - size) // 2, (width - size) // 2
        corners = [(top, left), (0, 0), (0, width - size), (height - size, 0), (height - size, width - size)]
        return [np.ascontiguousarray(images[:, :, y : y + size, x : x + size]) for y, x in corners]
    return [images]


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
