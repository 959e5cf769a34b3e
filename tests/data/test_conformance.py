"""Conformance: datasets laid out as their publishers write them, with the real `datasets` and `webdataset`, read by
fgvctune and by the library itself. For each layout the library is the oracle: fgvctune must read the same splits
(names exactly), the same rows, the same count per class and the same class names, and lose no sample in silence.
Where the library raises, or holds what fgvctune refuses by design, fgvctune gives one line."""

from __future__ import annotations

import itertools
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import classes_file, make_class_tree, png, run_cli, write_image
from fgvctune import load_dataset
from fgvctune.data.dataset import open_adapter
from fgvctune.errors import FgvctuneError


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory):
    """The libraries never reach the network, and keep their caches in the test's folders."""
    cache = tmp_path_factory.mktemp("hf-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("HF_DATASETS_OFFLINE", "1")
        patch.setenv("HF_HOME", str(cache))
        import datasets

        datasets.disable_progress_bars()
        yield


def ids(counts: list[int]) -> list[int]:
    """Class ids with `counts[i]` rows of class i, classes interleaved as shuffled shards hold them."""
    left, out = list(counts), []
    while any(left):
        for i, n in enumerate(left):
            if n:
                out.append(i)
                left[i] -= 1
    return out


@dataclass
class Case:
    """A layout on disk, how fgvctune is asked to read it, and what the library itself loaded from it."""

    adapter: str
    data: str
    options: dict
    splits: dict[str, Counter]  # the library's: split -> class name -> rows
    names: list[str]  # the library's class names
    unlabeled: dict[str, int]  # splits whose labels are all -1 -> rows
    held_out: bool = False  # the library has one split; fgvctune holds out part of it for validation


# -- the Hugging Face side -------------------------------------------------------------------------------------
NUMBERS = itertools.count(1)  # every image of the module differs from every other


def hf_table(features, image: str, columns: dict[str, list], split: str | None = None):
    """A `datasets.Dataset` of real PNGs in column `image`, beside the given columns."""
    import datasets

    rows = len(next(iter(columns.values())))
    cells = [{"bytes": png(n), "path": f"{n:05d}.png"} for n in itertools.islice(NUMBERS, rows)]
    split = datasets.NamedSplit(split) if split else None
    return datasets.Dataset.from_dict({image: cells, **columns}, features=features, split=split)


def classlabel(names: list[str], image: str = "image", label: str = "label"):
    import datasets

    return datasets.Features({image: datasets.Image(), label: datasets.ClassLabel(names=names)})


CIFAR = ["airplane", "automobile", "bird"]
BEANS = ["angular_leaf_spot", "bean_rust", "healthy"]


def simple(names: list[str], counts: list[int], split: str | None = None, image="image", label="label"):
    return hf_table(classlabel(names, image, label), image, {label: ids(counts)}, split)


def oracle(loaded, label: str = "label") -> tuple[dict[str, Counter], list[str], dict[str, int]]:
    """What the library loaded: per split, the rows of each class (ClassLabel ids named by its own int2str),
    the class names, and the splits whose labels are all -1 (HF's "no label")."""
    import datasets

    if isinstance(loaded, datasets.Dataset):
        assert loaded.split is not None, "a single saved split names its split"
        loaded = {str(loaded.split): loaded}
    splits, unlabeled, names = {}, {}, set()
    for split, ds in loaded.items():
        feature = ds.features[label]
        values = list(ds.select_columns([label])[label])
        if values and all(v == -1 for v in values):
            unlabeled[str(split)] = len(values)
            continue
        if isinstance(feature, datasets.ClassLabel):
            names |= set(feature.names)
            splits[str(split)] = Counter(feature.int2str(v) for v in values)
        else:
            names |= {str(v) for v in values}
            splits[str(split)] = Counter(str(v) for v in values)
    return splits, sorted(names), unlabeled


def hf_load(*args, **kwargs):
    """datasets.load_dataset, its cache in the module's folder (datasets may have been imported before HF_HOME)."""
    import datasets

    kwargs.setdefault("cache_dir", os.path.join(os.environ["HF_HOME"], "datasets"))
    return datasets.load_dataset(*args, **kwargs)


def hub_case(root: Path, loaded, label: str = "label", options: dict | None = None) -> Case:
    splits, names, unlabeled = oracle(loaded, label)
    return Case("hf", str(root), options or {}, splits, names, unlabeled)


def cifar10(tmp: Path) -> Case:
    """The Hub's Parquet layout, as CIFAR-10's repository has it: `img` and a ClassLabel `label`."""
    root = tmp / "cifar10"
    (root / "data").mkdir(parents=True)
    for split, counts in (("train", [3, 2, 2]), ("validation", [1, 2, 1]), ("test", [2, 1, 1])):
        simple(CIFAR, counts, image="img").to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return hub_case(root, hf_load(str(root)))


def cifar100(column: str):
    def build(tmp: Path) -> Case:
        """CIFAR-100's layout: two ClassLabel columns, chosen with --label-column."""
        import datasets

        fine, coarse = ["apple", "bee", "couch", "dolphin"], ["fruit", "insect", "household"]
        features = datasets.Features(
            {
                "img": datasets.Image(),
                "fine_label": datasets.ClassLabel(names=fine),
                "coarse_label": datasets.ClassLabel(names=coarse),
            }
        )
        root = tmp / "cifar100"
        (root / "data").mkdir(parents=True)
        for split, fines in (("train", ids([2, 2, 3, 1])), ("test", ids([1, 1, 1, 1]))):
            coarses = [{0: 0, 1: 1, 2: 2, 3: 2}[f] for f in fines]
            table = hf_table(features, "img", {"fine_label": fines, "coarse_label": coarses})
            table.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
        return hub_case(root, hf_load(str(root)), column, {"label_column": column})

    return build


def beans(tmp: Path) -> Case:
    """beans: a file path column, `image`, and a ClassLabel named `labels`."""
    import datasets

    features = datasets.Features(
        {
            "image_file_path": datasets.Value("string"),
            "image": datasets.Image(),
            "labels": datasets.ClassLabel(names=BEANS),
        }
    )
    root = tmp / "beans"
    (root / "data").mkdir(parents=True)
    for split, counts in (("train", [2, 3, 2]), ("validation", [1, 1, 2]), ("test", [1, 1, 1])):
        labels = ids(counts)
        paths = [f"/data/beans/{split}/{BEANS[i]}/{n}.jpg" for n, i in enumerate(labels)]
        table = hf_table(features, "image", {"image_file_path": paths, "labels": labels})
        table.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return hub_case(root, hf_load(str(root)), "labels")


def hashed_shards(tmp: Path) -> Case:
    """Older push_to_hub versions: a hash after the shard number, here with split names of the publisher's own."""
    root = tmp / "hashed"
    (root / "data").mkdir(parents=True)
    for name, counts in (
        ("train-00000-of-00002-0b5c3f8e1d2a4c67", [2, 3, 1]),
        ("train-00001-of-00002-9e8d7c6b5a493827", [1, 1, 1]),
        ("test_seen-00000-of-00001-a1b2c3d4e5f60718", [1, 2, 1]),
        ("test_unseen-00000-of-00001-5f4e3d2c1b0a9988", [2, 1, 1]),
    ):
        simple(CIFAR, counts).to_parquet(str(root / "data" / f"{name}.parquet"))
    return hub_case(root, hf_load(str(root)))


def named_splits(tmp: Path) -> Case:
    """Split names of the publisher's own (zero-shot benchmarks' test_seen and test_unseen)."""
    root = tmp / "named"
    (root / "data").mkdir(parents=True)
    for split, counts in (("train", [3, 2, 2]), ("test_seen", [1, 2, 1]), ("test_unseen", [2, 1, 1])):
        simple(CIFAR, counts).to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return hub_case(root, hf_load(str(root)))


CONFIGS = """---
configs:
- config_name: birds
  data_files:
  - split: train
    path: data/birds-train-*.parquet
  - split: test
    path: data/birds-test-*.parquet
- config_name: planes
  data_files:
  - split: train
    path: data/planes-train-*.parquet
  - split: validation
    path: data/planes-valid-*.parquet
---
# Two configs in one data/ folder
"""


def readme_configs(name: str):
    def build(tmp: Path) -> Case:
        """README `configs:` whose data_files name files in one data/ folder; read with --subset NAME."""
        root = tmp / "configs"
        (root / "data").mkdir(parents=True)
        (root / "README.md").write_text(CONFIGS)
        birds, planes = ["finch", "owl", "wren"], CIFAR[:2]
        for file, names, counts in (
            ("birds-train-00000-of-00001", birds, [2, 2, 3]),
            ("birds-test-00000-of-00001", birds, [1, 1, 1]),
            ("planes-train-00000-of-00001", planes, [4, 2]),
            ("planes-valid-00000-of-00001", planes, [1, 2]),
        ):
            simple(names, counts).to_parquet(str(root / "data" / f"{file}.parquet"))
        return hub_case(root, hf_load(str(root), name), options={"subset": name})

    return build


DEFAULT_CONFIG = """---
configs:
- config_name: full
  default: true
  data_files:
  - split: train
    path: full/train-*.parquet
  - split: test
    path: full/test-*.parquet
- config_name: mini
  data_files:
  - split: train
    path: mini/train-*.parquet
---
"""


def default_config(tmp: Path) -> Case:
    """A README naming a default config (`default: true`), read without --subset, as load_dataset(path) does."""
    root = tmp / "default-config"
    root.mkdir()
    (root / "README.md").write_text(DEFAULT_CONFIG)
    for file, counts in (("full/train", [3, 2, 2]), ("full/test", [1, 1, 2]), ("mini/train", [1, 1, 1])):
        (root / file).parent.mkdir(exist_ok=True)
        simple(CIFAR, counts).to_parquet(str(root / f"{file}-00000-of-00001.parquet"))
    return hub_case(root, hf_load(str(root)))


def pushed_configs(tmp: Path) -> Case:
    """push_to_hub(config_name=...) as the Hub writes it now: <config>/<split>-*.parquet and the README's configs,
    read with --subset."""
    root = tmp / "pushed"
    card = "---\nconfigs:\n"
    for config, train, test in (("small", [2, 2, 1], [1, 1, 1]), ("large", [4, 3, 3], [2, 1, 1])):
        (root / config).mkdir(parents=True)
        card += f"- config_name: {config}\n  data_files:\n"
        for split, counts in (("train", train), ("test", test)):
            card += f"  - split: {split}\n    path: {config}/{split}-*\n"
            simple(CIFAR, counts).to_parquet(str(root / config / f"{split}-00000-of-00001.parquet"))
    (root / "README.md").write_text(card + "---\n")
    return hub_case(root, hf_load(str(root), "large"), options={"subset": "large"})


def split_folders(tmp: Path) -> Case:
    """Split keywords as folder names (train/, valid/, test/), the shards inside named anyhow."""
    root = tmp / "keyword-folders"
    for split, counts in (("train", [2, 3, 2]), ("valid", [1, 1, 1]), ("test", [2, 1, 1])):
        (root / split).mkdir(parents=True)
        simple(CIFAR, counts).to_parquet(str(root / split / "0000.parquet"))
    return hub_case(root, hf_load(str(root)))


def converter(tmp: Path) -> Case:
    """The Hub's parquet converter (refs/convert/parquet): <config>/<split>/0000.parquet."""
    root = tmp / "converted"
    for split, counts in (("train", [2, 3, 2]), ("test", [1, 2, 1])):
        (root / "default" / split).mkdir(parents=True)
        simple(CIFAR, counts).to_parquet(str(root / "default" / split / "0000.parquet"))
    return hub_case(root, hf_load(str(root)))


def keyword_files(tmp: Path) -> Case:
    """Split keywords inside file names (my-train.parquet), no data/ folder."""
    root = tmp / "keyword-files"
    root.mkdir()
    for split, counts in (("train", [2, 2, 3]), ("validation", [1, 1, 1]), ("test", [1, 2, 1])):
        simple(CIFAR, counts).to_parquet(str(root / f"my-{split}.parquet"))
    return hub_case(root, hf_load(str(root)))


def train_only(tmp: Path, held_out: float = 0.0) -> Case:
    """A dataset with a train split only, as many on the Hub are."""
    root = tmp / "train-only"
    (root / "data").mkdir(parents=True)
    simple(BEANS, [4, 5, 4]).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    case = hub_case(root, hf_load(str(root)))
    if held_out:
        case.options, case.held_out = {"val_fraction": held_out}, True
    return case


def unlabeled_test(tmp: Path) -> Case:
    """A test split whose labels are all -1 (HF's "no label"), as ImageNet's and competitions' test splits."""
    root = tmp / "unlabeled"
    (root / "data").mkdir(parents=True)
    for split, labels in (("train", ids([3, 2, 2])), ("validation", ids([1, 1, 1])), ("test", [-1] * 4)):
        hf_table(classlabel(CIFAR), "image", {"label": labels}).to_parquet(
            str(root / "data" / f"{split}-00000-of-00001.parquet")
        )
    return hub_case(root, hf_load(str(root)))


def saved_dict(tmp: Path) -> Case:
    """save_to_disk of a DatasetDict: the split names as saved (`valid` stays `valid`)."""
    import datasets

    root = tmp / "saved"
    splits = {"train": [3, 2, 2], "valid": [1, 1, 1], "test": [1, 2, 1]}
    datasets.DatasetDict({s: simple(CIFAR, c) for s, c in splits.items()}).save_to_disk(str(root))
    return hub_case(root, datasets.load_from_disk(str(root)))


def saved_split(tmp: Path, held_out: float = 0.0) -> Case:
    """One split saved on its own (ds["test"].save_to_disk): its state.json names it."""
    import datasets

    root = tmp / "saved-test"
    simple(CIFAR, [3, 3, 4], split="test").save_to_disk(str(root))
    case = hub_case(root, datasets.load_from_disk(str(root)))
    if held_out:
        case.options, case.held_out = {"val_fraction": held_out}, True
    return case


def datasets_cache(tmp: Path) -> Case:
    """The Arrow files `datasets` itself caches after load_dataset (<cache>/<name>/default/0.0.0/<hash>/)."""
    hub = cifar10(tmp)
    cache = tmp / "datasets-cache"
    loaded = hf_load(hub.data, cache_dir=str(cache))
    folders = {p.parent for p in cache.rglob("*.arrow")}
    assert len(folders) == 1, folders
    return hub_case(folders.pop(), loaded)


def imagefolder(tmp: Path, metadata: str) -> Path:
    """An imagefolder tree: train/ and test/ of PNG files, labels in each split's metadata file."""
    root = tmp / f"imagefolder-{metadata}"
    number = 0
    for split, counts in (("train", {"cat": 3, "dog": 2, "owl": 2}), ("test", {"cat": 1, "dog": 2, "owl": 1})):
        rows = []
        for label, n in counts.items():
            for _ in range(n):
                number += 1
                write_image(root / split / f"{number:04d}.png", (number * 30 % 256, 60, 90), size=(12, 12))
                rows.append({"file_name": f"{number:04d}.png", "label": label, "caption": f"a {label}"})
        if metadata == "csv":
            lines = ["file_name,label,caption"] + [f"{r['file_name']},{r['label']},{r['caption']}" for r in rows]
            (root / split / "metadata.csv").write_text("\n".join(lines) + "\n")
        else:
            (root / split / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def metadata_csv(tmp: Path) -> Case:
    root = imagefolder(tmp, "csv")
    return hub_case(root, hf_load(str(root)))


def metadata_jsonl(tmp: Path) -> Case:
    root = imagefolder(tmp, "jsonl")
    return hub_case(root, hf_load(str(root)))


def imagefolder_splits(tmp: Path) -> Case:
    """imagefolder without metadata: train/<class>/<image>, test/<class>/<image>; labels from folder names."""
    root = tmp / "split-tree"
    make_class_tree(root / "train", {"cat": 3, "dog": 2})
    make_class_tree(root / "test", {"cat": 1, "dog": 2})
    return hub_case(root, hf_load(str(root)))


def plain_tree(adapter: str, held_out: float = 0.0):
    def build(tmp: Path) -> Case:
        """A <class>/<image> tree, no split folders: one split, as load_dataset("imagefolder") and torchvision's
        ImageFolder read it."""
        root = make_class_tree(tmp / "class-tree", {"cat": 4, "dog": 3, "owl": 4})
        case = hub_case(root, hf_load("imagefolder", data_dir=str(root)))
        case.adapter = adapter
        if held_out:
            case.options, case.held_out = {"val_fraction": held_out}, True
        return case

    return build


def snapshot(tmp: Path) -> Case:
    """A Hub cache snapshot folder given by path: huggingface_hub's cache layout (blobs named by their sha256, a
    snapshot of links to them, refs/main naming it), which huggingface_hub itself resolves offline. Reading a Hub id
    from a cache that huggingface_hub downloaded is tests/data/test_hub.py's part."""
    import hashlib
    import shutil

    from huggingface_hub import scan_cache_dir, snapshot_download

    source = tmp / "source"
    (source / "data").mkdir(parents=True)
    (source / "README.md").write_text("---\nlicense: mit\n---\n# Birds\n")
    for split, counts in (("train", [3, 2, 2]), ("validation", [1, 1, 1]), ("test", [1, 2, 1])):
        simple(CIFAR, counts).to_parquet(str(source / "data" / f"{split}-00000-of-00001.parquet"))
    cache, commit = tmp / "hub", "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "datasets--acme--birds"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.move(path, blob)
        link = repo / "snapshots" / commit / path.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    shutil.rmtree(source)
    (cached,) = scan_cache_dir(cache).repos
    assert (cached.repo_id, cached.repo_type) == ("acme/birds", "dataset")
    folder = Path(snapshot_download("acme/birds", repo_type="dataset", cache_dir=cache, local_files_only=True))
    return hub_case(folder, hf_load(str(folder)))


# -- the WebDataset side ---------------------------------------------------------------------------------------
ANIMALS = ["cat", "dog", "owl"]  # as conftest.classes_file writes them


def write_shards(root: Path, name: str, labels: list[int], label: str = "cls", key=None, start: int = 0) -> None:
    """One shard written by webdataset's TarWriter: a PNG and a label per sample, the label as `label` says."""
    import webdataset

    (root / name).parent.mkdir(parents=True, exist_ok=True)
    with webdataset.TarWriter(str(root / name)) as sink:
        for i, cls in enumerate(labels, start=start):
            sample = {"__key__": key(i) if key else f"sample{i:06d}", "png": png(i)}
            if label == "cls":
                sample["cls"] = cls
            elif label == "txt":
                sample["txt"] = ANIMALS[cls]
            elif label == "json-name":
                sample["json"] = {"animal": ANIMALS[cls], "photographer": "anon"}
            else:
                sample["json"] = {"animal": cls, "photographer": "anon"}
            sink.write(sample)


def wds_oracle(urls, label: str, names: list[str] | None) -> Counter:
    """The samples webdataset.WebDataset yields from `urls`, counted per class name."""
    import webdataset

    counts = Counter()
    for sample in webdataset.WebDataset(urls, shardshuffle=False, empty_check=False):
        entries = {k.rsplit(".", 1)[-1]: v for k, v in sample.items() if not k.startswith("__")}
        assert "png" in entries, sample["__key__"]
        if label == "json":
            value = json.loads(entries["json"])["animal"]
        else:
            value = entries[label].decode().strip()
        counts[names[int(value)] if names else str(value)] += 1
    return counts


def wds_case(root: Path, urls_by_split: dict[str, list], label: str, options: dict, names=None) -> Case:
    splits = {split: wds_oracle([str(u) for u in urls], label, names) for split, urls in urls_by_split.items()}
    all_names = sorted({c for counts in splits.values() for c in counts})
    return Case("wds", str(root), options, splits, all_names, {})


def wds_flat(tmp: Path) -> Case:
    """Shards named by split beside each other (train-000000.tar, train-000001.tar, test-000000.tar)."""
    root = tmp / "wds-flat"
    write_shards(root, "train-000000.tar", ids([2, 2, 1]))
    write_shards(root, "train-000001.tar", ids([1, 1, 2]), start=100)
    write_shards(root, "test-000000.tar", ids([1, 2, 1]), start=200)
    options = {"classes": classes_file(root)}
    urls = {"train": sorted(root.glob("train-*.tar")), "test": [root / "test-000000.tar"]}
    return wds_case(root, urls, "cls", options, ANIMALS)


def wds_split_folders(tmp: Path) -> Case:
    """Shards in split folders (train/*.tar, val/*.tar): each keeps its split."""
    root = tmp / "wds-folders"
    write_shards(root, "train/shard-000000.tar", ids([2, 2, 1]))
    write_shards(root, "train/shard-000001.tar", ids([1, 2, 2]), start=100)
    write_shards(root, "val/shard-000000.tar", ids([1, 1, 1]), start=200)
    options = {"classes": classes_file(root)}
    urls = {"train": sorted((root / "train").glob("*.tar")), "val": sorted((root / "val").glob("*.tar"))}
    return wds_case(root, urls, "cls", options, ANIMALS)


def wds_gzip(tmp: Path) -> Case:
    """Gzipped shards (.tar.gz), found without --shards."""
    root = tmp / "wds-gz"
    write_shards(root, "train-000000.tar.gz", ids([2, 3, 2]), label="txt")
    write_shards(root, "test-000000.tar.gz", ids([1, 1, 2]), label="txt", start=100)
    urls = {"train": [root / "train-000000.tar.gz"], "test": [root / "test-000000.tar.gz"]}
    return wds_case(root, urls, "txt", {"label_key": "txt"})


def wds_braces(tmp: Path) -> Case:
    """A brace list and a range in one pattern, expanded as webdataset expands it."""
    import braceexpand

    root = tmp / "wds-braces"
    pattern = "{train,test}-{000000..000001}.tar"
    for n, name in enumerate(braceexpand.braceexpand(pattern)):
        write_shards(root, name, ids([1, 2, 1]) if n % 2 else ids([2, 1, 1]), start=100 * n)
    write_shards(root, "extra-000000.tar", ids([1, 1, 1]), start=900)  # not in the pattern: not read
    urls = {split: [root / f"{split}-000000.tar", root / f"{split}-000001.tar"] for split in ("train", "test")}
    return wds_case(root, urls, "cls", {"shards": pattern, "classes": classes_file(root)}, ANIMALS)


def wds_label(label: str):
    def build(tmp: Path) -> Case:
        """Labels as .cls ids with --classes, .txt names, json:FIELD names, or json:FIELD ids with --classes."""
        root = tmp / f"wds-{label}"
        kind = "json" if label.startswith("json") else label
        write_shards(root, "train-000000.tar", ids([3, 2, 2]), label=label)
        write_shards(root, "validation-000000.tar", ids([1, 1, 2]), label=label, start=100)
        options = {"label_key": "json:animal" if kind == "json" else kind}
        names = None
        if label in ("cls", "json-id"):
            options["classes"] = classes_file(root)
            names = ANIMALS
        urls = {"train": [root / "train-000000.tar"], "validation": [root / "validation-000000.tar"]}
        return wds_case(root, urls, kind, options, names)

    return build


def wds_dotted_keys(tmp: Path) -> Case:
    """Keys with dots (`img_0_0.v2`): webdataset's key is the name up to the first dot of the file name, the rest
    is the entry's suffix (`v2.png`, `v2.cls`)."""
    root = tmp / "wds-dots"
    write_shards(root, "train-000000.tar", ids([3, 2, 2]), key=lambda i: f"img_{i}_0.v2")
    write_shards(root, "test-000000.tar", ids([1, 1, 1]), key=lambda i: f"img_{i}_0.v2", start=100)
    urls = {"train": [root / "train-000000.tar"], "test": [root / "test-000000.tar"]}
    return wds_case(root, urls, "cls", {"classes": classes_file(root)}, ANIMALS)


def wds_unnamed(tmp: Path) -> Case:
    """Shards whose names say no split: one pool, of which fgvctune holds out a stratified share."""
    root = tmp / "wds-pool"
    write_shards(root, "shard-000000.tar", ids([4, 4, 3]))
    write_shards(root, "shard-000001.tar", ids([2, 3, 3]), start=100)
    case = wds_case(root, {"": sorted(root.glob("*.tar"))}, "cls", {"classes": classes_file(root)}, ANIMALS)
    case.held_out = True
    return case


LAYOUTS = {
    "hf-cifar10-hub-parquet": cifar10,
    "hf-cifar100-fine_label": cifar100("fine_label"),
    "hf-cifar100-coarse_label": cifar100("coarse_label"),
    "hf-beans-labels": beans,
    "hf-older-push-hashed-shards": hashed_shards,
    "hf-own-split-names-test_seen-test_unseen": named_splits,
    "hf-readme-configs-birds": readme_configs("birds"),
    "hf-readme-configs-planes": readme_configs("planes"),
    "hf-readme-default-config": default_config,
    "hf-push-to-hub-config-folders": pushed_configs,
    "hf-keyword-split-folders": split_folders,
    "hf-parquet-converter-folders": converter,
    "hf-keyword-file-names": keyword_files,
    "hf-train-only": train_only,
    "hf-unlabeled-test-split": unlabeled_test,
    "hf-save-to-disk-dict-valid": saved_dict,
    "hf-save-to-disk-one-split": saved_split,
    "hf-datasets-cache-arrow": datasets_cache,
    "hf-imagefolder-metadata-csv": metadata_csv,
    "hf-imagefolder-metadata-jsonl": metadata_jsonl,
    "hf-imagefolder-split-class-tree": imagefolder_splits,
    "hf-plain-class-tree": plain_tree("hf"),
    "folder-plain-class-tree": plain_tree("folder"),
    "hf-hub-cache-snapshot-path": snapshot,
    "hf-train-only-val-fraction": lambda tmp: train_only(tmp, 0.25),
    "hf-one-saved-split-val-fraction": lambda tmp: saved_split(tmp, 0.3),
    "folder-plain-class-tree-val-fraction": plain_tree("folder", 0.25),
    "wds-flat-split-shards": wds_flat,
    "wds-split-folders": wds_split_folders,
    "wds-tar-gz": wds_gzip,
    "wds-brace-list": wds_braces,
    "wds-cls-with-classes": wds_label("cls"),
    "wds-txt-names": wds_label("txt"),
    "wds-json-names": wds_label("json-name"),
    "wds-json-ids-with-classes": wds_label("json-id"),
    "wds-dotted-keys": wds_dotted_keys,
    "wds-unnamed-shards-stratified": wds_unnamed,
}


# -- reading with fgvctune ---------------------------------------------------------------------------------------
def fgvctune_reads(case: Case, chosen: list[str] | None) -> dict:
    """What fgvctune reads: the adapter's listing (split -> rows, unlabeled splits) and the checked dataset."""
    listing = open_adapter(case.adapter, case.data, **case.options).read()
    dataset = load_dataset(case.adapter, case.data, splits=chosen, options=case.options, strict=False)
    return {
        "listed": {s: len(v) for s, v in listing.splits.items()},
        "unlabeled": sorted(listing.unlabeled),
        "counts": {s: Counter(x.label for x in v) for s, v in dataset.splits.items()},
        "classes": list(dataset.labels.classes),
        "problems": [str(p) for p in dataset.problems],
        "roles": [dataset.train_split, dataset.eval_split],
    }


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_fgvctune_reads_what_the_library_loads(layout, tmp_path):
    case = LAYOUTS[layout](tmp_path)
    assert case.splits and all(case.splits.values()), f"the library loaded nothing: {case.splits}"
    if case.held_out:
        # The library's one split; fgvctune's two (train and a stratified validation share) hold it exactly.
        (whole,) = case.splits.values()
        read = fgvctune_reads(case, None)
        assert read["problems"] == []
        assert len(read["counts"]) == 2 and all(read["counts"].values()), read["counts"]
        train, held = read["roles"]
        assert train and held and train != held, read["roles"]
        assert sum((Counter(c) for c in read["counts"].values()), Counter()) == whole
        assert read["classes"] == case.names
        return
    read = fgvctune_reads(case, list(case.splits))
    # The splits (names exactly), the unlabeled ones among them.
    assert set(read["listed"]) == set(case.splits) | set(case.unlabeled), read["listed"]
    assert set(read["unlabeled"]) == set(case.unlabeled)
    for split, rows in case.unlabeled.items():
        assert read["listed"][split] == rows, split
    # Rows, counts per class, class names; nothing lost on the way.
    assert {s: dict(c) for s, c in read["counts"].items()} == {s: dict(c) for s, c in case.splits.items()}
    assert read["classes"] == case.names
    assert read["problems"] == []


# -- refused in one line -----------------------------------------------------------------------------------------
# (Others are where their adapter's tests are: a cut-short Arrow file and a multi-label column in test_hf_layouts.py,
# keys webdataset merges in test_wds_layouts.py, a Hub id by name in test_hub.py.)
def test_a_zero_row_split_the_library_cannot_load_stops_in_one_line_when_used(tmp_path):
    """`datasets` cannot write an empty split of images (to_parquet and save_to_disk divide by its size), so the
    shard is written with pyarrow from `datasets`' own table; `datasets` then raises on it."""
    import pyarrow.parquet as pq

    root = tmp_path / "empty-split"
    (root / "data").mkdir(parents=True)
    simple(CIFAR, [2, 2, 2]).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    empty = simple(CIFAR, [0, 0, 0])
    pq.write_table(empty.data.table, root / "data" / "test-00000-of-00001.parquet")
    with pytest.raises(Exception) as raised:
        hf_load(str(root))
    assert not isinstance(raised.value, FgvctuneError)
    assert open_adapter("hf", root).read().splits.get("test") == []  # listed, not vanished
    with pytest.raises(FgvctuneError, match=r"'test'.*(empty|no rows|0 rows|0 samples)"):
        load_dataset("hf", root, splits=["test"])
    train = load_dataset("hf", root, splits=["train"])  # the split not used does not stop the one used
    assert oracle({"train": hf_load(str(root / "data"), data_files={"train": "train-*.parquet"})["train"]})[0] == {
        "train": Counter(s.label for s in train.splits["train"])
    }


def test_an_unlabeled_split_does_not_stop_training_on_the_others(tmp_path):
    """-1 labels in the test split: train and validation are what `train` uses, checked strictly."""
    case = unlabeled_test(tmp_path)
    dataset = load_dataset("hf", case.data, roles=True)
    assert (dataset.train_split, dataset.eval_split) == ("train", "validation")
    assert {s: Counter(x.label for x in v) for s, v in dataset.splits.items()} == case.splits


# -- through the command ------------------------------------------------------------------------------------------
CLI = {
    "hf-cifar10-hub-parquet": [],
    "hf-cifar100-fine_label": ["--label-column", "fine_label"],
    "hf-readme-configs-planes": ["--subset", "planes"],
    "wds-split-folders": ["--classes", "classes.txt"],
    "wds-brace-list": ["--shards", "{train,test}-{000000..000001}.tar", "--classes", "classes.txt"],
    "folder-plain-class-tree": [],
}


@pytest.mark.parametrize("layout", list(CLI))
def test_info_shows_what_the_library_loads(layout, tmp_path):
    case = LAYOUTS[layout](tmp_path)
    options = CLI[layout]
    done = run_cli("info", "-a", case.adapter, "-d", case.data, "--no-duplicates", *options)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    shown = dict(re.findall(r"^  (\S+?)(?: \((?:train|eval)\))?: (\d+) images", done.stdout, re.M))
    assert {s: int(n) for s, n in shown.items()} == {s: sum(c.values()) for s, c in case.splits.items()}
    assert f": {len(case.names)} classes" in done.stdout and "no problems found" in done.stdout
