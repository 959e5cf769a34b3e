"""Make data/aircraft-sample: a tiny dataset in the exact FGVC-Aircraft 2013b layout.

Drawn aircraft whose class can really be learned: the manufacturer sets the fuselage colour, the
family the wing shape, the variant the tail colour and the fuselage length. Every image carries a
20-pixel banner at the bottom, as FGVC's do, and images_box.txt holds each aircraft's box.

    python data/make_sample.py [--out data/aircraft-sample] [--per-split 8]
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

# variant: (family, manufacturer, tail colour, fuselage length factor)
VARIANTS = {
    "707-320": ("Boeing 707", "Boeing", (220, 40, 40), 1.00),
    "737-700": ("Boeing 737", "Boeing", (240, 200, 30), 0.80),
    "737-800": ("Boeing 737", "Boeing", (30, 160, 60), 0.95),
    "F/A-18": ("F/A-18", "McDonnell Douglas", (250, 130, 20), 0.75),
    "MD-80": ("MD-80", "McDonnell Douglas", (40, 60, 200), 1.05),
    "MD-90": ("MD-80", "McDonnell Douglas", (160, 40, 160), 1.10),
    "Cessna 172": ("Cessna 172", "Cessna", (20, 20, 20), 0.60),
    "Cessna 208": ("Cessna 208", "Cessna", (240, 240, 240), 0.70),
}
FUSELAGE = {"Boeing": (70, 110, 190), "McDonnell Douglas": (120, 120, 125), "Cessna": (200, 60, 50)}
WINGS = {  # wing polygon relative to the fuselage centre, in units of the fuselage half-length
    "Boeing 707": [(-0.1, 0), (0.25, 0.9), (0.4, 0.9), (0.2, 0)],
    "Boeing 737": [(-0.05, 0), (0.15, 0.75), (0.3, 0.75), (0.2, 0)],
    "F/A-18": [(-0.3, 0), (0.2, 0.6), (0.45, 0.6), (0.35, 0)],
    "MD-80": [(-0.1, 0), (0.1, 0.8), (0.25, 0.8), (0.2, 0)],
    "Cessna 172": [(-0.05, 0), (-0.05, 1.0), (0.12, 1.0), (0.12, 0)],
    "Cessna 208": [(-0.1, 0), (-0.1, 1.1), (0.1, 1.1), (0.1, 0)],
}
SPLITS = ("train", "val", "test")
WIDTH, HEIGHT, BANNER = 128, 96, 20


def draw_aircraft(variant: str, rng: random.Random) -> tuple[Image.Image, tuple[int, int, int, int]]:
    family, maker, tail, length = VARIANTS[variant]
    sky = tuple(int(c) for c in (rng.uniform(120, 200), rng.uniform(160, 220), rng.uniform(200, 255)))
    image = Image.new("RGB", (WIDTH, HEIGHT), sky)
    draw = ImageDraw.Draw(image)
    cx = WIDTH / 2 + rng.uniform(-10, 10)
    cy = (HEIGHT - BANNER) / 2 + rng.uniform(-6, 6)
    half = 40 * length * rng.uniform(0.9, 1.1)
    body = FUSELAGE[maker]
    for side in (1, -1):  # wings, mirrored
        wing = [(cx + half * dx * 0.9, cy + side * half * dy * 0.5) for dx, dy in WINGS[family]]
        draw.polygon(wing, fill=tuple(max(0, c - 30) for c in body))
    draw.ellipse([cx - half, cy - 5, cx + half, cy + 5], fill=body)
    draw.polygon([(cx - half, cy - 14), (cx - half + 12, cy - 3), (cx - half + 4, cy)], fill=tail)
    draw.rectangle([cx - half, cy - 3, cx - half + 10, cy + 3], fill=tail)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.6)))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, HEIGHT - BANNER, WIDTH, HEIGHT], fill=(255, 255, 255))
    draw.text((4, HEIGHT - BANNER + 4), "(c) fgvctune sample", fill=(0, 0, 0))
    box = (int(cx - half), int(cy - 0.6 * half), int(cx + half), int(cy + 0.6 * half))
    clipped = (max(1, box[0] + 1), max(1, box[1] + 1), min(WIDTH, box[2]), min(HEIGHT - BANNER, box[3]))
    return image, clipped  # 1-based inclusive corners, as in images_box.txt


def make(out: Path, per_split: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    data = out / "data"
    if out.exists():
        shutil.rmtree(out)
    (data / "images").mkdir(parents=True)
    rows = {split: [] for split in SPLITS}
    boxes = []
    image_id = 1000000
    for variant in VARIANTS:
        for split in SPLITS:
            for _ in range(per_split):
                image_id += rng.randint(1, 97)
                name = f"{image_id:07d}"
                image, box = draw_aircraft(variant, rng)
                image.save(data / "images" / f"{name}.jpg", quality=80)
                rows[split].append((name, variant))
                boxes.append(f"{name} {' '.join(map(str, box))}")
    rows["trainval"] = sorted(rows["train"] + rows["val"])
    levels = {"variant": 0, "family": 1, "manufacturer": 2}
    for level, column in levels.items():

        def name_of(variant):
            return variant if column == 0 else VARIANTS[variant][column - 1]

        classes = sorted({name_of(v) for v in VARIANTS})
        plural = {"variant": "variants", "family": "families", "manufacturer": "manufacturers"}[level]
        (data / f"{plural}.txt").write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
        for split, entries in rows.items():
            text = "".join(f"{name} {name_of(variant)}\n" for name, variant in sorted(entries))
            (data / f"images_{level}_{split}.txt").write_text(text, encoding="utf-8")
    (data / "images_box.txt").write_text("".join(f"{line}\n" for line in sorted(boxes)), encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "aircraft-sample")
    parser.add_argument("--per-split", type=int, default=8, help="images per variant in each of train/val/test")
    args = parser.parse_args()
    make(args.out, args.per_split)
    print(f"wrote {args.out}")
