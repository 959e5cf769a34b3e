"""Data-parallel training under msrun with two CPU workers on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import checkpoint, finetune_settings, train_command
from fgvctune.cli import app
from fgvctune.runfiles import read_results

MSRUN = Path(sys.executable).with_name("msrun")
pytestmark = pytest.mark.skipif(not MSRUN.is_file(), reason="msrun is not installed beside this Python")

WORKER = """
import json, sys
import mindspore as ms
from fgvctune.config import resolve
from fgvctune.trainer import Trainer

config = resolve(**json.loads(sys.argv[1]))
folder = __import__("pathlib").Path(sys.argv[2])
trainer = Trainer(config, folder, resume=False, verbose=False, progress=False, log=print)
trainer.run()
ms.save_checkpoint(trainer.network, f"{sys.argv[3]}/rank{trainer.dist.rank}.ckpt")
json.dump({"rank": trainer.dist.rank, "size": trainer.dist.size, "steps": trainer.steps_per_epoch},
          open(f"{sys.argv[3]}/rank{trainer.dist.rank}.json", "w"))
"""


def test_two_workers_end_identical_and_evaluate_the_whole_split(tmp_path, base, cache):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    settings = finetune_settings(base, cache, epoch_size=2, distribute=True)
    env = dict(os.environ, PATH=f"{MSRUN.parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        [
            str(MSRUN),
            "--worker_num=2",
            "--local_worker_num=2",
            "--join=True",
            f"--log_dir={tmp_path / 'logs'}",
            str(script),
            json.dumps(settings),
            str(tmp_path / "run"),
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    logs = "\n".join(p.read_text() for p in (tmp_path / "logs").glob("worker_*.log"))
    assert result.returncode == 0, logs[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["size"] for r in ranks] == [2, 2] and ranks[0]["steps"] == ranks[1]["steps"] == 128 // 2 // 16
    zero, one = checkpoint(tmp_path / "rank0.ckpt"), checkpoint(tmp_path / "rank1.ckpt")
    assert zero.keys() == one.keys()
    for name in zero:
        np.testing.assert_array_equal(zero[name], one[name], err_msg=name)
    assert not np.array_equal(zero["classifier.3.weight"], checkpoint(base)["classifier.3.weight"][:1])
    folder = tmp_path / "run"
    assert {"best.ckpt", "last.ckpt", "results.txt", "config.yaml", "labels.csv", "curves.png"} <= {
        p.name for p in folder.iterdir()
    }
    rows = read_results(folder)
    assert [r["epoch"] for r in rows] == [1, 2]
    # the distributed val top-1 counts every test image once: it equals a one-process evaluation of the same weights
    last = CliRunner().invoke(app, ["eval", str(folder), "--checkpoint", "last", "--json", "-o", str(tmp_path / "e")])
    assert last.exit_code == 0, last.output
    assert json.loads(last.output)["top1"] == pytest.approx(rows[-1]["val_top1"], abs=1e-4)


def test_failed_worker_ends_with_a_clear_message(tmp_path, base, cache):
    command = train_command(tmp_path / "run", base, cache, 2) + ["--batch-size", "100", "--workers", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: distributed training failed: worker 0: batch_size 100 is larger than the 64")
    assert "Traceback" not in result.stderr
