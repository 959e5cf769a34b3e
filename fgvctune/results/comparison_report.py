"""A comparison on one page: OUTPUT/report.html for `fgvctune compare`, built as a run's page is (report.py)."""

from __future__ import annotations

from pathlib import Path

from fgvctune.fileio import atomic_write_text
from fgvctune.results import page, runfiles
from fgvctune.results.report import config_table, setting_line, tracking_section


def write_comparison_report(output: str | Path, rows: list[dict], config) -> Path:
    """OUTPUT/report.html for `compare`: the table, every strategy's curves on one picture, links to the runs."""
    from fgvctune.results import plots

    output = Path(output)
    seeds = max((len(r["runs"]) for r in rows), default=1)
    curves = {r["strategy"]: [runfiles.read_results(output / run) for run in r["runs"]] for r in rows}
    spread = seeds > 1
    head = ["strategy", "top-1", "mean per-class", "trainable parameters", "seconds per run", "runs"]
    table = []
    for r in rows:
        links = ", ".join(
            f'<a href="{page.esc(run)}/{runfiles.REPORT_FILE}">{page.esc(Path(run).name if spread else "report")}</a>'
            for run in r["runs"]
        )
        table.append(
            [
                page.esc(r["strategy"]),
                page.plus_minus(r["top1"], r.get("top1_std"), spread),
                page.plus_minus(r["mean_per_class"], r.get("mean_per_class_std"), spread),
                f"{r['trainable_params']:,}",
                f"{r['seconds']:.0f}",
                links,
            ]
        )
    best = max(rows, key=lambda r: r["top1"]) if rows else None
    summary = [
        ("strategies", str(len(rows))),
        ("runs per strategy", f"{seeds} (seeds {config.seed}..{config.seed + seeds - 1})" if spread else "1"),
        ("best top-1", f"{best['top1']:.1%} ({best['strategy']})" if best else "-"),
        ("epochs", str(config.epoch_size)),
    ]
    note = (
        f"<p>Figures are the mean &plusmn; standard deviation over {seeds} runs with different seeds; "
        "the band around each curve is one standard deviation.</p>"
        if spread
        else "<p>One run per strategy: on small data single runs scatter by several points, so differences "
        "of a few points between strategies mean little (<code>--seeds 3</code> gives the spread).</p>"
    )
    body = [
        page.header(f"compare: {output.name}", setting_line(config)),
        page.cards(summary),
        page.section("Results", note + page.table(head, table, numeric=range(1, 5))),
        page.section(
            "Training curves",
            page.img(plots.comparison_curves(curves, title=output.name), "validation top-1 and train loss per epoch"),
        ),
        tracking_section(output, config, output),
        page.section("Configuration", config_table(config)),
    ]
    path = output / runfiles.REPORT_FILE
    atomic_write_text(path, page.document(f"fgvctune compare {output.name}", "\n".join(body)))
    return path


def rewrite_comparison_report(output: str | Path) -> Path:
    """The compare page again, from compare.csv, compare.yaml and the runs' files (no training, no MindSpore)."""
    from fgvctune.config import resolve
    from fgvctune.results.runfiles import COMPARE_CONFIG, read_rows

    output = Path(output)
    return write_comparison_report(output, read_rows(output), resolve(output / COMPARE_CONFIG))
