"""Imbalanced classes: --class-weights (training/balance.py) and --sampler balanced, and the note that names both."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from trainers import trainer

from conftest import write_image
from fgvctune.config import resolve
from fgvctune.errors import UsageError
from fgvctune.training.trainer import Trainer


@pytest.fixture
def imbalanced(tmp_path) -> Path:
    """A folder dataset with 40, 8 and 4 training images per class."""
    root = tmp_path / "imbalanced"
    for k, (name, count) in enumerate((("many", 40), ("some", 8), ("few", 4))):
        for split, n in (("train", count), ("val", 4)):
            for i in range(n):
                write_image(root / split / name / f"{name}{i}.png", (80 * k, 7 * i % 255, 100), size=(24, 24))
    return root


def test_balanced_sampler_draws_classes_evenly_repeatably_and_shards_exactly(imbalanced):
    from fgvctune import runtime
    from fgvctune.data.dataset import load_dataset
    from fgvctune.data.pipeline import Shard, loader

    runtime.start()
    dataset = load_dataset("folder", imbalanced)
    config = resolve(adapter="folder", data_dir=str(imbalanced), sampler="balanced", batch_size=4, image_resize=16)
    names = dataset.labels.classes

    def drawn(epoch=0, shard=Shard()):
        batches = loader(dataset, "train", config, training=True, shard=shard, epoch=epoch)
        return [names[int(x)] for _, labels in batches.create_tuple_iterator(output_numpy=True) for x in labels]

    epoch = drawn()
    assert len(epoch) == 52 and sorted(Counter(epoch).values()) == [17, 17, 18]
    assert drawn() == epoch and drawn(epoch=1) != epoch  # repeatable by seed, new each epoch
    for rank in (0, 1):  # two workers deal the epoch's draws out between them: 26 each, in whole batches
        assert drawn(shard=Shard(2, rank)) == epoch[rank::2][:24]


def test_balanced_order_deals_every_sample_before_any_twice():
    import random

    from fgvctune.data.pipeline import balanced_order

    labels = ["a"] * 40 + ["b"] * 8 + ["c"] * 4
    order = balanced_order(labels, random.Random(3))
    counts = Counter(labels[i] for i in order)
    assert sorted(counts.values()) == [17, 17, 18]
    for name, members in (("b", range(40, 48)), ("c", range(48, 52))):
        drawn = Counter(i for i in order if labels[i] == name)
        assert set(drawn) == set(members) and max(drawn.values()) - min(drawn.values()) <= 1
    assert len({i for i in order if labels[i] == "a"}) == counts["a"]  # the large class: no repeats
    assert balanced_order(labels, random.Random(3)) == order


def test_class_weights_enter_the_loss_and_files_are_checked(tmp_path, base, cache):
    import mindspore as ms

    from fgvctune.training.balance import class_weights

    weights_file = tmp_path / "weights.csv"
    t = trainer(tmp_path, base, cache)
    names = t.dataset.labels.classes
    weights_file.write_text("class,weight\n" + "".join(f"{n},{i + 1}\n" for i, n in enumerate(names)))
    t = trainer(tmp_path, base, cache, class_weights=str(weights_file))
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 8)).astype(np.float32)
    labels = rng.integers(0, 8, size=16).astype(np.int32)
    loss = float(t.loss_fn(ms.Tensor(logits), ms.Tensor(labels)).asnumpy())
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    w = np.arange(1, 9, dtype=np.float64)[labels]
    assert loss == pytest.approx(float((w * -log_p[np.arange(16), labels]).sum() / w.sum()), rel=1e-5)

    dataset = t.dataset
    counts = dataset.counts()["trainval"]
    balanced = class_weights("balanced", dataset, "trainval")
    assert sum(balanced[i] * counts[n] for i, n in enumerate(names)) == pytest.approx(sum(counts.values()))
    weights_file.write_text("707-320,1\nnot a class,2\n")
    with pytest.raises(UsageError, match=r"weights.csv:2: 'not a class' is not a class of this dataset"):
        class_weights(str(weights_file), dataset, "trainval")
    weights_file.write_text("707-320,1\n")
    with pytest.raises(UsageError, match="gives no weight for '737-700'"):
        class_weights(str(weights_file), dataset, "trainval")


def test_imbalance_is_named_with_both_remedies(imbalanced, cache, tmp_path):
    said = []
    config = resolve(adapter="folder", data_dir=str(imbalanced), pretrained=False, image_resize=16, cache_dir=cache)
    Trainer(
        config, tmp_path / "run", resume=False, verbose=False, progress=False, log=said.append, writes=False
    ).set_up()
    note = next(line for line in said if line.startswith("note: the classes are imbalanced"))
    assert "'many' has 40 training images, 'few' 4 (10.0x)" in note
    assert "--class-weights balanced or --sampler balanced" in note
