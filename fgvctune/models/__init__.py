"""The models room: networks, their weights, and how MindSpore runs them.

    network.py      a bare MindCV network, its classifier and its feature blocks
    checkpoint.py   loading a MindSpore checkpoint: what fits is loaded, what does not is reported or refused
    weights.py      PyTorch weight files converted to MindCV checkpoints, checked against the source model
    torchfile.py    reading .safetensors/.pth/.pt/.bin without torch
    weightmaps.py   the name maps from timm, torchvision and Hugging Face names to MindCV's
    torchcompat.py  the network settings a PyTorch checkpoint needs (BatchNorm epsilon, padding, GELU)
    swaps.py        faster equivalent cells for the CPU, and the seeded dropout
    fold.py         BatchNorm folded into the convolution before it where its statistics are fixed
    factory.py      create_network: all of the above, for a run (the top of this room)
    runtime.py      starting MindSpore: mode, device, seed, its log noise

Within the room the order is network < checkpoint < weights < factory: the converter builds the network it
checks from network.py, never from the factory above it. May import: fgvctune.config, fgvctune.errors,
fgvctune.fileio, and this room. Never data, training, results or the commands.
"""
