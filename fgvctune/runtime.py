"""Getting MindSpore ready: the environment it must see before import, its context, and quiet.

Everything that has to happen before `import mindspore` lives here, and every command that
trains or evaluates calls `start()` first.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import warnings

log = logging.getLogger("fgvctune")

ONEDNN_VARIABLE = "ONEDNN_MAX_CPU_ISA"
_started = False
_capped_here = False  # the cap was fgvctune's choice, not the user's


def cpu_info() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo ("model name", "flags", ...); empty where there is none."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block ends here
                name, _, value = line.partition(":")
                fields[name.strip()] = value.strip()
    except OSError:
        pass
    return fields


def _cpu_flags() -> set[str]:
    return set(cpu_info().get("flags", "").split())


def onednn_isa(flags: set[str]) -> str | None:
    """The oneDNN ISA cap that is fastest here, or None to leave oneDNN alone.

    MindSpore 2.10's bundled oneDNN runs k x k convolutions through its slow reference kernel when
    it may use AVX-512; capped at AVX2 it picks a JIT kernel with bit-identical results (4-5x faster).
    """
    if "avx512f" not in flags or "avx2" not in flags:
        return None
    return "AVX2_VNNI" if "avx_vnni" in flags else "AVX2"


def isa_set_by_user() -> bool:
    """Whether the user capped oneDNN's instruction sets (fgvctune's own oneDNN, onednn.cc, then keeps the cap)."""
    return ONEDNN_VARIABLE in os.environ and not _capped_here


def start(verbose: bool = False, mode: str = "graph", device_target: str = "CPU", seed: int | None = None):
    """Prepare the environment, import MindSpore and set its context. Returns the module."""
    global _started, _capped_here
    if "mindspore" not in sys.modules:
        if ONEDNN_VARIABLE not in os.environ:
            isa = onednn_isa(_cpu_flags())
            if isa:
                os.environ[ONEDNN_VARIABLE] = isa
                _capped_here = True
                log.info("set %s=%s: this CPU has AVX-512, where MindSpore's oneDNN is slow", ONEDNN_VARIABLE, isa)
        else:
            log.info("%s=%s was set by the user; left as it is", ONEDNN_VARIABLE, os.environ[ONEDNN_VARIABLE])
        # OpenMP threads (MindSpore's CPU kernels and fgvctune's, kernels/csrc/) that finish a parallel region spin
        # for a while before they sleep, taking the cores from the next op's thread pool: a mobilenet_v3_small
        # training step ran 1.7x slower with fgvctune's kernels until they slept at once.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        if not verbose:
            os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ log: errors only
    elif not _started:
        log.info("MindSpore was imported before fgvctune could set %s", ONEDNN_VARIABLE)
    if not verbose:
        warnings.filterwarnings("ignore", module=r"mindspore|mindcv")
        for name in ("mindspore", "mindcv"):
            logging.getLogger(name).setLevel(logging.ERROR)

    import mindspore as ms

    if not _started:
        _started = True
        _cheaper_phase_setting(ms.nn.Cell)
        if not verbose:
            atexit.register(_quiet_exit)
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    try:
        ms.set_device(device_target)
    except (AttributeError, RuntimeError, ValueError):
        ms.set_context(device_target=device_target)
    if seed is not None:
        ms.set_seed(seed)
    return ms


def _cheaper_phase_setting(cell_class) -> None:
    """Every call of a graph-mode cell sets its compile phase on each cell below it, through Cell.__setattr__ twice a
    cell: 0.95 ms a call for mobilenet_v3_small's 293 cells, an eighth of its forward at batch 1. Here the same
    values are written straight into the cells, and only where they differ (the phase rarely changes); once the
    phase's graph is compiled, only into the called cell: MindSpore runs that graph without reading the cells below
    (a phase names the cell's creation time, which fold.compile_anew renews, so a changed network compiles anew)."""
    from mindspore.graph.api import _cell_graph_executor

    original = cell_class.compile_phase
    if not isinstance(original, property) or getattr(original.fset, "cheaper", False):
        return

    def set_phase(cell, value):
        if not isinstance(value, str):
            original.fset(cell, value)  # MindSpore's own error
        compiled = cell.__dict__.get("_compile_cache")
        if compiled and value in compiled and _cell_graph_executor.has_compiled(value):
            object.__setattr__(cell, "_compile_phase", value)
            return
        pending = [cell]
        while pending:
            below = pending.pop()
            if below.__dict__.get("_compile_phase") != value:
                object.__setattr__(below, "_compile_phase", value)
            pending.extend(child for child in below.__dict__.get("_cells", {}).values() if child is not None)

    set_phase.cheaper = True
    cell_class.compile_phase = property(original.fget, set_phase, original.fdel, original.__doc__)


def _quiet_exit() -> None:
    """MindSpore's Cell.__del__ raises hundreds of ignored exceptions at interpreter exit; hide them."""
    sys.stdout.flush()
    sys.stderr.flush()
    # Finalization writes to the process's stderr whatever sys.stderr says, so close it at the fd level.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
