"""Write docs/configuration.md, the reference of every training key, from fgvctune/config.py.

tests/test_config.py checks that the file matches what this script writes; after changing a key's
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

This file is written by `python docs/make_configuration.py` from `fgvctune/config.py`; a test keeps the two
in sync.
"""


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
    return "\n".join([INTRO, *sections])


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
