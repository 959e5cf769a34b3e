"""`fgvctune compare`: the tutorial's five strategies as they train, the table's figures, seeds, and a rerun after
a kill. Tiny runs (12 training digits, 32 px) in PyNative mode, which is faster than compiling a graph for them."""

from __future__ import annotations

import csv
import re
import signal
import statistics
import sys

import pytest
from typer.testing import CliRunner

from conftest import checkpoint, page_text, run_cli, running, self_contained, wait_for
from fgvctune.cli import app
from fgvctune.comparison import TUTORIAL
from fgvctune.results.runfiles import compare_text, read_config, read_eval, read_results, read_rows
from fgvctune.training import strategy

pytestmark = pytest.mark.e2e

runner = CliRunner()


def compare_command(data, base, cache, output, epochs: int, lr: float = 0.05) -> list[str]:
    return [
        *("compare", "-a", "folder", "-d", str(data), "--ckpt-path", str(base), "--no-pretrained"),
        *("--cache-dir", cache, "--image-resize", "32", "--batch-size", "4", "--epoch-size", str(epochs)),
        *("--lr", str(lr), "--mode", "pynative", "-o", str(output)),
    ]


def expected_layers(name: str) -> dict[str, tuple[str, str]]:
    """(trainable, rate) per block of mobilenet_v3_small_100 under each of the tutorial's strategies, as
    `fgvctune layers` prints them: the linear probe trains classifier.3 alone, freeze-shallow freezes
    features.0-6, full-classifier-lr gives the head 1.2x and full-deep-lr features.13-15 1.05, 1.1, 1.15x."""
    deep = {13: "1.05", 14: "1.1", 15: "1.15"} if name == "full-deep-lr" else {}
    rows = {}
    for i in range(17):
        frozen = name == "linear-probe" or (name == "freeze-shallow" and i < 7)
        if i in (2, 16):  # an activation and the pooling: no parameters
            rows[f"features.{i}"] = ("-", "-")
        else:
            rows[f"features.{i}"] = ("no", "-") if frozen else ("yes", deep.get(i, "1"))
    head = "partly" if name == "linear-probe" else "yes"
    rows["classifier.0, classifier.3"] = (head, "1.2" if name == "full-classifier-lr" else "1")
    return rows


def printed_layers(run) -> dict[str, tuple[str, str]]:
    result = runner.invoke(app, ["layers", str(run)])
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.output.splitlines()[1:-1]:
        prefix, _, trainable, rate = line.split(maxsplit=1)[1].rsplit(maxsplit=3)
        rows[prefix] = (trainable, rate)
    return rows


def test_compare_trains_the_five_strategies_and_resumes_one_killed_mid_run(tmp_path, base, few_digits, cache):
    """kill -9 while `full` (third of five) is between its epochs; the same command again keeps the two
    finished strategies, resumes `full` after its saved epoch and trains the last two. Then each strategy's
    run: `layers` shows its trainable blocks and rates, exactly its trainable parameters moved from the
    starting checkpoint, and its figures in compare.csv and compare.md are those of its eval.json (and its
    trainable parameter count, those of its plan)."""
    out = tmp_path / "compare"
    command = compare_command(few_digits, base, cache, out, epochs=2)
    with running([sys.executable, "-m", "fgvctune", *command], tmp_path / "killed.log") as process:
        wait_for((out / "full" / "last.ckpt").is_file, process, seconds=1200)
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed = read_results(out / "full")
    assert [r["epoch"] for r in killed] == [1] and not (out / "full-classifier-lr").exists()
    finished = {name: (out / name / "results.txt").read_bytes() for name in ("linear-probe", "freeze-shallow")}

    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    for name in finished:
        assert f"== {name}: finished earlier, kept" in result.output
        assert (out / name / "results.txt").read_bytes() == finished[name]
    assert "== full: resuming" in result.output and f"resuming {out / 'full'} after epoch 1" in result.output
    resumed = read_results(out / "full")
    assert [r["epoch"] for r in resumed] == [1, 2] and resumed[0] == killed[0]
    for name in ("full-classifier-lr", "full-deep-lr"):
        assert f"== {name}: training with" in result.output

    with open(out / "compare.csv", newline="", encoding="utf-8") as f:
        table = {row["strategy"]: row for row in csv.DictReader(f)}
    markdown = (out / "compare.md").read_text(encoding="utf-8")
    assert list(table) == list(TUTORIAL)
    start, told_apart = checkpoint(base), False
    for name in TUTORIAL:
        run = out / name
        assert printed_layers(run) == expected_layers(name), name
        plan, trained = strategy.layers(str(run)), checkpoint(run / "last.ckpt")
        moved = {p.name for p in plan.params if trained[p.name].tobytes() != start[p.name].tobytes()}
        assert moved == set(plan.trainable), name
        assert int(table[name]["trainable_params"]) == sum(p.size for p in plan.params if p.trainable), name
        figures = read_eval(run, read_config(run).val_split)
        assert float(table[name]["top1"]) == pytest.approx(figures["top1"], abs=5e-5), name
        assert float(table[name]["mean_per_class"]) == pytest.approx(figures["mean_per_class"], abs=5e-5), name
        assert f"| {name} | {figures['top1']:.2%} | {figures['mean_per_class']:.2%} |" in markdown
        told_apart |= figures["top1"] != figures["mean_per_class"]
    assert told_apart  # somewhere the two figures differ, so a mix-up would show
    assert int(table["linear-probe"]["trainable_params"]) == 3 * 1024 + 3  # the new head alone


def test_compare_seeds_give_the_mean_and_sample_deviation_of_each_runs_figures(tmp_path, digits_run, few_digits, cache):
    """--seeds 2: the strategy's row is the mean and the sample standard deviation (n - 1) of the top-1 and
    mean per-class accuracy in its two runs' eval.json, in the table and on the comparison's page (which
    `fgvctune report` remakes from the files). A linear probe at a rate too small to learn much, from
    a head each seed draws anew (the digits run's has 10 classes): two different results."""
    out = tmp_path / "compare"
    start = digits_run / "best.ckpt"
    command = [
        *compare_command(few_digits, start, cache, out, epochs=1, lr=1e-4),
        "--strategy",
        "linear-probe",
        "--seeds",
        "2",
    ]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    runs = [out / "linear-probe" / f"seed-{seed}" for seed in (42, 43)]
    figures = [read_eval(run, read_config(run).val_split) for run in runs]
    with open(out / "compare.csv", newline="", encoding="utf-8") as f:
        (row,) = csv.DictReader(f)
    shown = []
    for key in ("top1", "mean_per_class"):
        values = [f[key] for f in figures]
        assert values[0] != values[1], key  # two seeds, two results: the spread is a real one
        mean, deviation = statistics.mean(values), statistics.stdev(values)
        assert float(row[key]) == pytest.approx(mean, abs=5e-5)
        assert float(row[f"{key}_std"]) == pytest.approx(deviation, abs=5e-5)
        shown.append(f"{mean:.2%} ± {100 * deviation:.2f}")
    table = (out / "compare.md").read_text(encoding="utf-8")
    assert "mean ± standard deviation over 2 seeds (42..43)" in table
    assert f"| linear-probe | {shown[0]} | {shown[1]} |" in table
    assert [read_config(run).seed for run in runs] == [42, 43]

    # The comparison's page: self-contained, the spread and each seed's run; remade from the files alone.
    page = out / "report.html"
    self_contained(page.read_text(encoding="utf-8"))
    text = page_text(page).replace("&plusmn;", "±")
    assert "mean ± standard deviation over 2 runs" in text and "linear-probe" in text and "seed-43" in text
    assert all((run / "report.html").is_file() for run in runs)
    rows = read_rows(out)
    rows[0]["top1"] = 0.0123  # the mean top-1, changed in compare.csv
    (out / "compare.csv").write_text(compare_text(rows), encoding="utf-8")
    remade = run_cli("report", str(out))
    assert remade.returncode == 0 and remade.stdout.strip().endswith("no mindspore"), remade.stderr
    assert re.search(r"linear-probe 1\.2% ± \d", page_text(page).replace("&plusmn;", "±"))
