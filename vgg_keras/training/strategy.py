"""`tf.distribute` strategy factory and the worker's role in a multi-worker run."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from vgg_keras.training.config import STRATEGIES

__all__ = ["is_chief", "make_strategy", "task_name"]


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


def make_strategy(name: str = "auto", tpu_address: str | None = None) -> tf.distribute.Strategy:
    """Creates the distribution strategy of a training run.

    Args:
        name: "auto" (MirroredStrategy when several GPUs are visible, else the default
            strategy), "default" (one device), "mirrored" (all local GPUs; without GPUs every logical CPU device),
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
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
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
    """"<task type>_<index>" of this process in a cluster ("worker_0" for single-worker strategies)."""
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
