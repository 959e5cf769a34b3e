"""Layers fgvctune swaps into MindCV's models, each computing what the layer it replaces computes.

Every swap keeps the model's parameter names, so checkpoints load both ways, and each has a parity
test in tests/test_swaps.py. Importing this module imports MindSpore: only model creation does.
"""

from __future__ import annotations

import mindspore as ms
from mindcv.models.layers.squeeze_excite import SqueezeExcite
from mindcv.models.resnest import SplitAttn
from mindspore import nn, ops


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


def reclass(network, kind, faster) -> int:
    """Give every sub-cell of type `kind` the class `faster` (a subclass with a faster `construct`): the
    cell and its parameters stay where they are, so their names do not change; returns how many."""
    changed = 0
    for _, cell in network.cells_and_names():
        if type(cell) is kind:
            cell.__class__ = faster
            changed += 1
    return changed


def apply(network, seed: int = 0) -> None:
    """The swaps for the device MindSpore runs on; `seed` seeds the dropout masks."""
    seeded_dropout(network, seed)
    if ms.get_context("device_target") == "CPU":
        faster_pooling(network)
        faster_gelu(network)
        faster_split_attention(network)
        faster_depthwise(network)
        faster_convolution(network)
        faster_dense_product(network)
        faster_batchnorm(network)
        faster_layernorm(network)
        faster_dense_bias(network)
        faster_hswish(network)
        faster_squeeze_excite(network)


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


# -- dropout ---------------------------------------------------------------------------------------
COUNTER = "dropout_calls"  # the parameter that counts a SeededDropout's training calls


def is_counter(name: str) -> bool:
    return name.rsplit(".", 1)[-1] == COUNTER


class SeededDropout(nn.Cell):
    """Dropout whose mask is a hash of (seed, layer, call number, element index).

    MindSpore's CPU Dropout draws its mask in parallel chunks whose split depends on how busy the
    cores are, so two runs with the same seed drop different units; its generator state also lives
    inside the kernel, where no checkpoint can keep it. Here the call number is a parameter, saved
    with the weights, so a resumed run draws the masks the uninterrupted run would have drawn.
    """

    def __init__(self, p: float, salt: int):
        super().__init__()
        self.p, self.keep = float(p), 1.0 - float(p)
        self.threshold = int(self.keep * 2**32)
        self.salt = salt & 0x7FFFFFFF
        self.mask = 0xFFFFFFFF  # an attribute, not a module constant: amp_level O1 recompiles construct elsewhere
        self.dropout_calls = ms.Parameter(ms.Tensor(0, ms.int64), name=COUNTER, requires_grad=False)

    def construct(self, x):
        if not self.training or self.p == 0:
            return x
        calls = self.dropout_calls + 1
        ops.assign(self.dropout_calls, calls)
        index = ops.arange(0, x.size, dtype=ms.int64).reshape(x.shape)
        # A 32-bit integer hash (multiply and xor-shift rounds) kept in int64 so nothing overflows.
        h = (index * 0x9E3779B1 + calls * 0x85EBCA77 + self.salt) & self.mask
        h = ops.bitwise_xor(h, ops.bitwise_right_shift(h, 16))
        h = (h * 0x7FEB352D) & self.mask
        h = ops.bitwise_xor(h, ops.bitwise_right_shift(h, 15))
        h = (h * 0x1B873593) & self.mask
        h = ops.bitwise_xor(h, ops.bitwise_right_shift(h, 16))
        return x * (h < self.threshold).astype(x.dtype) / self.keep


def seeded_dropout(network, seed: int) -> int:
    """Swap every nn.Dropout (MindCV's classifier dropout and DropPath use it) for SeededDropout."""
    import zlib

    def make(old, name):
        p = old.p if old.p is not None else 1.0 - old.keep_prob
        return SeededDropout(p, zlib.crc32(f"{seed}:{name}".encode()))

    swapped = replace(network, nn.Dropout, make)
    for name, param in network.parameters_and_names():
        if is_counter(name):
            param.name = name  # a cell set into a built model gets only its attribute name as prefix
    return swapped


# -- GELU ------------------------------------------------------------------------------------------
class ComposedGELU(nn.GELU):
    """nn.GELU's tanh form written out in elementwise ops, which MindSpore's CPU backend runs about 6x
    faster (forward and backward) than its GeLU/GeLUGrad kernels. The exact (erf) form, which
    torchcompat sets for PyTorch-imported weights, runs MindSpore's own kernel as before."""

    def construct(self, x):
        if self.approximate == "tanh":
            return 0.5 * x * (1.0 + ops.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
        return ops.gelu(x, approximate=self.approximate)


def faster_gelu(network) -> int:
    """ConvNeXt's GELUs (a third of its training step on CPUs) as ComposedGELU; a subclass, so
    torchcompat.exact_gelu still switches it to the exact form."""
    return reclass(network, nn.GELU, ComposedGELU)


# -- ResNeSt's split attention ---------------------------------------------------------------------
class WeightedPairSum(nn.Cell):
    """`(x, a) -> x[:, :C] * a[:, :C] + x[:, C:] * a[:, C:]`: a radix-2 split attention's two channel halves, each
    weighted by its attention and summed (where kernels.RadixPair does not stand in for it)."""

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


def faster_split_attention(network) -> int:
    """ResNeSt's radix-2 SplitAttn with its sums over the radix as sums of two channel halves instead of
    ReduceSums over a length-2 axis (the same two numbers added; ReduceSum and its gradient's Tile cost about 9%
    of a resnest50 training step on CPUs), the weighted sum through fgvctune's own kernel where it builds: one
    pass each way for what are otherwise slices, two Muls and an Add, and in the gradient four Muls and two
    ReduceSums (together 20% of a resnest50 training step)."""
    from fgvctune.kernels import cells as kernels

    changed = 0
    for _, cell in network.cells_and_names():
        if type(cell) is SplitAttn and cell.radix == 2:
            cell.__class__ = PairSplitAttn
            cell.combine = WeightedPairSum()
            changed += 1
    kernels.swap(network, "combine", kernels.RadixPair, lambda c: isinstance(c, PairSplitAttn))
    return changed


# -- fgvctune's own CPU kernels ---------------------------------------------------------------------
def faster_depthwise(network) -> int:
    """MobileNetV3's and ConvNeXt's depthwise convolutions through fgvctune's own kernels (kernels.py): on
    CPUs MindSpore runs them as im2col and a GEMM per channel, several times slower than PyTorch."""
    from fgvctune.kernels import cells as kernels

    return kernels.swap_depthwise(network)


def faster_convolution(network) -> int:
    """Every other convolution through a private oneDNN on the layouts it chooses (kernels.py): MindSpore hands
    its oneDNN plain tensors, for which it runs im2col and a GEMM (and, with AVX-512, a reference kernel)."""
    from fgvctune.kernels import cells as kernels

    return kernels.swap_convolution(network)


def faster_dense_product(network) -> int:
    """nn.Dense's matrix product through the same private oneDNN, free to use AVX-512 (kernels.py)."""
    from fgvctune.kernels import cells as kernels

    return kernels.swap_dense_product(network)


def faster_batchnorm(network) -> int:
    """BatchNorm in training mode through fgvctune's own kernels (kernels.py)."""
    from fgvctune.kernels import cells as kernels

    return kernels.swap_batchnorm(network)


def faster_layernorm(network) -> int:
    """ConvNeXt's LayerNorms (over the channels of a channels-last tensor) through fgvctune's own kernels."""
    from fgvctune.kernels import cells as kernels

    return kernels.swap_layernorm(network)


def faster_hswish(network) -> int:
    """MobileNetV3's hard swish through fgvctune's own kernels (kernels.py)."""
    from fgvctune.kernels import cells as kernels

    return kernels.swap_hswish(network)


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


def faster_squeeze_excite(network) -> int:
    """MobileNetV3's squeeze-excitations with their channel scale (and its gradient, a Mul and a ReduceSum over
    each plane) through fgvctune's own kernels, in one pass each way (kernels.py)."""
    from fgvctune.kernels import cells as kernels

    if not kernels.library():
        return 0
    for _, cell in network.cells_and_names():
        if type(cell) is SqueezeExcite:
            cell.__class__ = ScaledSqueezeExcite
            cell.scale = ops.Mul()
    return kernels.swap(network, "scale", kernels.ChannelScale, lambda c: isinstance(c, ScaledSqueezeExcite))


def faster_dense_bias(network) -> int:
    """nn.Dense's bias (its gradient a sum over the rows) through fgvctune's own kernels."""
    from fgvctune.kernels import cells as kernels

    return kernels.swap_dense_bias(network)
