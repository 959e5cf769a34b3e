"""The stand-in cells through which fgvctune's own CPU kernels (build.py, csrc/) run, as one table.

Each swap gives a cell a stand-in for the primitive it calls (`conv2d`, `matmul`, `bn_train`, `layer_norm`,
`bias_add`, `hswish`; `scale`, `combine`, `tanh_gelu` and `residual` are those swaps.py's SqueezeExcite, SplitAttn,
GELU and ResNet block subclasses call), so the cell and its parameters stay where they are: checkpoints and
BatchNorm folding see no change. `restore` puts back what was there before, MindSpore's primitives (or swaps.py's
WeightedPairSum, TanhGELUFormula and ResidualReLU): export does, so an exported MindIR runs anywhere; so does
mixed precision, as these kernels are float32.

`STAND_INS` lists each stand-in: the primitive it stands in for, which cells get it, and whether it needs
onednn.cc. `swap` gives one row's stand-in to every cell it fits, `swap_all` walks the table, `restore` undoes it.

Longer than 400 lines because each of the twelve stand-ins writes its custom ops and their bprop out in full: graph
mode compiled one layer's bprop closure for another with the same code when they were shared (see Convolution).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Optional

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from fgvctune import runtime
from fgvctune.kernels.build import has_onednn, library


def _output_size(size: int, kernel: int, stride: int, pad_mode: str, before: int, after: int) -> int:
    if pad_mode == "same":
        return -(-size // stride)
    return (size + before + after - kernel) // stride + 1


_fusings = itertools.count()


def fused_layers() -> Callable[[], list]:
    """Numbers for the layers one fusing makes whose weights onednn.cc keeps reordered (fuse.py's ResNet
    convolutions, channels_last.py's products): a function giving each next layer [its place, the fusing's
    generation]. onednn.cc keys a plan by the place, so fusing a network again (a tuning study's next trial) reuses
    the plans rather than keeping another copy of the weights, and reorders them again for a new generation."""
    generation, places = next(_fusings), itertools.count()
    return lambda: [next(places), generation]


class DepthwiseConv(nn.Cell):
    """Conv2D's stand-in for one depthwise convolution: `(x, weight) -> output` through depthwise.cc (float32:
    mixed precision restores MindSpore's primitive first, kept here as `primitive`)."""

    def __init__(self, conv: nn.Conv2d, path: str):
        super().__init__()
        self.primitive = conv.conv2d
        (k, _), (sh, sw) = conv.kernel_size, conv.stride
        pad = conv.padding if isinstance(conv.padding, (tuple, list)) else (conv.padding,) * 4
        top, bottom, left, right = pad if conv.pad_mode == "pad" else (0, 0, 0, 0)
        self.spec = ms.Tensor(np.array([sh, sw, top, left, conv.pad_mode == "same"], np.int64))
        mode = conv.pad_mode

        def out_shape(x, w, spec):
            height = _output_size(x[2], k, sh, mode, top, bottom)
            return [x[0], x[1], height, _output_size(x[3], k, sw, mode, left, right)]

        grad_input = ops.Custom(
            f"{path}:DepthwiseGradInput", out_shape=lambda dy, w, x, s: x, out_dtype=lambda *a: a[0], func_type="aot"
        )
        grad_weight = ops.Custom(
            f"{path}:DepthwiseGradWeight", out_shape=lambda dy, x, w, s: w, out_dtype=lambda *a: a[0], func_type="aot"
        )

        def bprop(x, weight, spec, out, dout):
            return grad_input(dout, weight, x, spec), grad_weight(dout, x, weight, spec), ops.zeros_like(spec)

        self.convolve = ops.Custom(
            f"{path}:DepthwiseForward", out_shape=out_shape, out_dtype=lambda *a: a[0], func_type="aot", bprop=bprop
        )
        # PyNative mode caches an op's output shape by its attributes and input shapes: the geometry must be one.
        self.geometry = (k, sh, sw, top, bottom, left, right, mode)
        self.output_shape = out_shape  # (fuse.py's convolutions too)
        self.convolve.add_prim_attr("geometry", self.geometry)

    def construct(self, x, weight):
        return self.convolve(x, weight, self.spec)


def _any_isa() -> bool:
    """Whether onednn.cc's oneDNN may use every instruction set (unless the user capped oneDNN's)."""
    return not runtime.isa_set_by_user()


class Convolution(nn.Cell):
    """Conv2D's stand-in for a convolution that is not depthwise: `(x, weight) -> output` through onednn.cc
    (float32; the primitive it replaces is kept as `primitive`)."""

    def __init__(self, conv: nn.Conv2d, path: str):
        super().__init__()
        self.primitive = conv.conv2d
        (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, tuple(conv.dilation)[-2:]
        pad = conv.padding if isinstance(conv.padding, (tuple, list)) else (conv.padding,) * 4
        top, bottom, left, right = pad if conv.pad_mode == "pad" else (0, 0, 0, 0)
        mode = conv.pad_mode
        spec = [sh, sw, top, left, dh, dw, mode == "same", conv.group, _any_isa()]
        self.spec = ms.Tensor(np.array(spec, np.int64))

        def out_shape(x, w, spec):
            height = _output_size(x[2], (kh - 1) * dh + 1, sh, mode, top, bottom)
            return [x[0], w[0], height, _output_size(x[3], (kw - 1) * dw + 1, sw, mode, left, right)]

        # DepthwiseConv's pattern written out again, not shared through a helper: graph mode compiled one layer's
        # bprop closure for others with the same code (a captured weight shape reached other layers when tried).
        grad_input = ops.Custom(
            f"{path}:ConvGradInput", out_shape=lambda dy, w, x, s: x, out_dtype=lambda *a: a[0], func_type="aot"
        )
        grad_weight = ops.Custom(
            f"{path}:ConvGradWeight", out_shape=lambda dy, x, w, s: w, out_dtype=lambda *a: a[0], func_type="aot"
        )

        def bprop(x, weight, spec, out, dout):
            return grad_input(dout, weight, x, spec), grad_weight(dout, x, weight, spec), ops.zeros_like(spec)

        self.convolve = ops.Custom(
            f"{path}:ConvForward", out_shape=out_shape, out_dtype=lambda *a: a[0], func_type="aot", bprop=bprop
        )

        def biased_bprop(x, weight, bias, spec, out, dout):
            dx, dw, _ = bprop(x, weight, spec, out, dout)
            return dx, dw, dout.sum(axis=(0, 2, 3)), ops.zeros_like(spec)

        self.convolve_biased = ops.Custom(
            f"{path}:ConvBiasForward",
            out_shape=lambda x, w, b, spec: out_shape(x, w, spec),
            out_dtype=lambda *a: a[0],
            func_type="aot",
            bprop=biased_bprop,
        )
        self.geometry = (kh, kw, sh, sw, dh, dw, top, bottom, left, right, mode, conv.group)
        self.output_shape = out_shape  # (fuse.py's convolutions too)
        for op in (self.convolve, self.convolve_biased):
            op.add_prim_attr("geometry", self.geometry)

    def construct(self, x, weight, bias=None):
        """`bias` (one per output channel), where given, is added in the same call (folding's, fold.py)."""
        if bias is None:
            return self.convolve(x, weight, self.spec)
        return self.convolve_biased(x, weight, bias, self.spec)


def is_convolution(cell) -> bool:
    """A convolution onednn.cc runs: every Conv2d but the depthwise ones (depthwise.cc's)."""
    return (
        isinstance(cell, nn.Conv2d)
        and not is_depthwise(cell)
        and cell.data_format == "NCHW"
        and cell.pad_mode in ("same", "valid", "pad")
    )


class DenseProduct(nn.Cell):
    """nn.Dense's MatMul's stand-in: `(x, weight) -> x @ weight.T` over a 2-D x through onednn.cc (float32; the
    primitive it replaces is kept as `primitive`)."""

    def __init__(self, dense: nn.Dense, path: str):
        super().__init__()
        self.primitive = dense.matmul
        self.spec = ms.Tensor(np.array([_any_isa()], np.int64))
        grad_input = ops.Custom(
            f"{path}:DenseGradInput",
            out_shape=lambda dy, w, s: [dy[0], w[1]],
            out_dtype=lambda *a: a[0],
            func_type="aot",
        )
        grad_weight = ops.Custom(
            f"{path}:DenseGradWeight",
            out_shape=lambda dy, x, s: [dy[1], x[1]],
            out_dtype=lambda *a: a[0],
            func_type="aot",
        )

        def bprop(x, weight, spec, out, dout):
            return grad_input(dout, weight, spec), grad_weight(dout, x, spec), ops.zeros_like(spec)

        self.multiply = ops.Custom(
            f"{path}:DenseForward",
            out_shape=lambda x, w, s: [x[0], w[0]],
            out_dtype=lambda *a: a[0],
            func_type="aot",
            bprop=bprop,
        )

    def construct(self, x, weight):
        return self.multiply(x, weight, self.spec)


def is_depthwise(cell) -> bool:
    return (
        isinstance(cell, nn.Conv2d)
        and cell.group == cell.in_channels == cell.out_channels > 1
        and cell.kernel_size[0] == cell.kernel_size[1]
        and tuple(cell.dilation) in ((1, 1), (1, 1, 1, 1))
        and cell.data_format == "NCHW"
        and cell.pad_mode in ("same", "valid", "pad")
    )


class BatchNormTrain(nn.Cell):
    """BatchNorm's training-mode primitive's stand-in: `(x, gamma, beta, moving_mean, moving_variance) -> (y,)`,
    updating the moving statistics as the primitive does (momentum the weight of the batch, the batch's unbiased
    variance), through batchnorm.cc (float32 NCHW; the primitive it replaces is kept as `primitive`)."""

    def __init__(self, norm: nn.BatchNorm2d, path: str):
        super().__init__()
        self.primitive = norm.bn_train
        # eps, and nn.BatchNorm2d's momentum (it keeps 1 - its momentum argument: the batch's weight)
        self.settings = ms.Tensor(np.array([norm.eps, norm.momentum], np.float32))

        backward = ops.Custom(
            f"{path}:BatchNormBackward",
            out_shape=lambda dy, x, gamma, mean, invstd: (x, gamma, gamma),
            out_dtype=lambda *a: (a[0], a[0], a[0]),
            func_type="aot",
        )

        def bprop(x, gamma, beta, moving_mean, moving_var, settings, out, dout):
            dx, dgamma, dbeta = backward(dout[0], x, gamma, out[1], out[2])
            return dx, dgamma, dbeta, ops.zeros_like(moving_mean), ops.zeros_like(moving_var), ops.zeros_like(settings)

        self.normalize = ops.Custom(
            f"{path}:BatchNormForward",
            out_shape=lambda x, gamma, *_: (x, gamma, gamma, gamma, gamma),
            out_dtype=lambda *a: (a[0],) * 5,
            func_type="aot",
            bprop=bprop,
        )

    def construct(self, x, gamma, beta, moving_mean, moving_variance):
        y, _, _, moved_mean, moved_variance = self.normalize(
            x, gamma, beta, moving_mean, moving_variance, self.settings
        )
        ops.assign(moving_mean, moved_mean)
        ops.assign(moving_variance, moved_variance)
        return (y,)


class LayerNormLastAxis(nn.Cell):
    """LayerNorm's primitive's stand-in over the last axis: `(x, gamma, beta) -> (y, mean, 1/std)` through
    layernorm.cc (float32; the primitive it replaces is kept as `primitive`). Callers use `y` alone."""

    def __init__(self, norm: nn.LayerNorm, path: str):
        super().__init__()
        self.primitive = norm.layer_norm
        self.eps = ms.Tensor(np.array([norm.epsilon], np.float32))

        backward = ops.Custom(
            f"{path}:LayerNormBackward",
            out_shape=lambda dy, x, gamma, mean, rstd: (x, gamma, gamma),
            out_dtype=lambda *a: (a[0], a[0], a[0]),
            func_type="aot",
        )

        def bprop(x, gamma, beta, eps, out, dout):
            dx, dgamma, dbeta = backward(dout[0], x, gamma, out[1], out[2])
            return dx, dgamma, dbeta, ops.zeros_like(eps)

        def rows(x):
            return [int(np.prod(x[:-1]))]

        self.normalize = ops.Custom(
            f"{path}:LayerNormForward",
            out_shape=lambda x, gamma, beta, eps: (x, rows(x), rows(x)),
            out_dtype=lambda *a: (a[0], a[0], a[0]),
            func_type="aot",
            bprop=bprop,
        )

    def construct(self, x, gamma, beta):
        return self.normalize(x, gamma, beta, self.eps)


class DenseBias(nn.Cell):
    """nn.Dense's BiasAdd's stand-in: `(x, bias) -> x + bias` over a 2-D x's rows through bias.cc (float32; the
    primitive it replaces is kept as `primitive`)."""

    def __init__(self, dense: nn.Dense, path: str):
        super().__init__()
        self.primitive = dense.bias_add
        backward = ops.Custom(
            f"{path}:BiasAddBackward", out_shape=lambda dy: [dy[-1]], out_dtype=lambda dy: dy, func_type="aot"
        )

        def bprop(x, bias, out, dout):
            return dout, backward(dout)

        self.add = ops.Custom(
            f"{path}:BiasAddForward", out_shape=lambda x, b: x, out_dtype=lambda x, b: x, func_type="aot", bprop=bprop
        )

    def construct(self, x, bias):
        return self.add(x, bias)


class HardSwish(nn.Cell):
    """HSwish's stand-in: `x -> x * min(max(x + 3, 0), 6) / 6` through activation.cc (float32; the primitive it
    replaces is kept as `primitive`)."""

    def __init__(self, cell: nn.HSwish, path: str):
        super().__init__()
        self.primitive = cell.hswish
        backward = ops.Custom(
            f"{path}:HSwishBackward", out_shape=lambda dy, x: x, out_dtype=lambda dy, x: x, func_type="aot"
        )

        def bprop(x, out, dout):
            return (backward(dout, x),)

        self.activate = ops.Custom(
            f"{path}:HSwishForward", out_shape=lambda x: x, out_dtype=lambda x: x, func_type="aot", bprop=bprop
        )

    def construct(self, x):
        return self.activate(x)


class ChannelScale(nn.Cell):
    """A squeeze-excitation's final Mul's stand-in: `(x, s) -> x * s` for x (N, C, H, W) and s (N, C, 1, 1)
    through activation.cc, s's gradient summed in the same pass as x's (float32; the Mul it replaces is kept as
    `primitive`)."""

    def __init__(self, cell, path: str):
        super().__init__()
        self.primitive = cell.scale
        backward = ops.Custom(
            f"{path}:ChannelScaleBackward",
            out_shape=lambda dy, x, s: (x, s),
            out_dtype=lambda dy, x, s: (x, x),
            func_type="aot",
        )

        def bprop(x, s, out, dout):
            dx, ds = backward(dout, x, s)
            return dx, ds

        self.multiply = ops.Custom(
            f"{path}:ChannelScaleForward",
            out_shape=lambda x, s: x,
            out_dtype=lambda x, s: x,
            func_type="aot",
            bprop=bprop,
        )

    def construct(self, x, s):
        return self.multiply(x, s)


class RadixPair(nn.Cell):
    """ResNeSt's radix-2 weighted sum's stand-in (swaps.WeightedPairSum's): `(x, a) -> x[:, :C] * a[:, :C] +
    x[:, C:] * a[:, C:]` for x (N, 2C, H, W) and a (N, 2C, 1, 1) through activation.cc, in one pass each way
    (float32; the cell it replaces is kept as `primitive`)."""

    def __init__(self, cell, path: str):
        super().__init__()
        self.primitive = cell.combine
        backward = ops.Custom(
            f"{path}:RadixPairBackward",
            out_shape=lambda dy, x, a: (x, a),
            out_dtype=lambda dy, x, a: (x, x),
            func_type="aot",
        )

        def bprop(x, a, out, dout):
            dx, da = backward(dout, x, a)
            return dx, da

        self.combine = ops.Custom(
            f"{path}:RadixPairForward",
            out_shape=lambda x, a: [x[0], x[1] // 2, x[2], x[3]],
            out_dtype=lambda x, a: x,
            func_type="aot",
            bprop=bprop,
        )

    def construct(self, x, a):
        return self.combine(x, a)


class TanhGELU(nn.Cell):
    """GELU's tanh form's stand-in (swaps.ComposedGELU's `tanh_gelu`): `x -> 0.5 x (1 + tanh(sqrt(2/pi) (x +
    0.044715 x^3)))` through activation.cc, in one pass each way (float32; the cell it replaces,
    swaps.TanhGELUFormula, is kept as `primitive`)."""

    def __init__(self, cell, path: str):
        super().__init__()
        self.primitive = cell.tanh_gelu
        backward = ops.Custom(
            f"{path}:TanhGeluBackward", out_shape=lambda dy, x: x, out_dtype=lambda dy, x: x, func_type="aot"
        )

        def bprop(x, out, dout):
            return (backward(dout, x),)

        self.activate = ops.Custom(
            f"{path}:TanhGeluForward", out_shape=lambda x: x, out_dtype=lambda x: x, func_type="aot", bprop=bprop
        )

    def construct(self, x):
        return self.activate(x)


class AddReLU(nn.Cell):
    """A residual block's end's stand-in (swaps.ResidualReLU's): `(out, identity) -> relu(out + identity)` through
    activation.cc, one pass each way, the gradient (the output gradient where the output is above zero) the same for
    both inputs, where the two have one shape (float32; the cell it replaces is kept as `primitive`)."""

    def __init__(self, cell, path: str):
        super().__init__()
        self.primitive = cell.residual
        backward = ops.Custom(
            f"{path}:AddReluBackward", out_shape=lambda dy, y: y, out_dtype=lambda dy, y: y, func_type="aot"
        )

        def bprop(a, b, out, dout):
            gradient = backward(dout, out)
            return gradient, gradient

        self.add = ops.Custom(
            f"{path}:AddReluForward", out_shape=lambda a, b: a, out_dtype=lambda a, b: a, func_type="aot", bprop=bprop
        )

    def construct(self, out, identity):
        if out.shape != identity.shape:  # broadcast: MindCV's ResNeSt at small sizes (a 2x2 map plus a 1x1 one)
            return self.primitive(out, identity)
        return self.add(out, identity)


def has_tanh_gelu(cell) -> bool:
    """GELUs whose tanh form is a cell of its own, `tanh_gelu` (swaps.ComposedGELU's: ConvNeXt's)."""
    return isinstance(cell, nn.GELU) and isinstance(getattr(cell, "tanh_gelu", None), nn.Cell)


class MaxPool(nn.Cell):
    """MaxPool's stand-in in an nn.MaxPool2d (NCHW, "same" or "valid" padding): `x -> y` through pooling.cc, which
    records where each output took its value so the gradient is one pass too (float32; the primitive it replaces
    is kept as `primitive`)."""

    def __init__(self, cell: nn.MaxPool2d, path: str):
        super().__init__()
        self.primitive = cell.max_pool
        _, _, kh, kw = self.primitive.kernel_size
        _, _, sh, sw = self.primitive.strides
        same = self.primitive.pad_mode == "SAME"
        self.spec = ms.Tensor(np.array([kh, kw, sh, sw, same], np.int64))
        self.geometry = (kh, kw, sh, sw, same)

        def out_shape(x, spec):
            mode = "same" if same else "valid"
            return [x[0], x[1], _output_size(x[2], kh, sh, mode, 0, 0), _output_size(x[3], kw, sw, mode, 0, 0)]

        self.output_shape = out_shape  # (fuse.py's blocked pooling too)

        backward = ops.Custom(
            f"{path}:MaxPoolBackward", out_shape=lambda dy, at, x: x, out_dtype=lambda dy, at, x: x, func_type="aot"
        )

        def bprop(x, spec, out, dout):
            return backward(dout[0], out[1], x), ops.zeros_like(spec)

        self.pool = ops.Custom(
            f"{path}:MaxPoolForward",
            out_shape=lambda x, spec: (out_shape(x, spec), out_shape(x, spec)),
            out_dtype=lambda x, spec: (x, ms.int32),
            func_type="aot",
            bprop=bprop,
        )
        self.pool.add_prim_attr("geometry", self.geometry)

    def construct(self, x):
        return self.pool(x, self.spec)[0]


def is_stem_max_pool(cell) -> bool:
    """ResNet's stem's max pooling (MindCV's resnet and its kin): 3x3 at stride 2, "same" or "valid" padding."""
    if not isinstance(cell, nn.MaxPool2d) or cell.use_pad or cell.format != "NCHW":
        return False
    pool = getattr(cell.max_pool, "primitive", cell.max_pool)  # MindSpore's, swapped or not
    return pool.kernel_size == (1, 1, 3, 3) and pool.strides == (1, 1, 2, 2) and pool.pad_mode in ("SAME", "VALID")


def is_training_batchnorm(cell) -> bool:
    return isinstance(cell, nn.BatchNorm2d) and cell.format == "NCHW"


def is_last_axis_layernorm(cell) -> bool:
    """LayerNorms over the last axis alone (gamma and beta of that axis' length): ConvNeXt's, over the channels of
    a channels-last tensor."""
    return (
        isinstance(cell, nn.LayerNorm)
        and cell.begin_norm_axis == cell.begin_params_axis == -1
        and len(cell.normalized_shape) == 1
    )


@dataclass(frozen=True)
class StandIn:
    """One stand-in: `cell(old cell, library path)` takes the place of the primitive `attribute` in every cell
    `eligible` accepts (None: swaps.py gives the cells it reclasses this attribute and asks for it)."""

    attribute: str
    cell: type
    eligible: Optional[Callable[[object], bool]]
    onednn: bool = False  # onednn.cc's: none where the onednn-cpu-gomp package is missing or onednn.cc did not build


# By name, the order swap_all gives them in; the name is what benchmarks/train_step.py's --without leaves out.
STAND_INS = {
    # MobileNetV3's and ConvNeXt's depthwise convolutions: MindSpore runs them as im2col and a GEMM per channel
    "depthwise": StandIn("conv2d", DepthwiseConv, is_depthwise),
    # every other convolution through a private oneDNN on the layouts it chooses (MindSpore's gets plain tensors)
    "convolution": StandIn("conv2d", Convolution, is_convolution, onednn=True),
    # nn.Dense's matrix product through the same private oneDNN, free to use AVX-512
    "dense_product": StandIn("matmul", DenseProduct, lambda cell: isinstance(cell, nn.Dense), onednn=True),
    "batchnorm": StandIn("bn_train", BatchNormTrain, is_training_batchnorm),
    "layernorm": StandIn("layer_norm", LayerNormLastAxis, is_last_axis_layernorm),
    # nn.Dense's bias, its gradient a sum over the rows
    "dense_bias": StandIn("bias_add", DenseBias, lambda cell: isinstance(cell, nn.Dense) and cell.has_bias),
    # MobileNetV3's hard swish
    "hswish": StandIn("hswish", HardSwish, lambda cell: isinstance(cell, nn.HSwish)),
    # ConvNeXt's GELUs' tanh form (swaps.faster_gelu gives them it as a cell), else a Mul, Tanh and Add chain
    "tanh_gelu": StandIn("tanh_gelu", TanhGELU, has_tanh_gelu),
    "scale": StandIn("scale", ChannelScale, None),  # swaps.ScaledSqueezeExcite's
    "combine": StandIn("combine", RadixPair, None),  # swaps.PairSplitAttn's
    "residual": StandIn("residual", AddReLU, None),  # the ResNet blocks' of swaps.faster_residual
    # ResNet's stem's 3x3 max pooling: MindSpore's MaxPoolGrad looks for each window's largest again, slowly
    "max_pool": StandIn("max_pool", MaxPool, is_stem_max_pool),
}


def swap(network, name: str, eligible=None, cache_dir: str = "") -> int:
    """Give every cell the table's row `name` accepts (or `eligible`, for rows that leave it to the caller) its
    stand-in in place of the primitive; returns how many (0 where the kernels cannot be built, in the cache under
    `cache_dir`)."""
    row = STAND_INS[name]
    accepts = eligible or row.eligible
    cells = [
        cell
        for _, cell in network.cells_and_names()
        if accepts(cell) and not isinstance(getattr(cell, row.attribute), row.cell)
    ]
    if not cells or (row.onednn and not has_onednn(cache_dir)):
        return 0
    path = library(cache_dir)
    if not path:
        return 0
    for cell in cells:
        setattr(cell, row.attribute, row.cell(cell, path))
    return len(cells)


def swap_all(network, cache_dir: str = "") -> int:
    """Every row of the table that says which cells it fits, in order; returns how many cells got a stand-in."""
    return sum(swap(network, name, cache_dir=cache_dir) for name, row in STAND_INS.items() if row.eligible)


def restore(network) -> int:
    """What every swapped cell had before (MindSpore's own primitives) back in it; returns how many."""
    swapped = [
        (cell, row.attribute)
        for _, cell in network.cells_and_names()
        for row in STAND_INS.values()
        if isinstance(getattr(cell, row.attribute, None), row.cell)
    ]
    for cell, name in swapped:
        primitive = getattr(cell, name).primitive
        delattr(cell, name)  # a child cell: removed before a primitive may take its name
        setattr(cell, name, primitive)
    return len(swapped)
