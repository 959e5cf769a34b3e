"""A run on one page: `report.html`, one self-contained file that opens from disk.

Pictures are inline PNGs (base64), the style sheet is inline, and there is no script and nothing
fetched from the network. The page is built from the run folder's files (`runfiles`); MindSpore is
needed only when the best checkpoint has not been evaluated yet.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime
from pathlib import Path

from fgvctune import runfiles
from fgvctune.fileio import atomic_write_text

COMPARE_REPORT = "report.html"
THUMBNAIL = 144  # pixels, the longer side of a mistake's picture


def write_report(run: str | Path, evaluate: bool = True, verbose: bool = False) -> Path:
    """Write RUN/report.html; evaluates the best checkpoint first when its evaluation is missing or stale."""
    folder = runfiles.require_run(run)
    config = runfiles.read_config(folder)
    result = runfiles.read_eval(folder, config.val_split)
    if result is None and evaluate and (folder / runfiles.BEST).is_file():
        from fgvctune.evaluation import evaluate as evaluate_checkpoint

        evaluate_checkpoint(folder, verbose=verbose)
        result = runfiles.read_eval(folder, config.val_split)
    page = _page(f"fgvctune run {folder.name}", _run_body(folder, config, result))
    path = folder / runfiles.REPORT_FILE
    atomic_write_text(path, page)
    return path


def write_comparison_report(output: str | Path, rows: list[dict], config) -> Path:
    """OUTPUT/report.html for `compare`: the table, every strategy's curves on one picture, links to the runs."""
    from fgvctune import plots

    output = Path(output)
    seeds = max((len(r["runs"]) for r in rows), default=1)
    curves = {r["strategy"]: [runfiles.read_results(output / run) for run in r["runs"]] for r in rows}
    spread = seeds > 1
    head = ["strategy", "top-1", "mean per-class", "trainable parameters", "seconds per run", "runs"]
    table = []
    for r in rows:
        links = ", ".join(
            f'<a href="{_e(run)}/{runfiles.REPORT_FILE}">{_e(Path(run).name if spread else "report")}</a>'
            for run in r["runs"]
        )
        table.append(
            [
                _e(r["strategy"]),
                _pm(r["top1"], r.get("top1_std"), spread),
                _pm(r["mean_per_class"], r.get("mean_per_class_std"), spread),
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
        _header(f"compare: {output.name}", _setting_line(config)),
        _cards(summary),
        _section("Results", note + _table(head, table, numeric=range(1, 5))),
        _section(
            "Training curves",
            _img(plots.comparison_curves(curves, title=output.name), "validation top-1 and train loss per epoch"),
        ),
        _section("Configuration", _config_table(config)),
    ]
    path = output / COMPARE_REPORT
    atomic_write_text(path, _page(f"fgvctune compare {output.name}", "\n".join(body)))
    return path


def rewrite_comparison_report(output: str | Path) -> Path:
    """The compare page again, from compare.csv, compare.yaml and the runs' files (no training, no MindSpore)."""
    from fgvctune.comparison import COMPARE_CONFIG, read_rows
    from fgvctune.config import resolve

    output = Path(output)
    return write_comparison_report(output, read_rows(output), resolve(output / COMPARE_CONFIG))


# -- the run page --------------------------------------------------------------------------------
def _run_body(folder: Path, config, result: dict | None) -> str:
    rows = runfiles.read_results(folder)
    best = max(rows, key=lambda r: r["val_top1"]) if rows else None
    cards = [
        (f"best val top-1 (epoch {best['epoch']})", f"{best['val_top1']:.1%}") if best else ("best val top-1", "-"),
        ("epochs", f"{len(rows)} of {config.epoch_size}"),
    ]
    if result:
        cards += [
            (f"{result['split']} top-1", f"{result['top1']:.1%}"),
            (f"top-{result['k']}", f"{result['top5']:.1%}"),
            ("mean per-class", f"{result['mean_per_class']:.1%}"),
        ]
    return "\n".join(
        [
            _header(f"run: {folder.name}", _setting_line(config)),
            _cards(cards),
            _section("Training", _training(folder, rows, best)),
            _section("Evaluation", _evaluation(folder, config, result)),
            "<div class=pair>" + _section("Strategy", _strategy(folder, config)),
            _section("Data", _data(folder, config)) + "</div>",
            _section("Configuration", _config_table(config)),
        ]
    )


def _setting_line(config) -> str:
    if config.ckpt_path:
        start = f"from {config.ckpt_path}"
    elif config.pretrained:
        start = "from MindCV's ImageNet weights"
    else:
        start = "from scratch"
    options = ", ".join(f"{k} {v}" for k, v in config.adapter_options.items())
    data = f"{config.adapter} at {config.data_dir}" + (f" ({options})" if options else "")
    return f"{config.model} {start}; {data}; {config.epoch_size} epochs at {config.image_resize} px, lr {config.lr:g}"


def describe_strategy(config) -> str:
    """The strategy in words, from the config keys that make it."""
    if config.linear_probe:
        parts = ["linear probe: only the final classifier layer trains"]
    elif config.freeze == "all":
        parts = ["every feature block frozen, the head trains"]
    elif str(config.freeze) not in ("", "0"):
        parts = [f"the first {config.freeze} feature blocks frozen, the rest trains"]
    else:
        parts = ["full fine-tuning: every block trains"]
    if config.lr_mult:
        parts.append("rate multipliers " + ", ".join(config.lr_mult))
    if config.layer_decay != 1.0:
        parts.append(f"layer-wise rate decay {config.layer_decay:g}")
    if config.unfreeze_after:
        parts.append(f"the head alone for the first {config.unfreeze_after} epoch(s) (gradual unfreezing)")
    return "; ".join(parts)


def _strategy(folder: Path, config) -> str:
    rows = runfiles.read_strategy(folder)
    text = f"<p>{_e(describe_strategy(config))}.</p>"
    if not rows:
        return text + "<p class=muted>No strategy.csv in this run (`fgvctune layers RUN` lists the blocks).</p>"
    trainable = sum(r["params"] for r in rows if r["trainable"] == "yes")
    total = sum(r["params"] for r in rows)
    table = []
    for i, r in enumerate(rows):
        state = r["trainable"]
        tag = {"yes": "on", "partly": "part"}.get(state, "off")
        table.append(
            [
                str(i) if r["block"] != "head" else "head",
                f"<code>{_e(r['prefix'])}</code>",
                f"{r['params']:,}",
                f'<span class="tag {tag}">{_e(state)}</span>',
                _e(r["lr_mult"]),
            ]
        )
    return (
        text
        + f"<p>{trainable:,} of {total:,} parameters train"
        + (" (blocks that train only in part are not counted)" if any(r["trainable"] == "partly" for r in rows) else "")
        + ".</p>"
        + _table(["#", "block prefix", "parameters", "trains", "lr &times;"], table, numeric=[2, 4])
    )


def _data(folder: Path, config) -> str:
    counts = runfiles.read_counts(folder)
    parts = []
    if counts:
        classes = max(len(c) for c in counts.values())
        parts.append(f"<p>{classes} classes; train on <b>{_e(config.train_split)}</b>, ")
        parts.append(f"evaluate on <b>{_e(config.val_split)}</b>.</p>")
        table = []
        for split, per_class in counts.items():
            sizes = list(per_class.values())
            low, high = min(sizes, default=0), max(sizes, default=0)
            table.append(
                [
                    _e(split),
                    f"{sum(sizes):,}",
                    str(sum(1 for n in sizes if n)),
                    f"{low}-{high}",
                    f"{high / low:.1f}x" if low else "inf",
                ]
            )
        parts.append(_table(["split", "images", "classes", "per class", "imbalance (max/min)"], table, numeric=[1, 2]))
        splits = list(counts)
        names = list(counts[splits[0]])
        per_class = [[_e(n)] + [str(counts[s].get(n, 0)) for s in splits] for n in names]
        every = _table(["class", *splits], per_class, numeric=range(1, 1 + len(splits)))
        parts.append(f"<details><summary>images per class</summary>{every}</details>")
    else:
        parts.append("<p class=muted>No counts.csv in this run (`fgvctune info` shows the data).</p>")
    parts.append(_duplicates(folder, config))
    skipped = runfiles.read_skipped(folder)
    if skipped:
        root = str(Path(config.data_dir).resolve()) + "/"  # paths inside the dataset, shown from its folder
        shown = "".join(f"<li><code>{_e(line.replace(root, ''))}</code></li>" for line in skipped[:200])
        more = f"<li>... and {len(skipped) - 200} more</li>" if len(skipped) > 200 else ""
        parts.append(f"<h3>Left out of this run: {len(skipped)} ({runfiles.SKIPPED_FILE})</h3><ul>{shown}{more}</ul>")
    else:
        parts.append("<p>No files were left out.</p>")
    return "".join(parts)


def _duplicates(folder: Path, config) -> str:
    pairs = runfiles.read_duplicates(folder)
    if not pairs:
        return "<p>No duplicates: no two images are the same or nearly the same, inside a split or across splits.</p>"
    across = [p for p in pairs if p["where"] == "across"]
    if across and config.dedupe:
        verdict = "their training copies were left out (--dedupe)"
    elif across:
        verdict = "they were trained on, which inflates the evaluation figures (--dedupe leaves them out)"
    else:
        verdict = ""
    text = f"<h3>Duplicates: {len(across)} pair(s) across training and evaluation, {len(pairs) - len(across)} inside"
    text += " a split</h3>"
    if verdict:
        text += f"<p>Evaluation images with a copy in the training split: {_e(verdict)}.</p>"
    rows = [
        [
            _e(p["where"]),
            _e(p["kind"]) + ("" if p["kind"] == "exact" else f" ({_e(p['distance'])} bits)"),
            f"<code>{_e(p['first_split'])}: {_e(_short(p['first'], config))}</code>",
            f"<code>{_e(p['second_split'])}: {_e(_short(p['second'], config))}</code>",
        ]
        for p in pairs[:100]
    ]
    more = f"<p>... and {len(pairs) - 100} more in {runfiles.DUPLICATES_FILE}</p>" if len(pairs) > 100 else ""
    return text + _table(["where", "kind", "first", "second"], rows) + more


def _short(path: str, config) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(config.data_dir).resolve()))
    except ValueError:
        return path


def _training(folder: Path, rows: list[dict], best: dict | None) -> str:
    if not rows:
        return "<p class=muted>No finished epoch yet.</p>"
    from fgvctune.plots import CURVES_FILE

    curves = folder / CURVES_FILE
    picture = _img(curves.read_bytes(), "loss and accuracy per epoch") if curves.is_file() else ""
    from fgvctune.metrics import top_k

    k = f"top-{top_k(len(runfiles.read_labels(folder)))}"
    table = [
        [
            str(r["epoch"]) + (" <b>best</b>" if r is best else ""),
            f"{r['train_loss']:.4f}",
            f"{r['train_acc']:.1%}",
            f"{r['val_top1']:.1%}",
            f"{r['val_top5']:.1%}",
            f"{r['lr']:.3g}",
            f"{r['seconds']:.1f}",
        ]
        for r in rows
    ]
    head = ["epoch", "train loss", "train acc", "val top-1", f"val {k}", "lr", "seconds"]
    return (
        f"<p>Best val top-1 {best['val_top1']:.1%} at epoch {best['epoch']} (saved as best.ckpt).</p>"
        + picture
        + f"<details><summary>every epoch</summary>{_table(head, table, numeric=range(1, 7))}</details>"
    )


def _evaluation(folder: Path, config, result: dict | None) -> str:
    if not result:
        return "<p class=muted>Not evaluated yet: <code>fgvctune report RUN</code> evaluates best.ckpt.</p>"
    parts = [
        f"<p>{_e(Path(result['checkpoint']).name)} on <b>{_e(result['split'])}</b>, {result['count']} images: "
        f"top-1 <b>{result['top1']:.2%}</b>, top-{result['k']} <b>{result['top5']:.2%}</b>, "
        f"mean per-class <b>{result['mean_per_class']:.2%}</b>.</p>"
    ]
    picture = runfiles.eval_folder(folder, result["split"]) / "confusion.png"
    per_class = sorted(result["per_class"].items(), key=lambda item: (item[1]["accuracy"], item[0]))
    table = [
        [
            _e(name),
            f"{v['correct']} / {v['total']}",
            f'<span class="bar"><span style="width:{100 * v["accuracy"]:.0f}%"></span></span> {v["accuracy"]:.0%}',
        ]
        for name, v in per_class
    ]
    columns = "<div class=columns>"
    columns += "<div><h3>Per-class accuracy, worst first</h3>" + _table(["class", "right", "accuracy"], table, [1])
    columns += "</div>"
    if picture.is_file():
        columns += f"<div><h3>Confusion matrix</h3>{_img(picture.read_bytes(), 'confusion matrix')}</div>"
    parts.append(columns + "</div>")
    confused = result.get("confused") or []
    if confused:
        items = "".join(f"<li>{_e(t)} &rarr; {_e(p)}: {c}&times;</li>" for t, p, c in confused[:5])
        parts.append(f"<h3>Most confused pairs (true &rarr; predicted)</h3><ul>{items}</ul>")
    mistakes = result.get("mistakes") or []
    if mistakes:
        tiles = "".join(_mistake(m) for m in mistakes)
        parts.append(f"<h3>Worst mistakes: wrong and most confident</h3><div class=tiles>{tiles}</div>")
    elif "mistakes" in result:
        parts.append("<p>No mistakes on this split.</p>")
    return "".join(parts)


def _mistake(m: dict) -> str:
    picture = _thumbnail(Path(m["path"]))
    image = (
        f'<img src="data:image/png;base64,{picture}" alt="{_e(m["image"])}">'
        if picture
        else "<div class=missing>image not found</div>"
    )
    return (
        f"<figure>{image}<figcaption><span class=wrong>{_e(m['predicted'])}</span> {m['confidence']:.0%}"
        f"<br>true: {_e(m['true'])}<br><small>{_e(m['image'])}</small></figcaption></figure>"
    )


def _thumbnail(path: Path) -> str:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (THUMBNAIL, THUMBNAIL))
            im = im.convert("RGB")
            im.thumbnail((THUMBNAIL, THUMBNAIL))
            buf = io.BytesIO()
            im.save(buf, format="PNG", optimize=True)
    except OSError:
        return ""
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _config_table(config) -> str:
    from fgvctune.config import FIELDS

    values = config.to_dict()
    panels: dict[str, list] = {}
    for name, f in FIELDS.items():
        panels.setdefault(f.metadata["panel"], []).append([f"<code>{_e(name)}</code>", _e(_value(values.get(name)))])
    tables = "".join(
        f"<div><h3>{_e(panel)}</h3>{_table(['key', 'value'], rows)}</div>" for panel, rows in panels.items()
    )
    return f"<details><summary>every key (config.yaml)</summary><div class=columns>{tables}</div></details>"


def _value(value) -> str:
    if value in ("", None, [], {}):
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


# -- HTML pieces ---------------------------------------------------------------------------------
def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _pm(mean: float, std: float | None, spread: bool) -> str:
    return f"{mean:.1%} &plusmn; {100 * std:.1f}" if spread and std is not None else f"{mean:.1%}"


def _img(png: bytes, alt: str) -> str:
    return f'<img class=plot alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(head, rows, numeric=()) -> str:
    numeric = set(numeric)
    th = "".join(f"<th{' class=num' if i in numeric else ''}>{h}</th>" for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in numeric else ''}>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<div class=scroll><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>"


def _cards(items) -> str:
    cards = "".join(
        f"<div class=card><div class=label>{_e(k)}</div><div class=value>{_e(v)}</div></div>" for k, v in items
    )
    return f"<div class=cards>{cards}</div>"


def _section(title: str, content: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{content}</section>"


def _header(title: str, subtitle: str) -> str:
    return f"<header><h1>{_e(title)}</h1><p>{_e(subtitle)}</p></header>"


STYLE = """
:root { --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #2f6fde; --bad: #c4320a; --good: #067647; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 48px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0 0 16px; color: var(--muted); }
h2 { font-size: 19px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 16px 0 8px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
.pair > *, .columns > *, .cards > * { min-width: 0; }
code { overflow-wrap: anywhere; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 0 16px; align-items: start; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .label { color: var(--muted); font-size: 13px; }
.card .value { font-size: 20px; font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 3px 12px 3px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
img.plot { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 8px 28px;
  align-items: start; }
.bar { display: inline-block; width: 90px; height: 10px; background: var(--line); border-radius: 5px;
  vertical-align: middle; }
.bar span { display: block; height: 100%; background: var(--accent); border-radius: 5px; }
.tag { padding: 0 8px; border-radius: 10px; font-size: 13px; }
.tag.on { background: #dcfae6; color: var(--good); }
.tag.off { background: #f2f4f7; color: var(--muted); }
.tag.part { background: #fef0c7; color: #93370d; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; }
figure { margin: 0; background: #fafafa; border: 1px solid var(--line); border-radius: 6px; padding: 6px; }
figure img { width: 100%; height: auto; image-rendering: auto; display: block; border: 2px solid var(--bad); }
figcaption { font-size: 13px; margin-top: 4px; overflow-wrap: anywhere; }
.wrong { color: var(--bad); font-weight: 600; }
.missing { height: 96px; display: grid; place-items: center; color: var(--muted); }
.muted { color: var(--muted); }
details summary { cursor: pointer; color: var(--accent); margin: 8px 0; }
code { font-size: 13px; }
footer { color: var(--muted); font-size: 13px; text-align: center; }
"""


def _page(title: str, body: str) -> str:
    made = f"made by fgvctune on {datetime.now():%Y-%m-%d %H:%M}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}<footer>{_e(made)}</footer></main></body></html>\n"
    )
