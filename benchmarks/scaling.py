"""Scaling: one worker against two data-parallel workers under msrun, same data and settings.

.venv/bin/python benchmarks/scaling.py [--image-resize 224] [--epochs 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, fgvc_tree, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-resize", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=512)
    args = parser.parse_args()
    from fgvctune.results.runfiles import read_results

    print(describe())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = fgvc_tree(Path(tmp) / "fgvc", args.images, classes=16, size=(400, 300))
        trainval = (root / "data" / "images_variant_trainval.txt").read_text().splitlines(True)
        (root / "data" / "images_variant_test.txt").write_text("".join(trainval[:64]))  # a small test split
        for workers in (1, 2):
            folder = Path(tmp) / f"run{workers}"
            command = [
                sys.executable,
                "-m",
                "fgvctune",
                "train",
                "-a",
                "aircraft",
                "-d",
                str(root),
                "--no-pretrained",
                "--image-resize",
                str(args.image_resize),
                "--batch-size",
                "16",
                "--epoch-size",
                str(args.epochs),
                "--cache-dir",
                str(Path(tmp) / "cache"),
                "-o",
                str(folder),
                "--workers",
                str(workers),
            ]
            subprocess.run(command, check=True, capture_output=True)
            epochs = read_results(folder)[1:]  # the first epoch includes graph compilation
            seconds = sum(r["seconds"] for r in epochs) / len(epochs)
            rows.append([str(workers), f"{seconds:.1f}", f"{args.images // 16 * 16 / seconds:.1f}"])
    print(
        f"mobilenet_v3_small_100, {args.images} images at {args.image_resize} px, batch 16 per worker; "
        "seconds per epoch (train + validation), epochs after the first"
    )
    print(table(["workers", "s/epoch", "train images/s"], rows))


if __name__ == "__main__":
    main()
