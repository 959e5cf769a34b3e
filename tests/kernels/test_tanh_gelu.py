"""fgvctune's GELU kernel (cells.TanhGELU, activation.cc's TanhGelu*) computes nn.GELU's tanh form: in ConvNeXt as
MindCV builds it, against MindSpore's own GeLU, and one op at a time across the whole float range."""

from __future__ import annotations

import numpy as np
import pytest

from fgvctune import runtime

ms = runtime.start(mode="pynative")
from mindspore import nn, ops  # noqa: E402
from same_computation import assert_same_computation, pair  # noqa: E402

from fgvctune.kernels import cells, swaps  # noqa: E402
from fgvctune.models import torchcompat  # noqa: E402

pytestmark = pytest.mark.usefixtures("pynative")

K, C = np.sqrt(2 / np.pi), 0.044715  # GELU's tanh form: x s(2u), u = K (x + C x^3), s the logistic function


def gelu_kernel(network) -> int:
    """ComposedGELU (swaps.faster_gelu) with fgvctune's kernel standing in for its tanh form."""
    swaps.faster_gelu(network)
    return cells.swap(network, "tanh_gelu")


@pytest.mark.parametrize("exact", [False, True], ids=["tanh", "exact-for-pytorch-weights"])
def test_tanh_gelu_kernels_give_the_same_outputs_and_gradients(exact):
    """Against MindCV's ConvNeXt with MindSpore's GeLU; the exact form (torchcompat's, for PyTorch's weights) still
    runs MindSpore's own kernel. `restore` puts the formula back."""
    reference, swapped = pair("small_convnext", gelu_kernel, torchcompat.exact_gelu if exact else None)
    gelus = [c for _, c in swapped.cells_and_names() if isinstance(c, nn.GELU)]
    assert len(gelus) == 5 and all(isinstance(c.tanh_gelu, cells.TanhGELU) for c in gelus)  # one per block
    assert cells.swap(swapped, "tanh_gelu") == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=32, batch=4)
    assert cells.restore(swapped) == 5
    assert all(type(c.tanh_gelu) is swaps.TanhGELUFormula for c in gelus)


def exact(x: np.ndarray):
    """GELU's tanh form, its derivative and its second derivative, in float64."""
    x = x.astype(np.float64)
    with np.errstate(over="ignore"):
        g, dg = 2 * K * (1 + 3 * C * x * x), 2 * K * 6 * C * x  # d(2u)/dx and its derivative
        s = 1 / (1 + np.exp(-2 * K * (x + C * x**3)))
        ds = s * (1 - s) * g  # ds/dx
        second = 2 * ds + x * (s * (1 - s) * (1 - 2 * s) * g * g + s * (1 - s) * dg)
        return x * s, s + x * ds, np.nan_to_num(second)


def test_tanh_gelu_kernel_across_the_float_range():
    """One op: outputs and the gradient of sum(y * w) against float64, each number within ten times what a
    last-bit change of its x does (and its own last bit); beyond |2u| = 80, where x s and its slope are below 1e-30,
    0 and x (MindSpore's gradient is NaN out there). Within [-10, 10], against MindSpore's GeLU with
    assert_same_computation's yardstick: ten times the change a last-bit wiggle of the input makes in MindSpore's
    own numbers."""
    rng = np.random.default_rng(4)
    inner = np.linspace(-10, 10, 4001, dtype=np.float32)
    x = np.concatenate([inner, [-3e38, -1e30, -1e4, -100, -10.5, 0.0, 10.5, 100, 1e4, 1e30, 3e38]]).astype(np.float32)
    w = rng.uniform(0.5, 2, x.shape).astype(np.float32)
    gelu = nn.GELU()
    assert swaps.faster_gelu(gelu) == 1 and cells.swap(gelu, "tanh_gelu") == 1

    def run(op, values):
        return ms.value_and_grad(lambda t: (op(t) * ms.Tensor(w[: len(values)])).sum())(ms.Tensor(values))

    _, dx = run(gelu, x)
    y, dx = gelu(ms.Tensor(x)).asnumpy(), dx.asnumpy()
    want, slope, curve = exact(x)
    last_bit = np.spacing(np.abs(x)).astype(np.float64)
    tolerance = 10 * (np.abs(slope) * last_bit + np.spacing(np.abs(want).astype(np.float32)))
    np.testing.assert_array_less(np.abs(y - want), tolerance + 1e-30)
    tolerance = 10 * w * (np.abs(curve) * last_bit + np.spacing(np.abs(slope).astype(np.float32)))
    np.testing.assert_array_less(np.abs(dx - w * slope), tolerance + 1e-30)

    def mindspore(values):
        _, grad = run(lambda t: ops.gelu(t, approximate="tanh"), values)
        return ops.gelu(ms.Tensor(values), approximate="tanh").asnumpy(), grad.asnumpy()

    wiggled = (inner * (1 + 2.0**-22 * rng.choice([-1, 1], inner.shape))).astype(np.float32)
    (ref_y, ref_dx), (wig_y, wig_dx) = mindspore(inner), mindspore(wiggled)
    n = len(inner)
    np.testing.assert_allclose(y[:n], ref_y, rtol=0, atol=10 * np.abs(wig_y - ref_y).max())
    np.testing.assert_allclose(dx[:n], ref_dx, rtol=0, atol=10 * np.abs(wig_dx - ref_dx).max())
