"""Each stand-in cell of fgvctune's own kernels computes what the primitive it stands in for computes: the same
outputs and the same gradient for every parameter, to float rounding, in whole models and one layer at a time."""

from __future__ import annotations

import numpy as np
import pytest

from fgvctune import runtime

ms = runtime.start(mode="pynative")
from mindspore import nn  # noqa: E402
from same_computation import assert_same_computation, norms, outputs_and_gradients, pair  # noqa: E402

from fgvctune.kernels import cells  # noqa: E402

pytestmark = pytest.mark.usefixtures("pynative")


def stand_in(name: str):
    """The swap of the table's row `name` alone, as a function of the network."""
    return lambda network: cells.swap(network, name)


@pytest.mark.parametrize("name", ["mobilenet_v3_small_100", "small_convnext"])
def test_depthwise_kernels_give_the_same_outputs_and_gradients(name):
    """fgvctune's depthwise kernels in every layer shape the two families have: 3x3 and 5x5 at strides 1 and 2
    ("same" padding, uneven at stride 2), ConvNeXt's 7x7 with explicit padding and a bias."""
    reference, swapped = pair(name, stand_in("depthwise"))
    convs = [cell for _, cell in swapped.cells_and_names() if cells.is_depthwise(cell)]
    assert convs and all(isinstance(cell.conv2d, cells.DepthwiseConv) for cell in convs)
    assert stand_in("depthwise")(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=48, batch=4)
    assert cells.restore(swapped) == len(convs)
    assert not any(isinstance(cell, cells.DepthwiseConv) for _, cell in swapped.cells_and_names())


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small_100"])
def test_convolution_kernel_gives_the_same_outputs_and_gradients(name):
    """The oneDNN convolution in the layers the two families have: ResNet's 7x7 stem at stride 2, 3x3 at strides
    1 and 2, 1x1 shortcuts at stride 2; MobileNetV3's pointwise layers (with and without a bias, in squeeze and
    excitation); every group-of-one convolution, none of the depthwise ones."""
    reference, swapped = pair(name, stand_in("convolution"))
    convs = [cell for _, cell in swapped.cells_and_names() if isinstance(cell, nn.Conv2d)]
    swapped_here = [cell for cell in convs if isinstance(cell.conv2d, cells.Convolution)]
    assert swapped_here == [cell for cell in convs if not cells.is_depthwise(cell)] and len(swapped_here) >= 20
    assert stand_in("convolution")(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=48, batch=4)
    assert cells.restore(swapped) == len(swapped_here)
    assert not any(isinstance(cell, cells.Convolution) for _, cell in swapped.cells_and_names())


def test_convolution_kernel_at_every_stride_padding_and_dilation():
    """One layer at a time, against MindSpore's Conv2D: odd sizes, stride 3, "same" padding (uneven at stride 2),
    "valid", uneven explicit padding, dilation, a kernel wider than tall, a bias, groups; the input's gradient
    too."""
    rng = np.random.default_rng(2)
    cases = [
        dict(kernel_size=3, stride=1, pad_mode="same"),
        dict(kernel_size=3, stride=2, pad_mode="same", has_bias=True),
        dict(kernel_size=5, stride=3, pad_mode="valid"),
        dict(kernel_size=3, stride=2, pad_mode="pad", padding=(1, 2, 0, 1)),
        dict(kernel_size=3, stride=1, pad_mode="same", dilation=2),
        dict(kernel_size=(1, 3), stride=1, pad_mode="pad", padding=(0, 0, 1, 1), has_bias=True),
        dict(kernel_size=1, stride=2, pad_mode="valid"),
        dict(kernel_size=1, stride=1, pad_mode="valid", has_bias=True),  # run as a matrix product per image
        dict(kernel_size=3, stride=1, pad_mode="pad", padding=1, group=2),  # ResNeSt's, in two groups
    ]
    for size in (7, 12):
        for case in cases:
            reference = nn.Conv2d(6, 8, **case)
            swapped = nn.Conv2d(6, 8, **case)
            for mine, theirs in zip(swapped.get_parameters(), reference.get_parameters()):
                theirs.set_data(ms.Tensor(rng.standard_normal(theirs.shape).astype(np.float32)))
                mine.set_data(theirs.value())
            assert stand_in("convolution")(swapped) == 1
            x = ms.Tensor(rng.standard_normal((3, 6, size, size + 1)).astype(np.float32))
            want, got = (outputs_and_gradients(n, x, True) for n in (reference, swapped))
            scale = np.abs(want[0]).max()  # weights of unit variance: sums in the tens, rounded in float32
            np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-6 * scale, err_msg=f"{case} at {size}")
            for name in want[2]:
                np.testing.assert_allclose(got[2][name], want[2][name], rtol=1e-5, atol=1e-4, err_msg=name)
            dx = [ms.grad(lambda t, n=n: (n(t) ** 2).sum())(x).asnumpy() for n in (reference, swapped)]
            np.testing.assert_allclose(dx[1], dx[0], rtol=1e-5, atol=1e-4, err_msg=f"input gradient, {case} at {size}")


def test_dense_product_kernels_give_the_same_outputs_and_gradients():
    """nn.Dense's matrix product through onednn.cc: ConvNeXt's pointwise layers (on 4-D input) and its head."""
    reference, swapped = pair("small_convnext", stand_in("dense_product"))
    dense = [c for _, c in swapped.cells_and_names() if isinstance(c, nn.Dense)]
    assert len(dense) == 11 and all(isinstance(c.matmul, cells.DenseProduct) for c in dense)  # 2 per block + head
    assert stand_in("dense_product")(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=32, batch=4)
    assert cells.restore(swapped) == 11


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_dense_product_of_a_few_rows(batch):
    """A classifier at batch 1 or 2 (dot products of weight rows, onednn.cc's few-rows case) and at 3 (oneDNN's
    matmul): the outputs and gradients of MindSpore's MatMul, to float rounding."""
    ms.set_seed(batch)
    reference, swapped = nn.Dense(576, 1000), nn.Dense(576, 1000)
    ms.load_param_into_net(swapped, reference.parameters_dict())
    assert stand_in("dense_product")(swapped) == 1
    x = ms.Tensor(np.random.default_rng(batch).standard_normal((batch, 576)).astype(np.float32))
    want, got = (outputs_and_gradients(network, x, training=True) for network in (reference, swapped))
    scale = np.abs(want[0]).max()
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-5 * scale)
    for name, grad in want[2].items():
        np.testing.assert_allclose(got[2][name], grad, rtol=0, atol=1e-5 * np.abs(grad).max(), err_msg=name)


def test_depthwise_kernels_at_every_stride_and_padding():
    """One layer at a time, against MindSpore's Conv2D: shapes MindCV's models do not have (odd sizes, stride 3,
    "valid" and uneven explicit padding, a plane smaller than the kernel, an even kernel), at widths that take each
    path of the stride-2 split into even and odd columns (32 at a time, then 16, then one by one), and on planes of
    at most 14 x 14 also with eight channels, which the forward pass computes eight at a time. Stride 1 has cases of
    its own: there the input's gradient is a forward convolution padded by what the forward's padding leaves."""
    rng = np.random.default_rng(1)
    cases = [
        dict(kernel_size=3, stride=1, pad_mode="same"),
        dict(kernel_size=5, stride=2, pad_mode="same"),
        dict(kernel_size=3, stride=3, pad_mode="valid"),
        dict(kernel_size=3, stride=2, pad_mode="pad", padding=(1, 2, 0, 1), has_bias=True),
        dict(kernel_size=7, stride=1, pad_mode="pad", padding=3),
        dict(kernel_size=4, stride=1, pad_mode="same"),
        dict(kernel_size=3, stride=1, pad_mode="pad", padding=(0, 2, 2, 1)),
        dict(kernel_size=3, stride=1, pad_mode="valid"),
        dict(kernel_size=3, stride=1, pad_mode="pad", padding=(3, 0, 0, 4)),  # more padding than the kernel
    ]
    for channels, size in [(6, 5), (8, 5), (6, 9), (8, 9), (6, 14), (8, 14), (6, 37), (6, 50)]:
        for case in cases:
            reference = nn.Conv2d(channels, channels, group=channels, **case)
            swapped = nn.Conv2d(channels, channels, group=channels, **case)
            swapped.weight.set_data(reference.weight.value())
            if reference.has_bias:
                reference.bias.set_data(ms.Tensor(rng.standard_normal(channels).astype(np.float32)))
                swapped.bias.set_data(reference.bias.value())
            assert stand_in("depthwise")(swapped) == 1
            x = ms.Tensor(rng.standard_normal((3, channels, size, size)).astype(np.float32))
            want, got = (outputs_and_gradients(n, x, True) for n in (reference, swapped))
            np.testing.assert_allclose(
                got[0], want[0], rtol=0, atol=1e-5, err_msg=f"{case} at {size}, {channels} channels"
            )
            for name in want[2]:
                np.testing.assert_allclose(got[2][name], want[2][name], rtol=1e-5, atol=1e-4, err_msg=name)
            dx = [ms.grad(lambda t, n=n: (n(t) ** 2).sum())(x).asnumpy() for n in (reference, swapped)]
            np.testing.assert_allclose(
                dx[1], dx[0], rtol=0, atol=1e-4, err_msg=f"input gradient, {case} at {size}, {channels} channels"
            )


@pytest.mark.parametrize("name", ["mobilenet_v3_small_100", "resnet18"])
def test_batchnorm_kernels_give_the_same_outputs_gradients_and_statistics(name):
    reference, swapped = pair(name, stand_in("batchnorm"))
    assert stand_in("batchnorm")(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=48, batch=4)

    def statistics(network):
        return {p.name: p.asnumpy() for p in network.get_parameters() if "moving" in p.name}

    x = ms.Tensor(np.random.default_rng(5).standard_normal((4, 3, 48, 48)).astype(np.float32) * 2 + 1)
    start = statistics(reference)
    for network in (reference, swapped):
        for param in network.get_parameters():  # each its own copy: pair's loading shares the two networks' storage
            if param.name in start:
                param.set_data(ms.Tensor(start[param.name]))
        network.set_train(True)(x)
    moved, want = statistics(swapped), statistics(reference)
    assert moved.keys() == want.keys() and len(want) == 2 * norms(swapped)
    for key in want:
        np.testing.assert_allclose(moved[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert cells.restore(swapped) == norms(swapped)


def test_layernorm_kernels_give_the_same_outputs_and_gradients():
    reference, swapped = pair("small_convnext", stand_in("layernorm"))
    swapped_norms = [c for _, c in swapped.cells_and_names() if isinstance(c, cells.LayerNormLastAxis)]
    assert len(swapped_norms) == sum(isinstance(c, nn.LayerNorm) for _, c in swapped.cells_and_names())
    assert stand_in("layernorm")(swapped) == 0  # already swapped: nothing left to do
    for _, cell in reference.cells_and_names():  # gamma and beta as training leaves them, not 1 and 0
        if isinstance(cell, nn.LayerNorm):
            cell.gamma.set_data(ms.Tensor(np.linspace(0.5, 1.5, cell.gamma.shape[0], dtype=np.float32)))
            cell.beta.set_data(ms.Tensor(np.linspace(-0.3, 0.3, cell.beta.shape[0], dtype=np.float32)))
    ms.load_param_into_net(swapped, reference.parameters_dict())
    assert_same_computation(reference, swapped, size=32, batch=4)


def test_dense_bias_kernels_give_the_same_outputs_and_gradients():
    reference, swapped = pair("small_convnext", stand_in("dense_bias"))
    dense = [c for _, c in swapped.cells_and_names() if isinstance(c, nn.Dense)]
    assert len(dense) == 11 and all(isinstance(c.bias_add, cells.DenseBias) for c in dense)  # 2 per block + head
    assert stand_in("dense_bias")(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=32, batch=4)


def test_hswish_kernels_give_the_same_outputs_and_gradients():
    reference, swapped = pair("mobilenet_v3_small_100", stand_in("hswish"))
    activations = [c for _, c in swapped.cells_and_names() if isinstance(c, nn.HSwish)]
    assert len(activations) == 19 and all(isinstance(c.hswish, cells.HardSwish) for c in activations)
    assert stand_in("hswish")(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=32, batch=4)


def test_hswish_kernel_at_its_corners():
    """Below -3, at -3 and 3, between and above, forward and gradient, against the formula."""
    x = np.array([-7.5, -3.0, -2.999, -1.5, 0.0, 0.25, 2.999, 3.0, 9.0], np.float32)
    activation = nn.HSwish()
    assert stand_in("hswish")(activation) == 1
    y, dx = ms.value_and_grad(lambda t: activation(t).sum())(ms.Tensor(x))
    expected = x * np.clip(x + 3, 0, 6) / 6
    slope = np.where(x <= -3, 0, np.where(x >= 3, 1, (2 * x + 3) / 6))
    np.testing.assert_allclose(y.asnumpy(), expected.sum(), rtol=1e-6)
    np.testing.assert_allclose(dx.asnumpy(), slope, rtol=1e-6)
    np.testing.assert_allclose(activation(ms.Tensor(x)).asnumpy(), expected, rtol=1e-6)


def test_channel_scale_and_radix_pair_kernels_against_numpy():
    """Each op alone on odd shapes: outputs and both gradients (of sum(y * w) for a random w) against numpy."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 10, 7, 5)).astype(np.float32)
    a = rng.uniform(0, 1, (3, 10, 1, 1)).astype(np.float32)
    cell = type("Owner", (), {"scale": None, "combine": None})()  # what the stand-ins keep as `primitive`
    path = cells.library()
    half = x.shape[1] // 2
    for op, expected in (
        (cells.ChannelScale(cell, path), x * a),
        (cells.RadixPair(cell, path), x[:, :half] * a[:, :half] + x[:, half:] * a[:, half:]),
    ):
        w = rng.standard_normal(expected.shape).astype(np.float32)
        y, (dx, da) = ms.value_and_grad(lambda x, a: (op(x, a) * ms.Tensor(w)).sum(), (0, 1))(
            ms.Tensor(x), ms.Tensor(a)
        )
        np.testing.assert_allclose(op(ms.Tensor(x), ms.Tensor(a)).asnumpy(), expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(y.asnumpy(), (expected * w).sum(), rtol=1e-5)
        dy = w if expected.shape == x.shape else np.concatenate([w, w], axis=1)  # each half gets dy
        np.testing.assert_allclose(dx.asnumpy(), dy * a, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(da.asnumpy(), (dy * x).sum(axis=(2, 3), keepdims=True), rtol=1e-5, atol=1e-6)
