"""Each layer fgvctune swaps into a model computes what the layer it replaces computes: the same outputs and the
same gradient for every parameter, to float rounding, in training and in inference mode."""

from __future__ import annotations

import numpy as np
import pytest

from fgvctune.models import runtime

ms = runtime.start(mode="pynative")
import mindcv  # noqa: E402
from mindspore import nn  # noqa: E402

from fgvctune.models import swaps, torchcompat  # noqa: E402

pytestmark = pytest.mark.usefixtures("pynative")


def pair(name: str, swap, prepare=None):
    """MindCV's model and a copy with the same weights and `swap` applied; `prepare` runs on both first, and
    both drop the same units (fgvctune's seeded dropout, itself checked in test_trainer)."""
    ms.set_seed(3)
    reference = mindcv.create_model(name, num_classes=4)
    swapped = mindcv.create_model(name, num_classes=4)
    ms.load_param_into_net(swapped, reference.parameters_dict())
    for network in (reference, swapped):
        swaps.seeded_dropout(network, 0)
        if prepare:
            prepare(network)
    names = [p.name for p in swapped.get_parameters()]
    assert swap(swapped) >= 1
    assert [p.name for p in swapped.get_parameters()] == names  # checkpoints load both ways
    return reference, swapped


def outputs_and_gradients(network, x, training: bool):
    network.set_train(training)
    weights = network.trainable_params()
    loss, grads = ms.value_and_grad(lambda t: (network(t) ** 2).sum(), None, weights)(x)
    return network(x).asnumpy(), loss.asnumpy(), {p.name: g.asnumpy() for p, g in zip(weights, grads)}


def assert_same_computation(reference, swapped, size=64, batch=8):
    """Outputs, loss and every parameter's gradient agree to float rounding. What rounding can do depends on
    the network: BatchNorm over a batch of pooled 1x1 features (ResNeSt's split attention) amplifies a
    last-digit change many times in its gradients. So the yardstick is measured: the reference network run
    again on the input with each value changed in its last bits (x * (1 +- 2^-22), signs at random); the swap
    must stay within ten times that."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size)) + 2 * rng.uniform(-1, 1, (batch, 3, 1, 1))
    wiggled = ms.Tensor((x * (1 + 2**-22 * rng.choice([-1, 1], x.shape))).astype(np.float32))
    x = ms.Tensor(x.astype(np.float32))
    for training in (True, False):
        out_ref, loss_ref, grads_ref = outputs_and_gradients(reference, x, training)
        out_new, loss_new, grads_new = outputs_and_gradients(swapped, x, training)
        out_wig, loss_wig, grads_wig = outputs_and_gradients(reference, wiggled, training)
        scale = np.abs(out_ref).max()
        np.testing.assert_allclose(
            out_new, out_ref, rtol=0, atol=max(1e-6 * scale, 10 * np.abs(out_wig - out_ref).max())
        )
        np.testing.assert_allclose(loss_new, loss_ref, rtol=max(1e-6, 10 * abs(loss_wig / loss_ref - 1)))
        assert grads_new.keys() == grads_ref.keys()
        scale = max(np.abs(g).max() for g in grads_ref.values())
        for name, grad in grads_ref.items():
            atol = max(1e-6 * scale, 10 * np.abs(grads_wig[name] - grad).max())
            np.testing.assert_allclose(grads_new[name], grad, rtol=0, atol=atol, err_msg=name)


def test_faster_pooling_gives_the_same_outputs_and_gradients():
    for name in ("mobilenet_v3_small_100", "resnet18"):
        assert_same_computation(*pair(name, swaps.faster_pooling))


@pytest.mark.parametrize("exact", [False, True], ids=["tanh", "exact-for-pytorch-weights"])
def test_faster_gelu_computes_the_gelu_it_replaces(exact):
    prepare = torchcompat.exact_gelu if exact else None
    reference, swapped = pair("convnext_tiny", swaps.faster_gelu, prepare)
    gelus = [c for _, c in swapped.cells_and_names() if isinstance(c, nn.GELU)]
    assert gelus and all(type(c) is swaps.ComposedGELU for c in gelus)
    assert {c.approximate for c in gelus} == {"none" if exact else "tanh"}
    assert_same_computation(reference, swapped, size=32, batch=4)


def test_exact_gelu_still_reaches_a_swapped_gelu():
    """torchcompat switches GELUs to the exact form; on a swapped network it must still do so."""
    reference, swapped = pair("convnext_tiny", swaps.faster_gelu)
    assert torchcompat.exact_gelu(reference) == torchcompat.exact_gelu(swapped) == 18
    assert_same_computation(reference, swapped, size=32, batch=4)


def test_faster_split_attention_gives_the_same_outputs_and_gradients():
    reference, swapped = pair("resnest50", swaps.faster_split_attention)
    assert swaps.faster_split_attention(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=32, batch=4)


@pytest.mark.parametrize("name", ["mobilenet_v3_large_100", "resnest50", "convnext_tiny"])
def test_every_swap_together(name):
    def every_swap(network):
        return swaps.faster_pooling(network) + swaps.faster_gelu(network) + swaps.faster_split_attention(network)

    assert_same_computation(*pair(name, every_swap))


def test_split_attention_swap_survives_amp_level_o1(tmp_path, monkeypatch):
    """amp_level O1 rewrites the network's code into a new module that imports each cell's class by its name."""
    from mindspore import amp

    monkeypatch.chdir(tmp_path)  # O1 writes ./rewritten_network/
    reference, swapped = pair("resnest14", swaps.faster_split_attention)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    expected = reference.set_train(False)(x).asnumpy()
    mixed = amp.auto_mixed_precision(swapped, "O1").set_train(False)
    np.testing.assert_allclose(mixed(x).asnumpy(), expected, rtol=0, atol=1e-2 * np.abs(expected).max())
