"""training/step.py on the real training code: the EMA (and what validation and best.ckpt see), gradient
accumulation, clipping, loss scale, label smoothing and Nesterov momentum, each on a real step."""

from __future__ import annotations

import json

import numpy as np
import pytest
from trainers import first_batches, trainer, values

from conftest import checkpoint, finetune_settings
from fgvctune.training.trainer import train


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


@pytest.mark.e2e
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


# Plain SGD at rate 1: a step's update is minus the gradient.
SGD = dict(opt="sgd", momentum=0.0, weight_decay=0.0, lr=1.0, scheduler="constant", min_lr=1.0)


def one_step(t, spoil=False) -> tuple[dict, dict]:
    """The trainable weights before and after one step on the first batch (the same batch for every trainer of
    the same seed); `spoil` makes the gradients not finite, as an overflow does."""
    import mindspore as ms

    (images, labels), *_ = first_batches(t, 1)
    if spoil:
        images = ms.Tensor(np.full(images.shape, np.nan, np.float32))
    start = values(t.network.trainable_params())
    t.step(images, labels)
    return start, values(t.network.trainable_params())


@pytest.fixture(scope="module")
def plain_sgd_step(tmp_path_factory, base, cache) -> tuple[dict, dict]:
    """One plain SGD step (no clipping, no loss scale), which the clipping and loss-scale tests measure from."""
    return one_step(trainer(tmp_path_factory.mktemp("sgd"), base, cache, **SGD))


def norm_of_update(start: dict, after: dict) -> float:
    return float(np.sqrt(sum(float(((after[n] - start[n]) ** 2).sum()) for n in start)))


def test_clipping_bounds_the_global_norm_of_a_real_step(tmp_path, base, cache, plain_sgd_step):
    """The update is the gradient, whose global norm is clip_value at most."""
    assert norm_of_update(*plain_sgd_step) > 0.5
    clipped = one_step(trainer(tmp_path, base, cache, **SGD, clip_grad=True, clip_value=0.5))
    assert norm_of_update(*clipped) == pytest.approx(0.5, rel=1e-3)


def test_loss_scale_is_divided_out_and_a_dynamic_scale_skips_overflow(tmp_path, base, cache, plain_sgd_step):
    """A static scale multiplies the loss and divides the gradients: the same update as without. A dynamic one
    skips a step whose gradients are not finite and halves the scale, then updates again."""
    start, plain = plain_sgd_step
    _, scaled = one_step(trainer(tmp_path, base, cache, **SGD, loss_scale=1024.0))
    for name in plain:
        np.testing.assert_allclose(scaled[name] - start[name], plain[name] - start[name], rtol=1e-4, atol=1e-12)
    t = trainer(tmp_path, base, cache, **SGD, loss_scale=1024.0, loss_scale_type="dynamic")
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
