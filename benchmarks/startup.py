"""Start-up: `fgvctune --help` and `fgvctune convert` on a small tree, in seconds (median of 5).

.venv/bin/python benchmarks/startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, fgvc_tree, table  # noqa: E402

FGVCTUNE = [sys.executable, "-m", "fgvctune"]


def timed(command: list[str], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    print(describe())
    with tempfile.TemporaryDirectory() as tmp:
        root = fgvc_tree(Path(tmp) / "fgvc", 200, classes=10)
        rows = [
            ["python -c pass", f"{timed([sys.executable, '-c', 'pass']):.3f}"],
            ["fgvctune --help", f"{timed(FGVCTUNE + ['--help']):.3f}"],
            ["fgvctune adapters", f"{timed(FGVCTUNE + ['adapters']):.3f}"],
            [
                "fgvctune convert (200 images, rerun)",
                f"{timed(FGVCTUNE + ['convert', '-a', 'aircraft', '-d', str(root), '-o', str(Path(tmp) / 'o')]):.3f}",
            ],
            ["python -c 'import mindspore'", f"{timed([sys.executable, '-c', 'import mindspore'], 3):.3f}"],
        ]
    print(table(["command", "seconds"], rows))


if __name__ == "__main__":
    main()
