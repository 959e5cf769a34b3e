"""The kernels room: fgvctune's own CPU kernels and the faster equivalent cells swapped into MindCV's models.

    cells.py    the kernels' build and their stand-in cells
    swaps.py    faster equivalent cells for the CPU
    fold.py     BatchNorm folded into the convolution before it where its statistics are fixed
    csrc/       the kernels' C++ sources

May import: fgvctune.config, fgvctune.errors, fgvctune.fileio, fgvctune.runtime, and this room.
"""
