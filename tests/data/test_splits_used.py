"""Splits a command uses and splits it leaves alone: problems elsewhere are notes, unlabeled and empty splits are
one line where they cannot serve, and the folder adapter's <class>/<image> tree and --val-fraction hold-out."""

from __future__ import annotations

import dataclasses
import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import make_class_tree, make_csv, make_folder, write_image
from fgvctune import Listing, Problem, Sample
from fgvctune.cli import app
from fgvctune.data import registry
from fgvctune.data.dataset import load_dataset
from fgvctune.data.splits import ALIASES, EVAL_NAMES, TRAIN_NAMES, held_out, roles
from fgvctune.data.tree import convert
from fgvctune.errors import DataError, UsageError

runner = CliRunner()
COLOURS = {"cat": (200, 40, 40), "dog": (40, 200, 40), "": (90, 90, 90)}


@dataclasses.dataclass
class Listed:
    """Samples as listing.json lists them: a hand-made Listing, for the core's rules alone."""

    data_dir: Path

    def read(self) -> Listing:
        spec = json.loads((self.data_dir / "listing.json").read_text(encoding="utf-8"))
        splits = {
            name: [
                Sample(self.data_dir / path, label, f"listing.json:{name}:{i}") for i, (path, label) in enumerate(rows)
            ]
            for name, rows in spec["splits"].items()
        }
        return Listing(
            root=self.data_dir,
            splits=splits,
            problems=[Problem(*p) for p in spec.get("problems", [])],
            train_split="train" if "train" in splits else None,
            eval_split="val" if "val" in splits else None,
            unlabeled=frozenset(spec.get("unlabeled", [])),
        )


@pytest.fixture
def listed(monkeypatch):
    """The `listed` adapter, registered for this test only."""
    registry.available()  # the entry points first, so that they do not replace it
    monkeypatch.setitem(registry._adapters, "listed", registry.AdapterInfo("listed", Listed, "tests"))


def make_listed(root: Path, splits: dict[str, list[str]], unlabeled=(), problems=(), images=None) -> Path:
    """listing.json and its images: `splits` maps a split to its samples' labels ("" for none); `images`, if
    given, the files to copy in, in order, instead of drawing them."""
    spec = {"splits": {}, "unlabeled": list(unlabeled), "problems": [list(p) for p in problems]}
    sources = iter(images or [])
    for split, labels in splits.items():
        rows = spec["splits"][split] = []
        for i, label in enumerate(labels):
            path = root / split / f"{i}.png"
            if images is None:
                write_image(path, COLOURS[label], fmt="PNG")
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(next(sources), path)
            rows.append([f"{split}/{i}.png", label])
    root.mkdir(parents=True, exist_ok=True)
    (root / "listing.json").write_text(json.dumps(spec), encoding="utf-8")
    return root


NO_LABELS = "split 'test' has no labels (-1): it can be predicted, not trained or evaluated on"
LABELLED = {"train": ["cat"] * 3 + ["dog"] * 3, "val": ["cat", "cat", "dog", "dog"]}


def test_problems_of_a_split_a_command_does_not_use_are_a_note_not_a_stop(listed, tmp_path):
    test_problems = [("listing.json:test:0", "label -1 is outside the ClassLabel names", "test")] * 2
    root = make_listed(tmp_path / "d", {**LABELLED, "test": ["cat"]}, problems=test_problems)

    dataset = load_dataset("listed", root, roles=True)
    assert (dataset.problems, dataset.notes) == ([], ["split 'test' (not used): 2 problem(s)"])
    result = runner.invoke(app, ["convert", "-a", "listed", "-d", str(root), "-o", str(tmp_path / "o"), "-s", "train"])
    assert result.exit_code == 0, result.output
    assert "note: split 'test' (not used): 2 problem(s)" in result.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir() if p.is_dir()) == ["train"]
    result = runner.invoke(app, ["info", "-a", "listed", "-d", str(root), "-s", "train", "-s", "val"])
    assert result.exit_code == 0, result.output
    assert "note: split 'test' (not used): 2 problem(s)" in result.output and "no problems found" in result.output
    # Used, they are problems as before; and one that belongs to no split stops every command.
    result = runner.invoke(app, ["info", "-a", "listed", "-d", str(root), "--no-duplicates"])
    assert result.exit_code == 1 and "2 problem(s):" in result.output
    make_listed(root, {**LABELLED, "test": ["cat"]}, problems=[("listing.json", "cannot read the header", None)])
    with pytest.raises(DataError, match="listing.json: cannot read the header"):
        load_dataset("listed", root, roles=True)


def test_an_unlabeled_split_is_shown_but_cannot_be_trained_evaluated_or_converted(listed, tmp_path):
    root = make_listed(tmp_path / "d", {**LABELLED, "test": [""] * 3}, unlabeled=["test"])

    result = runner.invoke(app, ["info", "-a", "listed", "-d", str(root), "--no-duplicates"])
    assert result.exit_code == 0, result.output
    assert "2 classes" in result.output and "  test: 3 images, unlabeled\n" in result.output
    assert "no problems found" in result.output
    dataset = load_dataset("listed", root, roles=True)
    assert dataset.labels.classes == ("cat", "dog")
    assert dataset.notes == ["split 'test' (not used): 3 unlabeled samples"]
    for role in ({"eval_split": "test"}, {"train_split": "test", "eval_split": "val"}):
        with pytest.raises(UsageError) as refused:
            load_dataset("listed", root, roles=True, **role)
        assert refused.value.message == NO_LABELS

    out = tmp_path / "o"
    result = runner.invoke(app, ["convert", "-a", "listed", "-d", str(root), "-o", str(out), "-s", "test"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "split 'test' has no labels (-1): it can be predicted, not converted (a class tree needs labels)" in (
        result.output
    )
    result = runner.invoke(app, ["convert", "-a", "listed", "-d", str(root), "-o", str(out)])  # the labelled ones
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["train", "val"]
    assert "note: split 'test' (not used): 3 unlabeled samples" in result.output


def test_predict_on_an_unlabeled_split_leaves_the_real_columns_empty(listed, digits_run, digits, tmp_path):
    """Each image is predicted as it is when labelled; only the real id and name are left empty."""
    from fgvctune.config import dump_yaml, resolve
    from fgvctune.results.evaluation import evaluate, predict_split

    images = [sorted((digits / "val" / d).iterdir())[0] for d in "0123456789"]
    root = make_listed(
        tmp_path / "d",
        {"train": list("0123456789"), "val": list("0123456789"), "test": [""] * 10},
        unlabeled=["test"],
        images=images * 3,
    )
    run = tmp_path / "run"
    run.mkdir()
    for name in ("best.ckpt", "labels.csv"):
        shutil.copy(digits_run / name, run / name)
    config = resolve(digits_run / "config.yaml", adapter="listed", data_dir=str(root), adapter_options={})
    (run / "config.yaml").write_text(dump_yaml(config), encoding="utf-8")

    predicted = predict_split(run, "test", output=tmp_path / "test", grid=4)
    labelled = predict_split(run, "val", output=tmp_path / "val", grid=0)
    assert [(r["real"], r["real_name"]) for r in predicted.rows] == [("", "")] * 10
    assert [r["pred_name"] for r in predicted.rows] == [r["pred_name"] for r in labelled.rows]
    assert [r["real_name"] for r in labelled.rows] == list("0123456789")
    lines = (tmp_path / "test" / "pred.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "image\tpred\treal\tpred_name\treal_name\tconfidence" and len(lines) == 11
    assert all(line.split("\t")[2] == line.split("\t")[4] == "" for line in lines[1:])
    assert (tmp_path / "test" / "predictions.png").is_file()
    result = runner.invoke(app, ["predict", str(run), "-s", "test", "-o", str(tmp_path / "cli"), "--grid", "0"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "10 images predicted (split 'test' has no labels)"
    with pytest.raises(UsageError) as refused:
        evaluate(run, "test", output=tmp_path / "eval")
    assert refused.value.message == NO_LABELS


def test_an_empty_split_stops_the_command_that_uses_it_in_one_line(listed, tmp_path):
    root = make_listed(tmp_path / "d", {"train": LABELLED["train"], "val": []})

    with pytest.raises(DataError) as refused:
        load_dataset("listed", root, roles=True)
    assert refused.value.message == f"split 'val' of {root} is empty (0 samples)"
    result = runner.invoke(app, ["convert", "-a", "listed", "-d", str(root), "-o", str(tmp_path / "o"), "-s", "val"])
    assert (
        result.exit_code == 1 and result.output.count("\n") == 1 and f"split 'val' of {root} is empty" in result.output
    )
    assert load_dataset("listed", root, ["train"]).splits["train"], "a command that leaves it alone goes on"
    result = runner.invoke(app, ["info", "-a", "listed", "-d", str(root), "--no-duplicates"])
    assert "  val (eval): 0 images\n" in result.output


def test_with_one_split_the_roles_hint_names_val_fraction_where_the_adapter_has_it(listed, tmp_path):
    folder = make_folder(tmp_path / "tree", splits=("train",))
    csv = make_csv(tmp_path / "csv", [(f"{i}.jpg", "cat dog".split()[i % 2], "train", (i, 9, 9)) for i in range(4)])
    single = make_listed(tmp_path / "listed", {"train": LABELLED["train"]})
    hints = {}
    for adapter, root, options in (("folder", folder, {}), ("csv", csv, {}), ("listed", single, {})):
        with pytest.raises(UsageError) as refused:
            load_dataset(adapter, root, roles=True, options=options)
        assert refused.value.message == "cannot tell which splits to train and evaluate on (this dataset has train)"
        hints[adapter] = refused.value.hint
    held = ", or hold out part of 'train' to evaluate on with the adapter option --val-fraction (e.g. 0.1)"
    assert hints == {
        "folder": "name them with --train-split and --val-split" + held,
        "csv": "name them with --train-split and --val-split" + held,
        "listed": "name them with --train-split and --val-split",  # it has no such option
    }
    # Following the hint works: a fraction given holds out of the named train split (by default, none is).
    for adapter, root in (("folder", folder), ("csv", csv)):
        dataset = load_dataset(adapter, root, roles=True, options={"val_fraction": 0.5})
        assert (dataset.train_split, dataset.eval_split) == ("train", "val"), adapter


def read_by_fgvctune(source: Path, **options) -> tuple[list[str], dict[str, Counter]]:
    dataset = load_dataset("folder", source, options=options)
    return list(dataset.labels.classes), dataset.counts()


def test_folder_reads_a_class_tree_as_imagefolder_does_also_inside_an_archive(tmp_path):
    import datasets

    root = make_class_tree(tmp_path / "pets", {"bird": 2, "cat": 4, "dog": 3})
    loaded = datasets.load_dataset("imagefolder", data_dir=str(root), cache_dir=str(tmp_path / "hf-cache"))
    names = loaded["train"].features["label"].names
    expected = (names, {split: Counter(names[i] for i in ds["label"]) for split, ds in loaded.items()})
    assert read_by_fgvctune(root) == expected

    for archive, top in ((tmp_path / "flat.zip", ""), (tmp_path / "pets.zip", "pets/")):
        with zipfile.ZipFile(archive, "w") as z:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    z.write(path, top + path.relative_to(root).as_posix())
        assert read_by_fgvctune(archive) == expected, archive.name


def test_a_class_tree_moved_by_convert_is_read_again_from_where_its_images_went(tmp_path):
    root = make_class_tree(tmp_path / "pets", {"cat": 3, "dog": 2})
    first = convert("folder", root, tmp_path / "out", mode="move")
    assert first.placed == 5 and not list(root.rglob("*.jpg"))
    again = convert("folder", root, tmp_path / "out", mode="move")  # a rerun sees the same dataset and finishes
    assert (again.placed, again.unchanged) == (0, 5)
    assert again.dataset.counts() == first.dataset.counts() == {"train": Counter(cat=3, dog=2)}


def test_folder_tells_a_mixed_layout_in_one_line(tmp_path):
    write_image(tmp_path / "d" / "cat" / "a.jpg")
    write_image(tmp_path / "d" / "train" / "dog" / "b.jpg")
    with pytest.raises(DataError) as refused:
        load_dataset("folder", tmp_path / "d")
    assert refused.value.message == (
        f"{tmp_path / 'd'}: cannot tell the layout: cat/ holds images directly (a <class>/<image> tree) "
        "but train/ holds them in folders (<split>/<class>/<image>)"
    )


def test_val_fraction_holds_out_a_stratified_share_the_same_for_the_same_seed(tmp_path):
    root = make_class_tree(tmp_path / "pets", {"bird": 5, "cat": 8, "dog": 4})
    held = load_dataset("folder", root, options={"val_fraction": 0.25, "seed": 3}, roles=True)
    assert (held.train_split, held.eval_split) == ("train", "val")
    assert held.counts() == {"train": Counter(bird=4, cat=6, dog=3), "val": Counter(bird=1, cat=2, dog=1)}
    whole = {s.path for s in load_dataset("folder", root).splits["train"]}
    assert {s.path for ss in held.splits.values() for s in ss} == whole
    again = load_dataset("folder", root, options={"val_fraction": 0.25, "seed": 3}, roles=True)
    other = load_dataset("folder", root, options={"val_fraction": 0.25, "seed": 4}, roles=True)
    assert again.splits == held.splits and other.splits["val"] != held.splits["val"]
    result = runner.invoke(app, ["info", "-a", "folder", "-d", str(root), "--no-duplicates", "--val-fraction", "0.25"])
    assert result.exit_code == 0 and "  val (eval): 4 images" in result.output, result.output
    # A split tree with a train split only holds out from it too; 0 leaves the tree as it is.
    tree = make_folder(tmp_path / "tree", splits=("train", "test_unseen"), per_class=4)
    assert {k: len(v) for k, v in load_dataset("folder", tree, options={"val_fraction": 0.5}).splits.items()} == {
        "train": 4,
        "val": 4,
        "test_unseen": 8,
    }
    assert list(load_dataset("folder", root, options={"val_fraction": 0.0}).splits) == ["train"]

    for fraction in (1.0, -0.1):
        with pytest.raises(UsageError) as refused:
            load_dataset("folder", root, options={"val_fraction": fraction})
        assert refused.value.message == f"--val-fraction must be at least 0 and below 1, got {fraction}"
    with pytest.raises(UsageError) as refused:
        load_dataset("folder", make_folder(tmp_path / "with-val"), options={"val_fraction": 0.2})
    assert refused.value.message == "--val-fraction: this dataset already has a validation split 'val'"


def test_a_split_emptied_by_its_problems_says_the_first_problem_not_empty(listed, tmp_path):
    cut = ("train/data-00000-of-00001.arrow", "cut short after 0 rows", "train")
    root = make_listed(tmp_path / "d", {"train": [], "val": ["cat"]}, problems=[cut])
    with pytest.raises(DataError) as refused:
        load_dataset("listed", root, ["train"])
    assert refused.value.message == (
        f"split 'train' of {root} has no readable samples: train/data-00000-of-00001.arrow: cut short after 0 rows"
    )


@dataclasses.dataclass
class Holding(Listed):
    """The `listed` samples with an hf-like --val-fraction (held out as 'validation')."""

    val_fraction: float = 0.0
    seed: int = 0

    def read(self) -> Listing:
        return held_out(super().read(), self.val_fraction, self.seed, held="validation")


@pytest.fixture
def holding(monkeypatch):
    registry.available()
    monkeypatch.setitem(registry._adapters, "holding", registry.AdapterInfo("holding", Holding, "tests"))


MANY = {"train": ["cat"] * 5 + ["dog"] * 5}
HINT = "name them with --train-split and --val-split"
HELD = ", or hold out part of {!r} to evaluate on with the adapter option --val-fraction (e.g. 0.1)"


def test_val_fraction_is_hinted_only_where_it_works_and_then_it_works(holding, tmp_path):
    """A name the held-out part would take already (an unlabeled split, or the only split itself) is no dead end:
    the part takes another name. Where no hold-out can work, the hint does not offer one."""
    cases = {
        "unlabeled-validation": ({**MANY, "validation": [""] * 2}, ["validation"], "train", "val"),
        "only-validation": ({"validation": MANY["train"]}, [], "validation", "val"),
        "only-test": ({"test": MANY["train"], "validation": [""]}, ["validation"], "test", "val"),
    }
    for name, (splits, unlabeled, source, held) in cases.items():
        root = make_listed(tmp_path / name, splits, unlabeled=unlabeled)
        with pytest.raises(UsageError) as refused:
            load_dataset("holding", root, roles=True)
        assert refused.value.hint == HINT + HELD.format(source), name
        dataset = load_dataset("holding", root, roles=True, options={"val_fraction": 0.2})
        assert (dataset.train_split, dataset.eval_split) == (source, held), name
        assert {k: len(v) for k, v in dataset.splits.items()} == {source: 8, held: 2}, name
    # Two splits, neither to train on; classes of one sample: no fraction can hold any out, so none is offered.
    for name, splits in (("two", {"a": ["cat", "dog"], "b": ["cat", "dog"]}), ("ones", {"train": ["cat", "dog"]})):
        with pytest.raises(UsageError) as refused:
            load_dataset("holding", make_listed(tmp_path / name, splits), roles=True)
        assert refused.value.hint == HINT, name


def test_val_fraction_refuses_beside_a_published_validation_split_by_any_of_its_names(holding, tmp_path):
    """`valid`, `dev`, `val` are validation splits as `datasets` names them: holding out another would drop the
    published one as the evaluation split in silence. A test split alone stays, with a held-out validation."""
    for published in ("valid", "dev", "val"):
        root = make_listed(tmp_path / published, {**MANY, published: ["cat", "dog"]})
        with pytest.raises(UsageError) as refused:
            load_dataset("holding", root, options={"val_fraction": 0.2})
        assert refused.value.message == f"--val-fraction: this dataset already has a validation split {published!r}"
    root = make_listed(tmp_path / "test", {**MANY, "test": ["cat", "dog"]})
    dataset = load_dataset("holding", root, options={"val_fraction": 0.2}, roles=True)
    assert (dataset.train_split, dataset.eval_split, list(dataset.splits)) == (
        "train",
        "validation",
        ["train", "validation"],
    )
    tree = make_folder(tmp_path / "tree", splits=("train", "dev"))
    with pytest.raises(UsageError, match="already has a validation split 'dev'"):
        load_dataset("folder", tree, options={"val_fraction": 0.3})


def test_a_fraction_that_holds_out_nothing_says_the_classes_are_too_small(tmp_path):
    """The images are there and readable: the hold-out emptied the split, so the line says so and asks no fix of
    the dataset, for a fraction typed and for csv's default alike."""
    root = make_class_tree(tmp_path / "pets", {"bird": 1, "cat": 1, "dog": 1})
    with pytest.raises(DataError) as refused:
        load_dataset("folder", root, options={"val_fraction": 0.3}, roles=True)
    assert (refused.value.message, refused.value.hint) == (
        f"split 'val' of {root} has no samples: --val-fraction: 0.3 holds out no sample of 'train': its "
        "classes are too small (the largest has 1; each keeps one to train on)",
        "choose other splits",
    )
    assert sum(map(len, load_dataset("folder", root, ["train"], options={"val_fraction": 0.3}).splits.values())) == 3
    rows = [(f"{c}.jpg", c, None, (k, 0, 0)) for k, c in enumerate("pq")]
    pooled = make_csv(tmp_path / "csv", rows, ("path", "label"))
    with pytest.raises(DataError) as refused:
        load_dataset("csv", pooled)
    assert (refused.value.message, refused.value.hint) == (
        f"split 'val' of {pooled} has no samples: --val-fraction: 0.2 holds out no sample of 'train': its "
        "classes are too small (the largest has 1; each keeps one to train on)",
        "choose other splits",
    )


def csv_splits(root: Path, splits: dict[str, int]) -> Path:
    """A csv with a split column: `splits` split -> images of each of the classes p and q."""
    rows = [(f"{s}/{c}{i}.png", c, s, (40 * i, 90 * k, n)) for n, (s, count) in enumerate(splits.items())
            for k, c in enumerate("pq") for i in range(count)]  # fmt: skip
    return make_csv(root, rows)


def test_a_csv_val_fraction_given_is_never_ignored(tmp_path):
    """Beside a test split the fraction holds 'val' out of train (the test split stays, for the end), as hf and
    folder do; beside a validation split, or out of range, it is refused in the line they give."""
    root = csv_splits(tmp_path / "tt", {"train": 4, "test": 2})
    dataset = load_dataset("csv", root, options={"val_fraction": 0.5}, roles=True)
    assert (dataset.train_split, dataset.eval_split) == ("train", "val")
    assert {k: len(v) for k, v in load_dataset("csv", root, options={"val_fraction": 0.5}).splits.items()} == {
        "train": 4,
        "val": 4,
        "test": 4,
    }
    assert (load_dataset("csv", root, roles=True).eval_split, list(load_dataset("csv", root).splits)) == (
        "test",
        ["train", "test"],
    )  # not given: the publisher's splits as they are
    root = csv_splits(tmp_path / "tv", {"train": 4, "val": 2})
    with pytest.raises(UsageError) as refused:
        load_dataset("csv", root, options={"val_fraction": 0.5})
    assert refused.value.message == "--val-fraction: this dataset already has a validation split 'val'"
    with pytest.raises(UsageError) as refused:
        load_dataset("csv", root, options={"val_fraction": 7})
    assert refused.value.message == "--val-fraction must be at least 0 and below 1, got 7"


def test_roles_fall_back_to_the_one_name_that_says_each():
    assert roles(["train2017", "val2017", "test2017"]) == ("train2017", "val2017")
    assert roles(["imagenet-train", "imagenet-test"]) == ("imagenet-train", "imagenet-test")
    assert roles(["train", "Val", "val2017"]) == ("train", "Val")  # a name as such first
    assert roles(["train", "test_seen", "test_unseen"]) == ("train", None)  # two say test: the user names one
    assert roles(["train", "val_a", "val_b", "test"]) == ("train", "test")
    assert roles(["train", "val_a", "val_b", "test2017"]) == ("train", None)


def test_held_out_with_no_name_free_is_one_line(holding, tmp_path):
    taken = {"validation": [""], "val": [""], "held_out": [""]}
    root = make_listed(tmp_path / "d", {"train": MANY["train"], **taken}, unlabeled=list(taken))
    with pytest.raises(UsageError) as refused:
        load_dataset("holding", root, options={"val_fraction": 0.2})
    assert refused.value.message == (
        "--val-fraction: no name is free for the held-out split (validation, val, held_out are taken)"
    )


def test_split_keywords_are_those_of_datasets_and_the_roles_read_them_in_any_case():
    from datasets.data_files import SPLIT_KEYWORDS

    assert ALIASES == {word: str(split) for split, words in SPLIT_KEYWORDS.items() for word in words}
    assert set(TRAIN_NAMES) | set(EVAL_NAMES) == set(ALIASES) | {"trainval"}
    assert roles(["Test", "Train", "Val"]) == ("Train", "Val")
    assert roles(["train", "validation", "test"], unlabeled={"validation"}) == ("train", "test")


def test_images_moved_out_of_many_class_folders_are_each_listed_in_their_own_class(tmp_path):
    """A `convert --mode move` rerun over 600 emptied class folders: each folder finds its own moved files, and
    only those."""
    from fgvctune_adapters.folder import FolderAdapter

    root = tmp_path / "pets"
    for k in range(600):
        (root / f"c{k:03d}").mkdir(parents=True)
    reader = FolderAdapter(root)
    reader.moved = frozenset(root / f"c{k:03d}" / f"{i}.png" for k in range(600) for i in range(2))
    listing = reader.read()
    assert len(listing.classes) == 600 and {s.path for s in listing.splits["train"]} == reader.moved
