"""The command line: fast help, one-line errors, the data commands end to end, and training from a config file."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from conftest import REPO, fgvctune, run_cli
from fgvctune.cli import app

runner = CliRunner()


def test_help_and_data_commands_do_not_import_mindspore(aircraft, tmp_path):
    for args in (
        ["--help"],
        ["adapters"],
        ["convert", "-a", "aircraft", "-d", str(aircraft), "-o", str(tmp_path / "o")],
        ["info", "-a", "aircraft", "-d", str(aircraft)],
    ):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith("no mindspore"), args


def test_wrong_path_is_one_line(tmp_path):
    result = run_cli("convert", "-a", "aircraft", "-d", str(tmp_path / "missing"), "-o", str(tmp_path / "o"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "missing does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_annotation_line_is_one_line_naming_it(aircraft, tmp_path):
    annotation = aircraft / "data" / "images_variant_trainval.txt"
    annotation.write_text("0000101\n" + annotation.read_text(), encoding="utf-8")
    result = run_cli("convert", "-a", "aircraft", "-d", str(aircraft), "-o", str(tmp_path / "o"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "images_variant_trainval.txt:1: expected '<image id> <class name>'" in result.stderr


def test_bad_adapter_option_exits_2(aircraft):
    result = runner.invoke(app, ["info", "-a", "aircraft", "-d", str(aircraft), "--level", "wing"])
    assert result.exit_code == 2 and "--level must be one of" in result.output


def test_info_reports_counts_and_problems(aircraft):
    result = runner.invoke(app, ["info", "-a", "aircraft", "-d", str(aircraft), "--level", "family", "--per-class"])
    assert result.exit_code == 0, result.output
    assert "trainval (train): 12 images, 3 classes" in result.output and "F/A-18" in result.output
    next((aircraft / "data" / "images").iterdir()).unlink()
    broken = runner.invoke(app, ["info", "-a", "aircraft", "-d", str(aircraft)])
    assert broken.exit_code == 1 and "1 problem(s):" in broken.output and "missing file" in broken.output


def test_convert_command_summary(aircraft, tmp_path):
    result = runner.invoke(
        app,
        [
            "convert",
            "-a",
            "aircraft",
            "-d",
            str(aircraft),
            "-o",
            str(tmp_path / "o"),
            "--split",
            "test",
            "--mode",
            "copy",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "test: 6 images in 3 class folders" in result.output and "6 placed (copy)" in result.output
    bad_mode = runner.invoke(
        app, ["convert", "-a", "aircraft", "-d", str(aircraft), "-o", str(tmp_path / "p"), "--mode", "teleport"]
    )
    assert bad_mode.exit_code == 2 and "--mode must be one of" in bad_mode.output


@pytest.mark.e2e
def test_train_from_the_sample_config_prints_only_its_own_lines(tmp_path, base, cache):
    """`fgvctune train -c configs/sample.yaml` trains with the file's keys, the flags given over them. Without
    --verbose MindSpore's and MindCV's messages stay hidden (MindCV warns about its weight decay filter whenever
    it builds an optimizer): every line is one of fgvctune's."""
    folder = tmp_path / "run"
    result = fgvctune(
        *("train", "-c", "configs/sample.yaml", "--ckpt-path", str(base), "--no-pretrained", "--cache-dir", cache),
        *("--epoch-size", "1", "--image-resize", "32", "-o", str(folder)),
        log=tmp_path / "train.log",
    )
    assert result.returncode == 0, result.stdout[-2000:]
    written = yaml.safe_load((folder / "config.yaml").read_text())
    from_file = yaml.safe_load((REPO / "configs" / "sample.yaml").read_text())
    assert {k: written[k] for k in from_file} == {**from_file, "epoch_size": 1, "image_resize": 32}
    own = ("data: ", "model: ", "strategy: ", "epoch 1/1 ", "report: ", "best val top-1 ")
    assert [line for line in result.stdout.splitlines() if not line.startswith(own)] == []


def fake_run(folder, labels: str):
    """A run folder as far as eval, predict, export and layers read it before any MindSpore work."""
    from conftest import SAMPLE
    from fgvctune.config import dump_yaml, resolve

    folder.mkdir()
    (folder / "config.yaml").write_text(dump_yaml(resolve(adapter="aircraft", data_dir=str(SAMPLE))))
    (folder / "labels.csv").write_bytes(labels.encode("latin-1"))
    (folder / "best.ckpt").write_bytes(b"")
    return folder


ROW = "{path}:3: expected a class id (0, 1, ...) and its name, got "


@pytest.mark.parametrize(
    "labels, message",
    [
        ("ident,name\n0,a\n", "{path}:1: a label map's header is id,name,folder, got ['ident', 'name']"),
        ("id,name,folder\n0,a,a\nx,b,b\n", ROW + "{{'id': 'x', 'name': 'b', 'folder': 'b'}}"),
        ("id,name,folder\n0,a,a\n1\n", ROW + "{{'id': '1', 'name': None, 'folder': None}}"),
        ("id,name,folder\n0,caf\xe9,a\n", "{path}: not a label map (UTF-8 CSV text)"),
    ],
)
@pytest.mark.parametrize("command", ["eval", "predict", "export", "layers"])
def test_a_damaged_labels_csv_is_one_line_naming_it(tmp_path, labels, message, command):
    """A run's labels.csv with its header renamed, a non-numeric id, a short row or bytes that are not UTF-8: each
    command that reads it stops with one line naming the file and line, and what to do."""
    run = fake_run(tmp_path / "run", labels)
    result = runner.invoke(app, [command, str(run)])
    path = run / "labels.csv"
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        f"error: {message.format(path=path)} (it is the run's; remake it with `fgvctune train` or restore it)"
    ]


@pytest.mark.parametrize("command", ["compare", "lr-find", "train"])
def test_a_folder_a_run_works_in_is_refused_to_a_second_at_once(tmp_path, command):
    """While another process holds a folder (here this one, through the lock a run takes), `train`, `compare` and
    `lr-find` in it stop at once with one line naming the holder; the holder's files are untouched."""
    import os

    from conftest import SAMPLE
    from fgvctune.results.runfiles import LOCK_FILE, working_in

    folder = tmp_path / "busy"
    with working_in(folder):
        before = sorted(folder.iterdir())
        result = runner.invoke(app, [command, "-a", "aircraft", "-d", str(SAMPLE), "-o", str(folder)])
        assert sorted(folder.iterdir()) == before == [folder / LOCK_FILE]
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert line == (
        f"error: {folder} is in use by another run (pid {os.getpid()}) "
        f"(wait for it to finish, or pick another --output; {folder / LOCK_FILE} names its command)"
    )
    assert not folder.exists()  # the holder made the folder and wrote nothing in it: removed, as its lock file
