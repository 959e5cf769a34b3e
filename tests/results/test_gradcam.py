"""Grad-CAM (results/gradcam.py): where the model found its class, on every supported network, and one-line errors
where there is nothing to explain. (predict --explain and eval's top losses: test_evaluation.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import SAMPLE, built_once, trained_once
from fgvctune.cli import app
from fgvctune.weights.maps import SUPPORTED

runner = CliRunner()
SIDE = 96  # pixels: mobilenet_v3_small's last block gives a 3x3 map, each quadrant a corner of it
PATCH = slice(6, 36)  # the bright square of the top-left corner, inside the centre crop eval keeps
# from scratch, no flips, crops that keep the corner
CORNER_RUN = dict(adapter="folder", pretrained=False, epoch_size=5, image_resize=SIDE, batch_size=32, opt="adamw")
CORNER_RUN.update(lr=0.005, scale=[0.8, 1.0], hflip=0.0)
# fgvctune's default model in the quick loop; through the other whole networks is e2e, as the swaps' tests are
ARCHITECTURES = [n if n == "mobilenet_v3_small_100" else pytest.param(n, marks=pytest.mark.e2e) for n in SUPPORTED]


def corner_images(folder: Path) -> None:
    """Noise, and for the class `corner` a white square in the top-left corner: 256 training, 32 val images each."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 256), ("val", 32)):
        for name in ("corner", "plain"):
            (folder / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 200, (SIDE, SIDE, 3), dtype=np.uint8)
                if name == "corner":
                    pixels[PATCH, PATCH] = 255
                Image.fromarray(pixels).save(folder / split / name / f"{i}.png")


@pytest.fixture(scope="module")
def corner_run(tmp_path_factory) -> Path:
    """A run that tells the two apart, in five epochs."""
    data = built_once(tmp_path_factory, "corners", lambda folder: corner_images(folder / "tree")) / "tree"
    return trained_once(tmp_path_factory, "corner", 0.95, data_dir=str(data), **CORNER_RUN)


def samples_of(folder: Path, name: str) -> list:
    from fgvctune.data.contract import Sample

    return [Sample(path, name, str(path)) for path in sorted(folder.glob("*.png"))]


@pytest.mark.e2e
def test_a_model_that_finds_its_class_in_the_top_left_corner_is_shown_looking_there(corner_run):
    from fgvctune.data.dataset import load_dataset
    from fgvctune.results import gradcam
    from fgvctune.results.model import load_model

    model = load_model(corner_run)
    c = model.config
    samples = [s for s in load_dataset("folder", c.data_dir, ["val"]).splits["val"] if s.label == "corner"]
    heat = gradcam.explain(model, samples, classes=[model.labels.ids["corner"]] * len(samples)).heatmaps
    half = SIDE // 2
    quadrants = np.stack(
        [heat[:, :half, :half], heat[:, :half, half:], heat[:, half:, :half], heat[:, half:, half:]]
    ).mean(axis=(2, 3))  # (top left, top right, bottom left, bottom right) x images
    assert (quadrants.argmax(axis=0) == 0).all(), "the top-left quadrant is the hottest of every image"
    assert quadrants[0].mean() > 1.5 * quadrants[1:].mean(), quadrants.mean(axis=1)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_heatmaps_through_folded_batchnorm_and_fgvctunes_kernels_are_those_of_mindcvs_plain_network(
    name, tmp_path, cache
):
    """What load_model gives (BatchNorm folded, the ResNet blocks fused, fgvctune's CPU kernels swapped in) and
    MindCV's network as it builds it, with the same random weights: the same heatmaps, for each class of each
    image; on every architecture fgvctune converts weights for."""
    import mindspore as ms

    from fgvctune.config import TrainConfig
    from fgvctune.data.labels import LabelMap
    from fgvctune.kernels import fuse
    from fgvctune.models.factory import create_network
    from fgvctune.models.network import build_network
    from fgvctune.results import gradcam
    from fgvctune.results.model import Model

    ms.set_seed(0)
    swapped, _ = create_network(name, 3, cache_dir=cache)
    swapped.set_train(False)
    fuse.fold_and_fuse(swapped, cache_dir=cache)
    plain = build_network(name, 3)
    plain.set_train(False)
    ms.load_param_into_net(plain, swapped.parameters_dict())
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (80, 70, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    samples = samples_of(tmp_path, "a") * 3
    classes = [0, 0, 1, 1, 2, 2]
    labels, config = LabelMap(("a", "b", "c")), TrainConfig(model=name, image_resize=64, cache_dir=cache)
    ours, theirs = (gradcam.explain(Model(n, config, labels, tmp_path), samples, classes) for n in (swapped, plain))
    assert ours.heatmaps.shape == (6, 64, 64) and list(ours.classes) == classes
    assert ours.heatmaps.min() == 0 and ours.heatmaps.max() == 1, "some image has a heatmap, scaled to [0, 1]"
    np.testing.assert_allclose(ours.heatmaps, theirs.heatmaps, atol=1e-3)
    np.testing.assert_array_equal(ours.images, theirs.images)


def test_what_cannot_be_explained_is_said_in_one_line(digits_run, tmp_path):
    """--grid 0 (no picture to draw on), a 1x1 feature map (the digits run's 32 px), a network whose last block
    gives no feature map (an MLP-Mixer): one line each, no traceback. Evaluation keeps the top losses without
    their heatmaps."""
    import json

    evaluation = json.loads((digits_run / "eval-val" / "eval.json").read_text(encoding="utf-8"))
    assert evaluation["top_losses"] and not any("heatmap" in m for m in evaluation["top_losses"])
    assert not (digits_run / "eval-val" / "top-losses").exists()
    import mindspore as ms

    from fgvctune.config import dump_yaml, resolve
    from fgvctune.models.network import build_network

    image = str(next((SAMPLE / "data" / "images").glob("*.jpg")))
    bare = runner.invoke(app, ["predict", str(digits_run), image, "--explain", "--grid", "0", "-o", str(tmp_path)])
    assert bare.exit_code == 2 and "--explain draws on the picture grid" in bare.output
    small = runner.invoke(app, ["predict", str(digits_run), image, "--explain", "-o", str(tmp_path)])
    assert small.exit_code == 1 and "at 32 px" in small.output and "1x1 map" in small.output
    mixer = tmp_path / "mixer"  # a run folder of an untrained MLP-Mixer
    mixer.mkdir()
    ms.save_checkpoint(build_network("mlp_mixer_s_p32", 10), str(mixer / "best.ckpt"))
    shutil.copy(digits_run / "labels.csv", mixer / "labels.csv")
    config = resolve(digits_run / "config.yaml", model="mlp_mixer_s_p32", image_resize=224)
    (mixer / "config.yaml").write_text(dump_yaml(config), encoding="utf-8")
    other = runner.invoke(app, ["predict", str(mixer), image, "--explain", "-o", str(tmp_path)])
    assert other.exit_code == 1 and "not a feature map (N, C, H, W)" in other.output, other.output
    for result in (bare, small, other):
        assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
