"""ONNX export of any vgg_keras classifier, checked against Keras through ONNX Runtime.

The ONNX model has the TFLite export's contract: one float32 input `images`, RGB in
[0, 255] (normalisation inside), and one output, class probabilities `[batch, classes]`
(a soft-max appended to a logits model). The batch axis is dynamic; so are the height and
width of a conv-head model (`head="conv"`, built without a fixed input size), which then
runs at any size >= its base size, as the paper's dense evaluation does. A channels-first
model keeps its layout (input `[batch, 3, height, width]`).

Two converters (`converter=`): "torch" saves the model to a temporary `.keras` file and
converts it in a subprocess on Keras' torch backend (`vgg_keras._onnx_worker`; torch never
loads into this TensorFlow process), holding ~5x the weights in memory (full VGG16 at 224:
3.0 GB there, 4.8 GB with the caller); "tf2onnx" is Keras' `model.export(format="onnx")` on
the TensorFlow backend in this process, ~40-50x the weights (full VGG16 does not fit in
24 GB). "auto" (default) picks "torch" when torch is installed. Both need the "onnx" extra,
`pip install "vgg_keras[onnx]"` (onnx, onnxruntime, tf2onnx), the torch route also
`pip install "vgg_keras[torch]"`. Importing this module needs none of them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np

from vgg_keras import models as models_lib
from vgg_keras import validation
from vgg_keras.export import parity as parity_lib
from vgg_keras.export import saved_model as saved_model_lib
from vgg_keras.export import tflite as tflite_lib

__all__ = [
    "CONVERTERS",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "export_onnx",
    "onnx_parity_report",
    "require_packages",
    "resolve_converter",
    "run_onnx",
]

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
EXPORT_PACKAGES = ("onnx", "tf2onnx", "onnxruntime")
INSTALL_HINT = 'pip install "vgg_keras[onnx]"'
CONVERTERS = ("auto", "torch", "tf2onnx")
# What each converter needs in the environment, and how to install it.
CONVERTER_PACKAGES = {
    "tf2onnx": (EXPORT_PACKAGES, INSTALL_HINT),
    "torch": (("onnx", "onnxruntime", "torch"), 'pip install "vgg_keras[onnx,torch]"'),
}
WORKER_MODULE = "vgg_keras._onnx_worker"
STDERR_TAIL = 3000  # characters of the worker's stderr quoted in the error


def require_packages(
    packages: tuple[str, ...] = EXPORT_PACKAGES, purpose: str = "ONNX export", install_hint: str = INSTALL_HINT
) -> None:
    """Checks that the optional ONNX packages are installed, before any work is done.

    They are looked up, not imported (torch must not load into a TensorFlow process).

    Args:
        packages: Module names to look up.
        purpose: What needs them (for the message).
        install_hint: The install command (for the message).

    Raises:
        ImportError: Naming every missing package and the install command.
    """
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"{purpose} needs {', '.join(packages)}; missing: {', '.join(missing)}. Install them with {install_hint}."
        )


def resolve_converter(converter: str) -> str:
    """The converter `export_onnx` uses: "auto" is "torch" when torch is installed, else "tf2onnx".

    Args:
        converter: One of `CONVERTERS`.

    Returns:
        "torch" or "tf2onnx".

    Raises:
        ValueError: For another name.
    """
    if converter not in CONVERTERS:
        raise ValueError(f"converter={converter!r}; allowed: {', '.join(map(repr, CONVERTERS))}.")
    if converter == "auto":
        return "torch" if importlib.util.find_spec("torch") is not None else "tf2onnx"
    return converter


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


def _axis_names(data_format: str) -> tuple[str, ...]:
    if data_format == "channels_first":
        return ("batch", "channels", "height", "width")
    return ("batch", "height", "width", "channels")


def _name_tensors(path: str, data_format: str) -> None:
    """Names the output `probabilities` and the unknown axes (batch, height, width), in place; checks the model.

    tf2onnx calls them `Identity:0` and `unk__N`; ONNX Runtime users read these names.
    """
    import onnx  # pylint: disable=import-outside-toplevel

    model = onnx.load(path)
    output = model.graph.output[0]
    for node in model.graph.node:
        node.output[:] = [OUTPUT_NAME if name == output.name else name for name in node.output]
    output.name = OUTPUT_NAME
    for axis, dim in zip(_axis_names(data_format), model.graph.input[0].type.tensor_type.shape.dim):
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
    converter: str = "auto",
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
        converter: "torch" (a subprocess on Keras' torch backend, ~5x the weights in memory),
            "tf2onnx" (in this process, ~40-50x) or "auto" ("torch" when torch is installed).

    Returns:
        `output_path`. Input `images` float32 `[batch, height, width, 3]` (channels first
        for a channels-first model); output `probabilities` `[batch, classes]`.

    Raises:
        ImportError: If a package the converter needs is missing (before any work).
        ValueError: For an existing file without `overwrite`, a model that is not a
            vgg_keras classifier, a bad `preprocessing`, an `image_size` the model cannot
            take, an `opset` below 1, an unknown `converter`, or (torch) a model that
            cannot be saved as `.keras`.
        RuntimeError: If the torch converter's subprocess fails (its stderr's tail quoted).
    """
    converter = resolve_converter(converter)
    packages, install_hint = CONVERTER_PACKAGES[converter]
    require_packages(packages, f"ONNX export (converter={converter!r})", install_hint)
    if opset is not None:
        validation.check_int("opset", opset)
    if os.path.exists(output_path) and not overwrite:
        raise ValueError(f"output_path={output_path!r} exists; pass overwrite=True to replace it.")
    model = saved_model_lib.as_keras_model(model)
    description = models_lib.describe(model)
    rgb_model = tflite_lib.with_normalizer(model, preprocessing, image_size, variable_size=True)
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    partial = f"{output_path}.partial"  # renamed into place: an interrupted export leaves no half file
    try:
        if converter == "torch":
            _convert_with_torch(rgb_model, partial, description.base_size, description.data_format, opset)
        else:
            _convert_with_tf2onnx(rgb_model, partial, opset)
        _name_tensors(partial, description.data_format)
        os.replace(partial, output_path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return output_path


def _convert_with_tf2onnx(rgb_model: keras.Model, path: str, opset: int | None) -> None:
    """Keras' own ONNX export on the TensorFlow backend (tf2onnx), in this process."""
    spec = keras.InputSpec(shape=(None, *rgb_model.input_shape[1:]), dtype="float32", name=INPUT_NAME)
    with _quiet_converter():
        rgb_model.export(path, format="onnx", verbose=False, input_signature=[spec], opset_version=opset)


def _convert_with_torch(rgb_model: keras.Model, path: str, base_size: int, data_format: str, opset: int | None) -> None:
    """Saves `rgb_model` as `.keras` and converts it in a subprocess on Keras' torch backend.

    The unknown axes stay symbolic (batch, and height and width of a conv head); the trace
    runs on one image of the head's base size where the model's own size is unknown.
    """
    shape = (None, *rgb_model.input_shape[1:])
    names = _axis_names(data_format)
    spec = {
        "sample_shape": [1 if axis == 0 else base_size if size is None else size for axis, size in enumerate(shape)],
        "dynamic_axes": {str(axis): names[axis] for axis, size in enumerate(shape) if size is None},
        "opset": opset,
    }
    with tempfile.TemporaryDirectory(prefix="vgg_keras_onnx_") as directory:
        model_path = os.path.join(directory, "model.keras")
        try:
            rgb_model.save(model_path)
        except Exception as error:  # e.g. a plain Python `preprocessing` function Keras cannot serialise
            raise ValueError(
                f"converter='torch' converts a saved copy of model {rgb_model.name!r}, and saving it failed "
                f"({type(error).__name__}: {error}); pass a preprocessing layer or mode, or converter='tf2onnx'."
            ) from error
        run_worker(model_path, path, spec)


def run_worker(model_path: str, output_path: str, spec: dict[str, Any]) -> None:
    """Runs `vgg_keras._onnx_worker` with `KERAS_BACKEND=torch` on this vgg_keras.

    Args:
        model_path: The `.keras` file to convert.
        output_path: The `.onnx` file to write.
        spec: The worker's `sample_shape`, `dynamic_axes` and `opset`.

    Raises:
        RuntimeError: If the worker fails or writes no file, with its exit code and the
            tail of its stderr.
    """
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    # VGG_KERAS_DEFER_KERAS: `python -m` imports the vgg_keras package first; Keras loads only once
    # the worker has checked its arguments.
    env = dict(os.environ, KERAS_BACKEND="torch", PYTHONPATH=python_path, VGG_KERAS_DEFER_KERAS="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = [sys.executable, "-m", WORKER_MODULE, model_path, output_path, json.dumps(spec)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0 or not os.path.exists(output_path):
        raise RuntimeError(
            f"the torch ONNX converter ({WORKER_MODULE}) failed with exit code {result.returncode} on "
            f"{model_path!r}; the end of its stderr:\n{result.stderr[-STDERR_TAIL:]}"
        )


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
        batch = images[start : start + batch_size]
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
    return parity_lib.parity_report(
        "onnx", onnx_path, expected, actual, seconds, keras_model=rgb_model, output_path=output_path, verbose=verbose
    )
