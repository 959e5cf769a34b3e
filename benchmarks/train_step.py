"""Training step and inference speed of the shipped architectures: fgvctune's MindSpore set-up against PyTorch with
timm (eager), side by side in one run, each case in its own process.

    .venv/bin/python benchmarks/train_step.py [--models resnet50 convnext_tiny] [--steps 5]
        [--kinds train freeze7 probe infer] [--defaults] [--pipeline] [--unfolded] [--without faster_convolution]

Random tensors at 224 px; training is a whole step (forward, loss, backward, momentum update) at batch 16,
inference a forward pass in inference mode at batch 32. `freeze7` trains with the first 7 feature blocks frozen
(`--freeze 7`), `probe` the classifier alone (`--linear-probe`), both set up through fgvctune's strategy as `train`
does, with the frozen blocks' BatchNorm folded into their convolutions; the `infer` row runs the folded network
`eval`, `predict` and `export` use (`--unfolded`: neither folds, to compare). `--without` leaves out the named
swaps of fgvctune's model (functions of fgvctune/kernels/swaps.py, or faster_ and a row of kernels/cells.py's
STAND_INS: faster_convolution), to measure what each one gains.
Each case starts once the 1-minute load is under 1.2 (the previous case's threads die down); a row's `load before`
is the highest load a case of it started at.
`--defaults` adds MindSpore's defaults (MindCV's model as it is, oneDNN uncapped; slow: minutes per model),
`--pipeline` the training step fed by fgvctune's input pipeline.
PyTorch and timm are optional (`pip install -e ".[bench]"`, or `--torch-python` naming another venv's python);
without them their column says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import MODELS, describe, settle, table  # noqa: E402

SIZE, TRAIN_BATCH, INFER_BATCH = 224, 16, 32
CLASSES = 100


def mindspore_case(
    model: str,
    kind: str,
    size: int,
    batch: int,
    steps: int,
    tuned: bool,
    pipeline: bool,
    folded: bool = True,
    without: tuple = (),
) -> float:
    step, images, labels = mindspore_step(model, kind, size, batch, tuned, folded, without)
    batches = _real_batches(size, batch) if pipeline else None
    for _ in range(2):  # compile and warm up
        out = step(images, labels)
    _sync(out)
    started = time.perf_counter()
    for _ in range(steps):
        if batches is not None:
            images, labels = next(batches)
        out = step(images, labels)
    _sync(out)
    return steps * batch / (time.perf_counter() - started)


def mindspore_step(
    model: str, kind: str, size: int, batch: int, tuned: bool = True, folded: bool = True, without: tuple = ()
):
    """One case's step(images, labels) and a batch of random tensors for it (also profile_ops.py's); `without`
    names swaps (functions of fgvctune.kernels.swaps, or faster_ and a row of cells.STAND_INS) left out of
    fgvctune's model."""
    import numpy as np

    if tuned:
        from fgvctune import runtime

        ms = runtime.start()
    else:
        import mindspore as ms

        ms.set_context(mode=ms.GRAPH_MODE)
    import mindcv

    from fgvctune.training.step import TrainStep

    if tuned:  # fgvctune's model, with its swaps and per-model settings
        from fgvctune.kernels import cells, swaps
        from fgvctune.models.factory import create_network

        for name in without:
            row = name[len("faster_") :] if name.startswith("faster_") else name
            if row in cells.STAND_INS:  # one of fgvctune's own kernels (this case's process alone)
                del cells.STAND_INS[row]
                continue
            getattr(swaps, name)  # a misspelt swap stops the case rather than measuring every swap
            setattr(swaps, name, lambda network, *cache_dir: 0)

        network, _ = create_network(model, CLASSES)
    else:
        network = mindcv.create_model(model, num_classes=CLASSES)
    rng = np.random.default_rng(0)
    images = ms.Tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    labels = ms.Tensor(rng.integers(0, CLASSES, batch).astype(np.int32))
    from fgvctune.kernels import fold
    from fgvctune.training import strategy

    if kind == "infer":
        network.set_train(False)
        if tuned and folded:
            fold.fold(network)  # as evaluation.load_model does

        def step(x, y):
            return network(x)
    else:
        frozen_norms = []
        if kind != "train":  # the frozen blocks as `train --freeze 7` / `--linear-probe` sets them up
            plan = strategy.plan(network, model, freeze="7" if kind == "freeze7" else "0", linear_probe=kind == "probe")
            frozen_norms = strategy.apply(network, plan)
            if tuned and folded:
                fold.fold(network, frozen_only=True)  # as trainer.build_step does
        optimizer = mindcv.create_optimizer(network.trainable_params(), opt="momentum", lr=0.01)
        train_step = TrainStep(network, mindcv.create_loss("CE"), optimizer, ms.nn.Identity())
        train_step.set_train(True)
        strategy.set_train_mode(network, True, frozen_norms)
        step = train_step
    return step, images, labels


def _sync(out):
    (out[0] if isinstance(out, tuple) else out).asnumpy()


def _real_batches(size: int, batch: int):
    """Batches from fgvctune's offline pipeline (randaug-m7-mstd0.5) over generated 400x300 JPEGs."""
    from machine import fgvc_tree

    from fgvctune.config import resolve
    from fgvctune.data.dataset import load_dataset
    from fgvctune.data.pipeline import class_tree, loader

    tmp = tempfile.mkdtemp()
    root = fgvc_tree(Path(tmp) / "fgvc", 2000, classes=CLASSES, size=(400, 300))
    config = resolve(
        adapter="aircraft",
        data_dir=str(root),
        image_resize=size,
        batch_size=batch,
        auto_augment="randaug-m7-mstd0.5",
        cache_dir=str(Path(tmp) / "cache"),
        num_parallel_workers=2,
    )
    dataset = load_dataset("aircraft", root, ["trainval"])
    dataset.train_split = "trainval"
    batches = loader(dataset, "trainval", config, training=True, tree=class_tree(dataset, config))
    while True:
        yield from batches.create_tuple_iterator(num_epochs=1)


def frozen_modules(network, model: str, kind: str) -> list:
    """The timm modules that MindCV's first 7 feature blocks (`--freeze 7`) or, with `--linear-probe`, the whole
    network (its classifier then unfrozen) correspond to. MindCV's blocks, from `fgvctune layers MODEL`, against
    timm's modules (the frozen parameter counts agree):
    - mobilenet_v3_*: features.0-2 are the stem conv, its BatchNorm and activation (timm: conv_stem, bn1, which holds
      the activation), features.3-6 the first four inverted-residual blocks (timm: the first four of `blocks`,
      counted across its stages);
    - resnet50: the stem (conv1, bn1, relu, max_pool), layer1.0-2 and layer2.0-2 (timm: the same names);
    - resnest50: conv1.0-6, the deep stem's three convolutions with their BatchNorms and activations (timm's
      resnest50d: conv1, the same seven-layer Sequential);
    - convnext_tiny: feature.0 the stem, feature.1/3/5 the first three stages' blocks, feature.2/4/6 the downsampling
      before stages 1, 2, 3 (timm: stem, stages[0..2] whole, each with its downsampling, and stages[3].downsample).
    """
    if kind == "probe":
        return [network]
    if model.startswith("mobilenet_v3"):
        return [network.conv_stem, network.bn1] + [block for stage in network.blocks for block in stage][:4]
    if model == "resnet50":
        return [network.conv1, network.bn1, *network.layer1[:3], *network.layer2[:3]]
    if model == "resnest50":
        return [network.conv1]
    if model == "convnext_tiny":
        return [network.stem, *network.stages[:3], network.stages[3].downsample]
    raise ValueError(f"no frozen-block mapping for {model}")


def torch_case(model: str, kind: str, size: int, batch: int, steps: int) -> float:
    import timm
    import torch

    torch.manual_seed(0)
    network = timm.create_model(MODELS[model], num_classes=CLASSES)
    images, labels = torch.randn(batch, 3, size, size), torch.randint(0, CLASSES, (batch,))
    if kind == "infer":
        network.eval()

        def step():
            with torch.no_grad():
                return network(images)
    else:
        network.train()
        if kind != "train":
            for module in frozen_modules(network, model, kind):
                module.requires_grad_(False)
                for part in module.modules():  # frozen BatchNorms run in inference mode, as fgvctune's do
                    if isinstance(part, torch.nn.modules.batchnorm._BatchNorm):
                        part.eval()
            if kind == "probe":
                network.get_classifier().requires_grad_(True)
        trainable = [p for p in network.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(trainable, lr=0.01, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            optimizer.zero_grad()
            loss = loss_fn(network(images), labels)
            loss.backward()
            optimizer.step()
            return loss

    for _ in range(2):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - started)


def run_case(python: str, args: list[str], env_changes: dict) -> tuple[str, float | None]:
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    env.setdefault("GLOG_v", "3")
    result = subprocess.run([python, __file__, "--case", *args], capture_output=True, text=True, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        error = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return ("not installed" if "No module named" in error else f"failed: {error[:60]}"), None
    rate = json.loads(lines[-1])["images_per_second"]
    return f"{rate:.1f}", rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument(
        "--kinds", nargs="+", default=["train", "infer"], choices=["train", "freeze7", "probe", "infer"]
    )
    parser.add_argument("--unfolded", action="store_true", help="fgvctune without BatchNorm folding, to compare")
    parser.add_argument("--without", nargs="+", default=[], help="swaps to leave out, e.g. faster_convolution")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per case, after 2 warm-up steps")
    parser.add_argument("--defaults", action="store_true", help="add MindSpore's defaults (slow)")
    parser.add_argument("--pipeline", action="store_true", help="add the training step fed by the input pipeline")
    parser.add_argument("--torch-python", default=sys.executable, help="the python that has torch and timm")
    parser.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        framework, model, kind, size, batch = args.case[0], args.case[1], args.case[2], *map(int, args.case[3:5])
        if framework == "torch":
            rate = torch_case(model, kind, size, batch, args.steps)
        else:
            tuned, pipeline = framework != "mindspore", framework == "fgvctune+pipeline"
            rate = mindspore_case(
                model, kind, size, batch, args.steps, tuned, pipeline, not args.unfolded, tuple(args.without)
            )
        print(json.dumps({"images_per_second": rate}))
        sys.stdout.flush()
        os._exit(0)  # skip MindSpore's noisy teardown
    print(describe())
    print(
        f"images per second at {SIZE} px (training batch {TRAIN_BATCH}, inference batch {INFER_BATCH}), "
        f"{args.steps} timed steps after 2 warm-up steps; target: fgvctune / PyTorch >= 1.0"
    )
    headers = ["model (timm)", "case"]
    headers += ["MindSpore defaults"] if args.defaults else []
    headers += ["fgvctune"] + (["fgvctune + input pipeline"] if args.pipeline else [])
    headers += ["PyTorch + timm (eager)", "fgvctune / PyTorch", "load before"]
    rows = []
    for model in args.models:
        for kind in args.kinds:
            batch = INFER_BATCH if kind == "infer" else TRAIN_BATCH
            case = [model, kind, str(SIZE), str(batch), "--steps", str(args.steps)]
            case += ["--unfolded"] if args.unfolded else []
            case += ["--without", *args.without] if args.without else []
            row = [f"{model} ({MODELS[model]})", f"{kind}, batch {batch}"]
            loads = []
            if args.defaults:
                loads.append(settle())
                row.append(run_case(sys.executable, ["mindspore", *case], {"ONEDNN_MAX_CPU_ISA": None})[0])
            loads.append(settle())
            ours, ours_rate = run_case(sys.executable, ["fgvctune", *case], {"ONEDNN_MAX_CPU_ISA": None})
            row.append(ours)
            if args.pipeline:
                loads.append(settle())
                fed = run_case(sys.executable, ["fgvctune+pipeline", *case], {"ONEDNN_MAX_CPU_ISA": None})[0]
                row.append(fed if kind != "infer" else "-")
            loads.append(settle())
            theirs, theirs_rate = run_case(args.torch_python, ["torch", *case], {})
            ratio = f"{ours_rate / theirs_rate:.2f}" if ours_rate and theirs_rate else "-"
            row += [theirs, ratio, max(loads, key=lambda value: float(value) if value != "?" else 0.0)]
            rows.append(row)
            print(table(headers, [row]).splitlines()[-1], flush=True)  # progress, one row at a time
    print(table(headers, rows))


if __name__ == "__main__":
    main()
