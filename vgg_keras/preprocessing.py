"""Input normalisation tied to the weights, and ImageNet class names.

Three normalisations ("modes") cover every source of VGG weights:

- ``"caffe"``: RGB -> BGR, subtract the ImageNet mean BGR pixel ``[103.939, 116.779,
  123.68]``, no scaling. The Keras / original Caffe weights; bit-for-bit the same as
  ``keras.applications.vgg16.preprocess_input``.
- ``"torch"``: divide by 255, subtract ``[0.485, 0.456, 0.406]`` and divide by
  ``[0.229, 0.224, 0.225]`` per RGB channel. The torchvision / timm weights.
- ``"mean_rgb"``: subtract the training set's mean RGB pixel, nothing else: the paper's
  preprocessing (section 2.1). ImageNet's mean RGB by default, any mean on request.

Every mode takes RGB pixel values in ``[0, 255]``. `preprocess_input` works on NumPy arrays
(never modified in place) and on tensors (eager, inside ``tf.data`` and in exported graphs);
`Preprocessing` is the same normalisation as a serialisable Keras layer, which
``vgg_keras.build(..., include_preprocessing=True)`` puts right after the model's input.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from vgg_keras._deprecation import deprecated_attributes
from vgg_keras.normalization import DEFAULT_MODE, IMAGENET_MEAN_RGB, PREPROCESSING_MODES, Normalization, normalization

__all__ = [
    "PREPROCESSING_MODES",
    "DEFAULT_MODE",
    "IMAGENET_MEAN_RGB",
    "Normalization",
    "normalization",
    "preprocess_input",
    "Preprocessing",
    "preprocessing_layer",
    "imagenet_classes",
    "decode_predictions",
]

_CLASSES_FILE = "imagenet_classes.tsv"
NUM_CLASSES = 1000
__getattr__ = deprecated_attributes(__name__, {"MODES": ("vgg_keras.normalization", "PREPROCESSING_MODES")})


def _channel_axis(data_format: str | None) -> int:
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format={data_format!r}; allowed: 'channels_last', 'channels_first' or None.")
    return -1 if data_format == "channels_last" else -3


def _check_channels(shape: Sequence[int | None], axis: int) -> None:
    if len(shape) < 3 or shape[axis] not in (3, None):
        raise ValueError(
            f"Images of shape {tuple(shape)}: expected 3D or 4D RGB images with 3 channels on axis {axis}."
        )


def _normalize_numpy(x, norm: Normalization, axis: int) -> np.ndarray:
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else keras.config.floatx()
    # Always a copy: callers' arrays are never modified (keras.applications modifies float input in place).
    x = x.astype(dtype, copy=True)
    _check_channels(x.shape, axis)
    if norm.bgr:
        x = np.flip(x, axis)
    if norm.scale is not None:
        x /= norm.scale
    for channel in range(3):
        index = [slice(None)] * x.ndim
        index[axis] = channel
        x[tuple(index)] -= norm.mean[channel]
        if norm.std is not None:
            x[tuple(index)] /= norm.std[channel]
    return x


def _is_tf_tensor(x) -> bool:
    return type(x).__module__.startswith("tensorflow")


def _tensor_ops(x):
    """(cast, flip, constant) for `x`.

    TensorFlow ops for tf tensors on other Keras backends (inside tf.data), Keras ops otherwise.
    """
    if _is_tf_tensor(x) and keras.backend.backend() != "tensorflow":
        import tensorflow as tf

        return tf.cast, lambda t, axis: tf.reverse(t, [axis]), tf.constant
    return keras.ops.cast, keras.ops.flip, lambda value, dtype: keras.ops.convert_to_tensor(value, dtype=dtype)


def _normalize_tensor(x, norm: Normalization, axis: int, dtype: str | None = None):
    cast, flip, constant = _tensor_ops(x)
    _check_channels(tuple(x.shape), axis)
    source_dtype = keras.backend.standardize_dtype(x.dtype)
    dtype = dtype or (source_dtype if keras.backend.is_float_dtype(source_dtype) else keras.config.floatx())
    if source_dtype != dtype:
        x = cast(x, dtype)
    if norm.bgr:
        x = flip(x, axis)
    if norm.scale is not None:
        x = x / constant(norm.scale, dtype)
    shape = (3,) if axis == -1 else (3, 1, 1)
    x = x - constant(np.reshape(norm.mean, shape), dtype)
    if norm.std is not None:
        x = x / constant(np.reshape(norm.std, shape), dtype)
    return x


def _resolve_mode(weights, mode: str | None, arch: str | None) -> str:
    if weights is not None and mode is not None:
        raise ValueError(f"Give weights={weights!r} or mode={mode!r}, not both (the weights determine the mode).")
    if weights is not None:
        # Lazily: the weights readers need h5py, which plain preprocessing does not.
        from vgg_keras import weights as weights_lib

        return weights_lib.preprocessing_mode_for(weights, arch)
    return DEFAULT_MODE if mode is None else mode


def preprocess_input(
    x,
    weights: str | None = None,
    mode: str | None = None,
    data_format: str | None = None,
    *,
    arch: str | None = None,
    mean: Sequence[float] | None = None,
):
    """Normalises RGB images in [0, 255] the way the weights expect.

    With no arguments this is ``keras.applications.vgg16.preprocess_input`` (caffe mode),
    bit-for-bit, except that NumPy input is never modified in place.

    Args:
        x: Images, 3D or 4D, RGB in [0, 255]: a NumPy array (or anything `np.asarray`
            takes) or a tensor (eager, symbolic, or inside `tf.data`). Integer input is cast
            to `keras.config.floatx()`.
        weights: Weights whose normalisation to apply: a `PretrainedWeights` entry from
            `vgg_keras.list_weights()` (it carries its preprocessing), a tag ("imagenet",
            "imagenet-keras", "imagenet-torchvision") or a weights file path.
        mode: "caffe" (default), "torch" or "mean_rgb"; give `weights` or `mode`, not both.
        data_format: "channels_last" or "channels_first" (default: Keras' image data format).
        arch: The architecture (e.g. "vgg11"), needed with `weights="imagenet"`, whose source
            and so normalisation depend on the architecture.
        mean: With mode "mean_rgb": the dataset's mean RGB pixel (default: ImageNet's).

    Returns:
        A new NumPy array for NumPy input, otherwise a tensor of the same kind.

    Raises:
        ValueError: For an unknown mode or weights, both `weights` and `mode`, a bad
            `data_format`, or images without 3 channels.
    """
    norm = normalization(_resolve_mode(weights, mode, arch), mean)
    axis = _channel_axis(data_format)
    if isinstance(x, (np.ndarray, np.generic, list, tuple)):
        return _normalize_numpy(x, norm, axis)
    return _normalize_tensor(x, norm, axis)


@keras.saving.register_keras_serializable(package="vgg_keras")
class Preprocessing(keras.layers.Layer):
    """`preprocess_input` as a Keras layer: RGB in [0, 255] in, normalised images out.

    Args:
        mode: "caffe", "torch" or "mean_rgb".
        mean: With "mean_rgb": the dataset's mean RGB pixel (default: ImageNet's).
        data_format: "channels_last" or "channels_first" (default: Keras' image data format).
        **kwargs: Base `keras.layers.Layer` arguments (name, dtype, ...).
    """

    def __init__(self, mode: str = DEFAULT_MODE, mean: Sequence[float] | None = None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.normalization = normalization(mode, mean)
        self.mode = mode
        self.mean = None if mean is None else list(self.normalization.mean)
        self.data_format = data_format or keras.config.image_data_format()
        self._axis = _channel_axis(self.data_format)

    def call(self, inputs):
        return _normalize_tensor(inputs, self.normalization, self._axis, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(mode=self.mode, mean=self.mean, data_format=self.data_format)
        return config


def preprocessing_layer(mode: str = DEFAULT_MODE, name: str = "preprocessing", **kwargs) -> Preprocessing:
    """A `Preprocessing` layer for `mode`, named `name` (what `build` bakes into models).

    Args:
        mode: "caffe", "torch" or "mean_rgb".
        name: Layer name.
        **kwargs: Further `Preprocessing` arguments (`mean`, `data_format`, `dtype`).

    Returns:
        A `Preprocessing` layer.
    """
    return Preprocessing(mode, name=name, **kwargs)


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """The 1000 ImageNet classes in the standard order, shipped with the package.

    Returns:
        A tuple of `(wordnet_id, names)`, e.g. `("n01440764", "tench, Tinca tinca")`, where
        the position is the class index (WordNet ids sorted, as in tensorflow-datasets).
    """
    text = importlib.resources.files("vgg_keras").joinpath(_CLASSES_FILE).read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return tuple((wnid, names) for wnid, names in rows)


def decode_predictions(preds, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Decodes ImageNet predictions offline (same contract as keras.applications').

    Args:
        preds: Scores of shape `(batch, 1000)`, a NumPy array or tensor.
        top: How many of the best classes to return per sample (1 to 1000).

    Returns:
        One list per sample of `(wordnet_id, name, score)` tuples, best first; `name` is the
        class's first name, e.g. "tench" or "crane (bird)".

    Raises:
        ValueError: If `preds` is not `(batch, 1000)` or `top` is out of range.
    """
    preds = np.asarray(keras.ops.convert_to_numpy(preds))
    if preds.ndim != 2 or preds.shape[1] != NUM_CLASSES:
        raise ValueError(
            f"decode_predictions expects preds of shape (batch, {NUM_CLASSES}); received shape {preds.shape}."
        )
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or not 1 <= top <= NUM_CLASSES:
        raise ValueError(f"top={top!r}; allowed: an integer from 1 to {NUM_CLASSES}.")
    classes = imagenet_classes()
    results = []
    for scores in preds:
        best = np.argsort(-scores, kind="stable")[:top]
        results.append([(classes[i][0], classes[i][1].split(",")[0], float(scores[i])) for i in best])
    return results
