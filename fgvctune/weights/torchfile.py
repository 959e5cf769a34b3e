"""Reading PyTorch weight files as numpy arrays, without torch and without running their code.

Three formats: `.safetensors` (a JSON header and raw bytes), torch's zip format (what `torch.save`
writes since 1.6: `data.pkl` plus one raw file per storage under `data/`) and torch's older
"legacy" format (a few pickles followed by the raw storages), which torchvision's first model-zoo
files use. Pickles are read by an unpickler that admits only tensors, numbers, strings and plain
containers: a file that names any other function or class is refused before anything is called.

Longer than 400 lines because the three formats share that unpickler and the storage reading; split, each part
would be half a format.
"""

from __future__ import annotations

import codecs
import io
import json
import math
import os
import pickle
import struct
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fgvctune.errors import ModelError

# Keys under which checkpoints of timm, torchvision's reference scripts, Lightning and others keep the weights.
CONTAINER_KEYS = (
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "network",
    "module",
    "params",
    "weights",
    "state_dict_ema",
    "model_ema",
)
# Prefixes wrappers add to every name: DataParallel/DistributedDataParallel, torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")

_TORCH_STORAGES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": "bfloat16",
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# The largest data.pkl read: a state dict's pickle holds names and shapes, a few MB for the largest models.
PICKLE_LIMIT = 64 * 2**20


@dataclass
class WeightFile:
    """A weight file's tensors, in the file's order, with where they were found."""

    path: Path
    format: str  # "safetensors", "torch zip" or "torch legacy"
    tensors: dict[str, np.ndarray]
    container: str = ""  # the checkpoint key holding the state dict, "" for a bare state dict
    stripped: str = ""  # a wrapper prefix removed from every name
    other: list[str] = field(default_factory=list)  # the checkpoint's other keys (epoch, optimizer, ...)
    stored: dict[str, str] = field(default_factory=dict)  # each tensor's dtype in the file (bfloat16, float16, ..)

    def describe(self) -> str:
        where = f" under {self.container!r}" if self.container else ""
        prefix = f" (prefix {self.stripped!r} removed)" if self.stripped else ""
        return f"{self.format} file, {len(self.tensors)} tensors{where}{prefix}"


def read(path: str | Path) -> WeightFile:
    """The state dict in a `.safetensors`, `.pth`, `.pt` or `.bin` file, as numpy arrays (half precision as float32)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weight file {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] == b"PK\x03\x04":
        return _from_checkpoint(path, "torch zip", _read_zip(path))
    if head[:2] == b"\x80\x02":
        return _from_checkpoint(path, "torch legacy", _read_legacy(path))
    if path.suffix == ".safetensors" or _looks_like_safetensors(path, head):
        return _read_safetensors(path)
    if path.suffix == ".ckpt":
        raise ModelError(
            f"{path} is a MindSpore checkpoint, not a PyTorch file", hint="pass it to --ckpt-path as it is"
        )
    raise ModelError(
        f"{path} is neither a safetensors file nor a file written by torch.save",
        hint="fgvctune reads .safetensors, and .pth/.pt/.bin state dicts",
    )


# -- safetensors -------------------------------------------------------------------------------------
def _looks_like_safetensors(path: Path, head: bytes) -> bool:
    if len(head) < 8:
        return False
    size = struct.unpack("<Q", head)[0]
    with open(path, "rb") as f:
        f.seek(8)
        return f.read(1) == b"{" and 8 + size <= path.stat().st_size


def _read_safetensors(path: Path) -> WeightFile:
    data = path.read_bytes()
    try:
        (size,) = struct.unpack("<Q", data[:8])
        if 8 + size > len(data):
            raise ValueError("its header runs past the end of the file")
        header = json.loads(data[8 : 8 + size])
        if not isinstance(header, dict):
            raise ValueError("its header is not a JSON object")
    except RecursionError:  # json's parser recurses once per nested bracket
        raise ModelError(f"{path} is not a readable safetensors file (its header is nested too deeply)") from None
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not a readable safetensors file ({exc})") from None
    body = memoryview(data)[8 + size :]
    header.pop("__metadata__", None)
    tensors, stored = {}, {}
    # safetensors orders the header by name; the data offsets keep the order the tensors were written in.
    for name, info in sorted(header.items(), key=lambda item: _offsets(path, item)[0]):
        stated = info.get("dtype")
        dtype = _SAFETENSORS_DTYPES.get(stated) if isinstance(stated, str) else None
        if dtype is None:
            raise ModelError(f"{path}: tensor {name!r} has dtype {stated!r}, which fgvctune cannot read")
        begin, end = _offsets(path, (name, info))
        shape = info.get("shape", [])
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            raise ModelError(f"{path}: tensor {name!r} has shape {shape!r}, not a list of sizes (the file is damaged)")
        count = math.prod(shape)  # Python's integers: a claimed 2**62 elements does not wrap around
        if end > len(body) or end - begin != count * _itemsize(dtype):
            raise ModelError(f"{path}: tensor {name!r} does not fit its bytes (the file is damaged or truncated)")
        tensors[name] = _as_array(body[begin:end], dtype).reshape(shape)
        stored[name] = _dtype_name(dtype)
    return _from_checkpoint(path, "safetensors", tensors, stored)


def _offsets(path: Path, item) -> tuple[int, int]:
    name, info = item
    try:
        begin, end = (int(n) for n in info["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{path}: tensor {name!r} has no valid data_offsets (not a safetensors file)") from None
    if not 0 <= begin <= end:
        raise ModelError(f"{path}: tensor {name!r} has invalid data_offsets {begin}, {end}")
    return begin, end


def _dtype_name(dtype) -> str:
    return "bfloat16" if dtype == "bfloat16" else np.dtype(dtype).name


def _as_array(raw, dtype, byteorder: str = "little") -> np.ndarray:
    """Raw bytes as an array of `dtype`; half and bfloat16 (which numpy lacks) become float32, exactly."""
    if dtype == "bfloat16":
        half = np.frombuffer(raw, dtype="<u2" if byteorder == "little" else ">u2")
        return (half.astype(np.uint32) << 16).view(np.float32)
    array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<" if byteorder == "little" else ">"))
    native = np.float32 if dtype is np.float16 else np.dtype(dtype).newbyteorder("=")  # half: exact in float32
    return array.astype(native, copy=False)


# -- torch's pickles ---------------------------------------------------------------------------------
@dataclass
class _Storage:
    """One of torch's storages: its element type, element count, and (once read) its elements."""

    key: str
    dtype: object
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    """A tensor as torch pickles it: a view (offset, size, stride) into a storage."""

    storage: _Storage
    offset: int
    size: tuple
    stride: tuple

    def materialise(self, path: Path) -> np.ndarray:
        """The tensor as a read-only view of its storage: nothing is copied, so a view that repeats one element
        (an expanded tensor, stride 0) costs no memory however large its shape; those who need the values
        copy them (weights._fit, for the tensors a conversion uses, once their shapes are checked)."""
        data = self.storage.data
        size, stride, offset = tuple(self.size), tuple(self.stride), self.offset
        ok = (
            data is not None
            and len(size) == len(stride)
            and all(isinstance(n, int) and n >= 0 for n in (*size, *stride, offset))
        )
        if ok and all(size):
            # The furthest element the view reaches must lie inside the storage: never read past it.
            ok = offset + sum((n - 1) * s for n, s in zip(size, stride)) < len(data)
        if not ok:
            raise ModelError(f"{path}: a tensor's view lies outside its storage (the file is damaged)")
        if not all(size):
            return np.zeros(size, data.dtype)
        try:
            return np.lib.stride_tricks.as_strided(
                data[offset:], shape=size, strides=[s * data.itemsize for s in stride], writeable=False
            )
        except ValueError:  # numpy's "array is too big": more elements than an address space holds
            raise ModelError(f"{path}: a tensor of shape {size} is too large to exist (the file is damaged)") from None


class _Record:
    """What an allowed plain record class (argparse.Namespace) unpickles to: attributes, no behaviour."""


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *_ignored):
    return data


def _encode(text, encoding="latin1"):
    """Protocol-2 pickles spell bytes as _codecs.encode(text, 'latin1')."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, encoding)


def _numpy_scalar(dtype, data=None):
    """numpy scalars in checkpoints (a metric, a learning rate), numbers only."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc" or not isinstance(data, bytes):
        raise pickle.UnpicklingError("a numpy scalar that is not a number")
    return np.frombuffer(data, dtype=dtype, count=1)[0].item()


def _numpy_dtype(name, align=False, copy=False):
    dtype = np.dtype(name)
    if dtype.kind not in "biufc":
        raise pickle.UnpicklingError(f"numpy dtype {name!r} is not numeric")
    return dtype


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): tuple,
    ("_codecs", "encode"): _encode,
    ("argparse", "Namespace"): _Record,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    **{("torch", name): dtype for name, dtype in _TORCH_STORAGES.items()},
}


class _Refused(Exception):
    """A pickle names something outside the allowed set."""


class _SafeUnpickler(pickle.Unpickler):
    """Admits only the names in _ALLOWED; storages come from `storage(pid)`."""

    def __init__(self, file, storage=None):
        super().__init__(file)
        self._storage = storage

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None

    def persistent_load(self, pid):
        if self._storage is None or not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if pid[0] == "module":
            raise _Refused("a pickled nn.Module (the whole model, not its state dict)")
        if pid[0] != "storage" or len(pid) < 5:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid[0]!r}")
        return self._storage(pid)


def _unpickle(path: Path, file, storage=None):
    try:
        return _SafeUnpickler(file, storage).load()
    except _Refused as refused:
        raise ModelError(
            f"{path} holds a pickled {refused}, which could run code: refused",
            hint="fgvctune reads only tensors and plain containers; save model.state_dict() or a .safetensors file",
        ) from None
    except ModelError:
        raise
    except Exception as exc:  # a damaged pickle raises whatever the opcode at fault raises
        raise ModelError(f"{path} is not a readable PyTorch file ({type(exc).__name__}: {exc})") from None


def _storage_key(pid) -> tuple[object, str, int]:
    dtype, key, numel = pid[1], str(pid[2]), pid[4]
    if not any(dtype is known for known in _TORCH_STORAGES.values()):
        raise pickle.UnpicklingError(f"storage of unknown type {dtype!r}")
    if not isinstance(numel, int) or numel < 0:
        raise pickle.UnpicklingError("storage with an invalid size")
    return dtype, key, numel


def _itemsize(dtype) -> int:
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _read_zip(path: Path):
    try:
        with zipfile.ZipFile(path) as archive:
            return _read_archive(path, archive)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not a readable PyTorch file ({exc})") from None  # a damaged zip, in one line


def _read_archive(path: Path, archive: zipfile.ZipFile):
    """The state dict in a torch zip file: data.pkl, its storages read as the pickle asks for them."""
    pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise ModelError(f"{path} is a zip file but not one torch.save wrote (no data.pkl)")
    root = pickles[0].rsplit("/", 1)[0]
    names = set(archive.namelist())
    order = f"{root}/byteorder"
    byteorder = _member(path, archive, order, 16).decode().strip() if order in names else "little"
    storages: dict[str, _Storage] = {}
    # torch.save writes each storage once, in a member of its own: together they hold at most the file's bytes.
    # More means members that overlap (each one's bytes containing the next's), which would multiply memory.
    room = path.stat().st_size

    def storage(pid):
        nonlocal room
        dtype, key, numel = _storage_key(pid)
        if key not in storages:
            member = f"{root}/data/{key}"
            if member not in names:
                raise pickle.UnpicklingError(f"storage {key!r} is missing from the archive")
            _stored(path, archive, member, f"storage {key}")
            size = numel * _itemsize(dtype)  # what the tensors can use, whatever the member holds
            room -= size
            if room < 0:
                raise ModelError(f"{path}: its storages claim more bytes than the file has (the file is damaged)")
            with archive.open(member) as f:
                raw = f.read(size)
            if len(raw) < size:
                raise pickle.UnpicklingError(f"storage {key!r} is shorter than its {numel} elements")
            storages[key] = _Storage(key, dtype, numel, _as_array(raw, dtype, byteorder))
        return storages[key]

    info = archive.getinfo(pickles[0])
    if info.file_size > PICKLE_LIMIT:
        raise ModelError(f"{path}: its data.pkl holds {info.file_size:,} bytes, more than a state dict's pickle does")
    return _unpickle(path, io.BytesIO(_member(path, archive, pickles[0], PICKLE_LIMIT)), storage)


def _member(path: Path, archive: zipfile.ZipFile, name: str, size: int) -> bytes:
    """At most `size` bytes of a member, which must be stored uncompressed."""
    _stored(path, archive, name)
    with archive.open(name) as f:
        return f.read(size)


def _stored(path: Path, archive: zipfile.ZipFile, name: str, what: str = "") -> None:
    """Refuses a member that is not stored uncompressed, as torch.save stores every member: a stored member's
    bytes are bytes of the file, while a compressed one can inflate a thousandfold (and zipfile inflates a
    bzip2 or lzma member whole, however few bytes are asked for)."""
    if archive.getinfo(name).compress_type != zipfile.ZIP_STORED:
        what = what or name.rsplit("/", 1)[-1]
        raise ModelError(
            f"{path} is not as torch.save writes it: its {what} is compressed",
            hint="save it again with torch.save, which stores every member uncompressed",
        )


def _read_legacy(path: Path):
    """torch.save(..., _use_new_zipfile_serialization=False): magic number, protocol, system info,
    the object, the list of storage keys, then per storage its element count and raw elements."""
    with open(path, "rb") as f:
        if _unpickle(path, f) != _LEGACY_MAGIC:
            raise ModelError(f"{path} is a pickle, not a file torch.save wrote", hint="fgvctune reads state dicts")
        _unpickle(path, f)  # protocol version
        info = _unpickle(path, f)
        little = not isinstance(info, dict) or info.get("little_endian", True)
        storages: dict[str, _Storage] = {}

        def storage(pid):
            dtype, key, numel = _storage_key(pid)
            if len(pid) > 5 and pid[5] is not None:
                raise pickle.UnpicklingError("storage views of the oldest torch files are not supported")
            return storages.setdefault(key, _Storage(key, dtype, numel))

        result = _unpickle(path, f, storage)
        keys = _unpickle(path, f)
        for key in keys if isinstance(keys, list) else []:
            item = storages.get(str(key))
            if item is None:
                raise ModelError(f"{path}: storage {key!r} is listed but never used (the file is damaged)")
            head = f.read(8)
            numel = struct.unpack("<q" if little else ">q", head)[0] if len(head) == 8 else -1
            size = numel * _itemsize(item.dtype)
            if numel != item.numel or not 0 <= size <= os.fstat(f.fileno()).st_size - f.tell():
                raise ModelError(f"{path}: storage {key!r} is truncated (the file is damaged)")  # before reading it
            raw = f.read(size)
            item.data = _as_array(raw, item.dtype, "little" if little else "big")
    return result


# -- finding the state dict --------------------------------------------------------------------------
def _from_checkpoint(path: Path, fmt: str, loaded, stored: dict | None = None) -> WeightFile:
    container, state = "", loaded
    if isinstance(loaded, dict) and not _is_state_dict(loaded):
        for key in CONTAINER_KEYS:
            if _is_state_dict(loaded.get(key)):
                container, state = key, loaded[key]
                break
        else:
            keys = ", ".join(repr(k) for k in list(loaded)[:8])
            raise ModelError(
                f"{path} is not a state dict: none of its entries ({keys}) holds tensors by name",
                hint=f"fgvctune looks for the weights at the top or under one of {', '.join(CONTAINER_KEYS[:4])}, ...",
            )
    elif not isinstance(loaded, dict):
        raise ModelError(f"{path} is not a state dict: it holds a {type(loaded).__name__}, not tensors by name")
    tensors, stored = {}, dict(stored or {})
    for name, value in state.items():
        if isinstance(value, _TensorRef):
            tensors[str(name)] = value.materialise(path)
            stored[str(name)] = _dtype_name(value.storage.dtype)
        elif isinstance(value, np.ndarray):
            tensors[str(name)] = value
    stripped = ""
    for prefix in WRAPPER_PREFIXES:
        if tensors and all(name.startswith(prefix) for name in tensors):
            tensors = {name[len(prefix) :]: value for name, value in tensors.items()}
            stored = {name[len(prefix) :]: value for name, value in stored.items()}
            stripped += prefix
    other = [str(k) for k in loaded if k != container] if container else []
    return WeightFile(path, fmt, tensors, container, stripped, other, stored)


def _is_state_dict(value) -> bool:
    if not isinstance(value, dict) or not value:
        return False
    tensors = sum(isinstance(v, (_TensorRef, np.ndarray)) for v in value.values())
    return tensors > 0 and tensors >= len(value) // 2 and all(isinstance(k, str) for k in value)
