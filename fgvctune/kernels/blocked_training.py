"""ResNet blocks trained on blocked tensors: nChw16c, (N, C / 16, H, W, 16), the layout oneDNN's AVX-512
convolutions compute in.

Through cells.Convolution each convolution of a training step reorders its input, its output and their gradients
between MindSpore's NCHW and that layout (8% of a resnet50 freeze7 step in oneDNN's own log, besides its 1x1
convolutions run as products per image to spare the reorders, below oneDNN's convolution's speed on the smaller
maps). Here a run of consecutive blocks that train keeps the layout from the first block's input to the last
block's output: each convolution reads and writes nChw16c (BlockedConvolution: onednn.cc's flag in its spec, so
oneDNN reorders only the weights), so does each BatchNorm (BlockedBatchNormTrain: batchnorm.cc's 16 channels a
vector), and ReLU and the residual sum read any layout, element by element. The run's first block makes its input
blocked and its last makes its output plain again (ToBlocked, ToPlain: each the other's gradient). Only while the
cells train (`self.training`): evaluated, the same cells run on plain tensors as before.

`block_training` is fuse.fuse's step for the blocks a gradient passes through (fuse's other steps take the others),
and fuse.unfuse undoes it (UNFUSED, ADDED).
"""

from __future__ import annotations

import mindspore as ms
import numpy as np
from mindcv.models import resnet
from mindspore import nn, ops

from fgvctune.kernels import cells, swaps
from fgvctune.kernels.build import library


class BlockedConvolution(cells.Convolution):
    """cells.Convolution on nChw16c tensors while it trains (`blocked_spec`: its spec and then 1, which onednn.cc
    reads as the layout of x, the output and their gradients); evaluated, on plain ones."""

    def construct(self, x, weight, bias=None):
        if self.training and bias is None:
            return self.convolve(x, weight, self.blocked_spec)
        return super().construct(x, weight, bias)


class BlockedBatchNormTrain(cells.BatchNormTrain):
    """cells.BatchNormTrain on nChw16c tensors (`normalize_blocked`: batchnorm.cc's BatchNormBlockedForward)."""

    def construct(self, x, gamma, beta, moving_mean, moving_variance):
        y, _, _, moved_mean, moved_variance = self.normalize_blocked(
            x, gamma, beta, moving_mean, moving_variance, self.settings
        )
        ops.assign(moving_mean, moved_mean)
        ops.assign(moving_variance, moved_variance)
        return (y,)


def _normalize_blocked(path: str):
    """BatchNormBlockedForward with its gradient. Written out apart from cells.BatchNormTrain's: graph mode compiled
    one layer's bprop closure for another with the same code (see cells.Convolution)."""
    backward = ops.Custom(
        f"{path}:BatchNormBlockedBackward",
        out_shape=lambda dy, x, gamma, mean, invstd: (x, gamma, gamma),
        out_dtype=lambda *a: (a[0], a[0], a[0]),
        func_type="aot",
    )

    def blocked_bprop(x, gamma, beta, moving_mean, moving_var, settings, out, dout):
        dx, dgamma, dbeta = backward(dout[0], x, gamma, out[1], out[2])
        return dx, dgamma, dbeta, ops.zeros_like(moving_mean), ops.zeros_like(moving_var), ops.zeros_like(settings)

    return ops.Custom(
        f"{path}:BatchNormBlockedForward",
        out_shape=lambda x, gamma, *_: (x, gamma, gamma, gamma, gamma),
        out_dtype=lambda *a: (a[0],) * 5,
        func_type="aot",
        bprop=blocked_bprop,
    )


def _relayouts(path: str) -> tuple:
    """onednn.cc's ToBlocked and ToPlain, each with the other as its gradient."""
    to_plain_back = ops.Custom(f"{path}:ToPlain", out_shape=lambda x: x, out_dtype=lambda x: x, func_type="aot")
    to_blocked_back = ops.Custom(f"{path}:ToBlocked", out_shape=lambda x: x, out_dtype=lambda x: x, func_type="aot")

    def entering_bprop(x, out, dout):
        return (to_plain_back(dout),)

    def leaving_bprop(x, out, dout):
        return (to_blocked_back(dout),)

    to_blocked = ops.Custom(
        f"{path}:ToBlocked", out_shape=lambda x: x, out_dtype=lambda x: x, func_type="aot", bprop=entering_bprop
    )
    to_plain = ops.Custom(
        f"{path}:ToPlain", out_shape=lambda x: x, out_dtype=lambda x: x, func_type="aot", bprop=leaving_bprop
    )
    return to_blocked, to_plain


class BlockedBottleneck(swaps.SummedBottleneck):
    """A Bottleneck that trains on blocked tensors (`enters`: its input is plain; `leaves`: its output is made
    plain); evaluated, swaps.SummedBottleneck on plain ones."""

    def construct(self, x):
        if self.training and self.enters:
            x = self.to_blocked(x)
        out = super().construct(x)
        return self.to_plain(out) if self.training and self.leaves else out


class BlockedBasicBlock(swaps.SummedBasicBlock):
    """A BasicBlock that trains on blocked tensors (`enters`, `leaves` as BlockedBottleneck's)."""

    def construct(self, x):
        if self.training and self.enters:
            x = self.to_blocked(x)
        out = super().construct(x)
        return self.to_plain(out) if self.training and self.leaves else out


BLOCKED = {swaps.SummedBottleneck: BlockedBottleneck, swaps.SummedBasicBlock: BlockedBasicBlock}
PAIRS = {swaps.SummedBottleneck: ("1", "2", "3"), swaps.SummedBasicBlock: ("1", "2")}  # conv1 and bn1, ...


def _pairs(block) -> list | None:
    """The block's (convolution, BatchNorm) pairs, its downsampling's last; None where the downsampling is other."""
    pairs = [(getattr(block, "conv" + n), getattr(block, "bn" + n)) for n in PAIRS[type(block)]]
    down = block.down_sample
    if down is None:
        return pairs
    if type(down) is not nn.SequentialCell or len(down) != 2:
        return None
    return pairs + [(down[0], down[1])]


def _trains_blocked(conv, norm) -> bool:
    """A convolution through onednn.cc without bias on channels in blocks of 16, then a BatchNorm that trains
    through batchnorm.cc (one frozen keeps its statistics: MindSpore's inference op, on plain tensors)."""
    return (
        type(conv) is nn.Conv2d
        and type(conv.conv2d) is cells.Convolution
        and conv.group == 1
        and not conv.has_bias
        and conv.in_channels % 16 == 0
        and conv.out_channels % 16 == 0
        and type(norm) is nn.BatchNorm2d
        and type(norm.bn_train) is cells.BatchNormTrain
        and norm.use_batch_statistics is None
        and any(p.requires_grad for p in norm.get_parameters())
    )


def _trainable(block, gradient_free) -> bool:
    if type(block) not in BLOCKED or gradient_free(block) or not isinstance(block.relu, nn.ReLU):
        return False
    pairs = _pairs(block)
    return pairs is not None and all(_trains_blocked(conv, norm) for conv, norm in pairs)


def block_training(network, cache_dir: str, gradient_free, numbered) -> int:
    """fuse's step for the ResNet blocks a gradient passes through: each run of them within a SequentialCell (and
    across a ResNet's four layers) trains on blocked tensors; returns how many cells changed (each such block, its
    convolutions' and BatchNorms' stand-ins)."""
    layers = [list(layer.cell_list) for _, layer in network.cells_and_names() if type(layer) is nn.SequentialCell]
    runs = [(blocks, [_trainable(b, gradient_free) for b in blocks]) for blocks in layers]
    path = library(cache_dir) if any(any(trainable) for _, trainable in runs) else None
    if not path:
        return 0
    to_blocked, to_plain = _relayouts(path)
    changed = 0
    for blocks, trainable in runs:
        for i, block in enumerate(blocks):
            if not trainable[i]:
                continue
            pairs = _pairs(block)
            for conv, norm in pairs:
                stand_in = conv.conv2d
                stand_in.blocked_spec = ms.Tensor(np.append(stand_in.spec.asnumpy(), 1).astype(np.int64))
                stand_in.__class__ = BlockedConvolution
                norm.bn_train.normalize_blocked = _normalize_blocked(path)
                norm.bn_train.__class__ = BlockedBatchNormTrain
            block.enters = i == 0 or not trainable[i - 1]
            block.leaves = i == len(blocks) - 1 or not trainable[i + 1]
            block.to_blocked, block.to_plain = to_blocked, to_plain
            block.__class__ = BLOCKED[type(block)]
            changed += 1 + 2 * len(pairs)
    for _, net in network.cells_and_names():  # a ResNet's layers, called one after the other: one run
        if type(net) is resnet.ResNet:
            layers = [net.layer1, net.layer2, net.layer3, net.layer4]
            for before, after in zip(layers, layers[1:]):
                last, first = before[len(before) - 1], after[0]
                if type(last) in BLOCKED.values() and type(first) in BLOCKED.values():
                    last.leaves = first.enters = False
    return changed


ADDED = ("blocked_spec", "normalize_blocked", "to_blocked", "to_plain")  # (and fuse's "enters", "leaves")
UNFUSED = {
    BlockedBottleneck: swaps.SummedBottleneck,
    BlockedBasicBlock: swaps.SummedBasicBlock,
    BlockedConvolution: cells.Convolution,
    BlockedBatchNormTrain: cells.BatchNormTrain,
}
