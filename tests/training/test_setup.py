"""training/setup.py on real runs: frozen blocks folded (and the weights they loaded saved as loaded), mixed
precision on the CPU, drop rates reaching the network the run builds, a checkpoint's classifier kept only for
its own classes, and the fine-tuning recipe a run from weights takes when given no rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from trainers import first_batches, trainer

from conftest import checkpoint, finetune_settings
from fgvctune.errors import ModelError
from fgvctune.training import strategy
from fgvctune.training.trainer import train


def test_frozen_blocks_train_folded_and_save_the_weights_they_loaded(tmp_path, base, cache):
    """--freeze 7 folds the frozen blocks' BatchNorm into their convolutions (gradual unfreezing's head-only
    phase folds every block, the next phase unfolds what it trains); a step leaves the frozen weights as loaded
    and the checkpoint keeps MindCV's names."""
    from fgvctune.kernels import fold

    def folded(t):
        return [name for name, cell in t.network.cells_and_names() if type(cell) is fold.FoldedBatchNorm2d]

    t = trainer(tmp_path, base, cache, freeze="7")
    assert folded(t) == t.frozen_norms and t.frozen_norms[-1].startswith("features.6.")
    t.build_step(head_only=True)
    assert len(folded(t)) == t.folded == 34  # every BatchNorm of mobilenet_v3_small_100
    t.build_step(head_only=False)
    assert folded(t) == t.frozen_norms
    t.step.set_train(True)
    strategy.set_train_mode(t.network, True, t.frozen_norms)
    images, labels = first_batches(t, 1)[0]
    t.step(images, labels)
    t.folder.mkdir()
    t._save(t.step, "last.ckpt", 1)
    saved, start = checkpoint(t.folder / "last.ckpt"), checkpoint(base)
    assert set(start) <= set(saved)
    frozen = [k for k in start if k.startswith(tuple(f"features.{i}." for i in range(7)))]
    assert frozen and all(saved[k].tobytes() == start[k].tobytes() for k in frozen)
    assert saved["features.7.layers.0.weight"].tobytes() != start["features.7.layers.0.weight"].tobytes()


@pytest.mark.e2e
@pytest.mark.parametrize("level", ["O1", "O2"])
def test_mixed_precision_levels_train_on_the_cpu(tmp_path, base, cache, level):
    run = train(
        output=tmp_path / level, progress=False, **finetune_settings(base, cache, epoch_size=1, amp_level=level)
    )
    assert len(run.rows) == 1 and np.isfinite(run.rows[0]["train_loss"])
    assert not (Path.cwd() / "rewritten_network").exists()  # O1's generated code lives in the cache
    assert checkpoint(tmp_path / level / "best.ckpt")["classifier.3.weight"].dtype == np.float32


def test_drop_rates_reach_the_models_that_take_them_through_the_seeded_dropout(pynative):
    from fgvctune.models.dropout import SeededDropout
    from fgvctune.models.factory import create_network

    network, _ = create_network("resnest50", 10, drop_rate=0.3)
    assert [round(c.p, 3) for _, c in network.cells_and_names() if isinstance(c, SeededDropout)] == [0.3]
    network, _ = create_network("convnext_tiny", 10, drop_path_rate=0.2)
    rates = [c.p for _, c in network.cells_and_names() if isinstance(c, SeededDropout)]
    assert len(rates) == 17 and max(rates) == pytest.approx(0.2)  # rates grow over 18 blocks; the first's is 0
    with pytest.raises(ModelError, match="mobilenet_v3_small_100 does not take drop_rate"):
        create_network("mobilenet_v3_small_100", 10, drop_rate=0.3)


def test_a_checkpoints_classifier_is_kept_only_for_the_classes_it_learnt(tmp_path, base, few_digits, cache):
    """The base run learnt 3 manufacturers; few_digits has 3 classes too (digits 0-2), so the base's classifier
    fits but knows other classes: the run starts a new one (keeping it cost fine-tuning 12.9 points on digits in
    benchmarks/parity.py --finetune). Beside a labels.csv of the same classes it is kept; beside none it is not
    (the tutorial deletes it before everything)."""
    import shutil

    from fgvctune.config import resolve
    from fgvctune.data.labels import LabelMap
    from fgvctune.training.trainer import Trainer

    def start(ckpt: Path, name: str) -> tuple[np.ndarray, str]:
        settings = finetune_settings(ckpt, cache, adapter="folder", data_dir=str(few_digits))
        lines = []
        t = Trainer(resolve(**settings), tmp_path / name, False, False, progress=False, log=lines.append, writes=False)
        t.set_up()
        return t.network.parameters_dict()["classifier.3.weight"].asnumpy(), "\n".join(lines)

    learnt = checkpoint(base)["classifier.3.weight"]
    head, said = start(base, "other-classes")
    assert head.shape == learnt.shape and not np.array_equal(head, learnt)
    assert (
        f"dropped classifier classifier.3.weight, classifier.3.bias (trained on other classes, says {base.parent}"
        in said
    )
    same = tmp_path / "same-classes"
    same.mkdir()
    shutil.copy(base, same / "best.ckpt")
    (same / "labels.csv").write_text(LabelMap(("0", "1", "2")).to_csv())
    head, said = start(same / "best.ckpt", "same")
    assert np.array_equal(head, learnt) and "dropped" not in said
    (same / "labels.csv").unlink()
    head, said = start(same / "best.ckpt", "bare")
    assert not np.array_equal(head, learnt) and "no labels.csv beside the checkpoint" in said


def test_a_run_from_weights_given_no_rate_takes_the_fine_tuning_recipe_and_says_so(tmp_path, base, cache):
    from fgvctune.config import FINETUNE_RECIPE, resolve
    from fgvctune.training.trainer import Trainer

    settings = {k: v for k, v in finetune_settings(base, cache).items() if k != "lr"}

    def start(name: str, **given) -> tuple[Trainer, str]:
        lines = []
        t = Trainer(resolve(**settings, **given), tmp_path / name, False, False, progress=False, log=lines.append)
        t.set_up()
        return t, "\n".join(lines)

    def head_rate(t: Trainer) -> float:
        t.build_step(head_only=False)
        return {p.lr_mult for p in t.strategy.params if p.block == "head"}.pop()

    tuned, said = start("recipe")
    taken = {k: v for k, v in FINETUNE_RECIPE.items() if k not in settings}  # the keys given win
    assert taken and {k: getattr(tuned.config, k) for k in taken} == taken
    assert "fine-tuning recipe: " in said and "recipe: finetune" in (tmp_path / "recipe" / "config.yaml").read_text()
    assert head_rate(tuned) == FINETUNE_RECIPE.get("head_lr_mult", 1.0)
    plain, said = start("plain", lr=0.002)
    assert "fine-tuning recipe" not in said and plain.config.recipe == "none" and head_rate(plain) == 1.0
