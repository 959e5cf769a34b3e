"""The library API: every documented name is the function, even after every submodule is imported."""

from __future__ import annotations

import importlib
import pkgutil

import fgvctune


def test_public_names_survive_submodule_imports():
    for module in pkgutil.iter_modules(fgvctune.__path__):
        if module.name != "__main__":
            importlib.import_module(f"fgvctune.{module.name}")
    for name in fgvctune.__all__:
        value = getattr(fgvctune, name)
        assert callable(value) and not isinstance(value, type(fgvctune)), name
