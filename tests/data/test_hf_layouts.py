"""The hf adapter against `datasets` itself: each layout is written with the real library (Hub shard names, README
configs, save_to_disk, its cache, imagefolder trees of real PNGs), then what `datasets.load_dataset` /
`load_from_disk` load is the expected answer: per split, the rows per class and the class names."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from conftest import png, run_cli, write_image
from fgvctune.data.dataset import open_adapter
from fgvctune.errors import DataError, UsageError

CLASSES = ["cat", "dog", "owl"]


def table(labels: list, features=None, **columns):
    """A `datasets.Dataset` of small PNGs with these labels (ClassLabel ids over CLASSES unless `features` says),
    and any other columns of strings."""
    import datasets

    features = features or datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=CLASSES)})
    label = [name for name in features if name != "image"][0]
    features = datasets.Features({**features, **{name: datasets.Value("string") for name in columns}})
    rows = {"image": [{"bytes": png(i), "path": f"{i}.png"} for i in range(len(labels))], label: labels, **columns}
    return datasets.Dataset.from_dict(rows, features=features)


def expected(loaded) -> tuple[dict[str, Counter], list[str] | None]:
    """What `datasets` loaded: split -> Counter of class names ('' for -1, "no label"), and the ClassLabel names."""
    import datasets

    if isinstance(loaded, datasets.Dataset):
        loaded = {str(loaded.split): loaded}
    counts, names = {}, None
    for split, ds in loaded.items():
        label = next(n for n in ds.column_names if n in ("label", "labels", "species"))
        feature = ds.features[label]
        if isinstance(feature, datasets.ClassLabel):
            names = feature.names
            counts[split] = Counter("" if v == -1 else feature.int2str(v) for v in ds[label])
        else:
            counts[split] = Counter(str(v) for v in ds[label])
    return counts, names


def loads(path: Path, tmp_path: Path, name: str | None = None):
    import datasets

    return datasets.load_dataset(str(path), name, cache_dir=str(tmp_path / "hf-cache"))


def read(path: Path, **options):
    return open_adapter("hf", path, **options).read()


def found(listing) -> tuple[dict[str, Counter], list[str] | None]:
    return {split: Counter(s.label for s in samples) for split, samples in listing.splits.items()}, listing.classes


def same(listing, loaded):
    """fgvctune's listing reads what `datasets` loaded: the same splits in the same order, counts, class names."""
    ours, theirs = found(listing), expected(loaded)
    assert list(ours[0]) == list(theirs[0])
    assert ours == theirs


def one_line_error(*args: str) -> str:
    result = run_cli("info", *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error"), result.stderr
    return result.stderr


# -- which files make which split --------------------------------------------------------------------------
def test_readme_configs_choose_files_by_config_name_and_subset(tmp_path):
    """README `configs:` in the three data_files forms, globs, `default: true`; --subset picks a config by name."""
    root = tmp_path / "configs"
    (root / "data").mkdir(parents=True)
    table([0, 1, 1]).to_parquet(str(root / "data" / "fine_train.parquet"))
    table([2, 2]).to_parquet(str(root / "data" / "fine_test.parquet"))
    table([0, 0, 0, 1]).to_parquet(str(root / "data" / "coarse-0.parquet"))
    table([1]).to_parquet(str(root / "data" / "coarse-1.parquet"))
    table([2]).to_parquet(str(root / "data" / "extra.parquet"))
    (root / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: fine\n  default: true\n  data_files:\n"
        "  - split: train\n    path: data/fine_train.parquet\n  - split: test\n    path: data/fine_test.parquet\n"
        "- config_name: coarse\n  data_files: data/coarse-*.parquet\n"
        "- config_name: listed\n  data_files:\n  - data/extra.parquet\n  - data/fine_test.parquet\n"
        "---\n# cards\n"
    )
    same(read(root), loads(root, tmp_path))  # the default config, not every file merged
    for name in ("fine", "coarse", "listed"):
        same(read(root, subset=name), loads(root, tmp_path, name))
    error = one_line_error("-a", "hf", "-d", str(root), "--subset", "nope")
    assert "no subset 'nope'; its subsets: fine, coarse, listed" in error


def test_several_configs_without_a_default_need_a_subset(tmp_path):
    import datasets

    root = tmp_path / "two"
    (root / "data").mkdir(parents=True)
    for name in ("a", "b"):
        table([0, 1]).to_parquet(str(root / "data" / f"{name}.parquet"))
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: a\n  data_files: data/a.parquet\n"
        "- config_name: b\n  data_files: data/b.parquet\n---\n"
    )
    with pytest.raises(ValueError, match="Config name is missing"):
        datasets.load_dataset(str(root), cache_dir=str(tmp_path / "hf-cache"))
    with pytest.raises(DataError, match=r"several subsets \(a, b\)") as error:
        read(root)
    assert "--subset NAME" in error.value.hint


@pytest.mark.parametrize("suffix", ["", "-7e0a1c2f3b"])  # older push_to_hub versions added a hash to the name
def test_hub_shard_names_keep_every_split_name(tmp_path, suffix):
    """`data/{split}-00000-of-00001*.*`: any split name as written (test_seen, test_unseen, valid), none merged."""
    root = tmp_path / "hub"
    (root / "data").mkdir(parents=True)
    for split, labels in {"train": [0, 1, 2, 0], "valid": [1], "test_seen": [0, 2], "test_unseen": [1, 1]}.items():
        table(labels).to_parquet(str(root / "data" / f"{split}-00000-of-00001{suffix}.parquet"))
    listing = read(root)
    same(listing, loads(root, tmp_path))
    assert list(listing.splits) == ["train", "test_seen", "test_unseen", "valid"]


@pytest.mark.parametrize(
    "names",
    [
        ["train/0.parquet", "val/0.parquet", "testing/0.parquet"],  # split keywords in folder names
        ["my-train.parquet", "dev_0.parquet", "dev_1.parquet", "eval.parquet"],  # in file names
        ["default/train/0000.parquet", "default/validation/0000.parquet"],  # the Hub's parquet-converter layout
        ["one.parquet", "two.parquet", "sub/three.parquet"],  # no keyword: everything is train
    ],
)
def test_split_keywords_in_folder_and_file_names(tmp_path, names):
    root = tmp_path / "keywords"
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        table([i % 3, (i + 1) % 3]).to_parquet(str(root / name))
    same(read(root), loads(root, tmp_path))


def test_subset_folders_without_configs_are_one_dataset(tmp_path):
    """Without README configs, `datasets` reads folders `small/` and `large/` as one dataset, not as subsets."""
    root = tmp_path / "nested"
    for subset, labels in (("small", [0, 1]), ("large", [2, 2, 1])):
        (root / subset).mkdir(parents=True)
        table(labels).to_parquet(str(root / subset / "train-00000-of-00001.parquet"))
    same(read(root), loads(root, tmp_path))


# -- save_to_disk and the cache ------------------------------------------------------------------------------
def test_save_to_disk_keeps_split_names_and_a_single_splits_name(tmp_path):
    import datasets

    whole = datasets.DatasetDict({"train": table([0, 1, 2]), "valid": table([1]), "test_seen": table([2, 0])})
    whole.save_to_disk(str(tmp_path / "dict"))
    same(read(tmp_path / "dict"), datasets.load_from_disk(str(tmp_path / "dict")))
    loaded = datasets.load_dataset(str(_hub(tmp_path)), cache_dir=str(tmp_path / "hf-cache"))
    loaded["test"].save_to_disk(str(tmp_path / "one"))
    listing = read(tmp_path / "one")
    same(listing, datasets.load_from_disk(str(tmp_path / "one")))
    assert list(listing.splits) == ["test"]


def _hub(tmp_path: Path) -> Path:
    root = tmp_path / "hub"
    (root / "data").mkdir(parents=True, exist_ok=True)
    table([0, 1, 2, 2]).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    table([1, 0]).to_parquet(str(root / "data" / "test-00000-of-00001.parquet"))
    return root


def test_the_datasets_cache_folder_reads_by_split(tmp_path):
    """`datasets`' own cache: dataset_info.json beside `<builder>-<split>.arrow` files."""
    loaded = loads(_hub(tmp_path), tmp_path)
    folder = Path(loaded["train"].cache_files[0]["filename"]).parent
    assert (folder / "dataset_info.json").is_file() and not (folder / "state.json").exists()
    same(read(folder), loaded)


def test_an_arrow_file_cut_short_is_one_problem(tmp_path):
    import datasets

    datasets.DatasetDict({"train": table([0, 1, 2] * 100), "test": table([0, 1])}).save_to_disk(
        str(tmp_path / "disk"), max_shard_size="2KB"
    )
    arrow = sorted((tmp_path / "disk" / "train").glob("*.arrow"))[-1]
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    with pytest.raises(Exception):  # noqa: B017 (datasets raises pyarrow's own error)
        datasets.load_from_disk(str(tmp_path / "disk"))["train"].to_list()
    listing = read(tmp_path / "disk")
    problems = [p for p in listing.problems if arrow.name in p.where]
    assert len(problems) == 1 and problems[0].split == "train" and "cut short" in problems[0].message
    assert 0 < len(listing.splits["train"]) < 300 and len(listing.splits["test"]) == 2
    result = run_cli("info", "-a", "hf", "-d", str(tmp_path / "disk"))
    assert "Traceback" not in result.stdout + result.stderr and arrow.name in result.stdout + result.stderr


# -- labels and empty splits ----------------------------------------------------------------------------------
def test_a_split_of_minus_one_labels_is_unlabeled_and_a_stray_minus_one_is_a_problem(tmp_path):
    root = _hub(tmp_path)
    table([-1, -1, -1]).to_parquet(str(root / "data" / "test-00000-of-00001.parquet"))
    table([0, -1, 2, 1]).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    listing = read(root)
    assert listing.unlabeled == {"test"} and [s.label for s in listing.splits["test"]] == ["", "", ""]
    theirs = expected(loads(root, tmp_path))[0]
    assert found(listing)[0]["test"] == theirs["test"]
    assert found(listing)[0]["train"] == theirs["train"] - Counter({"": 1})
    (problem,) = listing.problems
    assert (problem.where, problem.split) == ("data/train-00000-of-00001.parquet:1", "train")
    assert listing.train_split == "train" and listing.eval_split is None


def test_an_empty_split_stays_listed_and_problems_name_their_split(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = _hub(tmp_path)
    empty = table([0]).data.table.slice(0, 0)  # (datasets' to_parquet cannot write 0 rows; pyarrow writes its schema)
    pq.write_table(empty, root / "data" / "validation-00000-of-00001.parquet")
    written = table([0, 0, 1]).data.table  # a label past the ClassLabel names, which datasets refuses to write
    labels = pa.array([0, 7, 1], written.schema.field("label").type)
    pq.write_table(pa.table([written.column("image"), labels], schema=written.schema),
                   root / "data" / "test-00000-of-00001.parquet")  # fmt: skip
    listing = read(root)
    assert listing.splits["validation"] == [] and list(listing.splits) == ["train", "validation", "test"]
    (problem,) = listing.problems
    assert problem.split == "test" and "label 7 is outside the 3 ClassLabel names" in problem.message


def test_a_multi_label_column_is_refused_in_one_line(tmp_path):
    import datasets

    features = datasets.Features(
        {"image": datasets.Image(), "labels": datasets.Sequence(datasets.ClassLabel(names=CLASSES))}
    )
    root = tmp_path / "multi"
    (root / "data").mkdir(parents=True)
    table([[0, 1], [2]], features).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    error = one_line_error("-a", "hf", "-d", str(root))
    assert "holds lists of labels (multi-label); fgvctune trains single-label classifiers" in error


def test_a_label_named_column_is_preferred_and_a_binary_image_column_is_offered(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    root = tmp_path / "strings"
    (root / "data").mkdir(parents=True)
    table(["cat", "dog", "cat"], features, photographer=["ann", "bo", "cy"]).to_parquet(
        str(root / "data" / "train-00000-of-00001.parquet")
    )
    same(read(root), loads(root, tmp_path))

    raw = tmp_path / "raw" / "train.parquet"
    raw.parent.mkdir()
    pq.write_table(pa.table({"jpeg": pa.array([png(1), png(2)], pa.binary()), "label": ["cat", "dog"]}), raw)
    error = one_line_error("-a", "hf", "-d", str(raw.parent))
    assert "no image column" in error and "--image-column jpeg" in error
    assert found(read(raw.parent, image_column="jpeg"))[0] == {"train": Counter({"cat": 1, "dog": 1})}


# -- imagefolder ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("splits", [("train", "validation"), ()])
def test_imagefolder_labelled_by_folder_names(tmp_path, splits):
    root = tmp_path / "tree"
    for split in splits or ("",):
        for i, name in enumerate(CLASSES):
            for j in range(i + 1):
                write_image(root / split / name / f"{j}.png", colour=(40 * i, 10 * j, 0))
    same(read(root), loads(root, tmp_path))


def test_imagefolder_with_metadata(tmp_path):
    import json

    root = tmp_path / "meta"
    for split, names in (("train", ["a.png", "b.png", "c.png"]), ("test", ["d.png"])):
        for i, name in enumerate(names):
            write_image(root / split / name, colour=(40 * i, 90, 0))
        lines = [json.dumps({"file_name": n, "species": "owl" if n in "a.png d.png" else "cat"}) for n in names]
        (root / split / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    same(read(root), loads(root, tmp_path))


def test_a_folder_with_no_hugging_face_layout_names_the_other_adapters(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.md").write_text("just notes\n")
    error = one_line_error("-a", "hf", "-d", str(tmp_path / "notes"))
    assert "-a folder" in error and "-a csv" in error


# -- holding out a validation split ---------------------------------------------------------------------------
def test_val_fraction_holds_out_validation_from_the_only_split(tmp_path):
    import datasets

    root = tmp_path / "trainonly"
    (root / "data").mkdir(parents=True)
    table([0] * 10 + [1] * 10 + [2] * 10).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    assert found(read(root))[0] == expected(loads(root, tmp_path))[0]  # 0: as datasets loads it
    listing = read(root, val_fraction=0.2, seed=3)
    counts = found(listing)[0]
    assert counts == {"train": Counter(cat=8, dog=8, owl=8), "validation": Counter(cat=2, dog=2, owl=2)}
    assert (listing.train_split, listing.eval_split) == ("train", "validation")
    assert [s.where for s in read(root, val_fraction=0.2, seed=3).splits["validation"]] == [
        s.where for s in listing.splits["validation"]
    ]

    datasets.load_dataset(str(root), cache_dir=str(tmp_path / "hf-cache"))["train"].save_to_disk(str(tmp_path / "one"))
    shutil.move(str(tmp_path / "one"), str(tmp_path / "kept"))
    single = read(tmp_path / "kept", val_fraction=0.5)
    assert list(single.splits) == ["train", "validation"] and len(single.splits["validation"]) == 15
    with pytest.raises(UsageError, match="--val-fraction must be at least 0 and below 1, got 1.0"):
        read(root, val_fraction=1.0)


# -- damaged files, empty labels, options that do not apply ------------------------------------------------
def _damaged(path: Path):
    """Overwrite bytes in the middle of a Parquet file: its footer (the schema) stays, a data page breaks."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def test_a_damaged_parquet_file_is_a_problem_of_its_split_only(tmp_path):
    """A broken data page and a file that is no Parquet at all: each one problem of its own split, no traceback,
    and the splits that are whole still read (and convert) as `datasets` reads them."""
    import datasets

    root = _hub(tmp_path)
    test = root / "data" / "test-00000-of-00001.parquet"
    table([0, 1, 2] * 100).to_parquet(str(test))
    _damaged(test)
    (root / "data" / "validation-00000-of-00001.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(Exception):  # noqa: B017 (datasets raises pyarrow's own error)
        loads(root, tmp_path)
    listing = read(root)
    by_split = {p.split: p for p in listing.problems}
    assert set(by_split) == {"test", "validation"} and len(listing.problems) == 2
    assert by_split["test"].where == "data/test-00000-of-00001.parquet"
    assert "damaged after" in by_split["test"].message
    assert by_split["validation"].where == "data/validation-00000-of-00001.parquet"
    assert by_split["validation"].message.startswith("not a readable parquet file (")
    train = datasets.load_dataset(
        "parquet", data_files={"train": str(root / "data" / "train-00000-of-00001.parquet")}, cache_dir=str(tmp_path)
    )
    assert found(listing)[0]["train"] == expected(train)[0]["train"]
    result = run_cli("convert", "-a", "hf", "-d", str(root), "-s", "train", "-o", str(tmp_path / "out"))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("others", [["cat"], ["cat", None]])
def test_an_empty_string_label_is_a_problem_not_a_class_nor_lost(tmp_path, others):
    """`datasets` loads '' as a label like any other string; fgvctune has no class '' and says so, whether or not
    the split also has null labels."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    root = tmp_path / "strings"
    (root / "data").mkdir(parents=True)
    table(["cat", "dog", "", *others], features).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    theirs = loads(root, tmp_path)["train"]["label"]
    listing = read(root)
    assert found(listing)[0]["train"] == Counter(v for v in theirs if v not in ("", None))
    wheres = {p.where: p.message for p in listing.problems}
    assert wheres["data/train-00000-of-00001.parquet:2"] == "the label is empty"
    assert len(listing.problems) == len(theirs) - sum(found(listing)[0]["train"].values())


def test_stray_unlabeled_rows_are_one_problem_with_their_count(tmp_path):
    """Many -1 rows in a labelled split: the first and how many, not a problem (kept in memory) per row."""
    root = _hub(tmp_path)
    table([0, -1, 2, -1, -1, 1]).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    theirs = expected(loads(root, tmp_path))[0]["train"]
    listing = read(root)
    (problem,) = listing.problems
    assert problem.where == "data/train-00000-of-00001.parquet:1"
    assert problem.message == f"the label is -1 (no label), as in {theirs['']} rows of split 'train'"
    assert found(listing)[0]["train"] == theirs - Counter({"": theirs[""]})


@pytest.mark.parametrize("data_dir", ["../outside", "/usr/share"])
def test_a_readme_data_dir_outside_the_dataset_is_refused(tmp_path, data_dir):
    """`datasets` finds no data files there either; fgvctune names README.md and the config, for a folder and for
    the files it would fetch from the Hub."""
    from fgvctune.data.hub import subset_patterns

    outside = _hub(tmp_path / "x").rename(tmp_path / "outside")
    root = tmp_path / "card"
    root.mkdir()
    card = f"---\nconfigs:\n- config_name: default\n  data_dir: {data_dir}\n---\n"
    (root / "README.md").write_text(card)
    assert outside.is_dir()
    with pytest.raises(Exception, match="doesn't contain any data files"):
        loads(root, tmp_path)
    error = one_line_error("-a", "hf", "-d", str(root))
    assert f"README.md: config 'default': data_dir '{data_dir}' is not a folder inside the dataset" in error
    with pytest.raises(DataError, match="is not a folder inside the dataset"):
        subset_patterns(card, "", "someone/tiny")


def test_subset_and_revision_that_cannot_apply_are_refused(tmp_path):
    """--subset names a README config: a save_to_disk or cache folder has none; --revision is for a Hub id."""
    import datasets

    datasets.DatasetDict({"train": table([0, 1, 2])}).save_to_disk(str(tmp_path / "disk"))
    loaded = loads(_hub(tmp_path), tmp_path)
    cache = Path(loaded["train"].cache_files[0]["filename"]).parent
    for folder, what in ((tmp_path / "disk", "save_to_disk folder"), (cache, "folder of datasets' cache")):
        with pytest.raises(UsageError, match=f"--subset small: .* is a {what}, which holds one subset"):
            read(folder, subset="small")
    with pytest.raises(UsageError, match="--revision main is for a Hub dataset id"):
        read(tmp_path / "hub", revision="main")


def test_a_saved_slice_is_read_under_its_splits_name(tmp_path):
    """`load_dataset(..., split="train[:50%]").save_to_disk`: the split is `train`, not a folder named
    `train[:50%]`."""
    import datasets

    root = _hub(tmp_path)
    part = datasets.load_dataset(str(root), split="train[:50%]", cache_dir=str(tmp_path / "hf-cache"))
    part.save_to_disk(str(tmp_path / "slice"))
    loaded = datasets.load_from_disk(str(tmp_path / "slice"))
    assert str(loaded.split) == "train[:50%]"
    listing = read(tmp_path / "slice")
    assert found(listing) == ({"train": expected(loaded)[0]["train[:50%]"]}, expected(loaded)[1])


def test_a_root_metadata_file_beside_split_folders_is_not_read(tmp_path):
    """`datasets` reads a metadata file only among a split's files: beside split folders of images it ignores the
    root metadata.csv and labels each image by its split folder (one line here); beside split/class folders it
    labels by the class folders, as fgvctune does."""
    root = tmp_path / "meta"
    rows = ["file_name,label"]
    for split, count in (("train", 4), ("test", 2)):
        for i in range(count):
            write_image(root / split / f"{i}.png", colour=(40 * i, 90, 0))
            rows.append(f"{split}/{i}.png,{CLASSES[i % 2]}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    theirs = loads(root, tmp_path)
    assert theirs["test"].features["label"].names == ["test", "train"]  # the split folders, not the metadata
    error = one_line_error("-a", "hf", "-d", str(root))
    assert f"{root / 'metadata.csv'} is not read" in error

    tree = tmp_path / "tree"
    for split in ("train", "test"):
        for i, name in enumerate(CLASSES):
            write_image(tree / split / name / f"{i}.png", colour=(40 * i, 10, 0))
    (tree / "metadata.csv").write_text("file_name,label\ntrain/cat/0.png,zebra\n")
    same(read(tree), loads(tree, tmp_path))


def test_an_unreadable_parquet_file_is_said_once_and_in_full(tmp_path):
    """The problem's `where` names the file: its message says only why, so the error of a split with no other file
    still fits on its line, uncut."""
    root = _hub(tmp_path)
    (root / "data" / "validation-00000-of-00001.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(Exception):  # noqa: B017 (datasets raises pyarrow's own error)
        loads(root, tmp_path)
    (problem,) = read(root).problems
    assert problem.where == "data/validation-00000-of-00001.parquet" and str(root) not in problem.message
    assert problem.message.startswith("not a readable parquet file (Parquet magic bytes not found")
    result = run_cli("convert", "-a", "hf", "-d", str(root), "-s", "validation", "-o", str(tmp_path / "out"))
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert result.returncode == 1 and f"{problem.where}: {problem.message} (fix the dataset" in line
    assert line.count("validation-00000-of-00001.parquet") == 1 and "…" not in line


def test_the_root_metadata_refusal_is_short_and_says_what_to_do_in_its_hint(tmp_path):
    """Beside split folders `datasets` ignores a root metadata.csv (it labels by the split folders): the refusal
    names the file and why in a line that is not cut, and the fix in its hint."""
    root = tmp_path / "meta"
    for split in ("train", "test"):
        write_image(root / split / "0.png", colour=(40, 90, 0))
    (root / "metadata.csv").write_text("file_name,label\ntrain/0.png,cat\ntest/0.png,dog\n")
    assert loads(root, tmp_path)["train"].features["label"].names == ["test", "train"]
    with pytest.raises(DataError) as refused:
        read(root)
    assert refused.value.message == (
        f"{root / 'metadata.csv'} is not read beside split folders "
        "(datasets reads metadata only inside a split's folder)"
    )
    assert refused.value.hint == "write a metadata file into each split folder, its file_name relative to that folder"


@pytest.mark.parametrize(
    "header, said",
    [
        ("configs:\n- config_name: x\n\tdata_files: data/extra.parquet", "README.md:4: not valid YAML (found"),
        ('license: mit\nconfigs: "data/extra.parquet', "README.md:3: not valid YAML (found"),
        ("- a list\n- not a mapping", "README.md: the YAML header is not a mapping of keys"),
    ],
)
def test_a_readme_header_that_is_not_a_yaml_mapping_is_refused_as_datasets_refuses_it(tmp_path, header, said):
    """`datasets` stops on such a card; read as no card, its configs would be merged in silence."""
    from fgvctune.data.hub import subset_patterns

    root = _hub(tmp_path)
    table([2]).to_parquet(str(root / "data" / "extra.parquet"))
    card = f"---\n{header}\n---\n# card\n"
    (root / "README.md").write_text(card)
    with pytest.raises(Exception, match="block should be a dict|while (scanning|parsing)"):
        loads(root, tmp_path)
    error = one_line_error("-a", "hf", "-d", str(root))
    assert f"error: {root / said}" in error and "(fix the YAML header between the README's --- lines)" in error
    with pytest.raises(DataError, match="README.md"):
        subset_patterns(card, "", "someone/tiny")
