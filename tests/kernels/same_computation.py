"""What the kernel tests share: a model and a copy with a swap applied, and the check that the two compute the
same (outputs, loss and every parameter's gradient, to float rounding)."""

from __future__ import annotations

import mindcv
import mindspore as ms
import numpy as np
from mindcv.models.convnext import ConvNeXt
from mindcv.models.resnest import Bottleneck, ResNeSt
from mindspore import nn

from fgvctune.models.dropout import seeded_dropout

# MindCV's own ConvNeXt and ResNeSt with fewer, narrower blocks: every kind of layer a swap replaces in
# convnext_tiny and resnest50 (stem, downsampling, blocks, head), at a fraction of the cost. The full-size networks
# go through every swap at once in test_swaps.test_every_swap_together (an e2e test).
SMALL = {
    "small_convnext": lambda: ConvNeXt(3, 4, depths=[1, 1, 2, 1], dims=[16, 32, 64, 128], layer_scale_init_value=1.0),
    "small_resnest": lambda: ResNeSt(
        Bottleneck, [1, 1, 1, 1], radix=2, num_classes=4, deep_stem=True, stem_width=32, avg_down=True, avd=True
    ),
}


def pair(name: str, swap, prepare=None):
    """MindCV's model `name` (or one of SMALL) and a copy with the same weights and `swap` applied; `prepare` runs
    on both first, and both drop the same units (fgvctune's seeded dropout, itself checked in test_trainer)."""
    ms.set_seed(3)
    create = SMALL.get(name) or (lambda: mindcv.create_model(name, num_classes=4))
    reference, swapped = create(), create()
    ms.load_param_into_net(swapped, reference.parameters_dict())
    for network in (reference, swapped):
        seeded_dropout(network, 0)
        if prepare:
            prepare(network)
    names = [p.name for p in swapped.get_parameters()]
    assert swap(swapped) >= 1
    assert [p.name for p in swapped.get_parameters()] == names  # checkpoints load both ways
    return reference, swapped


def outputs_and_gradients(network, x, training: bool, set_mode=None, gradients=True):
    (set_mode or type(network).set_train)(network, training)
    if not gradients:
        out = network(x)
        return out.asnumpy(), (out**2).sum().asnumpy(), {}
    weights = network.trainable_params()
    loss, grads = ms.value_and_grad(lambda t: (network(t) ** 2).sum(), None, weights)(x)
    return network(x).asnumpy(), loss.asnumpy(), {p.name: g.asnumpy() for p, g in zip(weights, grads)}


def assert_same_computation(reference, swapped, size=64, batch=8, modes=(True, False), set_mode=None, gradients=True):
    """Outputs, loss and every parameter's gradient agree to float rounding. What rounding can do depends on
    the network: BatchNorm over a batch of pooled 1x1 features (ResNeSt's split attention) amplifies a
    last-digit change many times in its gradients. So the yardstick is measured: the reference network run
    again on the input with each value changed in its last bits (x * (1 +- 2^-22), signs at random); the swap
    must stay within ten times that. `set_mode(network, training)` sets training or inference mode (by default
    `set_train`); `modes` are the ones compared; `gradients=False` compares outputs and loss alone (a network
    folded for inference takes constants in place of its weights)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size)) + 2 * rng.uniform(-1, 1, (batch, 3, 1, 1))
    wiggled = ms.Tensor((x * (1 + 2**-22 * rng.choice([-1, 1], x.shape))).astype(np.float32))
    x = ms.Tensor(x.astype(np.float32))
    for training in modes:
        out_ref, loss_ref, grads_ref = outputs_and_gradients(reference, x, training, set_mode, gradients)
        out_new, loss_new, grads_new = outputs_and_gradients(swapped, x, training, set_mode, gradients)
        out_wig, loss_wig, grads_wig = outputs_and_gradients(reference, wiggled, training, set_mode, gradients)
        atol = max(1e-6 * np.abs(out_ref).max(), 10 * np.abs(out_wig - out_ref).max())
        np.testing.assert_allclose(out_new, out_ref, rtol=0, atol=atol)
        # At least 1e-5 (some 80 float32 steps): where the wiggle barely moves the loss, the sum of squares still
        # rounds differently when its terms do (a folded mobilenet's loss: 1.55e-6 apart, the wiggle's 1.2e-7).
        rtol = max(1e-5, 10 * abs(loss_wig / loss_ref - 1))
        np.testing.assert_allclose(loss_new, loss_ref, rtol=rtol)
        assert grads_new.keys() == grads_ref.keys()
        scale = max((np.abs(g).max() for g in grads_ref.values()), default=0)
        for name, grad in grads_ref.items():
            atol = max(1e-6 * scale, 10 * np.abs(grads_wig[name] - grad).max())
            np.testing.assert_allclose(grads_new[name], grad, rtol=0, atol=atol, err_msg=name)


def trained_statistics(network):
    """BatchNorm values as training leaves them (a fresh network's are 1, 0, 0, 1: folding them changes little),
    drawn from each parameter's name so the two networks of a pair get the same ones."""
    import zlib

    for name, param in network.parameters_and_names():
        kind = name.rsplit(".", 1)[-1]
        if kind in ("gamma", "beta", "moving_mean", "moving_variance"):
            rng = np.random.default_rng(zlib.crc32(name.encode()))
            low, high = {"gamma": (0.5, 1.5), "beta": (-0.5, 0.5), "moving_mean": (-0.5, 0.5)}.get(kind, (0.5, 2))
            param.set_data(ms.Tensor(rng.uniform(low, high, param.shape).astype(np.float32)))


def norms(network) -> int:
    return sum(isinstance(cell, nn.BatchNorm2d) for _, cell in network.cells_and_names())
