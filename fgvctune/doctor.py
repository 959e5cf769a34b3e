"""doctor: what is wrong in a dataset's labels, found with cleanlab from a model's view of every image.

1. Features: the model's penultimate layer (its classifier taken off) for every sample of the chosen splits.
2. Out-of-sample class probabilities, K-fold: a logistic regression on the features (scikit-learn; seconds), or
   with `retrain` K fgvctune runs, each trained without one fold of the training split and scoring it (the
   evaluation split's samples get the mean of the K runs, none of which saw them).
3. cleanlab's Datalab over features and probabilities: label issues (with the suggested label), outliers, near
   duplicates in feature space; and cleanlab's overlapping classes, the pairs the data itself confuses.

doctor.csv lists every sample found (of the kinds asked for: `issues`), worst first within each kind; doctor.html
shows them (doctor_report.py). `--exclude doctor.csv` leaves every sample it lists out of a run, `--relabel
doctor.csv` gives its label issues their suggested label (data/edits.py).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fgvctune.data.dataset import Dataset, Sample, load_dataset, shown_name
from fgvctune.errors import UsageError
from fgvctune.fileio import atomic_write_text

DOCTOR_FILE = "doctor.csv"
DOCTOR_PAGE = "doctor.html"
KINDS = ("label", "outlier", "near_duplicate")  # Datalab's issue types, in the order doctor.csv lists them
COLUMNS = ("id", "split", "given", "suggested", "issue", "score", "with")
CHUNK = 256  # samples per feature pass (the progress bar's step)


@dataclass
class Found:
    """One sample with an issue: `score` is cleanlab's quality score (0 worst, 1 best); `with` the near duplicates'
    ids for a near duplicate."""

    sample: Sample
    id: str
    split: str
    given: str
    suggested: str
    issue: str
    score: float
    others: list[str] = field(default_factory=list)


@dataclass
class Diagnosis:
    dataset: Dataset
    found: list[Found]
    overlapping: list[tuple[str, str, int, float]]  # class, class, samples between them, joint probability
    probabilities: str  # how the out-of-sample probabilities were made, for the page
    kinds: tuple[str, ...] = KINDS  # the kinds looked for
    files: list[Path] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for f in self.found if f.issue == kind)


def diagnose(
    adapter: str,
    data_dir: str | Path,
    output: str | Path,
    splits: list[str] | None = None,
    options: dict | None = None,
    run: str | Path | None = None,
    ckpt_path: str | Path | None = None,
    model: str = "",
    image_resize: int = 0,
    folds: int = 5,
    retrain: bool = False,
    epochs: int = 0,
    seed: int = 0,
    issues: tuple[str, ...] = KINDS,
    skip_bad: bool = False,
    exclude: str | Path = "",
    relabel: str | Path = "",
    verbose: bool = False,
    progress: bool = False,
) -> Diagnosis:
    """Find label issues, outliers, near duplicates and overlapping classes; write doctor.csv and doctor.html."""
    from fgvctune.results import doctor_report

    try:
        import cleanlab  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:
        raise UsageError(
            "fgvctune doctor needs cleanlab and scikit-learn", hint='pip install "fgvctune[doctor]"'
        ) from None
    if folds < 2:
        raise UsageError(f"--folds must be at least 2, got {folds}")
    unknown = [kind for kind in issues if kind not in KINDS]
    if unknown or not issues:
        raise UsageError(f"--issues {','.join(issues)}: choose among {', '.join(KINDS)}")
    dataset = load_dataset(
        adapter, data_dir, splits, options, skip_bad=skip_bad, exclude=exclude, relabel=relabel, purpose="diagnosed"
    )
    samples = [(split, s) for split, ss in dataset.splits.items() for s in ss]
    ids = dataset.labels.ids
    labels = np.array([ids[s.label] for _, s in samples])
    _enough_per_class(dataset, labels, folds)
    config = _config(dataset, run, ckpt_path, model, image_resize, options, exclude, relabel)
    features = embed(config, run, ckpt_path, len(dataset.labels), [s for _, s in samples], verbose, progress)
    if retrain:
        probabilities = _retrained(config, dataset, samples, folds, epochs, seed, Path(output), verbose, progress)
        how = f"{folds} fgvctune runs, each trained without one fold of {dataset.train_split!r}"
    else:
        probabilities = _linear(features, labels, folds, seed, progress)
        how = f"a logistic regression on the model's features, {folds}-fold"
    found, overlapping = _issues(dataset, samples, labels, features, probabilities, issues)
    diagnosis = Diagnosis(dataset, found, overlapping, how, issues)
    out = Path(output)
    diagnosis.files = [out / DOCTOR_FILE, out / DOCTOR_PAGE]
    atomic_write_text(diagnosis.files[0], csv_text(found))
    atomic_write_text(diagnosis.files[1], doctor_report.html(diagnosis))
    return diagnosis


def csv_text(found: list[Found]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(
        [f.id, f.split, f.given, f.suggested, f.issue, f"{f.score:.4g}", " ".join(f.others)] for f in found
    )
    return buf.getvalue()


def _enough_per_class(dataset: Dataset, labels: np.ndarray, folds: int) -> None:
    counts = np.bincount(labels, minlength=len(dataset.labels))
    fewest = int(counts.argmin())
    if counts[fewest] < folds:
        raise UsageError(
            f"class {dataset.labels.classes[fewest]!r} has {counts[fewest]} sample(s), fewer than --folds {folds}",
            hint="pass a smaller --folds (at least 2), or add samples of that class",
        )


def _config(dataset, run, ckpt_path, model, image_resize, options, exclude, relabel):
    """The run's configuration (its model, image size, evaluation transforms) or one for `model`, on this dataset."""
    from fgvctune import config as config_module
    from fgvctune.results import runfiles

    if run:
        config = runfiles.read_config(runfiles.require_run(run))
    else:
        given = {"model": model or None, "ckpt_path": str(ckpt_path) if ckpt_path else None}
        config = config_module.resolve(**given, pretrained=not ckpt_path)
    if image_resize:
        config.image_resize = image_resize
    config.adapter, config.data_dir, config.adapter_options = dataset.adapter, str(dataset.root), options or {}
    config.train_split, config.val_split = dataset.train_split or "", dataset.eval_split or ""
    config.num_classes = 0  # (the data's: a run on other data had its own)
    config.exclude, config.relabel = str(exclude or ""), str(relabel or "")
    return config


def embed(config, run, ckpt_path, num_classes: int, samples: list[Sample], verbose=False, progress=False) -> np.ndarray:
    """The model's penultimate features of `samples` (N, D), read as evaluation reads them."""
    from mindspore import nn

    from fgvctune.data.labels import LabelMap
    from fgvctune.kernels import swaps
    from fgvctune.models.network import classifier_name
    from fgvctune.results.model import Model, inference_network, load_model
    from fgvctune.results.scoring import score

    if run:
        loaded = load_model(run, ckpt_path=ckpt_path, verbose=verbose)
        network, checkpoint = loaded.network, loaded.checkpoint
    else:
        checkpoint = Path(ckpt_path) if ckpt_path else None
        network, _ = inference_network(config, num_classes, checkpoint, verbose, "its classifier is not used")
    head = classifier_name(network, config.model)
    swaps.replace(network, nn.Dense, lambda old, name: nn.Identity() if name == head else old)
    model = Model(network, config, LabelMap.from_names({s.label for s in samples}), checkpoint or Path())
    parts = []
    chunks = range(0, len(samples), CHUNK)
    for start in _track(chunks, "features", progress and len(samples) > CHUNK):
        parts.append(score(model, samples[start : start + CHUNK]).logits)
    return np.concatenate(parts).reshape(len(samples), -1)


def _linear(features: np.ndarray, labels: np.ndarray, folds: int, seed: int, progress: bool) -> np.ndarray:
    """Out-of-sample probabilities of a logistic regression on standardised features, K-fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = int(labels.max()) + 1
    probabilities = np.zeros((len(labels), n))
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, labels))
    for train, held in _track(splits, "folds", progress):
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        classifier.fit(features[train], labels[train])
        probabilities[np.ix_(held, classifier.classes_)] = classifier.predict_proba(features[held])
    return probabilities


def _retrained(config, dataset, samples, folds, epochs, seed, out, verbose, progress) -> np.ndarray:
    """Out-of-sample probabilities of K fgvctune runs, run k trained without fold k of the training split."""
    from sklearn.model_selection import StratifiedKFold

    from fgvctune.data.edits import read_edits
    from fgvctune.results.model import load_model
    from fgvctune.results.scoring import score
    from fgvctune.training.trainer import train

    if epochs:
        config.epoch_size = epochs
    train_at = [i for i, (split, _) in enumerate(samples) if split == dataset.train_split]
    if not train_at:
        raise UsageError("--retrain needs the training split among the splits diagnosed", hint="drop --split")
    rest = sorted(set(range(len(samples))) - set(train_at))
    ids = [shown_name(samples[i][1].path, dataset.root) for i in train_at]
    labels = [samples[i][1].label for i in train_at]
    already = sorted(read_edits(config.exclude).exclude) if config.exclude else []
    probabilities = np.zeros((len(samples), len(dataset.labels)))
    kfold = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for k, (_, held) in enumerate(_track(list(kfold.split(ids, labels)), "fold runs", progress), 1):
        folder = out / "folds" / f"fold-{k}"
        listed = out / "folds" / f"fold-{k}-exclude.txt"
        atomic_write_text(listed, "".join(f"{i}\n" for i in already + [ids[j] for j in held]))
        fold_config = replace(config, exclude=str(listed), seed=config.seed + k)
        train(fold_config, output=folder, verbose=verbose, progress=False, log=lambda message: None)
        model = load_model(folder, verbose=verbose)
        held_samples = [samples[train_at[j]][1] for j in held]
        probabilities[[train_at[j] for j in held]] = score(model, held_samples).probabilities
        if rest:
            probabilities[rest] += score(model, [samples[i][1] for i in rest]).probabilities / folds
    return probabilities


def _issues(dataset, samples, labels, features, probabilities, kinds):
    """Datalab's label issues, outliers and near duplicates, worst first per kind; cleanlab's overlapping classes."""
    from cleanlab import Datalab
    from cleanlab.dataset import find_overlapping_classes

    names = dataset.labels.classes
    lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
    # One process: cleanlab's label search would fork a pool by default, and a fork of a process whose MindSpore
    # threads hold locks can hang for ever.
    serial = {"label": {"clean_learning_kwargs": {"find_label_issues_kwargs": {"n_jobs": 1}}}}
    lab.find_issues(
        features=features, pred_probs=probabilities, issue_types={kind: serial.get(kind, {}) for kind in kinds}
    )
    ids = [shown_name(s.path, dataset.root) for _, s in samples]
    suggested = probabilities.argmax(axis=1)
    found = []
    for kind in kinds:
        table = lab.get_issues(kind)
        flagged = np.flatnonzero(table[f"is_{kind}_issue"].to_numpy())
        scores = table[f"{kind}_score"].to_numpy()
        for i in flagged[np.argsort(scores[flagged], kind="stable")]:
            split, sample = samples[i]
            others = [ids[j] for j in table["near_duplicate_sets"].iloc[i]] if kind == "near_duplicate" else []
            found.append(
                Found(sample, ids[i], split, names[labels[i]], names[suggested[i]], kind, float(scores[i]), others)
            )
    overlap = find_overlapping_classes(labels=labels, pred_probs=probabilities, class_names=list(names))
    overlapping = [
        (
            row["Class Name A"],
            row["Class Name B"],
            int(row["Num Overlapping Examples"]),
            float(row["Joint Probability"]),
        )
        for _, row in overlap.iterrows()
        if row["Num Overlapping Examples"] > 0
    ]
    return found, overlapping


def _track(items, description: str, enabled: bool):
    if not enabled:
        return items
    from rich.console import Console
    from rich.progress import track

    return track(items, description=description, console=Console(stderr=True), transient=True)
