"""Boxes (Appendix A): the heads' centre-xywh format, crop <-> image coordinates, IoU (keras-cv)."""

from __future__ import annotations

import tensorflow as tf
from keras_cv import bounding_box

BOX_FORMAT = "center_xywh"
IOU_THRESHOLD = 0.5


def _flat_boxes(boxes, name: str) -> tuple[tf.Tensor, tf.TensorShape]:
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    if boxes.shape.rank is None or boxes.shape.rank < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape [..., 4]; received shape {boxes.shape}.")
    return tf.reshape(boxes, [-1, 4]), tf.shape(boxes)


def to_center_xywh(boxes) -> tf.Tensor:
    """Normalised ``(ymin, xmin, ymax, xmax)`` -> normalised ``(cx, cy, w, h)`` (keras-cv).

    Args:
        boxes: ``[..., 4]`` boxes as sources carry them (``"rel_yxyx"``).

    Returns:
        ``float32 [..., 4]`` in ``BOX_FORMAT``, the paper's box parametrisation.

    Raises:
        ValueError: If the last axis is not 4.
    """
    flat, shape = _flat_boxes(boxes, "boxes")
    # Normalised corners are absolute "yxyx" corners of a unit image: no image size needed.
    return tf.reshape(bounding_box.convert_format(flat, source="yxyx", target=BOX_FORMAT), shape)


def from_center_xywh(boxes) -> tf.Tensor:
    """Normalised ``(cx, cy, w, h)`` -> normalised ``(ymin, xmin, ymax, xmax)`` (keras-cv).

    Args:
        boxes: ``[..., 4]`` boxes in ``BOX_FORMAT``.

    Returns:
        ``float32 [..., 4]`` normalised corners.

    Raises:
        ValueError: If the last axis is not 4.
    """
    flat, shape = _flat_boxes(boxes, "boxes")
    return tf.reshape(bounding_box.convert_format(flat, source=BOX_FORMAT, target="yxyx"), shape)


def box_iou(boxes_a, boxes_b, bounding_box_format: str = "rel_yxyx") -> tf.Tensor:
    """Element-wise IoU of two aligned sets of boxes (keras-cv's `compute_iou`).

    Args:
        boxes_a: ``[..., 4]`` boxes.
        boxes_b: ``[..., 4]`` boxes, the same shape as ``boxes_a``.
        bounding_box_format: Any keras-cv format of absolute or unit-image coordinates,
            e.g. ``"rel_yxyx"`` (sources' ``bbox``) or ``"center_xywh"`` (the heads).

    Returns:
        ``float32 [...]``: IoU of ``boxes_a[i]`` with ``boxes_b[i]``.

    Raises:
        ValueError: If the shapes differ or the last axis is not 4.
    """
    flat_a, shape = _flat_boxes(boxes_a, "boxes_a")
    flat_b, _ = _flat_boxes(boxes_b, "boxes_b")
    shape_a, shape_b = tf.convert_to_tensor(boxes_a).shape, tf.convert_to_tensor(boxes_b).shape
    if shape_a != shape_b:
        raise ValueError(f"boxes_a and boxes_b must have the same shape; received {shape_a} and {shape_b}.")
    # Relative formats in a unit image equal their absolute counterparts.
    box_format = bounding_box_format.lower().replace("rel_", "", 1)
    pairwise = bounding_box.compute_iou(flat_a[:, None], flat_b[:, None], box_format)
    return tf.reshape(pairwise, shape[:-1])


def _window_corners(window) -> tuple[tf.Tensor, tf.Tensor]:
    """A ``(top, left, height, width)`` window as corner-shaped origin and size ``[..., 4]``."""
    window = tf.convert_to_tensor(window, tf.float32)
    return (
        tf.concat([window[..., :2], window[..., :2]], axis=-1),
        tf.concat([window[..., 2:], window[..., 2:]], axis=-1),
    )


def image_boxes_to_crop(boxes, window, clip: bool = True) -> tf.Tensor:
    """Normalised image boxes -> boxes normalised by a crop window.

    Args:
        boxes: ``[..., 4]`` normalised ``(ymin, xmin, ymax, xmax)`` of the image.
        window: ``[..., 4]`` the crop as normalised ``(top, left, height, width)``.
        clip: Clip to the crop (the visible part of the object, the training target).

    Returns:
        ``float32 [..., 4]`` normalised ``(ymin, xmin, ymax, xmax)`` of the crop.
    """
    origin, size = _window_corners(window)
    cropped = (tf.convert_to_tensor(boxes, tf.float32) - origin) / size
    return tf.clip_by_value(cropped, 0.0, 1.0) if clip else cropped


def crop_boxes_to_image(boxes, window) -> tf.Tensor:
    """Inverse of `image_boxes_to_crop` (without clipping): crop boxes -> image boxes.

    Args:
        boxes: ``[..., 4]`` normalised ``(ymin, xmin, ymax, xmax)`` of the crop.
        window: ``[..., 4]`` the crop as normalised ``(top, left, height, width)`` in the image.

    Returns:
        ``float32 [..., 4]`` normalised ``(ymin, xmin, ymax, xmax)`` of the image.
    """
    origin, size = _window_corners(window)
    return tf.convert_to_tensor(boxes, tf.float32) * size + origin


def flip_boxes(boxes: tf.Tensor) -> tf.Tensor:
    """Normalised corners of the horizontally mirrored image."""
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=-1)
