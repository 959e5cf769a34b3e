"""Fused ResNet blocks (oneDNN convolutions with their ReLU and residual sum, on blocked tensors), fused
MobileNetV3 layers (a convolution with its activation, a squeeze-excitation, a projection with its residual sum, one
op each) and ConvNeXt blocks (channels last, each Dense layer's bias in its product, the layer scale folded) compute
what the folded network computes, in PyNative and graph mode, at any batch size, and unfuse back."""

from __future__ import annotations

import numpy as np
import pytest

from fgvctune import runtime

ms = runtime.start(mode="pynative")
from mindcv.models import convnext  # noqa: E402
from mindspore import nn, ops  # noqa: E402
from same_computation import assert_same_computation, pair, trained_statistics  # noqa: E402

from fgvctune.kernels import cells, channels_last, fold, fuse, pooling, swaps  # noqa: E402
from fgvctune.kernels.build import library  # noqa: E402

pytestmark = pytest.mark.usefixtures("pynative")


def folded(network):
    swaps.apply(network)
    trained_statistics(network)
    network.set_train(False)
    fold.fold(network)


def blocks(network) -> list:
    return [cell for _, cell in network.cells_and_names() if type(cell) in (*fuse.FUSED, *fuse.FUSED.values())]


def test_blocked_layout_is_onednns_and_back():
    """ToBlocked writes (N, C, H, W) as oneDNN's nChw16c, (N, C / 16, H, W, 16); ToPlain reads it back."""
    to_blocked, to_plain = (
        ops.Custom(f"{library()}:{name}", out_shape=lambda x: x, out_dtype=lambda x: x, func_type="aot")
        for name in ("ToBlocked", "ToPlain")
    )
    x = np.random.default_rng(0).standard_normal((2, 48, 5, 3)).astype(np.float32)
    blocked = to_blocked(ms.Tensor(x)).asnumpy()
    want = x.reshape(2, 3, 16, 5, 3).transpose(0, 1, 3, 4, 2)
    np.testing.assert_array_equal(blocked.reshape(-1), want.reshape(-1))
    np.testing.assert_array_equal(to_plain(ms.Tensor(blocked)).asnumpy(), x)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_fused_blocks_compute_what_the_folded_ones_do(name):
    """Every block fused, the stem and the four layers one chain: the stem's convolution (with its ReLU) writes
    the blocked layout, its max pooling pools there, the last block leaves it; the outputs of the folded network at
    two batch sizes (each layer keeps its weights reordered per batch size); unfused, the folded network again,
    which unfolds."""
    reference, fused = pair(name, fuse.fuse, prepare=folded)
    chain = blocks(fused)
    assert chain and all(type(block) in fuse.FUSED.values() for block in chain)
    assert [(b.enters, b.leaves) for b in chain] == [(False, i == len(chain) - 1) for i in range(len(chain))]
    assert type(fused.conv1) is fuse.ActivatedConv2d and type(fused.relu) is fuse.AppliedReLU
    assert type(fused.max_pool) is fuse.BlockedMaxPool2d
    for batch in (2, 3):
        assert_same_computation(reference, fused, size=64, batch=batch, modes=(False,), gradients=False)
    assert type(fused.pool) is pooling.FusedGlobalAvgPool
    assert fuse.unfuse(fused) == len(chain) + 3 and not fuse.unfuse(fused)  # the stem, its pooling, the pooling
    assert all(type(block) in fuse.FUSED for block in chain) and type(fused.max_pool) is nn.MaxPool2d
    x = ms.Tensor(np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32))
    np.testing.assert_array_equal(fused(x).asnumpy(), reference(x).asnumpy())
    assert fold.unfold(fused) == fold.unfold(reference) > 0


@pytest.mark.parametrize("pad_mode", ["same", "valid"])
def test_a_max_pooling_on_blocked_tensors_is_mindspores(pad_mode):
    """pooling.cc's MaxPoolBlockedForward (a ResNet's stem pooling in the fused chain) gives MindSpore's MaxPool,
    read in the blocked layout, at even and odd sizes (the "same" padding on one side or both)."""
    path = library()
    to_blocked, to_plain = (
        ops.Custom(f"{path}:{name}", out_shape=lambda x: x, out_dtype=lambda x: x, func_type="aot")
        for name in ("ToBlocked", "ToPlain")
    )
    pool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode=pad_mode)
    stand_in = cells.MaxPool(pool, path)  # its geometry, spec and output shape, as fuse's stem takes them
    blocked = ops.Custom(
        f"{path}:MaxPoolBlockedForward", out_shape=stand_in.output_shape, out_dtype=lambda x, _: x, func_type="aot"
    )
    blocked.add_prim_attr("geometry", stand_in.geometry)  # (PyNative caches shapes by attributes)
    spec = stand_in.spec
    rng = np.random.default_rng(0)
    for shape in [(2, 32, 8, 8), (1, 16, 7, 9), (3, 48, 12, 13)]:
        x = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
        want = pool(x).asnumpy()
        np.testing.assert_array_equal(to_plain(blocked(to_blocked(x), spec)).asnumpy(), want, err_msg=str(shape))


def test_blocks_fuse_only_where_every_convolution_can():
    """ResNeXt's grouped convolutions, and a block whose BatchNorm is not folded, stay as they are (their stems
    and poolings are fused); the blocks around the one left out enter and leave the blocked layout on each side of
    it."""
    _, grouped = pair("resnext50_32x4d", lambda network: 1, prepare=folded)
    assert fuse.fuse(grouped) == 2 and not any(type(block) in fuse.FUSED.values() for block in blocks(grouped))
    reference, fused = pair("resnet18", lambda network: 1, prepare=folded)
    left_out = fused.layer1[1]
    fold.unfold(left_out)
    fold.unfold(reference.layer1[1])
    assert fuse.fuse(fused) == len(blocks(fused)) + 2  # every block but one, the stem, its pooling, the pooling
    assert type(left_out) is swaps.SummedBasicBlock
    assert (fused.layer1[0].enters, fused.layer1[0].leaves) == (False, True)  # after the stem
    assert (fused.layer2[0].enters, fused.layer2[1].leaves, fused.layer4[1].leaves) == (True, False, True)
    assert_same_computation(reference, fused, size=64, batch=2, modes=(False,), gradients=False)


def test_fused_network_in_graph_mode():
    """A compiled network: fusing and unfusing make it compile anew, and the fused graph computes the same."""
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        reference, fused = pair("resnet18", lambda network: 1, prepare=folded)
        x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32))
        want = reference(x).asnumpy()
        np.testing.assert_array_equal(fused(x).asnumpy(), want)  # compiled folded
        assert fuse.fuse(fused) > 0
        np.testing.assert_allclose(fused(x).asnumpy(), want, rtol=0, atol=1e-5 * np.abs(want).max())
        assert any(isinstance(cell, fuse.FusedConv) for _, cell in fused.cells_and_names())
        fuse.unfuse(fused)
        np.testing.assert_array_equal(fused(x).asnumpy(), want)
        # the graph compiled after fusing is the fused one: a bias only the fused layer holds shows in it
        assert fuse.fuse(fused) > 0
        last = fused.layer4[len(fused.layer4) - 1].fused2
        last.folded_bias = last.folded_bias + 1.0
        assert np.abs(fused(x).asnumpy() - want).max() > 1e-3 * np.abs(want).max()
        fuse.unfuse(fused)
        np.testing.assert_array_equal(fused(x).asnumpy(), want)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.mark.parametrize("freeze", [dict(freeze="2"), dict(freeze="5"), dict(linear_probe=True)])
def test_frozen_blocks_fused_train_as_the_folded_network(freeze):
    """Training with the first blocks frozen fuses the frozen blocks no gradient passes through (a layer's first
    block alone at --freeze 2): the same outputs, loss and gradient for every trainable parameter as the network
    folded alone, in training and inference mode; blocks after a trainable parameter are never fused."""
    from fgvctune.training import strategy

    frozen_norms = {}

    def freeze_blocks(network):
        swaps.apply(network)
        trained_statistics(network)
        frozen_norms[id(network)] = strategy.apply(network, strategy.plan(network, "resnet18", **freeze))
        fold.fold(network, frozen_only=True)

    def set_mode(network, training):
        strategy.set_train_mode(network, training, frozen_norms[id(network)])

    reference, fused = pair("resnet18", lambda network: fuse.fold_and_fuse(network, frozen_only=True), freeze_blocks)
    expected = {"freeze": {"2": ["layer1.0"], "5": ["layer1.0", "layer1.1", "layer2.0", "layer2.1"]}}
    names = [name for name, cell in fused.cells_and_names() if type(cell) in fuse.FUSED.values()]
    assert names == expected["freeze"].get(
        freeze.get("freeze"), [f"layer{i}.{j}" for i in (1, 2, 3, 4) for j in (0, 1)]
    )
    # the pooling fuses where no gradient passes through it: every block before it frozen
    assert (type(fused.pool) is pooling.FusedGlobalAvgPool) == ("linear_probe" in freeze)
    assert_same_computation(reference, fused, modes=(False, True), set_mode=set_mode)

    for p in fused.layer1.get_parameters():  # a trainable block before the frozen ones: nothing after it fuses
        p.requires_grad = True
    assert fuse.fold_and_fuse(fused, frozen_only=True) and not [
        cell for _, cell in fused.cells_and_names() if type(cell) in fuse.FUSED.values()
    ]


def activated(network) -> dict:
    """How many cells of each fused kind MobileNetV3 holds."""
    kinds = (fuse.ActivatedConv2d, fuse.JoinedStem, fuse.AppliedReLU, fuse.AppliedHSwish, fuse.FusedSqueezeExcite)
    kinds += (fuse.ResidualBottleneck, fuse.WholeBottleneck, pooling.FusedGlobalAvgPool)
    return {kind.__name__: sum(type(cell) is kind for _, cell in network.cells_and_names()) for kind in kinds}


def assert_same_blocks(reference, fused, batch: int):
    """Each block of a SequentialCell (a fused convolution with the BatchNorm and activation after it counted as
    one) given the reference's input and compared with the reference's output. Block by block: a fresh
    mobilenet_v3_small forgets its input within a few blocks (the stem's output changed by 70% moves the last
    block's by 3e-7), so the network's output alone would not show a wrong early layer. A block fused whole is
    compared too as its layers' ops run it one by one (in PyNative mode: its construct before), with the residual
    sum in its projection where it adds its input."""
    rng = np.random.default_rng(batch)
    x = ms.Tensor(rng.standard_normal((batch, 3, 64, 64)).astype(np.float32))
    start = 0
    for end, cell in enumerate(fused):
        joined = type(fused[start]) is fuse.JoinedStem  # run by the block after it: compared with that block
        if type(cell) in (fuse.ActivatedConv2d, fold.FoldedBatchNorm2d) or (joined and cell is not fused[start + 3]):
            continue  # the block goes on to the activation
        want, got = x, x
        for i in range(start, end + 1):
            want, got = reference[i](want), fused[i](got)
        want = want.asnumpy()
        np.testing.assert_allclose(got.asnumpy(), want, rtol=0, atol=1e-5 * np.abs(want).max(), err_msg=str(end))
        if type(cell) is fuse.WholeBottleneck and ms.get_context("mode") == ms.PYNATIVE_MODE:
            inner = fuse.ActivatedConv2d.construct(fused[start], x) if joined else x
            layers = fuse.ResidualBottleneck.construct(cell, inner) if cell.use_res_connect else cell.layers(inner)
            np.testing.assert_allclose(layers.asnumpy(), want, rtol=0, atol=1e-5 * np.abs(want).max())
        x, start = ms.Tensor(want), end + 1


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_mobilenet_layers_fused_compute_what_the_folded_ones_do(mode):
    """Each folded convolution of mobilenet_v3_small with its ReLU or hard swish (the stem's through oneDNN's
    post-op, pointwise ones in the product's bias pass, depthwise ones in depthwise.cc), and each
    squeeze-excitation, one op, and the residual sum in the projection before it; then each block, so fused, one op
    (bottleneck.cc): each feature block's output at two batch sizes; unfused, the folded network."""
    ms.set_context(mode=mode)
    try:
        reference, fused = pair("mobilenet_v3_small_100", fuse.fuse, prepare=folded)
        # 23 layers with an activation (stem, 10 expansions, 11 depthwise, the last 1x1), 9 squeeze-excitations,
        # 6 blocks adding their input, then the 11 blocks whole (those 6 among them, the first running the stem too),
        # the pooling before the classifier
        assert activated(fused) == {
            "ActivatedConv2d": 22, "JoinedStem": 1, "AppliedReLU": 5, "AppliedHSwish": 18, "FusedSqueezeExcite": 9,
            "ResidualBottleneck": 0, "WholeBottleneck": 11, "FusedGlobalAvgPool": 1,
        }  # fmt: skip
        whole = [block for _, block in fused.cells_and_names() if type(block) is fuse.WholeBottleneck]
        assert sum(block.use_res_connect for block in whole) == 6
        for batch in (2, 3):
            assert_same_blocks(reference.features, fused.features, batch)
            assert_same_computation(reference, fused, size=64, batch=batch, modes=(False,), gradients=False)
        assert fuse.unfuse(fused) == 23 + 9 + 11 + 1 and not fuse.unfuse(fused)
        assert set(activated(fused).values()) == {0}
        x = ms.Tensor(np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32))
        np.testing.assert_array_equal(fused(x).asnumpy(), reference(x).asnumpy())
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_convnext_fused_computes_what_the_folded_one_does(mode):
    """ConvNeXt on channels-last tensors from its stem's convolution to its last block, the stem and downsampling
    convolutions as products of patches, each block's two Dense layers with the bias in the product and the layer
    scale folded into the second's weights and bias (biases and scales set unequal here), the first's tanh GELU in
    its call (the first block's GELU exact, torchcompat's: a call of its own): the network's outputs at four input
    shapes (at 70 pixels "same" pads the stem and two downsamplings); unfused, the network before."""

    def prepare(network):
        folded(network)
        rng = np.random.default_rng(2)  # the same for both networks
        blocks = [cell for _, cell in network.cells_and_names() if type(cell) is convnext.Block]
        for cell in blocks:  # MindCV starts the biases at zero and the scales equal
            for param in (cell.gamma_, cell.pwconv1.bias, cell.pwconv2.bias):
                param.set_data(ms.Tensor(rng.uniform(0.2, 2.0, param.shape).astype(np.float32)))
        blocks[0].act.approximate = "none"

    ms.set_context(mode=mode)
    try:
        reference, fused = pair("small_convnext", fuse.fuse, prepare=prepare)
        kinds = (channels_last.BiasedConvNeXtBlock, channels_last.ChannelsLastNorm, channels_last.PatchConv2d)
        run = [cell for _, cell in fused.cells_and_names() if type(cell) in kinds]
        assert [type(cell) for cell in run].count(channels_last.BiasedConvNeXtBlock) == 5  # depths 1, 1, 2, 1
        assert len(run) == 13  # and the stem's convolution and norm, three downsamplings' norm and convolution
        assert [(cell.enters, cell.leaves) for cell in run] == [(i == 0, i == 12) for i in range(13)]
        blocks = [cell for cell in run if type(cell) is channels_last.BiasedConvNeXtBlock]
        assert [block.gelu_expands for block in blocks] == [False, True, True, True, True]
        # at 32 px the last stage is 1x1: its products have two rows at batch 2 (onednn.cc's few-rows path)
        for size, batch in ((64, 2), (64, 3), (32, 2), (70, 2)):
            assert_same_computation(reference, fused, size=size, batch=batch, modes=(False,), gradients=False)
        assert fuse.unfuse(fused) == 13 and not fuse.unfuse(fused)
        assert not any(type(cell) in kinds for _, cell in fused.cells_and_names())
        x = ms.Tensor(np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32))
        np.testing.assert_array_equal(fused(x).asnumpy(), reference(x).asnumpy())
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


def test_mobilenet_frozen_layers_fused_train_as_the_folded_network():
    """`--freeze 7` on mobilenet_v3_small fuses the frozen layers alone (no gradient passes through them): the same
    outputs, loss and gradients as the network folded alone, and block by block the same features; nothing after a
    trainable parameter fuses."""
    from fgvctune.training import strategy

    frozen_norms = {}

    def freeze_blocks(network):
        swaps.apply(network)
        trained_statistics(network)
        plan = strategy.plan(network, "mobilenet_v3_small_100", freeze="7")
        frozen_norms[id(network)] = strategy.apply(network, plan)
        fold.fold(network, frozen_only=True)

    def set_mode(network, training):
        strategy.set_train_mode(network, training, frozen_norms[id(network)])

    reference, fused = pair(
        "mobilenet_v3_small_100", lambda network: fuse.fold_and_fuse(network, frozen_only=True), freeze_blocks
    )
    fused_layers = (fuse.ActivatedConv2d, fuse.JoinedStem)
    names = [name for name, cell in fused.cells_and_names() if type(cell) in fused_layers]
    assert names and all(int(name.split(".")[1]) < 7 for name in names)
    assert type(fused.features[0]) is fuse.JoinedStem  # run by the first block's op
    for network in (reference, fused):
        set_mode(network, False)
    assert_same_blocks(reference.features, fused.features, 4)  # the frozen blocks' outputs, which the network forgets
    assert_same_computation(reference, fused, size=64, batch=4, modes=(False, True), set_mode=set_mode)
    for p in fused.features[3].get_parameters():  # the first block trainable: the stem alone fuses
        p.requires_grad = True
    fuse.fold_and_fuse(fused, frozen_only=True)
    assert [name for name, cell in fused.cells_and_names() if type(cell) in fused_layers] == names[:1]
    cells.restore(fused)  # mixed precision's float16 runs MindSpore's ops: nothing fuses
    for p in fused.features[3].get_parameters():
        p.requires_grad = False
    fuse.fold_and_fuse(fused, frozen_only=True)
    assert set(activated(fused).values()) == {0}


@pytest.mark.parametrize(
    "layer",
    [
        dict(kernel_size=3, stride=2, pad_mode="pad", padding=1),  # mobilenet's stem
        dict(kernel_size=3, stride=1, pad_mode="same"),
        dict(kernel_size=5, stride=2, pad_mode="same"),  # uneven padding
        dict(kernel_size=7, stride=2, pad_mode="pad", padding=(3, 2, 1, 3)),
        dict(kernel_size=3, stride=3, pad_mode="valid"),
    ],
)
def test_a_stem_fused_with_its_activation_at_every_stride_and_padding(layer):
    """A convolution of the image's channels, its BatchNorm and hard swish (onednn.cc's ConvActForward, the
    activation a oneDNN post-op) on odd sizes: the folded layers' output."""
    ms.set_seed(0)

    def stem():
        return nn.SequentialCell([nn.Conv2d(3, 8, **layer), nn.BatchNorm2d(8), nn.HSwish()])

    reference, fused = stem(), stem()
    ms.load_param_into_net(fused, reference.parameters_dict())
    for network in (reference, fused):
        folded(network)
    assert fuse.fuse(fused) == 1 and "ConvActForward" in fused[0].activate.func
    x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 19, 23)).astype(np.float32))
    want = reference(x).asnumpy()
    np.testing.assert_allclose(fused(x).asnumpy(), want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("activation", [nn.ReLU, nn.HSwish, None])
def test_a_pointwise_layer_folded_and_fused_at_odd_sizes(activation):
    """A 1x1 convolution, its BatchNorm and activation (pointwise.cc's loop through onednn.cc's ConvActForward, or
    ConvBiasForward where there is no activation) against MindSpore's own ops: 21 outputs (two blocks of eight and
    five rows left), 19 x 23 pixels (blocks of 32, then 16, then the last 16 again) and 3 x 5 (one at a time), two
    images."""
    ms.set_seed(0)

    def layer():
        return nn.SequentialCell([nn.Conv2d(13, 21, 1), nn.BatchNorm2d(21)] + ([activation()] if activation else []))

    reference, fused = layer(), layer()
    ms.load_param_into_net(fused, reference.parameters_dict())
    trained_statistics(reference)  # (folded gives the fused one the same: they are drawn from the names)
    reference.set_train(False)
    folded(fused)
    assert fuse.fuse(fused) == (1 if activation else 0) and type(fused[0]) is (
        fuse.ActivatedConv2d if activation else fold.FoldedConv2d
    )
    for size in ((19, 23), (3, 5)):
        x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 13, *size)).astype(np.float32))
        want = reference(x).asnumpy()
        np.testing.assert_allclose(fused(x).asnumpy(), want, rtol=0, atol=1e-5 * np.abs(want).max(), err_msg=size)


@pytest.mark.parametrize(
    "channels, padding",
    [(3, dict(pad_mode="pad", padding=1)), (1, dict(pad_mode="same")), (4, dict(pad_mode="valid"))]
    + [(3, dict(pad_mode="pad", padding=(0, 2, 1, 0))), (2, dict(pad_mode="pad", padding=(1, 1, 2, 1)))],
)
def test_a_stem_convolution_folded_and_fused_at_odd_sizes(channels, padding):
    """A 3x3 convolution at stride 2 over an image's channels, its BatchNorm and hard swish (stem.cc's loop through
    onednn.cc's ConvActForward, MobileNetV3's stem) against MindSpore's own ops: 21 outputs (a block of 16 and five
    rows left), widths whose output rows take whole blocks, whose last block overlaps the one before, and that are
    narrower than a block; padding 1 on the left (MobileNetV3's), none ("valid", and "same" at even widths),
    and 2 (oneDNN's path: not the loop's), uneven padding on the other sides."""
    ms.set_seed(0)

    def layer():
        return nn.SequentialCell([nn.Conv2d(channels, 21, 3, stride=2, **padding), nn.BatchNorm2d(21), nn.HSwish()])

    reference, fused = layer(), layer()
    ms.load_param_into_net(fused, reference.parameters_dict())
    trained_statistics(reference)  # (folded gives the fused one the same: they are drawn from the names)
    reference.set_train(False)
    folded(fused)
    assert fuse.fuse(fused) == 1 and type(fused[0]) is fuse.ActivatedConv2d
    for size in ((64, 64), (37, 45), (9, 10), (4, 3)):
        x = ms.Tensor(np.random.default_rng(0).standard_normal((2, channels, *size)).astype(np.float32))
        want = reference(x).asnumpy()
        np.testing.assert_allclose(fused(x).asnumpy(), want, rtol=0, atol=1e-5 * np.abs(want).max(), err_msg=size)


def gradient(pool, weights, x) -> np.ndarray:
    """The gradient of the pooled values' sum weighted by `weights`, with respect to x."""

    def score(x):
        return (pool(x) * weights).sum()

    return ms.grad(score)(x).asnumpy()


@pytest.mark.parametrize("keep_dims", [False, True])
def test_a_fused_global_average_pooling_is_mindcvs(keep_dims):
    """pooling.cc's GlobalMeanForward (a fused pooling) against MindCV's GlobalAvgPooling (a ReduceMean) on planes of
    7 x 7, 13 x 11 and 1 x 1, in PyNative and graph mode, and their gradients (Grad-CAM's); a float16 input (mixed
    precision) takes the MatMul."""
    from mindcv.models.layers.pooling import GlobalAvgPooling

    pool = pooling.FusedGlobalAvgPool(keep_dims)
    pool.average = pooling.global_mean_op(library(), keep_dims)
    reference, rng = GlobalAvgPooling(keep_dims), np.random.default_rng(5)
    try:
        for mode in (ms.PYNATIVE_MODE, ms.GRAPH_MODE):
            ms.set_context(mode=mode)
            for shape in ((2, 37, 7, 7), (3, 1024, 13, 11), (1, 5, 1, 1)):
                x = ms.Tensor((rng.standard_normal(shape) + 3).astype(np.float32))
                want = reference(x).asnumpy()
                got = pool(x).asnumpy()
                assert got.shape == want.shape
                np.testing.assert_allclose(got, want, rtol=2e-6, err_msg=str(shape))
                weights = ms.Tensor(rng.standard_normal(want.shape).astype(np.float32))
                want, got = (gradient(p, weights, x) for p in (reference, pool))
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=str(shape))
        half = pool(ms.Tensor(rng.standard_normal((2, 37, 7, 7)).astype(np.float16)))
        assert half.dtype == ms.float16
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.mark.parametrize("name", ["resnet18", "small_convnext"])
def test_fused_again_computes_with_the_new_weights(name):
    """A network fused again after its weights change (a tuning study's next trial, a new checkpoint) computes with
    the new weights: onednn.cc keeps a fused layer's reordered weights in a plan keyed by the layer's place, which
    the new fusing reuses, and reorders them again for the new fusing."""
    reference, fused = pair(name, fuse.fuse, prepare=folded)
    x = ms.Tensor(np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32))
    fused(x)  # the plans made, the first weights reordered into them
    rng = np.random.default_rng(4)
    for network in (reference, fused):
        fuse.unfuse(network)
        fold.unfold(network)
    for (_, mine), (_, theirs) in zip(fused.parameters_and_names(), reference.parameters_and_names()):
        theirs.set_data(ms.Tensor(theirs.asnumpy() * rng.uniform(0.5, 1.5, theirs.shape).astype(np.float32)))
        mine.set_data(theirs.value())
    for network in (reference, fused):
        fold.fold(network)
    assert fuse.fuse(fused) > 0
    want = reference(x).asnumpy()
    np.testing.assert_allclose(fused(x).asnumpy(), want, rtol=0, atol=1e-4 * np.abs(want).max())


def test_channels_last_depthwise_at_every_stride_and_padding():
    """depthwise.cc's channels-last forward (ConvNeXt's fused blocks) against MindSpore's Conv2D on the transposed
    input: its 7x7 at widths that take each path (under 4 pixels, 4 to 6, 7, 8 and more with the last strip
    overlapping the one before), and shapes ConvNeXt does not have (strides 2 and 3, "same" and "valid", uneven
    padding, an even kernel, padding past the kernel)."""
    rng = np.random.default_rng(3)
    cases = [
        dict(kernel_size=7, stride=1, pad_mode="pad", padding=3, has_bias=True),
        dict(kernel_size=3, stride=1, pad_mode="same"),
        dict(kernel_size=5, stride=2, pad_mode="same", has_bias=True),
        dict(kernel_size=3, stride=3, pad_mode="valid"),
        dict(kernel_size=3, stride=2, pad_mode="pad", padding=(1, 2, 0, 1), has_bias=True),
        dict(kernel_size=4, stride=1, pad_mode="same"),
        dict(kernel_size=3, stride=1, pad_mode="pad", padding=(3, 0, 0, 4)),
    ]
    for size in (2, 3, 6, 9, 14):  # the width one more
        for channels in (8, 24):
            for case in cases:
                if case["pad_mode"] == "valid" and size < case["kernel_size"]:
                    continue  # no output
                conv = nn.Conv2d(channels, channels, group=channels, **case)
                conv.weight.set_data(ms.Tensor(rng.standard_normal(conv.weight.shape).astype(np.float32)))
                if conv.has_bias:
                    conv.bias.set_data(ms.Tensor(rng.standard_normal(channels).astype(np.float32)))
                x = rng.standard_normal((2, channels, size, size + 1)).astype(np.float32)
                want = conv(ms.Tensor(x)).asnumpy()
                conv.conv2d = cells.DepthwiseConv(conv, library())
                op, weight, bias, spec = channels_last.depthwise(conv, library())
                got = op(ms.Tensor(x.transpose(0, 2, 3, 1).copy()), weight, bias, spec).asnumpy()
                scale = np.abs(want).max()  # weights of unit variance: sums in the tens, rounded in float32
                np.testing.assert_allclose(
                    got.transpose(0, 3, 1, 2), want, rtol=0, atol=1e-6 * scale, err_msg=f"{case} at {size}, {channels}"
                )
