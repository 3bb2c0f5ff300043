"""The paper's training augmentation (section 3.1) as pure TensorFlow ops.

Scale jittering (S per image from [S_min, S_max]), a random crop taken in the ORIGINAL
image's coordinates (so a JPEG can be decoded only inside that window), random horizontal
flip, and Krizhevsky's PCA colour shift. Every op works eagerly and inside ``tf.data``;
``seed`` is a stateless seed (int32/int64 tensor of shape ``[2]``) so results are
reproducible regardless of parallelism; ``seed=None`` uses TF's global RNG.

``random_flip`` and ``pca_color_shift`` also take batches ``[B, H, W, 3]`` (one random
draw per image), so they can run as batched ops on the accelerator inside a train step.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from vgg_keras.validation import check_int

# Krizhevsky et al. 2012 PCA lighting constants (PAPER.md), for pixels in [0, 1].
PCA_EIGVAL = np.array([0.2175, 0.0188, 0.0045], np.float32)
PCA_EIGVEC = np.array(
    [
        [-0.5675, 0.7192, 0.4009],
        [-0.5808, -0.0045, -0.8140],
        [-0.5836, -0.6948, 0.4203],
    ],
    np.float32,
)  # columns are the eigenvectors


def _uniform(shape, minval, maxval, seed, dtype=tf.float32):
    if seed is None:
        return tf.random.uniform(shape, minval, maxval, dtype=dtype)
    return tf.random.stateless_uniform(shape, seed, minval, maxval, dtype=dtype)


def split_seed(seed, num: int):
    """Splits a stateless seed into ``num`` independent seeds (``None`` stays ``None``)."""
    if seed is None:
        return [None] * num
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num))


def check_scale_range(s_min: int, s_max: int) -> None:
    """Raises ValueError unless ``0 < s_min <= s_max`` are ints."""
    check_int("s_min", s_min)
    check_int("s_max", s_max)
    if s_min > s_max:
        raise ValueError(f"s_min={s_min}, s_max={s_max}; allowed: s_min <= s_max.")


def sample_scale(s_min: int, s_max: int, seed=None) -> tf.Tensor:
    """Draws the training scale S uniformly from the integers in ``[s_min, s_max]``.

    Args:
      s_min: smallest S (inclusive), e.g. 256.
      s_max: largest S (inclusive), e.g. 512. ``s_min == s_max`` gives fixed-scale training.
      seed: stateless seed ``[2]`` or ``None``.

    Returns:
      ``int32`` scalar tensor.

    Raises:
      ValueError: if the bounds are not positive ints with ``s_min <= s_max``.
    """
    check_scale_range(s_min, s_max)
    return _uniform([], s_min, s_max + 1, seed, dtype=tf.int32)


def crop_window(image_shape: tf.Tensor, scale, crop_size: int, seed=None) -> tf.Tensor:
    """A random crop window of the rescaled image, in the original image's coordinates.

    The window is a random ``crop_size`` crop of the image rescaled to smallest side
    ``scale``, expressed in the ORIGINAL image's pixel coordinates.

    Rescaling by ``f = scale / min(H, W)`` and cropping ``crop_size`` pixels equals
    cropping ``crop_size / f`` original pixels and resizing that window to ``crop_size``.
    The window is uniform over all positions of the crop in the rescaled image, lies
    inside the image, and is at least one pixel (tiny images are upscaled).

    Args:
      image_shape: ``[H, W]`` or ``[H, W, C]`` int tensor (e.g. from
        ``tf.image.extract_jpeg_shape``).
      scale: S, python int or int scalar tensor; must be ``>= crop_size``.
      crop_size: side of the final crop.
      seed: stateless seed ``[2]`` or ``None``.

    Returns:
      ``int32`` tensor ``[offset_y, offset_x, height, width]``, the layout
      ``tf.image.decode_and_crop_jpeg`` expects.

    Raises:
      ValueError: if ``crop_size`` is not a positive int or a python ``scale`` is smaller
        than ``crop_size``.
    """
    check_int("crop_size", crop_size)
    if not isinstance(scale, tf.Tensor) and scale < crop_size:
        raise ValueError(f"scale={scale}; allowed: an integer >= crop_size ({crop_size}).")
    hw = tf.cast(image_shape[:2], tf.float32)
    # Window side in original pixels; clamp so it is >= 1 px and fits the image.
    side = crop_size * tf.reduce_min(hw) / tf.cast(scale, tf.float32)
    size = tf.clip_by_value(tf.round(side), 1.0, tf.reduce_min(hw))
    fraction = _uniform([2], 0.0, 1.0, seed)
    offset = tf.floor(fraction * (hw - size + 1.0))
    offset = tf.minimum(offset, hw - size)
    return tf.cast(tf.concat([offset, [size, size]], axis=0), tf.int32)


def random_flip(image: tf.Tensor, seed=None) -> tf.Tensor:
    """Flips left-right with probability 1/2 (independently per image for a batch).

    Args:
      image: ``[H, W, C]`` or ``[B, H, W, C]`` tensor.
      seed: stateless seed ``[2]`` or ``None``.

    Returns:
      Tensor of the same shape and dtype.
    """
    if seed is None:
        return tf.image.random_flip_left_right(image)
    return tf.image.stateless_random_flip_left_right(image, seed)


def pca_color_shift(image: tf.Tensor, alpha_std: float = 0.1, seed=None, clip: bool = True) -> tf.Tensor:
    """Krizhevsky's PCA colour augmentation for RGB images in [0, 255].

    Adds ``255 * eigvec @ (alpha * eigval)`` to every pixel, with
    ``alpha ~ N(0, alpha_std^2)`` drawn per image (PAPER.md constants, given for [0, 1]
    pixels, hence the factor 255).

    Args:
      image: float ``[H, W, 3]`` or ``[B, H, W, 3]`` RGB tensor in [0, 255].
      alpha_std: standard deviation of alpha; 0 disables the shift.
      seed: stateless seed ``[2]`` or ``None``.
      clip: clip the result to [0, 255] so the output range stays that of an image.

    Returns:
      ``float32`` tensor of the input's shape.

    Raises:
      ValueError: if ``alpha_std`` is negative.
    """
    if alpha_std < 0:
        raise ValueError(f"alpha_std={alpha_std!r}; allowed: a number >= 0.")
    image = tf.cast(image, tf.float32)
    batch_shape = tf.shape(image)[:-3]
    alpha_shape = tf.concat([batch_shape, [3]], axis=0)
    if seed is None:
        alpha = tf.random.normal(alpha_shape, stddev=alpha_std)
    else:
        alpha = tf.random.stateless_normal(alpha_shape, seed, stddev=alpha_std)
    rgb = 255.0 * tf.einsum("ij,...j->...i", tf.constant(PCA_EIGVEC), alpha * PCA_EIGVAL)
    shifted = image + rgb[..., tf.newaxis, tf.newaxis, :]
    return tf.clip_by_value(shifted, 0.0, 255.0) if clip else shifted
