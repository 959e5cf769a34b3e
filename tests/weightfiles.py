"""PyTorch weight files made without torch: seeded weights in a source model's naming, written as real
`.safetensors` and real torch zip files, and the parity fixtures that tests/fixtures/weights/make.py stores.

The same functions fill the real PyTorch models in make.py, so a test regenerates exactly the weights the
fixture's logits were computed with.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "weights"
SEED = 20240611
INPUT_SHAPE = (2, 3, 64, 64)


# -- seeded weights ---------------------------------------------------------------------------------------
def seeded_weights(entries: list[tuple[str, tuple, str]], seed: int = SEED) -> dict[str, np.ndarray]:
    """Weights for a state dict given as (name, shape, dtype), each drawn from its own generator.

    Convolution and linear weights are scaled by their fan-in so activations stay finite; BatchNorm running
    statistics are far from 0 and 1 (means up to +-0.5, variances 0.05 to 0.5) so a wrong epsilon or a
    swapped statistic changes the logits; LayerNorm and layer-scale weights are away from 1.
    """
    names = {name for name, _, _ in entries}
    out = {}
    for name, shape, dtype in entries:
        shape = tuple(shape)
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        module, leaf = name.rsplit(".", 1) if "." in name else ("", name)
        batch_norm = f"{module}.running_mean" in names
        if not dtype.startswith("float"):
            value = np.zeros(shape, dtype=dtype)
        elif leaf == "running_mean":
            value = rng.uniform(-0.5, 0.5, shape)
        elif leaf == "running_var":
            value = rng.uniform(0.05, 0.5, shape)
        elif batch_norm and leaf == "weight":
            value = rng.uniform(0.2, 0.5, shape)
        elif batch_norm and leaf == "bias":
            value = rng.uniform(-0.1, 0.2, shape)
        elif leaf in ("gamma", "layer_scale"):  # ConvNeXt's layer scale
            value = rng.uniform(0.2, 0.6, shape)
        elif len(shape) == 1 and leaf == "weight":  # LayerNorm
            value = rng.uniform(0.6, 1.4, shape)
        elif len(shape) == 1:
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0.0, 1.0, shape) * np.sqrt(2.0 / fan_in)
        out[name] = np.array(value, dtype=dtype, order="C")
    return out


def seeded_input(seed: int = SEED, shape=INPUT_SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# -- fixtures ----------------------------------------------------------------------------------------------
def fixture_path(model: str, family: str) -> Path:
    return FIXTURES / f"{model}-{family}.npz"


def save_fixture(path: Path, meta: dict, logits: np.ndarray, taps: dict[str, np.ndarray]) -> None:
    arrays = {"meta": np.array(json.dumps(meta)), "logits": logits.astype(np.float32)}
    for label, value in taps.items():
        arrays[f"tap.{label}"] = value.astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_fixture(path: Path) -> tuple[dict, np.ndarray, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        taps = {key[4:]: data[key] for key in data.files if key.startswith("tap.")}
        return meta, data["logits"], taps


def tap_summary(feature: np.ndarray) -> np.ndarray:
    """What a fixture keeps of a feature map (N, C, H, W): the first sample's top-left 8x8 of four channels
    (the border, where padding shows) and the mean of each of its first 64 channels."""
    patch = feature[0, :4, :8, :8].reshape(-1)
    means = feature[0, :64].mean(axis=(1, 2))
    return np.concatenate([patch, means])


# -- writers -----------------------------------------------------------------------------------------------
_SAFETENSORS = {"float32": "F32", "float16": "F16", "float64": "F64", "int64": "I64", "int32": "I32", "uint8": "U8"}


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], bf16: set[str] = frozenset()) -> Path:
    """The safetensors format: a little-endian u64 header size, a JSON header, the raw bytes.
    Names in `bf16` are stored as bfloat16 (float32 rounded toward zero to its upper 16 bits)."""
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        if name in bf16:
            raw = (np.ascontiguousarray(value, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
            dtype = "BF16"
        else:
            raw = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes()
            dtype = _SAFETENSORS[value.dtype.name]
        header[name] = {"dtype": dtype, "shape": list(value.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for raw in blobs:
            f.write(raw)
    return path


_STORAGES = {
    "float32": "FloatStorage",
    "float64": "DoubleStorage",
    "float16": "HalfStorage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}


class _Pickle:
    """Just enough of pickle protocol 2 to write what torch.save writes for a dict of tensors."""

    def __init__(self):
        self.out = io.BytesIO()
        self.out.write(b"\x80\x02")

    def op(self, code: bytes) -> None:
        self.out.write(code)

    def global_(self, module: str, name: str) -> None:
        self.op(b"c" + f"{module}\n{name}\n".encode())

    def text(self, value: str) -> None:
        raw = value.encode()
        self.op(b"X" + struct.pack("<I", len(raw)) + raw)

    def int_(self, value: int) -> None:
        self.op(b"J" + struct.pack("<i", value))

    def ints(self, values) -> None:
        self.op(b"(")
        for v in values:
            self.int_(v)
        self.op(b"t")

    def ordered_dict(self) -> None:
        self.global_("collections", "OrderedDict")
        self.op(b")R")

    def tensor(
        self, key: str, value: np.ndarray, global_name: tuple[str, str], size=None, stride=None, numel=None
    ) -> None:
        """A tensor over storage `key` holding `value`; `size` and `stride` override the view (for damaged files),
        `numel` the storage's length (1 for a value expanded to a shape)."""
        if numel is None:
            value = np.array(value, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        strides = stride if stride is not None else [s // value.itemsize for s in value.strides]
        self.global_("torch._utils", "_rebuild_tensor_v2")
        self.op(b"(")  # the arguments
        self.op(b"(")  # the persistent id: ('storage', storage type, key, location, numel)
        self.text("storage")
        self.global_(*global_name)
        self.text(key)
        self.text("cpu")
        self.int_(value.size if numel is None else numel)
        self.op(b"tQ")
        self.int_(0)
        self.ints(size if size is not None else value.shape)
        self.ints(strides)
        self.op(b"\x89")  # requires_grad False
        self.ordered_dict()  # backward hooks
        self.op(b"tR")

    def bytes(self) -> bytes:
        return self.out.getvalue() + b"."


def write_torch_zip(path: Path, tensors: dict[str, np.ndarray], container: str = "", extra: dict | None = None) -> Path:
    """What torch.save(state_dict) writes: a zip of archive/data.pkl and one raw file per tensor's storage.
    With `container`, the state dict sits under that key of a checkpoint dict, beside `extra` integers."""
    p = _Pickle()
    if container:
        p.op(b"}(")
        p.text(container)
    p.ordered_dict()
    p.op(b"(")
    storages = {}
    for i, (name, value) in enumerate(tensors.items()):
        p.text(name)
        if value.size > 1 and not any(value.strides):  # one value expanded: torch stores that one value
            p.tensor(str(i), value, ("torch", _STORAGES[value.dtype.name]), numel=1)
            value = value.reshape(-1)[:1]
        else:
            p.tensor(str(i), value, ("torch", _STORAGES[value.dtype.name]))
        storages[str(i)] = np.array(value, order="C").astype(value.dtype.newbyteorder("<")).tobytes()
    p.op(b"u")
    if container:
        for key, number in (extra or {}).items():
            p.text(key)
            p.int_(number)
        p.op(b"u")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", p.bytes())
        z.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            z.writestr(f"archive/data/{key}", raw)
        z.writestr("archive/version", "3\n")
    return path


def expanded(entries: list[tuple[str, tuple, str]]) -> dict[str, np.ndarray]:
    """A state dict given as (name, shape, dtype) with each tensor one zero expanded to its shape, as
    `torch.zeros(1).expand(shape)` is: in a torch zip file a full-size model then takes a few kilobytes."""
    return {name: np.broadcast_to(np.zeros((), dtype), tuple(shape)) for name, shape, dtype in entries}


def write_torch_zip_pickle(path: Path, pickled: bytes) -> Path:
    """A torch zip file around any pickle (for files that must be refused)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickled)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return path


# -- state dicts of timm's models, as (name, shape, dtype), built as timm builds them ------------------------
# Checked against the real models' fixtures (weights/test_convert.py::test_state_dict_builders_match_timms_models), so
# the variants fgvctune does not convert (resnet152, resnet50d, convnext_small, efficientnet_b3, ...) carry the
# names and shapes timm gives them.
def _conv(name: str, out: int, per_group: int, kernel: int, bias: bool = False) -> list:
    return [(f"{name}.weight", (out, per_group, kernel, kernel), "float32")] + (
        [(f"{name}.bias", (out,), "float32")] if bias else []
    )


def _batch_norm(name: str, channels: int) -> list:
    stats = [(f"{name}.{leaf}", (channels,), "float32") for leaf in ("weight", "bias", "running_mean", "running_var")]
    return stats + [(f"{name}.num_batches_tracked", (), "int64")]


def _affine(name: str, out: int, features: int | None = None) -> list:
    """A Linear layer (out, features) and its bias, or with `features` None a LayerNorm's weight and bias."""
    weight = (out, features) if features else (out,)
    return [(f"{name}.weight", weight, "float32"), (f"{name}.bias", (out,), "float32")]


def timm_resnet(layers, bottleneck=True, groups=1, base_width=64, stem_width=64, stem="", avg_down=False) -> list:
    """timm.models.resnet.ResNet: `stem` "" (7x7), "deep" or "deep_tiered"; `avg_down` puts the shortcut's
    convolution after an average pool (downsample.1)."""
    inplanes = stem_width * 2 if stem else 64
    if stem:
        first, second = (3 * (stem_width // 4), stem_width) if stem == "deep_tiered" else (stem_width, stem_width)
        entries = _conv("conv1.0", first, 3, 3) + _batch_norm("conv1.1", first) + _conv("conv1.3", second, first, 3)
        entries += _batch_norm("conv1.4", second) + _conv("conv1.6", inplanes, second, 3)
    else:
        entries = _conv("conv1", 64, 3, 7)
    entries += _batch_norm("bn1", inplanes)
    expansion = 4 if bottleneck else 1
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
        for i in range(blocks):
            p = f"layer{stage}.{i}"
            if bottleneck:
                width = planes * base_width // 64 * groups
                entries += _conv(f"{p}.conv1", width, inplanes, 1) + _batch_norm(f"{p}.bn1", width)
                entries += _conv(f"{p}.conv2", width, width // groups, 3) + _batch_norm(f"{p}.bn2", width)
                entries += _conv(f"{p}.conv3", planes * 4, width, 1) + _batch_norm(f"{p}.bn3", planes * 4)
            else:
                entries += _conv(f"{p}.conv1", planes, inplanes, 3) + _batch_norm(f"{p}.bn1", planes)
                entries += _conv(f"{p}.conv2", planes, planes, 3) + _batch_norm(f"{p}.bn2", planes)
            if i == 0 and (stage > 1 or inplanes != planes * expansion):
                at = 1 if avg_down else 0
                entries += _conv(f"{p}.downsample.{at}", planes * expansion, inplanes, 1)
                entries += _batch_norm(f"{p}.downsample.{at + 1}", planes * expansion)
            inplanes = planes * expansion
    return entries + _affine("fc", 1000, inplanes)


def timm_convnext(depths, dims, v2: bool = False) -> list:
    """timm.models.convnext.ConvNeXt; `v2`: ConvNeXt V2 (a global response norm in the MLP, no layer scale)."""
    entries = _conv("stem.0", dims[0], 3, 4, bias=True) + _affine("stem.1", dims[0])
    for stage, (depth, dim) in enumerate(zip(depths, dims)):
        if stage:
            entries += _affine(f"stages.{stage}.downsample.0", dims[stage - 1])
            entries += _conv(f"stages.{stage}.downsample.1", dim, dims[stage - 1], 2, bias=True)
        for i in range(depth):
            p = f"stages.{stage}.blocks.{i}"
            entries += [] if v2 else [(f"{p}.gamma", (dim,), "float32")]
            entries += _conv(f"{p}.conv_dw", dim, 1, 7, bias=True) + _affine(f"{p}.norm", dim)
            entries += _affine(f"{p}.mlp.fc1", 4 * dim, dim) + (_affine(f"{p}.mlp.grn", 4 * dim) if v2 else [])
            entries += _affine(f"{p}.mlp.fc2", dim, 4 * dim)
    return entries + _affine("head.norm", dims[-1]) + _affine("head.fc", 1000, dims[-1])


# EfficientNet-B0's stages: (depthwise-separable or inverted residual, blocks, kernel, expansion, channels).
_EFFICIENTNET_B0 = [("ds", 1, 3, 1, 16), ("ir", 2, 3, 6, 24), ("ir", 2, 5, 6, 40), ("ir", 3, 3, 6, 80)]
_EFFICIENTNET_B0 += [("ir", 3, 5, 6, 112), ("ir", 4, 5, 6, 192), ("ir", 1, 3, 6, 320)]


def timm_efficientnet(width: float = 1.0, depth: float = 1.0) -> list:
    """timm's efficientnet_b0 scaled as B1-B7 are: channels by `width` (to multiples of 8), blocks by `depth`."""

    def channels(c: float) -> int:
        rounded = max(8, int(c * width + 4) // 8 * 8)
        return rounded + 8 if rounded < 0.9 * c * width else rounded

    stem = channels(32)
    entries, inp = _conv("conv_stem", stem, 3, 3) + _batch_norm("bn1", stem), stem
    for stage, (kind, blocks, kernel, expansion, out) in enumerate(_EFFICIENTNET_B0):
        out = channels(out)
        for i in range(math.ceil(blocks * depth)):
            p, mid, reduced = f"blocks.{stage}.{i}", inp * expansion, inp // 4
            squeeze = _conv(f"{p}.se.conv_reduce", reduced, mid, 1, True) + _conv(
                f"{p}.se.conv_expand", mid, reduced, 1, True
            )
            if kind == "ds":
                entries += _conv(f"{p}.conv_dw", inp, 1, kernel) + _batch_norm(f"{p}.bn1", inp) + squeeze
                entries += _conv(f"{p}.conv_pw", out, inp, 1) + _batch_norm(f"{p}.bn2", out)
            else:
                entries += _conv(f"{p}.conv_pw", mid, inp, 1) + _batch_norm(f"{p}.bn1", mid)
                entries += _conv(f"{p}.conv_dw", mid, 1, kernel) + _batch_norm(f"{p}.bn2", mid) + squeeze
                entries += _conv(f"{p}.conv_pwl", out, mid, 1) + _batch_norm(f"{p}.bn3", out)
            inp = out
    head = channels(1280)
    return entries + _conv("conv_head", head, inp, 1) + _batch_norm("bn2", head) + _affine("classifier", 1000, head)
