"""`train(config, workdir)`: the paper's training protocol, distributed and resumable.

Workdir layout (the chief worker writes it; other workers keep only their backup under
`workers/<task>_<i>/`):

    config.json    the resolved config (+ derived values: lr, replicas, mean RGB, ...)
    backup/        step-exact backup: model, optimiser, RNG, metric sums, schedule state
    metrics.csv    per-epoch loss / accuracy / top-5 / learning rate (train and validation)
    curves.png     the same as a plot
    tensorboard/   TensorBoard logs
    best.keras     the model with the best validation accuracy so far
    model.keras    the final model

Every file but metrics.csv (appended to, one fsynced row at a time) is written to a
temporary name and renamed into place (`callbacks.write_atomically`), so a kill at any
instant leaves a workdir the same command resumes. A resumed run is exact: each epoch reads
a stream seeded by (seed, epoch), and a resumed epoch skips the batches it had done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
import math
import os
import sys

import keras
import ml_collections
import tensorflow as tf

from vgg_keras import _keras_compat, models, preprocessing
from vgg_keras.training import callbacks as callbacks_lib
from vgg_keras.training import config as config_lib
from vgg_keras.training import data as data_lib
from vgg_keras.training import optimization
from vgg_keras.training import strategy as strategy_lib

__all__ = [
    "RunPaths",
    "TrainResult",
    "build_model",
    "compile_model",
    "scores_in_float32",
    "train",
    "train_with_data",
    "warm_start",
]


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where a run writes its outputs (see the module docstring)."""

    workdir: str
    config: str
    backup: str
    csv: str
    plot: str
    tensorboard: str
    best: str
    final: str

    @classmethod
    def of(cls, workdir: str, task: str | None = None) -> RunPaths:
        """Paths in `workdir` of the chief (`task=None`) or of another task, e.g. "worker_1"."""
        backup = os.path.join(workdir, "backup") if task is None else os.path.join(workdir, "workers", task)
        join = lambda name: os.path.join(workdir, name)  # noqa: E731
        return cls(
            workdir,
            join("config.json"),
            backup,
            join("metrics.csv"),
            join("curves.png"),
            join("tensorboard"),
            join("best.keras"),
            join("model.keras"),
        )


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        model: The trained model (final weights).
        history: Per-epoch metrics of the whole run, resumed parts included (from metrics.csv).
        paths: Where everything was written.
        steps: Optimizer steps done in total.
        config: The resolved config.
        data: The `TrainingData` used (class names, validation source, ...).
    """

    model: keras.Model
    history: dict
    paths: RunPaths
    steps: int
    config: ml_collections.ConfigDict
    data: object = None


# --------------------------------------------------------------------------- model


@contextlib.contextmanager
def _dtype_policy(precision: str):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_model(config: ml_collections.ConfigDict, num_classes: int, mean_rgb) -> keras.Model:
    """The config's VGG for `crop_size` inputs, RGB 0..255 in, mean RGB subtracted inside.

    Under mixed precision the classifier's last layer computes in float32 (stable soft-max).

    Args:
        config: A validated training config.
        num_classes: Classes of the predictions layer.
        mean_rgb: The mean RGB pixel baked into the model's normalisation layer.

    Returns:
        An uncompiled `keras.Model` (create it inside `strategy.scope()`).
    """
    m, size = config.model, config.data.crop_size
    with _dtype_policy(config.training.precision):
        inputs = keras.Input(shape=(size, size, 3), name="image")
        normalised = preprocessing.preprocessing_layer("mean_rgb", mean=list(mean_rgb))(inputs)
        model = models.build(
            m.arch,
            batch_norm=m.batch_norm or None,
            input_tensor=normalised,
            classes=num_classes,
            width_multiplier=m.width_multiplier,
            fc_units=m.fc_units,
            dropout=m.dropout,
            base_size=size,
            kernel_initializer=m.kernel_initializer,
            name=config.experiment,
        )
    if config.training.precision != "float32":
        scores_in_float32(model)
    return model


def scores_in_float32(model: keras.Model) -> keras.Model:
    """Makes the class-score layers compute in float32 under mixed precision (a stable soft-max).

    Args:
        model: A vgg_keras classifier, or one fine-tuned from it (`describe(model).score_layers`).

    Returns:
        The same model.
    """
    for name in models.describe(model).score_layers:
        model.get_layer(name).dtype_policy = "float32"
    return model


def _warm_start_file(config: ml_collections.ConfigDict, field: str) -> str:
    """`config.init.<field>` ("" when unset), checked to exist."""
    path = config.init[field]
    if path and not os.path.exists(path):
        raise FileNotFoundError(f"config.init.{field}={path!r} does not exist (train that run first, or set it to '').")
    return path


def warm_start(model: keras.Model, config: ml_collections.ConfigDict) -> list[str]:
    """Initialises `model` from a trained net A (the paper) or from any checkpoint.

    Args:
        model: The freshly built model.
        config: Its training config (`config.init`).

    Returns:
        The names of the layers that were initialised (empty: nothing to do).

    Raises:
        FileNotFoundError: If the file to start from is missing.
        ValueError: If its layers do not fit the model.
    """
    if config.init.from_shallower:
        source = keras.models.load_model(_warm_start_file(config, "from_shallower"), compile=False)
        return models.init_from_shallower(model, source, num_conv_layers=config.init.num_conv_layers)
    if config.init.checkpoint:
        model.load_weights(_warm_start_file(config, "checkpoint"))
        return [layer.name for layer in model.layers if layer.weights]
    return []


def compile_model(
    model: keras.Model, config: ml_collections.ConfigDict, learning_rate: float, loss="sparse_categorical_crossentropy"
) -> keras.Model:
    """Adds weight decay and compiles with SGD + momentum, accuracy and top-5 accuracy.

    Args:
        model: The model (inside the strategy's scope).
        config: Its training config.
        learning_rate: The (already batch-scaled) initial learning rate.
        loss: The loss (e.g. with label smoothing: `vgg_keras.training.finetune`).

    Returns:
        `model`, compiled.
    """
    o, t = config.optimizer, config.training
    if o.weight_decay_mode == "l2":
        optimization.apply_weight_decay(model, o.weight_decay)
    optimizer = optimization.make_optimizer(
        learning_rate, o.momentum, o.weight_decay, o.weight_decay_mode, loss_scale=t.precision == "mixed_float16"
    )
    model.compile(
        optimizer=optimizer,
        loss=loss,
        # Weighted: distributed validation pads with zero-weight examples (strategy.even_eval_fn).
        weighted_metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy")],
        jit_compile=t.jit_compile,
        steps_per_execution=t.steps_per_execution,
    )
    return model


# --------------------------------------------------------------------------- run setup


def _distribute(strategy, dataset_fn):
    """A plain dataset on one device; per-worker input pipelines under a real strategy."""
    if not strategy_lib.is_distributed(strategy):
        return dataset_fn(None)
    return strategy.distribute_datasets_from_function(dataset_fn)


def _validation_data(strategy, data, global_batch_size: int):
    """`(dataset, steps)` of one validation pass that counts each example once.

    On one device the steps of one pass when the size is known, so Keras does not warn that
    the input "ran out of data"; distributed, padded to full global batches (`even_eval_fn`).
    """
    num_examples = data.num_eval_examples
    if not strategy_lib.is_distributed(strategy):
        steps = None if num_examples is None else max(1, math.ceil(num_examples / global_batch_size))
        return data.eval_fn(None), steps
    if not num_examples:  # unknown size: one pass to count (the padding must know it)
        num_examples = sum(int(tf.shape(tf.nest.flatten(batch)[0])[0]) for batch in data.eval_fn(None))
    dataset_fn, steps = strategy_lib.even_eval_fn(data.eval_fn, num_examples, global_batch_size)
    return _distribute(strategy, dataset_fn), steps


def _config_dict(config: ml_collections.ConfigDict) -> dict:
    return json.loads(config.to_json_best_effort())


def _previous_config(path: str) -> dict | None:
    """The config.json of an earlier start, or None (missing, or unreadable: then rewritten)."""
    if not os.path.exists(path):
        return None
    previous = callbacks_lib.read_json(path)
    if not isinstance(previous, dict):
        logging.warning(
            "%s is empty or not valid JSON (left by a kill during an older version's "
            "write); it is rewritten from this run's config.",
            path,
        )
        return None
    return previous


def _check_same_run(
    previous: dict | None, workdir: str, config: ml_collections.ConfigDict, steps_per_epoch: int
) -> None:
    """A workdir belongs to one experiment: refuse to resume it with another model or data."""
    if previous is None:
        return
    current = _config_dict(config)
    changed = [
        f"{section}.{key}: {previous.get(section, {}).get(key)!r} -> {value!r}"
        for section in ("model", "data")
        for key, value in current[section].items()
        if previous.get(section, {}).get(key) != value and key not in ("mean_rgb", "max_eval_examples")
    ]
    previous_batch = previous.get("training", {}).get("batch_size", config.training.batch_size)
    if previous_batch != config.training.batch_size:
        changed.append(f"training.batch_size: {previous_batch} -> {config.training.batch_size}")
    previous_steps = previous.get("resolved", {}).get("steps_per_epoch", steps_per_epoch)
    if previous_steps != steps_per_epoch:  # the resume position is derived from it
        changed.append(f"steps per epoch: {previous_steps} -> {steps_per_epoch}")
    if changed:
        raise ValueError(
            f"The workdir {workdir!r} holds a run with a different config ({'; '.join(changed)}); "
            "use a new --workdir or restore those values."
        )


def _previous_mean_rgb(path: str):
    previous = callbacks_lib.read_json(path)
    mean = previous.get("resolved", {}).get("mean_rgb") if isinstance(previous, dict) else None
    return tuple(mean) if mean else None


def _write_config(path: str, config: ml_collections.ConfigDict, resolved: dict) -> None:
    payload = _config_dict(config)
    payload["resolved"] = resolved
    callbacks_lib.write_json_atomically(path, payload, indent=2, sort_keys=True)


def _tensorboard(log_dir: str) -> list:
    if importlib.util.find_spec("tensorboard") is None:
        logging.warning("TensorBoard logs skipped: `pip install tensorboard` to get them in %s.", log_dir)
        return []
    return [keras.callbacks.TensorBoard(log_dir, update_freq="epoch")]


def _callbacks(config, paths: RunPaths, chief: bool, steps_per_epoch: int):
    """(callbacks in order, the backup, the NaN guard). Order matters: schedule first, backup last."""
    o = config.optimizer
    plateau = optimization.PlateauSchedule(
        o.plateau_monitor, o.plateau_factor, o.plateau_patience, o.plateau_min_delta, o.plateau_max_reductions
    )
    nan_guard = callbacks_lib.NaNGuard()
    stateful = {"plateau": plateau}
    chain = [nan_guard, plateau]
    if chief:
        best = callbacks_lib.BestCheckpoint(paths.best, monitor=o.plateau_monitor)
        stateful["best"] = best
        chain += [
            best,
            callbacks_lib.MetricsCSV(paths.csv),
            callbacks_lib.CurvePlot(paths.csv, paths.plot),
        ] + _tensorboard(paths.tensorboard)
    backup = callbacks_lib.ResumableBackup(paths.backup, config.training.backup_every_steps, steps_per_epoch, stateful)
    return chain + [backup], backup, nan_guard


def _epoch_seed(seed: int, epoch: int) -> int:
    """The data seed of one epoch: the input order is a pure function of (seed, epoch, step)."""
    return (seed * 1_000_003 + epoch) % 2**31


def _epoch_stream(train_fn, seed: int, skip: int):
    """`train_fn` of one epoch: its seed's stream without its first `skip` (already done) batches."""
    return lambda input_context: train_fn(input_context, seed).skip(skip)


class _StopAfterEpoch(keras.callbacks.Callback):
    """Ends `fit` after one epoch (each epoch reads its own stream; see `_fit`)."""

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def _verbosity(verbose: int) -> int:
    # Keras' progress bar redraws itself with \b and \r: in a log file, one line per epoch.
    return 2 if verbose == 1 and not sys.stdout.isatty() else verbose


def _fit(model, strategy, data, config, chain, start_step: int, steps_per_epoch: int, failed) -> None:
    """Runs the remaining epochs, one `fit` per epoch, each on the stream of its own seed.

    Epoch e reads `train_fn(ctx, _epoch_seed(seed, e))` (TFDS files shuffled with that seed
    too), so where a run stands in its input is a pure function of (seed, epoch, step): an
    epoch resumed at step k skips its first k batches and then sees exactly the batches the
    uninterrupted run saw. `initial_epoch`/`epochs` keep the progress header right ("Epoch
    3/3"); `_StopAfterEpoch` ends each `fit` after its epoch.
    """
    epochs, seed = config.training.epochs, config.training.seed
    first_epoch, offset = divmod(start_step, steps_per_epoch)
    eval_data, validation_steps = _validation_data(strategy, data, config.training.batch_size)
    verbose = _verbosity(config.training.verbose)
    with strategy_lib.synchronized_batch_norm(model, strategy):
        for epoch in range(first_epoch, epochs):
            skip = offset if epoch == first_epoch else 0
            train_data = _distribute(strategy, _epoch_stream(data.train_fn, _epoch_seed(seed, epoch), skip))
            with _keras_compat.multi_worker_fit(model, strategy):
                model.fit(
                    train_data,
                    validation_data=eval_data,
                    validation_steps=validation_steps,
                    initial_epoch=epoch,
                    epochs=epochs,
                    steps_per_epoch=steps_per_epoch - skip,
                    callbacks=chain + [_StopAfterEpoch()],
                    verbose=verbose,
                    shuffle=False,
                )
            if failed():
                return


def _resume_learning_rate(model, plateau, learning_rate: float) -> None:
    """A rerun with another learning rate continues with it, not with the backup's.

    The backup restores the optimiser's learning-rate variable, which holds the rate the
    run had then (the config's, divided by the plateau schedule's reductions). When the
    config's rate differs (e.g. lowered after a NaN stop), the variable gets the new rate,
    divided by the same reductions. An unchanged rate is left bit-exact.
    """
    variable = optimization.learning_rate_variable(model.optimizer)
    wanted = learning_rate * plateau.factor**plateau.reductions
    current = float(keras.ops.convert_to_numpy(variable))
    if not math.isclose(current, wanted, rel_tol=1e-5):
        logging.warning("Resuming with learning rate %.6g (config) instead of the backup's %.6g.", wanted, current)
        variable.assign(wanted)


def _resolved(config, strategy, data, learning_rate: float, steps_per_epoch: int) -> dict:
    return {
        "learning_rate": learning_rate,
        "global_batch_size": config.training.batch_size,
        "num_replicas": strategy.num_replicas_in_sync,
        "strategy": type(strategy).__name__,
        "steps_per_epoch": steps_per_epoch,
        "num_classes": data.num_classes,
        "class_names": list(data.class_names),
        "mean_rgb": list(data.mean_rgb),
    }


def _steps_per_epoch(config, data) -> int:
    if config.training.steps_per_epoch:
        return config.training.steps_per_epoch
    if not data.num_train_examples:
        raise ValueError(
            f"The size of {config.data.name!r} is unknown; set config.training.steps_per_epoch to a positive integer."
        )
    return max(1, data.num_train_examples // config.training.batch_size)


def _raise_on_nan(nan_guard, backup, paths: RunPaths, config) -> None:
    """Raises `FloatingPointError` after a NaN/Inf stop, saying exactly what was kept."""
    if nan_guard.failure is not None:
        failure = nan_guard.failure
        what = f"the loss became {failure['loss']} in epoch {failure['epoch'] + 1} (batch {failure['batch']})"
    elif backup.failure is not None:
        what = f"the weights became NaN/Inf by step {backup.failure['step']}"
    else:
        return
    kept = []
    if backup.saved_step:
        kept.append(f"the last good backup (step {backup.saved_step}, in {paths.backup})")
    if os.path.exists(paths.best):
        kept.append(f"the best checkpoint ({paths.best})")
    if kept:
        resume = f"Kept: {' and '.join(kept)}. Rerunning resumes from step {backup.saved_step}"
    else:
        resume = "Nothing was kept (the failure came before the first backup). Rerunning starts from scratch"
    raise FloatingPointError(
        f"Training stopped: {what}. {resume}: lower --config.optimizer.learning_rate "
        f"(now {config.optimizer.learning_rate}) and rerun the same command; the run continues with the new rate."
    )


def train_with_data(
    config: ml_collections.ConfigDict,
    workdir: str,
    data: data_lib.TrainingData,
    strategy: tf.distribute.Strategy | None = None,
    callbacks=(),
    model_fn=None,
    loss="sparse_categorical_crossentropy",
) -> TrainResult:
    """`train` with the datasets given (e.g. synthetic ones in tests).

    Args:
        config: A training config (validated here).
        workdir: The run's directory; rerunning with the same workdir resumes.
        data: The datasets and their metadata (`mean_rgb` must be set).
        strategy: The distribution strategy (default: from `config.training.strategy`).
        callbacks: Extra Keras callbacks, run after the built-in ones and before the backup.
        model_fn: Makes the model instead of `build_model` (called in the strategy's scope;
            e.g. a fine-tuning model with frozen layers).
        loss: The loss `compile_model` uses.

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: For an invalid config or a workdir of another experiment.
        FloatingPointError: If the loss became NaN/Inf (the last good backup is kept).
    """
    config_lib.validate_config(config)
    strategy = strategy or strategy_lib.make_strategy(config.training.strategy, config.training.tpu_address)
    chief = strategy_lib.is_chief(strategy)
    paths = RunPaths.of(workdir, None if chief else strategy_lib.task_name(strategy))
    steps_per_epoch = _steps_per_epoch(config, data)
    _check_same_run(_previous_config(paths.config), workdir, config, steps_per_epoch)
    o = config.optimizer
    learning_rate = optimization.scaled_learning_rate(
        o.learning_rate, config.training.batch_size, o.base_batch_size, o.scale_learning_rate
    )
    keras.utils.set_random_seed(config.training.seed)
    with strategy.scope():
        model = model_fn() if model_fn is not None else build_model(config, data.num_classes, data.mean_rgb)
        chain, backup, nan_guard = _callbacks(config, paths, chief, steps_per_epoch)
        chain[-1:-1] = list(callbacks)
        if not backup.exists(paths.backup):
            warm_start(model, config)
        compile_model(model, config, learning_rate, loss)
        model.optimizer.build(model.trainable_variables)
        start_step = backup.restore(model)
        _resume_learning_rate(model, backup.stateful["plateau"], learning_rate)
    callbacks_lib.remove_temporaries(paths.backup)
    if chief:
        callbacks_lib.remove_temporaries(paths.workdir)
        _write_config(paths.config, config, _resolved(config, strategy, data, learning_rate, steps_per_epoch))
        callbacks_lib.repair_csv(paths.csv, start_step // steps_per_epoch)
    failed = lambda: nan_guard.failure is not None or backup.failure is not None  # noqa: E731
    _fit(model, strategy, data, config, chain, start_step, steps_per_epoch, failed)
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    _raise_on_nan(nan_guard, backup, paths, config)
    if chief:
        callbacks_lib.write_atomically(paths.final, model.save)
    history = callbacks_lib.read_csv_history(paths.csv)
    return TrainResult(model, history, paths, steps, config, data)


def _check_warm_start_files(config, workdir: str) -> None:
    if callbacks_lib.ResumableBackup.exists(RunPaths.of(workdir).backup):
        return  # resuming: the warm start happened in the first run
    for field in ("from_shallower", "checkpoint"):
        _warm_start_file(config, field)


def train(config: ml_collections.ConfigDict, workdir: str) -> TrainResult:
    """Trains the config's VGG on its dataset (the paper's protocol), resuming from `workdir`.

    Checks the config and opens the dataset before anything is built, so a typo or a
    missing dataset fails in seconds. The mean RGB is estimated from training images when
    `config.data.mean_rgb` is empty (and reused when the run resumes).

    Args:
        config: An experiment config from `recipes/configs/` (see `base_config`).
        workdir: Where the run writes everything (see the module docstring).

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: For an invalid config.
        FileNotFoundError: If the dataset or a warm-start file is missing.
        FloatingPointError: If the loss became NaN/Inf.
    """
    config_lib.validate_config(config)
    _check_warm_start_files(config, workdir)
    strategy = strategy_lib.make_strategy(config.training.strategy, config.training.tpu_address)
    data = data_lib.training_data(config, config.training.batch_size)
    mean = data.mean_rgb or _previous_mean_rgb(RunPaths.of(workdir).config)
    if mean is None:
        mean = data_lib.estimate_mean_rgb(
            data.train_source, config.data.crop_size, config.data.scale_min, config.data.mean_rgb_images
        )
    data.mean_rgb = tuple(mean)
    return train_with_data(config, workdir, data, strategy)
