"""Duplicates and leakage: the same picture twice in a split, or in both the training and evaluation splits.

Exact duplicates have the same bytes (a BLAKE2 digest of the file). Near duplicates are found in two
steps. First a 64-bit difference hash (dHash: a 9x8 greyscale thumbnail, one bit per horizontal
neighbour pair, set where brightness rises) within `NEAR` bits: re-encoded, resized and slightly
cropped copies stay within a few bits, different photographs land about 32 bits apart. The
hash ignores colour and is blind in flat regions, so pictures of one object on a plain background (the
bundled sample's drawn aircraft on a plain sky, a data set of 28-pixel garments) share hashes without
being copies. So, second, the candidates' 24x24 colour thumbnails are compared, the one image also
centre-cropped by 0 to 6% a side to line up with a cropped copy: in a copy every thumbnail pixel stays
within `PEAK` levels (of 255) and the thumbnails within `MEAN` on average. The largest difference
catches two lookalikes that differ in one small place (two pairs of trousers but for the waistband),
which a mean would average away; the mean catches a difference spread thin over the whole picture (a
sky of another shade). 24 pixels is the scale of the smallest images the check is for (28 and 32
pixels, copies resized down to 24), so a thumbnail holds no detail a small copy lacks; thumbnails are
made with an interpolating, antialiasing filter and blurred by about 0.7 of a pixel (`blur`), so that
copies resized with different filters (bilinear, bicubic, area) agree pixel by pixel. Found: exact,
re-encoded and resized copies and centred crops up to about 5% a side, of large and of small images;
not found: off-centre crops beyond a percent or two, flips, colour changes.

Evaluation images with a copy in the training set inflate accuracy; `--dedupe` leaves those
training copies out.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fgvctune.data.containers import Member, sort_key
from fgvctune.data.contract import Problem, Sample
from fgvctune.data.dataset import Dataset
from fgvctune.data.images import shown_name

NEAR = 10  # largest Hamming distance between dHashes of candidate near duplicates (of 64 bits)
SIDE = 24  # thumbnail side, the scale of the smallest images checked
PEAK = 22  # largest difference of any pixel of the lined-up thumbnails of a copy (levels of 255)
MEAN = 5.0  # largest mean difference of the lined-up thumbnails of a copy (levels of 255)
CROPS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06)  # centre crops a side tried to line up a cropped copy
SHOWN = 20  # pairs listed per kind before "... and N more"


@dataclass(frozen=True)
class Pair:
    kind: str  # "exact" or "near"
    distance: int  # Hamming distance of the dHashes (0 for exact copies)
    first: Sample
    first_split: str
    second: Sample
    second_split: str
    peak: int = 0  # largest difference of the lined-up colour thumbnails, levels of 255

    def line(self, root: Path) -> str:
        def name(sample, split):
            return f"{split}:{shown_name(sample.path, root)}"

        how = (
            "same bytes"
            if self.kind == "exact"
            else f"near: hashes {self.distance}/64 bits, thumbnails within {self.peak}"
        )
        return f"{name(self.first, self.first_split)} = {name(self.second, self.second_split)} ({how})"


@dataclass
class Duplicates:
    within: list[Pair] = field(default_factory=list)  # both files in the same split
    across: list[Pair] = field(default_factory=list)  # first in the training split, second in the evaluation split
    train_split: str | None = None
    eval_split: str | None = None
    images: int = 0
    copies: dict[Path, Path] = field(default_factory=dict)  # training file -> an evaluation file it copies
    leaked: set[Path] = field(default_factory=set)  # evaluation files with a copy in the training split

    def summary(self) -> str:
        across = f" or across {self.train_split} and {self.eval_split}" if self.train_split and self.eval_split else ""
        if not self.within and not self.across:
            return f"no duplicates among {self.images} images (exact or near, inside a split{across})"
        text = f"duplicates among {self.images} images: {len(self.within)} pair(s) inside a split{_kinds(self.within)}"
        if across:
            text += (
                f"; {len(self.across)} pair(s) across {self.train_split} and {self.eval_split}{_kinds(self.across)}: "
                f"{len(self.leaked)} {self.eval_split} image(s) with a copy in {self.train_split}"
            )
        return text

    def lines(self, root: Path, shown: int | None = SHOWN) -> list[str]:
        """The pairs, leakage first; `shown` pairs of each kind (None: all)."""
        shown = shown if shown is not None else len(self.within) + len(self.across)
        out = []
        for title, pairs in (("across splits (leakage)", self.across), ("inside a split", self.within)):
            if not pairs:
                continue
            out.append(f"{title}:")
            out += [f"  {p.line(root)}" for p in pairs[:shown]]
            if len(pairs) > shown:
                out.append(f"  ... and {len(pairs) - shown} more")
        return out


def _kinds(pairs) -> str:
    exact = sum(p.kind == "exact" for p in pairs)
    return f" ({exact} exact, {len(pairs) - exact} near)" if pairs else ""


def fingerprint(path: Path) -> tuple[bytes, int | None, np.ndarray | None]:
    """(BLAKE2 digest of the bytes, 64-bit dHash, SIDExSIDE RGB thumbnails of each of CROPS); None, None if the
    file cannot be decoded as an image."""
    from PIL import Image

    from fgvctune.data.images import open_image
    from fgvctune.errors import DataError

    data = path.read_bytes() if isinstance(path, Member) else Path(path).read_bytes()
    digest = hashlib.blake2b(data, digest_size=16).digest()
    smooth = Image.Resampling.BILINEAR  # interpolates when it enlarges a small image, averages when it shrinks
    try:
        with open_image(path, data) as im:
            im.draft("RGB", (128, 128))  # JPEG: decode at 1/2..1/8 scale, several times faster
            rgb = im.convert("RGB")
        if min(rgb.size) > 4 * SIDE:  # a fast area average first, to 4 times the thumbnail, edges kept in place
            scale = 4 * SIDE / min(rgb.size)
            rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BOX)
        grey = np.asarray(rgb.convert("L").resize((9, 8), smooth), dtype=np.int16)
        width, height = rgb.size
        views = blur(
            np.stack(
                [
                    np.asarray(
                        rgb.resize((SIDE, SIDE), smooth, box=(width * c, height * c, width * (1 - c), height * (1 - c)))
                    )
                    for c in CROPS
                ]
            )
        )
    except (OSError, ValueError, DataError):
        return digest, None, None
    bits = (grey[:, 1:] > grey[:, :-1]).flatten()
    return digest, int(np.packbits(bits).view(">u8")[0]), views


def blur(views: np.ndarray) -> np.ndarray:
    """Thumbnails (..., side, side, 3) smoothed by a [1, 2, 1] / 4 kernel down and across (a Gaussian of 0.7
    pixels), edges repeated; so that copies resized with different filters (bilinear, bicubic, area) agree."""
    out = np.pad(views.astype(np.uint16), [(0, 0)] * (views.ndim - 3) + [(1, 1), (1, 1), (0, 0)], mode="edge")
    out = (out[..., :-2, :, :] + 2 * out[..., 1:-1, :, :] + out[..., 2:, :, :] + 2) // 4  # down
    out = (out[..., :-2, :] + 2 * out[..., 1:-1, :] + out[..., 2:, :] + 2) // 4  # across
    return out.astype(np.uint8)


def thumbnail_difference(first: np.ndarray, second: np.ndarray, mean: float = MEAN) -> np.ndarray:
    """For pairs of `fingerprint` views (n, crops, side, side, 3), lined up each full view against every crop of
    the other: the smallest largest pixel difference among the alignments that differ by at most `mean` levels
    on average (int16 max where none does)."""
    a = first.astype(np.int16)
    b = second.astype(np.int16)
    differences = np.concatenate([np.abs(a[:, :1] - b), np.abs(b[:, :1] - a)], axis=1)
    pixels = int(np.prod(differences.shape[2:]))
    differences = differences.reshape(*differences.shape[:2], pixels)
    largest = differences.max(axis=2, initial=0)
    within = differences.sum(axis=2, dtype=np.int64) <= mean * pixels
    return np.where(within, largest, np.iinfo(np.int16).max).min(axis=1)


def find_duplicates(
    dataset: Dataset, near: int = NEAR, peak: int = PEAK, mean: float = MEAN, threads: int = 8
) -> Duplicates:
    """Exact and near duplicates inside each split and across the training and evaluation splits.

    Files with the same bytes form a group, and near matching runs on one file per group, so a picture
    repeated a thousand times costs one fingerprint comparison, not half a million. Pairs are listed so
    that every file of a group appears: within a split each against the split's first, across splits
    each training file against the first evaluation file and the other way round. Copies of copies
    count: a training file linked to an evaluation file through any chain of exact groups and near
    pairs is a copy of it (`Duplicates.copies`).
    """
    train, evaluated = dataset.train_split, dataset.eval_split
    entries = [(split, s) for split, samples in dataset.splits.items() for s in samples]
    files = sorted({s.path for _, s in entries}, key=sort_key)  # a shard's rows in the order they are stored
    # Decoding runs outside the GIL: threads keep both cores busy.
    with ThreadPoolExecutor(max_workers=threads) as pool:
        prints = dict(zip(files, pool.map(fingerprint, files)))
    result = Duplicates(train_split=train, eval_split=evaluated, images=len(files))
    by_path: dict[Path, list] = {}
    for entry in entries:
        by_path.setdefault(entry[1].path, []).append(entry)
    parent = {path: path for path in files}  # union-find over files: clusters of copies

    def root(path):
        while parent[path] != path:
            parent[path] = parent[parent[path]]
            path = parent[path]
        return path

    def keep(a, b, kind, distance, difference=0):
        (split_a, sample_a), (split_b, sample_b) = a, b
        if split_a == split_b:
            result.within.append(Pair(kind, distance, sample_a, split_a, sample_b, split_b, difference))
        elif {split_a, split_b} == {train, evaluated}:
            if split_a != train:
                (split_a, sample_a), (split_b, sample_b) = (split_b, sample_b), (split_a, sample_a)
            result.across.append(Pair(kind, distance, sample_a, split_a, sample_b, split_b, difference))

    # Exact: files with the same bytes (a file listed in two splits is a group of one with two entries).
    groups: dict[bytes, list[Path]] = {}
    for path in files:
        groups.setdefault(prints[path][0], []).append(path)
    for members in groups.values():
        for path in members[1:]:
            parent[root(path)] = root(members[0])
        listed = [entry for path in members for entry in by_path[path]]
        for split in dict.fromkeys(split for split, _ in listed):
            inside = [entry for entry in listed if entry[0] == split]
            for entry in inside[1:]:
                keep(inside[0], entry, "exact", 0)
        trained = [entry for entry in listed if entry[0] == train]
        scored = [entry for entry in listed if entry[0] == evaluated]
        if trained and scored:
            for entry in scored:
                keep(trained[0], entry, "exact", 0)
            for entry in trained[1:]:
                keep(entry, scored[0], "exact", 0)
    # Near: one file per group; hashes within `near` bits, confirmed by the lined-up colour thumbnails.
    hashed = [members[0] for members in groups.values() if prints[members[0]][1] is not None]
    hashes = np.array([prints[p][1] for p in hashed], dtype=np.uint64)
    views = np.stack([prints[p][2] for p in hashed]) if hashed else None
    # A 3x3 block's summed difference is at most 9 times its largest pixel difference, and their mean 9 times
    # the pixels' mean: comparing block sums first rejects most lookalikes (many, among small images on a
    # plain background) at a ninth of the cost, and never a copy.
    blocks = (
        views.reshape(*views.shape[:2], SIDE // 3, 3, SIDE // 3, 3, 3).sum(axis=(3, 5), dtype=np.int16)
        if hashed
        else None
    )
    for first, second, distances in near_pairs(hashes, near):
        close = thumbnail_difference(blocks[first], blocks[second], 9 * mean) <= 9 * peak
        first, second, distances = first[close], second[close], distances[close]
        for i, j, distance, difference in zip(
            first, second, distances, thumbnail_difference(views[first], views[second], mean)
        ):
            if difference <= peak:
                a, b = hashed[i], hashed[j]
                parent[root(b)] = root(a)
                for entry_a in by_path[a]:
                    for entry_b in by_path[b]:
                        keep(entry_a, entry_b, "near", int(distance), int(difference))
    # Copies: every training file in a cluster that holds an evaluation file.
    clusters: dict[Path, list] = {}
    for path in files:
        clusters.setdefault(root(path), []).extend(by_path[path])
    for listed in clusters.values():
        scored = [sample.path for split, sample in listed if split == evaluated]
        if scored and train:
            for split, sample in listed:
                if split == train:
                    result.copies[sample.path] = scored[0]
            result.leaked.update(scored if any(split == train for split, _ in listed) else ())
    order = lambda p: (p.kind != "exact", p.distance, str(p.first.path), str(p.second.path))  # noqa: E731
    result.within.sort(key=order)
    result.across.sort(key=order)
    return result


def near_pairs(hashes: np.ndarray, near: int, rows: int = 64, most: int = 1024):
    """Arrays (i, j, distance), i < j, of the pairs with popcount(hashes[i] ^ hashes[j]) <= near, at most `most`
    pairs at a time."""
    for start in range(0, len(hashes), rows):
        distances = popcount(hashes[start : start + rows, None] ^ hashes[None, start:])
        first, second = np.nonzero(distances <= near)
        later = second > first  # the block's columns start at its first row: the diagonal and below are i >= j
        first, second = first[later], second[later]
        found = distances[first, second]
        for at in range(0, len(first), most):
            yield start + first[at : at + most], start + second[at : at + most], found[at : at + most]


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy < 2 has no bitwise_count)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((x * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.int64)


def dedupe(dataset: Dataset, found: Duplicates) -> list[Problem]:
    """Leave the training copies of evaluation images out of the training split; return what was left out
    (added to the dataset's problems, so skipped.txt lists them)."""
    train = found.train_split
    exact = {(p.first.path, p.second.path) for p in found.across if p.kind == "exact"}
    left_out = [
        Problem(
            s.where,
            f"left out by --dedupe: {s.path} is {'a' if (s.path, found.copies[s.path]) in exact else 'a near'} copy "
            f"of {found.eval_split} image {found.copies[s.path]}",
        )
        for s in dataset.splits[train]
        if s.path in found.copies
    ]
    dataset.splits[train] = [s for s in dataset.splits[train] if s.path not in found.copies]
    dataset.problems = [*dataset.problems, *left_out]
    return left_out


def check(dataset: Dataset, dedupe_copies: bool, log=print) -> Duplicates:
    """What `train` does before it trains: warn about copies inside a split and across train and eval, and with
    `dedupe_copies` (--dedupe) leave the training copies out of the dataset."""
    found = find_duplicates(dataset)
    d = dataset
    if found.across and dedupe_copies:
        left_out = dedupe(d, found)
        log(f"--dedupe: {len(left_out)} {d.train_split} image(s) left out, copies of {d.eval_split} images")
    elif found.across:
        log(
            f"warning: {len(found.leaked)} {d.eval_split} image(s) have a copy in {d.train_split}, which inflates "
            f"val accuracy (pass --dedupe to leave the training copies out; `fgvctune info` lists them)"
        )
    if found.within:
        log(f"warning: {len(found.within)} duplicate pair(s) inside a split (`fgvctune info` lists them)")
    return found


def csv_text(found: Duplicates, root: Path) -> str:
    """The pairs as CSV (kind, distance, split and path of each), for the run folder and its report."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["where", "kind", "distance", "first_split", "first", "second_split", "second"])
    for where, pairs in (("across", found.across), ("within", found.within)):
        for p in pairs:
            writer.writerow([where, p.kind, p.distance, p.first_split, p.first.path, p.second_split, p.second.path])
    return buf.getvalue()
