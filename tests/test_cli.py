"""The command line: fast help, one-line errors, the data commands end to end, and training from a config file."""

from __future__ import annotations

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
