"""Reading images no larger than training needs: a cached downscaled class tree (offline reading) and
Pillow's JPEG draft mode (online reading), so decoding full-size photos does not take the cores from the step.

The short side kept is what evaluation's resize asks for, `floor(image_resize / crop_pct)` (MindCV's
create_transforms), e.g. 256 for 224 px; images already that small are left as they are. The source images are
only ever read; offline, the downscaled tree lives beside the full-size one in the cache, keyed by the size.
"""

from __future__ import annotations

import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fgvctune.config import TrainConfig
from fgvctune.fileio import atomic_write_bytes, atomic_write_text

DONE = ".fgvctune-downscaled"  # written last: a tree without it is completed by the next run
SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def short_side(config: TrainConfig) -> int:
    """The short side evaluation resizes to before its centre crop, and so all that reading needs."""
    return int(math.floor(config.image_resize / config.crop_pct))


def downscaled_bytes(path: str | os.PathLike, short: int) -> bytes | None:
    """The image re-encoded with its short side `short` (JPEG, quality 95), or None when it is no larger.

    JPEGs are decoded in Pillow's draft mode: the decoder itself scales by 1/2, 1/4 or 1/8 to the smallest
    size still at least `short` on the short side, which skips most of the decoding work."""
    from PIL import Image

    from fgvctune.data.images import open_image

    with open_image(path) as im:
        width, height = im.size
        if min(width, height) <= short:
            return None
        scale = short / min(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if im.format == "JPEG":
            im.draft("RGB", size)
        im = im.convert("RGB")
        if im.size != size:
            im = im.resize(size, Image.BICUBIC, reducing_gap=None)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def downscaled_tree(tree: Path, short: int, workers: int = 2) -> Path:
    """A copy of class tree `tree` with every image larger than `short` downscaled, beside it as
    `<tree>-short<short>`; smaller images and the tree's other files are hardlinked (copied across
    file systems). Reruns reuse it; `tree` itself is never written."""
    out = tree.with_name(f"{tree.name}-short{short}")
    stamp = _stamp(tree)
    if (out / DONE).is_file() and (out / DONE).read_text(encoding="utf-8") == stamp:
        return out
    images = [p for p in sorted(tree.rglob("*")) if p.is_file() and not p.name.startswith(".")]

    def place(source: Path) -> None:
        target = out / source.relative_to(tree)
        if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        data = downscaled_bytes(source, short) if source.suffix.lower() in SUFFIXES else None
        if data is not None:
            atomic_write_bytes(target, data)
        else:
            from fgvctune.data.tree import _link_or_copy, _via_temp

            _via_temp(target, lambda tmp: _link_or_copy(source, tmp))

    with ThreadPoolExecutor(max(1, workers)) as pool:  # Pillow releases the GIL while it decodes
        list(pool.map(place, images))
    for stale in [p for p in out.rglob("*") if p.is_file() and p.name != DONE]:
        if not (tree / stale.relative_to(out)).is_file():
            stale.unlink()
    atomic_write_text(out / DONE, stamp)
    return out


def _stamp(tree: Path) -> str:
    """What the full-size tree holds, as its manifest says (rewritten whenever the tree changes)."""
    import hashlib

    from fgvctune.data.tree import MANIFEST

    manifest = tree / MANIFEST
    digest = hashlib.sha1(manifest.read_bytes()).hexdigest() if manifest.is_file() else "no manifest"
    return f"{digest}\n"
