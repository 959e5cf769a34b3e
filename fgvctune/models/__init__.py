"""The models room: MindCV networks as fgvctune creates them.

    network.py      a bare MindCV network, its classifier and its feature blocks
    dropout.py      the seeded dropout (masks a resumed run draws again) and its counter's name
    torchcompat.py  the network settings a PyTorch checkpoint needs (BatchNorm epsilon, padding, GELU)
    checkpoint.py   loading a MindSpore checkpoint: what fits is loaded, what does not is reported or refused
    factory.py      create_network: a network, its weights and fgvctune's swaps, for a run (the top of this room)
    weights.py      kept for the old import path: fgvctune.weights.convert's names

Within the room the order is network < dropout < torchcompat < checkpoint < factory (tests/test_layout.py).
May import: fgvctune.config, fgvctune.errors, fgvctune.fileio, fgvctune.runtime, kernels, and this room; never
weights (a PyTorch file is fgvctune.weights.loading's to convert), data, training, results or the commands.
"""
