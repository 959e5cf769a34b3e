"""--exclude and --relabel (data/edits.py): exactly the named samples left out or relabelled, from every list format
(doctor.csv, pred.txt, plain ids, id,label), through load_dataset, convert and info; bad lists in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import make_folder
from fgvctune.cli import app
from fgvctune.data.dataset import load_dataset, shown_name
from fgvctune.data.tree import convert
from fgvctune.errors import UsageError

runner = CliRunner()


def samples(dataset) -> dict[str, str]:
    """id -> label of every sample, the split in the id."""
    return {shown_name(s.path, dataset.root): s.label for ss in dataset.splits.values() for s in ss}


def test_exclude_and_relabel_change_exactly_the_named_samples(tmp_path):
    root = make_folder(tmp_path / "ds", classes=("cat", "dog", "owl"))
    (tmp_path / "out.txt").write_text("# left out by hand\ntrain/cat/cat0.jpg\n\nval/owl/owl2.jpg\n")
    (tmp_path / "new.csv").write_text("id,label\ntrain/dog/dog1.jpg,owl\nval/cat/cat1.jpg,dog\n")
    before = samples(load_dataset("folder", root))
    after = load_dataset("folder", root, exclude=tmp_path / "out.txt", relabel=tmp_path / "new.csv")
    expected = {k: v for k, v in before.items() if k not in ("train/cat/cat0.jpg", "val/owl/owl2.jpg")}
    expected.update({"train/dog/dog1.jpg": "owl", "val/cat/cat1.jpg": "dog"})
    assert samples(after) == expected
    assert [(p.split, p.message) for p in after.excluded] == [
        ("train", f"left out by --exclude {tmp_path / 'out.txt'}:2"),
        ("val", f"left out by --exclude {tmp_path / 'out.txt'}:4"),
    ]
    assert [(r.id, r.was, r.now) for r in after.relabelled] == [
        ("train/dog/dog1.jpg", "dog", "owl"),
        ("val/cat/cat1.jpg", "cat", "dog"),
    ]
    assert after.problems == []  # left out on purpose is not a problem: train needs no --skip-bad


def test_a_doctor_csv_excludes_every_row_and_relabels_its_label_issues_to_the_suggestion(tmp_path):
    root = make_folder(tmp_path / "ds")
    doctor = tmp_path / "doctor.csv"
    doctor.write_text(
        "id,split,given,suggested,issue,score,with\n"
        "train/cat/cat0.jpg,train,cat,dog,label,0.01,\n"
        "train/dog/dog2.jpg,train,dog,cat,outlier,0.2,\n"
    )
    excluded = load_dataset("folder", root, exclude=doctor)
    assert set(samples(load_dataset("folder", root))) - set(samples(excluded)) == {
        "train/cat/cat0.jpg",
        "train/dog/dog2.jpg",
    }
    relabelled = load_dataset("folder", root, relabel=doctor)
    assert [(r.id, r.now) for r in relabelled.relabelled] == [("train/cat/cat0.jpg", "dog")]  # not the outlier


def test_pred_txt_and_a_headerless_id_label_file_are_lists_too(tmp_path):
    root = make_folder(tmp_path / "ds")
    (tmp_path / "pred.txt").write_text("image\tpred\treal\nval/dog/dog0.jpg\t0\t1\n")
    (tmp_path / "pairs.csv").write_text("val/dog/dog1.jpg,cat\n")
    d = load_dataset("folder", root, exclude=tmp_path / "pred.txt", relabel=tmp_path / "pairs.csv")
    assert "val/dog/dog0.jpg" not in samples(d) and samples(d)["val/dog/dog1.jpg"] == "cat"


def test_an_excluded_broken_file_is_no_problem(tmp_path):
    root = make_folder(tmp_path / "ds")
    (root / "train" / "cat" / "cat1.jpg").write_bytes(b"not a picture")
    with pytest.raises(Exception, match="cat1.jpg"):
        load_dataset("folder", root)
    (tmp_path / "out.txt").write_text("train/cat/cat1.jpg\n")
    assert load_dataset("folder", root, exclude=tmp_path / "out.txt").problems == []


def test_convert_writes_the_edited_tree_and_lists_what_it_left_out_and_relabelled(tmp_path):
    root = make_folder(tmp_path / "ds")
    (tmp_path / "out.txt").write_text("train/cat/cat0.jpg\n")
    (tmp_path / "new.csv").write_text("id,label\ntrain/cat/cat1.jpg,dog\n")
    out = tmp_path / "tree"
    result = runner.invoke(
        app,
        ["convert", "-a", "folder", "-d", str(root), "-o", str(out)]
        + ["--exclude", str(tmp_path / "out.txt"), "--relabel", str(tmp_path / "new.csv")],
    )
    assert result.exit_code == 0, result.output
    assert "1 sample(s) left out by --exclude" in result.output
    assert sorted(p.name for p in (out / "train" / "cat").iterdir()) == ["cat2.jpg"]
    assert sorted(p.name for p in (out / "train" / "dog").iterdir()) == ["cat1.jpg", "dog0.jpg", "dog1.jpg", "dog2.jpg"]
    assert "cat0.jpg: left out by --exclude" in (out / "skipped.txt").read_text()
    assert (out / "relabelled.csv").read_text().splitlines()[1].startswith("train,train/cat/cat1.jpg,cat,dog,")
    # Converted again without the lists: the tree and its files are as the data is.
    convert("folder", root, out)
    assert sorted(p.name for p in (out / "train" / "cat").iterdir()) == ["cat0.jpg", "cat1.jpg", "cat2.jpg"]
    assert not (out / "skipped.txt").exists() and not (out / "relabelled.csv").exists()


def test_info_counts_the_edited_data(tmp_path):
    root = make_folder(tmp_path / "ds")
    (tmp_path / "new.csv").write_text("id,label\ntrain/cat/cat1.jpg,dog\ntrain/cat/cat2.jpg,dog\n")
    result = runner.invoke(
        app, ["info", "-a", "folder", "-d", str(root), "--relabel", str(tmp_path / "new.csv"), "--no-duplicates"]
    )
    assert result.exit_code == 0, result.output
    assert "train (train): 6 images, 2 classes, 1-5 per class" in result.output
    assert "2 sample(s) relabelled by --relabel" in result.output


@pytest.mark.parametrize(
    "option, text, said",
    [
        ("--exclude", "train/cat/cat9.jpg\n", "list:1: 'train/cat/cat9.jpg' is not a sample of"),
        ("--relabel", "id,label\ntrain/cat/cat0.jpg,emu\n", "list:2: label 'emu' is not among the dataset's classes"),
        ("--relabel", "train/cat/cat0.jpg\n", "list:1: a --relabel row needs a sample id and a label"),
        ("--relabel", "id,class\ntrain/cat/cat0.jpg,dog\n", "list:1: no label column"),
        ("--relabel", "id,label\ntrain/cat/cat0.jpg\n", "list:2: 1 column(s), the header has 2"),
        ("--exclude", b"train/cat/\xff.jpg\n", "list:1: not UTF-8 text"),
    ],
)
def test_a_bad_list_is_one_line_naming_the_file_and_line(tmp_path, option, text, said):
    root = make_folder(tmp_path / "ds")
    path = tmp_path / "list"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    for command in (["info"], ["convert", "-o", str(tmp_path / "out")], ["train", "--epoch-size", "1"]):
        result = runner.invoke(app, [*command, "-a", "folder", "-d", str(root), option, str(path)])
        assert result.exit_code == 2, (command, result.output)
        assert said in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists()


def test_a_missing_list_is_one_line(tmp_path):
    root = make_folder(tmp_path / "ds")
    with pytest.raises(UsageError, match="cannot read --exclude list .*nowhere.txt"):
        load_dataset("folder", root, exclude=Path(tmp_path / "nowhere.txt"))


@pytest.mark.e2e
def test_a_cleaned_run_records_its_lists_and_its_report_says_what_changed(few_digits, tmp_path, cache):
    """train --exclude --relabel: config.yaml names the lists (a resumed or repeated run reads the same data),
    skipped.txt and relabelled.csv say what changed, the counts and the evaluation are of the edited data, and
    the report lists both."""
    import yaml

    from fgvctune.training.trainer import train

    (tmp_path / "out.txt").write_text("train/0/" + sorted(p.name for p in (few_digits / "train" / "0").iterdir())[0])
    first_val = sorted(p.name for p in (few_digits / "val" / "1").iterdir())[0]
    (tmp_path / "new.csv").write_text(f"id,label\nval/1/{first_val},2\n")
    run = train(
        adapter="folder", data_dir=str(few_digits), pretrained=False, image_resize=32, batch_size=4, epoch_size=1,
        exclude=str(tmp_path / "out.txt"), relabel=str(tmp_path / "new.csv"), cache_dir=cache,
        output=tmp_path / "run",
    )  # fmt: skip
    folder = run.folder
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    assert saved["exclude"] == str(tmp_path / "out.txt") and saved["relabel"] == str(tmp_path / "new.csv")
    assert "left out by --exclude" in (folder / "skipped.txt").read_text()
    assert f"val,val/1/{first_val},1,2," in (folder / "relabelled.csv").read_text()
    counts = (folder / "counts.csv").read_text().splitlines()
    assert "train,0,3" in counts and "val,1,7" in counts and "val,2,13" in counts
    result = json.loads((folder / "eval-val" / "eval.json").read_text())
    assert result["count"] == 24 and result["per_class"]["2"]["total"] == 13
    page = (folder / "report.html").read_text()
    assert "Left out of this run: 1" in page and "Relabelled in this run: 1" in page and first_val in page
