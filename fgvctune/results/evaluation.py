"""After training: evaluation of a checkpoint, predictions, and the files and pictures they make.

Evaluation and prediction read a split online, in order, through the mappable source, so every
sample counts exactly once (no batch size that shrinks, no dropped remainder) and each prediction
is tied to its image.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from fgvctune import config as config_module
from fgvctune.data.containers import Member
from fgvctune.data.dataset import IMAGE_EXTENSIONS, LABELS_FILE, LabelMap, Sample, load_dataset, shown_name
from fgvctune.errors import DataError, ModelError, UsageError
from fgvctune.fileio import atomic_write_text
from fgvctune.results import runfiles

PRED_FILE = "pred.txt"
MISTAKES = 12  # the most confident wrong predictions kept in eval.json (the report shows them)


@dataclass
class Model:
    """A trained network with its configuration and label map, ready to predict."""

    network: object
    config: config_module.TrainConfig
    labels: LabelMap
    checkpoint: Path


def load_model(
    run: str | Path | None = None,
    checkpoint: str = "best",
    ckpt_path: str | Path | None = None,
    config_file: str | Path | None = None,
    verbose: bool = False,
) -> Model:
    """The network of a run folder (best.ckpt by default), or a checkpoint with its config and labels.csv, in
    inference mode with its BatchNorm folded into the convolutions before it (models/fold.py)."""
    from fgvctune import runtime
    from fgvctune.kernels import fold
    from fgvctune.models.factory import create_network

    if run:
        folder = runfiles.require_run(run)
        config = runfiles.read_config(folder)
        labels = runfiles.read_labels(folder)
        path = (
            Path(ckpt_path)
            if ckpt_path
            else folder / (checkpoint if checkpoint.endswith(".ckpt") else f"{checkpoint}.ckpt")
        )
    else:
        if not ckpt_path or not config_file:
            raise UsageError("name a run folder, or both --ckpt-path and --config")
        config = config_module.resolve(config_file)
        path = Path(ckpt_path)
        label_file = path.parent / LABELS_FILE
        if not label_file.is_file():
            raise UsageError(f"no {LABELS_FILE} beside {path}", hint="the label map of the training run must be there")
        labels = LabelMap.read(label_file)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist", hint="train first, or pass --checkpoint last")
    runtime.start(verbose, config.mode, config.device_target, config.seed)
    network, report = create_network(config.model, len(labels), ckpt_path=str(path))
    if report.dropped or report.missing:
        raise ModelError(f"{path} does not match its run's {len(labels)} classes: {report.summary()}")
    network.set_train(False)
    fold.fold(network)
    return Model(network, config, labels, path)


@dataclass
class Scores:
    samples: list[Sample]
    logits: np.ndarray  # with test-time augmentation, the log of the views' mean probabilities
    truth: np.ndarray  # label ids in the model's label map; -1 for a sample without a label
    plain: np.ndarray | None = None  # with test-time augmentation, the logits of the plain view alone

    @property
    def predicted(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    @property
    def probabilities(self) -> np.ndarray:
        return _softmax(self.logits)


def score_split(
    model: Model,
    split: str | None = None,
    adapter: str = "",
    data_dir: str = "",
    options: dict | None = None,
    batch_size: int = 0,
    tta: str = "",
    unlabeled: bool = False,
) -> tuple[str, Scores]:
    """Run the model over a split of its own dataset, or of another whose classes match by name. With
    `unlabeled` (prediction) the split may be one without labels: its samples' truth is -1."""
    c = model.config
    if not adapter and not data_dir:
        split = split or c.val_split
        dataset = load_dataset(
            c.adapter, c.data_dir, [split], c.adapter_options, skip_bad=c.skip_bad, unlabeled=unlabeled
        )
    else:
        chosen = [split] if split else None
        dataset = load_dataset(adapter or c.adapter, data_dir or c.data_dir, chosen, options, unlabeled=unlabeled)
    split = split or dataset.eval_split or next(iter(dataset.splits))
    samples = dataset.splits[split]
    if split in dataset.unlabeled:  # scored under any known label, then told apart by truth -1
        scores = _score(model, [replace(s, label=model.labels.classes[0]) for s in samples], batch_size, tta)
        return split, replace(scores, samples=samples, truth=np.full(len(samples), -1, dtype=scores.truth.dtype))
    unknown = sorted({s.label for s in samples} - set(model.labels.classes))
    if unknown:
        raise DataError(
            f"split {split!r} has classes the model does not know: {', '.join(map(repr, unknown[:5]))}",
            hint="evaluate on data whose class names match the run's labels.csv",
        )
    return split, _score(model, samples, batch_size, tta)


TTA = ("flip", "crops")


def _score(model: Model, samples: list[Sample], batch_size: int = 0, tta: str = "") -> Scores:
    """The model's logits for samples, in order. With test-time augmentation (`flip`: the image and its
    mirror; `crops`: the four corners and the centre of the image resized to its evaluation size divided
    by crop_pct), each view is one forward pass and a sample's score is the mean of its views' softmax."""
    import mindspore.dataset as ds
    from mindcv.data import create_loader

    from fgvctune.data.pipeline import eval_transforms
    from fgvctune.data.source import COLUMNS, ImageSource
    from fgvctune.results import metrics

    if tta and tta not in TTA:
        raise UsageError(f"--tta {tta!r}: use flip, crops or none")
    c = model.config
    batch_size = batch_size or c.batch_size
    source = ImageSource(samples, model.labels)
    size = c.image_resize
    if tta == "crops":  # the whole resized square; the crops are cut from it below
        transform = eval_transforms(replace(c, image_resize=int(size / c.crop_pct), crop_pct=1.0))
    else:
        transform = eval_transforms(c)
    loader = create_loader(
        ds.GeneratorDataset(source, column_names=COLUMNS, shuffle=False),
        batch_size=batch_size,
        is_training=False,
        transform=transform,
        num_classes=len(model.labels),
        num_parallel_workers=c.pipeline_workers,
    )
    logits, truth = metrics.predict(model.network, loader, batch_size, views=lambda x: views(x, tta, size))
    if len(truth) != len(samples):
        raise RuntimeError(f"scored {len(truth)} of {len(samples)} samples")
    if not tta:
        return Scores(samples, logits[0], truth)
    mean = np.mean([_softmax(x) for x in logits], axis=0)
    return Scores(samples, np.log(np.maximum(mean, 1e-30)), truth, plain=logits[0])


def views(images: np.ndarray, tta: str, size: int) -> list[np.ndarray]:
    """The views of a batch (N, C, H, W) a test-time augmentation scores, the plain one first."""
    if tta == "flip":
        return [images, np.ascontiguousarray(images[..., ::-1])]
    if tta == "crops":
        height, width = images.shape[2:]
        top, left = (height - size) // 2, (width - size) // 2
        corners = [(top, left), (0, 0), (0, width - size), (height - size, 0), (height - size, width - size)]
        return [np.ascontiguousarray(images[:, :, y : y + size, x : x + size]) for y, x in corners]
    return [images]


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


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
    mistakes: list = field(default_factory=list)  # the most confident wrong predictions, most confident first
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
    result = Evaluation(
        split=split,
        checkpoint=str(model.checkpoint),
        count=len(scores.truth),
        **_figures(scores.logits, scores.truth, names, k),
        k=k,
        per_class=per_class,
        confused=[[t, p, c] for c, t, p in sorted(off, key=lambda x: (-x[0], x[1], x[2]))[:10]],
        mistakes=_mistakes(scores, names, Path(data_dir or model.config.data_dir)),
        tta=tta,
        plain=_figures(scores.plain, scores.truth, names, k) if tta else {},
    )
    out = Path(output) if output else runfiles.eval_folder(model.checkpoint.parent, split)
    files = [out / runfiles.EVAL_FILE, out / runfiles.CONFUSION_FILE, out / "confusion.png"]
    result.files = [str(f) for f in files]
    atomic_write_text(files[1], _confusion_csv(names, confusion))
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


def _mistakes(scores: Scores, names, root: Path, count: int = MISTAKES) -> list[dict]:
    """The wrong predictions the model was surest of: image, true and predicted class, confidence."""
    probabilities = scores.probabilities
    predicted = scores.predicted
    wrong = np.flatnonzero(predicted != scores.truth)
    confidence = probabilities[wrong, predicted[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:count]
    return [
        {
            "image": _image_id(scores.samples[i], root),
            **_where(scores.samples[i].path),
            "true": names[scores.truth[i]],
            "predicted": names[predicted[i]],
            "confidence": float(probabilities[i, predicted[i]]),
        }
        for i in order
    ]


def _confusion_csv(names, confusion) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["true \\ predicted", *names])
    for name, row in zip(names, confusion):
        writer.writerow([name, *map(int, row)])
    return buf.getvalue()


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
) -> Predictions:
    """pred.txt for every image of a split: image, predicted and real id and name, confidence."""
    from fgvctune.results import plots

    model = load_model(run, checkpoint, ckpt_path, config_file, verbose)
    split, scores = score_split(model, split, tta=model.config.tta if tta is None else tta, unlabeled=True)
    names = model.labels.classes
    probabilities = scores.probabilities
    rows = []
    root = Path(model.config.data_dir)
    for sample, truth, pred, probs in zip(scores.samples, scores.truth, scores.predicted, probabilities):
        known = truth >= 0  # a split without labels leaves the real columns empty
        rows.append(
            {
                "image": _image_id(sample, root),
                "pred": int(pred),
                "real": int(truth) if known else "",
                "pred_name": names[pred],
                "real_name": names[truth] if known else "",
                "confidence": float(probs[pred]),
            }
        )
    out = Path(output) if output else model.checkpoint.parent / f"predict-{split}"
    lines = ["image\tpred\treal\tpred_name\treal_name\tconfidence"]
    lines += [
        f"{r['image']}\t{r['pred']}\t{r['real']}\t{r['pred_name']}\t{r['real_name']}\t{r['confidence']:.4f}"
        for r in rows
    ]
    pred_file = out / PRED_FILE
    atomic_write_text(pred_file, "\n".join(lines) + "\n")
    files = [str(pred_file)]
    if grid:
        chosen = np.linspace(0, len(rows) - 1, num=min(grid, len(rows))).round().astype(int)
        labelled = not (scores.truth < 0).any()
        tiles = [
            (
                scores.samples[i],
                f"{rows[i]['pred_name']}\n(true: {rows[i]['real_name']})" if labelled else rows[i]["pred_name"],
                labelled and rows[i]["pred"] != rows[i]["real"],
            )
            for i in chosen
        ]
        title = f"{split}: predicted (true)" if labelled else f"{split}: predicted"
        files.append(str(plots.image_grid(tiles, out / "predictions.png", title=title)))
    return Predictions(rows, files)


def _image_id(sample: Sample, root: Path) -> str:
    return shown_name(sample.path, root)


def _where(source: Path | Member) -> dict:
    """Where eval.json finds an image again (the report's thumbnails): its file, or its container and key."""
    if isinstance(source, Member):
        container = source.container.resolve()
        return {"path": f"{container}:{source.key}", "member": {**asdict(source), "container": str(container)}}
    return {"path": str(source.resolve())}


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
) -> Predictions:
    """Top-k class names with probabilities for any image files or folders."""
    from fgvctune.data.dataset import inspect_image
    from fgvctune.results import plots

    model = load_model(run, checkpoint, ckpt_path, config_file, verbose)
    paths = image_files(images)
    samples = []
    for path in paths:
        verdict = inspect_image(path)
        if isinstance(verdict, str):
            raise DataError(verdict)
        samples.append(Sample(path=path, label=model.labels.classes[0], where=str(path), reencode=verdict))
    scores = _score(model, samples, tta=model.config.tta if tta is None else tta)
    names = model.labels.classes
    top = max(1, min(top, len(names)))
    rows = []
    for path, probs in zip(paths, scores.probabilities):
        best = np.argsort(-probs)[:top]
        rows.append({"image": str(path), "top": [(names[i], float(probs[i])) for i in best]})
    out = Path(output) if output else model.checkpoint.parent / "predict-images"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image"] + [f"{kind}_{i + 1}" for i in range(top) for kind in ("class", "probability")])
    for r in rows:
        writer.writerow([r["image"]] + [v for name, p in r["top"] for v in (name, f"{p:.4f}")])
    csv_file = out / "predictions.csv"
    atomic_write_text(csv_file, buf.getvalue())
    files = [str(csv_file)]
    if grid:
        tiles = [
            (replace(s, label=""), f"{r['top'][0][0]}\n{r['top'][0][1]:.0%}", False)
            for s, r in list(zip(samples, rows))[:grid]
        ]
        files.append(str(plots.image_grid(tiles, out / "predictions.png", title="predicted (probability)")))
    return Predictions(rows, files)
