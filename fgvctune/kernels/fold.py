"""BatchNorm folded into the convolution before it, wherever its statistics are fixed.

A BatchNorm in inference mode is a per-channel scale and shift, so `bn(conv(x))` is one convolution with
weight `w * s` and bias `(b - mean) * s + beta`, s = gamma / sqrt(var + eps): one op instead of two over the
whole feature map. That holds in `eval`, `predict` and `export`, and in training for frozen blocks, whose
BatchNorm runs in inference mode (strategy.set_train_mode).

A pair is folded only where the model's structure proves the convolution's output goes to that BatchNorm alone:
neighbours in a plain SequentialCell, or the attribute pairs MindCV's ResNet and ResNeSt blocks call in order in
their `construct` (listed below by class; a subclass may call them otherwise, so it is left alone). ConvNeXt has
LayerNorm, no BatchNorm: nothing to fold. Folding reclasses the two cells in place and keeps the folded weights as
constants beside the untouched parameters, so the parameter names and a saved checkpoint do not change: checkpoints
stay in MindCV's names and layout, folded on load, never in the file. `unfold` gives the network back as it was.
"""

from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn

from fgvctune.kernels import cells


class FoldedConv2d(nn.Conv2d):
    """A Conv2d followed by its BatchNorm: the convolution with the folded weight and bias (constants)."""

    def construct(self, x):
        weight, bias = self.folded_weight.astype(x.dtype), self.folded_bias.astype(x.dtype)
        if isinstance(self.conv2d, cells.Convolution):  # fgvctune's oneDNN adds the bias in the same call
            return self.conv2d(x, weight, bias)
        return self.bias_add(self.conv2d(x, weight), bias)


class FoldedBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm whose work the convolution before it does: it passes its input on."""

    def construct(self, x):
        return x


def _block_pairs() -> dict:
    """(conv, bn) attribute pairs each MindCV block class calls in sequence in its `construct`."""
    from mindcv.models import resnest, resnet

    from fgvctune.kernels import swaps

    split_attention = [("conv", "bn0"), ("fc1", "bn1")]
    known = {
        resnet.BasicBlock: [("conv1", "bn1"), ("conv2", "bn2")],
        resnet.Bottleneck: [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")],
        resnet.ResNet: [("conv1", "bn1")],
        # conv2/bn2 only when radix == 0 (else conv2 is a SplitAttn, not a Conv2d, and the pair is refused below)
        resnest.Bottleneck: [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")],
        resnest.ResNeSt: [("conv1", "bn1")],  # conv1 is a Conv2d, or the deep stem ending in one
        resnest.SplitAttn: split_attention,
        swaps.PairSplitAttn: split_attention,  # the faster SplitAttn calls conv/bn0 and fc1/bn1 the same way
    }
    # the blocks ending in swaps.ResidualReLU call their pairs as MindCV's do
    return known | {summed: known[block] for block, summed in swaps.SUMMED.items()}


def _last_conv(cell):
    """The Conv2d whose output is `cell`'s output: the cell itself, or a plain SequentialCell's last cell."""
    while type(cell) is nn.SequentialCell and len(cell):
        cell = cell[len(cell) - 1]
    return cell if type(cell) in (nn.Conv2d, FoldedConv2d) else None


def pairs(network) -> list[tuple]:
    """Every (conv, bn) pair of `network` that folding may join."""
    known = _block_pairs()
    found = []
    for _, cell in network.cells_and_names():
        children = cell.name_cells()
        if type(cell) is nn.SequentialCell:
            ordered = list(children.values())
            candidates = zip(ordered, ordered[1:])
        elif type(cell) in known:
            candidates = [(children.get(c), children.get(b)) for c, b in known[type(cell)]]
        else:
            continue
        for conv, bn in candidates:
            conv = _last_conv(conv) if conv is not None else None
            if (
                conv is not None
                and type(bn) in (nn.BatchNorm2d, FoldedBatchNorm2d)
                and bn.format == "NCHW"
                and conv.data_format == "NCHW"
                and bn.num_features == conv.out_channels
                and not bn.use_batch_statistics  # None or False: the moving statistics in inference mode
            ):
                found.append((conv, bn))
    return found


def fold(network, frozen_only: bool = False) -> int:
    """Fold every provable pair (with `frozen_only`, those whose parameters all have requires_grad off: frozen
    blocks in training). Folded values come from the parameters now; folding again refreshes them. Returns how
    many pairs are folded."""
    count = 0
    for conv, bn in pairs(network):
        own = list(conv.get_parameters()) + list(bn.get_parameters())
        if frozen_only and any(p.requires_grad for p in own):
            _unfold_pair(conv, bn)
            continue
        scale = bn.gamma.asnumpy() / np.sqrt(bn.moving_variance.asnumpy() + bn.eps)
        weight = conv.weight.asnumpy() * scale.reshape(-1, 1, 1, 1)
        bias = conv.bias.asnumpy() if conv.has_bias else 0.0
        conv.folded_weight = Tensor(weight.astype(np.float32))
        conv.folded_bias = Tensor(((bias - bn.moving_mean.asnumpy()) * scale + bn.beta.asnumpy()).astype(np.float32))
        conv.__class__, bn.__class__ = FoldedConv2d, FoldedBatchNorm2d
        count += 1
    compile_anew(network)
    return count


def unfold(network) -> int:
    """The network as MindCV built it, once fuse.unfuse has given back what it fused (a fused layer is not a pair
    this module knows); returns how many pairs were folded."""
    folded = [(conv, bn) for conv, bn in pairs(network) if type(conv) is FoldedConv2d]
    for conv, bn in folded:
        _unfold_pair(conv, bn)
    compile_anew(network)
    return len(folded)


def compile_anew(network) -> None:
    """In graph mode MindSpore keys a cell's compiled graph by (phase, creation time, id) and would run the graph
    it compiled before the change (with the old constants); a new creation time makes the next call compile."""
    import time

    network._create_time = time.time_ns()


def _unfold_pair(conv, bn) -> None:
    conv.__class__, bn.__class__ = nn.Conv2d, nn.BatchNorm2d
    for name in ("folded_weight", "folded_bias"):
        if name in conv.__dict__:
            delattr(conv, name)
