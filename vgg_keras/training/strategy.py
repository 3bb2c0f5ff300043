"""`tf.distribute` for training.

The strategy factory, the worker's role, logical CPU devices, validation padded to whole global batches and
synchronized BatchNorm.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable

import keras
import tensorflow as tf

from vgg_keras import surgery
from vgg_keras.training.config import STRATEGIES

__all__ = [
    "even_eval_fn",
    "is_chief",
    "is_distributed",
    "make_strategy",
    "split_cpu",
    "synchronized_batch_norm",
    "task_name",
]


def _tpu_strategy(tpu_address: str | None) -> tf.distribute.Strategy:
    if not tpu_address:
        raise ValueError(f"strategy='tpu' needs tpu_address (a TPU name or grpc:// address); received {tpu_address!r}.")
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _multi_worker_strategy() -> tf.distribute.Strategy:
    tf_config = os.environ.get("TF_CONFIG", "")
    try:
        cluster = json.loads(tf_config)["cluster"] if tf_config else None
    except (ValueError, KeyError) as error:
        raise ValueError(f"TF_CONFIG={tf_config!r} is not a JSON object with a 'cluster' entry.") from error
    if not cluster:
        raise ValueError(
            "strategy='multi_worker' needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}.'
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def _local_devices() -> list[str]:
    """All local GPUs; without GPUs every logical CPU device (e.g. configured for tests)."""
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return [device.name for device in devices]


def split_cpu(num_devices: int) -> None:
    """Splits the CPU into `num_devices` logical devices: "mirrored" then runs that many replicas.

    So a multi-replica run (and its synchronized BatchNorm, padded validation) can be
    reproduced on any machine without GPUs. Call it before TensorFlow runs anything.

    Args:
        num_devices: Logical CPU devices, >= 1.

    Raises:
        ValueError: If `num_devices` is not a positive int.
        RuntimeError: If TensorFlow has already initialised its devices.
    """
    if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
        raise ValueError(f"cpu_devices={num_devices!r}; expected a positive int.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
    except RuntimeError as error:
        raise RuntimeError(
            f"cpu_devices={num_devices} must be set before TensorFlow runs anything (call split_cpu first): {error}"
        ) from error


def make_strategy(name: str = "auto", tpu_address: str | None = None) -> tf.distribute.Strategy:
    """Creates the distribution strategy of a training run.

    Args:
        name: "auto" (MirroredStrategy when several GPUs, or several logical CPUs from
            `split_cpu`, are visible, else the default strategy), "default" (one device), "mirrored" (all local GPUs;
            without GPUs every logical CPU device),
            "multi_worker" (MultiWorkerMirroredStrategy from `TF_CONFIG`: several machines)
            or "tpu".
        tpu_address: The TPU name or `grpc://` address, for "tpu".

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError: For an unknown name, a missing `TF_CONFIG` or TPU address.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy={name!r}; allowed: {', '.join(map(repr, STRATEGIES))}.")
    if name == "auto":
        name = "mirrored" if len(_local_devices()) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(_local_devices())
    if name == "multi_worker":
        return _multi_worker_strategy()
    return _tpu_strategy(tpu_address)


def _task(strategy: tf.distribute.Strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return None
    return resolver


def task_name(strategy: tf.distribute.Strategy) -> str:
    """The "<task type>_<index>" of this process in a cluster ("worker_0" for single-worker strategies)."""
    resolver = _task(strategy)
    return "worker_0" if resolver is None else f"{resolver.task_type}_{int(resolver.task_id or 0)}"


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the process that writes logs, checkpoints and the final model.

    That is the "chief" task, or worker 0 in a cluster without one (TF_CONFIG's convention).
    """
    resolver = _task(strategy)
    if resolver is None or resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and int(resolver.task_id or 0) == 0 and not has_chief


def is_distributed(strategy: tf.distribute.Strategy) -> bool:
    """True when `strategy` splits batches over replicas or processes (its datasets are distributed)."""
    return strategy.num_replicas_in_sync > 1 or isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _padding_example(element_spec) -> tuple:
    """An all-zero example of `element_spec` (one example, batch axis removed)."""

    def zeros(spec):
        if not spec.shape.is_fully_defined():
            raise ValueError(
                f"Distributed evaluation pads with zero examples and needs static example shapes; "
                f"the validation dataset yields {element_spec}."
            )
        return tf.zeros(spec.shape, spec.dtype)

    return tf.nest.map_structure(zeros, element_spec)


def even_eval_fn(eval_fn: Callable, num_examples: int, global_batch_size: int) -> tuple[Callable, int]:
    """Validation for distributed `fit`/`evaluate` that counts every example exactly once.

    The split rarely divides into global batches, and each replica must get an equal,
    non-empty batch at every step (with the same number of steps on every worker), or the
    first validation fails. Each input pipeline therefore pads its shard with zero-weight
    examples to `ceil(num_examples / global_batch_size)` full, static-shaped global batches.
    Real examples get the weight `padded / num_examples` rather than 1: Keras averages the
    loss over every example in a batch, padding included, so this weight makes `val_loss`
    the mean over the real examples; weighted metrics (accuracy, top-5) are unaffected by a
    common factor.

    Args:
        eval_fn: `(input_context or None) -> tf.data.Dataset` of `(images, labels)` batches
            (per-replica batches of this pipeline's shard under an input context; the shard
            takes every `num_input_pipelines`-th example).
        num_examples: Examples in the whole split (all pipelines together).
        global_batch_size: The batch over all replicas.

    Returns:
        `(dataset_fn, steps)`: `dataset_fn` for `strategy.distribute_datasets_from_function`
        yields `(images, labels, sample_weights)`, one pass every `steps` global batches,
        repeated (called with `None` it returns `eval_fn(None)`). Pass `steps` to
        `fit(validation_steps=)` / `evaluate(steps=)`: Keras also miscounts the loss when it
        runs a distributed iterator to exhaustion.

    Raises:
        ValueError: If `num_examples` or `global_batch_size` is not a positive int.
    """
    for name, value in (("num_examples", num_examples), ("global_batch_size", global_batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}; expected a positive int.")
    steps = math.ceil(num_examples / global_batch_size)
    weight = steps * global_batch_size / num_examples

    def dataset_fn(input_context):
        if input_context is None:
            return eval_fn(None)
        per_replica = input_context.get_per_replica_batch_size(global_batch_size)
        replicas_here = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        examples = eval_fn(input_context).unbatch()
        padding = tf.data.Dataset.from_tensors(_padding_example(examples.element_spec) + (0.0,)).repeat()
        weighted = examples.map(lambda *example: (*example, tf.constant(weight, tf.float32)))
        # Every pipeline yields the same number of full batches: its shard, then padding.
        padded = weighted.concatenate(padding).take(steps * replicas_here * per_replica)
        # Repeats: Keras reuses a validation iterator that has `validation_steps`.
        return padded.batch(per_replica, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE)

    return dataset_fn, steps


def _batch_norm_layers(model: keras.Model) -> list:
    return [layer for layer in surgery.nested_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]


@contextlib.contextmanager
def synchronized_batch_norm(model: keras.Model, strategy: tf.distribute.Strategy):
    """Inside, the model's BatchNorm layers train on global batch statistics when there are several replicas.

    Every replica / worker then normalises with, and averages into its moving statistics,
    the mean and variance of the whole global batch (`BatchNormalization.synchronized`),
    so the statistics stay identical everywhere and equal those of one device with the same
    global batch. The flag is read when `fit` traces its step, so enter before `fit`. The
    layers' own setting comes back on exit: a model saved afterwards loads anywhere, with
    or without a strategy, on any Keras backend.

    Args:
        model: The model (built).
        strategy: The strategy it trains under.

    Yields:
        The BatchNormalization layers that were switched (empty with one replica).
    """
    layers = _batch_norm_layers(model) if strategy.num_replicas_in_sync > 1 else []
    previous = [layer.synchronized for layer in layers]
    for layer in layers:
        layer.synchronized = True
    try:
        yield layers
    finally:
        for layer, value in zip(layers, previous):
            layer.synchronized = value
