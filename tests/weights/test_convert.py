"""PyTorch weights into MindCV models: parity with the source models, the commands, and fine-tuning from them.

Parity runs without torch: tests/fixtures/weights/*.npz hold, for each architecture and naming family,
the source state dict's names and shapes and what the real PyTorch model computed from seeded weights
(tests/fixtures/weights/make.py). The tests draw the same weights, write them as real .safetensors and
torch zip files, convert them and compare the logits and feature maps.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import FAST, SAMPLE, bounded_cli
from fgvctune import runtime
from fgvctune.cli import app
from fgvctune.errors import ModelError
from fgvctune.weights import maps as weightmaps
from fgvctune.weights.convert import TOLERANCE, Reference, import_weights, inspect_weights
from fgvctune.weights.loading import create_network
from fgvctune.weights.maps import SUPPORTED, identify
from weightfiles import (
    FIXTURES,
    expanded,
    fixture_path,
    load_fixture,
    seeded_input,
    seeded_weights,
    tap_summary,
    timm_convnext,
    timm_efficientnet,
    timm_resnet,
    write_safetensors,
    write_torch_zip,
)

ms = runtime.start(mode="pynative")

pytestmark = pytest.mark.usefixtures("pynative")
runner = CliRunner()

# timm and torchvision name and build ResNets alike: their fixtures are the same state dict and logits
# (test_timm_and_torchvision_resnets_are_one_case), so one conversion covers both.
RESNETS = [model for model in SUPPORTED if model.startswith("resnet")]
CASES = [
    (model, family)
    for model in SUPPORTED
    for family in ("timm", "torchvision")
    if not (model in RESNETS and family == "timm")
]


def source_file(folder, model: str, family: str, fmt: str = ""):
    """The fixture's seeded weights in a real file: timm's as safetensors (as the Hub serves them),
    torchvision's as a torch zip .pth (as its model zoo does)."""
    meta, logits, taps = load_fixture(fixture_path(model, family))
    weights = seeded_weights(meta["entries"], meta["seed"])
    fmt = fmt or ("safetensors" if family == "timm" else "pth")
    path = folder / f"{model}-{family}.{fmt}"
    (write_safetensors if fmt == "safetensors" else write_torch_zip)(path, weights)
    return path, meta, logits, taps


def run_with_taps(network, cells: dict[str, str]):
    """Logits for the seeded input, and the feature maps the given cells produce."""
    captured, handles = {}, []
    found = dict(network.cells_and_names())
    for label, cell in cells.items():
        hook = lambda c, args, out, label=label: captured.__setitem__(label, out.asnumpy())  # noqa: E731
        handles.append(found[cell].register_forward_hook(hook))
    network.set_train(False)
    logits = network(ms.Tensor(seeded_input())).asnumpy()
    for handle in handles:
        handle.remove()
    return logits, captured


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> float:
    difference = float(np.abs(actual - expected).max())
    assert difference <= TOLERANCE * float(np.abs(expected).max()), f"{what}: largest difference {difference:.3g}"
    return difference


@pytest.mark.parametrize("model,family", CASES, ids=[f"{m}-{f}" for m, f in CASES])
def test_converted_network_computes_what_the_source_computes(model, family, tmp_path, record_property):
    path, meta, expected, taps = source_file(tmp_path, model, family)
    conversion = import_weights(path, model, tmp_path / "converted.ckpt", check=False)
    assert conversion.mapping.model == model and family in conversion.mapping.family
    assert not conversion.mapping.unused and not conversion.missing
    network, report = create_network(model, expected.shape[1], ckpt_path=str(tmp_path / "converted.ckpt"))
    assert not report.missing and not report.dropped and not report.unexpected
    logits, features = run_with_taps(network, meta["taps"])
    for label in meta["taps"]:
        assert_close(tap_summary(features[label]), taps[label], f"feature map {label}")
    difference = assert_close(logits, expected, "logits")
    assert (logits.argmax(1) == expected.argmax(1)).all()
    record_property("largest_logit_difference", f"{difference:.3g} of {float(np.abs(expected).max()):.3g}")
    print(f"\n{model} from {family}: largest logit difference {difference:.3g} (scale {np.abs(expected).max():.3g})")


@pytest.mark.parametrize("model", RESNETS)
def test_timm_and_torchvision_resnets_are_one_case(model):
    timm_meta, timm_logits, timm_taps = load_fixture(fixture_path(model, "timm"))
    tv_meta, tv_logits, tv_taps = load_fixture(fixture_path(model, "torchvision"))
    assert timm_meta["entries"] == tv_meta["entries"] and timm_meta["taps"] == tv_meta["taps"]
    np.testing.assert_array_equal(timm_logits, tv_logits)
    for label in timm_taps:
        np.testing.assert_array_equal(timm_taps[label], tv_taps[label])
    shapes = {name: tuple(shape) for name, shape, _ in timm_meta["entries"]}
    assert identify(shapes).family == "timm or torchvision"


def test_same_weights_through_safetensors_and_pth_give_the_same_checkpoint(tmp_path):
    model = "mobilenet_v3_small_100"
    st, *_ = source_file(tmp_path, model, "torchvision", "safetensors")
    pth, *_ = source_file(tmp_path, model, "torchvision", "pth")
    import_weights(st, model, tmp_path / "a.ckpt", check=False)
    import_weights(pth, model, tmp_path / "b.ckpt", check=False)
    a, b = ms.load_checkpoint(str(tmp_path / "a.ckpt")), ms.load_checkpoint(str(tmp_path / "b.ckpt"))
    assert list(a) == list(b) and a["fgvctune_network"] == b["fgvctune_network"]
    for name in a:
        if name != "fgvctune_network":
            np.testing.assert_array_equal(a[name].asnumpy(), b[name].asnumpy())


def test_checkpoint_records_the_network_settings(tmp_path):
    """torchvision's MobileNetV3 needs BatchNorm epsilon 1e-3 and PyTorch's padding: the checkpoint says so,
    and a network built from it has them."""
    path, *_ = source_file(tmp_path, "mobilenet_v3_small_100", "torchvision")
    import_weights(path, output=tmp_path / "c.ckpt", check=False)
    saved = ms.load_checkpoint(str(tmp_path / "c.ckpt"))
    assert json.loads(saved["fgvctune_network"]) == {"bn_eps": 0.001, "padding": "pytorch"}
    network, _ = create_network("mobilenet_v3_small_100", 5, ckpt_path=str(tmp_path / "c.ckpt"))
    cells = dict(network.cells_and_names())
    assert cells["features.1"].eps == 0.001
    assert cells["features.4.layers.3"].pad_mode == "pad" and cells["features.4.layers.3"].padding == (1, 1, 1, 1)


def test_wrong_model_named_for_the_file(tmp_path):
    path, *_ = source_file(tmp_path, "resnet18", "torchvision")
    with pytest.raises(ModelError, match=r"holds resnet18 weights .* not mobilenet_v3_small_100"):
        import_weights(path, "mobilenet_v3_small_100", tmp_path / "x.ckpt", check=False)
    assert not (tmp_path / "x.ckpt").exists()


def test_shape_mismatch_names_the_tensor(tmp_path):
    meta, _, _ = load_fixture(fixture_path("resnet18", "torchvision"))
    weights = seeded_weights(meta["entries"])
    weights["layer2.0.conv1.weight"] = weights["layer2.0.conv1.weight"][:, :, :1, :1].copy()
    path = write_torch_zip(tmp_path / "odd.pth", weights)
    with pytest.raises(ModelError, match=r"layer2\.0\.conv1\.weight has shape \(128, 64, 1, 1\), MindCV's "):
        import_weights(path, output=tmp_path / "odd.ckpt", check=False)


def test_unused_tensors_are_reported_and_a_headless_file_converts(tmp_path):
    meta, _, _ = load_fixture(fixture_path("resnet18", "timm"))
    weights = seeded_weights(meta["entries"])
    weights.pop("fc.weight"), weights.pop("fc.bias")
    weights["aux_head.weight"] = np.ones((3, 3), np.float32)
    path = write_safetensors(tmp_path / "headless.safetensors", weights)
    inspection = inspect_weights(path)
    assert inspection.mapping.unused == ["aux_head.weight"] and inspection.mapping.num_classes is None
    conversion = import_weights(path, output=tmp_path / "h.ckpt")
    assert conversion.missing == ["classifier.weight", "classifier.bias"]
    assert "no classifier" in conversion.check_note
    network, report = create_network("resnet18", 4, ckpt_path=str(tmp_path / "h.ckpt"))
    assert report.missing == ["classifier.bias", "classifier.weight"] and report.loaded == len(conversion.mapping.names)


def test_another_architecture_is_one_line(tmp_path):
    weights = {"backbone.conv.weight": np.ones((8, 3, 3, 3), np.float32), "head.weight": np.ones((2, 8), np.float32)}
    path = write_torch_zip(tmp_path / "other.pth", weights)
    result = runner.invoke(app, ["weights", "import", str(path), "-o", str(tmp_path / "o.ckpt")])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "neither timm's nor torchvision's" in result.output


def refuses_a_wrong_conversion(folder, monkeypatch, reference: Reference | None = None) -> None:
    """The self-check of `weights import`: the right conversion passes and is written; the same conversion with
    torchvision's BatchNorm epsilon forgotten (a converter bug, made on purpose) is refused and nothing is written.
    `reference`: the source's logits; None runs the source model with torch."""
    path, *_ = source_file(folder, "mobilenet_v3_small_100", "torchvision")
    right = import_weights(path, output=folder / "right.ckpt", reference=reference)
    assert right.check is not None and right.check.passed and (folder / "right.ckpt").is_file(), right.check_note
    assert right.check.library == "torchvision"
    monkeypatch.setattr(weightmaps, "_TV_MOBILENET_V3", {"padding": "pytorch"})
    with pytest.raises(ModelError, match=r"does not compute what torchvision's mobilenet_v3_small computes") as error:
        import_weights(path, output=folder / "wrong.ckpt", reference=reference)
    assert "nothing was written" in error.value.hint and not list(folder.glob("*wrong*"))


def test_self_check_refuses_a_wrong_conversion(tmp_path, monkeypatch):
    """Without torch: the source's logits are the fixture's, computed by the real torchvision model."""
    _, expected, _ = load_fixture(fixture_path("mobilenet_v3_small_100", "torchvision"))
    refuses_a_wrong_conversion(tmp_path, monkeypatch, Reference("torchvision", seeded_input(), expected))


def test_self_check_with_torch_refuses_a_wrong_conversion(tmp_path, monkeypatch):
    """The check as `weights import` runs it where torch is installed (the bench extra); skipped without torch."""
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    refuses_a_wrong_conversion(tmp_path, monkeypatch)


def test_state_dict_builders_match_timms_models():
    """tests/weightfiles.py builds timm's state dicts as timm does: the real models' names, shapes and order."""
    built = {
        "resnet18": timm_resnet((2, 2, 2, 2), bottleneck=False),
        "resnet101": timm_resnet((3, 4, 23, 3)),
        "convnext_tiny": timm_convnext((3, 3, 9, 3), (96, 192, 384, 768)),
        "efficientnet_b0": timm_efficientnet(),
    }
    for model, entries in built.items():
        meta, _, _ = load_fixture(fixture_path(model, "timm"))
        assert entries == [(name, tuple(shape), dtype) for name, shape, dtype in meta["entries"]], model


RESNETS_INSTEAD = "resnet18, resnet34, resnet50, resnet101"
VARIANTS = {  # timm's name: (its state dict, the naming family in the error, what fgvctune converts instead)
    "resnet50d": (timm_resnet((3, 4, 6, 3), stem_width=32, stem="deep", avg_down=True), "timm", RESNETS_INSTEAD),
    "resnet26t": (timm_resnet((2, 2, 2, 2), stem_width=32, stem="deep_tiered", avg_down=True), "timm", RESNETS_INSTEAD),
    "resnet152": (timm_resnet((3, 8, 36, 3)), "timm or torchvision", RESNETS_INSTEAD),
    "resnext50_32x4d": (timm_resnet((3, 4, 6, 3), groups=32, base_width=4), "timm or torchvision", RESNETS_INSTEAD),
    "convnext_small": (timm_convnext((3, 3, 27, 3), (96, 192, 384, 768)), "timm", "convnext_tiny"),
    "convnext_base": (timm_convnext((3, 3, 27, 3), (128, 256, 512, 1024)), "timm", "convnext_tiny"),
    "convnextv2_tiny": (timm_convnext((3, 3, 9, 3), (96, 192, 384, 768), v2=True), "timm", "convnext_tiny"),
    "efficientnet_b1": (timm_efficientnet(1.0, 1.1), "timm", "efficientnet_b0"),
    "efficientnet_b3": (timm_efficientnet(1.2, 1.4), "timm", "efficientnet_b0"),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_variants_not_converted_are_named_in_one_line(variant, tmp_path):
    entries, family, instead = VARIANTS[variant]
    path = write_torch_zip(tmp_path / f"{variant}.pth", expanded(entries))
    result = runner.invoke(app, ["weights", "import", str(path), "-o", str(tmp_path / "o.ckpt")])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert f"{path}: these {family} weights are {variant} (" in result.output
    assert f"which fgvctune does not convert (of this architecture fgvctune converts {instead})" in result.output
    assert not (tmp_path / "o.ckpt").exists()
    inspected = runner.invoke(app, ["weights", "inspect", str(path)])
    assert inspected.exit_code == 0, inspected.output
    assert f"matches no MindCV model fgvctune converts: these {family} weights are {variant} (" in inspected.output
    assert f"fgvctune converts {instead})" in inspected.output


def test_a_file_with_a_16_gib_expanded_tensor_beside_its_weights_converts_within_4_gb(tmp_path):
    """Only the tensors the conversion uses are copied out of the file, once their shapes are checked."""
    entries = timm_resnet((2, 2, 2, 2), bottleneck=False) + [("junk", (2**16, 2**16), "float32")]
    path = write_torch_zip(tmp_path / "resnet18.pth", expanded(entries))
    result = bounded_cli("weights", "import", str(path), "-o", str(tmp_path / "r.ckpt"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "r.ckpt").is_file()


def test_resnet_blocks_with_attention_are_refused():
    """timm's ResNets with attention in their blocks: SE named, any other kind caught by its extra tensors."""
    shapes = {name: shape for name, shape, _ in timm_resnet((2, 2, 2, 2), bottleneck=False)}
    squeeze = {"layer1.0.se.fc1.weight": (8, 64, 1, 1), "layer1.0.se.fc2.weight": (64, 8, 1, 1)}
    with pytest.raises(ModelError, match=r"timm weights are seresnet18 \(.*, SE attention\)"):
        identify({**shapes, **squeeze})
    with pytest.raises(ModelError, match=r"a ResNet with layers resnet18 lacks \(layer1\.0\.se\.channel\.fc1\.weight"):
        identify({**shapes, "layer1.0.se.channel.fc1.weight": (8, 64, 1, 1)})  # CBAM's channel attention


def test_ckpt_path_takes_a_pytorch_file_and_caches_the_conversion(tmp_path):
    path, meta, expected, _ = source_file(tmp_path, "mobilenet_v3_small_100", "timm")
    cache = tmp_path / "cache"
    network, report = create_network("mobilenet_v3_small_100", 5, ckpt_path=str(path), cache_dir=str(cache))
    assert report.dropped == ["classifier.3.weight", "classifier.3.bias"] and not report.missing
    cached = list((cache / "weights").glob("*.ckpt"))
    assert len(cached) == 1 and str(path) in report.source
    stamp = cached[0].stat().st_mtime_ns
    create_network("mobilenet_v3_small_100", 5, ckpt_path=str(path), cache_dir=str(cache))
    assert cached[0].stat().st_mtime_ns == stamp  # converted once
    same, _ = create_network("mobilenet_v3_small_100", 1000, ckpt_path=str(path), cache_dir=str(cache))
    logits, _ = run_with_taps(same, {})
    assert_close(logits, expected, "logits through --ckpt-path")
    with pytest.raises(ModelError, match="not resnet50"):
        create_network("resnet50", 5, ckpt_path=str(path), cache_dir=str(cache))


def test_inspect_and_import_commands(tmp_path):
    path, *_ = source_file(tmp_path, "mobilenet_v3_large_100", "torchvision")
    result = runner.invoke(app, ["weights", "inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "torch zip file, 312 tensors" in result.output
    assert "naming: torchvision; model: mobilenet_v3_large, 1000-class classifier" in result.output
    assert "matches MindCV mobilenet_v3_large_100: 266 tensors map onto it, 46 num_batches_tracked ignored" in (
        result.output
    )
    assert "network settings: BatchNorm epsilon 0.001, PyTorch padding" in result.output
    result = runner.invoke(app, ["weights", "import", str(path), "-m", "mobilenet_v3_large_100", "--no-check"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mobilenet_v3_large_100-torchvision-mobilenet_v3_large_100.ckpt").is_file()
    assert "converted 266 tensors" in result.output and "check skipped (--no-check)" in result.output


@pytest.mark.e2e
def test_train_from_a_pytorch_file_then_evaluate(tmp_path, cache):
    """Fine-tuning from a torchvision .pth end to end; the run's checkpoints keep the network settings."""
    from fgvctune.results.evaluation import evaluate
    from fgvctune.training.trainer import train

    path, *_ = source_file(tmp_path, "mobilenet_v3_small_100", "torchvision")
    run = train(
        adapter="aircraft",
        data_dir=str(SAMPLE),
        ckpt_path=str(path),
        pretrained=False,
        epoch_size=1,
        lr=0.01,
        cache_dir=cache,
        output=tmp_path / "run",
        progress=False,
        **{**FAST, "image_resize": 32},
    )
    assert run.best is not None and np.isfinite(run.best["train_loss"])
    saved = ms.load_checkpoint(str(tmp_path / "run" / "best.ckpt"))
    assert json.loads(saved["fgvctune_network"])["bn_eps"] == 0.001
    result = evaluate(tmp_path / "run")
    assert result.count > 0


def test_real_torch_files_read_without_torch():
    """Files torch.save and safetensors.torch wrote (tests/fixtures/weights/make.py)."""
    from fgvctune.weights import torchfile

    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    expected = {
        "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 8,
        "half": np.array([0.5, -1.25, 3.0], np.float32),
        "bf16": np.array([1.0, -2.5, 0.15625], np.float32),
        "steps": np.array(7, np.int64),
        "transposed": base.T,
        "row": base[2],
        "param": np.full(2, 0.25, np.float32),
    }
    for name, container in (("torch-save.pth", "state_dict"), ("torch-save-legacy.pth", "")):
        read = torchfile.read(FIXTURES / name)
        assert read.container == container and list(read.tensors) == list(expected), name
        for key, value in expected.items():
            np.testing.assert_array_equal(read.tensors[key], value, err_msg=f"{name}: {key}")
            assert read.tensors[key].dtype == value.dtype, f"{name}: {key}"  # half and bfloat16 as float32
    read = torchfile.read(FIXTURES / "safetensors-torch.safetensors")
    assert read.format == "safetensors"
    for key in ("conv.weight", "half", "bf16", "steps", "param"):
        np.testing.assert_array_equal(read.tensors[key], expected[key])


def test_inspect_needs_no_mindspore(tmp_path):
    import subprocess
    import sys

    path = shutil.copy(FIXTURES / "torch-save.pth", tmp_path / "t.pth")
    code = (
        "import sys\nfrom fgvctune.cli import app\n"
        f"try:\n    app(['weights', 'inspect', {str(path)!r}])\nexcept SystemExit:\n    pass\n"
        "print('mindspore imported' if 'mindspore' in sys.modules else 'no mindspore')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().endswith("no mindspore"), result.stdout + result.stderr
    assert (
        "torch zip file, 7 tensors under 'state_dict', 49 values (float32 4, float16 1, bfloat16 1, int64 1)"
        in result.stdout
    )
