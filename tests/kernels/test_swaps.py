"""Each layer fgvctune swaps into a model computes what the layer it replaces computes: the same outputs and the
same gradient for every parameter, to float rounding, in training and in inference mode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fgvctune import runtime

ms = runtime.start(mode="pynative")
from mindspore import nn  # noqa: E402
from same_computation import assert_same_computation, pair  # noqa: E402

from fgvctune.kernels import cells, swaps  # noqa: E402
from fgvctune.models import torchcompat  # noqa: E402

pytestmark = pytest.mark.usefixtures("pynative")


def test_faster_pooling_gives_the_same_outputs_and_gradients():
    for name in ("mobilenet_v3_small_100", "resnet18"):
        assert_same_computation(*pair(name, swaps.faster_pooling), batch=4)


@pytest.mark.parametrize("exact", [False, True], ids=["tanh", "exact-for-pytorch-weights"])
def test_faster_gelu_computes_the_gelu_it_replaces(exact):
    prepare = torchcompat.exact_gelu if exact else None
    reference, swapped = pair("small_convnext", swaps.faster_gelu, prepare)
    gelus = [c for _, c in swapped.cells_and_names() if isinstance(c, nn.GELU)]
    assert gelus and all(type(c) is swaps.ComposedGELU for c in gelus)
    assert {c.approximate for c in gelus} == {"none" if exact else "tanh"}
    assert_same_computation(reference, swapped, size=32, batch=4)


def test_exact_gelu_still_reaches_a_swapped_gelu():
    """torchcompat switches GELUs to the exact form; on a swapped network it must still do so."""
    reference, swapped = pair("small_convnext", swaps.faster_gelu)
    assert torchcompat.exact_gelu(reference) == torchcompat.exact_gelu(swapped) == 5  # one per block
    assert_same_computation(reference, swapped, size=32, batch=4)


def test_faster_split_attention_gives_the_same_outputs_and_gradients():
    reference, swapped = pair("small_resnest", swaps.faster_split_attention)
    assert swaps.faster_split_attention(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=32, batch=4)


def test_squeeze_excite_scale_kernels_give_the_same_outputs_and_gradients():
    reference, swapped = pair("mobilenet_v3_small_100", swaps.faster_squeeze_excite)
    excitations = [c for _, c in swapped.cells_and_names() if isinstance(c, swaps.ScaledSqueezeExcite)]
    assert len(excitations) == 9 and all(isinstance(c.scale, cells.ChannelScale) for c in excitations)
    assert swaps.faster_squeeze_excite(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=32, batch=4)


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["mobilenet_v3_large_100", "resnest50", "convnext_tiny"])
def test_every_swap_together(name):
    def every_swap(network):
        return (
            swaps.faster_pooling(network)
            + swaps.faster_gelu(network)
            + swaps.faster_split_attention(network)
            + cells.swap_all(network)
            + swaps.faster_squeeze_excite(network)
        )

    assert_same_computation(*pair(name, every_swap), size=32, batch=4)


AMP_O1 = """
import numpy as np
from fgvctune import runtime
ms = runtime.start(mode="pynative")
from mindspore import amp
from same_computation import pair
from fgvctune.kernels import cells, swaps
reference, swapped = pair("resnest14", swaps.faster_split_attention)
x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
expected = reference.set_train(False)(x).asnumpy()
cells.restore(swapped)  # as training does: fgvctune's kernels are float32 kernels
mixed = amp.auto_mixed_precision(swapped, "O1").set_train(False)
np.testing.assert_allclose(mixed(x).asnumpy(), expected, rtol=0, atol=1e-2 * np.abs(expected).max())
"""


def test_split_attention_swap_survives_amp_level_o1(tmp_path):
    """amp_level O1 rewrites the network's code into a new module that imports each cell's class by its name. In a
    process of its own, as a run has one network: MindSpore's rewrite imports a class from its file's module name
    (`pooling`), and after an earlier rewrite in the same process (test_setup's) MindSpore's nn/layer/pooling.py
    can stand where MindCV's pooling.py is wanted (MindSpore's cache, not the swap)."""
    import os
    import subprocess

    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(  # (O1 writes ./rewritten_network/: in tmp_path)
        [sys.executable, "-c", AMP_O1], cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
