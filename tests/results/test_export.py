"""results/export.py: MindIR and ONNX exports predict what the checkpoint predicts."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import FAST, SAMPLE
from fgvctune.cli import app
from fgvctune.training.trainer import train

runner = CliRunner()


@pytest.fixture(scope="module")
def run(base):
    return base.parent  # a finished run folder: manufacturers, 3 classes


def test_export_matches_the_checkpoint(run, tmp_path):
    result = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "export")])
    assert result.exit_code == 0, result.output
    assert "same predictions as the checkpoint on 8 images" in result.output
    import mindspore as ms
    from mindspore import nn

    from fgvctune.results.model import load_model

    exported = nn.GraphCell(ms.load(str(tmp_path / "export" / "mobilenet_v3_small_100.mindir")))
    model = load_model(run)
    size = FAST["image_resize"]
    x = ms.Tensor(np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32))
    np.testing.assert_allclose(exported(x).asnumpy(), model.network(x).asnumpy(), rtol=1e-4, atol=1e-5)
    assert (tmp_path / "export" / "labels.csv").read_text() == (run / "labels.csv").read_text()
    mindir = (tmp_path / "export" / "mobilenet_v3_small_100.mindir").read_bytes()
    assert b"BatchNorm" not in mindir  # folded
    assert b"Conv2D" in mindir and b"Custom" not in mindir  # MindSpore's own ops, not fgvctune's CPU kernels


@pytest.mark.e2e
def test_onnx_export_is_checked_with_onnx_runtime(run, tmp_path, cache):
    """mobilenet_v2's operators all export to ONNX: the file predicts what the checkpoint predicts, checked
    by fgvctune with ONNX Runtime and here again; so does mobilenet_v3's (hard swish through its ONNX form)."""
    import onnxruntime

    from fgvctune.results.model import load_model

    folder = tmp_path / "v2"
    train(
        adapter="aircraft",
        data_dir=str(SAMPLE),
        model="mobilenet_v2_100",
        pretrained=False,
        epoch_size=1,
        lr=0.05,
        cache_dir=cache,
        output=folder,
        progress=False,
        **{**FAST, "image_resize": 32},
    )
    result = runner.invoke(app, ["export", str(folder), "--format", "ONNX", "-o", str(tmp_path / "onnx")])
    assert result.exit_code == 0, result.output
    assert "same predictions as the checkpoint on 8 images" in result.output
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "mobilenet_v2_100.onnx"))
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    import mindspore as ms

    expected = load_model(folder).network(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0], expected, rtol=1e-4, atol=1e-5)

    v3 = runner.invoke(app, ["export", str(run), "--format", "ONNX", "-o", str(tmp_path / "v3")])
    assert v3.exit_code == 0 and "same predictions as the checkpoint on 8 images" in v3.output, v3.output


@pytest.mark.parametrize("name", ["mobilenet_v3_small_100", "resnet18", "resnet50", "resnest50"])
@pytest.mark.parametrize("built", ["fgvctune", "mindcv"])
def test_onnx_forms_export_what_the_network_computes(name, built, tmp_path):
    """MindSpore's ONNX exporter refuses hard swish and the in-place add of MindCV's ResNet and ResNeSt blocks:
    with the forms export puts in their place the file computes what the folded network does (ONNX Runtime
    against MindSpore), on fgvctune's network (the CPU's swaps) and on MindCV's own (what other devices export),
    and the cells are theirs again afterwards, so folding still finds every pair."""
    import mindcv
    import mindspore as ms
    import onnxruntime

    from fgvctune import runtime
    from fgvctune.kernels import cells, fold
    from fgvctune.models.factory import create_network
    from fgvctune.results.export import onnx_ready

    runtime.start()

    def folded_network():
        ms.set_seed(0)
        network = create_network(name, 10)[0] if built == "fgvctune" else mindcv.create_model(name, num_classes=10)
        network.set_train(False)
        return network, fold.fold(network)

    network, folded = folded_network()
    cells.restore(network)
    kinds = [type(cell) for _, cell in network.cells_and_names()]
    x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32))
    with onnx_ready(network, onnx=True):
        ms.export(network, x, file_name=str(tmp_path / name), file_format="ONNX")
    assert [type(cell) for _, cell in network.cells_and_names()] == kinds
    assert len(fold.pairs(network)) == folded
    session = onnxruntime.InferenceSession(str(tmp_path / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    exported = session.run(None, {session.get_inputs()[0].name: x.asnumpy()})[0]
    expected = network(x).asnumpy()
    np.testing.assert_allclose(exported, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    if built == "mindcv":  # what the forms are for, on a network of its own (MindSpore exports a network once)
        plain, _ = folded_network()
        refused = "HSwish" if name.startswith("mobilenet") else "InplaceAddExt"
        with pytest.raises(RuntimeError, match=f"Exporting {refused} operator is not yet supported"):
            ms.export(plain, x, file_name=str(tmp_path / "plain"), file_format="ONNX")
