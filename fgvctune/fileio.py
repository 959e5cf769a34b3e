"""Atomic writes: a reader sees the old file or the new one, never half of one. A lock for what several
processes may build at once in the cache. And the one rule for every path fgvctune writes or deletes under a
folder the user named: it stays inside that folder (`inside`)."""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath

from fgvctune.errors import DataError, UsageError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~UMASK)  # as open() would make it, not mkstemp's private 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def written_as(path: Path):
    """For writers that take only a file name (MindSpore's checkpoints and exports): a temporary name beside
    `path`, unique to this process and ending as `path` does, which the block writes; then it is flushed to disk
    and renamed to `path`, so a reader sees the old file or the new one. Removed if the block fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


def save_checkpoint(path: Path, parameters, append_dict: dict | None = None, check=None) -> None:
    """A MindSpore checkpoint written atomically: `parameters` (a cell, or a list of `{"name", "data"}`) saved
    to a temporary name beside `path`, then renamed (written_as), so a reader sees the old file or the new one.
    `check`, where given, is called with the temporary file before the rename: if it raises, nothing is written."""
    import mindspore as ms

    with written_as(path) as tmp:
        ms.save_checkpoint(parameters, str(tmp), append_dict=append_dict)
        if check is not None:
            check(tmp)


def read_user_text(path: Path, limit: int, kind: str) -> str:
    """A small text file the user names (a config, a list of samples): at most `limit` bytes read, whatever its
    size; UTF-8 (a byte-order mark allowed). Each failure is one line naming the file (and line)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {kind} {path}: {exc.strerror}") from None
    if len(raw) > limit:
        raise UsageError(f"{path}: larger than {limit >> 20} MiB: not a {kind}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text", hint="save the file as UTF-8") from None


def stays_below(relative: str) -> bool:
    """True for a relative path that cannot climb out of the folder it is joined to: not absolute, no `..` part,
    not empty. (`.` and doubled slashes are harmless: tar writes `./train/...`.)"""
    path = PurePosixPath(relative)
    return bool(path.parts) and not path.is_absolute() and ".." not in path.parts and "\0" not in relative


def inside(root: Path, relative: str) -> Path:
    """`root / relative`, for a file fgvctune writes or deletes under the folder `root` the user named (a member's,
    key's or class's path in a class tree, a manifest's entry). A DataError unless it stays inside `root`: the
    name must not climb out (`stays_below`), nor may its folder resolve elsewhere through a symbolic link."""
    path = Path(root) / relative
    if not stays_below(relative):
        raise DataError(f"{relative!r} is not a path inside {root}")
    if not Path(os.path.realpath(path.parent)).is_relative_to(os.path.realpath(root)):
        raise DataError(f"{relative!r} leads out of {root} through a symbolic link")
    return path


def cache_root(cache_dir: str = "") -> Path:
    """Where fgvctune keeps what it can remake (class trees, converted weights, built kernels): `cache_dir`, else the
    user's cache."""
    if cache_dir:
        return Path(cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fgvctune"


@contextmanager
def locked(path: Path):
    """Hold an exclusive lock on the file `path` (made if missing) while the block runs: other processes that ask
    for it wait (data-parallel workers building one cached class tree)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class LockTaken(Exception):
    """Another process holds the lock; `holder` is the note it wrote in the lock file (empty if not yet written)."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


@contextmanager
def locked_or_taken(path: Path, note: str):
    """Hold an exclusive lock on the file `path` while the block runs, writing `note` (who holds it) in it; never
    wait: raise `LockTaken` at once when another process holds it (a second run in one folder).

    The file exists only while held, removed before the lock is let go; one left by a process that died holds no
    lock (the kernel drops it with the process) and is simply taken over.
    """
    path = Path(path)
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:
            continue  # its folder was removed as we opened it (a run that stopped there, leaving it empty)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip()
            os.close(fd)
            raise LockTaken(holder) from None
        except OSError as exc:  # a file system without locks (NFS without its lock daemon): run, and say so
            os.close(fd)
            logging.getLogger("fgvctune").warning("cannot lock %s (%s): a second run there would not be stopped",
                                                  path, exc.strerror)  # fmt: skip
            try:
                yield
            finally:
                with suppress(FileNotFoundError):
                    os.unlink(path)
            return
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed this file as we opened it: lock the one at `path` now
    try:
        os.ftruncate(fd, 0)
        os.write(fd, note.encode("utf-8"))
        yield
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.close(fd)
