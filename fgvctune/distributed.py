"""Data-parallel training under msrun: who this process is, and how its numbers join the others'."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Workers:
    rank: int = 0
    size: int = 1

    @property
    def is_writer(self) -> bool:
        """Only rank 0 writes checkpoints, results and pictures."""
        return self.rank == 0

    def reducer(self, parameters):
        """Averages gradients across workers; the identity for one process."""
        from mindspore import nn

        if self.size == 1:
            return nn.Identity()
        return nn.DistributedGradReducer(parameters, mean=True, degree=self.size)

    def sum(self, values: list[float]) -> list[float]:
        """Add exact counts across workers (never an average of per-worker ratios)."""
        if self.size == 1:
            return list(values)
        import mindspore as ms
        from mindspore import ops

        total = ops.AllReduce()(ms.Tensor(values, ms.float64))
        return [float(v) for v in total.asnumpy()]


def setup(distribute: bool) -> Workers:
    if not distribute:
        return Workers()
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init

    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    return Workers(rank=get_rank(), size=get_group_size())
