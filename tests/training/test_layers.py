"""`fgvctune layers` (strategy.layers): a model's blocks under a strategy, and a run's blocks as it trained them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import FAST, SAMPLE, checkpoint
from fgvctune.cli import app
from fgvctune.training.trainer import train

runner = CliRunner()


@pytest.fixture(scope="module")
def frozen_run(tmp_path_factory, base, cache):
    """One epoch at the variant level with --freeze 7, from the base run's weights."""
    folder = tmp_path_factory.mktemp("frozen") / "run"
    train(
        adapter="aircraft",
        data_dir=str(SAMPLE),
        ckpt_path=str(base),
        pretrained=False,
        freeze="7",
        epoch_size=1,
        lr=0.05,
        cache_dir=cache,
        output=folder,
        progress=False,
        **FAST,
    )
    return folder


@pytest.mark.e2e  # trains an epoch (frozen_run)
def test_layers_agrees_with_what_training_froze(frozen_run, base):
    from fgvctune.training.strategy import layers

    plan = layers(str(frozen_run))
    before, after = checkpoint(base), checkpoint(frozen_run / "last.ckpt")
    unchanged = {n for n in plan.trainable + plan.frozen if before[n].tobytes() == after[n].tobytes()}
    assert set(plan.frozen) == unchanged - {"classifier.3.weight", "classifier.3.bias"}
    shown = runner.invoke(app, ["layers", str(frozen_run)])
    assert shown.exit_code == 0, shown.output
    lines = {line.split()[1]: line.split()[3] for line in shown.output.splitlines()[1:18]}
    assert [lines[f"features.{i}"] for i in (0, 1, 3, 6)] == ["no"] * 4
    assert lines["features.7"] == "yes" and lines["features.2"] == "-"


def test_layers_shows_what_trains_and_each_blocks_rate():
    result = runner.invoke(
        app,
        [
            *("layers", "mobilenet_v3_small_100", "--freeze", "3", "--lr-mult", "classifier=2"),
            *("--layer-decay", "0.5", "--head-lr-mult", "3"),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = {}
    for line in lines[1:-1]:
        index, rest = line.split(maxsplit=1)
        prefix, params, trainable, rate = rest.rsplit(maxsplit=3)
        rows[prefix.strip()] = (index, trainable, rate)
    for i in range(17):
        index, trainable, rate = rows[f"features.{i}"]
        if i in (2, 16):
            assert (trainable, rate) == ("-", "-")  # an activation and the pooling: no parameters
        elif i < 3:
            assert (trainable, rate) == ("no", "-")
        else:
            assert (trainable, rate) == ("yes", f"{0.5 ** (17 - i):g}"), i
    assert rows["classifier.0, classifier.3"] == ("-", "yes", "6")  # the head's 3, the pattern's 2 on top
    assert lines[-1].startswith("17 feature blocks; classifier classifier.3;")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--layer-decay", "5"], "layer_decay must be in (0, 1], got 5.0"),
        (["--head-lr-mult", "-1"], "head_lr_mult must be more than 0, got -1.0"),
        (["--freeze", "x"], "freeze"),
    ],
)
def test_layers_refuses_what_training_would_refuse_in_one_line(flags, message):
    result = runner.invoke(app, ["layers", "mobilenet_v3_small_100", *flags])
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
