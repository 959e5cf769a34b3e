"""Grad-CAM (Selvaraju et al., 2017): where in an image the network found the class it names.

A is the output (N, C, h, w) of the network's last feature block as fgvctune counts blocks (models/network.py:
features.16 on mobilenet_v3_small_100, layer4.1 on resnet18, feature.7 on convnext_tiny), g the gradient of the
class's logit with respect to A. The heatmap is relu(sum over c of mean_hw(g_c) * A_c), upsampled to the image
the network was given and scaled to [0, 1].

MindSpore differentiates with respect to a function's inputs, not a layer's output: for the time of `explain` the
block is replaced in its parent by `Tap`, which keeps the block's output A and adds to it a zero tensor that is an
input of the differentiated function, so the gradient with respect to that zero is g. It runs in PyNative mode (the
tap keeps A as an attribute, which a compiled graph cannot) on the network `load_model` gives, BatchNorm folded and
fgvctune's CPU kernels in place (each has its bprop): the heatmaps are those of MindCV's plain network.

Importing this module imports MindSpore (for the Tap cell): prediction and evaluation import it inside functions.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from fgvctune.data.contract import Sample
from fgvctune.errors import ModelError
from fgvctune.results.model import Model

ALPHA = 0.5  # the heatmap's share of an overlay's colour
COLORMAP = "jet"  # blue (nothing) to red (where the class was found)


@dataclass
class Explanation:
    images: np.ndarray  # (N, H, W, 3) uint8: each image as the network was given it (evaluation resize and crop)
    heatmaps: np.ndarray  # (N, H, W) float32 in [0, 1]
    classes: np.ndarray  # (N,) the class each heatmap is of

    def overlays(self) -> list[np.ndarray]:
        return [overlay(image, heat) for image, heat in zip(self.images, self.heatmaps)]


def explain(model: Model, samples: list[Sample], classes=None, batch_size: int = 0) -> Explanation:
    """Grad-CAM heatmaps of samples, in order, for `classes` (label ids, one per sample; default: the predicted
    ones). The images go through the evaluation transforms, as scoring.score reads them."""
    from mindspore.dataset import vision

    from fgvctune.data.pipeline import eval_transforms
    from fgvctune.results.scoring import eval_loader

    c = model.config
    transform = eval_transforms(c)
    norm = next(t for t in transform if isinstance(t, vision.Normalize))
    samples = [replace(s, label=model.labels.classes[0]) for s in samples]  # labels play no part; any known one
    loader = eval_loader(model, samples, batch_size or c.batch_size, transform)
    prefix = last_block(model.network, c.model)
    images, heatmaps, chosen = [], [], []
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        with tapped(model.network, prefix) as tap:
            for batch, _ in loader.create_tuple_iterator(output_numpy=True, num_epochs=1):
                done = sum(map(len, images))
                wanted = None if classes is None else np.asarray(classes[done : done + len(batch)])
                activations, gradients, picked = _gradients(model.network, tap, batch, wanted)
                _require_map(activations.shape, c, prefix)
                heatmaps.append(_heatmaps(activations, gradients, batch.shape[2:]))
                pixels = batch.transpose(0, 2, 3, 1) * np.array(norm.std) + np.array(norm.mean)
                images.append(pixels.clip(0, 255).round().astype(np.uint8))
                chosen.append(picked)
    finally:
        ms.set_context(mode=mode)
    if not images:
        return Explanation(np.zeros((0, 0, 0, 3), np.uint8), np.zeros((0, 0, 0), np.float32), np.zeros(0, np.int64))
    return Explanation(np.concatenate(images), np.concatenate(heatmaps), np.concatenate(chosen))


def _require_map(shape: tuple, config, prefix: str) -> None:
    """A feature map (N, C, H, W) larger than one pixel, or an error: there is nothing to locate in anything else."""
    if len(shape) != 4:
        raise ModelError(
            f"cannot explain {config.model}: its last feature block ({prefix}) gives a {shape} output, not a feature "
            "map (N, C, H, W)",
            hint="Grad-CAM needs a convolutional network (MobileNet, ResNet, ConvNeXt, EfficientNet)",
        )
    if shape[2] * shape[3] == 1:
        raise ModelError(
            f"cannot explain {config.model} at {config.image_resize} px: its last feature block ({prefix}) gives a 1x1 "
            "map, with nothing to locate",
            hint="train at a larger --image-resize (64 px or more where the network shrinks images 32 times)",
        )


class Tap(nn.Cell):
    """A block that keeps its output as `output` and adds `offset` to it (None: nothing), a zero tensor that is
    the input the gradient is taken by."""

    def __init__(self, block):
        super().__init__()
        self.block = block
        self.offset = None
        self.output = None

    def construct(self, x):
        self.output = self.block(x)
        return self.output if self.offset is None else self.output + self.offset


def last_block(network, model_name: str) -> str:
    """The name of the network's last feature block (its last cell, for a stem of several)."""
    from fgvctune.models.network import classifier_name, feature_blocks

    blocks = feature_blocks(network, classifier_name(network, model_name))
    if not blocks:
        raise ModelError(f"cannot explain {model_name}: fgvctune finds no feature blocks in it")
    return blocks[-1].prefixes[-1]


@contextmanager
def tapped(network, prefix: str):
    """The network with a Tap in place of its cell `prefix`, put back afterwards; yields the Tap."""
    parent_name, _, child = prefix.rpartition(".")
    parent = network if not parent_name else dict(network.cells_and_names())[parent_name]
    indexed = isinstance(parent, (nn.SequentialCell, nn.CellList))  # set by index: these run their own list

    def put(cell):
        if indexed:
            parent[int(child)] = cell
        else:
            setattr(parent, child, cell)

    block = parent[int(child)] if indexed else getattr(parent, child)
    tap = Tap(block)
    put(tap)
    try:
        yield tap
    finally:
        put(block)


def _gradients(network, tap: Tap, images: np.ndarray, classes: np.ndarray | None):
    """A, d(sum of each image's class logit)/dA and the classes (where None, the predicted ones). Images do not
    mix in an inference-mode network, so each image's gradient is its own logit's."""
    x = ms.Tensor(images)
    tap.offset = None
    logits = network(x)
    classes = logits.asnumpy().argmax(axis=1) if classes is None else classes
    picked = ms.Tensor(classes.astype(np.int32).reshape(-1, 1))

    def target(offset):
        tap.offset = offset
        return ops.gather_elements(network(x), 1, picked).sum(), tap.output

    try:
        (_, activations), gradients = ms.value_and_grad(target, has_aux=True)(ops.zeros(tap.output.shape))
    finally:
        tap.offset = None
    return activations.asnumpy(), gradients.asnumpy(), classes


def _heatmaps(activations: np.ndarray, gradients: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """relu(sum_c mean_hw(g_c) A_c) per image, bilinearly upsampled to `size` (H, W) and scaled to [0, 1]."""
    from PIL import Image

    weights = gradients.mean(axis=(2, 3), keepdims=True)
    cams = np.maximum((weights * activations).sum(axis=1), 0).astype(np.float32)
    out = np.zeros((len(cams), *size), np.float32)
    for i, cam in enumerate(cams):
        big = np.asarray(Image.fromarray(cam, mode="F").resize(size[::-1], Image.BILINEAR))
        low, high = big.min(), big.max()
        out[i] = (big - low) / (high - low) if high > low else 0.0
    return out


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """An RGB image (H, W, 3, uint8) with a heatmap (H, W, in [0, 1]) over it in COLORMAP's colours."""
    from matplotlib import colormaps

    colours = colormaps[COLORMAP](heatmap)[..., :3] * 255
    return (image * (1 - alpha) + colours * alpha).round().astype(np.uint8)


def write_png(picture: np.ndarray, path: Path) -> Path:
    """An RGB array as a PNG file."""
    import io

    from PIL import Image

    from fgvctune.fileio import atomic_write_bytes

    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())
    return path
