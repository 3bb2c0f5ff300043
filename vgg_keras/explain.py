"""Why the network decided: gradient saliency, SmoothGrad, Grad-CAM, overlays, the pointing game.

- `saliency` (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks"):
  ``max over colour channels of |d S_c / d I|``, with ``S_c`` the class score BEFORE the
  soft-max and ``I`` the raw image the model takes (a model with a ``preprocessing``
  layer is differentiated through it, so the map is in the pixels of the RGB input).
- `smoothgrad` (Smilkov et al. 2017): the mean of the saliency maps of ``samples`` noisy
  copies of each image, noise std ``noise * (max - min)`` of that image.
- `gradcam` (Selvaraju et al. 2017): for a conv layer's activations ``A^k``,
  ``alpha_k = mean over positions of d S_c / d A^k``, map ``ReLU(sum_k alpha_k A^k)``,
  bilinearly upsampled to the input. Default layer: the last conv of the feature
  extractor (``block5_conv3`` in VGG16), found from the model.
- `pointing_game` (Zhang et al. 2016, "Top-down Neural Attention by Excitation
  Backprop"): the fraction of images whose map maximum falls inside the object's box.
- `overlay` / `save_png`: a heat map over the image as RGB ``uint8``, written atomically.

The class score is found robustly: the ``predictions`` layer's pre-activation (its
soft-max is skipped, whatever the model was built with); for the conv head the score map
is averaged over space first, as the model does before its soft-max. For BatchNorm
variants a conv layer's activations are taken after its BatchNorm and ReLU
(``block5_conv3`` -> ``block5_relu3``): the rectified feature map that the same name
denotes in the plain models. Everything is `keras.ops` plus one backend gradient
(`tf.GradientTape`, `jax.grad` or `torch.autograd`), so it runs under every Keras backend.

Typical use::

    from vgg_keras import explain
    maps = explain.gradcam(model, images)                 # [B, H, W], predicted classes
    maps = explain.saliency(model, images, class_index=3)
    explain.save_png(explain.overlay(images[0], maps[0]), "gradcam.png")
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence

import keras
import numpy as np
from keras import ops

from vgg_keras import models as models_lib

__all__ = [
    "DEFAULT_NOISE",
    "DEFAULT_SAMPLES",
    "METHODS",
    "PointingGameResult",
    "conv_layer_names",
    "default_layer",
    "explain",
    "gradcam",
    "overlay",
    "pointing_game",
    "pointing_hits",
    "saliency",
    "save_png",
    "smoothgrad",
    "target_classes",
]

METHODS = ("saliency", "smoothgrad", "gradcam")
# Smilkov et al. 2017, section 4: sigma 10-20% of the input range, n = 50 (little gain beyond).
DEFAULT_SAMPLES = 50
DEFAULT_NOISE = 0.15
_SCORE_LAYER = models_lib.PREDICTIONS_LAYER  # any classifier with it, not only a VGG: found by this name
_CLASSIFIER_LAYERS = tuple(models_lib.PAPER_INIT_FC_LAYERS)


# --------------------------------------------------------------------------- model anatomy


def _check_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; received {type(model).__name__}.")
    if len(model.inputs) != 1:
        raise ValueError(f"model must have one image input; model {model.name!r} has {len(model.inputs)}.")


def _score_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer whose pre-activation holds the class scores: `predictions`."""
    layer = next((lay for lay in model.layers if lay.name == _SCORE_LAYER), None)
    if not isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
        found = "none" if layer is None else type(layer).__name__
        raise ValueError(
            f"model {model.name!r} needs a Dense or Conv2D layer named {_SCORE_LAYER!r} holding the class scores "
            f"(found: {found}); build it with include_top=True."
        )
    return layer


def _num_classes(layer: keras.layers.Layer) -> int:
    return int(layer.units if isinstance(layer, keras.layers.Dense) else layer.filters)


def conv_layer_names(model: keras.Model) -> list[str]:
    """The layers `gradcam` accepts: every `Conv2D` before the class-score layer.

    Args:
        model: A classifier with a `predictions` layer.

    Returns:
        Layer names in model order (for the conv head this includes `fc1` and `fc2`).
    """
    _check_model(model)
    score = _score_layer(model)
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D) and layer is not score]


def default_layer(model: keras.Model) -> str:
    """The last conv layer of the feature extractor (`block5_conv3` in VGG16), Grad-CAM's default.

    Args:
        model: A classifier with a `predictions` layer.

    Returns:
        The layer name.

    Raises:
        ValueError: If the model has no conv layer before its classifier.
    """
    features = [name for name in conv_layer_names(model) if name not in _CLASSIFIER_LAYERS]
    if not features:
        raise ValueError(f"model {model.name!r} has no Conv2D layer before its classifier to explain with Grad-CAM.")
    return features[-1]


def _rectified_output(model: keras.Model, layer: keras.layers.Layer):
    """The conv layer's output, or after its BatchNorm and ReLU when they follow it directly."""
    tensor, layers = layer.output, model.layers
    expected = [keras.layers.BatchNormalization, (keras.layers.ReLU, keras.layers.Activation)]
    for following in layers[layers.index(layer) + 1 :]:
        position = next((i for i, kind in enumerate(expected) if isinstance(following, kind)), None)
        if position is None or following.input is not tensor:
            break
        tensor, expected = following.output, expected[position + 1 :]
    return tensor


def _conv_layer(model: keras.Model, layer: str | None) -> keras.layers.Layer:
    allowed = conv_layer_names(model)
    name = default_layer(model) if layer is None else layer
    if name not in allowed:
        names = [lay.name for lay in model.layers]
        what = "is not a conv layer" if name in names else "is not a layer"
        what = "is the class-score layer, not a conv layer" if name == _SCORE_LAYER else what
        raise ValueError(f"layer={layer!r} {what} of model {model.name!r}; allowed conv layers: {', '.join(allowed)}.")
    return model.get_layer(name)


def _channel_axis(model: keras.Model) -> int:
    conv = next((lay for lay in model.layers if isinstance(lay, keras.layers.Conv2D)), None)
    data_format = conv.data_format if conv is not None else keras.config.image_data_format()
    return 1 if data_format == "channels_first" else -1


def _pre_activation(layer: keras.layers.Layer, x):
    """`layer(x)` without its activation (the scores before a soft-max)."""
    if layer.activation in (None, keras.activations.linear):
        return layer(x)
    x = ops.cast(x, layer.compute_dtype)
    kernel = ops.cast(layer.kernel, layer.compute_dtype)
    if isinstance(layer, keras.layers.Dense):
        scores = ops.matmul(x, kernel)
        bias_shape = (layer.units,)
    else:
        scores = layer.convolution_op(x, kernel)
        bias_shape = (1, layer.filters, 1, 1) if layer.data_format == "channels_first" else (layer.filters,)
    if layer.use_bias:
        scores = scores + ops.reshape(ops.cast(layer.bias, layer.compute_dtype), bias_shape)
    return scores


@dataclasses.dataclass
class _ScoreFunction:
    """`inputs -> class scores [B, classes]` from any tensor of the model (image or conv activations)."""

    head: Callable
    layer: keras.layers.Layer
    spatial_axes: tuple[int, int]

    def __call__(self, inputs):
        scores = _pre_activation(self.layer, self.head(inputs, training=False))
        if len(scores.shape) == 4:  # conv head: the model averages its score map before the soft-max
            scores = ops.mean(scores, axis=self.spatial_axes)
        return ops.cast(scores, "float32")


def _score_function(model: keras.Model, start=None) -> _ScoreFunction:
    layer = _score_layer(model)
    inputs = model.inputs[0] if start is None else start
    axes = (2, 3) if _channel_axis(model) == 1 else (1, 2)
    # A layer feeding `predictions` directly (fc2 of a conv head without dropout) has nothing in between.
    head = _identity if inputs is layer.input else keras.Model(inputs, layer.input)
    return _ScoreFunction(head, layer, axes)


def _identity(inputs, training=False):
    del training
    return inputs


# --------------------------------------------------------------------------- gradients and classes


def _gradient(fn: Callable, x):
    """``d fn(x) / d x`` for a scalar `fn`, with the backend's automatic differentiation."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        return tape.gradient(value, x)
    if backend == "jax":
        import jax  # pylint: disable=import-outside-toplevel

        return jax.grad(fn)(x)
    if backend == "torch":
        import torch  # pylint: disable=import-outside-toplevel

        x = x.detach().requires_grad_(True)
        return torch.autograd.grad(fn(x), x)[0]
    raise ValueError(
        f"Keras backend {backend!r} has no gradients for vgg_keras.explain; allowed: 'tensorflow', 'jax', 'torch'."
    )


def _as_batch(images, model: keras.Model) -> tuple[np.ndarray, bool]:
    array = np.asarray(images, dtype=np.float32)
    single = array.ndim == len(model.inputs[0].shape) - 1
    if single:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(
            f"images must be a batch [B, H, W, C] or one image [H, W, C]; received shape {np.shape(images)}."
        )
    return array, single


def _checked_classes(class_index, batch: int, num_classes: int) -> np.ndarray:
    classes = np.asarray(class_index)
    if classes.ndim == 0:
        classes = np.full(batch, classes)
    if classes.shape != (batch,) or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(
            f"class_index={class_index!r}; allowed: None (predicted class), an int, or {batch} ints (one per image)."
        )
    if classes.min() < 0 or classes.max() >= num_classes:
        raise ValueError(f"class_index={class_index!r} out of range; allowed: 0 <= class_index < {num_classes}.")
    return classes.astype(np.int32)


def target_classes(model: keras.Model, images, class_index=None) -> np.ndarray:
    """The class each image is explained for: the given one(s), or the predicted one.

    Args:
        model: A classifier with a `predictions` layer.
        images: ``[B, H, W, C]`` (or one ``[H, W, C]``) as the model takes them.
        class_index: None (each image's top-scoring class), an int for every image, or one
            int per image.

    Returns:
        int32 ``[B]``.

    Raises:
        ValueError: If `class_index` has the wrong length, type or range.
    """
    _check_model(model)
    batch, _ = _as_batch(images, model)
    if class_index is not None:
        return _checked_classes(class_index, len(batch), _num_classes(_score_layer(model)))
    scores = _score_function(model)(ops.convert_to_tensor(batch))
    return np.argmax(ops.convert_to_numpy(scores), axis=-1).astype(np.int32)


def _score_of(score_fn: _ScoreFunction, classes: np.ndarray) -> Callable:
    """The summed class score of the batch: each image's gradient is that of its own score."""
    mask = ops.one_hot(ops.convert_to_tensor(classes), _num_classes(score_fn.layer), dtype="float32")
    return lambda inputs: ops.sum(score_fn(inputs) * mask)


def _prepared(model, images, class_index) -> tuple[np.ndarray, bool, np.ndarray]:
    _check_model(model)
    batch, single = _as_batch(images, model)
    return batch, single, target_classes(model, batch, class_index)


def _saliency_maps(score_fn: _ScoreFunction, batch: np.ndarray, classes: np.ndarray, channel_axis: int) -> np.ndarray:
    gradient = _gradient(_score_of(score_fn, classes), ops.convert_to_tensor(batch))
    return ops.convert_to_numpy(ops.max(ops.abs(gradient), axis=channel_axis))


# --------------------------------------------------------------------------- the three maps


def saliency(model: keras.Model, images, class_index=None) -> np.ndarray:
    """Image-specific class saliency (Simonyan et al. 2014): ``max_channels |d S_c / d I|``.

    Args:
        model: A classifier with a `predictions` layer (dense or conv head, with or without
            BatchNorm or a `preprocessing` layer).
        images: float ``[B, H, W, C]`` (or one ``[H, W, C]``) as the model takes them (RGB
            0..255 for a model with a `preprocessing` layer).
        class_index: None (each image's predicted class), an int, or one int per image.

    Returns:
        float32 ``[B, H, W]`` (``[H, W]`` for one image), non-negative.

    Raises:
        ValueError: For a model without `predictions`, bad image shapes or class indices.
        TypeError: If `model` is not a keras.Model.
    """
    batch, single, classes = _prepared(model, images, class_index)
    maps = _saliency_maps(_score_function(model), batch, classes, _channel_axis(model))
    return maps[0] if single else maps


def smoothgrad(
    model: keras.Model,
    images,
    class_index=None,
    *,
    samples: int = DEFAULT_SAMPLES,
    noise: float = DEFAULT_NOISE,
    seed: int | None = None,
) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017): the mean saliency map of noisy copies of each image.

    Args:
        model: As for `saliency`.
        images: As for `saliency`.
        class_index: As for `saliency`; None explains the class predicted for the clean image.
        samples: Noisy copies per image (default 50, the paper's choice).
        noise: Gaussian noise std as a fraction of each image's range ``max - min``
            (default 0.15, the middle of the paper's 10-20%).
        seed: Seed of the noise (None: a fresh draw).

    Returns:
        float32 ``[B, H, W]`` (``[H, W]`` for one image), non-negative.

    Raises:
        ValueError: For bad `samples` / `noise`, and as `saliency`.
    """
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r}; allowed: a positive int.")
    if not noise >= 0:
        raise ValueError(f"noise={noise!r}; allowed: a fraction of the input range >= 0 (e.g. 0.1-0.2).")
    batch, single, classes = _prepared(model, images, class_index)
    rng = np.random.default_rng(seed)
    spread = noise * (batch.max(axis=(1, 2, 3), keepdims=True) - batch.min(axis=(1, 2, 3), keepdims=True))
    score_fn, channel_axis = _score_function(model), _channel_axis(model)
    total = np.zeros(batch.shape[:1] + _spatial_shape(model, batch.shape), np.float32)
    for _ in range(samples):  # one noisy copy of the whole batch per pass bounds the memory
        noisy = batch + rng.normal(size=batch.shape).astype(np.float32) * spread
        total += _saliency_maps(score_fn, noisy, classes, channel_axis)
    maps = total / samples
    return maps[0] if single else maps


def _spatial_shape(model: keras.Model, shape: Sequence[int | None]) -> tuple[int, int]:
    """(height, width) of a batch shape in the model's data format."""
    return tuple(shape[2:4]) if _channel_axis(model) == 1 else tuple(shape[1:3])


def gradcam(model: keras.Model, images, class_index=None, *, layer: str | None = None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) on a conv layer, upsampled to the input.

    ``alpha_k = mean over positions of d S_c / d A^k`` and ``ReLU(sum_k alpha_k A^k)``,
    with ``A`` the layer's activations (after BatchNorm and ReLU in BatchNorm variants) and
    ``S_c`` the class score before the soft-max; bilinearly resized to the image size.

    Args:
        model: As for `saliency`.
        images: As for `saliency`.
        class_index: None (each image's predicted class), an int, or one int per image.
        layer: Name of a conv layer (`conv_layer_names(model)`); default `default_layer(model)`,
            the last conv before the classifier (`block5_conv3` in VGG16).

    Returns:
        float32 ``[B, H, W]`` (``[H, W]`` for one image), non-negative, not normalised.

    Raises:
        ValueError: If `layer` does not exist or is not a conv layer (the message lists the
            allowed ones), and as `saliency`.
    """
    batch, single, classes = _prepared(model, images, class_index)
    conv = _conv_layer(model, layer)
    activations_tensor = _rectified_output(model, conv)
    activations = keras.Model(model.inputs[0], activations_tensor)(ops.convert_to_tensor(batch), training=False)
    score_fn = _score_function(model, start=activations_tensor)
    gradient = _gradient(_score_of(score_fn, classes), activations)
    channel_axis = _channel_axis(model)
    spatial = score_fn.spatial_axes
    alpha = ops.mean(gradient, axis=spatial, keepdims=True)
    cam = ops.relu(ops.sum(alpha * ops.cast(activations, alpha.dtype), axis=channel_axis))
    cam = ops.image.resize(
        cam[..., None], _spatial_shape(model, batch.shape), interpolation="bilinear", data_format="channels_last"
    )[..., 0]
    maps = ops.convert_to_numpy(ops.cast(cam, "float32"))
    return maps[0] if single else maps


def explain(model: keras.Model, images, method: str = "gradcam", class_index=None, **kwargs) -> np.ndarray:
    """One of `METHODS` by name (what `recipes/explain.py` and `pointing_game` call).

    Args:
        model: As for `saliency`.
        images: As for `saliency`.
        method: "saliency", "smoothgrad" or "gradcam".
        class_index: As for `saliency`.
        **kwargs: The method's own arguments (`layer` for Grad-CAM; `samples`, `noise`, `seed`
            for SmoothGrad).

    Returns:
        float32 maps ``[B, H, W]`` (``[H, W]`` for one image).

    Raises:
        ValueError: For an unknown method, and as the method.
    """
    functions = {"saliency": saliency, "smoothgrad": smoothgrad, "gradcam": gradcam}
    if method not in functions:
        raise ValueError(f"Invalid method={method!r}. Allowed: {', '.join(repr(m) for m in METHODS)}.")
    return functions[method](model, images, class_index, **kwargs)


# --------------------------------------------------------------------------- pictures


def _normalised(heatmap: np.ndarray) -> np.ndarray:
    low, high = float(heatmap.min()), float(heatmap.max())
    return (heatmap - low) / (high - low) if high > low else np.zeros_like(heatmap)


def _resized(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image  # pylint: disable=import-outside-toplevel

    if heatmap.shape == (height, width):
        return heatmap
    return np.asarray(Image.fromarray(heatmap.astype(np.float32), mode="F").resize((width, height), Image.BILINEAR))


def overlay(image, heatmap, *, alpha: float = 0.5, colormap: str = "jet") -> np.ndarray:
    """A heat map drawn over an image: ``(1 - alpha) * image + alpha * colormap(map)``.

    Args:
        image: RGB ``[H, W, 3]`` in 0..255 (uint8 or float), or grayscale ``[H, W]``.
        heatmap: ``[h, w]`` real map (any range); scaled to [0, 1] by its min and max and
            bilinearly resized to ``H x W``.
        alpha: Weight of the colours, in [0, 1].
        colormap: A matplotlib colormap name ("jet", "inferno", "viridis", ...).

    Returns:
        uint8 ``[H, W, 3]``.

    Raises:
        ValueError: For bad shapes, `alpha` outside [0, 1] or an unknown colormap.
    """
    import matplotlib  # pylint: disable=import-outside-toplevel

    image, heatmap = np.asarray(image, np.float32), np.asarray(heatmap, np.float32)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be RGB [H, W, 3] or grayscale [H, W]; received shape {image.shape}.")
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be [h, w]; received shape {heatmap.shape}.")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha={alpha!r}; allowed: a weight in [0, 1].")
    if colormap not in matplotlib.colormaps:
        raise ValueError(f"colormap={colormap!r} is not a matplotlib colormap; allowed e.g. 'jet', 'viridis'.")
    heat = _normalised(_resized(heatmap, *image.shape[:2]))
    colours = matplotlib.colormaps[colormap](heat)[..., :3] * 255.0
    return np.clip(np.round((1 - alpha) * image + alpha * colours), 0, 255).astype(np.uint8)


def save_png(image, path: str) -> str:
    """Writes a uint8 ``[H, W, 3]`` / ``[H, W]`` array as a PNG, atomically (temporary name, then rename).

    Args:
        image: uint8 RGB or grayscale array (e.g. from `overlay`).
        path: Output file; its folder is created.

    Returns:
        `path`.

    Raises:
        ValueError: If `image` is not uint8 ``[H, W]`` or ``[H, W, 3]``.
    """
    from PIL import Image  # pylint: disable=import-outside-toplevel

    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
        raise ValueError(f"image must be uint8 [H, W] or [H, W, 3]; received {image.dtype} {image.shape}.")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            Image.fromarray(image).save(file, format="PNG")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


# --------------------------------------------------------------------------- the pointing game


def pointing_hits(maps, boxes, tolerance: float = 0.0) -> np.ndarray:
    """Whether each map's maximum falls inside its box (within `tolerance` pixels).

    Args:
        maps: ``[N, H, W]`` maps; the first maximum (row-major) is the pointed pixel.
        boxes: ``[N, 4]`` normalised ``(ymin, xmin, ymax, xmax)`` of the same images.
        tolerance: Distance in pixels from the box still counted as a hit (Zhang et al.
            use 15 at ImageNet scale).

    Returns:
        bool ``[N]``.

    Raises:
        ValueError: For mismatched shapes or a negative tolerance.
    """
    maps, boxes = np.asarray(maps), np.asarray(boxes, np.float64)
    if maps.ndim != 3 or boxes.shape != (len(maps), 4):
        raise ValueError(f"Expected maps [N, H, W] and boxes [N, 4]; received shapes {maps.shape}, {boxes.shape}.")
    if not tolerance >= 0:
        raise ValueError(f"tolerance={tolerance!r}; allowed: pixels >= 0.")
    height, width = maps.shape[1:]
    rows, cols = np.unravel_index(np.argmax(maps.reshape(len(maps), -1), axis=1), (height, width))
    return _inside(rows + 0.5, cols + 0.5, boxes, height, width, tolerance)


def _inside(y, x, boxes: np.ndarray, height: int, width: int, tolerance: float) -> np.ndarray:
    """Whether points (pixel units) lie within `tolerance` of the normalised boxes."""
    top, left, bottom, right = (boxes * [height, width, height, width]).T
    dy = np.maximum.reduce([top - y, np.zeros_like(top), y - bottom])
    dx = np.maximum.reduce([left - x, np.zeros_like(left), x - right])
    return np.hypot(dy, dx) <= tolerance


@dataclasses.dataclass
class PointingGameResult:
    """The pointing game on one dataset.

    Attributes:
        method: The map ("gradcam", "saliency" or "smoothgrad"); layer: Grad-CAM's layer.
        accuracy: hits / images.
        hits: Images whose map maximum is inside the object's box.
        num_images: Images scored (those whose object is visible in the crop).
        center_accuracy: The baseline that always points at the crop centre.
        tolerance: Pixels of tolerance; class_source: "label" or "predicted".
    """

    method: str
    layer: str | None
    accuracy: float
    hits: int
    num_images: int
    center_accuracy: float
    tolerance: float
    class_source: str

    def summary(self) -> dict:
        """The result as a JSON-able dict."""
        return dataclasses.asdict(self)


def pointing_game(
    model: keras.Model,
    source,
    *,
    method: str = "gradcam",
    layer: str | None = None,
    use_labels: bool = True,
    scale: int | None = None,
    crop_size: int | None = None,
    tolerance: float = 0.0,
    batch_size: int = 32,
    preprocess: Callable | None = None,
    max_examples: int | None = None,
    **method_kwargs,
) -> PointingGameResult:
    """The pointing game (Zhang et al. 2016) on a dataset with one object box per image.

    Each image is resized to smallest side `scale` and centre-cropped to `crop_size` (the
    evaluation crop of `vgg_keras.localization.box_eval_dataset`); its box is moved into the
    crop and clipped; images whose object lies outside the crop are skipped.

    Args:
        model: As for `saliency`; takes ``crop_size`` images.
        source: A `vgg_keras.data.Source` with ``bbox`` (e.g. ``get_source("builtin", "validation")``).
        method: One of `METHODS`.
        layer: Grad-CAM's conv layer (default: the last one).
        use_labels: Explain the ground-truth class (Zhang et al.); False: the predicted one.
        scale: Smallest side before the crop (default: `crop_size`).
        crop_size: Side of the crop (default: the model's input size).
        tolerance: Pixels (at crop resolution) around the box still counted as a hit.
        batch_size: Images per batch.
        preprocess: Normalisation for RGB 0..255 crops (None when the model carries its own).
        max_examples: Score only the first images.
        **method_kwargs: More arguments of the method (e.g. `samples` for SmoothGrad).

    Returns:
        A `PointingGameResult`.

    Raises:
        ValueError: If the source has no boxes, no crop size is known, or no object is visible.
    """
    from vgg_keras import localization  # pylint: disable=import-outside-toplevel  (tf.data and keras-cv)

    _check_model(model)
    crop_size = crop_size or _spatial_shape(model, model.inputs[0].shape)[0]
    if crop_size is None:
        raise ValueError(f"crop_size=None and model {model.name!r} takes any size; allowed: a crop side in pixels.")
    if method == "gradcam":
        method_kwargs["layer"] = _conv_layer(model, layer).name
    dataset = localization.box_eval_dataset(
        source,
        batch_size=batch_size,
        scale=scale or crop_size,
        crop_size=crop_size,
        preprocess=preprocess,
        max_examples=max_examples,
    )
    hits, centre = [], []
    for batch in dataset:
        boxes = localization.image_boxes_to_crop(batch["bbox"], batch["window"]).numpy()
        visible = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        images, labels, boxes = batch["image"].numpy()[visible], batch["label"].numpy()[visible], boxes[visible]
        if not len(images):
            continue
        maps = explain(model, images, method, labels if use_labels else None, **method_kwargs)
        hits.append(pointing_hits(maps, boxes, tolerance))
        centre.append(
            _inside(
                np.full(len(boxes), crop_size / 2),
                np.full(len(boxes), crop_size / 2),
                boxes,
                crop_size,
                crop_size,
                tolerance,
            )
        )
    if not hits:
        raise ValueError("source yielded no image whose object is visible in the crop; nothing to score.")
    hits, centre = np.concatenate(hits), np.concatenate(centre)
    return PointingGameResult(
        method=method,
        layer=method_kwargs.get("layer"),
        accuracy=float(hits.mean()),
        hits=int(hits.sum()),
        num_images=len(hits),
        center_accuracy=float(centre.mean()),
        tolerance=float(tolerance),
        class_source="label" if use_labels else "predicted",
    )
