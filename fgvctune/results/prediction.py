"""predict: a model's classes for every image of a split (pred.txt) or for any image files (predictions.csv).

Both paths load the model, score in order, write their table and, with --grid, a picture of up to that many images;
with --explain, each image of the picture with the Grad-CAM heatmap of its prediction over it (gradcam.py).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fgvctune.data.dataset import IMAGE_EXTENSIONS, Sample, shown_name
from fgvctune.errors import DataError, UsageError
from fgvctune.fileio import atomic_write_text
from fgvctune.results import runfiles
from fgvctune.results.model import load_model
from fgvctune.results.scoring import score, score_split

EXPLAINED = "; heatmap: where the model found its prediction (Grad-CAM)"  # the grid's title with --explain


@dataclass
class Predictions:
    rows: list[dict]
    files: list[str]


def predict_split(
    run: str | Path | None = None,
    split: str | None = None,
    output: str | Path | None = None,
    checkpoint: str = "best",
    ckpt_path: str | Path | None = None,
    config_file: str | Path | None = None,
    grid: int = 16,
    verbose: bool = False,
    tta: str | None = None,
    explain: bool = False,
) -> Predictions:
    """pred.txt for every image of a split: image, predicted and real id and name, confidence."""
    _check_explain(explain, grid)
    model = load_model(run, checkpoint, ckpt_path, config_file, verbose)
    split, scores = score_split(model, split, tta=model.config.tta if tta is None else tta, unlabeled=True)
    names = model.labels.classes
    rows = []
    root = Path(model.config.data_dir)
    for sample, truth, pred, probs in zip(scores.samples, scores.truth, scores.predicted, scores.probabilities):
        known = truth >= 0  # a split without labels leaves the real columns empty
        rows.append(
            {
                "image": shown_name(sample.path, root),
                "pred": int(pred),
                "real": int(truth) if known else "",
                "pred_name": names[pred],
                "real_name": names[truth] if known else "",
                "confidence": float(probs[pred]),
            }
        )
    lines = ["image\tpred\treal\tpred_name\treal_name\tconfidence"]
    lines += [
        f"{r['image']}\t{r['pred']}\t{r['real']}\t{r['pred_name']}\t{r['real_name']}\t{r['confidence']:.4f}"
        for r in rows
    ]
    labelled = not (scores.truth < 0).any()
    tiles = None
    if grid:
        chosen = np.linspace(0, len(rows) - 1, num=min(grid, len(rows))).round().astype(int)
        tiles = [
            (
                scores.samples[i],
                f"{rows[i]['pred_name']}\n(true: {rows[i]['real_name']})" if labelled else rows[i]["pred_name"],
                labelled and rows[i]["pred"] != rows[i]["real"],
            )
            for i in chosen
        ]
        if explain:
            tiles = _explained(model, tiles, scores.predicted[chosen])
    out = Path(output) if output else runfiles.predict_folder(model.checkpoint.parent, split)
    title = f"{split}: predicted (true)" if labelled else f"{split}: predicted"
    title += EXPLAINED if explain else ""
    return Predictions(rows, _written(out, runfiles.PRED_FILE, "\n".join(lines) + "\n", tiles, title))


def predict_images(
    run: str | Path | None,
    images,
    output: str | Path | None = None,
    top: int = 5,
    checkpoint: str = "best",
    ckpt_path: str | Path | None = None,
    config_file: str | Path | None = None,
    grid: int = 16,
    verbose: bool = False,
    tta: str | None = None,
    explain: bool = False,
) -> Predictions:
    """Top-k class names with probabilities for any image files or folders."""
    from fgvctune.data.dataset import inspect_image

    _check_explain(explain, grid)
    model = load_model(run, checkpoint, ckpt_path, config_file, verbose)
    paths = image_files(images)
    samples = []
    for path in paths:
        verdict = inspect_image(path)
        if isinstance(verdict, str):
            raise DataError(verdict)
        samples.append(Sample(path=path, label=model.labels.classes[0], where=str(path), reencode=verdict))
    scores = score(model, samples, tta=model.config.tta if tta is None else tta)
    names = model.labels.classes
    top = max(1, min(top, len(names)))
    rows = []
    for path, probs in zip(paths, scores.probabilities):
        best = np.argsort(-probs)[:top]
        rows.append({"image": str(path), "top": [(names[i], float(probs[i])) for i in best]})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image"] + [f"{kind}_{i + 1}" for i in range(top) for kind in ("class", "probability")])
    for r in rows:
        writer.writerow([r["image"]] + [v for name, p in r["top"] for v in (name, f"{p:.4f}")])
    tiles = None
    if grid:
        tiles = [
            (replace(s, label=""), f"{r['top'][0][0]}\n{r['top'][0][1]:.0%}", False)
            for s, r in list(zip(samples, rows))[:grid]
        ]
        if explain:
            tiles = _explained(model, tiles, scores.predicted[:grid])
    out = Path(output) if output else runfiles.predict_folder(model.checkpoint.parent)
    title = "predicted (probability)" + (EXPLAINED if explain else "")
    files = _written(out, runfiles.PREDICTIONS_FILE, buf.getvalue(), tiles, title)
    return Predictions(rows, files)


def _check_explain(explain: bool, grid: int) -> None:
    if explain and not grid:
        raise UsageError("--explain draws on the picture grid, and --grid 0 leaves it out", hint="drop --grid 0")


def _explained(model, tiles: list, classes) -> list:
    """The tiles with their images as the model saw them, the Grad-CAM heatmap of `classes` over each."""
    from fgvctune.results import gradcam

    explanation = gradcam.explain(model, [sample for sample, _, _ in tiles], classes)
    return [(picture, caption, wrong) for picture, (_, caption, wrong) in zip(explanation.overlays(), tiles)]


def _written(out: Path, table: str, text: str, tiles: list | None, title: str) -> list[str]:
    """The table, then (tiles not None: --grid) predictions.png beside it; the files written, in that order."""
    from fgvctune.results import plots

    files = [out / table]
    atomic_write_text(files[0], text)
    if tiles is not None:
        files.append(plots.image_grid(tiles, out / runfiles.PREDICTIONS_PICTURE, title=title))
    return [str(f) for f in files]


def image_files(paths) -> list[Path]:
    """Image files named directly or found (recursively) in folders, in a stable order."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"{path} does not exist")
    if not found:
        raise DataError(
            "no images found", hint=f"pass image files or folders holding {', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    return found
