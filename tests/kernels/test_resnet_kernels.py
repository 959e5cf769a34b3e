"""fgvctune's kernels for ResNets compute what MindSpore computes, exactly. The stem's max pooling: the same maxima
as MaxPool, and each gradient where MaxPoolGrad puts it (the first largest of a window read row by row, padding
left out). The blocks' end, ReLU of the residual sum: what MindCV's `out += identity` and ReLU give, forward and
back. Each in one layer and in whole networks."""

from __future__ import annotations

import numpy as np
import pytest

from fgvctune import runtime

ms = runtime.start(mode="pynative")
from mindspore import nn, ops  # noqa: E402
from same_computation import assert_same_computation, pair, trained_statistics  # noqa: E402

from fgvctune.kernels import cells, fold, swaps  # noqa: E402

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


class BlockEnd(nn.Cell):
    """A residual block's end alone, as swaps.py's blocks call it."""

    def __init__(self):
        super().__init__()
        self.residual = swaps.ResidualReLU()

    def construct(self, out, identity):
        return self.residual(out, identity)


def test_add_relu_kernels_match_mindspore_exactly():
    """relu(out + identity) and both gradients bit for bit as MindSpore's Add and ReLU, where sums cancel to zero
    (ReLU's gradient there is 0) and where one side is zero, at shapes of every kind."""
    rng = np.random.default_rng(5)
    swapped = BlockEnd()
    assert cells.swap(swapped, "residual", lambda c: isinstance(c, BlockEnd)) == 1
    for shape in ((1, 1, 1, 1), (2, 3, 5, 7), (4, 64, 14, 14), (3, 17)):
        out = rng.standard_normal(shape).astype(np.float32)
        identity = rng.standard_normal(shape).astype(np.float32)
        identity.flat[::3] = -out.flat[::3]  # sums of exactly zero
        out.flat[1::5] = 0.0
        w = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
        results = []
        for end in (lambda a, b: ops.relu(a + b), swapped):
            a, b = ms.Tensor(out), ms.Tensor(identity)
            grads = ms.grad(lambda a, b: (end(a, b) * w).sum(), grad_position=(0, 1))(a, b)
            results.append([end(a, b).asnumpy()] + [g.asnumpy() for g in grads])
        for name, want, got in zip(("output", "out's gradient", "identity's gradient"), *results):
            np.testing.assert_array_equal(got, want, err_msg=f"{name} at {shape}")


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "small_resnest"])
def test_residual_swap_computes_what_mindcvs_blocks_do(name):
    """The blocks ending in the kernel: the same outputs, loss and every gradient as MindCV's `out += identity`,
    folding still finds every pair, and restore leaves the ResidualReLU formula (ONNX-exportable) in place."""
    reference, swapped = pair(name, swaps.faster_residual)
    blocks = [c for _, c in swapped.cells_and_names() if type(c) in swaps.SUMMED.values()]
    assert blocks and all(isinstance(c.residual, cells.AddReLU) for c in blocks)
    assert swaps.faster_residual(swapped) == 0  # already swapped: nothing left to do
    size = 32 if name == "resnet50" else 48
    assert_same_computation(reference, swapped, size=size, batch=2 if name == "resnet50" else 4)
    trained_statistics(reference), trained_statistics(swapped)  # (after training mode, which moves them)
    assert fold.fold(swapped) == fold.fold(reference) > 0
    assert_same_computation(reference, swapped, size=size, batch=2, modes=(False,), gradients=False)
    assert cells.restore(swapped) >= len(blocks)
    assert all(type(c.residual) is swaps.ResidualReLU for c in blocks)
