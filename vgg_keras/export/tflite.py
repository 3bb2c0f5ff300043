"""TFLite conversion in four modes, each checked against the Keras model.

Every TFLite model takes float32 RGB in [0, 255] (`[1, size, size, 3]`; int8 for
full-integer models, quantised with the input's scale and zero point) and returns class
probabilities `[1, classes]`, as the SavedModel does: normalisation is inside, and a model
built with `classifier_activation=None` (logits) gets a soft-max appended. `tflite_parity_report`
runs the TFLite interpreter and the Keras model on the same held-out images and reports how
far apart their probabilities are.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vgg_keras import models as models_lib
from vgg_keras import validation
from vgg_keras.export import parity as parity_lib
from vgg_keras.export import saved_model as saved_model_lib
from vgg_keras.export.parity import format_report  # noqa: F401  (tflite.format_report before it was shared)

__all__ = [
    "QUANTIZATIONS",
    "export_tflite",
    "representative_images",
    "tflite_parity_report",
    "run_tflite",
    "quantize",
    "dequantize",
]

QUANTIZATIONS = ("float32", "float16", "dynamic_int8", "int8")
DEFAULT_CALIBRATION_IMAGES = 100


def _check_image_size(model: keras.Model, image_size: int, height: int | None, width: int | None) -> None:
    """`image_size` must be the side of a fixed-size model, and at least the base size of any-size one."""
    validation.check_int("image_size", image_size)
    if height is not None and (height, width) != (image_size, image_size):
        raise ValueError(
            f"image_size={image_size} for model {model.name!r}, which takes {height}x{width} images; "
            "allowed: None or that size (models.to_fully_convolutional(model) runs at any size)."
        )
    minimum = models_lib.describe(model).base_size
    if height is None and image_size < minimum:
        raise ValueError(
            f"image_size={image_size} for model {model.name!r}; allowed: None or >= {minimum} (its head's base size)."
        )


def _input_shape(model: keras.Model, image_size: int | None, variable_size: bool) -> tuple:
    """The input shape (no batch axis) of `with_normalizer`'s model, in `model`'s data format."""
    channels_first = models_lib.describe(model).data_format == "channels_first"
    shape = tuple(model.input_shape[1:])
    channels, height, width = (shape[0], *shape[1:]) if channels_first else (shape[2], *shape[:2])
    if image_size is not None:
        _check_image_size(model, image_size, height, width)
    if image_size is not None or not variable_size:
        height = width = saved_model_lib.base_size(model) if image_size is None else image_size
    return (channels, height, width) if channels_first else (height, width, channels)


def with_normalizer(
    model: keras.Model, preprocessing=None, image_size: int | None = None, *, variable_size: bool = False
) -> keras.Model:
    """`model` from RGB [0, 255] to probabilities, as the SavedModel serves it.

    The normalisation is prepended when the model lacks it, and a soft-max appended when
    the model outputs logits (`classifier_activation=None`), so TFLite and ONNX files and
    their parity reports hold probabilities whatever the classifier's activation.

    Args:
        model: A vgg_keras classifier or a `.keras` path.
        preprocessing: As for `export_saved_model` (None for models that normalise their input).
        image_size: Input side (default: the head's base size, or see `variable_size`).
        variable_size: Without `image_size`, keep the model's own height and width (unknown
            for a conv head: any size) instead of the head's base size.

    Returns:
        A `keras.Model` with input `[None, image_size, image_size, channels]` (channels
        first for a channels-first model) and output probabilities `[None, classes]`.

    Raises:
        ValueError: For a model without its classifier, an `image_size` the model cannot
            take (not its fixed size, or below a conv head's base size), or a channels-first model with a
            normalisation to prepend (the preprocessing layers normalise channels-last images).
    """
    model = saved_model_lib.as_keras_model(model)
    normalizer = saved_model_lib.resolve_normalizer(model, preprocessing)
    description = models_lib.describe(model)
    if description.head is None:
        raise ValueError(
            f"model {model.name!r} has no classifier (include_top=False); the TFLite and ONNX exports "
            "return class probabilities: build it with include_top=True."
        )
    if normalizer is not None and description.data_format == "channels_first":
        raise ValueError(
            f"preprocessing={preprocessing!r} for channels_first model {model.name!r}: a prepended normalisation "
            "takes channels_last images; export models.to_data_format(model, 'channels_last'), or build the "
            "model with include_preprocessing=True."
        )
    shape = _input_shape(model, image_size, variable_size)
    logits = description.classifier_activation is None
    if normalizer is None and not logits and tuple(model.input_shape[1:]) == shape:
        return model
    inputs = keras.Input(shape, name="images")
    outputs = model(normalizer(inputs) if normalizer is not None else inputs)
    if logits:
        outputs = keras.layers.Softmax(name="probabilities")(outputs)
    return keras.Model(inputs, outputs, name=f"{model.name}_rgb")


def _as_batches(data, limit: int) -> Iterable[np.ndarray]:
    """Single images `[1, H, W, 3]` float32 from an array, a tf.data dataset or an iterable."""
    if isinstance(data, tf.data.Dataset):
        data = data.as_numpy_iterator()
    count = 0
    for item in data:
        images = item[0] if isinstance(item, (tuple, list)) else item
        images = np.asarray(images, dtype=np.float32)
        for image in images.reshape((-1,) + images.shape[-3:]):
            if count >= limit:
                return
            count += 1
            yield image[np.newaxis]


def representative_images(
    source, *, image_size: int, resize_size: int | None = None, num_images: int = DEFAULT_CALIBRATION_IMAGES
) -> np.ndarray:
    """Calibration / held-out images from an input pipeline source (centre crops, RGB [0, 255]).

    Args:
        source: A `vgg_keras.data.Source` (e.g. `data.get_source("builtin", "validation")`).
        image_size: Crop side (the model's input size).
        resize_size: Smallest side before the crop (default: the serving default, 256/224).
        num_images: How many images.

    Returns:
        float32 `[num_images, image_size, image_size, 3]` (fewer if the source is smaller).
    """
    from vgg_keras import data as data_lib
    from vgg_keras.export.signatures import default_resize_size

    scale = default_resize_size(image_size) if resize_size is None else resize_size
    dataset = data_lib.eval_dataset(source, batch_size=32, scale=scale, crop_size=image_size).unbatch()
    images = [image for image, _ in dataset.take(num_images).as_numpy_iterator()]
    if not images:
        raise ValueError(f"source {source!r} yielded no images.")
    return np.stack(images)


def _converter(rgb_model: keras.Model, workdir: str) -> tf.lite.TFLiteConverter:
    size = rgb_model.input_shape[1]
    path = os.path.join(workdir, "saved_model")
    # Through a SavedModel: its variables are frozen into the flatbuffer (a concrete
    # function of a Keras 3 model would keep them as unsupported resource variables).
    rgb_model.export(
        path, format="tf_saved_model", verbose=False, input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32)]
    )
    return tf.lite.TFLiteConverter.from_saved_model(path)


def _configure(converter, quantization: str, representative_dataset, calibration_images: int) -> None:
    if quantization == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if representative_dataset is None:
            raise ValueError(
                "quantization='int8' needs representative_dataset (images RGB [0, 255], e.g. "
                "representative_images(source, image_size=...)); allowed for the others: None."
            )
        converter.representative_dataset = lambda: (
            [x] for x in _as_batches(representative_dataset, calibration_images)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8


def export_tflite(
    model: keras.Model | str,
    output_path: str,
    *,
    quantization: str = "float32",
    representative_dataset=None,
    preprocessing: str | Callable | None = None,
    image_size: int | None = None,
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES,
    overwrite: bool = False,
) -> str:
    """Converts a classifier to a `.tflite` file taking RGB [0, 255] images.

    Args:
        model: A vgg_keras classifier or the path of a `.keras` file.
        output_path: The `.tflite` file to write.
        quantization: "float32"; "float16" (weights in float16); "dynamic_int8" (int8
            weights, float activations); "int8" (full-integer: int8 weights, activations,
            input and output, calibrated on `representative_dataset`).
        representative_dataset: For "int8": images `[N, size, size, 3]` RGB [0, 255] as an
            array, a `tf.data.Dataset` of images or (images, labels) batches, or an iterable.
        preprocessing: As for `export_saved_model`.
        image_size: Input side (default: the head's base size).
        calibration_images: How many representative images to use.
        overwrite: Replace an existing file.

    Returns:
        `output_path`. The model returns probabilities (see `with_normalizer`).

    Raises:
        ValueError: For an unknown quantization, "int8" without data, an existing file or a
            channels-first model (convert it with `models.to_data_format(model, "channels_last")`).
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization={quantization!r}; allowed: {', '.join(map(repr, QUANTIZATIONS))}.")
    if os.path.exists(output_path) and not overwrite:
        raise ValueError(f"output_path={output_path!r} exists; pass overwrite=True to replace it.")
    model = saved_model_lib.as_keras_model(model)
    if models_lib.describe(model).data_format == "channels_first":
        raise ValueError(
            f"model {model.name!r} is channels_first; TFLite models take channels_last images: export "
            "vgg_keras.models.to_data_format(model, 'channels_last') (same weights, same outputs)."
        )
    rgb_model = with_normalizer(model, preprocessing, image_size)
    with tempfile.TemporaryDirectory() as workdir:
        converter = _converter(rgb_model, workdir)
        _configure(converter, quantization, representative_dataset, calibration_images)
        flatbuffer = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    partial = f"{output_path}.partial"  # renamed into place: an interrupted write leaves no half file
    with open(partial, "wb") as f:
        f.write(flatbuffer)
    os.replace(partial, output_path)
    return output_path


# --------------------------------------------------------------------------- parity


def _interpreter(tflite_path: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice (LiteRT)
        interpreter = tf.lite.Interpreter(model_path=tflite_path)
    interpreter.allocate_tensors()
    return interpreter


def quantize(values: np.ndarray, detail: dict) -> np.ndarray:
    """Float RGB values -> a TFLite input tensor's dtype (int8 for full-integer files).

    Args:
        values: float32 array for the input tensor.
        detail: The interpreter's `get_input_details()` entry of that tensor.

    Returns:
        `values` in the tensor's dtype, quantised with its scale and zero point if it has one.
    """
    scale, zero_point = detail["quantization"]
    if not scale:
        return values.astype(detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(detail["dtype"])


def dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    """A TFLite output tensor's values -> float32, undoing its quantisation if it has one.

    Args:
        values: The array `get_tensor` returned.
        detail: The interpreter's `get_output_details()` entry of that tensor.

    Returns:
        float32 array.
    """
    scale, zero_point = detail["quantization"]
    values = values.astype(np.float32)
    return (values - zero_point) * scale if scale else values


def run_tflite(tflite_path: str, images: np.ndarray) -> tuple[np.ndarray, float]:
    """Runs a TFLite classifier image by image.

    Args:
        tflite_path: A file written by `export_tflite`.
        images: float32 `[N, size, size, 3]` RGB [0, 255].

    Returns:
        (probabilities float32 `[N, classes]` (every export holds its soft-max, also for
        a logits model), mean seconds per image of `invoke`).
    """
    interpreter = _interpreter(tflite_path)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs, seconds = [], 0.0
    for image in np.asarray(images, dtype=np.float32):
        interpreter.set_tensor(source["index"], quantize(image[np.newaxis], source))
        start = time.perf_counter()
        interpreter.invoke()
        seconds += time.perf_counter() - start
        outputs.append(dequantize(interpreter.get_tensor(target["index"]), target)[0])
    return np.stack(outputs), seconds / max(len(outputs), 1)


def tflite_parity_report(
    keras_model: keras.Model | str,
    tflite_path: str,
    images: np.ndarray,
    *,
    preprocessing: str | Callable | None = None,
    output_path: str | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Compares a TFLite model with the Keras model on held-out images.

    Args:
        keras_model: The model that was converted (or its `.keras` path).
        tflite_path: The converted file.
        images: float32 `[N, size, size, 3]` RGB [0, 255], not used for calibration.
        preprocessing: As given to `export_tflite`.
        output_path: Where to save the report as JSON (default: `<tflite_path>.parity.json`).
        verbose: Print the report.

    Returns:
        `{"tflite_path", "num_images", "max_abs_diff", "mean_abs_diff", "top1_agreement",
        "tflite_bytes", "keras_float32_bytes", "size_ratio", "tflite_ms_per_image",
        "report_path"}`; differences are of probabilities (the soft-max of a logits model's
        outputs, on both sides), latency is the interpreter's
        `invoke` per image (batch 1) on this machine.
    """
    images = np.asarray(images, dtype=np.float32)
    rgb_model = with_normalizer(keras_model, preprocessing, images.shape[1])
    expected = np.asarray(rgb_model.predict(images, batch_size=32, verbose=0), dtype=np.float32)
    actual, tflite_seconds = run_tflite(tflite_path, images)
    return parity_lib.parity_report(
        "tflite",
        tflite_path,
        expected,
        actual,
        tflite_seconds,
        keras_model=rgb_model,
        output_path=output_path,
        verbose=verbose,
    )
