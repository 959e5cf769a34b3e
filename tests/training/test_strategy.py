"""Fine-tuning strategies on real MindCV models: which parameters train, at what rate."""

from __future__ import annotations

import numpy as np
import pytest

from fgvctune import runtime
from fgvctune.errors import UsageError
from fgvctune.training import strategy

ms = runtime.start(mode="pynative")
import mindcv  # noqa: E402  (after runtime.start, which must see MindSpore first)

pytestmark = pytest.mark.usefixtures("pynative")

MODEL = "mobilenet_v3_small_100"


@pytest.fixture(scope="module")
def network():
    return mindcv.create_model(MODEL, num_classes=5)


def test_freeze_7_is_exactly_features_0_to_6(network):
    plan = strategy.plan(network, MODEL, freeze="7")
    frozen = {".".join(n.split(".")[:2]) for n in plan.frozen}
    assert frozen == {f"features.{i}" for i in range(7) if i != 2}  # features.2 is an activation: no weights
    assert not any(n.startswith(("features.10.", "features.11.", "features.15.")) for n in plan.frozen)
    assert all(n.startswith("features.") for n in plan.frozen)


def test_blocks_for_models_without_features():
    resnet = mindcv.create_model("resnet18", num_classes=3)
    plan = strategy.plan(resnet, "resnet18", freeze="3")
    assert [b.name for b in plan.blocks][:4] == ["stem", "layer1.0", "layer1.1", "layer2.0"]
    assert {n.split(".")[0] for n in plan.frozen} == {"conv1", "bn1", "layer1"}
    convnext = mindcv.create_model("convnext_tiny", num_classes=3)
    plan = strategy.plan(convnext, "convnext_tiny", freeze="all")
    assert [b.name for b in plan.blocks] == [f"feature.{i}" for i in range(8)]
    assert sorted({n.split(".")[0] for n in plan.trainable}) == ["classifier", "norm"]
    rates = {(p.name.split(".")[0], p.lr_mult) for p in strategy.plan(convnext, "convnext_tiny", head_lr_mult=4).params}
    assert rates == {("feature", 1), ("norm", 4), ("classifier", 4)}  # the head, whatever the model names it


def test_linear_probe_is_the_last_dense_and_freeze_all_is_the_head(network):
    probe = strategy.plan(network, MODEL, linear_probe=True)
    assert probe.trainable == ["classifier.3.weight", "classifier.3.bias"]
    head = strategy.plan(network, MODEL, freeze="all")
    assert head.trainable == ["classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias"]


def test_lr_mult_most_specific_pattern_wins_and_every_param_in_one_group(network):
    plan = strategy.plan(
        network, MODEL, lr_mult=["classifier=1.2", "classifier.3=2", "features.1=3", "features.1[3-5]=1.5"]
    )
    mult = {p.name: p.lr_mult for p in plan.params}
    assert mult["classifier.0.weight"] == 1.2 and mult["classifier.3.bias"] == 2
    assert mult["features.1.gamma"] == 3
    assert {m for n, m in mult.items() if n.startswith("features.10.")} == {1}
    assert {m for n, m in mult.items() if n.startswith("features.14.")} == {1.5}
    groups = strategy.param_groups(network, plan, [0.1, 0.2], 1e-4)
    grouped = [p.name for g in groups[:-1] for p in g["params"]]
    assert sorted(grouped) == sorted(p.name for p in network.trainable_params())
    assert len(grouped) == len(set(grouped))
    assert [p.name for p in groups[-1]["order_params"]] == [p.name for p in network.trainable_params()]


def test_multiplied_rates_reach_the_optimizer_at_every_step(network):
    plan = strategy.plan(network, MODEL, lr_mult=["classifier=1.2", "features.13=1.05"])
    schedule = list(
        mindcv.create_scheduler(
            steps_per_epoch=4,
            scheduler="cosine_decay",
            lr=0.1,
            num_epochs=3,
            warmup_epochs=1,
            warmup_factor=0.1,
            decay_epochs=2,
        )
    )
    groups = strategy.param_groups(network, plan, schedule, 1e-4)
    optimizer = mindcv.create_optimizer(
        groups, opt="momentum", lr=schedule, weight_decay=1e-4, weight_decay_filter="auto"
    )
    params = {p.name: p for p in network.trainable_params()}
    base = optimizer.get_lr_parameter(params["features.1.gamma"]).asnumpy()
    np.testing.assert_allclose(base, schedule, rtol=1e-6)
    np.testing.assert_allclose(
        optimizer.get_lr_parameter(params["classifier.3.weight"]).asnumpy(), base * 1.2, rtol=1e-6
    )
    deep = next(p for n, p in params.items() if n.startswith("features.13."))
    np.testing.assert_allclose(optimizer.get_lr_parameter(deep).asnumpy(), base * 1.05, rtol=1e-6)


def test_one_schedule_for_the_optimizer_unless_rates_are_multiplied(network):
    """Without multipliers the groups differ by weight decay alone and share the optimizer's schedule (a
    grouped rate is computed once per parameter and doubles the train step's compile time)."""
    schedule = [0.1, 0.2]
    for options, grouped in (({}, False), ({"lr_mult": ["classifier=2"]}, True)):
        groups = strategy.param_groups(network, strategy.plan(network, MODEL, **options), schedule, 1e-4)
        optimizer = mindcv.create_optimizer(
            groups, opt="momentum", lr=schedule, weight_decay=1e-4, weight_decay_filter="auto"
        )
        assert optimizer.is_group_lr == grouped, options


def test_no_weight_decay_on_biases_and_norms(network):
    plan = strategy.plan(network, MODEL)
    decay = {p.name: p.decay for p in plan.params}
    assert not decay["features.1.gamma"] and not decay["classifier.3.bias"] and decay["classifier.3.weight"]
    assert all(strategy.plan(network, MODEL, weight_decay_filter="disable").params[i].decay for i in range(5))


def test_layer_decay_grows_with_depth(network):
    plan = strategy.plan(network, MODEL, layer_decay=0.5)
    mult = {p.name: p.lr_mult for p in plan.params}
    count = len(plan.blocks)
    assert mult["features.0.weight"] == pytest.approx(0.5**count)
    assert mult["features.1.gamma"] == pytest.approx(0.5 ** (count - 1))
    assert mult["classifier.3.weight"] == 1


def one_step(opt: str, weight_decay: float, **strategy_options) -> dict:
    """Every trainable parameter's change in one real training step from the same weights and batch."""
    from fgvctune.models.factory import create_network
    from fgvctune.training.step import TrainStep

    ms.set_seed(1)
    net, _ = create_network(MODEL, 3, seed=1)
    plan = strategy.plan(net, MODEL, **strategy_options)
    frozen_norms = strategy.apply(net, plan)
    groups = strategy.param_groups(net, plan, [LR], weight_decay)
    optimizer = mindcv.create_optimizer(
        groups, opt=opt, lr=[LR], momentum=0.9, weight_decay=weight_decay, weight_decay_filter="auto"
    )
    step = TrainStep(net, mindcv.create_loss("CE"), optimizer, ms.nn.Identity())
    step.set_train(True)
    strategy.set_train_mode(net, True, frozen_norms)
    rng = np.random.default_rng(0)
    images = ms.Tensor(rng.random((4, 3, 32, 32), dtype=np.float32))
    labels = ms.Tensor(np.array([0, 1, 2, 1]), ms.int32)
    before = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    step(images, labels)
    return {p.name: p.asnumpy() - before[p.name] for p in net.get_parameters() if p.name in before}


LR = 0.1


def assert_update(actual, expected, weights, name, factor=1.0):
    """Equal up to the float rounding of weight + update (a few ulps of the weights, times the factor the
    expected update was scaled by with its rounding) and 0.1%."""
    ulps = 4 * (1 + factor) * np.spacing(np.abs(weights).max()).astype(np.float64)
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=ulps, err_msg=name)


def expected_factor(name: str) -> float:
    """Rate multipliers for --layer-decay 0.8 --head-lr-mult 5 --lr-mult classifier=3 --lr-mult features.13=2,
    worked out by hand: feature block i of mobilenet_v3_small's 17 gets 0.8^(17-i), the head (classifier.0 and
    .3) 5; the most specific pattern multiplies on top."""
    parts = name.split(".")
    factor = 0.8 ** (17 - int(parts[1])) if parts[0] == "features" else 5.0
    if parts[0] == "classifier":
        factor *= 3
    if parts[:2] == ["features", "13"]:
        factor *= 2
    return factor


@pytest.mark.parametrize("opt", ["momentum", "adamw"])
def test_every_group_moves_at_base_rate_times_its_factor(opt):
    """One real step: each parameter's update equals the update at the base rate times its factor."""
    from fgvctune.models.factory import create_network

    ms.set_seed(1)
    weights = {p.name: p.asnumpy() for p in create_network(MODEL, 3, seed=1)[0].get_parameters()}
    options = {"layer_decay": 0.8, "head_lr_mult": 5, "lr_mult": ["classifier=3", "features.13=2"]}
    plain, scaled = one_step(opt, 1e-4), one_step(opt, 1e-4, **options)
    factors = {name: expected_factor(name) for name in plain}
    assert len({round(f, 12) for f in factors.values()}) > 10  # many distinct rates are checked
    moved = 0
    for name, delta in plain.items():
        if "moving_" in name or name.endswith("dropout_calls"):
            continue  # statistics and counters, not learned
        assert_update(scaled[name], factors[name] * delta, weights[name], name, factors[name])
        moved += bool(np.abs(delta).max() > 0)
    assert moved > 100


def test_bad_strategies_are_refused(network):
    with pytest.raises(UsageError, match="has 17 feature blocks"):
        strategy.plan(network, MODEL, freeze="30")
    with pytest.raises(UsageError, match="matches no parameter"):
        strategy.plan(network, MODEL, lr_mult=["feature.1=2"])
    with pytest.raises(UsageError, match="PATTERN=FACTOR"):
        strategy.plan(network, MODEL, lr_mult=["classifier:2"])


@pytest.mark.e2e
def test_rates_and_weight_decay_through_fgvctune_train(tmp_path, base, few_digits, cache):
    """`fgvctune train` with --layer-decay, --head-lr-mult, --lr-mult and each --weight-decay-filter, one plain SGD
    step (the 12 training images in one batch, constant rate): each parameter moves by -lr * factor * (gradient +
    decay), the gradient worked out again here at the starting checkpoint on the same batch; decay is wd * weight
    on every parameter under `disable`, on none of the biases and norm parameters under norm_and_bias. PyNative
    mode, twice as fast here: the optimizer, which applies the groups, is compiled in either mode."""
    from typer.testing import CliRunner

    from conftest import checkpoint
    from fgvctune.cli import app
    from fgvctune.config import resolve
    from fgvctune.training.trainer import Trainer

    wd = 0.5
    runs = {}
    for filter_ in ("norm_and_bias", "disable"):
        runs[filter_] = tmp_path / filter_
        result = CliRunner().invoke(
            app,
            [
                *("train", "-a", "folder", "-d", str(few_digits), "--ckpt-path", str(base), "--no-pretrained"),
                *("--cache-dir", cache, "--image-resize", "32", "--batch-size", "12", "--epoch-size", "1"),
                *("--mode", "pynative", "--opt", "sgd", "--momentum", "0", "--scheduler", "constant", "--lr", str(LR)),
                *("--weight-decay", str(wd), "--weight-decay-filter", filter_, "--layer-decay", "0.8"),
                *("--head-lr-mult", "5"),
                *("--lr-mult", "classifier=3", "--lr-mult", "features.13=2", "-o", str(runs[filter_])),
            ],
        )
        assert result.exit_code == 0, result.output

    # The gradient of the run's first step: its network as set up (starting checkpoint, seeded dropout) and batch.
    config = resolve(runs["disable"] / "config.yaml")
    trainer = Trainer(config, tmp_path / "unused", resume=False, verbose=False, progress=False, log=print, writes=False)
    trainer.set_up()
    # Where the runs started: the checkpoint's weights and a new classifier (the base learnt other classes).
    start = {p.name: p.asnumpy().copy() for p in trainer.network.get_parameters()}
    (images, labels), *_ = list(trainer.train_batches(0))
    trainer.network.set_train(True)
    params = trainer.network.trainable_params()
    loss = mindcv.create_loss("CE")
    _, grads = ms.value_and_grad(lambda x, y: loss(trainer.network(x), y), None, params)(images, labels)
    gradient = {p.name: g.asnumpy() for p, g in zip(params, grads)}

    assert len({round(expected_factor(name), 12) for name in gradient}) > 10  # many distinct rates are checked
    for filter_, folder in runs.items():
        after = checkpoint(folder / "last.ckpt")
        for name, g in gradient.items():
            decays = filter_ == "disable" or g.ndim > 1
            expected = -LR * expected_factor(name) * (g + (wd * start[name] if decays else 0))
            assert_update(after[name] - start[name], expected, start[name], f"{filter_}: {name}", expected_factor(name))
