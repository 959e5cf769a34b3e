"""Folded ResNet blocks as a chain of oneDNN convolutions in oneDNN's blocked layout.

After folding (fold.py) a ResNet block is its convolutions, a ReLU after each but the last, and the residual sum
with a ReLU. Here each convolution does its ReLU, or the residual sum and ReLU, itself (onednn.cc's ConvFused*,
oneDNN post-ops), and the tensors between convolutions stay in the layout oneDNN computes in (nChw16c), so no
reorder and no elementwise op passes over them. A layer (MindCV's SequentialCell of blocks) enters that layout at
its first block and leaves it at its last: what goes in and out of a layer is plain NCHW, as before.

The fused ops have no gradient: inference fuses every block it can (Grad-CAM differentiates after a layer's last
block, whose output is plain), training only the frozen blocks before the first trainable parameter.
`fold_and_fuse` folds, then fuses (results/model.py, training/setup.py and resume.py); `unfuse` gives the folded
blocks back (export, which writes MindSpore's own ops, and before fold.unfold).
"""

from __future__ import annotations

import itertools

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from fgvctune.kernels import cells, fold, swaps
from fgvctune.kernels.build import library
from fgvctune.kernels.fold import FoldedBatchNorm2d, FoldedConv2d, compile_anew

NONE, RELU, SUM_RELU = 0, 1, 2  # what the convolution does after itself (onednn.cc's Post)
_numbers = itertools.count()  # each FusedConv's own: onednn.cc keeps its weights, reordered once, by this number


class FusedConv(nn.Cell):
    """A folded convolution on blocked tensors, with `post` done in the same call: `x -> conv(x)` or `relu(...)`,
    and with SUM_RELU `(x, summand) -> relu(conv(x) + summand)`, summand blocked too. Its weights are the folded
    constants of the moment it is made (fold again: fuse anew)."""

    def __init__(self, conv: FoldedConv2d, post: int, path: str):
        super().__init__()
        stand_in = conv.conv2d  # cells.Convolution
        self.folded_weight, self.folded_bias = conv.folded_weight, conv.folded_bias
        self.spec = ms.Tensor(np.append(stand_in.spec.asnumpy(), [post, next(_numbers)]).astype(np.int64))
        shape = stand_in.output_shape
        if post == SUM_RELU:
            self.convolve = ops.Custom(
                f"{path}:ConvFusedSumForward",
                out_shape=lambda x, w, b, s, spec: shape(x, w, spec),
                out_dtype=lambda *a: a[0],
                func_type="aot",
            )
        else:
            self.convolve = ops.Custom(
                f"{path}:ConvFusedForward",
                out_shape=lambda x, w, b, spec: shape(x, w, spec),
                out_dtype=lambda *a: a[0],
                func_type="aot",
            )
        # PyNative mode caches an op's output shape by its attributes and input shapes (see cells.DepthwiseConv)
        self.convolve.add_prim_attr("geometry", stand_in.geometry + (post,))

    def construct(self, x, summand=None):
        if summand is None:
            return self.convolve(x, self.folded_weight, self.folded_bias, self.spec)
        return self.convolve(x, self.folded_weight, self.folded_bias, summand, self.spec)


class FusedBottleneck(swaps.SummedBottleneck):
    """A folded Bottleneck on blocked tensors (`enters`: its input plain; `leaves`: its output made plain)."""

    def construct(self, x):
        if self.enters:
            x = self.to_blocked(x)
        identity = x if self.down_sample is None else self.fused_down(x)
        out = self.fused2(self.fused1(x))
        out = self.fused3(out, identity)
        return self.to_plain(out) if self.leaves else out


class FusedBasicBlock(swaps.SummedBasicBlock):
    """A folded BasicBlock on blocked tensors (`enters`, `leaves` as FusedBottleneck's)."""

    def construct(self, x):
        if self.enters:
            x = self.to_blocked(x)
        identity = x if self.down_sample is None else self.fused_down(x)
        out = self.fused2(self.fused1(x), identity)
        return self.to_plain(out) if self.leaves else out


FUSED = {swaps.SummedBottleneck: FusedBottleneck, swaps.SummedBasicBlock: FusedBasicBlock}
CONVOLUTIONS = {swaps.SummedBottleneck: ("conv1", "conv2", "conv3"), swaps.SummedBasicBlock: ("conv1", "conv2")}


def _folded_on_onednn(conv) -> bool:
    return (
        type(conv) is FoldedConv2d
        and isinstance(conv.conv2d, cells.Convolution)
        and conv.group == 1
        and conv.in_channels % 16 == 0
        and conv.out_channels % 16 == 0
    )


def _fusable(block) -> bool:
    """Every convolution of the block folded and run by onednn.cc, channels in blocks of 16, the downsampling a
    folded convolution alone."""
    if type(block) not in FUSED or not isinstance(block.relu, nn.ReLU):
        return False
    down = block.down_sample
    if down is not None and not (
        type(down) is nn.SequentialCell
        and len(down) == 2
        and _folded_on_onednn(down[0])
        and type(down[1]) is FoldedBatchNorm2d
    ):
        return False
    return all(_folded_on_onednn(getattr(block, name)) for name in CONVOLUTIONS[type(block)])


def fold_and_fuse(network, frozen_only: bool = False, cache_dir: str = "") -> int:
    """Every BatchNorm whose statistics are fixed folded (fold.fold; `frozen_only` as there), then every ResNet block
    folded whole fused. Fused blocks are unfused first, so folding sees them all and the fused constants are the
    weights' of now. Returns how many pairs are folded."""
    unfuse(network)
    folded = fold.fold(network, frozen_only)
    fuse(network, cache_dir, training=frozen_only)
    return folded


def fuse(network, cache_dir: str = "", training: bool = False) -> int:
    """Every run of fusable blocks within a SequentialCell as a blocked chain; returns how many blocks. `training`:
    only blocks no gradient passes through, those before the first trainable parameter (the fused ops have no
    gradient; the ResNets define their parameters in the order they use them, and fgvctune freezes a prefix)."""
    parameters = list(network.get_parameters())
    first = next((i for i, p in enumerate(parameters) if p.requires_grad), len(parameters)) if training else None
    frozen = {p.name for p in parameters[:first]}
    layers = [list(layer.cell_list) for _, layer in network.cells_and_names() if type(layer) is nn.SequentialCell]
    runs = [
        (blocks, [_fusable(b) and all(p.name in frozen for p in b.get_parameters()) for b in blocks])
        for blocks in layers
    ]
    # (the kernels are built where a block is fusable: its convolutions run through them already)
    path = library(cache_dir) if any(any(fusable) for _, fusable in runs) else None
    if not path:
        return 0
    fused = 0
    for blocks, fusable in runs:
        for i, block in enumerate(blocks):
            if not fusable[i]:
                continue
            kind = type(block)
            names = CONVOLUTIONS[kind]
            posts = [RELU] * (len(names) - 1) + [SUM_RELU]
            for number, (name, post) in enumerate(zip(names, posts), start=1):
                setattr(block, f"fused{number}", FusedConv(getattr(block, name), post, path))
            if block.down_sample is not None:
                block.fused_down = FusedConv(block.down_sample[0], NONE, path)
            block.enters = i == 0 or not fusable[i - 1]
            block.leaves = i == len(blocks) - 1 or not fusable[i + 1]
            block.to_blocked = ops.Custom(
                f"{path}:ToBlocked", out_shape=lambda x: x, out_dtype=lambda x: x, func_type="aot"
            )
            block.to_plain = ops.Custom(
                f"{path}:ToPlain", out_shape=lambda x: x, out_dtype=lambda x: x, func_type="aot"
            )
            block.__class__ = FUSED[kind]
            fused += 1
    if fused:
        compile_anew(network)
    return fused


def unfuse(network) -> int:
    """The folded blocks as they were before `fuse`; returns how many."""
    back = {fused: summed for summed, fused in FUSED.items()}
    blocks = [cell for _, cell in network.cells_and_names() if type(cell) in back]
    for block in blocks:
        for name in ("fused1", "fused2", "fused3", "fused_down"):
            if name in block.name_cells():
                delattr(block, name)
        block.__class__ = back[type(block)]
    if blocks:
        compile_anew(network)
    return len(blocks)
