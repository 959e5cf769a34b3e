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


def refusal(path: Path, text: str) -> str:
    """The message of the UsageError a config file holding `text` gets."""
    path.write_text(text)
    with pytest.raises(UsageError) as refused:
        resolve(path)
    return refused.value.message


@pytest.mark.parametrize(
    "text, message",
    [
        ("lrr: 1\n", "{path}:1: unknown config key 'lrr'"),
        ("lr: fast\n", "{path}:1: lr needs a number, got 'fast'"),
        ("batch_size: eight\n", "{path}:1: batch_size needs an integer, got 'eight'"),
        ("skip_bad: 3\n", "{path}:1: skip_bad needs true or false, got 3"),
        ("model: 3\n", "{path}:1: model needs text, got 3"),
        ("scale: 0.5\n", "{path}:1: scale needs a list, got 0.5"),
        ("adapter_options: [level]\n", "{path}:1: adapter_options needs a mapping, got ['level']"),
        ("freeze: some\n", "{path}:1: freeze must be a number of blocks or 'all', got 'some'"),
        ("read: sideways\n", "{path}:1: read must be one of offline, online, got 'sideways'"),
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
    assert refusal(path, text) == message.format(path=path)


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


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs" / "spaces").glob("*.yaml")))
def test_shipped_search_spaces_read(name):
    """configs/spaces/: `fgvctune tune --space` files, each a key of the config with a range or choices."""
    from fgvctune.tuning import read_space

    assert {d.key for d in read_space(REPO / "configs" / "spaces" / name)} == {
        "lr",
        "freeze",
        "image_resize",
        "label_smoothing",
    }


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


def test_every_key_is_in_the_configuration_page_and_a_runs_config_file():
    import re

    import yaml

    from fgvctune.config import dump_yaml

    page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    keys = [line.split("|")[1] for line in page.splitlines() if line.startswith("| `")]  # the tables' first column
    listed = set(re.findall(r"`([a-z_0-9]+)`", "".join(keys)))
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
        ({"batch_size": 0}, "options: batch_size must be at least 1, got 0"),
        ({"epoch_size": 0}, "options: epoch_size must be at least 1, got 0"),
        ({"image_resize": 7}, "options: image_resize must be at least 8, got 7"),
        ({"lr": 0.0}, "options: lr must be more than 0, got 0.0"),
        ({"layer_decay": 0.0}, "options: layer_decay must be in (0, 1], got 0.0"),
        ({"layer_decay": 1.01}, "options: layer_decay must be in (0, 1], got 1.01"),
        ({"epoch_size": 3, "unfreeze_after": 3}, "unfreeze_after (3) must be less than epoch_size (3)"),
        ({"lr": True}, "options: lr needs a number, got True"),
        ({"batch_size": False}, "options: batch_size needs an integer, got False"),
        ({"scale": "0.5"}, "options: scale needs a list, got '0.5'"),
        ({"gradient_accumulation_steps": 0}, "options: gradient_accumulation_steps must be at least 1, got 0"),
        ({"clip_value": 0.0}, "options: clip_value must be more than 0, got 0.0"),
        ({"ema_decay": 1.0}, "options: ema_decay must be in (0, 1), got 1.0"),
        ({"loss_scale": 0.0}, "options: loss_scale must be more than 0, got 0.0"),
        ({"ema_warmup": -1}, "options: ema_warmup must be at least 0, got -1"),
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


SCALE = "{path}:1: scale needs two numbers [low, high], each in [0, 1], low <= high; got "


@pytest.mark.parametrize(
    "text, message",
    [
        ("scale: [a, b]\n", SCALE + "['a', 'b']"),
        ("scale: [0.9, 0.1]\n", SCALE + "[0.9, 0.1]"),
        ("ratio: [0.75]\n", "{path}:1: ratio needs two numbers [low, high], each more than 0, low <= high; got [0.75]"),
        ("lr: 0.1\nnum_parallel_workers: 0\n", "{path}:2: num_parallel_workers must be at least 1, got 0"),
        ("hflip: 5\n", "{path}:1: hflip must be in [0, 1], got 5.0"),
        ("seed: -1\n", "{path}:1: seed must be in [0, 4294967295], got -1"),
        ("lr: .nan\n", "{path}:1: lr needs a finite number, got nan"),
        ("momentum: -.inf\n", "{path}:1: momentum needs a finite number, got -inf"),
        ("re_prob: 1.5\n", "{path}:1: re_prob must be in [0, 1], got 1.5"),
        ("label_smoothing: 1\n", "{path}:1: label_smoothing must be in [0, 1), got 1.0"),
        (
            "interpolation: bad\n",
            "{path}:1: interpolation must be one of bilinear, bicubic, nearest, area, antialias, "
            "linear, cubic, pilcubic, got 'bad'",
        ),
        ("scale: [0, 0]\n", "{path}:1: scale needs a high end above 0, got [0, 0]"),
        ("crop_pct: 2.5\n", "{path}:1: crop_pct must be in (0, 2], got 2.5"),
        ("auto_augment: randaug-m7-w1\n", "{path}:1: auto_augment randaug has only the op weights w0, got 'w1'"),
        ("lr: " + "9" * 400 + "\n", "{path}:1: lr needs a number, got 999…"),
        ("scale: [0.5, " + "9" * 400 + "]\n", "{path}:1: scale needs two numbers…"),
        ("batch_size: 4294967296\n", "{path}:1: batch_size must be at most 4,294,967,295, got 4294967296"),
        (
            "scheduler: cosine\n",
            "{path}:1: scheduler must be one of cosine_decay, warmup_cosine_decay, constant, "
            "step_decay, multi_step_decay, exponential_decay, polynomial_decay, one_cycle, cyclic, got 'cosine'",
        ),
        ("auto_augment: randaug-m7-x2\n", "{path}:1: auto_augment randaug has no setting 'x2'"),
        (
            "auto_augment: randomaug\n",
            "{path}:1: auto_augment must start with one of randaug, autoaug, autoaugr, 3a, "
            "trivialaugwide, augmix, got 'randomaug'",
        ),
        ("scheduler: one_cycle\nwarmup_epochs: 1\n", "the one_cycle schedule has no warm-up: drop warmup_epochs"),
        ("1: 2\n", "{path}:1: unknown config key 1"),
    ],
)
def test_values_mindspore_would_refuse_are_refused_where_the_config_is_read(tmp_path, text, message):
    """Each of these reached MindSpore or MindCV and stopped the run with a traceback at pipeline or graph build
    (or, NaN, trained NaN losses to a successful exit)."""
    path = tmp_path / "c.yaml"
    expected, refused = message.format(path=path), refusal(path, text)
    if expected.endswith("…"):  # a value of hundreds of digits, cut short in the message
        assert refused.startswith(expected[:-1]) and len(refused) == 300
    else:
        assert refused == expected


def test_values_as_mindcv_reads_them_are_kept(tmp_path):
    """MindCV reads optimizer and interpolation names in any case and passes over a setting without a number;
    MindSpore's crop scale starts at 0 and its centre crop pads: configs written for it keep working."""
    path = tmp_path / "c.yaml"
    path.write_text("opt: AdamW\ninterpolation: BICUBIC\nauto_augment: randaug-m9-inc\nscale: [0, 1]\ncrop_pct: 1.1\n")
    config = resolve(path)
    assert (config.opt, config.interpolation, config.scale, config.crop_pct) == ("adamw", "bicubic", [0.0, 1.0], 1.1)
    assert config.auto_augment == "randaug-m9-inc"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_infinite_flags_are_refused(value):
    result = CliRunner().invoke(app, ["train", "-a", "folder", "-d", ".", "--lr", value])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: options: lr needs a finite number, got {float(value)!r}"]


def test_more_pipeline_workers_than_cores_run_with_the_cores_there_are():
    """MindSpore refuses more workers than cores: a run configured on a larger machine still evaluates here."""
    import os

    config = resolve(num_parallel_workers=os.cpu_count() + 1)
    assert config.num_parallel_workers == os.cpu_count() + 1  # as written, for the larger machine
    assert config.pipeline_workers == os.cpu_count()
    assert resolve(num_parallel_workers=1).pipeline_workers == 1


def test_yaml_aliases_are_refused_before_they_expand(tmp_path):
    """A "billion laughs" file: nine levels of nine aliases would be 9**9 strings (GBs); it stops at the first alias."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert len(path.read_bytes()) < 1000
    with pytest.raises(UsageError) as refused:
        resolve(path)
    assert refused.value.message == f"{path}:2: YAML aliases (*name) are not allowed"
    from conftest import bounded_cli

    result = bounded_cli("train", "-c", str(path))  # under `ulimit -v 4000000`, as a user would run it
    assert result.returncode == 2 and result.stderr == f"error: {path}:2: YAML aliases (*name) are not allowed\n"


def test_a_config_file_that_is_not_utf8_or_too_deep_is_one_line(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("lr: 0.1\nmodel: café\n".encode("latin-1"))
    with pytest.raises(UsageError) as refused:
        resolve(latin1)
    assert (refused.value.message, refused.value.hint) == (f"{latin1}:2: not UTF-8 text", "save the file as UTF-8")
    deep = tmp_path / "deep.yaml"
    deep.write_text("lr: " + "[" * 100_000 + "\n")
    with pytest.raises(UsageError) as refused:
        resolve(deep)
    assert refused.value.message == f"{deep}: nested too deeply to read"


def test_every_error_message_shows_a_long_value_cut_short(tmp_path):
    """A value of a megabyte in a config file is quoted in a message of at most 300 characters, its start (the file
    and key) and its end kept."""
    path = tmp_path / "c.yaml"
    path.write_text("model: x\nlr: [" + "1, " * 300_000 + "2]\n")
    with pytest.raises(UsageError) as refused:
        resolve(path)
    message = refused.value.message
    assert len(message) == 300 and message.startswith(f"{path}:2: lr needs a number, got [1, 1")
    assert message.endswith("1, 1, 2]") and "…" in message
    path.write_text("lr: '" + "9" * 1_000_000 + "x'\n")
    result = CliRunner().invoke(app, ["train", "-c", str(path)])
    assert result.exit_code == 2 and len(result.output.strip()) < 320
    assert result.output.startswith(f"error: {path}:1: lr needs a number, got '999") and result.output.endswith("9x'\n")


def test_a_value_holding_line_breaks_is_shown_on_one_line():
    """Messages quote names from the user's files (a column, a tensor, a member), which may hold any character."""
    from fgvctune.errors import DataError

    error = DataError("labels.csv has no column 'a\nb\r\u2028c'", hint="name it\twith --label-column")
    assert error.message == "labels.csv has no column 'a\\nb\\r\\u2028c'"
    assert error.hint == "name it\\twith --label-column"
    screenshot = "Screenshot 2026-12-05 at 10.00.00\u202fAM.png"  # macOS's narrow no-break space: printed as it is
    assert DataError(f"missing file {screenshot}").message == f"missing file {screenshot}"


def test_the_fine_tuning_recipe_fills_what_a_run_from_weights_was_not_given(tmp_path):
    from fgvctune.config import FINETUNE_RECIPE

    recipe = resolve(ckpt_path="base.ckpt")
    assert recipe.recipe == "finetune"
    assert (
        {k: getattr(recipe, k) for k in FINETUNE_RECIPE}
        == FINETUNE_RECIPE
        != {k: getattr(TrainConfig(), k) for k in FINETUNE_RECIPE}
    )
    assert resolve().recipe == "finetune"  # pretrained: MindCV's weights
    plain = {k: getattr(TrainConfig(), k) for k in FINETUNE_RECIPE}
    for given in ({"pretrained": False}, {"ckpt_path": "base.ckpt", "lr": 0.01}, {"opt": "adamw"}, {"recipe": "none"}):
        config = resolve(**given)
        assert config.recipe == "none", given
        assert {k: getattr(config, k) for k in FINETUNE_RECIPE if k not in given} == {
            k: v for k, v in plain.items() if k not in given
        }
    (tmp_path / "c.yaml").write_text("lr: 0.01\n")  # a rate in a config file is given too
    assert resolve(tmp_path / "c.yaml").recipe == "none"
    forced = resolve(pretrained=False, recipe="finetune")
    assert {k: getattr(forced, k) for k in FINETUNE_RECIPE} == FINETUNE_RECIPE
    for key in FINETUNE_RECIPE:  # every key given wins over the recipe's
        assert getattr(resolve(**{key: getattr(TrainConfig(), key)}), key) == getattr(TrainConfig(), key)


def test_a_run_with_the_recipe_resumes_with_it(tmp_path):
    from fgvctune.config import dump_yaml

    config = resolve(ckpt_path="base.ckpt")
    (tmp_path / "config.yaml").write_text(dump_yaml(config))
    assert "recipe: finetune" in (tmp_path / "config.yaml").read_text()  # the file says which recipe ran
    assert resolve(tmp_path / "config.yaml") == config
