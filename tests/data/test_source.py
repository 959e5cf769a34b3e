"""Online reading: the mappable source yields exactly what `convert` writes, in a form MindSpore decodes."""

from __future__ import annotations

import hashlib

import numpy as np

from conftest import SAMPLE
from fgvctune.data.dataset import LabelMap, encoded_image, load_dataset
from fgvctune.data.source import COLUMNS, ImageSource
from fgvctune.data.tree import convert


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


def test_awkward_images_reach_mindspore_as_they_look(tmp_path):
    """CMYK and greyscale JPEGs, GIF, WebP, 16-bit greys and transparent PNGs: MindSpore's decoder sees
    what a viewer shows (transparency over white, 16-bit greys scaled), whatever it can decode itself."""
    import mindspore.dataset.vision as vision
    from PIL import Image

    from fgvctune import runtime

    runtime.start()
    photo = Image.open(SAMPLE / "data" / "images" / "1000050.jpg").convert("RGB")
    grey = photo.convert("L")
    transparent = photo.convert("RGBA")
    transparent.putalpha(Image.linear_gradient("L").resize(photo.size).point(lambda a: 0 if a < 128 else 255))
    white = Image.new("RGB", photo.size, (255, 255, 255))
    cases = {
        "cmyk.jpg": (photo.convert("CMYK"), photo),
        "grey.jpg": (grey, grey.convert("RGB")),
        "palette.gif": (photo.convert("P"), photo.convert("P").convert("RGB")),
        "photo.webp": (photo, None),  # lossy: compared with how Pillow decodes the file
        "deep.png": (Image.fromarray(np.asarray(grey).astype(np.uint16) * 257), grey.convert("RGB")),
        "cutout.png": (transparent, Image.composite(photo, white, transparent.getchannel("A"))),
    }
    root = tmp_path / "tree"
    (root / "val" / "a").mkdir(parents=True)
    photo.save(root / "val" / "a" / "v.jpg")
    for name, (image, _) in cases.items():
        (root / "train" / "a").mkdir(parents=True, exist_ok=True)
        image.save(root / "train" / "a" / name)
    samples = {s.path.name: s for s in load_dataset("folder", root).splits["train"]}
    for name, (image, expected) in cases.items():
        if expected is None:
            expected = Image.open(root / "train" / "a" / name).convert("RGB")
        decoded = vision.Decode()(np.frombuffer(encoded_image(samples[name]), dtype=np.uint8))
        difference = np.abs(decoded.astype(int) - np.asarray(expected).astype(int)).mean()
        assert decoded.shape == (96, 128, 3) and difference < 3, f"{name}: {difference:.1f}"
