"""Neural style transfer by image optimisation (Gatys, Ecker & Bethge, CVPR 2016).

Choices (each a keyword of `style_transfer`):

- Network: VGG19 with its max pooling (Gatys et al. replace it by average pooling; like
  keras.io's example, we keep the published network unchanged).
- Content: Gatys' layer conv4_2 (`relu4_2` = `block4_conv2`), not keras.io's
  `block5_conv2`; the term is the squared feature distance over C x H x W (`content_distance`).
- Style: relu1_1 ... relu5_1 (`block{b}_conv1`), Gatys' per-layer
  `E_l = 1 / (4 N^2 M^2) sum (G - A)^2` with equal weights w_l = 1/5 (`style_distance`).
- Smoothness: squared total variation of the image in [0, 255] (`total_variation`).
- Loss: `content_weight * content + style_weight * style + tv_weight * tv`. The default
  weights are starting points scaled for the Keras (caffe-preprocessed) VGG19 weights; they
  were not tuned on this project's machines, which have no pretrained weights: raise
  `style_weight` by factors of 10 for more style.
- Optimiser: Adam (beta_1 0.9, beta_2 0.999) on the pixels in [0, 255], learning rate
  cosine-decayed from `learning_rate` to a tenth of it over `steps`, the image clipped to
  [0, 255] after every step, started from the content image (Gatys used L-BFGS from white
  noise; Adam from the content image needs no line search and converges in a few hundred steps).

TensorFlow backend only (the optimisation uses `tf.GradientTape`); the losses it uses are
backend-independent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import keras
import numpy as np

from vgg_keras.perceptual import _backbone
from vgg_keras.perceptual.losses import (
    STYLE_LAYERS,
    content_distance,
    gram_matrix,
    style_distance,
    total_variation,
)

__all__ = ["CONTENT_LAYER", "load_image", "save_image", "style_transfer"]

CONTENT_LAYER = "relu4_2"  # Gatys et al.'s conv4_2


def load_image(path: str, size: int | None = None) -> np.ndarray:
    """An image file as float32 RGB in [0, 255], its longer side resized to `size` (bicubic).

    Raises:
        ValueError: If the file is missing or not an image, or `size` < 16.
    """
    from PIL import Image, UnidentifiedImageError

    if size is not None and size < 16:
        raise ValueError(f"size={size!r}; allowed: None or >= 16 pixels (VGG's deepest layers need 16).")
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (FileNotFoundError, IsADirectoryError, UnidentifiedImageError) as error:
        raise ValueError(f"Cannot read the image {path!r}: {error}.") from error
    if size is not None:
        scale = size / max(image.size)
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BICUBIC
        )
    return np.asarray(image, "float32")


def save_image(image, path: str) -> str:
    """Writes RGB values in [0, 255] as an image file (format from the name), atomically.

    The image goes to a temporary file in the same folder, renamed into place, so an
    interrupted run never leaves a truncated PNG.

    Returns:
        `path`.
    """
    from PIL import Image

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    pixels = np.clip(np.rint(np.asarray(image, "float32")), 0, 255).astype("uint8")
    extension = os.path.splitext(path)[1] or ".png"
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp{extension}")
    try:
        Image.fromarray(pixels).save(temporary, format=Image.registered_extensions().get(extension.lower(), "PNG"))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _image_batch(image, name: str) -> np.ndarray:
    image = np.asarray(image, "float32")
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{name} has shape {image.shape}; allowed: one RGB image (height, width, 3) in [0, 255].")
    if image.min() < 0 or image.max() > 255:
        raise ValueError(f"{name} has values in [{image.min():g}, {image.max():g}]; allowed: [0, 255].")
    return image[None]


def style_transfer(
    content,
    style,
    *,
    steps: int = 500,
    arch: str = "vgg19",
    weights: str | None = "imagenet",
    width_multiplier: float = 1.0,
    content_layer: str = CONTENT_LAYER,
    style_layers: Sequence[str] = STYLE_LAYERS,
    content_weight: float = 1.0,
    style_weight: float = 1e-4,
    tv_weight: float = 1e-6,
    learning_rate: float = 4.0,
    callback: Callable[[int, np.ndarray, dict[str, float]], None] | None = None,
) -> np.ndarray:
    """Optimises an image to have `content`'s VGG features and `style`'s Gram matrices.

    Args:
        content: The content image `(height, width, 3)`, RGB in [0, 255]; the output has its size.
        style: The style image `(h, w, 3)`, RGB in [0, 255], any size.
        steps: Optimisation steps.
        arch: The VGG ("vgg19").
        weights: Its weights: a tag, a weights file, or None (random: no meaningful style).
        width_multiplier: Conv width multiplier (small test networks only).
        content_layer: The content layer (relu or Keras name).
        style_layers: The style layers, weighted equally.
        content_weight: Weight of the content term.
        style_weight: Weight of the style term.
        tv_weight: Weight of the squared total variation.
        learning_rate: Adam's initial learning rate, in pixel units.
        callback: Called after every step with `(step, image, losses)`: the step number
            (1-based), the current image (float32 in [0, 255]) and the float terms
            "loss", "content", "style", "tv".

    Returns:
        The image, float32 `(height, width, 3)` in [0, 255].

    Raises:
        ValueError: For images of another shape or range, bad layer names or steps < 1.
    """
    import tensorflow as tf

    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r}; allowed: an integer >= 1.")
    content_batch, style_batch = _image_batch(content, "content"), _image_batch(style, "style")
    (content_name,) = _backbone.resolve_layers([content_layer], arch, "content_layer")
    style_names = _backbone.resolve_layers(style_layers, arch, "style_layers")
    network = _backbone.feature_network(
        arch, weights, tuple(dict.fromkeys((content_name, *style_names))), width_multiplier=width_multiplier
    )
    mode = _backbone.preprocessing_mode(weights, arch)

    def features(images):
        return network(_backbone.normalize(images, (0.0, 255.0), mode), training=False)

    content_target = features(content_batch)[content_name]
    style_outputs = features(style_batch)
    style_targets = [gram_matrix(style_outputs[name]) for name in style_names]
    image = tf.Variable(content_batch)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.1)
    optimizer = keras.optimizers.Adam(learning_rate=schedule)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            outputs = features(image)
            content_term = content_distance(outputs[content_name], content_target)[0]
            style_term = tf.add_n(
                [
                    style_distance(gram_matrix(outputs[name]), target)[0]
                    for name, target in zip(style_names, style_targets)
                ]
            ) / len(style_names)
            tv_term = total_variation(image, "squared")[0]
            loss = content_weight * content_term + style_weight * style_term + tv_weight * tv_term
        optimizer.apply_gradients([(tape.gradient(loss, image), image)])
        image.assign(tf.clip_by_value(image, 0.0, 255.0))
        return {"loss": loss, "content": content_term, "style": style_term, "tv": tv_term}

    for number in range(1, steps + 1):
        terms = step()
        if callback is not None:
            callback(number, image.numpy()[0], {k: float(v) for k, v in terms.items()})
    return image.numpy()[0]
