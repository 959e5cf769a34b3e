"""The `fgvctune` command: thin wiring from options to library functions.

The commands live by job, like the library's rooms:
    data.py         adapters, info, convert, doctor
    training.py     train, lr-find, layers (and the msrun launch behind `train --workers`)
    results.py      eval, predict, export, report, plot
    experiments.py  compare, tune, demo
    weights.py      weights import, weights inspect
    common.py       what several commands share: errors to one line, option types, flags to a config
This file holds the app and the registration, in `--help` order.

Nothing here imports MindSpore at module level, so `--help`, `adapters`, `info` and `convert`
answer at once; the training commands import it inside their bodies.
"""

from __future__ import annotations

import logging
import sys

import typer

from fgvctune.cli import data, experiments, results, training, weights
from fgvctune.cli.common import WITH_ADAPTER_OPTIONS

app = typer.Typer(
    name="fgvctune",
    help="Fine-tune pretrained MindCV image classifiers on your own datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# Typer lists commands in the order they are registered: this is the order of `fgvctune --help`.
app.command("adapters")(data.adapters_command)
app.command("info", context_settings=WITH_ADAPTER_OPTIONS)(data.info_command)
app.command("convert", context_settings=WITH_ADAPTER_OPTIONS)(data.convert_command)
app.command("doctor", context_settings=WITH_ADAPTER_OPTIONS)(data.doctor_command)
app.command("train", context_settings=WITH_ADAPTER_OPTIONS)(training.train_command)
app.command("eval", context_settings=WITH_ADAPTER_OPTIONS)(results.eval_command)
app.command("predict")(results.predict_command)
app.command("layers")(training.layers_command)
app.command("lr-find", context_settings=WITH_ADAPTER_OPTIONS)(training.lr_find_command)
app.command("compare", context_settings=WITH_ADAPTER_OPTIONS)(experiments.compare_command)
app.command("tune", context_settings=WITH_ADAPTER_OPTIONS)(experiments.tune_command)
app.command("export")(results.export_command)
app.command("report")(results.report_command)
app.command("plot")(results.plot_command)
app.command("demo")(experiments.demo_command)
app.add_typer(weights.weights_app, name="weights")


def main() -> None:
    logging.basicConfig(format="fgvctune: %(message)s", level=logging.WARNING, stream=sys.stderr)
    app()
