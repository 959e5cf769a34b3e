"""eval: top-1, top-k, mean per-class accuracy, the confusion matrix and the top losses of a checkpoint.

The model is loaded by model.py and scored by scoring.py; this module turns the scores into eval.json,
confusion.csv and confusion.png, and draws the top losses' Grad-CAM heatmaps (gradcam.py) as PNG files in
top-losses/ beside eval.json, which names them: the report shows them without MindSpore, and eval.json stays
small enough to read (`eval --json` prints it). (predict is prediction.py's; its two functions are importable
from here too, their first home.)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fgvctune.data.containers import Member
from fgvctune.data.dataset import shown_name
from fgvctune.errors import ModelError
from fgvctune.fileio import atomic_write_text
from fgvctune.results import runfiles
from fgvctune.results.model import Model, load_model
from fgvctune.results.prediction import predict_images, predict_split  # noqa: F401  (their first home)
from fgvctune.results.scoring import Scores, score_split

MISTAKES = 12  # the top losses kept in eval.json (the report shows them)


@dataclass
class Evaluation:
    split: str
    checkpoint: str
    count: int
    top1: float
    top5: float
    k: int
    mean_per_class: float
    per_class: dict = field(default_factory=dict)  # class -> {correct, total, accuracy}
    confused: list = field(default_factory=list)  # [true class, predicted class, count], most first
    top_losses: list = field(default_factory=list)  # the images with the highest loss, -log p(true), highest first
    files: list = field(default_factory=list)
    tta: str = ""  # the test-time augmentation the figures above are of ("": none)
    plain: dict = field(default_factory=dict)  # with tta: top1, top5 and mean_per_class of the plain view

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False)


def evaluate(
    run: str | Path | None = None,
    split: str | None = None,
    output: str | Path | None = None,
    checkpoint: str = "best",
    ckpt_path: str | Path | None = None,
    config_file: str | Path | None = None,
    adapter: str = "",
    data_dir: str = "",
    options: dict | None = None,
    verbose: bool = False,
    tta: str | None = None,
) -> Evaluation:
    """Top-1, top-k, mean per-class accuracy and the confusion matrix of a checkpoint on a split.
    `tta` (flip or crops) scores each image over several views; None: the run's own setting."""
    from fgvctune.results import metrics, plots

    model = load_model(run, checkpoint, ckpt_path, config_file, verbose)
    tta = model.config.tta if tta is None else tta
    split, scores = score_split(model, split, adapter, data_dir, options, tta=tta)
    names = model.labels.classes
    n = len(names)
    confusion = _confusion(scores.truth, scores.predicted, n)
    per_class = _per_class(confusion, names)
    off = [(int(confusion[i, j]), names[i], names[j]) for i in range(n) for j in range(n) if i != j and confusion[i, j]]
    k = metrics.top_k(n)
    out = Path(output) if output else runfiles.eval_folder(model.checkpoint.parent, split)
    heatmaps = out / runfiles.TOP_LOSSES_FOLDER
    result = Evaluation(
        split=split,
        checkpoint=str(model.checkpoint),
        count=len(scores.truth),
        **_figures(scores.logits, scores.truth, names, k),
        k=k,
        per_class=per_class,
        confused=[[t, p, c] for c, t, p in sorted(off, key=lambda x: (-x[0], x[1], x[2]))[:10]],
        top_losses=_top_losses(model, scores, Path(data_dir or model.config.data_dir), heatmaps),
        tta=tta,
        plain=_figures(scores.plain, scores.truth, names, k) if tta else {},
    )
    files = [out / runfiles.EVAL_FILE, out / runfiles.CONFUSION_FILE, out / runfiles.CONFUSION_PICTURE]
    explained = any("heatmap" in m for m in result.top_losses)
    result.files = [str(f) for f in files] + ([str(heatmaps)] if explained else [])
    atomic_write_text(files[1], runfiles.confusion_text(names, confusion))
    plots.confusion_matrix(confusion, names, files[2], title=f"{Path(model.checkpoint).name} on {split}")
    atomic_write_text(files[0], result.to_json())
    return result


def _confusion(truth: np.ndarray, predicted: np.ndarray, n: int) -> np.ndarray:
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    return confusion


def _per_class(confusion: np.ndarray, names) -> dict:
    per_class = {}
    for i, name in enumerate(names):
        total = int(confusion[i].sum())
        if total:
            per_class[name] = {"correct": int(confusion[i, i]), "total": total, "accuracy": confusion[i, i] / total}
    return per_class


def _figures(logits: np.ndarray, truth: np.ndarray, names, k: int) -> dict:
    """Top-1, top-k and mean per-class accuracy of logits."""
    from fgvctune.results import metrics

    per_class = _per_class(_confusion(truth, logits.argmax(axis=1), len(names)), names)
    return {
        "top1": metrics.correct_at(logits, truth, 1) / len(truth),
        "top5": metrics.correct_at(logits, truth, k) / len(truth),
        "mean_per_class": float(np.mean([v["accuracy"] for v in per_class.values()])),
    }


def _top_losses(model: Model, scores: Scores, root: Path, folder: Path, count: int = MISTAKES) -> list[dict]:
    """The images the model got most wrong, by their loss -log p(true class) (fastai's top losses): image, true and
    predicted class, the confidence of the prediction, the probability of the true class, the loss, and the Grad-CAM
    heatmap of the prediction over the image as the model saw it (a file in `folder`, named relative to its parent;
    none for a network Grad-CAM cannot explain)."""
    from fgvctune.results import gradcam

    names = model.labels.classes
    probabilities, predicted, truth = scores.probabilities, scores.predicted, scores.truth
    true = probabilities[np.arange(len(truth)), truth]
    losses = -np.log(np.maximum(true, 1e-30))
    order = np.argsort(-losses, kind="stable")[:count]
    top = [
        {
            "image": shown_name(scores.samples[i].path, root),
            **_where(scores.samples[i].path),
            "true": names[truth[i]],
            "predicted": names[predicted[i]],
            "confidence": float(probabilities[i, predicted[i]]),
            "probability": float(true[i]),
            "loss": float(losses[i]),
        }
        for i in order
    ]
    for old in folder.glob("*.png"):  # an earlier evaluation's
        old.unlink()
    try:
        explanation = gradcam.explain(model, [scores.samples[i] for i in order], predicted[order])
    except ModelError:
        return top
    for rank, (entry, picture) in enumerate(zip(top, explanation.overlays()), start=1):
        path = gradcam.write_png(picture, folder / f"{rank:02d}.png")
        entry["heatmap"] = path.relative_to(folder.parent).as_posix()
    return top


def _where(source: Path | Member) -> dict:
    """Where eval.json finds an image again (the report's thumbnails): its file, or its container and key."""
    if isinstance(source, Member):
        container = source.container.resolve()
        return {"path": f"{container}:{source.key}", "member": {**asdict(source), "container": str(container)}}
    return {"path": str(source.resolve())}
