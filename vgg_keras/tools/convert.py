"""Converting any supported weights file to Keras files, checked against the source model.

`convert_weights` is what ``recipes/convert_weights.py`` runs: it builds the vgg_keras
model from the source file, writes a ``.weights.h5`` (recording the preprocessing the
weights expect) and a ``.keras`` model with that preprocessing baked in, and, when the
source framework is installed (PyTorch for torchvision / timm files, keras.applications
for legacy Keras files of vgg16 / vgg19), the largest output difference between the two
on the same random image, each side with its own preprocessing.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np

from vgg_keras import configs as configs_lib
from vgg_keras import models as models_lib
from vgg_keras import preprocessing as preprocessing_lib
from vgg_keras import weights as weights_lib
from vgg_keras.tools import reference

__all__ = ["ConversionResult", "convert_weights"]


@dataclasses.dataclass(frozen=True)
class ConversionResult:
    """What `convert_weights` wrote and measured.

    Attributes:
        weights_path: The Keras 3 `.weights.h5` file.
        model_path: The `.keras` model (takes RGB in [0, 255]).
        preprocessing: The preprocessing mode of the weights.
        reference: What the output was compared with, or None.
        max_abs_diff: Largest absolute output difference against the reference, or None.
    """

    weights_path: str
    model_path: str
    preprocessing: str
    reference: str | None
    max_abs_diff: float | None


def _image(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (1, size, size, 3)).astype("float32")


def _in_format(images: np.ndarray, data_format: str) -> np.ndarray:
    """NHWC reference images in the order a model of `data_format` takes."""
    return np.transpose(images, (0, 3, 1, 2)) if data_format == "channels_first" else images


def _activate(logits: np.ndarray, activation) -> np.ndarray:
    return keras.ops.convert_to_numpy(keras.activations.get(activation)(logits)) if activation else logits


def _torch_reference(path: str, arch: str, image: np.ndarray):
    """(name, logits) of the source state dict run in PyTorch, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    state = weights_lib.read_state_dict(path, weights_lib.sniff_format(path))
    timm = any(k.startswith("pre_logits.") for k in state)
    first = state["features.0.weight"].shape[0]
    layout = weights_lib.torchvision_layout(arch)
    last = state[f"features.{[i for n, i in layout.items() if '_conv' in n][-1]}.weight"].shape[0]
    fc1 = state["pre_logits.fc1.weight" if timm else "classifier.0.weight"]
    classes, fc_units = state["head.fc.weight" if timm else "classifier.6.weight"].shape
    pool = fc1.shape[-1] if timm else int(round((fc1.shape[1] / last) ** 0.5))
    module = reference.torch_model(
        arch, width_multiplier=first / 64, fc_units=fc_units, classes=classes, pool_size=pool, timm_head=timm
    )
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, strict=False)
    return "PyTorch (timm layout)" if timm else "PyTorch (torchvision layout)", reference.torch_forward(module, image)


def _keras_reference(path: str, arch: str, image: np.ndarray):
    builders = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19}
    if arch not in builders:
        return None
    model = builders[arch](weights=path, classifier_activation=None)  # in Keras' image data format
    image = _in_format(image, keras.config.image_data_format())
    return f"keras.applications.{arch.upper()}", keras.ops.convert_to_numpy(
        model(preprocessing_lib.preprocess_input(image, mode="caffe"), training=False)
    )


def _reference(path: str, arch: str, image: np.ndarray, full_size: bool):
    kind = weights_lib.sniff_format(path)
    if kind in ("torch", "safetensors"):
        return _torch_reference(path, arch, image)
    if kind == "keras_legacy_h5" and full_size:  # keras.applications builds only the full model
        return _keras_reference(path, arch, image)
    return None


def convert_weights(
    source: str,
    arch: str,
    output_prefix: str,
    *,
    head: str = "dense",
    classifier_activation: str | None = "softmax",
    preprocessing: str | None = None,
    compare: bool = True,
    seed: int = 0,
    **build_kwargs,
) -> ConversionResult:
    """Converts a weights file (any format `vgg_keras.build` reads) to Keras files.

    Args:
        source: The source weights file.
        arch: The model name, e.g. "vgg16_bn" or "D".
        output_prefix: Output path without suffix; writes `<prefix>.weights.h5` and `<prefix>.keras`.
        head: "dense" or "conv".
        classifier_activation: Activation of the saved model's top layer ("softmax" or None).
        preprocessing: The weights' mode; default: detected from the file.
        compare: Whether to compare with the source model when its framework is installed.
        seed: Seed of the random comparison image.
        **build_kwargs: Further `vgg_keras.build` arguments for non-standard files
            (`width_multiplier`, `fc_units`, `classes`, `base_size`).

    Returns:
        A `ConversionResult`.

    Raises:
        ValueError: If the file cannot be read or does not fit `arch` (see `vgg_keras.build`).
    """
    name = configs_lib.canonical_name(*configs_lib.resolve_model_name(arch))
    mode = preprocessing or weights_lib.preprocessing_mode_for(source, name)
    model = models_lib.build(
        name,
        weights=source,
        head=head,
        classifier_activation=classifier_activation,
        include_preprocessing=True,
        preprocessing=mode,
        **build_kwargs,
    )
    directory = os.path.dirname(os.path.abspath(output_prefix))
    os.makedirs(directory, exist_ok=True)
    weights_path = weights_lib.save_weights(model, f"{output_prefix}.weights.h5", preprocessing=mode)
    model_path = f"{output_prefix}.keras"
    model.save(model_path)
    found = None
    if compare:
        image = _image(build_kwargs.get("base_size", models_lib.DEFAULT_SIZE), seed)
        found = _reference(os.fspath(source), name, image, full_size=not build_kwargs)
    if found is None:
        return ConversionResult(weights_path, model_path, mode, None, None)
    name_of_reference, logits = found
    ours = keras.ops.convert_to_numpy(model(_in_format(image, models_lib.data_format_of(model)), training=False))
    diff = float(np.max(np.abs(ours - _activate(logits, classifier_activation))))
    return ConversionResult(weights_path, model_path, mode, name_of_reference, diff)
