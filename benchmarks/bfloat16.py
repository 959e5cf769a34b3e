"""bfloat16 on the CPU: which of MindSpore's CPU kernels take it, and what the shipped architectures do with it.

    .venv/bin/python benchmarks/bfloat16.py [--models resnet50 ...] [--steps 3] [--kinds train infer]

Three tables, each case in its own process, under oneDNN capped at AVX2_VNNI (fgvctune's default here) and uncapped
at AVX512_CORE_BF16 (where oneDNN's bf16 kernels would be):
1. ops: a forward (and gradient) of each op the five architectures use, on a small bfloat16 tensor (PyNative);
2. models: float32 against `amp.auto_mixed_precision(network, level, dtype=bfloat16)` for O1, O2, O3 and auto,
   training a step at 224 px batch 16 and inference at batch 32 (random tensors), images per second or the error;
3. the elementwise ops that do take bfloat16: ten `a * b + a` on a 16x56x56x96 tensor, and the cast pair
   (float32 -> bfloat16 -> float32) amp puts around an op, in milliseconds (best of 5, interleaved).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import MODELS, describe, load, table  # noqa: E402

SIZE, TRAIN_BATCH, INFER_BATCH, CLASSES = 224, 16, 32, 100
ISAS = {"capped": "AVX2_VNNI", "uncapped": "AVX512_CORE_BF16"}
LEVELS = ["O1", "O2", "O3", "auto"]
SCRATCH = Path(os.environ.get("TMPDIR", "/tmp")) / "fgvctune-bfloat16"  # amp O1 writes rewritten code here


def _error(e: Exception) -> str:
    """MindSpore's message, shortened to the op that refused bfloat16."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip() and not line.startswith("---")]
    for line in lines:
        if line.startswith("Select CPU operator["):
            return "no bf16 kernel: " + line.split("[", 1)[1].split("]", 1)[0]
        if line.startswith("For primitive[") and "BFloat16" in line:
            return "no bf16 kernel: " + line.split("[", 1)[1].split("]", 1)[0]
        if "unregistered" in line:
            return line.replace("The kernel ", "no kernel: ").replace(" unregistered.", "")
    return (lines[0] if lines else type(e).__name__)[:60]


def ops_case() -> dict:
    from fgvctune import runtime

    ms = runtime.start(mode="pynative")
    import numpy as np
    from mindspore import nn, ops

    bf16 = ms.bfloat16
    rng = np.random.default_rng(0)

    def tensor(*shape):
        return ms.Tensor(rng.standard_normal(shape).astype(np.float32)).astype(bf16)

    x = tensor(2, 8, 8, 8)
    cells = {  # what the five architectures are made of
        "Conv2D": nn.Conv2d(8, 8, 3),
        "Conv2D depthwise": nn.Conv2d(8, 8, 3, group=8),
        "MatMul (Dense)": nn.Dense(8, 8),
        "BatchNorm": nn.BatchNorm2d(8),
        "LayerNorm": nn.LayerNorm((8,)),
        "ReLU": nn.ReLU(),
        "HSwish": nn.HSwish(),
        "HSigmoid": nn.HSigmoid(),
        "Sigmoid": nn.Sigmoid(),
        "Tanh": nn.Tanh(),
        "MaxPool": nn.MaxPool2d(3, 2),
        "ReduceMean": ops.ReduceMean(keep_dims=True),
        "ReduceSum": ops.ReduceSum(keep_dims=True),
        "Softmax": nn.Softmax(),
        "Add": ops.Add(),
        "Mul": ops.Mul(),
        "Transpose": ops.Transpose(),
    }
    extra = {"ReduceMean": ((2, 3),), "ReduceSum": ((2, 3),), "Add": (x,), "Mul": (x,), "Transpose": ((0, 2, 3, 1),)}
    results = {}
    for name, cell in cells.items():
        if isinstance(cell, nn.Cell):
            cell.to_float(bf16).set_train(True)
        inputs = (x.reshape(128, 8) if name in ("MatMul (Dense)", "LayerNorm", "Softmax") else x, *extra.get(name, ()))
        try:
            forward = f"runs ({cell(*inputs).dtype})"
        except Exception as e:  # noqa: BLE001 - the message is the result
            results[name] = (_error(e), "-")
            continue
        try:
            grad = ms.grad(lambda a, *rest: cell(a, *rest).astype(ms.float32).sum())(*inputs)  # noqa: B023
            results[name] = (forward, f"runs ({grad.dtype})")
        except Exception as e:  # noqa: BLE001
            results[name] = (forward, _error(e))
    return results


def model_case(model: str, kind: str, level: str, steps: int) -> dict:
    from fgvctune import runtime

    ms = runtime.start()
    import mindcv
    import numpy as np
    from mindspore import amp

    from fgvctune.models.factory import create_network
    from fgvctune.training.step import TrainStep

    batch = TRAIN_BATCH if kind == "train" else INFER_BATCH
    try:
        network, _ = create_network(model, CLASSES)
        if level != "fp32":
            os.chdir(os.environ["BF16_SCRATCH"])  # O1 rewrites the network's code into ./rewritten_network/
            network = amp.auto_mixed_precision(network, level, dtype=ms.bfloat16)
        rng = np.random.default_rng(0)
        images = ms.Tensor(rng.standard_normal((batch, 3, SIZE, SIZE)).astype(np.float32))
        labels = ms.Tensor(rng.integers(0, CLASSES, batch).astype(np.int32))
        if kind == "infer":
            network.set_train(False)

            def step(x, y):
                return network(x)
        else:
            optimizer = mindcv.create_optimizer(network.trainable_params(), opt="momentum", lr=0.01)
            step = TrainStep(network, mindcv.create_loss("CE"), optimizer, ms.nn.Identity())
            step.set_train(True)
        for _ in range(2):  # compile and warm up
            out = step(images, labels)
        _sync(out)
        started = time.perf_counter()
        for _ in range(steps):
            out = step(images, labels)
        _sync(out)
        return {"result": f"{steps * batch / (time.perf_counter() - started):.1f}"}
    except Exception as e:  # noqa: BLE001 - the message is the result
        return {"result": _error(e)}


def _sync(out):
    (out[0] if isinstance(out, tuple) else out).asnumpy()


def elementwise_case() -> dict:
    from fgvctune import runtime

    ms = runtime.start()
    import numpy as np
    from mindspore import nn, ops

    class Chain(nn.Cell):
        def construct(self, a, b):
            for _ in range(10):
                a = a * b + a
            return a

    class CastPair(nn.Cell):
        def construct(self, a):
            return ops.cast(ops.cast(a, ms.bfloat16), ms.float32)

    rng = np.random.default_rng(0)
    a, b = (ms.Tensor(rng.standard_normal((16, 56, 56, 96)).astype(np.float32) * 0.01) for _ in range(2))
    cases = {
        "float32 chain": (Chain(), (a, b)),
        "bfloat16 chain": (Chain(), (a.astype(ms.bfloat16), b.astype(ms.bfloat16))),
        "cast pair": (CastPair(), (a,)),
    }
    best = dict.fromkeys(cases, float("inf"))
    for round_ in range(6):  # round 0 compiles
        for name, (net, args) in cases.items():
            started = time.perf_counter()
            net(*args).astype(ms.float32).asnumpy()
            if round_:
                best[name] = min(best[name], time.perf_counter() - started)
    return {name: f"{seconds * 1000:.0f}" for name, seconds in best.items()}


def run_case(args: list[str], isa: str) -> dict:
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA=isa, GLOG_v="3", BF16_SCRATCH=str(SCRATCH))
    result = subprocess.run([sys.executable, __file__, "--case", *args], capture_output=True, text=True, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1][:60]}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--kinds", nargs="+", default=["train", "infer"], choices=["train", "infer"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case, after 2 warm-up steps")
    parser.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind = args.case[0]
        if kind == "ops":
            result = ops_case()
        elif kind == "elementwise":
            result = elementwise_case()
        else:
            result = model_case(args.case[1], args.case[2], args.case[3], args.steps)
        print(json.dumps(result), flush=True)
        os._exit(0)  # skip MindSpore's noisy teardown
    SCRATCH.mkdir(exist_ok=True)
    print(describe())

    print("\n1. bfloat16 in MindSpore's CPU kernels (forward / gradient of a small tensor)")
    ops = {cap: run_case(["ops"], isa) for cap, isa in ISAS.items()}
    rows = [[name, *ops["capped"][name], ops["uncapped"][name][0]] for name in ops["capped"]]
    print(table(["op", "forward, capped", "gradient, capped", "forward, uncapped"], rows))

    print(f"\n2. images per second at {SIZE} px, float32 against auto_mixed_precision(dtype=bfloat16), load each row")
    headers = ["model", "case", "float32", *(f"bf16 {level}" for level in LEVELS), "bf16 O1 uncapped", "load"]
    rows = []
    for model in args.models:
        for kind in args.kinds:
            batch = TRAIN_BATCH if kind == "train" else INFER_BATCH
            steps = ["--steps", str(args.steps)]
            row = [model, f"{kind}, batch {batch}"]
            for level in ["fp32", *LEVELS]:
                row.append(run_case(["model", model, kind, level, *steps], ISAS["capped"]).get("result", "failed"))
            row.append(run_case(["model", model, kind, "O1", *steps], ISAS["uncapped"]).get("result", "failed"))
            rows.append(row + [load()])
            print(table(headers, [rows[-1]]).splitlines()[-1], flush=True)  # progress, one row at a time
    print(table(headers, rows))

    print("\n3. the elementwise ops that take bfloat16: ms per call, best of 5")
    rows = []
    for cap, isa in ISAS.items():
        result = run_case(["elementwise"], isa)
        rows.append([f"{cap} ({isa})", *(result.get(k, "-") for k in ("float32 chain", "bfloat16 chain", "cast pair"))])
        rows[-1].append(load())
    print(table(["oneDNN", "10 x (a*b+a), float32", "same, bfloat16", "cast pair", "load"], rows))


if __name__ == "__main__":
    main()
