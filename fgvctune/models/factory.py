"""Creating the network a run trains or evaluates: a MindCV model with a new classifier, its weights from a
checkpoint (MindSpore or PyTorch, see weights.py) or MindCV's download, and fgvctune's swaps applied.

The top of the models room: it uses network.py, checkpoint.py, weights.py and swaps.py, and nothing imports it
from inside the room.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from fgvctune.errors import ModelError
from fgvctune.models.checkpoint import LoadReport, load_weights
from fgvctune.models.network import build_network, require_model


def create_network(
    model_name: str,
    num_classes: int,
    pretrained: bool = False,
    ckpt_path: str = "",
    seed: int = 0,
    cache_dir: str = "",
    **model_options,
):
    """A MindCV model with a fresh `num_classes` classifier, weights from a checkpoint or MindCV's download.

    fgvctune's swaps (`swaps.py`) are applied after loading; `seed` seeds the dropout masks. `ckpt_path`
    may also be a PyTorch file (.safetensors, .pth, .pt, .bin): it is converted once into the cache under
    `cache_dir` (default ~/.cache/fgvctune). `model_options` go to MindCV's model constructor (drop_rate, ...)."""
    from fgvctune.kernels import swaps

    if pretrained and not ckpt_path:
        network, report = _download_pretrained(model_name, num_classes, **model_options)
    else:
        network = build_network(model_name, num_classes, **model_options)
        if ckpt_path:
            report = _load(network, Path(ckpt_path), model_name, cache_dir)
        else:
            report = LoadReport(source="random initialisation")
    swaps.apply(network, seed)
    return network, report


def _load(network, path: Path, model_name: str, cache_dir: str) -> LoadReport:
    from fgvctune.weights.torchfile import SUFFIXES

    if path.suffix.lower() in SUFFIXES and path.is_file():
        from fgvctune.weights.convert import converted_checkpoint

        converted = converted_checkpoint(path, model_name, cache_dir)
        return load_weights(network, converted, model_name, source=f"{path} (converted into {converted})")
    return load_weights(network, path, model_name)


def _download_pretrained(model_name: str, num_classes: int, **model_options):
    import mindcv
    from mindcv.models.helpers import get_checkpoint_download_root
    from mindcv.models.registry import _model_pretrained_cfgs

    require_model(model_name)
    if model_options:
        build_network(model_name, num_classes, **model_options)  # an option the model does not take fails offline
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
        network = mindcv.create_model(model_name, num_classes=num_classes, pretrained=True, **model_options)
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
