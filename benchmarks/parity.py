"""Learning parity: one recipe through `fgvctune train` and through MindCV's own path, over many seeds.

    .venv/bin/python benchmarks/parity.py [--seeds 8] [--epochs 15] [--datasets digits,sample]
    .venv/bin/python benchmarks/parity.py --variants one-pipeline,mindspore-dropout   # fgvctune's departures
    .venv/bin/python benchmarks/parity.py --finetune [--strategies full,freeze,probe] [--variants ...]
    .venv/bin/python benchmarks/parity.py --finetune --recipe defaults --variants old-defaults --no-scratch

The recipe is the one a new user tries: mobilenet_v3_small from scratch at 64 px, AdamW lr 0.003, weight decay
1e-4 (not on biases and norms), label smoothing 0.1, cosine decay with one warm-up epoch, batch 16. Both arms read
the same ImageNet-style class tree: fgvctune through its `folder` adapter, MindCV through create_dataset ->
create_transforms -> create_loader -> create_model -> Model.train (MindCV's and MindSpore's functions only,
`mindcv_arm` below). Every run is its own process. For each dataset the table gives each arm's final and best
top-1 over the seeds (mean and sample standard deviation), the per-seed paired difference fgvctune - MindCV with
its 95% confidence interval (Student's t), and each arm's images per second over the whole run (start-up,
compilation and evaluation included).

A variant switches one of fgvctune's departures from MindCV's path off in the fgvctune arm (VARIANTS, FLAGS), or
tries another recipe (FLAGS), so the effect of each can be measured the same way; variants are compared with plain
fgvctune, seed by seed.

With --finetune each dataset is a transfer task (TRANSFERS): a base run trained from scratch on related classes
(digits 0-4; the sample's 3 manufacturers), then, from its best.ckpt, each of the tutorial's strategies (full,
--freeze 7, --linear-probe) through fgvctune and through the tutorial's MindCV path (`tutorial_finetuning`), and
fgvctune from scratch on the same target (digits 5-9 with 8 training images each; the sample's 8 variants), all
with the recipe above. With --recipe defaults the fine-tuning arms are given no rate (only BARE of the recipe):
fgvctune's own fine-tuning recipe, against `old-defaults` (a rate given: the plain defaults) or other FLAGS.
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
    "mindcv-pooling": "MindCV's ReduceMean global pooling instead of the MatMul swap",
    "moving-frozen-norms": "frozen BatchNorms in training mode, their statistics moving (as in MindCV's path)",
}
# Variants that are flags added to the recipe: departures (MindCV's warm-up) and fine-tuning recipes to try.
FLAGS = {
    "warmup-factor-0": ["--warmup-factor=0"],  # from lr x 0 (MindCV's create_scheduler) instead of lr x 0.01
    "no-label-smoothing": ["--label-smoothing=0"],
    "milder-crops": ["--scale", "0.35", "1"],  # RandomResizedCrop's scale from 0.35 instead of 0.08
    "lp-ft": ["--unfreeze-after=3"],  # the head alone for 3 epochs, then the strategy (Kumar et al. 2022)
    "head-x10": ["--lr=0.0003", "--lr-mult", "classifier=10"],  # a tenth of the rate, the head's as before
    "layer-decay": ["--layer-decay=0.8"],
    "lr-0.001": ["--lr=0.001"],
    "warmup-3": ["--warmup-epochs=3"],
    "head-x10-only": ["--lr-mult", "classifier=10"],  # the head's rate ten times the rest
    "lp-ft-1": ["--unfreeze-after=1"],
    "warmup-1": ["--warmup-epochs=1"],
    "lr-0.01": ["--lr=0.01"],
    "adamw": ["--opt=adamw", "--lr=0.001", "--weight-decay=1e-4"],
    "head-x10+lp-ft-1": ["--lr-mult", "classifier=10", "--unfreeze-after=1"],
    "head-x10+warmup-1": ["--lr-mult", "classifier=10", "--warmup-epochs=1"],
    "label-smoothing": ["--label-smoothing=0.1"],
    "adamw-0.001": ["--opt=adamw", "--lr=0.001"],
    "adamw-0.003": ["--opt=adamw", "--lr=0.003"],
    "adamw-0.001-head-x10": ["--opt=adamw", "--lr=0.001", "--lr-mult", "classifier=10"],
    "adamw-0.0003-head-x10": ["--opt=adamw", "--lr=0.0003", "--lr-mult", "classifier=10"],
    "adamw-0.0003-head-x10-milder-crops": [
        "--opt=adamw",
        "--lr=0.0003",
        "--lr-mult",
        "classifier=10",
        "--scale",
        "0.35",
        "1",
    ],
    "old-defaults": ["--lr=0.002"],  # a rate given: fgvctune's defaults without the fine-tuning recipe
}
# With --recipe defaults the fgvctune arms are given only these of RECIPE (what a user types: no rate, fgvctune's
# own defaults); there is no MindCV arm, which needs the whole recipe.
BARE = ("model", "image_resize")
# Fine-tuning: the tutorial's strategies, by fgvctune's flags (MindCV's path: tutorial_finetuning).
FREEZE = 7
STRATEGIES = {"full": [], "freeze": [f"--freeze={FREEZE}"], "probe": ["--linear-probe"]}
# Student's t, two-sided 95%, by degrees of freedom.
T95 = {1: 12.71, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 19: 2.093, 24: 2.064, 29: 2.045}  # fmt: skip


# -- data ------------------------------------------------------------------------------------------------
def digits_tree(
    root: Path,
    per_class_train: int = 16,
    per_class_val: int = 8,
    size: int = 64,
    small_class: int | None = None,
    classes: range = range(10),
) -> Path:
    """scikit-learn's real handwritten digits (8x8) of `classes`, upscaled to `size` px RGB PNGs; `small_class`
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
        if label not in classes or n >= per_class_train + per_class_val:
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


def sample_tree(root: Path, level: str = "variant") -> Path:
    """The bundled FGVC-Aircraft sample (8 variants of 3 manufacturers, 128 trainval / 64 test), as a class tree
    train/ and val/ at `level`."""
    from fgvctune import convert

    convert("aircraft", REPO / "data" / "aircraft-sample", root / "tree", options={"level": level}, mode="copy")
    for old, new in (("trainval", "train"), ("test", "val")):
        (root / "tree" / old).rename(root / new)
    return root


DATASETS = {"digits": digits_tree, "sample": sample_tree}


def digits_transfer(root: Path) -> tuple[Path, Path]:
    """Digits split by class, with few images to fine-tune on: the base learns digits 0-4 (140 training images
    each), the target is digits 5-9 with 8 training images each (60 held out each)."""
    return digits_tree(root / "base", 140, 30, classes=range(5)), digits_tree(
        root / "target", 8, 60, classes=range(5, 10)
    )


def sample_transfer(root: Path) -> tuple[Path, Path]:
    """The demo's: the base learns the sample's 3 manufacturers, the target is its 8 variants."""
    return sample_tree(root / "base", "manufacturer"), sample_tree(root / "target")


# Fine-tuning tasks: the base's and the target's trees, and the epochs the base trains (from scratch, seed 0).
TRANSFERS = {"digits": (digits_transfer, 10), "sample": (sample_transfer, 30)}


# -- the two arms ----------------------------------------------------------------------------------------
def run_fgvctune(
    tree: Path, out: Path, seed: int, epochs: int, variant: str, base: str = "", strategy: str = "full", bare=False
) -> dict:
    """`fgvctune train` with the recipe (`bare`: only its BARE keys), from scratch or (`base`) fine-tuning that
    checkpoint by `strategy`."""
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in RECIPE.items() if k in BARE or not bare]
    command = [sys.executable, __file__, "--arm", "fgvctune", "--variant", variant, "--"]
    command += ["train", "-a", "folder", "-d", str(tree), "--no-pretrained", f"--epoch-size={epochs}"]
    command += [f"--seed={seed}", "-o", str(out), "--cache-dir", str(out.parent / "cache"), *flags]
    if base:
        command += ["--ckpt-path", base, *STRATEGIES[strategy]]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"fgvctune failed ({out}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    lines = (out / "results.txt").read_text().splitlines()[1:]
    top1 = [float(line.split("\t")[3]) for line in lines]
    return {"top1": top1, "seconds": seconds}


def run_mindcv(tree: Path, out: Path, seed: int, epochs: int, base: str = "", strategy: str = "full") -> dict:
    command = [sys.executable, __file__, "--arm", "mindcv", "--", str(tree), str(out), str(seed), str(epochs)]
    command += [base, strategy] if base else []
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"MindCV's path failed ({out}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return {"top1": json.loads(out.read_text())["top1"], "seconds": seconds}


def mindcv_arm(tree: str, out: str, seed: int, epochs: int, base: str = "", strategy: str = "full") -> None:
    """MindCV's training path, as its train.py runs it, with the recipe's settings: no fgvctune code. With a
    `base` checkpoint, fine-tuning as the tutorial writes it: the checkpoint loaded without the classifier's
    parameters, `requires_grad` False for what `strategy` freezes, the optimizer over the trainable parameters."""
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
    if base:
        tutorial_finetuning(network, base, strategy)
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


def tutorial_finetuning(network, base: str, strategy: str) -> None:
    """The tutorial's steps: its classifier's parameters deleted from the checkpoint, the rest loaded, then
    `requires_grad` False for the first FREEZE feature blocks (`freeze`) or all but the classifier (`probe`).
    One correction: a block is matched by its name and a dot ("features.1." does not match features.10), where
    the tutorial's `"features.1" in name` would freeze features.10-15 too."""
    import mindspore as ms
    from mindcv.models.registry import _model_pretrained_cfgs

    classifier = _model_pretrained_cfgs[RECIPE["model"]]["classifier"]
    weights = ms.load_checkpoint(base)
    for name in [n for n in weights if n.startswith(classifier + ".")]:
        del weights[name]
    missing, _ = ms.load_param_into_net(network, weights)
    assert sorted(missing) == [f"{classifier}.bias", f"{classifier}.weight"], missing  # nothing else left out
    frozen = tuple(f"features.{i}." for i in range(FREEZE))
    for param in network.trainable_params():
        if strategy == "probe" and not param.name.startswith(classifier + "."):
            param.requires_grad = False
        elif strategy == "freeze" and param.name.startswith(frozen):
            param.requires_grad = False


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
    elif variant in FLAGS:
        argv = [*argv, *FLAGS[variant]]
    elif variant == "moving-frozen-norms":  # neither kept in inference mode nor folded into their convolutions
        from fgvctune.kernels import fold
        from fgvctune.training import strategy

        apply, fold_all = strategy.apply, fold.fold
        strategy.apply = lambda network, plan: (apply(network, plan), [])[1]
        fold.fold = lambda network, frozen_only=False: fold.unfold(network) * 0 if frozen_only else fold_all(network)
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
        raise SystemExit(f"unknown variant {variant}; choose from {', '.join([*VARIANTS, *FLAGS])}")
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


def run_seeds(arms: dict, seeds: list[int], folder: Path, name: str) -> dict[str, list[dict]]:
    """Every arm (label -> run(out, seed)) for every seed, seed by seed, each run printed as it ends."""
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    for seed in seeds:
        for arm, run in arms.items():
            runs[arm].append(run(folder / f"{arm.replace(' ', '-')}-{seed}", seed))
            r = runs[arm][-1]
            print(f"  {name} seed {seed} {arm}: final {r['top1'][-1]:.1%}, best {max(r['top1']):.1%}, "
                  f"{r['seconds']:.0f} s, load {load()}", flush=True)  # fmt: skip
    return runs


def report(runs: dict[str, list[dict]], against: dict[str, str], images: int, epochs: int) -> None:
    """Each arm's final and best top-1 over the seeds, its paired difference from the arm `against` names, and
    its images per second over the whole run; then the final top-1 per seed."""
    final = {arm: [r["top1"][-1] for r in rs] for arm, rs in runs.items()}
    best = {arm: [max(r["top1"]) for r in rs] for arm, rs in runs.items()}
    rate = {arm: statistics.mean(images * epochs / r["seconds"] for r in rs) for arm, rs in runs.items()}
    rows = [
        [
            arm,
            mean_sd(final[arm]),
            mean_sd(best[arm]),
            f"{paired(final[arm], final[against[arm]])} vs {against[arm]}" if arm in against else "",
            f"{rate[arm]:.1f}",
        ]
        for arm in runs
    ]
    print(table(["arm", "final top-1", "best top-1", "final - other [95% CI]", "img/s"], rows))
    for arm in runs:
        print(f"  {arm}, final top-1 per seed: " + " ".join(f"{v:.3f}" for v in final[arm]))


def training(args, seeds: list[int]) -> None:
    """From scratch: fgvctune (and its variants) against MindCV's own training path."""
    arms = {"fgvctune": lambda out, seed: run_fgvctune(tree, out, seed, args.epochs, "fgvctune")}
    for variant in args.variants:
        arms[variant] = lambda out, seed, v=variant: run_fgvctune(tree, out, seed, args.epochs, v)
    if not args.no_mindcv:
        arms["mindcv"] = lambda out, seed: run_mindcv(tree, out.with_suffix(".json"), seed, args.epochs)
    against = {arm: "mindcv" if arm == "fgvctune" else "fgvctune" for arm in arms if arm != "mindcv"}
    for name in args.datasets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            tree = DATASETS[name](Path(tmp) / "data")
            images = sum(1 for _ in (tree / "train").glob("*/*"))
            classes = sum(1 for p in (tree / "train").iterdir() if p.is_dir())
            runs = run_seeds(arms, seeds, Path(tmp), name)
        print(f"\n{name}, from scratch: {images} training images ({classes} classes)")
        report(runs, {k: v for k, v in against.items() if v in arms}, images, args.epochs)


def finetuning(args, seeds: list[int]) -> None:
    """From one base checkpoint per task: each strategy through fgvctune (and its variants) and through the
    tutorial's MindCV path, and training from scratch, with the same recipe and epochs."""
    for name in args.datasets.split(","):
        make, base_epochs = TRANSFERS[name]
        with tempfile.TemporaryDirectory() as tmp:
            base_tree, tree = make(Path(tmp) / "data")
            base = run_fgvctune(base_tree, Path(tmp) / "base", 0, base_epochs, "fgvctune")
            checkpoint = str(Path(tmp) / "base" / "best.ckpt")
            images = sum(1 for _ in (tree / "train").glob("*/*"))
            classes = sum(1 for p in (tree / "train").iterdir() if p.is_dir())
            arms, against, bare = {}, {}, args.recipe == "defaults"
            for strategy in args.strategies.split(","):
                label = f"fgvctune {strategy}"
                arms[label] = lambda out, seed, s=strategy: run_fgvctune(
                    tree, out, seed, args.epochs, "fgvctune", checkpoint, s, bare
                )
                for variant in args.variants:
                    arms[f"{variant} {strategy}"] = lambda out, seed, s=strategy, v=variant: run_fgvctune(
                        tree, out, seed, args.epochs, v, checkpoint, s, bare
                    )
                    against[f"{variant} {strategy}"] = label
                if not args.no_mindcv and not bare:
                    arms[f"mindcv {strategy}"] = lambda out, seed, s=strategy: run_mindcv(
                        tree, out.with_suffix(".json"), seed, args.epochs, checkpoint, s
                    )
                    against[label] = f"mindcv {strategy}"
            if not args.no_scratch:
                arms["fgvctune scratch"] = lambda out, seed: run_fgvctune(tree, out, seed, args.epochs, "fgvctune")
            runs = run_seeds(arms, seeds, Path(tmp), name)
        print(
            f"\n{name}, fine-tuned: {images} training images ({classes} classes) from a base trained "
            f"{base_epochs} epochs (best top-1 {max(base['top1']):.1%})"
        )
        report(runs, against, images, args.epochs)
        scratch = [r["top1"][-1] for r in runs.get("fgvctune scratch", [])]
        for strategy in args.strategies.split(",") if scratch else ():
            tuned = [r["top1"][-1] for r in runs[f"fgvctune {strategy}"]]
            print(f"  fgvctune {strategy} - scratch: {paired(tuned, scratch)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--datasets", default="digits,sample")
    parser.add_argument("--finetune", action="store_true", help="fine-tune from a base checkpoint per dataset")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="with --finetune")
    parser.add_argument("--variants", default="", help=f"fgvctune arms besides plain: {', '.join([*VARIANTS, *FLAGS])}")
    parser.add_argument("--no-mindcv", action="store_true", help="only the fgvctune arms")
    parser.add_argument("--no-scratch", action="store_true", help="with --finetune: no arm from scratch")
    parser.add_argument(
        "--recipe", choices=("benchmark", "defaults"), default="benchmark", help="defaults: fgvctune given no rate"
    )
    parser.add_argument("--arm", choices=("fgvctune", "mindcv"), help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="fgvctune", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    rest = [a for a in rest if a != "--"]
    if args.arm == "fgvctune":
        return patched_fgvctune(args.variant, rest)
    if args.arm == "mindcv":
        tree, out, seed, epochs, *start = rest
        return mindcv_arm(tree, out, int(seed), int(epochs), *start)

    args.variants = [v for v in args.variants.split(",") if v]
    for variant in args.variants:
        if variant not in VARIANTS and variant not in FLAGS:
            raise SystemExit(f"unknown variant {variant}; choose from {', '.join([*VARIANTS, *FLAGS])}")
    print(describe())
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    given = {k: RECIPE[k] for k in BARE} if args.recipe == "defaults" else RECIPE
    print(f"recipe: {given}, {args.epochs} epochs, seeds {seeds[0]}..{seeds[-1]}")
    (finetuning if args.finetune else training)(args, seeds)


if __name__ == "__main__":
    main()
