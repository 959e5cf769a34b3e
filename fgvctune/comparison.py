"""The tutorial's results table, remade: several strategies on the same data and configuration."""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from fgvctune.config import TrainConfig
from fgvctune.errors import UsageError
from fgvctune.fileio import atomic_write_text

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


def compare(config: TrainConfig, output: str | Path, names=None, verbose: bool = False, log=print) -> list[dict]:
    """Train each strategy into output/<strategy>, evaluate its best checkpoint, write the table.

    A strategy whose run finished is not trained again; one that stopped part-way is resumed.
    """
    from fgvctune import strategy as strategy_module
    from fgvctune.evaluation import evaluate
    from fgvctune.runfiles import LAST, read_results
    from fgvctune.trainer import train

    output = Path(output)
    base_plan = strategy_module.layers(config.model)
    weighted = [b.name for b in base_plan.blocks if any(p.block == b.name for p in base_plan.params)]
    available = strategies(config, [b.name for b in base_plan.blocks], weighted)
    names = list(names or TUTORIAL)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UsageError(f"unknown strategy {unknown[0]!r}; choose from {', '.join(available)}")
    rows = []
    for name in names:
        overrides = available[name]
        folder = output / name
        done = read_results(folder)
        if len(done) >= config.epoch_size and (folder / "best.ckpt").is_file():
            log(f"== {name}: finished earlier, kept")
        elif (folder / LAST).is_file():
            log(f"== {name}: resuming")
            train(resume=folder, verbose=verbose, log=log)
        else:
            log(f"== {name}: training with {overrides or 'every parameter'}")
            train(dataclasses.replace(config, **overrides), output=folder, verbose=verbose, log=log)
        result = evaluate(folder, verbose=verbose)
        plan = strategy_module.layers(str(folder))
        rows.append(
            {
                "strategy": name,
                "top1": result.top1,
                "mean_per_class": result.mean_per_class,
                "trainable_params": sum(p.size for p in plan.params if p.trainable),
                "seconds": sum(r["seconds"] for r in read_results(folder)),
            }
        )
    atomic_write_text(output / "compare.csv", _csv(rows))
    atomic_write_text(output / "compare.md", _markdown(rows, config))
    return rows


def _csv(rows) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["strategy", "top1", "mean_per_class", "trainable_params", "seconds"])
    for r in rows:
        writer.writerow(
            [
                r["strategy"],
                f"{r['top1']:.4f}",
                f"{r['mean_per_class']:.4f}",
                r["trainable_params"],
                f"{r['seconds']:.1f}",
            ]
        )
    return buf.getvalue()


def _markdown(rows, config: TrainConfig) -> str:
    lines = [
        f"{config.model} on {config.adapter} ({config.data_dir}), {config.epoch_size} epochs, "
        f"image_resize {config.image_resize}, lr {config.lr:g}",
        "",
        "| strategy | top-1 | mean per-class | trainable parameters | seconds |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['strategy']} | {r['top1']:.2%} | {r['mean_per_class']:.2%} | "
            f"{r['trainable_params']:,} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"
