"""A sample's image: checked before training (inspect_image), opened under a pixel limit (open_image), decoded
as training sees it (cropped, banner trimmed, RGB), and shown by its path under the dataset folder.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from pathlib import Path

from fgvctune.data.containers import Member, read_member
from fgvctune.data.contract import Sample
from fgvctune.errors import DataError, UsageError

# An image whose header claims more pixels is refused before it is decoded (a few bytes can claim gigapixels).
# 200 megapixels is above any camera's single frame (the largest, medium-format backs, take 150) and decodes to
# 600 MB of RGB; the environment variable raises it for larger scans and panoramas.
MAX_IMAGE_PIXELS = 200_000_000
MAX_PIXELS_VARIABLE = "FGVCTUNE_MAX_PIXELS"


def inspect_image(source: Path | Member) -> bool | str:
    """True if the image must be re-encoded as RGB before MindSpore decodes it, False if it is
    fine as it is, or a message saying why it cannot be read."""
    from PIL import UnidentifiedImageError

    try:
        data = read_member(source, named=False) if isinstance(source, Member) else None
    except DataError as exc:
        return exc.message
    path = source
    try:
        with open_image(source, data) as im:
            fmt, mode = im.format, im.mode
            im.verify()  # PNG: checks every chunk's CRC up to IEND
        if fmt == "JPEG":
            if data is not None:
                tail = data[-4096:]
            else:
                with open(path, "rb") as f:
                    f.seek(max(0, os.path.getsize(path) - 4096))
                    tail = f.read()
            if b"\xff\xd9" not in tail:
                return f"truncated image {path} (no JPEG end marker)"
        elif fmt != "PNG":
            with open_image(source, data) as im:
                im.load()
    except DataError as exc:
        return exc.message
    except UnidentifiedImageError:
        return f"{path} is not an image PIL can read"
    except (OSError, SyntaxError, ValueError) as exc:
        if "truncated" in str(exc).lower():
            return f"truncated image {path}"
        return f"unreadable image {path}: {exc}"
    return not (fmt in ("JPEG", "PNG") and mode in ("RGB", "L"))


def max_image_pixels() -> int:
    """The most pixels an image's header may claim: MAX_IMAGE_PIXELS, or the environment's MAX_PIXELS_VARIABLE."""
    value = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
    if not value:
        return MAX_IMAGE_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise UsageError(f"{MAX_PIXELS_VARIABLE}={value!r} is not a number of pixels", hint="e.g. 400000000")
    return limit


def open_image(source: Path | Member | io.BytesIO, data: bytes | None = None):
    """An image opened by PIL (its header read, no pixels decoded yet) from a file, a container member, or
    `data`, the bytes of either already read. DataError, naming the image, when its header claims more pixels
    than `max_image_pixels()`: a few bytes can claim gigapixels that decoding would allocate."""
    from PIL import Image

    limit = max_image_pixels()
    # PIL's own guard (a warning past Image.MAX_IMAGE_PIXELS, an error past twice it) stays for the whole process:
    # raised to fgvctune's limit if below it, never lowered or removed. Past fgvctune's limit PIL's error or
    # warning would be a traceback or a stray line naming no file: fgvctune says it instead, in one line.
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = limit
    if data is not None:
        file = io.BytesIO(data)
    elif isinstance(source, Member):
        file = io.BytesIO(source.read_bytes())
    else:
        file = source
    name = source if isinstance(source, (str, os.PathLike, Member)) else "an image"
    try:
        with _pil_warnings, warnings.catch_warnings():  # (catch_warnings changes the process's filters)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(file)
    except Image.DecompressionBombError:
        width, height = _declared_size(file)
        raise DataError(_over_limit(name, width, height, limit)) from None
    width, height = im.size
    if width * height > limit:
        im.close()
        raise DataError(_over_limit(name, width, height, limit))
    return im


_pil_warnings = threading.Lock()  # open_image's warning filter, one thread at a time


def _over_limit(name, width: int, height: int, limit: int) -> str:
    return (
        f"{name} declares {width}x{height} pixels, over the limit of {limit:,} "
        f"(if it is real, set {MAX_PIXELS_VARIABLE}={width * height})"
    )


def _declared_size(file) -> tuple[int, int]:
    """The size an image's header declares, read by the PIL format plugin that accepts it, without the pixel
    check of Image.open (which refused it, saying only the product)."""
    from PIL import Image

    with open(file, "rb") if isinstance(file, (str, os.PathLike)) else contextlib.nullcontext(file) as f:
        f.seek(0)
        prefix = f.read(16)
        for fmt in Image.ID:
            factory, accept = Image.OPEN[fmt]
            accepted = accept is None or accept(prefix)
            if accepted and not isinstance(accepted, str):  # (a str is PIL's warning that it nearly accepts)
                f.seek(0)
                try:
                    return factory(f, "").size
                except Exception:  # not this format after all: PIL's own loop goes on to the next one too
                    continue
    return (0, 0)


def decoded_image(sample: Sample, path: Path | Member | None = None, fit: int | None = None):
    """The RGB image training sees for a sample: cropped to its box, its banner trimmed, transparency on white.

    With `fit`, no larger than `fit` pixels a side, and reduced while decoding where the format allows (a JPEG
    decodes at 1/2, 1/4 or 1/8 of its size in PIL's draft mode): a picture costs what it shows, not what the
    file's header claims."""
    from PIL import Image

    with open_image(path or sample.path) as im:
        full_width, full_height = im.size
        left, upper, right, lower = sample.box or (0, 0, full_width, full_height)
        lower = min(lower, full_height - sample.trim_bottom)
        if fit:
            shrink = fit / max(1, right - left, lower - upper)  # so that the part kept is still `fit` a side
            if shrink < 1:
                im.draft(None, (max(1, int(full_width * shrink)), max(1, int(full_height * shrink))))
        im.load()
        if im.mode == "I" or im.mode.startswith("I;16"):
            im = im.point(lambda v: v / 256).convert("L")  # 16-bit greys: PIL's own convert clips them to white
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            flat = Image.new("RGB", im.size, (255, 255, 255))
            flat.paste(im, mask=im.getchannel("A"))
            im = flat
        else:
            im = im.convert("RGB")
    scale = im.width / full_width  # below 1 when decoded in draft mode
    width, height = im.size
    left, upper, right, lower = (round(v * scale) for v in (left, upper, right, lower))
    im = im.crop((max(0, left), max(0, upper), min(right, width), max(lower, upper + 1)))
    if fit:
        im.thumbnail((fit, fit))
    return im


def encoded_image(sample: Sample, path: Path | None = None) -> bytes:
    """The encoded bytes training sees for a sample: the file itself, or a cropped/RGB re-encoding."""
    path = path or sample.path
    if not sample.transformed:
        return path.read_bytes() if isinstance(path, Member) else Path(path).read_bytes()
    im = decoded_image(sample, path)
    buf = io.BytesIO()
    if transformed_suffix(sample) == ".png":
        im.save(buf, format="PNG")
    else:
        im.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def shown_name(source: Path | Member, root: Path) -> str:
    """How messages and files show a sample: its path under the dataset's folder (a member as SHARD:KEY)."""
    if isinstance(source, Member):
        return f"{shown_name(source.container, root)}:{source.key}"
    try:
        return str(Path(source).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(source)


def transformed_suffix(sample: Sample) -> str:
    """File suffix for a sample's bytes as `encoded_image` returns them."""
    if not sample.transformed:
        return sample.path.suffix
    return ".png" if sample.path.suffix.lower() in (".png", ".gif", ".bmp", ".tif", ".tiff", ".webp") else ".jpg"
