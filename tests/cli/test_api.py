"""The library API: every documented name is what it names, even after every module of every room is imported, and
every function the Python API page (docs/python.md) lists runs on the bundled sample."""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

import pytest

import fgvctune
from conftest import REPO


def test_public_names_survive_submodule_imports():
    """No module shadows a package name (a subpackage `fgvctune.train` would replace the function fgvctune.train)."""
    for module in pkgutil.walk_packages(fgvctune.__path__, "fgvctune."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for name in fgvctune.__all__:
        value = getattr(fgvctune, name)
        assert not isinstance(value, ModuleType), name
        assert callable(value) or name.isupper(), name  # functions and classes, and constants such as IMAGE_EXTENSIONS


def listed_in_the_docs() -> set[str]:
    """The names docs/python.md lists: `fgvctune.train`, `load_dataset`, `find_duplicates(...)`, ..."""
    page = (REPO / "docs" / "python.md").read_text(encoding="utf-8")
    paragraph = page.split("\n`fgvctune.train` takes", 1)[1].split("\n\n", 1)[0]
    return {"train", *re.findall(r"`(?:fgvctune\.)?(\w+)[`(]", paragraph)}


@pytest.mark.e2e
def test_every_function_the_docs_list_runs_on_the_sample(tmp_path, base, cache, monkeypatch):
    """Each once, as the page's example calls them (from the project folder, with configs/sample.yaml); one
    one-epoch run serves every function that reads a run, compare included (it keeps a finished run)."""
    monkeypatch.chdir(REPO)
    assert listed_in_the_docs() == {
        *("load_dataset", "convert", "ImageSource", "find_duplicates", "train", "evaluate", "predict_split"),
        *("predict_images", "layers", "compare", "lr_find", "write_report", "export", "TrainConfig", "diagnose"),
    }
    assert listed_in_the_docs() <= set(fgvctune.__all__)

    dataset = fgvctune.load_dataset("aircraft", "data/aircraft-sample")
    assert len(dataset.labels) == 8 and len(dataset.splits["test"]) == 64
    fgvctune.convert("aircraft", "data/aircraft-sample", tmp_path / "tree", options={"level": "family"})
    assert len({p.parent.name for p in (tmp_path / "tree" / "test").glob("*/*.jpg")}) == 6  # the six families
    source = fgvctune.ImageSource.from_dataset(dataset, "test")
    assert len(source) == 64 and source[0][0].dtype.name == "uint8"
    assert "no duplicates among" in fgvctune.find_duplicates(dataset).summary()

    folder = tmp_path / "compare" / "full"  # where compare puts its "full" strategy
    run = fgvctune.train(
        config_file="configs/sample.yaml",
        ckpt_path=str(base),
        pretrained=False,
        epoch_size=1,
        image_resize=32,
        cache_dir=cache,
        output=folder,
        progress=False,
    )
    c = run.config
    assert (c.lr, c.batch_size, c.scale, c.adapter_options) == (0.05, 16, [0.5, 1.0], {"level": "variant"})  # sample's
    assert (c.epoch_size, c.image_resize) == (1, 32) and len(run.rows) == 1  # the keywords win
    assert isinstance(c, fgvctune.TrainConfig)

    result = fgvctune.evaluate(folder)
    assert result.count == 64 and result.top1 == pytest.approx(run.rows[0]["val_top1"], abs=1e-4)  # 4 places kept
    assert len(fgvctune.predict_split(folder).rows) == 64
    assert len(fgvctune.predict_images(folder, [dataset.splits["test"][0].path], top=3).rows) == 1
    assert fgvctune.layers(str(folder)).classifier == "classifier.3"
    rows = fgvctune.compare(c, tmp_path / "compare", names=["full"])
    assert [r["strategy"] for r in rows] == ["full"] and rows[0]["top1"] == result.top1
    assert fgvctune.write_report(folder).is_file()
    exported = fgvctune.export(folder)
    assert exported.path.is_file() and exported.checked == 8
    found = fgvctune.diagnose("aircraft", "data/aircraft-sample", tmp_path / "doctor", run=folder)
    assert {f.issue for f in found.found} <= {"label", "outlier", "near_duplicate"} and found.files[0].is_file()
    sweep = fgvctune.lr_find(c, str(tmp_path / "lr-find"), steps=10)
    assert len(sweep.rates) <= 10 and all(path.is_file() for path in sweep.files)
