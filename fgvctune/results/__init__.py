"""The results room: what a run leaves behind, and everything read from it after training.

    runfiles.py    the names and formats of a run folder's files (and a comparison's), read and written here only
    evaluation.py  eval and predict: the best checkpoint on a split or on image files
    metrics.py     top-k, per-class accuracy, predicting a loader
    plots.py       training curves, confusion matrix, prediction grid
    report.py      report.html: a run, or a comparison, on one page
    export.py      MINDIR/ONNX/AIR export with the label map beside it

May import: data, models, fgvctune.config, errors, fileio, and this room. Never training or the commands:
everything here works on a finished run folder.
"""
