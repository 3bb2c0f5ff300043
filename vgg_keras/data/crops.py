"""Decoding and evaluation crops: pure TensorFlow ops.

Every function here works eagerly and inside ``tf.data`` / ``tf.function`` graphs, with
dynamic image sizes. They implement the paper's test-time geometry (section 3.2): rescale
isotropically so the smallest side is Q, then take a centre crop, the whole image (dense
evaluation) or a regular grid of crops plus their horizontal flips (multi-crop).
"""

from __future__ import annotations

import tensorflow as tf

from vgg_keras.validation import check_int

# Bilinear with antialiasing: downscaling ImageNet photos to Q without aliasing, and the
# method torchvision's reference transforms use (resize 256, bilinear).
RESIZE_METHOD = tf.image.ResizeMethod.BILINEAR
# The ScaleAndTranslate kernel tf.image.resize uses for each antialiased method.
_SCALE_AND_TRANSLATE_KERNELS = {tf.image.ResizeMethod.BILINEAR: "triangle", tf.image.ResizeMethod.BICUBIC: "keyscubic"}


def decode_image(encoded: tf.Tensor, channels: int = 3) -> tf.Tensor:
    """Decodes JPEG, PNG, GIF or BMP bytes into a uint8 ``[H, W, channels]`` tensor.

    The format is sniffed from the bytes, so the file extension does not matter (a PNG
    named ``.jpg`` decodes). Grayscale and CMYK JPEGs, grayscale/palette/RGBA PNGs and
    animated GIFs (first frame) all come out with ``channels`` channels.

    Undecodable input (empty, corrupt or truncated bytes) raises
    ``tf.errors.InvalidArgumentError`` when run; the pipelines in
    :mod:`vgg_keras.data.pipeline` skip such examples and log each one.

    Args:
      encoded: scalar ``tf.string`` tensor with the encoded image.
      channels: 1 or 3.

    Returns:
      ``uint8`` tensor ``[H, W, channels]``.

    Raises:
      ValueError: if ``channels`` is not 1 or 3.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels={channels!r}; allowed: 1 or 3.")
    image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return image


def _scaled_size(height: tf.Tensor, width: tf.Tensor, size) -> tuple[tf.Tensor, tf.Tensor]:
    """(new_h, new_w) with the smallest side exactly ``size``, aspect ratio kept."""
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    size_f = tf.cast(size, tf.float32)
    factor = size_f / tf.minimum(height, width)
    new_h = tf.where(height <= width, size_f, tf.round(height * factor))
    new_w = tf.where(width < height, size_f, tf.round(width * factor))
    return tf.cast(new_h, tf.int32), tf.cast(new_w, tf.int32)


def resize_smallest_side(image: tf.Tensor, size) -> tf.Tensor:
    """Rescales isotropically so that the smallest side equals ``size``.

    Small images are upscaled, large ones downscaled (bilinear, antialiased).

    Args:
      image: ``[H, W, C]`` tensor of any numeric dtype, or a batch ``[B, H, W, C]`` of
        images of one size (resized in one op).
      size: target smallest side (python int or int scalar tensor), e.g. Q = 256.

    Returns:
      ``float32`` tensor ``[H', W', C]`` (``[B, H', W', C]``) with ``min(H', W') == size``,
      values on the input's scale (uint8 input gives floats in [0, 255]).

    Raises:
      ValueError: if ``size`` is a python value that is not a positive int.
    """
    if not isinstance(size, tf.Tensor):
        check_int("size", size)
    shape = tf.shape(image)
    new_h, new_w = _scaled_size(shape[-3], shape[-2], size)
    resized = tf.image.resize(
        tf.cast(image, tf.float32), tf.stack([new_h, new_w]), method=RESIZE_METHOD, antialias=True
    )
    return resized


def resize_center_crop(images: tf.Tensor, size: int, crop_size: int) -> tf.Tensor:
    """The central ``crop_size`` square of images rescaled so their smallest side is ``size``.

    Equals ``center_crop(resize_smallest_side(image, size), crop_size)`` to float rounding
    (at most 3e-4 on the 0-255 scale) and costs less, which is why the serving signatures
    use it: ``tf.image.resize`` with antialiasing is the ``ScaleAndTranslate`` op with
    scale new/old size and no translation, so translating by the crop's offset computes the
    same kernel at the crop's pixels only, none of the resized image outside it; the pixels
    go in as they are (no float copy of the whole image), and a batch of one size is
    resized in one op.

    Args:
      images: ``[H, W, C]`` tensor of any numeric dtype, or a batch ``[B, H, W, C]`` of
        images of one size.
      size: smallest side after rescaling (python int >= ``crop_size``, or an int scalar
        tensor).
      crop_size: side of the square crop.

    Returns:
      ``float32`` tensor ``[crop_size, crop_size, C]`` (``[B, crop_size, crop_size, C]``).

    Raises:
      ValueError: if ``crop_size`` is not a positive int, ``size`` a python value below
        it, or ``images`` not of rank 3 or 4.
    """
    check_int("crop_size", crop_size)
    if not isinstance(size, tf.Tensor):
        check_int("size", size)
        if size < crop_size:
            raise ValueError(f"size={size!r}; allowed: an int >= crop_size ({crop_size}).")
    images = tf.convert_to_tensor(images)
    rank = images.shape.rank
    if rank not in (3, 4):
        raise ValueError(f"images of shape {images.shape}; allowed: [H, W, C] or [B, H, W, C].")
    batch = images if rank == 4 else images[tf.newaxis]
    shape = tf.shape(batch)[1:3]
    new_size = tf.stack(_scaled_size(shape[0], shape[1], size))
    window = tf.raw_ops.ScaleAndTranslate(
        images=batch,
        size=tf.constant([crop_size, crop_size]),
        scale=tf.cast(new_size, tf.float32) / tf.cast(shape, tf.float32),
        translation=-tf.cast((new_size - crop_size) // 2, tf.float32),
        kernel_type=_SCALE_AND_TRANSLATE_KERNELS[RESIZE_METHOD],
        antialias=True,
    )
    window.set_shape([None, crop_size, crop_size, images.shape[-1]])
    return window if rank == 4 else window[0]


def _checked_shape(image: tf.Tensor, crop_size: int, op: str) -> tf.Tensor:
    """``tf.shape(image)``, failing at run time if the image is smaller than the crop."""
    shape = tf.shape(image)
    check = tf.debugging.assert_greater_equal(
        tf.reduce_min(shape[:2]), crop_size, message=f"{op}: image smaller than crop_size={crop_size}"
    )
    with tf.control_dependencies([check]):
        return tf.identity(shape)


def center_crop(image: tf.Tensor, crop_size: int) -> tf.Tensor:
    """Takes the central ``crop_size x crop_size`` window.

    Args:
      image: ``[H, W, C]`` tensor with ``H, W >= crop_size`` (resize first with
        :func:`resize_smallest_side`).
      crop_size: side of the square crop.

    Returns:
      ``[crop_size, crop_size, C]`` tensor of the input's dtype, static spatial shape.

    Raises:
      ValueError: if ``crop_size`` is not a positive int.
      tf.errors.InvalidArgumentError: (when run) if the image is smaller than the crop.
    """
    check_int("crop_size", crop_size)
    shape = _checked_shape(image, crop_size, "center_crop")
    top = (shape[0] - crop_size) // 2
    left = (shape[1] - crop_size) // 2
    crop = tf.slice(image, tf.stack([top, left, 0]), tf.stack([crop_size, crop_size, -1]))
    crop.set_shape([crop_size, crop_size, image.shape[-1]])
    return crop


def grid_offsets(extent: tf.Tensor, crop_size: int, grid: int) -> tf.Tensor:
    """``grid`` evenly spaced crop offsets from 0 to ``extent - crop_size`` (int32)."""
    last = tf.cast(extent - crop_size, tf.float32)
    return tf.cast(tf.round(tf.linspace(0.0, last, grid)), tf.int32)


def multi_crop(image: tf.Tensor, crop_size: int, grid: int = 5, flips: bool = True) -> tf.Tensor:
    """Regular ``grid x grid`` crops over the whole image, corners included, plus flips.

    The paper's multi-crop evaluation uses ``grid=5`` with flips: 50 crops per scale.
    Crops are ordered row-major (top row first, left to right); with ``flips`` the
    horizontally flipped copies follow in the same order, so crop ``i + grid**2`` is the
    mirror of crop ``i``.

    Args:
      image: ``[H, W, C]`` tensor with ``H, W >= crop_size``.
      crop_size: side of each square crop.
      grid: crops per row and per column (1 gives the centre crop).
      flips: append the horizontal flips.

    Returns:
      ``[grid * grid * (2 if flips else 1), crop_size, crop_size, C]`` tensor.

    Raises:
      ValueError: if ``crop_size`` or ``grid`` is not a positive int.
      tf.errors.InvalidArgumentError: (when run) if the image is smaller than the crop.
    """
    check_int("crop_size", crop_size)
    check_int("grid", grid)
    shape = _checked_shape(image, crop_size, "multi_crop")
    if grid == 1:
        tops = tf.reshape((shape[0] - crop_size) // 2, [1])
        lefts = tf.reshape((shape[1] - crop_size) // 2, [1])
    else:
        tops = grid_offsets(shape[0], crop_size, grid)
        lefts = grid_offsets(shape[1], crop_size, grid)
    crops = [
        tf.slice(image, tf.stack([tops[i], lefts[j], 0]), tf.stack([crop_size, crop_size, -1]))
        for i in range(grid)
        for j in range(grid)
    ]
    crops = tf.stack(crops)
    if flips:
        crops = tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0)
    crops.set_shape([grid * grid * (2 if flips else 1), crop_size, crop_size, image.shape[-1]])
    return crops
