"""ONNX export of any vgg_keras classifier, checked against Keras through ONNX Runtime.

The ONNX model has the TFLite export's contract: one float32 input `images`, RGB in
[0, 255] (normalisation inside), and one output, class probabilities `[batch, classes]`
(a soft-max appended to a logits model). The batch axis is dynamic; so are the height and
width of a conv-head model (`head="conv"`, built without a fixed input size), which then
runs at any size >= its base size, as the paper's dense evaluation does. A channels-first
model keeps its layout (input `[batch, 3, height, width]`).

Conversion is Keras' own `model.export(format="onnx")` (tf2onnx on the TensorFlow
backend); it needs the "onnx" extra: `pip install "vgg_keras[onnx]"` (onnx, onnxruntime,
tf2onnx). Importing this module needs none of them.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
from typing import Any, Callable, Iterator

import keras
import numpy as np

from vgg_keras import models as models_lib
from vgg_keras import validation
from vgg_keras.export import parity as parity_lib
from vgg_keras.export import saved_model as saved_model_lib
from vgg_keras.export import tflite as tflite_lib

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "export_onnx", "onnx_parity_report", "require_packages", "run_onnx"]

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
EXPORT_PACKAGES = ("onnx", "tf2onnx", "onnxruntime")
INSTALL_HINT = 'pip install "vgg_keras[onnx]"'


def require_packages(packages: tuple[str, ...] = EXPORT_PACKAGES, purpose: str = "ONNX export") -> None:
    """Checks that the optional ONNX packages import, before any work is done.

    Args:
        packages: Module names to import.
        purpose: What needs them (for the message).

    Raises:
        ImportError: Naming every missing package and the install command.
    """
    missing = []
    for name in packages:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(
            f"{purpose} needs {', '.join(packages)}; missing: {', '.join(missing)}. Install them with {INSTALL_HINT}."
        )


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
    """tf2onnx logs every optimisation pass at INFO; keep its warnings and errors only."""
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _name_tensors(path: str, data_format: str) -> None:
    """Names the output `probabilities` and the unknown axes (batch, height, width), in place.

    tf2onnx calls them `Identity:0` and `unk__N`; ONNX Runtime users read these names.
    """
    import onnx  # pylint: disable=import-outside-toplevel

    model = onnx.load(path)
    output = model.graph.output[0]
    for node in model.graph.node:
        node.output[:] = [OUTPUT_NAME if name == output.name else name for name in node.output]
    output.name = OUTPUT_NAME
    axes = ("batch", "channels", "height", "width") if data_format == "channels_first" else (
        "batch", "height", "width", "channels")
    for axis, dim in zip(axes, model.graph.input[0].type.tensor_type.shape.dim):
        if not dim.HasField("dim_value"):
            dim.dim_param = axis
    output.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(model)
    onnx.save(model, path)


def export_onnx(
    model: keras.Model | str,
    output_path: str,
    *,
    preprocessing: str | Callable | None = None,
    image_size: int | None = None,
    opset: int | None = None,
    overwrite: bool = False,
) -> str:
    """Converts a classifier to an `.onnx` file taking RGB [0, 255] images.

    Args:
        model: A vgg_keras classifier (dense or conv head, any variant) or a `.keras` path.
        output_path: The `.onnx` file to write.
        preprocessing: As for `export_saved_model` (None for models that normalise their input).
        image_size: Fix the input side. Default: the model's own (the dense head's base
            size; any height and width for a conv head built without a fixed size).
        opset: ONNX opset version (default: the converter's).
        overwrite: Replace an existing file.

    Returns:
        `output_path`. Input `images` float32 `[batch, height, width, 3]` (channels first
        for a channels-first model); output `probabilities` `[batch, classes]`.

    Raises:
        ImportError: If onnx, tf2onnx or onnxruntime is missing (before any work).
        ValueError: For an existing file without `overwrite`, a model that is not a
            vgg_keras classifier, a bad `preprocessing`, an `image_size` the model cannot
            take or an `opset` below 1.
    """
    require_packages()
    if opset is not None:
        validation.check_int("opset", opset)
    if os.path.exists(output_path) and not overwrite:
        raise ValueError(f"output_path={output_path!r} exists; pass overwrite=True to replace it.")
    model = saved_model_lib.as_keras_model(model)
    rgb_model = tflite_lib.with_normalizer(model, preprocessing, image_size, variable_size=True)
    spec = keras.InputSpec(shape=(None, *rgb_model.input_shape[1:]), dtype="float32", name=INPUT_NAME)
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    partial = f"{output_path}.partial"  # renamed into place: an interrupted export leaves no half file
    try:
        with _quiet_converter():
            rgb_model.export(partial, format="onnx", verbose=False, input_signature=[spec], opset_version=opset)
        _name_tensors(partial, models_lib.describe(model).data_format)
        os.replace(partial, output_path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return output_path


def _session(onnx_path: str):
    import onnxruntime  # pylint: disable=import-outside-toplevel

    return onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])


def run_onnx(onnx_path: str, images: np.ndarray, *, batch_size: int = 1) -> tuple[np.ndarray, float]:
    """Runs an ONNX classifier through ONNX Runtime (CPU), `batch_size` images per call.

    Args:
        onnx_path: A file written by `export_onnx`.
        images: float32 RGB [0, 255] in the model's layout: `[N, height, width, 3]`
            (`[N, 3, height, width]` for a channels-first model).
        batch_size: Images per `run` call (1: the latency of single requests).

    Returns:
        (probabilities float32 `[N, classes]`, mean seconds per image spent in `run`).

    Raises:
        ImportError: If onnxruntime is missing.
        ValueError: For a `batch_size` below 1.
    """
    validation.check_int("batch_size", batch_size)
    require_packages(("onnxruntime",), "run_onnx")
    session = _session(onnx_path)
    name = session.get_inputs()[0].name
    images = np.asarray(images, dtype=np.float32)
    outputs, seconds = [], 0.0
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        began = time.perf_counter()
        outputs.append(session.run(None, {name: batch})[0])
        seconds += time.perf_counter() - began
    return np.concatenate(outputs), seconds / max(len(images), 1)


def onnx_parity_report(
    keras_model: keras.Model | str,
    onnx_path: str,
    images: np.ndarray,
    *,
    preprocessing: str | Callable | None = None,
    output_path: str | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Compares an ONNX model (through ONNX Runtime) with the Keras model on held-out images.

    Args:
        keras_model: The model that was converted (or its `.keras` path).
        onnx_path: The converted file.
        images: float32 `[N, height, width, 3]` RGB [0, 255] (transposed here for a
            channels-first model), at a size the ONNX model accepts.
        preprocessing: As given to `export_onnx`.
        output_path: Where to save the report as JSON (default: `<onnx_path>.parity.json`).
        verbose: Print the report.

    Returns:
        The fields of `tflite_parity_report` with `onnx_` in place of `tflite_`: `{"onnx_path",
        "num_images", "max_abs_diff", "mean_abs_diff", "top1_agreement", "onnx_bytes",
        "keras_float32_bytes", "onnx_ms_per_image", "size_ratio", "report_path"}`;
        differences are of probabilities, latency is ONNX Runtime's per image (batch 1).
    """
    require_packages(("onnxruntime",), "onnx_parity_report")
    keras_model = saved_model_lib.as_keras_model(keras_model)
    images = np.asarray(images, dtype=np.float32)
    if models_lib.describe(keras_model).data_format == "channels_first":
        images = images.transpose(0, 3, 1, 2)
    rgb_model = tflite_lib.with_normalizer(keras_model, preprocessing, variable_size=True)
    expected = np.asarray(rgb_model.predict(images, batch_size=32, verbose=0), dtype=np.float32)
    actual, seconds = run_onnx(onnx_path, images)
    return parity_lib.parity_report("onnx", onnx_path, expected, actual, seconds, keras_model=rgb_model,
                                    output_path=output_path, verbose=verbose)
