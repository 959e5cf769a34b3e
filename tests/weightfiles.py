"""PyTorch weight files made without torch: seeded weights in a source model's naming, written as real
`.safetensors` and real torch zip files, and the parity fixtures that tests/fixtures/weights/make.py stores.

The same functions fill the real PyTorch models in make.py, so a test regenerates exactly the weights the
fixture's logits were computed with.
"""

from __future__ import annotations

import io
import json
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

    def tensor(self, key: str, value: np.ndarray, global_name: tuple[str, str], size=None, stride=None) -> None:
        """A tensor over storage `key` holding `value`; `size` and `stride` override the view (for damaged files)."""
        value = np.array(value, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        strides = stride if stride is not None else [s // value.itemsize for s in value.strides]
        self.global_("torch._utils", "_rebuild_tensor_v2")
        self.op(b"(")  # the arguments
        self.op(b"(")  # the persistent id: ('storage', storage type, key, location, numel)
        self.text("storage")
        self.global_(*global_name)
        self.text(key)
        self.text("cpu")
        self.int_(value.size)
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


def write_torch_zip_pickle(path: Path, pickled: bytes) -> Path:
    """A torch zip file around any pickle (for files that must be refused)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickled)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return path
