"""Training commands: `train` (with the msrun launch behind `--workers`), `lr-find` and `layers`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fgvctune.cli.common import ConfigOpt, VerboseOpt, config_flags, handles_errors, resolved_config, verbosity


@handles_errors
@config_flags
def train_command(
    ctx: typer.Context,
    config: ConfigOpt = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Run folder (default: runs/<model>-<adapter>-<time>).")
    ] = None,
    resume: Annotated[
        Optional[Path], typer.Option("--resume", help="Continue the run in this folder after its last finished epoch.")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Launch this many data-parallel workers with msrun (this machine).")
    ] = 1,
    verbose: VerboseOpt = False,
    options: dict = None,
):
    """Fine-tune a pretrained MindCV model on a dataset. Adapter options (e.g. --level family) go after the others."""
    from fgvctune.training.trainer import train

    verbosity(verbose)
    if workers > 1:
        return launch_workers(ctx, config, output, resume, workers, options)
    if resume:
        run = train(resume=resume, verbose=verbose, distribute=options.get("distribute"))
    else:
        run = train(resolved_config(ctx, config, options), output=output, verbose=verbose)
    best = run.best
    if best and run.writer:  # one final line for a data-parallel run: rank 0's
        typer.echo(f"best val top-1 {best['val_top1']:.1%} at epoch {best['epoch']}; run folder {run.folder}")


def launch_workers(ctx, config, output, resume, workers: int, options: dict) -> None:
    """`--workers N`: the resolved config written into the run folder, then N workers on it under msrun."""
    from fgvctune.training.distributed import launch_run
    from fgvctune.training.trainer import default_output

    if resume:
        launch_run(Path(resume), workers, log=typer.echo)
    else:
        resolved = resolved_config(ctx, config, options)
        launch_run(output or default_output(resolved), workers, resolved, log=typer.echo)


@handles_errors
@config_flags
def lr_find_command(
    ctx: typer.Context,
    config: ConfigOpt = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Folder for lr-find.csv and lr-find.png.")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", help="Steps of the sweep (fewer if the loss diverges).")] = 100,
    start_lr: Annotated[float, typer.Option("--start-lr", help="The sweep's first learning rate.")] = 1e-7,
    end_lr: Annotated[float, typer.Option("--end-lr", help="The sweep's last learning rate.")] = 10.0,
    verbose: VerboseOpt = False,
    options: dict = None,
):
    """Sweep the learning rate over ~100 steps of training (as fastai's lr_find) and suggest one. Writes only
    lr-find.csv and lr-find.png: no checkpoint is saved or changed."""
    from fgvctune.training.lrfind import lr_find
    from fgvctune.training.trainer import default_output

    verbosity(verbose)
    resolved = resolved_config(ctx, config, options)
    run_folder = default_output(resolved)
    folder = output or run_folder.with_name("lr-find-" + run_folder.name)
    sweep = lr_find(resolved, folder, steps, start_lr, end_lr, verbose=verbose, log=typer.echo)
    typer.echo(
        f"{len(sweep.rates)} steps from {sweep.rates[0]:.2g} to {sweep.rates[-1]:.2g}; lowest smoothed loss at "
        f"{sweep.lowest:.2g}; suggested lr {sweep.suggestion:.2g} (steepest descent)"
    )
    for path in sweep.files:
        typer.echo(f"wrote {path}")


@handles_errors
def layers_command(
    model: Annotated[str, typer.Argument(help="A MindCV model name, or a run folder.")],
    freeze: Annotated[
        Optional[str], typer.Option("--freeze", help="Freeze the first N feature blocks, or all.")
    ] = None,
    linear_probe: Annotated[bool, typer.Option("--linear-probe", help="Train only the final classifier.")] = False,
    lr_mult: Annotated[Optional[list[str]], typer.Option("--lr-mult", help="PATTERN=FACTOR (repeatable).")] = None,
    layer_decay: Annotated[Optional[float], typer.Option("--layer-decay", help="Layer-wise rate decay.")] = None,
    head_lr_mult: Annotated[
        Optional[float], typer.Option("--head-lr-mult", help="Rate multiplier of the head.")
    ] = None,
    verbose: VerboseOpt = False,
):
    """List a model's blocks in order: prefix, parameters, trainable or not, rate multiplier under a strategy."""
    from fgvctune.training.strategy import layers

    verbosity(verbose)
    plan = layers(
        model,
        freeze=freeze,
        linear_probe=linear_probe,
        lr_mult=lr_mult or None,
        layer_decay=layer_decay,
        head_lr_mult=head_lr_mult,
    )
    rows = plan.rows()
    width = max(len(r["prefix"]) for r in rows)
    typer.echo(f"{'#':>3}  {'block prefix'.ljust(width)}  {'params':>10}  trainable  lr x")
    for i, r in enumerate(rows):
        index = str(i) if r["block"] != "head" else "-"
        typer.echo(f"{index:>3}  {r['prefix'].ljust(width)}  {r['params']:>10,}  {r['trainable']:<9}  {r['lr_mult']}")
    trainable = sum(p.size for p in plan.params if p.trainable)
    total = sum(p.size for p in plan.params)
    typer.echo(
        f"{len(plan.blocks)} feature blocks; classifier {plan.classifier}; {trainable:,} of {total:,} parameters train"
    )
