"""The weights room: PyTorch weight files converted to MindCV checkpoints, and networks created from them.

    torchfile.py  reading .safetensors/.pth/.pt/.bin without torch
    maps.py       the name maps from timm, torchvision and Hugging Face names to MindCV's
    convert.py    the conversion and its parity check against the source model
    loading.py    create_network that also takes a PyTorch file, converted once into the cache

Within the room the order is torchfile < maps < convert < loading (tests/test_layout.py).
May import: fgvctune.config, fgvctune.errors, fgvctune.fileio, fgvctune.runtime, kernels, models, and this room.
"""
