"""The three input normalisations of VGG weights: a leaf that imports nothing from vgg_keras.

`vgg_keras.preprocessing` applies them (NumPy, tensors, a Keras layer) and
`vgg_keras.weights` records which one each published file expects; both import this
module, and neither imports the other at module level. NumPy only, no TensorFlow, so
TensorFlow-free configs (`vgg_keras.training.config`) can use `IMAGENET_MEAN_RGB`.

- ``"caffe"``: RGB -> BGR, subtract the ImageNet mean BGR pixel, no scaling (the Keras /
  original Caffe weights).
- ``"torch"``: divide by 255, subtract ``[0.485, 0.456, 0.406]``, divide by
  ``[0.229, 0.224, 0.225]`` (the torchvision / timm weights).
- ``"mean_rgb"``: subtract the training set's mean RGB pixel (the paper, section 2.1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["IMAGENET_MEAN_RGB", "DEFAULT_MODE", "Normalization", "PREPROCESSING_MODES", "normalization"]

# The mean BGR pixel of the Caffe release, reordered to RGB.
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
DEFAULT_MODE = "caffe"


@dataclasses.dataclass(frozen=True)
class Normalization:
    """One normalisation of RGB pixels in [0, 255]: ``((flip?(x) / scale) - mean) / std``.

    Attributes:
        mode: "caffe", "torch" or "mean_rgb".
        bgr: Whether the channels are reversed (RGB -> BGR) first.
        scale: Divisor applied before the mean subtraction (None: none).
        mean: Per-channel mean, in the channel order after the optional flip.
        std: Per-channel divisor applied last (None: none).
    """

    mode: str
    bgr: bool
    scale: float | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float] | None


# Preprocessing mode name -> its normalisation (`vgg_keras.preprocessing.MODES` before 0.1).
PREPROCESSING_MODES: dict[str, Normalization] = {
    "caffe": Normalization("caffe", True, None, IMAGENET_MEAN_RGB[::-1], None),
    "torch": Normalization("torch", False, 255.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "mean_rgb": Normalization("mean_rgb", False, None, IMAGENET_MEAN_RGB, None),
}


def normalization(mode: str = DEFAULT_MODE, mean: Sequence[float] | None = None) -> Normalization:
    """The `Normalization` of a mode.

    Args:
        mode: "caffe", "torch" or "mean_rgb".
        mean: With "mean_rgb" only: the dataset's mean RGB pixel in [0, 255]
            (default: ImageNet's).

    Returns:
        A `Normalization`.

    Raises:
        ValueError: For an unknown mode, or a `mean` that is not three finite numbers or is
            given with another mode.
    """
    if mode not in PREPROCESSING_MODES:
        raise ValueError(f"mode={mode!r}; allowed: {', '.join(map(repr, PREPROCESSING_MODES))} (preprocessing modes).")
    if mean is None:
        return PREPROCESSING_MODES[mode]
    if mode != "mean_rgb":
        raise ValueError(f"mean={mean!r} is only allowed with mode='mean_rgb'; received mode={mode!r}.")
    values = tuple(float(m) for m in np.asarray(mean, dtype="float64").reshape(-1))
    if len(values) != 3 or not all(math.isfinite(m) for m in values):
        raise ValueError(f"mean={mean!r}; allowed: three finite numbers (the mean R, G, B in [0, 255]).")
    return dataclasses.replace(PREPROCESSING_MODES["mean_rgb"], mean=values)
