"""Reading downscaled images: a cached tree keyed by size (offline) and draft-mode decoding (online); the source
images are never touched."""

from __future__ import annotations

import hashlib
import io
import shutil
from dataclasses import asdict

import numpy as np
from PIL import Image

from conftest import SAMPLE
from fgvctune import runtime
from fgvctune.config import dump_yaml, resolve
from fgvctune.data.dataset import load_dataset
from fgvctune.data.downscale import short_side
from fgvctune.data.pipeline import class_tree, loader
from fgvctune.data.source import ImageSource

runtime.start()


def fingerprint(folder) -> dict:
    return {
        str(p.relative_to(folder)): (hashlib.sha1(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def images(tree) -> list:
    return [p for p in sorted(tree.rglob("*.jpg"))]


def test_offline_reads_a_cached_tree_downscaled_to_the_short_side_and_leaves_the_source_alone(cache):
    before = fingerprint(SAMPLE)
    config = resolve(adapter="aircraft", data_dir=str(SAMPLE), image_resize=56, batch_size=16, cache_dir=cache)
    dataset = load_dataset("aircraft", SAMPLE, roles=True)
    full = class_tree(dataset, config)
    config.downscale = True
    small = class_tree(dataset, config)
    assert short_side(config) == 64  # floor(56 / 0.875)
    assert small != full and small.name.endswith("-short64")
    assert [p.relative_to(small) for p in images(small)] == [p.relative_to(full) for p in images(full)]
    assert len(images(small)) == 192
    for path in images(small):
        with Image.open(path) as im:
            assert min(im.size) == 64 and im.size == (85, 64)  # the sample's 128x96, aspect kept
    for path in images(full):
        with Image.open(path) as im:
            assert im.size == (128, 96)
    assert fingerprint(SAMPLE) == before
    # Training reads it: every trainval image, at the training size.
    batches = list(loader(dataset, "trainval", config, training=True, tree=small).create_tuple_iterator(num_epochs=1))
    assert sum(len(b[1]) for b in batches) == 128 and batches[0][0].shape[1:] == (3, 56, 56)
    # Another size is another tree; a rerun reuses what is there.
    stamp = fingerprint(small)
    assert class_tree(dataset, config) == small and fingerprint(small) == stamp
    config.image_resize = 28
    assert class_tree(dataset, config).name.endswith("-short32")


def test_online_reads_draft_decoded_downscaled_images(cache):
    before = fingerprint(SAMPLE)
    dataset = load_dataset("aircraft", SAMPLE, roles=True)
    full = ImageSource.from_dataset(dataset, "test")
    small = ImageSource.from_dataset(dataset, "test", short=40)
    larger = ImageSource.from_dataset(dataset, "test", short=500)
    for i in range(len(small)):
        with Image.open(io.BytesIO(small[i][0].tobytes())) as im:
            assert im.size == (53, 40)
        assert small[i][1] == full[i][1]
        assert larger[i][0].tobytes() == full[i][0].tobytes()  # no larger than asked: the file as it is
    assert fingerprint(SAMPLE) == before
    config = resolve(
        adapter="aircraft",
        data_dir=str(SAMPLE),
        image_resize=32,
        batch_size=16,
        read="online",
        downscale=True,
        cache_dir=cache,
    )
    batches = list(loader(dataset, "trainval", config, training=True).create_tuple_iterator(num_epochs=1))
    assert sum(len(b[1]) for b in batches) == 128 and batches[0][0].shape[1:] == (3, 32, 32)


def test_eval_reads_full_size_images_of_a_downscaled_run(digits_run, tmp_path):
    """`fgvctune eval` reads the files as they are, whatever --downscale says: a run made with it scores images
    larger than its short side exactly as the same run without it (downscaled and re-encoded, noise scores
    otherwise)."""
    from fgvctune.results.evaluation import evaluate

    data = tmp_path / "noise"
    rng = np.random.default_rng(0)
    for name in map(str, range(10)):  # the digits' classes, two 96x96 images of noise each
        for i in range(2):
            (data / "val" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(data / "val" / name / f"{i}.png")
    scored = {}
    for downscale in (False, True):
        run = tmp_path / f"downscale-{downscale}"
        run.mkdir()
        for name in ("best.ckpt", "labels.csv"):
            shutil.copy(digits_run / name, run / name)
        config = resolve(digits_run / "config.yaml", data_dir=str(data), downscale=downscale)
        (run / "config.yaml").write_text(dump_yaml(config), encoding="utf-8")
        result = asdict(evaluate(run))
        scored[downscale] = {k: v for k, v in result.items() if k not in ("checkpoint", "files")}
    assert short_side(config) == 36 < 96
    assert scored[True]["top_losses"], "noise: most predictions are wrong, each with its own confidence"
    assert scored[True] == scored[False]
