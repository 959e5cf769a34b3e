"""Weights: local checkpoints the tests make themselves, and the download path when offline."""

from __future__ import annotations

import numpy as np
import pytest

from fgvctune import runtime
from fgvctune.errors import ModelError
from fgvctune.models.factory import create_network

ms = runtime.start(mode="pynative")
import mindcv  # noqa: E402

pytestmark = pytest.mark.usefixtures("pynative")

MODEL = "mobilenet_v3_small_100"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A 1000-class network and its checkpoint, as a downloaded MindCV checkpoint would be."""
    net = mindcv.create_model(MODEL, num_classes=1000)
    path = tmp_path_factory.mktemp("ckpt") / "imagenet.ckpt"
    ms.save_checkpoint(net, str(path))
    return net, path


def test_other_class_count_drops_only_the_classifier(source):
    net, path = source
    fresh, report = create_network(MODEL, 7, ckpt_path=str(path))
    assert report.dropped == ["classifier.3.weight", "classifier.3.bias"]
    assert not report.missing and not report.unexpected
    mine, theirs = fresh.parameters_dict(), net.parameters_dict()
    for name in ("features.0.weight", "classifier.0.weight", "features.1.moving_mean"):
        np.testing.assert_array_equal(mine[name].asnumpy(), theirs[name].asnumpy())
    assert mine["classifier.3.weight"].shape == (7, 1024)


def test_training_checkpoint_leaves_optimizer_state_out(tmp_path):
    from fgvctune.training.step import TrainStep

    net = mindcv.create_model(MODEL, num_classes=4)
    optimizer = mindcv.create_optimizer(net.trainable_params(), opt="adamw", lr=0.01)
    step = TrainStep(net, mindcv.create_loss("CE"), optimizer, ms.nn.Identity())
    path = tmp_path / "last.ckpt"
    ms.save_checkpoint(step, str(path), append_dict={"fgvctune_epoch": 3})
    _, report = create_network(MODEL, 4, ckpt_path=str(path))
    assert report.optimizer_state > 2 * len(net.trainable_params()) and not report.unexpected
    assert report.loaded == len(net.parameters_dict()) and not report.dropped


def test_missing_path_is_an_error_not_random_weights(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        create_network(MODEL, 3, ckpt_path=str(tmp_path / "nope.ckpt"))


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.ckpt"
    path.write_bytes(b"definitely not protobuf" * 10)
    with pytest.raises(ModelError, match="not a readable MindSpore checkpoint"):
        create_network(MODEL, 3, ckpt_path=str(path))


def test_a_pytorch_file_is_refused_in_one_line_naming_it(tmp_path):
    """The models room loads MindSpore checkpoints; fgvctune.weights.loading.create_network converts PyTorch files."""
    path = tmp_path / "model.pth"
    path.write_bytes(b"PK" * 100)
    with pytest.raises(ModelError, match="is a PyTorch weight file") as caught:
        create_network(MODEL, 3, ckpt_path=str(path))
    assert str(path) in caught.value.message and "weights.loading" in caught.value.message


def test_checkpoint_of_another_architecture(tmp_path):
    path = tmp_path / "resnet.ckpt"
    ms.save_checkpoint(mindcv.create_model("resnet18", num_classes=3), str(path))
    with pytest.raises(ModelError, match="does not fit mobilenet_v3_small_100"):
        create_network(MODEL, 3, ckpt_path=str(path))


def test_offline_download_fails_with_a_hint_and_leaves_no_file(monkeypatch, tmp_path):
    from mindcv.models.registry import _model_pretrained_cfgs
    from mindcv.utils import download

    monkeypatch.setattr(download, "_DEFAULT_DOWNLOAD_ROOT", str(tmp_path))  # where MindCV puts its downloads
    monkeypatch.setitem(_model_pretrained_cfgs[MODEL], "url", "http://127.0.0.1:9/mobilenet.ckpt")
    with pytest.raises(ModelError, match="could not download pretrained weights") as caught:
        create_network(MODEL, 3, pretrained=True)
    assert "--ckpt-path" in caught.value.hint
    assert tmp_path.is_dir() and not list(tmp_path.rglob("mobilenet.ckpt"))  # nothing for the next try to trust


def test_unknown_model():
    with pytest.raises(ModelError, match="unknown model 'mobilenet_v9'"):
        create_network("mobilenet_v9", 3)


def test_the_seeded_dropout_is_the_one_that_runs():
    """In training mode the same input comes out differently at every call (a fresh mask each time, p of the
    units dropped), and identically in inference mode."""
    from fgvctune.models.dropout import SeededDropout

    network, _ = create_network(MODEL, 4)
    inner = network.classifier.cell_list  # what the SequentialCell runs
    assert any(isinstance(c, SeededDropout) for c in inner) and not any(type(c) is ms.nn.Dropout for c in inner)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32))
    network.set_train(True)
    first, second = network(x).asnumpy(), network(x).asnumpy()
    assert not np.allclose(first, second)
    network.set_train(False)
    np.testing.assert_array_equal(network(x).asnumpy(), network(x).asnumpy())


@pytest.mark.parametrize("entry", ["[1, 2]", "{", "[" * 100_000, "x" * 10_000])
def test_a_crafted_network_record_in_a_checkpoint_is_refused_in_one_line(entry):
    from fgvctune.models import torchcompat

    with pytest.raises(ModelError, match="entry is not readable") as caught:
        torchcompat.read({torchcompat.RECORD: entry})
    assert len(caught.value.message) < 200
