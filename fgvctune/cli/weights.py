"""The `weights` command group: `weights import` and `weights inspect` (PyTorch weight files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fgvctune.cli.common import VerboseOpt, handles_errors, verbosity

weights_app = typer.Typer(
    help="Bring PyTorch weights (timm, torchvision, Hugging Face files) into MindCV models.", no_args_is_help=True
)
WeightFileArg = Annotated[Path, typer.Argument(help="A .safetensors, .pth, .pt or .bin file (a state dict).")]


@weights_app.command("import")
@handles_errors
def weights_import_command(
    file: WeightFileArg,
    model: Annotated[
        str, typer.Option("--model", "-m", help="The MindCV model (default: the one the file matches).")
    ] = "",
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="The checkpoint to write (default: FILE-<model>.ckpt).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Compare with the source model when torch is installed.")
    ] = True,
    verbose: VerboseOpt = False,
):
    """Convert PyTorch weights into a MindCV checkpoint for --ckpt-path, checked against the source model."""
    from fgvctune.weights.convert import TOLERANCE, import_weights

    verbosity(verbose)
    result = import_weights(file, model, output, check, verbose)
    m = result.mapping
    typer.echo(f"{file}: {result.format} file, {m.describe()}")
    typer.echo(f"converted {result.tensors} tensors" + (f"; network settings: {m.settings()}" if m.network else ""))
    if m.unused:
        typer.echo(f"unused: {', '.join(m.unused)}")
    if result.missing:
        typer.echo(f"not in the file: {', '.join(result.missing)} (a new classifier is made when fine-tuning)")
    if result.check:
        c = result.check
        typer.echo(
            f"checked against {c.library}'s {m.source}: largest logit difference {c.max_difference:.3g} "
            f"({c.max_difference / max(c.scale, 1e-30):.2g} of the logits' scale; tolerance {TOLERANCE:g}), "
            "same predictions"
        )
    else:
        typer.echo(f"check skipped ({'--no-check' if not check else result.check_note})")
    typer.echo(f"wrote {result.output}")


@weights_app.command("inspect")
@handles_errors
def weights_inspect_command(
    file: WeightFileArg,
    every: Annotated[bool, typer.Option("--all", help="List every tensor with its shape.")] = False,
):
    """Show what a weight file holds: format, naming family, tensors and shapes, and the MindCV model it matches."""
    from fgvctune.weights.convert import inspect_weights

    for line in inspect_weights(file).lines(every):
        typer.echo(line)
