"""Learning parity: one recipe through `fgvctune train` and through MindCV's own path, over many seeds.

    .venv/bin/python benchmarks/parity.py [--seeds 8] [--epochs 15] [--datasets digits,sample]
    .venv/bin/python benchmarks/parity.py --variants one-pipeline,mindspore-dropout   # fgvctune's departures

The recipe is the one a new user tries: mobilenet_v3_small from scratch at 64 px, AdamW lr 0.003, weight decay
1e-4 (not on biases and norms), label smoothing 0.1, cosine decay with one warm-up epoch, batch 16. Both arms read
the same ImageNet-style class tree: fgvctune through its `folder` adapter, MindCV through create_dataset ->
create_transforms -> create_loader -> create_model -> Model.train (MindCV's and MindSpore's functions only,
`mindcv_arm` below). Every run is its own process. For each dataset the table gives each arm's final and best
top-1 over the seeds (mean and sample standard deviation), the per-seed paired difference fgvctune - MindCV with
its 95% confidence interval (Student's t), and each arm's images per second over the whole run (start-up,
compilation and evaluation included).

A variant switches one of fgvctune's departures from MindCV's path off in the fgvctune arm (see VARIANTS), so the
effect of each can be measured the same way; variants are compared with plain fgvctune, seed by seed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, load, table  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RECIPE = {
    "model": "mobilenet_v3_small_100",
    "image_resize": 64,
    "batch_size": 16,
    "opt": "adamw",
    "lr": 0.003,
    "weight_decay": 1e-4,
    "label_smoothing": 0.1,
    "scheduler": "cosine_decay",
    "min_lr": 1e-6,
    "warmup_epochs": 1,
}
# fgvctune's departures from MindCV's path, each switched off in the fgvctune arm by the patch of that name.
VARIANTS = {
    "fgvctune": "fgvctune as it is",
    "mindspore-dropout": "MindSpore's own dropout instead of the seeded hash-mask dropout",
    "one-pipeline": "one training pipeline iterated for every epoch (as Model.train does) instead of one per epoch",
    "warmup-factor-0": "warm-up from lr x 0 (MindCV's create_scheduler default) instead of lr x 0.01",
    "mindcv-pooling": "MindCV's ReduceMean global pooling instead of the MatMul swap",
}
# Student's t, two-sided 95%, by degrees of freedom.
T95 = {1: 12.71, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 19: 2.093, 24: 2.064, 29: 2.045}  # fmt: skip


# -- data ------------------------------------------------------------------------------------------------
def digits_tree(
    root: Path, per_class_train: int = 16, per_class_val: int = 8, size: int = 64, small_class: int | None = None
) -> Path:
    """scikit-learn's real handwritten digits (8x8), 10 classes, upscaled to `size` px RGB PNGs; `small_class`
    keeps only a tenth of its training images (the validation split stays balanced)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    taken = {}
    for i in order:
        label = int(digits.target[i])
        n = taken.get(label, 0)
        if n >= per_class_train + per_class_val:
            continue
        taken[label] = n + 1
        if label == small_class and per_class_train // 10 <= n < per_class_train:
            continue  # left out of the small class
        split = "train" if n < per_class_train else "val"
        pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)
        image = Image.fromarray(pixels).resize((size, size), Image.BILINEAR).convert("RGB")
        path = root / split / str(label) / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    return root


def sample_tree(root: Path) -> Path:
    """The bundled FGVC-Aircraft sample (8 variants, 128 trainval / 64 test), as a class tree train/ and val/."""
    from fgvctune import convert

    convert("aircraft", REPO / "data" / "aircraft-sample", root / "tree", mode="copy")
    for old, new in (("trainval", "train"), ("test", "val")):
        (root / "tree" / old).rename(root / new)
    return root


DATASETS = {"digits": digits_tree, "sample": sample_tree}


# -- the two arms ----------------------------------------------------------------------------------------
def run_fgvctune(tree: Path, out: Path, seed: int, epochs: int, variant: str) -> dict:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in RECIPE.items()]
    command = [sys.executable, __file__, "--arm", "fgvctune", "--variant", variant, "--"]
    command += ["train", "-a", "folder", "-d", str(tree), "--no-pretrained", f"--epoch-size={epochs}"]
    command += [f"--seed={seed}", "-o", str(out), "--cache-dir", str(out.parent / "cache"), *flags]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"fgvctune failed ({out}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    lines = (out / "results.txt").read_text().splitlines()[1:]
    top1 = [float(line.split("\t")[3]) for line in lines]
    return {"top1": top1, "seconds": seconds}


def run_mindcv(tree: Path, out: Path, seed: int, epochs: int) -> dict:
    command = [sys.executable, __file__, "--arm", "mindcv", "--", str(tree), str(out), str(seed), str(epochs)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"MindCV's path failed ({out}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return {"top1": json.loads(out.read_text())["top1"], "seconds": seconds}


def mindcv_arm(tree: str, out: str, seed: int, epochs: int) -> None:
    """MindCV's training path, as its train.py runs it, with the recipe's settings: no fgvctune code."""
    import mindspore as ms
    from mindcv.data import create_dataset, create_loader, create_transforms
    from mindcv.loss import create_loss
    from mindcv.models import create_model
    from mindcv.optim import create_optimizer
    from mindcv.scheduler import create_scheduler
    from mindcv.utils import set_seed

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    set_seed(seed)
    r = RECIPE
    classes = len([p for p in (Path(tree) / "train").iterdir() if p.is_dir()])
    train = create_dataset(name="", root=tree, split="train", shuffle=True, num_parallel_workers=2)
    steps = train.get_dataset_size() // r["batch_size"]
    train_loader = create_loader(
        train,
        batch_size=r["batch_size"],
        drop_remainder=True,
        is_training=True,
        transform=create_transforms(dataset_name="", image_resize=r["image_resize"], is_training=True),
        num_classes=classes,
        num_parallel_workers=2,
    )
    val_loader = create_loader(
        create_dataset(name="", root=tree, split="val", shuffle=False, num_parallel_workers=2),
        batch_size=r["batch_size"],
        drop_remainder=False,
        is_training=False,
        transform=create_transforms(dataset_name="", image_resize=r["image_resize"], is_training=False),
        num_classes=classes,
        num_parallel_workers=2,
    )
    network = create_model(r["model"], num_classes=classes, pretrained=False)
    lr = create_scheduler(
        steps,
        scheduler=r["scheduler"],
        lr=r["lr"],
        min_lr=r["min_lr"],
        warmup_epochs=r["warmup_epochs"],
        decay_epochs=epochs - r["warmup_epochs"],
        num_epochs=epochs,
    )
    optimizer = create_optimizer(
        network.trainable_params(),
        opt=r["opt"],
        lr=lr,
        weight_decay=r["weight_decay"],
        weight_decay_filter="norm_and_bias",
    )
    loss = create_loss(name="CE", label_smoothing=r["label_smoothing"])
    model = ms.Model(network, loss_fn=loss, optimizer=optimizer, metrics={"top_1_accuracy"})
    top1 = []

    class Validate(ms.train.Callback):
        def on_train_epoch_end(self, run_context):
            top1.append(float(model.eval(val_loader, dataset_sink_mode=False)["top_1_accuracy"]))

    model.train(epochs, train_loader, callbacks=[Validate()], dataset_sink_mode=False)
    Path(out).write_text(json.dumps({"top1": top1}))


def patched_fgvctune(variant: str, argv: list[str]) -> None:
    """`fgvctune` with one departure switched off (a Python-level patch; nothing compiled is replaced)."""
    import itertools

    from fgvctune.cli import main
    from fgvctune.data import pipeline
    from fgvctune.kernels import swaps
    from fgvctune.models import dropout
    from fgvctune.training import trainer

    if variant == "mindspore-dropout":
        dropout.seeded_dropout = lambda network, seed: 0
    elif variant == "mindcv-pooling":
        swaps.faster_pooling = lambda network: 0
    elif variant == "warmup-factor-0":
        argv = [*argv, "--warmup-factor=0"]
    elif variant == "one-pipeline":
        build = trainer.Trainer._build_data

        def build_data(self):
            build(self)
            c, d = self.config, self.dataset
            tree = pipeline.class_tree(d, c) if c.read == "offline" else None
            batches = pipeline.loader(d, d.train_split, c, training=True, tree=tree, epoch=0)
            iterator = batches.create_tuple_iterator(num_epochs=c.epoch_size)
            self.train_batches = lambda epoch: itertools.islice(iterator, self.steps_per_epoch)

        trainer.Trainer._build_data = build_data
    elif variant != "fgvctune":
        raise SystemExit(f"unknown variant {variant}; choose from {', '.join(VARIANTS)}")
    sys.argv = ["fgvctune", *argv]
    main()


# -- figures ---------------------------------------------------------------------------------------------
def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1%} ± {100 * sd:.1f}"


def paired(a: list[float], b: list[float]) -> str:
    """Mean of a - b with its 95% interval (Student's t over the seeds)."""
    d = [x - y for x, y in zip(a, b)]
    if len(d) < 2:
        return f"{d[0]:+.1%}"
    half = T95.get(len(d) - 1, 1.96) * statistics.stdev(d) / math.sqrt(len(d))
    m = statistics.mean(d)
    return f"{m:+.1%} [{m - half:+.1%}, {m + half:+.1%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--datasets", default="digits,sample")
    parser.add_argument("--variants", default="", help=f"fgvctune arms besides plain: {', '.join(VARIANTS)}")
    parser.add_argument("--no-mindcv", action="store_true", help="only the fgvctune arms")
    parser.add_argument("--arm", choices=("fgvctune", "mindcv"), help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="fgvctune", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    rest = [a for a in rest if a != "--"]
    if args.arm == "fgvctune":
        return patched_fgvctune(args.variant, rest)
    if args.arm == "mindcv":
        tree, out, seed, epochs = rest
        return mindcv_arm(tree, out, int(seed), int(epochs))

    print(describe())
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    arms = ["fgvctune"] + [v for v in args.variants.split(",") if v] + ([] if args.no_mindcv else ["mindcv"])
    print(f"recipe: {RECIPE}, {args.epochs} epochs, seeds {seeds[0]}..{seeds[-1]}; arms: {', '.join(arms)}")
    for name in args.datasets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            tree = DATASETS[name](Path(tmp) / "data")
            images = sum(1 for _ in (tree / "train").glob("*/*"))
            classes = sum(1 for p in (tree / "train").iterdir() if p.is_dir())
            runs: dict[str, list[dict]] = {arm: [] for arm in arms}
            loads = []
            for seed in seeds:
                for arm in arms:
                    out = Path(tmp) / f"{arm}-{seed}"
                    if arm == "mindcv":
                        run = run_mindcv(tree, out.with_suffix(".json"), seed, args.epochs)
                    else:
                        run = run_fgvctune(tree, out, seed, args.epochs, arm)
                    runs[arm].append(run)
                    loads.append(load())
                    print(f"  {name} seed {seed} {arm}: final {run['top1'][-1]:.1%}, best {max(run['top1']):.1%}, "
                          f"{run['seconds']:.0f} s", flush=True)  # fmt: skip
        print(f"\n{name}: {images} training images, {classes} classes; loads {', '.join(sorted(set(loads)))}")
        final = {arm: [r["top1"][-1] for r in rs] for arm, rs in runs.items()}
        best = {arm: [max(r["top1"]) for r in rs] for arm, rs in runs.items()}
        rate = {arm: statistics.mean(images * args.epochs / r["seconds"] for r in rs) for arm, rs in runs.items()}
        reference = "mindcv" if "mindcv" in arms else None
        rows = []
        for arm in arms:
            against = reference if arm != "mindcv" and reference else None
            rows.append(
                [
                    arm,
                    mean_sd(final[arm]),
                    mean_sd(best[arm]),
                    paired(final[arm], final[against]) if against else "",
                    paired(final[arm], final["fgvctune"]) if arm not in ("fgvctune", "mindcv") else "",
                    f"{rate[arm]:.1f}",
                ]
            )
        print(
            table(
                ["arm", "final top-1", "best top-1", "final - MindCV [95% CI]", "final - fgvctune [95% CI]", "img/s"],
                rows,
            )
        )
        for arm in arms:
            print(f"  {arm}, final top-1 per seed: " + " ".join(f"{v:.3f}" for v in final[arm]))


if __name__ == "__main__":
    main()
