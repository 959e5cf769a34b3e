"""results/scoring.py: test-time augmentation (flip, crops) on the digits run, and through eval, predict and
the report."""

from __future__ import annotations

import json
import shutil

import numpy as np

from conftest import fgvctune


class Counting:
    """A network that counts its forward passes and the images it saw."""

    def __init__(self, network):
        self.network, self.calls = network, 0

    def set_train(self, mode):
        self.network.set_train(mode)

    def __call__(self, images):
        self.calls += 1
        return self.network(images)


class Mirrored(Counting):
    """A network that sees every image mirrored."""

    def __call__(self, images):
        import mindspore as ms

        return super().__call__(ms.Tensor(np.ascontiguousarray(images.asnumpy()[..., ::-1])))


def test_flip_averages_the_image_and_its_mirror(digits_run):
    from fgvctune.results.model import load_model
    from fgvctune.results.scoring import score, softmax

    model = load_model(digits_run)
    samples = _val_samples(model)
    plain = score(model, samples, tta="")
    flipped = score(model, samples, tta="flip")
    assert len(flipped.truth) == len(plain.truth) == len(samples)  # every sample once
    np.testing.assert_array_equal(flipped.plain, plain.logits)  # the first view is the plain one
    model.network = Mirrored(model.network)
    mirror = score(model, samples, tta="")
    expected = (softmax(plain.logits) + softmax(mirror.logits)) / 2
    np.testing.assert_allclose(flipped.probabilities, expected, atol=1e-5)
    assert np.abs(flipped.probabilities - softmax(plain.logits)).max() > 1e-3  # the mirror changed something


def test_crops_are_five_views_one_forward_each(digits_run, tmp_path):
    from fgvctune.results.evaluation import evaluate
    from fgvctune.results.model import load_model
    from fgvctune.results.scoring import score, views

    square = np.arange(2 * 3 * 6 * 6, dtype=np.float32).reshape(2, 3, 6, 6)
    cut = views(square, "crops", 4)
    assert [v.shape for v in cut] == [(2, 3, 4, 4)] * 5
    assert [v[0, 0, 0, 0] for v in cut] == [
        square[0, 0, 1, 1],
        0,
        square[0, 0, 0, 2],
        square[0, 0, 2, 0],
        square[0, 0, 2, 2],
    ]

    model = load_model(digits_run)
    samples = _val_samples(model)[:40]
    model.network = Counting(model.network)
    scores = score(model, samples, batch_size=16, tta="crops")
    assert model.network.calls == 3 * 5  # 40 images in 3 batches of 16, one forward per view
    assert len(scores.truth) == 40 and np.allclose(scores.probabilities.sum(axis=1), 1, atol=1e-5)

    result = evaluate(digits_run, split="val", tta="crops", output=tmp_path / "eval-crops")
    assert result.tta == "crops" and set(result.plain) == {"top1", "top5", "mean_per_class"}
    assert json.loads((tmp_path / "eval-crops" / "eval.json").read_text())["plain"] == result.plain


def _val_samples(model):
    from fgvctune.data.dataset import load_dataset

    c = model.config
    return load_dataset(c.adapter, c.data_dir, ["val"]).splits["val"]


def test_tta_through_eval_predict_and_the_report(tmp_path, digits_run):
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    shown = fgvctune("eval", str(run), "--tta", "flip", log=tmp_path / "eval.log")
    assert shown.returncode == 0, shown.stdout[-2000:]
    assert "with flip test-time augmentation; without: top-1" in shown.stdout
    bad = fgvctune("eval", str(run), "--tta", "mirror", log=tmp_path / "bad.log")
    assert (
        bad.returncode != 0 and bad.stdout.strip().splitlines()[-1] == "error: --tta 'mirror': use flip, crops or none"
    )
    predicted = fgvctune("predict", str(run), "--tta", "crops", log=tmp_path / "predict.log")
    assert predicted.returncode == 0, predicted.stdout[-2000:]
    assert fgvctune("report", str(run), log=tmp_path / "report.log").returncode == 0
    assert "With test-time augmentation (flip); without it: top-1" in (run / "report.html").read_text()
