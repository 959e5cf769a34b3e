"""The command line: fast help, one-line errors, and the data commands end to end."""

from __future__ import annotations

from typer.testing import CliRunner

from conftest import run_cli
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
