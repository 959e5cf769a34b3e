"""A Trainer set up for single steps, shared by the training tests that take them (test_step, test_setup,
test_balance)."""

from __future__ import annotations

import numpy as np

from conftest import finetune_settings
from fgvctune.config import resolve
from fgvctune.training import strategy
from fgvctune.training.trainer import Trainer


def trainer(tmp_path, base, cache, **options) -> Trainer:
    """A Trainer set up with its step built (nothing written), for tests that take single steps."""
    config = resolve(**finetune_settings(base, cache, **options))
    t = Trainer(config, tmp_path / "run", resume=False, verbose=False, progress=False, log=print, writes=False)
    t.set_up()
    t.build_step(head_only=False)
    t.step.set_train(True)
    strategy.set_train_mode(t.network, True, t.frozen_norms)  # as each epoch starts
    return t


def values(params) -> dict[str, np.ndarray]:
    return {p.name: p.asnumpy().copy() for p in params}


def first_batches(t: Trainer, count: int) -> list:
    batches = []
    for images, labels in t.train_batches(0):
        batches.append((images, labels))
        if len(batches) == count:
            return batches
    raise AssertionError("not enough batches")
