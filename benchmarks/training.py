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

    python benchmarks/training.py [--size 64] [--batch 16] [--steps 4] [--rounds 5] [--variants all]
"""

from __future__ import annotations

import argparse
import os
import statistics
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
        model = keras.applications.VGG16(weights=None, input_shape=(config.data.crop_size,) * 2 + (3,),
                                         classes=CLASSES)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="input side (both models)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", default="all", help=f"comma-separated subset of {list(VARIANTS)}")
    args = parser.parse_args()
    names = list(VARIANTS) if args.variants == "all" else [v.strip() for v in args.variants.split(",")]
    print(f"VGG16 training step, {args.size}x{args.size} input, batch {args.batch}, {args.steps} steps x "
          f"{args.rounds} rounds, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    print("| variant | recipe img/s | keras.applications img/s | ratio recipe / keras | vs recipe float32 |")
    print("|---|---|---|---|---|")
    baseline = None
    for name in names:
        keras.backend.clear_session()
        recipe, plain = _race(_config(args.size, args.batch, *VARIANTS[name]), args)
        baseline = baseline or recipe
        print(f"| {name} | {recipe:.1f} | {plain:.1f} | {recipe / plain:.2f} | {recipe / baseline:.2f} |", flush=True)


if __name__ == "__main__":
    main()
