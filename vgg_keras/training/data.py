"""What a training run needs from `vgg_keras.data`: checked sources and dataset functions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf

__all__ = [
    "TrainingData",
    "arrays_training_data",
    "estimate_mean_rgb",
    "load_sources",
    "synthetic_training_data",
    "training_data",
]


@dataclasses.dataclass
class TrainingData:
    """Dataset functions plus what the model needs to know about the data.

    Attributes:
        train_fn: `(input_context or None, seed) -> tf.data.Dataset` of `(images, labels)`
            batches (per-replica batch when an input context is given), repeating forever.
        eval_fn: `(input_context or None) -> tf.data.Dataset`, one pass over the validation split.
        num_classes: Number of classes.
        class_names: Class names in label order.
        num_train_examples: Training examples (None if unknown).
        mean_rgb: Mean RGB pixel subtracted inside the model (None: estimate it).
        eval_source: The validation `Source` (for evaluation after training).
        train_source: The training `Source`.
        num_eval_examples: Validation examples (None if unknown: counted when needed).
    """

    train_fn: Callable
    eval_fn: Callable
    num_classes: int
    class_names: tuple
    num_train_examples: int | None
    mean_rgb: tuple | None = None
    eval_source: object = None
    train_source: object = None
    num_eval_examples: int | None = None


def _source_kwargs(config) -> dict:
    return {"data_dir": config.data.data_dir, "manual_dir": config.data.manual_dir}


def _reads_files_in_order(name: str) -> bool:
    """Whether a source of this name takes a file-shuffle seed (TFDS names and the built-in set)."""
    return not name.startswith(("folder:", "tfrecord:"))


def _get_source(config, split: str, input_context=None, file_seed: int | None = None):
    from vgg_keras import data as data_lib  # pylint: disable=import-outside-toplevel

    kwargs = _source_kwargs(config)
    if input_context is not None:
        kwargs["input_context"] = input_context
    if file_seed is not None:
        kwargs.update(shuffle_files=True, seed=file_seed)
    try:
        return data_lib.get_source(config.data.name, split, **kwargs)
    except Exception as error:  # TFDS raises AssertionError, folders OSError, ...: one clear message
        hint = ""
        if config.data.name == "imagenet2012":
            hint = (
                " imagenet2012 cannot be downloaded automatically: put ILSVRC2012_img_train.tar and "
                "ILSVRC2012_img_val.tar in config.data.manual_dir (or <data_dir>/downloads/manual)."
            )
        raise FileNotFoundError(
            f"Dataset config.data.name={config.data.name!r} split={split!r} is not available "
            f"(data_dir={config.data.data_dir or 'TFDS default'!r}): {type(error).__name__}: {error}.{hint}"
        ) from error


def _limited(source, max_examples: int):
    if not max_examples or (source.num_examples is not None and source.num_examples <= max_examples):
        return source
    return dataclasses.replace(source, dataset=source.dataset.take(max_examples), num_examples=max_examples)


def load_sources(config):
    """Opens the training and validation splits, failing early with a clear error.

    Args:
        config: A validated training config.

    Returns:
        `(train_source, eval_source)`.

    Raises:
        FileNotFoundError: If the dataset or a split is missing.
    """
    train = _get_source(config, config.data.train_split)
    evaluation = _limited(_get_source(config, config.data.eval_split), config.data.max_eval_examples)
    if train.num_classes != evaluation.num_classes:
        raise ValueError(
            f"Splits {config.data.train_split!r} and {config.data.eval_split!r} of {config.data.name!r} "
            f"disagree on the number of classes ({train.num_classes} vs {evaluation.num_classes})."
        )
    return train, evaluation


def estimate_mean_rgb(source, crop_size: int, scale: int, num_images: int) -> tuple[float, float, float]:
    """The mean RGB pixel of the first `num_images` centre crops of `source` (0..255).

    Args:
        source: A `vgg_keras.data.Source`.
        crop_size: Crop side.
        scale: Smallest side before cropping.
        num_images: How many images to average.

    Returns:
        `(R, G, B)`.
    """
    from vgg_keras import data as data_lib  # pylint: disable=import-outside-toplevel

    total, count = np.zeros(3), 0
    dataset = data_lib.eval_dataset(_limited(source, num_images), batch_size=64, scale=scale, crop_size=crop_size)
    for images, _ in dataset:
        total += tf.reduce_sum(images, axis=(0, 1, 2)).numpy()
        count += int(images.shape[0]) * crop_size * crop_size
    return tuple(float(v) for v in total / max(count, 1))


def training_data(config, global_batch_size: int, sources=None) -> TrainingData:
    """Builds the train / validation dataset functions of a config (the paper's pipelines).

    Args:
        config: A validated training config.
        global_batch_size: The batch over all replicas.
        sources: `(train_source, eval_source)` to use instead of opening `config.data.name`
            (e.g. a validation split carved out of a folder); sharded per worker by the pipeline.

    Returns:
        A `TrainingData`.

    Raises:
        FileNotFoundError: If the dataset is missing.
    """
    from vgg_keras import data as data_lib  # pylint: disable=import-outside-toplevel

    train_source, eval_source = sources or load_sources(config)
    d = config.data
    scale = d.scale_min if d.scale_min == d.scale_max else (d.scale_min, d.scale_max)

    def train_fn(input_context, seed):
        # TFDS files are read in an order shuffled with the stream's seed: the trainer gives
        # each epoch its own seed, so the file order changes per epoch and a resume replays it.
        # Sources given by the caller (`sources=`) are used as they are.
        file_seed = seed if sources is None and _reads_files_in_order(d.name) else None
        source = train_source
        if sources is None and (input_context is not None or file_seed is not None):
            source = _get_source(config, d.train_split, input_context, file_seed)
        return data_lib.train_dataset(
            source,
            batch_size=global_batch_size,
            crop_size=d.crop_size,
            scale=scale,
            flip=d.flip,
            color_shift_std=d.color_shift_std,
            shuffle_buffer=d.shuffle_buffer,
            seed=seed,
            input_context=input_context,
        )

    def eval_fn(input_context):
        return data_lib.eval_dataset(
            eval_source,
            batch_size=global_batch_size,
            scale=d.eval_scale,
            crop_size=d.crop_size,
            input_context=input_context,
        )

    return TrainingData(
        train_fn,
        eval_fn,
        train_source.num_classes,
        tuple(train_source.class_names),
        train_source.num_examples,
        tuple(d.mean_rgb) or None,
        eval_source,
        train_source,
        eval_source.num_examples,
    )


def _synthetic_arrays(num_classes: int, image_size: int, num_examples: int, seed: int):
    """Noise images with a bright square whose position encodes the class (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num_examples) % num_classes
    images = rng.uniform(0, 96, (num_examples, image_size, image_size, 3)).astype("float32")
    side = max(2, image_size // 4)
    for index, label in enumerate(labels):
        angle = 2 * np.pi * label / num_classes
        y = int((image_size - side) / 2 * (1 + 0.8 * np.sin(angle)))
        x = int((image_size - side) / 2 * (1 + 0.8 * np.cos(angle)))
        images[index, y : y + side, x : x + side] = 255.0
    return images, labels.astype("int32")


def arrays_training_data(
    train: tuple, evaluation: tuple, batch_size: int, class_names, mean_rgb=(127.5, 127.5, 127.5)
) -> TrainingData:
    """In-memory images and labels as `TrainingData` (no files, no decoding, no augmentation).

    Args:
        train: `(images [N, H, W, 3] float32 0..255, labels [N] int)` to train on.
        evaluation: The same for validation.
        batch_size: Global batch size of both datasets.
        class_names: One name per class.
        mean_rgb: Stored in `TrainingData.mean_rgb` (what `build_model` subtracts).

    Returns:
        A `TrainingData` whose `train_fn` shuffles with its seed and repeats, sharded and
        batched per replica under an input context.
    """
    train_images, train_labels = train
    eval_images, eval_labels = evaluation

    def _per_context(images, labels, input_context):
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
        if input_context is None:
            return dataset, batch_size
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        return dataset, input_context.get_per_replica_batch_size(batch_size)

    def train_fn(input_context, seed):
        dataset, batch = _per_context(train_images, train_labels, input_context)
        dataset = dataset.shuffle(len(train_labels), seed=seed).repeat()
        return dataset.batch(batch, drop_remainder=True).prefetch(2)

    def eval_fn(input_context):
        dataset, batch = _per_context(eval_images, eval_labels, input_context)
        return dataset.batch(batch).prefetch(2)

    names = tuple(class_names)
    return TrainingData(
        train_fn, eval_fn, len(names), names, len(train_labels), tuple(mean_rgb), num_eval_examples=len(eval_labels)
    )


def synthetic_training_data(
    num_classes: int = 4, image_size: int = 32, num_train: int = 256, num_eval: int = 64, batch_size: int = 16
) -> TrainingData:
    """A tiny in-memory classification task for tests and benchmarks (no files, no decoding).

    Args:
        num_classes: Number of classes (the square's position on a circle encodes the class).
        image_size: Side of the square RGB images (0..255).
        num_train: Training examples.
        num_eval: Validation examples.
        batch_size: Global batch size of both datasets.

    Returns:
        A `TrainingData` (see `arrays_training_data`).
    """
    return arrays_training_data(
        _synthetic_arrays(num_classes, image_size, num_train, seed=1),
        _synthetic_arrays(num_classes, image_size, num_eval, seed=2),
        batch_size,
        tuple(f"class_{i}" for i in range(num_classes)),
    )
