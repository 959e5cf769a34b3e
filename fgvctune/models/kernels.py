"""fgvctune's own CPU kernels for the ops MindSpore runs slowest on CPUs, built once per machine.

- Depthwise convolution (depthwise.cc). MindSpore's CPU Conv2D gives oneDNN plain NCHW tensors, and for those
  oneDNN runs a convolution with one group per channel as im2col and a small GEMM per channel: forward and both
  gradients of mobilenet_v3_small's 240-channel 5x5 layer take 55 ms at batch 16, PyTorch's 8 ms
  (benchmarks/depthwise.py). depthwise.cc works on each channel's plane directly.
- BatchNorm in training mode (batchnorm.cc): a channel's statistics in one pass, the normalization in another.
- LayerNorm over the last axis (layernorm.cc), ConvNeXt's: a row at a time, forward and backward.
- nn.Dense's bias (bias.cc), whose gradient (a sum over the rows) MindSpore's BiasAddGrad takes 13% of a
  ConvNeXt training step for.
- Hard swish and the squeeze-excitation's channel scale (activation.cc), MobileNetV3's: MindSpore's HSwish and
  HSwishGrad run at 1.3 and 0.9 billion floats a second where a Mul runs at 7, and the scale's gradient is a Mul
  and a ReduceSum over each plane (together 30% of a mobilenet_v3_small step with frozen blocks); ResNeSt's
  split attention's weighted sum of two channel halves likewise.
- Every other convolution, and nn.Dense's matrix product, through a private copy of oneDNN (onednn.cc, from the
  onednn-cpu-gomp package) free to use every instruction set the CPU has, on the layouts it chooses: MindSpore
  gives its own oneDNN plain NCHW tensors, for which it runs im2col and a GEMM, and with AVX-512 a reference
  kernel (which is why runtime.py caps it at AVX2, and with it MindSpore's MatMul).

Each swap gives a cell a stand-in for the primitive it calls (`conv2d`, `matmul`, `bn_train`, `layer_norm`,
`bias_add`, `hswish`; `scale` and `combine` are those swaps.py's SqueezeExcite and SplitAttn subclasses call),
so the cell and its parameters stay where they are: checkpoints and BatchNorm folding see no change. `restore`
puts back what was there before, MindSpore's primitives (or swaps.py's WeightedPairSum): export does, so an
exported MindIR runs anywhere; so does mixed precision, as these kernels are float32.

The kernels are compiled with the machine's C++ compiler into the user cache, keyed by the sources, the compiler
and the CPU; where no compiler works, the swaps are skipped and MindSpore's ops run as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn, ops

log = logging.getLogger("fgvctune")

SOURCES = [
    Path(__file__).with_name(name)
    for name in ("depthwise.cc", "batchnorm.cc", "layernorm.cc", "bias.cc", "activation.cc")
]
FLAGS = ["-O3", "-march=native", "-fopenmp", "-std=c++17", "-shared", "-fPIC"]
ONEDNN = ("onednn-cpu-gomp", "onednn-devel-cpu-gomp")  # the library and its headers, for onednn.cc


@lru_cache(maxsize=1)
def onednn() -> tuple[str, str] | None:
    """(headers folder, library path) of the installed onednn-cpu-gomp, or None."""
    from importlib import metadata

    try:
        files = [file for name in ONEDNN for file in metadata.files(name) or []]
    except metadata.PackageNotFoundError:
        return None
    header = next((f for f in files if str(f).endswith("oneapi/dnnl/dnnl.h")), None)
    shared = next((f for f in files if str(f).endswith("/libdnnl.so.3")), None)
    if header is None or shared is None:
        return None
    return str(Path(header.locate()).parents[2]), str(Path(shared.locate()).resolve())


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fgvctune" / "kernels"


def _cpu() -> str:
    """What -march=native compiles for: the CPU's model and flags."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return "".join(line for line in f if line.startswith(("model name", "flags")))
    except OSError:
        return platform.processor()


@lru_cache(maxsize=1)
def library() -> str | None:
    """The compiled kernels' path, compiling them on first use; None where they cannot be built. onednn.cc joins
    them where the onednn-cpu-gomp package is installed; should it not build, the others are built without it."""
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if not compiler or platform.system() != "Linux":
        log.info("fgvctune's CPU kernels: no C++ compiler; MindSpore's own ops run")
        return None
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    package = onednn()
    if package:
        headers, shared = package
        sources = [*SOURCES, Path(__file__).with_name("onednn.cc")]
        built = _build(compiler, version, sources, [*FLAGS, f"-I{headers}", f'-DFGVCTUNE_DNNL="{shared}"'])
        if built:
            return built
    return _build(compiler, version, SOURCES, FLAGS)


def _build(compiler: str, version: str, sources: list[Path], flags: list[str]) -> str | None:
    """Compile `sources` into the cache (once: keyed by the sources, the compiler, the flags and the CPU)."""
    texts = [source.read_text() for source in sources]
    key = hashlib.sha256("\0".join([*texts, version, " ".join(flags), _cpu()]).encode()).hexdigest()
    target = _cache_dir() / f"fgvctune-{key[:16]}.so"
    if target.exists():
        return str(target)
    partial = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        command = [compiler, *flags, "-o", partial, *map(str, sources)]
        subprocess.run(command, capture_output=True, text=True, check=True)
        os.replace(partial, target)  # whole or not at all: two processes compiling at once both end well
    except (OSError, subprocess.CalledProcessError) as exc:
        built = ", ".join(source.name for source in sources)
        log.info("fgvctune's CPU kernels (%s) were not built: %s", built, getattr(exc, "stderr", exc))
        if partial:
            Path(partial).unlink(missing_ok=True)
        return None
    return str(target)


def has_onednn() -> bool:
    """Whether the built kernels include onednn.cc's (the package installed and onednn.cc built)."""
    import ctypes

    path = library()
    return bool(path) and hasattr(ctypes.CDLL(path), "ConvForward")


def _output_size(size: int, kernel: int, stride: int, pad_mode: str, before: int, after: int) -> int:
    if pad_mode == "same":
        return -(-size // stride)
    return (size + before + after - kernel) // stride + 1


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
        self.convolve.add_prim_attr("geometry", (k, sh, sw, top, bottom, left, right, mode))

    def construct(self, x, weight):
        return self.convolve(x, weight, self.spec)


def _any_isa() -> bool:
    """Whether onednn.cc's oneDNN may use every instruction set (unless the user capped oneDNN's)."""
    from fgvctune.models import runtime

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
        for op in (self.convolve, self.convolve_biased):
            op.add_prim_attr("geometry", (kh, kw, sh, sw, dh, dw, top, bottom, left, right, mode, conv.group))

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
        self.momentum = float(norm.momentum)  # nn.BatchNorm2d keeps 1 - its momentum argument: the batch's weight
        self.eps = ms.Tensor(np.array([norm.eps], np.float32))

        backward = ops.Custom(
            f"{path}:BatchNormBackward",
            out_shape=lambda dy, x, gamma, mean, invstd: (x, gamma, gamma),
            out_dtype=lambda *a: (a[0], a[0], a[0]),
            func_type="aot",
        )

        def bprop(x, gamma, beta, eps, out, dout):
            dx, dgamma, dbeta = backward(dout[0], x, gamma, out[1], out[2])
            return dx, dgamma, dbeta, ops.zeros_like(eps)

        self.normalize = ops.Custom(
            f"{path}:BatchNormForward",
            out_shape=lambda x, gamma, beta, eps: (x, gamma, gamma, gamma),
            out_dtype=lambda *a: (a[0], a[0], a[0], a[0]),
            func_type="aot",
            bprop=bprop,
        )

    def construct(self, x, gamma, beta, moving_mean, moving_variance):
        y, mean, _, variance = self.normalize(x, gamma, beta, self.eps)
        mean, variance = ops.stop_gradient(mean), ops.stop_gradient(variance)
        ops.assign(moving_mean, moving_mean + (mean - moving_mean) * self.momentum)
        ops.assign(moving_variance, moving_variance + (variance - moving_variance) * self.momentum)
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


def swap(network, attribute: str, stand_in, eligible) -> int:
    """Give every cell `eligible` accepts a `stand_in(cell, path)` in place of its primitive `attribute`; returns
    how many (0 where the kernels cannot be built)."""
    cells = [
        cell
        for _, cell in network.cells_and_names()
        if eligible(cell) and not isinstance(getattr(cell, attribute), stand_in)
    ]
    path = library() if cells else None
    if not path:
        return 0
    for cell in cells:
        setattr(cell, attribute, stand_in(cell, path))
    return len(cells)


def swap_depthwise(network) -> int:
    return swap(network, "conv2d", DepthwiseConv, is_depthwise)


def swap_convolution(network) -> int:
    """Convolutions through onednn.cc; none where the onednn-cpu-gomp package is missing or onednn.cc did not
    build."""
    return swap(network, "conv2d", Convolution, is_convolution) if has_onednn() else 0


def swap_dense_product(network) -> int:
    """nn.Dense's matrix products through onednn.cc; none where convolutions get none (swap_convolution)."""
    return swap(network, "matmul", DenseProduct, lambda c: isinstance(c, nn.Dense)) if has_onednn() else 0


def swap_batchnorm(network) -> int:
    return swap(network, "bn_train", BatchNormTrain, lambda c: isinstance(c, nn.BatchNorm2d) and c.format == "NCHW")


def swap_layernorm(network) -> int:
    """LayerNorms over the last axis alone (gamma and beta of that axis' length)."""

    def eligible(cell):
        return (
            isinstance(cell, nn.LayerNorm)
            and cell.begin_norm_axis == cell.begin_params_axis == -1
            and len(cell.normalized_shape) == 1
        )

    return swap(network, "layer_norm", LayerNormLastAxis, eligible)


def swap_dense_bias(network) -> int:
    return swap(network, "bias_add", DenseBias, lambda c: isinstance(c, nn.Dense) and c.has_bias)


def swap_hswish(network) -> int:
    return swap(network, "hswish", HardSwish, lambda c: isinstance(c, nn.HSwish))


STAND_INS = (
    ("conv2d", DepthwiseConv),
    ("conv2d", Convolution),
    ("matmul", DenseProduct),
    ("bn_train", BatchNormTrain),
    ("layer_norm", LayerNormLastAxis),
    ("bias_add", DenseBias),
    ("hswish", HardSwish),
    ("scale", ChannelScale),
    ("combine", RadixPair),
)


def restore(network) -> int:
    """What every swapped cell had before (MindSpore's own primitives) back in it; returns how many."""
    swapped = [
        (cell, name)
        for _, cell in network.cells_and_names()
        for name, kind in STAND_INS
        if isinstance(getattr(cell, name, None), kind)
    ]
    for cell, name in swapped:
        primitive = getattr(cell, name).primitive
        delattr(cell, name)  # a child cell: removed before a primitive may take its name
        setattr(cell, name, primitive)
    return len(swapped)
