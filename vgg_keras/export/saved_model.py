"""`export_saved_model`: a vgg_keras classifier as a TF Serving SavedModel version."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import tensorflow as tf
from absl import logging as absl_logging

from vgg_keras import models as models_lib
from vgg_keras import preprocessing as preprocessing_lib
from vgg_keras._deprecation import deprecated_attributes
from vgg_keras.export import repository
from vgg_keras.export import signatures as signatures_lib

__all__ = [
    "export_saved_model",
    "load_for_export",
    "as_keras_model",
    "resolve_normalizer",
    "run_resize_size",
    "EXPORT_INFO",
]

EXPORT_INFO = "vgg_keras_export.json"
RUN_CONFIG = "config.json"  # what vgg_keras.training writes in a run's workdir
PREPROCESSING_LAYER = models_lib.PREPROCESSING_LAYER  # in EXPORT_INFO: "the model normalises itself"
NO_PREPROCESSING = "none"
DEFAULT_TOP_K = 5


def as_keras_model(model: keras.Model | str | os.PathLike) -> keras.Model:
    """`model` itself, or the model saved in the `.keras` file it names.

    (Named `load_model` before; `vgg_keras.evaluation.load_model` is the other one: it also
    builds a model from a name.)

    Raises:
        TypeError: If `model` is neither a `keras.Model` nor a path.
        ValueError: If the path is not an existing `.keras` file.
    """
    if isinstance(model, keras.Model):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model={model!r}; allowed: a keras.Model or the path of a .keras file.")
    path = os.fspath(model)
    if not (path.endswith(".keras") and os.path.isfile(path)):
        raise ValueError(f"model={path!r} is not an existing .keras file.")
    return keras.saving.load_model(path, compile=False)


def load_for_export(spec: str, preprocessing: str | None = None, **build_kwargs) -> tuple[keras.Model, str | None]:
    """A model named on a command line, and the `preprocessing` its exports then take.

    A model file (`.keras` / `.h5`) is loaded as saved and `preprocessing` passes through
    (needed when the file has no preprocessing layer). A model given by name ("vgg16",
    "A", ...) is built with its normalisation as a layer: the mode `preprocessing` names,
    else the one its weights expect (`weights.preprocessing_mode_for`: caffe for
    `weights="imagenet"` on vgg16, the mode a `save_weights` file records), so the exports
    need nothing more; "none" builds it without one.

    Args:
        spec: A model file or a name `vgg_keras.build` accepts.
        preprocessing: None, a mode of `vgg_keras.preprocessing`, or "none".
        **build_kwargs: `vgg_keras.build` arguments for a name (weights, classes, widths, ...).

    Returns:
        `(model, preprocessing)` for `export_saved_model` / `tflite.export_tflite`.

    Raises:
        ValueError: For an unknown model name, missing file or bad argument.
    """
    from vgg_keras.evaluation import forward  # pylint: disable=import-outside-toplevel

    if spec.endswith((".keras", ".h5")):
        return forward.load_model(spec), preprocessing
    raw = preprocessing == NO_PREPROCESSING
    model = forward.load_model(
        spec, include_preprocessing=not raw, preprocessing=None if raw else preprocessing, **build_kwargs
    )
    return model, preprocessing if raw else None


def has_preprocessing_layer(model: keras.Model) -> bool:
    """Whether normalisation is baked into the model (`vgg_keras.describe(model).preprocessing`)."""
    return models_lib.describe(model).preprocessing is not None


def resolve_normalizer(model: keras.Model, preprocessing: str | Callable | None) -> Callable | None:
    """The normalisation to apply before `model`, or None when the model does it itself.

    Args:
        model: The classifier.
        preprocessing: None (only for models that normalise their input), a mode of
            `vgg_keras.preprocessing` ("caffe", "torch", "mean_rgb"), "none" (the model was
            trained on raw RGB in [0, 255]), or a layer / callable such as
            `vgg_keras.preprocessing.preprocessing_layer("mean_rgb", mean=...)`.

    Returns:
        A callable on float32 RGB [0, 255] images, or None.

    Raises:
        ValueError: If the model normalises itself and `preprocessing` is given too (the
            images would be normalised twice), or neither normalises, or a bad mode.
        TypeError: If `preprocessing` is of another type.
    """
    if has_preprocessing_layer(model):
        if preprocessing not in (None, NO_PREPROCESSING):
            raise ValueError(
                f"preprocessing={preprocessing!r}, but model {model.name!r} already normalises its input "
                f"({models_lib.describe(model).preprocessing!r}); allowed: None."
            )
        return None
    if preprocessing is None:
        raise ValueError(
            f"preprocessing=None, but model {model.name!r} has no normalisation layer; pass the "
            f"normalisation it was trained with: one of {sorted(preprocessing_lib.PREPROCESSING_MODES)}, "
            f"{NO_PREPROCESSING!r}, or a preprocessing layer."
        )
    if preprocessing == NO_PREPROCESSING:
        return None
    if isinstance(preprocessing, str):
        return preprocessing_lib.preprocessing_layer(preprocessing, name="serving_preprocessing")
    if callable(preprocessing):
        return preprocessing
    raise TypeError(f"preprocessing={preprocessing!r}; allowed: None, a mode string, 'none' or a callable.")


def _require_classifier(model: keras.Model) -> int:
    """The number of classes; the model must be a vgg_keras classifier ([B, classes] output)."""
    if models_lib.describe(model).head is None or len(model.output_shape) != 2:
        raise ValueError(
            f"Model {model.name!r} is not a vgg_keras classifier (needs its classifier and output "
            f"[batch, classes]; output shape {model.output_shape}); build it with include_top=True."
        )
    return int(model.output_shape[-1])


def base_size(model: keras.Model) -> int:
    """The input size the classifier head is built for (the dense head's fixed input side).

    Raises:
        ValueError: If the model has no classifier or a dense head on a non-square input.
    """
    description = models_lib.describe(model)
    if description.head is None:
        raise ValueError(f"Model {model.name!r} has no classifier; build it with include_top=True.")
    return description.base_size


def run_resize_size(model_path: str | os.PathLike, image_size: int | None = None) -> int | None:
    """The serving resize of a model a training run saved: the run's validation scale Q.

    The one rule both export routes follow: the quick start's export (right after
    training) and `recipes/export.py` on the saved `.keras` file resize to the
    `data.eval_scale` the run validated at, read from the workdir's `config.json` beside
    the file, so the same model is served the same crops. Other models (no run config,
    or exported at another crop size than the run trained with) get the default,
    256/224 of the crop.

    Args:
        model_path: The model file, e.g. `runs/quickstart/model.keras` (a model name such
            as "vgg16" has no run: None).
        image_size: The export's crop side (None: the model's base size, the run's crop).

    Returns:
        The run's `data.eval_scale`, or None when the default rule applies.
    """
    model_path = os.fspath(model_path)
    config_path = os.path.join(os.path.dirname(os.path.abspath(model_path)), RUN_CONFIG)
    if not (os.path.isfile(model_path) and os.path.isfile(config_path)):
        return None
    with open(config_path, encoding="utf-8") as f:
        run_data = json.load(f).get("data", {})
    if "eval_scale" not in run_data or image_size not in (None, run_data.get("crop_size")):
        return None
    return int(run_data["eval_scale"])


def _check_size(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r}; allowed: an int >= {minimum}.")


def _serving_spec(model, mode, image_size, resize_size, top_k, class_names) -> signatures_lib.ServingSpec:
    if mode not in signatures_lib.SERVING_MODES:
        raise ValueError(f"mode={mode!r}; allowed: {', '.join(map(repr, signatures_lib.SERVING_MODES))}.")
    classes = _require_classifier(model)
    description = models_lib.describe(model)
    head, base = description.head, description.base_size
    if mode == "dense" and image_size is not None:
        raise ValueError(f"image_size={image_size!r} with mode='dense' (no crop); allowed: None.")
    if image_size is None:
        image_size = base
    _check_size("image_size", image_size, base)
    if head == "dense" and image_size != base:
        raise ValueError(f"image_size={image_size}; the model's dense head takes exactly {base}x{base} crops.")
    resize_size = signatures_lib.default_resize_size(image_size) if resize_size is None else resize_size
    _check_size("resize_size", resize_size, image_size)
    top_k = min(DEFAULT_TOP_K, classes) if top_k is None else top_k
    _check_size("top_k", top_k, 1)
    if top_k > classes:
        raise ValueError(f"top_k={top_k}; allowed: 1 to the number of classes ({classes}).")
    names = (
        _default_class_names(classes) if class_names is None else signatures_lib.check_class_names(class_names, classes)
    )
    return signatures_lib.ServingSpec(mode, image_size, resize_size, top_k, names)


def _default_class_names(classes: int) -> tuple[str, ...]:
    if classes == preprocessing_lib.NUM_CLASSES:
        return tuple(names.split(",")[0] for _, names in preprocessing_lib.imagenet_classes())
    return tuple(str(index) for index in range(classes))


@contextlib.contextmanager
def _quiet_save_logs() -> Iterator[None]:
    """Hides the INFO lines that `tf.saved_model.save` logs; warnings and errors still show.

    Hidden: the temporary version directory's assets and fingerprint, sharding times, and the
    model's captured variables `input_1 ... input_N` renamed inside the graph (the signatures'
    own inputs keep their documented names).
    """
    # absl's verbosity through its own API: the save itself reads and restores it.
    absl_verbosity, tf_level = absl_logging.get_verbosity(), tf.get_logger().level
    absl_logging.set_verbosity(min(absl_verbosity, absl_logging.WARNING))
    tf.get_logger().setLevel(max(tf.get_logger().getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        absl_logging.set_verbosity(absl_verbosity)
        tf.get_logger().setLevel(tf_level)


def _write_info(directory: str, spec: signatures_lib.ServingSpec, model: keras.Model, preprocessing, names) -> None:
    info = dict(
        model=model.name,
        mode=spec.mode,
        image_size=spec.image_size,
        resize_size=spec.resize_size,
        top_k=spec.top_k,
        preprocessing=PREPROCESSING_LAYER if has_preprocessing_layer(model) else repr(preprocessing),
        class_names=list(spec.class_names),
        signatures=list(names),
        outputs=list(signatures_lib.OUTPUT_NAMES),
    )
    with open(os.path.join(directory, EXPORT_INFO), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)


def export_saved_model(
    model: keras.Model | str,
    export_root: str = "savedmodels",
    model_name: str | None = None,
    version: int | None = None,
    *,
    mode: str = "center",
    image_size: int | None = None,
    resize_size: int | None = None,
    top_k: int | None = None,
    class_names: Sequence[str] | None = None,
    preprocessing: str | Callable | None = None,
    include_float_signature: bool = True,
    update_config: bool = True,
    base_path_prefix: str = repository.DEFAULT_BASE_PATH,
) -> str:
    """Exports a classifier as `<export_root>/<model_name>/<version>/`, ready for TF Serving.

    Signatures (inputs -> outputs, see `savedmodels/README.md`):
      - `serving_default`: `images` tf.string `[B]`, encoded JPEG/PNG/GIF/BMP (REST: `{"b64": ...}`);
      - `predict_image_tensor`: `images` uint8 `[B, H, W, 3]`, any size;
      - `predict_float` (optional): `inputs` float32, exactly what the Keras model takes.
    Each returns `probabilities` float32 `[B, classes]`, `top_k_indices` int32 `[B, k]`,
    `top_k_scores` float32 `[B, k]` and `top_k_classes` string `[B, k]`. Images are resized
    and cropped with the evaluation pipeline's ops and normalised inside the graph.

    Args:
        model: A vgg_keras classifier or the path of a `.keras` file.
        export_root: The TF Serving model repository.
        model_name: Directory and serving name (default: the model's name).
        version: Version number; None takes the next free one. Never overwritten.
        mode: "center" (smallest side to `resize_size`, centre `image_size` crop) or "dense"
            (smallest side to `resize_size`, whole image through the fully-convolutional form).
        image_size: Crop side in center mode (default: the head's base size).
        resize_size: Smallest side after rescaling (default: 256/224 of the crop, e.g. 256 for
            224; `run_resize_size` gives a trained run's validation scale instead).
        top_k: Size of the top-k outputs (default: 5, or the number of classes if fewer).
        class_names: One name per class (default: ImageNet names for 1000 classes, else indices).
        preprocessing: Normalisation for models without a "preprocessing" layer (see
            `resolve_normalizer`); must be None for models that have one.
        include_float_signature: Whether to add `predict_float`.
        update_config: Add the model to `<export_root>/models.config` and write the batching
            parameters file if missing.
        base_path_prefix: Where the server mounts `export_root` (for models.config).

    Returns:
        The version directory.

    Raises:
        ValueError: For bad arguments (each names the argument and what is allowed).
        FileExistsError: If the version directory exists.
    """
    model = as_keras_model(model)
    if mode == "dense":
        model = models_lib.to_fully_convolutional(model)
    spec = _serving_spec(model, mode, image_size, resize_size, top_k, class_names)
    normalizer = resolve_normalizer(model, preprocessing)
    model_name = repository.check_model_name(model.name if model_name is None else model_name)
    module = signatures_lib.ServingModule(model, spec, normalizer)
    functions = module.signatures(include_float_signature)

    def write(directory: str) -> None:
        with _quiet_save_logs():
            tf.saved_model.save(module, directory, signatures=functions)
        _write_info(directory, spec, model, preprocessing, functions)

    version_dir = repository.write_version(os.path.join(export_root, model_name), version, write)
    if update_config:
        repository.update_models_config(export_root, model_name, base_path_prefix=base_path_prefix)
        repository.write_batching_parameters(export_root)
    return version_dir


__getattr__ = deprecated_attributes(__name__, {"load_model": (__name__, "as_keras_model")})
