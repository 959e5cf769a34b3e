"""Write docs/configuration.md, the reference of every training key, from fgvctune/config.py.

tests/cli/test_config.py checks that the file matches what this script writes; after changing a key's
default, help text, panel or choices, run it again:

    python docs/make_configuration.py
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fgvctune.config import FIELDS

OUT = Path(__file__).with_name("configuration.md")
INTRO = """# Configuration reference

Every key of a `--config` YAML file, grouped as `fgvctune train --help` shows them. Each key is also a flag with
dashes (`image_resize` is `--image-resize`; a true/false key `ema` is `--ema`/`--no-ema`), except
`adapter_options`, whose entries are the adapter's own flags, given after the others. Values layer as these
defaults, then the `--config` file, then the flags given; a run writes the result to its `config.yaml`.

Every key is MindCV's name; `fgvctune train --help` lists them all as flags. Unknown keys are refused by name;
`num_classes` comes from the data (a contradicting value is an error).

This file is written by `python docs/make_configuration.py` from `fgvctune/config.py`; a test keeps the two
in sync.

`configs/` holds the tutorial's configuration and one per network of its appendix, plus resnet50 and `sample.yaml`
for the bundled sample:
"""
# The packaged configs: file, model, settings, the tutorial appendix's full fine-tuning top-1.
CONFIGS = [
    (
        "mobilenet_v3_small_aircraft.yaml",
        "mobilenet_v3_small_100",
        "batch 8, 600 px, randaug-m7-mstd0.5, 50 epochs, momentum, lr 0.002",
        "88.35%",
    ),
    ("mobilenet_v3_large_aircraft.yaml", "mobilenet_v3_large_100", "as above", "92.22%"),
    ("convnext_tiny_aircraft.yaml", "convnext_tiny", "batch 8, 448 px, AdamW, lr 1e-4, label smoothing 0.1", "93.69%"),
    (
        "resnest50_aircraft.yaml",
        "resnest50",
        "batch 8, 448 px, momentum, lr 0.002 (resnet50's: the appendix gives none)",
        "86.82%",
    ),
    ("resnet50_aircraft.yaml", "resnet50", "batch 8, 448 px, momentum, lr 0.002", "-"),
]


def shown(value) -> str:
    """A value as it is written in a YAML config file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return "''"
    return str(value)


def render() -> str:
    panels: dict[str, list[str]] = {}
    for name, f in FIELDS.items():
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        choices = ", ".join(shown(choice) for choice in f.metadata.get("choices", ()))
        meaning = f.metadata["help"].replace("|", "\\|") + (f" One of: {choices}." if choices else "")
        if "limits" in f.metadata:
            must = "Each of the two (low first)" if f.metadata.get("pair") else "Must be"
            meaning += f" {must} {f.metadata['limits']}."
        panels.setdefault(f.metadata["panel"], []).append(f"| `{name}` | `{shown(default)}` | {meaning} |")
    sections = [
        f"## {panel}\n\n| key | default | meaning |\n| --- | --- | --- |\n" + "\n".join(rows) + "\n"
        for panel, rows in panels.items()
    ]
    configs = "| config | model | settings | tutorial's appendix (full fine-tuning) |\n| --- | --- | --- | ---: |\n"
    configs += "".join(f"| `{name}` | `{model}` | {settings} | {top1} |\n" for name, model, settings, top1 in CONFIGS)
    return "\n".join([INTRO, configs, *sections])


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
