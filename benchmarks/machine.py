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
