"""The entry points: check, load and save weights, and the preprocessing a weights argument means."""

from __future__ import annotations

import os

import h5py
import keras

from vgg_keras import channels as channels_lib
from vgg_keras import normalization as normalization_lib
from vgg_keras.weights import registry
from vgg_keras.weights.assign import assign_weights
from vgg_keras.weights.download import fetch
from vgg_keras.weights.formats import PREPROCESSING_ATTR, checked_path, file_mode, read_weights
from vgg_keras.weights.registry import PretrainedWeights, is_pretrained_tag, resolve_weights


def preprocessing_mode_for(weights, arch: str | None = None, default: str = normalization_lib.DEFAULT_MODE) -> str:
    """The preprocessing mode ("caffe", "torch", "mean_rgb") that `weights` expect.

    Args:
        weights: None, a `PretrainedWeights` entry (it names its mode, no `arch` needed), a
            tag from `TAGS`, or a weights file path.
        arch: The model name; needed for "imagenet", whose source depends on it.
        default: The mode for None, and for files that do not record one (Keras 3 files
            not written by `save_weights`).

    Returns:
        The mode name.

    Raises:
        ValueError: For an unknown tag or a missing `arch` where it decides.
    """
    if weights is None:
        return default
    if isinstance(weights, PretrainedWeights):
        return weights.preprocessing
    if is_pretrained_tag(weights):
        modes = {entry.preprocessing for entry in registry.REGISTRY if weights in (entry.tag, "imagenet")}
        if arch is None and len(modes) > 1:
            raise ValueError(
                f"weights={weights!r} means a different source per architecture; pass arch= (e.g. 'vgg16') "
                "or a source tag such as 'imagenet-keras' or 'imagenet-torchvision'."
            )
        return resolve_weights(weights, arch).preprocessing if arch is not None else modes.pop()
    return file_mode(checked_path(weights)) or default


def check_weights_argument(weights, arch: str) -> None:
    """Fails fast, before a model is built, on weights that cannot be loaded.

    Args:
        weights: The `weights` argument of a builder.
        arch: The model's common name, e.g. "vgg11_lrn".

    Raises:
        ValueError: For an unknown tag or a missing file (the message lists the tags), or an
            architecture without published weights.
    """
    if weights is None:
        return
    if is_pretrained_tag(weights):
        resolve_weights(weights, arch)
    else:
        checked_path(weights)


def load_weights(
    model: keras.Model,
    weights: str | os.PathLike | None,
    *,
    arch: str,
    include_top: bool,
    base_url: str | None = None,
    cache: str | None = None,
    progress: bool = True,
) -> None:
    """Loads published weights (by tag) or a weights file (by path) into `model`.

    Args:
        model: The freshly built model.
        weights: None (keep the initialisation), a tag from `TAGS`, or a path (see the
            module docstring for the formats).
        arch: The model's common name, e.g. "vgg16_bn".
        include_top: Whether the model has its classifier (picks the published file).
        base_url: Download base URL override (see `fetch`).
        cache: Cache directory override (see `fetch`).
        progress: Whether to show a download progress bar.

    Raises:
        ValueError: For unknown weights (the message lists the tags), architectures
            without published weights, unreadable files, or weights that do not fit.
        WeightsDownloadError: If a download fails.
    """
    if weights is None:
        return
    if is_pretrained_tag(weights):
        entry = resolve_weights(weights, arch)
        path = fetch(entry.file_for(include_top), base_url=base_url, cache=cache, progress=progress)
    else:
        path = checked_path(weights)
    tensors = read_weights(path, model, arch)
    # RGB weights into a model of another channel count: timm's in_chans adaptation (vgg_keras.channels).
    tensors = channels_lib.adapt_tensors(tensors, model, preprocessing_mode_for(weights, arch))
    assign_weights(model, tensors, source=f"Weights file {path}")


def save_weights(model: keras.Model, path: str, *, preprocessing: str) -> str:
    """Writes a Keras 3 `.weights.h5` that records the preprocessing its weights expect.

    Args:
        model: The model.
        path: Output path ending in ".weights.h5".
        preprocessing: The mode ("caffe", "torch", "mean_rgb"), read back by
            `preprocessing_mode_for(path)`.

    Returns:
        `path`.

    Raises:
        ValueError: For an unknown mode or a path not ending in ".weights.h5".
    """
    normalization_lib.normalization(preprocessing)
    if not str(path).endswith(".weights.h5"):
        raise ValueError(f"path={path!r}; allowed: a file name ending in '.weights.h5'.")
    model.save_weights(path)
    with h5py.File(path, "a") as h5:
        h5.attrs[PREPROCESSING_ATTR] = preprocessing
    return path
