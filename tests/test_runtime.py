"""Getting MindSpore ready: the oneDNN lever, set before import only when the user has not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fgvctune.runtime import onednn_isa

PROBE = (
    "import os, logging, sys\n"
    "logging.basicConfig(level=logging.INFO, format='%(message)s', stream=sys.stdout)\n"
    "from fgvctune import runtime\n"
    "runtime.start(verbose=True)\n"
    "print('value', os.environ.get('ONEDNN_MAX_CPU_ISA'), 'user', runtime.isa_set_by_user())\n"
    "os._exit(0)\n"
)

# One convolution through fgvctune's own oneDNN (onednn.cc), which says in verbose mode what it dispatches to.
CONVOLVE = (
    "import os, numpy as np\n"
    "from fgvctune import runtime\nfrom fgvctune.kernels import cells\n"
    "ms = runtime.start(mode='pynative')\n"
    "conv = ms.nn.Conv2d(16, 16, 3)\n"
    "assert cells.swap(conv, 'convolution') == 1\n"
    "conv(ms.Tensor(np.ones((2, 16, 8, 8), np.float32))).asnumpy()\n"
    "os._exit(0)\n"
)


def run_probe(**env_changes) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120).stdout


def test_isa_choice():
    assert onednn_isa({"avx2", "avx512f", "avx_vnni"}) == "AVX2_VNNI"
    assert onednn_isa({"avx2", "avx512f"}) == "AVX2"
    assert onednn_isa({"avx2"}) is None and onednn_isa(set()) is None


def test_lever_is_set_before_import_and_said_in_verbose_output():
    with open("/proc/cpuinfo") as f:
        flags = set(next(line for line in f if line.startswith("flags")).split(":", 1)[1].split())
    expected = onednn_isa(flags)
    out = run_probe()
    assert f"value {expected} user False" in out
    if expected:
        assert f"set ONEDNN_MAX_CPU_ISA={expected}" in out


def test_users_own_setting_is_left_alone():
    out = run_probe(ONEDNN_MAX_CPU_ISA="AVX512_CORE")
    assert "value AVX512_CORE user True" in out and "was set by the user" in out


def own_onednn_isa(**env_changes) -> str:
    """The instruction set fgvctune's own oneDNN reports (MindSpore's reports its own on a line with "v1,")."""
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    env.update(ONEDNN_VERBOSE="1", **env_changes)
    out = subprocess.run([sys.executable, "-c", CONVOLVE], capture_output=True, text=True, env=env, timeout=300)
    return next(line for line in out.stdout.splitlines() if line.startswith("onednn_verbose,info,cpu,isa:"))


def test_own_onednn_uses_every_instruction_set_unless_the_user_capped_them():
    """fgvctune caps MindSpore's oneDNN on AVX-512 CPUs (its k x k convolutions fall to a reference kernel there),
    not its own, which chooses its layouts; a cap the user sets holds for both."""
    with open("/proc/cpuinfo") as f:
        flags = set(next(line for line in f if line.startswith("flags")).split(":", 1)[1].split())
    assert ("AVX-512" in own_onednn_isa()) == ("avx512f" in flags)
    capped = own_onednn_isa(ONEDNN_MAX_CPU_ISA="AVX2")
    assert "AVX-512" not in capped and "AVX2" in capped


def test_a_compile_phase_reaches_every_cell_below_without_a_setattr_each():
    """A graph-mode call sets its phase on every cell below the one called; fgvctune writes it straight into them
    (runtime._cheaper_phase_setting), with the values MindSpore's own setter leaves."""
    from fgvctune import runtime

    ms = runtime.start()
    setattrs = []

    class Counted(ms.nn.Cell):
        def __setattr__(self, name, value):
            setattrs.append(name)
            super().__setattr__(name, value)

    leaf = Counted()
    network = ms.nn.SequentialCell([ms.nn.ReLU(), ms.nn.SequentialCell([ms.nn.Dense(2, 2), leaf])])
    below = [cell for _, cell in network.cells_and_names()]
    setattrs.clear()
    network.compile_phase = "first"
    leaf.compile_phase = "its own"  # a cell called on its own gets its own phase; its parent's next call resets it
    network.compile_phase = "first"
    assert {cell.compile_phase for cell in below} == {"first"}
    assert setattrs == ["compile_phase"]  # the leaf's own setting alone: none from its parent's
    with pytest.raises(TypeError, match="compile_phase"):
        network.compile_phase = 1


def test_a_compiled_phase_is_set_on_the_called_cell_alone_until_the_network_compiles_anew():
    """Once a phase's graph is compiled, a call runs it without reading the cells below, so fgvctune sets the phase
    on the called cell alone (0.65 ms a call for mobilenet_v3_small); a network changed and compiled anew
    (fold.compile_anew, as fusing does) walks its cells again."""
    import numpy as np

    from fgvctune import runtime
    from fgvctune.kernels.fold import compile_anew

    ms = runtime.start()
    dense = ms.nn.Dense(3, 2)
    network = ms.nn.SequentialCell([dense, ms.nn.ReLU()])
    x = ms.Tensor(np.ones((1, 3), np.float32))
    first = network(x).asnumpy()
    phase = network.compile_phase
    assert dense.compile_phase == phase
    object.__setattr__(dense, "_compile_phase", "left as it was")
    np.testing.assert_array_equal(network(x).asnumpy(), first)
    assert network.compile_phase == phase and dense.compile_phase == "left as it was"

    compile_anew(network)
    np.testing.assert_array_equal(network(x).asnumpy(), first)
    assert network.compile_phase != phase and dense.compile_phase == network.compile_phase
