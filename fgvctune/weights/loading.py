"""Creating a run's network from any weight file a user may name: a MindSpore checkpoint, or a PyTorch file
(.safetensors, .pth, .pt, .bin) converted once into the cache first.

The top of the weights room: models' `create_network` knows MindSpore checkpoints only (models never import
weights), so the commands that accept PyTorch files (train, eval, predict, export) call this one.
"""

from __future__ import annotations

from pathlib import Path

from fgvctune.models import factory
from fgvctune.models.checkpoint import PYTORCH_SUFFIXES


def create_network(
    model_name: str,
    num_classes: int,
    pretrained: bool = False,
    ckpt_path: str = "",
    seed: int = 0,
    cache_dir: str = "",
    new_classifier: str = "",
    **model_options,
):
    """`fgvctune.models.factory.create_network`, whose `ckpt_path` may also be a PyTorch file: it is converted
    once into the cache under `cache_dir` (default ~/.cache/fgvctune), and the report names both files."""
    path = Path(ckpt_path) if ckpt_path else None
    if path is None or path.suffix.lower() not in PYTORCH_SUFFIXES or not path.is_file():
        return factory.create_network(
            model_name, num_classes, pretrained, ckpt_path, seed, cache_dir, new_classifier, **model_options
        )
    from fgvctune.weights.convert import converted_checkpoint

    converted = converted_checkpoint(path, model_name, cache_dir)
    network, report = factory.create_network(
        model_name, num_classes, pretrained, str(converted), seed, cache_dir, new_classifier, **model_options
    )
    report.source = f"{path} (converted into {converted})"
    return network, report
