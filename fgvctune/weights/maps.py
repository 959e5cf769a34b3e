"""Which PyTorch model a state dict holds, and where each of its tensors goes in MindCV's model.

Plain Python over tensor names and shapes: no MindSpore, no torch. A naming family is recognised by
its names (timm's `conv_stem`/`blocks.S.B`, torchvision's `features.N`, ...), the exact architecture
by its structure (blocks per stage, widths), and every tensor is then mapped by module: a BatchNorm's
weight/bias/running_mean/running_var become MindSpore's gamma/beta/moving_mean/moving_variance, a
LayerNorm's weight/bias gamma/beta, convolution and linear layers keep weight/bias.

What differs beyond names (BatchNorm epsilon, padding, GELU) is listed in `Mapping.network`, which
`fgvctune.models.torchcompat` applies to the MindCV network.

Longer than 400 lines because it is one table of name rules per architecture family, read side by side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fgvctune.errors import ModelError

TIMM, TORCHVISION, EITHER = "timm", "torchvision", "timm or torchvision"

# MindCV model <- (naming family, the source's model name) for each pair fgvctune converts and tests.
SUPPORTED = {
    "mobilenet_v3_small_100": {TIMM: "mobilenetv3_small_100", TORCHVISION: "mobilenet_v3_small"},
    "mobilenet_v3_large_100": {TIMM: "mobilenetv3_large_100", TORCHVISION: "mobilenet_v3_large"},
    "resnet18": {TIMM: "resnet18", TORCHVISION: "resnet18"},
    "resnet34": {TIMM: "resnet34", TORCHVISION: "resnet34"},
    "resnet50": {TIMM: "resnet50", TORCHVISION: "resnet50"},
    "resnet101": {TIMM: "resnet101", TORCHVISION: "resnet101"},
    "convnext_tiny": {TIMM: "convnext_tiny", TORCHVISION: "convnext_tiny"},
    "mobilenet_v2_100": {TIMM: "mobilenetv2_100", TORCHVISION: "mobilenet_v2"},
    "efficientnet_b0": {TIMM: "efficientnet_b0", TORCHVISION: "efficientnet_b0"},
}

# How each MindCV architecture differs from PyTorch beyond names (see fgvctune.models.torchcompat).
_PYTORCH = {"padding": "pytorch"}
_TV_MOBILENET_V3 = {**_PYTORCH, "bn_eps": 1e-3}
_CONVNEXT = {**_PYTORCH, "gelu": "exact"}


@dataclass
class Mapping:
    """A state dict recognised: its family and model, and each tensor's place in the MindCV model."""

    family: str  # timm, torchvision, or "timm or torchvision" where both name alike
    source: str  # the model's name in timm / torchvision (timm.create_model, torchvision.models.get_model)
    model: str  # the MindCV model
    names: dict[str, str]  # source tensor -> MindCV parameter
    classifier: list[str]  # MindCV names of the final classifier (dropped for another class count)
    num_classes: int | None  # the source classifier's class count; None for a file without one
    network: dict = field(default_factory=dict)  # settings for fgvctune.models.torchcompat
    ignored: list[str] = field(default_factory=list)  # bookkeeping tensors (BatchNorm's num_batches_tracked)
    unused: list[str] = field(default_factory=list)  # source tensors with no place in the MindCV model

    def describe(self) -> str:
        return f"{self.source} ({self.family} naming) -> MindCV {self.model}"

    def settings(self) -> str:
        """The network settings in words, e.g. "BatchNorm epsilon 0.001, PyTorch padding"."""
        words = {"padding": lambda v: f"{'PyTorch' if v == 'pytorch' else v} padding", "gelu": lambda v: f"{v} GELU"}
        words["bn_eps"] = lambda v: f"BatchNorm epsilon {v:g}"
        return ", ".join(words[key](value) for key, value in sorted(self.network.items()))


def identify(shapes: dict[str, tuple]) -> Mapping:
    """The mapping for a state dict given as {name: shape} in the file's order."""
    names = list(shapes)
    first = names[0] if names else ""
    if not names:
        raise ModelError("the file holds no tensors")
    if re.match(r"(resnet|convnext|convnextv2|mobilenet_v2|efficientnet)\.", first):
        raise ModelError(
            f"these weights use Hugging Face transformers' naming ({first}), which fgvctune does not convert",
            hint="use the timm or torchvision weights of the model (e.g. the timm/ repositories on the Hub)",
        )
    if "layer1.0.conv1.weight" in shapes and ("conv1.weight" in shapes or "conv1.0.weight" in shapes):
        return _resnet(shapes)  # conv1.0: timm's deep stems (resnet50d, ...)
    if "conv_stem.weight" in shapes and any(n.startswith("blocks.0.0.") for n in names):
        return _timm_mobile(shapes)
    if "stem.0.weight" in shapes and any(n.startswith("stages.0.blocks.0.conv_dw.") for n in names):
        return _timm_convnext(shapes)
    if "features.0.0.weight" in shapes:
        if "features.1.0.block.0.weight" in shapes and "features.1.0.layer_scale" in shapes:
            return _torchvision_convnext(shapes)
        return _torchvision_mobile(shapes)
    if first.endswith(("moving_mean", "gamma")) or any(n.endswith(".moving_variance") for n in names):
        raise ModelError("these tensors already carry MindSpore's names", hint="save them as a .ckpt file")
    raise ModelError(
        f"the tensor names ({', '.join(names[:3])}, ...) are neither timm's nor torchvision's for a model fgvctune "
        "converts",
        hint="supported: " + ", ".join(SUPPORTED),
    )


# -- mapping by module ---------------------------------------------------------------------------------
_BATCH_NORM = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
_LAYER_NORM = {"weight": "gamma", "bias": "beta"}


class _Builder:
    def __init__(self, shapes: dict[str, tuple]):
        self.shapes = shapes
        self.names: dict[str, str] = {}
        self.ignored: list[str] = []

    def has(self, name: str) -> bool:
        return name in self.shapes

    def module(self, src: str, dst: str, required: bool = True) -> None:
        """Map the tensors of module `src` (its direct weight, bias, statistics) onto module `dst`."""
        tensors = [n for n in self.shapes if n.startswith(src + ".") and "." not in n[len(src) + 1 :]]
        if not tensors:
            if required:
                raise ModelError(f"the file has no tensors for {src} (expected by its architecture)")
            return
        if f"{src}.running_mean" in self.shapes:
            table = _BATCH_NORM
        elif len(self.shapes.get(f"{src}.weight", ())) == 1:
            table = _LAYER_NORM
        else:
            table = {"weight": "weight", "bias": "bias"}
        for name in tensors:
            leaf = name[len(src) + 1 :]
            if leaf == "num_batches_tracked":
                self.ignored.append(name)
            elif leaf in table:
                self.names[name] = f"{dst}.{table[leaf]}"

    def tensor(self, src: str, dst: str) -> None:
        if src not in self.shapes:
            raise ModelError(f"the file has no tensor {src} (expected by its architecture)")
        self.names[src] = dst

    def finish(self, family, source, model, classifier_src, classifier, network) -> Mapping:
        unused = [n for n in self.shapes if n not in self.names and n not in self.ignored]
        num_classes = self.shapes[classifier_src][0] if classifier_src in self.shapes else None
        return Mapping(family, source, model, self.names, classifier, num_classes, dict(network), self.ignored, unused)


def _indices(names, pattern: str) -> list[int]:
    """The distinct integers a regex's first group takes over the names, sorted."""
    found = {int(m.group(1)) for m in (re.match(pattern, n) for n in names) if m}
    return sorted(found)


def _unsupported(what: str, family: str, architecture: str):
    """Refuse a variant of an architecture fgvctune converts, naming it and the variants it converts instead."""
    naming = TIMM if family == TIMM else TORCHVISION
    instead = [source[naming] for model, source in SUPPORTED.items() if model.startswith(architecture)]
    raise ModelError(
        f"these {family} weights are {what}, which fgvctune does not convert",
        hint=f"of this architecture fgvctune converts {', '.join(instead)}",
    )


def _model_for(family: str, model: str) -> str:
    source = SUPPORTED[model]
    return source[TORCHVISION] if family in (TORCHVISION, EITHER) else source[TIMM]


# -- ResNet: timm and torchvision name it alike ----------------------------------------------------------
# timm's deep stems (timm/models/resnet.py): three 3x3 convolutions, conv1.0/.3/.6, named by the first one's width
# and by whether shortcuts downsample by average pooling (their convolution then sits at downsample.1).
_DEEP_STEMS = {(32, False): "c", (32, True): "d", (64, False): "s", (64, True): "e"}


def _resnet_name(shapes, kind: str, depths: tuple) -> tuple[str, str, str]:
    """timm's name for the ResNet the shapes describe (resnet50, resnet50d, resnext50_32x4d, seresnet152, ...),
    that name with the structure in words, and the naming family (only timm has deep stems and attention)."""
    depth = (3 if kind == "bottleneck" else 2) * sum(depths) + 2
    words = f"a ResNet with {kind} blocks {depths}"
    width, per_group = shapes["layer1.0.conv2.weight"][:2]
    base, suffix = "resnet", ""
    if width // per_group > 1:
        base, suffix = "resnext", f"_{width // per_group}x{per_group}d"
        words += f", {width // per_group} groups of {per_group} channels"
    elif width != 64:
        base, suffix = "wide_resnet", f"_{width // 64}"
        words += f", {width} channels wide in layer1"
    attention = next((a for key, a in (("fc1", "se"), ("conv", "eca")) if f"layer1.0.se.{key}.weight" in shapes), "")
    if attention:
        words += f", {attention.upper()} attention"
    letter = ""
    if "conv1.0.weight" in shapes:
        first, second = shapes["conv1.0.weight"][0], shapes["conv1.3.weight"][0]
        average = "layer2.0.downsample.2.running_mean" in shapes
        letter = "t" if first != second else _DEEP_STEMS.get((first, average), "")
        if not letter:
            return "", f"{words} and a deep stem of widths {first}, {second}", TIMM
        words += f", a {'tiered ' if letter == 't' else ''}deep stem"
        if average:
            words += ", average-pool downsampling"
    elif shapes["conv1.weight"] != (64, 3, 7, 7):
        return "", f"{words} and a stem of shape {shapes['conv1.weight']}", EITHER
    name = f"{attention}{base}{depth}{letter}{suffix}"
    return name, f"{name} ({words})", TIMM if letter or attention else EITHER


def _resnet(shapes) -> Mapping:
    b = _Builder(shapes)
    kind = "bottleneck" if b.has("layer1.0.conv3.weight") else "basic"
    depths = tuple(len(_indices(shapes, rf"layer{s}\.(\d+)\.")) for s in range(1, 5))
    model, what, family = _resnet_name(shapes, kind, depths)
    if model not in SUPPORTED:
        _unsupported(what, family, "resnet")
    b.module("conv1", "conv1")
    b.module("bn1", "bn1")
    for s in range(1, 5):
        for i in range(depths[s - 1]):
            block = f"layer{s}.{i}"
            for k in range(1, 4 if kind == "bottleneck" else 3):
                b.module(f"{block}.conv{k}", f"{block}.conv{k}")
                b.module(f"{block}.bn{k}", f"{block}.bn{k}")
            b.module(f"{block}.downsample.0", f"{block}.down_sample.0", required=False)
            b.module(f"{block}.downsample.1", f"{block}.down_sample.1", required=False)
    b.module("fc", "classifier", required=False)
    extra = [name for name in shapes if name.startswith("layer") and name not in b.names and name not in b.ignored]
    if extra:  # a block with more than MindCV's has (another kind of attention, ...)
        _unsupported(f"a ResNet with layers {model} lacks ({extra[0]}, ...)", EITHER, "resnet")
    return b.finish(EITHER, model, model, "fc.weight", ["classifier.weight", "classifier.bias"], _PYTORCH)


# -- MobileNetV2/V3 and EfficientNet: stem, inverted-residual blocks, head --------------------------------
@dataclass
class _Block:
    expand: tuple[str, str] | None  # (conv, norm) module prefixes
    dw: tuple[str, str]
    se: tuple[str, str, str] | None  # (module, reduce child, expand child)
    project: tuple[str, str]


@dataclass
class _Mobile:
    stem: tuple[str, str]
    stages: list[list[_Block]]
    head: tuple[str, str]  # the last 1x1 convolution and its norm, before pooling
    pre_logits: str | None  # MobileNetV3's Dense between pooling and classifier
    classifier: str

    def blocks(self) -> list[_Block]:
        return [block for stage in self.stages for block in stage]


def _timm_mobile(shapes) -> Mapping:
    names = list(shapes)
    stages, head = [], None
    for s in _indices(names, r"blocks\.(\d+)\."):
        stage = []
        for i in _indices(names, rf"blocks\.{s}\.(\d+)\."):
            p = f"blocks.{s}.{i}"
            se = (f"{p}.se", "conv_reduce", "conv_expand") if f"{p}.se.conv_reduce.weight" in shapes else None
            if f"{p}.conv_pwl.weight" in shapes:  # InvertedResidual
                stage.append(
                    _Block(
                        (f"{p}.conv_pw", f"{p}.bn1"), (f"{p}.conv_dw", f"{p}.bn2"), se, (f"{p}.conv_pwl", f"{p}.bn3")
                    )
                )
            elif f"{p}.conv_dw.weight" in shapes:  # DepthwiseSeparableConv
                stage.append(_Block(None, (f"{p}.conv_dw", f"{p}.bn1"), se, (f"{p}.conv_pw", f"{p}.bn2")))
            elif f"{p}.conv.weight" in shapes and head is None:  # ConvBnAct: MobileNetV3's last 1x1 conv
                head = (f"{p}.conv", f"{p}.bn1")
            else:
                _unsupported(f"a model with a block {p} of a kind MindCV's MobileNets lack", TIMM, "mobilenet")
        if stage:
            stages.append(stage)
    if head is not None:  # MobileNetV3: conv_head is a 1x1 convolution with bias after pooling
        mobile = _Mobile(("conv_stem", "bn1"), stages, head, "conv_head", "classifier")
        arch = "mobilenet_v3"
    else:
        mobile = _Mobile(("conv_stem", "bn1"), stages, ("conv_head", "bn2"), None, "classifier")
        arch = "efficientnet" if any(block.se for block in mobile.blocks()) else "mobilenet_v2"
    return _mobile_mapping(shapes, mobile, arch, TIMM)


def _torchvision_mobile(shapes) -> Mapping:
    names = list(shapes)
    features = _indices(names, r"features\.(\d+)\.")
    last = features[-1]
    if "features.1.block.0.0.weight" in shapes:
        arch, containers = "mobilenet_v3", [[f"features.{k}.block"] for k in features[1:-1]]
    elif "features.1.conv.0.0.weight" in shapes:
        arch, containers = "mobilenet_v2", [[f"features.{k}.conv"] for k in features[1:-1]]
    elif "features.1.0.block.0.0.weight" in shapes:
        arch = "efficientnet"
        containers = [
            [f"features.{k}.{i}.block" for i in _indices(names, rf"features\.{k}\.(\d+)\.")] for k in features[1:-1]
        ]
    else:
        raise ModelError(
            f"these torchvision-style weights ({names[1]}, ...) are not of a model fgvctune converts",
            hint="supported: " + ", ".join(SUPPORTED),
        )
    stages = [[_torchvision_block(shapes, c) for c in stage] for stage in containers]
    if arch == "mobilenet_v2":  # every block is its own stage in torchvision's list; MindCV's list is flat too
        stages = [[block for stage in stages for block in stage]]
    pre_logits = "classifier.0" if arch == "mobilenet_v3" else None
    classifier = "classifier.3" if arch == "mobilenet_v3" else "classifier.1"
    mobile = _Mobile(
        ("features.0.0", "features.0.1"), stages, (f"features.{last}.0", f"features.{last}.1"), pre_logits, classifier
    )
    return _mobile_mapping(shapes, mobile, arch, TORCHVISION)


def _torchvision_block(shapes, container: str) -> _Block:
    """torchvision's blocks are lists of Conv2dNormActivation (conv .0, norm .1), SqueezeExcitation
    (fc1, fc2) and, in MobileNetV2's projection, a bare conv followed by a bare BatchNorm."""
    units, se, pending = [], None, None
    for j in _indices(shapes, rf"{re.escape(container)}\.(\d+)\."):
        p = f"{container}.{j}"
        if f"{p}.0.weight" in shapes and f"{p}.1.weight" in shapes:
            units.append((f"{p}.0", f"{p}.1"))
        elif f"{p}.fc1.weight" in shapes:
            se = (p, "fc1", "fc2")
        elif f"{p}.running_mean" in shapes and pending:
            units.append((pending, p))
            pending = None
        elif len(shapes.get(f"{p}.weight", ())) == 4:
            pending = p
        else:
            raise ModelError(f"unexpected layer {p} in a torchvision block")
    if len(units) == 3:
        return _Block(units[0], units[1], se, units[2])
    if len(units) == 2:
        return _Block(None, units[0], se, units[1])
    raise ModelError(f"unexpected block layout at {container}: {len(units)} convolution layers")


def _mobile_signature(shapes, mobile: _Mobile, arch: str) -> str | None:
    depths = tuple(len(stage) for stage in mobile.stages)
    stem = shapes[f"{mobile.stem[0]}.weight"][0]
    head = shapes[f"{mobile.head[0]}.weight"][0]
    if arch == "mobilenet_v3":
        pre = shapes[f"{mobile.pre_logits}.weight"][0]
        return {(11, 16, 576, 1024): "mobilenet_v3_small_100", (15, 16, 960, 1280): "mobilenet_v3_large_100"}.get(
            (sum(depths), stem, head, pre)
        )
    if arch == "mobilenet_v2":
        return "mobilenet_v2_100" if (sum(depths), stem, head) == (17, 32, 1280) else None
    return _EFFICIENTNETS.get((depths, head))


# EfficientNet-B0 to B7 by (blocks per stage, head width): B1 and up scale B0's depth and width (timm and
# torchvision alike). Only B0 converts; the others are named in the error.
_EFFICIENTNETS = {
    ((1, 2, 2, 3, 3, 4, 1), 1280): "efficientnet_b0",
    ((2, 3, 3, 4, 4, 5, 2), 1280): "efficientnet_b1",
    ((2, 3, 3, 4, 4, 5, 2), 1408): "efficientnet_b2",
    ((2, 3, 3, 5, 5, 6, 2), 1536): "efficientnet_b3",
    ((2, 4, 4, 6, 6, 8, 2), 1792): "efficientnet_b4",
    ((3, 5, 5, 7, 7, 9, 3), 2048): "efficientnet_b5",
    ((3, 6, 6, 8, 8, 11, 3), 2304): "efficientnet_b6",
    ((4, 7, 7, 10, 10, 13, 4), 2560): "efficientnet_b7",
}


_ARCHITECTURES = {"mobilenet_v3": "a MobileNetV3", "mobilenet_v2": "a MobileNetV2", "efficientnet": "an EfficientNet"}


def _mobile_mapping(shapes, mobile: _Mobile, arch: str, family: str) -> Mapping:
    model = _mobile_signature(shapes, mobile, arch)
    if model not in SUPPORTED:
        words = f"{_ARCHITECTURES[arch]} with blocks per stage {tuple(len(stage) for stage in mobile.stages)}"
        _unsupported(f"{model} ({words})" if model else words, family, arch)
    b = _Builder(shapes)
    b.module(mobile.stem[0], "features.0")
    b.module(mobile.stem[1], "features.1")
    if arch == "efficientnet":  # MindCV keeps the stages: features.<3 + stage>.<block>.block.<layer>
        places = [f"features.{3 + s}.{i}.block" for s, stage in enumerate(mobile.stages) for i in range(len(stage))]
        after = 3 + len(mobile.stages)
    else:  # MobileNets list the blocks flat: features.<3 + block>.layers.<layer>
        places = [f"features.{3 + i}.layers" for i in range(len(mobile.blocks()))]
        after = 3 + len(places)
    for block, place in zip(mobile.blocks(), places):
        # MindCV's block is one flat list: [conv, norm, act] to expand, [conv, norm, act] depthwise, SE, [conv, norm].
        at = 0
        for unit in (block.expand, block.dw):
            if unit:
                b.module(unit[0], f"{place}.{at}")
                b.module(unit[1], f"{place}.{at + 1}")
                at += 3
        if block.se:
            module, reduce, expand = block.se
            b.module(f"{module}.{reduce}", f"{place}.{at}.conv_reduce")
            b.module(f"{module}.{expand}", f"{place}.{at}.conv_expand")
            at += 1
        b.module(block.project[0], f"{place}.{at}")
        b.module(block.project[1], f"{place}.{at + 1}")
    b.module(mobile.head[0], f"features.{after}")
    b.module(mobile.head[1], f"features.{after + 1}")
    if arch == "mobilenet_v3":
        b.module(mobile.pre_logits, "classifier.0")  # a 1x1 convolution in timm, a Linear in torchvision
        head = "classifier.3"
    else:
        head = "mlp_head" if arch == "efficientnet" else "classifier.1"
    b.module(mobile.classifier, head, required=False)
    network = _TV_MOBILENET_V3 if (arch, family) == ("mobilenet_v3", TORCHVISION) else _PYTORCH
    return b.finish(
        family,
        _model_for(family, model),
        model,
        f"{mobile.classifier}.weight",
        [f"{head}.weight", f"{head}.bias"],
        network,
    )


# -- ConvNeXt -------------------------------------------------------------------------------------------
# The sizes timm and torchvision build, by (blocks per stage, first stage's width); only tiny converts.
_CONVNEXTS = {
    ((2, 2, 6, 2), 40): "atto",
    ((2, 2, 6, 2), 48): "femto",
    ((2, 2, 6, 2), 64): "pico",
    ((2, 2, 8, 2), 80): "nano",
    ((3, 3, 9, 3), 96): "tiny",
    ((3, 3, 27, 3), 96): "small",
    ((3, 3, 27, 3), 128): "base",
    ((3, 3, 27, 3), 192): "large",
    ((3, 3, 27, 3), 256): "xlarge",
    ((3, 3, 27, 3), 352): "huge",
    ((3, 4, 30, 3), 384): "xxlarge",
}


def _convnext_model(depths, dim, family, v2: bool = False) -> str:
    size = _CONVNEXTS.get((depths, dim))
    model = f"{'convnextv2' if v2 else 'convnext'}_{size}" if size else ""
    if model not in SUPPORTED:
        words = f"a {'ConvNeXt V2' if v2 else 'ConvNeXt'} with depths {depths} and width {dim}"
        _unsupported(f"{model} ({words})" if model else words, family, "convnext")
    return model


def _timm_convnext(shapes) -> Mapping:
    names = list(shapes)
    depths = tuple(len(_indices(names, rf"stages\.{s}\.blocks\.(\d+)\.")) for s in range(4))
    v2 = "stages.0.blocks.0.mlp.grn.weight" in shapes  # ConvNeXt V2's global response norm
    model = _convnext_model(depths, shapes["stem.0.weight"][0], TIMM, v2)
    b = _Builder(shapes)
    b.module("stem.0", "feature.0.0")
    b.module("stem.1", "feature.0.1")
    for s in range(4):
        if s:
            b.module(f"stages.{s}.downsample.0", f"feature.{2 * s}.0")
            b.module(f"stages.{s}.downsample.1", f"feature.{2 * s}.1")
        for i in range(depths[s]):
            src, dst = f"stages.{s}.blocks.{i}", f"feature.{2 * s + 1}.{i}"
            b.module(f"{src}.conv_dw", f"{dst}.dwconv")
            b.module(f"{src}.norm", f"{dst}.norm")
            b.module(f"{src}.mlp.fc1", f"{dst}.pwconv1")
            b.module(f"{src}.mlp.fc2", f"{dst}.pwconv2")
            b.tensor(f"{src}.gamma", f"{dst}.gamma_")
    b.module("head.norm", "norm")
    b.module("head.fc", "classifier", required=False)
    return b.finish(
        TIMM, _model_for(TIMM, model), model, "head.fc.weight", ["classifier.weight", "classifier.bias"], _CONVNEXT
    )


def _torchvision_convnext(shapes) -> Mapping:
    names = list(shapes)
    depths = tuple(len(_indices(names, rf"features\.{2 * s + 1}\.(\d+)\.")) for s in range(4))
    model = _convnext_model(depths, shapes["features.0.0.weight"][0], TORCHVISION)
    b = _Builder(shapes)
    b.module("features.0.0", "feature.0.0")
    b.module("features.0.1", "feature.0.1")
    for s in range(4):
        if s:
            b.module(f"features.{2 * s}.0", f"feature.{2 * s}.0")
            b.module(f"features.{2 * s}.1", f"feature.{2 * s}.1")
        for i in range(depths[s]):
            src, dst = f"features.{2 * s + 1}.{i}", f"feature.{2 * s + 1}.{i}"
            b.module(f"{src}.block.0", f"{dst}.dwconv")
            b.module(f"{src}.block.2", f"{dst}.norm")
            b.module(f"{src}.block.3", f"{dst}.pwconv1")
            b.module(f"{src}.block.5", f"{dst}.pwconv2")
            b.tensor(f"{src}.layer_scale", f"{dst}.gamma_")  # (C, 1, 1) in torchvision, (C,) in MindCV
    b.module("classifier.0", "norm")
    b.module("classifier.2", "classifier", required=False)
    return b.finish(
        TORCHVISION,
        _model_for(TORCHVISION, model),
        model,
        "classifier.2.weight",
        ["classifier.weight", "classifier.bias"],
        _CONVNEXT,
    )
