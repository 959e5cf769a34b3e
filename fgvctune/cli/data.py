"""Dataset commands: `adapters`, `info`, `convert`, `doctor`. The first three never import MindSpore; doctor, which
reads the data through a model, imports it inside its body."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fgvctune.cli.common import VerboseOpt, adapter_options, fail, handles_errors, verbosity

AdapterOpt = Annotated[str, typer.Option("--adapter", "-a", help="Dataset adapter; `fgvctune adapters` lists them.")]
DataDirOpt = Annotated[Path, typer.Option("--data-dir", "-d", help="The dataset's folder.")]
SplitOpt = Annotated[
    Optional[list[str]], typer.Option("--split", "-s", help="A split to use (repeatable); default: the adapter's.")
]
SkipBadOpt = Annotated[
    bool, typer.Option("--skip-bad", help="Leave bad samples out (listed in skipped.txt) instead of stopping.")
]
ExcludeOpt = Annotated[
    Optional[Path],
    typer.Option("--exclude", help="A file of sample ids to leave out (doctor.csv, or a CSV/text of ids)."),
]
RelabelOpt = Annotated[
    Optional[Path],
    typer.Option("--relabel", help="A CSV of sample ids and new labels (id,label; or doctor.csv's suggestions)."),
]


@handles_errors
def adapters_command():
    """List the dataset adapters, where each comes from, and its options."""
    from typing import get_type_hints

    from fgvctune.data import registry

    for info in registry.available():
        typer.echo(f"{typer.style(info.name, bold=True)}  ({info.source})  {info.summary}")
        hints = get_type_hints(info.cls)
        for f in info.options():
            flag = f"--{f.name.replace('_', '-')}"
            kind = registry.describe_type(hints.get(f.name, str))
            # None: the adapter picks (its help says how); a flag's default goes without saying.
            unsaid = f.default in ("", None) or registry.given(hints.get(f.name)) is bool
            default = "" if unsaid else f" [default: {f.default}]"
            typer.echo(f"    {flag} {kind}: {f.metadata.get('help', '')}{default}")


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
    exclude: ExcludeOpt = None,
    relabel: RelabelOpt = None,
):
    """Show what a dataset holds: classes, counts per split and class, imbalance, problems. Adapter options go after."""
    from fgvctune.data.dataset import load_dataset

    options = adapter_options(ctx, adapter)
    dataset = load_dataset(
        adapter, data_dir, split, options, strict=False, unlabeled=True, exclude=exclude or "", relabel=relabel or ""
    )
    counts = dataset.counts()
    typer.echo(f"{dataset.adapter} dataset at {dataset.root}: {len(dataset.labels)} classes")
    for name, counter in counts.items():
        role = " (train)" if name == dataset.train_split else " (eval)" if name == dataset.eval_split else ""
        if name in dataset.unlabeled or not dataset.splits[name]:  # (a command that uses an empty split stops)
            what = ", unlabeled" if name in dataset.unlabeled else ""
            typer.echo(f"  {name}{role}: {len(dataset.splits[name])} images{what}")
            continue
        sizes = [counter.get(c, 0) for c in dataset.labels.classes]
        low, high = min(sizes, default=0), max(sizes, default=0)
        ratio = f"{high / low:.1f}x" if low else "inf"
        typer.echo(
            f"  {name}{role}: {sum(sizes)} images, {sum(1 for n in sizes if n)} classes, "
            f"{low}-{high} per class (imbalance {ratio})"
        )
    shards = dataset.containers()
    if shards:
        shown = ", ".join(str(p.relative_to(dataset.root) if p.is_relative_to(dataset.root) else p) for p in shards[:5])
        typer.echo(
            f"  inside {len(shards)} file(s): {shown}" + (f" and {len(shards) - 5} more" if len(shards) > 5 else "")
        )
    if per_class:
        width = max((len(c) for c in dataset.labels.classes), default=5)
        typer.echo("  " + "class".ljust(width) + "".join(f"  {s:>8}" for s in counts))
        for name in dataset.labels.classes:
            typer.echo("  " + name.ljust(width) + "".join(f"  {counts[s].get(name, 0):>8}" for s in counts))
    if duplicates:
        from fgvctune.data.duplicates import find_duplicates

        found = find_duplicates(dataset)
        typer.echo(found.summary())
        for line in found.lines(dataset.root, shown=None if all_pairs else 20):
            typer.echo(f"  {line}")
    for note in dataset.notes + _edited(dataset):
        typer.echo(f"note: {note}")
    if dataset.problems:
        typer.echo(f"{len(dataset.problems)} problem(s):")
        for problem in dataset.problems[:50]:
            typer.echo(f"  {problem}")
        if len(dataset.problems) > 50:
            typer.echo(f"  ... and {len(dataset.problems) - 50} more")
        raise typer.Exit(1)
    typer.echo("no problems found")


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
    exclude: ExcludeOpt = None,
    relabel: RelabelOpt = None,
):
    """Write a dataset as an ImageNet-style class tree OUT/<split>/<class>/<image> (offline reading)."""
    from fgvctune.data.tree import SKIPPED_FILE, convert

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
        exclude=exclude or "",
        relabel=relabel or "",
    )
    dataset = result.dataset
    for name, counter in dataset.counts().items():
        typer.echo(f"{name}: {sum(counter.values())} images in {len(counter)} class folders")
    typer.echo(f"{result.placed} placed ({mode}), {result.unchanged} already in place")
    for note in dataset.notes + _edited(dataset):
        typer.echo(f"note: {note}")
    if dataset.problems:
        typer.echo(f"{len(dataset.problems)} problem(s) skipped, listed in {result.out / SKIPPED_FILE}")
    for path in result.files:
        typer.echo(f"wrote {path}")


@handles_errors
def doctor_command(
    ctx: typer.Context,
    run: Annotated[
        Optional[Path], typer.Argument(help="A run folder whose model (best.ckpt) reads the images; default: its data.")
    ] = None,
    adapter: Annotated[str, typer.Option("--adapter", "-a", help="Dataset adapter (default: the run's).")] = "",
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", "-d", help="The dataset's folder.")] = None,
    split: SplitOpt = None,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Folder for doctor.csv and doctor.html (default: RUN/doctor)."),
    ] = None,
    ckpt_path: Annotated[
        Optional[Path], typer.Option("--ckpt-path", help="A checkpoint to read the images with instead of a run's.")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", help="The MindCV model of --ckpt-path (or of its ImageNet weights).")
    ] = "",
    image_resize: Annotated[int, typer.Option("--image-resize", help="Image size (default: the run's, else 224).")] = 0,
    folds: Annotated[int, typer.Option("--folds", help="Folds of the out-of-sample probabilities.")] = 5,
    retrain: Annotated[
        bool,
        typer.Option("--retrain", help="Train a fgvctune run per fold instead of a linear classifier on features."),
    ] = False,
    epochs: Annotated[
        int, typer.Option("--epochs", help="With --retrain: epochs per fold run (default: the run's).")
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the folds.")] = 0,
    issues: Annotated[
        str,
        typer.Option(
            "--issues", help="Kinds to look for and list, comma-separated (doctor.csv is what --exclude leaves out)."
        ),
    ] = "label,outlier,near_duplicate",
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Leave bad samples out instead of stopping.")] = False,
    exclude: ExcludeOpt = None,
    relabel: RelabelOpt = None,
    verbose: VerboseOpt = False,
):
    """Find wrong labels, outliers and near duplicates with cleanlab: doctor.csv, doctor.html. Adapter options last."""
    from fgvctune.results import runfiles

    verbosity(verbose)
    if run:
        config = runfiles.read_config(runfiles.require_run(run))
        adapter = adapter or config.adapter
        data_dir = data_dir or Path(config.data_dir)
        same = adapter == config.adapter
        options = adapter_options(ctx, adapter) if ctx.args else (config.adapter_options if same else {})
        if same and Path(data_dir) == Path(config.data_dir) and not exclude and not relabel:
            exclude, relabel = config.exclude, config.relabel  # the data as the run saw it
    elif not adapter or not data_dir:
        fail("name a run folder, or a dataset with --adapter and --data-dir", "a run's model reads the images best")
    else:
        options = adapter_options(ctx, adapter)
    from fgvctune.doctor import diagnose

    output = output or (Path(run) / "doctor" if run else Path(f"doctor-{Path(data_dir).name}"))
    found = diagnose(
        adapter,
        data_dir,
        output,
        split,
        options,
        run=run,
        ckpt_path=ckpt_path,
        model=model,
        image_resize=image_resize,
        folds=folds,
        retrain=retrain,
        epochs=epochs,
        seed=seed,
        issues=tuple(kind.strip() for kind in issues.split(",") if kind.strip()),
        skip_bad=skip_bad,
        exclude=exclude or "",
        relabel=relabel or "",
        verbose=verbose,
        progress=True,
    )
    d = found.dataset
    typer.echo(f"{sum(len(s) for s in d.splits.values())} images of {', '.join(d.splits)}: {found.probabilities}")
    for kind in found.kinds:
        typer.echo(f"  {kind.replace('_', ' ')} issues: {found.count(kind)}")
    for a, b, n, _ in found.overlapping[:3]:
        typer.echo(f"  overlapping classes: {a} / {b} ({n} samples)")
    for path in found.files:
        typer.echo(f"wrote {path}")


def _edited(dataset) -> list[str]:
    """What --exclude and --relabel did, as notes."""
    said = [f"{len(dataset.excluded)} sample(s) left out by --exclude"] if dataset.excluded else []
    said += [f"{len(dataset.relabelled)} sample(s) relabelled by --relabel"] if dataset.relabelled else []
    return said
