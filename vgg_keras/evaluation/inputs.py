"""The `tf.data` views one evaluation needs: every scale and method from one decode."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from vgg_keras.data import crops as crops_lib


def view_key(kind: str, scale: int) -> str:
    """Element key of one view, e.g. `dense_256`."""
    return f"{kind}_{scale}"


def _decoded(image: tf.Tensor) -> tf.Tensor:
    """Encoded bytes are decoded; already-decoded pixels pass through (as RGB)."""
    if image.dtype == tf.string:
        return crops_lib.decode_image(image)
    return image


def _views(image, scales: Sequence[int], kinds: Sequence[str], crop_size: int, grid: int, flip: bool) -> dict:
    views = {}
    for scale in scales:
        resized = crops_lib.resize_smallest_side(image, scale)
        if "dense" in kinds:
            views[view_key("dense", scale)] = resized
            views[view_key("size", scale)] = tf.shape(resized)[:2]
        if "center" in kinds:
            views[view_key("center", scale)] = crops_lib.center_crop(resized, crop_size)
        if "multicrop" in kinds:
            views[view_key("multicrop", scale)] = crops_lib.multi_crop(resized, crop_size, grid, flip)
    return views


def eval_batches(
    source,
    *,
    scales: Sequence[int],
    kinds: Sequence[str],
    crop_size: int,
    grid: int,
    flip: bool,
    batch_size: int,
    max_examples: int | None = None,
) -> tf.data.Dataset:
    """Batches of every view the requested methods need, decoded once per image.

    Dense views of one batch are zero-padded to the batch's largest image (bottom/right);
    `size_<Q>` holds each image's valid (height, width), from which `dense_posteriors`
    cuts each group of equally sized images back out (the batch is the bounded buffer in
    which dense passes are grouped; images stay in the source's order).

    Args:
        source: A `vgg_keras.data.Source` (elements `{"image": bytes or uint8, "label"}`).
        scales: Test scales Q (smallest side after rescaling).
        kinds: Subset of {"center", "dense", "multicrop"}.
        crop_size: Side of centre and multi-crop crops.
        grid: Crops per side of the multi-crop grid.
        flip: Whether the multi-crop stack includes the mirrored crops.
        batch_size: Images per batch.
        max_examples: Evaluate only the first `max_examples` images.

    Returns:
        Dataset of dicts: `label` int32 `[B]` and the views (float32 RGB 0..255).
    """
    dataset = source.dataset
    if max_examples is not None:
        dataset = dataset.take(max_examples)

    def example_fn(example):
        views = _views(_decoded(example["image"]), scales, kinds, crop_size, grid, flip)
        views["label"] = tf.cast(example["label"], tf.int32)
        return views

    dataset = dataset.map(example_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.ignore_errors(log_warning=True)
    return dataset.padded_batch(batch_size).prefetch(2)


def sample_images(source, scale: int, count: int) -> list:
    """The first `count` images of the source at test scale Q, as uint8 arrays (for pictures)."""

    def picture(example):
        resized = crops_lib.resize_smallest_side(_decoded(example["image"]), scale)
        return tf.saturate_cast(tf.round(resized), tf.uint8)

    dataset = source.dataset.take(count).map(picture)
    # Skips the images evaluation skipped, so picture i still matches prediction i.
    return [image.numpy() for image in dataset.ignore_errors()]


__all__ = ["eval_batches", "sample_images", "view_key"]
