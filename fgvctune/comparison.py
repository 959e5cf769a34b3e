"""The tutorial's results table, remade: several strategies on the same data and configuration."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fgvctune.config import TrainConfig, dump_yaml
from fgvctune.errors import UsageError
from fgvctune.fileio import atomic_write_text
from fgvctune.results.runfiles import COMPARE_CONFIG, COMPARE_MARKDOWN, COMPARE_TABLE, compare_text

# The five columns of the tutorial's table, in its order.
TUTORIAL = ("linear-probe", "freeze-shallow", "full", "full-classifier-lr", "full-deep-lr")


def strategies(config: TrainConfig, blocks: list[str], weighted: list[str]) -> dict[str, dict]:
    """Config overrides per strategy. The shallow part is the first 7 feature blocks (at most half of
    them); deep layers are the tutorial's features.13-15 on its model, else the last three blocks with
    weights."""
    if config.model.startswith("mobilenet_v3_small"):
        deep = ["features.13", "features.14", "features.15"]
    else:
        deep = weighted[-3:]
    return {
        "linear-probe": {"linear_probe": True},
        "freeze-shallow": {"freeze": str(min(7, len(blocks) // 2))},
        "full": {},
        "full-classifier-lr": {"lr_mult": ["classifier=1.2"]},
        "full-deep-lr": {"lr_mult": [f"{b}={f}" for b, f in zip(deep, (1.05, 1.1, 1.15))]},
    }


def compare(
    config: TrainConfig, output: str | Path, names=None, verbose: bool = False, log=print, seeds: int = 1
) -> list[dict]:
    """Train each strategy into output/<strategy>, evaluate its best checkpoint, write the table and report.html.

    With `seeds` K > 1 each strategy runs K times (seeds seed..seed+K-1, in output/<strategy>/seed-<seed>) and
    the table gives the mean and standard deviation of its figures. A run that finished is not trained
    again; one that stopped part-way is resumed.
    """
    from fgvctune.results.runfiles import working_in

    if seeds < 1:
        raise UsageError(f"--seeds {seeds}: give at least 1 run per strategy")
    from fgvctune.training import tracking

    output = Path(output)
    tracking.check(config)
    # one comparison per folder; each strategy's run holds its own folder inside it, its MLflow run nested under one
    with working_in(output), tracking.parent(config, output, "compare"):
        return _compare(config, output, names, verbose, log, seeds)


def _compare(config: TrainConfig, output: Path, names, verbose: bool, log, seeds: int) -> list[dict]:
    from fgvctune.results.comparison_report import write_comparison_report
    from fgvctune.training import strategy as strategy_module

    base_plan = strategy_module.layers(config.model)
    weighted = [b.name for b in base_plan.blocks if any(p.block == b.name for p in base_plan.params)]
    available = strategies(config, [b.name for b in base_plan.blocks], weighted)
    names = list(names or TUTORIAL)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UsageError(f"unknown strategy {unknown[0]!r}; choose from {', '.join(available)}")
    rows = []
    for name in names:
        runs = []
        for seed in range(config.seed, config.seed + seeds):
            folder = output / name / f"seed-{seed}" if seeds > 1 else output / name
            label = f"{name} (seed {seed})" if seeds > 1 else name
            runs.append(_run(dataclasses.replace(config, seed=seed), available[name], folder, label, verbose, log))
        rows.append(_summary(name, runs, output))
    atomic_write_text(output / COMPARE_CONFIG, dump_yaml(config))
    atomic_write_text(output / COMPARE_TABLE, compare_text(rows))
    atomic_write_text(output / COMPARE_MARKDOWN, _markdown(rows, config))
    write_comparison_report(output, rows, config)
    return rows


def _run(config: TrainConfig, overrides: dict, folder: Path, label: str, verbose: bool, log) -> dict:
    """One strategy's run (trained, resumed or kept) and its figures."""
    from fgvctune.results.evaluation import evaluate
    from fgvctune.results.runfiles import BEST, LAST, read_config, read_eval, read_results
    from fgvctune.training import strategy as strategy_module
    from fgvctune.training.trainer import train

    done = read_results(folder)
    if len(done) >= config.epoch_size and (folder / BEST).is_file():
        log(f"== {label}: finished earlier, kept")
    elif (folder / LAST).is_file():
        log(f"== {label}: resuming")
        train(resume=folder, verbose=verbose, log=log)
    else:
        log(f"== {label}: training with {overrides or 'every parameter'}")
        train(dataclasses.replace(config, **overrides), output=folder, verbose=verbose, log=log)
    # The run's report evaluated best.ckpt on the eval split already; evaluate only if that is missing.
    result = read_eval(folder, read_config(folder).val_split)
    if result is None:
        evaluation = evaluate(folder, verbose=verbose)
        top1, mean_per_class = evaluation.top1, evaluation.mean_per_class
    else:
        top1, mean_per_class = result["top1"], result["mean_per_class"]
    plan = strategy_module.layers(str(folder))
    return {
        "folder": folder,
        "top1": top1,
        "mean_per_class": mean_per_class,
        "trainable_params": sum(p.size for p in plan.params if p.trainable),
        "seconds": sum(r["seconds"] for r in read_results(folder)),
    }


def _summary(name: str, runs: list[dict], output: Path) -> dict:
    """A strategy's row: the mean of its runs, and their sample standard deviation when there are several."""
    import numpy as np

    def spread(key):
        values = np.array([r[key] for r in runs], dtype=float)
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else None

    top1, top1_std = spread("top1")
    mean_per_class, mean_per_class_std = spread("mean_per_class")
    return {
        "strategy": name,
        "top1": top1,
        "top1_std": top1_std,
        "mean_per_class": mean_per_class,
        "mean_per_class_std": mean_per_class_std,
        "trainable_params": runs[0]["trainable_params"],
        "seconds": float(np.mean([r["seconds"] for r in runs])),
        "runs": [str(Path(r["folder"]).relative_to(output)) for r in runs],
    }


def _markdown(rows, config: TrainConfig) -> str:
    runs = max((len(r["runs"]) for r in rows), default=1)
    spread = runs > 1
    title = (
        f"{config.model} on {config.adapter} ({config.data_dir}), {config.epoch_size} epochs, "
        f"image_resize {config.image_resize}, lr {config.lr:g}"
    )
    if spread:
        title += f"; mean ± standard deviation over {runs} seeds ({config.seed}..{config.seed + runs - 1})"
    lines = [
        title,
        "",
        "| strategy | top-1 | mean per-class | trainable parameters | seconds |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['strategy']} | {_figure(r['top1'], r['top1_std'])} | "
            f"{_figure(r['mean_per_class'], r['mean_per_class_std'])} | "
            f"{r['trainable_params']:,} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _figure(mean: float, std: float | None) -> str:
    return f"{mean:.2%}" if std is None else f"{mean:.2%} ± {100 * std:.2f}"
