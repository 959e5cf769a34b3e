"""The global average pooling before a MindCV MobileNetV3's or ResNet's classifier as one op of fgvctune's
(pooling.cc's GlobalMeanForward), where swaps.MatMulGlobalAvgPool runs it as MindSpore's MatMul: 80 to 120 us of
mobilenet_v3_small's forward at batch 1 (docs/performance.md).

`fuse_pools` is fuse.fuse's step, and fuse.unfuse undoes it (UNFUSED, ADDED). Training fuses a pooling only where
every cell before it is gradient-free: the MatMul's gradient was measured faster than a spread like this op's
(swaps.faster_pooling). The op has a gradient all the same, for Grad-CAM, which differentiates through an inference
network's pooling.
"""

from __future__ import annotations

import mindspore as ms
from mindcv.models import mobilenetv3, resnet
from mindspore import ops

from fgvctune.kernels import swaps
from fgvctune.kernels.build import library


class FusedGlobalAvgPool(swaps.MatMulGlobalAvgPool):
    """The pooling as `average` (global_mean_op); a float16 input (mixed precision) takes the MatMul still."""

    def construct(self, x):
        if x.dtype == ms.float32:
            return self.average(x)
        return super().construct(x)


def global_mean_op(path: str, keep_dims: bool):
    """pooling.cc's GlobalMeanForward: (N, C, H, W) -> each plane's mean, (N, C, 1, 1) or, without `keep_dims`,
    (N, C); its gradient spreads each mean's over its plane."""

    def bprop(x, out, dout):
        b, c, h, w = x.shape
        return (ops.broadcast_to(dout.reshape(b, c, 1, 1) / (h * w), x.shape),)

    op = ops.Custom(
        f"{path}:GlobalMeanForward",
        out_shape=(lambda x: [*x[:2], 1, 1]) if keep_dims else (lambda x: [*x[:2]]),
        out_dtype=lambda x: x,
        func_type="aot",
        bprop=bprop,
    )
    op.add_prim_attr("keep_dims", keep_dims)  # (PyNative caches output shapes by attributes: cells.DepthwiseConv)
    return op


def fuse_pools(network, cache_dir: str, gradient_free, numbered) -> int:
    """A MobileNetV3's or ResNet's pooling fused where every cell before it is gradient-free (a pooling has no
    parameters: whether a gradient passes through it is theirs); returns how many."""
    found = []
    for _, net in network.cells_and_names():
        if type(net) in (mobilenetv3.MobileNetV3, resnet.ResNet) and type(net.pool) is swaps.MatMulGlobalAvgPool:
            children = list(net.name_cells().items())  # in the order the network defines (and calls) them
            if all(gradient_free(child) for _, child in children[: [name for name, _ in children].index("pool")]):
                found.append(net.pool)
    path = library(cache_dir) if found else None
    if not path:
        return 0
    for cell in found:
        cell.average = global_mean_op(path, cell.keep_dims)
        cell.__class__ = FusedGlobalAvgPool
    return len(found)


ADDED = ("average",)
UNFUSED = {FusedGlobalAvgPool: swaps.MatMulGlobalAvgPool}
