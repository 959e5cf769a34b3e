"""Online reading: the mappable source yields exactly what `convert` writes."""

from __future__ import annotations

import hashlib

import numpy as np

from fgvctune.dataset import LabelMap, load_dataset
from fgvctune.source import COLUMNS, ImageSource
from fgvctune.tree import convert


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def test_source_matches_converted_tree(aircraft, tmp_path):
    options = {"strip_banner": True}
    out = tmp_path / "out"
    convert("aircraft", aircraft, out, options=options)
    labels = LabelMap.read(out / "labels.csv")
    dataset = load_dataset("aircraft", aircraft, options=options)
    for split in ("trainval", "test"):
        from_tree = sorted(
            (digest(p.read_bytes()), labels.folder_ids[p.parent.name]) for p in (out / split).glob("*/*.jpg")
        )
        for in_memory in (False, True):
            source = ImageSource.from_dataset(dataset, split, in_memory=in_memory)
            items = [source[i] for i in range(len(source))]
            assert all(image.dtype == np.uint8 and image.ndim == 1 for image, _ in items)
            assert sorted((digest(image.tobytes()), int(label)) for image, label in items) == from_tree


def test_source_feeds_generator_dataset(aircraft):
    import mindspore.dataset as ds
    import mindspore.dataset.vision as vision

    dataset = load_dataset("aircraft", aircraft, options={"level": "manufacturer"})
    source = ImageSource.from_dataset(dataset, "test")
    pipeline = ds.GeneratorDataset(source, column_names=COLUMNS, shuffle=False)
    pipeline = pipeline.map(vision.Decode(), input_columns="image")
    rows = list(pipeline.create_tuple_iterator(output_numpy=True))
    assert len(rows) == len(source) == 6
    assert rows[0][0].shape == (50, 60, 3)
    assert sorted(int(label) for _, label in rows) == [0, 0, 1, 1, 2, 2]
