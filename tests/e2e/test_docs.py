"""Every `fgvctune` command the README and the docs pages show in ```bash blocks, run on the bundled sample.

The pages are read in the README's order, then in mkdocs.yml's `nav`; each `fgvctune ...` in a ```bash block
(after `.venv/bin/`, or after `&&`) is a command. Those that need what CI has not are in NOT_RUN with the reason;
the others run in that order, one `python -m fgvctune` process each, in one temporary folder holding the
project's `data/` and `configs/`, so a later command reads what an earlier one wrote, as a reader's would (the
results page reads the run the strategies page trains). Made beforehand, as a reader has them:

- `runs/demo/base-manufacturer/best.ckpt`, the demo's starting checkpoint: the `base` fixture's run of the same
  related task (the sample's manufacturers, from scratch), instead of the two-minute demo;
- `my-photos/<class>/<image>` and `new-photos/` for the README's quick start, from the sample's images.

Small sizes, for CI's time: appended to a command, so they win over what it says (the last value given wins):
`--epoch-size 1 --image-resize 32` to `train`, `compare`, `lr-find` and `tune`; `--steps 10` to `lr-find`;
`--trials 2` to `tune`;
`--strategy linear-probe` to `compare` (the quickest of its five strategies) and `--seeds 2` where it says
`--seeds`; and to a `train` that names no checkpoint (the quick start's, which downloads MindCV's ImageNet
weights, and offline CI cannot), `--ckpt-path runs/demo/base-manufacturer/best.ckpt`.

Every command, run or not, is also checked against its subcommand's `--help`: each flag it uses is listed there
(or, for adapter options, by `fgvctune adapters`).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SAMPLE

pytestmark = pytest.mark.e2e

BASE = "runs/demo/base-manufacturer/best.ckpt"

# (a pattern searched in the command, why it is not run here): its flags are still checked.
NOT_RUN = [
    (r"^demo\b", "the whole demo takes two minutes; tests/e2e/test_demo.py runs it at a smaller size"),
    (r"\.pth\b", "needs torchvision's weight file, a download (tests/weights/ convert seeded stand-ins)"),
    (r"\.safetensors\b", "needs timm's weight file from the Hugging Face Hub, a download"),
    (r"runs/weights/", "trains from the converted download above"),
    (r"data/fgvc-aircraft-2013b", "needs the real FGVC-Aircraft dataset and MindCV's ImageNet weights, downloads"),
    (r"runs/aircraft-compare", "evaluates the real FGVC-Aircraft comparison above"),
    (r"--explain", "runs here train at 32 px: mobilenet's last map is one pixel (tests/results/test_gradcam.py)"),
    (r"--mlflow-uri http", "needs an MLflow server running (tests/training/test_tracking.py starts one)"),
    (r"--storage postgresql://", "needs a PostgreSQL server and its driver (tests/test_tuning.py shares SQLite)"),
]


def pages() -> list[Path]:
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    return [REPO / "README.md", *(REPO / "docs" / next(iter(entry.values())) for entry in nav)]


def commands(page: Path) -> list[list[str]]:
    """The `fgvctune` commands of a page's ```bash blocks, in order, as argument lists (without `fgvctune`)."""
    found = []
    for block in re.findall(r"^```bash\n(.*?)^```", page.read_text(encoding="utf-8"), flags=re.S | re.M):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] in ("fgvctune", ".venv/bin/fgvctune"):
                    found.append(words[1:])
    return found


def reason_not_run(words: list[str]) -> str | None:
    return next((reason for pattern, reason in NOT_RUN if re.search(pattern, " ".join(words))), None)


def smaller(words: list[str]) -> list[str]:
    """The command at the sizes the docstring gives."""
    extra = []
    if words[0] in ("train", "compare", "lr-find", "tune"):
        extra += ["--epoch-size", "1", "--image-resize", "32"]
    if words[0] == "tune":
        extra += ["--trials", "2"]
    if words[0] == "lr-find":
        extra += ["--steps", "10"]
    if words[0] == "compare":
        extra += ["--strategy", "linear-probe"] + (["--seeds", "2"] if "--seeds" in words else [])
    if words[0] == "train" and "--ckpt-path" not in words and "-c" not in words:
        extra += ["--ckpt-path", BASE]
    return words + extra


def flags_known(words: list[str], help_text: str, adapter_flags: set[str]) -> list[str]:
    """The flags of `words` that neither the subcommand's --help nor any adapter lists."""
    used = [w.split("=")[0] for w in words if w.startswith("-")]
    listed = set(re.findall(r"(?<![\w-])(--?[\w-]+)", help_text)) | adapter_flags
    return [flag for flag in used if flag not in listed]


def run_fgvctune(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fgvctune", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_the_pages_find_their_commands():
    """The extraction itself: the README's first line is the demo, and pages with commands give them in order."""
    assert commands(REPO / "README.md")[0] == ["demo"]
    assert commands(REPO / "docs" / "results.md")[0] == ["eval", "runs/freeze7"]
    assert pages()[1].name == "index.md" and len(pages()) == len(set(pages()))


@pytest.mark.timeout(1800)  # some fifty commands, one process each: 11 minutes beside another test, over 15 under load
def test_every_command_the_pages_show_runs_on_the_sample(tmp_path, base):
    work = tmp_path / "work"
    work.mkdir()
    for name in ("data", "configs", "examples"):
        (work / name).symlink_to(REPO / name)
    (work / BASE).parent.mkdir(parents=True)
    shutil.copy(base, work / BASE)
    from fgvctune import load_dataset

    for sample in load_dataset("aircraft", str(SAMPLE), options={"level": "family"}).splits["trainval"]:
        folder = work / "my-photos" / sample.label.replace("/", "-")  # a reader's folder per class
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample.path, folder / Path(sample.path).name)
    (work / "new-photos").mkdir()
    for image in sorted((work / "my-photos").glob("*/*.jpg"))[:3]:
        shutil.copy(image, work / "new-photos" / image.name)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "COLUMNS": "200"}

    helps: dict[str, str] = {}
    adapters = run_fgvctune(["adapters"], work, env)
    assert adapters.returncode == 0, adapters.stderr
    adapter_flags = set(re.findall(r"^\s+(--[\w-]+)", adapters.stdout, flags=re.M))
    ran, skipped, used_reasons = [], [], set()
    for page in pages():
        for words in commands(page):
            sub = words[:2] if words[0] == "weights" else words[:1]
            key = " ".join(sub)
            if key not in helps:
                shown = run_fgvctune([*sub, "--help"], work, env)
                assert shown.returncode == 0, f"{page.name}: fgvctune {key} --help: {shown.stderr}"
                helps[key] = shown.stdout
            unknown = flags_known(words, helps[key], adapter_flags)
            assert not unknown, f"{page.name}: `fgvctune {' '.join(words)}` uses flags {key} does not have: {unknown}"
            reason = reason_not_run(words)
            if reason:
                skipped.append((page.name, words, reason))
                used_reasons.add(reason)
                continue
            started = time.monotonic()
            result = run_fgvctune(smaller(words), work, env)
            assert result.returncode == 0, f"{page.name}: `fgvctune {' '.join(words)}` failed:\n{result.stderr[-3000:]}"
            assert "Traceback" not in result.stderr, result.stderr
            ran.append((page.name, words, time.monotonic() - started))
    assert used_reasons == {reason for _, reason in NOT_RUN}  # no reason left standing for a command now gone
    assert {name for name, *_ in ran} >= {"README.md", "datasets.md", "strategies.md", "training.md", "results.md"}
    # What the commands wrote, as the pages say.
    for written in ("mine/report.html", "freeze7/best.ckpt", "compare/compare.md", "lr-find/lr-find.csv"):
        assert (work / "runs" / written).is_file(), written
    print(f"ran {len(ran)} commands; not run: {len(skipped)}")
    for name, words, seconds in ran:
        print(f"  {seconds:5.1f} s  {name}: fgvctune {' '.join(words)}")
    for name, words, reason in skipped:
        print(f"  {name}: fgvctune {' '.join(words)}: {reason}")
