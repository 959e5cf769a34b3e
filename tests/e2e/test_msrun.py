"""Data-parallel training under msrun with two CPU workers on this machine: one launch, two launches acting
as two machines, a resumed run, uneven shards."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import SAMPLE, checkpoint, fgvctune, finish, free_port, running, train_command, wait_for
from fgvctune.results.runfiles import read_results

MSRUN = Path(sys.executable).with_name("msrun")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not MSRUN.is_file(), reason="msrun is not installed beside this Python"),
]
ENV = dict(os.environ, PATH=f"{MSRUN.parent}{os.pathsep}{os.environ['PATH']}")  # msrun starts `python` from PATH


def msrun(
    *args: str, log_dir: Path, workers: int = 2, local: int = 2, port: int, node: int | None = None, master="127.0.0.1"
):
    return [
        str(MSRUN),
        f"--worker_num={workers}",
        f"--local_worker_num={local}",
        f"--master_addr={master}",
        f"--master_port={port}",
        *([f"--node_rank={node}"] if node is not None else []),
        "--join=True",
        f"--log_dir={log_dir}",
        *args,
    ]


@pytest.fixture
def second_host():
    """A second host on this machine: a network namespace joined to this one by a veth pair, so that
    msrun there sees the master address as another machine's (on one host both would start a
    scheduler). Yields (the master's address, the command prefix that runs a program on the second host)."""
    name = f"fgvctune{os.getpid()}"
    steps = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", f"{name}a", "type", "veth", "peer", "name", f"{name}b"],
        ["ip", "link", "set", f"{name}b", "netns", name],
        ["ip", "addr", "add", "10.77.0.1/24", "dev", f"{name}a"],
        ["ip", "link", "set", f"{name}a", "up"],
        ["ip", "netns", "exec", name, "ip", "addr", "add", "10.77.0.2/24", "dev", f"{name}b"],
        ["ip", "netns", "exec", name, "ip", "link", "set", f"{name}b", "up"],
        ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
        # Every address of this host reachable from the second, whichever one MindSpore's workers announce.
        ["ip", "netns", "exec", name, "ip", "route", "add", "default", "via", "10.77.0.1"],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        reason = f"cannot make a second host with ip netns: {getattr(exc, 'stderr', exc)}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield "10.77.0.1", ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "link", "del", f"{name}a"], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_stopped_two_worker_run_is_finished_by_two_machines(tmp_path, base, cache, second_host):
    """`fgvctune train --workers 2` (msrun's default port taken by someone else) is stopped with SIGTERM
    after epoch 1: it exits 130 and leaves no worker behind. Two msrun launches on two hosts (this one
    and a network namespace: --node_rank 0 and 1, one worker each, one master address and port) resume
    and finish the run.
    --scale-lr doubles the rate for two workers; validation scores each test image once."""
    import psutil

    folder = tmp_path / "run"
    settings = train_command(folder, base, cache, 3)[4:]  # the arguments after `python -m fgvctune train`
    settings += ["--scheduler", "constant", "--scale-lr"]  # train_command's lr is 0.02
    with socket.socket() as taken:
        try:
            taken.bind(("127.0.0.1", 8118))
            taken.listen()
        except OSError:
            pass  # busy already
        command = [sys.executable, "-m", "fgvctune", "train", *settings, "--workers", "2"]
        with running(command, tmp_path / "launch.log", env=ENV) as launcher:
            wait_for((folder / "last.ckpt").is_file, launcher)
            workers = psutil.Process(launcher.pid).children(recursive=True)
            launcher.send_signal(signal.SIGTERM)
            launcher.wait(timeout=120)
    output = (tmp_path / "launch.log").read_text()
    assert launcher.returncode == 130, output[-3000:]
    assert "interrupted" in output.strip().splitlines()[-1]
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    finished = int(checkpoint(folder / "last.ckpt")["fgvctune_epoch"])
    assert 1 <= finished < 3, "the run should be stopped part-way"

    master, on_second_host = second_host
    port = free_port()
    nodes = [
        prefix
        + msrun(
            *("python", "-m", "fgvctune", "train", "--resume", str(folder), "--distribute"),
            log_dir=tmp_path / f"node{rank}",
            local=1,
            port=port,
            node=rank,
            master=master,
        )
        for rank, prefix in ((0, []), (1, on_second_host))
    ]
    with (
        running(nodes[0], tmp_path / "node0.log", env=ENV) as first,
        running(nodes[1], tmp_path / "node1.log", env=ENV) as second,
    ):
        finish(first, second, seconds=300, logs=tmp_path)
    logs = "\n".join(p.read_text() for p in tmp_path.glob("node*/worker_*.log"))
    assert first.returncode == second.returncode == 0, logs[-3000:]
    assert f"resuming {folder} after epoch {finished}" in (tmp_path / "node0" / "worker_0.log").read_text()
    rows = read_results(folder)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert {r["lr"] for r in rows} == {0.04}  # 0.02 x 2 workers, in both launches

    report = fgvctune(
        "eval", str(folder), "--checkpoint", "last", "--json", "-o", str(tmp_path / "eval"), log=tmp_path / "eval.log"
    )
    assert report.returncode == 0, report.stdout[-2000:]
    scored = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert scored["count"] == 64 and scored["top1"] == pytest.approx(rows[-1]["val_top1"], abs=1e-4)


WORKER = """
import json, sys
from pathlib import Path
import mindspore as ms
from fgvctune.results import metrics
from fgvctune.config import resolve
from fgvctune.training.trainer import Trainer

config, folder, out = resolve(**json.loads(sys.argv[1])), Path(sys.argv[2]), Path(sys.argv[3])
trainer = Trainer(config, folder, resume=False, verbose=False, progress=False, log=print)
trainer.run()
logits, labels = metrics.predict(trainer.network, trainer.val_loader, config.batch_size)
total, correct = trainer.dist.sum([len(labels), metrics.correct_at(logits, labels, 1)])
rank = trainer.dist.rank
ms.save_checkpoint(trainer.network, str(out / f"rank{rank}.ckpt"))
ms.save_checkpoint(trainer.step, str(out / f"rank{rank}-step.ckpt"))
record = dict(size=trainer.dist.size, steps=trainer.steps_per_epoch, scored=len(labels), total=total, correct=correct)
(out / f"rank{rank}.json").write_text(json.dumps(record))
"""


@pytest.mark.parametrize("features", [{}, {"ema": True, "sampler": "balanced"}], ids=["plain", "ema-balanced"])
def test_uneven_shards_count_every_image_once(tmp_path, base, cache, features):
    """127 training and 61 test images over two workers with batch 16: each worker trains on 63 (one
    image left out), the test images are scored 31 + 30, and the summed count and correct answers
    equal a one-process evaluation of the same weights. Both workers end with identical weights (and,
    with --ema and --sampler balanced, identical averages and optimizer state)."""
    rows = []
    for split in ("trainval", "test"):
        lines = (SAMPLE / "data" / f"images_variant_{split}.txt").read_text().splitlines()
        keep = lines[:-1] if split == "trainval" else lines[:-3]
        rows += [(f"data/images/{line.split()[0]}.jpg", line.split(" ", 1)[1], split) for line in keep]
    table = tmp_path / "uneven.csv"
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows([("filepath", "label", "split"), *rows])
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    settings = {
        "adapter": "csv",
        "data_dir": str(SAMPLE),
        "adapter_options": {"file": str(table)},
        "ckpt_path": str(base),
        "pretrained": False,
        "epoch_size": 1,
        "image_resize": 32,
        "batch_size": 16,
        "cache_dir": cache,
        "distribute": True,
        **features,
    }
    folder = tmp_path / "run"
    command = msrun(
        str(script), json.dumps(settings), str(folder), str(tmp_path), log_dir=tmp_path / "logs", port=free_port()
    )
    with running(command, tmp_path / "msrun.log", env=ENV) as process:
        finish(process, seconds=300, logs=tmp_path)
    logs = "\n".join(p.read_text() for p in (tmp_path / "logs").glob("worker_*.log"))
    assert process.returncode == 0, logs[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["size"] for r in ranks] == [2, 2] and [r["steps"] for r in ranks] == [63 // 16] * 2
    assert [r["scored"] for r in ranks] == [31, 30] and {r["total"] for r in ranks} == {61}
    zero, one = checkpoint(tmp_path / "rank0.ckpt"), checkpoint(tmp_path / "rank1.ckpt")
    assert zero.keys() == one.keys()
    steps = [checkpoint(tmp_path / f"rank{r}-step.ckpt") for r in (0, 1)]
    assert any(k.startswith("ema.") for k in steps[0]) == bool(features)
    for name in steps[0]:
        if not name.endswith("dropout_calls"):
            np.testing.assert_array_equal(steps[0][name], steps[1][name], err_msg=name)
    for name in zero:
        if not name.endswith("dropout_calls"):
            np.testing.assert_array_equal(zero[name], one[name], err_msg=name)
    start = checkpoint(base)
    features = [k for k in start if k.startswith("features.") and k.endswith("weight")]
    assert all(zero[k].tobytes() != start[k].tobytes() for k in features)  # every worker learned

    report = fgvctune(
        *("eval", str(folder), "--ckpt-path", str(tmp_path / "rank0.ckpt"), "--json", "-o", str(tmp_path / "eval")),
        log=tmp_path / "eval.log",
    )
    assert report.returncode == 0, report.stdout[-2000:]
    scored = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert scored["count"] == 61 and round(scored["top1"] * 61) == ranks[0]["correct"]


def test_failed_worker_ends_with_a_clear_message(tmp_path, base, cache):
    command = train_command(tmp_path / "run", base, cache, 2) + ["--batch-size", "100", "--workers", "2"]
    with running(command, tmp_path / "run.log") as process:
        finish(process, seconds=300, logs=tmp_path)
    output = (tmp_path / "run.log").read_text()
    assert process.returncode == 1, output[-2000:]
    last = output.strip().splitlines()[-1]
    assert last.startswith("error: distributed training failed: worker 0: batch_size 100 is larger than the 64")
    assert "Traceback" not in output


# Put on PYTHONPATH as sitecustomize.py: every process msrun starts as a worker records what it writes (opens for
# writing, renames, removes, makes) under $WATCHED into $RECORDS/rank<RANK_ID>-<pid>.txt, through Python's audit hooks.
WRITE_RECORDER = """
import os
import sys

if os.environ.get("MS_ROLE") == "MS_WORKER":
    _watched = os.environ["WATCHED"] + os.sep
    _record = os.path.join(os.environ["RECORDS"], f"rank{os.environ.get('RANK_ID')}-{os.getpid()}.txt")
    _changing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _record_writes(event, args):
        if event == "open":
            path, mode, flags = args
            if not (isinstance(mode, str) and any(c in mode for c in "wax+")) and not (
                isinstance(flags, int) and flags & _changing
            ):
                return
        elif event == "os.rename":  # also os.replace: what it makes is the target
            path = args[1]
        elif event in ("os.remove", "os.rmdir", "os.mkdir"):
            path = args[0]
        else:
            return
        if isinstance(path, (str, bytes, os.PathLike)):
            path = os.path.abspath(os.fsdecode(path))
            if path.startswith(_watched):
                with open(_record, "a") as f:
                    f.write(f"{event} {os.path.relpath(path, _watched)}\\n")

    sys.addaudithook(_record_writes)
"""


def test_workers_say_how_they_share_the_data_and_rank_0_speaks_for_all(tmp_path, base, cache):
    """`--workers 2` says how many workers run and how the data was split; one final line, rank 0's; one
    report, written by rank 0 after the run. Only rank 0 writes into the run folder (every write each
    worker makes there is recorded), and the folder holds a run's files and msrun's logs, nothing per rank.
    Only rank 0 logs to TensorBoard and MLflow: one event file, one MLflow run. Without --scale-lr the rate is
    the one given."""
    folder = tmp_path / "run"
    hooks, records = tmp_path / "hooks", tmp_path / "records"
    hooks.mkdir()
    records.mkdir()
    (hooks / "sitecustomize.py").write_text(WRITE_RECORDER)
    path = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH")) if p)
    env = dict(ENV, PYTHONPATH=path, WATCHED=str(folder), RECORDS=str(records))
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = train_command(folder, base, cache, 1) + ["--workers", "2", "--scheduler", "constant"]
    command += ["--log-to", "tensorboard,mlflow", "--mlflow-uri", store]
    with running(command, tmp_path / "run.log", env=env) as process:
        finish(process, seconds=300, logs=tmp_path)
    output = (tmp_path / "run.log").read_text()
    assert process.returncode == 0, output[-3000:]
    assert f"launching 2 data-parallel workers with msrun on this machine; logs in {folder / 'msrun-logs'}" in output
    assert (
        "2 data-parallel workers: each trains on 64 of the 128 trainval images per epoch (4 steps of 16) "
        "and scores 32 of the 64 test images" in output
    )
    assert output.count("best val top-1") == 1 and output.strip().splitlines()[-1].startswith("best val top-1")
    assert "best val top-1" not in (folder / "msrun-logs" / "worker_1.log").read_text()
    assert "report: " in (folder / "msrun-logs" / "worker_0.log").read_text()
    assert "report: " not in (folder / "msrun-logs" / "worker_1.log").read_text()
    assert (folder / "report.html").is_file() and (folder / "eval-test" / "eval.json").is_file()

    written: dict[str, set[str]] = {}
    for record in records.iterdir():
        rank = record.name.split("-")[0]
        written.setdefault(rank, set()).update(line.split(" ", 1)[1] for line in record.read_text().splitlines())
    assert set(written) == {"rank0"}, written  # rank 1 wrote nothing there
    assert {"config.yaml", "results.txt", "best.ckpt", "last.ckpt", "report.html"} <= written["rank0"]
    assert sorted(p.name for p in folder.iterdir()) == [
        *("best.ckpt", "config.yaml", "counts.csv", "curves.png", "eval-test", "labels.csv", "last.ckpt"),
        *(
            "launch.yaml",
            "msrun-logs",
            "report.html",
            "results.txt",
            "strategy.csv",
            "tensorboard-logs",
            "tracking.json",
        ),
    ]
    assert len(list((folder / "tensorboard-logs").iterdir())) == 1
    from mlflow import MlflowClient

    runs = MlflowClient(store).search_runs([e.experiment_id for e in MlflowClient(store).search_experiments()])
    assert [r.info.run_id for r in runs] == [json.loads((folder / "tracking.json").read_text())["mlflow"]["run_id"]]
    assert sorted(p.name for p in (folder / "msrun-logs").iterdir()) == [
        "msrun.log",
        "scheduler.log",
        "worker_0.log",
        "worker_1.log",
    ]
    assert yaml.safe_load((folder / "config.yaml").read_text())["lr"] == 0.02  # train_command's
    assert [r["lr"] for r in read_results(folder)] == [0.02]  # the rate trained with: not 0.02 x 2 workers
