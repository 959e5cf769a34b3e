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

The kernels are compiled with the machine's C++ compiler (CXX, else g++) into the user cache (a private
`kernels/` folder under fileio.cache_root), keyed by the sources, the compiler and the CPU: one process builds
while the others wait on a lock, and a library is loaded only if it is the user's, in folders no one else may
write but the user's private group (Debian's umask 002), with the SHA-256 recorded at its build (else it is
rebuilt). Where they cannot be built, the swaps are skipped and MindSpore's ops run as before, said once per
machine (--verbose shows the compiler's output).
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import logging
import os
import platform
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from fgvctune import runtime
from fgvctune.fileio import atomic_write_bytes, atomic_write_text, cache_root, locked

log = logging.getLogger("fgvctune")

SOURCES = [
    Path(__file__).parent / "csrc" / name
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
    return cache_root() / "kernels"


def _cpu() -> str:
    """What -march=native compiles for: the CPU's model and flags."""
    info = runtime.cpu_info()
    return f"{info.get('model name', '')}\n{info.get('flags', '')}" if info else platform.processor()


@lru_cache(maxsize=1)
def library() -> str | None:
    """The compiled kernels' path, compiling them on first use; None where they cannot be built or the cache is
    not private. onednn.cc joins them where the onednn-cpu-gomp package is installed; should it not build, the
    others are built without it."""
    if platform.system() != "Linux":
        log.info("fgvctune's CPU kernels are built on Linux only; MindSpore's own ops run")
        return None
    folder = _cache_dir()
    try:
        _make_private(folder)
    except OSError as exc:
        log.warning("fgvctune's CPU kernels: cannot make their cache folder (%s); MindSpore's own ops run", exc)
        return None
    exposed = _exposed(folder)
    if exposed:
        log.warning(
            "fgvctune's CPU kernels are not loaded: %s, so the library there may not be fgvctune's; MindSpore's "
            "own ops run (make it private with chmod go-w, or set XDG_CACHE_HOME to a private folder)",
            exposed,
        )
        return None
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if not compiler:
        message = "fgvctune's CPU kernels need a C++ compiler (g++, or CXX): MindSpore's own, slower ops run"
        _warn_once(folder / "no-compiler.warned", message)
        return None
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    package = onednn()
    with locked(folder / "build.lock"):  # the first process builds; the others wait, then find it built
        if package:
            headers, shared = package
            flags = [*FLAGS, f"-I{headers}", f'-DFGVCTUNE_DNNL="{shared}"']
            built = _build(compiler, version, [*SOURCES, Path(__file__).parent / "csrc" / "onednn.cc"], flags)
            if built:
                return built
        built = _build(compiler, version, SOURCES, FLAGS)
    if package or not built:  # everything but onednn.cc built, or nothing
        failed = "onednn" if built else "all"
        what = "onednn.cc, for convolutions and matrix products," if built else "CPU kernels"
        _warn_once(
            folder / f"fgvctune-{_key(version, SOURCES, FLAGS)}-{failed}.warned",
            f"fgvctune's {what} did not build, so MindSpore's own, slower ops run in their place; --verbose shows "
            "the compiler's output (said once)",
        )
    return built


def _key(version: str, sources: list[Path], flags: list[str]) -> str:
    """What a build depends on: the sources, the compiler, the flags and the CPU (16 hex digits of their hash)."""
    texts = [source.read_text() for source in sources]
    return hashlib.sha256("\0".join([*texts, version, " ".join(flags), _cpu()]).encode()).hexdigest()[:16]


def _build(compiler: str, version: str, sources: list[Path], flags: list[str]) -> str | None:
    """Compile `sources` into the cache once, or find them compiled there whole, as built (the caller holds the
    build lock). A library is written whole or not at all (fsynced, then renamed), its SHA-256 recorded beside it
    after it, and checked before every use: a power cut, a full disk or a stray write gives a rebuild, never a
    damaged library loaded into MindSpore (an ELF error, or a bus error with no message)."""
    target = _cache_dir() / f"fgvctune-{_key(version, sources, flags)}.so"
    damage = _damage(target)
    if damage is None:
        return str(target)
    if target.exists():
        log.warning("fgvctune's CPU kernels: %s %s; rebuilding it", target, damage)
    try:
        with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as work:
            partial = Path(work) / target.name
            command = [compiler, *flags, "-o", str(partial), *map(str, sources)]
            subprocess.run(command, capture_output=True, text=True, check=True)
            if sys.executable:  # loaded once in a process of its own, before one that matters may load it
                trial = [sys.executable, "-c", "import ctypes, sys; ctypes.CDLL(sys.argv[1])", str(partial)]
                subprocess.run(trial, capture_output=True, text=True, check=True)
            data = partial.read_bytes()
        atomic_write_bytes(target, data)
        atomic_write_text(_hash_file(target), hashlib.sha256(data).hexdigest())
    except (OSError, subprocess.CalledProcessError) as exc:
        built = ", ".join(source.name for source in sources)
        log.info("fgvctune's CPU kernels (%s) were not built: %s", built, getattr(exc, "stderr", None) or exc)
        return None
    return str(target)


def _hash_file(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def _damage(library: Path) -> str | None:
    """Why `library` may not be loaded as it is, or None: it must be this user's and have the SHA-256 recorded
    at its build (hashing it costs milliseconds; a trial load in a subprocess would cost a Python start-up)."""
    try:
        if library.stat().st_uid != os.getuid():
            return "belongs to another user"
        recorded = _hash_file(library).read_text(encoding="ascii").strip()
        actual = hashlib.sha256(library.read_bytes()).hexdigest()
    except (OSError, UnicodeDecodeError):
        return "has no SHA-256 recorded at its build" if library.exists() else "is missing"
    return None if actual == recorded else "is not the library built there (its SHA-256 differs)"


def _make_private(folder: Path) -> None:
    """Make `folder` and any missing folder above it, readable and writable by this user alone; the kernels'
    folder and fgvctune's cache root, if this user's, are made so too."""
    for missing in reversed([path for path in (folder, *folder.parents) if not path.exists()]):
        missing.mkdir(mode=0o700, exist_ok=True)
    for own in (folder, folder.parent):  # an older fgvctune made them under umask 002 (0775): tighten, not refuse
        status = own.stat()
        if status.st_uid == os.getuid() and status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            own.chmod(0o700)


def _private_group(gid: int) -> bool:
    """Whether `gid` is this user's private group: their primary group, named after them, with no one else in it
    (as a listed member, or by having it as their own primary group)."""
    try:
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(gid)
    except KeyError:
        return False
    members = set(group.gr_mem) | {entry.pw_name for entry in pwd.getpwall() if entry.pw_gid == gid}
    return gid == os.getgid() and group.gr_name == user and members <= {user}


def _exposed(folder: Path) -> str | None:
    """Why another user could have put a library in `folder`, or None: the folder or one above it is another
    user's (root aside), or others may write in it (above it, a sticky folder such as /tmp is fine: others
    cannot rename what is ours there)."""
    uid, resolved = os.getuid(), folder.resolve()
    for path in (resolved, *resolved.parents):
        status = path.stat()
        if status.st_uid not in (uid, 0):
            return f"{path} belongs to another user"
        sticky = path != resolved and status.st_mode & stat.S_ISVTX
        # Debian's umask 002 makes ~/.cache 0775, its group the user's private one: no one else may write there
        group = status.st_mode & stat.S_IWGRP and not _private_group(status.st_gid)
        if (status.st_mode & stat.S_IWOTH or group) and not sticky:
            return f"others may write in {path}"
    return None


def _warn_once(marker: Path, message: str) -> None:
    """`message` as a warning the first time on this machine (`marker` remembers), later in verbose mode only."""
    if marker.exists():
        log.info(message)
        return
    log.warning(message)
    with contextlib.suppress(OSError):
        marker.touch()


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
