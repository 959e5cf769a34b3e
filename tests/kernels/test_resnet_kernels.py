"""fgvctune's kernels for ResNet's stem's max pooling compute what MindSpore's MaxPool and MaxPoolGrad compute,
exactly: the same maxima, and each gradient where MindSpore puts it (the first largest of a window read row by row,
padding left out), in one layer and in a whole ResNet."""

from __future__ import annotations

import numpy as np
import pytest

from fgvctune import runtime

ms = runtime.start(mode="pynative")
from mindspore import nn  # noqa: E402
from same_computation import assert_same_computation, pair  # noqa: E402

from fgvctune.kernels import cells  # noqa: E402

pytestmark = pytest.mark.usefixtures("pynative")


def output_and_gradient(layer, x: np.ndarray, seed: int = 0):
    """`layer`'s output on x and the gradient of sum(output * w) for a random w (each output's own weight, so a
    gradient put in the wrong place shows)."""
    x = ms.Tensor(x)
    y = layer(x)
    w = ms.Tensor(np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32))
    return y.asnumpy(), ms.grad(lambda t: (layer(t) * w).sum())(x).asnumpy()


def test_max_pool_kernels_match_mindspore_exactly_with_ties_at_every_size_and_padding():
    """3x3 at stride 2, "same" (uneven at odd sizes, more at the bottom and right) and "valid" padding, planes
    from smaller than a window to odd and even sizes; random values, ReLU-like ones (mostly zeros: ties in almost
    every window), and planes of one value below zero (the padding must never win)."""
    rng = np.random.default_rng(4)
    for mode in ("same", "valid"):
        for height, width in ((1, 2), (2, 2), (3, 3), (5, 4), (7, 9), (8, 8), (12, 13), (16, 11)):
            if mode == "valid" and min(height, width) < 3:
                continue
            reference = nn.MaxPool2d(3, 2, pad_mode=mode)
            swapped = nn.MaxPool2d(3, 2, pad_mode=mode)
            assert cells.swap(swapped, "max_pool") == 1
            shape = (2, 3, height, width)
            for x in (
                rng.standard_normal(shape),
                np.maximum(rng.integers(-3, 2, shape), 0),  # zeros and ones: ties everywhere
                np.full(shape, -1.5),
            ):
                x = x.astype(np.float32)
                want, got = output_and_gradient(reference, x), output_and_gradient(swapped, x)
                where = f"{mode} at {height}x{width}"
                np.testing.assert_array_equal(got[0], want[0], err_msg=f"output, {where}")
                np.testing.assert_array_equal(got[1], want[1], err_msg=f"input gradient, {where}")


def test_max_pool_stand_in_in_a_whole_resnet():
    """resnet18's stem pools the ReLU's output (zeros tie in many windows): the same outputs, loss and every
    gradient as MindSpore's, and restore puts MindSpore's MaxPool back."""
    reference, swapped = pair("resnet18", lambda network: cells.swap(network, "max_pool"))
    pools = [c for _, c in swapped.cells_and_names() if isinstance(c, nn.MaxPool2d)]
    assert len(pools) == 1 and isinstance(pools[0].max_pool, cells.MaxPool)
    assert cells.swap(swapped, "max_pool") == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=48, batch=4)
    assert cells.restore(swapped) == 1
    assert not isinstance(pools[0].max_pool, cells.MaxPool)


def test_max_pool_stand_in_takes_only_the_stems_geometry():
    """Other windows, strides and explicit padding keep MindSpore's op."""
    for pool in (
        nn.MaxPool2d(2, 2),
        nn.MaxPool2d(3, 1, pad_mode="same"),
        nn.MaxPool2d((3, 2), 2),
        nn.MaxPool2d(3, 2, pad_mode="pad", padding=1),
    ):
        assert not cells.is_stem_max_pool(pool)
    assert cells.is_stem_max_pool(nn.MaxPool2d(3, 2, pad_mode="same"))
