"""The train step: forward, loss, gradients and the update as one compiled cell, and the state a step
carries from one phase (or one resumed process) to the next.

MindCV's TrainStep options, in the order they act on one update:
- loss scaling: the loss is multiplied by the scale before the backward pass and the gradients divided by
  it after; a dynamic scale halves and skips the update when a gradient overflows, and doubles after
  `SCALE_WINDOW` good updates (MindCV's DynamicLossScaleManager settings);
- gradient accumulation: k calls add their gradients into buffers, the k-th updates with their mean, so
  k batches of b train as one batch of k*b (BatchNorm statistics aside);
- the gradients are averaged across data-parallel workers, then clipped to a global norm: every worker
  clips the same averaged gradient (MindCV clips each worker's own before averaging);
- the EMA of the weights follows each update (with MindCV's warm-up of the decay over `ema_warmup`
  updates, 2000 by default), kept in `ema.<name>`
  parameters beside the network's, so last.ckpt holds both and a resumed run goes on exactly.

The optimizer is MindCV's, but for Nesterov momentum (see `NesterovMomentum`).
"""

from __future__ import annotations

from contextlib import contextmanager

SCALE_FACTOR, SCALE_WINDOW = 2, 2000  # MindCV's dynamic loss scale: x2 after 2000 good updates, /2 on overflow
EMA_PREFIX = "ema."


def TrainStep(
    network,
    loss_fn,
    optimizer,
    reducer,
    *,
    accumulate: int = 1,
    clip: float = 0.0,
    loss_scale: float = 1.0,
    dynamic_scale: bool = False,
    ema_decay: float = 0.0,
    ema_warmup: int = 2000,
    ema_names: frozenset = frozenset(),
):
    """Forward, loss, gradients and (when `update` is true) the update, as one cell.

    Call `step(images, labels)` for an update, or `step(images, labels, False)` to only accumulate
    gradients (with `accumulate` > 1; the k-th call of a cycle passes True). `ema_names` are the parameters
    the moving average follows: the ones that change (trainable weights, BatchNorm statistics that move).
    """
    import mindspore as ms
    from mindspore import Parameter, Tensor, nn, ops

    divided = ops.MultitypeFuncGraph("divided")
    averaged = ops.MultitypeFuncGraph("averaged")

    @divided.register("Tensor", "Tensor")
    def _divided(by, value):
        return value / ops.cast(by, ops.dtype(value))

    @averaged.register("Tensor", "Tensor", "Tensor")
    def _averaged(decay, average, value):
        return ops.assign(average, average * decay + ops.cast(value, ops.dtype(average)) * (1 - decay))

    class _TrainStep(nn.Cell):
        def __init__(self):
            super().__init__(auto_prefix=False)  # keep parameter names as the network has them
            self.network, self.loss_fn, self.optimizer, self.reducer = network, loss_fn, optimizer, reducer
            self.weights = optimizer.parameters
            self.grad_fn = ms.value_and_grad(self.forward, None, self.weights, has_aux=True)
            self.accumulate, self.clip, self.dynamic = accumulate, clip, dynamic_scale
            self.scaled = dynamic_scale or loss_scale != 1.0  # a scale of 1 costs no multiplications
            self.hyper_map = ops.HyperMap()
            # The optimizer divides by its own loss_scale; this cell divides instead, so the two never stack.
            self.scale = Parameter(Tensor(loss_scale, ms.float32), name="loss_scale", requires_grad=False)
            self.good_updates = Parameter(Tensor(0, ms.int32), name="loss_scale_good_updates", requires_grad=False)
            if accumulate > 1:
                self.sums = self.weights.clone(prefix="accumulated", init="zeros")
                self.count = Tensor(accumulate, ms.float32)
            self.ema = ema_decay > 0
            if self.ema:
                # a Tensor: the averaging function is registered for Tensors (a float would match nothing)
                self.ema_decay, self.ema_warmup = Tensor(ema_decay, ms.float32), float(ema_warmup)
                followed = [p for p in network.get_parameters() if p.name in ema_names]
                self.followed = ms.ParameterTuple(followed)
                self.averages = ms.ParameterTuple(
                    [Parameter(Tensor(p.asnumpy()), name=EMA_PREFIX + p.name, requires_grad=False) for p in followed]
                )
                self.updates = Parameter(Tensor(0.0, ms.float32), name="ema_updates", requires_grad=False)

        def forward(self, images, labels):
            logits = self.network(images)
            loss = self.loss_fn(logits, labels)
            return (loss * self.scale if self.scaled else loss), (loss, logits)

        def construct(self, images, labels, update=True):
            (_, (loss, logits)), grads = self.grad_fn(images, labels)
            if self.accumulate > 1:
                grads = self.hyper_map(ops.assign_add, self.sums, grads)
                if not update:
                    return loss, logits
                grads = self.hyper_map(ops.partial(divided, self.count), self.sums)
            grads = self.reducer(grads)
            if self.scaled:
                grads = self.hyper_map(ops.partial(divided, self.scale), grads)
            if self.clip > 0:
                grads = ops.clip_by_global_norm(grads, self.clip)
            if self.dynamic:
                finite = ms.amp.all_finite(grads)
                if finite:
                    loss = ops.depend(loss, self._apply(grads))
                loss = ops.depend(loss, self._adjust(finite))
            else:
                loss = ops.depend(loss, self._apply(grads))
            if self.accumulate > 1:
                loss = ops.depend(loss, self.hyper_map(ops.assign, self.sums, self.hyper_map(ops.zeros_like, grads)))
            return loss, logits

        def _apply(self, grads):
            done = self.optimizer(grads)
            if self.ema:
                self.updates += 1
                decay = self.ema_decay
                if self.ema_warmup > 0:
                    decay = decay * (1 - ops.exp(-self.updates / self.ema_warmup))
                done = ops.depend(done, self.hyper_map(ops.partial(averaged, decay), self.averages, self.followed))
            return done

        def _adjust(self, finite):
            if finite:
                self.good_updates += 1
                if self.good_updates >= SCALE_WINDOW:
                    self.scale = self.scale * SCALE_FACTOR
                    self.good_updates = 0
            else:
                self.scale = ops.maximum(self.scale / SCALE_FACTOR, 1.0)
                self.good_updates = 0
            return self.scale

    return _TrainStep()


def NesterovMomentum(params, learning_rate, momentum: float, weight_decay: float = 0.0):
    """MindSpore's nn.Momentum with Nesterov's update written out: accum = momentum * accum + g, then
    weight -= lr * (g + momentum * accum). MindSpore 2.10's CPU ApplyMomentum kernel ignores its use_nesterov
    flag and takes the plain step (weight -= lr * accum), so `--nesterov` built through MindCV changed nothing.
    Same parameters and state names (`moments.*`) as nn.Momentum, so checkpoints look the same."""
    from mindspore import nn, ops

    nesterov = ops.MultitypeFuncGraph("nesterov")

    @nesterov.register("Tensor", "Tensor", "Tensor", "Tensor", "Tensor")
    def _nesterov(momentum, lr, gradient, weight, accum):
        accum = ops.assign(accum, accum * momentum + gradient)
        return ops.assign_sub(weight, (gradient + accum * momentum) * lr)

    class _NesterovMomentum(nn.Momentum):
        def construct(self, gradients):  # nn.Momentum's, with the update above in place of ApplyMomentum
            gradients = self.scale_grad(self.gradients_centralization(self.decay_weight(gradients)))
            lr = self.get_lr()
            self.assignadd(self.global_step, self.global_step_increase_tensor)
            if self.is_group_lr:
                update = ops.partial(nesterov, self.momentum)
                return self.hyper_map_reverse(update, lr, gradients, self.params, self.moments)
            update = ops.partial(nesterov, self.momentum, lr)
            return self.hyper_map_reverse(update, gradients, self.params, self.moments)

    return _NesterovMomentum(params, learning_rate, momentum, weight_decay=weight_decay, use_nesterov=True)


def carried_over(state: dict) -> dict:
    """A train step's state to go on from: weights, BatchNorm statistics, optimizer moments, step
    counts, the EMA and loss scale. Not the learning-rate schedules: they come from the config, grouped
    by the phase's plan."""
    return {name: value for name, value in state.items() if not name.startswith("learning_rate")}


@contextmanager
def averaged_weights(step):
    """The EMA of a step's weights put in its network for the block, and the training weights put back exactly
    after: what validation and best.ckpt see with --ema."""
    from mindspore import Tensor

    followed = list(step.followed)
    raw = [p.asnumpy().copy() for p in followed]
    for param, average in zip(followed, step.averages):
        param.set_data(Tensor(average.asnumpy()))
    try:
        yield
    finally:
        for param, values in zip(followed, raw):
            param.set_data(Tensor(values))
