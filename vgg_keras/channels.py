"""Pretrained RGB weights for any number of input channels (grayscale, RGB-D, multispectral).

`vgg_keras.build(..., input_shape=(h, w, n), weights=<tag or file>)` loads RGB weights into a
model with `n` input channels by adapting the first conv's kernel as timm's
`adapt_input_conv` (`in_chans`) does, in the weights' channel order:

- `n == 1`: the kernel summed over its three input channels. When the weights normalise
  each channel differently (caffe: per-channel means; torch: per-channel means and stds),
  the sum is weighted by `std / std_c` and the bias absorbs the mean differences, so that a
  gray image gives, away from the image border, exactly the first conv's response of the
  RGB model to the same gray image replicated to RGB (with equal statistics on every
  channel this is timm's plain sum, and the bias is unchanged).
- `n >= 2` (other than 3): the RGB kernel repeated `ceil(n / 3)` times along the input
  axis, cut to `n` channels and multiplied by `3 / n` (timm), which keeps the response's
  scale; the bias is unchanged.

The matching normalisation (`channel_normalization`, the `ChannelPreprocessing` layer that
`build(..., include_preprocessing=True)` uses for `n != 3`): RGB channels keep the weights'
statistics (the first three channels when `n >= 3`, reordered to BGR for caffe weights);
every other channel, and the single channel of a gray model, gets the mean of the three
RGB means (and stds). Inputs are in [0, 255] on every channel, like RGB.

Why only "away from the border": the convs zero-pad in normalised space, i.e. the RGB
model pads a raw pixel of value `mean_c` on channel c, which is not a gray pixel when the
means differ. The one-pixel ring of `block1_conv1`'s output therefore differs (and so do
later outputs, slightly); with the same normalisation on every channel (e.g. "mean_rgb"
with a gray mean) the adapted model equals the RGB model everywhere (tests/test_channels.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from vgg_keras import preprocessing as preprocessing_lib
from vgg_keras import surgery

__all__ = [
    "ChannelPreprocessing",
    "adapt_first_conv",
    "adapt_input_conv",
    "adapt_model",
    "adapt_tensors",
    "channel_normalization",
    "preprocessing_layer_of",
]

_IDENTITY = preprocessing_lib.Normalization("identity", False, None, (0.0, 0.0, 0.0), None)


def _check_channels(channels) -> int:
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
        raise ValueError(f"channels={channels!r}; allowed: a positive integer (1 gray, 3 RGB, 4 RGB-D, ...).")
    return int(channels)


def _first_conv(model: keras.Model):
    """The model's first conv, the one that sees the input channels (found by type), or None."""
    return next((layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)), None)


def preprocessing_layer_of(model: keras.Model):
    """The model's normalisation layer, or None.

    Found by type (`Preprocessing` or `ChannelPreprocessing`), not by name: it may stand in
    front of an `input_tensor`, under any name (`vgg_keras.describe(model).preprocessing_layer`).

    Args:
        model: A Keras model.

    Returns:
        The layer, or None.
    """
    kinds = (preprocessing_lib.Preprocessing, ChannelPreprocessing)
    return next((layer for layer in model.layers if isinstance(layer, kinds)), None)


def adapt_input_conv(kernel: np.ndarray, channels: int) -> np.ndarray:
    """Timm's `adapt_input_conv` for a Keras `(h, w, 3, filters)` kernel.

    Args:
        kernel: The RGB kernel, channels-last (HWIO).
        channels: Input channels of the new kernel.

    Returns:
        `(h, w, channels, filters)`: the sum over RGB for one channel, the kernel itself for
        three, else RGB repeated along the input axis, cut to `channels` and scaled by 3 / channels.

    Raises:
        ValueError: If `kernel` is not HWIO with 3 input channels or `channels` < 1.
    """
    channels = _check_channels(channels)
    kernel = np.asarray(kernel)
    if kernel.ndim != 4 or kernel.shape[2] != 3:
        raise ValueError(f"kernel of shape {kernel.shape}; allowed: (height, width, 3, filters), an RGB conv kernel.")
    if channels == 1:
        return kernel.sum(axis=2, keepdims=True)
    if channels == 3:
        return kernel
    repeated = np.tile(kernel, (1, 1, math.ceil(channels / 3), 1))[:, :, :channels]
    return repeated * (3.0 / channels)


def channel_normalization(norm: preprocessing_lib.Normalization, channels: int):
    """The per-channel `(mean, std)` of `norm` extended to `channels` input channels.

    Args:
        norm: The RGB normalisation of the weights (`vgg_keras.preprocessing.normalization`).
        channels: Input channels.

    Returns:
        `(mean, std)`: tuples of `channels` numbers in the order the first conv sees them
        (BGR first for caffe weights); `std` is None when the mode has none. RGB channels
        keep their statistics, every other channel gets the mean of the three.
    """
    channels = _check_channels(channels)
    rgb_kept = 3 if channels >= 3 else 0
    mean = tuple(norm.mean[:rgb_kept]) + (float(np.mean(norm.mean)),) * (channels - rgb_kept)
    std = None if norm.std is None else tuple(norm.std[:rgb_kept]) + (float(np.mean(norm.std)),) * (channels - rgb_kept)
    return mean, std


def adapt_first_conv(
    kernel: np.ndarray, bias: np.ndarray, channels: int, norm: preprocessing_lib.Normalization | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The first conv's `(kernel, bias)` for `channels` inputs (see the module docstring).

    Args:
        kernel: RGB kernel `(h, w, 3, filters)`, in the weights' channel order.
        bias: Its bias `(filters,)`.
        channels: Input channels of the adapted conv.
        norm: The RGB normalisation the weights expect (None: no normalisation).

    Returns:
        `(kernel, bias)` for `channels` inputs normalised by `channel_normalization`.
    """
    channels = _check_channels(channels)
    if channels != 1:
        return adapt_input_conv(kernel, channels), np.asarray(bias)
    norm = norm or _IDENTITY
    (gray_mean,), gray_std = channel_normalization(norm, 1)
    rgb_std = np.asarray(norm.std if norm.std is not None else (1.0, 1.0, 1.0), np.float64)
    gray_std = 1.0 if gray_std is None else gray_std[0]
    per_channel = np.asarray(kernel, np.float64) / rgb_std[None, None, :, None]
    # RGB model on a replicated gray g: sum_c W_c (g - m_c) / s_c; gray model: K (g - m) / s + b'.
    offset = np.einsum("hwcf,c->f", per_channel, np.asarray(norm.mean, np.float64) - gray_mean)
    adapted = per_channel.sum(axis=2, keepdims=True) * gray_std
    bias = np.asarray(bias)
    return adapted.astype(np.asarray(kernel).dtype), (bias.astype(np.float64) - offset).astype(bias.dtype)


def adapt_tensors(
    tensors: Mapping[str, list[np.ndarray]], model: keras.Model, mode: str
) -> dict[str, list[np.ndarray]]:
    """RGB weights (as `vgg_keras.weights.read_weights` returns them) made to fit `model`'s input.

    Args:
        tensors: `{layer_name: [arrays]}` of an RGB model.
        model: The model they are for; nothing changes unless its first conv takes other
            than 3 channels while the file's takes 3.
        mode: The preprocessing mode the weights expect; the model's own normalisation
            layer, when it has one, decides instead (it may carry a dataset mean).

    Returns:
        `tensors`, with the first conv's (`block1_conv1`) adapted where needed.
    """
    layer = _first_conv(model)
    values = tensors.get(layer.name) if layer is not None else None
    if layer is None or not values or values[0].ndim != 4 or values[0].shape[2] != 3:
        return dict(tensors)
    channels = int(layer.kernel.shape[2])
    if channels == 3:
        return dict(tensors)
    norm = _normalization_of(preprocessing_layer_of(model)) or preprocessing_lib.normalization(mode)
    adapted = dict(tensors)
    adapted[layer.name] = list(adapt_first_conv(values[0], values[1], channels, norm)) + list(values[2:])
    return adapted


def _gather(x, order: Sequence[int], axis: int):
    return keras.ops.take(x, keras.ops.convert_to_tensor(np.asarray(order, "int32")), axis=axis)


@keras.saving.register_keras_serializable(package="vgg_keras")
class ChannelPreprocessing(keras.layers.Layer):
    """The weights' normalisation for `channels` input channels in [0, 255] (see the module docstring).

    Args:
        mode: "caffe", "torch" or "mean_rgb" (the RGB weights' mode).
        channels: Input channels (1 gray, 4 RGB-D, ...).
        mean: With "mean_rgb": the RGB mean (default: ImageNet's).
        data_format: "channels_last" or "channels_first" (default: Keras' image data format).
        **kwargs: Base `keras.layers.Layer` arguments (name, dtype, ...).
    """

    def __init__(
        self,
        mode: str = preprocessing_lib.DEFAULT_MODE,
        channels: int = 1,
        mean: Sequence[float] | None = None,
        data_format: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.mode, self.channels = mode, _check_channels(channels)
        self.rgb = preprocessing_lib.normalization(mode, mean)
        self.mean = None if mean is None else list(self.rgb.mean)
        self.data_format = data_format or keras.config.image_data_format()
        self._axis = -1 if self.data_format == "channels_last" else -3
        self.channel_mean, self.channel_std = channel_normalization(self.rgb, self.channels)

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        if self.rgb.bgr and self.channels >= 3:  # the RGB channels only: extra channels keep their place
            x = _gather(x, [2, 1, 0] + list(range(3, self.channels)), self._axis)
        if self.rgb.scale is not None:
            x = x / self.rgb.scale
        shape = (self.channels,) if self._axis == -1 else (self.channels, 1, 1)
        x = x - keras.ops.cast(np.reshape(self.channel_mean, shape), self.compute_dtype)
        if self.channel_std is not None:
            x = x / keras.ops.cast(np.reshape(self.channel_std, shape), self.compute_dtype)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(mode=self.mode, channels=self.channels, mean=self.mean, data_format=self.data_format)
        return config


def _normalization_of(layer) -> preprocessing_lib.Normalization | None:
    if layer is None:
        return None
    return getattr(layer, "rgb", None) or getattr(layer, "normalization", None)


def adapt_model(model: keras.Model, channels: int) -> keras.Model:
    """A copy of an RGB vgg_keras model that takes `channels` input channels.

    The model's normalisation layer (if any) becomes a `ChannelPreprocessing` of the same
    mode; `block1_conv1` is adapted with `adapt_first_conv`; every other layer and weight is
    copied. Works for chains of layers (every vgg_keras model).

    Args:
        model: An RGB vgg_keras model (channels-last).
        channels: Input channels of the copy.

    Returns:
        A new `keras.Model` with input `(height, width, channels)`.

    Raises:
        ValueError: If the model has no `block1_conv1` taking 3 channels.
    """
    channels = _check_channels(channels)
    first = _first_conv(model)
    if first is None or int(first.kernel.shape[2]) != 3:
        name = "first conv" if first is None else first.name
        raise ValueError(f"model {model.name!r} has no RGB {name!r} layer; allowed: an RGB vgg_keras model.")
    preprocessing = preprocessing_layer_of(model)
    norm = _normalization_of(preprocessing)

    def clone(layer):
        if layer is preprocessing:
            return ChannelPreprocessing(norm.mode, channels, mean=getattr(layer, "mean", None), name=layer.name)
        return surgery.clone_layer(layer)

    inputs, outputs, pairs = surgery.rebuild_chain(
        model, input_shape=tuple(model.input_shape[1:-1]) + (channels,), clone=clone
    )
    surgery.copy_weights([(old, new) for old, new in pairs if old is not first])
    new_first = {old.name: new for old, new in pairs}[first.name]
    kernel, bias, *rest = first.get_weights()
    new_first.set_weights(list(adapt_first_conv(kernel, bias, channels, norm)) + rest)
    return keras.Model(inputs, outputs, name=model.name)
