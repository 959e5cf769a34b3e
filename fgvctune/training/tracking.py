"""Where a run is logged besides its own folder (`--log-to tensorboard,mlflow`): TensorBoard event files in the run
folder, and an MLflow run.

What is logged: the loss and learning rate of every optimizer step, each epoch's row of results.txt, the config
(TensorBoard: as text and hparams; MLflow: as params), and once the run is evaluated its pictures (TensorBoard:
images; MLflow: artifacts with best.ckpt, labels.csv, eval.json and the report). A step's values are held until its
epoch's files have landed and then written together, so a killed and resumed run logs every epoch once. Which
TensorBoard folder and MLflow run a run logs to is in its tracking.json, where `--resume` finds them again.

`compare` and `tune` open a parent MLflow run (`parent`): the runs inside them are nested under it.
"""

from __future__ import annotations

import base64
import contextvars
import io
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from fgvctune.errors import UsageError
from fgvctune.fileio import atomic_write_text
from fgvctune.results.runfiles import (
    BEST,
    CONFIG_FILE,
    CURVES_FILE,
    REPORT_FILE,
    RESULTS_FILE,
    STRATEGY_FILE,
    TENSORBOARD_FOLDER,
    TRACKING_FILE,
    read_tracking,
)

# The tool, the module it needs and the extra that installs it.
NEEDS = {"tensorboard": ("tensorboardX", "tensorboard"), "mlflow": ("mlflow", "mlflow")}
EPOCH_KEYS = ("train_loss", "train_acc", "val_top1", "val_top5", "lr", "seconds", "images_per_second")
DEFAULT_EXPERIMENT = "fgvctune"
DEFAULT_STORE = "mlruns"  # in the working folder, as MLflow's own default: mlruns/mlflow.db and mlruns/artifacts
REACH_SECONDS = 10  # a tracking server that does not answer its health check in this time is not there

_parent: contextvars.ContextVar[str] = contextvars.ContextVar("mlflow_parent", default="")


def tools(log_to: str) -> list[str]:
    return [t for t in log_to.split(",") if t]


def check(config, folder: Path | None = None) -> None:
    """Before any work starts: one line for a tool asked for and not installed (naming its extra), or a tracking
    server that does not answer (the one in `folder`'s tracking.json for a resumed run)."""
    import importlib.util

    for tool in tools(config.log_to):
        module, extra = NEEDS[tool]
        if importlib.util.find_spec(module) is None:
            raise UsageError(
                f"--log-to {tool} needs the {module} package, which is not installed",
                hint=f'pip install "fgvctune[{extra}]"',
            )
    if "mlflow" in tools(config.log_to):
        earlier = read_tracking(folder).get("mlflow") if folder else None
        _answers(earlier["uri"] if earlier else tracking_uri(config, make=False))


class Trackers:
    """The tools a run logs to; with none, every call does nothing. A tool that fails during the run (a server gone)
    is reported and the run goes on: its own files hold everything."""

    def __init__(self, backends=(), log=print):
        self.backends = list(backends)
        self.steps: list[tuple[int, float, float]] = []
        self.log = log

    def step(self, step: int, loss: float, lr: float) -> None:
        if self.backends:
            self.steps.append((step, loss, lr))

    def epoch(self, row: dict) -> None:
        """The epoch's steps and its row, once its files have landed."""
        for backend in self.backends:
            self._safely(backend, f"epoch {row['epoch']}", backend.epoch, self.steps, row)
        self.steps = []

    def finish(self, folder: Path) -> None:
        """The finished run's pictures and files (after its report, which evaluates best.ckpt)."""
        for backend in self.backends:
            self._safely(backend, "the run's files", backend.finish, folder)

    def _safely(self, backend, what: str, call, *args) -> None:
        try:
            call(*args)
        except Exception as error:  # whatever the tool raises: the training must not stop for it
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            self.log(f"warning: {backend.name} could not log {what} ({first[:200]}); the run goes on")

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        # KILLED: stopped from outside, by Ctrl-C or by tune's pruner (optuna.TrialPruned, named so that Optuna is
        # not imported here)
        stopped = kind is not None and (issubclass(kind, KeyboardInterrupt) or kind.__name__ == "TrialPruned")
        status = "FINISHED" if kind is None else "KILLED" if stopped else "FAILED"
        for backend in self.backends:
            self._safely(backend, "the run's end", backend.close, status)


NOTHING = Trackers()


def start(config, folder: Path, resumed: bool, log=print) -> Trackers:
    """The run's trackers, continuing those in its tracking.json when it is resumed."""
    asked = tools(config.log_to)
    if not asked:
        return NOTHING
    record = read_tracking(folder) if resumed else {}
    backends = []
    if "tensorboard" in asked:
        backends.append(TensorBoard(folder, config, resumed))
        record["tensorboard"] = TENSORBOARD_FOLDER
    if "mlflow" in asked:
        backend = MLflow(config, folder, record.get("mlflow"))
        backends.append(backend)
        record["mlflow"] = backend.record
        log(f"mlflow: run {backend.run_id} at {backend.uri}")
    atomic_write_text(folder / TRACKING_FILE, json.dumps(record, indent=2) + "\n")
    return Trackers(backends, log)


def flat_config(config) -> dict:
    """The config as flat key: value pairs (an adapter option as adapter_options.KEY), as both tools take them."""
    flat = {}
    for key, value in config.to_dict().items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v) for k, v in flat.items()}


def _pictures(folder: Path) -> list[tuple[str, bytes]]:
    """The evaluated run's pictures: its curves, the confusion matrix, and the top losses as a grid."""
    from fgvctune.results import page, plots, runfiles

    config = runfiles.read_config(folder)
    pictures = []
    if (folder / CURVES_FILE).is_file():
        pictures.append(("curves", (folder / CURVES_FILE).read_bytes()))
    result = runfiles.read_eval(folder, config.val_split)
    if result is None:
        return pictures
    evaluated = runfiles.eval_folder(folder, result["split"])
    if (evaluated / runfiles.CONFUSION_PICTURE).is_file():
        pictures.append(("confusion", (evaluated / runfiles.CONFUSION_PICTURE).read_bytes()))
    tiles = []
    for m in result.get("top_losses", []):  # the Grad-CAM picture, else the image itself (decoded bounded)
        heatmap = evaluated / m["heatmap"] if m.get("heatmap") else None
        picture = heatmap.read_bytes() if heatmap and heatmap.is_file() else page.thumbnail(runfiles.eval_image(m), 300)
        if picture:  # "": moved since the evaluation
            picture = base64.b64decode(picture) if isinstance(picture, str) else picture
            tiles.append((_png_array(picture), f"{m['true']} → {m['predicted']}", m["true"] != m["predicted"]))
    if tiles:
        pictures.append(("top_losses", plots.png(plots.grid_figure(tiles, "top losses: true → predicted"))))
    return pictures


def _png_array(data: bytes):
    """A PNG fgvctune wrote (a plot, a heatmap, a thumbnail) as an RGB array."""
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


class TensorBoard:
    """Event files in RUN/tensorboard-logs (tensorboardX: no TensorFlow or torch); a resumed run appends to them."""

    name = "tensorboard"

    def __init__(self, folder: Path, config, resumed: bool):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(folder / TENSORBOARD_FOLDER))
        if not resumed:
            from tensorboardX.summary import hparams

            from fgvctune.config import dump_yaml

            self.writer.add_text("config", "```\n" + dump_yaml(config) + "```")
            metrics = {f"epoch/{key}": 0.0 for key in ("val_top1", "val_top5", "train_loss")}
            file_writer = self.writer._get_file_writer()  # the run's own folder, not one made per call
            for summary in hparams(flat_config(config), metrics):
                file_writer.add_summary(summary)

    def epoch(self, steps, row: dict) -> None:
        for step, loss, lr in steps:
            self.writer.add_scalar("train/loss", loss, step)
            self.writer.add_scalar("train/lr", lr, step)
        for key in EPOCH_KEYS:
            self.writer.add_scalar(f"epoch/{key}", row[key], row["epoch"])
        self.writer.flush()

    def finish(self, folder: Path) -> None:
        epochs = len((folder / RESULTS_FILE).read_text().splitlines()) - 1
        for name, data in _pictures(folder):
            self.writer.add_image(name, _png_array(data), epochs, dataformats="HWC")
        self.writer.flush()

    def close(self, status: str) -> None:
        self.writer.close()


class MLflow:
    """An MLflow run: the tracking URI from --mlflow-uri, else MLflow's MLFLOW_TRACKING_URI, else a SQLite store in
    ./mlruns (no server). Nested under the parent `compare` or `tune` opened, if any."""

    name = "mlflow"

    def __init__(self, config, folder: Path, earlier: dict | None):
        tags = {"mlflow.parentRunId": _parent.get()} if _parent.get() else {}
        self.client, self.record = _open_run(config, folder, earlier, folder.name, tags)
        self.uri, self.run_id = self.record["uri"], self.record["run_id"]
        if not earlier:
            self._log(params=flat_config(config))

    def _log(self, params: dict | None = None, metrics: list | None = None) -> None:
        from mlflow.entities import Metric, Param

        # MLflow keeps a param's value to 6,000 characters (a long lr_mult list is longer); a batch holds at most
        # 100 params or 1,000 metrics
        params = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v, step in metrics or []]
        for first in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[first : first + 100])
        for first in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[first : first + 1000])

    def epoch(self, steps, row: dict) -> None:
        metrics = [
            (name, value, step) for step, loss, lr in steps for name, value in (("train/loss", loss), ("train/lr", lr))
        ]
        metrics += [(f"epoch/{key}", row[key], row["epoch"]) for key in EPOCH_KEYS]
        self._log(metrics=metrics)

    def finish(self, folder: Path) -> None:
        """The run's files as artifacts: checkpoint, labels, config, results, strategy, report, pictures and the
        evaluation folder (eval.json, confusion matrix, top losses)."""
        from fgvctune.data.dataset import LABELS_FILE

        for name in (BEST, LABELS_FILE, CONFIG_FILE, RESULTS_FILE, STRATEGY_FILE, REPORT_FILE, CURVES_FILE):
            if (folder / name).is_file():
                self.client.log_artifact(self.run_id, str(folder / name))
        for evaluated in sorted(folder.glob("eval-*")):
            if evaluated.is_dir():
                self.client.log_artifacts(self.run_id, str(evaluated), evaluated.name)

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status)


def _open_run(config, folder: Path, earlier: dict | None, name: str, tags: dict):
    """A client and the record of the MLflow run in `earlier` (a run folder's tracking.json), continued, or else of
    a new run named `name` in the config's experiment."""
    from mlflow import MlflowClient

    uri = earlier["uri"] if earlier else tracking_uri(config)
    client = _reached(uri, lambda: MlflowClient(uri))  # refuses a scheme it cannot store in
    if earlier:
        run_id = earlier["run_id"]
        experiment = _reached(uri, lambda: client.get_run(run_id)).info.experiment_id
        client.update_run(run_id, status="RUNNING")
    else:
        experiment = _reached(uri, lambda: experiment_id(client, config, uri))
        tags = {"fgvctune.folder": str(folder.resolve()), "mlflow.source.name": "fgvctune", **tags}
        run_id = client.create_run(experiment, run_name=name, tags=tags).info.run_id
    record = {"uri": uri, "experiment_id": experiment, "run_id": run_id}
    if uri.startswith(("http://", "https://")):
        record["url"] = f"{uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"
    return client, record


def tracking_uri(config, make: bool = True) -> str:
    """--mlflow-uri, else MLFLOW_TRACKING_URI, else the SQLite store in ./mlruns (its folder made if `make`)."""
    uri = config.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    if make:
        Path(DEFAULT_STORE).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(DEFAULT_STORE).resolve() / 'mlflow.db'}"


def experiment_id(client, config, uri: str) -> str:
    """The experiment's id, made if it is new: --mlflow-experiment, else MLFLOW_EXPERIMENT_NAME, else fgvctune.
    In a SQLite store its artifacts go beside the database (mlruns/artifacts for the default store), not to MLflow's
    ./mlruns in whatever folder the command runs from."""
    name = config.mlflow_experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifacts = None
    if uri.startswith("sqlite:///"):
        artifacts = (Path(uri.removeprefix("sqlite:///")).resolve().parent / "artifacts").as_uri()
    return client.create_experiment(name, artifact_location=artifacts)


def _answers(uri: str) -> None:
    """One line if `uri` is a tracking server that does not answer its health check (at once, instead of MLflow's
    retries over minutes)."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=REACH_SECONDS):
            pass
    except (OSError, ValueError) as error:  # ValueError: a URL urllib cannot read
        raise UsageError(
            f"mlflow: cannot reach the tracking server at {uri} ({getattr(error, 'reason', error)})",
            hint="start it (mlflow server), or check --mlflow-uri / MLFLOW_TRACKING_URI",
        ) from None


def _reached(uri: str, call):
    """`call`'s answer, or one line saying the tracking store at `uri` cannot be used."""
    _answers(uri)
    _quiet_mlflow()
    try:
        return call()
    except Exception as error:  # MLflow raises its own, SQLAlchemy's and OSError for a store it cannot open
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(
            f"mlflow: cannot use the tracking store {uri} ({first})",
            hint="check --mlflow-uri / MLFLOW_TRACKING_URI",
        ) from None


def _quiet_mlflow() -> None:
    """MLflow's and its database migrations' INFO lines ("Creating initial MLflow database tables...") are noise in
    a run's log; their warnings stay."""
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def parent(config, folder: Path, kind: str):
    """An MLflow run for a `compare` or `tune` in `folder` (continued when the command runs there again), under
    which the runs it trains are nested; yields its record (None without --log-to mlflow)."""
    if "mlflow" not in tools(config.log_to):
        yield None
        return
    check(config)
    earlier = read_tracking(folder).get("mlflow")
    client, record = _open_run(config, folder, earlier, f"{kind} {folder.name}", {"fgvctune.kind": kind})
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / TRACKING_FILE, json.dumps({"mlflow": record}, indent=2) + "\n")
    token = _parent.set(record["run_id"])
    status = "FAILED"
    try:
        yield record
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        _parent.reset(token)
        client.set_terminated(record["run_id"], status)
