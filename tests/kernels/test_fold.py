"""BatchNorm folded into the convolution before it computes what the pair computes, keeps the checkpoint's names and
values, and unfolds back."""

from __future__ import annotations

import numpy as np
import pytest

from fgvctune import runtime

ms = runtime.start(mode="pynative")
import mindcv  # noqa: E402
from mindspore import nn  # noqa: E402
from same_computation import assert_same_computation, norms, pair, trained_statistics  # noqa: E402

from fgvctune.kernels import fold, swaps  # noqa: E402
from fgvctune.training import strategy  # noqa: E402

pytestmark = pytest.mark.usefixtures("pynative")


@pytest.mark.parametrize("name", ["mobilenet_v3_small_100", "resnet18", "small_resnest"])
def test_folded_batchnorm_gives_the_same_inference_outputs(name, tmp_path):
    reference, folded = pair(name, fold.fold, lambda network: (swaps.apply(network), trained_statistics(network)))
    assert fold.fold(folded) == norms(folded)  # every BatchNorm of these models follows a convolution alone
    assert_same_computation(reference, folded, size=32, batch=4, modes=(False,), gradients=False)
    for network, file in ((reference, "reference.ckpt"), (folded, "folded.ckpt")):
        ms.save_checkpoint(network, str(tmp_path / file))
    saved = [ms.load_checkpoint(str(tmp_path / file)) for file in ("reference.ckpt", "folded.ckpt")]
    assert list(saved[0]) == list(saved[1])  # MindCV's names and layout, the values as loaded
    assert all(saved[0][k].asnumpy().tobytes() == saved[1][k].asnumpy().tobytes() for k in saved[0])
    assert fold.unfold(folded) == norms(folded) and fold.pairs(folded) and not fold.unfold(folded)
    assert not any(isinstance(cell, fold.FoldedConv2d) for _, cell in folded.cells_and_names())


@pytest.mark.parametrize(
    "name, freeze",
    [
        ("mobilenet_v3_small_100", dict(freeze="7")),
        ("resnet18", dict(freeze="5")),
        ("resnet18", dict(linear_probe=True)),
    ],
    ids=["mobilenet-freeze-7", "resnet18-freeze-5", "resnet18-linear-probe"],
)
def test_frozen_blocks_folded_train_as_the_unfolded_network(name, freeze):
    """Frozen blocks keep their BatchNorm in inference mode, so folding them changes nothing in training: the
    same outputs, loss and gradient for every trainable parameter, in training and inference mode."""
    frozen_norms = {}

    def freeze_blocks(network):
        swaps.apply(network)
        trained_statistics(network)
        frozen_norms[id(network)] = strategy.apply(network, strategy.plan(network, name, **freeze))

    def set_mode(network, training):
        strategy.set_train_mode(network, training, frozen_norms[id(network)])

    reference, folded = pair(name, lambda network: fold.fold(network, frozen_only=True), freeze_blocks)
    frozen = len(frozen_norms[id(folded)])
    assert fold.fold(folded, frozen_only=True) == frozen <= norms(folded)  # the frozen ones, and only those
    assert [n for n, cell in folded.cells_and_names() if type(cell) is fold.FoldedBatchNorm2d] == frozen_norms[
        id(folded)
    ]
    assert [p.name for p in folded.trainable_params()] == [p.name for p in reference.trainable_params()]
    # Inference first: the reference's extra (wiggled) run in training mode moves its trainable BatchNorm statistics.
    assert_same_computation(reference, folded, modes=(False, True), set_mode=set_mode)


def test_graph_mode_runs_the_network_as_folded_or_unfolded_now():
    """A compiled network runs the graph it compiled: folding or unfolding afterwards must make it compile anew
    (gradual unfreezing unfolds blocks of a network validation has already compiled)."""
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        network = mindcv.create_model("resnet18", num_classes=4)
        network.set_train(False)
        trained_statistics(network)
        x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
        plain = network(x).asnumpy()
        fold.fold(network)
        for _, cell in network.cells_and_names():
            if isinstance(cell, nn.BatchNorm2d):
                cell.beta.set_data(cell.beta + 1)  # the folded graph must not see this, the unfolded one must
        folded = network(x).asnumpy()
        fold.unfold(network)
        unfolded = network(x).asnumpy()
        np.testing.assert_allclose(folded, plain, rtol=0, atol=1e-5 * np.abs(plain).max())
        assert np.abs(unfolded - plain).max() > 1e-2 * np.abs(plain).max()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
