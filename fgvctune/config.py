"""Training configuration: packaged defaults < --config YAML < flags that were given.

Keys are MindCV's names (`image_resize`, `epoch_size`, `lr`, ...); each is also a flag with dashes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from fgvctune.errors import UsageError


def option(default, help: str, panel: str = "Training", **extra):
    """A config key: its default, its help text, and the --help panel its flag appears in."""
    kind = {"default_factory": default} if callable(default) else {"default": default}
    return field(**kind, metadata={"help": help, "panel": panel, **extra})


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
    num_parallel_workers: int = option(2, "Threads of the input pipeline.", "Data")
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
    num_classes: int = option(0, "Class count; taken from the data (0), a contradicting value is an error.", "Model")
    drop_rate: float = option(
        -1.0, "Classifier dropout for models whose MindCV constructor takes it (-1: the model's).", "Model"
    )
    drop_path_rate: float = option(
        -1.0, "Stochastic depth for models whose MindCV constructor takes it (-1: the model's).", "Model"
    )
    # augmentation and batching (MindCV's create_transforms / create_loader)
    image_resize: int = option(224, "Image size fed to the network.", "Augmentation")
    scale: list = option(lambda: [0.08, 1.0], "RandomResizedCrop scale range.", "Augmentation")
    ratio: list = option(lambda: [0.75, 1.333], "RandomResizedCrop aspect ratio range.", "Augmentation")
    hflip: float = option(0.5, "Horizontal flip probability.", "Augmentation")
    vflip: float = option(0.0, "Vertical flip probability.", "Augmentation")
    color_jitter: float = option(0.0, "Colour jitter strength (0: off).", "Augmentation")
    auto_augment: str = option("", "e.g. randaug-m7-mstd0.5, autoaug, trivialaugwide.", "Augmentation")
    interpolation: str = option("bilinear", "Resize interpolation.", "Augmentation")
    crop_pct: float = option(0.875, "Evaluation centre-crop fraction.", "Augmentation")
    re_prob: float = option(0.0, "Random erasing probability.", "Augmentation")
    mixup: float = option(0.0, "Mixup alpha (0: off).", "Augmentation")
    cutmix: float = option(0.0, "CutMix alpha (0: off).", "Augmentation")
    cutmix_prob: float = option(1.0, "Probability of CutMix per batch when on.", "Augmentation")
    batch_size: int = option(32, "Images per step.", "Augmentation")
    # optimisation
    epoch_size: int = option(10, "Epochs.")
    lr: float = option(0.002, "Base learning rate (fine-tuning: a tenth of pretraining's, or less).")
    opt: str = option("momentum", "Optimizer: momentum, sgd, adam, adamw, lion, nadam, adan, rmsprop, adagrad, lamb.")
    momentum: float = option(0.9, "Momentum, for optimizers that have one.")
    nesterov: bool = option(False, "Nesterov momentum.")
    weight_decay: float = option(1e-5, "Weight decay.")
    weight_decay_filter: str = option(
        "norm_and_bias",
        "norm_and_bias: no decay on biases and norm layers; disable.",
        choices=("norm_and_bias", "disable"),
    )
    scheduler: str = option("cosine_decay", "constant, cosine_decay, step_decay, exponential_decay, ...")
    min_lr: float = option(1e-6, "Final learning rate of cosine decay.")
    warmup_epochs: int = option(0, "Linear warm-up epochs.")
    warmup_factor: float = option(0.01, "Warm-up starts at lr * warmup_factor.")
    decay_epochs: int = option(0, "Epochs of decay (0: all epochs after warm-up).")
    decay_rate: float = option(0.9, "Decay rate of step/exponential schedules.")
    label_smoothing: float = option(0.0, "Label smoothing.")
    class_weights: str = option(
        "", "balanced (inverse class frequency) or a CSV FILE of class name,weight: weights in the loss."
    )
    loss_scale: float = option(1.0, "Loss scale (the starting one when loss_scale_type is dynamic).")
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
        1, "Update once per this many batches, with their mean gradient (an effective batch that many times larger)."
    )
    clip_grad: bool = option(False, "Clip the gradients' global norm to clip_value.")
    clip_value: float = option(15.0, "Largest global gradient norm when clip_grad is on.")
    ema: bool = option(False, "Keep an exponential moving average of the weights; evaluate and save it as best.")
    ema_decay: float = option(0.9999, "EMA decay, warmed up as decay * (1 - exp(-updates / ema_warmup)).")
    ema_warmup: int = option(
        2000, "Updates over which the EMA decay warms up (MindCV's 2000; 0: the full decay from the first update)."
    )
    # fine-tuning strategy
    freeze: str = option(
        "0", "Freeze the first N feature blocks, or 'all' of them (`fgvctune layers` shows them).", "Strategy"
    )
    linear_probe: bool = option(
        False, "Train only the final classifier layer (the tutorial's linear probe).", "Strategy"
    )
    lr_mult: list = option(list, "PATTERN=FACTOR: scale the rate of parameters under PATTERN (repeatable).", "Strategy")
    layer_decay: float = option(1.0, "Layer-wise rate decay: block i of L gets lr * decay^(L-i) (1: off).", "Strategy")
    unfreeze_after: int = option(0, "Gradual unfreezing: train only the head for this many epochs first.", "Strategy")
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
    seed: int = option(42, "Random seed: the same seed gives the same run.", "Run")
    early_stop: int = option(0, "Stop after this many epochs without a better val top-1 (0: never).", "Run")
    distribute: bool = option(False, "Data-parallel training under msrun.", "Run")
    scale_lr: bool = option(False, "Distributed: multiply lr by the number of workers.", "Run")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def load_yaml(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UsageError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of config keys")
    return data


def resolve(config_file: str | Path | None = None, **given) -> TrainConfig:
    """Defaults, then the YAML file, then explicit values (None means 'not given')."""
    values: dict = {}
    if config_file:
        values.update(_checked(load_yaml(config_file), f"{config_file}"))
    values.update(_checked({k: v for k, v in given.items() if v is not None}, "options"))
    config = TrainConfig(**values)
    _validate(config)
    return config


def _checked(values: dict, origin: str) -> dict:
    out = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            raise UsageError(f"{origin}: unknown config key {key!r}", hint="`fgvctune train --help` lists every key")
        out[name] = _coerce(name, value, origin)
    return out


KIND_WORDS = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "a mapping",
}


def _coerce(name: str, value, origin: str):
    default = FIELDS[name].default
    kind = type(default) if default is not dataclasses.MISSING else type(FIELDS[name].default_factory())
    if name == "freeze":
        value = str(value)
        if value != "all" and not value.isdigit():
            raise UsageError(f"{origin}: freeze must be a number of blocks or 'all', got {value!r}")
        return value
    try:
        if kind is bool and isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "on")
        if kind is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, (int, str)) and not isinstance(value, bool):
            return int(value)
    except ValueError:
        raise UsageError(f"{origin}: {name} needs {KIND_WORDS[kind]}, got {value!r}") from None
    if kind is list and isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):  # True is an int to Python
        raise UsageError(f"{origin}: {name} needs {KIND_WORDS[kind]}, got {value!r}")
    choices = FIELDS[name].metadata.get("choices")
    if choices and value not in choices:
        shown = ", ".join(choice or "''" for choice in choices)
        raise UsageError(f"{origin}: {name} must be one of {shown}, got {value!r}")
    return value


def _validate(config: TrainConfig) -> None:
    if config.batch_size < 1 or config.epoch_size < 1 or config.image_resize < 8:
        raise UsageError("batch_size and epoch_size must be at least 1, image_resize at least 8")
    if config.lr <= 0:
        raise UsageError(f"lr must be positive, got {config.lr}")
    if config.linear_probe and config.freeze != "0":
        raise UsageError("--linear-probe already freezes every layer but the classifier; drop --freeze")
    if not 0 < config.layer_decay <= 1:
        raise UsageError(f"layer_decay must be in (0, 1], got {config.layer_decay}")
    if config.gradient_accumulation_steps < 1:
        raise UsageError(f"gradient_accumulation_steps must be at least 1, got {config.gradient_accumulation_steps}")
    if config.clip_value <= 0:
        raise UsageError(f"clip_value must be positive, got {config.clip_value}")
    if not 0 < config.ema_decay < 1:
        raise UsageError(f"ema_decay must be between 0 and 1, got {config.ema_decay}")
    if config.ema_warmup < 0:
        raise UsageError(f"ema_warmup must be 0 or more, got {config.ema_warmup}")
    if config.loss_scale <= 0:
        raise UsageError(f"loss_scale must be positive, got {config.loss_scale}")
    for name in ("drop_rate", "drop_path_rate"):
        value = getattr(config, name)
        if value != -1.0 and not 0 <= value < 1:
            raise UsageError(f"{name} must be in [0, 1) (or -1 for the model's own), got {value}")
    if config.unfreeze_after >= config.epoch_size:
        raise UsageError(f"unfreeze_after ({config.unfreeze_after}) must be less than epoch_size ({config.epoch_size})")


def dump_yaml(config: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
