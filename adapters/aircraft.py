"""FGVC-Aircraft 2013b: images/*.jpg with images_{level}_{split}.txt annotation files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fgvctune import Listing, Problem, Sample
from fgvctune.errors import DataError

SPLITS = ("train", "val", "trainval", "test")
CLASS_FILES = {"variant": "variants.txt", "family": "families.txt", "manufacturer": "manufacturers.txt"}
BANNER_HEIGHT = 20  # every FGVC image carries a 20-pixel copyright banner at the bottom


@dataclass
class AircraftAdapter:
    """FGVC-Aircraft 2013b layout (data/images, variants.txt, images_variant_trainval.txt, ...)."""

    data_dir: Path
    level: Literal["variant", "family", "manufacturer"] = field(
        default="variant", metadata={"help": "annotation level: 100 variants, 70 families or 30 manufacturers"}
    )
    crop_box: bool = field(default=False, metadata={"help": "crop each image to its box in images_box.txt"})
    strip_banner: bool = field(default=False, metadata={"help": "cut the 20-pixel copyright banner at the bottom"})

    def read(self) -> Listing:
        root = self._find_root()
        classes = [line.strip() for line in _lines(root / CLASS_FILES[self.level]) if line.strip()]
        boxes = self._boxes(root) if self.crop_box else {}
        problems: list[Problem] = []
        splits: dict[str, list[Sample]] = {}
        for split in SPLITS:
            annotation = root / f"images_{self.level}_{split}.txt"
            if not annotation.is_file():
                continue
            samples = splits[split] = []
            for number, line in enumerate(_lines(annotation), start=1):
                if not line.strip():
                    continue
                where = f"{annotation}:{number}"
                image_id, _, label = line.strip().partition(" ")
                if not label.strip():
                    problems.append(Problem(where, "expected '<image id> <class name>'"))
                    continue
                box = boxes.get(image_id)
                if self.crop_box and box is None:
                    problems.append(Problem(where, f"image {image_id} has no line in images_box.txt"))
                    continue
                samples.append(
                    Sample(
                        path=root / "images" / f"{image_id}.jpg",
                        label=label.strip(),
                        where=where,
                        box=box,
                        trim_bottom=BANNER_HEIGHT if self.strip_banner else 0,
                    )
                )
        if not splits:
            raise DataError(f"{root} has no images_{self.level}_<split>.txt annotation files")
        return Listing(
            root=root,
            splits=splits,
            classes=classes,
            problems=problems,
            default_splits=[s for s in ("trainval", "test") if s in splits] or list(splits),
            train_split="trainval" if "trainval" in splits else "train" if "train" in splits else None,
            eval_split="test" if "test" in splits else "val" if "val" in splits else None,
        )

    def _find_root(self) -> Path:
        """Accept the dataset root or its data/ folder."""
        for root in (self.data_dir, self.data_dir / "data"):
            if (root / CLASS_FILES[self.level]).is_file():
                return root
        raise DataError(
            f"{self.data_dir} is not an FGVC-Aircraft folder: no {CLASS_FILES[self.level]} in it or in its data/",
            hint="point --data-dir at fgvc-aircraft-2013b or its data/ folder",
        )

    @staticmethod
    def _boxes(root: Path) -> dict[str, tuple[int, int, int, int]]:
        boxes = {}
        for number, line in enumerate(_lines(root / "images_box.txt"), start=1):
            parts = line.split()
            if not parts:
                continue
            try:
                x0, y0, x1, y1 = (int(v) for v in parts[1:])
            except ValueError:
                raise DataError(
                    f"{root / 'images_box.txt'}:{number}: expected '<image id> xmin ymin xmax ymax'"
                ) from None
            boxes[parts[0]] = (x0 - 1, y0 - 1, x1, y1)  # 1-based inclusive corners -> PIL's crop box
        return boxes


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"missing annotation file {path}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
