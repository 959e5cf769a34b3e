"""Input pipeline: images per second and memory for offline reading, online lazy reading and the
tutorial's read-everything-into-memory ImageClsDataset, at image_resize 224 with randaug-m7-mstd0.5;
and what repeatable runs cost: fgvctune's seeded pipeline against MindCV's transforms as they come
(whose Python augmentations draw in whatever order the workers reach them).

    .venv/bin/python benchmarks/pipeline.py [--images 10000] [--batches 100] [--repeats 3]

Each mode runs in a process of its own, the modes in turn, `--repeats` rounds; the table gives the median
images/s and the largest memory figures. Run it at two `--images` to see memory stay flat as data grows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, fgvc_tree, table  # noqa: E402


class ImageClsDataset:
    """The tutorial's online reader, as written there (every image read into memory up front)."""

    def __init__(self, annotation_dir, images_dir):
        import numpy as np

        self.annotation = {}
        with open(annotation_dir, "r") as f:
            for line in f.readlines():
                image_label = line.replace("\n", "").replace("/", "_").split(" ")
                self.annotation[image_label[0] + ".jpg"] = " ".join(image_label[1:])
        labels = sorted(set(self.annotation.values()))
        self.label2id = {label: i for i, label in enumerate(labels)}
        label2images = {i: [] for i in self.label2id.values()}
        for image, label in self.annotation.items():
            label2images[self.label2id[label]].append(np.fromfile(images_dir + image, dtype=np.uint8))
        self._data = sum(list(label2images.values()), [])
        self._label = sum([[i] * len(label2images[i]) for i in label2images.keys()], [])

    def __getitem__(self, index):
        return self._data[index], self._label[index]

    def __len__(self):
        return len(self._data)


MODES = (
    "empty",
    "offline",
    "offline, unseeded",
    "online lazy",
    "online lazy, Parquet shards",
    "online lazy, tar shards",
    "online lazy, unseeded",
    "tutorial ImageClsDataset, unseeded",
)
# The same images as Hugging Face Parquet shards (row groups of 100, as `datasets` writes image datasets) and as
# WebDataset tar shards, written by `shards` below; read online through the hf and wds adapters.
FORMATS = {
    "online lazy, Parquet shards": ("hf", "hub", {}),
    "online lazy, tar shards": ("wds", "wds", {"label_key": "txt"}),
}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def measure(mode: str, root: Path, batches: int, cache: str) -> dict:
    from fgvctune import runtime

    runtime.start()
    import pyarrow.parquet  # noqa: F401  loaded before measuring in every mode: the library is not the data

    from fgvctune.config import resolve
    from fgvctune.data.dataset import load_dataset

    before = rss_mb()
    config = resolve(
        adapter="aircraft",
        data_dir=str(root),
        image_resize=224,
        batch_size=16,
        auto_augment="randaug-m7-mstd0.5",
        cache_dir=cache,
        num_parallel_workers=2,
    )
    if mode in FORMATS:
        adapter, folder, options = FORMATS[mode]
        dataset = load_dataset(adapter, root.parent / folder, ["train"], options=options, check_images=False)
        dataset.splits["trainval"] = dataset.splits.pop("train")
    else:
        dataset = load_dataset("aircraft", root, ["trainval"], check_images=False) if mode != "empty" else None
    if mode == "empty":
        held = []
    elif mode.startswith("online lazy"):
        from fgvctune.data.source import ImageSource

        held = ImageSource.from_dataset(dataset, "trainval")
    elif mode.startswith("tutorial ImageClsDataset"):
        held = ImageClsDataset(str(root / "data" / "images_variant_trainval.txt"), str(root / "data" / "images") + "/")
    else:
        held = None
    memory = rss_mb() - before
    rate = 0.0
    if mode != "empty":
        rate = throughput(mode, dataset, config, held, batches)
    return {"memory_mb": memory, "images_per_second": rate, "reading_mb": rss_mb() - before - memory}


def throughput(mode, dataset, config, source, batches: int) -> float:
    import mindspore.dataset as ds
    from mindcv.data import create_dataset, create_loader

    from fgvctune.data.pipeline import class_tree, loader, train_transforms

    dataset.train_split = "trainval"
    if mode == "offline":  # fgvctune's repeatable pipeline
        batched = loader(dataset, "trainval", config, training=True, tree=class_tree(dataset, config))
    elif mode == "online lazy" or mode in FORMATS:
        batched = loader(dataset, "trainval", dataclasses.replace(config, read="online"), training=True)
    else:  # MindCV's transforms as they come, unseeded
        if mode.startswith("offline"):
            tree = class_tree(dataset, config)
            raw = create_dataset(name="", root=str(tree), split="trainval", shuffle=True, num_parallel_workers=2)
        else:
            raw = ds.GeneratorDataset(source, column_names=["image", "label"], shuffle=True)
        batched = create_loader(
            raw,
            batch_size=16,
            drop_remainder=True,
            is_training=True,
            transform=train_transforms(config),
            num_parallel_workers=2,
        )
    iterator = batched.create_tuple_iterator(num_epochs=1)
    for _ in range(3):
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * 16 / (time.perf_counter() - started)


def shards(root: Path) -> None:
    """The trainval images as Parquet shards in the Hub's layout (hub/data/train-*.parquet, HF's image struct,
    a ClassLabel) and as WebDataset tar shards (wds/train-*.tar), beside the FGVC tree."""
    import io
    import tarfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from fgvctune.data.dataset import load_dataset

    dataset = load_dataset("aircraft", root, ["trainval"], check_images=False)
    samples = dataset.splits["trainval"]
    classes = list(dataset.labels.classes)
    features = {"image": {"_type": "Image"}, "label": {"_type": "ClassLabel", "names": classes}}
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("image", image), ("label", pa.int64())]).with_metadata(
        {"huggingface": json.dumps({"info": {"features": features}})}
    )
    (root.parent / "hub" / "data").mkdir(parents=True)
    (root.parent / "wds").mkdir()
    per_shard = 2000
    count = (len(samples) + per_shard - 1) // per_shard
    for n in range(count):
        part = samples[n * per_shard : (n + 1) * per_shard]
        rows = {
            "image": [{"bytes": s.path.read_bytes(), "path": s.path.name} for s in part],
            "label": [classes.index(s.label) for s in part],
        }
        target = root.parent / "hub" / "data" / f"train-{n:05d}-of-{count:05d}.parquet"
        pq.write_table(pa.table(rows, schema=schema), target, row_group_size=100)
        with tarfile.open(root.parent / "wds" / f"train-{n:06d}.tar", "w") as tar:
            for s in part:
                for name, data in ((s.path.name, s.path.read_bytes()), (s.path.stem + ".txt", s.label.encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


def case(mode: str, root: Path, cache: Path, batches: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--case", mode, str(root), str(cache), "--batches", str(batches)],
        capture_output=True,
        text=True,
        env=dict(os.environ, GLOG_v="3"),
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("{")), None)
    return json.loads(line) if line else {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}


def summary(found: list[dict]) -> dict:
    """Median speed, largest memory figures; the first error if any round failed."""
    failed = [r for r in found if "error" in r]
    if failed:
        return failed[0]
    rates = sorted(r["images_per_second"] for r in found)
    return {
        "images_per_second": rates[len(rates) // 2],
        "memory_mb": max(r["memory_mb"] for r in found),
        "reading_mb": max(r["reading_mb"] for r in found),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", nargs=3)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case[0], Path(args.case[1]), args.batches, args.case[2])))
        os._exit(0)
    print(describe())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = fgvc_tree(Path(tmp) / "fgvc", args.images, classes=100, size=(400, 300))
        shards(root)
        runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for _ in range(args.repeats):  # the modes in turn, so a busy moment touches each alike
            for mode in MODES:
                runs[mode].append(case(mode, root, Path(tmp) / "cache", args.batches))
        results = {mode: summary(found) for mode, found in runs.items()}
        for mode, r in results.items():
            if mode == "empty":
                continue
            if "error" in r:
                rows.append([mode, "failed", r["error"][:60], ""])
                continue
            extra = (
                "class tree on disk"
                if mode.startswith("offline")
                else f"{r['memory_mb'] - results['empty']['memory_mb']:.1f}"
            )
            rows.append([mode, f"{r['images_per_second']:.1f}", extra, f"{r['reading_mb']:.0f}"])
    print(
        f"{args.images:,} generated 400x300 JPEGs; image_resize 224, randaug-m7-mstd0.5, batch 16, 2 workers; "
        f"{args.batches} batches, median of {args.repeats} rounds"
    )
    print("memory: resident MB added by reading the annotations and building the source, beyond an empty source")
    print("unseeded: MindCV's create_transforms/create_loader as they come, not repeatable with 2 workers")
    print("pyarrow (for Parquet and Arrow) is loaded before measuring in every mode: about 57 MB of its own")
    print("reading: resident MB added while the batches were read (the pipeline's buffers, decoded row groups)")
    print(table(["reading", "images/s", "MB held beyond an empty source", "MB added reading"], rows))


if __name__ == "__main__":
    main()
