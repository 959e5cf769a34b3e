"""fgvctune: fine-tune pretrained MindCV image classifiers on your own datasets.

The library API mirrors the commands; MindSpore is imported only by the functions that need it.
The code lives in rooms by job (see each room's docstring for what it owns and may import):

    data/      adapters' registry, datasets and their checks, class trees, sources, the input pipeline
    kernels/   fgvctune's own CPU kernels (C++), their stand-in cells, the CPU swaps, BatchNorm folding
    models/    creating networks, loading MindSpore checkpoints, the seeded dropout
    weights/   PyTorch weight files converted to MindCV checkpoints, and networks created from them
    training/  the trainer, its step, strategies (freezing, rate multipliers), data-parallel workers
    results/   run folders' files, evaluation, metrics, plots, the report, export
    cli/, comparison.py, doctor.py, tuning.py, tutorial.py on top;
    config.py, errors.py, fileio.py, runtime.py under everything.

    import fgvctune
    fgvctune.convert("aircraft", "data/aircraft-sample", "runs/tree")
    run = fgvctune.train(adapter="aircraft", data_dir="data/aircraft-sample", freeze="7", epoch_size=5)
"""

__version__ = "0.1.0"

# Names are looked up lazily, so `import fgvctune` stays light. (No room is named after a function
# here: importing fgvctune.training would otherwise replace `fgvctune.train` by a module.)
_API = {
    "load_dataset": "fgvctune.data.dataset",
    "Listing": "fgvctune.data.contract",
    "Sample": "fgvctune.data.contract",
    "Problem": "fgvctune.data.contract",
    "IMAGE_EXTENSIONS": "fgvctune.data.contract",
    "convert": "fgvctune.data.tree",
    "ImageSource": "fgvctune.data.source",
    "find_duplicates": "fgvctune.data.duplicates",
    "TrainConfig": "fgvctune.config",
    "train": "fgvctune.training.trainer",
    "layers": "fgvctune.training.strategy",
    "lr_find": "fgvctune.training.lrfind",
    "evaluate": "fgvctune.results.evaluation",
    "predict_split": "fgvctune.results.prediction",
    "predict_images": "fgvctune.results.prediction",
    "write_report": "fgvctune.results.report",
    "export": "fgvctune.results.export",
    "compare": "fgvctune.comparison",
    "tune": "fgvctune.tuning",
    "diagnose": "fgvctune.doctor",
    "demo": "fgvctune.tutorial",
    "import_weights": "fgvctune.weights.convert",
    "inspect_weights": "fgvctune.weights.convert",
}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'fgvctune' has no attribute {name!r}")
