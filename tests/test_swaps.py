"""Each layer fgvctune swaps into a model computes what the layer it replaces computes."""

from __future__ import annotations

import numpy as np

from fgvctune import runtime

ms = runtime.start(mode="pynative")
import mindcv  # noqa: E402

from fgvctune import swaps  # noqa: E402


def test_faster_pooling_gives_the_same_outputs():
    for name in ("mobilenet_v3_small_100", "resnet18"):
        ms.set_seed(3)
        reference = mindcv.create_model(name, num_classes=4)
        swapped = mindcv.create_model(name, num_classes=4)
        ms.load_param_into_net(swapped, reference.parameters_dict())
        assert swaps.faster_pooling(swapped) >= 1
        reference.set_train(False)
        swapped.set_train(False)
        x = ms.Tensor(np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32))
        np.testing.assert_allclose(swapped(x).asnumpy(), reference(x).asnumpy(), rtol=1e-5, atol=1e-6)
