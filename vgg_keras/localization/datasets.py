"""Box datasets: random-crop training examples and central-crop evaluation examples with their boxes."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from vgg_keras.data import augment, crops
from vgg_keras.data import pipeline as pipeline_lib
from vgg_keras.data.sources import Source
from vgg_keras.localization.boxes import flip_boxes, image_boxes_to_crop, to_center_xywh

_AUTOTUNE = tf.data.AUTOTUNE


def _check_boxes(source: Source) -> None:
    if not isinstance(source, Source):
        raise TypeError(f"source must be a vgg_keras.data.Source; received {type(source).__name__}.")
    if "bbox" not in source.dataset.element_spec:
        raise ValueError(
            f"source has no 'bbox' feature (elements: {sorted(source.dataset.element_spec)}); "
            "localisation needs one box per image, e.g. get_source('builtin', split)."
        )


def _random_crop_with_box(example: dict, crop_size: int, s_min: int, s_max: int, flip: bool, seed):
    """One random scale-S crop (and flip) of an image, with its box moved along."""
    scale_seed, crop_seed, flip_seed = augment.split_seed(seed, 3)
    pixels, window = pipeline_lib.decode_and_random_crop_window(
        example["image"], crop_size, augment.sample_scale(s_min, s_max, scale_seed), crop_seed
    )
    box = image_boxes_to_crop(example["bbox"], window)
    if flip:
        mirror = tf.random.stateless_uniform([], flip_seed) < 0.5
        pixels = tf.cond(mirror, lambda: tf.reverse(pixels, axis=[1]), lambda: pixels)
        box = tf.cond(mirror, lambda: flip_boxes(box), lambda: box)
    pixels.set_shape([crop_size, crop_size, 3])
    return pixels, tf.cast(example["label"], tf.int32), to_center_xywh(box)


def box_train_dataset(
    source: Source,
    *,
    batch_size: int,
    crop_size: int = 224,
    scale: int | tuple[int, int] = 256,
    flip: bool = True,
    preprocess: Callable | None = None,
    shuffle_buffer: int = 10_000,
    seed: int | None = None,
    repeat: bool = True,
) -> tf.data.Dataset:
    """Training batches with boxes: random scale-S crop and flip, the box transformed alike.

    The image is rescaled so its smallest side is S (fixed or drawn from ``(S_min,
    S_max)``), a random ``crop_size`` crop is taken and mirrored with probability 1/2;
    the box becomes the visible part of the object in crop coordinates.

    Args:
        source: A `Source` whose elements carry ``bbox``.
        batch_size: Images per batch (the last partial batch is dropped).
        crop_size: Side of the crops.
        scale: S or ``(S_min, S_max)``, each ``>= crop_size``.
        flip: Random horizontal flips.
        preprocess: Called on each float32 ``[B, c, c, 3]`` RGB 0..255 batch.
        shuffle_buffer: Examples in the shuffle buffer; 0 disables shuffling.
        seed: Makes shuffling and crops reproducible.
        repeat: Repeat forever (use ``steps_per_epoch`` with `fit`).

    Returns:
        Dataset of ``(images [B, c, c, 3], labels int32 [B], boxes float32 [B, 4])``,
        boxes in ``BOX_FORMAT`` normalised by the crop.

    Raises:
        ValueError: If the source has no boxes or an argument is invalid.
        TypeError: If `source` is not a Source or `preprocess` is not callable.
    """
    _check_boxes(source)
    s_min, s_max = pipeline_lib.scale_range(scale, crop_size)
    if preprocess is not None and not callable(preprocess):
        raise TypeError(f"preprocess must be callable or None; received {preprocess!r}.")
    dataset = source.dataset
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    dataset = tf.data.Dataset.zip((dataset, seeds)).map(
        lambda example, pair: _random_crop_with_box(example, crop_size, s_min, s_max, flip, pair),
        num_parallel_calls=_AUTOTUNE,
    )
    dataset = dataset.ignore_errors(log_warning=True).batch(batch_size, drop_remainder=True)
    if preprocess is not None:
        dataset = dataset.map(lambda x, y, b: (preprocess(x), y, b), num_parallel_calls=_AUTOTUNE)
    return dataset.prefetch(_AUTOTUNE)


def _center_crop_with_window(example: dict, scale: int, crop_size: int) -> dict:
    resized = pipeline_lib.decode_resize(example["image"], scale)
    hw = tf.cast(tf.shape(resized)[:2], tf.float32)
    # The same offsets as vgg_keras.data.center_crop, as a normalised window.
    origin = tf.floor((hw - crop_size) / 2.0) / hw
    return {
        "image": crops.center_crop(resized, crop_size),
        "label": tf.cast(example["label"], tf.int32),
        "bbox": tf.cast(example["bbox"], tf.float32),
        "window": tf.concat([origin, crop_size / hw], axis=0),
    }


def box_eval_dataset(
    source: Source,
    *,
    batch_size: int,
    scale: int = 256,
    crop_size: int = 224,
    preprocess: Callable | None = None,
    max_examples: int | None = None,
) -> tf.data.Dataset:
    """Evaluation batches: the central crop at test scale Q, with the image box and crop window.

    Args:
        source: A `Source` whose elements carry ``bbox``.
        batch_size: Images per batch.
        scale: Test scale Q (smallest side after rescaling), ``>= crop_size``.
        crop_size: Side of the central crop.
        preprocess: Called on each float32 RGB 0..255 image batch.
        max_examples: Use only the first examples.

    Returns:
        Dataset of dicts: ``image`` ``[B, c, c, 3]``, ``label`` int32 ``[B]``, ``bbox``
        ``[B, 4]`` normalised image corners, ``window`` ``[B, 4]`` the crop's normalised
        ``(top, left, height, width)`` in the image.

    Raises:
        ValueError: If the source has no boxes or ``scale < crop_size``.
        TypeError: If `source` is not a Source.
    """
    _check_boxes(source)
    pipeline_lib.scale_range(scale, crop_size)
    dataset = source.dataset if max_examples is None else source.dataset.take(max_examples)
    dataset = dataset.map(
        lambda example: _center_crop_with_window(example, scale, crop_size),
        num_parallel_calls=_AUTOTUNE,
        deterministic=True,
    )
    dataset = dataset.ignore_errors(log_warning=True).batch(batch_size)
    if preprocess is not None:
        dataset = dataset.map(lambda batch: {**batch, "image": preprocess(batch["image"])})
    return dataset.prefetch(_AUTOTUNE)
