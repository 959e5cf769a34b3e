"""ResNet blocks that train run on blocked tensors (kernels/blocked_training.py): the same outputs, loss, gradients
and moving statistics as the same network on plain tensors, in PyNative and graph mode; evaluated, they run on plain
tensors; unfuse gives the plain cells back."""

from __future__ import annotations

import numpy as np
import pytest

from fgvctune import runtime

ms = runtime.start(mode="pynative")
from mindspore import nn  # noqa: E402
from same_computation import assert_same_computation, pair  # noqa: E402

from fgvctune.kernels import cells, fuse, swaps  # noqa: E402
from fgvctune.kernels.blocked_training import (  # noqa: E402
    BLOCKED,
    UNFUSED,
    BlockedBatchNormTrain,
    BlockedConvolution,
)
from fgvctune.kernels.fold import compile_anew  # noqa: E402

pytestmark = pytest.mark.usefixtures("pynative")


def chain(network) -> list:
    return [cell for _, cell in network.cells_and_names() if type(cell) in BLOCKED.values()]


def layers(network) -> list:
    return [block for layer in (network.layer1, network.layer2, network.layer3, network.layer4) for block in layer]


def statistics(network) -> dict:
    return {p.name: p.asnumpy().copy() for p in network.get_parameters() if "moving" in p.name}


def own_copies(network) -> None:
    """Each parameter its own storage: pair's loading shares the two networks' (one's training would move both)."""
    for param in network.get_parameters():
        param.set_data(ms.Tensor(param.asnumpy().copy()))


# resnet50 at 96 px, batch 8: at 64 px, batch 4, its last layer's BatchNorm (over 16 values a channel) makes the
# gradients chaotic (MindSpore's own ops against fgvctune's plain ones already differ by 8 wiggles' worth there)
@pytest.mark.parametrize("name, size, batch", [("resnet18", 64, 4), ("resnet50", 96, 8)])
def test_blocks_that_train_compute_on_blocked_tensors_what_plain_ones_do(name, size, batch):
    """A network that trains whole: its blocks one run across the four layers (the first enters the layout, the
    last leaves it), every convolution and BatchNorm of theirs on blocked tensors, the stem's on plain ones; the
    outputs, loss and every gradient, in training and inference mode, then the moving statistics a training step
    leaves, as on plain tensors; unfuse gives the swapped network back."""
    reference, blocked = pair(name, lambda network: fuse.fuse(network, training=True), swaps.apply)
    assert chain(blocked) == layers(blocked)
    assert [(b.enters, b.leaves) for b in layers(blocked)] == [
        (i == 0, i == len(layers(blocked)) - 1) for i in range(len(layers(blocked)))
    ]
    convolutions = [c for _, c in blocked.cells_and_names() if isinstance(c, nn.Conv2d)]
    assert [type(c.conv2d) for c in convolutions] == [cells.Convolution] + [BlockedConvolution] * (
        len(convolutions) - 1
    )
    assert type(blocked.bn1.bn_train) is cells.BatchNormTrain

    assert_same_computation(reference, blocked, size=size, batch=batch, modes=(True, False))

    x = ms.Tensor(np.random.default_rng(5).standard_normal((batch, 3, size, size)).astype(np.float32) * 2 + 1)
    start = statistics(reference)
    for network in (reference, blocked):
        own_copies(network)
        network.set_train(True)(x)
    moved, want = statistics(blocked), statistics(reference)
    assert moved.keys() == want.keys() and all(np.abs(want[k] - start[k]).max() > 0 for k in want)
    for key in want:
        np.testing.assert_allclose(moved[key], want[key], rtol=1e-4, atol=1e-5, err_msg=key)
    stand_ins = [c for _, c in blocked.cells_and_names() if type(c) in (BlockedConvolution, BlockedBatchNormTrain)]
    assert fuse.unfuse(blocked) == len(layers(blocked)) + len(stand_ins) and not chain(blocked)
    assert all(type(block) in BLOCKED for block in layers(blocked))
    assert not [c for _, c in blocked.cells_and_names() if type(c) in UNFUSED]


def test_blocks_train_blocked_in_graph_mode():
    """Compiled training steps: the same losses and weights as on plain tensors, and the layout is the blocked
    one while it trains (with the last block left blocked, the pooled features mix channels) and plain evaluated."""
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        reference, blocked = pair("resnet18", lambda network: fuse.fuse(network, training=True), swaps.apply)
        rng = np.random.default_rng(0)
        x = ms.Tensor(rng.standard_normal((4, 3, 64, 64)).astype(np.float32))
        y = ms.Tensor(rng.integers(0, 4, 4).astype(np.int32))
        losses = {}
        for key, network in (("reference", reference), ("blocked", blocked)):
            own_copies(network)
            loss = nn.WithLossCell(network, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"))
            step = nn.TrainOneStepCell(loss, nn.Momentum(network.trainable_params(), 0.01, 0.9))
            step.set_train(True)
            losses[key] = [float(step(x, y).asnumpy()) for _ in range(3)]
        np.testing.assert_allclose(losses["blocked"], losses["reference"], rtol=1e-4)
        for (name, want), got in zip(reference.parameters_and_names(), blocked.get_parameters()):
            np.testing.assert_allclose(got.asnumpy(), want.asnumpy(), rtol=1e-3, atol=1e-5, err_msg=name)

        for network in (reference, blocked):
            network.set_train(False)
        want = reference(x).asnumpy()
        atol = 1e-3 * np.abs(want).max()  # (three steps apart)
        np.testing.assert_allclose(blocked(x).asnumpy(), want, rtol=0, atol=atol)
        last = chain(blocked)[-1]
        last.leaves = False
        compile_anew(blocked)
        np.testing.assert_allclose(blocked(x).asnumpy(), want, rtol=0, atol=atol)  # evaluated: plain
        blocked.set_train(True)
        reference.set_train(True)
        mixed, plain = blocked(x).asnumpy(), reference(x).asnumpy()
        assert np.abs(mixed - plain).max() > 1e-3 * np.abs(plain).max()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


def test_blocks_train_blocked_only_where_every_layer_can():
    """A frozen BatchNorm (MindSpore's inference op, on plain tensors) or a frozen block keeps its block plain;
    the blocks on either side enter and leave the layout; the frozen prefix is fused, and whether any block trains
    blocked is the kernels' business alone (restored stand-ins: none)."""
    _, blocked = pair("resnet18", lambda network: 1, swaps.apply)
    for cell in (blocked.conv1, blocked.bn1, blocked.layer1[0], blocked.layer2[1].bn1):
        for p in cell.get_parameters():
            p.requires_grad = False
    fuse.fold_and_fuse(blocked, frozen_only=True)
    assert type(blocked.layer1[0]) is fuse.FusedBasicBlock  # no gradient passes through it
    assert type(blocked.layer2[1]) is swaps.SummedBasicBlock
    runs = [(name, b.enters, b.leaves) for name, b in blocked.cells_and_names() if b in chain(blocked)]
    assert runs == [
        ("layer1.1", True, False),
        ("layer2.0", False, True),
        ("layer3.0", True, False),
        ("layer3.1", False, False),
        ("layer4.0", False, False),
        ("layer4.1", False, True),
    ]
    fuse.unfuse(blocked)
    cells.restore(blocked)
    fuse.fold_and_fuse(blocked, frozen_only=True)
    assert not chain(blocked)
