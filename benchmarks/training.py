"""Training-step throughput of the recipe's compiled step vs plain `keras.applications.VGG16` `fit`.

Both sides: VGG16 (config D, full width, 4096-unit FC layers), the same SGD + momentum
optimiser, L2 weight decay on every kernel, loss, metrics, batch and precision, trained
with `fit` on the same in-memory batch (so the input pipeline is not measured). The
recipe's model adds what the paper's protocol needs: the mean-RGB preprocessing layer and
dropout 0.5 after fc1/fc2 (keras.applications' VGG16 has no dropout); under mixed precision
both compute their `predictions` layer in float32. Full 224 px VGG16
trains at ~2 images/s on a 2-core CPU, so the default input is 64 px for both sides
(fc1 then sees a 2x2x512 map). Variants: float32 vs `mixed_bfloat16`, XLA off vs on.
Sides alternate in rounds so machine noise hits both alike; images/s = batch / median step time.

Two more tables (`--tables resume,backup`, or `all`):

- exact resume: what makes the data order a pure function of (seed, epoch, step), i.e. the
  trainer's one `fit` per epoch on a stream seeded per epoch (`trainer._fit`), vs one `fit`
  over a single repeating stream (how the trainer ran before), same model, data, epochs and
  validation; a narrow VGG-A on the in-memory synthetic task, so per-epoch overheads show.
- backup: seconds per `ResumableBackup.save()` (weights + momentum written to a temporary
  file, fsynced, renamed) of a full-width 224-px VGG16 (138M parameters), against the
  seconds of one training step, to choose `--backup_every_steps`.

    python benchmarks/training.py [--size 64] [--batch 16] [--steps 4] [--rounds 5] [--variants all]
                                  [--tables all|steps,resume,backup]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vgg_keras import training  # noqa: E402

VARIANTS = {
    "float32": ("float32", False),
    "float32 + XLA": ("float32", True),
    "mixed_bfloat16": ("mixed_bfloat16", False),
    "mixed_bfloat16 + XLA": ("mixed_bfloat16", True),
}
CLASSES = 1000


def _config(size: int, batch: int, precision: str, jit: bool):
    config = training.base_config()
    config.experiment = "vgg16_recipe"
    config.model.arch = "D"
    config.data.crop_size = config.data.scale_min = config.data.scale_max = config.data.eval_scale = size
    config.training.batch_size, config.training.precision, config.training.jit_compile = batch, precision, jit
    return training.validate_config(config)


def _recipe_model(config):
    model = training.build_model(config, CLASSES, (123.68, 116.779, 103.939))
    return training.compile_model(model, config, 0.01)


def _keras_model(config):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.training.precision)
    try:
        model = keras.applications.VGG16(weights=None, input_shape=(config.data.crop_size,) * 2 + (3,), classes=CLASSES)
    finally:
        keras.config.set_dtype_policy(previous)
    # As the Keras mixed-precision guide advises and the recipe does: a float32 output layer
    # (bfloat16 probabilities would also break the top-5 metric's in_top_k).
    model.get_layer("predictions").dtype_policy = "float32"
    training.apply_weight_decay(model, config.optimizer.weight_decay)
    model.compile(
        optimizer=training.make_optimizer(0.01, 0.9, weight_decay_mode="l2"),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy")],
        jit_compile=config.training.jit_compile,
    )
    return model


def _dataset(size: int, batch: int) -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, CLASSES, batch).astype("int32")
    return tf.data.Dataset.from_tensors((images, labels)).repeat()


class _StepTimer(keras.callbacks.Callback):
    """Wall time of every training step (`fit` syncs on the logs at each batch end)."""

    def __init__(self):
        super().__init__()
        self.seconds, self._start = [], 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _step_seconds(model, dataset, steps: int) -> list[float]:
    timer = _StepTimer()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
    return timer.seconds


def _race(config, args) -> tuple[float, float]:
    dataset = _dataset(args.size, args.batch)
    sides = {"recipe": _recipe_model(config), "keras": _keras_model(config)}
    for model in sides.values():
        model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)  # tracing / XLA compilation
    seconds = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, model in sides.items():
            seconds[name] += _step_seconds(model, dataset, args.steps)
    # The median step: robust to the other jobs sharing the cores (timings here are bimodal).
    return tuple(args.batch / statistics.median(seconds[name]) for name in ("recipe", "keras"))


def _step_table(args) -> float:
    """Prints the recipe-vs-keras table; returns the recipe's first variant's seconds per step."""
    names = list(VARIANTS) if args.variants == "all" else [v.strip() for v in args.variants.split(",")]
    print("| variant | recipe img/s | keras.applications img/s | ratio recipe / keras | vs recipe float32 |")
    print("|---|---|---|---|---|")
    baseline = None
    for name in names:
        keras.backend.clear_session()
        recipe, plain = _race(_config(args.size, args.batch, *VARIANTS[name]), args)
        baseline = baseline or recipe
        print(f"| {name} | {recipe:.1f} | {plain:.1f} | {recipe / plain:.2f} | {recipe / baseline:.2f} |", flush=True)
    return args.batch / baseline


def _resume_config(epochs: int, steps: int):
    config = training.base_config()
    config.experiment = "resume_cost"
    config.model.width_multiplier, config.model.fc_units, config.model.dropout = 0.25, 256, 0.5
    config.data.crop_size = config.data.scale_min = config.data.scale_max = config.data.eval_scale = 32
    config.training.batch_size, config.training.epochs, config.training.steps_per_epoch = 16, epochs, steps
    config.training.verbose, config.training.strategy = 0, "default"
    return training.validate_config(config)


def _resume_race(args) -> tuple[float, float]:
    """(steps/s of the per-epoch seeded streams, steps/s of one repeating stream)."""
    from vgg_keras.training import trainer  # pylint: disable=import-outside-toplevel

    config = _resume_config(args.resume_epochs, args.resume_steps)
    data = training.synthetic_training_data(num_classes=4, image_size=32, num_train=512, num_eval=64, batch_size=16)
    strategy = tf.distribute.get_strategy()
    model = training.compile_model(training.build_model(config, 4, data.mean_rgb), config, 0.01)
    epochs, steps_per_epoch = config.training.epochs, config.training.steps_per_epoch

    def per_epoch():
        trainer._fit(model, strategy, data, config, [], 0, steps_per_epoch, lambda: False)

    def one_stream():
        model.fit(
            data.train_fn(None, 0),
            validation_data=data.eval_fn(None),
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            verbose=0,
        )

    sides = {"per_epoch": per_epoch, "one_stream": one_stream}
    for side in sides.values():
        side()  # tracing
    seconds = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, side in sides.items():
            start = time.perf_counter()
            side()
            seconds[name].append(time.perf_counter() - start)
    return tuple(epochs * steps_per_epoch / statistics.median(seconds[name]) for name in sides)


def _resume_table(args) -> None:
    keras.backend.clear_session()
    exact, plain = _resume_race(args)
    print(
        f"\nExact resume: {args.resume_epochs} epochs x {args.resume_steps} steps + validation, VGG-A 1/4 width, "
        f"32 px, batch 16, median of {args.rounds} rounds\n"
    )
    # The cost is per epoch (a new `fit` and input stream), so it shrinks with the epoch's length.
    overhead = args.resume_steps * (1 / exact - 1 / plain)
    print("| data order | steps/s | ratio | extra seconds per epoch |")
    print("|---|---|---|---|")
    print(f"| one repeating stream (not resumable exactly) | {plain:.2f} | 1.00 | - |")
    print(
        f"| per-epoch seeded streams, one fit per epoch (the trainer) | {exact:.2f} | {exact / plain:.3f} "
        f"| {overhead:.3f} |",
        flush=True,
    )


def _backup_seconds(args) -> tuple[float, float, float]:
    """(median seconds per backup, parameters in millions, GiB per backup) of a 224-px VGG16."""
    keras.backend.clear_session()
    config = _config(224, args.batch, "float32", False)
    model = _recipe_model(config)
    model.optimizer.build(model.trainable_variables)
    with tempfile.TemporaryDirectory(dir=args.backup_dir) as directory:
        backup = training.ResumableBackup(directory, 1, 10**9)
        backup.set_model(model)
        seconds = []
        for _ in range(args.backup_rounds):
            start = time.perf_counter()
            backup.save()
            seconds.append(time.perf_counter() - start)
        size = os.path.getsize(os.path.join(directory, "latest.weights.h5")) / 2**30
    return statistics.median(seconds), model.count_params() / 1e6, size


def _backup_table(args, step_seconds: float | None) -> None:
    backup_s, millions, size = _backup_seconds(args)
    print(
        f"\nBackup of VGG16 (224 px, {millions:.0f}M parameters; weights + momentum {size:.2f} GiB), "
        f"median of {args.backup_rounds}, in {args.backup_dir or tempfile.gettempdir()}\n"
    )
    print("| backup s | training step s (first variant above) | overhead at --backup_every_steps 100 / 500 / 2000 |")
    print("|---|---|---|")
    if step_seconds:
        step = f"{step_seconds:.2f} ({args.size} px)"
        overheads = " / ".join(f"{backup_s / (every * step_seconds):.2%}" for every in (100, 500, 2000))
    else:
        step, overheads = "-", "(add the steps table)"
    print(f"| {backup_s:.1f} | {step} | {overheads} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="input side (both models)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", default="all", help=f"comma-separated subset of {list(VARIANTS)}")
    parser.add_argument("--tables", default="all", help="comma-separated subset of steps, resume, backup")
    parser.add_argument("--resume_epochs", type=int, default=3)
    parser.add_argument("--resume_steps", type=int, default=20, help="steps per epoch of the resume table")
    parser.add_argument("--backup_rounds", type=int, default=3)
    parser.add_argument("--backup_dir", default=None, help="where backups are written (default: the temp dir)")
    args = parser.parse_args()
    print(
        f"VGG16 training step, {args.size}x{args.size} input, batch {args.batch}, {args.steps} steps x "
        f"{args.rounds} rounds, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n"
    )
    tables = {"steps", "resume", "backup"} if args.tables == "all" else set(args.tables.split(","))
    step_seconds = _step_table(args) if "steps" in tables else None
    if "resume" in tables:
        _resume_table(args)
    if "backup" in tables:
        _backup_table(args, step_seconds)


if __name__ == "__main__":
    main()
