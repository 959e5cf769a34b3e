"""The seeded dropout every network fgvctune creates uses in place of MindSpore's: masks a resumed run draws again.

Its counter's name (COUNTER, is_counter) is what checkpoint.py needs to leave the counters out when it loads;
importing this module imports MindSpore, not MindCV nor the kernels.
"""

from __future__ import annotations

import mindspore as ms
from mindspore import nn, ops

COUNTER = "dropout_calls"  # the parameter that counts a SeededDropout's training calls


def is_counter(name: str) -> bool:
    return name.rsplit(".", 1)[-1] == COUNTER


class SeededDropout(nn.Cell):
    """Dropout whose mask is a hash of (seed, layer, call number, element index).

    MindSpore's CPU Dropout draws its mask in parallel chunks whose split depends on how busy the
    cores are, so two runs with the same seed drop different units; its generator state also lives
    inside the kernel, where no checkpoint can keep it. Here the call number is a parameter, saved
    with the weights, so a resumed run draws the masks the uninterrupted run would have drawn.
    """

    def __init__(self, p: float, salt: int):
        super().__init__()
        self.p, self.keep = float(p), 1.0 - float(p)
        self.threshold = int(self.keep * 2**32)
        self.salt = salt & 0x7FFFFFFF
        self.mask = 0xFFFFFFFF  # an attribute, not a module constant: amp_level O1 recompiles construct elsewhere
        self.dropout_calls = ms.Parameter(ms.Tensor(0, ms.int64), name=COUNTER, requires_grad=False)

    def construct(self, x):
        if not self.training or self.p == 0:
            return x
        calls = self.dropout_calls + 1
        ops.assign(self.dropout_calls, calls)
        index = ops.arange(0, x.size, dtype=ms.int64).reshape(x.shape)
        # A 32-bit integer hash (multiply and xor-shift rounds) kept in int64 so nothing overflows.
        h = (index * 0x9E3779B1 + calls * 0x85EBCA77 + self.salt) & self.mask
        h = ops.bitwise_xor(h, ops.bitwise_right_shift(h, 16))
        h = (h * 0x7FEB352D) & self.mask
        h = ops.bitwise_xor(h, ops.bitwise_right_shift(h, 15))
        h = (h * 0x1B873593) & self.mask
        h = ops.bitwise_xor(h, ops.bitwise_right_shift(h, 16))
        return x * (h < self.threshold).astype(x.dtype) / self.keep


def seeded_dropout(network, seed: int) -> int:
    """Swap every nn.Dropout (MindCV's classifier dropout and DropPath use it) for SeededDropout."""
    import zlib

    from fgvctune.kernels.swaps import replace

    def make(old, name):
        p = old.p if old.p is not None else 1.0 - old.keep_prob
        return SeededDropout(p, zlib.crc32(f"{seed}:{name}".encode()))

    swapped = replace(network, nn.Dropout, make)
    for name, param in network.parameters_and_names():
        if is_counter(name):
            param.name = name  # a cell set into a built model gets only its attribute name as prefix
    return swapped
