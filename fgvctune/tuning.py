"""`fgvctune tune`: a search over config keys with Optuna, each trial a whole run in a folder of its own.

The search space is a YAML mapping of config keys, each a range of numbers (`{low, high, log, step}`) or choices
(`[a, b]` or `{choices: [a, b]}`). Optuna's TPE sampler picks each trial's values; its median pruner stops a trial
after an epoch whose validation top-1 is below the median of the completed trials' at that epoch. The study lives in
a storage (SQLite in the output folder by default, or a database or journal several processes share), so `tune` goes
on where it stopped and several processes, on one machine or several, work on one study. Every trial trains with the
base config's seed: trials differ only by the values searched.

Longer than 400 lines because the search needs its four parts together, each short: the space's checks (one line
per mistake, before anything trains), the storage and study (one line for one that cannot be used), the loop that
shares a study between processes and runs a dead process's trial again (with --workers, a trial's msrun workers
followed through its results.txt and stopped when pruned), and the files written after each trial.
Optuna is imported inside the functions that use it: `fgvctune --help` stays quick without it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
import os
import re
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fgvctune import config as config_module
from fgvctune.config import FIELDS, TrainConfig, dump_yaml, load_yaml
from fgvctune.errors import FgvctuneError, UsageError
from fgvctune.fileio import atomic_write_bytes, atomic_write_text

# What `tune` writes in its output folder, besides a run folder per trial (trial-NNNN, Optuna's trial number).
STUDY_DB = "study.db"  # the default storage
TRIALS_TABLE = "trials.csv"
BEST_CONFIG = "best.yaml"  # the best trial's config: `fgvctune train -c OUT/best.yaml` trains it again
HISTORY_PICTURE, IMPORTANCE_PICTURE = "history.png", "importance.png"

# A trial whose process records no heartbeat for GRACE seconds is taken for dead: the next process to look fails it
# and queues it again, at most MAX_RETRIES times. Generous, so that a busy process is not taken for a dead one (its
# trial would run twice); FGVCTUNE_TUNE_HEARTBEAT and FGVCTUNE_TUNE_GRACE change them (the tests shorten them).
HEARTBEAT_SECONDS, GRACE_SECONDS, MAX_RETRIES = 10, 60, 2
REACH_SECONDS = 10  # a database server that does not answer in this time is not there
SPACE_ATTR = "fgvctune.space"  # the search space, kept in the study: running it again must search the same one
RANGE_SETTINGS = ("low", "high", "log", "step")
MOST_CHECKED = 4096  # combinations of the space's ends tried for a valid configuration before the study starts
# The package a storage's driver comes in, by the module Python could not import.
DRIVERS = {"psycopg": "'psycopg[binary]'", "psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient", "redis": "redis"}


# -- the search space --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dimension:
    """One config key of the space: numbers from low to high (integers for an integer key, and for freeze, a key of
    text holding a number), or choices, each already checked as the key's value."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()

    @property
    def integer(self) -> bool:
        return self.key == "freeze" or _kind(self.key) is int

    def suggest(self, trial):
        """The trial's value for this key, as the config takes it."""
        if self.choices:
            return self.value(trial.suggest_categorical(self.key, [_optuna_value(c) for c in self.choices]))
        if self.integer:
            step = int(self.step or 1)
            return self.value(trial.suggest_int(self.key, int(self.low), int(self.high), step=step, log=self.log))
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def value(self, held):
        """A value as Optuna holds it (a list or mapping as JSON text, freeze as an integer) as the config takes it."""
        if self.key == "freeze":
            return str(held)
        return json.loads(held) if _kind(self.key) in (list, dict) else held

    def ends(self) -> list:
        """The values that decide whether a configuration can be valid: every choice, or both ends of the range."""
        if self.choices:
            return list(self.choices)
        return [self.value(int(v)) if self.integer else v for v in (self.low, self.high)]

    def spec(self) -> dict:
        if self.choices:
            return {"key": self.key, "choices": [_optuna_value(c) for c in self.choices]}
        return {"key": self.key, "low": self.low, "high": self.high, "log": self.log, "step": self.step}


def _kind(name: str) -> type:
    f = FIELDS[name]
    return type(f.default if f.default is not dataclasses.MISSING else f.default_factory())


def _optuna_value(value):
    """A choice as Optuna's categorical distributions take it: a YAML scalar as it is, a list or mapping as JSON."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def read_space(space) -> list[Dimension]:
    """The search space of a YAML file (a path) or of a mapping, every key and value checked: one line naming the
    file, line and key for the first that is wrong."""
    if isinstance(space, dict):
        data, lines, origin = space, {}, "space"
    else:
        if not Path(space).is_file():
            raise UsageError(f"no search space file {space}", hint="--space names a YAML file of config keys")
        (data, lines), origin = load_yaml(space), str(space)
    if not data:
        raise UsageError(f"{origin}: the search space is empty", hint="e.g. lr: {low: 1e-4, high: 1e-2, log: true}")
    where = {str(key): f"{origin}:{lines[str(key)]}" if str(key) in lines else origin for key in data}
    return [_dimension(str(key), value, where[str(key)]) for key, value in data.items()]


def _dimension(key: str, value, where: str) -> Dimension:
    name = key.replace("-", "_")
    if name not in FIELDS:
        raise UsageError(f"{where}: unknown config key {key!r}", hint="`fgvctune train --help` lists every key")
    if name == "distribute":
        raise UsageError(f"{where}: distribute is not searched: tune trains one trial at a time in each process")
    if isinstance(value, list):
        value = {"choices": value}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: {name}: give a range {{low: ..., high: ...}} or a list of choices, got {value!r}")
    settings = set(map(str, value))
    if "choices" in settings:
        if settings != {"choices"}:
            raise UsageError(f"{where}: {name}: give choices or a range (low, high), not both")
        choices = value["choices"]
        if not isinstance(choices, list) or not choices:
            raise UsageError(f"{where}: {name}: choices must be a list of at least one value, got {choices!r}")
        try:
            return Dimension(name, choices=tuple(config_module._coerce(name, c, where) for c in choices))
        except UsageError as error:  # scale: [0.08, 1.0] is two choices, each not a list
            shown = "[[0.08, 1.0], [0.35, 1.0]]" if name in ("scale", "ratio") else "[[a, b], [c]]"
            hint = f"each choice of {name} is a list: {name}: {shown}" if _kind(name) is list else error.hint
            raise UsageError(error.message, hint=hint) from None
    unknown = sorted(settings - set(RANGE_SETTINGS))
    if unknown:
        raise UsageError(f"{where}: {name}: unknown setting {unknown[0]!r}; a range takes low, high, log and step")
    return _range(name, value, where)


def _range(name: str, value: dict, where: str) -> Dimension:
    integer = name == "freeze" or _kind(name) is int
    if not integer and _kind(name) is not float:
        raise UsageError(f"{where}: {name} is not a number: give its choices, e.g. {name}: [a, b]")
    if "low" not in value or "high" not in value:
        raise UsageError(f"{where}: {name}: a range needs low and high")
    low, high = (config_module._coerce(name, value[end], where) for end in ("low", "high"))
    if name == "freeze":
        if "all" in (low, high):
            raise UsageError(f"{where}: freeze: a range is of numbers of blocks; 'all' goes in choices: [0, 7, all]")
        low, high = int(low), int(high)
    if low > high:
        raise UsageError(f"{where}: {name}: low {low!r} is above high {high!r}")
    log, step = value.get("log", False), value.get("step")
    if not isinstance(log, bool):
        raise UsageError(f"{where}: {name}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise UsageError(f"{where}: {name}: a log range needs low above 0, got {low!r}")
    if step is not None:
        try:
            number = float(step)  # YAML 1.1 reads 1e-3 (no dot) as text
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(step, bool) or not number > 0 or (integer and not number.is_integer()) or math.isinf(number):
            kind = "a whole number" if integer else "a number"
            raise UsageError(f"{where}: {name}: step must be {kind} above 0, got {step!r}")
        if log:
            raise UsageError(f"{where}: {name}: a range takes log or step, not both (Optuna's rule)")
        step = int(number) if integer else number
    return Dimension(name, low=low, high=high, log=log, step=step)


def check_some_valid(config: TrainConfig, space: list[Dimension], origin: str) -> None:
    """One line before anything trains when no values of the space make a valid configuration with `config`
    (--linear-probe with freeze 1 to 7, say). The checks across keys compare a key with a value or a number, so the
    ends of each range decide. A space that allows some invalid ones is searched: those trials are not trained."""
    if math.prod(len(d.ends()) for d in space) > MOST_CHECKED:
        return
    first = None
    for values in itertools.product(*(d.ends() for d in space)):
        try:
            config_module._validate(dataclasses.replace(config, **{d.key: v for d, v in zip(space, values)}))
            return
        except UsageError as error:
            first = first or error.message
    raise UsageError(f"{origin}: no configuration the space can give is valid: {first}")


# -- the study -----------------------------------------------------------------------------------------------------
@dataclass
class TuningResult:
    """A study as it ended here: its trials (the rows of trials.csv) and the best completed one (None before any)."""

    output: Path
    study_name: str
    storage: str  # as shown: without a password
    keys: list[str]
    rows: list[dict] = field(default_factory=list)
    best: dict | None = None


def tune(
    config: TrainConfig,
    space,
    output: str | Path = "runs/tune",
    trials: int = 20,
    storage: str | None = None,
    study_name: str | None = None,
    pruning_startup: int = 5,
    verbose: bool = False,
    log=print,
    workers: int = 1,
) -> TuningResult:
    """Search the config keys of `space` (a YAML file or a mapping) until the study holds `trials` finished trials
    (completed or pruned), each trained into output/trial-NNNN from `config` and the trial's values; the objective
    is the run's best validation top-1. The median pruner starts after `pruning_startup` completed trials.

    The study is kept in `storage` (default: SQLite in output/study.db; a SQLAlchemy URL, redis://..., or a journal
    file's path) under `study_name` (default: the output folder's name): running again goes on with the same study,
    and several processes may share it. Rewritten after each trial: trials.csv, best.yaml and the two pictures.
    With `workers` above 1, each trial trains with that many data-parallel workers under msrun, as `train --workers`.
    """
    optuna = _optuna()
    if not config.adapter or not config.data_dir:
        raise UsageError("no dataset given", hint="pass --adapter and --data-dir (or set them in --config)")
    if config.distribute:
        raise UsageError(
            "tune trains one trial at a time: drop --distribute", hint="--workers N trains each trial with N workers"
        )
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    if workers > 1 and not Path(sys.executable).with_name("msrun").is_file():  # as launch says it, before any trial
        raise UsageError(f"msrun not found beside {sys.executable}", hint="install MindSpore in this environment")
    if trials < 1 or pruning_startup < 0:
        raise UsageError(f"give at least 1 trial and 0 or more startup trials, got {trials} and {pruning_startup}")
    dimensions = read_space(space)
    check_some_valid(config, dimensions, "space" if isinstance(space, dict) else str(space))
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    study_name = study_name or output.resolve().name
    from fgvctune.training import tracking

    with _quiet_optuna(optuna, verbose):
        storage_object, shown = open_storage(storage, output)
        study = _open_study(storage_object, shown, study_name, config.seed, dimensions, pruning_startup)
        log(f"study {study_name!r} in {shown}: {trials} finished trials wanted, {_finished(study)} so far")
        with tracking.parent(config, output, "tune"):  # with --log-to mlflow, every trial's run nests under one
            search = Search(study, config, dimensions, output, verbose, log, workers)
            search.run(trials, heartbeat=isinstance(storage_object, optuna.storages.RDBStorage))
        return write_outputs(study, config, dimensions, output, shown, log)


def _optuna():
    try:
        import optuna
    except ImportError:
        raise UsageError("tune needs Optuna, which is not installed", hint='pip install "fgvctune[tune]"') from None
    return optuna


@contextmanager
def _quiet_optuna(optuna, verbose: bool):
    """Optuna's own log lines only with --verbose (tune says a line per trial; Optuna's for a failed trial holds its
    traceback, and the error is said in one line), and none of its warnings that the features tune uses
    (heartbeats, journal storages) are experimental."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def _seconds(name: str, default: int) -> int:
    text = os.environ.get(name, "")
    if text and (not text.isdigit() or int(text) < 1):
        raise UsageError(f"{name}={text!r}: give a whole number of seconds, at least 1")
    return int(text) if text else default


def open_storage(url: str | None, output: Path):
    """The study's storage and its URL as shown (a password hidden), or one line saying why it cannot be used.

    A SQLAlchemy URL (sqlite, postgresql, mysql) is Optuna's RDBStorage, with heartbeats: the trial of a process that
    died is failed and queued again. redis://... and a file's path are Optuna's journal storages, without.
    """
    import optuna

    url = url or f"sqlite:///{output / STUDY_DB}"
    shown = re.sub(r"(://[^/:@]*):[^/@]*@", r"\1:***@", url)
    scheme = url.split("://")[0].split("+")[0].lower() if "://" in url else ""
    redis = scheme in ("redis", "rediss", "unix")
    try:
        if not scheme:
            from optuna.storages.journal import JournalFileBackend

            return optuna.storages.JournalStorage(JournalFileBackend(url)), shown
        if redis:
            from optuna.storages.journal import JournalRedisBackend

            return optuna.storages.JournalStorage(JournalRedisBackend(url)), shown
        heartbeat = _seconds("FGVCTUNE_TUNE_HEARTBEAT", HEARTBEAT_SECONDS)
        grace = max(_seconds("FGVCTUNE_TUNE_GRACE", GRACE_SECONDS), heartbeat + 1)
        # SQLite waits for another process's write instead of failing; a server that does not answer is given up on
        server = {"connect_timeout": REACH_SECONDS}
        connect = {"sqlite": {"timeout": 60}, "postgresql": server, "mysql": server}.get(scheme, {})
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # its name from Optuna 4.9 on
        stale = (
            {"heartbeat_stale_trial_callback": retry(max_retry=MAX_RETRIES)}
            if retry
            else {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=MAX_RETRIES)}
        )
        engine = {"connect_args": connect, "pool_pre_ping": True}
        storage = optuna.storages.RDBStorage(
            url, engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=grace, **stale
        )
        return storage, shown
    except UsageError:
        raise
    except ImportError as error:
        module = _missing_module(error) or ("redis" if redis else "its driver")
        raise UsageError(
            f"--storage {shown} needs the {module} package, which is not installed",
            hint=f"pip install {DRIVERS.get(module, module)}",
        ) from None
    except Exception as error:  # SQLAlchemy's, a driver's, Redis's or an OSError: a storage that cannot be opened
        raise UsageError(
            f"cannot use the study storage {shown} ({_first_line(error)})", hint="check --storage"
        ) from None


def _missing_module(error: BaseException | None) -> str:
    """The module an ImportError could not find (Optuna's wraps the driver's)."""
    while error is not None:
        found = getattr(error, "name", None) or next(iter(re.findall(r"No module named '([\w.]+)'", str(error))), "")
        if found:
            return found.split(".")[0]
        error = error.__cause__ or error.__context__
    return ""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _open_study(storage, shown: str, name: str, seed: int, space: list[Dimension], pruning_startup: int):
    """The study `name` in `storage`, made if new; one line if it holds another search (another space, or a study
    that is not tune's)."""
    import optuna

    sampler = trial_seeded_tpe(seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=pruning_startup, n_warmup_steps=0)
    try:  # the first queries: a storage opened may still refuse them (a read-only file, a server gone)
        study = optuna.create_study(
            study_name=name, storage=storage, sampler=sampler, pruner=pruner, direction="maximize", load_if_exists=True
        )
        kept, held = study.user_attrs.get(SPACE_ATTR), study.get_trials(deepcopy=False)
    except Exception as error:
        raise UsageError(
            f"cannot use the study storage {shown} ({_first_line(error)})", hint="check --storage"
        ) from None
    wanted = json.loads(json.dumps([d.spec() for d in space]))  # as the storage gives it back
    if study.direction != optuna.study.StudyDirection.MAXIMIZE or (kept is None and held):
        raise UsageError(f"study {name!r} in {shown} is not one of fgvctune tune's", hint="pick another --study-name")
    if kept is None:
        study.set_user_attr(SPACE_ATTR, wanted)
    elif kept != wanted:
        raise UsageError(
            f"study {name!r} in {shown} searches another space (keys {', '.join(d['key'] for d in kept)})",
            hint="search it with the same --space, or start another study: another --study-name or --output",
        )
    return study


def _finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def trial_seeded_tpe(seed: int):
    """Optuna's TPE sampler, seeded for each trial by `seed` and the trial's number: one process repeats a study
    exactly, and processes sharing a study draw different values (with one seed for all, two processes starting
    together would draw the same first trials)."""
    import numpy as np
    from optuna.samplers import BaseSampler, TPESampler

    class TrialSeededTPE(BaseSampler):
        def __init__(self):
            self.tpe = TPESampler(seed=seed)

        def before_trial(self, study, trial):
            self.tpe = TPESampler(seed=int(np.random.SeedSequence([seed, trial.number]).generate_state(1)[0]))
            self.tpe.before_trial(study, trial)

        def infer_relative_search_space(self, study, trial):
            return self.tpe.infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self.tpe.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self.tpe.sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values):
            self.tpe.after_trial(study, trial, state, values)

        def reseed_rng(self):
            self.tpe.reseed_rng()

    return TrialSeededTPE()


# -- the trials ----------------------------------------------------------------------------------------------------
class TakenOver(Exception):
    """Another process failed the trial while this one trained it (its heartbeat was late)."""


class Search:
    """One process's trials: until the study holds enough finished ones, each trained (or resumed) as a run."""

    def __init__(
        self, study, config: TrainConfig, space: list[Dimension], output: Path, verbose: bool, log, workers: int = 1
    ):
        self.study, self.config, self.space, self.output = study, config, space, output
        self.verbose, self.log, self.workers = verbose, log, workers
        self.current = None  # the trial this process runs
        self.settled = False  # whether its objective ended as it may: a value, pruned, or taken over

    def run(self, wanted: int, heartbeat: bool) -> None:
        """Trials until `wanted` are finished. With heartbeats (a database storage) the trials other processes run
        count too, so that processes sharing the study stop together, and the trial of one that died is failed (once
        its heartbeat is late) and run again. Without, each process starts trials while fewer than `wanted` are
        finished: a dead process's trial, running for ever, would otherwise hold the others up."""
        import optuna
        from optuna.trial import TrialState

        from fgvctune.training.interrupts import Interrupted

        said = False
        while True:
            if heartbeat:
                optuna.storages.fail_stale_trials(self.study)
            states = [t.state for t in self.study.get_trials(deepcopy=False)]  # one reading: no trial counted twice
            finished = sum(state in (TrialState.COMPLETE, TrialState.PRUNED) for state in states)
            running = states.count(TrialState.RUNNING) if heartbeat else 0
            if finished >= wanted:
                return
            if finished + running >= wanted:
                if not said:
                    self.log(f"waiting for {running} trial(s) of other processes (one whose process died runs again)")
                said = True
                time.sleep(min(5, _seconds("FGVCTUNE_TUNE_HEARTBEAT", HEARTBEAT_SECONDS)))
                continue
            said = False
            try:
                self.study.optimize(self.objective, n_trials=1, gc_after_trial=False)
            except (KeyboardInterrupt, Interrupted):
                self._queue_again()
                write_outputs(self.study, self.config, self.space, self.output)
                raise Interrupted(
                    f"interrupted; the study keeps its finished trials ({self.output})",
                    hint="run the same command again to go on: the interrupted trial resumes after its last epoch",
                ) from None
            except ValueError:  # Optuna refuses to record a trial another process failed
                if not self.settled or self._frozen().state != TrialState.FAIL:
                    raise
                self.log(f"trial {self.current.number}: taken for dead by another process, its result not recorded")
            write_outputs(self.study, self.config, self.space, self.output)

    def _frozen(self):
        return next(t for t in self.study.get_trials(deepcopy=False) if t.number == self.current.number)

    def _queue_again(self) -> None:
        """The interrupted trial, queued to run again (resumed from its folder) as a dead process's is."""
        import optuna

        frozen = self._frozen() if self.current else None
        if frozen is not None and frozen.state == optuna.trial.TrialState.FAIL:
            retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
            (retry or optuna.storages.RetryFailedTrialCallback)(max_retry=MAX_RETRIES)(self.study, frozen)

    def objective(self, trial) -> float:
        """One trial: its values, then its run trained (or resumed, for a trial run again), reported to the pruner
        after each epoch; its value is the run's best validation top-1."""
        import optuna

        self.current, self.settled = trial, False
        try:
            value = self._trial(trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            self.settled = True
            raise TakenOver(f"trial {trial.number} was failed by another process") from None
        except optuna.TrialPruned:
            self.settled = True
            raise
        self.settled = True
        return value

    def _trial(self, trial) -> float:
        import optuna

        from fgvctune.results.runfiles import LAST, read_results

        values = {d.key: d.suggest(trial) for d in self.space}
        said = f"== trial {trial.number} ({', '.join(f'{k} {_shown(v)}' for k, v in values.items())})"
        trial_config = dataclasses.replace(self.config, **values)
        try:
            config_module._validate(trial_config)
        except UsageError as error:
            trial.set_user_attr("invalid", error.message)
            self.log(f"{said}: not trained, not a valid configuration ({error.message})")
            # Pruned rather than failed: it counts as finished, and TPE ranks it below every trial that trained
            raise optuna.TrialPruned(error.message) from None
        rows: list[dict] = []

        def record(row: dict) -> None:
            rows.append(row)
            trial.report(row["val_top1"], row["epoch"])
            trial.set_user_attr("epochs", row["epoch"])
            trial.set_user_attr("best_val_top1", max(r["val_top1"] for r in rows))

        def report(row: dict) -> None:
            record(row)
            if trial.should_prune():
                self.log(f"== trial {trial.number}: pruned after epoch {row['epoch']}")
                raise optuna.TrialPruned(f"val top-1 {row['val_top1']:.4f} after epoch {row['epoch']}")

        # A trial run again (its process died or was interrupted) keeps the first attempt's attributes, its folder
        # among them: resumed there after its last saved epoch, unless a run still holds it.
        earlier = trial.user_attrs.get("folder")
        resume = bool(earlier) and (self.output / earlier / LAST).is_file() and not _in_use(self.output / earlier)
        folder = self.output / (earlier if resume else f"trial-{trial.number:04d}")
        if not resume and read_results(folder):
            raise UsageError(f"{folder} holds a run of another study", hint="give this study another --output")
        trial.set_user_attr("folder", folder.name)
        if resume:
            done = _landed(folder)  # the epochs last.ckpt holds: a kill can land between results.txt and it
            self.log(f"{said}: resuming {folder.name} after epoch {len(done)}")
            for row in done:  # the epochs the first attempt finished, told to the pruner again
                report(row)
        else:
            self.log(f"{said}: training in {folder}")
        if self.workers > 1:
            return max(r["val_top1"] for r in self._launched(trial_config, folder, resume, record, report))
        from fgvctune.training.trainer import train

        if resume:
            run = train(resume=folder, verbose=self.verbose, log=self.log, on_epoch=report)
        else:
            run = train(trial_config, output=folder, verbose=self.verbose, log=self.log, on_epoch=report)
        return max(r["val_top1"] for r in run.rows)

    def _launched(self, config: TrainConfig, folder: Path, resume: bool, record, report) -> list[dict]:
        """The trial trained (or resumed) by `workers` data-parallel workers under msrun, launched as `train
        --workers` launches them; its rows. While they train, a thread follows the folder's results.txt and reports
        each epoch whose checkpoints have landed; when the pruner says prune it interrupts this thread (the main
        one) as Ctrl-C does, and launch stops msrun's workers: the trial is pruned with the epochs saved."""
        import optuna

        from fgvctune.results import runfiles
        from fgvctune.training.distributed import launch_run

        told = len(runfiles.read_results(folder))  # a resumed trial's earlier epochs: reported already
        stopped, ended = {}, threading.Event()

        def follow() -> None:
            nonlocal told
            while not ended.wait(0.2):
                for row in _landed(folder)[told:]:
                    told += 1
                    try:
                        report(row)
                    except Exception as error:  # pruned, or the trial failed by another process: stop the workers
                        stopped["error"] = error
                        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                        return

        follower = threading.Thread(target=follow, daemon=True)
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the follower's interruption, and Ctrl-C
        signal.signal(signal.SIGTERM, _interrupt)  # a scheduler's stop, between launches too
        try:
            try:
                follower.start()
                launch_run(folder, self.workers, None if resume else config, log=self.log)
            finally:
                ended.set()
                if follower.is_alive():
                    follower.join()
        except (KeyboardInterrupt, FgvctuneError):
            if not stopped:
                raise  # Ctrl-C, SIGTERM, or the workers failed
        finally:
            for sig, handler in handlers.items():
                if handler is not None:  # None: a handler not set from Python, which cannot be set back
                    signal.signal(sig, handler)
        rows = runfiles.read_results(folder)
        if stopped:
            for row in rows[told:]:  # an epoch that landed as the workers were stopped: counted, not judged
                record(row)
            if isinstance(stopped["error"], optuna.TrialPruned):
                self.log(f"stopped the workers of {folder.name}: {len(rows)} epoch(s) saved")
            raise stopped["error"]
        for row in rows[told:]:  # the epochs the follower had not seen yet, the last among them
            report(row)
        return rows


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _landed(folder: Path) -> list[dict]:
    """The rows of results.txt once their epoch's files have all landed: rank 0 writes results.txt, then best.ckpt
    (when it improved), then last.ckpt, so last.ckpt written after results.txt means the last row is saved."""
    from fgvctune.results.runfiles import LAST, RESULTS_FILE, read_results

    try:
        if (folder / LAST).stat().st_mtime_ns < (folder / RESULTS_FILE).stat().st_mtime_ns:
            return read_results(folder)[:-1]
    except FileNotFoundError:
        return []
    return read_results(folder)


def _in_use(folder: Path) -> bool:
    """Whether a run holds `folder`: a trial taken for dead whose process still trains it."""
    from fgvctune.results.runfiles import working_in

    try:
        with working_in(folder):
            return False
    except UsageError:
        return True


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


# -- the files -----------------------------------------------------------------------------------------------------
def trial_rows(study, space: list[Dimension]) -> list[dict]:
    """A row per trial: its number, state, each key's value (as Optuna holds it), its run's best val top-1, epochs
    trained and folder, the trial it runs again (a dead process's), and why it did not train (an invalid config)."""
    return [
        {
            "trial": trial.number,
            "state": trial.state.name,
            **{d.key: trial.params.get(d.key, "") for d in space},
            "best_val_top1": trial.user_attrs.get("best_val_top1", ""),
            "epochs": trial.user_attrs.get("epochs", 0),
            "folder": trial.user_attrs.get("folder", ""),
            "retry_of": trial.system_attrs.get("failed_trial", ""),
            "note": trial.user_attrs.get("invalid", ""),
        }
        for trial in study.get_trials(deepcopy=False)
    ]


def trials_text(rows: list[dict], space: list[Dimension]) -> str:
    columns = ["trial", "state", *(d.key for d in space), "best_val_top1", "epochs", "folder", "retry_of", "note"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_outputs(study, config, space: list[Dimension], output: Path, shown: str = "", log=None) -> TuningResult:
    """trials.csv, the pictures and best.yaml, from the study as it stands; `log` says what could not be drawn."""
    from optuna.trial import TrialState

    rows = trial_rows(study, space)
    atomic_write_text(output / TRIALS_TABLE, trials_text(rows, space))
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        return TuningResult(output, study.study_name, shown, [d.key for d in space], rows)
    _pictures(study, completed, output, log)
    best = rows[[r["trial"] for r in rows].index(study.best_trial.number)]
    atomic_write_text(output / BEST_CONFIG, dump_yaml(_best_config(config, space, best, output)))
    return TuningResult(output, study.study_name, shown, [d.key for d in space], rows, best)


def _best_config(config: TrainConfig, space: list[Dimension], best: dict, output: Path) -> TrainConfig:
    """The best trial's config: its run's config.yaml, or where its run is not in this folder (another machine ran
    it), the base and its values."""
    from fgvctune.results.runfiles import is_run, read_config

    if best["folder"] and is_run(output / best["folder"]):
        return read_config(output / best["folder"])
    return dataclasses.replace(config, **{d.key: d.value(best[d.key]) for d in space})


def _pictures(study, completed: list, output: Path, log) -> None:
    """Optuna's history of the objective and importance of each key, drawn with matplotlib. The importance needs
    two completed trials of different values."""
    import matplotlib

    matplotlib.use("Agg")  # files only, on machines without a display too
    from optuna.visualization import matplotlib as optuna_plots

    from fgvctune.results.plots import png

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes on few trials (importances alike): the pictures show them
        atomic_write_bytes(output / HISTORY_PICTURE, png(optuna_plots.plot_optimization_history(study).figure))
        if len({json.dumps(t.params, sort_keys=True) for t in completed}) < 2:
            reason = "it needs two completed trials of different values"
        else:
            try:
                atomic_write_bytes(output / IMPORTANCE_PICTURE, png(optuna_plots.plot_param_importances(study).figure))
                return
            except (ValueError, RuntimeError, ZeroDivisionError) as error:  # Optuna's evaluator on too few trials
                reason = _first_line(error)
    if log:
        log(f"{IMPORTANCE_PICTURE} not drawn: {reason}")


def summary_text(result: TuningResult) -> str:
    """The trials as a table, then the best one."""
    cells = [["trial", "state", *result.keys, "best top-1", "epochs"]]
    for row in result.rows:
        top1 = f"{row['best_val_top1']:.2%}" if row["best_val_top1"] != "" else "-"
        values = [_shown(row[k]) if row[k] != "" else "-" for k in result.keys]
        cells.append([str(row["trial"]), row["state"], *values, top1, str(row["epochs"])])
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    if result.best is None:
        return "\n".join([*lines, "no trial completed"])
    best = result.best
    values = ", ".join(f"{k} {_shown(best[k])}" for k in result.keys)
    return "\n".join([*lines, f"best: trial {best['trial']}, val top-1 {best['best_val_top1']:.2%} ({values})"])
