"""A trained network with its configuration and label map: what eval, predict and export start from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fgvctune import config as config_module
from fgvctune.data.dataset import LABELS_FILE, LabelMap
from fgvctune.errors import ModelError, UsageError
from fgvctune.results import runfiles


@dataclass
class Model:
    """A trained network with its configuration and label map, ready to predict."""

    network: object
    config: config_module.TrainConfig
    labels: LabelMap
    checkpoint: Path


def load_model(
    run: str | Path | None = None,
    checkpoint: str = "best",
    ckpt_path: str | Path | None = None,
    config_file: str | Path | None = None,
    verbose: bool = False,
) -> Model:
    """The network of a run folder (best.ckpt by default), or a checkpoint with its config and labels.csv, in
    inference mode with its BatchNorm folded into the convolutions before it (kernels/fold.py)."""
    if run:
        folder = runfiles.require_run(run)
        config = runfiles.read_config(folder)
        labels = runfiles.read_labels(folder)
        path = Path(ckpt_path) if ckpt_path else runfiles.checkpoint_file(folder, checkpoint)
    else:
        if not ckpt_path or not config_file:
            raise UsageError("name a run folder, or both --ckpt-path and --config")
        config = config_module.resolve(config_file)
        path = Path(ckpt_path)
        label_file = path.parent / LABELS_FILE
        if not label_file.is_file():
            raise UsageError(f"no {LABELS_FILE} beside {path}", hint="the label map of the training run must be there")
        labels = LabelMap.read(label_file)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist", hint="train first, or pass --checkpoint last")
    network, report = inference_network(config, len(labels), path, verbose=verbose)
    if report.dropped or report.missing:
        raise ModelError(f"{path} does not match its run's {len(labels)} classes: {report.summary()}")
    return Model(network, config, labels, path)


def inference_network(config, num_classes: int, ckpt_path: Path | None, verbose: bool = False, new_classifier=""):
    """`config.model` from a checkpoint (None: MindCV's ImageNet weights) in inference mode, BatchNorm folded into
    the convolutions before it and its layers fused (kernels/fuse.py); and the load's report.
    `new_classifier` says why a checkpoint's classifier may be dropped ("": it must fit)."""
    from fgvctune import runtime
    from fgvctune.kernels import fuse
    from fgvctune.weights.loading import create_network  # a PyTorch --ckpt-path too

    runtime.start(verbose, config.mode, config.device_target, config.seed)
    network, report = create_network(
        config.model,
        num_classes,
        pretrained=ckpt_path is None,
        ckpt_path=str(ckpt_path or ""),
        cache_dir=config.cache_dir,
        new_classifier=new_classifier,
    )
    network.set_train(False)
    fuse.fold_and_fuse(network, cache_dir=config.cache_dir)
    return network, report
