"""Training step and inference speed: fgvctune's MindSpore set-up against MindSpore's defaults and against
PyTorch with timm (eager), side by side in one run, each case in its own process.

    .venv/bin/python benchmarks/train_step.py [--steps 20]

PyTorch and timm are optional (`pip install -e ".[bench]"`); without them their rows say so.
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
from machine import describe, table  # noqa: E402

MODEL = "mobilenet_v3_small_100"
TIMM_MODEL = "mobilenetv3_small_100"
CASES = [("train", 224, 16), ("train", 64, 64), ("infer", 224, 64)]


def mindspore_case(kind: str, size: int, batch: int, steps: int, tuned: bool, pipeline: bool) -> float:
    import numpy as np

    if tuned:
        from fgvctune import runtime

        ms = runtime.start()
    else:
        import mindspore as ms

        ms.set_context(mode=ms.GRAPH_MODE)
    import mindcv

    from fgvctune.trainer import TrainStep

    if tuned:  # fgvctune's model: the faster pooling swapped in
        from fgvctune.model import create_network

        network, _ = create_network(MODEL, 100)
    else:
        network = mindcv.create_model(MODEL, num_classes=100)
    rng = np.random.default_rng(0)
    images = ms.Tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    labels = ms.Tensor(rng.integers(0, 100, batch).astype(np.int32))
    if kind == "infer":
        network.set_train(False)

        def step(x, y):
            return network(x)
    else:
        optimizer = mindcv.create_optimizer(network.trainable_params(), opt="momentum", lr=0.01)
        train_step = TrainStep(network, mindcv.create_loss("CE"), optimizer, ms.nn.Identity())
        train_step.set_train(True)
        step = train_step
    batches = None
    if pipeline:
        batches = _real_batches(size, batch)
    for _ in range(3):  # compile and warm up
        out = step(images, labels)
    _sync(out)
    started = time.perf_counter()
    for i in range(steps):
        if batches is not None:
            images, labels = next(batches)
        out = step(images, labels)
    _sync(out)
    return steps * batch / (time.perf_counter() - started)


def _sync(out):
    (out[0] if isinstance(out, tuple) else out).asnumpy()


def _real_batches(size: int, batch: int):
    """Batches from fgvctune's offline pipeline (randaug-m7-mstd0.5) over generated 400x300 JPEGs."""
    from machine import fgvc_tree

    from fgvctune.config import resolve
    from fgvctune.dataset import load_dataset
    from fgvctune.pipeline import class_tree, loader

    tmp = tempfile.mkdtemp()
    root = fgvc_tree(Path(tmp) / "fgvc", 2000, classes=100, size=(400, 300))
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


def torch_case(kind: str, size: int, batch: int, steps: int) -> float:
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model(TIMM_MODEL, num_classes=100)
    images, labels = torch.randn(batch, 3, size, size), torch.randint(0, 100, (batch,))
    if kind == "infer":
        model.eval()

        def step():
            with torch.no_grad():
                return model(images)
    else:
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            return loss

    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - started)


def run_case(args: list[str], env_changes: dict) -> str:
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    env.setdefault("GLOG_v", "3")
    result = subprocess.run([sys.executable, __file__, "--case", *args], capture_output=True, text=True, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        error = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return "not installed" if "No module named" in error else f"failed: {error[:60]}"
    return f"{json.loads(lines[-1])['images_per_second']:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--case", nargs="+")
    args = parser.parse_args()
    if args.case:
        framework, kind, size, batch = args.case[0], args.case[1], int(args.case[2]), int(args.case[3])
        if framework == "torch":
            rate = torch_case(kind, size, batch, args.steps)
        else:
            rate = mindspore_case(
                kind, size, batch, args.steps, tuned=framework != "mindspore", pipeline=framework == "fgvctune+pipeline"
            )
        print(json.dumps({"images_per_second": rate}))
        os._exit(0)  # skip MindSpore's noisy teardown
    print(describe())
    print(f"{MODEL} (timm: {TIMM_MODEL}), images per second, {args.steps} timed steps after 3 warm-up steps")
    rows = []
    for kind, size, batch in CASES:
        case = [kind, str(size), str(batch), "--steps", str(args.steps)]
        rows.append(
            [
                f"{kind} {size} px, batch {batch}",
                run_case(["mindspore", *case], {"ONEDNN_MAX_CPU_ISA": None}),
                run_case(["fgvctune", *case], {"ONEDNN_MAX_CPU_ISA": None}),
                run_case(["fgvctune+pipeline", *case], {"ONEDNN_MAX_CPU_ISA": None})
                if kind == "train" and size == 224
                else "-",
                run_case(["torch", *case], {}),
            ]
        )
    print(
        table(["case", "MindSpore defaults", "fgvctune", "fgvctune + input pipeline", "PyTorch + timm (eager)"], rows)
    )


if __name__ == "__main__":
    main()
