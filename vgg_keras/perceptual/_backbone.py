"""The frozen VGG feature network shared by LPIPS, the losses and style transfer.

Layer names: every ReLU output of a VGG has two names, the perceptual-loss literature's
``relu{block}_{index}`` (relu2_2) and the Keras layer that produces it: ``block2_conv2``
(the ReLU is fused in the conv) or, for the BatchNorm variants, ``block2_relu2``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import keras

from vgg_keras import models as models_lib
from vgg_keras import preprocessing as preprocessing_lib
from vgg_keras import weights as weights_lib


def relu_layers(arch: str) -> dict[str, str]:
    """Every ReLU output of an architecture: `{relu name: Keras layer name}`, in order.

    Args:
        arch: A model name or paper letter ("vgg16", "E", "vgg19_bn").

    Returns:
        E.g. `{"relu1_1": "block1_conv1", ..., "relu5_3": "block5_conv3"}` for vgg16
        (`"block1_relu1"`, ... for the BatchNorm variants).
    """
    return models_lib.relu_layer_names(arch)


def resolve_layers(names: Sequence[str], arch: str, argument: str = "layers") -> tuple[str, ...]:
    """Keras layer names for ReLU outputs given as relu names or Keras names.

    Args:
        names: E.g. `["relu2_2"]` or `["block2_conv2"]` (both mean the same layer).
        arch: The architecture the names refer to.
        argument: The argument's name, for the error message.

    Returns:
        The Keras layer names, in the given order.

    Raises:
        ValueError: For an empty list, a repeated layer, or a name that is not a ReLU output
            of `arch` (the message lists the allowed names).
    """
    if isinstance(names, str) or not names:
        raise ValueError(f"{argument}={names!r}; allowed: a non-empty list of layer names, e.g. ['relu2_2'].")
    table = relu_layers(arch)
    by_keras = set(table.values())
    resolved = []
    for name in names:
        if name not in table and name not in by_keras:
            allowed = ", ".join(f"{relu} ({keras_name})" for relu, keras_name in table.items())
            raise ValueError(f"{argument} contains {name!r}, which is not a ReLU output of {arch}. Allowed: {allowed}.")
        resolved.append(table.get(name, name))
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"{argument}={list(names)!r} names one layer twice.")
    return tuple(resolved)


def check_layer_weights(layer_weights, count: int, default: float) -> tuple[float, ...]:
    """`layer_weights` as floats, one per layer (None: `default` for each).

    Raises:
        ValueError: For another length or a negative or non-finite value.
    """
    if layer_weights is None:
        return (float(default),) * count
    values = tuple(float(w) for w in layer_weights)
    if len(values) != count or not all(math.isfinite(w) and w >= 0 for w in values):
        raise ValueError(
            f"layer_weights={layer_weights!r}; allowed: None or {count} finite non-negative numbers, one per layer."
        )
    return values


def check_value_range(value_range) -> tuple[float, float]:
    """`value_range` as `(low, high)` floats.

    Raises:
        ValueError: Unless two finite numbers with low < high.
    """
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"value_range={value_range!r}; allowed: (low, high) with finite low < high, e.g. (0, 255).")
    return low, high


def rescale(images, value_range: tuple[float, float], target: tuple[float, float]):
    """Maps `images` linearly from `value_range` to `target` (float32)."""
    (low, high), (new_low, new_high) = value_range, target
    images = keras.ops.cast(images, "float32")
    if (low, high) == (new_low, new_high):
        return images
    factor = (new_high - new_low) / (high - low)
    return images * factor + (new_low - low * factor)


def check_image_pair(first, second, names: tuple[str, str]) -> None:
    """Both image batches are `(batch, height, width, 3)` of one shape, where the shapes are known.

    Raises:
        ValueError: For another rank, channel count or differing shapes.
    """
    shapes = [tuple(first.shape), tuple(second.shape)]
    for name, shape in zip(names, shapes):
        if len(shape) != 4 or shape[-1] not in (3, None):
            raise ValueError(f"{name} has shape {shape}; allowed: RGB image batches (batch, height, width, 3).")
    if any(a is not None and b is not None and a != b for a, b in zip(*shapes)):
        raise ValueError(f"{names[0]} and {names[1]} must have one shape; received {shapes[0]} and {shapes[1]}.")


@contextlib.contextmanager
def _float32_policy():
    """Builds layers in float32 whatever the global (mixed precision) policy."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def feature_network(arch: str, weights, layers: Sequence[str], *, width_multiplier: float = 1.0) -> keras.Model:
    """A frozen float32 VGG returning `{keras_layer_name: features}` for any input size.

    Args:
        arch: The architecture, e.g. "vgg19".
        weights: None (random), a tag (`vgg_keras.weights.TAGS`) or a weights file.
        layers: Keras layer names (see `resolve_layers`).
        width_multiplier: Conv width multiplier (for small test networks).

    Returns:
        A non-trainable `keras.Model` that stops at the deepest requested layer.
    """
    with _float32_policy():
        base = models_lib.build(
            arch,
            include_top=False,
            weights=weights,
            input_shape=(None, None, 3),
            width_multiplier=width_multiplier,
            # Loaded weights replace the initialisation: skip drawing 20M random numbers.
            kernel_initializer="glorot_uniform" if weights is None else "zeros",
        )
        network = models_lib.feature_extractor(base, list(layers))
    network.trainable = False
    return network


def preprocessing_mode(weights, arch: str) -> str:
    """The normalisation the weights expect ("caffe", "torch", "mean_rgb"; "caffe" for None)."""
    return weights_lib.preprocessing_mode_for(weights, arch)


def normalize(images, value_range: tuple[float, float], mode: str):
    """Images in `value_range` -> the weights' normalised input (float32)."""
    return preprocessing_lib.preprocess_input(rescale(images, value_range, (0.0, 255.0)), mode=mode)
