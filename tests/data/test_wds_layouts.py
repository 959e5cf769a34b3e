"""WebDataset shards as publishers write them (webdataset's own TarWriter and ShardWriter), read by the `wds` adapter
and by `webdataset.WebDataset(urls, shardshuffle=False)`, the oracle: the same samples, keys and labels per split;
where webdataset raises, or yields a sample fgvctune cannot use, a problem naming the shard and key."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from conftest import classes_file, png, run_cli
from fgvctune import load_dataset
from fgvctune.data import containers
from fgvctune.data.dataset import open_adapter
from fgvctune.errors import UsageError

CLASSES = ["cat", "dog", "owl"]


def write_shards(pattern: str, samples: list[dict], maxcount: int = 1000) -> None:
    import webdataset

    Path(pattern).parent.mkdir(parents=True, exist_ok=True)
    with webdataset.ShardWriter(pattern, maxcount=maxcount, verbose=0) as sink:
        for sample in samples:
            sink.write(sample)


def oracle(urls) -> list[dict]:
    """The samples webdataset yields, undecoded: __key__, __url__ and the fields' bytes."""
    import webdataset

    return list(webdataset.WebDataset(urls, shardshuffle=False))


def label(sample: dict, field: str = "cls") -> str:
    return CLASSES[int(sample[field])]


def read(root: Path, **options):
    """The adapter's own answer (every split, every problem), as `info` sees it before any check."""
    return open_adapter("wds", root, **options).read()


def keyed(samples) -> Counter:
    """(key, label) of fgvctune's samples; a sample's `where` is SHARD:KEY."""
    return Counter((s.where.rsplit(":", 1)[1], s.label) for s in samples)


# -- 1. keys by webdataset's rule ----------------------------------------------------------------------------------
def test_keys_with_dots_are_read_as_webdataset_groups_them(tmp_path):
    """`img_0_0.v2.png` is field `v2.png` of key `img_0_0`: webdataset yields it with its `v2.cls`, so fgvctune
    has it too (as it has the keys without dots beside them), none dropped."""
    root = tmp_path / "shards"
    samples = [{"__key__": f"img_{i}_0.v2", "png": png(i), "cls": i % 3} for i in range(6)]
    samples += [{"__key__": f"img_{i}_1", "png": png(i + 6), "cls": i % 2} for i in range(6)]
    write_shards(str(root / "train-%06d.tar"), samples)
    classes_file(root)
    expected = oracle(str(root / "train-000000.tar"))
    assert len(expected) == 12 and sum("v2.png" in s for s in expected) == 6
    wanted = Counter((s["__key__"], label(s, "v2.cls" if "v2.cls" in s else "cls")) for s in expected)

    listing = read(root, classes="classes.txt")
    assert keyed(listing.splits["train"]) == wanted
    assert listing.problems == []
    dataset = load_dataset("wds", root, options={"classes": "classes.txt"})  # every image reads
    assert sum(map(len, dataset.splits.values())) == 12


def test_keys_webdataset_merges_or_raises_on_are_problems_never_lost(tmp_path):
    """Two keys equal up to their first dot (`pic.a`, `pic.b`) are one webdataset sample with two images; keys
    equal but for case (`dup.X`, `dup.x`) repeat a field, and webdataset raises. Each is a problem naming the
    shard and key, in its split; the samples beside them are read."""
    root = tmp_path / "shards"
    good = [{"__key__": f"ok{i}", "png": png(i), "cls": i % 3} for i in range(4)]
    merged = [{"__key__": f"pic.{v}", "png": png(9), "cls": 1} for v in "ab"]
    write_shards(str(root / "train-%06d.tar"), good + merged)
    write_shards(str(root / "val-%06d.tar"), good[:2] + [{"__key__": f"dup.{v}", "png": png(8), "cls": 0}
                                                        for v in "Xx"])  # fmt: skip
    classes_file(root)
    seen = oracle(str(root / "train-000000.tar"))
    assert [s["__key__"] for s in seen] == ["ok0", "ok1", "ok2", "ok3", "pic"]
    assert {"a.png", "b.png"} <= set(seen[-1])  # one sample, two images
    with pytest.raises(ValueError, match="duplicate file name"):
        oracle(str(root / "val-000000.tar"))

    listing = read(root, classes="classes.txt")
    problems = {(p.where, p.split): p.message for p in listing.problems}
    assert set(problems) == {("train-000000.tar:pic", "train"), ("val-000000.tar:dup", "validation")}
    assert problems["train-000000.tar:pic", "train"].startswith("two images under one key (a.png, b.png)")
    assert "repeats a field" in problems["val-000000.tar:dup", "validation"]
    assert keyed(listing.splits["train"]) == Counter((s["__key__"], label(s)) for s in seen[:4])
    assert len(listing.splits["validation"]) == 2

    shown = run_cli("info", "-a", "wds", "-d", str(root), "--classes", "classes.txt", "--no-duplicates")
    assert shown.returncode == 1 and "Traceback" not in shown.stderr + shown.stdout
    assert "train-000000.tar:pic: two images under one key" in shown.stdout + shown.stderr


# -- 2. split folders keep their split -----------------------------------------------------------------------------
def split_folders(tmp_path: Path, folders: dict[str, str]) -> Path:
    """Shards in split folders, as the publisher split them: folder -> shard name pattern (.tar, .tar.gz, .tgz)."""
    root = tmp_path / "shards"
    n = 0
    for folder, pattern in folders.items():
        samples = []
        for i in range(7):
            samples.append({"__key__": f"{folder}_{i:03d}", "png": png(n), "cls": (i + n) % 3})
            n += 1
        write_shards(str(root / folder / pattern), samples, maxcount=4)
    classes_file(root)
    return root


def folder_counts(root: Path, folder: str) -> Counter:
    urls = sorted(str(p) for p in (root / folder).iterdir())
    return Counter(label(s) for s in oracle(urls))


def test_shards_in_split_folders_keep_their_split(tmp_path):
    """train/*.tar, val/*.tar.gz, test/*.tgz: each folder is its split, never pooled and split again (the
    published validation images must not go into training), found by default and by a glob alike."""
    folders = {"train": "shard-%06d.tar", "val": "shard-%06d.tar.gz", "test": "shard-%06d.tgz"}
    root = split_folders(tmp_path, folders)
    assert len(list((root / "train").iterdir())) == 2  # ShardWriter split it
    expected = {folder: folder_counts(root, folder) for folder in folders}
    for shards in ("", "*/shard-*"):
        listing = read(root, classes="classes.txt", shards=shards)
        assert {split: Counter(s.label for s in ss) for split, ss in listing.splits.items()} == expected, shards
        assert (listing.train_split, listing.eval_split) == ("train", "val")
        assert listing.problems == []
    keys = {split: {s.where.split("/")[0] for s in ss} for split, ss in listing.splits.items()}
    assert keys == {"train": {"train"}, "val": {"val"}, "test": {"test"}}


def test_split_folders_keep_their_names_as_written_and_are_named_so(tmp_path):
    """dev/ and eval/ are split folders (as `datasets` reads them) that keep their names: `-s dev` names what the
    publisher wrote; shards named by split keep the name `datasets` gives them."""
    root = split_folders(tmp_path, {"Train": "s-%06d.tar", "dev": "s-%06d.tar", "eval": "s-%06d.tar"})
    listing = read(root, classes="classes.txt")
    expected = {folder: folder_counts(root, folder) for folder in ("Train", "dev", "eval")}
    assert {split: Counter(s.label for s in ss) for split, ss in listing.splits.items()} == expected
    assert (listing.train_split, listing.eval_split) == ("Train", "dev")
    dataset = load_dataset("wds", root, ["dev"], options={"classes": "classes.txt"})
    assert Counter(s.label for s in dataset.splits["dev"]) == expected["dev"]


def test_split_folders_that_mean_the_same_split_keep_their_own_names(tmp_path):
    root = split_folders(tmp_path, {"train": "s-%06d.tar", "test_seen": "s-%06d.tar", "test_unseen": "s-%06d.tar"})
    listing = read(root, classes="classes.txt")
    expected = {folder: folder_counts(root, folder) for folder in ("train", "test_seen", "test_unseen")}
    assert {split: Counter(s.label for s in ss) for split, ss in listing.splits.items()} == expected


def test_shards_of_a_training_split_only_hold_out_val_fraction(tmp_path):
    """train-*.tar and nothing to evaluate on: --val-fraction, given, holds out a stratified share, as for unnamed
    shards (by default none is: the split is the publisher's, and the roles' hint offers the option)."""
    root = split_folders(tmp_path, {"shards": "train-%06d.tar"})
    expected = folder_counts(root, "shards")
    listing = read(root, classes="classes.txt", val_fraction=0.3, seed=1)
    assert (listing.train_split, listing.eval_split, set(listing.splits)) == ("train", "val", {"train", "val"})
    assert 0 < len(listing.splits["val"]) < len(listing.splits["train"])
    assert Counter(s.label for ss in listing.splits.values() for s in ss) == expected
    assert (
        list(read(root, classes="classes.txt").splits)
        == list(read(root, classes="classes.txt", val_fraction=0).splits)
        == ["train"]
    )
    with pytest.raises(UsageError) as refused:
        load_dataset("wds", root, options={"classes": "classes.txt"}, roles=True)
    assert "--val-fraction" in refused.value.hint


def test_shards_without_a_split_anywhere_are_still_held_out_by_fraction(tmp_path):
    root = split_folders(tmp_path, {"shards": "part-%06d.tar"})
    listing = read(root, classes="classes.txt", val_fraction=0.3, seed=1)
    assert set(listing.splits) == {"train", "val"}
    pooled = Counter(s.label for ss in listing.splits.values() for s in ss)
    assert pooled == folder_counts(root, "shards")


def test_a_val_fraction_given_holds_out_of_the_only_split_whatever_its_name(tmp_path):
    """test-*.tar alone: the roles' hint offers --val-fraction on 'test', and given, the fraction holds out of it
    (not ignored because the split evaluates by its name)."""
    root = split_folders(tmp_path, {"shards": "test-%06d.tar"})
    with pytest.raises(UsageError) as refused:
        load_dataset("wds", root, options={"classes": "classes.txt"}, roles=True)
    assert "hold out part of 'test'" in refused.value.hint
    dataset = load_dataset("wds", root, options={"classes": "classes.txt", "val_fraction": 0.3}, roles=True)
    assert (dataset.train_split, dataset.eval_split) == ("test", "val")
    assert 0 < len(dataset.splits["val"]) < len(dataset.splits["test"])
    assert sum((Counter(s.label for s in ss) for ss in dataset.splits.values()), Counter()) == folder_counts(
        root, "shards"
    )


def test_split_folders_named_with_a_year_or_a_prefix_take_their_roles(tmp_path):
    """train2017/ and val2017/ (COCO), imagenet-train/ and imagenet-val/: each keeps its name and its role; a
    fraction given beside val2017/ is refused, as beside val/."""
    for folders in (("train2017", "val2017"), ("imagenet-train", "imagenet-val")):
        root = split_folders(tmp_path / folders[0], dict.fromkeys(folders, "s-%06d.tar"))
        dataset = load_dataset("wds", root, options={"classes": "classes.txt"}, roles=True)
        assert (dataset.train_split, dataset.eval_split) == folders
        assert {split: Counter(s.label for s in ss) for split, ss in dataset.splits.items()} == {
            folder: folder_counts(root, folder) for folder in folders
        }
        with pytest.raises(UsageError) as refused:
            read(root, classes="classes.txt", val_fraction=0.3)
        assert refused.value.message == f"--val-fraction: this dataset already has a validation split {folders[1]!r}"


def test_the_fraction_range_is_one_rule_for_every_adapter(tmp_path):
    """Unnamed shards with a fraction out of range: the line every adapter gives; 0 holds nothing out."""
    root = split_folders(tmp_path, {"shards": "part-%06d.tar"})
    for fraction in (1.0, 1.5, -0.1):
        with pytest.raises(UsageError) as refused:
            read(root, classes="classes.txt", val_fraction=fraction)
        assert refused.value.message == f"--val-fraction must be at least 0 and below 1, got {fraction}"
    assert list(read(root, classes="classes.txt", val_fraction=0).splits) == ["train"]


# -- 3. brace patterns, as webdataset expands them -----------------------------------------------------------------
PATTERNS = [
    "train-{000000..000009}.tar",
    "{train,test}-{000000..000001}.tar",
    "{a,b}{c,d}{1..2}",
    "x{9..11}y",
    "{07..10}",
    "{10..7}",
    "{2..-1}",
    "{-03..2}",
    "{0..10..3}",
    "{a..g..2}",
    "{Y..c}",
    "{e..a}",
    "python{2.{5..7},3.{2,3}}",
    "index.html{,.backup}",
    "{single}",
    "{}",
    "a{,}b",
    "{a,{b,c}d}e",
    "}{",
    r"{1\{2,3}",
    r"lit\,eral{x,y}",
    "plain.tar",
    "",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_brace_expansion_matches_braceexpand(pattern):
    from braceexpand import braceexpand

    from fgvctune_adapters.wds import braces

    assert braces(pattern) == list(braceexpand(pattern))


def test_a_brace_list_of_ranges_is_held_to_the_limit_of_names_in_total(monkeypatch):
    """Each range of the list is within the limit; the list, joined, is refused in one line."""
    from fgvctune.errors import DataError
    from fgvctune_adapters import wds_braces

    monkeypatch.setattr(wds_braces, "MAX_NAMES", 1000)
    assert len(wds_braces.braces("{{000..499},{500..999}}.tar")) == 1000
    with pytest.raises(DataError) as refused:
        wds_braces.braces("s-{{000..999},{000..999}}.tar")
    assert refused.value.message == (
        "--shards 's-{{000..999},{000..999}}.tar': the list {{000..999},{000..999}} stands for more than 1,000 names"
    )


def test_a_long_brace_list_expands_as_braceexpand_does():
    """50,000 shard names in one comma list (a publisher's listing pasted as --shards), expanded whole and in order
    (the count of names is kept as the list grows, so its length costs no more than its items)."""
    from braceexpand import braceexpand

    from fgvctune_adapters.wds import braces

    pattern = "{" + ",".join(f"s{i}" for i in range(50_000)) + "}.tar"
    assert braces(pattern) == list(braceexpand(pattern))


@pytest.mark.parametrize("pattern", ["{1{2,3}", "a}b", "{a,b"])
def test_unbalanced_braces_are_one_line(pattern, tmp_path):
    from braceexpand import UnbalancedBracesError, braceexpand

    from fgvctune.errors import DataError
    from fgvctune_adapters.wds import braces

    with pytest.raises(UnbalancedBracesError):
        list(braceexpand(pattern))
    with pytest.raises(DataError, match="unbalanced braces"):
        braces(pattern)


def test_brace_lists_of_splits_read_as_webdataset_reads_them(tmp_path):
    root = tmp_path / "shards"
    for split in ("train", "test"):
        samples = [{"__key__": f"{split}{i}", "png": png(i), "cls": i % 3} for i in range(6)]
        write_shards(str(root / f"{split}-%06d.tar"), samples, maxcount=3)
    classes_file(root)
    pattern = "{train,test}-{000000..000001}.tar"
    seen = oracle(str(root / pattern))
    assert len(seen) == 12
    expected = {split: Counter((s["__key__"], label(s)) for s in seen if Path(s["__url__"]).name.startswith(split))
                for split in ("train", "test")}  # fmt: skip

    listing = read(root, classes="classes.txt", shards=pattern)
    assert {split: keyed(ss) for split, ss in listing.splits.items()} == expected

    shown = run_cli("info", "-a", "wds", "-d", str(root), "--classes", "classes.txt", "--shards",
                    "{train,test}-{000000..000002}.tar")  # fmt: skip
    assert shown.returncode == 1 and "Traceback" not in shown.stderr + shown.stdout
    assert f"shard {root / 'train-000002.tar'} of" in shown.stdout + shown.stderr


# -- 4. json labels: names, or ids as .cls holds them ---------------------------------------------------------------
def test_json_label_ids_map_through_classes_and_names_stay_names(tmp_path):
    root = tmp_path / "shards"
    samples = []
    for i in range(9):
        value = i % 3 if i < 6 else CLASSES[i % 3]  # integer ids, then names
        samples.append({"__key__": f"s{i}", "jpg": png(i, "JPEG"), "json": {"label": value}})
    write_shards(str(root / "train-%06d.tar"), samples)
    write_shards(str(root / "val-%06d.tar"), samples[:3])
    classes_file(root)
    expected = {}
    for split, name in (("train", "train"), ("validation", "val")):
        rows = oracle(str(root / f"{name}-000000.tar"))
        values = [(s["__key__"], json.load(io.BytesIO(s["json"]))["label"]) for s in rows]
        expected[split] = Counter((key, CLASSES[v] if isinstance(v, int) else v) for key, v in values)

    listing = read(root, classes="classes.txt", label_key="json:label")
    assert {split: keyed(ss) for split, ss in listing.splits.items()} == expected
    dataset = load_dataset("wds", root, options={"classes": "classes.txt", "label_key": "json:label"})
    assert dataset.labels.classes == tuple(CLASSES) and dataset.problems == []


# -- 5. every problem in its split; nothing unreadable left out in silence ----------------------------------------
def test_every_problem_names_its_split_and_unreadable_members_are_problems(tmp_path, monkeypatch):
    """A label with no image, a label over the member limit, a shard cut short (webdataset yields what precedes
    the cut, the last sample half there, and says nothing): each a problem in its split."""
    root = tmp_path / "shards"
    good = [{"__key__": f"ok{i}", "png": png(i), "cls": i % 3} for i in range(4)]
    orphan = {"__key__": "orphan", "cls": 1}  # a label, no image
    big = {"__key__": "big", "png": png(5), "cls": "1" * 300}
    write_shards(str(root / "train-%06d.tar"), [*good, orphan, big])
    write_shards(str(root / "val-%06d.tar"), good)
    cut = root / "val-000000.tar"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    classes_file(root)
    seen = oracle(str(root / "train-000000.tar"))
    assert [s["__key__"] for s in seen] == ["ok0", "ok1", "ok2", "ok3", "orphan", "big"]  # webdataset yields them
    assert "png" not in oracle(str(cut))[-1]

    monkeypatch.setattr(containers, "MEMBER_LIMIT", 200)
    listing = read(root, classes="classes.txt")
    problems = {p.where: p for p in listing.problems}
    assert set(problems) == {"train-000000.tar:orphan", "train-000000.tar:big", "val-000000.tar"}
    assert {p.split for p in listing.problems} <= {"train", "validation"}
    assert problems["val-000000.tar"].split == "validation"
    assert "not a complete tar archive" in problems["val-000000.tar"].message
    assert problems["train-000000.tar:orphan"].message == "a .cls label but no image"
    assert problems["train-000000.tar:big"].message.startswith(".cls: holds more than 200 bytes")
    assert all(p.split == "train" for w, p in problems.items() if w.startswith("train"))
    assert keyed(listing.splits["train"]) == Counter((s["__key__"], label(s)) for s in seen[:4])


def test_problems_of_shards_pooled_by_fraction_belong_to_train(tmp_path):
    root = tmp_path / "shards"
    write_shards(str(root / "part-%06d.tar"), [{"__key__": f"ok{i}", "png": png(i), "cls": i % 3}
                                               for i in range(6)] + [{"__key__": "orphan", "cls": 1}])  # fmt: skip
    classes_file(root)
    listing = read(root, classes="classes.txt", val_fraction=0.5)
    assert [(p.where, p.split) for p in listing.problems] == [("part-000000.tar:orphan", "train")]


def test_a_classes_file_that_is_not_text_or_too_large_is_one_line(tmp_path, monkeypatch):
    """--classes names a file the user chose, which may be anything: bytes that are not UTF-8, or a huge file."""
    from fgvctune_adapters import wds

    shards = tmp_path / "shards"
    shards.mkdir()
    with tarfile.open(shards / "train-000000.tar", "w") as tar:
        for name, data in (("a.png", png(0)), ("a.cls", b"0")):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    (shards / "classes.txt").write_bytes(b"\xff\xfe\x00cat\n")
    shown = run_cli("info", "-a", "wds", "-d", str(shards), "--classes", "classes.txt")
    assert shown.returncode == 1 and "Traceback" not in shown.stderr
    assert shown.stderr.strip().splitlines() == [
        f"error: --classes {shards / 'classes.txt'}: not UTF-8 text (one class name per line, in id order)"
    ]
    (shards / "classes.txt").write_text("cat\ndog\n")
    monkeypatch.setattr(wds, "CLASSES_LIMIT", 4)
    with pytest.raises(wds.DataError, match="not a file of class names"):
        wds.WdsAdapter(shards, classes="classes.txt")._class_names(shards)
