"""Configuration layering: packaged defaults < --config YAML < flags given; shipped configs resolve."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import REPO
from fgvctune.cli import app
from fgvctune.config import TrainConfig, resolve
from fgvctune.errors import UsageError


def test_layering(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.01\nbatch_size: 8\nfreeze: 7\nlr_mult: [classifier=1.2]\n")
    config = resolve(path, batch_size=4, image_resize=None)
    assert (config.lr, config.batch_size, config.freeze, config.lr_mult) == (0.01, 4, "7", ["classifier=1.2"])
    assert config.image_resize == TrainConfig().image_resize


@pytest.mark.parametrize(
    "text, message",
    [
        ("lrr: 1\n", "{path}: unknown config key 'lrr'"),
        ("lr: fast\n", "{path}: lr needs a number, got 'fast'"),
        ("batch_size: eight\n", "{path}: batch_size needs an integer, got 'eight'"),
        ("skip_bad: 3\n", "{path}: skip_bad needs true or false, got 3"),
        ("model: 3\n", "{path}: model needs text, got 3"),
        ("scale: 0.5\n", "{path}: scale needs a list, got 0.5"),
        ("adapter_options: [level]\n", "{path}: adapter_options needs a mapping, got ['level']"),
        ("freeze: some\n", "{path}: freeze must be a number of blocks or 'all', got 'some'"),
        ("read: sideways\n", "{path}: read must be one of offline, online, got 'sideways'"),
        ("- just a list\n", "{path}: expected a mapping of config keys"),
        ("lr: [1\n", "{path}:2: not valid YAML (expected ',' or ']', but got '<stream end>')"),
        (
            "linear_probe: true\nfreeze: 3\n",
            "--linear-probe already freezes every layer but the classifier; drop --freeze",
        ),
    ],
)
def test_bad_config_names_the_problem(tmp_path, text, message):
    """The whole message: it names the file (and line), the key, what it needs and what it got."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as refused:
        resolve(path)
    assert refused.value.message == message.format(path=path)


def test_an_unknown_key_points_at_the_list_of_keys():
    with pytest.raises(UsageError) as refused:
        resolve(lrr=1)
    assert (refused.value.message, refused.value.hint) == (
        "options: unknown config key 'lrr'",
        "`fgvctune train --help` lists every key",
    )


def test_an_unreadable_config_file_is_named(tmp_path):
    with pytest.raises(UsageError) as refused:
        resolve(tmp_path / "none.yaml")
    assert refused.value.message == f"cannot read config file {tmp_path / 'none.yaml'}: No such file or directory"


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_shipped_configs_resolve(name):
    config = resolve(REPO / "configs" / name)
    assert config.adapter == "aircraft" and config.model


def test_tutorial_config_has_the_tutorials_values():
    config = resolve(REPO / "configs" / "mobilenet_v3_small_aircraft.yaml")
    assert (
        config.model,
        config.batch_size,
        config.image_resize,
        config.auto_augment,
        config.epoch_size,
        config.lr,
        config.pretrained,
    ) == ("mobilenet_v3_small_100", 8, 600, "randaug-m7-mstd0.5", 50, 0.002, True)


def test_every_key_is_a_flag():
    import typer

    train = typer.main.get_command(app).commands["train"]
    flags = {flag for param in train.params for flag in param.opts + param.secondary_opts}
    for name in TrainConfig.__dataclass_fields__:
        if name != "adapter_options":
            assert "--" + name.replace("_", "-") in flags, name
    assert "--no-pretrained" in flags and "--lr" in flags
    help_text = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    assert "Layer-wise rate decay" in help_text


def test_every_key_is_in_the_readmes_configuration_table_and_a_runs_config_file():
    import re

    import yaml

    from fgvctune.config import dump_yaml

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Configuration", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([a-z_0-9]+)`", "".join(line for line in section.splitlines() if line.startswith("| "))))
    assert set(TrainConfig.__dataclass_fields__) <= listed
    assert set(yaml.safe_load(dump_yaml(resolve()))) == set(TrainConfig.__dataclass_fields__)


def test_flags_override_the_file_on_the_command_line(tmp_path):
    from fgvctune.cli.common import resolved_config

    path = Path(tmp_path / "c.yaml")
    path.write_text("adapter: aircraft\nadapter_options: {level: family}\nlr: 0.01\n")

    class Ctx:
        args = ["--crop-box"]

    config = resolved_config(Ctx(), path, {"lr": 0.5, "epoch_size": None})
    assert config.lr == 0.5 and config.adapter_options == {"level": "family", "crop_box": True}


@pytest.mark.parametrize(
    "values, message",
    [
        ({"batch_size": 0}, "batch_size and epoch_size must be at least 1, image_resize at least 8"),
        ({"epoch_size": 0}, "batch_size and epoch_size must be at least 1, image_resize at least 8"),
        ({"image_resize": 7}, "batch_size and epoch_size must be at least 1, image_resize at least 8"),
        ({"lr": 0.0}, "lr must be positive, got 0.0"),
        ({"layer_decay": 0.0}, "layer_decay must be in (0, 1], got 0.0"),
        ({"layer_decay": 1.01}, "layer_decay must be in (0, 1], got 1.01"),
        ({"epoch_size": 3, "unfreeze_after": 3}, "unfreeze_after (3) must be less than epoch_size (3)"),
        ({"lr": True}, "options: lr needs a number, got True"),
        ({"batch_size": False}, "options: batch_size needs an integer, got False"),
        ({"scale": "0.5"}, "options: scale needs a list, got '0.5'"),
        ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps must be at least 1, got 0"),
        ({"clip_value": 0.0}, "clip_value must be positive, got 0.0"),
        ({"ema_decay": 1.0}, "ema_decay must be between 0 and 1, got 1.0"),
        ({"loss_scale": 0.0}, "loss_scale must be positive, got 0.0"),
        ({"ema_warmup": -1}, "ema_warmup must be 0 or more, got -1"),
        ({"drop_rate": 1.0}, "drop_rate must be in [0, 1) (or -1 for the model's own), got 1.0"),
        ({"drop_path_rate": -0.5}, "drop_path_rate must be in [0, 1) (or -1 for the model's own), got -0.5"),
        ({"amp_level": "O4"}, "options: amp_level must be one of O0, O1, O2, O3, got 'O4'"),
        ({"sampler": "even"}, "options: sampler must be one of '', balanced, got 'even'"),
    ],
)
def test_values_at_and_past_the_limits(values, message):
    """Each limit refuses the first value past it, with the whole message, and takes the last value inside it."""
    with pytest.raises(UsageError) as refused:
        resolve(**values)
    assert refused.value.message == message
    inside = {"batch_size": 1, "epoch_size": 1, "image_resize": 8, "lr": 1e-9, "layer_decay": 1.0}
    inside |= {"gradient_accumulation_steps": 1, "clip_value": 1e-9, "ema_decay": 0.99999, "loss_scale": 1e-9}
    inside |= {"drop_rate": 0.0, "drop_path_rate": 0.0, "amp_level": "O3", "sampler": "balanced", "ema_warmup": 0}
    if "unfreeze_after" in values:
        inside = {"epoch_size": 3, "unfreeze_after": 2}
    resolve(**{k: v for k, v in inside.items() if k in values or "unfreeze_after" in values})


@pytest.mark.parametrize(
    "text, expected",
    [("yes", True), ("on", True), ("1", True), ("True", True), ("off", False), ("no", False), ("false", False)],
)
def test_yes_and_no_words_in_a_config_file(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(f"skip_bad: '{text}'\n")
    assert resolve(path).skip_bad is expected


def test_a_tuple_is_taken_as_a_list():
    assert resolve(scale=(0.3, 1.0)).scale == [0.3, 1.0]


def test_file_values_take_the_keys_type(tmp_path):
    """Quoted numbers and whole numbers become the key's type; keys may be written with dashes, as the flags are."""
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1\nmomentum: '0.8'\nbatch-size: '8'\nfreeze: all\n")
    config = resolve(path)
    assert (config.lr, config.momentum, config.batch_size, config.freeze) == (1.0, 0.8, 8, "all")
    assert type(config.lr) is float and type(config.batch_size) is int


def test_linear_probe_alone_is_accepted():
    assert resolve(linear_probe=True).freeze == "0"


def test_a_runs_config_file_keeps_the_key_order_and_readable_text(tmp_path):
    from fgvctune.config import dump_yaml

    text = dump_yaml(resolve(data_dir="données", adapter_options={"level": "family"}))
    assert [line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()] == list(
        TrainConfig.__dataclass_fields__
    )
    assert "data_dir: données" in text.splitlines()
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    assert resolve(path) == resolve(data_dir="données", adapter_options={"level": "family"})


def test_configuration_reference_is_up_to_date():
    """docs/configuration.md lists each key's default, choices and help as config.py has them."""
    import runpy

    render = runpy.run_path(str(REPO / "docs" / "make_configuration.py"))["render"]
    written = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert written == render(), "docs/configuration.md is out of date: run `python docs/make_configuration.py`"
