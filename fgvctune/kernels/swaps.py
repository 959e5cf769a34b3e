"""Layers fgvctune swaps into MindCV's models on the CPU, each computing what the layer it replaces computes:
MindCV's blocks reclassed or replaced by faster equivalents, then fgvctune's own kernels (cells.py) stood in.

Every swap keeps the model's parameter names, so checkpoints load both ways, and each has a parity test in
tests/kernels/ (test_swaps.py, test_cells.py, test_tanh_gelu.py). Importing this module imports MindSpore and
MindCV: only model creation does (models/factory.py calls `apply`, with the seeded dropout of models/dropout.py).
"""

from __future__ import annotations

import mindspore as ms
from mindcv.models import resnest, resnet
from mindcv.models.layers.squeeze_excite import SqueezeExcite
from mindcv.models.resnest import SplitAttn
from mindspore import nn, ops

from fgvctune.kernels import cells
from fgvctune.kernels.build import library


def replace(network, kind, make) -> int:
    """Replace every sub-cell of type `kind` with `make(old_cell, full_name)`; returns how many."""
    swapped = 0
    for prefix, cell in list(network.cells_and_names()):
        for name, child in list(cell.name_cells().items()):
            if isinstance(child, kind):
                new = make(child, f"{prefix}.{name}" if prefix else name)
                if isinstance(cell, (nn.SequentialCell, nn.CellList)):
                    # Item assignment: a SequentialCell runs its own `cell_list`, which setattr leaves holding the
                    # old cell (then never set to training mode, so a swapped dropout would silently not drop).
                    cell[list(cell.name_cells()).index(name)] = new
                else:
                    setattr(cell, name, new)
                swapped += 1
    return swapped


def apply(network, cache_dir: str = "") -> None:
    """The swaps for the CPU, where MindSpore runs on one (the kernels built in the cache under `cache_dir`)."""
    if ms.get_context("device_target") != "CPU":
        return
    faster_pooling(network)
    faster_gelu(network)
    faster_split_attention(network, cache_dir)
    faster_residual(network, cache_dir)
    cells.swap_all(network, cache_dir)
    faster_squeeze_excite(network, cache_dir)


# -- global average pooling ------------------------------------------------------------------------
class MatMulGlobalAvgPool(nn.Cell):
    """The mean over H and W as one MatMul with a constant column of 1/(H*W)."""

    def __init__(self, keep_dims: bool):
        super().__init__()
        self.keep_dims = keep_dims

    def construct(self, x):
        b, c, h, w = x.shape
        weights = ops.ones((h * w, 1), x.dtype) / (h * w)
        y = ops.matmul(x.reshape(b * c, h * w), weights)
        return y.reshape(b, c, 1, 1) if self.keep_dims else y.reshape(b, c)


def faster_pooling(network) -> int:
    """MindCV's GlobalAvgPooling is a ReduceMean whose gradient is a Tile; on CPUs MindSpore runs the
    same average as a MatMul faster (inference of mobilenet_v3_small at 224 px: about +25%)."""
    from mindcv.models.layers.pooling import GlobalAvgPooling

    return replace(network, GlobalAvgPooling, lambda old, name: MatMulGlobalAvgPool(old.keep_dims))


# -- GELU ------------------------------------------------------------------------------------------
class TanhGELUFormula(nn.Cell):
    """GELU's tanh form written out in elementwise ops, which MindSpore's CPU backend runs about 6x faster (forward
    and backward) than its GeLU/GeLUGrad kernels (where cells.TanhGELU's kernel does not stand in for it)."""

    def construct(self, x):
        return 0.5 * x * (1.0 + ops.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


class ComposedGELU(nn.GELU):
    """nn.GELU with its tanh form as the cell `tanh_gelu`: TanhGELUFormula, or fgvctune's own kernel standing in
    for it (cells.TanhGELU). The exact (erf) form, which torchcompat sets for PyTorch-imported weights, runs
    MindSpore's own kernel as before. At module level for amp_level O1, as PairSplitAttn."""

    def construct(self, x):
        if self.approximate == "tanh":
            return self.tanh_gelu(x)
        return ops.gelu(x, approximate=self.approximate)


def faster_gelu(network) -> int:
    """ConvNeXt's GELUs (a third of its training step on CPUs) as ComposedGELU, their tanh form as TanhGELUFormula
    until cells.swap_all stands fgvctune's kernel in for it (one pass each way); a subclass, so
    torchcompat.exact_gelu still switches it to the exact form."""
    changed = 0
    for _, cell in list(network.cells_and_names()):
        if type(cell) is nn.GELU:
            cell.__class__ = ComposedGELU
            cell.tanh_gelu = TanhGELUFormula()
            changed += 1
    return changed


# -- ResNeSt's split attention ---------------------------------------------------------------------
class WeightedPairSum(nn.Cell):
    """`(x, a) -> x[:, :C] * a[:, :C] + x[:, C:] * a[:, C:]`: a radix-2 split attention's two channel halves, each
    weighted by its attention and summed (where cells.RadixPair does not stand in for it)."""

    def construct(self, x, a):
        c = x.shape[1] // 2
        return x[:, :c] * a[:, :c] + x[:, c:] * a[:, c:]


class PairSplitAttn(SplitAttn):
    """SplitAttn at radix 2, its sums over the radix as sums of two channel halves: the pooled halves added (the
    pool of their sum), the weighted halves through `combine`. At module level: amp_level O1 rewrites the
    network's code elsewhere and imports each cell's class by its module and name."""

    def construct(self, x):
        x = self.act0(self.bn0(self.conv(x)))
        b, rc, _, _ = x.shape
        c = rc // 2
        pooled = self.pool(x)
        x_gap = self.act1(self.bn1(self.fc1(pooled[:, :c] + pooled[:, c:])))
        x_attn = self.rsoftmax(self.fc2(x_gap)).reshape(b, rc, 1, 1)
        return self.combine(x, x_attn)


def faster_split_attention(network, cache_dir: str = "") -> int:
    """ResNeSt's radix-2 SplitAttn with its sums over the radix as sums of two channel halves instead of
    ReduceSums over a length-2 axis (the same two numbers added; ReduceSum and its gradient's Tile cost about 9%
    of a resnest50 training step on CPUs), the weighted sum through fgvctune's own kernel where it builds: one
    pass each way for what are otherwise slices, two Muls and an Add, and in the gradient four Muls and two
    ReduceSums (together 20% of a resnest50 training step)."""
    changed = 0
    for _, cell in network.cells_and_names():
        if type(cell) is SplitAttn and cell.radix == 2:
            cell.__class__ = PairSplitAttn
            cell.combine = WeightedPairSum()
            changed += 1
    cells.swap(network, "combine", lambda c: isinstance(c, PairSplitAttn), cache_dir)
    return changed


# -- MobileNetV3's squeeze-excitation -------------------------------------------------------------
class ScaledSqueezeExcite(SqueezeExcite):
    """SqueezeExcite with its last product, x times the gate, as the primitive `scale` (a Mul until a kernel
    stands in for it). At module level for amp_level O1, as PairSplitAttn."""

    def construct(self, x):
        x_se = self.pool(x)
        x_se = self.conv_reduce(x_se)
        if self.norm:
            x_se = self.bn(x_se)
        x_se = self.conv_expand(self.act(x_se))
        return self.scale(x, self.gate(x_se))


def faster_squeeze_excite(network, cache_dir: str = "") -> int:
    """MobileNetV3's squeeze-excitations with their channel scale (and its gradient, a Mul and a ReduceSum over
    each plane) through fgvctune's own kernels, in one pass each way (cells.ChannelScale)."""
    if not library(cache_dir):
        return 0
    for _, cell in network.cells_and_names():
        if type(cell) is SqueezeExcite:
            cell.__class__ = ScaledSqueezeExcite
            cell.scale = ops.Mul()
    return cells.swap(network, "scale", lambda c: isinstance(c, ScaledSqueezeExcite), cache_dir)


# -- the ResNet blocks' residual sum ----------------------------------------------------------------
class ResidualReLU(nn.Cell):
    """A residual block's end, `(out, identity) -> relu(out + identity)` (where cells.AddReLU does not stand in
    for it)."""

    def construct(self, out, identity):
        return ops.relu(out + identity)


class SummedBasicBlock(resnet.BasicBlock):
    """MindCV's BasicBlock ending in the cell `residual`. At module level for amp_level O1, as PairSplitAttn."""

    def construct(self, x):
        identity = x if self.down_sample is None else self.down_sample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.residual(self.bn2(self.conv2(out)), identity)


class SummedBottleneck(resnet.Bottleneck):
    """MindCV's ResNet Bottleneck ending in the cell `residual`."""

    def construct(self, x):
        identity = x if self.down_sample is None else self.down_sample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.residual(self.bn3(self.conv3(out)), identity)


class SummedSplitBottleneck(resnest.Bottleneck):
    """MindCV's ResNeSt Bottleneck ending in the cell `residual`."""

    def construct(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        if self.avd and self.avd_first:
            out = self.avd_layer(out)
        out = self.conv2(out)
        if self.radix == 0:
            out = self.relu(self.bn2(out))
        if self.avd and not self.avd_first:
            out = self.avd_layer(out)
        return self.residual(self.bn3(self.conv3(out)), identity)


SUMMED = {
    resnet.BasicBlock: SummedBasicBlock,
    resnet.Bottleneck: SummedBottleneck,
    resnest.Bottleneck: SummedSplitBottleneck,
}


def faster_residual(network, cache_dir: str = "") -> int:
    """MindCV's ResNet and ResNeSt blocks end in `out += identity` and a ReLU: the in-place add compiles to a Mul,
    an Add and an Assign, so with the ReLU four passes over the block's output forward and two back (12% of a
    resnet50 inference step on CPUs). Reclassed to end in ResidualReLU, and that through fgvctune's kernel where it
    builds, one pass each way. Returns how many blocks."""
    changed = len(summed_blocks(network))
    cells.swap(network, "residual", lambda c: type(c) in SUMMED.values(), cache_dir)
    return changed


def summed_blocks(network) -> list:
    """MindCV's ResNet and ResNeSt blocks reclassed to end in ResidualReLU: [(block, its MindCV class)]."""
    changed = [(cell, type(cell)) for _, cell in network.cells_and_names() if type(cell) in SUMMED]
    for cell, kind in changed:
        cell.__class__ = SUMMED[kind]
        cell.residual = ResidualReLU()
    return changed
