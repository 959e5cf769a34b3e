"""Reading PyTorch weight files without torch, and refusing what could run code or is not a state dict."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import bounded_cli
from fgvctune.cli import app
from fgvctune.errors import ModelError
from fgvctune.weights import torchfile
from fgvctune.weights.maps import identify
from weightfiles import FIXTURES, _Pickle, expanded, write_safetensors, write_torch_zip, write_torch_zip_pickle

runner = CliRunner()


class RunsCode:
    """What a malicious checkpoint pickles: unpickling it would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_safetensors_with_half_and_bfloat16(tmp_path):
    weights = {
        "a.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.array([0.5, -2.0], np.float16),
        "c": np.array([1.0, -2.5, 0.15625], np.float32),  # exact in bfloat16
        "n": np.array(3, np.int64),
    }
    path = write_safetensors(tmp_path / "w.safetensors", weights, bf16={"c"})
    read = torchfile.read(path)
    assert read.format == "safetensors" and list(read.tensors) == list(weights)  # the written order
    for name, value in weights.items():
        np.testing.assert_array_equal(read.tensors[name], value)
        assert read.tensors[name].shape == value.shape
    assert read.tensors["b"].dtype == read.tensors["c"].dtype == np.float32


def test_torch_zip_state_dict_under_a_checkpoint_key_with_a_wrapper_prefix(tmp_path):
    weights = {"module.conv.weight": np.ones((2, 1, 3, 3), np.float32), "module.bn.running_var": np.full(2, 2.0)}
    path = write_torch_zip(tmp_path / "ckpt.pth", weights, container="model", extra={"epoch": 12})
    read = torchfile.read(path)
    assert read.container == "model" and read.stripped == "module." and read.other == ["epoch"]
    assert list(read.tensors) == ["conv.weight", "bn.running_var"]
    assert read.tensors["bn.running_var"].dtype == np.float64


def test_pickle_that_runs_code_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"
    zipped = write_torch_zip_pickle(tmp_path / "evil.pth", pickle.dumps({"w": RunsCode(marker)}, protocol=2))
    raw = tmp_path / "evil.bin"
    raw.write_bytes(pickle.dumps(RunsCode(marker), protocol=2))
    for path in (zipped, raw):
        with pytest.raises(ModelError, match=r"holds a pickled posix\.system, which could run code: refused"):
            torchfile.read(path)
        result = runner.invoke(app, ["weights", "inspect", str(path)])
        assert result.exit_code == 1 and result.output.count("\n") == 1 and "could run code" in result.output
    assert not marker.exists()


def test_not_a_state_dict(tmp_path):
    listing = write_torch_zip_pickle(tmp_path / "list.pth", pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(ModelError, match="is not a state dict: it holds a list"):
        torchfile.read(listing)
    settings = write_torch_zip_pickle(tmp_path / "cfg.pth", pickle.dumps({"lr": 0.1, "name": "x"}, protocol=2))
    with pytest.raises(ModelError, match=r"is not a state dict: none of its entries \('lr', 'name'\) holds tensors"):
        torchfile.read(settings)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ModelError, match="neither a safetensors file nor a file written by torch.save"):
        torchfile.read(text)


def test_a_view_outside_its_storage_is_refused(tmp_path):
    p = _Pickle()
    p.ordered_dict()
    p.op(b"(")
    p.text("w")
    p.tensor("0", np.zeros(4, np.float32), ("torch", "FloatStorage"), size=(1000,), stride=(1,))
    p.op(b"u")
    path = tmp_path / "bad.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", p.bytes())
        z.writestr("archive/data/0", np.zeros(4, np.float32).tobytes())
    with pytest.raises(ModelError, match="a tensor's view lies outside its storage"):
        torchfile.read(path)


def test_truncated_safetensors(tmp_path):
    path = write_safetensors(tmp_path / "w.safetensors", {"a": np.ones((64, 64), np.float32)})
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelError, match="tensor 'a' does not fit its bytes"):
        torchfile.read(path)


def test_mindspore_checkpoint_and_transformers_naming_are_named_for_what_they_are(tmp_path):
    ckpt = tmp_path / "net.ckpt"
    ckpt.write_bytes(b"\x0a\x10protobuf-ish" * 4)
    with pytest.raises(ModelError, match="is a MindSpore checkpoint"):
        torchfile.read(ckpt)
    with pytest.raises(ModelError, match="Hugging Face transformers' naming"):
        identify({"resnet.embedder.embedder.convolution.weight": (64, 3, 7, 7)})


def test_legacy_torch_file_written_by_torch():
    read = torchfile.read(FIXTURES / "torch-save-legacy.pth")
    assert read.format == "torch legacy" and len(read.tensors) == 7
    np.testing.assert_array_equal(read.tensors["transposed"], np.arange(12, dtype=np.float32).reshape(3, 4).T)


def test_an_expanded_tensor_is_described_without_building_it(tmp_path):
    """A 16 GiB tensor that torch stores as one value expanded (stride 0): `inspect` stays within 4 GB."""
    path = write_torch_zip(tmp_path / "expanded.pth", expanded([("fc.weight", (2**16, 2**16), "float32")]))
    assert path.stat().st_size < 2000
    result = bounded_cli("weights", "inspect", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4,294,967,296 values" in result.stdout and "fc.weight  (65536, 65536)" in result.stdout
    beyond = tmp_path / "beyond.pth"  # a shape no address space holds
    p = _Pickle()
    p.ordered_dict()
    p.op(b"(")
    p.text("w")
    p.tensor("0", np.zeros(1, np.float32), ("torch", "FloatStorage"), size=(2**31 - 1,) * 3, stride=(0, 0, 0))
    p.op(b"u")
    with zipfile.ZipFile(beyond, "w") as z:
        z.writestr("archive/data.pkl", p.bytes())
        z.writestr("archive/data/0", np.zeros(1, np.float32).tobytes())
    with pytest.raises(ModelError, match=r"beyond.pth: a tensor of shape \(2147483647, 2147483647, 2147483647\)"):
        torchfile.read(beyond)


def safetensors_with(path, header: bytes, body: bytes = b""):
    path.write_bytes(struct.pack("<Q", len(header)) + header + body)
    return path


CRAFTED_HEADERS = {  # a header fgvctune must refuse in one line: (header, body, what the line says)
    "a shape of 2**62 by 4 and no bytes": (
        {"w": {"dtype": "F32", "shape": [2**62, 4], "data_offsets": [0, 0]}},
        b"",
        "tensor 'w' does not fit its bytes",
    ),
    "a shape that is text": (
        {"w": {"dtype": "F32", "shape": "ab", "data_offsets": [0, 4]}},
        b"\0" * 4,
        "tensor 'w' has shape 'ab'",
    ),
    "a dtype abc": ({"w": {"dtype": "abc", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "has dtype 'abc'"),
    "a dtype that is a list": (
        {"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}},
        b"\0" * 4,
        "has dtype ['F32']",
    ),
    "a header that is not a mapping": ([1, 2], b"", "its header is not a JSON object"),
    "an entry that is not a mapping": ({"w": 5}, b"", "tensor 'w' has no valid data_offsets"),
    "JSON nested 100,000 deep": (None, b"", "its header is nested too deeply"),
}


@pytest.mark.parametrize("case", CRAFTED_HEADERS)
def test_crafted_safetensors_headers_are_refused_in_one_line(case, tmp_path):
    header, body, said = CRAFTED_HEADERS[case]
    text = b'{"w": ' + b"[" * 100_000 + b"]" * 100_000 + b"}" if header is None else json.dumps(header).encode()
    path = safetensors_with(tmp_path / "crafted.safetensors", text, body)
    result = runner.invoke(app, ["weights", "inspect", str(path)])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output[-3000:]
    assert str(path) in result.output and said in result.output


def test_a_header_length_past_the_end_of_the_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "long.safetensors"
    path.write_bytes(struct.pack("<Q", 2**64 - 1) + b'{"w": 1}')
    result = runner.invoke(app, ["weights", "inspect", str(path)])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output[-3000:]
    assert f"{path} is not a readable safetensors file (its header runs past the end of the file)" in result.output


def test_a_legacy_storage_longer_than_the_file_is_refused_before_it_is_read(tmp_path):
    """The element count before each storage of torch's legacy format is read from the file: a count of 2**40
    is refused as a truncated file, not allocated."""
    data = (FIXTURES / "torch-save-legacy.pth").read_bytes()
    reader = io.BytesIO(data)
    for _ in range(5):  # magic number, protocol, system info, the state dict, the storage keys
        _AnyUnpickler(reader).load()
    first = reader.tell()  # the first storage's element count
    path = tmp_path / "legacy.pth"
    path.write_bytes(data[:first] + struct.pack("<q", 2**40) + data[first + 8 :])
    with pytest.raises(ModelError, match=r"legacy.pth: storage \S+ is truncated"):
        torchfile.read(path)


class _AnyUnpickler(pickle.Unpickler):
    """Reads torch's pickles without torch, to find where they end."""

    def find_class(self, module, name):
        return lambda *args: None

    def persistent_load(self, pid):
        return None


def _repacked(source, path, compressed: set[str]):
    """The members of a torch zip file written again, those named in `compressed` deflated."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w") as new:
        for info in old.infolist():
            method = zipfile.ZIP_DEFLATED if info.filename in compressed else zipfile.ZIP_STORED
            new.writestr(info.filename, old.read(info), compress_type=method)
    return path


def test_a_compressed_member_is_refused_before_it_is_inflated(tmp_path):
    """torch.save stores every member uncompressed (PyTorchStreamWriter::writeRecord passes compression level 0
    for all of them), so a deflated one is not torch's: 64 MiB of zeros claimed by the pickle, in 64 KB."""
    plain = write_torch_zip(tmp_path / "plain.pth", {"w": np.zeros(2**24, np.float32)})
    storage = _repacked(plain, tmp_path / "storage.pth", {"archive/data/0"})
    assert storage.stat().st_size < 2**17
    pickled = _repacked(plain, tmp_path / "pickle.pth", {"archive/data.pkl"})
    for path, said in ((storage, "its storage 0 is compressed"), (pickled, "its data.pkl is compressed")):
        result = runner.invoke(app, ["weights", "inspect", str(path)])
        assert result.exit_code == 1 and result.output.count("\n") == 1, result.output[-3000:]
        assert f"{path} is not as torch.save writes it: {said}" in result.output


def test_a_pickle_over_the_limit_is_refused_unread(tmp_path, monkeypatch):
    path = write_torch_zip(tmp_path / "w.pth", {"w": np.zeros(4, np.float32)})
    monkeypatch.setattr(torchfile, "PICKLE_LIMIT", 100)
    with pytest.raises(ModelError, match=r"w.pth: its data.pkl holds \d+ bytes, more than a state dict's pickle"):
        torchfile.read(path)


def _local_header(name: str, data: bytes) -> bytes:
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 33, zipfile.crc32(data), len(data), len(data),
                       len(name), 0) + name.encode()  # fmt: skip


def test_storages_in_overlapping_members_are_refused(tmp_path):
    """Stored members that nest (storage 0's bytes hold storage 1's header and bytes, and so on) would each be
    read in full: 64 storages of 4 to 7 KB each from a file of 20 KB. Their bytes together exceed the file's."""
    names = [f"archive/data/{i}" for i in range(64)]
    blobs = [bytes(4096)]
    for name in reversed(names[1:]):
        blobs.insert(0, _local_header(name, blobs[0]) + blobs[0])
    p = _Pickle()
    p.ordered_dict()
    p.op(b"(")
    for i, blob in enumerate(blobs):
        p.text(f"w{i}")
        p.tensor(str(i), np.zeros(len(blob) // 4, np.float32), ("torch", "FloatStorage"))
    p.op(b"u")
    pickled = p.bytes()
    members = [
        ("archive/data.pkl", pickled, 0),
        (names[0], blobs[0], len(_local_header("archive/data.pkl", pickled)) + len(pickled)),
    ]
    offset = members[1][2] + len(_local_header(names[0], b""))
    for name, blob in zip(names[1:], blobs[1:]):
        members.append((name, blob, offset))
        offset += len(_local_header(name, b""))
    head = _local_header("archive/data.pkl", pickled) + pickled + _local_header(names[0], blobs[0]) + blobs[0]
    directory = b"".join(
        struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 33, zipfile.crc32(data), len(data), len(data),
                    len(name), 0, 0, 0, 0, 0, at) + name.encode()
        for name, data, at in members
    )  # fmt: skip
    path = tmp_path / "nested.pth"
    path.write_bytes(head + directory + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members),
                                                    len(directory), len(head), 0))  # fmt: skip
    assert path.stat().st_size < 32 * 2**10 and sum(map(len, blobs)) > 256 * 2**10
    with pytest.raises(ModelError, match="nested.pth: its storages claim more bytes than the file has"):
        torchfile.read(path)
