"""Datasets where people keep them: the same data as a folder tree, as the Hub's Parquet shards and `save_to_disk`
Arrow files (written by the real `datasets`), as WebDataset shards (webdataset's ShardWriter) and as archives of
the tree. Every form gives the same dataset, the same class tree and the same bytes online; bad rows and members
are named by shard and row or member."""

from __future__ import annotations

import io
import json
import shutil
import struct
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from conftest import FAST, SAMPLE, fgvctune, zip_tree
from fgvctune import ImageSource, convert, load_dataset
from fgvctune.data.containers import Member, forget_readers
from fgvctune.data.dataset import encoded_image, folder_name, transformed_suffix
from fgvctune.errors import DataError
from fgvctune.results.runfiles import read_results

SPLITS = {"trainval": "train", "test": "test"}


@pytest.fixture(scope="module")
def forms(tmp_path_factory) -> dict[str, tuple[str, Path, dict]]:
    """The sample's manufacturers (3 classes, 128 train / 64 test images) in every form: name -> (adapter,
    data dir, options)."""
    import datasets
    import webdataset

    root = tmp_path_factory.mktemp("forms")
    sample = load_dataset("aircraft", SAMPLE, options={"level": "manufacturer"})
    classes = list(sample.labels.classes)
    images = {}  # split -> [(name, label, bytes)]
    for split, new in SPLITS.items():
        images[new] = [(s.path.stem + transformed_suffix(s), s.label, encoded_image(s)) for s in sample.splits[split]]
    folder = root / "folder"
    for split, rows in images.items():
        for name, label, data in rows:
            path = folder / split / folder_name(label) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=classes)})

    def table(split):
        rows = images[split]
        return datasets.Dataset.from_dict(
            {
                "image": [{"bytes": data, "path": name} for name, _, data in rows],
                "label": [classes.index(label) for _, label, _ in rows],
            },
            features=features,
        )

    hub = root / "hub"
    (hub / "data").mkdir(parents=True)
    train = table("train")
    for i in range(2):  # two train shards, as the Hub writes large splits
        train.shard(2, i, contiguous=True).to_parquet(str(hub / "data" / f"train-0000{i}-of-00002.parquet"))
    table("test").to_parquet(str(hub / "data" / "test-00000-of-00001.parquet"))
    disk = root / "disk"
    datasets.DatasetDict({"train": train, "test": table("test")}).save_to_disk(str(disk))

    shards = root / "wds"
    shards.mkdir()
    for split, rows in images.items():
        with webdataset.ShardWriter(str(shards / f"{split}-%06d.tar"), maxcount=50, verbose=0) as sink:
            for name, label, data in rows:
                key, ext = name.rsplit(".", 1)
                sink.write({"__key__": key, ext: data, "cls": classes.index(label)})
    (shards / "classes.txt").write_text("".join(f"{c}\n" for c in classes))

    archives = root / "archives"
    archives.mkdir()
    with tarfile.open(archives / "tree.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="folder")  # with a top folder around the tree
    zip_tree(folder, archives / "tree.zip")
    return {
        "folder": ("folder", folder, {}),
        "hub": ("hf", hub, {}),
        "disk": ("hf", disk, {}),
        "wds": ("wds", shards, {"classes": "classes.txt"}),
        "tar.gz": ("folder", archives / "tree.tar.gz", {}),
        "zip": ("folder", archives / "tree.zip", {}),
    }


def content(dataset) -> dict[str, list[tuple[str, str]]]:
    return {split: sorted((s.label, s.path.name) for s in samples) for split, samples in dataset.splits.items()}


@pytest.mark.parametrize("form", ["hub", "disk", "wds", "tar.gz", "zip"])
def test_every_form_is_the_same_dataset_tree_and_bytes(forms, form, tmp_path):
    adapter, data, options = forms[form]
    reference = load_dataset("folder", forms["folder"][1])
    dataset = load_dataset(adapter, data, options=options)
    assert dataset.labels.classes == reference.labels.classes == ("Boeing", "Cessna", "McDonnell Douglas")
    assert content(dataset) == content(reference)
    assert (dataset.train_split, dataset.eval_split) == ("train", "test")
    assert all(isinstance(s.path, Member) for ss in dataset.splits.values() for s in ss)

    trees = {}
    for name, (a, d, o) in (("folder", forms["folder"]), (form, forms[form])):
        convert(a, d, tmp_path / name, options=o, mode="copy")
        trees[name] = {
            p.relative_to(tmp_path / name).as_posix(): p.read_bytes()
            for p in (tmp_path / name).rglob("*")
            if p.is_file() and p.suffix != ".json"
        }
        # counts.csv lists the splits in the order the adapter gives them
        trees[name]["counts.csv"] = sorted(trees[name]["counts.csv"].splitlines())
    assert trees[form] == trees["folder"]  # same files, same bytes, same labels.csv and counts.csv
    again = convert(adapter, data, tmp_path / form, options=options, mode="move")
    assert again.placed == 0  # a rerun writes nothing, and `move` never takes images out of a shard
    assert load_dataset(adapter, data, options=options).splits.keys() == dataset.splits.keys()

    online = ImageSource.from_dataset(dataset, "test")
    assert len(online) == 64
    for i in range(len(online)):
        image, label = online[i]
        s = online.sample(i)
        expected = (forms["folder"][1] / "test" / folder_name(s.label) / s.path.name).read_bytes()
        assert image.tobytes() == expected and dataset.labels.classes[int(label)] == s.label


def test_info_lists_the_shards(forms, tmp_path):
    adapter, data, options = forms["hub"]
    shown = fgvctune("info", "-a", adapter, "-d", str(data), "--no-duplicates", log=tmp_path / "info.log")
    assert shown.returncode == 0, shown.stdout
    assert "inside 3 file(s): data/test-00000-of-00001.parquet, data/train-00000-of-00002.parquet" in shown.stdout
    assert "train (train): 128 images" in shown.stdout


@pytest.mark.e2e
@pytest.mark.parametrize(("form", "read"), [("hub", "online"), ("wds", "offline"), ("disk", "online")])
def test_train_eval_predict_report_on_each_form(forms, form, read, tmp_path, cache):
    """From scratch for two epochs, so that there are mistakes for the report to picture."""
    adapter, data, options = forms[form]
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    run = tmp_path / "run"
    trained = fgvctune(
        "train", "-a", adapter, "-d", str(data), "--no-pretrained", "--epoch-size", "2",
        "--image-resize", str(FAST["image_resize"]), "--batch-size", "16", "--read", read, "--cache-dir", cache,
        "-o", str(run), *extra, log=tmp_path / "train.log",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-3000:]
    assert len(read_results(run)) == 2 and "128 train / 64 test images" in trained.stdout
    evaluation = json.loads((run / "eval-test" / "eval.json").read_text())
    assert evaluation["count"] == 64
    top = evaluation["top_losses"]
    assert top and all(":" in m["image"] and m["member"]["kind"] in ("parquet", "arrow", "tar") for m in top)
    html = (run / "report.html").read_text()
    # every top loss's thumbnail, read from inside its shard
    assert html.count('<figure><img src="data:image/png;base64,') == len(top)
    predicted = fgvctune("predict", str(run), "--split", "test", log=tmp_path / "predict.log")
    assert predicted.returncode == 0, predicted.stdout[-2000:]
    rows = [line.split("\t") for line in (run / "predict-test" / "pred.txt").read_text().splitlines()[1:]]
    assert len(rows) == 64 and all(":" in row[0] for row in rows)  # SHARD:ROW or SHARD:MEMBER
    assert {row[4] for row in rows} == {"Boeing", "Cessna", "McDonnell Douglas"}
    assert (run / "predict-test" / "predictions.png").is_file()


# -- bad input: one line naming the shard and row (or member); --skip-bad keeps the rest --------------------
def rewrite_parquet(path: Path, change) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    pq.write_table(change(table), path)
    forget_readers()


def test_bad_parquet_rows_are_named_and_skipped(forms, tmp_path):
    import pyarrow as pa

    hub = tmp_path / "hub"
    shutil.copytree(forms["hub"][1], hub)
    shard = hub / "data" / "train-00000-of-00002.parquet"

    def spoil(table):
        images = table.column("image").to_pylist()
        labels = table.column("label").to_pylist()
        images[3] = {"bytes": b"not an image at all", "path": images[3]["path"]}
        images[5] = None
        labels[7] = 9
        columns = {"image": pa.array(images, table.schema.field("image").type), "label": pa.array(labels, pa.int64())}
        return pa.table(columns, schema=table.schema)

    rewrite_parquet(shard, spoil)
    with pytest.raises(DataError) as error:
        load_dataset("hf", hub)
    message = str(error.value)
    assert "\n" not in message and "data/train-00000-of-00002.parquet:" in message and "(and 2 more)" in message
    dataset = load_dataset("hf", hub, skip_bad=True)
    problems = sorted(str(p) for p in dataset.problems)
    assert (
        problems[0].startswith("data/train-00000-of-00002.parquet:3: ")
        and "is not an image PIL can read" in problems[0]
    )
    assert problems[1:] == [
        "data/train-00000-of-00002.parquet:5: the image is null",
        "data/train-00000-of-00002.parquet:7: label 9 is outside the 3 ClassLabel names",
    ]
    assert len(dataset.splits["train"]) == 125 and len(dataset.splits["test"]) == 64


def test_parquet_without_images_and_unknown_split(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"text": ["a", "b"], "label": [0, 1]}), tmp_path / "data" / "train-00000.parquet")
    with pytest.raises(DataError, match="is not a dataset of images: no image column among text, label"):
        load_dataset("hf", tmp_path)


def test_unknown_split_is_named(forms):
    from fgvctune.errors import UsageError

    with pytest.raises(UsageError, match="split 'validation' is not in this dataset; it has: train, test"):
        load_dataset("hf", forms["hub"][1], splits=["validation"])


def test_bad_webdataset_members(forms, tmp_path):
    shards = tmp_path / "wds"
    shutil.copytree(forms["wds"][1], shards)
    extra = shards / "train-000009.tar"
    with tarfile.open(extra, "w") as tar:
        for name, data in (("x1.jpg", b"\xff\xd8\xff"), ("x2.jpg", b"a"), ("x2.png", b"b"), ("x3.jpg", b"c")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dataset = load_dataset("wds", shards, options={"classes": "classes.txt"}, skip_bad=True)
    problems = sorted(str(p) for p in dataset.problems)
    assert "train-000009.tar:x1: an image but no .cls label" in problems
    assert "train-000009.tar:x2: two images under one key (jpg, png)" in problems
    assert "train-000009.tar:x3: an image but no .cls label" in problems
    assert len(dataset.splits["train"]) == 128

    cut = shards / "train-000000.tar"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    forget_readers()
    with pytest.raises(DataError, match=r"train-000000.tar is not a complete tar archive"):
        load_dataset("wds", shards, options={"classes": "classes.txt"})


def test_webdataset_labels_by_text_and_json_and_one_split(tmp_path):
    from PIL import Image

    shard = tmp_path / "shard-000000.tar"
    with tarfile.open(shard, "w") as tar:
        for i in range(12):
            buf = io.BytesIO()
            Image.new("RGB", (16, 16), (20 * i, 0, 0)).save(buf, format="PNG")
            label = "cat" if i % 2 else "dog"
            for name, data in (
                (f"s{i:02d}.png", buf.getvalue()),
                (f"s{i:02d}.json", json.dumps({"kind": label}).encode()),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    dataset = load_dataset("wds", tmp_path, options={"label_key": "json:kind", "val_fraction": 0.5})
    assert dataset.labels.classes == ("cat", "dog")
    assert {split: len(s) for split, s in dataset.splits.items()} == {"train": 6, "val": 6}
    with pytest.raises(DataError, match="--label-key 'json'"):
        load_dataset("wds", tmp_path, options={"label_key": "json"})


def test_training_reads_parquet_a_row_group_at_a_time(tmp_path):
    """An epoch's order visits each row group in one piece of the shuffle window: every group is decoded once."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from fgvctune.data import containers

    rows = []
    for i in range(100):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (i, 0, 0)).save(buf, format="PNG")
        rows.append({"bytes": buf.getvalue(), "path": f"{i:03d}.png"})
    (tmp_path / "data").mkdir()
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({"image": pa.array(rows, image), "label": [f"c{i % 2}" for i in range(100)]})
    pq.write_table(table, tmp_path / "data" / "train-00000.parquet", row_group_size=10)
    samples = [s.path for s in load_dataset("hf", tmp_path, check_images=False).splits["train"]]
    groups = [containers.block(s) for s in samples]
    orders = [containers.reading_order(samples, random.Random(seed)) for seed in (1, 1, 2)]
    assert orders[0] == orders[1] != orders[2] and sorted(orders[0]) == list(range(100))
    for start in range(0, 100, containers.WINDOW * 10):  # four whole row groups per window
        window = orders[0][start : start + containers.WINDOW * 10]
        assert len({groups[i] for i in window}) == len(window) // 10

    forget_readers()
    reader = containers._reader(samples[0].container, "parquet")
    held = containers._groups
    decoded = []
    read_row_group = reader.file.read_row_group
    reader.file.read_row_group = lambda group, **kw: decoded.append(group) or read_row_group(group, **kw)
    for i in orders[0]:
        assert samples[i].read_bytes() == rows[int(samples[i].key)]["bytes"]
    assert sorted(decoded) == list(range(10))  # each group once

    # and the training pipeline reads in that order: one epoch decodes each row group once
    from fgvctune.config import resolve
    from fgvctune.data.pipeline import loader

    config = resolve(adapter="hf", data_dir=str(tmp_path), image_resize=32, batch_size=10, read="online")
    dataset = load_dataset("hf", tmp_path, check_images=False)
    dataset.train_split = "train"
    decoded.clear()
    held.clear()
    batches = loader(dataset, "train", config, training=True, epoch=3).create_tuple_iterator(num_epochs=1)
    assert sum(images.shape[0] for images, _ in batches) == 100
    assert sorted(decoded) == list(range(10))
    forget_readers()


def test_duplicate_search_and_in_memory_source_read_inside_shards(forms):
    from fgvctune.data.duplicates import find_duplicates

    adapter, data, options = forms["wds"]
    dataset = load_dataset(adapter, data, options=options)
    reference = load_dataset("folder", forms["folder"][1])
    found, expected = find_duplicates(dataset), find_duplicates(reference)
    assert found.images == expected.images == 192
    assert len(found.within) == len(expected.within) and len(found.across) == len(expected.across)
    held = ImageSource.from_dataset(dataset, "train", in_memory=True)
    folder = forms["folder"][1] / "train"
    for i in range(len(held)):
        s = held.sample(i)
        assert held[i][0].tobytes() == (folder / folder_name(s.label) / s.path.name).read_bytes()


def test_imagefolder_metadata_and_readme_class_names_and_subsets(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    folder = tmp_path / "imagefolder"
    for split, names in (("train", ["a.png", "b.png", "c.png"]), ("validation", ["d.png"])):
        (folder / split).mkdir(parents=True)
        for i, name in enumerate(names):
            Image.new("RGB", (8, 8), (40 * i, 90, 0)).save(folder / split / name)
        lines = [json.dumps({"file_name": n, "species": "owl" if n in "a.png d.png" else "cat"}) for n in names]
        (folder / split / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    dataset = load_dataset("hf", folder)
    assert dataset.labels.classes == ("cat", "owl") and (dataset.train_split, dataset.eval_split) == (
        "train",
        "validation",
    )
    assert sorted((s.path.name, s.label) for s in dataset.splits["train"]) == [
        ("a.png", "owl"),
        ("b.png", "cat"),
        ("c.png", "cat"),
    ]

    hub = tmp_path / "hub"
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    for subset in ("small", "large"):
        (hub / subset).mkdir(parents=True)
        cells = [{"bytes": (folder / "train" / n).read_bytes(), "path": n} for n in ("a.png", "b.png", "c.png")]
        table = pa.table({"picture": pa.array(cells, image), "kind": [0, 1, 1]})
        pq.write_table(table, hub / subset / "train-00000-of-00001.parquet")
    # Subsets are the README's configs (without them `datasets` reads both folders as one train split).
    card = "---\nconfigs:\n" + "".join(
        f"- config_name: {name}\n  data_files:\n  - split: train\n    path: {name}/*.parquet\n"
        for name in ("small", "large")
    )
    card += "dataset_info:\n- config_name: small\n  features:\n  - name: picture\n    dtype: image\n  - name: kind\n"
    card += "    dtype:\n      class_label:\n        names:\n          '0': owl\n          '1': cat\n---\n# A card\n"
    (hub / "README.md").write_text(card)
    with pytest.raises(DataError, match=r"several subsets \(small, large\)") as error:
        load_dataset("hf", hub)
    assert "--subset NAME" in error.value.hint
    small = load_dataset("hf", hub, options={"subset": "small"})  # class names from the card's class_label
    assert sorted((s.path.name, s.label) for s in small.splits["train"]) == [
        ("a.png", "owl"),
        ("b.png", "cat"),
        ("c.png", "cat"),
    ]
    large = load_dataset("hf", hub, options={"subset": "large"})  # no names for this subset: the ids
    assert large.labels.classes == ("0", "1")


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("train-00000-of-00002.parquet", "train"),
        ("validation-00000-of-00001.parquet", "validation"),
        ("test_seen-00000-of-00001.parquet", "test_seen"),  # the Hub keeps any split name
        ("extra-00000-of-00001.parquet", "extra"),
        ("imagenet-train-000123.tar", "train"),
        ("imagenet-val-000001.tar", "validation"),
        ("val2017.parquet", "validation"),
        ("train0.parquet", "train"),
        ("shard-000000.tar", None),
        ("trainee-000000.tar", None),
    ],
)
def test_split_names(name, split):
    from fgvctune.data.splits import split_name

    assert split_name(name) == split


def test_a_zip_made_on_a_mac_and_a_member_name_twice(forms, tmp_path):
    """macOS adds __MACOSX/._ copies beside the folder; two members of a class with one file name both land."""
    folder = forms["folder"][1]
    archive = tmp_path / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                inner = f"dataset/{path.relative_to(folder).as_posix()}"
                z.write(path, inner)
                z.writestr(f"__MACOSX/dataset/{PurePosixPath(inner).parent}/._{path.name}", b"\x00\x05\x16\x07")
    assert content(load_dataset("folder", archive)) == content(load_dataset("folder", folder))

    shard = tmp_path / "shards" / "train-000000.tar"
    shard.parent.mkdir()
    image = next((folder / "train" / "Cessna").iterdir()).read_bytes()
    with tarfile.open(shard, "w") as tar:
        for key in ("a/0", "b/0", "c/0", "d/1"):
            for ext, data in (("jpg", image), ("txt", b"Cessna")):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    shutil.copy(shard, shard.with_name("test-000000.tar"))
    convert("wds", shard.parent, tmp_path / "tree", options={"label_key": "txt"})
    assert len(list((tmp_path / "tree" / "train" / "Cessna").iterdir())) == 4


# -- hostile members: names that leave the folder, sizes that a header or a compressor hides ---------------------
def tar_of(path: Path, members: list[tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "tar"])
def test_an_archive_member_over_the_size_limit_is_a_problem_read_no_further(tmp_path, monkeypatch, kind):
    """A zip bomb: 32 MiB of zeros (a few dozen KB compressed) under a limit of 1 MiB. The member is one problem,
    skippable, and reading it takes about the limit in memory, not the member's size."""
    import tracemalloc

    import fgvctune.data.containers as containers
    from conftest import make_folder

    tree = make_folder(tmp_path / "tree", per_class=1)
    members = [(p.relative_to(tree).as_posix(), p.read_bytes()) for p in sorted(tree.rglob("*.jpg"))]
    members.append(("train/cat/bomb.jpg", bytes(32 * 2**20)))
    archive = tmp_path / f"tree.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in members:
                z.writestr(name, data)
    else:
        tar_of(archive, members, "w:gz" if kind == "tar.gz" else "w")
    del members
    monkeypatch.setattr(containers, "MEMBER_LIMIT", 2**20)
    forget_readers()
    over = "holds more than 1,048,576 bytes, the most fgvctune reads for one image"
    problem = f"{archive.name}:train/cat/bomb.jpg: {over}"
    with pytest.raises(DataError) as refused:
        load_dataset("folder", archive)
    assert refused.value.message == problem
    tracemalloc.start()
    try:
        dataset = load_dataset("folder", archive, skip_bad=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [str(p) for p in dataset.problems] == [problem]
    assert sum(map(len, dataset.splits.values())) == 4
    assert peak < 8 * 2**20


def test_webdataset_keys_that_leave_the_folder_and_oversized_members_are_problems(tmp_path, monkeypatch):
    import fgvctune.data.containers as containers

    image = (SAMPLE / "data" / "images").glob("*.jpg").__next__().read_bytes()
    members = [("ok.jpg", image), ("ok.txt", b"cat"), ("../up.jpg", image), ("../up.txt", b"cat")]
    members += [("/abs/x.jpg", image), ("/abs/x.txt", b"cat"), ("long.jpg", image), ("long.txt", b"c" * 2**20)]
    members += [("big.jpg", bytes(2**20)), ("big.txt", b"cat")]
    shards = tmp_path / "shards"
    shards.mkdir()
    tar_of(shards / "train-000000.tar", members)
    tar_of(shards / "val-000000.tar", members[:2])
    monkeypatch.setattr(containers, "MEMBER_LIMIT", max(len(image), 1000))
    dataset = load_dataset("wds", shards, options={"label_key": "txt"}, skip_bad=True)
    over = f"holds more than {containers.MEMBER_LIMIT:,} bytes, the most fgvctune reads for one image"
    assert sorted(map(str, dataset.problems)) == sorted(
        [
            "train-000000.tar:../up: the key leads out of the shard's folder (an absolute or ../ name)",
            "train-000000.tar:/abs/x: the key leads out of the shard's folder (an absolute or ../ name)",
            f"train-000000.tar:long: .txt: {over}",
            f"train-000000.tar:big: {over}",
        ]
    )
    assert [s.where for s in dataset.splits["train"]] == ["train-000000.tar:ok"]


def test_info_on_a_zip_bomb_stays_within_4_gb_and_names_the_member(tmp_path):
    """1 GiB of zeros in a zip of about a megabyte: `info` refuses the member by its size, reading none of it."""
    from conftest import bounded_cli, write_image

    tree = tmp_path / "tree"
    for split in ("train", "val"):
        write_image(tree / split / "cat" / "a.jpg")
    archive = zip_tree(tree, tmp_path / "bomb.zip")
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as z, z.open("train/cat/bomb.jpg", "w") as member:
        zeros = bytes(2**20)
        for _ in range(1024):
            member.write(zeros)
    assert archive.stat().st_size < 2 * 2**20
    result = bounded_cli("info", "-a", "folder", "-d", str(archive))
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"{archive.name}:train/cat/bomb.jpg: holds more than 268,435,456 bytes" in result.stdout


def test_a_parquet_row_group_over_the_limit_is_a_problem_of_its_rows_decoded_never(tmp_path, monkeypatch):
    """A row group is decoded whole: one whose image column claims more than GROUP_LIMIT bytes decoded (here 4 MiB
    of zeros, a few KB compressed, under a limit of 1 MiB) is refused from its metadata; other row groups read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import fgvctune.data.containers as containers

    image = next((SAMPLE / "data" / "images").glob("*.jpg")).read_bytes()
    path = tmp_path / "bomb.parquet"
    with pq.ParquetWriter(path, pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())]))]),
                          compression="zstd") as writer:  # fmt: skip
        for data in ([image, image], [bytes(2**21), bytes(2**21)]):
            cells = [{"bytes": d, "path": None} for d in data]
            writer.write_table(pa.table({"image": cells}, schema=writer.schema))
    assert path.stat().st_size < 2**17 and pq.ParquetFile(path).num_row_groups == 2
    monkeypatch.setattr(containers, "GROUP_LIMIT", 2**20)
    forget_readers()
    assert containers.read_member(Member(path, "parquet", "1", "image")) == image
    with pytest.raises(DataError) as refused:
        containers.read_member(Member(path, "parquet", "3", "image"))
    assert refused.value.message.startswith(f"{path}:3: row group 1 holds ")
    assert refused.value.message.endswith("bytes of 'image', more than the 1,048,576 fgvctune decodes at once "
                                          "(write the file in smaller row groups)")  # fmt: skip
    forget_readers()


def _zip_claiming(path: Path, name: str, data: bytes, claimed: bytes, method=zipfile.ZIP_DEFLATED) -> Path:
    """A zip whose member `name` holds `data` compressed while its headers claim `claimed` (its size and CRC)."""
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr(name, data)
    raw = bytearray(path.read_bytes())
    local, central = raw.find(b"PK\x03\x04"), raw.find(b"PK\x01\x02")
    for crc_at in (local + 14, central + 16):  # CRC, compressed size, uncompressed size
        compressed = int.from_bytes(raw[crc_at + 4 : crc_at + 8], "little")
        raw[crc_at : crc_at + 12] = struct.pack("<III", zipfile.crc32(claimed), compressed, len(claimed))
    path.write_bytes(raw)
    return path


def test_a_zip_member_that_inflates_past_its_header_costs_only_its_header(tmp_path):
    """zipfile cuts a member to its header's size, but read() with no size inflates up to 2 GiB at once before
    cutting: asked for the claimed size only, 64 MiB of zeros behind a header of 10 bytes cost about nothing."""
    import tracemalloc

    archive = _zip_claiming(tmp_path / "liar.zip", "a.jpg", bytes(64 * 2**20), bytes(10))
    forget_readers()
    tracemalloc.start()
    try:
        data = read_member_of(archive, "a.jpg")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert data == bytes(10) and peak < 8 * 2**20


def test_a_bzip2_zip_member_is_refused_unread(tmp_path):
    """zipfile inflates a bzip2 (or lzma) member's compressed bytes whole however few it is asked for: 100 bytes
    of bzip2 can hold 50 MB, behind a header that claims 10."""
    archive = _zip_claiming(tmp_path / "bz.zip", "a.jpg", bytes(2**20), bytes(10), zipfile.ZIP_BZIP2)
    forget_readers()
    with pytest.raises(DataError, match=r"bz.zip:a.jpg: compressed with bzip2 or lzma, which fgvctune does not read"):
        read_member_of(archive, "a.jpg")


def read_member_of(archive: Path, name: str) -> bytes:
    from fgvctune.data.containers import read_member

    return read_member(Member(archive, "zip", name))
