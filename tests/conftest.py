"""Tiny datasets made in tmp_path, in each layout the adapters read; real images; child processes; browser pages."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from PIL import Image

# The fuzz harness (test_fuzz.py): by default the same few hundred examples per reader every run, so CI is
# repeatable; `--hypothesis-profile=long` draws many more, anew each time.
settings.register_profile(
    "default", max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "aircraft-sample"

COLOURS = {"707-320": (200, 30, 30), "F/A-18": (30, 200, 30), "Cessna 172": (30, 30, 200)}
FAMILIES = {"707-320": "Boeing 707", "F/A-18": "F/A-18", "Cessna 172": "Cessna 172"}
MAKERS = {"707-320": "Boeing", "F/A-18": "McDonnell Douglas", "Cessna 172": "Cessna"}


def write_image(path, colour=(128, 64, 32), size=(40, 48), mode="RGB", fmt=None):
    """An image of one colour at `path`, a file (its format from its suffix unless `fmt` says) or a binary file
    object (then `fmt` names the format). Returns `path`."""
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, format=fmt)
    return path


def png(number: int, fmt: str = "PNG") -> bytes:
    """A real 8x8 image's bytes (PNG unless `fmt` names another format), its colour set by `number`: no two
    numbers below 19,200 give the same image, so that a test can tell every sample from every other."""
    colour = (number * 37 % 256, number * 11 % 256, 90 + number % 150)
    return write_image(io.BytesIO(), colour, size=(8, 8), fmt=fmt).getvalue()


def classes_file(root: Path, names=("cat", "dog", "owl")) -> str:
    """A --classes file (one class name a line) in `root`; returns its name, as the option takes it."""
    (root / "classes.txt").write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    return "classes.txt"


def make_class_tree(root: Path, counts: dict[str, int]) -> Path:
    """root/<class>/<image> (no split folders), JPEG and PNG, a hidden file beside them that readers pass over."""
    for k, (name, count) in enumerate(counts.items()):
        for i in range(count):
            write_image(root / name / f"{name}{i}.{'png' if i % 2 else 'jpg'}", (50 * k, 20 * i, 90))
    (root / next(iter(counts)) / ".DS_Store").write_bytes(b"\0")
    return root


def header_bomb(path: Path, side: int) -> Path:
    """A few hundred bytes whose header declares a side x side image: a JPEG (a real 8x8 one, its frame header
    patched) or, for a .png path, a PNG with almost no pixel data."""
    import io
    import struct
    import zlib

    if path.suffix == ".png":

        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

        header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
        data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        path.write_bytes(data + chunk(b"IEND", b""))
        return path
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 120, 150)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    frame = data.index(b"\xff\xc0")  # SOF0: marker, length, precision, then height and width
    data[frame + 5 : frame + 9] = struct.pack(">HH", side, side)
    path.write_bytes(bytes(data))
    return path


def make_aircraft(root: Path, per_split: int = 2) -> Path:
    """An FGVC-Aircraft tree: 3 variants/families/manufacturers, four splits, boxes."""
    data = root / "data"
    rows = {"train": [], "val": [], "test": []}
    boxes = []
    number = 100
    for variant, colour in COLOURS.items():
        for split in rows:
            for _ in range(per_split):
                number += 1
                image_id = f"{number:07d}"
                write_image(data / "images" / f"{image_id}.jpg", colour, size=(60, 50))
                rows[split].append((image_id, variant))
                boxes.append(f"{image_id} 11 6 50 25\n")
    rows["trainval"] = rows["train"] + rows["val"]
    for level, plural, name_of in (
        ("variant", "variants", lambda v: v),
        ("family", "families", FAMILIES.get),
        ("manufacturer", "manufacturers", MAKERS.get),
    ):
        (data / f"{plural}.txt").write_text("".join(f"{name_of(v)}\n" for v in COLOURS), encoding="utf-8")
        for split, entries in rows.items():
            text = "".join(f"{i} {name_of(v)}\n" for i, v in entries)
            (data / f"images_{level}_{split}.txt").write_text(text, encoding="utf-8")
    (data / "images_box.txt").write_text("".join(boxes), encoding="utf-8")
    return root


def make_csv(root: Path, rows, header=("filepath", "label", "split"), name="labels.csv") -> Path:
    """rows: (relative path, label, split or None, colour)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / name, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for path, label, split, colour in rows:
            write_image(root / path, colour)
            writer.writerow([path, label] + ([split] if split is not None else []))
    return root


def make_folder(root: Path, classes=("cat", "dog"), splits=("train", "val"), per_class=3) -> Path:
    for split in splits:
        for k, name in enumerate(classes):
            for i in range(per_class):
                write_image(root / split / name / f"{name}{i}.jpg", (60 * k + 20, 100, 40 * i))
    return root


def write_archive(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A .zip or .tar holding `members` (name, bytes) under exactly those names, a leading / or ../ included
    (ZipInfo keeps a leading / that ZipFile.write would drop)."""
    import io
    import tarfile
    import zipfile

    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as z:
            for name, body in members:
                z.writestr(zipfile.ZipInfo(name), body)
    else:
        with tarfile.open(path, "w") as tar:
            for name, body in members:
                info = tarfile.TarInfo(name)
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    return path


def zip_tree(tree: Path, archive: Path, names_from: Path | None = None) -> Path:
    """Every file under `tree` in a zip archive, named relative to `names_from` (default: the tree itself)."""
    import zipfile

    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(names_from or tree).as_posix())
    return archive


@pytest.fixture
def pynative():
    """MindSpore in PyNative mode for this test. The mode is process-wide and other tests in the same
    process set graph mode, so a module that needs PyNative asks for it per test."""
    from fgvctune import runtime

    runtime.start(mode="pynative")


@pytest.fixture
def aircraft(tmp_path) -> Path:
    return make_aircraft(tmp_path / "fgvc-aircraft-2013b")


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_folder(tmp_path / "tree")


# Training on the bundled sample at a size two CPU cores handle in seconds.
FAST = dict(image_resize=32, batch_size=16, scale=[0.5, 1.0], num_parallel_workers=2)


def finetune_settings(base: Path, cache: str, **options) -> dict:
    """Fine-tuning the sample's variants from the base run's checkpoint, in seconds."""
    return {
        "adapter": "aircraft",
        "data_dir": str(SAMPLE),
        "ckpt_path": str(base),
        "pretrained": False,
        "epoch_size": 5,
        "lr": 0.05,
        "cache_dir": cache,
        **FAST,
        **options,
    }


def train_command(folder: Path, base: Path, cache: str, epochs: int) -> list[str]:
    """The same fine-tuning through the real command, for tests that signal or kill the process."""
    return [
        sys.executable,
        "-m",
        "fgvctune",
        "train",
        "-a",
        "aircraft",
        "-d",
        str(SAMPLE),
        "--ckpt-path",
        str(base),
        "--no-pretrained",
        "--epoch-size",
        str(epochs),
        "--lr",
        "0.02",
        "--cache-dir",
        cache,
        "-o",
        str(folder),
        "--image-resize",
        "32",
        "--batch-size",
        "16",
    ]


def checkpoint(path: Path) -> dict:
    """A checkpoint's entries as numpy arrays."""
    import mindspore as ms

    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items()}


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A session fixture's folder, built by the first test process that needs it and read by the others
    (pytest-xdist runs a session per process, and each would train the same run again)."""
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' common folder
    folder = root / f"shared-{name}"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "built").is_file():
            build(folder)
            (folder / "built").touch()
    return folder


def trained_once(tmp_path_factory, name: str, least_top1: float, **settings) -> Path:
    """A run folder `name` trained by `built_once`, whose best val top-1 must beat `least_top1`."""
    from fgvctune.training.trainer import train

    def build(folder):
        run = train(cache_dir=str(folder / "cache"), output=folder / name, progress=False, **settings)
        assert run.best["val_top1"] > least_top1

    return built_once(tmp_path_factory, f"{name}-run", build) / name


@pytest.fixture(scope="session")
def base(tmp_path_factory) -> Path:
    """A finished run on a related task (the sample's manufacturers, from scratch); yields its best.ckpt."""
    settings = dict(adapter="aircraft", data_dir=str(SAMPLE), adapter_options={"level": "manufacturer"})
    run = trained_once(tmp_path_factory, "base", 0.8, **settings, pretrained=False, epoch_size=10, lr=0.05, **FAST)
    return run / "best.ckpt"


# -- real images ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> Path:
    """Real images where a test asserts learning: the 1,797 handwritten digits scikit-learn ships
    (8x8 greyscale scans, 10 classes), as a class tree train/val of 32x32 PNGs, 25% held out per class."""

    def build(folder):
        import numpy as np
        from sklearn.datasets import load_digits

        root = folder / "tree"
        data = load_digits()
        order = np.random.default_rng(0).permutation(len(data.images))
        seen: dict[int, int] = {}
        for index in order:
            label = int(data.target[index])
            seen[label] = seen.get(label, 0) + 1
            split = "val" if seen[label] % 4 == 0 else "train"
            pixels = (data.images[index] * 255 / 16).astype(np.uint8)
            path = root / split / str(label) / f"{index:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).resize((32, 32), Image.BILINEAR).convert("RGB").save(path)

    return built_once(tmp_path_factory, "digits", build) / "tree"  # "built" marks the folder, not the tree


def some_of(digits: Path, root: Path, counts: dict[str, dict[str, int]]) -> Path:
    """A class tree of the first `counts[split][label]` digits of each split and label."""
    import shutil

    for split, per_label in counts.items():
        for label, count in per_label.items():
            (root / split / label).mkdir(parents=True)
            for path in sorted((digits / split / label).iterdir())[:count]:
                shutil.copyfile(path, root / split / label / path.name)
    return root


@pytest.fixture(scope="session")
def few_digits(tmp_path_factory, digits) -> Path:
    """Digits 0-2, 4 training images each (an epoch is one batch of 12, or a few small ones) and 4, 8 and 12
    validation images (unequal, so that top-1 and mean per-class accuracy differ)."""
    counts = {"train": {"0": 4, "1": 4, "2": 4}, "val": {"0": 4, "1": 8, "2": 12}}
    return some_of(digits, tmp_path_factory.mktemp("few-digits"), counts)


@pytest.fixture(scope="session")
def digits_400(tmp_path_factory, digits) -> Path:
    """Every digit, 40 training and 10 validation images each: 13 batches of 32, for runs a test makes twice."""
    counts = {"train": dict.fromkeys(map(str, range(10)), 40), "val": dict.fromkeys(map(str, range(10)), 10)}
    return some_of(digits, tmp_path_factory.mktemp("digits-400"), counts)


DIGITS = dict(adapter="folder", pretrained=False, image_resize=32, batch_size=32, scale=[0.7, 1.0], hflip=0.0)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory, digits) -> Path:
    """A run that learns the digits from scratch in three epochs (well above the 10% of chance)."""
    return trained_once(
        tmp_path_factory, "digits", 0.6, data_dir=str(digits), opt="adamw", lr=0.005, epoch_size=3, **DIGITS
    )


# -- child processes ------------------------------------------------------------------------------
@contextmanager
def running(command: list[str], log: Path, **options):
    """A child process (in its own process group) writing to a log file, so no pipe can fill up;
    whatever happens in the test, it and its children are killed before the test ends."""
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO, **options
        )
        try:
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen) -> None:
    """Kill a child started by `running` and everything it started, sessions of their own included
    (msrun starts each worker with setsid)."""
    import psutil

    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
    psutil.wait_procs(family, timeout=30)


def wait_for(condition, process: subprocess.Popen, seconds: float = 600) -> None:
    """Wait until `condition()` holds; fail at once if the process ends first, or after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the process ended (exit {process.returncode}) before the condition held")
        if time.monotonic() > deadline:
            pytest.fail(f"the condition did not hold within {seconds} s")
        time.sleep(0.1)


def finish(*processes: subprocess.Popen, seconds: float, logs: Path) -> None:
    """Wait for children started by `running` to end. If one fails while another still runs, or they run
    past `seconds`, fail with the end of every log under `logs` (msrun writes its scheduler's and workers'
    there), so that a hang in CI says where it hung."""
    deadline = time.monotonic() + seconds
    while any(p.poll() is None for p in processes):
        failed = any(p.poll() not in (None, 0) for p in processes)
        if failed or time.monotonic() > deadline:
            tails = [
                f"--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                for log in sorted(logs.rglob("*.log"))
            ]
            happened = "one failed while another ran" if failed else f"not finished within {seconds} s"
            pytest.fail(f"{happened}: {[p.args for p in processes]}\n" + "\n".join(tails))
        time.sleep(0.2)


def fgvctune(*args: str, log: Path, timeout: float = 600, **options) -> subprocess.CompletedProcess:
    """Run `python -m fgvctune ...` to the end, output in `log`; killed with its children on timeout."""
    with running([sys.executable, "-m", "fgvctune", *args], log, **options) as process:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"fgvctune {' '.join(args[:1])} did not finish within {timeout} s: see {log}")
    return subprocess.CompletedProcess(process.args, process.returncode, log.read_text(errors="replace"), "")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the real command in a fresh interpreter; report whether MindSpore got imported."""
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: print('mindspore imported' if 'mindspore' in sys.modules else 'no mindspore'))\n"
        f"sys.argv = ['fgvctune', *{list(args)!r}]\n"
        "from fgvctune.cli import main\nmain()\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)


MEMORY_BOUND_KB = 4_000_000  # issue 30: every memory case must end under `ulimit -v 4000000`


def bounded_cli(*args: str, kilobytes: int = MEMORY_BOUND_KB, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m fgvctune ...` with its address space capped as `ulimit -v kilobytes` caps it."""
    import resource

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (kilobytes * 1024, kilobytes * 1024))

    command = [sys.executable, "-m", "fgvctune", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=timeout, preexec_fn=cap)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def busy_core():
    """Another process keeping one core busy, as on a shared machine (what made runs drift apart)."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        yield
    finally:
        stop(process)


# -- pages in a browser --------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def browser(page: Path, *how: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Headless Chromium on a page from disk, with a fresh profile and nothing that reaches the network."""
    if not CHROMIUM:
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *how,
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def page_text(page: Path) -> str:
    """What the browser shows as text, tags removed."""
    dom = browser(page, "--dump-dom").stdout
    assert "<body>" in dom, "chromium did not load the page"
    dom = re.sub(r"<style>.*?</style>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def self_contained(html: str) -> None:
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page reaches the network"
    assert not re.search(r"""src=(?!["']?data:)""", html), "every picture is inline"


# -- planted duplicates ---------------------------------------------------------------------------
def plant_copies(root: Path) -> dict:
    """The bundled sample copied to root, with copies of real test images planted in trainval: an exact
    copy, a re-encoded JPEG, a resized one and a slightly cropped one (2 pixels off each side), plus a
    resized copy of a trainval image inside trainval. Returns {"across": {planted: source}, "within": ...}."""
    import shutil

    shutil.copytree(SAMPLE, root)
    data = root / "data"
    images = data / "images"
    labels = dict(line.split(" ", 1) for line in (data / "images_variant_test.txt").read_text().splitlines())
    train_labels = dict(line.split(" ", 1) for line in (data / "images_variant_trainval.txt").read_text().splitlines())
    tests, trains = sorted(labels), sorted(train_labels)

    def reencoded(im):
        return im

    def resized(im):
        return im.resize((im.width * 3 // 4, im.height * 3 // 4), Image.BILINEAR)

    def cropped(im):
        return im.crop((2, 2, im.width - 2, im.height - 2))

    planted, lines = {"across": {}, "within": {}}, []
    for number, (source, change) in enumerate(
        [(tests[0], None), (tests[9], reencoded), (tests[20], resized), (tests[41], cropped)], start=1
    ):
        copy = f"{3000000 + number}"
        if change is None:
            shutil.copyfile(images / f"{source}.jpg", images / f"{copy}.jpg")
        else:
            with Image.open(images / f"{source}.jpg") as im:
                change(im.convert("RGB")).save(images / f"{copy}.jpg", quality=80)
        lines.append(f"{copy} {labels[source]}")
        planted["across"][images / f"{copy}.jpg"] = images / f"{source}.jpg"
    with Image.open(images / f"{trains[5]}.jpg") as im:
        resized(im.convert("RGB")).save(images / "3000009.jpg", quality=90)
    lines.append(f"3000009 {train_labels[trains[5]]}")
    planted["within"][images / "3000009.jpg"] = images / f"{trains[5]}.jpg"
    with open(data / "images_variant_trainval.txt", "a", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in lines))
    return planted
