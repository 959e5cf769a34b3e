"""Commands that run several trainings for you: `compare` (strategies side by side), `tune` (a search over config
keys with Optuna) and `demo` (the tutorial)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fgvctune.cli.common import ConfigOpt, VerboseOpt, config_flags, handles_errors, resolved_config, verbosity


@handles_errors
@config_flags
def compare_command(
    ctx: typer.Context,
    config: ConfigOpt = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for one run per strategy and the table.")
    ] = Path("runs/compare"),
    strategy: Annotated[
        Optional[list[str]],
        typer.Option("--strategy", help="Strategies to run (repeatable; default: the tutorial's five)."),
    ] = None,
    seeds: Annotated[
        int,
        typer.Option("--seeds", min=1, help="Runs per strategy (seeds seed..seed+K-1); the table gives mean ± std."),
    ] = 1,
    verbose: VerboseOpt = False,
    options: dict = None,
):
    """Train the tutorial's strategies on the same data and settings; write the table (Markdown, CSV) and a report."""
    from fgvctune.comparison import compare
    from fgvctune.results.runfiles import COMPARE_MARKDOWN, COMPARE_TABLE, REPORT_FILE

    verbosity(verbose)
    compare(resolved_config(ctx, config, options), output, strategy, verbose, seeds=seeds)
    typer.echo((output / COMPARE_MARKDOWN).read_text(encoding="utf-8"))
    typer.echo(f"wrote {output / COMPARE_MARKDOWN}, {output / COMPARE_TABLE} and {output / REPORT_FILE}")


@handles_errors
@config_flags
def tune_command(
    ctx: typer.Context,
    config: ConfigOpt = None,
    space: Annotated[
        Path,
        typer.Option("--space", help="YAML file of config keys to search: a range {low, high, log, step} or choices."),
    ] = ...,
    trials: Annotated[
        int, typer.Option("--trials", min=1, help="Finished trials (completed or pruned) the study ends with.")
    ] = 20,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for a run per trial, trials.csv, best.yaml and the plots.")
    ] = Path("runs/tune"),
    storage: Annotated[
        Optional[str],
        typer.Option(
            "--storage",
            help="Where the study is kept: a SQLAlchemy URL (sqlite, postgresql, mysql), redis://..., or a journal "
            "file's path; processes sharing it share the study (default: sqlite in OUTPUT/study.db).",
        ),
    ] = None,
    study_name: Annotated[
        Optional[str], typer.Option("--study-name", help="The study's name in the storage (default: OUTPUT's name).")
    ] = None,
    pruning_startup: Annotated[
        int,
        typer.Option("--pruning-startup", min=0, help="Completed trials before the median pruner stops any trial."),
    ] = 5,
    workers: Annotated[
        int, typer.Option("--workers", help="Train each trial with this many data-parallel workers (msrun, as train).")
    ] = 1,
    verbose: VerboseOpt = False,
    options: dict = None,
):
    """Search config keys with Optuna (TPE, median pruning): each trial a run; write trials.csv, best.yaml, plots."""
    from fgvctune.tuning import BEST_CONFIG, summary_text, tune

    verbosity(verbose)
    result = tune(
        resolved_config(ctx, config, options),
        space,
        output,
        trials,
        storage=storage,
        study_name=study_name,
        pruning_startup=pruning_startup,
        verbose=verbose,
        workers=workers,
    )
    typer.echo(summary_text(result))
    if result.best is not None:
        typer.echo(f"train the best again: fgvctune train -c {output / BEST_CONFIG}")


@handles_errors
def demo_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for everything the demo writes.")] = Path(
        "runs/demo"
    ),
    epoch_size: Annotated[int, typer.Option("--epoch-size", help="Fine-tuning epochs per strategy.")] = 5,
    base_epochs: Annotated[int, typer.Option("--base-epochs", help="Epochs of the starting checkpoint.")] = 10,
    strategy: Annotated[
        Optional[list[str]], typer.Option("--strategy", help="Strategies to compare (default: the tutorial's five).")
    ] = None,
    verbose: VerboseOpt = False,
):
    """The tutorial end to end on the bundled sample: convert, read online, fine-tune, compare, evaluate, predict."""
    from fgvctune.tutorial import demo

    verbosity(verbose)
    written = demo(output, epoch_size=epoch_size, base_epochs=base_epochs, strategies=strategy, verbose=verbose)
    typer.echo("== written:")
    for path in written:
        typer.echo(f"   {path}")
