"""fgvctune's own CPU kernels are built once per machine into a private cache, trusted only as built, and skipped
(MindSpore's own ops run) where they cannot be built."""

from __future__ import annotations

import grp
import logging
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fgvctune import runtime

ms = runtime.start(mode="pynative")
from mindspore import nn  # noqa: E402

from fgvctune.kernels import build, cells, swaps  # noqa: E402

pytestmark = pytest.mark.usefixtures("pynative")


def test_kernels_are_built_once_into_a_private_cache_and_skipped_without_a_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    build.library.cache_clear()
    try:
        built = Path(build.library())
        folder = tmp_path / "cache" / "fgvctune" / "kernels"
        assert built.parent == folder and built.is_file()
        # No partial file left; the library's SHA-256 beside it; the folders made for it are the user's alone.
        assert {p.name for p in folder.iterdir()} == {built.name, f"{built.name}.sha256", "build.lock"}
        assert [stat.S_IMODE(p.stat().st_mode) for p in (folder, folder.parent, folder.parent.parent)] == [0o700] * 3
        build.library.cache_clear()
        monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
        conv = nn.Conv2d(4, 4, 3, group=4)
        assert cells.swap(conv, "depthwise") == 0 and not isinstance(conv.conv2d, cells.DepthwiseConv)
    finally:
        build.library.cache_clear()


@pytest.fixture(scope="module")
def plain_cache(tmp_path_factory) -> Path:
    """A cache holding the kernels built without onednn.cc (a second's compile), for tests to copy."""
    cache = tmp_path_factory.mktemp("kernels") / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))
        patch.setattr(build, "onednn", lambda: None)
        build.library.cache_clear()
        try:
            assert build.library()
        finally:
            build.library.cache_clear()
    return cache


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """The kernels' folder in an empty cache, where library() builds them without onednn.cc."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(build, "onednn", lambda: None)
    build.library.cache_clear()
    yield tmp_path / "cache" / "fgvctune" / "kernels"
    build.library.cache_clear()


@pytest.fixture
def cache(empty_cache, plain_cache) -> Path:
    """The kernels' folder in a copy of `plain_cache`: library() finds them built."""
    shutil.copytree(plain_cache, empty_cache.parent.parent)
    return empty_cache


def compiler(folder: Path, script: str) -> str:
    """A shell script standing in for the C++ compiler (CXX): `script`, then g++ itself."""
    path = folder / "cxx"
    path.write_text(f'#!/bin/sh\n{script}\nexec g++ "$@"\n')
    path.chmod(0o755)
    return str(path)


def warnings_logged(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.parametrize("damage", ["garbage", "cut-short"])
def test_a_damaged_library_in_the_cache_is_rebuilt_before_anything_loads_it(damage, cache):
    """A power cut before the library reached the disk: garbage made every MindSpore command fail with "invalid
    ELF header", a library cut short with its header whole was mapped, read past its end: a bus error."""
    (library,) = cache.glob("*.so")
    whole = library.read_bytes()
    library.write_bytes(b"garbage" * 1000 if damage == "garbage" else whole[: len(whole) // 2])
    assert build.library() == str(library)
    assert library.read_bytes() == whole  # rebuilt (the compiler gives the same bytes)


BUILD = "\n".join(
    [
        "from fgvctune.kernels import build",
        "build.onednn = lambda: None",
        "print(build.library(), flush=True)",
        "",
    ]
)


def test_two_processes_on_an_empty_cache_compile_once(tmp_path):
    """Two msrun workers starting at once: one compiles, the other waits for it, then loads what it built."""
    compiles = tmp_path / "compiles.log"
    cxx = compiler(tmp_path, f'case "$*" in *--version*) ;; *) echo compile >> {compiles}; sleep 3;; esac')
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "CXX": cxx}
    workers = [
        subprocess.Popen([sys.executable, "-c", BUILD], env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    built = [worker.communicate(timeout=600)[0].strip() for worker in workers]
    assert built[0] == built[1] and Path(built[0]).is_file()
    assert compiles.read_text().splitlines() == ["compile"]


def test_a_failed_build_is_said_once_at_the_clis_level_and_mindspores_ops_run(
    empty_cache, tmp_path, caplog, monkeypatch
):
    """The CLI shows warnings; the compiler's output is for --verbose (INFO), every time."""
    script = 'case "$*" in *--version*) echo broken 1.0; exit 0;; esac\necho "error: broken compiler" >&2; exit 1'
    monkeypatch.setenv("CXX", compiler(tmp_path, script))
    caplog.set_level(logging.INFO, logger="fgvctune")
    for run in ("first", "second"):
        caplog.clear()
        build.library.cache_clear()
        conv = nn.Conv2d(4, 4, 3, group=4)
        assert cells.swap(conv, "depthwise") == 0 and not isinstance(conv.conv2d, cells.DepthwiseConv)
        assert "error: broken compiler" in caplog.text
        said = warnings_logged(caplog)
        if run == "first":
            assert len(said) == 1 and "\n" not in said[0] and "--verbose" in said[0], said
        else:
            assert said == []


def another_group() -> int:
    """A group other than the user's own that the test may give a folder to (root may give any)."""
    gids = [group.gr_gid for group in grp.getgrall()] if os.getuid() == 0 else os.getgroups()
    others = [gid for gid in gids if gid != os.getgid()]
    if not others:
        pytest.skip("no group but the user's own to give a folder to")
    return others[0]


@pytest.mark.parametrize("shared", ["with anyone", "with a group"])
def test_kernels_in_a_folder_others_may_write_are_not_loaded(shared, cache, caplog):
    """Another user could have planted a library under the predictable name, its SHA-256 beside it."""
    home = cache.parent.parent
    home.chmod(0o777 if shared == "with anyone" else 0o770)
    if shared == "with a group":
        os.chown(home, -1, another_group())
    conv = nn.Conv2d(4, 4, 3, group=4)
    assert cells.swap(conv, "depthwise") == 0 and not isinstance(conv.conv2d, cells.DepthwiseConv)
    (said,) = warnings_logged(caplog)
    assert f"others may write in {home.resolve()}" in said and "\n" not in said


def test_kernels_in_a_folder_only_the_users_private_group_may_write_are_loaded(cache, caplog):
    """Debian and Ubuntu's umask 002 with user-private groups: ~/.cache is 0775, its group the user's alone."""
    user, group = pwd.getpwuid(os.getuid()), grp.getgrgid(os.getgid())
    if group.gr_name != user.pw_name or set(group.gr_mem) - {user.pw_name}:
        pytest.skip("the user's group is not a private one")
    home = cache.parent.parent
    home.chmod(0o775)
    os.chown(home, -1, os.getgid())
    (library,) = cache.glob("*.so")
    assert build.library() == str(library)
    assert warnings_logged(caplog) == []


@pytest.mark.parametrize("mode", [0o775, 0o777], ids=["0775", "0777"])
def test_fgvctunes_own_folders_others_may_write_are_made_private_and_the_kernels_loaded(mode, cache, caplog):
    """Made by an older fgvctune under umask 002: tightened to 0700, not refused."""
    for folder in (cache, cache.parent):
        folder.chmod(mode)
    (library,) = cache.glob("*.so")
    assert build.library() == str(library)
    assert [stat.S_IMODE(folder.stat().st_mode) for folder in (cache, cache.parent)] == [0o700] * 2
    assert warnings_logged(caplog) == []


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user takes root")
def test_a_library_of_another_user_is_rebuilt_not_loaded(cache, caplog):
    (library,) = cache.glob("*.so")
    os.chown(library, 65534, 65534)
    assert build.library() == str(library) and library.stat().st_uid == os.getuid()
    (said,) = warnings_logged(caplog)
    assert "belongs to another user" in said


@pytest.mark.parametrize("package", ["missing", "not-building"])
def test_convolution_and_dense_are_left_to_mindspore_without_the_onednn_package(package, monkeypatch, tmp_path):
    """No onednn-cpu-gomp, or one whose headers do not compile: the other kernels are built all the same."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    found = None if package == "missing" else (str(tmp_path / "no-headers"), str(tmp_path / "libdnnl.so.3"))
    monkeypatch.setattr(build, "onednn", lambda: found)
    build.library.cache_clear()
    try:
        conv, depthwise, dense = nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3, group=4), nn.Dense(4, 2)
        assert cells.swap(conv, "convolution") == 0 and not isinstance(conv.conv2d, cells.Convolution)
        assert cells.swap(dense, "dense_product") == 0 and not isinstance(dense.matmul, cells.DenseProduct)
        assert cells.swap(depthwise, "depthwise") == 1  # the other kernels are built without onednn.cc
    finally:
        build.library.cache_clear()


def test_the_kernels_are_built_in_the_cache_dir_the_run_names(tmp_path, monkeypatch, plain_cache):
    """--cache-dir holds the kernels too: nothing is built or looked for in the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "users-cache"))
    monkeypatch.setattr(build, "onednn", lambda: None)
    chosen = tmp_path / "chosen"
    shutil.copytree(plain_cache / "fgvctune", chosen)
    (library,) = (chosen / "kernels").glob("*.so")
    build.library.cache_clear()
    try:
        conv = nn.Conv2d(4, 4, 3, group=4)
        swaps.apply(conv, cache_dir=str(chosen))
        assert isinstance(conv.conv2d, cells.DepthwiseConv) and build.library(str(chosen)) == str(library)
        assert not (tmp_path / "users-cache").exists()
    finally:
        build.library.cache_clear()


def test_a_cache_dir_others_may_write_in_is_left_as_it_is_and_its_kernels_refused(tmp_path, monkeypatch, caplog):
    """A --cache-dir shared on purpose (others may write there) is never made private behind the user's back, as
    fgvctune's own default cache root is: the kernels are not loaded from it, said in one warning."""
    monkeypatch.setattr(build, "onednn", lambda: None)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    build.library.cache_clear()
    try:
        assert build.library(str(shared)) is None
    finally:
        build.library.cache_clear()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o777
    (said,) = warnings_logged(caplog)
    assert f"others may write in {shared}" in said and "--cache-dir" in said


def test_every_header_the_sources_include_is_part_of_the_builds_key(tmp_path, monkeypatch):
    """A library built before csrc/common.h changed is another build: never loaded for the new sources."""
    included = {name for cc in build.CSRC.glob("*.cc") for name in re.findall(r'#include "(.+)"', cc.read_text())}
    assert included == {header.name for header in build.HEADERS} == {path.name for path in build.CSRC.glob("*.h")}
    header = tmp_path / "common.h"
    header.write_text(build.HEADERS[0].read_text())
    monkeypatch.setattr(build, "HEADERS", [header])
    before = build._key("g++ 1.0", build.SOURCES, build.FLAGS)
    header.write_text(header.read_text() + "\n// changed\n")
    assert build._key("g++ 1.0", build.SOURCES, build.FLAGS) != before
