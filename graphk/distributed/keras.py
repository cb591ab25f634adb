"""Keras 2.3.1 on several workers: an optimizer wrapper and two callbacks (Horovod's API).

    opt = gd.DistributedOptimizer(keras.optimizers.SGD(0.1))
    model.compile(opt, loss=...)
    model.fit(x_shard, y_shard, callbacks=[gd.BroadcastGlobalVariablesCallback(0),
                                           gd.MetricAverageCallback()],
              verbose=int(gd.rank() == 0))

The optimizer's gradients go through one `allreduce` node inside Keras' own
compiled training function, so a step is one graph and one MPI call. Keras
is imported by this module only (graphk.distributed loads it on first use).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import backend as K

import graphk.distributed as gd


class _Distributed:
    """Mixed in before a Keras optimizer class: gradients averaged over workers."""

    _graphk_reduction = "average"

    def get_gradients(self, loss, params):
        """Each worker's gradients averaged, then clipped (clipnorm, clipvalue).

        Averaging first makes clipping act on the global batch's gradient, as in
        one process training on the whole batch.
        """
        grads = K.gradients(loss, params)
        missing = [p.name for p, g in zip(params, grads) if g is None]
        if missing:
            raise ValueError(f"DistributedOptimizer: the loss has no gradient with respect to "
                             f"{missing}; every weight the optimizer updates must reach the "
                             "loss through differentiable ops")
        grads = gd.allreduce(grads, self._graphk_reduction)
        if getattr(self, "clipnorm", 0) > 0:
            norm = K.sqrt(sum(K.sum(K.square(g)) for g in grads))
            grads = [keras.optimizers.clip_norm(g, self.clipnorm, norm) for g in grads]
        if getattr(self, "clipvalue", 0) > 0:
            grads = [K.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads


def DistributedOptimizer(optimizer, reduction: str = "average"):
    """A copy of `optimizer` (same class name and config) whose gradients are allreduced.

    `reduction="sum"` adds the workers' gradients instead (then scale the
    learning rate yourself). The class keeps its name, so a saved model
    loads back with the plain optimizer.
    """
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"DistributedOptimizer wraps a Keras optimizer instance, "
                        f"got {optimizer!r}")
    if reduction not in ("average", "sum"):
        raise ValueError(f"DistributedOptimizer: reduction must be 'average' or 'sum', "
                         f"got {reduction!r}")
    base = type(optimizer)
    cls = type(base.__name__, (_Distributed, base), {"_graphk_reduction": reduction})
    return cls.from_config(optimizer.get_config())


class BroadcastGlobalVariablesCallback(keras.callbacks.Callback):
    """At the start of training, every worker takes root's model and optimizer weights.

    Keras builds the optimizer's weights before training begins, so they are
    included; broadcasting happens once, at the first `fit`.
    """

    def __init__(self, root_rank: int = 0):
        super().__init__()
        self.root_rank = root_rank
        self.done = False

    def on_train_begin(self, logs=None):
        if self.done:
            return
        optimizer = getattr(self.model, "optimizer", None)
        weights = list(self.model.weights) + list(getattr(optimizer, "weights", []))
        gd.broadcast_variables(weights, self.root_rank)
        self.done = True


class MetricAverageCallback(keras.callbacks.Callback):
    """Epoch metrics (loss, accuracy, validation metrics) averaged over workers.

    Put it before callbacks that read the metrics (ModelCheckpoint,
    ReduceLROnPlateau) so they see the averages.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or gd.size() == 1:
            return
        names = sorted(name for name, value in logs.items() if np.ndim(value) == 0)
        if not names:  # every worker has the same metrics, so all skip together
            return
        values = np.array([logs[name] for name in names], np.float64)
        averaged, = gd.allreduce_arrays([values], "average")
        for name, value in zip(names, averaged):
            logs[name] = float(value)
