"""The main job on the bundled sample: every step of the tutorial, end to end, in a few minutes on a CPU.

Pretrained ImageNet weights cannot be downloaded on an offline machine, so the demo first trains
its own starting checkpoint on a related task (the sample's 3 manufacturers, from scratch) and
fine-tunes from it through --ckpt-path, exactly as a user would from a downloaded MindCV checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from fgvctune.config import resolve

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "aircraft-sample"
SETTINGS = dict(model="mobilenet_v3_small_100", image_resize=64, scale=[0.5, 1.0], batch_size=16, lr=0.05)


def demo(
    output: str | Path = "runs/demo",
    data_dir: str | Path = SAMPLE,
    epoch_size: int = 5,
    base_epochs: int = 10,
    strategies=None,
    verbose: bool = False,
    log=print,
) -> list[Path]:
    """Run the tutorial on the sample; return the paths of everything written."""
    from fgvctune.comparison import compare
    from fgvctune.data.dataset import load_dataset
    from fgvctune.data.source import ImageSource
    from fgvctune.data.tree import convert
    from fgvctune.results import runfiles
    from fgvctune.results.evaluation import evaluate
    from fgvctune.results.prediction import predict_split
    from fgvctune.training.trainer import train

    output, data_dir = Path(output), Path(data_dir)
    written: list[Path] = []

    log("== 1. the dataset (FGVC-Aircraft layout, variant level)")
    dataset = load_dataset("aircraft", data_dir)
    for split, counter in dataset.counts().items():
        log(f"   {split}: {sum(counter.values())} images over {len(counter)} variants")

    log("== 2. reading offline: an ImageNet-style class tree")
    tree = convert("aircraft", data_dir, output / "tree")
    log(f"   {output / 'tree'}: {tree.placed + tree.unchanged} images hardlinked, {runfiles.LABELS_FILE} beside them")
    written += tree.files

    log("== 3. reading online: the same samples as a mappable source for GeneratorDataset")
    source = ImageSource.from_dataset(dataset, "trainval")
    image, label = source[0]
    log(
        f"   {len(source)} samples; sample 0 is {image.size} encoded bytes with label {int(label)} "
        f"({dataset.labels.classes[int(label)]})"
    )

    log("== 4. a starting checkpoint: ImageNet weights cannot be downloaded offline, so the demo learns the")
    log("      sample's 3 manufacturers from scratch and fine-tunes from that (--ckpt-path), as a user would")
    log("      from a downloaded MindCV checkpoint. On a machine with internet, use --pretrained instead.")
    base = output / "base-manufacturer"
    if not (base / runfiles.BEST).is_file():
        train(
            adapter="aircraft",
            data_dir=str(data_dir),
            adapter_options={"level": "manufacturer"},
            pretrained=False,
            epoch_size=base_epochs,
            output=base,
            verbose=verbose,
            log=_indent(log),
            **SETTINGS,
        )
    written.append(base / runfiles.BEST)

    log("== 5. fine-tuning at the variant level with the tutorial's strategies")
    config = resolve(
        adapter="aircraft",
        data_dir=str(data_dir),
        ckpt_path=str(base / runfiles.BEST),
        pretrained=False,
        epoch_size=epoch_size,
        **SETTINGS,
    )
    compared = output / "compare"
    rows = compare(config, compared, strategies, verbose=verbose, log=_indent(log))
    log((compared / runfiles.COMPARE_MARKDOWN).read_text(encoding="utf-8"))
    written += [compared / name for name in (runfiles.COMPARE_MARKDOWN, runfiles.COMPARE_TABLE, runfiles.REPORT_FILE)]

    best = max(rows, key=lambda r: r["top1"])
    run = compared / best["strategy"]
    log(f"== 6. evaluating the best checkpoint ({best['strategy']}/{runfiles.BEST}) on the test split")
    result = evaluate(run, verbose=verbose)
    log(f"   top-1 {result.top1:.2%}  top-{result.k} {result.top5:.2%}  mean per-class {result.mean_per_class:.2%}")
    written += [Path(f) for f in result.files]

    log("== 7. predictions with true and predicted labels")
    predictions = predict_split(run, verbose=verbose)
    wrong = sum(r["pred"] != r["real"] for r in predictions.rows)
    log(f"   {len(predictions.rows)} test images, {wrong} wrong")
    written += [Path(f) for f in predictions.files] + [run / runfiles.CURVES_FILE, run / runfiles.REPORT_FILE]
    return written


def _indent(log):
    return lambda message: log(f"   {message}")
