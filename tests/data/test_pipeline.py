"""Training batches: every augmentation flag reaches them, and they are a function of (seed, epoch) alone."""

from __future__ import annotations

import io
import shutil
import threading
import time

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE
from fgvctune import runtime
from fgvctune.config import resolve
from fgvctune.data.dataset import load_dataset
from fgvctune.data.pipeline import class_tree, eval_transforms, loader, train_transforms
from fgvctune.fileio import locked

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


# -- what MindCV's transforms do with the flags ------------------------------------------------------------------
def through(transforms, image: Image.Image, copies: int = 1) -> np.ndarray:
    """`copies` of one PNG through a list of MindCV transforms in a MindSpore pipeline (each copy draws its own
    random crop); the outputs as (copies, H, W, 3) pixel values, MindCV's normalisation undone."""
    import mindspore.dataset as ds
    from mindcv.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    encoded = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
    data = ds.NumpySlicesDataset({"image": np.stack([encoded] * copies)}, shuffle=False)
    data = data.map(operations=transforms, input_columns="image")
    rows = [row["image"] for row in data.create_dict_iterator(num_epochs=1, output_numpy=True)]
    return np.stack(rows).transpose(0, 2, 3, 1) * IMAGENET_DEFAULT_STD + IMAGENET_DEFAULT_MEAN


def coordinates(size: int) -> Image.Image:
    """Red is the pixel's column, green its row: an output pixel tells where in the source it was read."""
    x, y = np.meshgrid(np.arange(size), np.arange(size))
    return Image.fromarray(np.stack([x, y, np.zeros_like(x)], axis=-1).astype(np.uint8))


def spans(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The source width and height each output image covers (from its first to its last pixel centre)."""
    width = (images[:, :, -1, 0] - images[:, :, 0, 0]).mean(axis=1)
    height = (images[:, -1, :, 1] - images[:, 0, :, 1]).mean(axis=1)
    return width, height


def test_ratio_bounds_the_aspect_of_the_random_crops():
    """--ratio 2 3: every random crop is two to three times as wide as it is tall (MindCV's default range,
    3/4 to 4/3, gives nearly square ones)."""
    config = resolve(image_resize=32, scale=[0.1, 0.2], ratio=[2.0, 3.0], hflip=0.0)
    width, height = spans(through(train_transforms(config), coordinates(240), copies=16))
    aspect = width / height  # the 31 pixel gaps of each output side span the same share of its crop side
    assert np.all((aspect > 2.0 * 0.95) & (aspect < 3.0 * 1.05)), aspect
    assert aspect.max() - aspect.min() > 0.2  # drawn anew for every image


def test_crop_pct_sets_the_evaluation_centre_crop():
    """Evaluation resizes the short side to floor(image_resize / crop_pct) and crops the centre: with crop_pct
    0.5 the output covers the middle half of the image, with 1.0 all of it."""
    source = coordinates(256)
    for crop_pct in (0.5, 1.0):
        config = resolve(image_resize=32, crop_pct=crop_pct)
        width, height = spans(through(eval_transforms(config), source))
        resized = int(32 / crop_pct)  # 64 or 32 pixels; the 31 gaps between the kept pixel centres cover:
        expected = 31 * 256 / resized
        assert width[0] == pytest.approx(expected, abs=1.5) and height[0] == pytest.approx(expected, abs=1.5)


def test_interpolation_reaches_the_training_and_evaluation_resize():
    """A black and white checkerboard enlarged with --interpolation nearest stays black and white; bilinear
    (the default) blends grey at the edges, in training crops and in the evaluation resize alike."""
    squares = np.kron((np.indices((8, 8)).sum(axis=0) % 2) * 255, np.ones((3, 3)))
    board = Image.fromarray(squares.astype(np.uint8)).convert("RGB")  # 24 x 24: both paths enlarge it

    def grey_share(interpolation: str) -> list[float]:
        config = resolve(image_resize=32, interpolation=interpolation, scale=[0.5, 1.0], hflip=0.0)
        shares = []
        for transforms in (train_transforms(config), eval_transforms(config)):
            pixels = through(transforms, board, copies=4)
            shares.append(float(np.mean((pixels > 1) & (pixels < 254))))
        return shares

    assert grey_share("nearest") == [0.0, 0.0]
    assert all(share > 0.05 for share in grey_share("bilinear"))


def test_cutmix_prob_is_the_share_of_batches_mixed(cache):
    """With CutMix on, --cutmix-prob 0 leaves every batch as it was (one-hot labels) and 1 mixes every batch."""
    plain = batches(cache, **PLAIN)
    for probability, mixed_batches in ((0.0, 0), (1.0, len(plain))):
        cut = batches(cache, **{**PLAIN, "cutmix": 1.0, "cutmix_prob": probability})
        mixed = [a[0].tobytes() != b[0].tobytes() or bool((b[1].max(axis=1) < 1).any()) for a, b in zip(plain, cut)]
        assert sum(mixed) == mixed_batches, (probability, mixed)


def test_workers_building_one_cached_tree_take_turns(tmp_path):
    """Data-parallel workers each build the offline class tree into the same cache, one at a time (a second
    worker once found the first's half-written journal and stopped): while another holds the tree's lock,
    class_tree waits and writes nothing."""
    dataset = load_dataset("aircraft", SAMPLE, roles=True)

    def config(cache):
        return resolve(adapter="aircraft", data_dir=str(SAMPLE), image_resize=32, cache_dir=str(cache))

    name = class_tree(dataset, config(tmp_path / "elsewhere")).name  # the tree's name does not depend on the cache
    tree = tmp_path / "cache" / "trees" / name
    built = []
    with locked(tree.with_name(name + ".lock")):
        worker = threading.Thread(target=lambda: built.append(class_tree(dataset, config(tmp_path / "cache"))))
        worker.start()
        time.sleep(2)  # a conversion of the sample takes well under a second
        assert worker.is_alive() and not tree.exists()
    worker.join(timeout=60)
    assert built == [tree] and (tree / "labels.csv").is_file()
