"""The train step: forward, loss, gradients and the update as one compiled cell, and the state a step
carries from one phase (or one resumed process) to the next."""

from __future__ import annotations


def TrainStep(network, loss_fn, optimizer, reducer):
    """Forward, loss, gradients (averaged across workers when distributed) and the update, as one cell."""
    import mindspore as ms
    from mindspore import nn, ops

    class _TrainStep(nn.Cell):
        def __init__(self):
            super().__init__(auto_prefix=False)  # keep parameter names as the network has them
            self.network, self.loss_fn, self.optimizer, self.reducer = network, loss_fn, optimizer, reducer
            self.grad_fn = ms.value_and_grad(self.forward, None, optimizer.parameters, has_aux=True)

        def forward(self, images, labels):
            logits = self.network(images)
            return self.loss_fn(logits, labels), logits

        def construct(self, images, labels):
            (loss, logits), grads = self.grad_fn(images, labels)
            grads = self.reducer(grads)
            loss = ops.depend(loss, self.optimizer(grads))
            return loss, logits

    return _TrainStep()


def carried_over(state: dict) -> dict:
    """A train step's state to go on from: weights, BatchNorm statistics, optimizer moments, step
    counts. Not the learning-rate schedules: they come from the config, grouped by the phase's plan."""
    return {name: value for name, value in state.items() if not name.startswith("learning_rate")}
