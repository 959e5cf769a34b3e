"""After training: eval, predict and plot on runs made here (results/evaluation.py, prediction.py, plots.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import SAMPLE, bounded_cli, checkpoint, header_bomb
from fgvctune.cli import app
from fgvctune.results import runfiles
from fgvctune.results.evaluation import MISTAKES

runner = CliRunner()


@pytest.fixture(scope="module")
def run(base):
    return base.parent  # a finished run folder: manufacturers, 3 classes


def read_pred(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:]]
    return [dict(zip(header, row)) for row in rows]


def valid_png(path, least=(300, 200)):
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] >= least[0] and im.size[1] >= least[1]


def test_eval_and_pred_txt_agree(run, tmp_path):
    result = runner.invoke(app, ["eval", str(run), "-o", str(tmp_path / "eval"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    predicted = runner.invoke(app, ["predict", str(run), "-o", str(tmp_path / "pred")])
    assert predicted.exit_code == 0, predicted.output
    rows = read_pred(tmp_path / "pred" / "pred.txt")
    test_lines = (SAMPLE / "data" / "images_manufacturer_test.txt").read_text().splitlines()
    assert len(rows) == len(test_lines) == report["count"]
    assert {r["image"] for r in rows} == {f"data/images/{line.split()[0]}.jpg" for line in test_lines}
    matching = sum(r["pred"] == r["real"] for r in rows)
    assert report["top1"] == pytest.approx(matching / len(rows))
    assert all(
        r["real_name"] == line.split(" ", 1)[1]
        for r, line in zip(sorted(rows, key=lambda r: r["image"]), sorted(test_lines))
    )
    per_class = report["per_class"]
    assert sum(v["total"] for v in per_class.values()) == report["count"]
    assert sum(v["correct"] for v in per_class.values()) == matching
    assert report["mean_per_class"] == pytest.approx(np.mean([v["correct"] / v["total"] for v in per_class.values()]))
    with open(tmp_path / "eval" / "confusion.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0][1:] == ["Boeing", "Cessna", "McDonnell Douglas"]
    assert sum(int(v) for row in table[1:] for v in row[1:]) == report["count"]
    valid_png(tmp_path / "eval" / "confusion.png")
    valid_png(tmp_path / "pred" / "predictions.png")


def test_top_k_is_capped_at_the_class_count(run):
    """Three classes: top-5 becomes top-3 (always 100%), in eval.json and on the report page."""
    evaluation = runfiles.read_eval(run, runfiles.read_config(run).val_split)
    assert evaluation["k"] == 3 and evaluation["top5"] == 1.0
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "top-3" in page and "top-5" not in page


def test_eval_every_sample_counts_with_an_awkward_batch(run, tmp_path):
    from fgvctune.results.model import load_model
    from fgvctune.results.scoring import score_split

    model = load_model(run)
    split, scores = score_split(model, batch_size=7)  # 64 test images: 9 batches of 7 and one of 1
    assert split == "test" and len(scores.truth) == 64


def test_predict_images_and_folders(run, tmp_path):
    images = sorted((SAMPLE / "data" / "images").glob("*.jpg"))[:3]
    folder = tmp_path / "mine"
    folder.mkdir()
    for image in images:
        (folder / image.name).write_bytes(image.read_bytes())
    result = runner.invoke(app, ["predict", str(run), str(folder), "-k", "2", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "out" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and list(rows[0]) == ["image", "class_1", "probability_1", "class_2", "probability_2"]
    assert all(r["class_1"] in ("Boeing", "Cessna", "McDonnell Douglas") for r in rows)
    assert all(float(r["probability_1"]) >= float(r["probability_2"]) for r in rows)
    valid_png(tmp_path / "out" / "predictions.png")
    missing = runner.invoke(app, ["predict", str(run), str(tmp_path / "nothing.jpg")])
    assert missing.exit_code == 1 and "nothing.jpg does not exist" in missing.output


def test_predict_on_a_tiny_jpeg_claiming_12000x12000_pixels_stays_within_4_gb(digits_run, tmp_path):
    """The picture grid draws each image reduced while it decodes, not at the size its header claims."""
    bomb = header_bomb(tmp_path / "bomb.jpg", 12000)
    result = bounded_cli("predict", str(digits_run), str(bomb), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bomb.jpg" in result.stdout
    valid_png(tmp_path / "out" / "predictions.png")


def test_predict_refuses_an_image_claiming_more_pixels_than_the_limit_in_one_line(digits_run, tmp_path):
    bomb = header_bomb(tmp_path / "bomb.png", 30000)
    result = bounded_cli("predict", str(digits_run), str(bomb), "-o", str(tmp_path / "out"))
    assert result.returncode == 1 and result.stderr.count("\n") <= 2, result.stderr[-3000:]
    assert f"{bomb} declares 30000x30000 pixels" in result.stderr and "FGVCTUNE_MAX_PIXELS=" in result.stderr


def test_eval_folds_batchnorm_and_scores_as_the_checkpoint_does(run):
    """The folded network eval and predict use gives the unfolded network's logits, to float rounding."""
    from fgvctune.data.dataset import load_dataset
    from fgvctune.kernels import fold, fuse
    from fgvctune.results.model import load_model
    from fgvctune.results.scoring import score

    folded, plain = load_model(run), load_model(run)  # two networks: each compiles its own graph
    assert fuse.unfuse(plain.network) > 0  # folded convolutions with their activations, squeeze-excitations
    assert fold.unfold(plain.network) == 34  # every BatchNorm of mobilenet_v3_small_100
    c = plain.config
    samples = load_dataset(c.adapter, c.data_dir, [c.val_split], c.adapter_options).splits[c.val_split]
    folded_scores, plain_scores = score(folded, samples), score(plain, samples)
    np.testing.assert_array_equal(folded_scores.predicted, plain_scores.predicted)
    np.testing.assert_allclose(
        folded_scores.logits, plain_scores.logits, rtol=0, atol=1e-5 * np.abs(plain_scores.logits).max()
    )


def test_plot_draws_the_curves_anew(run, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("results.txt", "labels.csv"):
        (folder / name).write_bytes((run / name).read_bytes())
    result = runner.invoke(app, ["plot", str(folder)])
    assert result.exit_code == 0, result.output
    valid_png(folder / "curves.png")
    empty = runner.invoke(app, ["plot", str(tmp_path)])
    assert empty.exit_code == 2 and "no finished epochs to plot" in empty.output


def test_eval_json_and_the_most_confused_pairs(digits_run, digits, tmp_path):
    result = runner.invoke(app, ["eval", str(digits_run), "-o", str(tmp_path / "eval"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert json.loads((tmp_path / "eval" / "eval.json").read_text()) == report
    assert report["count"] == len(list((digits / "val").glob("*/*.png")))
    assert report["top1"] > 0.6 and report["k"] == 5 and report["top1"] <= report["top5"]
    with open(tmp_path / "eval" / "confusion.csv", newline="") as f:
        table = list(csv.reader(f))
    names = table[0][1:]
    cells = [(int(v), row[0], names[j]) for row in table[1:] for j, v in enumerate(row[1:]) if row[0] != names[j]]
    worst = sorted((c for c in cells if c[0]), key=lambda c: (-c[0], c[1], c[2]))[:10]
    assert report["confused"] == [[true, predicted, count] for count, true, predicted in worst]
    assert report["confused"], "three epochs on the digits still confuse a few"


def test_checkpoint_best_or_last_scores_what_training_reported(run, tmp_path):
    """eval --checkpoint best/last scores the checkpoint of the best/last epoch, with the val top-1
    that epoch's results row holds."""
    from fgvctune.results.runfiles import read_results

    rows = read_results(run)
    best = max(rows, key=lambda r: r["val_top1"])
    for which, row in (("best", best), ("last", rows[-1])):
        result = runner.invoke(app, ["eval", str(run), "--checkpoint", which, "--json", "-o", str(tmp_path / which)])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["checkpoint"].endswith(f"{which}.ckpt")
        assert int(checkpoint(run / f"{which}.ckpt")["fgvctune_epoch"]) == row["epoch"]
        assert report["top1"] == pytest.approx(row["val_top1"], abs=1e-4)


def test_eval_on_another_dataset_and_from_a_bare_checkpoint(run, tmp_path):
    import shutil

    from fgvctune.data.tree import convert

    tree = tmp_path / "tree"
    convert("aircraft", SAMPLE, tree, splits=["test"], options={"level": "manufacturer"})
    other = runner.invoke(
        app,
        ["eval", str(run), "-a", "folder", "-d", str(tree), "--split", "test", "--json", "-o", str(tmp_path / "e1")],
    )
    assert other.exit_code == 0, other.output
    same = runner.invoke(app, ["eval", str(run), "--json", "-o", str(tmp_path / "e2")])
    assert json.loads(other.output)["top1"] == json.loads(same.output)["top1"]

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run / "best.ckpt", bare / "model.ckpt")
    shutil.copy(run / "labels.csv", bare / "labels.csv")
    result = runner.invoke(
        app,
        [
            "eval",
            "--ckpt-path",
            str(bare / "model.ckpt"),
            "-c",
            str(run / "config.yaml"),
            "--json",
            "-o",
            str(tmp_path / "e3"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["top1"] == json.loads(same.output)["top1"]


# -- what predict and eval write about each image, on the digits run -------------------------------
GRID = 40  # tiles in predictions.png: enough that some show mistakes (about 1 prediction in 11 is wrong)
COLUMNS = 4  # the grid's columns (plots.image_grid)


@pytest.fixture(scope="module")
def digits_predicted(digits_run, tmp_path_factory):
    """`fgvctune predict` over the digits run's val split: pred.txt and a grid of GRID tiles."""
    out = tmp_path_factory.mktemp("digits-predict")
    result = runner.invoke(app, ["predict", str(digits_run), "-o", str(out), "--grid", str(GRID)])
    assert result.exit_code == 0, result.output
    return out


def digits_eval(digits_run) -> dict:
    """eval.json of the digits run's best.ckpt on val, written by `train` at the end of the run."""
    return json.loads((digits_run / "eval-val" / "eval.json").read_text(encoding="utf-8"))


def test_pred_txt_names_each_prediction_and_its_confidence(digits_run, digits_predicted):
    """The image, the predicted and real ids and names, and the confidence: the probability of the predicted
    class, as eval.json gives it for the mistakes."""
    names = runfiles.read_labels(digits_run).classes
    rows = read_pred(digits_predicted / "pred.txt")
    evaluation = digits_eval(digits_run)
    assert len(rows) == evaluation["count"]
    for r in rows:
        assert r["real_name"] == Path(r["image"]).parent.name  # the class folder the image is in
        assert (r["real_name"], r["pred_name"]) == (names[int(r["real"])], names[int(r["pred"])])
        assert 1 / len(names) <= float(r["confidence"]) <= 1  # the largest of ten probabilities
    assert sum(r["pred"] == r["real"] for r in rows) / len(rows) == pytest.approx(evaluation["top1"])
    by_image = {r["image"]: r for r in rows}
    assert evaluation["top_losses"]
    for m in evaluation["top_losses"]:
        r = by_image[m["image"]]
        assert (r["real_name"], r["pred_name"]) == (m["true"], m["predicted"])
        assert float(r["confidence"]) == pytest.approx(m["confidence"], abs=5e-5)


# -- Grad-CAM in predict and eval: the digits run evaluated at 64 px, where its last block's map is 2x2 ------------
@pytest.fixture(scope="module")
def digits_64(digits_run, tmp_path_factory) -> Path:
    """A copy of the digits run (its evaluation left out) whose config scores the images at 64 px, not 32: there
    mobilenet_v3_small's last block gives a 2x2 map, a heatmap to draw (at 32 px a 1x1 map has nothing to locate)."""
    import shutil

    from fgvctune.config import dump_yaml, resolve

    run = tmp_path_factory.mktemp("digits-64") / "digits"
    shutil.copytree(digits_run, run, ignore=shutil.ignore_patterns("eval-*", "predict-*", "report.html"))
    config = resolve(digits_run / "config.yaml", image_resize=64)
    (run / "config.yaml").write_text(dump_yaml(config), encoding="utf-8")
    return run


def warm(path: Path) -> int:
    """How many pixels of a picture are yellow to orange: a heatmap's hot end over a grey digit (the red frames
    and captions have no green, the digits no colour at all)."""
    with Image.open(path) as im:
        r, g, b = np.moveaxis(np.asarray(im.convert("RGB")).astype(int), -1, 0)
    return int(((r - b > 80) & (g - b > 40)).sum())


def test_predict_explain_draws_each_images_heatmap_over_the_grid(digits_64, tmp_path):
    """On a split and on image files: with --explain the grid shows the heatmaps' warm colours over the grey
    digits, where without it there are none; the tables are the same either way."""
    files = [str(p) for p in sorted(Path(runfiles.read_config(digits_64).data_dir).glob("val/*/*.png"))[:6]]
    for images, table in (([], "pred.txt"), (files, "predictions.csv")):
        written = {}
        for explain in ([], ["--explain"]):
            out = tmp_path / f"{table}{explain}"
            result = runner.invoke(app, ["predict", str(digits_64), *images, "--grid", "8", "-o", str(out), *explain])
            assert result.exit_code == 0, result.output
            valid_png(out / "predictions.png")
            written[bool(explain)] = ((out / table).read_text(encoding="utf-8"), warm(out / "predictions.png"))
        assert written[True][0] == written[False][0]
        assert written[False][1] == 0 and written[True][1] > 2000, written


def test_eval_keeps_the_top_losses_with_their_heatmaps_and_the_report_shows_them(digits_64):
    """eval.json: the MISTAKES images of highest loss -log p(true class), highest first, as the scores give them,
    each with its heatmap's PNG in eval-val/top-losses/; the report shows those pictures, in that order, and still
    the most confused pairs."""
    import base64
    import io
    import re

    from fgvctune.data.dataset import shown_name
    from fgvctune.results.model import load_model
    from fgvctune.results.scoring import score_split

    result = runner.invoke(app, ["eval", str(digits_64), "--json"])
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.output)
    top = evaluation["top_losses"]
    model = load_model(digits_64)
    _, scores = score_split(model)
    true = scores.probabilities[np.arange(len(scores.truth)), scores.truth]
    order = np.argsort(true)[:MISTAKES]  # the least probable true classes: the highest losses
    root = Path(model.config.data_dir)
    assert [m["image"] for m in top] == [shown_name(scores.samples[i].path, root) for i in order]
    assert [m["loss"] for m in top] == pytest.approx(-np.log(true[order]), rel=1e-5)
    assert [m["probability"] for m in top] == pytest.approx(true[order], rel=1e-5)
    assert sum(m["true"] != m["predicted"] for m in top) > MISTAKES // 2, "the highest losses are mostly mistakes"
    folder = digits_64 / "eval-val"
    heatmaps = [np.asarray(Image.open(folder / m["heatmap"]).convert("RGB")) for m in top]
    assert [m["heatmap"] for m in top] == [f"top-losses/{i:02d}.png" for i in range(1, MISTAKES + 1)]
    assert all(h.shape == (64, 64, 3) for h in heatmaps) and all(warm(folder / m["heatmap"]) for m in top)

    assert runner.invoke(app, ["report", str(digits_64)]).exit_code == 0
    html = (digits_64 / "report.html").read_text(encoding="utf-8")
    shown = re.findall(r'<figure><img src="data:image/png;base64,([^"]+)"', html)
    pictures = [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB")) for b in shown]
    assert len(pictures) == len(heatmaps) and all(np.array_equal(a, b) for a, b in zip(pictures, heatmaps))
    assert "Top losses" in html and all(f"loss {m['loss']:.2f}" in html for m in top)
    true_name, predicted, count = evaluation["confused"][0]
    assert f"<li>{true_name} &rarr; {predicted}: {count}&times;</li>" in html


def test_predictions_png_frames_the_wrong_predictions_in_red(digits_predicted):
    """Red frames (lines much longer than any caption's letters) around exactly the tiles of wrong predictions."""
    rows = read_pred(digits_predicted / "pred.txt")
    chosen = np.linspace(0, len(rows) - 1, num=GRID).round().astype(int)  # the grid's tiles, spread over the split
    wrong = {divmod(tile, COLUMNS) for tile, i in enumerate(chosen) if rows[i]["pred"] != rows[i]["real"]}
    assert 0 < len(wrong) < GRID, "the grid shows both right and wrong predictions"
    with Image.open(digits_predicted / "predictions.png") as im:
        pixels = np.asarray(im.convert("RGB")).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red_frames(red, cell=(pixels.shape[0] / (GRID // COLUMNS), pixels.shape[1] / COLUMNS)) == wrong


def red_frames(red: np.ndarray, cell: tuple[float, float]) -> set[tuple[int, int]]:
    """The grid cells (row, column) holding a red rectangle: red lines down its two sides, much longer than any
    caption's letters, joined at their ends by red lines across."""
    sides: dict[tuple[int, int], list] = {}
    for x, start, end in long_runs(red, 100):
        sides.setdefault((int((start + end) / 2 // cell[0]), int(x // cell[1])), []).append((x, start, end))
    framed = set()
    for where, runs in sides.items():
        left, right = min(x for x, _, _ in runs), max(x for x, _, _ in runs)
        top, bottom = min(start for _, start, _ in runs), max(end for _, _, end in runs)
        columns = slice(left, right + 1)
        across = red[top : top + 3, columns].any(axis=0), red[bottom - 3 : bottom, columns].any(axis=0)
        if right - left > 100 and all(line.all() for line in across):
            framed.add(where)
    return framed


def long_runs(mask: np.ndarray, least: int) -> list[tuple[int, int, int]]:
    """(column, first row, row after the last) of every vertical run of True at least `least` pixels long."""
    found = []
    for x in range(mask.shape[1]):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], mask[:, x].astype(np.int8), [0]])))
        found += [(x, start, end) for start, end in zip(edges[::2], edges[1::2]) if end - start >= least]
    return found
