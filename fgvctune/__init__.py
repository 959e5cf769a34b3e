"""fgvctune: fine-tune pretrained MindCV image classifiers on your own datasets.

The library API mirrors the commands; MindSpore is imported only by the functions that need it.
(Modules are named apart from these functions: importing a submodule would otherwise shadow one.)

    import fgvctune
    fgvctune.convert("aircraft", "data/aircraft-sample", "runs/tree")
    run = fgvctune.train(adapter="aircraft", data_dir="data/aircraft-sample", freeze="7", epoch_size=5)
"""

__version__ = "0.1.0"

_API = {
    "load_dataset": "fgvctune.dataset",
    "convert": "fgvctune.tree",
    "ImageSource": "fgvctune.source",
    "TrainConfig": "fgvctune.config",
    "train": "fgvctune.trainer",
    "evaluate": "fgvctune.evaluation",
    "predict_split": "fgvctune.evaluation",
    "predict_images": "fgvctune.evaluation",
    "layers": "fgvctune.strategy",
    "compare": "fgvctune.comparison",
    "write_report": "fgvctune.report",
    "find_duplicates": "fgvctune.duplicates",
    "export": "fgvctune.deploy",
    "demo": "fgvctune.tutorial",
    "import_weights": "fgvctune.weights",
    "inspect_weights": "fgvctune.weights",
}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'fgvctune' has no attribute {name!r}")
