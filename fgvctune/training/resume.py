"""The checkpoint half of the Trainer: saving best.ckpt and last.ckpt after an epoch, and going on from last.ckpt
(--resume) exactly where the run stopped."""

from __future__ import annotations

from fgvctune.errors import ModelError, UsageError
from fgvctune.fileio import save_checkpoint
from fgvctune.results.runfiles import LAST, read_results
from fgvctune.training.step import carried_over


class Checkpoints:
    """`Trainer`'s checkpoints: `_save` after each epoch, `_restore` and `_load_last` when it resumes."""

    def _save(self, cell, name: str, epoch: int) -> None:
        """Save through fileio.save_checkpoint, so a reader sees the old checkpoint or the new one.

        The network's settings from a converted PyTorch checkpoint are recorded in every checkpoint.
        """
        from fgvctune.models import torchcompat

        entries = {"fgvctune_epoch": epoch, **torchcompat.record(self.network)}
        save_checkpoint(self.folder / name, cell, append_dict=entries)

    def _restore(self) -> tuple[int, list[dict]]:
        from fgvctune.models.checkpoint import read_checkpoint

        last = self.folder / LAST
        if not last.is_file():
            return 0, []
        self.resumed = read_checkpoint(last)  # loaded into the train step once it is built (_load_last)
        if "fgvctune_epoch" not in self.resumed:  # written last: a file cut short between entries lacks it
            raise ModelError(
                f"{last} holds no epoch number: it is cut short, or not a checkpoint of fgvctune train",
                hint=f"delete it to train {self.folder} again from its first epoch",
            )
        epoch = int(self.resumed["fgvctune_epoch"].asnumpy())
        rows = [r for r in read_results(self.folder) if r["epoch"] <= epoch]
        if epoch >= self.config.epoch_size:
            raise UsageError(f"{self.folder} already finished its {self.config.epoch_size} epochs")
        self.log(f"resuming {self.folder} after epoch {epoch}")
        return epoch, rows

    def _load_last(self) -> None:
        from fgvctune.kernels import fuse

        if self.resumed:
            params = {k: v for k, v in self.resumed.items() if not k.startswith("fgvctune_")}
            self.resumed = {}
            self.ms.load_param_into_net(self.step, carried_over(params), strict_load=False)
            # the folded (and fused) constants from the weights just loaded
            fuse.fold_and_fuse(self.network, frozen_only=True, cache_dir=self.config.cache_dir)
