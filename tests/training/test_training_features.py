"""EMA, test-time augmentation, imbalanced classes, MindCV's step keys (loss scale, accumulation,
clipping, precision, dropout rates) and the learning-rate finder, each on the real training code."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLE, checkpoint, fgvctune, finetune_settings, write_image
from fgvctune.config import resolve
from fgvctune.errors import ModelError, UsageError
from fgvctune.training import strategy
from fgvctune.training.trainer import Trainer, train


def trainer(tmp_path, base, cache, **options) -> Trainer:
    """A Trainer set up with its step built (nothing written), for tests that take single steps."""
    config = resolve(**finetune_settings(base, cache, **options))
    t = Trainer(config, tmp_path / "run", resume=False, verbose=False, progress=False, log=print, writes=False)
    t.set_up()
    t.build_step(head_only=False)
    t.step.set_train(True)
    strategy.set_train_mode(t.network, True, t.frozen_norms)  # as each epoch starts
    return t


def values(params) -> dict[str, np.ndarray]:
    return {p.name: p.asnumpy().copy() for p in params}


def first_batches(t: Trainer, count: int) -> list:
    batches = []
    for images, labels in t.train_batches(0):
        batches.append((images, labels))
        if len(batches) == count:
            return batches
    raise AssertionError("not enough batches")


# -- frozen blocks ---------------------------------------------------------------------------------------------
def test_frozen_blocks_train_folded_and_save_the_weights_they_loaded(tmp_path, base, cache):
    """--freeze 7 folds the frozen blocks' BatchNorm into their convolutions (gradual unfreezing's head-only
    phase folds every block, the next phase unfolds what it trains); a step leaves the frozen weights as loaded
    and the checkpoint keeps MindCV's names."""
    from fgvctune.kernels import fold

    def folded(t):
        return [name for name, cell in t.network.cells_and_names() if type(cell) is fold.FoldedBatchNorm2d]

    t = trainer(tmp_path, base, cache, freeze="7")
    assert folded(t) == t.frozen_norms and t.frozen_norms[-1].startswith("features.6.")
    t.build_step(head_only=True)
    assert len(folded(t)) == t.folded == 34  # every BatchNorm of mobilenet_v3_small_100
    t.build_step(head_only=False)
    assert folded(t) == t.frozen_norms
    t.step.set_train(True)
    strategy.set_train_mode(t.network, True, t.frozen_norms)
    images, labels = first_batches(t, 1)[0]
    t.step(images, labels)
    t.folder.mkdir()
    t._save(t.step, "last.ckpt", 1)
    saved, start = checkpoint(t.folder / "last.ckpt"), checkpoint(base)
    assert set(start) <= set(saved)
    frozen = [k for k in start if k.startswith(tuple(f"features.{i}." for i in range(7)))]
    assert frozen and all(saved[k].tobytes() == start[k].tobytes() for k in frozen)
    assert saved["features.7.layers.0.weight"].tobytes() != start["features.7.layers.0.weight"].tobytes()


# -- model EMA ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("warmup", [2000, 0])
def test_ema_follows_each_update_and_is_what_validation_sees(tmp_path, base, cache, warmup):
    t = trainer(tmp_path, base, cache, ema=True, ema_decay=0.9, ema_warmup=warmup, freeze="3")
    followed = [p.name for p in t.step.followed]
    assert followed and not any(name.startswith(tuple(f"features.{i}." for i in range(3))) for name in followed)
    assert "classifier.3.weight" in followed and any(n.endswith("moving_mean") for n in followed)
    before = values(t.step.followed)
    (images, labels), *_ = first_batches(t, 1)
    t.step(images, labels)
    after = values(t.step.followed)
    decay = 0.9 * (1 - np.exp(-1 / warmup)) if warmup else 0.9  # MindCV's warm-up of the decay, or none
    averages = {p.name[len("ema.") :]: p.asnumpy() for p in t.step.averages}
    for name in followed:
        expected = decay * before[name] + (1 - decay) * after[name]
        np.testing.assert_allclose(averages[name], expected, rtol=1e-5, atol=1e-8)
    assert any(averages[n].tobytes() != after[n].tobytes() for n in followed)  # the average is not the weights
    with t._evaluated_weights():
        seen = values(t.step.followed)
        assert all(seen[n].tobytes() == averages[n].tobytes() for n in followed)
    restored = values(t.step.followed)
    assert all(restored[n].tobytes() == after[n].tobytes() for n in followed)  # training goes on from its own


def test_ema_run_saves_the_average_as_best_and_both_in_last(tmp_path, base, cache):
    folder = tmp_path / "ema"
    train(output=folder, progress=False, **finetune_settings(base, cache, epoch_size=1, ema=True, freeze="3"))
    best, last, start = checkpoint(folder / "best.ckpt"), checkpoint(folder / "last.ckpt"), checkpoint(base)
    averaged = [k[len("ema.") :] for k in last if k.startswith("ema.")]
    assert "classifier.3.weight" in averaged
    for name in averaged:
        assert best[name].tobytes() == last["ema." + name].tobytes(), name
    assert any(best[n].tobytes() != last[n].tobytes() for n in averaged)  # best.ckpt is not the raw weights
    frozen = [k for k in start if k.startswith(("features.0.", "features.1.", "features.2."))]
    assert frozen and all(best[k].tobytes() == start[k].tobytes() for k in frozen)  # frozen: exactly as loaded
    evaluation = json.loads((folder / "eval-test" / "eval.json").read_text())
    assert evaluation["checkpoint"].endswith("best.ckpt") and evaluation["count"] == 64


# -- test-time augmentation -----------------------------------------------------------------------------------
class Counting:
    """A network that counts its forward passes and the images it saw."""

    def __init__(self, network):
        self.network, self.calls = network, 0

    def set_train(self, mode):
        self.network.set_train(mode)

    def __call__(self, images):
        self.calls += 1
        return self.network(images)


class Mirrored(Counting):
    """A network that sees every image mirrored."""

    def __call__(self, images):
        import mindspore as ms

        return super().__call__(ms.Tensor(np.ascontiguousarray(images.asnumpy()[..., ::-1])))


def test_flip_averages_the_image_and_its_mirror(digits_run):
    from fgvctune.results.evaluation import _score, _softmax, load_model

    model = load_model(digits_run)
    samples = _val_samples(model)
    plain = _score(model, samples, tta="")
    flipped = _score(model, samples, tta="flip")
    assert len(flipped.truth) == len(plain.truth) == len(samples)  # every sample once
    np.testing.assert_array_equal(flipped.plain, plain.logits)  # the first view is the plain one
    model.network = Mirrored(model.network)
    mirror = _score(model, samples, tta="")
    expected = (_softmax(plain.logits) + _softmax(mirror.logits)) / 2
    np.testing.assert_allclose(flipped.probabilities, expected, atol=1e-5)
    assert np.abs(flipped.probabilities - _softmax(plain.logits)).max() > 1e-3  # the mirror changed something


def test_crops_are_five_views_one_forward_each(digits_run, tmp_path):
    from fgvctune.results.evaluation import _score, evaluate, load_model, views

    square = np.arange(2 * 3 * 6 * 6, dtype=np.float32).reshape(2, 3, 6, 6)
    cut = views(square, "crops", 4)
    assert [v.shape for v in cut] == [(2, 3, 4, 4)] * 5
    assert [v[0, 0, 0, 0] for v in cut] == [
        square[0, 0, 1, 1],
        0,
        square[0, 0, 0, 2],
        square[0, 0, 2, 0],
        square[0, 0, 2, 2],
    ]

    model = load_model(digits_run)
    samples = _val_samples(model)[:40]
    model.network = Counting(model.network)
    scores = _score(model, samples, batch_size=16, tta="crops")
    assert model.network.calls == 3 * 5  # 40 images in 3 batches of 16, one forward per view
    assert len(scores.truth) == 40 and np.allclose(scores.probabilities.sum(axis=1), 1, atol=1e-5)

    result = evaluate(digits_run, split="val", tta="crops", output=tmp_path / "eval-crops")
    assert result.tta == "crops" and set(result.plain) == {"top1", "top5", "mean_per_class"}
    assert json.loads((tmp_path / "eval-crops" / "eval.json").read_text())["plain"] == result.plain


def _val_samples(model):
    from fgvctune.data.dataset import load_dataset

    c = model.config
    return load_dataset(c.adapter, c.data_dir, ["val"]).splits["val"]


def test_tta_through_eval_predict_and_the_report(tmp_path, digits_run):
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    shown = fgvctune("eval", str(run), "--tta", "flip", log=tmp_path / "eval.log")
    assert shown.returncode == 0, shown.stdout[-2000:]
    assert "with flip test-time augmentation; without: top-1" in shown.stdout
    bad = fgvctune("eval", str(run), "--tta", "mirror", log=tmp_path / "bad.log")
    assert (
        bad.returncode != 0 and bad.stdout.strip().splitlines()[-1] == "error: --tta 'mirror': use flip, crops or none"
    )
    predicted = fgvctune("predict", str(run), "--tta", "crops", log=tmp_path / "predict.log")
    assert predicted.returncode == 0, predicted.stdout[-2000:]
    assert fgvctune("report", str(run), log=tmp_path / "report.log").returncode == 0
    assert "With test-time augmentation (flip); without it: top-1" in (run / "report.html").read_text()


# -- imbalanced classes ---------------------------------------------------------------------------------------
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


# -- MindCV's step keys ---------------------------------------------------------------------------------------
def test_accumulated_steps_update_as_one_large_batch(tmp_path, cache):
    """Linear probe of resnet18 (no dropout before its classifier, frozen BatchNorm): 2 batches of 8 with
    gradient_accumulation_steps 2 move the classifier as 1 batch of 16 does, to float rounding."""
    settings = dict(model="resnet18", ckpt_path="", linear_probe=True, num_parallel_workers=1, weight_decay=1e-4)

    def one_update(batch_size, k):
        t = trainer(
            tmp_path / f"b{batch_size}", None, cache, batch_size=batch_size, gradient_accumulation_steps=k, **settings
        )
        batches = first_batches(t, k)
        for i, (images, labels) in enumerate(batches):
            t.step(images, labels, i == k - 1) if k > 1 else t.step(images, labels)
        images = np.concatenate([b[0].asnumpy() for b in batches])
        return images, {p.name: p.asnumpy() for p in t.network.trainable_params()}

    small_images, accumulated = one_update(8, 2)
    large_images, large = one_update(16, 1)
    np.testing.assert_array_equal(small_images, large_images)  # the same 16 images either way
    start = trainer(tmp_path / "start", None, cache, batch_size=16, **settings)
    moved = {p.name: p.asnumpy() for p in start.network.trainable_params()}
    for name in large:
        assert np.abs(large[name] - moved[name]).max() > 1e-4, name  # the update is not negligible
        np.testing.assert_allclose(accumulated[name], large[name], rtol=1e-5, atol=1e-7, err_msg=name)


def test_clipping_bounds_the_global_norm_of_a_real_step(tmp_path, base, cache):
    """Plain SGD at rate 1: the update is the gradient, whose global norm is clip_value at most."""
    settings = dict(opt="sgd", momentum=0.0, weight_decay=0.0, lr=1.0, scheduler="constant", min_lr=1.0)

    def update_norm(**options):
        t = trainer(tmp_path, base, cache, **settings, **options)
        before = values(t.network.trainable_params())
        (images, labels), *_ = first_batches(t, 1)
        t.step(images, labels)
        after = values(t.network.trainable_params())
        return float(np.sqrt(sum(float(((after[n] - before[n]) ** 2).sum()) for n in before)))

    assert update_norm() > 0.5
    assert update_norm(clip_grad=True, clip_value=0.5) == pytest.approx(0.5, rel=1e-3)


def test_loss_scale_is_divided_out_and_a_dynamic_scale_skips_overflow(tmp_path, base, cache):
    import mindspore as ms

    def one_step(t, spoil=False):
        (images, labels), *_ = first_batches(t, 1)
        if spoil:  # gradients that are not finite, as an overflow gives
            images = ms.Tensor(np.full(images.shape, np.nan, np.float32))
        start = values(t.network.trainable_params())
        t.step(images, labels)
        return start, values(t.network.trainable_params())

    start, plain = one_step(trainer(tmp_path, base, cache))
    _, scaled = one_step(trainer(tmp_path, base, cache, loss_scale=1024.0))
    for name in plain:  # the scale multiplies the loss and divides the gradients: the same update
        np.testing.assert_allclose(scaled[name] - start[name], plain[name] - start[name], rtol=1e-4, atol=1e-12)
    t = trainer(tmp_path, base, cache, loss_scale=1024.0, loss_scale_type="dynamic")
    start, after = one_step(t, spoil=True)
    assert all(start[n].tobytes() == after[n].tobytes() for n in start)  # skipped
    assert float(t.step.scale.asnumpy()) == 512.0
    start, after = one_step(t)
    assert all(start[n].tobytes() != after[n].tobytes() for n in start) and int(t.step.good_updates.asnumpy()) == 1


@pytest.fixture(scope="module")
def smoothed_nesterov_step(tmp_path_factory, base, cache) -> dict:
    """One real step with label smoothing 0.1 and Nesterov momentum 0.9 at a constant rate: the batch, the
    loss and logits it gave, the weights before and after, the momentum buffers after."""
    settings = dict(label_smoothing=0.1, nesterov=True, momentum=0.9, scheduler="constant", lr=0.05, min_lr=0.05)
    t = trainer(tmp_path_factory.mktemp("step"), base, cache, **settings)
    (images, labels), *_ = first_batches(t, 1)
    before = values(t.optimizer.parameters)
    loss, logits = t.step(images, labels)
    return {
        "labels": labels.asnumpy(),
        "loss": float(loss.asnumpy()),
        "logits": logits.asnumpy(),
        "before": before,
        "after": values(t.optimizer.parameters),
        "moments": {p.name[len("moments.") :]: p.asnumpy() for p in t.optimizer.moments},
        "lr": t.lr_steps[0],
    }


def test_label_smoothing_is_the_loss_of_a_real_step(smoothed_nesterov_step):
    """The step's loss is the cross-entropy against labels smoothed by 0.1: (1 - 0.1) on the true class plus
    0.1 / K on every class, K = 8."""
    step = smoothed_nesterov_step
    logits, labels = step["logits"].astype(np.float64), step["labels"]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    target = np.full(log_p.shape, 0.1 / 8) + 0.9 * np.eye(8)[labels]
    assert step["loss"] == pytest.approx(float(-(target * log_p).sum(axis=1).mean()), rel=1e-5)
    plain = float(-log_p[np.arange(len(labels)), labels].mean())
    # The plain loss lies outside the tolerance above (by ten times it), so that check tells the two apart. (How
    # far apart they are depends on the new head's first logits, which follow the base run's rounding: 0.0009 seen.)
    assert abs(step["loss"] - plain) > 10 * 1e-5 * plain


def test_nesterov_momentum_takes_the_look_ahead_step(smoothed_nesterov_step):
    """From empty momentum buffers the first update holds the gradient g (weight decay included) in the
    buffer; Nesterov moves the weights by -lr (g + 0.9 g), plain momentum would move them by -lr g."""
    step = smoothed_nesterov_step
    misses = {}
    for name, buffer in step["moments"].items():
        update = (step["after"][name] - step["before"][name]).astype(np.float64)
        buffer = buffer.astype(np.float64)
        # update / (-lr g), fitted over the tensor; float32 weights round each update by up to one unit in the
        # last place of the weight, which bounds how far the fit may stray (small updates of large weights)
        factor = float((update * buffer).sum() / (buffer**2).sum()) / -step["lr"]
        ulp = np.spacing(np.maximum(np.abs(step["before"][name]), np.abs(step["after"][name]))).astype(np.float64)
        rounding = float((ulp * np.abs(buffer)).sum() / (buffer**2).sum()) / step["lr"]
        assert rounding < 0.1, name  # so the fit still tells 1.9 (Nesterov) from 1.0 (plain momentum)
        if abs(factor - 1.9) > max(1.9e-3, rounding):
            misses[name] = (factor, rounding)
    assert not misses


@pytest.mark.parametrize("level", ["O1", "O2"])
def test_mixed_precision_levels_train_on_the_cpu(tmp_path, base, cache, level):
    run = train(
        output=tmp_path / level, progress=False, **finetune_settings(base, cache, epoch_size=1, amp_level=level)
    )
    assert len(run.rows) == 1 and np.isfinite(run.rows[0]["train_loss"])
    assert not (Path.cwd() / "rewritten_network").exists()  # O1's generated code lives in the cache
    assert checkpoint(tmp_path / level / "best.ckpt")["classifier.3.weight"].dtype == np.float32


def test_drop_rates_reach_the_models_that_take_them_through_the_seeded_dropout(pynative):
    from fgvctune.kernels.swaps import SeededDropout
    from fgvctune.models.factory import create_network

    network, _ = create_network("resnest50", 10, drop_rate=0.3)
    assert [round(c.p, 3) for _, c in network.cells_and_names() if isinstance(c, SeededDropout)] == [0.3]
    network, _ = create_network("convnext_tiny", 10, drop_path_rate=0.2)
    rates = [c.p for _, c in network.cells_and_names() if isinstance(c, SeededDropout)]
    assert len(rates) == 17 and max(rates) == pytest.approx(0.2)  # rates grow over 18 blocks; the first's is 0
    with pytest.raises(ModelError, match="mobilenet_v3_small_100 does not take drop_rate"):
        create_network("mobilenet_v3_small_100", 10, drop_rate=0.3)


# -- lr-find --------------------------------------------------------------------------------------------------
def test_lr_find_sweeps_suggests_and_leaves_the_checkpoint_alone(tmp_path, base, cache):
    """The sweep writes its two files and prints a suggestion; the starting checkpoint is unchanged. --verbose
    shows MindCV's own messages (its warning about the weight decay filter)."""
    before = base.read_bytes()
    out = tmp_path / "sweep"
    found = fgvctune(
        *("lr-find", "-a", "aircraft", "-d", str(SAMPLE), "--ckpt-path", str(base), "--no-pretrained"),
        *("--cache-dir", cache, "--image-resize", "32", "--batch-size", "16", "--steps", "30", "-o", str(out)),
        "--verbose",
        log=tmp_path / "lr-find.log",
    )
    assert found.returncode == 0, found.stdout[-2000:]
    assert "You are using AUTO weight decay filter" in found.stdout
    assert base.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["lr-find.csv", "lr-find.png"]
    rows = [line.split(",") for line in (out / "lr-find.csv").read_text().splitlines()[1:]]
    rates = [float(r[1]) for r in rows]
    assert 10 < len(rows) <= 30 and all(b > a for a, b in zip(rates, rates[1:]))
    assert rates[0] == pytest.approx(1e-7)
    suggestion = float(found.stdout.split("suggested lr ")[1].split()[0])
    assert rates[0] <= suggestion <= rates[-1]


def test_suggestion_is_the_steepest_descent_before_the_lowest_loss():
    from fgvctune.training.lrfind import suggest

    loss = [2.0] * 8 + [2.0 - 0.05 * i for i in range(1, 6)] + [1.7, 1.2, 1.0, 0.95, 0.9, 1.5, 3, 6, 9, 12]
    rates = [10 ** (-6 + i / 4) for i in range(len(loss))]
    steepest, lowest = suggest(rates, loss)
    assert steepest == rates[14] and lowest == rates[17]
