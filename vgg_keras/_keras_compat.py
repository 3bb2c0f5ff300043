"""The one place where vgg_keras relies on Keras internals: private methods or behaviour.

The rest of the package uses Keras' public API only. What is here has no public
equivalent; each use says what it relies on, why, and on which Keras versions it was
checked. `tests/test_keras_compat.py` asserts every one of these assumptions, so a Keras
upgrade that breaks one fails there by name, not somewhere deep in a training run.

Supported Keras: the range of setup.py (`keras>=3.8,<3.16`). Run on 3.15.1; the private
names below were read in the sources of 3.5.0 to 3.15.1 (`keras/src/backend/tensorflow/
trainer.py`).
"""

from __future__ import annotations

import contextlib
import functools

import keras
import tensorflow as tf

__all__ = ["multi_worker_fit"]


def _rank1(logs: dict) -> dict:
    return {key: keras.ops.reshape(value, (1,)) for key, value in logs.items()}


def _build_on_local_batch(model: keras.Model, iterator=None, data_batch=None) -> None:
    """Replaces the TensorFlow trainer's `_maybe_symbolic_build`: builds from this worker's batch."""
    strategy = model.distribute_strategy
    if iterator is not None:
        for _, _, batches in iterator:
            local = lambda v: strategy.experimental_local_results(v)[0]  # noqa: E731
            data_batch = tf.nest.map_structure(local, next(batches))
            break
    with strategy.scope():
        model._symbolic_build(data_batch=data_batch)  # pylint: disable=protected-access


@contextlib.contextmanager
def multi_worker_fit(model: keras.Model, strategy: tf.distribute.Strategy):
    """Inside, `model.fit` works under MultiWorkerMirroredStrategy despite two Keras 3 issues.

    Keras 3 reduces step logs with `strategy.reduce("MEAN", v, axis=0)`, which fails on
    scalars (tensorflow#72388): the steps here return rank-1 logs. And `fit` reduces the
    first distributed batch with `strategy.reduce` to build the model symbolically, which
    the strategy cannot do for an (images, labels) tuple: the build here uses this worker's
    local batch instead (the shapes are all it needs).

    The model gets its own `train_step`, `test_step` and `_maybe_symbolic_build` as
    instance attributes, removed on exit (also when `fit` raises); its class stays its own,
    so a checkpoint saved during `fit` loads like any other. Other strategies leave the
    model untouched.

    Private, with no public equivalent: the TensorFlow trainer's
    `_maybe_symbolic_build(iterator=None, data_batch=None)`, which `fit` and `evaluate` call
    with their epoch iterator (iterating it yields `(begin_step, end_step, iterator)`), and
    `Trainer._symbolic_build(data_batch=...)`. Present since Keras 3.5.0 (before, `fit` did
    not build from a batch and the replacement is simply not called); checked up to 3.15.1.

    Args:
        model: The compiled model.
        strategy: The strategy `fit` runs under.

    Yields:
        Nothing; use as `with multi_worker_fit(model, strategy): model.fit(...)`.
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        with _multi_worker_steps(model):
            yield
    else:
        yield


@contextlib.contextmanager
def _multi_worker_steps(model: keras.Model):
    own_class = type(model)
    steps = {
        "train_step": lambda data: _rank1(own_class.train_step(model, data)),
        "test_step": lambda data: _rank1(own_class.test_step(model, data)),
        "_maybe_symbolic_build": functools.partial(_build_on_local_batch, model),
    }
    for name, step in steps.items():
        setattr(model, name, step)
    try:
        yield
    finally:
        for name in steps:
            delattr(model, name)
