"""Settings that make a MindCV network compute what its PyTorch source computes.

MindCV's layers differ from PyTorch's in ways that are not weights:

- `bn_eps`: BatchNorm's epsilon. torchvision's MobileNetV3 uses 1e-3, MindCV 1e-5.
- `padding: pytorch`: where a strided layer pads. MindCV's `pad_mode="same"` pads the odd pixel at the
  bottom and right (TensorFlow's rule); PyTorch pads k // 2 on every side (none for a patchify layer
  whose kernel equals its stride). The windows of a stride-2 layer then sit one pixel apart.
- `gelu: exact`: MindSpore's `nn.GELU()` is the tanh approximation; PyTorch's is the exact erf form.

A checkpoint converted from PyTorch records what its network needs under RECORD (a JSON string);
`checkpoint.load_weights` applies it, and every checkpoint a run writes records it again, so `train`,
`eval`, `predict` and `export` build the same network. Importing this module imports MindSpore.
"""

from __future__ import annotations

import json

from mindspore import nn, ops

from fgvctune.errors import ModelError

RECORD = "fgvctune_network"
KEYS = ("bn_eps", "padding", "gelu")


def read(saved: dict) -> dict:
    """The settings a loaded checkpoint records, {} for a plain MindCV checkpoint."""
    text = saved.get(RECORD)
    if text is None:
        return {}
    try:
        settings = json.loads(str(text))
    except (ValueError, RecursionError):
        settings = None
    if not isinstance(settings, dict):
        raise ModelError(f"the checkpoint's {RECORD} entry is not readable: {str(text)[:100]!r}")
    unknown = sorted(set(settings) - set(KEYS))
    if unknown:
        raise ModelError(
            f"the checkpoint needs network settings this fgvctune does not know: {', '.join(unknown)}",
            hint="upgrade fgvctune",
        )
    return settings


def record(network) -> dict:
    """The checkpoint entries that rebuild this network's settings (for save_checkpoint's append_dict)."""
    settings = getattr(network, "fgvctune_network", None)
    return {RECORD: json.dumps(settings, sort_keys=True)} if settings else {}


def apply(network, settings: dict) -> None:
    """Change the network's layers as `settings` say, and remember the settings on the network."""
    if not settings:
        return
    if "bn_eps" in settings:
        batch_norm_eps(network, float(settings["bn_eps"]))
    if settings.get("padding") == "pytorch":
        pytorch_padding(network)
    if settings.get("gelu") == "exact":
        exact_gelu(network)
    network.fgvctune_network = dict(settings)


def batch_norm_eps(network, eps: float) -> int:
    changed = 0
    for _, cell in network.cells_and_names():
        if isinstance(cell, (nn.BatchNorm1d, nn.BatchNorm2d)) and cell.eps != eps:
            cell.eps = eps
            cell.bn_train = ops.BatchNorm(
                is_training=True, epsilon=eps, momentum=cell.momentum, data_format=cell.format
            )
            cell.bn_infer = ops.BatchNorm(is_training=False, epsilon=eps, data_format=cell.format)
            changed += 1
    return changed


def _pytorch_pad(kernel: int, stride: int, dilation: int = 1) -> int:
    if kernel == stride:
        return 0  # patchify layers (ConvNeXt's stem and downsampling) do not pad
    if kernel % 2 == 0:
        raise ModelError(f"no PyTorch padding rule for a {kernel}x{kernel} stride-{stride} layer")
    return (kernel - 1) // 2 * dilation


def pytorch_padding(network) -> int:
    """Strided "same" convolutions and max-pools pad as PyTorch does (stride-1 "same" already does)."""
    changed = 0
    for _, parent in list(network.cells_and_names()):
        for name, cell in list(parent.name_cells().items()):
            if isinstance(cell, nn.Conv2d) and cell.pad_mode == "same" and max(cell.stride) > 1:
                pad = tuple(_pytorch_pad(k, s, d) for k, s, d in zip(cell.kernel_size, cell.stride, cell.dilation))
                cell.pad_mode, cell.padding = "pad", (pad[0], pad[0], pad[1], pad[1])
                cell.conv2d = ops.Conv2D(
                    out_channel=cell.out_channels,
                    kernel_size=cell.kernel_size,
                    mode=1,
                    pad_mode="pad",
                    pad=cell.padding,
                    stride=cell.stride,
                    dilation=cell.dilation,
                    group=cell.group,
                    data_format=cell.data_format,
                )
                changed += 1
            elif isinstance(cell, nn.MaxPool2d) and str(cell.pad_mode).lower() == "same":
                kernel, stride = _pair(cell.kernel_size), _pair(cell.stride)
                if max(stride) > 1:
                    pad = tuple(_pytorch_pad(k, s) for k, s in zip(kernel, stride))
                    setattr(parent, name, nn.MaxPool2d(kernel, stride, pad_mode="pad", padding=pad))
                    changed += 1
    return changed


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)[-2:]


def exact_gelu(network) -> int:
    changed = 0
    for _, cell in network.cells_and_names():
        if isinstance(cell, nn.GELU) and cell.approximate != "none":
            cell.approximate = "none"
            changed += 1
    return changed
