"""PyTorch weights (timm, torchvision, Hugging Face files) as MindCV checkpoints that compute the same function.

`import_weights` reads a `.safetensors`/`.pth`/`.pt`/`.bin` file safely (`fgvctune.weights.torchfile`), recognises
its model and naming (`fgvctune.weights.maps`), renames and reshapes every tensor onto MindCV's model, records
what MindCV's layers must change to compute what PyTorch's compute (`fgvctune.models.torchcompat`), and writes a
MindSpore checkpoint atomically, after checking that the converted network gives the source model's logits:
`torch_reference` runs the source model when torch (and timm or torchvision) can be imported, `compare` runs the
converted network on the same input, and the conversion fails if their logits differ.
`converted_checkpoint` converts the same way, cached and unchecked, for `--ckpt-path model.pth`.
`inspect_weights` needs no MindSpore: it reports what a file holds and which MindCV model it matches.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fgvctune.errors import ModelError
from fgvctune.fileio import cache_root, save_checkpoint
from fgvctune.weights import maps as weightmaps
from fgvctune.weights import torchfile

# The converted network's logits may differ from the source's by this fraction of their largest magnitude.
TOLERANCE = 1e-4
CHECK_INPUT = (2, 3, 224, 224)
# Part of the cache's file names: bump it when a mapping changes, so older conversions are not reused.
CONVERTER_VERSION = 1


@dataclass
class Inspection:
    """What a weight file holds and which MindCV model it matches."""

    file: torchfile.WeightFile
    mapping: weightmaps.Mapping | None
    problem: str = ""  # why no MindCV model matches

    @property
    def values(self) -> int:
        return sum(int(a.size) for a in self.file.tensors.values())

    def lines(self, every: bool = False) -> list[str]:
        f, m = self.file, self.mapping
        dtypes = Counter(f.stored.get(name, str(a.dtype)) for name, a in f.tensors.items())
        out = [
            f"file: {f.path}",
            f"format: {f.describe()}, {self.values:,} values ({', '.join(f'{k} {v}' for k, v in dtypes.items())})",
        ]
        if f.other:
            out.append(f"other checkpoint entries: {', '.join(f.other[:8])}{' ...' if len(f.other) > 8 else ''}")
        if m:
            head = f"{m.num_classes}-class classifier" if m.num_classes else "no classifier"
            out.append(f"naming: {m.family}; model: {m.source}, {head}")
            out.append(
                f"matches MindCV {m.model}: {len(m.names)} tensors map onto it"
                + (f", {len(m.ignored)} num_batches_tracked ignored" if m.ignored else "")
                + (f"; network settings: {m.settings()}" if m.network else "")
            )
            out.append(f"unused: {', '.join(m.unused) if m.unused else 'none'}")
        else:
            out.append(f"matches no MindCV model fgvctune converts: {self.problem}")
        names = list(f.tensors)
        shown = names if every or len(names) <= 12 else names[:6] + ["..."] + names[-4:]
        out.append("tensors:" if every or len(names) <= 12 else f"tensors (first and last; --all lists {len(names)}):")
        for name in shown:
            out.append(f"  {name}  {tuple(f.tensors[name].shape)}" if name != "..." else "  ...")
        return out


def inspect_weights(path: str | Path) -> Inspection:
    """Format, naming family, tensors and shapes of a weight file, and the MindCV model it matches."""
    file = torchfile.read(path)
    try:
        return Inspection(file, weightmaps.identify(_shapes(file)))
    except ModelError as exc:
        return Inspection(file, None, f"{exc.message} ({exc.hint})" if exc.hint else exc.message)


@dataclass
class Check:
    """The source model and the converted network run on the same seeded input."""

    library: str  # timm or torchvision
    max_difference: float
    scale: float  # the largest |logit| of the source
    same_argmax: bool

    @property
    def passed(self) -> bool:
        return self.same_argmax and self.max_difference <= TOLERANCE * self.scale


@dataclass
class Reference:
    """What the source model computed on an input: the logits the converted network must reproduce."""

    library: str  # timm or torchvision
    input: np.ndarray  # (N, 3, H, W) float32
    logits: np.ndarray


@dataclass
class Conversion:
    source: Path
    output: Path
    format: str
    mapping: weightmaps.Mapping
    tensors: int  # MindCV parameters written
    check: Check | None = None
    check_note: str = ""  # why there was no check
    missing: list[str] = field(default_factory=list)  # MindCV parameters the file lacks (only a classifier)


def import_weights(
    path: str | Path,
    model: str = "",
    output: str | Path | None = None,
    check: bool = True,
    verbose: bool = False,
    reference: Reference | None = None,
) -> Conversion:
    """Convert a PyTorch weight file into a MindCV checkpoint (default: beside it, `<name>-<model>.ckpt`).

    With `check`, the converted network must give the source model's logits on the same input (largest
    difference at most TOLERANCE of their scale, same argmax) or nothing is written. The source's logits are
    `reference` when given (computed elsewhere), else computed here when torch is importable (`torch_reference`).
    """
    from fgvctune import runtime

    path = Path(path)
    runtime.start(verbose, mode="pynative")
    conversion, entries = _convert(path, model)
    output = Path(output) if output else path.with_name(f"{path.stem}-{conversion.mapping.model}.ckpt")
    if output.suffix != ".ckpt":
        raise ModelError(f"--output {output} must end in .ckpt (a MindSpore checkpoint)")
    conversion.output = output
    output.parent.mkdir(parents=True, exist_ok=True)

    def checked(written: Path) -> None:  # before the rename: a conversion that fails its check is not written
        nonlocal reference
        if reference is None:
            reference, conversion.check_note = torch_reference(path, conversion.mapping)
        if reference is not None:
            c = conversion.check = compare(conversion.mapping, written, reference)
            if not c.passed:
                raise ModelError(
                    f"the converted {conversion.mapping.model} does not compute what {c.library}'s "
                    f"{conversion.mapping.source} computes: largest logit difference {c.max_difference:.3g} "
                    f"(tolerance {TOLERANCE * c.scale:.3g}){'' if c.same_argmax else ', other predictions'}",
                    hint="nothing was written; please report this file's source",
                )

    _save(entries, conversion.mapping, output, checked if check else None)
    return conversion


def converted_checkpoint(path: str | Path, model: str, cache_dir: str = "") -> Path:
    """A PyTorch file given to --ckpt-path, converted once into the cache (keyed by its contents)."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    folder = cache_root(cache_dir) / "weights"
    target = folder / f"{digest.hexdigest()[:16]}-{model}-v{CONVERTER_VERSION}.ckpt"
    if not target.is_file():
        conversion, entries = _convert(path, model)
        folder.mkdir(parents=True, exist_ok=True)
        _save(entries, conversion.mapping, target)
    return target


# -- conversion ------------------------------------------------------------------------------------------
def _shapes(file: torchfile.WeightFile) -> dict[str, tuple]:
    return {name: tuple(a.shape) for name, a in file.tensors.items()}


@functools.lru_cache(maxsize=8)
def _parameter_shapes(model: str, num_classes: int) -> dict[str, tuple]:
    """MindCV's parameters for the model, in order, read off a network built once per process."""
    import mindcv

    network = mindcv.create_model(model, num_classes=num_classes)
    return {name: tuple(p.shape) for name, p in network.parameters_and_names()}


def _convert(path: Path, model: str):
    """The file's tensors under MindCV's names and shapes, checked against the MindCV network itself."""
    file = torchfile.read(path)
    try:
        mapping = weightmaps.identify(_shapes(file))
    except ModelError as exc:
        raise ModelError(f"{path}: {exc.message}", hint=exc.hint) from None
    if model and model != mapping.model:
        raise ModelError(
            f"{path} holds {mapping.source} weights ({mapping.family} naming), which convert to MindCV's "
            f"{mapping.model}, not {model}",
            hint=f"use --model {mapping.model}",
        )
    own = _parameter_shapes(mapping.model, mapping.num_classes or 1000)
    entries = {}
    for src, dst in mapping.names.items():
        value = file.tensors[src]
        if dst not in own:
            raise ModelError(f"{path}: {src} maps to {dst}, which MindCV's {mapping.model} does not have")
        entries[dst] = _fit(path, src, value, dst, own[dst])
    missing = [name for name in own if name not in entries]
    if set(missing) - set(mapping.classifier):
        raise ModelError(
            f"{path} lacks weights for {len(missing)} of MindCV {mapping.model}'s parameters "
            f"({', '.join(missing[:3])}{'...' if len(missing) > 3 else ''})",
            hint="the file is incomplete or of another variant of the architecture",
        )
    ordered = {name: entries[name] for name in own if name in entries}
    return Conversion(path, Path(), file.format, mapping, len(ordered), missing=missing), ordered


def _fit(path: Path, src: str, value: np.ndarray, dst: str, shape: tuple) -> np.ndarray:
    """The source tensor in MindCV's shape: equal, or equal once size-1 axes are dropped (a 1x1 convolution
    as a Dense layer, torchvision's (C, 1, 1) layer scale as (C,)); any other difference is an error."""
    if not np.issubdtype(value.dtype, np.floating):
        raise ModelError(f"{path}: {src} holds {value.dtype} values where MindCV's {dst} needs float32")
    # Shapes first, values after: a file's tensor may be a view of a few bytes claiming any shape (torchfile.py).
    if tuple(value.shape) == shape:
        return value.astype(np.float32)
    squeeze = tuple(n for n in value.shape if n != 1)
    if squeeze == tuple(n for n in shape if n != 1):
        return value.astype(np.float32).reshape(shape)
    raise ModelError(
        f"{path}: {src} has shape {tuple(value.shape)}, MindCV's {dst} needs {shape}",
        hint="the file is of another variant of the architecture",
    )


def _save(entries: dict[str, np.ndarray], mapping: weightmaps.Mapping, target: Path, check=None) -> None:
    """The converted entries, with the network settings they need, written atomically (after `check`)."""
    import mindspore as ms

    from fgvctune.models.torchcompat import RECORD

    append = {RECORD: json.dumps(mapping.network, sort_keys=True)} if mapping.network else None
    parameters = [{"name": name, "data": ms.Tensor(value)} for name, value in entries.items()]
    save_checkpoint(target, parameters, append_dict=append, check=check)


# -- the check against the source model ----------------------------------------------------------------
def source_model(mapping: weightmaps.Mapping, num_classes: int):
    """The PyTorch model the weights come from, uninitialised, or (None, reason)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None, "torch is not installed"
    libraries = ["torchvision", "timm"] if mapping.family == weightmaps.EITHER else [mapping.family]
    for library in libraries:
        try:
            if library == "timm":
                import timm

                return (timm.create_model(mapping.source, pretrained=False, num_classes=num_classes), "timm"), ""
            import torchvision

            model = torchvision.models.get_model(mapping.source, weights=None, num_classes=num_classes)
            return (model, "torchvision"), ""
        except ImportError:
            continue
    return None, f"{' or '.join(libraries)} is not installed"


def torch_reference(path: Path, mapping: weightmaps.Mapping) -> tuple[Reference | None, str]:
    """The source model's logits for a seeded CHECK_INPUT, run with torch; or (None, why there are none)."""
    if not mapping.num_classes:
        return None, "the file has no classifier, so there are no logits to compare"
    built, note = source_model(mapping, mapping.num_classes)
    if built is None:
        return None, note
    import torch

    source, library = built
    tensors = torchfile.read(path).tensors
    own = source.state_dict()  # copies of only the tensors the model has: others may claim any size (torchfile.py)
    wanted = {k: v for k, v in tensors.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    missing, _ = source.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in wanted.items()}, False)
    if missing:
        return None, f"{library}'s {mapping.source} needs tensors the file lacks ({missing[0]}, ...)"
    x = np.random.default_rng(0).standard_normal(CHECK_INPUT, dtype=np.float32)
    with torch.no_grad():
        return Reference(library, x, source.eval()(torch.from_numpy(x)).numpy()), ""


def compare(mapping: weightmaps.Mapping, converted: Path, reference: Reference) -> Check:
    """The converted checkpoint's network, as fgvctune runs it, on the reference's input against its logits."""
    import mindspore as ms

    from fgvctune.models.checkpoint import load_weights
    from fgvctune.models.factory import apply_swaps
    from fgvctune.models.network import build_network

    network = build_network(mapping.model, mapping.num_classes)
    load_weights(network, converted, mapping.model)
    apply_swaps(network, seed=0)
    network.set_train(False)
    actual = network(ms.Tensor(reference.input)).asnumpy()
    expected = reference.logits
    return Check(
        reference.library,
        float(np.abs(actual - expected).max()),
        float(np.abs(expected).max()),
        bool((actual.argmax(1) == expected.argmax(1)).all()),
    )
