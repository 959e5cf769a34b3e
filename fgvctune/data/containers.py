"""Images that live inside files: rows of Parquet and Arrow shards, members of tar and zip archives.

A `Member` names one image inside one container; `read_member` returns its encoded bytes. Everything after an
adapter (the checks, the class tree, the online source, the duplicate search) sees only those bytes, so a
sample inside a shard behaves as a sample in a file does.

Reading is random access with bounded memory: a Parquet reader keeps one row group of the image column decoded,
an Arrow file is memory-mapped, a tar shard is read at its members' offsets (an index of them is built once per
shard and process), a zip archive through its own directory. No shard is ever held whole, and nothing is
extracted to disk. A tar or zip member whose header claims more than MEMBER_LIMIT bytes, or a Parquet row group
whose image column decodes to more than GROUP_LIMIT, is a problem of its members, read no further.
"""

from __future__ import annotations

import bisect
import os
import tarfile
import threading
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from fgvctune.errors import DataError

KINDS = ("parquet", "arrow", "tar", "zip")
# The most bytes one tar or zip member may hold: far above any real image (a 50-megapixel camera JPEG is about
# 25 MB, a lossless 100-megapixel PNG 100 to 200 MB) and below what a few loader threads can hold at once. A
# member over it (a zip bomb: 1 GiB of zeros compresses to a few MB) is a problem of that member, never read whole.
MEMBER_LIMIT = 256 * 2**20
# The most bytes one Parquet row group's image column may decode to (its column chunks' total_uncompressed_size):
# a row group is decoded whole, so it must hold at least one image of MEMBER_LIMIT; four times that admits the
# Hub's row groups of 100 images of up to 10 MB each, while one decode (Arrow's buffers and the bytes taken from
# them) stays near 2 GiB. A row group over it (zeros compress a thousandfold) is a problem of each of its rows.
GROUP_LIMIT = 4 * MEMBER_LIMIT
WINDOW = 4  # Parquet row groups whose rows a training epoch shuffles together (see reading_order)
# The first bytes of each image format fgvctune reads, for members whose name says nothing.
MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG", ".png"), (b"GIF8", ".gif"), (b"BM", ".bmp"), (b"II*\x00", ".tif"),
         (b"MM\x00*", ".tif"))  # fmt: skip


@dataclass(frozen=True, order=True)
class Member:
    """One image inside a container file.

    `key` is the row number (Parquet, Arrow) or the member's name (tar, zip); `column` is the image column of a
    table; `filename` is the name the image had, if the container kept one (HF's image path, a member's name).
    """

    container: Path
    kind: str
    key: str
    column: str = ""
    filename: str = ""

    def __str__(self) -> str:
        return f"{self.container}:{self.key}"

    @property
    def name(self) -> str:
        """A file name for the image: its own, else the container's stem and the row."""
        base = Path(self.filename).name if self.filename else f"{self.container.stem}-{self.key}"
        return base if Path(base).suffix.lower() in SUFFIXES else base + self.suffix

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    @property
    def suffix(self) -> str:
        own = Path(self.filename).suffix.lower() if self.filename else ""
        return own if own in SUFFIXES else sniff_suffix(read_member(self)[:16])

    def read_bytes(self) -> bytes:
        return read_member(self)

    def resolve(self) -> Member:
        return self


SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def sniff_suffix(head: bytes) -> str:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    return next((suffix for magic, suffix in MAGIC if head.startswith(magic)), ".jpg")


def block(source) -> tuple:
    """The piece of storage a sample is read with: a Parquet row group; any other sample is a piece of its own."""
    if isinstance(source, Member) and source.kind == "parquet":
        return (str(source.container), _reader(source.container, "parquet").group(int(source.key)))
    return (str(source),)


def reading_order(sources: list, rng) -> list[int]:
    """A training order that reads Parquet shards a row group at a time: the row groups in random order, the rows
    of each run of WINDOW consecutive groups shuffled together (as webdataset's shuffle buffer does). Samples with
    cheap random access (files, tar, zip and Arrow members) are each a group of their own, so for them this is a
    plain shuffle. `rng` is a random.Random."""
    blocks: dict[tuple, list[int]] = {}
    for i, source in enumerate(sources):
        blocks.setdefault(block(source), []).append(i)
    keys = list(blocks)
    rng.shuffle(keys)
    order = []
    for start in range(0, len(keys), WINDOW):
        window = [i for key in keys[start : start + WINDOW] for i in blocks[key]]
        rng.shuffle(window)
        order += window
    return order


def in_row_groups(sources: list) -> bool:
    """True when some sample lives in a Parquet shard, whose rows are read a row group at a time."""
    return any(isinstance(s, Member) and s.kind == "parquet" for s in sources)


def sort_key(source) -> tuple:
    """Storage order: a container's rows and members in the order they are stored, files by path."""
    if isinstance(source, Member):
        return (str(source.container), int(source.key) if source.key.isdigit() else 0, source.key)
    return (str(source), 0, "")


def read_member(member: Member, named: bool = True) -> bytes:
    """The encoded bytes of one image; a missing or unreadable one is a DataError that names it (or, with
    `named=False`, only says what is wrong, for messages that name the sample already)."""
    if member.kind not in KINDS:
        raise DataError(f"{member}: unknown container kind {member.kind!r}")
    try:
        return _reader(member.container, member.kind).read(member)
    except Unreadable as exc:
        raise DataError(f"{member}: {exc.message}" if named else exc.message) from None


class Unreadable(DataError):
    """What is wrong with one member (its container is fine)."""


# -- readers, one per open container ------------------------------------------------------------------------
OPEN_AT_ONCE = 64  # containers kept open; beyond that the least recently used is closed (file descriptors)
_readers: OrderedDict[tuple[Path, str], object] = OrderedDict()
_lock = threading.Lock()


def _reader(container: Path, kind: str):
    key = (container, kind)
    with _lock:
        if key in _readers:
            _readers.move_to_end(key)
            return _readers[key]
        make = {"parquet": ParquetReader, "arrow": ArrowReader, "tar": TarReader, "zip": ZipReader}[kind]
        reader = _readers[key] = make(container)
        while len(_readers) > OPEN_AT_ONCE:
            _readers.popitem(last=False)[1].close()
        return reader


def forget_readers() -> None:
    """Close every open container and drop what was decoded (a rewritten shard is then read afresh)."""
    with _lock:
        for reader in _readers.values():
            reader.close()
        _readers.clear()
        _groups.clear()


def _image_bytes(value) -> bytes:
    """A table cell as image bytes: HF's image struct {bytes, path} or plain binary."""
    if isinstance(value, dict):
        data = value.get("bytes")
        if data is None and value.get("path"):
            raise Unreadable(f"the image is a path ({value['path']}), not bytes in the file")
    else:
        data = value
    if data is None:
        raise Unreadable("the image is null")
    return bytes(data)


# Decoded Parquet row groups, for all shards together: reading_order's window and a little more.
KEPT = WINDOW + 2
_groups: OrderedDict[tuple[Path, int, str], list] = OrderedDict()


class ParquetReader:
    """Row access to one column of a Parquet file, a row group decoded at a time (the Hub writes image datasets
    in row groups of 100 rows); at most KEPT groups are held decoded across all shards. Training reads them in
    that grain: see `reading_order`. A row group is decoded whole, so one whose image column is over
    GROUP_LIMIT bytes decoded (as its metadata says) is refused before decoding."""

    def __init__(self, path: Path):
        import pyarrow.parquet as pq

        try:
            self.file = pq.ParquetFile(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path} is not a readable Parquet file ({exc})") from None
        self.path = path
        self.starts = [0]
        for i in range(self.file.num_row_groups):
            self.starts.append(self.starts[-1] + self.file.metadata.row_group(i).num_rows)
        self.lock = threading.Lock()

    def group(self, row: int) -> int:
        return bisect.bisect_right(self.starts, row) - 1

    def read(self, member: Member) -> bytes:
        row = int(member.key)
        if not 0 <= row < self.starts[-1]:
            raise Unreadable(f"no row {row}: the file has {self.starts[-1]} rows")
        group = self.group(row)
        key = (self.path, group, member.column)
        with self.lock:  # one decode of a group at a time per shard
            with _lock:
                cells = _groups.get(key)
                if cells is not None:
                    _groups.move_to_end(key)
            if cells is None:
                import pyarrow as pa

                self._check_group(group, member.column)
                try:
                    cells = self.file.read_row_group(group, columns=[member.column]).column(0).to_pylist()
                except (OSError, KeyError, pa.ArrowException) as exc:
                    raise Unreadable(f"row group {group} is unreadable ({exc})") from None
                with _lock:
                    _groups[key] = cells
                    while len(_groups) > KEPT:
                        _groups.popitem(last=False)
        return _image_bytes(cells[row - self.starts[group]])

    def _check_group(self, group: int, column: str) -> None:
        """Refuses a row group whose column decodes to more than GROUP_LIMIT bytes, as its metadata says."""
        chunks = self.file.metadata.row_group(group)
        size = 0
        for j in range(chunks.num_columns):
            chunk = chunks.column(j)
            if chunk.path_in_schema == column or chunk.path_in_schema.startswith(column + "."):  # {bytes, path}
                size += chunk.total_uncompressed_size
        if size > GROUP_LIMIT:
            raise Unreadable(
                f"row group {group} holds {size:,} bytes of {column!r}, more than the {GROUP_LIMIT:,} fgvctune "
                "decodes at once (write the file in smaller row groups)"
            )

    def close(self) -> None:
        self.file.close()


class ArrowReader:
    """Row access to an Arrow IPC file (what `datasets`' save_to_disk writes), memory-mapped."""

    def __init__(self, path: Path):
        import pyarrow as pa

        try:
            source = pa.memory_map(str(path))
            try:
                self.table = pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                self.table = pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowInvalid) as exc:
            raise DataError(f"{path} is not a readable Arrow file ({exc})") from None

    def read(self, member: Member) -> bytes:
        try:
            cell = self.table.column(member.column)[int(member.key)].as_py()
        except (KeyError, IndexError) as exc:
            raise Unreadable(f"no such row or column ({exc})") from None
        return _image_bytes(cell)

    def close(self) -> None:
        self.table = None


class TarReader:
    """A tar shard read at its members' offsets. Compressed archives (.tar.gz) are read through tarfile, which
    must decompress from the start for every backward jump: fine in storage order (convert, the checks), slow
    at random (online training), where converting them first pays off."""

    def __init__(self, path: Path):
        self.path = path
        self.index = tar_index(path)
        self.compressed = not _plain_tar(path)
        self.lock = threading.Lock()
        try:
            self.file = tarfile.open(path) if self.compressed else open(path, "rb")
        except (OSError, tarfile.TarError) as exc:
            raise DataError(f"cannot open {path} ({exc})") from None

    def read(self, member: Member) -> bytes:
        info = self.index.get(member.key)
        if info is None:
            raise Unreadable(f"no such member in {self.path.name}")
        if self.compressed:
            with self.lock:
                try:
                    return _read_limited(self.file.extractfile(info), info.size)
                except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
                    raise Unreadable(f"unreadable ({exc})") from None
        _check_size(info.size)
        data = os.pread(self.file.fileno(), info.size, info.offset_data)
        if len(data) != info.size:
            raise Unreadable(f"cut short: {self.path.name} ends before this member does")
        return data

    def close(self) -> None:
        self.file.close()


class ZipReader:
    def __init__(self, path: Path):
        try:
            self.zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path} is not a readable zip archive ({exc})") from None
        self.lock = threading.Lock()

    def read(self, member: Member) -> bytes:
        with self.lock:
            try:
                info = self.zip.getinfo(member.key)
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    # zipfile inflates a bzip2 or lzma member's compressed bytes whole, however few it is asked for
                    raise Unreadable("compressed with bzip2 or lzma, which fgvctune does not read (use deflate)")
                with self.zip.open(info) as stream:
                    return _read_limited(stream, info.file_size)
            except KeyError:
                raise Unreadable(f"no such member in {Path(self.zip.filename).name}") from None
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, zlib.error) as exc:
                raise Unreadable(f"unreadable ({exc})") from None

    def close(self) -> None:
        self.zip.close()


def _check_size(size: int) -> None:
    if size > MEMBER_LIMIT:
        raise Unreadable(f"holds more than {MEMBER_LIMIT:,} bytes, the most fgvctune reads for one image")


def _read_limited(stream, claimed: int) -> bytes:
    """A member's bytes, refused unread when its header claims more than MEMBER_LIMIT. tarfile and zipfile never
    return more than the header's size (zipfile then fails the CRC of a member that holds other bytes), so the
    claim bounds the read; asking for exactly that many also bounds what zipfile inflates at a time (read()
    with no size inflates up to 2 GiB at once before cutting it to the header's size)."""
    _check_size(claimed)
    return stream.read(claimed)


def _plain_tar(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror})") from None
    return not (head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00")


_indexes: dict[tuple[Path, int, int], dict[str, tarfile.TarInfo]] = {}


def tar_index(path: Path) -> dict[str, tarfile.TarInfo]:
    """Member name -> its header (offset of its data, size), for the regular files of a tar; built once per shard
    and process. A shard cut short is a DataError naming it."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror})") from None
    key = (Path(path), stat.st_size, stat.st_mtime_ns)
    if key not in _indexes:
        plain = _plain_tar(path)
        index = {}
        try:
            with tarfile.open(path, "r:" if plain else "r:*") as tar:
                for info in tar:
                    if not info.isfile():
                        continue
                    if plain and info.offset_data + info.size > stat.st_size:
                        raise tarfile.ReadError(f"{info.name} ends past the end of the file")
                    index[info.name] = info
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise DataError(f"{path} is not a complete tar archive ({exc})", hint="download it again") from None
        _indexes[key] = index
    return _indexes[key]
