"""Training batches: every augmentation flag reaches them, and they are a function of (seed, epoch) alone."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import SAMPLE
from fgvctune.config import resolve
from fgvctune.data.dataset import load_dataset
from fgvctune.data.pipeline import class_tree, loader
from fgvctune.models import runtime

runtime.start()

PLAIN = dict(scale=[1.0, 1.0], ratio=[1.0, 1.0], hflip=0.0)  # no random augmentation at all


def batches(cache, epoch=0, data_dir=SAMPLE, **options) -> list[tuple[np.ndarray, np.ndarray]]:
    config = resolve(
        adapter="aircraft", data_dir=str(data_dir), image_resize=32, batch_size=16, cache_dir=cache, **options
    )
    dataset = load_dataset("aircraft", data_dir, roles=True)
    tree = class_tree(dataset, config) if config.read == "offline" else None
    batched = loader(dataset, "trainval", config, training=True, tree=tree, epoch=epoch)
    return list(batched.create_tuple_iterator(num_epochs=1, output_numpy=True))


def same(a, b) -> bool:
    return len(a) == len(b) and all(x.tobytes() == y.tobytes() for p, q in zip(a, b) for x, y in zip(p, q))


@pytest.mark.parametrize("read", ["offline", "online"])
def test_each_epoch_shuffles_and_augments_anew_and_repeats_exactly(cache, read):
    options = dict(read=read, auto_augment="randaug-m7-mstd0.5", re_prob=0.5)
    first, again, second = batches(cache, 0, **options), batches(cache, 0, **options), batches(cache, 1, **options)
    assert same(first, again)
    assert [b[1].tolist() for b in first] != [b[1].tolist() for b in second]  # another order
    assert not same(first, second)
    assert sum(len(b[1]) for b in first) == 128


def test_random_flips_are_drawn_per_image(cache):
    """With hflip 0.5 about half of an epoch's images are mirrored, in every batch a mix (a flip drawn once for
    all, as MindSpore's flip gives when called from Python, mirrors all or none)."""
    plain = batches(cache, **PLAIN)
    flipped = batches(cache, **{**PLAIN, "hflip": 0.5})
    mirrored = [[bool(np.array_equal(x, y[..., ::-1])) for x, y in zip(f[0], p[0])] for f, p in zip(flipped, plain)]
    share = np.mean([m for batch in mirrored for m in batch])
    assert 0.3 < share < 0.7, share
    assert all(0 < sum(batch) < len(batch) for batch in mirrored)


@pytest.mark.parametrize(
    "flag",
    [
        {"hflip": 1.0},
        {"vflip": 1.0},
        {"scale": [0.2, 0.5]},
        {"color_jitter": 0.4},
        {"auto_augment": "randaug-m9-mstd0.5"},
        {"auto_augment": "autoaug"},
        {"auto_augment": "trivialaugwide"},
        {"re_prob": 1.0},
    ],
    ids=lambda flag: "-".join(f"{k}={v}" for k, v in flag.items()),
)
def test_every_augmentation_flag_changes_the_images(cache, flag):
    plain = batches(cache, **PLAIN)
    changed = batches(cache, **{**PLAIN, **flag})
    assert [b[1].tolist() for b in plain] == [b[1].tolist() for b in changed]  # the same images, in the same order
    differing = sum(x.tobytes() != y.tobytes() for p, q in zip(plain, changed) for x, y in zip(p[0], q[0]))
    assert differing > 64, f"{flag} changed only {differing} of 128 images"


@pytest.mark.parametrize("flag", [{"mixup": 0.8}, {"cutmix": 1.0}], ids=["mixup", "cutmix"])
def test_mixup_and_cutmix_blend_images_and_labels(cache, flag):
    plain = batches(cache, **PLAIN)
    mixed = batches(cache, **{**PLAIN, **flag})
    labels = np.concatenate([b[1] for b in mixed])
    assert labels.shape == (128, 8) and np.allclose(labels.sum(axis=1), 1)
    assert (labels.max(axis=1) < 1).mean() > 0.5  # most rows are soft: two classes share each
    assert not same([(b[0],) for b in plain], [(b[0],) for b in mixed])


def test_in_memory_reads_every_image_once_up_front(cache, tmp_path):
    """With in_memory the online source holds the encoded images: the files can go once the pipeline is built."""
    data = tmp_path / "sample"
    shutil.copytree(SAMPLE, data)
    config = resolve(
        adapter="aircraft", data_dir=str(data), image_resize=32, batch_size=16, read="online", in_memory=True
    )
    dataset = load_dataset("aircraft", data, roles=True)
    batched = loader(dataset, "trainval", config, training=True)
    shutil.rmtree(data / "data" / "images")
    assert sum(len(b[1]) for b in batched.create_tuple_iterator(num_epochs=1, output_numpy=True)) == 128
