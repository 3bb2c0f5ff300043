"""Weights for vgg_keras models: local files now; the published-weights registry builds on this."""

from __future__ import annotations

import os

import keras

__all__ = ["is_pretrained_tag", "load_weights"]


def is_pretrained_tag(weights) -> bool:
    """Whether `weights` names published ImageNet weights (rather than None or a path)."""
    return isinstance(weights, str) and weights.startswith("imagenet") and not os.path.exists(weights)


def load_weights(model: keras.Model, weights: str | None, *, arch: str, include_top: bool) -> None:
    """Loads `weights` into `model` (None leaves the initialisation).

    Args:
        model: The freshly built model.
        weights: None or the path to a Keras weights file.
        arch: The model's common name, e.g. "vgg16_bn".
        include_top: Whether the model has its classifier.

    Raises:
        ValueError: If `weights` is neither None nor an existing file.
    """
    del arch, include_top  # Used by the published-weights loaders.
    if weights is None:
        return
    if not (isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights)):
        raise ValueError(f"weights={weights!r} is neither None nor an existing weights file.")
    model.load_weights(weights)
