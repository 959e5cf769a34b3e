"""Each layer fgvctune swaps into a model computes what the layer it replaces computes: the same outputs and the
same gradient for every parameter, to float rounding, in training and in inference mode."""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fgvctune import runtime

ms = runtime.start(mode="pynative")
import mindcv  # noqa: E402
from mindspore import nn  # noqa: E402

from fgvctune.kernels import cells as kernels  # noqa: E402
from fgvctune.kernels import fold, swaps  # noqa: E402
from fgvctune.models import torchcompat  # noqa: E402
from fgvctune.training import strategy  # noqa: E402

pytestmark = pytest.mark.usefixtures("pynative")


def pair(name: str, swap, prepare=None):
    """MindCV's model and a copy with the same weights and `swap` applied; `prepare` runs on both first, and
    both drop the same units (fgvctune's seeded dropout, itself checked in test_trainer)."""
    ms.set_seed(3)
    reference = mindcv.create_model(name, num_classes=4)
    swapped = mindcv.create_model(name, num_classes=4)
    ms.load_param_into_net(swapped, reference.parameters_dict())
    for network in (reference, swapped):
        swaps.seeded_dropout(network, 0)
        if prepare:
            prepare(network)
    names = [p.name for p in swapped.get_parameters()]
    assert swap(swapped) >= 1
    assert [p.name for p in swapped.get_parameters()] == names  # checkpoints load both ways
    return reference, swapped


def outputs_and_gradients(network, x, training: bool, set_mode=None, gradients=True):
    (set_mode or type(network).set_train)(network, training)
    if not gradients:
        out = network(x)
        return out.asnumpy(), (out**2).sum().asnumpy(), {}
    weights = network.trainable_params()
    loss, grads = ms.value_and_grad(lambda t: (network(t) ** 2).sum(), None, weights)(x)
    return network(x).asnumpy(), loss.asnumpy(), {p.name: g.asnumpy() for p, g in zip(weights, grads)}


def assert_same_computation(reference, swapped, size=64, batch=8, modes=(True, False), set_mode=None, gradients=True):
    """Outputs, loss and every parameter's gradient agree to float rounding. What rounding can do depends on
    the network: BatchNorm over a batch of pooled 1x1 features (ResNeSt's split attention) amplifies a
    last-digit change many times in its gradients. So the yardstick is measured: the reference network run
    again on the input with each value changed in its last bits (x * (1 +- 2^-22), signs at random); the swap
    must stay within ten times that. `set_mode(network, training)` sets training or inference mode (by default
    `set_train`); `modes` are the ones compared; `gradients=False` compares outputs and loss alone (a network
    folded for inference takes constants in place of its weights)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size)) + 2 * rng.uniform(-1, 1, (batch, 3, 1, 1))
    wiggled = ms.Tensor((x * (1 + 2**-22 * rng.choice([-1, 1], x.shape))).astype(np.float32))
    x = ms.Tensor(x.astype(np.float32))
    for training in modes:
        out_ref, loss_ref, grads_ref = outputs_and_gradients(reference, x, training, set_mode, gradients)
        out_new, loss_new, grads_new = outputs_and_gradients(swapped, x, training, set_mode, gradients)
        out_wig, loss_wig, grads_wig = outputs_and_gradients(reference, wiggled, training, set_mode, gradients)
        atol = max(1e-6 * np.abs(out_ref).max(), 10 * np.abs(out_wig - out_ref).max())
        np.testing.assert_allclose(out_new, out_ref, rtol=0, atol=atol)
        # At least 1e-5 (some 80 float32 steps): where the wiggle barely moves the loss, the sum of squares still
        # rounds differently when its terms do (a folded mobilenet's loss: 1.55e-6 apart, the wiggle's 1.2e-7).
        rtol = max(1e-5, 10 * abs(loss_wig / loss_ref - 1))
        np.testing.assert_allclose(loss_new, loss_ref, rtol=rtol)
        assert grads_new.keys() == grads_ref.keys()
        scale = max((np.abs(g).max() for g in grads_ref.values()), default=0)
        for name, grad in grads_ref.items():
            atol = max(1e-6 * scale, 10 * np.abs(grads_wig[name] - grad).max())
            np.testing.assert_allclose(grads_new[name], grad, rtol=0, atol=atol, err_msg=name)


def test_faster_pooling_gives_the_same_outputs_and_gradients():
    for name in ("mobilenet_v3_small_100", "resnet18"):
        assert_same_computation(*pair(name, swaps.faster_pooling))


@pytest.mark.parametrize("exact", [False, True], ids=["tanh", "exact-for-pytorch-weights"])
def test_faster_gelu_computes_the_gelu_it_replaces(exact):
    prepare = torchcompat.exact_gelu if exact else None
    reference, swapped = pair("convnext_tiny", swaps.faster_gelu, prepare)
    gelus = [c for _, c in swapped.cells_and_names() if isinstance(c, nn.GELU)]
    assert gelus and all(type(c) is swaps.ComposedGELU for c in gelus)
    assert {c.approximate for c in gelus} == {"none" if exact else "tanh"}
    assert_same_computation(reference, swapped, size=32, batch=4)


def test_exact_gelu_still_reaches_a_swapped_gelu():
    """torchcompat switches GELUs to the exact form; on a swapped network it must still do so."""
    reference, swapped = pair("convnext_tiny", swaps.faster_gelu)
    assert torchcompat.exact_gelu(reference) == torchcompat.exact_gelu(swapped) == 18
    assert_same_computation(reference, swapped, size=32, batch=4)


def test_faster_split_attention_gives_the_same_outputs_and_gradients():
    reference, swapped = pair("resnest50", swaps.faster_split_attention)
    assert swaps.faster_split_attention(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=32, batch=4)


@pytest.mark.parametrize("name", ["mobilenet_v3_small_100", "convnext_tiny"])
def test_depthwise_kernels_give_the_same_outputs_and_gradients(name):
    """fgvctune's depthwise kernels in every layer shape the two families have: 3x3 and 5x5 at strides 1 and 2
    ("same" padding, uneven at stride 2), ConvNeXt's 7x7 with explicit padding and a bias."""
    reference, swapped = pair(name, swaps.faster_depthwise)
    convs = [cell for _, cell in swapped.cells_and_names() if kernels.is_depthwise(cell)]
    assert convs and all(isinstance(cell.conv2d, kernels.DepthwiseConv) for cell in convs)
    assert swaps.faster_depthwise(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=48, batch=4)
    assert kernels.restore(swapped) == len(convs)
    assert not any(isinstance(cell, kernels.DepthwiseConv) for _, cell in swapped.cells_and_names())


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small_100"])
def test_convolution_kernel_gives_the_same_outputs_and_gradients(name):
    """The oneDNN convolution in the layers the two families have: ResNet's 7x7 stem at stride 2, 3x3 at strides
    1 and 2, 1x1 shortcuts at stride 2; MobileNetV3's pointwise layers (with and without a bias, in squeeze and
    excitation); every group-of-one convolution, none of the depthwise ones."""
    reference, swapped = pair(name, swaps.faster_convolution)
    convs = [cell for _, cell in swapped.cells_and_names() if isinstance(cell, nn.Conv2d)]
    swapped_here = [cell for cell in convs if isinstance(cell.conv2d, kernels.Convolution)]
    assert swapped_here == [cell for cell in convs if not kernels.is_depthwise(cell)] and len(swapped_here) >= 20
    assert swaps.faster_convolution(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=48, batch=4)
    assert kernels.restore(swapped) == len(swapped_here)
    assert not any(isinstance(cell, kernels.Convolution) for _, cell in swapped.cells_and_names())


def test_convolution_kernel_at_every_stride_padding_and_dilation():
    """One layer at a time, against MindSpore's Conv2D: odd sizes, stride 3, "same" padding (uneven at stride 2),
    "valid", uneven explicit padding, dilation, a kernel wider than tall, a bias, groups; the input's gradient
    too."""
    rng = np.random.default_rng(2)
    cases = [
        dict(kernel_size=3, stride=1, pad_mode="same"),
        dict(kernel_size=3, stride=2, pad_mode="same", has_bias=True),
        dict(kernel_size=5, stride=3, pad_mode="valid"),
        dict(kernel_size=3, stride=2, pad_mode="pad", padding=(1, 2, 0, 1)),
        dict(kernel_size=3, stride=1, pad_mode="same", dilation=2),
        dict(kernel_size=(1, 3), stride=1, pad_mode="pad", padding=(0, 0, 1, 1), has_bias=True),
        dict(kernel_size=1, stride=2, pad_mode="valid"),
        dict(kernel_size=1, stride=1, pad_mode="valid", has_bias=True),  # run as a matrix product per image
        dict(kernel_size=3, stride=1, pad_mode="pad", padding=1, group=2),  # ResNeSt's, in two groups
    ]
    for size in (7, 12):
        for case in cases:
            reference = nn.Conv2d(6, 8, **case)
            swapped = nn.Conv2d(6, 8, **case)
            for mine, theirs in zip(swapped.get_parameters(), reference.get_parameters()):
                theirs.set_data(ms.Tensor(rng.standard_normal(theirs.shape).astype(np.float32)))
                mine.set_data(theirs.value())
            assert kernels.swap_convolution(swapped) == 1
            x = ms.Tensor(rng.standard_normal((3, 6, size, size + 1)).astype(np.float32))
            want, got = (outputs_and_gradients(n, x, True) for n in (reference, swapped))
            scale = np.abs(want[0]).max()  # weights of unit variance: sums in the tens, rounded in float32
            np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-6 * scale, err_msg=f"{case} at {size}")
            for name in want[2]:
                np.testing.assert_allclose(got[2][name], want[2][name], rtol=1e-5, atol=1e-4, err_msg=name)
            dx = [ms.grad(lambda t, n=n: (n(t) ** 2).sum())(x).asnumpy() for n in (reference, swapped)]
            np.testing.assert_allclose(dx[1], dx[0], rtol=1e-5, atol=1e-4, err_msg=f"input gradient, {case} at {size}")


def test_dense_product_kernels_give_the_same_outputs_and_gradients():
    """nn.Dense's matrix product through onednn.cc: ConvNeXt's pointwise layers (on 4-D input) and its head."""
    reference, swapped = pair("convnext_tiny", swaps.faster_dense_product)
    dense = [c for _, c in swapped.cells_and_names() if isinstance(c, nn.Dense)]
    assert len(dense) == 37 and all(isinstance(c.matmul, kernels.DenseProduct) for c in dense)
    assert swaps.faster_dense_product(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=32, batch=4)
    assert kernels.restore(swapped) == 37


def test_kernels_are_built_once_into_a_private_cache_and_skipped_without_a_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    kernels.library.cache_clear()
    try:
        built = Path(kernels.library())
        folder = tmp_path / "cache" / "fgvctune" / "kernels"
        assert built.parent == folder and built.is_file()
        # No partial file left; the library's SHA-256 beside it; the folders made for it are the user's alone.
        assert {p.name for p in folder.iterdir()} == {built.name, f"{built.name}.sha256", "build.lock"}
        assert [stat.S_IMODE(p.stat().st_mode) for p in (folder, folder.parent, folder.parent.parent)] == [0o700] * 3
        kernels.library.cache_clear()
        monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
        conv = nn.Conv2d(4, 4, 3, group=4)
        assert kernels.swap_depthwise(conv) == 0 and not isinstance(conv.conv2d, kernels.DepthwiseConv)
    finally:
        kernels.library.cache_clear()


@pytest.fixture(scope="module")
def plain_cache(tmp_path_factory) -> Path:
    """A cache holding the kernels built without onednn.cc (a second's compile), for tests to copy."""
    cache = tmp_path_factory.mktemp("kernels") / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))
        patch.setattr(kernels, "onednn", lambda: None)
        kernels.library.cache_clear()
        try:
            assert kernels.library()
        finally:
            kernels.library.cache_clear()
    return cache


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """The kernels' folder in an empty cache, where library() builds them without onednn.cc."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(kernels, "onednn", lambda: None)
    kernels.library.cache_clear()
    yield tmp_path / "cache" / "fgvctune" / "kernels"
    kernels.library.cache_clear()


@pytest.fixture
def cache(empty_cache, plain_cache) -> Path:
    """The kernels' folder in a copy of `plain_cache`: library() finds them built."""
    shutil.copytree(plain_cache, empty_cache.parent.parent)
    return empty_cache


def compiler(folder: Path, script: str) -> str:
    """A shell script standing in for the C++ compiler (CXX): `script`, then g++ itself."""
    path = folder / "cxx"
    path.write_text(f'#!/bin/sh\n{script}\nexec g++ "$@"\n')
    path.chmod(0o755)
    return str(path)


def warnings_logged(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.parametrize("damage", ["garbage", "cut-short"])
def test_a_damaged_library_in_the_cache_is_rebuilt_before_anything_loads_it(damage, cache):
    """A power cut before the library reached the disk: garbage made every MindSpore command fail with "invalid
    ELF header", a library cut short with its header whole was mapped, read past its end: a bus error."""
    (library,) = cache.glob("*.so")
    whole = library.read_bytes()
    library.write_bytes(b"garbage" * 1000 if damage == "garbage" else whole[: len(whole) // 2])
    assert kernels.library() == str(library)
    assert library.read_bytes() == whole  # rebuilt (the compiler gives the same bytes)


BUILD = "\n".join(
    [
        "from fgvctune.kernels import cells as kernels",
        "kernels.onednn = lambda: None",
        "print(kernels.library(), flush=True)",
        "",
    ]
)


def test_two_processes_on_an_empty_cache_compile_once(tmp_path):
    """Two msrun workers starting at once: one compiles, the other waits for it, then loads what it built."""
    compiles = tmp_path / "compiles.log"
    cxx = compiler(tmp_path, f'case "$*" in *--version*) ;; *) echo compile >> {compiles}; sleep 3;; esac')
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "CXX": cxx}
    workers = [
        subprocess.Popen([sys.executable, "-c", BUILD], env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    built = [worker.communicate(timeout=600)[0].strip() for worker in workers]
    assert built[0] == built[1] and Path(built[0]).is_file()
    assert compiles.read_text().splitlines() == ["compile"]


def test_a_failed_build_is_said_once_at_the_clis_level_and_mindspores_ops_run(
    empty_cache, tmp_path, caplog, monkeypatch
):
    """The CLI shows warnings; the compiler's output is for --verbose (INFO), every time."""
    script = 'case "$*" in *--version*) echo broken 1.0; exit 0;; esac\necho "error: broken compiler" >&2; exit 1'
    monkeypatch.setenv("CXX", compiler(tmp_path, script))
    caplog.set_level(logging.INFO, logger="fgvctune")
    for run in ("first", "second"):
        caplog.clear()
        kernels.library.cache_clear()
        conv = nn.Conv2d(4, 4, 3, group=4)
        assert kernels.swap_depthwise(conv) == 0 and not isinstance(conv.conv2d, kernels.DepthwiseConv)
        assert "error: broken compiler" in caplog.text
        said = warnings_logged(caplog)
        if run == "first":
            assert len(said) == 1 and "\n" not in said[0] and "--verbose" in said[0], said
        else:
            assert said == []


def another_group() -> int:
    """A group other than the user's own that the test may give a folder to (root may give any)."""
    gids = [group.gr_gid for group in grp.getgrall()] if os.getuid() == 0 else os.getgroups()
    others = [gid for gid in gids if gid != os.getgid()]
    if not others:
        pytest.skip("no group but the user's own to give a folder to")
    return others[0]


@pytest.mark.parametrize("shared", ["with anyone", "with a group"])
def test_kernels_in_a_folder_others_may_write_are_not_loaded(shared, cache, caplog):
    """Another user could have planted a library under the predictable name, its SHA-256 beside it."""
    home = cache.parent.parent
    home.chmod(0o777 if shared == "with anyone" else 0o770)
    if shared == "with a group":
        os.chown(home, -1, another_group())
    conv = nn.Conv2d(4, 4, 3, group=4)
    assert kernels.swap_depthwise(conv) == 0 and not isinstance(conv.conv2d, kernels.DepthwiseConv)
    (said,) = warnings_logged(caplog)
    assert f"others may write in {home.resolve()}" in said and "\n" not in said


def test_kernels_in_a_folder_only_the_users_private_group_may_write_are_loaded(cache, caplog):
    """Debian and Ubuntu's umask 002 with user-private groups: ~/.cache is 0775, its group the user's alone."""
    user, group = pwd.getpwuid(os.getuid()), grp.getgrgid(os.getgid())
    if group.gr_name != user.pw_name or set(group.gr_mem) - {user.pw_name}:
        pytest.skip("the user's group is not a private one")
    home = cache.parent.parent
    home.chmod(0o775)
    os.chown(home, -1, os.getgid())
    (library,) = cache.glob("*.so")
    assert kernels.library() == str(library)
    assert warnings_logged(caplog) == []


@pytest.mark.parametrize("mode", [0o775, 0o777], ids=["0775", "0777"])
def test_fgvctunes_own_folders_others_may_write_are_made_private_and_the_kernels_loaded(mode, cache, caplog):
    """Made by an older fgvctune under umask 002: tightened to 0700, not refused."""
    for folder in (cache, cache.parent):
        folder.chmod(mode)
    (library,) = cache.glob("*.so")
    assert kernels.library() == str(library)
    assert [stat.S_IMODE(folder.stat().st_mode) for folder in (cache, cache.parent)] == [0o700] * 2
    assert warnings_logged(caplog) == []


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user takes root")
def test_a_library_of_another_user_is_rebuilt_not_loaded(cache, caplog):
    (library,) = cache.glob("*.so")
    os.chown(library, 65534, 65534)
    assert kernels.library() == str(library) and library.stat().st_uid == os.getuid()
    (said,) = warnings_logged(caplog)
    assert "belongs to another user" in said


@pytest.mark.parametrize("package", ["missing", "not-building"])
def test_convolution_and_dense_are_left_to_mindspore_without_the_onednn_package(package, monkeypatch, tmp_path):
    """No onednn-cpu-gomp, or one whose headers do not compile: the other kernels are built all the same."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    found = None if package == "missing" else (str(tmp_path / "no-headers"), str(tmp_path / "libdnnl.so.3"))
    monkeypatch.setattr(kernels, "onednn", lambda: found)
    kernels.library.cache_clear()
    try:
        conv, depthwise, dense = nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3, group=4), nn.Dense(4, 2)
        assert kernels.swap_convolution(conv) == 0 and not isinstance(conv.conv2d, kernels.Convolution)
        assert kernels.swap_dense_product(dense) == 0 and not isinstance(dense.matmul, kernels.DenseProduct)
        assert kernels.swap_depthwise(depthwise) == 1  # the other kernels are built without onednn.cc
    finally:
        kernels.library.cache_clear()


def test_depthwise_kernels_at_every_stride_and_padding():
    """One layer at a time, against MindSpore's Conv2D: shapes MindCV's models do not have (odd sizes, stride 3,
    "valid" and uneven explicit padding, a plane smaller than the kernel)."""
    rng = np.random.default_rng(1)
    cases = [
        dict(kernel_size=3, stride=1, pad_mode="same"),
        dict(kernel_size=5, stride=2, pad_mode="same"),
        dict(kernel_size=3, stride=3, pad_mode="valid"),
        dict(kernel_size=3, stride=2, pad_mode="pad", padding=(1, 2, 0, 1), has_bias=True),
        dict(kernel_size=7, stride=1, pad_mode="pad", padding=3),
    ]
    for size in (5, 9, 14):
        for case in cases:
            reference = nn.Conv2d(6, 6, group=6, **case)
            swapped = nn.Conv2d(6, 6, group=6, **case)
            swapped.weight.set_data(reference.weight.value())
            if reference.has_bias:
                reference.bias.set_data(ms.Tensor(rng.standard_normal(6).astype(np.float32)))
                swapped.bias.set_data(reference.bias.value())
            assert kernels.swap_depthwise(swapped) == 1
            x = ms.Tensor(rng.standard_normal((3, 6, size, size)).astype(np.float32))
            want, got = (outputs_and_gradients(n, x, True) for n in (reference, swapped))
            np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-5, err_msg=f"{case} at {size}")
            for name in want[2]:
                np.testing.assert_allclose(got[2][name], want[2][name], rtol=1e-5, atol=1e-4, err_msg=name)
            dx = [ms.grad(lambda t, n=n: (n(t) ** 2).sum())(x).asnumpy() for n in (reference, swapped)]
            np.testing.assert_allclose(dx[1], dx[0], rtol=0, atol=1e-4, err_msg=f"input gradient, {case} at {size}")


@pytest.mark.parametrize("name", ["mobilenet_v3_small_100", "resnet18"])
def test_batchnorm_kernels_give_the_same_outputs_gradients_and_statistics(name):
    reference, swapped = pair(name, swaps.faster_batchnorm)
    assert swaps.faster_batchnorm(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=48, batch=4)

    def statistics(network):
        return {p.name: p.asnumpy() for p in network.get_parameters() if "moving" in p.name}

    x = ms.Tensor(np.random.default_rng(5).standard_normal((4, 3, 48, 48)).astype(np.float32) * 2 + 1)
    start = statistics(reference)
    for network in (reference, swapped):
        for param in network.get_parameters():  # each its own copy: pair's loading shares the two networks' storage
            if param.name in start:
                param.set_data(ms.Tensor(start[param.name]))
        network.set_train(True)(x)
    moved, want = statistics(swapped), statistics(reference)
    assert moved.keys() == want.keys() and len(want) == 2 * norms(swapped)
    for key in want:
        np.testing.assert_allclose(moved[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert kernels.restore(swapped) == norms(swapped)


def test_layernorm_kernels_give_the_same_outputs_and_gradients():
    reference, swapped = pair("convnext_tiny", swaps.faster_layernorm)
    swapped_norms = [c for _, c in swapped.cells_and_names() if isinstance(c, kernels.LayerNormLastAxis)]
    assert len(swapped_norms) == sum(isinstance(c, nn.LayerNorm) for _, c in swapped.cells_and_names())
    assert swaps.faster_layernorm(swapped) == 0  # already swapped: nothing left to do
    for _, cell in reference.cells_and_names():  # gamma and beta as training leaves them, not 1 and 0
        if isinstance(cell, nn.LayerNorm):
            cell.gamma.set_data(ms.Tensor(np.linspace(0.5, 1.5, cell.gamma.shape[0], dtype=np.float32)))
            cell.beta.set_data(ms.Tensor(np.linspace(-0.3, 0.3, cell.beta.shape[0], dtype=np.float32)))
    ms.load_param_into_net(swapped, reference.parameters_dict())
    assert_same_computation(reference, swapped, size=32, batch=4)


def test_dense_bias_kernels_give_the_same_outputs_and_gradients():
    reference, swapped = pair("convnext_tiny", swaps.faster_dense_bias)
    dense = [c for _, c in swapped.cells_and_names() if isinstance(c, nn.Dense)]
    assert len(dense) == 37 and all(isinstance(c.bias_add, kernels.DenseBias) for c in dense)  # 2 per block + head
    assert swaps.faster_dense_bias(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped, size=32, batch=4)


def test_hswish_kernels_give_the_same_outputs_and_gradients():
    reference, swapped = pair("mobilenet_v3_small_100", swaps.faster_hswish)
    activations = [c for _, c in swapped.cells_and_names() if isinstance(c, nn.HSwish)]
    assert len(activations) == 19 and all(isinstance(c.hswish, kernels.HardSwish) for c in activations)
    assert swaps.faster_hswish(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped)


def test_hswish_kernel_at_its_corners():
    """Below -3, at -3 and 3, between and above, forward and gradient, against the formula."""
    x = np.array([-7.5, -3.0, -2.999, -1.5, 0.0, 0.25, 2.999, 3.0, 9.0], np.float32)
    activation = nn.HSwish()
    assert swaps.faster_hswish(activation) == 1
    y, dx = ms.value_and_grad(lambda t: activation(t).sum())(ms.Tensor(x))
    expected = x * np.clip(x + 3, 0, 6) / 6
    slope = np.where(x <= -3, 0, np.where(x >= 3, 1, (2 * x + 3) / 6))
    np.testing.assert_allclose(y.asnumpy(), expected.sum(), rtol=1e-6)
    np.testing.assert_allclose(dx.asnumpy(), slope, rtol=1e-6)
    np.testing.assert_allclose(activation(ms.Tensor(x)).asnumpy(), expected, rtol=1e-6)


def test_squeeze_excite_scale_kernels_give_the_same_outputs_and_gradients():
    reference, swapped = pair("mobilenet_v3_small_100", swaps.faster_squeeze_excite)
    excitations = [c for _, c in swapped.cells_and_names() if isinstance(c, swaps.ScaledSqueezeExcite)]
    assert len(excitations) == 9 and all(isinstance(c.scale, kernels.ChannelScale) for c in excitations)
    assert swaps.faster_squeeze_excite(swapped) == 0  # already swapped: nothing left to do
    assert_same_computation(reference, swapped)


def test_channel_scale_and_radix_pair_kernels_against_numpy():
    """Each op alone on odd shapes: outputs and both gradients (of sum(y * w) for a random w) against numpy."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 10, 7, 5)).astype(np.float32)
    a = rng.uniform(0, 1, (3, 10, 1, 1)).astype(np.float32)
    cell = type("Owner", (), {"scale": None, "combine": None})()  # what the stand-ins keep as `primitive`
    path = kernels.library()
    half = x.shape[1] // 2
    for op, expected in (
        (kernels.ChannelScale(cell, path), x * a),
        (kernels.RadixPair(cell, path), x[:, :half] * a[:, :half] + x[:, half:] * a[:, half:]),
    ):
        w = rng.standard_normal(expected.shape).astype(np.float32)
        y, (dx, da) = ms.value_and_grad(lambda x, a: (op(x, a) * ms.Tensor(w)).sum(), (0, 1))(
            ms.Tensor(x), ms.Tensor(a)
        )
        np.testing.assert_allclose(op(ms.Tensor(x), ms.Tensor(a)).asnumpy(), expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(y.asnumpy(), (expected * w).sum(), rtol=1e-5)
        dy = w if expected.shape == x.shape else np.concatenate([w, w], axis=1)  # each half gets dy
        np.testing.assert_allclose(dx.asnumpy(), dy * a, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(da.asnumpy(), (dy * x).sum(axis=(2, 3), keepdims=True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["mobilenet_v3_large_100", "resnest50", "convnext_tiny"])
def test_every_swap_together(name):
    def every_swap(network):
        return (
            swaps.faster_pooling(network)
            + swaps.faster_gelu(network)
            + swaps.faster_split_attention(network)
            + swaps.faster_depthwise(network)
            + swaps.faster_convolution(network)
            + swaps.faster_dense_product(network)
            + swaps.faster_batchnorm(network)
            + swaps.faster_layernorm(network)
            + swaps.faster_dense_bias(network)
            + swaps.faster_hswish(network)
            + swaps.faster_squeeze_excite(network)
        )

    assert_same_computation(*pair(name, every_swap), size=32, batch=4)


# -- BatchNorm folded into the convolution before it ------------------------------------------------
def trained_statistics(network):
    """BatchNorm values as training leaves them (a fresh network's are 1, 0, 0, 1: folding them changes little),
    drawn from each parameter's name so the two networks of a pair get the same ones."""
    import zlib

    for name, param in network.parameters_and_names():
        kind = name.rsplit(".", 1)[-1]
        if kind in ("gamma", "beta", "moving_mean", "moving_variance"):
            rng = np.random.default_rng(zlib.crc32(name.encode()))
            low, high = {"gamma": (0.5, 1.5), "beta": (-0.5, 0.5), "moving_mean": (-0.5, 0.5)}.get(kind, (0.5, 2))
            param.set_data(ms.Tensor(rng.uniform(low, high, param.shape).astype(np.float32)))


def norms(network) -> int:
    return sum(isinstance(cell, nn.BatchNorm2d) for _, cell in network.cells_and_names())


@pytest.mark.parametrize("name", ["mobilenet_v3_small_100", "resnet18", "resnest50"])
def test_folded_batchnorm_gives_the_same_inference_outputs(name, tmp_path):
    reference, folded = pair(name, fold.fold, lambda network: (swaps.apply(network), trained_statistics(network)))
    assert fold.fold(folded) == norms(folded)  # every BatchNorm of these models follows a convolution alone
    assert_same_computation(reference, folded, size=32, batch=4, modes=(False,), gradients=False)
    for network, file in ((reference, "reference.ckpt"), (folded, "folded.ckpt")):
        ms.save_checkpoint(network, str(tmp_path / file))
    saved = [ms.load_checkpoint(str(tmp_path / file)) for file in ("reference.ckpt", "folded.ckpt")]
    assert list(saved[0]) == list(saved[1])  # MindCV's names and layout, the values as loaded
    assert all(saved[0][k].asnumpy().tobytes() == saved[1][k].asnumpy().tobytes() for k in saved[0])
    assert fold.unfold(folded) == norms(folded) and fold.pairs(folded) and not fold.unfold(folded)
    assert not any(isinstance(cell, fold.FoldedConv2d) for _, cell in folded.cells_and_names())


@pytest.mark.parametrize(
    "name, freeze",
    [
        ("mobilenet_v3_small_100", dict(freeze="7")),
        ("resnet18", dict(freeze="5")),
        ("resnet18", dict(linear_probe=True)),
    ],
    ids=["mobilenet-freeze-7", "resnet18-freeze-5", "resnet18-linear-probe"],
)
def test_frozen_blocks_folded_train_as_the_unfolded_network(name, freeze):
    """Frozen blocks keep their BatchNorm in inference mode, so folding them changes nothing in training: the
    same outputs, loss and gradient for every trainable parameter, in training and inference mode."""
    frozen_norms = {}

    def freeze_blocks(network):
        swaps.apply(network)
        trained_statistics(network)
        frozen_norms[id(network)] = strategy.apply(network, strategy.plan(network, name, **freeze))

    def set_mode(network, training):
        strategy.set_train_mode(network, training, frozen_norms[id(network)])

    reference, folded = pair(name, lambda network: fold.fold(network, frozen_only=True), freeze_blocks)
    frozen = len(frozen_norms[id(folded)])
    assert fold.fold(folded, frozen_only=True) == frozen <= norms(folded)  # the frozen ones, and only those
    assert [n for n, cell in folded.cells_and_names() if type(cell) is fold.FoldedBatchNorm2d] == frozen_norms[
        id(folded)
    ]
    assert [p.name for p in folded.trainable_params()] == [p.name for p in reference.trainable_params()]
    # Inference first: the reference's extra (wiggled) run in training mode moves its trainable BatchNorm statistics.
    assert_same_computation(reference, folded, modes=(False, True), set_mode=set_mode)


def test_graph_mode_runs_the_network_as_folded_or_unfolded_now():
    """A compiled network runs the graph it compiled: folding or unfolding afterwards must make it compile anew
    (gradual unfreezing unfolds blocks of a network validation has already compiled)."""
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        network = mindcv.create_model("resnet18", num_classes=4)
        network.set_train(False)
        trained_statistics(network)
        x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
        plain = network(x).asnumpy()
        fold.fold(network)
        for _, cell in network.cells_and_names():
            if isinstance(cell, nn.BatchNorm2d):
                cell.beta.set_data(cell.beta + 1)  # the folded graph must not see this, the unfolded one must
        folded = network(x).asnumpy()
        fold.unfold(network)
        unfolded = network(x).asnumpy()
        np.testing.assert_allclose(folded, plain, rtol=0, atol=1e-5 * np.abs(plain).max())
        assert np.abs(unfolded - plain).max() > 1e-2 * np.abs(plain).max()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


def test_split_attention_swap_survives_amp_level_o1(tmp_path, monkeypatch):
    """amp_level O1 rewrites the network's code into a new module that imports each cell's class by its name."""
    from mindspore import amp

    monkeypatch.chdir(tmp_path)  # O1 writes ./rewritten_network/
    reference, swapped = pair("resnest14", swaps.faster_split_attention)
    x = ms.Tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    expected = reference.set_train(False)(x).asnumpy()
    kernels.restore(swapped)  # as training does: fgvctune's kernels are float32 kernels
    mixed = amp.auto_mixed_precision(swapped, "O1").set_train(False)
    np.testing.assert_allclose(mixed(x).asnumpy(), expected, rtol=0, atol=1e-2 * np.abs(expected).max())
