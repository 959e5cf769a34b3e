"""The library API: every documented name is what it names, even after every module of every room is imported."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import fgvctune


def test_public_names_survive_submodule_imports():
    """No module shadows a package name (a subpackage `fgvctune.train` would replace the function fgvctune.train)."""
    for module in pkgutil.walk_packages(fgvctune.__path__, "fgvctune."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for name in fgvctune.__all__:
        value = getattr(fgvctune, name)
        assert not isinstance(value, ModuleType), name
        assert callable(value) or name.isupper(), name  # functions and classes, and constants such as IMAGE_EXTENSIONS
