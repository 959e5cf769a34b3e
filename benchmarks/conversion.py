"""Conversion to a class tree: files per second for fgvctune's placement modes against the tutorial's
one-shutil.copy-per-file approach, on 10,000 generated images.

    .venv/bin/python benchmarks/conversion.py [--images 10000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, fgvc_tree, table  # noqa: E402


def tutorial_copy(images_path: str, subset_name: str, annotation_file_path: str) -> None:
    """The tutorial's extract_images with copy=True, its missing "/" between folder and file put back."""
    image_label: dict[str, list[str]] = {}
    with open(annotation_file_path) as f:
        for line in f.readlines():
            label = " ".join(line.split(" ")[1:]).replace("\n", "").replace("/", "_")
            image_label.setdefault(label, []).append(line.split(" ")[0])
    subset_path = images_path + subset_name
    os.mkdir(subset_path)
    for label, images in image_label.items():
        label_folder = subset_path + "/" + label
        os.mkdir(label_folder)
        for image in images:
            shutil.copy(images_path + image + ".jpg", label_folder + "/" + image + ".jpg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    args = parser.parse_args()
    from fgvctune.data.dataset import load_dataset
    from fgvctune.data.tree import convert

    print(describe())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = fgvc_tree(Path(tmp) / "fgvc", args.images)
        started = time.perf_counter()
        load_dataset("aircraft", root, ["trainval"])
        check = time.perf_counter() - started
        for mode in ("hardlink", "symlink", "copy"):
            started = time.perf_counter()
            convert("aircraft", root, Path(tmp) / mode, ["trainval"], mode=mode)
            seconds = time.perf_counter() - started
            rows.append([f"fgvctune convert --mode {mode}", f"{seconds:.2f}", f"{args.images / seconds:,.0f}"])
        started = time.perf_counter()
        convert("aircraft", root, Path(tmp) / "hardlink", ["trainval"], mode="hardlink")
        seconds = time.perf_counter() - started
        rows.append(["fgvctune convert, rerun (all in place)", f"{seconds:.2f}", f"{args.images / seconds:,.0f}"])
        images = str(root / "data" / "images") + "/"
        started = time.perf_counter()
        tutorial_copy(images, "trainval", str(root / "data" / "images_variant_trainval.txt"))
        seconds = time.perf_counter() - started
        rows.append(["tutorial: shutil.copy per file", f"{seconds:.2f}", f"{args.images / seconds:,.0f}"])
    print(
        f"{args.images:,} images of ~1 KB; fgvctune's figures include checking every image "
        f"({check:.2f} s of it on its own)"
    )
    print(table(["method", "seconds", "files/s"], rows))


if __name__ == "__main__":
    main()
