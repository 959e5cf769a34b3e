"""Creating the network a run trains or evaluates: a MindCV model with a new classifier, its weights from a
MindSpore checkpoint or MindCV's download, and fgvctune's swaps applied (the seeded dropout, the CPU's kernels).

The top of the models room: it uses network.py, dropout.py and checkpoint.py, and the kernels' swaps; nothing
imports it from inside the room. A PyTorch weight file is fgvctune.weights.loading's to convert and load.
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
    new_classifier: str = "",
    **model_options,
):
    """A MindCV model with a fresh `num_classes` classifier, weights from a MindSpore checkpoint or MindCV's
    download. A checkpoint's classifier is kept when its shape fits, unless `new_classifier` says why not
    (checkpoint.load_weights).

    fgvctune's swaps (`apply_swaps`) are applied after loading; `seed` seeds the dropout masks, `cache_dir`
    (default ~/.cache/fgvctune) holds the built kernels. `model_options` go to MindCV's model constructor
    (drop_rate, ...). A PyTorch file as `ckpt_path` is refused: fgvctune.weights.loading.create_network takes one."""
    if pretrained and not ckpt_path:
        network, report = _download_pretrained(model_name, num_classes, **model_options)
    else:
        network = build_network(model_name, num_classes, **model_options)
        if ckpt_path:
            report = load_weights(network, Path(ckpt_path), model_name, new_classifier)
        else:
            report = LoadReport(source="random initialisation")
    apply_swaps(network, seed, cache_dir)
    return network, report


def apply_swaps(network, seed: int = 0, cache_dir: str = "") -> None:
    """fgvctune's swaps: the seeded dropout everywhere (`seed` seeds its masks), and on the CPU the faster
    equivalent cells and fgvctune's own kernels (built in the cache under `cache_dir`)."""
    from fgvctune.kernels import swaps
    from fgvctune.models.dropout import seeded_dropout

    seeded_dropout(network, seed)
    swaps.apply(network, cache_dir)


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
