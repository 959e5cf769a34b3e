"""Creating a MindCV model with a new classifier, loading weights, and naming its blocks."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from fgvctune.errors import ModelError

# Names a MindSpore training checkpoint gives optimizer and loop state, never network weights.
OPTIMIZER_STATE = (
    "moments.",
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
    dropped: list[str] = field(default_factory=list)  # classifier weights whose shape does not fit
    missing: list[str] = field(default_factory=list)  # model parameters the checkpoint lacks
    unexpected: list[str] = field(default_factory=list)  # checkpoint entries the model has no place for
    optimizer_state: int = 0  # optimizer/loop entries of a training checkpoint, left out

    def summary(self) -> str:
        parts = [f"loaded {self.loaded} parameters from {self.source}"]
        if self.dropped:
            parts.append(f"dropped classifier {', '.join(self.dropped)} (class count differs)")
        if self.optimizer_state:
            parts.append(f"left out {self.optimizer_state} optimizer-state entries")
        if self.missing:
            parts.append(
                f"{len(self.missing)} missing ({', '.join(self.missing[:3])}{'...' if len(self.missing) > 3 else ''})"
            )
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected ({', '.join(self.unexpected[:3])}...)")
        return "; ".join(parts)


def classifier_name(network, model_name: str) -> str:
    """The final classification layer: MindCV's pretrained config says, else the last Dense cell."""
    from mindcv.models.registry import _model_pretrained_cfgs
    from mindspore import nn

    name = (_model_pretrained_cfgs.get(model_name) or {}).get("classifier")
    if name:
        return name
    dense = [n for n, cell in network.cells_and_names() if isinstance(cell, nn.Dense)]
    if not dense:
        raise ModelError(f"cannot find the classifier of {model_name}: it has no Dense layer")
    return dense[-1]


def create_network(
    model_name: str,
    num_classes: int,
    pretrained: bool = False,
    ckpt_path: str = "",
    seed: int = 0,
    cache_dir: str = "",
):
    """A MindCV model with a fresh `num_classes` classifier, weights from a checkpoint or MindCV's download.

    fgvctune's swaps (`swaps.py`) are applied after loading; `seed` seeds the dropout masks. `ckpt_path`
    may also be a PyTorch file (.safetensors, .pth, .pt, .bin): it is converted once into the cache under
    `cache_dir` (default ~/.cache/fgvctune)."""
    network, report = _create_network(model_name, num_classes, pretrained, ckpt_path, cache_dir)
    from fgvctune import swaps

    swaps.apply(network, seed)
    return network, report


def _create_network(model_name: str, num_classes: int, pretrained: bool, ckpt_path: str, cache_dir: str):
    import mindcv
    from mindcv.models.registry import is_model, list_models

    if not is_model(model_name):
        close = [m for m in list_models() if model_name.split("_")[0] in m][:5]
        raise ModelError(
            f"unknown model {model_name!r}",
            hint=f"similar: {', '.join(close)}" if close else "see mindcv.list_models()",
        )
    if ckpt_path:
        network = mindcv.create_model(model_name, num_classes=num_classes)
        return network, load_weights(network, ckpt_path, model_name, cache_dir)
    if pretrained:
        return _download_pretrained(model_name, num_classes)
    return mindcv.create_model(model_name, num_classes=num_classes), LoadReport(source="random initialisation")


def _download_pretrained(model_name: str, num_classes: int):
    import mindcv
    from mindcv.models.helpers import get_checkpoint_download_root
    from mindcv.models.registry import _model_pretrained_cfgs

    url = (_model_pretrained_cfgs.get(model_name) or {}).get("url")
    if not url:
        raise ModelError(
            f"MindCV has no pretrained weights for {model_name}", hint="pass --ckpt-path or --no-pretrained"
        )
    target = Path(get_checkpoint_download_root()) / os.path.basename(url)
    if target.is_file() and target.stat().st_size == 0:
        target.unlink()  # an earlier failed download leaves an empty file that MindCV would trust
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60)
    try:
        network = mindcv.create_model(model_name, num_classes=num_classes, pretrained=True)
    except Exception as exc:  # urllib, SSL and file errors all mean: no weights
        if target.is_file():
            target.unlink()
        raise ModelError(
            f"could not download pretrained weights for {model_name} ({type(exc).__name__}: {exc})",
            hint="offline? pass --ckpt-path FILE with a MindSpore checkpoint, or --no-pretrained",
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return network, LoadReport(source=url, loaded=len(network.parameters_dict()))


def load_weights(network, ckpt_path: str, model_name: str, cache_dir: str = "") -> LoadReport:
    """Load a checkpoint, dropping a classifier of another class count and any optimizer state.

    A missing file or a checkpoint for another architecture is an error, never random weights
    (MindCV's load_model_checkpoint silently does nothing for a missing path). A PyTorch file is
    converted first (cached); the network settings a converted checkpoint records (BatchNorm epsilon,
    padding, GELU: see fgvctune.torchcompat) are applied to the network.
    """
    import mindspore as ms

    from fgvctune import torchcompat
    from fgvctune.swaps import is_counter
    from fgvctune.torchfile import SUFFIXES

    path = Path(ckpt_path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist", hint="check --ckpt-path")
    source = str(path)
    if path.suffix.lower() in SUFFIXES:
        from fgvctune.weights import converted_checkpoint

        path = converted_checkpoint(path, model_name, cache_dir)
        source = f"{source} (converted into {path})"
    try:
        saved = ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelError(f"{path} is not a readable MindSpore checkpoint ({str(exc).splitlines()[0]})") from None
    own = network.parameters_dict()
    head = classifier_name(network, model_name)
    report = LoadReport(source=source)
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


@dataclass(frozen=True)
class Block:
    """A feature block: the unit of --freeze and --layer-decay, named by dotted prefixes."""

    name: str
    prefixes: tuple[str, ...]

    def owns(self, param_name: str) -> bool:
        return any(param_name == p or param_name.startswith(p + ".") for p in self.prefixes)


def feature_blocks(network, head: str) -> list[Block]:
    """The feature network's blocks in order.

    Models with a `features` container (MobileNet, ConvNeXt's `feature`) use its children, numbered
    as the tutorial numbers them (`features.0` ..), parameter-free ones included. Others (ResNet)
    get a `stem` of the leading layers, then every child of each stage container (`layer1.0`, ..).
    Whatever follows the last block is the head.
    """
    from mindspore import nn

    containers = (nn.SequentialCell, nn.CellList)
    children = list(network.name_cells().items())
    head_root = head.split(".")[0]
    for name, cell in children:
        if name in ("features", "feature") and isinstance(cell, containers):
            return [Block(f"{name}.{child}", (f"{name}.{child}",)) for child in cell.name_cells()]
    blocks, stem = [], []
    for name, cell in children:
        if name == head_root:
            break
        if isinstance(cell, containers):
            if stem:
                blocks.append(Block("stem", tuple(stem)))
                stem = []
            blocks += [Block(f"{name}.{child}", (f"{name}.{child}",)) for child in cell.name_cells()]
        elif not blocks:
            stem.append(name)
    if stem:
        blocks.append(Block("stem", tuple(stem)))
    return blocks
