"""Loading a MindSpore checkpoint into a network: what fits is loaded, what does not is reported or refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fgvctune.errors import ModelError
from fgvctune.models.network import classifier_name

# PyTorch's weight files (fgvctune.weights reads and converts them): never loaded here as they are.
PYTORCH_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")

# Names a MindSpore training checkpoint gives optimizer and loop state, never network weights.
OPTIMIZER_STATE = (
    "moments.",
    # fgvctune's train step (training/step.py): loss scale, gradient accumulation, the EMA (best.ckpt holds it
    # as the network's own weights)
    "loss_scale",
    "accumulated.",
    "ema.",
    "ema_updates",
    "moment1.",
    "moment2.",
    "accum.",
    "adam_m.",
    "adam_v.",
    "mean_grad.",
    "mean_square.",
    "exp_avg",
    "global_step",
    "learning_rate",
    "beta1_power",
    "beta2_power",
    "scale_sense",
    "current_iterator_step",
    "last_overflow_iterator_step",
    "epoch_num",
    "step_num",
    "lr_",
    "momentum",
    "weight_decay",
)


@dataclass
class LoadReport:
    """What loading a checkpoint into a fresh model did."""

    source: str
    loaded: int = 0
    dropped: list[str] = field(default_factory=list)  # classifier weights left out: another class count, or
    why_dropped: str = "class count differs"  # ... a new classifier asked for (other classes, same count)
    missing: list[str] = field(default_factory=list)  # model parameters the checkpoint lacks
    unexpected: list[str] = field(default_factory=list)  # checkpoint entries the model has no place for
    optimizer_state: int = 0  # optimizer/loop entries of a training checkpoint, left out

    def summary(self) -> str:
        parts = [f"loaded {self.loaded} parameters from {self.source}"]
        if self.dropped:
            parts.append(f"dropped classifier {', '.join(self.dropped)} ({self.why_dropped})")
        if self.optimizer_state:
            parts.append(f"left out {self.optimizer_state} optimizer-state entries")
        if self.missing:
            parts.append(
                f"{len(self.missing)} missing ({', '.join(self.missing[:3])}{'...' if len(self.missing) > 3 else ''})"
            )
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected ({', '.join(self.unexpected[:3])}...)")
        return "; ".join(parts)


def read_checkpoint(path: str | Path) -> dict:
    """Every entry of a MindSpore checkpoint file; one that is cut short or not a checkpoint is a ModelError."""
    import mindspore as ms

    try:
        return ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError, OSError) as exc:  # MindSpore's words for a file protobuf cannot parse
        first = str(exc).splitlines()[0]  # MindSpore's sentences, less the one naming the file again
        said = " ".join(sentence for sentence in first.split(". ") if str(path) not in sentence) or first
        raise ModelError(f"{path} is not a readable MindSpore checkpoint ({said})") from None


def load_weights(network, ckpt_path: str | Path, model_name: str, new_classifier: str = "") -> LoadReport:
    """Load a checkpoint, dropping a classifier of another class count and any optimizer state; `new_classifier`
    (the reason, for the report) drops the classifier whatever its shape: one of the same count trained on other
    classes is a worse start than a fresh one.

    A missing file or a checkpoint for another architecture is an error, never random weights
    (MindCV's load_model_checkpoint silently does nothing for a missing path). The network settings a
    checkpoint converted from PyTorch records (BatchNorm epsilon, padding, GELU: see torchcompat.py)
    are applied to the network.
    """
    import mindspore as ms

    from fgvctune.models import torchcompat
    from fgvctune.models.dropout import is_counter

    path = Path(ckpt_path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist", hint="check --ckpt-path")
    if path.suffix.lower() in PYTORCH_SUFFIXES:
        raise ModelError(
            f"{path} is a PyTorch weight file, not a MindSpore checkpoint: fgvctune.weights.loading.create_network "
            "converts and loads it"
        )
    saved = read_checkpoint(path)
    own = network.parameters_dict()
    head = classifier_name(network, model_name)
    report = LoadReport(source=str(path))
    weights = {}
    for name, value in saved.items():
        if name.startswith("fgvctune_") or is_counter(name):
            continue  # fgvctune's own bookkeeping: the epoch, how often a dropout layer ran
        if name not in own:
            if name.startswith(OPTIMIZER_STATE):
                report.optimizer_state += 1
            else:
                report.unexpected.append(name)
            continue
        if tuple(value.shape) != tuple(own[name].shape):
            if name.startswith(head + "."):
                report.dropped.append(name)
                continue
            raise ModelError(
                f"{path} does not fit {model_name}: {name} has shape {tuple(value.shape)}, "
                f"the model needs {tuple(own[name].shape)}",
                hint="the checkpoint is for another architecture; pass the matching --model",
            )
        if new_classifier and name.startswith(head + "."):
            report.dropped.append(name)
            report.why_dropped = new_classifier
            continue
        weights[name] = value
    matched = len(weights) + len(report.dropped)
    if matched < len(own) // 2:
        raise ModelError(
            f"{path} does not fit {model_name}: only {matched} of its {len(own)} parameters are in the checkpoint",
            hint="the checkpoint is for another architecture; pass the matching --model",
        )
    ms.load_param_into_net(network, weights, strict_load=False)
    torchcompat.apply(network, torchcompat.read(saved))
    report.loaded = len(weights)
    report.missing = sorted(set(own) - set(weights) - set(report.dropped))
    return report
