"""Getting MindSpore ready: the oneDNN lever, set before import only when the user has not."""

from __future__ import annotations

import os
import subprocess
import sys

from fgvctune.models.runtime import onednn_isa

PROBE = (
    "import os, logging, sys\n"
    "logging.basicConfig(level=logging.INFO, format='%(message)s', stream=sys.stdout)\n"
    "from fgvctune.models import runtime\n"
    "runtime.start(verbose=True)\n"
    "print('value', os.environ.get('ONEDNN_MAX_CPU_ISA'))\n"
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
    assert f"value {expected}" in out
    if expected:
        assert f"set ONEDNN_MAX_CPU_ISA={expected}" in out


def test_users_own_setting_is_left_alone():
    out = run_probe(ONEDNN_MAX_CPU_ISA="AVX512_CORE")
    assert "value AVX512_CORE" in out and "was set by the user" in out
