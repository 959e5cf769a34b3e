"""The `fgvctune` command: thin wiring from options to library functions.

Nothing here imports MindSpore at module level, so `--help`, `adapters`, `info` and `convert`
answer at once; the training commands import it inside their bodies.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from fgvctune.errors import FgvctuneError

app = typer.Typer(
    name="fgvctune",
    help="Fine-tune pretrained MindCV image classifiers on your own datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Adapter options (e.g. `--level family`) are declared by each adapter, so these commands take them as extra args.
WITH_ADAPTER_OPTIONS = {"allow_extra_args": True, "ignore_unknown_options": True}

AdapterOpt = Annotated[str, typer.Option("--adapter", "-a", help="Dataset adapter; `fgvctune adapters` lists them.")]
DataDirOpt = Annotated[Path, typer.Option("--data-dir", "-d", help="The dataset's folder.")]
SplitOpt = Annotated[
    Optional[list[str]], typer.Option("--split", "-s", help="A split to use (repeatable); default: the adapter's.")
]
SkipBadOpt = Annotated[
    bool, typer.Option("--skip-bad", help="Leave bad samples out (listed in skipped.txt) instead of stopping.")
]


def fail(message: str, hint: str = "", code: int = 1):
    line = typer.style("error: ", fg="red", bold=True) + message + (f" ({hint})" if hint else "")
    typer.echo(line, err=True)
    raise typer.Exit(code)


def handles_errors(command):
    """Turn the library's errors into one line and an exit code; anything else is a bug."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except FgvctuneError as exc:
            fail(exc.message, exc.hint, exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", code=130)

    return wrapper


def adapter_options(ctx: typer.Context, adapter: str) -> dict:
    from fgvctune import registry

    return registry.parse_options(registry.get(adapter), ctx.args)


@app.command("adapters")
@handles_errors
def adapters_command():
    """List the dataset adapters, where each comes from, and its options."""
    from typing import get_type_hints

    from fgvctune import registry

    for info in registry.available():
        typer.echo(f"{typer.style(info.name, bold=True)}  ({info.source})  {info.summary}")
        hints = get_type_hints(info.cls)
        for f in info.options():
            flag = f"--{f.name.replace('_', '-')}"
            kind = registry.describe_type(hints.get(f.name, str))
            default = "" if f.default in ("", None) or hints.get(f.name) is bool else f" [default: {f.default}]"
            typer.echo(f"    {flag} {kind}: {f.metadata.get('help', '')}{default}")


@app.command("info", context_settings=WITH_ADAPTER_OPTIONS)
@handles_errors
def info_command(
    ctx: typer.Context,
    adapter: AdapterOpt,
    data_dir: DataDirOpt,
    split: SplitOpt = None,
    per_class: Annotated[bool, typer.Option("--per-class", help="Show the count of every class.")] = False,
    duplicates: Annotated[
        bool,
        typer.Option("--duplicates/--no-duplicates", help="Look for exact and near duplicates (a few ms per image)."),
    ] = True,
    all_pairs: Annotated[
        bool, typer.Option("--all-pairs", help="List every duplicate pair, not the first 20.")
    ] = False,
):
    """Show what a dataset holds: classes, counts per split and class, imbalance, problems. Adapter options go after."""
    from fgvctune.dataset import load_dataset

    dataset = load_dataset(adapter, data_dir, split, adapter_options(ctx, adapter), strict=False)
    counts = dataset.counts()
    typer.echo(f"{dataset.adapter} dataset at {dataset.root}: {len(dataset.labels)} classes")
    for name, counter in counts.items():
        role = " (train)" if name == dataset.train_split else " (eval)" if name == dataset.eval_split else ""
        sizes = [counter.get(c, 0) for c in dataset.labels.classes]
        low, high = min(sizes, default=0), max(sizes, default=0)
        ratio = f"{high / low:.1f}x" if low else "inf"
        typer.echo(
            f"  {name}{role}: {sum(sizes)} images, {sum(1 for n in sizes if n)} classes, "
            f"{low}-{high} per class (imbalance {ratio})"
        )
    if per_class:
        width = max((len(c) for c in dataset.labels.classes), default=5)
        typer.echo("  " + "class".ljust(width) + "".join(f"  {s:>8}" for s in counts))
        for name in dataset.labels.classes:
            typer.echo("  " + name.ljust(width) + "".join(f"  {counts[s].get(name, 0):>8}" for s in counts))
    if duplicates:
        from fgvctune.duplicates import find_duplicates

        found = find_duplicates(dataset)
        typer.echo(found.summary())
        for line in found.lines(dataset.root, shown=None if all_pairs else 20):
            typer.echo(f"  {line}")
    if dataset.problems:
        typer.echo(f"{len(dataset.problems)} problem(s):")
        for problem in dataset.problems[:50]:
            typer.echo(f"  {problem}")
        if len(dataset.problems) > 50:
            typer.echo(f"  ... and {len(dataset.problems) - 50} more")
        raise typer.Exit(1)
    typer.echo("no problems found")


@app.command("convert", context_settings=WITH_ADAPTER_OPTIONS)
@handles_errors
def convert_command(
    ctx: typer.Context,
    adapter: AdapterOpt,
    data_dir: DataDirOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the class tree.")],
    split: SplitOpt = None,
    mode: Annotated[
        str, typer.Option("--mode", help="hardlink (falls back to copy across file systems), symlink, copy or move.")
    ] = "hardlink",
    force: Annotated[bool, typer.Option("--force", help="Write into an output folder that holds other files.")] = False,
    skip_bad: SkipBadOpt = False,
):
    """Write a dataset as an ImageNet-style class tree OUT/<split>/<class>/<image> (offline reading)."""
    from fgvctune.tree import convert

    result = convert(
        adapter,
        data_dir,
        out,
        split,
        adapter_options(ctx, adapter),
        mode=mode,
        force=force,
        skip_bad=skip_bad,
        progress=True,
    )
    dataset = result.dataset
    for name, counter in dataset.counts().items():
        typer.echo(f"{name}: {sum(counter.values())} images in {len(counter)} class folders")
    typer.echo(f"{result.placed} placed ({mode}), {result.unchanged} already in place")
    if dataset.problems:
        typer.echo(f"{len(dataset.problems)} problem(s) skipped, listed in {result.out / 'skipped.txt'}")
    for path in result.files:
        typer.echo(f"wrote {path}")


def config_flags(command):
    """Add every TrainConfig key as a flag (`--image-resize`, `--pretrained/--no-pretrained`, ...).

    Flags default to None, meaning "not given", so they override --config only when typed; the
    command receives them as one `options` dict.
    """
    import inspect

    from fgvctune.config import FIELDS

    added, annotations = [], {}
    for name, f in FIELDS.items():
        if name == "adapter_options":
            continue  # adapter options are the adapter's own flags, given after the others
        flag = "--" + name.replace("_", "-")
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        kind = type(default)
        extra = {"--adapter": ["-a"], "--data-dir": ["-d"]}.get(flag, [])
        panel = f.metadata["panel"]
        if kind is bool:
            declared = [f"{flag}/--no-{flag[2:]}"]
        else:
            declared = [flag, *extra]
        if name == "lr_mult":
            kind = list[str]
        elif kind is list:
            kind = tuple[float, float]
        default_text = None if kind is bool or default in ("", [], {}) else str(default)
        option = typer.Option(
            *declared, help=f.metadata["help"], rich_help_panel=panel, show_default=default_text or False
        )
        annotations[name] = Annotated[Optional[kind], option]
        added.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotations[name])
        )

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        options = {name: kwargs.pop(name) for name in list(kwargs) if name in FIELDS}
        return command(*args, options=options, **kwargs)

    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "options"]
    wrapper.__signature__ = inspect.Signature(own + added)
    wrapper.__annotations__ = {k: v for k, v in command.__annotations__.items() if k != "options"} | annotations
    return wrapper


ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="YAML file of config keys; flags given override it.")
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show MindSpore's own messages and warnings.")]


def resolved_config(ctx: typer.Context, config: Optional[Path], options: dict):
    """Defaults < --config < flags given, with adapter options (extra args) parsed for the chosen adapter."""
    from fgvctune import registry
    from fgvctune.config import resolve

    resolved = resolve(config, **options)
    if ctx.args:
        if not resolved.adapter:
            fail(f"unexpected arguments {' '.join(ctx.args)}", "adapter options need --adapter", 2)
        extra = registry.parse_options(registry.get(resolved.adapter), ctx.args)
        resolved.adapter_options = {**resolved.adapter_options, **extra}
    return resolved


def verbosity(verbose: bool) -> None:
    logging.getLogger("fgvctune").setLevel(logging.INFO if verbose else logging.WARNING)


@app.command("train", context_settings=WITH_ADAPTER_OPTIONS)
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
    from fgvctune.trainer import train

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


RunArg = Annotated[Optional[Path], typer.Argument(help="A run folder (the --output of `fgvctune train`).")]
CheckpointOpt = Annotated[str, typer.Option("--checkpoint", help="Which checkpoint of the run: best or last.")]
CkptPathOpt = Annotated[
    Optional[Path], typer.Option("--ckpt-path", help="A checkpoint outside a run folder (with --config).")
]


@app.command("eval", context_settings=WITH_ADAPTER_OPTIONS)
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
    verbose: VerboseOpt = False,
):
    """Evaluate a checkpoint: top-1, top-5, mean per-class accuracy, confusion matrix (CSV and PNG)."""
    from fgvctune.evaluation import evaluate

    verbosity(verbose)
    options = adapter_options(ctx, adapter) if ctx.args else None
    result = evaluate(run, split, output, checkpoint, ckpt_path, config, adapter, data_dir, options, verbose)
    if as_json:
        typer.echo(result.to_json())
        return
    typer.echo(
        f"{result.checkpoint} on {result.split} ({result.count} images): top-1 {result.top1:.2%}  "
        f"top-{result.k} {result.top5:.2%}  mean per-class {result.mean_per_class:.2%}"
    )
    for true, predicted, count in result.confused[:5]:
        typer.echo(f"  confused: {true} -> {predicted} ({count}x)")
    for path in result.files:
        typer.echo(f"wrote {path}")


@app.command("predict")
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
    checkpoint: CheckpointOpt = "best",
    ckpt_path: CkptPathOpt = None,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
):
    """Predict a split (pred.txt with true and predicted labels) or any image files, with a picture grid."""
    from fgvctune.evaluation import predict_images, predict_split

    verbosity(verbose)
    if images:
        result = predict_images(run, images, output, top, checkpoint, ckpt_path, config, grid, verbose)
        width = max(len(r["image"]) for r in result.rows)
        for r in result.rows:
            ranked = "  ".join(f"{name} {p:.1%}" for name, p in r["top"])
            typer.echo(f"{r['image'].ljust(width)}  {ranked}")
    else:
        result = predict_split(run, split, output, checkpoint, ckpt_path, config, grid, verbose)
        right = sum(r["pred"] == r["real"] for r in result.rows)
        typer.echo(f"{len(result.rows)} images, {right} predicted right ({right / len(result.rows):.2%})")
    for path in result.files:
        typer.echo(f"wrote {path}")


@app.command("layers")
@handles_errors
def layers_command(
    model: Annotated[str, typer.Argument(help="A MindCV model name, or a run folder.")],
    freeze: Annotated[
        Optional[str], typer.Option("--freeze", help="Freeze the first N feature blocks, or all.")
    ] = None,
    linear_probe: Annotated[bool, typer.Option("--linear-probe", help="Train only the final classifier.")] = False,
    lr_mult: Annotated[Optional[list[str]], typer.Option("--lr-mult", help="PATTERN=FACTOR (repeatable).")] = None,
    layer_decay: Annotated[Optional[float], typer.Option("--layer-decay", help="Layer-wise rate decay.")] = None,
    verbose: VerboseOpt = False,
):
    """List a model's blocks in order: prefix, parameters, trainable or not, rate multiplier under a strategy."""
    from fgvctune.strategy import layers

    verbosity(verbose)
    plan = layers(model, freeze=freeze, linear_probe=linear_probe, lr_mult=lr_mult or None, layer_decay=layer_decay)
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


@app.command("compare", context_settings=WITH_ADAPTER_OPTIONS)
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

    verbosity(verbose)
    compare(resolved_config(ctx, config, options), output, strategy, verbose, seeds=seeds)
    typer.echo((output / "compare.md").read_text(encoding="utf-8"))
    typer.echo(f"wrote {output / 'compare.md'}, {output / 'compare.csv'} and {output / 'report.html'}")


@app.command("export")
@handles_errors
def export_command(
    run: Annotated[Path, typer.Argument(help="A run folder.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="MINDIR or ONNX.")] = "MINDIR",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Folder (default: RUN/export).")] = None,
    checkpoint: CheckpointOpt = "best",
    verbose: VerboseOpt = False,
):
    """Export the network for deployment, with labels.csv beside it, checked against the checkpoint."""
    from fgvctune.deploy import export

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


@app.command("report")
@handles_errors
def report_command(
    run: Annotated[Path, typer.Argument(help="A run folder (or a compare folder).")],
    verbose: VerboseOpt = False,
):
    """Write RUN/report.html: the whole run on one self-contained page (evaluates best.ckpt if not done yet)."""
    from fgvctune.report import rewrite_comparison_report, write_report

    verbosity(verbose)
    if (run / "compare.csv").is_file() and not (run / "config.yaml").is_file():
        typer.echo(f"wrote {rewrite_comparison_report(run)}")
    else:
        typer.echo(f"wrote {write_report(run, verbose=verbose)}")


@app.command("plot")
@handles_errors
def plot_command(run: Annotated[Path, typer.Argument(help="A run folder.")]):
    """Draw a run's loss and accuracy per epoch as curves.png."""
    from fgvctune.plots import training_curves

    typer.echo(f"wrote {training_curves(run)}")


@app.command("demo")
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


weights_app = typer.Typer(
    help="Bring PyTorch weights (timm, torchvision, Hugging Face files) into MindCV models.", no_args_is_help=True
)
app.add_typer(weights_app, name="weights")
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
    from fgvctune.weights import TOLERANCE, import_weights

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
    from fgvctune.weights import inspect_weights

    for line in inspect_weights(file).lines(every):
        typer.echo(line)


def launch_workers(ctx, config, output, resume, workers: int, options: dict) -> None:
    """`--workers N`: write the resolved config into the run folder, then run N workers on it under msrun."""
    from fgvctune.config import dump_yaml
    from fgvctune.distributed import launch
    from fgvctune.fileio import atomic_write_text
    from fgvctune.runfiles import CONFIG_FILE, RESULTS_FILE
    from fgvctune.trainer import default_output

    if resume:
        folder, args = Path(resume), ["--resume", str(resume)]
    else:
        resolved = resolved_config(ctx, config, options)
        folder = output or default_output(resolved)
        launch_config = folder / "launch.yaml"
        atomic_write_text(launch_config, dump_yaml(resolved))
        args = ["-c", str(launch_config), "-o", str(folder)]
        if (folder / CONFIG_FILE).exists() and not (folder / RESULTS_FILE).exists():
            (folder / CONFIG_FILE).unlink()
    typer.echo(f"launching {workers} data-parallel workers with msrun on this machine; logs in {folder / 'msrun-logs'}")
    launch(args, workers, folder / "msrun-logs", log=typer.echo)


def main() -> None:
    logging.basicConfig(format="fgvctune: %(message)s", level=logging.WARNING, stream=sys.stderr)
    app()
