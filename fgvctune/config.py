"""Training configuration: packaged defaults < --config YAML < flags that were given.

Keys are MindCV's names (`image_resize`, `epoch_size`, `lr`, ...); each is also a flag with dashes.

Longer than 400 lines because TrainConfig's fields (about 200 lines: each key's default, help, panel and limits) are the
one source of the flags, the YAML keys and the docs table, and the checks of a value read from a file or a flag
belong beside the fields they read.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from fgvctune.errors import UsageError
from fgvctune.fileio import read_user_text


def option(default, help: str, panel: str = "Training", **extra):
    """A config key: its default, its help text, and the --help panel its flag appears in.

    `extra` may give `choices` (the values allowed), `limits` (a number's range: `Limits`) and `pair=True` (a
    [low, high] list of two numbers, each within `limits`). They are checked where the config is read, so a value
    MindSpore or MindCV would refuse when building the pipeline or the graph stops there, named, instead.
    """
    kind = {"default_factory": default} if callable(default) else {"default": default}
    return field(**kind, metadata={"help": help, "panel": panel, **extra})


@dataclass(frozen=True)
class Limits:
    """Where a number may lie: from low to high, each end included unless open."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, value) -> bool:
        above_low = value > self.low if self.open_low else value >= self.low
        below_high = value < self.high if self.open_high else value <= self.high
        return above_low and below_high

    def __str__(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.high == math.inf:
            return f"{'more than' if self.open_low else 'at least'} {low}"
        return f"in {'(' if self.open_low else '['}{low}, {high}{')' if self.open_high else ']'}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def at_least(low: float) -> Limits:
    return Limits(low)


def above(low: float) -> Limits:
    return Limits(low, open_low=True)


PROBABILITY = Limits(0, 1)


@dataclass
class TrainConfig:
    # data
    adapter: str = option("", "Dataset adapter (`fgvctune adapters`).", "Data")
    data_dir: str = option("", "The dataset's folder.", "Data")
    adapter_options: dict = option(dict, "Adapter options, e.g. {level: family} (flags: after the others).", "Data")
    train_split: str = option("", "Split to train on (default: the adapter's, e.g. trainval).", "Data")
    val_split: str = option("", "Split to evaluate on (default: the adapter's, e.g. test).", "Data")
    read: str = option(
        "offline",
        "offline: a class tree read by create_dataset; online: the mappable source.",
        "Data",
        choices=("offline", "online"),
    )
    in_memory: bool = option(False, "Online reading: keep every encoded image in memory.", "Data")
    downscale: bool = option(
        False,
        "Read images downscaled to the short side training needs (image_resize / crop_pct): offline, a cached "
        "downscaled class tree; online, Pillow's JPEG draft mode. `eval` always reads full-size images.",
        "Data",
    )
    cache_dir: str = option(
        "", "Where class trees and converted weights are cached (default ~/.cache/fgvctune).", "Data"
    )
    skip_bad: bool = option(False, "Leave bad samples out (listed in skipped.txt) instead of stopping.", "Data")
    dedupe: bool = option(
        False, "Leave training images that are (near) copies of evaluation images out (listed in skipped.txt).", "Data"
    )
    exclude: str = option(
        "",
        "A file of sample ids to leave out: doctor.csv, or any CSV (an id column) or text (one id a line) naming "
        "them as doctor.csv and pred.txt do; listed in skipped.txt.",
        "Data",
    )
    relabel: str = option(
        "",
        "A CSV of sample ids and new labels (columns id,label; or doctor.csv, whose label issues take their "
        "suggested label); listed in relabelled.csv.",
        "Data",
    )
    num_parallel_workers: int = option(2, "Threads of the input pipeline.", "Data", limits=at_least(1))
    sampler: str = option(
        "",
        "balanced: each epoch draws every class equally often (with replacement, repeatable by seed); "
        "read online. Default: every image once per epoch.",
        "Data",
        choices=("", "balanced"),
    )
    # model and weights
    model: str = option("mobilenet_v3_small_100", "MindCV model name.", "Model")
    pretrained: bool = option(True, "Start from MindCV's ImageNet weights (downloaded).", "Model")
    ckpt_path: str = option(
        "", "Start from a local MindSpore checkpoint, or a PyTorch .safetensors/.pth/.pt/.bin file, instead.", "Model"
    )
    num_classes: int = option(
        0, "Class count; taken from the data (0), a contradicting value is an error.", "Model", limits=at_least(0)
    )
    drop_rate: float = option(
        -1.0, "Classifier dropout for models whose MindCV constructor takes it (-1: the model's).", "Model"
    )
    drop_path_rate: float = option(
        -1.0, "Stochastic depth for models whose MindCV constructor takes it (-1: the model's).", "Model"
    )
    # augmentation and batching (MindCV's create_transforms / create_loader)
    image_resize: int = option(224, "Image size fed to the network.", "Augmentation", limits=at_least(8))
    scale: list = option(
        lambda: [0.08, 1.0],
        "RandomResizedCrop scale range.",
        "Augmentation",
        pair=True,
        limits=Limits(0, 1),
    )
    ratio: list = option(
        lambda: [0.75, 1.333], "RandomResizedCrop aspect ratio range.", "Augmentation", pair=True, limits=above(0)
    )
    hflip: float = option(0.5, "Horizontal flip probability.", "Augmentation", limits=PROBABILITY)
    vflip: float = option(0.0, "Vertical flip probability.", "Augmentation", limits=PROBABILITY)
    color_jitter: float = option(0.0, "Colour jitter strength (0: off).", "Augmentation", limits=at_least(0))
    auto_augment: str = option("", "e.g. randaug-m7-mstd0.5, autoaug, trivialaugwide.", "Augmentation")
    interpolation: str = option(
        "bilinear",
        "Resize interpolation.",
        "Augmentation",
        choices=("bilinear", "bicubic", "nearest", "area", "antialias", "linear", "cubic", "pilcubic"),  # MindSpore's
    )
    crop_pct: float = option(
        0.875, "Evaluation centre-crop fraction.", "Augmentation", limits=Limits(0, 2, open_low=True)
    )  # above 1, the resized image is smaller than the crop, which pads it (MindSpore's CenterCrop)
    re_prob: float = option(0.0, "Random erasing probability.", "Augmentation", limits=PROBABILITY)
    mixup: float = option(0.0, "Mixup alpha (0: off).", "Augmentation", limits=at_least(0))
    cutmix: float = option(0.0, "CutMix alpha (0: off).", "Augmentation", limits=at_least(0))
    cutmix_prob: float = option(1.0, "Probability of CutMix per batch when on.", "Augmentation", limits=PROBABILITY)
    batch_size: int = option(32, "Images per step.", "Augmentation", limits=at_least(1))
    # optimisation
    epoch_size: int = option(10, "Epochs.", limits=at_least(1))
    lr: float = option(0.002, "Base learning rate (fine-tuning: a tenth of pretraining's, or less).", limits=above(0))
    opt: str = option(
        "momentum",
        "Optimizer: momentum, sgd, nesterov, adam, adamw, lion, nadam, adan, rmsprop, adagrad, lamb.",
        choices=("momentum", "sgd", "nesterov", "adam", "adamw", "lion", "nadam", "adan", "rmsprop", "adagrad", "lamb"),
    )
    momentum: float = option(0.9, "Momentum, for optimizers that have one.", limits=PROBABILITY)
    nesterov: bool = option(False, "Nesterov momentum.")
    weight_decay: float = option(1e-5, "Weight decay.", limits=at_least(0))
    weight_decay_filter: str = option(
        "norm_and_bias",
        "norm_and_bias: no decay on biases and norm layers; disable.",
        choices=("norm_and_bias", "disable"),
    )
    scheduler: str = option(
        "cosine_decay",
        "Rate schedule: cosine_decay, constant, step_decay, exponential_decay, one_cycle, ... (MindCV's).",
        choices=(
            "cosine_decay",
            "warmup_cosine_decay",
            "constant",
            "step_decay",
            "multi_step_decay",
            "exponential_decay",
            "polynomial_decay",
            "one_cycle",
            "cyclic",
        ),
    )
    min_lr: float = option(1e-6, "Final learning rate of cosine decay.", limits=at_least(0))
    warmup_epochs: int = option(0, "Linear warm-up epochs.", limits=at_least(0))
    warmup_factor: float = option(0.01, "Warm-up starts at lr * warmup_factor.", limits=PROBABILITY)
    decay_epochs: int = option(0, "Epochs of decay (0: all epochs after warm-up).", limits=at_least(0))
    decay_rate: float = option(0.9, "Decay rate of step/exponential schedules.", limits=above(0))
    label_smoothing: float = option(0.0, "Label smoothing.", limits=Limits(0, 1, open_high=True))
    class_weights: str = option(
        "", "balanced (inverse class frequency) or a CSV FILE of class name,weight: weights in the loss."
    )
    loss_scale: float = option(1.0, "Loss scale (the starting one when loss_scale_type is dynamic).", limits=above(0))
    loss_scale_type: str = option(
        "fixed",
        "fixed, dynamic (halve on overflow, skipping the step; double after 2000 good steps) or auto "
        "(dynamic when amp_level is not O0).",
        choices=("fixed", "dynamic", "auto"),
    )
    amp_level: str = option(
        "O0",
        "Mixed precision (MindSpore's levels): O0 float32; O1 listed ops, O2 all but norms, O3 all in float16.",
        choices=("O0", "O1", "O2", "O3"),
    )
    gradient_accumulation_steps: int = option(
        1,
        "Update once per this many batches, with their mean gradient (an effective batch that many times larger).",
        limits=at_least(1),
    )
    clip_grad: bool = option(False, "Clip the gradients' global norm to clip_value.")
    clip_value: float = option(15.0, "Largest global gradient norm when clip_grad is on.", limits=above(0))
    ema: bool = option(False, "Keep an exponential moving average of the weights; evaluate and save it as best.")
    ema_decay: float = option(
        0.9999,
        "EMA decay, warmed up as decay * (1 - exp(-updates / ema_warmup)).",
        limits=Limits(0, 1, open_low=True, open_high=True),
    )
    ema_warmup: int = option(
        2000,
        "Updates over which the EMA decay warms up (MindCV's 2000; 0: the full decay from the first update).",
        limits=at_least(0),
    )
    # fine-tuning strategy
    freeze: str = option(
        "0", "Freeze the first N feature blocks, or 'all' of them (`fgvctune layers` shows them).", "Strategy"
    )
    linear_probe: bool = option(
        False, "Train only the final classifier layer (the tutorial's linear probe).", "Strategy"
    )
    lr_mult: list = option(list, "PATTERN=FACTOR: scale the rate of parameters under PATTERN (repeatable).", "Strategy")
    head_lr_mult: float = option(
        1.0,
        "Rate multiplier of the head (what follows the feature blocks, whatever the model names it); "
        "--lr-mult patterns multiply on top.",
        "Strategy",
        limits=above(0),
    )
    layer_decay: float = option(
        1.0,
        "Layer-wise rate decay: block i of L gets lr * decay^(L-i) (1: off).",
        "Strategy",
        limits=Limits(0, 1, open_low=True),
    )
    unfreeze_after: int = option(
        0, "Gradual unfreezing: train only the head for this many epochs first.", "Strategy", limits=at_least(0)
    )
    recipe: str = option(
        "auto",
        "auto: starting from weights (pretrained or ckpt_path) with no lr or opt given, the fine-tuning recipe "
        "fills the keys not given; finetune: always; none: the plain defaults. config.yaml records which ran.",
        "Strategy",
        choices=("auto", "finetune", "none"),
    )
    # evaluation
    tta: str = option(
        "",
        "Test-time augmentation when evaluating the run: flip (the image and its mirror) or crops (five crops).",
        "Evaluation",
        choices=("", "flip", "crops"),
    )
    # the loop
    mode: str = option(
        "graph", "graph (compiled, fast) or pynative (eager, debuggable).", "Run", choices=("graph", "pynative")
    )
    device_target: str = option("CPU", "CPU, GPU or Ascend.", "Run", choices=("CPU", "GPU", "Ascend"))
    seed: int = option(
        42, "Random seed: the same seed gives the same run.", "Run", limits=Limits(0, 2**32 - 1)
    )  # MindSpore's range
    early_stop: int = option(
        0, "Stop after this many epochs without a better val top-1 (0: never).", "Run", limits=at_least(0)
    )
    distribute: bool = option(False, "Data-parallel training under msrun.", "Run")
    scale_lr: bool = option(False, "Distributed: multiply lr by the number of workers.", "Run")
    # tracking
    log_to: str = option(
        "",
        "Also log the run to tensorboard (event files in the run folder), mlflow, or both: tensorboard,mlflow.",
        "Tracking",
    )
    mlflow_uri: str = option(
        "", "MLflow tracking URI (default: MLFLOW_TRACKING_URI, else a SQLite store in ./mlruns).", "Tracking"
    )
    mlflow_experiment: str = option(
        "", "MLflow experiment (default: MLFLOW_EXPERIMENT_NAME, else fgvctune).", "Tracking"
    )

    @property
    def pipeline_workers(self) -> int:
        """num_parallel_workers, at most this machine's cores (MindSpore refuses more): a run made on a larger
        machine evaluates and resumes here as it is."""
        return min(self.num_parallel_workers, os.cpu_count() or 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
LOG_TOOLS = ("tensorboard", "mlflow")  # log_to's tools (training/tracking.py)


MAX_CONFIG_BYTES = 1 << 20  # config files are a few hundred bytes; one this large is something else

# MindCV's auto_augment strings: a policy, then settings joined by "-", each a key and a number (randaug-m7-mstd0.5).
AUTO_AUGMENT = {
    "randaug": {"m": int, "n": int, "w": int, "mstd": float, "mmax": int, "inc": int},
    "autoaug": {"mstd": float},
    "autoaugr": {"mstd": float},
    "3a": {"mstd": float},
    "trivialaugwide": {"m": int},
    "augmix": {"m": int, "w": int, "d": int, "a": float},
}


def parse_yaml(text: str, where: str):
    """The YAML document in `text` ({} when empty) and its root node; a UsageError naming `where` and the line
    for anything that is not plain YAML data. Aliases are refused: a few hundred bytes of nested ones expand to
    gigabytes ("billion laughs"), and no file fgvctune reads has a use for them."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                line = self.peek_event().start_mark.line + 1
                raise UsageError(f"{where}:{line}: YAML aliases (*name) are not allowed")
            return super().compose_node(parent, index)

    loader = None
    try:
        loader = NoAliasLoader(text)
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None) or {}, node
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise UsageError(f"{where}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except RecursionError:
        raise UsageError(f"{where}: nested too deeply to read") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(path: str | Path) -> tuple[dict, dict[str, int]]:
    """A config file's mapping, and the line each of its keys is on."""
    path = Path(path)
    text = read_user_text(path, MAX_CONFIG_BYTES, "config file")
    data, node = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of config keys")
    lines = {str(key.value): key.start_mark.line + 1 for key, _ in node.value} if data else {}
    return data, lines


def resolve(config_file: str | Path | None = None, **given) -> TrainConfig:
    """Defaults, then the YAML file, then explicit values (None means 'not given')."""
    values: dict = {}
    if config_file:
        values.update(_checked(*load_yaml(config_file), f"{config_file}"))
    values.update(_checked({k: v for k, v in given.items() if v is not None}, {}, "options"))
    config = TrainConfig(**with_recipe(values))
    _validate(config)
    return config


# The fine-tuning recipe: what a run starting from weights uses where no rate was given. Measured against the plain
# defaults on benchmarks/parity.py's transfer tasks (docs/performance.md, "The fine-tuning recipe").
FINETUNE_RECIPE = {"opt": "adamw", "lr": 0.0003, "head_lr_mult": 10.0, "scale": [0.35, 1.0]}
RATE_KEYS = {"lr", "opt"}  # either given: the user chose the optimisation, and the recipe stays out


def with_recipe(values: dict) -> dict:
    """The given `values` over the fine-tuning recipe where it applies (every key given wins), with `recipe` set
    to the one that ran: finetune or none."""
    recipe = values.get("recipe", "auto")
    if recipe == "auto":
        from_weights = values.get("pretrained", True) or values.get("ckpt_path")
        recipe = "finetune" if from_weights and not RATE_KEYS & values.keys() else "none"
    if recipe == "finetune":
        values = {**FINETUNE_RECIPE, **values}
    return {**values, "recipe": recipe}


def recipe_keys(config: TrainConfig) -> dict:
    """The keys of the fine-tuning recipe this run took from it (the ones the user gave are not), for its log."""
    if config.recipe != "finetune":
        return {}
    return {k: v for k, v in FINETUNE_RECIPE.items() if getattr(config, k) == v}


def _checked(values: dict, lines: dict[str, int], origin: str) -> dict:
    out = {}
    for key, value in values.items():
        where = f"{origin}:{lines[str(key)]}" if str(key) in lines else origin
        name = str(key).replace("-", "_")
        if name not in FIELDS:
            raise UsageError(f"{where}: unknown config key {key!r}", hint="`fgvctune train --help` lists every key")
        out[name] = _coerce(name, value, where)
    return out


LARGEST_INT = 2**32 - 1  # the largest any integer key takes (a seed); larger ones overflow MindSpore's
KIND_WORDS = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "a mapping",
}


def _coerce(name: str, value, where: str):
    """The value in the key's type, or a UsageError naming where it came from (a file and line, or 'options')."""
    default = FIELDS[name].default
    kind = type(default) if default is not dataclasses.MISSING else type(FIELDS[name].default_factory())
    if name == "freeze":
        value = str(value)
        if value != "all" and not value.isdigit():
            raise UsageError(f"{where}: freeze must be a number of blocks or 'all', got {value!r}")
        return value
    try:
        if kind is bool and isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "on")
        if kind is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = float(value)
        if kind is int and isinstance(value, (int, str)) and not isinstance(value, bool):
            value = int(value)
    except (ValueError, OverflowError):  # OverflowError: an integer of hundreds of digits as a float
        raise UsageError(f"{where}: {name} needs {KIND_WORDS[kind]}, got {value!r}") from None
    if name in ("opt", "interpolation") and isinstance(value, str):
        value = value.lower()  # MindCV reads both in any case
    if kind is list and isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):  # True is an int to Python
        raise UsageError(f"{where}: {name} needs {KIND_WORDS[kind]}, got {value!r}")
    if kind is float and not math.isfinite(value):  # NaN would train NaN losses to the end, "successfully"
        raise UsageError(f"{where}: {name} needs a finite number, got {value!r}")
    if kind is int and abs(value) > LARGEST_INT:
        raise UsageError(f"{where}: {name} must be at most {LARGEST_INT:,}, got {value!r}")
    metadata = FIELDS[name].metadata
    if metadata.get("pair"):
        return _pair(name, value, where)
    limits = metadata.get("limits")
    if limits and value not in limits:
        raise UsageError(f"{where}: {name} must be {limits}, got {value!r}")
    choices = metadata.get("choices")
    if choices and value not in choices:
        shown = ", ".join(choice or "''" for choice in choices)
        raise UsageError(f"{where}: {name} must be one of {shown}, got {value!r}")
    if name == "auto_augment" and value:
        _check_auto_augment(value, where)
    if name == "log_to":
        value = ",".join(dict.fromkeys(t.strip().lower() for t in value.split(",") if t.strip()))
        unknown = [t for t in value.split(",") if t and t not in LOG_TOOLS]
        if unknown:
            raise UsageError(f"{where}: log_to has no tool {unknown[0]!r}; choose from {', '.join(LOG_TOOLS)}")
    return value


def _pair(name: str, value: list, where: str) -> list:
    """A [low, high] range: two finite numbers within the key's limits, low first."""
    limits = FIELDS[name].metadata["limits"]
    numbers = [float(v) for v in value if isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v)]
    if len(value) != 2 or len(numbers) != 2 or not all(v in limits for v in numbers) or numbers[0] > numbers[1]:
        raise UsageError(f"{where}: {name} needs two numbers [low, high], each {limits}, low <= high; got {value!r}")
    if numbers[1] <= 0:
        raise UsageError(f"{where}: {name} needs a high end above 0, got {value!r}")
    return numbers


def _finite(number) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer too large for a float
        return False


def _check_auto_augment(value: str, where: str) -> None:
    import re

    policy, *settings = value.split("-")
    if policy not in AUTO_AUGMENT:
        raise UsageError(
            f"{where}: auto_augment must start with one of {', '.join(AUTO_AUGMENT)}, got {value!r}",
            hint="e.g. randaug-m7-mstd0.5",
        )
    known = AUTO_AUGMENT[policy]
    for setting in settings:
        parts = re.split(r"(\d.*)", setting)  # as MindCV splits it: the key, then from the first digit on
        if len(parts) < 2:
            continue  # MindCV passes over a setting without a number
        key, number = parts[:2]
        try:
            fits = key in known and math.isfinite(known[key](number))
        except (ValueError, OverflowError):
            fits = False
        if not fits:
            raise UsageError(
                f"{where}: auto_augment {policy} has no setting {setting!r}",
                hint=f"its settings are a key and a number: {', '.join(k + '<number>' for k in known)}",
            )
        if policy == "randaug" and key == "w" and int(number) != 0:
            raise UsageError(f"{where}: auto_augment randaug has only the op weights w0, got {setting!r}")


def _validate(config: TrainConfig) -> None:
    """What depends on several keys (each key's own limits are checked as it is read)."""
    if config.linear_probe and config.freeze != "0":
        raise UsageError("--linear-probe already freezes every layer but the classifier; drop --freeze")
    for name in ("drop_rate", "drop_path_rate"):
        value = getattr(config, name)
        if value != -1.0 and not 0 <= value < 1:
            raise UsageError(f"{name} must be in [0, 1) (or -1 for the model's own), got {value}")
    if config.unfreeze_after >= config.epoch_size:
        raise UsageError(f"unfreeze_after ({config.unfreeze_after}) must be less than epoch_size ({config.epoch_size})")
    if config.scheduler in ("one_cycle", "cyclic") and config.warmup_epochs:
        raise UsageError(f"the {config.scheduler} schedule has no warm-up: drop warmup_epochs")
    if config.scheduler == "one_cycle" and config.min_lr <= 0:
        raise UsageError("the one_cycle schedule ends at min_lr, which must be more than 0")


def dump_yaml(config: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
