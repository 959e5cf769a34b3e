"""What every benchmark prints first: the machine it ran on, how busy it is, and a plain table printer."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

# The five shipped architectures: MindCV name -> timm name of the same architecture.
MODELS = {
    "mobilenet_v3_small_100": "mobilenetv3_small_100",
    "mobilenet_v3_large_100": "mobilenetv3_large_100",
    "resnet50": "resnet50",
    "resnest50": "resnest50d",
    "convnext_tiny": "convnext_tiny",
}


def describe() -> str:
    from fgvctune.runtime import cpu_info  # fgvctune's one reader of /proc/cpuinfo

    cpu = cpu_info().get("model name") or "unknown CPU"
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = 0
    versions = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('mindspore'), m.version('mindcv'))"],
        capture_output=True,
        text=True,
    ).stdout.split()
    mindspore, mindcv = versions if len(versions) == 2 else ("?", "?")
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}, "
        f"MindSpore {mindspore}, MindCV {mindcv}"
    )


def load() -> str:
    """The 1-minute load average now: the cores are shared, so every figure carries it."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def settle(below: float = 1.2, longest: float = 300.0) -> str:
    """Wait until the 1-minute load average is under `below` (a case's own threads keep it near the core count
    for a minute after it ends), at most `longest` seconds; returns the load then, which the figures carry."""
    started = time.monotonic()
    while time.monotonic() - started < longest:
        try:
            if os.getloadavg()[0] < below:
                break
        except OSError:
            break
        time.sleep(5)
    return load()


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
    ]
    lines += [
        "| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) + " |"
        for row in cells[1:]
    ]
    return "\n".join(lines)


def fgvc_tree(root, count: int, classes: int = 100, size=(32, 24), seed: int = 0):
    """An FGVC-Aircraft-layout dataset of `count` small JPEGs over `classes` variants (trainval only)."""
    import io
    import random
    from pathlib import Path

    from PIL import Image

    data = Path(root) / "data"
    (data / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = [f"variant-{i:03d}" for i in range(classes)]
    pictures = []
    for i in range(16):  # photo-like: smooth colour fields with fine noise, so decoding costs what it does
        buf = io.BytesIO()
        base = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), 16 * i))
        noise = Image.effect_noise(size, 40).convert("RGB")
        gradient = Image.linear_gradient("L").resize(size).convert("RGB")
        Image.blend(Image.blend(base, gradient, 0.3), noise, 0.25).save(buf, "JPEG", quality=90)
        pictures.append(buf.getvalue())
    lines = []
    for i in range(count):
        image_id = f"{1000000 + i}"
        (data / "images" / f"{image_id}.jpg").write_bytes(pictures[i % len(pictures)])
        lines.append(f"{image_id} {names[i % classes]}\n")
    for level, plural in (("variant", "variants"),):
        (data / f"{plural}.txt").write_text("".join(f"{n}\n" for n in names))
        (data / f"images_{level}_trainval.txt").write_text("".join(lines))
    return Path(root)


# Two loops that measure the cores: a chain of dependent integer adds retires one add a cycle, so it reads the
# clock (register operands: Intel's cores since Golden Cove fold an add of an immediate into the renamer, several a
# cycle, which read 16 GHz on a 3.5 GHz Xeon); 12 independent chains of fused multiply-adds on the widest vectors
# keep every FMA unit busy, so they read the fp32 peak the formula below predicts.
_CLOCK = r"""
#include <chrono>
#include <cstdio>
int main() {
  const long n = 1000000000; long x = 0, one = 1;
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; i += 8)
    asm volatile("add %1,%0\n\tadd %1,%0\n\tadd %1,%0\n\tadd %1,%0\n\t"
                 "add %1,%0\n\tadd %1,%0\n\tadd %1,%0\n\tadd %1,%0" : "+r"(x) : "r"(one));
  printf("%f\n", n / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9);
}
"""
_FMA = r"""
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <omp.h>
#ifdef __AVX512F__
typedef __m512 V; static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
static V set(float x) { return _mm512_set1_ps(x); } static float sum(V v) { return _mm512_reduce_add_ps(v); }
#else
typedef __m256 V; static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
static V set(float x) { return _mm256_set1_ps(x); }
static float sum(V v) { float f[8]; _mm256_storeu_ps(f, v); float s = 0; for (float x : f) s += x; return s; }
#endif
int main() {
  const long n = 100000000; double best = 0; float sink = 0;
  for (int rep = 0; rep < 3; rep++) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : sink)
    {
      V a[12], b = set(1.0000001f), c = set(1e-7f);
      for (int i = 0; i < 12; i++) a[i] = set(i);
      for (long k = 0; k < n / omp_get_num_threads(); k++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = fma(a[i], b, c);
      for (int i = 1; i < 12; i++) a[0] = a[0] + a[i];
      sink += sum(a[0]);
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double flops = 2.0 * n * 12 * sizeof(V) / sizeof(float);
    if (flops / seconds > best) best = flops / seconds;
  }
  printf("%f %d\n", best / 1e9, sink == 1.0f);
}
"""


def _run_c(source: str, threads: int) -> list[float]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.cc"
        path.write_text(source)
        binary = Path(tmp) / "probe"
        subprocess.run(["g++", "-O2", "-march=native", "-fopenmp", str(path), "-o", str(binary)], check=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        if "omp.h" in source:
            return [float(x) for x in subprocess.run([binary], capture_output=True, text=True, env=env).stdout.split()]
        # the clock: one copy per core at once, as under a training step, and the slowest core counts
        runs = [subprocess.Popen([binary], stdout=subprocess.PIPE, text=True) for _ in range(threads)]
        return [min(float(run.communicate()[0]) for run in runs)]


def fp32_flops_per_cycle() -> tuple[int, str]:
    """Single-precision FLOPs one core can retire per cycle: 2 (a fused multiply-add) x fp32 lanes per FMA unit x
    FMA units, from the CPU's vector extensions and vendor: AMD's Zen 2-4 have two 256-bit FMA pipes (Zen 4 runs
    an AVX-512 instruction as two halves), Zen 5 and Intel's AVX-512 server cores two 512-bit ones."""
    from fgvctune.runtime import cpu_info

    info = cpu_info()
    flags, vendor = set(info.get("flags", "").split()), info.get("vendor_id", "")
    family = int(info.get("cpu family", "0") or 0)
    if "avx512f" in flags and (vendor != "AuthenticAMD" or family >= 26):
        return 2 * 16 * 2, "2 FMA units x 16 fp32 lanes (512-bit) x 2"
    if "fma" in flags:
        return 2 * 8 * 2, "2 FMA units x 8 fp32 lanes (256-bit) x 2"
    return 2 * 4 * 2, "2 units x 4 fp32 lanes (128-bit) x 2, no FMA"


def fp32_peak() -> dict:
    """The cores' fp32 peak as the formula gives it (cores x clock x FLOPs per cycle, the clock measured with every
    core busy) and as an FMA loop on every core reaches it (a check on the formula)."""
    cores = os.cpu_count() or 1
    per_cycle, why = fp32_flops_per_cycle()
    clock = _run_c(_CLOCK, cores)[0]
    measured = _run_c(_FMA, cores)[0]
    return {
        "cores": cores,
        "ghz": clock,
        "flops_per_cycle": per_cycle,
        "per_cycle_why": why,
        "gflops": cores * clock * per_cycle,
        "measured_gflops": measured,
    }
