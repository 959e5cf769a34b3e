"""Commands that run several trainings for you: `compare` (strategies side by side) and `demo` (the tutorial)."""

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
