"""Fine-tuning strategies on real MindCV models: which parameters train, at what rate."""

from __future__ import annotations

import numpy as np
import pytest

from fgvctune import runtime, strategy
from fgvctune.errors import UsageError

ms = runtime.start(mode="pynative")
import mindcv  # noqa: E402  (after runtime.start, which must see MindSpore first)

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


def test_a_multiplier_scales_the_real_update():
    """One plain SGD step: the classifier's weight moves exactly 3x as far with classifier=3."""
    from fgvctune.trainer import TrainStep

    images = ms.Tensor(np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32))
    labels = ms.Tensor(np.array([0, 1, 2, 1]), ms.int32)
    moves = []
    for mult in ([], ["classifier.3=3"]):
        ms.set_seed(1)
        net = mindcv.create_model(MODEL, num_classes=3)
        plan = strategy.plan(net, MODEL, lr_mult=mult)
        frozen_norms = strategy.apply(net, plan)
        groups = strategy.param_groups(net, plan, [0.1], 0.0)
        optimizer = mindcv.create_optimizer(groups, opt="sgd", lr=[0.1], momentum=0.0, weight_decay_filter="auto")
        step = TrainStep(net, mindcv.create_loss("CE"), optimizer, __import__("mindspore").nn.Identity())
        step.set_train(True)
        strategy.set_train_mode(net, True, frozen_norms)
        before = {p.name: p.asnumpy().copy() for p in net.trainable_params()}
        step(images, labels)
        moves.append({n: net.parameters_dict()[n].asnumpy() - before[n] for n in before})
    plain, tripled = moves
    np.testing.assert_allclose(tripled["classifier.3.weight"], 3 * plain["classifier.3.weight"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(tripled["classifier.3.bias"], 3 * plain["classifier.3.bias"], rtol=1e-4, atol=1e-7)


def test_bad_strategies_are_refused(network):
    with pytest.raises(UsageError, match="has 17 feature blocks"):
        strategy.plan(network, MODEL, freeze="30")
    with pytest.raises(UsageError, match="matches no parameter"):
        strategy.plan(network, MODEL, lr_mult=["feature.1=2"])
    with pytest.raises(UsageError, match="PATTERN=FACTOR"):
        strategy.plan(network, MODEL, lr_mult=["classifier:2"])
