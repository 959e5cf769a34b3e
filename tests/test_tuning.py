"""`fgvctune tune`: the search space's checks as one line each, the storage, the sampler's seeding, and whole studies on
tiny data (12 training digits at 32 px in PyNative mode, from the digits run's checkpoint): pruning held to Optuna's
median rule, the files against the study Optuna stores, a study continued, and two processes sharing one study while
one of them is killed. Optuna's own study is the oracle throughout."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import signal
import statistics
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SAMPLE, checkpoint, finish, running, wait_for
from fgvctune.cli import app
from fgvctune.config import resolve
from fgvctune.results.runfiles import read_results

optuna = pytest.importorskip("optuna")
runner = CliRunner()


def tune_args(data, start, cache, output, space, trials: int, *more: str) -> list[str]:
    return [
        *("tune", "-a", "folder", "-d", str(data), "--ckpt-path", str(start), "--no-pretrained"),
        *("--cache-dir", cache, "--image-resize", "32", "--batch-size", "4", "--epoch-size", "2"),
        *("--mode", "pynative", "--space", str(space), "--trials", str(trials), "-o", str(output), *more),
    ]


def refused(tmp_path, space_text: str, *more: str) -> str:
    """The one line `tune` answers a space (or storage) with, before anything trains."""
    space = tmp_path / "space.yaml"
    space.write_text(space_text, encoding="utf-8")
    args = ["tune", "-a", "folder", "-d", str(tmp_path), "--space", str(space), "-o", str(tmp_path / "out"), *more]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "out" / "trial-0000").exists()
    return result.output.removeprefix("error: ").strip().replace(str(space), "space.yaml")


@pytest.mark.parametrize(
    "text, message",
    [
        ("lr: [0.1, 0.01]\nwingspan: [1, 2]\n", "space.yaml:2: unknown config key 'wingspan'"),
        ("lr: {low: 0.1, high: 0.01}\n", "space.yaml:1: lr: low 0.1 is above high 0.01"),
        ("weight_decay: {low: 0, high: 0.1, log: true}\n", "space.yaml:1: weight_decay: a log range needs low above 0"),
        ("lr: {low: 0, high: 0.1}\n", "space.yaml:1: lr must be more than 0, got 0.0"),
        ("batch_size: [8, 16]\nopt: [adamw, rmsprop, sgdd]\n", "space.yaml:2: opt must be one of momentum, sgd"),
        ("image_resize: [32, big]\n", "space.yaml:1: image_resize needs an integer, got 'big'"),
        ("scale: [0.35, 1.0]\n", "space.yaml:1: scale needs a list, got 0.35"),
        ("lr: 0.01\n", "space.yaml:1: lr: give a range {low: ..., high: ...} or a list of choices, got 0.01"),
        ("lr: {low: 0.001, high: 0.1, steps: 2}\n", "space.yaml:1: lr: unknown setting 'steps'"),
        ("model: {low: 1, high: 2}\n", "space.yaml:1: model is not a number: give its choices"),
        ("", "space.yaml: the search space is empty"),
        ("- lr\n- freeze\n", "space.yaml: expected a mapping of config keys"),
        (
            "freeze: {low: 1, high: 7}\nlinear_probe: [true]\n",
            "space.yaml: no configuration the space can give is valid",
        ),
    ],
    ids=[
        "unknown-key",
        "low-above-high",
        "log-from-0",
        "end-outside-limits",
        "bad-choice",
        "bad-integer-choice",
        "list-key-scalar-choice",
        "plain-value",
        "unknown-setting",
        "range-of-text",
        "empty",
        "not-a-mapping",
        "never-valid",
    ],
)
def test_a_wrong_search_space_is_one_line_naming_the_file_and_line(tmp_path, text, message):
    assert refused(tmp_path, text).startswith(message)


def test_a_storage_that_cannot_be_used_is_one_line(tmp_path):
    space = "lr: [0.01, 0.1]\n"
    missing = tmp_path / "no" / "such" / "folder" / "study.db"
    assert refused(tmp_path, space, "--storage", f"sqlite:///{missing}").startswith(
        f"cannot use the study storage sqlite:///{missing} ("
    )
    line = refused(tmp_path, space, "--storage", "postgresql://nobody:secret@127.0.0.1:1/x")
    assert "postgresql://nobody:***@127.0.0.1:1/x" in line and "secret" not in line  # the password is not shown
    if importlib.util.find_spec("psycopg") or importlib.util.find_spec("psycopg2"):
        assert line.startswith("cannot use the study storage")  # nothing answers on port 1
    else:
        assert re.search(r"needs the psycopg package, which is not installed \(pip install 'psycopg\[binary\]'\)", line)


def test_workers_below_1_or_without_msrun_are_one_line(tmp_path, monkeypatch):
    assert refused(tmp_path, "lr: [0.01, 0.1]\n", "--workers", "0") == "--workers must be at least 1, got 0"
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))  # no msrun beside it
    line = refused(tmp_path, "lr: [0.01, 0.1]\n", "--workers", "2")
    assert line.startswith(f"msrun not found beside {tmp_path / 'bin' / 'python'}")


def test_values_reach_the_config_as_its_keys_take_them():
    """Optuna's categorical distributions take scalars only: a list-valued key's choices travel as JSON text, and
    freeze (a key of text holding a number) is searched as an integer."""
    from fgvctune.tuning import read_space

    space = {
        "scale": [[0.08, 1], [0.35, 1]],
        "freeze": {"low": 0, "high": 7, "step": 7},
        "lr": {"low": "1e-4", "high": 0.01, "log": True},
    }
    scale, freeze, lr = read_space(space)
    fixed = optuna.trial.FixedTrial({"scale": "[0.35, 1.0]", "freeze": 7, "lr": 0.003})
    assert [scale.suggest(fixed), freeze.suggest(fixed), lr.suggest(fixed)] == [[0.35, 1.0], "7", 0.003]
    assert (lr.low, lr.high, lr.log) == (1e-4, 0.01, True)
    assert scale.spec()["choices"] == ["[0.08, 1.0]", "[0.35, 1.0]"]


def test_the_sampler_repeats_a_study_and_processes_sharing_one_draw_different_values():
    """Seeded by the config's seed and each trial's number: the same study twice gives the same values, and two
    samplers working on one storage (as two processes do) do not draw the same values for their trials."""
    from fgvctune.tuning import trial_seeded_tpe

    def values(trials):
        return [(t.params["lr"], t.params["opt"]) for t in trials]

    def study(storage=None, seed=42):
        return optuna.create_study(
            storage=storage, sampler=trial_seeded_tpe(seed), direction="maximize", study_name="s", load_if_exists=True
        )

    def objective(trial):
        return -abs(trial.suggest_float("lr", 1e-4, 1, log=True) - 0.01) + (
            trial.suggest_categorical("opt", ["a", "b"]) == "a"
        )

    first, again = study(), study()
    first.optimize(objective, n_trials=14)
    again.optimize(objective, n_trials=14)
    other_seed = study(seed=43)
    other_seed.optimize(objective, n_trials=14)
    assert values(first.trials) == values(again.trials) != values(other_seed.trials)

    shared = optuna.storages.InMemoryStorage()
    one, other = study(shared), study(shared)
    asked = [one.ask(), other.ask()]  # two processes starting together, on an empty study
    assert asked[0].suggest_float("lr", 1e-4, 1, log=True) != asked[1].suggest_float("lr", 1e-4, 1, log=True)


def reported(storage: str, folder: str) -> int:
    """The epochs the trial training in `folder` has reported to the study so far (0 while the study database is
    still being made: the file appears before the study is in it)."""
    try:
        trials = optuna.load_study(study_name="tune", storage=storage).trials
    except KeyError:  # Optuna's "Record does not exist." for a study not made yet
        return 0
    return max((t.user_attrs.get("epochs", 0) for t in trials if t.user_attrs.get("folder") == folder), default=0)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning", "ignore:Heartbeat of storage")
def test_a_process_waits_for_the_trials_others_run_and_stops_with_the_study(tmp_path, monkeypatch):
    """A study of 1 trial that another process is running (its heartbeat alive, every second): this process starts
    none of its own, waits, and stops once the other's trial completes."""
    import threading
    import time

    from fgvctune.config import TrainConfig
    from fgvctune.tuning import Search, _open_study, open_storage, read_space

    monkeypatch.setenv("FGVCTUNE_TUNE_HEARTBEAT", "1")
    space = read_space({"lr": [0.01, 0.1]})
    storage, shown = open_storage(None, tmp_path)
    study = _open_study(storage, shown, "tune", 42, space, 5)
    others = optuna.load_study(study_name="tune", storage=storage)
    theirs = others.ask()
    theirs.suggest_categorical("lr", [0.01, 0.1])

    def run_theirs():
        for _ in range(3):
            storage.record_heartbeat(theirs._trial_id)
            time.sleep(1)
        others.tell(theirs, 0.5)

    other = threading.Thread(target=run_theirs)
    said: list[str] = []
    started = time.monotonic()
    other.start()
    Search(study, TrainConfig(), space, tmp_path, verbose=False, log=said.append).run(1, heartbeat=True)
    other.join()
    assert time.monotonic() - started >= 2.5 and [t.state.name for t in study.trials] == ["COMPLETE"]
    assert said == ["waiting for 1 trial(s) of other processes (one whose process died runs again)"]


# -- whole studies ---------------------------------------------------------------------------------------------
def study_of(output, name: str | None = None):
    storage = f"sqlite:///{output / 'study.db'}"
    return optuna.load_study(study_name=name or output.name, storage=storage)


def table(output) -> dict[int, dict]:
    with open(output / "trials.csv", newline="", encoding="utf-8") as f:
        return {int(row["trial"]): row for row in csv.DictReader(f)}


def median_rule_holds(study, startup: int) -> int:
    """Optuna's median rule recomputed from the study (one process: the trials completed before a trial are those
    numbered before it): a pruned trial's best value so far at its last step is below the median of the completed
    trials' values at that step, and a completed trial's never was. Returns how many trials were pruned."""
    trials = study.trials
    pruned = 0
    for trial in trials:
        before = [t for t in trials if t.number < trial.number and t.state.name == "COMPLETE"]
        steps = sorted(trial.intermediate_values)
        for step in steps if len(before) >= startup else []:
            so_far = max(trial.intermediate_values[s] for s in steps if s <= step)
            median = statistics.median(t.intermediate_values[step] for t in before if step in t.intermediate_values)
            if trial.state.name == "PRUNED" and step == steps[-1]:
                assert so_far < median, (trial.number, step)
                pruned += 1
            else:
                assert so_far >= median, (trial.number, step)
    return pruned


@pytest.mark.e2e
def test_a_study_prunes_by_the_median_rule_writes_what_optuna_holds_and_goes_on(
    tmp_path, digits_run, few_digits, cache
):
    """Rates of 1e-7 and 0.05 under AdamW (the fine-tuning recipe, as the base starts from a checkpoint): the larger
    one diverges. With the pruner on after one completed trial, trials are pruned after an epoch below the median.
    Every trial's run is in its folder, trials.csv is Optuna's study, best.yaml the best trial's configuration; the
    same command with more trials continues the study and leaves the earlier runs alone."""
    output, space = tmp_path / "tune", tmp_path / "space.yaml"
    space.write_text("lr: [1.0e-7, 0.05]\nhflip: {low: 0.0, high: 0.5}\n", encoding="utf-8")
    args = tune_args(few_digits, digits_run / "best.ckpt", cache, output, space, 4, "--pruning-startup", "1")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output

    study = study_of(output)
    assert len(study.trials) == 4 and all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    assert median_rule_holds(study, startup=1) >= 1
    rows = table(output)
    for trial in study.trials:
        row = rows[trial.number]
        folder = output / row["folder"]
        assert row["folder"] == f"trial-{trial.number:04d}" and (folder / "results.txt").is_file()
        assert (row["state"], row["lr"], row["hflip"]) == (
            trial.state.name,
            str(trial.params["lr"]),
            str(trial.params["hflip"]),
        )
        results = read_results(folder)
        assert int(row["epochs"]) == len(results) == len(trial.intermediate_values)
        assert float(row["best_val_top1"]) == max(r["val_top1"] for r in results)
        assert [trial.intermediate_values[r["epoch"]] for r in results] == [r["val_top1"] for r in results]
        if trial.state.name == "COMPLETE":
            assert float(row["best_val_top1"]) == trial.value and len(results) == 2
        else:
            assert len(results) < 2 and not (folder / "report.html").exists()
    best = resolve(output / "best.yaml")
    assert (best.lr, best.hflip) == (study.best_trial.params["lr"], study.best_trial.params["hflip"])
    assert best.seed == 42 and best.epoch_size == 2
    assert f"best: trial {study.best_trial.number}, val top-1 {study.best_value:.2%}" in result.output
    assert (output / "history.png").is_file()

    earlier = {p.name: (p / "results.txt").read_bytes() for p in output.glob("trial-*")}
    args[args.index("--trials") + 1] = "5"
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    study = study_of(output)
    assert [t.number for t in study.trials] == list(range(5)) and "4 so far" in again.output
    assert {p.name: (p / "results.txt").read_bytes() for p in output.glob("trial-000[0-3]")} == earlier
    assert (output / "trial-0004" / "results.txt").is_file() and sorted(table(output)) == list(range(5))
    median_rule_holds(study, startup=1)


@pytest.mark.e2e
def test_two_processes_share_one_study_and_one_finishes_it_after_the_other_is_killed(
    tmp_path, digits_run, few_digits, cache
):
    """Two `tune` processes on one SQLite storage and output folder; one is killed (SIGKILL) after an epoch of its
    first trial. The other runs distinct trials, takes the killed one for dead once its heartbeat is late (1 s, grace
    6 s), and runs it again, resumed from its folder: the study ends with the 3 finished trials asked for."""
    output, space = tmp_path / "tune", tmp_path / "space.yaml"
    space.write_text("lr: {low: 0.001, high: 0.1, log: true}\n", encoding="utf-8")
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    args = tune_args(few_digits, digits_run / "best.ckpt", cache, output, space, 3, "--storage", storage)
    command = [sys.executable, "-m", "fgvctune", *args]
    env = {**os.environ, "FGVCTUNE_TUNE_HEARTBEAT": "1", "FGVCTUNE_TUNE_GRACE": "6"}
    logs = [tmp_path / "killed.log", tmp_path / "other.log"]

    def trials_run(log) -> list[str]:
        return re.findall(r"== trial (\d+) \(.*?\): (?:training in|resuming) \S*?(trial-\d+)", log.read_text())

    with running(command, logs[0], env=env) as killed:
        wait_for(lambda: trials_run(logs[0]), killed, seconds=300)
        with running(command, logs[1], env=env) as other:
            first = output / trials_run(logs[0])[0][1]
            wait_for(lambda: reported(storage, first.name) == 1, killed, seconds=300)  # its epoch 1 told to Optuna
            os.killpg(killed.pid, signal.SIGKILL)  # no clean-up of any kind
            killed.wait()
            stopped = next(
                t
                for t in optuna.load_study(study_name="tune", storage=storage).trials
                if t.state.name == "RUNNING" and t.user_attrs["folder"] == first.name
            )
            other.wait(timeout=600)
            assert other.returncode == 0, logs[1].read_text()[-3000:]

    study = optuna.load_study(study_name="tune", storage=storage)
    states = {t.number: t.state.name for t in study.trials}
    assert sum(s in ("COMPLETE", "PRUNED") for s in states.values()) == 3 and states[stopped.number] == "FAIL"
    numbers = [[int(n) for n, _ in trials_run(log)] for log in logs]
    assert not set(numbers[0]) & set(numbers[1]) and len(set(numbers[1])) == len(numbers[1])
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == stopped.number)
    assert retry.state.name == "COMPLETE" and retry.number in numbers[1] and retry.params == stopped.params
    assert (
        f"== trial {retry.number} (lr {stopped.params['lr']:.4g}): resuming {first.name} after epoch 1"
        in logs[1].read_text()
    )
    assert [r["epoch"] for r in read_results(first)] == [1, 2]
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len({t.user_attrs["folder"] for t in finished}) == 3  # each finished trial's own run
    rows = table(output)
    assert {n: r["state"] for n, r in rows.items()} == states and rows[retry.number]["retry_of"] == str(stopped.number)


MSRUN = Path(sys.executable).with_name("msrun")


@pytest.mark.e2e
@pytest.mark.skipif(not MSRUN.is_file(), reason="msrun is not installed beside this Python")
def test_each_trial_trains_with_msrun_workers_and_a_pruned_trial_stops_them(tmp_path, base, cache):
    """`tune --workers 2`: each trial's config goes to its folder's launch.yaml and two msrun workers train it (each
    says so in its log). With seed 3 the first trial draws lr 0.02 and the second 1e-7 (a new head that barely
    moves): after its first epoch the second is behind the first's and pruned with the pruner on after one completed
    trial; its workers are stopped before its last epoch (none left running), its epochs saved, and the study counts
    what results.txt holds."""
    import psutil

    output, space = tmp_path / "tune", tmp_path / "space.yaml"
    space.write_text("lr: [0.02, 1.0e-7]\n", encoding="utf-8")
    command = [
        *(sys.executable, "-m", "fgvctune", "tune", "-a", "aircraft", "-d", str(SAMPLE), "--ckpt-path", str(base)),
        *("--no-pretrained", "--opt", "momentum", "--seed", "3", "--cache-dir", cache, "--image-resize", "32"),
        *("--batch-size", "16", "--epoch-size", "3", "--space", str(space), "--trials", "2", "-o", str(output)),
        *("--pruning-startup", "1", "--workers", "2"),
    ]
    env = dict(os.environ, PATH=f"{MSRUN.parent}{os.pathsep}{os.environ['PATH']}")
    with running(command, tmp_path / "tune.log", env=env) as process:
        finish(process, seconds=600, logs=tmp_path)
    said = (tmp_path / "tune.log").read_text()
    assert process.returncode == 0, said[-3000:]
    left = [p for p in psutil.process_iter(["cmdline"]) if str(output) in " ".join(p.info["cmdline"] or [])]
    assert not left, [p.info["cmdline"] for p in left]

    study = study_of(output)
    assert [(t.state.name, t.params["lr"]) for t in study.trials] == [("COMPLETE", 0.02), ("PRUNED", 1e-7)]
    median_rule_holds(study, startup=1)
    rows = table(output)
    for trial in study.trials:
        folder = output / f"trial-{trial.number:04d}"
        assert resolve(folder / "launch.yaml").lr == trial.params["lr"]
        logs = folder / "msrun-logs"
        assert {"worker_0.log", "worker_1.log"} <= {p.name for p in logs.iterdir()}
        assert "2 data-parallel workers: each trains on 64 of the 128" in (logs / "worker_0.log").read_text()
        results = read_results(folder)
        assert (
            len(results)
            == trial.user_attrs["epochs"]
            == len(trial.intermediate_values)
            == int(rows[trial.number]["epochs"])
        )
        assert [trial.intermediate_values[r["epoch"]] for r in results] == [r["val_top1"] for r in results]
        assert int(checkpoint(folder / "last.ckpt")["fgvctune_epoch"]) == len(results)  # the epochs saved
    assert len(read_results(output / "trial-0000")) == 3 and 1 <= len(read_results(output / "trial-0001")) < 3
    assert "== trial 1: pruned after epoch 1" in said and not (output / "trial-0001" / "report.html").exists()


@pytest.mark.e2e
@pytest.mark.skipif(not MSRUN.is_file(), reason="msrun is not installed beside this Python")
def test_a_trial_of_msrun_workers_stopped_with_sigterm_resumes_under_msrun(tmp_path, base, cache):
    """SIGTERM to `tune --workers 2` once its trial's first epoch is reported: the workers are stopped (none left),
    tune exits 130. The same command runs the trial again, resumed from its folder with --resume under msrun."""
    import psutil

    output, space = tmp_path / "tune", tmp_path / "space.yaml"
    space.write_text("lr: [0.02]\n", encoding="utf-8")
    command = [
        *(sys.executable, "-m", "fgvctune", "tune", "-a", "aircraft", "-d", str(SAMPLE), "--ckpt-path", str(base)),
        *("--no-pretrained", "--opt", "momentum", "--cache-dir", cache, "--image-resize", "32", "--batch-size", "16"),
        *("--epoch-size", "3", "--space", str(space), "--trials", "1", "-o", str(output), "--workers", "2"),
    ]
    env = dict(os.environ, PATH=f"{MSRUN.parent}{os.pathsep}{os.environ['PATH']}")
    storage = f"sqlite:///{output / 'study.db'}"
    with running(command, tmp_path / "first.log", env=env) as first:
        # results.txt: the study is made by then (a reader racing its making trips over Optuna's set-up)
        landed = output / "trial-0000" / "results.txt"
        wait_for(lambda: landed.is_file() and reported(storage, "trial-0000") >= 1, first, seconds=300)
        workers = psutil.Process(first.pid).children(recursive=True)
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)
    said = (tmp_path / "first.log").read_text()
    assert first.returncode == 130 and "interrupted" in said.strip().splitlines()[-1], said[-3000:]
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive, [p.cmdline() for p in alive]
    saved = int(checkpoint(output / "trial-0000" / "last.ckpt")["fgvctune_epoch"])  # what a resumed run starts from
    assert 1 <= saved < 3

    with running(command, tmp_path / "again.log", env=env) as again:
        finish(again, seconds=600, logs=tmp_path)
    said = (tmp_path / "again.log").read_text()
    assert again.returncode == 0, said[-3000:]
    assert f"resuming trial-0000 after epoch {saved}" in said
    logs = output / "trial-0000" / "msrun-logs"
    assert f"resuming {output / 'trial-0000'} after epoch {saved}" in (logs / "worker_0.log").read_text()
    assert (logs / "worker_1.log").is_file()
    assert [r["epoch"] for r in read_results(output / "trial-0000")] == [1, 2, 3]
    study = study_of(output)
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"] and study.trials[1].user_attrs["epochs"] == 3
