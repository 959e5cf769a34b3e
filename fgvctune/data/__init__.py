"""The data room: everything between a dataset on disk and batches of tensors.

    registry.py    adapters: found through the `fgvctune.adapters` entry points, options parsed from flags
    contract.py    what an adapter answers: Sample, Problem, Listing
    dataset.py     label maps, checking every image, load_dataset
    containers.py  images inside Parquet, Arrow, tar and zip files, read in place by member
    splits.py      split names and roles, the stratified hold-out (public, for adapters)
    card.py        a Hugging Face dataset card: its YAML header, its configs, the one `datasets` reads by default
    hub.py         a Hugging Face Hub dataset id as a folder in huggingface_hub's cache
    tree.py        the offline class tree (`convert`), written atomically, reruns safe
    source.py      the online mappable source, images straight from the adapter's listing
    downscale.py   smaller cached copies of the images (--downscale)
    duplicates.py  exact and near copies inside a split and across train and eval
    pipeline.py    MindCV's transforms and loader over a tree or a source, seeded per epoch

May import: fgvctune.config, fgvctune.errors, fgvctune.fileio, and this room. Never models, training,
results or the commands: a dataset knows nothing of networks or runs.
"""
