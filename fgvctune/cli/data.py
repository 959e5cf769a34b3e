"""Dataset commands: `adapters`, `info`, `convert`. None of them imports MindSpore."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fgvctune.cli.common import adapter_options, handles_errors

AdapterOpt = Annotated[str, typer.Option("--adapter", "-a", help="Dataset adapter; `fgvctune adapters` lists them.")]
DataDirOpt = Annotated[Path, typer.Option("--data-dir", "-d", help="The dataset's folder.")]
SplitOpt = Annotated[
    Optional[list[str]], typer.Option("--split", "-s", help="A split to use (repeatable); default: the adapter's.")
]
SkipBadOpt = Annotated[
    bool, typer.Option("--skip-bad", help="Leave bad samples out (listed in skipped.txt) instead of stopping.")
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
):
    """Show what a dataset holds: classes, counts per split and class, imbalance, problems. Adapter options go after."""
    from fgvctune.data.dataset import load_dataset

    options = adapter_options(ctx, adapter)
    dataset = load_dataset(adapter, data_dir, split, options, strict=False, unlabeled=True)
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
    for note in dataset.notes:
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
    )
    dataset = result.dataset
    for name, counter in dataset.counts().items():
        typer.echo(f"{name}: {sum(counter.values())} images in {len(counter)} class folders")
    typer.echo(f"{result.placed} placed ({mode}), {result.unchanged} already in place")
    for note in dataset.notes:
        typer.echo(f"note: {note}")
    if dataset.problems:
        typer.echo(f"{len(dataset.problems)} problem(s) skipped, listed in {result.out / SKIPPED_FILE}")
    for path in result.files:
        typer.echo(f"wrote {path}")
