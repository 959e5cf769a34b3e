"""`--log-to tensorboard,mlflow`: what a run logs, read back with the tools' own readers (TensorBoard's event
reader, MLflow's search_runs, metric history and artifact list); a resumed run continuing the same runs; a real
`mlflow server`; compare's runs nested under one parent; bad input in one line. (That rank 1 of a data-parallel
run logs nothing is in tests/e2e/test_msrun.py, beside the test that watches every write the workers make.)"""

from __future__ import annotations

import shutil
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SAMPLE, finetune_settings, free_port, page_text, running
from fgvctune.cli import app
from fgvctune.config import resolve
from fgvctune.results.runfiles import TENSORBOARD_FOLDER, read_results, read_tracking

EPOCH_TAGS = ("train_loss", "train_acc", "val_top1", "val_top5", "lr")


def tensorboard_scalars(folder: Path):
    """The run's TensorBoard event files as TensorBoard reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder / TENSORBOARD_FOLDER), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def mlflow_run(uri: str, folder: Path):
    """The one MLflow run whose fgvctune.folder tag is `folder`, found with mlflow.search_runs."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.`fgvctune.folder` = '{folder}'")
    assert len(runs) == 1, runs
    return runs.iloc[0]


def history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow import MlflowClient

    return sorted((m.step, m.value) for m in MlflowClient(uri).get_metric_history(run_id, key))


def artifacts(uri: str, run_id: str, path: str | None = None) -> set[str]:
    from mlflow import MlflowClient

    return {Path(a.path).name for a in MlflowClient(uri).list_artifacts(run_id, path)}


def logged_run(tmp_path, base, cache, uri: str, **options):
    from fgvctune.training.trainer import train

    folder = (tmp_path / "run").resolve()
    settings = finetune_settings(base, cache, epoch_size=3, log_to="tensorboard,mlflow", mlflow_uri=uri)
    return train(**{**settings, **options}, output=folder, progress=False), folder


def assert_series(got: list[tuple[int, float]], want: list[tuple[int, float]], key: str) -> None:
    """The same steps, and values equal to results.txt's (which rounds them to 4 decimals or 6 digits)."""
    assert [step for step, _ in got] == [step for step, _ in want], key
    assert [value for _, value in got] == pytest.approx([value for _, value in want], rel=1e-3, abs=1e-4), key


def assert_logged(folder: Path, uri: str, steps_per_epoch: int) -> None:
    """Every epoch's row at its epoch and every step's loss and rate, once each, in both tools."""
    rows = read_results(folder)
    events = tensorboard_scalars(folder)
    run = mlflow_run(uri, folder)
    for key in EPOCH_TAGS:
        want = [(r["epoch"], r[key]) for r in rows]
        assert_series([(e.step, e.value) for e in events.Scalars(f"epoch/{key}")], want, key)
        assert_series(history(uri, run.run_id, f"epoch/{key}"), want, key)
    every_step = list(range(1, len(rows) * steps_per_epoch + 1))
    for key in ("train/loss", "train/lr"):
        assert [e.step for e in events.Scalars(key)] == every_step, key
        assert [step for step, _ in history(uri, run.run_id, key)] == every_step, key
    last_lr = [v for s, v in history(uri, run.run_id, "train/lr") if s % steps_per_epoch == 0]
    assert last_lr == pytest.approx([r["lr"] for r in rows], rel=1e-3)  # the rate of each epoch's last step


@pytest.fixture(autouse=True)
def elsewhere(tmp_path, monkeypatch):
    """Each test in a folder of its own, MLflow's environment unset: the default store is ./mlruns."""
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.e2e
def test_every_metric_param_and_artifact_reads_back(tmp_path, base, cache):
    """In the default store, ./mlruns: the database and the artifacts beside it."""
    run, folder = logged_run(tmp_path, base, cache, "")
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    steps_per_epoch = 128 // 16  # the sample's 128 trainval images in batches of 16
    assert_logged(folder, uri, steps_per_epoch)

    events = tensorboard_scalars(folder)
    assert {"curves", "confusion", "top_losses"} <= set(events.Tags()["images"])
    assert b"lr: 0.05" in events.Tensors("config/text_summary")[0].tensor_proto.string_val[0]
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(events.PluginTagToContent("hparams"))

    found = mlflow_run(uri, folder)
    assert found.status == "FINISHED" and found["tags.mlflow.runName"] == "run"
    assert found["params.lr"] == "0.05" and found["params.adapter"] == "aircraft"
    assert found["params.model"] == run.config.model and found["params.epoch_size"] == "3"
    assert {"best.ckpt", "labels.csv", "config.yaml", "report.html", "curves.png", "eval-test"} <= artifacts(
        uri, found.run_id
    )
    assert {"eval.json", "confusion.png", "confusion.csv"} <= artifacts(uri, found.run_id, "eval-test")
    stored = Path(found.artifact_uri.removeprefix("file://")) / "best.ckpt"
    assert stored.is_relative_to(tmp_path / "mlruns" / "artifacts")
    assert stored.read_bytes() == (folder / "best.ckpt").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlruns", "run"]  # nothing else written

    record = read_tracking(folder)
    assert record["tensorboard"] == TENSORBOARD_FOLDER and record["mlflow"]["run_id"] == found.run_id
    text = page_text(folder / "report.html")
    assert f"tensorboard --logdir {folder / TENSORBOARD_FOLDER}" in text and found.run_id in text


@pytest.mark.e2e
def test_resumed_run_continues_the_same_runs(tmp_path, base, cache):
    """A run stopped after its first epoch and resumed logs to the same TensorBoard folder and MLflow run: each
    epoch and step once, as an uninterrupted run would, and the MLflow run ends FINISHED."""
    from fgvctune.training.trainer import train

    uri = f"sqlite:///{tmp_path / 'store.db'}"

    def stop_after_first(row):
        raise RuntimeError("stopped") if row["epoch"] == 1 else None

    with pytest.raises(RuntimeError, match="stopped"):
        logged_run(tmp_path, base, cache, uri, on_epoch=stop_after_first)
    folder = (tmp_path / "run").resolve()
    assert len(read_results(folder)) == 1
    assert mlflow_run(uri, folder).status == "FAILED"
    train(resume=folder, progress=False)
    assert len(read_results(folder)) == 3
    assert_logged(folder, uri, 128 // 16)
    assert mlflow_run(uri, folder).status == "FINISHED"
    assert len(list((folder / TENSORBOARD_FOLDER).iterdir())) == 2  # one event file per process, in the one folder


@pytest.mark.e2e
def test_runs_reach_an_mlflow_server(tmp_path, base, cache):
    """`mlflow server` (SQLite backend, its artifacts served) on a local port, as a team would run it: the run is
    found through the server with its metrics and artifacts, and the report links to it."""
    port = free_port()
    server = [
        *(str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port)),
        *("--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"),
        *("--artifacts-destination", str(tmp_path / "served-artifacts"), "--workers", "1"),
    ]
    uri = f"http://127.0.0.1:{port}"
    with running(server, tmp_path / "server.log"):
        deadline = time.monotonic() + 300  # a loaded machine: the server migrates its database first
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-2000:]
                time.sleep(0.5)
        _, folder = logged_run(tmp_path, base, cache, uri, epoch_size=2, log_to="mlflow")
        found = mlflow_run(uri, folder)
        want = [(r["epoch"], r["val_top1"]) for r in read_results(folder)]
        assert_series(history(uri, found.run_id, "epoch/val_top1"), want, "val_top1")
        assert {"best.ckpt", "report.html", "eval-test"} <= artifacts(uri, found.run_id)
    assert any(p.name == "best.ckpt" for p in (tmp_path / "served-artifacts").rglob("*"))
    url = read_tracking(folder)["mlflow"]["url"]
    assert url == f"{uri}/#/experiments/{found.experiment_id}/runs/{found.run_id}"
    assert f'href="{url}"' in (folder / "report.html").read_text()
    assert not (folder / TENSORBOARD_FOLDER).exists()


@pytest.mark.e2e
def test_compare_nests_its_runs_under_one_parent(tmp_path, base, cache):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    output = (tmp_path / "compare").resolve()
    args = [
        *("compare", "-a", "aircraft", "-d", str(SAMPLE), "--ckpt-path", str(base), "--no-pretrained"),
        *("--cache-dir", cache, "--image-resize", "32", "--batch-size", "16", "--epoch-size", "1"),
        *("--strategy", "full", "--strategy", "linear-probe", "--log-to", "mlflow", "--mlflow-uri", uri),
        *("--mode", "pynative"),
        *("-o", str(output)),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    parent = mlflow_run(uri, output)
    assert parent["tags.fgvctune.kind"] == "compare" and parent.status == "FINISHED"
    for name in ("full", "linear-probe"):
        child = mlflow_run(uri, output / name)
        assert child["tags.mlflow.parentRunId"] == parent.run_id
        assert child["params.linear_probe"] == str(name == "linear-probe")
    assert parent.run_id in page_text(output / "report.html")


@pytest.mark.e2e
def test_tune_nests_its_trials_under_one_parent_and_pruned_ones_end_killed(tmp_path, digits_run, few_digits, cache):
    """A study whose rates are 1e-7 and 0.05 (one cannot learn), the pruner on after one completed trial: every
    trial's MLflow run is nested under the study's, completed ones end FINISHED and pruned ones KILLED, each with the
    epochs it trained."""
    from fgvctune.tuning import tune

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    output = (tmp_path / "tune").resolve()
    space = {"lr": [1e-7, 0.05]}
    config = resolve(
        adapter="folder",
        data_dir=str(few_digits),
        ckpt_path=str(digits_run / "best.ckpt"),
        pretrained=False,
        cache_dir=cache,
        image_resize=32,
        batch_size=4,
        epoch_size=2,
        mode="pynative",
        log_to="mlflow",
        mlflow_uri=uri,
    )
    result = tune(config, space, output, trials=4, pruning_startup=1, log=print)
    parent = mlflow_run(uri, output)
    assert parent["tags.fgvctune.kind"] == "tune" and parent.status == "FINISHED"
    states = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}
    assert {row["state"] for row in result.rows} == set(states)  # some of each
    for row in result.rows:
        child = mlflow_run(uri, output / row["folder"])
        assert child["tags.mlflow.parentRunId"] == parent.run_id and child.status == states[row["state"]]
        assert len(history(uri, child.run_id, "epoch/val_top1")) == int(row["epochs"])


def one_line(args: list[str]) -> str:
    """The error of a command that must stop at once: exit 2, an error line (and its hint), no traceback."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def test_bad_tracking_input_is_one_line(tmp_path, monkeypatch):
    run = ["train", "-a", "aircraft", "-d", str(SAMPLE), "--no-pretrained", "-o", str(tmp_path / "run")]
    assert "log_to has no tool 'wandb'; choose from tensorboard, mlflow" in one_line([*run, "--log-to", "wandb"])
    port = free_port()  # nothing listens there
    started = time.monotonic()
    output = one_line([*run, "--log-to", "mlflow", "--mlflow-uri", f"http://127.0.0.1:{port}"])
    assert f"cannot reach the tracking server at http://127.0.0.1:{port}" in output
    assert time.monotonic() - started < 30  # not MLflow's retries over minutes
    output = one_line([*run, "--image-resize", "32", "--log-to", "mlflow", "--mlflow-uri", "ftp://example.org/x"])
    assert "mlflow: cannot use the tracking store ftp://example.org/x" in output  # MLflow's own refusal, one line
    shutil.rmtree(tmp_path / "run")  # the run had set up before MLflow was asked
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if it were not installed
    output = one_line([*run, "--log-to", "tensorboard"])
    assert "needs the tensorboardX package" in output and 'pip install "fgvctune[tensorboard]"' in output
    assert not (tmp_path / "run").exists()  # stopped before any work
