"""Training step and inference speed of the shipped architectures: fgvctune's MindSpore set-up against PyTorch with
timm at its fastest on a CPU, and against ONNX Runtime for inference, side by side in one run, each case in its own
process.

    .venv/bin/python benchmarks/train_step.py [--models resnet50 convnext_tiny] [--steps 5]
        [--kinds train freeze7 probe infer latency] [--variants eager channels_last compile compile_channels_last]
        [--defaults] [--pipeline] [--unfolded] [--without faster_convolution]

Random tensors at 224 px; training is a whole step (forward, loss, backward, momentum update) at batch 16,
inference a forward pass in inference mode at batch 32 (`infer`) and at batch 1 (`latency`). `freeze7` trains with
the first 7 feature blocks frozen (`--freeze 7`), `probe` the classifier alone (`--linear-probe`), both set up
through fgvctune's strategy as `train` does, with the frozen blocks' BatchNorm folded into their convolutions; the
inference rows run the network `eval` and `predict` use, folded and fused (`--unfolded`: neither, to compare).
`--without` leaves out the named swaps of fgvctune's model (functions of fgvctune/kernels/swaps.py, else faster_ and
a row of kernels/cells.py's STAND_INS: faster_convolution), to measure what each one gains.

PyTorch runs timm's model of the same architecture four ways (`--variants`): eager, channels-last (model and input
in torch.channels_last), `torch.compile` (inductor) and both; `/ PyTorch` is fgvctune against the fastest of them.
The inference rows add ONNX Runtime (CPU provider, default threads) on the ONNX file fgvctune exports of its model
(folded, MindSpore's own ops, as `fgvctune export --format ONNX` writes it) and on timm's model exported by
`torch.onnx.export`; `/ ORT` is fgvctune against the faster of the two.

Columns besides speed: `% fp32 peak` is the step's floating-point work (convolutions and matrix products, forward
and backward as the step needs them, counted with hooks on timm's model: flops_case) per second over the
cores' fp32 peak (cores x clock x FLOPs per cycle: machine.fp32_peak, printed first with an FMA loop's figure
beside it). `compile` is the first step's time less a steady step's (graph compilation, torch.compile's
inductor with an empty cache, ONNX Runtime's session). `RSS` is the case process's peak resident memory during
the timed steps (`steps`) and over its whole life, import and compilation included (`case`), in MiB, for
fgvctune and for the fastest PyTorch variant.

Each case starts once the 1-minute load is under 1.2 (the previous case's threads die down); a row's `load before`
is the highest load a case of it started at.
`--defaults` adds MindSpore's defaults (MindCV's model as it is, oneDNN uncapped; slow: minutes per model),
`--pipeline` the training step fed by fgvctune's input pipeline.
PyTorch, timm and ONNX Runtime are optional (`pip install -e ".[bench]"`, or `--torch-python` naming another venv's
python); without them their columns say so.
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
from machine import MODELS, describe, fp32_peak, settle, table  # noqa: E402

SIZE, TRAIN_BATCH, INFER_BATCH = 224, 16, 32
CLASSES = 100
BATCHES = {"train": TRAIN_BATCH, "freeze7": TRAIN_BATCH, "probe": TRAIN_BATCH, "infer": INFER_BATCH, "latency": 1}
VARIANTS = ["eager", "channels_last", "compile", "compile_channels_last"]
INFERENCE = ("infer", "latency")


def _peak_rss(reset: bool = False) -> float:
    """The process's peak resident memory so far (MiB); `reset` starts a new peak from what is resident now."""
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    if reset:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    return peak


def measure(step, steps: int, batch: int) -> dict:
    """Time `step()` (which waits for its result): the first call (compilation) and a second warm-up, then
    `steps` timed calls, with the peak memory of the timed calls and of the whole process."""
    started = time.perf_counter()
    step()
    first = time.perf_counter() - started
    step()
    before = _peak_rss(reset=True)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - started
    during = _peak_rss()
    return {
        "images_per_second": steps * batch / elapsed,
        "compile_seconds": max(first - elapsed / steps, 0.0),
        "rss_steps_mb": during,
        "rss_case_mb": max(before, during),
    }


def mindspore_case(model, kind, size, batch, steps, tuned, pipeline, folded=True, without=()) -> dict:
    step, images, labels = mindspore_step(model, kind, size, batch, tuned, folded, without)
    batches = _real_batches(size, batch) if pipeline else None

    def call():
        nonlocal images, labels
        if batches is not None:
            images, labels = next(batches)
        out = step(images, labels)
        (out[0] if isinstance(out, tuple) else out).asnumpy()

    return measure(call, steps, batch)


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

        left_out = set()  # rows of cells.STAND_INS: fgvctune's own kernels (this case's process alone)
        for name in without:
            row = name[len("faster_") :] if name.startswith("faster_") else name
            if not hasattr(swaps, name) and row in cells.STAND_INS:
                left_out.add(row)
                continue
            getattr(swaps, name)  # a misspelt swap stops the case rather than measuring every swap
            setattr(swaps, name, lambda network, *cache_dir: 0)
        swap = cells.swap
        cells.swap = lambda network, row, *args, **kwargs: 0 if row in left_out else swap(network, row, *args, **kwargs)

        network, _ = create_network(model, CLASSES)
    else:
        network = mindcv.create_model(model, num_classes=CLASSES)
    rng = np.random.default_rng(0)
    images = ms.Tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    labels = ms.Tensor(rng.integers(0, CLASSES, batch).astype(np.int32))
    from fgvctune.kernels import fuse
    from fgvctune.training import strategy

    if kind in INFERENCE:
        network.set_train(False)
        if tuned and folded:
            fuse.fold_and_fuse(network)  # as evaluation.load_model does

        def step(x, y):
            return network(x)
    else:
        frozen_norms = []
        if kind != "train":  # the frozen blocks as `train --freeze 7` / `--linear-probe` sets them up
            plan = strategy.plan(network, model, freeze="7" if kind == "freeze7" else "0", linear_probe=kind == "probe")
            frozen_norms = strategy.apply(network, plan)
            if tuned and folded:
                fuse.fold_and_fuse(network, frozen_only=True)  # as trainer.build_step does
        optimizer = mindcv.create_optimizer(network.trainable_params(), opt="momentum", lr=0.01)
        train_step = TrainStep(network, mindcv.create_loss("CE"), optimizer, ms.nn.Identity())
        train_step.set_train(True)
        strategy.set_train_mode(network, True, frozen_norms)
        step = train_step
    return step, images, labels


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


def timm_network(model: str, kind: str):
    """timm's model of the architecture, set up for the case: inference mode, or training with the same blocks
    frozen as fgvctune freezes (frozen BatchNorm in inference mode, as fgvctune's)."""
    import timm
    import torch

    torch.manual_seed(0)
    network = timm.create_model(MODELS[model], num_classes=CLASSES)
    if kind in INFERENCE:
        return network.eval()
    network.train()
    if kind != "train":
        for module in frozen_modules(network, model, kind):
            module.requires_grad_(False)
            for part in module.modules():
                if isinstance(part, torch.nn.modules.batchnorm._BatchNorm):
                    part.eval()
        if kind == "probe":
            network.get_classifier().requires_grad_(True)
    return network


def torch_case(model: str, kind: str, size: int, batch: int, steps: int, variant: str) -> dict:
    import torch

    network = timm_network(model, kind)
    images, labels = torch.randn(batch, 3, size, size), torch.randint(0, CLASSES, (batch,))
    if "channels_last" in variant:
        network = network.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(network) if variant.startswith("compile") else network
    if kind in INFERENCE:

        def step():
            with torch.inference_mode():
                return forward(images)
    else:
        optimizer = torch.optim.SGD([p for p in network.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            optimizer.zero_grad()
            loss = loss_fn(forward(images), labels)
            loss.backward()
            optimizer.step()
            return loss

    return measure(step, steps, batch)


def flops_case(model: str, kind: str, size: int) -> dict:
    """Floating-point operations per image of the case's step: the convolutions and matrix products of timm's
    model (a multiply-add is two), each once forward and, in training, once more for its weight's gradient when
    the weight trains and once more for its input's gradient when autograd computes that (so frozen blocks before
    the first trainable layer count forward only). Hooks count them, as PyTorch's FlopCounterMode counts a
    grouped convolution's backward as a dense one's."""
    import torch

    network, batch, total = timm_network(model, kind), 2, [0.0]

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            work = 2.0 * output.numel() * module.in_channels // module.groups * module.weight[0, 0].numel()
        else:
            work = 2.0 * output.numel() * module.in_features
        total[0] += work
        if torch.is_grad_enabled():
            total[0] += work * (module.weight.requires_grad + inputs[0].requires_grad)

    for module in network.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            module.register_forward_hook(count)
    with torch.set_grad_enabled(kind not in INFERENCE):
        network(torch.randn(batch, 3, size, size))
    return {"flops_per_image": total[0] / batch}


def onnx_case(model: str, kind: str, size: int, batch: int, steps: int, exporter: str) -> dict:
    """ONNX Runtime on fgvctune's export of its model (`fgvctune`) or on timm's model exported by PyTorch
    (`timm`), at the case's fixed batch size."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        if exporter == "fgvctune":
            _export_fgvctune(model, size, batch, path)
        else:
            import torch

            images = torch.randn(batch, 3, size, size)
            torch.onnx.export(timm_network(model, kind), (images,), str(path), dynamo=False, opset_version=17)
        import numpy as np
        import onnxruntime

        started = time.perf_counter()
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        opened = time.perf_counter() - started
        feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal((batch, 3, size, size))}
        feed = {name: array.astype(np.float32) for name, array in feed.items()}
        result = measure(lambda: session.run(None, feed), steps, batch)
    result["compile_seconds"] += opened  # the session's graph optimisation is ONNX Runtime's compilation
    return result


def _export_fgvctune(model: str, size: int, batch: int, path: Path) -> None:
    """What `fgvctune export --format ONNX` writes: the folded network with MindSpore's own ops."""
    import numpy as np

    from fgvctune import runtime
    from fgvctune.kernels import cells, fold
    from fgvctune.models.factory import create_network
    from fgvctune.results.export import onnx_ready

    ms = runtime.start()
    network, _ = create_network(model, CLASSES)
    network.set_train(False)
    fold.fold(network)
    cells.restore(network)
    example = ms.Tensor(np.zeros((batch, 3, size, size), np.float32))
    with onnx_ready(network, onnx=True):
        ms.export(network, example, file_name=str(path.with_suffix("")), file_format="ONNX")


def run_case(python: str, args: list[str], env_changes: dict) -> tuple[str, dict]:
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    env.setdefault("GLOG_v", "3")
    with tempfile.TemporaryDirectory() as cache:  # torch.compile starts cold, as fgvctune's graph compiles anew
        env["TORCHINDUCTOR_CACHE_DIR"] = cache
        result = subprocess.run([python, __file__, "--case", *args], capture_output=True, text=True, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        error = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return ("not installed" if "No module named" in error else f"failed: {error[:60]}"), {}
    figures = json.loads(lines[-1])
    rate = figures.get("images_per_second")
    return (f"{rate:.1f}" if rate else "-"), figures


def _number(figures: dict, key: str, form: str = "{:.1f}") -> str:
    return form.format(figures[key]) if key in figures else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--kinds", nargs="+", default=["train", "infer", "latency"], choices=list(BATCHES))
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS, help="PyTorch's ways to run")
    parser.add_argument("--no-onnx", action="store_true", help="leave out ONNX Runtime")
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
        if framework == "flops":
            figures = flops_case(model, kind, size)
        elif framework.startswith("torch:"):
            figures = torch_case(model, kind, size, batch, args.steps, framework.split(":")[1])
        elif framework.startswith("onnx:"):
            figures = onnx_case(model, kind, size, batch, args.steps, framework.split(":")[1])
        else:
            tuned, pipeline = framework != "mindspore", framework == "fgvctune+pipeline"
            figures = mindspore_case(
                model, kind, size, batch, args.steps, tuned, pipeline, not args.unfolded, tuple(args.without)
            )
        print(json.dumps(figures))
        sys.stdout.flush()
        os._exit(0)  # skip MindSpore's noisy teardown

    print(describe())
    settle()
    peak = fp32_peak()
    print(
        f"fp32 peak: {peak['cores']} cores x {peak['ghz']:.2f} GHz (measured, every core busy) x "
        f"{peak['flops_per_cycle']} FLOPs per cycle ({peak['per_cycle_why']}) = {peak['gflops']:.0f} GFLOP/s; "
        f"an FMA loop on every core reaches {peak['measured_gflops']:.0f}"
    )
    print(
        f"images per second at {SIZE} px (training batch {TRAIN_BATCH}, inference batch {INFER_BATCH}, latency "
        f"batch 1), {args.steps} timed steps after 2 warm-up steps; target: fgvctune / fastest PyTorch >= 1.0, "
        "fgvctune / ONNX Runtime >= 1.0"
    )
    onnx = not args.no_onnx
    names = {
        "eager": "eager",
        "channels_last": "channels-last",
        "compile": "compile",
        "compile_channels_last": "compile + CL",
    }
    speed_headers = ["model (timm)", "case"]
    speed_headers += ["MindSpore defaults"] if args.defaults else []
    speed_headers += ["fgvctune"] + (["fgvctune + input pipeline"] if args.pipeline else [])
    speed_headers += [f"PyTorch {names[v]}" for v in args.variants]
    speed_headers += ["ORT (fgvctune's ONNX)", "ORT (timm's ONNX)"] if onnx else []
    speed_headers += ["/ PyTorch"] + (["/ ORT"] if onnx else []) + ["% fp32 peak", "load before"]
    cost_headers = ["model", "case", "compile: fgvctune"]
    cost_headers += [f"compile: PyTorch {names[v]}" for v in args.variants if v.startswith("compile")]
    cost_headers += ["compile: ORT (fgvctune's, timm's)"] if onnx else []
    cost_headers += ["RSS steps: fgvctune", "RSS steps: PyTorch", "RSS case: fgvctune", "RSS case: PyTorch"]
    speed_rows, cost_rows = [], []
    for model in args.models:
        for kind in args.kinds:
            batch = BATCHES[kind]
            case = [model, kind, str(SIZE), str(batch), "--steps", str(args.steps)]
            case += ["--unfolded"] if args.unfolded else []
            case += ["--without", *args.without] if args.without else []
            row = [f"{model} ({MODELS[model]})", f"{kind}, batch {batch}"]
            loads = []

            def timed(python, framework, env=None):
                loads.append(settle())
                return run_case(python, [framework, *case], env or {})

            work = run_case(args.torch_python, ["flops", *case], {})[1].get("flops_per_image")
            if args.defaults:
                row.append(timed(sys.executable, "mindspore", {"ONEDNN_MAX_CPU_ISA": None})[0])
            ours, mine = timed(sys.executable, "fgvctune", {"ONEDNN_MAX_CPU_ISA": None})
            row.append(ours)
            if args.pipeline:
                fed = timed(sys.executable, "fgvctune+pipeline", {"ONEDNN_MAX_CPU_ISA": None})[0]
                row.append(fed if kind not in INFERENCE else "-")
            theirs = {variant: timed(args.torch_python, f"torch:{variant}") for variant in args.variants}
            row += [cell for cell, _ in theirs.values()]
            ort = {}
            if onnx:
                for exporter in ("fgvctune", "timm"):
                    ort[exporter] = timed(args.torch_python, f"onnx:{exporter}") if kind in INFERENCE else ("-", {})
                row += [cell for cell, _ in ort.values()]
            rate = mine.get("images_per_second")
            rates = {v: f["images_per_second"] for v, (_, f) in theirs.items() if f}
            fastest = max(rates, key=rates.get) if rates else None
            row.append(f"{rate / rates[fastest]:.2f}" if rate and fastest else "-")
            if onnx:
                best_ort = max((f["images_per_second"] for _, f in ort.values() if f), default=None)
                row.append(f"{rate / best_ort:.2f}" if rate and best_ort else "-")
            row.append(f"{rate * work / 1e9 / peak['gflops']:.0%}" if rate and work else "-")
            row.append(max(loads, key=lambda value: float(value) if value != "?" else 0.0))
            speed_rows.append(row)
            print(table(speed_headers, [row]).splitlines()[-1], flush=True)  # progress, one row at a time

            best = theirs[fastest][1] if fastest else {}
            cost = [model, kind, _number(mine, "compile_seconds")]
            cost += [_number(f, "compile_seconds") for v, (_, f) in theirs.items() if v.startswith("compile")]
            if onnx:
                cost.append(" / ".join(_number(f, "compile_seconds", "{:.2f}") for _, f in ort.values()))
            cost += [_number(mine, "rss_steps_mb", "{:.0f}"), _number(best, "rss_steps_mb", "{:.0f}")]
            cost += [_number(mine, "rss_case_mb", "{:.0f}"), _number(best, "rss_case_mb", "{:.0f}")]
            cost_rows.append(cost)
            if work:
                print(f"  {model} {kind}: {work / 1e9:.2f} GFLOP per image; fastest PyTorch: {fastest}", flush=True)
    print(table(speed_headers, speed_rows))
    print("\ncompile seconds (first step less a steady one) and peak resident memory (MiB; PyTorch: its fastest way)")
    print(table(cost_headers, cost_rows))


if __name__ == "__main__":
    main()
