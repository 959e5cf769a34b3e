"""The data room: everything between a dataset on disk and batches of tensors.

Its modules, each importing only those above it in this list (bottom of the room first):

    containers.py  images inside Parquet, Arrow, tar and zip files, read in place by member
    contract.py    what an adapter answers: Sample, Problem, Listing
    splits.py      split names and roles, the stratified hold-out (public, for adapters)
    labels.py      the label map (labels.csv) and each class's folder name
    images.py      a sample's image: checked, opened under a pixel limit, decoded as training sees it
    registry.py    adapters: found through the `fgvctune.adapters` entry points, options parsed from flags
    card.py        a Hugging Face dataset card: its YAML header, its configs, the one `datasets` reads by default
    hub.py         a Hugging Face Hub dataset id as a folder in huggingface_hub's cache
    edits.py       --exclude and --relabel: samples left out or relabelled by id, from doctor.csv or any list
    dataset.py     the checks every adapter's answer goes through, load_dataset
    duplicates.py  exact and near copies inside a split and across train and eval
    tree.py        the offline class tree (`convert`), written atomically, reruns safe
    downscale.py   smaller cached copies of the images (--downscale)
    source.py      the online mappable source, images straight from the adapter's listing
    pipeline.py    MindCV's transforms and loader over a tree or a source, seeded per epoch

May import: fgvctune.config, fgvctune.errors, fgvctune.fileio, and this room. Never models, training,
results or the commands: a dataset knows nothing of networks or runs.
"""
