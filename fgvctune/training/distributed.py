"""Data-parallel training under msrun: who this process is, and how its numbers join the others'."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Workers:
    rank: int = 0
    size: int = 1

    @property
    def is_writer(self) -> bool:
        """Only rank 0 writes checkpoints, results and pictures."""
        return self.rank == 0

    def reducer(self, parameters):
        """Averages gradients across workers; the identity for one process."""
        from mindspore import nn

        if self.size == 1:
            return nn.Identity()
        return nn.DistributedGradReducer(parameters, mean=True, degree=self.size)

    def sum(self, values: list[float]) -> list[float]:
        """Add exact counts across workers (never an average of per-worker ratios)."""
        if self.size == 1:
            return list(values)
        import mindspore as ms
        from mindspore import ops

        total = ops.AllReduce()(ms.Tensor(values, ms.float32))  # counts stay exact below 2**24
        return [float(v) for v in total.asnumpy()]

    def average_statistics(self, network, learnable: set[str]) -> None:
        """Average the BatchNorm moving statistics across workers, so every worker (and every checkpoint)
        holds the same full model; each worker's own statistics saw only its shard."""
        import mindspore as ms

        floats = (ms.float32, ms.float16, ms.bfloat16)
        self.average([p for p in network.get_parameters() if p.name not in learnable and p.dtype in floats])

    def average(self, params) -> None:
        """Set each parameter to its mean across workers."""
        if self.size == 1:
            return
        from mindspore import ops

        reduce = ops.AllReduce()
        for param in params:
            param.set_data(reduce(param) / self.size)


def setup(distribute: bool) -> Workers:
    if not distribute:
        return Workers()
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init

    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    return Workers(rank=get_rank(), size=get_group_size())


def launch_run(folder: Path, workers: int, config=None, log=print) -> None:
    """`train --workers`: the run in `folder` trained by `workers` msrun workers on this machine, from `config`
    (written to the folder's launch.yaml, and a config.yaml of an earlier launch that finished no epoch removed) or,
    without one, resumed. The folder is held for the workers, which share it and take no lock of their own."""
    from fgvctune.config import dump_yaml
    from fgvctune.fileio import atomic_write_text
    from fgvctune.results.runfiles import CONFIG_FILE, LAUNCH_CONFIG, MSRUN_LOGS, RESULTS_FILE, working_in

    args = ["--resume", str(folder)] if config is None else ["-c", str(folder / LAUNCH_CONFIG), "-o", str(folder)]
    with working_in(folder):
        if config is not None:
            atomic_write_text(folder / LAUNCH_CONFIG, dump_yaml(config))
            if (folder / CONFIG_FILE).exists() and not (folder / RESULTS_FILE).exists():
                (folder / CONFIG_FILE).unlink()
        log(f"launching {workers} data-parallel workers with msrun on this machine; logs in {folder / MSRUN_LOGS}")
        launch(args, workers, folder / MSRUN_LOGS, log=log)


def launch(train_args: list[str], workers: int, log_dir: Path, log=print) -> None:
    """Run `fgvctune train <train_args> --distribute` under msrun with `workers` local processes.

    Rank 0's log is followed on the terminal; a failed worker ends the run (msrun stops the others)
    with its last error line instead of a hang.
    """
    import subprocess
    import threading
    import time

    from fgvctune.errors import FgvctuneError

    bin_dir = Path(sys.executable).parent
    msrun = bin_dir / "msrun"
    if not msrun.is_file():
        raise FgvctuneError(f"msrun not found beside {sys.executable}", hint="install MindSpore in this environment")
    log_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(msrun),
        f"--worker_num={workers}",
        f"--local_worker_num={workers}",
        f"--master_port={_free_port()}",  # msrun's fixed default (8118) clashes with any other run
        "--join=True",
        f"--log_dir={log_dir}",
        "python",
        "-m",
        "fgvctune",
        "train",
        *train_args,
        "--distribute",
    ]
    # msrun starts `python` from PATH: make it this environment's.
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    with open(log_dir / "msrun.log", "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()
        follower = threading.Thread(target=_follow, args=(log_dir / "worker_0.log", done, log), daemon=True)
        follower.start()
        try:
            code = _wait(process)
        finally:
            time.sleep(0.3)
            done.set()
            follower.join()
    if code != 0:
        raise FgvctuneError(
            f"distributed training failed: {_first_failure(log_dir, workers)}", hint=f"worker logs are in {log_dir}"
        )


def _wait(process) -> int:
    """msrun's exit code. Ctrl-C or SIGTERM here reach msrun as Ctrl-C, which stops its workers (they
    run in sessions of their own, out of the terminal's reach): nothing keeps training unseen."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        process.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _follow(path: Path, done, log) -> None:
    import time

    position = 0
    while True:
        finished = done.is_set()
        if path.is_file():
            with open(path, encoding="utf-8", errors="replace") as f:
                f.seek(position)
                chunk = f.read()
                position = f.tell()
            for line in chunk.splitlines():
                if line and not line.startswith(("[WARNING]", "[INFO]", "[ERROR] ME", "error: ")):
                    log(line)
        if finished:
            return
        time.sleep(0.2)


def _first_failure(log_dir: Path, workers: int) -> str:
    for rank in range(workers):
        path = log_dir / f"worker_{rank}.log"
        if not path.is_file():
            continue
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ") or "Error" in line.split(":")[0]]
        if errors:
            return f"worker {rank}: {errors[-1].removeprefix('error: ')}"
    return "a worker exited with an error"


def workers_line(workers: int, train: int, evaluated: int, c, d) -> str:
    """How data-parallel workers share the data, in the words of pipeline.Shard."""
    per = train // workers
    left = train - per * workers
    shares = sorted({len(range(rank, evaluated, workers)) for rank in range(workers)}, reverse=True)
    return (
        f"{workers} data-parallel workers: each trains on {per} of the {train} {d.train_split} images per epoch "
        f"({per // c.batch_size} steps of {c.batch_size}"
        + (f"; {left} image(s) left out per epoch so that all run the same steps" if left else "")
        + f") and scores {' or '.join(map(str, shares))} of the {evaluated} {d.eval_split} images; "
        f"gradients and BatchNorm statistics are averaged, rank 0 writes the files"
    )
