"""A bare MindCV network, and the names of its parts: its classifier and its feature blocks.

The bottom of the models room: everything that builds or inspects a network starts here.
"""

from __future__ import annotations

from dataclasses import dataclass

from fgvctune.errors import ModelError


def build_network(model_name: str, num_classes: int, **model_options):
    """MindCV's `model_name` with a `num_classes` classifier, randomly initialised. `model_options` (such as
    drop_rate, drop_path_rate) go to the model's constructor; one it does not take is an error naming it."""
    import mindcv

    require_model(model_name)
    try:
        return mindcv.create_model(model_name, num_classes=num_classes, **model_options)
    except TypeError as exc:
        unknown = [name for name in model_options if repr(name) in str(exc)]
        if not unknown:
            raise
        raise ModelError(
            f"{model_name} does not take {unknown[0]} (MindCV's constructor for it has no such argument)",
            hint=f"drop --{unknown[0].replace('_', '-')} for this model",
        ) from None


def require_model(model_name: str) -> None:
    """An unknown model name is an error that suggests similar names."""
    from mindcv.models.registry import is_model, list_models

    if not is_model(model_name):
        close = [m for m in list_models() if model_name.split("_")[0] in m][:5]
        raise ModelError(
            f"unknown model {model_name!r}",
            hint=f"similar: {', '.join(close)}" if close else "see mindcv.list_models()",
        )


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
