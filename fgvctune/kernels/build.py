"""Building fgvctune's own CPU kernels (csrc/) once per machine, for the ops MindSpore runs slowest on CPUs.

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
  split attention's weighted sum of two channel halves likewise; and GELU's tanh form, ConvNeXt's, one pass each
  way where MindSpore's elementwise chain (Mul, Tanh, Add and their gradients) took a fifth of its training step.
- The ResNets' stem max pooling (pooling.cc): MindSpore's MaxPoolGrad searches each window again and took 8% of
  a resnet50 training step; the forward records where each output's value came from, the gradient adds there.
  For inference, the same pooling on the fused chain's blocked layout (fuse.py).
- MobileNetV3's squeeze-excitation for inference (squeeze_excite.cc): seven ops, on (N, C, 1, 1) tensors but for
  the first and last, in one pass (fuse.py).
- Folded 1x1 convolutions for inference (pointwise.cc, called by onednn.cc): the product per image with the bias,
  the residual and the activation applied in registers, where oneDNN's product packed the image at every call.
- MobileNetV3's stem for inference (stem.cc, called by onednn.cc): its 3x3 convolution at stride 2 over the image's
  three channels, where oneDNN reordered the input and the output around its own.
- Every other convolution, and nn.Dense's matrix product, through a private copy of oneDNN (onednn.cc, from the
  onednn-cpu-gomp package) free to use every instruction set the CPU has, on the layouts it chooses: MindSpore
  gives its own oneDNN plain NCHW tensors, for which it runs im2col and a GEMM, and with AVX-512 a reference
  kernel (which is why runtime.py caps it at AVX2, and with it MindSpore's MatMul).

Each .cc file includes csrc/common.h (MindSpore's aot signature, the float32 check, the row blocks); cells.py
makes the stand-in cells that call them.

The kernels are compiled with the machine's C++ compiler (CXX, else g++) into the user cache (a private
`kernels/` folder under fileio.cache_root: `--cache-dir` where given), keyed by the sources and their header, the
compiler, the flags and the CPU: one process builds while the others wait on a lock, and a library is loaded only
if it is the user's, in folders no one else may write but the user's private group (Debian's umask 002), with the
SHA-256 recorded at its build (else it is rebuilt). Where they cannot be built, the swaps are skipped and
MindSpore's ops run as before, said once per machine (--verbose shows the compiler's output).
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

from fgvctune import runtime
from fgvctune.fileio import atomic_write_bytes, atomic_write_text, cache_root, locked

log = logging.getLogger("fgvctune")

CSRC = Path(__file__).parent / "csrc"
SOURCES = [
    CSRC / name
    for name in (
        "depthwise.cc",
        "batchnorm.cc",
        "layernorm.cc",
        "bias.cc",
        "activation.cc",
        "pooling.cc",
        "squeeze_excite.cc",
        "pointwise.cc",
        "stem.cc",
        "bottleneck.cc",
    )
]
HEADERS = [CSRC / "common.h"]  # included by every source: part of what a build depends on
# 512-bit vectors where the CPU has them: the loops keep their sums in AVX-512 registers, and GCC's tunings for
# Intel's AVX-512 cores prefer 256 bits (half of what their two FMA units take) where AMD's Zen 4 tuning does not
FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-fopenmp", "-std=c++17", "-shared", "-fPIC"]
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


def _folder(cache_dir: str = "") -> Path:
    """The kernels' private folder in fgvctune's cache (`cache_dir`, else the user's)."""
    return cache_root(cache_dir) / "kernels"


def _cpu() -> str:
    """What -march=native compiles for: the CPU's model and flags."""
    info = runtime.cpu_info()
    return f"{info.get('model name', '')}\n{info.get('flags', '')}" if info else platform.processor()


@lru_cache(maxsize=None)
def library(cache_dir: str = "") -> str | None:
    """The compiled kernels' path in the cache under `cache_dir` (default the user's), compiling them on first
    use; None where they cannot be built or the cache is not private. onednn.cc joins them where the
    onednn-cpu-gomp package is installed; should it not build, the others are built without it."""
    if platform.system() != "Linux":
        log.info("fgvctune's CPU kernels are built on Linux only; MindSpore's own ops run")
        return None
    folder = _folder(cache_dir)
    try:
        _make_private(folder, own_root=not cache_dir)
    except OSError as exc:
        log.warning("fgvctune's CPU kernels: cannot make their cache folder (%s); MindSpore's own ops run", exc)
        return None
    exposed = _exposed(folder)
    if exposed:
        log.warning(
            "fgvctune's CPU kernels are not loaded: %s, so the library there may not be fgvctune's; MindSpore's "
            "own ops run (make it private with chmod go-w, or pass a private --cache-dir)",
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
            built = _build(folder, compiler, version, [*SOURCES, CSRC / "onednn.cc"], flags)
            if built:
                return built
        built = _build(folder, compiler, version, SOURCES, FLAGS)
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
    """What a build depends on: the sources and the header they include, the compiler, the flags and the CPU (16
    hex digits of their hash)."""
    texts = [source.read_text() for source in [*sources, *HEADERS]]
    return hashlib.sha256("\0".join([*texts, version, " ".join(flags), _cpu()]).encode()).hexdigest()[:16]


def _build(folder: Path, compiler: str, version: str, sources: list[Path], flags: list[str]) -> str | None:
    """Compile `sources` into the cache `folder` once, or find them compiled there whole, as built (the caller holds the
    build lock). A library is written whole or not at all (fsynced, then renamed), its SHA-256 recorded beside it
    after it, and checked before every use: a power cut, a full disk or a stray write gives a rebuild, never a
    damaged library loaded into MindSpore (an ELF error, or a bus error with no message)."""
    target = folder / f"fgvctune-{_key(version, sources, flags)}.so"
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


def _make_private(folder: Path, own_root: bool) -> None:
    """Make `folder` and any missing folder above it, readable and writable by this user alone; the kernels'
    folder, if this user's, is made so too, and so is fgvctune's default cache root (`own_root`), never a
    --cache-dir the user named (it may be shared on purpose: then the kernels are refused, not the folder changed)."""
    for missing in reversed([path for path in (folder, *folder.parents) if not path.exists()]):
        missing.mkdir(mode=0o700, exist_ok=True)
    # an older fgvctune made them under umask 002 (0775): tighten, not refuse
    for own in (folder, folder.parent) if own_root else (folder,):
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


def has_onednn(cache_dir: str = "") -> bool:
    """Whether the built kernels include onednn.cc's (the package installed and onednn.cc built)."""
    import ctypes

    path = library(cache_dir)
    return bool(path) and hasattr(ctypes.CDLL(path), "ConvForward")
