"""A run on one page: `report.html`, one self-contained file that opens from disk (a comparison's page is
comparison_report.py's).

Pictures are inline PNGs (base64), the style sheet is inline, and there is no script and nothing
fetched from the network. The page is built from the run folder's files (`runfiles`); MindSpore is
needed only when the best checkpoint has not been evaluated yet.
"""

from __future__ import annotations

from pathlib import Path

from fgvctune.fileio import atomic_write_text
from fgvctune.results import page, runfiles

THUMBNAIL = 144  # pixels, the longer side of a top loss's picture


def write_report(run: str | Path, evaluate: bool = True, verbose: bool = False) -> Path:
    """Write RUN/report.html; evaluates the best checkpoint first when its evaluation is missing or stale."""
    folder = runfiles.require_run(run)
    config = runfiles.read_config(folder)
    result = runfiles.read_eval(folder, config.val_split)
    if result is None and evaluate and (folder / runfiles.BEST).is_file():
        from fgvctune.results.evaluation import evaluate as evaluate_checkpoint

        evaluate_checkpoint(folder, verbose=verbose)
        result = runfiles.read_eval(folder, config.val_split)
    text = page.document(f"fgvctune run {folder.name}", _run_body(folder, config, result))
    path = folder / runfiles.REPORT_FILE
    atomic_write_text(path, text)
    return path


def _run_body(folder: Path, config, result: dict | None) -> str:
    rows = runfiles.read_results(folder)
    best = max(rows, key=lambda r: r["val_top1"]) if rows else None
    cards = [
        (f"best val top-1 (epoch {best['epoch']})", f"{best['val_top1']:.1%}") if best else ("best val top-1", "-"),
        ("epochs", f"{len(rows)} of {config.epoch_size}"),
    ]
    if result:
        cards += [
            (f"{result['split']} top-1", f"{result['top1']:.1%}" + _plain(result, "top1", ".1%")),
            (f"top-{result['k']}", f"{result['top5']:.1%}"),
            ("mean per-class", f"{result['mean_per_class']:.1%}"),
        ]
    return "\n".join(
        [
            page.header(f"run: {folder.name}", setting_line(config)),
            page.cards(cards),
            page.section("Training", _training(folder, rows, best)),
            page.section("Evaluation", _evaluation(folder, config, result)),
            "<div class=pair>" + page.section("Strategy", _strategy(folder, config)),
            page.section("Data", _data(folder, config)) + "</div>",
            tracking_section(folder, config, folder / runfiles.TENSORBOARD_FOLDER),
            page.section("Configuration", config_table(config)),
        ]
    )


def tracking_section(folder: Path, config, logdir: Path) -> str:
    """Where the run (or a comparison's or study's runs) is also logged (--log-to): the TensorBoard command that shows
    `logdir`, and the MLflow run in `folder`'s tracking.json (a link when it is on a server). Empty when it logs
    nowhere else."""
    record = runfiles.read_tracking(folder)
    parts = []
    if "tensorboard" in config.log_to.split(","):
        parts.append(f"<p>TensorBoard: <code>tensorboard --logdir {page.esc(logdir)}</code></p>")
    mlflow = record.get("mlflow")
    if mlflow:
        run = f"run <code>{page.esc(mlflow['run_id'])}</code>"
        if mlflow.get("url"):
            where = f'<a href="{page.esc(mlflow["url"])}">{run} on {page.esc(mlflow["uri"])}</a>'
        else:
            where = f"{run}; <code>mlflow ui --backend-store-uri {page.esc(mlflow['uri'])}</code> shows it"
        parts.append(f"<p>MLflow: {where} (experiment {page.esc(mlflow['experiment_id'])}).</p>")
    return page.section("Tracking", "".join(parts)) if parts else ""


def setting_line(config) -> str:
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
    if config.head_lr_mult != 1.0:
        parts.append(f"the head's rate x{config.head_lr_mult:g}")
    if config.unfreeze_after:
        parts.append(f"the head alone for the first {config.unfreeze_after} epoch(s) (gradual unfreezing)")
    return "; ".join(parts)


def _strategy(folder: Path, config) -> str:
    rows = runfiles.read_strategy(folder)
    text = f"<p>{page.esc(describe_strategy(config))}.</p>"
    if not rows:
        return (
            text
            + f"<p class=muted>No {runfiles.STRATEGY_FILE} in this run (`fgvctune layers RUN` lists the blocks).</p>"
        )
    trainable = sum(r["params"] for r in rows if r["trainable"] == "yes")
    total = sum(r["params"] for r in rows)
    table = []
    for i, r in enumerate(rows):
        state = r["trainable"]
        tag = {"yes": "on", "partly": "part"}.get(state, "off")
        table.append(
            [
                str(i) if r["block"] != "head" else "head",
                f"<code>{page.esc(r['prefix'])}</code>",
                f"{r['params']:,}",
                f'<span class="tag {tag}">{page.esc(state)}</span>',
                page.esc(r["lr_mult"]),
            ]
        )
    return (
        text
        + f"<p>{trainable:,} of {total:,} parameters train"
        + (" (blocks that train only in part are not counted)" if any(r["trainable"] == "partly" for r in rows) else "")
        + ".</p>"
        + page.table(["#", "block prefix", "parameters", "trains", "lr &times;"], table, numeric=[2, 4])
    )


def _data(folder: Path, config) -> str:
    counts = runfiles.read_counts(folder)
    parts = []
    if counts:
        classes = max(len(c) for c in counts.values())
        parts.append(f"<p>{classes} classes; train on <b>{page.esc(config.train_split)}</b>, ")
        parts.append(f"evaluate on <b>{page.esc(config.val_split)}</b>.</p>")
        table = []
        for split, per_class in counts.items():
            sizes = list(per_class.values())
            low, high = min(sizes, default=0), max(sizes, default=0)
            table.append(
                [
                    page.esc(split),
                    f"{sum(sizes):,}",
                    str(sum(1 for n in sizes if n)),
                    f"{low}-{high}",
                    f"{high / low:.1f}x" if low else "inf",
                ]
            )
        parts.append(
            page.table(["split", "images", "classes", "per class", "imbalance (max/min)"], table, numeric=[1, 2])
        )
        splits = list(counts)
        names = list(counts[splits[0]])
        per_class = [[page.esc(n)] + [str(counts[s].get(n, 0)) for s in splits] for n in names]
        every = page.table(["class", *splits], per_class, numeric=range(1, 1 + len(splits)))
        parts.append(f"<details><summary>images per class</summary>{every}</details>")
    else:
        parts.append(f"<p class=muted>No {runfiles.COUNTS_FILE} in this run (`fgvctune info` shows the data).</p>")
    parts.append(_duplicates(folder, config))
    skipped = runfiles.read_skipped(folder)
    if skipped:
        root = str(Path(config.data_dir).resolve()) + "/"  # paths inside the dataset, shown from its folder
        shown = "".join(f"<li><code>{page.esc(line.replace(root, ''))}</code></li>" for line in skipped[:200])
        more = f"<li>... and {len(skipped) - 200} more</li>" if len(skipped) > 200 else ""
        parts.append(f"<h3>Left out of this run: {len(skipped)} ({runfiles.SKIPPED_FILE})</h3><ul>{shown}{more}</ul>")
    else:
        parts.append("<p>No files were left out.</p>")
    relabelled = runfiles.read_relabelled(folder)
    if relabelled:
        rows = [[page.esc(r["split"]), f"<code>{page.esc(r['id'])}</code>", page.esc(r["was"]), page.esc(r["now"])]
                for r in relabelled[:200]]  # fmt: skip
        more = f"<p>... and {len(relabelled) - 200} more</p>" if len(relabelled) > 200 else ""
        parts.append(f"<h3>Relabelled in this run: {len(relabelled)} ({runfiles.RELABELLED_FILE})</h3>")
        parts.append(page.table(["split", "sample", "was", "now"], rows) + more)
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
        text += f"<p>Evaluation images with a copy in the training split: {page.esc(verdict)}.</p>"
    rows = [
        [
            page.esc(p["where"]),
            page.esc(p["kind"]) + ("" if p["kind"] == "exact" else f" ({page.esc(p['distance'])} bits)"),
            f"<code>{page.esc(p['first_split'])}: {page.esc(_short(p['first'], config))}</code>",
            f"<code>{page.esc(p['second_split'])}: {page.esc(_short(p['second'], config))}</code>",
        ]
        for p in pairs[:100]
    ]
    more = f"<p>... and {len(pairs) - 100} more in {runfiles.DUPLICATES_FILE}</p>" if len(pairs) > 100 else ""
    return text + page.table(["where", "kind", "first", "second"], rows) + more


def _short(path: str, config) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(config.data_dir).resolve()))
    except ValueError:
        return path


def _training(folder: Path, rows: list[dict], best: dict | None) -> str:
    if not rows:
        return "<p class=muted>No finished epoch yet.</p>"
    curves = folder / runfiles.CURVES_FILE
    picture = page.img(curves.read_bytes(), "loss and accuracy per epoch") if curves.is_file() else ""
    from fgvctune.results.metrics import top_k

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
        f"<p>Best val top-1 {best['val_top1']:.1%} at epoch {best['epoch']} (saved as {runfiles.BEST}).</p>"
        + picture
        + f"<details><summary>every epoch</summary>{page.table(head, table, numeric=range(1, 7))}</details>"
    )


def _plain(result: dict, key: str, form: str) -> str:
    """' (tta; plain X)' beside a figure of an evaluation made with test-time augmentation."""
    if not result.get("tta"):
        return ""
    return f" ({result['tta']} TTA; plain {format(result['plain'][key], form)})"


def _evaluation(folder: Path, config, result: dict | None) -> str:
    if not result:
        return f"<p class=muted>Not evaluated yet: <code>fgvctune report RUN</code> evaluates {runfiles.BEST}.</p>"
    parts = [
        f"<p>{page.esc(Path(result['checkpoint']).name)} on <b>{page.esc(result['split'])}</b>, "
        f"{result['count']} images: "
        f"top-1 <b>{result['top1']:.2%}</b>, top-{result['k']} <b>{result['top5']:.2%}</b>, "
        f"mean per-class <b>{result['mean_per_class']:.2%}</b>.</p>"
    ]
    if result.get("tta"):
        plain = result["plain"]
        parts.append(
            f"<p>With test-time augmentation ({page.esc(result['tta'])}); without it: top-1 {plain['top1']:.2%}, "
            f"top-{result['k']} {plain['top5']:.2%}, mean per-class {plain['mean_per_class']:.2%}.</p>"
        )
    evaluated = runfiles.eval_folder(folder, result["split"])
    picture = evaluated / runfiles.CONFUSION_PICTURE
    per_class = sorted(result["per_class"].items(), key=lambda item: (item[1]["accuracy"], item[0]))
    table = [
        [
            page.esc(name),
            f"{v['correct']} / {v['total']}",
            f'<span class="bar"><span style="width:{100 * v["accuracy"]:.0f}%"></span></span> {v["accuracy"]:.0%}',
        ]
        for name, v in per_class
    ]
    columns = "<div class=columns>"
    columns += "<div><h3>Per-class accuracy, worst first</h3>" + page.table(["class", "right", "accuracy"], table, [1])
    columns += "</div>"
    if picture.is_file():
        columns += f"<div><h3>Confusion matrix</h3>{page.img(picture.read_bytes(), 'confusion matrix')}</div>"
    parts.append(columns + "</div>")
    confused = result.get("confused") or []
    if confused:
        items = "".join(f"<li>{page.esc(t)} &rarr; {page.esc(p)}: {c}&times;</li>" for t, p, c in confused[:5])
        parts.append(f"<h3>Most confused pairs (true &rarr; predicted)</h3><ul>{items}</ul>")
    top = result.get("top_losses") or []
    if top:
        note = "Highest loss, -log p(true class), first."
        if any("heatmap" in m for m in top):
            note += " Over each image, as the model saw it, the Grad-CAM heatmap of the prediction: where it was found."
        tiles = "".join(_top_loss(m, evaluated) for m in top)
        heading = "<h3>Top losses: the images the model got most wrong</h3>"
        parts.append(f"{heading}<p class=muted>{note}</p><div class=tiles>{tiles}</div>")
    elif "mistakes" in result:
        parts.append("<p class=muted>Evaluated before fgvctune kept top losses: <code>fgvctune eval RUN</code>.</p>")
    return "".join(parts)


def _top_loss(m: dict, folder: Path) -> str:
    """A top loss's tile: its heatmap picture (else its image), predicted (red when wrong) and true class."""
    picture = page.thumbnail(folder / m["heatmap"], THUMBNAIL) if m.get("heatmap") else ""
    picture = picture or page.thumbnail(runfiles.eval_image(m), THUMBNAIL)
    image = (
        f'<img src="data:image/png;base64,{picture}" alt="{page.esc(m["image"])}">'
        if picture
        else "<div class=missing>image not found</div>"
    )
    predicted = page.esc(m["predicted"])
    if m["predicted"] != m["true"]:
        predicted = f"<span class=wrong>{predicted}</span>"
    return (
        f"<figure>{image}<figcaption>{predicted} {m['confidence']:.0%}"
        f"<br>true: {page.esc(m['true'])}, p {m['probability']:.2g}, loss {m['loss']:.2f}"
        f"<br><small>{page.esc(m['image'])}</small></figcaption></figure>"
    )


def config_table(config) -> str:
    from fgvctune.config import FIELDS

    values = config.to_dict()
    panels: dict[str, list] = {}
    for name, f in FIELDS.items():
        panels.setdefault(f.metadata["panel"], []).append(
            [f"<code>{page.esc(name)}</code>", page.esc(_value(values.get(name)))]
        )
    tables = "".join(
        f"<div><h3>{page.esc(panel)}</h3>{page.table(['key', 'value'], rows)}</div>" for panel, rows in panels.items()
    )
    return f"<details><summary>every key ({runfiles.CONFIG_FILE})</summary><div class=columns>{tables}</div></details>"


def _value(value) -> str:
    if value in ("", None, [], {}):
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)
