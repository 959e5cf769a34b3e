"""Commands on a trained run: `eval`, `predict`, `export`, `report`, `plot`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fgvctune.cli.common import ConfigOpt, VerboseOpt, adapter_options, handles_errors, verbosity

RunArg = Annotated[Optional[Path], typer.Argument(help="A run folder (the --output of `fgvctune train`).")]
CheckpointOpt = Annotated[str, typer.Option("--checkpoint", help="Which checkpoint of the run: best or last.")]
CkptPathOpt = Annotated[
    Optional[Path], typer.Option("--ckpt-path", help="A checkpoint outside a run folder (with --config).")
]
TtaOpt = Annotated[
    Optional[str],
    typer.Option(
        "--tta",
        help="Test-time augmentation: flip (the image and its mirror), crops (four corners and the centre), "
        "none (default: the run's tta setting).",
    ),
]


def _tta(value: Optional[str]) -> Optional[str]:
    return "" if value == "none" else value


@handles_errors
def eval_command(
    ctx: typer.Context,
    run: RunArg = None,
    split: Annotated[
        Optional[str], typer.Option("--split", "-s", help="Split to evaluate (default: the run's val split).")
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Folder for eval.json and the confusion matrix.")
    ] = None,
    checkpoint: CheckpointOpt = "best",
    ckpt_path: CkptPathOpt = None,
    config: ConfigOpt = None,
    adapter: Annotated[
        str, typer.Option("--adapter", "-a", help="Evaluate on another dataset (classes matched by name).")
    ] = "",
    data_dir: Annotated[str, typer.Option("--data-dir", "-d", help="That dataset's folder.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print eval.json instead of the summary.")] = False,
    tta: TtaOpt = None,
    verbose: VerboseOpt = False,
):
    """Evaluate a checkpoint: top-1, top-5, mean per-class accuracy, confusion matrix (CSV and PNG)."""
    from fgvctune.results.evaluation import evaluate

    verbosity(verbose)
    options = adapter_options(ctx, adapter) if ctx.args else None
    result = evaluate(
        run, split, output, checkpoint, ckpt_path, config, adapter, data_dir, options, verbose, tta=_tta(tta)
    )
    if as_json:
        typer.echo(result.to_json())
        return
    typer.echo(
        f"{result.checkpoint} on {result.split} ({result.count} images): top-1 {result.top1:.2%}  "
        f"top-{result.k} {result.top5:.2%}  mean per-class {result.mean_per_class:.2%}"
    )
    if result.tta:
        plain = result.plain
        typer.echo(
            f"  with {result.tta} test-time augmentation; without: top-1 {plain['top1']:.2%}  "
            f"top-{result.k} {plain['top5']:.2%}  mean per-class {plain['mean_per_class']:.2%}"
        )
    for true, predicted, count in result.confused[:5]:
        typer.echo(f"  confused: {true} -> {predicted} ({count}x)")
    for path in result.files:
        typer.echo(f"wrote {path}")


@handles_errors
def predict_command(
    run: RunArg = None,
    images: Annotated[
        Optional[list[Path]], typer.Argument(help="Image files or folders (default: predict a split).")
    ] = None,
    split: Annotated[
        Optional[str], typer.Option("--split", "-s", help="Split to predict (default: the run's val split).")
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Folder for pred.txt / predictions.csv and the grid.")
    ] = None,
    top: Annotated[int, typer.Option("--top", "-k", help="Classes to show per image.")] = 5,
    grid: Annotated[int, typer.Option("--grid", help="Images in predictions.png (0: none).")] = 16,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Draw over each image of the grid where the model found its prediction (Grad-CAM)."
        ),
    ] = False,
    checkpoint: CheckpointOpt = "best",
    ckpt_path: CkptPathOpt = None,
    config: ConfigOpt = None,
    tta: TtaOpt = None,
    verbose: VerboseOpt = False,
):
    """Predict a split (pred.txt with true and predicted labels) or any image files, with a picture grid (and, with
    --explain, a Grad-CAM heatmap over each of its images)."""
    from fgvctune.results.prediction import predict_images, predict_split

    verbosity(verbose)
    if images:
        result = predict_images(
            run, images, output, top, checkpoint, ckpt_path, config, grid, verbose, _tta(tta), explain
        )
        width = max(len(r["image"]) for r in result.rows)
        for r in result.rows:
            ranked = "  ".join(f"{name} {p:.1%}" for name, p in r["top"])
            typer.echo(f"{r['image'].ljust(width)}  {ranked}")
    else:
        result = predict_split(run, split, output, checkpoint, ckpt_path, config, grid, verbose, _tta(tta), explain)
        if all(r["real"] == "" for r in result.rows):  # an unlabeled split: nothing to be right about
            named = f"split {split!r}" if split else "the split"
            typer.echo(f"{len(result.rows)} images predicted ({named} has no labels)")
        else:
            right = sum(r["pred"] == r["real"] for r in result.rows)
            typer.echo(f"{len(result.rows)} images, {right} predicted right ({right / len(result.rows):.2%})")
    for path in result.files:
        typer.echo(f"wrote {path}")


@handles_errors
def export_command(
    run: Annotated[Path, typer.Argument(help="A run folder.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="MINDIR or ONNX.")] = "MINDIR",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Folder (default: RUN/export).")] = None,
    checkpoint: CheckpointOpt = "best",
    verbose: VerboseOpt = False,
):
    """Export the network for deployment, with labels.csv beside it, checked against the checkpoint."""
    from fgvctune.results.export import export

    verbosity(verbose)
    result = export(run, fmt, output, checkpoint, verbose=verbose)
    if result.checked:
        typer.echo(
            f"checked: same predictions as the checkpoint on {result.checked} images "
            f"(largest logit difference {result.max_difference:.2g})"
        )
    else:
        typer.echo("not checked: ONNX Runtime is not installed (pip install 'fgvctune[onnx]' to check ONNX exports)")
    typer.echo(f"wrote {result.path}\nwrote {result.labels}")


@handles_errors
def report_command(
    run: Annotated[Path, typer.Argument(help="A run folder (or a compare folder).")],
    verbose: VerboseOpt = False,
):
    """Write RUN/report.html: the whole run on one self-contained page (evaluates best.ckpt if not done yet)."""
    from fgvctune.results.comparison_report import rewrite_comparison_report
    from fgvctune.results.report import write_report
    from fgvctune.results.runfiles import COMPARE_TABLE, is_run

    verbosity(verbose)
    if (run / COMPARE_TABLE).is_file() and not is_run(run):
        typer.echo(f"wrote {rewrite_comparison_report(run)}")
    else:
        typer.echo(f"wrote {write_report(run, verbose=verbose)}")


@handles_errors
def plot_command(run: Annotated[Path, typer.Argument(help="A run folder.")]):
    """Draw a run's loss and accuracy per epoch as curves.png."""
    from fgvctune.results.plots import training_curves

    typer.echo(f"wrote {training_curves(run)}")
