"""The results room: what a run leaves behind, and everything read from it after training.

Modules in their order: each imports only the ones above it (and the rooms below).

    runfiles.py           the names and formats of a run folder's files (and a comparison's), spelled here only
    metrics.py            top-k, per-class accuracy, predicting a loader
    page.py               the report page's building blocks (tables, cards, sections, inline pictures) and style
    plots.py              training curves, confusion matrix, prediction grid, lr-find and comparison pictures
    model.py              a trained network with its config and label map, loaded from a run (or a checkpoint)
    scoring.py            a model's scores on a split or on samples, with test-time augmentation
    gradcam.py            Grad-CAM heatmaps: where in an image the model found a class, and their overlays
    prediction.py         predict: pred.txt for a split, predictions.csv for image files, the picture grid
    evaluation.py         eval: eval.json, confusion.csv and confusion.png of a checkpoint on a split, its top losses
    report.py             report.html: a run on one page
    comparison_report.py  report.html of `compare`: the strategies side by side on one page
    doctor_report.py      doctor.html of `doctor`: each kind of issue found in the data, thumbnails worst first
    export.py             MINDIR/ONNX export with the label map beside it

May import: the base (fgvctune, config, errors, fileio, runtime), data, kernels, models, weights, and this room.
Never training or the commands: everything here works on a finished run folder.
"""
