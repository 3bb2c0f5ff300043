"""Perceptual (feature reconstruction) and style losses on a frozen VGG, and total variation.

Both losses are `keras.losses.Loss` subclasses written with `keras.ops` only (any Keras
backend), computed in float32 whatever the mixed-precision policy, serialisable through
`get_config` / `from_config` (and so inside a saved, compiled `.keras` model), and usable in
`model.compile(loss=...)` or a custom train step. `y_true` is the target image batch,
`y_pred` the model's; each returns one value per image, reduced by Keras (`reduction`).

Inputs are RGB images, channels-last, in `value_range` (default `(0, 255)`); the loss maps
them to `[0, 255]` and applies the normalisation the weights expect ("caffe" for the Keras
weights, "torch" for torchvision's), so a model may output `[0, 1]` or `[-1, 1]` images by
setting `value_range`. Values outside the range are not clipped nor rejected (a model in
training may overshoot): the same linear map applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from vgg_keras.perceptual import _backbone

__all__ = [
    "CONTENT_LAYERS",
    "STYLE_LAYERS",
    "TV_KINDS",
    "PerceptualLoss",
    "StyleLoss",
    "content_distance",
    "gram_matrix",
    "style_distance",
    "total_variation",
]

CONTENT_LAYERS = ("relu2_2",)  # Johnson et al. 2016, VGG16
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Gatys et al. 2016, VGG19
TV_KINDS = ("squared", "absolute")


def gram_matrix(features):
    """Normalised Gram matrices `F^T F / (C H W)` of features `(batch, H, W, C)`.

    Returns:
        `(batch, C, C)` float32: Johnson et al.'s normalised Gram matrix; Gatys et al.'s
        `G = F^T F` divided by N M (N = C channels, M = H W positions).
    """
    features = keras.ops.cast(features, "float32")
    channels = features.shape[-1]
    flat = keras.ops.reshape(features, (keras.ops.shape(features)[0], -1, channels))
    size = keras.ops.cast(keras.ops.shape(flat)[1] * channels, "float32")
    return keras.ops.matmul(keras.ops.transpose(flat, (0, 2, 1)), flat) / size


def content_distance(predicted, target):
    """Squared Euclidean feature distance over C x H x W (Johnson et al.): one value per image."""
    return keras.ops.mean(keras.ops.square(predicted - target), axis=(1, 2, 3))


def style_distance(predicted_gram, target_gram):
    """Gatys et al.'s per-layer style term `1 / (4 N^2 M^2) sum (G - A)^2` from normalised Grams.

    With `gram_matrix`'s `G / (N M)` this is `sum (G_hat - A_hat)^2 / 4`: one value per image.
    """
    return keras.ops.sum(keras.ops.square(predicted_gram - target_gram), axis=(1, 2)) / 4.0


def total_variation(images, kind: str = "squared", weight: float = 1.0):
    """Total variation of each image: `weight * sum` of neighbour differences, squared or absolute.

    Sums over vertical and horizontal neighbours and channels; "absolute" equals
    `tf.image.total_variation`. No normalisation by the image size.

    Args:
        images: `(batch, height, width, channels)`.
        kind: "squared" (sum of squared differences) or "absolute" (sum of absolute ones).
        weight: Multiplies the result.

    Returns:
        `(batch,)` float32.

    Raises:
        ValueError: For another `kind` or a non-4D input.
    """
    if kind not in TV_KINDS:
        raise ValueError(f"kind={kind!r}; allowed: {', '.join(map(repr, TV_KINDS))}.")
    if len(images.shape) != 4:
        raise ValueError(f"images has shape {tuple(images.shape)}; allowed: (batch, height, width, channels).")
    images = keras.ops.cast(images, "float32")
    penalty = keras.ops.square if kind == "squared" else keras.ops.abs
    vertical = penalty(images[:, 1:, :, :] - images[:, :-1, :, :])
    horizontal = penalty(images[:, :, 1:, :] - images[:, :, :-1, :])
    return weight * (keras.ops.sum(vertical, axis=(1, 2, 3)) + keras.ops.sum(horizontal, axis=(1, 2, 3)))


class _FeatureLoss(keras.losses.Loss):
    """A loss on the features of a frozen VGG, built once in `__init__`."""

    default_layers: tuple[str, ...] = ()
    default_arch = "vgg16"
    default_layer_weight = 1.0

    def __init__(
        self,
        layers: Sequence[str] | None = None,
        layer_weights: Sequence[float] | None = None,
        *,
        arch: str | None = None,
        weights: str | None = "imagenet",
        value_range: Sequence[float] = (0.0, 255.0),
        width_multiplier: float = 1.0,
        name: str | None = None,
        reduction: str = "sum_over_batch_size",
    ):
        super().__init__(name=name, reduction=reduction, dtype="float32")
        self.arch = arch or self.default_arch
        self.layers = tuple(layers) if layers is not None else self.default_layers
        self.keras_layers = _backbone.resolve_layers(self.layers, self.arch)
        self.layer_weights = _backbone.check_layer_weights(layer_weights, len(self.layers), self._default_weight())
        self.weights = None if weights is None else str(weights)
        self.value_range = _backbone.check_value_range(value_range)
        self.width_multiplier = float(width_multiplier)
        self.preprocessing = _backbone.preprocessing_mode(self.weights, self.arch)
        self.network = _backbone.feature_network(
            self.arch, self.weights, self.keras_layers, width_multiplier=self.width_multiplier
        )

    def _default_weight(self) -> float:
        return self.default_layer_weight

    def features(self, images) -> list:
        """The chosen layers' features of `images` (in `value_range`), float32, in layer order."""
        outputs = self.network(_backbone.normalize(images, self.value_range, self.preprocessing), training=False)
        return [outputs[name] for name in self.keras_layers]

    def _pair_features(self, y_true, y_pred) -> list[tuple[Any, Any]]:
        """(target, predicted) features per layer.

        Two passes rather than one over both batches: the target's needs no backward pass,
        which a concatenated batch would get in a training step (1.5x the VGG's cost).
        """
        _backbone.check_image_pair(y_true, y_pred, ("y_true", "y_pred"))
        targets = [keras.ops.stop_gradient(f) for f in self.features(y_true)]
        return list(zip(targets, self.features(y_pred)))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            layers=list(self.layers),
            layer_weights=list(self.layer_weights),
            arch=self.arch,
            weights=self.weights,
            value_range=list(self.value_range),
            width_multiplier=self.width_multiplier,
        )
        return config


@keras.saving.register_keras_serializable(package="vgg_keras")
class PerceptualLoss(_FeatureLoss):
    """Feature reconstruction loss (Johnson, Alahi & Fei-Fei 2016).

    Per image: `sum_l w_l * ||phi_l(y_pred) - phi_l(y_true)||^2 / (C_l H_l W_l)`, phi_l the
    ReLU output of layer l of a frozen VGG.

    Args:
        layers: ReLU outputs as relu names ("relu2_2") or Keras names ("block2_conv2");
            default `("relu2_2",)`.
        layer_weights: One weight per layer (default 1.0 each).
        arch: The VGG (default "vgg16"; any `vgg_keras.list_models()` name).
        weights: Its weights: a tag ("imagenet" default, "imagenet-torchvision", ...), a
            weights file, or None (random; for tests only, and re-drawn by `from_config`).
        value_range: `(low, high)` of the input images (default `(0, 255)`; e.g. `(0, 1)`).
        width_multiplier: Conv width multiplier of the VGG (1.0 for published weights).
        name: The loss's name.
        reduction: Keras reduction over the per-image values.

    Raises:
        ValueError: For a layer that is not a ReLU output of `arch` (the message lists the
            allowed names), bad `layer_weights` or `value_range`, or weights that do not fit.
    """

    default_layers = CONTENT_LAYERS

    def call(self, y_true, y_pred):
        total = 0.0
        for weight, (target, predicted) in zip(self.layer_weights, self._pair_features(y_true, y_pred)):
            total = total + weight * content_distance(predicted, target)
        return total


@keras.saving.register_keras_serializable(package="vgg_keras")
class StyleLoss(_FeatureLoss):
    """Style reconstruction loss on Gram matrices (Gatys, Ecker & Bethge 2016).

    Per image: `sum_l w_l * E_l` with Gatys' `E_l = 1 / (4 N_l^2 M_l^2) sum (G_l - A_l)^2`
    (G, A the Gram matrices of `y_pred` and `y_true`; see `gram_matrix`, `style_distance`).

    Args:
        layers: ReLU outputs (relu or Keras names); default relu1_1 ... relu5_1.
        layer_weights: One weight per layer (default 1 / number of layers: Gatys' w_l = 1/5).
        arch: The VGG (default "vgg19").
        weights, value_range, width_multiplier, name, reduction: As `PerceptualLoss`.

    Raises:
        ValueError: As `PerceptualLoss`.
    """

    default_layers = STYLE_LAYERS
    default_arch = "vgg19"

    def _default_weight(self) -> float:
        return 1.0 / len(self.layers)

    def call(self, y_true, y_pred):
        total = 0.0
        for weight, (target, predicted) in zip(self.layer_weights, self._pair_features(y_true, y_pred)):
            total = total + weight * style_distance(gram_matrix(predicted), gram_matrix(target))
        return total
