"""Export a trained network for deployment (MindIR, or ONNX where MindSpore can), checked against the checkpoint."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fgvctune.data.dataset import LABELS_FILE
from fgvctune.errors import ModelError, UsageError
from fgvctune.fileio import atomic_write_bytes, written_as
from fgvctune.results import runfiles

FORMATS = {"MINDIR": ".mindir", "ONNX": ".onnx"}


@dataclass
class Export:
    path: Path
    labels: Path
    checked: int  # images whose exported and checkpoint predictions were compared
    max_difference: float


def export(
    run,
    fmt: str = "MINDIR",
    output: str | Path | None = None,
    checkpoint: str = "best",
    check: int = 8,
    verbose: bool = False,
) -> Export:
    from fgvctune.results.model import load_model

    fmt = fmt.upper()
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    model = load_model(run, checkpoint, verbose=verbose)  # starts MindSpore the fgvctune way
    import mindspore as ms

    from fgvctune.kernels import cells as kernels
    from fgvctune.kernels import fold, fuse

    fuse.unfuse(model.network)  # MindSpore's own ops: the file runs where fgvctune's kernels are not
    kernels.restore(model.network)
    out = Path(output) if output else model.checkpoint.parent / runfiles.EXPORT_FOLDER
    out.mkdir(parents=True, exist_ok=True)
    size = model.config.image_resize
    example = ms.Tensor(np.zeros((1, 3, size, size), np.float32))
    target = out / f"{model.config.model}{FORMATS[fmt]}"
    with written_as(target) as tmp, onnx_ready(model.network, fmt == "ONNX"):
        try:  # MindSpore adds the format's ending to the name it is given
            ms.export(model.network, example, file_name=str(tmp.with_suffix("")), file_format=fmt)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ModelError(
                f"MindSpore cannot export {model.config.model} as {fmt}: {str(exc).splitlines()[0]}",
                hint="use --format MINDIR",
            ) from None
    labels = out / LABELS_FILE
    atomic_write_bytes(labels, (model.checkpoint.parent / LABELS_FILE).read_bytes())

    fold.unfold(model.network)  # the check compares the folded export with the checkpoint's own network
    checked, difference = 0, 0.0
    exported = _runner(target, fmt) if check else None
    if exported:
        for image in _preprocessed(model, _check_samples(model, check)):
            mine, theirs = model.network(ms.Tensor(image[None])).asnumpy(), exported(image[None])
            if mine.argmax() != theirs.argmax():
                raise ModelError(f"exported model disagrees with {model.checkpoint} on an image")
            difference = max(difference, float(np.abs(mine - theirs).max()))
            checked += 1
    return Export(target, labels, checked, difference)


@contextmanager
def onnx_ready(network, onnx: bool):
    """The network with the cells MindSpore's ONNX exporter has no mapping for given a class that computes the same
    in ops it maps, put back afterwards (BatchNorm folding knows the blocks by their own class): hard swish and
    hard sigmoid (MobileNetV3's), and the in-place add that `out += identity` compiles to (MindCV's ResNet and
    ResNeSt blocks, given swaps.py's ResidualReLU end, which the CPU's swaps give them anyway)."""
    from fgvctune.kernels import swaps

    forms = _onnx_forms() if onnx else {}
    changed = [(cell, type(cell)) for _, cell in network.cells_and_names() if type(cell) in forms]
    for cell, kind in changed:
        cell.__class__ = forms[kind]
    summed = swaps.summed_blocks(network) if onnx else []
    try:
        yield
    finally:
        for cell, kind in changed + summed:
            cell.__class__ = kind
        for cell, _ in summed:
            delattr(cell, "residual")


def _onnx_forms() -> dict:
    from mindspore import nn, ops

    class HSwish(nn.HSwish):
        def construct(self, x):
            return x * ops.relu6(x + 3.0) / 6.0

    class HSigmoid(nn.HSigmoid):
        def construct(self, x):
            return ops.relu6(x + 3.0) / 6.0

    return {nn.HSwish: HSwish, nn.HSigmoid: HSigmoid}


def _runner(path: Path, fmt: str):
    """A function from a batch (numpy) to the exported model's logits; None when nothing here can run it."""
    if fmt == "MINDIR":
        import mindspore as ms
        from mindspore import nn

        graph = nn.GraphCell(ms.load(str(path)))
        return lambda batch: graph(ms.Tensor(batch)).asnumpy()
    try:
        import onnxruntime
    except ImportError:
        return None  # the CLI says the export went unchecked
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def _check_samples(model, count: int):
    from fgvctune.data.dataset import load_dataset

    c = model.config
    dataset = load_dataset(c.adapter, c.data_dir, [c.val_split], c.adapter_options, skip_bad=True)
    return dataset.splits[c.val_split][:count]


def _preprocessed(model, samples) -> list[np.ndarray]:
    """The evaluation transforms applied to a few samples, as the network sees them."""
    import mindspore.dataset as ds

    from fgvctune.data.pipeline import eval_transforms
    from fgvctune.data.source import COLUMNS, ImageSource

    c = model.config
    transform = eval_transforms(c)
    pipeline = ds.GeneratorDataset(ImageSource(samples, model.labels), column_names=COLUMNS, shuffle=False)
    pipeline = pipeline.map(transform, input_columns="image")
    return [row[0] for row in pipeline.create_tuple_iterator(output_numpy=True, num_epochs=1)]
