"""Reading PyTorch weight files without torch, and refusing what could run code or is not a state dict."""

from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from fgvctune.cli import app
from fgvctune.errors import ModelError
from fgvctune.models import torchfile
from fgvctune.models.weightmaps import identify
from weightfiles import FIXTURES, _Pickle, write_safetensors, write_torch_zip, write_torch_zip_pickle

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
    with pytest.raises(ModelError, match="tensor a does not fit its bytes"):
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
