"""Online reading: a mappable source for `mindspore.dataset.GeneratorDataset`.

It yields exactly what `convert` writes: the same samples, the same encoded bytes and the same
integer labels, without writing a class tree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fgvctune.data.contract import Sample
from fgvctune.data.dataset import Dataset
from fgvctune.data.images import encoded_image
from fgvctune.data.labels import LabelMap

COLUMNS = ["image", "label"]  # the names MindCV's create_loader maps over


class ImageSource:
    """(encoded image as a 1-D uint8 array, int32 label) by index.

    By default only paths and labels are held and each file is read when asked; `in_memory=True`
    reads every image once up front, as the tutorial's ImageClsDataset does. With `short`, images
    larger than that on their short side come downscaled to it (downscale.py; JPEGs in draft mode).
    """

    def __init__(self, samples: list[Sample], labels: LabelMap, in_memory: bool = False, short: int | None = None):
        ids = labels.ids
        self._short = short
        self._samples = list(samples)
        self._labels = np.array([ids[s.label] for s in self._samples], dtype=np.int32)
        self._bytes = [self._read(i) for i in range(len(self._samples))] if in_memory else None

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, split: str, in_memory: bool = False, short: int | None = None
    ) -> ImageSource:
        return cls(dataset.splits[split], dataset.labels, in_memory=in_memory, short=short)

    def _read(self, index: int) -> np.ndarray:
        sample = self._samples[index]
        if not self._short:
            return np.frombuffer(encoded_image(sample), dtype=np.uint8)
        import io

        from fgvctune.data.downscale import downscaled_bytes

        in_file = not sample.transformed and isinstance(sample.path, Path)
        original = sample.path if in_file else io.BytesIO(encoded_image(sample))
        data = downscaled_bytes(original, self._short)
        return np.frombuffer(data or encoded_image(sample), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, index: int):
        image = self._bytes[index] if self._bytes is not None else self._read(index)
        return image, self._labels[index]

    def sample(self, index: int) -> Sample:
        return self._samples[index]
