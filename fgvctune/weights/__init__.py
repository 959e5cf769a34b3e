"""The weights room: PyTorch weight files converted to MindCV checkpoints.

    torchfile.py  reading .safetensors/.pth/.pt/.bin without torch
    maps.py       the name maps from timm, torchvision and Hugging Face names to MindCV's
    convert.py    the conversion and its parity check against the source model

May import: fgvctune.config, fgvctune.errors, fgvctune.fileio, fgvctune.runtime, kernels, models, and this room.
"""
