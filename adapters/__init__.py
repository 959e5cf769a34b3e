"""fgvctune's built-in dataset adapters, installed as the package `fgvctune_adapters`.

Each registers through the `fgvctune.adapters` entry-point group, exactly as a third party's would.
"""
