"""ConvNeXt fused on channels-last tensors, (N, H, W, C), from its stem's convolution to its last block.

MindCV's ConvNeXt keeps (N, C, H, W) between its cells and transposes to channels last and back inside every block
and around every stem or downsampling norm (44 transposes in convnext_tiny, 12% of its forward). Here a run of
consecutive cells (`_channels_last_runs`) keeps the channels-last layout from its first cell to its last: the blocks
(the depthwise convolution and its bias one op, depthwise.cc's DepthwiseChannelsLastForward; each Dense layer's
bias added in oneDNN's product, onednn.cc's DenseBiasForward; the layer scale folded into the second's weights and
bias), the norms, and the stem's and downsamplings' convolutions, whose kernel is their stride, as one product of
patches each. Like fuse.py's cells they hold the weights of the moment they are fused and have no gradient;
`fuse_convnext` is fuse.fuse's step, and fuse.unfuse undoes it (UNFUSED, ADDED).
"""

from __future__ import annotations

import itertools

import mindspore as ms
import numpy as np
from mindcv.models import convnext
from mindspore import nn, ops

from fgvctune.kernels import cells
from fgvctune.kernels.build import library


def _to_channels_last(x):
    return ops.transpose(x, (0, 2, 3, 1))


def _to_channels_first(x):
    return ops.transpose(x, (0, 3, 1, 2))


class BiasedConvNeXtBlock(convnext.Block):
    """ConvNeXt's block on channels-last tensors, (N, H, W, C): the depthwise convolution and its bias one op
    (`depthwise`: depthwise.cc's DepthwiseChannelsLastForward), each Dense layer's bias added in its product
    (`biased`: onednn.cc's DenseBiasForward; the first's tanh GELU in the same call where `gelu_expands`,
    DenseBiasGeluForward), the layer scale folded into the second layer's weights and bias; all constants of the
    moment it is made (train and fuse again to see new weights). `enters`: its input is
    channels-first (N, C, H, W), `leaves`: its output is made so (see _channels_last_runs)."""

    def construct(self, x):
        if self.enters:
            x = _to_channels_last(x)
        shortcut = x
        x = self.norm(self.depthwise(x, self.depthwise_weight, self.depthwise_bias, self.depthwise_spec))
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        if self.gelu_expands:
            x = self.biased_gelu(x, self.expand_weight, self.expand_bias, self.expand_spec)
        else:  # (the exact GELU: torchcompat's)
            x = self.act(self.biased(x, self.expand_weight, self.expand_bias, self.expand_spec))
        x = self.biased(x, self.project_weight, self.project_bias, self.project_spec)
        x = shortcut + self.drop_path(x.reshape(shape))
        return _to_channels_first(x) if self.leaves else x


class ChannelsLastNorm(convnext.ConvNextLayerNorm):
    """ConvNeXt's LayerNorm over the channels of a channels-first tensor (the stem's and each downsampling's), run
    on channels-last ones: MindCV transposes there and back around it (`enters`, `leaves` as the blocks')."""

    def construct(self, x):
        if self.enters:
            x = _to_channels_last(x)
        y, _, _ = self.layer_norm(x, self.gamma, self.beta)
        return _to_channels_first(y) if self.leaves else y


class PatchConv2d(nn.Conv2d):
    """A convolution whose kernel is its stride (ConvNeXt's stem, 4x4, and downsampling, 2x2) on channels-last
    tensors: each output pixel's patch is a row, (kh, kw, C), and the convolution one product with its bias
    (`biased`, `patch_weight`, `patch_bias`: constants of the moment it is made). `enters`, `leaves` as the
    blocks'."""

    def construct(self, x):
        if self.enters:
            x = _to_channels_last(x)
        n, height, width, channels = x.shape
        k = self.kernel_size[0]
        rows, cols = -(-height // k) * k - height, -(-width // k) * k - width  # "same": MindSpore's padding,
        if rows or cols:  # the smaller half at the top and left
            x = ops.pad(x, (0, 0, cols // 2, cols - cols // 2, rows // 2, rows - rows // 2))
            n, height, width, channels = x.shape
        patches = x.reshape(n, height // k, k, width // k, k * channels).transpose(0, 1, 3, 2, 4)
        y = self.biased(patches.reshape(-1, k * k * channels), self.patch_weight, self.patch_bias, self.patch_spec)
        y = y.reshape(n, height // k, width // k, -1)
        return _to_channels_first(y) if self.leaves else y


def _biasable(block) -> bool:
    """A ConvNeXt (V1) block whose depthwise convolution and two Dense layers' products run through fgvctune's
    kernels, its channels in groups of 8, no activation inside the Dense layers."""
    return (
        type(block) is convnext.Block
        and not block.use_grn
        and isinstance(block.dwconv.conv2d, cells.DepthwiseConv)
        and block.dwconv.in_channels % 8 == 0
        and all(
            isinstance(dense.matmul, cells.DenseProduct) and dense.has_bias and not dense.activation_flag
            for dense in (block.pwconv1, block.pwconv2)
        )
    )


def _channels_first_norm(cell) -> bool:
    return type(cell) is convnext.ConvNextLayerNorm and cell.norm_axis == 1


def _patch_conv(cell) -> bool:
    """A convolution run by onednn.cc whose kernel is its stride, in one group, padded "same" (MindCV's)."""
    return (
        type(cell) is nn.Conv2d
        and isinstance(cell.conv2d, cells.Convolution)
        and cell.kernel_size[0] == cell.kernel_size[1] == tuple(cell.stride)[-1] == tuple(cell.stride)[-2]
        and cell.group == 1
        and tuple(cell.dilation)[-2:] == (1, 1)
        and cell.pad_mode == "same"
    )


def depthwise(conv: nn.Conv2d, path: str) -> tuple:
    """A depthwise convolution (its stand-in cells.DepthwiseConv) on channels-last tensors: the op, its weights as
    (K, K, C), its bias (zeros if it has none) and its spec."""
    stand_in = conv.conv2d

    def out_shape(x, w, b, spec):
        n, c, height, width = stand_in.output_shape([x[0], x[3], x[1], x[2]], w, spec)
        return [n, height, width, c]

    op = ops.Custom(
        f"{path}:DepthwiseChannelsLastForward", out_shape=out_shape, out_dtype=lambda *a: a[0], func_type="aot"
    )
    op.add_prim_attr("geometry", stand_in.geometry)  # (see convolution_op)
    weight = conv.weight.asnumpy()
    bias = conv.bias.asnumpy() if conv.has_bias else np.zeros(conv.out_channels, np.float32)
    return op, ms.Tensor(np.ascontiguousarray(weight[:, 0].transpose(1, 2, 0))), ms.Tensor(bias), stand_in.spec


def _biased_product(path: str, kernel: str = "DenseBiasForward"):
    """x (M, K), w (N, K), b (N), spec -> x @ w.T + b (onednn.cc's DenseBiasForward; DenseBiasGeluForward: its tanh
    GELU)."""
    return ops.Custom(
        f"{path}:{kernel}", out_shape=lambda x, w, *_: [x[0], w[0]], out_dtype=lambda *a: a[0], func_type="aot"
    )


def _product_spec(any_isa: int, numbered) -> ms.Tensor:
    """A biased product's spec: onednn.cc's setting, then the layer's place and its fusing's generation (its weights
    are constants: cells.fused_layers)."""
    return ms.Tensor(np.array([any_isa, *numbered()], np.int64))


def _channels_last_runs(network, eligible) -> list[list]:
    """Runs of consecutive cells that `eligible` accepts, in the order SequentialCells (nested ones flattened) call
    them, with at least one ConvNeXt block each: from the first of a run to its last the tensors stay channels
    last (for convnext_tiny, the whole network from the stem to the head)."""
    sequences = [cell for _, cell in network.cells_and_names() if type(cell) is nn.SequentialCell]
    nested = {id(child) for sequence in sequences for child in sequence.cell_list}

    def flat(sequence):
        for cell in sequence.cell_list:
            yield from flat(cell) if type(cell) is nn.SequentialCell else (cell,)

    runs = []
    for sequence in (s for s in sequences if id(s) not in nested):
        for accepted, run in itertools.groupby(flat(sequence), key=eligible):
            run = list(run)
            if accepted and any(type(cell) is convnext.Block for cell in run):
                runs.append(run)
    return runs


def _fuse_patch_conv(conv, path: str, numbered) -> None:
    conv.biased = _biased_product(path)
    conv.patch_spec = _product_spec(conv.conv2d.spec.asnumpy()[-1], numbered)  # (the convolution's any_isa)
    weight = conv.weight.asnumpy().transpose(0, 2, 3, 1)  # (O, kh, kw, C): a patch's order
    conv.patch_weight = ms.Tensor(np.ascontiguousarray(weight).reshape(conv.out_channels, -1))
    conv.patch_bias = ms.Tensor(conv.bias.asnumpy() if conv.has_bias else np.zeros(conv.out_channels, np.float32))
    conv.__class__ = PatchConv2d


def _fuse_block(block, path: str, numbered) -> None:
    block.depthwise, block.depthwise_weight, block.depthwise_bias, block.depthwise_spec = depthwise(block.dwconv, path)
    any_isa = block.pwconv1.matmul.spec.asnumpy()[0]
    block.biased = _biased_product(path)
    block.gelu_expands = isinstance(block.act, nn.GELU) and block.act.approximate == "tanh"
    block.biased_gelu = _biased_product(path, "DenseBiasGeluForward")
    block.expand_spec, block.project_spec = _product_spec(any_isa, numbered), _product_spec(any_isa, numbered)
    expand, project = block.pwconv1, block.pwconv2
    scale = block.gamma_.asnumpy() if block.gamma_ is not None else np.ones(project.out_channels, np.float32)
    block.expand_weight, block.expand_bias = ms.Tensor(expand.weight.asnumpy()), ms.Tensor(expand.bias.asnumpy())
    block.project_weight = ms.Tensor(project.weight.asnumpy() * scale[:, None])
    block.project_bias = ms.Tensor(project.bias.asnumpy() * scale)
    block.__class__ = BiasedConvNeXtBlock


def fuse_convnext(network, cache_dir: str, gradient_free, numbered) -> int:
    """fuse.fuse's step for ConvNeXt: its blocks, and the norms and patch convolutions around them, in runs."""

    def eligible(cell) -> bool:
        return (_biasable(cell) or _channels_first_norm(cell) or _patch_conv(cell)) and gradient_free(cell)

    runs = _channels_last_runs(network, eligible)
    path = library(cache_dir) if runs else None  # (built: the Dense layers' products run through the kernels)
    if not path:
        return 0
    for run in runs:
        for i, cell in enumerate(run):
            cell.enters, cell.leaves = i == 0, i == len(run) - 1
            if _channels_first_norm(cell):
                cell.__class__ = ChannelsLastNorm
            elif _patch_conv(cell):
                _fuse_patch_conv(cell, path, numbered)
            else:
                _fuse_block(cell, path, numbered)
    return sum(len(run) for run in runs)


# What fusing gives the cells it changes, taken away by fuse.unfuse (with `enters` and `leaves`), and the classes
# it gives them back
ADDED = (
    "biased",
    "biased_gelu",
    "gelu_expands",
    "expand_spec",
    "expand_weight",
    "expand_bias",
    "project_spec",
    "project_weight",
    "project_bias",
    "depthwise",
    "depthwise_weight",
    "depthwise_bias",
    "depthwise_spec",
    "patch_spec",
    "patch_weight",
    "patch_bias",
)
UNFUSED = {BiasedConvNeXtBlock: convnext.Block, ChannelsLastNorm: convnext.ConvNextLayerNorm, PatchConv2d: nn.Conv2d}
