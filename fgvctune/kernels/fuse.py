"""Folded layers fused: ResNet blocks as a chain of oneDNN convolutions in oneDNN's blocked layout, and MobileNetV3's
layers as fewer ops (each folded convolution with the activation after it, each squeeze-excitation, each residual
sum with the projection before it), then each MobileNetV3 block as one.

After folding (fold.py) a ResNet block is its convolutions, a ReLU after each but the last, and the residual sum
with a ReLU. Here each convolution does its ReLU, or the residual sum and ReLU, itself (onednn.cc's ConvFused*,
oneDNN post-ops), and the tensors between convolutions stay in the layout oneDNN computes in (nChw16c), so no
reorder and no elementwise op passes over them; the residual is read as the last convolution writes its output.
A run of fused blocks enters that layout at its first block and leaves it at its last (in a ResNet, its four layers
are one run, which its stem joins: the stem's convolution reads the plain image and writes the blocked layout with
its ReLU applied, and its max pooling pools there): what goes in and out of a run is plain NCHW, as before.

A SequentialCell's convolution, BatchNorm and ReLU or hard swish (MobileNetV3's layers) becomes one op once the
BatchNorm is folded: the convolution adds the bias and applies the activation as it writes its output (onednn.cc's
ConvActForward, depthwise.cc's DepthwiseActForward), and the activation cell passes its input on. A
squeeze-excitation's seven ops (pooling, two 1x1 convolutions with their biases, ReLU, hard sigmoid, the scale)
become squeeze_excite.cc's one, and a block that adds its input does so in its projection (onednn.cc's
ConvSumForward). Batch 1 gains most: the profiler's timeline put about 8 us of MindSpore's runtime between
two ops there, besides their work. Then each block so fused is one op (bottleneck.cc's BottleneckForward, the same
loops), which takes one image at a time through all of the block's layers: larger batches gain there, each
layer's output still in the core's cache when the next layer reads it (mobilenet_v3_small at batch 32: 65 -> 52 ms);
the first block runs the stem's convolution before it in the same op, whose 26 MB output at batch 32 so stays in
cache too (the two alone, in turns: 5.7 against 7.7 ms).

ConvNeXt's blocks, and the norms and convolutions between its stages, run on channels-last tensors
(channels_last.py); the global average pooling before a MobileNetV3's or ResNet's classifier is one op of
fgvctune's (pooling.py).

The fused ops have no gradient (the pooling's alone has one, for Grad-CAM, which differentiates after the last
feature block, whose output is plain): inference fuses everything it can, training only what comes before the
first trainable parameter.
`fold_and_fuse` folds, then fuses (results/model.py, training/setup.py and resume.py); `unfuse` gives the folded
network back (export, which writes MindSpore's own ops, and before fold.unfold).

Longer than 400 lines because MobileNetV3's steps build on one another (a block fuses whole from the ops the steps
before made of its layers) and `unfuse` takes every step back: one module holds them and their order.
"""

from __future__ import annotations

import collections

import mindspore as ms
import numpy as np
from mindcv.models import mobilenetv3, resnet
from mindspore import nn, ops

from fgvctune.kernels import cells, channels_last, fold, pooling, swaps
from fgvctune.kernels.build import library
from fgvctune.kernels.fold import FoldedBatchNorm2d, FoldedConv2d, compile_anew

NONE, RELU, SUM_RELU, HARD_SWISH, SUM = 0, 1, 2, 3, 4  # what the convolution does after itself (common.h's Post)


class FusedConv(nn.Cell):
    """A folded convolution on blocked tensors, with `post` done in the same call: `x -> conv(x)` or `relu(...)`,
    and with SUM_RELU `(x, summand) -> relu(conv(x) + summand)`, summand blocked too. Its weights are the folded
    constants of the moment it is made (fold again: fuse anew)."""

    def __init__(self, conv: FoldedConv2d, post: int, path: str, place: list):
        super().__init__()
        stand_in = conv.conv2d  # cells.Convolution
        self.folded_weight, self.folded_bias = conv.folded_weight, conv.folded_bias
        kernel = "ConvFusedSumForward" if post == SUM_RELU else "ConvFusedForward"
        self.convolve, self.spec = convolution_op(path, kernel, stand_in, post, *place)  # (cells.fused_layers)

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
    """Every BatchNorm whose statistics are fixed folded (fold.fold; `frozen_only` as there), then what can be
    fused fused (`fuse`). What was fused is unfused first, so folding sees every pair and the fused constants are
    the weights' of now. Returns how many pairs are folded."""
    unfuse(network)
    folded = fold.fold(network, frozen_only)
    fuse(network, cache_dir, training=frozen_only)
    return folded


def fuse(network, cache_dir: str = "", training: bool = False) -> int:
    """Every run of fusable ResNet blocks within a SequentialCell as a blocked chain, every folded convolution with
    its activation, every squeeze-excitation and every MobileNetV3 block's projection with its residual sum as one
    op, then every MobileNetV3 block so fused as one, every ConvNeXt block's Dense layers with their biases; returns
    how many cells it changed (a block made one op counted besides its layers, the activations passing their input
    on not counted). `training`: only those no gradient passes through, before the first trainable parameter (the
    fused ops have no gradient; MindCV's networks define their parameters in the order they use them, and fgvctune
    freezes a prefix)."""
    parameters = list(network.get_parameters())
    first = next((i for i, p in enumerate(parameters) if p.requires_grad), len(parameters)) if training else None
    frozen = {p.name for p in parameters[:first]}

    def gradient_free(cell) -> bool:
        return all(p.name in frozen for p in cell.get_parameters())

    numbered = cells.fused_layers()
    steps = (_fuse_blocks, _fuse_activations, _fuse_squeeze_excite, _fuse_residuals, _fuse_bottlenecks)
    steps += (pooling.fuse_pools,)
    steps += (channels_last.fuse_convnext,)
    fused = sum(step(network, cache_dir, gradient_free, numbered) for step in steps)
    if fused:
        compile_anew(network)
    return fused


def _fuse_blocks(network, cache_dir: str, gradient_free, numbered) -> int:
    """fuse's ResNet blocks."""
    layers = [list(layer.cell_list) for _, layer in network.cells_and_names() if type(layer) is nn.SequentialCell]
    runs = [(blocks, [_fusable(b) and gradient_free(b) for b in blocks]) for blocks in layers]
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
                setattr(block, f"fused{number}", FusedConv(getattr(block, name), post, path, numbered()))
            if block.down_sample is not None:
                block.fused_down = FusedConv(block.down_sample[0], NONE, path, numbered())
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
    for _, net in network.cells_and_names():  # a ResNet's layers, called one after the other: one chain
        if type(net) is resnet.ResNet:
            layers = [net.layer1, net.layer2, net.layer3, net.layer4]
            for before, after in zip(layers, layers[1:]):
                last, first = before[len(before) - 1], after[0]
                if type(last) in FUSED.values() and type(first) in FUSED.values():
                    last.leaves = first.enters = False
            if _stem_joins(net, gradient_free):
                _join_stem(net, path, numbered())
                fused += 2
    return fused


class BlockedMaxPool2d(nn.MaxPool2d):
    """A ResNet's stem max pooling on blocked tensors (`blocked_pool`: pooling.cc's MaxPoolBlockedForward)."""

    def construct(self, x):
        return self.blocked_pool(x, self.pool_spec)


def _stem_joins(net, gradient_free) -> bool:
    """Whether a ResNet's stem (convolution, BatchNorm, ReLU, max pooling) can join its blocks' chain: folded and run
    by onednn.cc, gradient-free, its first block fused and entering the chain."""
    conv, first = net.conv1, net.layer1[0]
    return (
        type(conv) is FoldedConv2d
        and isinstance(conv.conv2d, cells.Convolution)
        and conv.group == 1
        and conv.out_channels % 16 == 0
        and type(net.bn1) is FoldedBatchNorm2d
        and type(net.relu) is nn.ReLU
        and type(net.max_pool) is nn.MaxPool2d
        and cells.is_stem_max_pool(net.max_pool)
        and isinstance(net.max_pool.max_pool, cells.MaxPool)  # run by pooling.cc
        and type(first) in FUSED.values()
        and first.enters
        and gradient_free(conv)
    )


def _join_stem(net, path: str, place: list) -> None:
    """The stem in the chain: its convolution reads the plain image and writes the blocked layout with its ReLU
    applied (onednn.cc's ConvFusedEnterForward), the max pooling pools there and the first block reads it as it is.
    This saves the convolution's reorder back to NCHW and the first block's into the blocked layout, and pools
    sixteen channels a vector (resnet50 at batch 1, the profiler: the stem's ops 1.55 against 2.16 ms)."""
    conv, pool = net.conv1, net.max_pool
    conv.activate, conv.post_spec = convolution_op(path, "ConvFusedEnterForward", conv.conv2d, RELU, *place)
    conv.__class__, net.relu.__class__ = ActivatedConv2d, AppliedReLU
    stand_in = pool.max_pool  # cells.MaxPool: the same geometry and spec
    pool.pool_spec = stand_in.spec
    pool.blocked_pool = ops.Custom(
        f"{path}:MaxPoolBlockedForward", out_shape=stand_in.output_shape, out_dtype=lambda x, _: x, func_type="aot"
    )
    pool.blocked_pool.add_prim_attr("geometry", stand_in.geometry)  # (PyNative's shape cache: see convolution_op)
    pool.__class__ = BlockedMaxPool2d
    net.layer1[0].enters = False


# -- a folded convolution with its activation, a squeeze-excitation: one op each ----------------------------
class ActivatedConv2d(FoldedConv2d):
    """A folded convolution that also applies the activation after its BatchNorm, in the same call (`activate`:
    onednn.cc's ConvActForward, or depthwise.cc's DepthwiseActForward; `post_spec` its convolution's spec and
    the activation, common.h's Post)."""

    def construct(self, x):
        return self.activate(x, self.folded_weight, self.folded_bias, self.post_spec)


class AppliedReLU(nn.ReLU):
    """A ReLU the convolution before it applies (ActivatedConv2d): it passes its input on."""

    def construct(self, x):
        return x


class AppliedHSwish(nn.HSwish):
    """A hard swish the convolution before it applies (ActivatedConv2d): it passes its input on."""

    def construct(self, x):
        return x


APPLIED = {nn.ReLU: (RELU, AppliedReLU), nn.HSwish: (HARD_SWISH, AppliedHSwish)}
PASSING = tuple(applied for _, applied in APPLIED.values())  # the activations a fused convolution applies


def _activated_triples(network, gradient_free) -> list[tuple]:
    """(convolution, BatchNorm, activation) neighbours in a plain SequentialCell, or a ResNet's stem: the convolution
    folded and run by fgvctune's kernels, the activation a ReLU or hard swish called there alone."""
    parents = [cell for _, cell in network.cells_and_names()]
    uses = collections.Counter(id(child) for parent in parents for child in parent.name_cells().values())
    triples = []
    for cell in parents:
        if type(cell) is nn.SequentialCell:
            ordered = list(cell.cell_list)
            triples += zip(ordered, ordered[1:], ordered[2:])
        elif type(cell) is resnet.ResNet:  # its construct calls them so, the ReLU there alone
            triples.append((cell.conv1, cell.bn1, cell.relu))
    return [
        (conv, activation)
        for conv, norm, activation in triples
        if type(conv) is FoldedConv2d
        and isinstance(conv.conv2d, (cells.Convolution, cells.DepthwiseConv))
        and type(norm) is FoldedBatchNorm2d
        and type(activation) in APPLIED
        and uses[id(activation)] == 1
        and gradient_free(conv)
    ]


def convolution_op(path: str, kernel: str, stand_in, post: int, *more: int) -> tuple:
    """The custom op running `kernel` (inputs x, w, b, then a summand if it takes one, then the spec) with the output
    shape of a stand-in's convolution (cells.Convolution or DepthwiseConv), and its spec: the stand-in's, `post`
    (common.h's Post) and `more` after it."""
    shape = stand_in.output_shape
    op = ops.Custom(
        f"{path}:{kernel}",
        out_shape=lambda x, w, *rest: shape(x, w, rest[-1]),
        out_dtype=lambda *a: a[0],
        func_type="aot",
    )
    # PyNative mode caches an op's output shape by its attributes and input shapes (see cells.DepthwiseConv)
    op.add_prim_attr("geometry", stand_in.geometry + (post,))
    return op, ms.Tensor(np.append(stand_in.spec.asnumpy(), [post, *more]).astype(np.int64))


def _fuse_activations(network, cache_dir: str, gradient_free, numbered) -> int:
    """fuse's convolutions with their activation."""
    triples = _activated_triples(network, gradient_free)
    path = library(cache_dir) if triples else None  # (built: the convolutions run through the kernels already)
    if not path:
        return 0
    for conv, activation in triples:
        post, applied = APPLIED[type(activation)]
        kernel = "ConvActForward" if isinstance(conv.conv2d, cells.Convolution) else "DepthwiseActForward"
        conv.activate, conv.post_spec = convolution_op(path, kernel, conv.conv2d, post)
        conv.__class__, activation.__class__ = ActivatedConv2d, applied
    return len(triples)


class FusedSqueezeExcite(swaps.ScaledSqueezeExcite):
    """A squeeze-excitation as one op (squeeze_excite.cc's SqueezeExciteForward)."""

    def construct(self, x):
        reduce, expand = self.conv_reduce, self.conv_expand
        return self.excite(x, reduce.weight, reduce.bias, expand.weight, expand.bias)


def _excitable(cell) -> bool:
    """MobileNetV3's squeeze-excitation with fgvctune's kernels standing in (float32: mixed precision restores
    MindSpore's ops first): no norm, ReLU and hard sigmoid, 1x1 convolutions with biases."""
    from mindcv.models.layers.pooling import GlobalAvgPooling

    return (
        type(cell) is swaps.ScaledSqueezeExcite
        and isinstance(cell.scale, cells.ChannelScale)
        and not cell.norm
        and type(cell.act) is nn.ReLU
        and type(cell.gate) is nn.HSigmoid
        and type(cell.pool) in (swaps.MatMulGlobalAvgPool, GlobalAvgPooling)
        and cell.pool.keep_dims
        and all(
            type(conv) is nn.Conv2d
            and conv.kernel_size == (1, 1)
            and tuple(conv.stride) in ((1, 1), (1, 1, 1, 1))
            and conv.group == 1
            and conv.has_bias
            and conv.data_format == "NCHW"
            for conv in (cell.conv_reduce, cell.conv_expand)
        )
    )


def _fuse_squeeze_excite(network, cache_dir: str, gradient_free, numbered) -> int:
    """fuse's squeeze-excitations."""
    found = [cell for _, cell in network.cells_and_names() if _excitable(cell) and gradient_free(cell)]
    path = library(cache_dir) if found else None  # (built: swaps.faster_squeeze_excite made them ScaledSqueezeExcite)
    if not path:
        return 0
    for cell in found:
        cell.excite = ops.Custom(
            f"{path}:SqueezeExciteForward", out_shape=lambda x, *_: x, out_dtype=lambda x, *_: x, func_type="aot"
        )
        cell.__class__ = FusedSqueezeExcite
    return len(found)


class ResidualBottleneck(mobilenetv3.Bottleneck):
    """MobileNetV3's block whose projection (a folded pointwise convolution) adds the block's input in the same call
    (`project`: onednn.cc's ConvSumForward), where MindCV adds it after."""

    def construct(self, x):
        out = x
        for i in range(self.body):  # the layers before the projection and its (folded) BatchNorm
            out = self.layers[i](out)
        conv = self.layers[self.body]
        return self.project(out, conv.folded_weight, conv.folded_bias, x, self.project_spec)


def _pointwise(stand_in) -> bool:
    """Whether a cells.Convolution is a 1x1 convolution at stride 1 without padding (pointwise.cc's)."""
    kh, kw, sh, sw, dh, dw, top, bottom, left, right, _, group = stand_in.geometry
    return (kh, kw, sh, sw, dh, dw, top, bottom, left, right, group) == (1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1)


def _summable(block) -> bool:
    """A MobileNetV3 block that adds its input, ending in a folded pointwise convolution run by onednn.cc."""
    if type(block) is not mobilenetv3.Bottleneck or not block.use_res_connect or len(block.layers) < 3:
        return False
    conv, norm = block.layers[len(block.layers) - 2], block.layers[len(block.layers) - 1]
    return (
        type(conv) is FoldedConv2d
        and type(norm) is FoldedBatchNorm2d
        and isinstance(conv.conv2d, cells.Convolution)
        and _pointwise(conv.conv2d)
    )


def _fuse_residuals(network, cache_dir: str, gradient_free, numbered) -> int:
    """fuse's MobileNetV3 blocks with their residual sum in the projection."""
    found = [cell for _, cell in network.cells_and_names() if _summable(cell) and gradient_free(cell)]
    path = library(cache_dir) if found else None  # (built: the projections run through the kernels already)
    if not path:
        return 0
    for block in found:
        stand_in = block.layers[len(block.layers) - 2].conv2d
        block.project, block.project_spec = convolution_op(path, "ConvSumForward", stand_in, SUM)
        block.body = len(block.layers) - 2
        block.__class__ = ResidualBottleneck
    return len(found)


class WholeBottleneck(mobilenetv3.Bottleneck):
    """MobileNetV3's block as one op (`whole`: bottleneck.cc's BottleneckForward), once fuse's other steps made each
    of its layers one: its layers' constants of the moment, the op's inputs (`whole_inputs`), stay in place."""

    def construct(self, x):
        return self.whole(x, *self.whole_inputs)


def _whole_parts(block) -> tuple | None:
    """A MobileNetV3 block's expansion (or None), depthwise convolution, squeeze-excitation (or None) and projection,
    as fuse's other steps leave them: the convolutions folded and each with its activation in one op, the residual
    sum (where the block adds its input) in the projection's. None where the block is not so."""
    if type(block) not in (mobilenetv3.Bottleneck, ResidualBottleneck):
        return None
    layers = list(block.layers.cell_list)

    def activated(at: int, stand_in) -> bool:  # a convolution, its passing BatchNorm and activation
        return (
            len(layers) >= at + 3
            and type(layers[at]) is ActivatedConv2d
            and isinstance(layers[at].conv2d, stand_in)
            and type(layers[at + 1]) is FoldedBatchNorm2d
            and type(layers[at + 2]) in PASSING
        )

    expand = layers[0] if activated(0, cells.Convolution) and _pointwise(layers[0].conv2d) else None
    at = 3 if expand else 0
    if not activated(at, cells.DepthwiseConv):
        return None
    depthwise, at = layers[at], at + 3
    excite = layers[at] if at < len(layers) and type(layers[at]) is FusedSqueezeExcite else None
    at += 1 if excite else 0
    project = layers[at] if at < len(layers) else None
    if (
        len(layers) != at + 2
        or type(project) is not FoldedConv2d
        or not isinstance(project.conv2d, cells.Convolution)
        or not _pointwise(project.conv2d)
        or type(layers[at + 1]) is not FoldedBatchNorm2d
        or block.use_res_connect != (type(block) is ResidualBottleneck)
    ):
        return None
    return expand, depthwise, excite, project


class JoinedStem(ActivatedConv2d):
    """A MobileNetV3's stem that the first block's op runs before the block (bottleneck.cc's StemBottleneckForward):
    it passes the image on (its own op, `activate`, is kept: it is what the block's op runs first)."""

    def construct(self, x):
        return x


def _stem_before(block, before: dict) -> ActivatedConv2d | None:
    """The stem right before a block in its SequentialCell, where the block's op can run it (stem.cc's geometry: a
    3x3 convolution at stride 2 over at most 4 channels, padded by at most one alike on every side), as fuse's other
    steps leave it (one op, its BatchNorm and activation passing); else None."""
    if len(before.get(id(block), [])) < 3:
        return None
    conv, norm, activation = before[id(block)]
    if not (
        type(conv) is ActivatedConv2d
        and isinstance(conv.conv2d, cells.Convolution)
        and type(norm) is FoldedBatchNorm2d
        and type(activation) in PASSING
    ):
        return None
    kh, kw, sh, sw, dh, dw, top, bottom, left, right, mode, group = conv.conv2d.geometry
    shape = (kh, kw, sh, sw, dh, dw, mode, group)
    padding = top == bottom == left == right <= 1
    return conv if shape == (3, 3, 2, 2, 1, 1, "pad", 1) and padding and conv.in_channels <= 4 else None


def _fuse_bottlenecks(network, cache_dir: str, gradient_free, numbered) -> int:
    """fuse's MobileNetV3 blocks as one op each, the stem joining the first."""
    found = [(cell, _whole_parts(cell)) for _, cell in network.cells_and_names() if gradient_free(cell)]
    found = [(block, parts) for block, parts in found if parts]
    path = library(cache_dir) if found else None  # (built: the blocks' layers run through the kernels already)
    if not path:
        return 0
    before = {}  # a SequentialCell's cell -> the (up to) three cells before it there
    for _, sequence in network.cells_and_names():
        if type(sequence) is nn.SequentialCell:
            ordered = list(sequence.cell_list)
            before |= {id(cell): ordered[max(i - 3, 0) : i] for i, cell in enumerate(ordered)}
    for block, (expand, depthwise, excite, project) in found:
        nothing = ms.Tensor(np.zeros(1, np.float32))  # the inputs of a part the block has not
        stand_in, out = depthwise.conv2d, project.out_channels
        spec = [expand is not None, expand.post_spec.asnumpy()[-1] if expand else NONE]
        spec += [*depthwise.conv2d.spec.asnumpy(), depthwise.post_spec.asnumpy()[-1], excite is not None]
        spec += [type(block) is ResidualBottleneck]
        inputs = [expand.folded_weight, expand.folded_bias] if expand else [nothing, nothing]
        inputs += [depthwise.folded_weight, depthwise.folded_bias]
        if excite:  # its parameters' values of now, as the folded constants are
            convs = (excite.conv_reduce, excite.conv_expand)
            inputs += [ms.Tensor(p.asnumpy()) for conv in convs for p in (conv.weight, conv.bias)]
        else:
            inputs += [nothing] * 4
        inputs += [project.folded_weight, project.folded_bias]
        stem = _stem_before(block, before)
        if stem is not None and gradient_free(stem):  # the stem's convolution and activation in front
            inputs = [stem.folded_weight, stem.folded_bias, *inputs]
            spec += [stem.post_spec.asnumpy()[-1], *stem.conv2d.geometry[6:10:2]]  # its post, top and left padding
            kernel, geometry = "StemBottleneckForward", (*stem.conv2d.geometry, *stand_in.geometry, out)

            def planes(x, first=stem.conv2d.output_shape, channels=stem.out_channels, then=stand_in.output_shape):
                return then(first(x, [channels], None), None, None)[2:]

            stem.__class__ = JoinedStem
        else:
            kernel, geometry = "BottleneckForward", (*stand_in.geometry, out)

            def planes(x, then=stand_in.output_shape):
                return then(x, None, None)[2:]

        inputs.append(ms.Tensor(np.array(spec, np.int64)))
        block.whole = ops.Custom(
            f"{path}:{kernel}",
            out_shape=lambda x, *_, planes=planes, out=out: [x[0], out, *planes(x)],
            out_dtype=lambda x, *_: x,
            func_type="aot",
        )
        block.whole.add_prim_attr("geometry", geometry)  # (PyNative's shape cache: see convolution_op)
        block.whole_inputs = tuple(inputs)
        block.__class__ = WholeBottleneck
    return len(found)


# What fusing gives the cells it changes (the fused ops and what they read), taken away by unfuse
ADDED = ("fused1", "fused2", "fused3", "fused_down")  # the ResNet blocks'
ADDED += ("activate", "post_spec", "excite", "project", "project_spec", "body")  # MobileNetV3's layers'
ADDED += ("whole", "whole_inputs")  # and blocks'
ADDED += ("enters", "leaves", "blocked_pool", "pool_spec")  # (ConvNeXt's too; a ResNet's stem's pooling)
ADDED += channels_last.ADDED + pooling.ADDED


def unfuse(network) -> int:
    """The folded network as it was before `fuse`; returns how many cells, as `fuse` counts them."""
    back = {fused: summed for summed, fused in FUSED.items()}
    back |= {ActivatedConv2d: FoldedConv2d, FusedSqueezeExcite: swaps.ScaledSqueezeExcite}
    back |= {applied: activation for activation, (_, applied) in APPLIED.items()}
    back[ResidualBottleneck] = back[WholeBottleneck] = mobilenetv3.Bottleneck
    back[JoinedStem] = FoldedConv2d
    back[BlockedMaxPool2d] = nn.MaxPool2d
    back |= channels_last.UNFUSED | pooling.UNFUSED
    found = [cell for _, cell in network.cells_and_names() if type(cell) in back]
    count = sum(type(cell) not in PASSING for cell in found)
    for cell in found:
        for name in ADDED:
            if name in cell.__dict__ or name in cell.name_cells():
                delattr(cell, name)
            cell._primitives.pop(name, None)
        cell.__class__ = back[type(cell)]
    if found:
        compile_anew(network)
    return count
