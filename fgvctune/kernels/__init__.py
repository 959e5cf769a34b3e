"""The kernels room: fgvctune's own CPU kernels and the faster equivalent cells swapped into MindCV's models.

    build.py    compiling the kernels once per machine into the private cache, and loading them
    cells.py    the stand-in cells that run them, as one table, swapped in and restored
    swaps.py    faster equivalent cells for MindCV's blocks on the CPU, and `apply`: every CPU swap
    fold.py     BatchNorm folded into the convolution before it where its statistics are fixed
    channels_last.py  ConvNeXt fused on channels-last tensors, from its stem to its last block
    pooling.py  the global average pooling before a classifier as one op of fgvctune's
    fuse.py     folded layers fused: ResNet blocks in oneDNN's layout, MobileNetV3's layers as fewer ops, and
                ConvNeXt's (channels_last.py); unfused again
    csrc/       the kernels' C++ sources (one .cc per kind of layer) and common.h, which they all include

Within the room the order is build < cells < swaps < fold < channels_last < pooling < fuse
(tests/test_layout.py).
May import: fgvctune.config, fgvctune.errors, fgvctune.fileio, fgvctune.runtime, and this room; never models.
"""
