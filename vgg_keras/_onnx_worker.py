"""Converts a saved `.keras` classifier to ONNX on Keras' torch backend (run as a subprocess).

`export_onnx(..., converter="torch")` runs `python -m vgg_keras._onnx_worker` with
`KERAS_BACKEND=torch`, so that torch never loads into the caller's TensorFlow process. The
conversion traces the model once (TorchScript, `torch.onnx.export(dynamo=False)`) on a zero
image of `sample_shape`, keeping the axes named in `dynamic_axes` symbolic; it holds about 5x
the weights in memory where tf2onnx needs 40-50x. The caller names the tensors, checks and
renames the file (one post-processing path for both converters).

Usage: `python -m vgg_keras._onnx_worker MODEL.keras OUTPUT.onnx SPEC_JSON`, where the
JSON holds `sample_shape` (list of ints), `dynamic_axes` ({axis index: name}) and `opset`
(int or null).
"""

from __future__ import annotations

import json
import sys
import warnings
import zipfile


def convert(
    model_path: str, output_path: str, sample_shape: list[int], dynamic_axes: dict[int, str], opset: int | None
) -> None:
    """Traces the model at `model_path` into an ONNX file with input `images`, output `probabilities`.

    Args:
        model_path: A `.keras` file (vgg_keras classes are registered on import).
        output_path: The `.onnx` file to write.
        sample_shape: The traced input's shape (a size the model takes).
        dynamic_axes: Input axes left symbolic, index -> name.
        opset: ONNX opset version (None: torch's default).

    Raises:
        RuntimeError: If Keras' backend is not torch (the environment variable was not set).
    """
    import keras  # pylint: disable=import-outside-toplevel
    import torch  # pylint: disable=import-outside-toplevel

    import vgg_keras.models  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import  (registers the classes)

    if keras.backend.backend() != "torch":
        raise RuntimeError(f"run with KERAS_BACKEND=torch (Keras' backend is {keras.backend.backend()!r}).")
    model = keras.saving.load_model(model_path, compile=False)
    model.eval()
    sample = torch.zeros(sample_shape, dtype=torch.float32)
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns for every Python int/bool it reads (shape checks, constants) and that
        # the TorchScript exporter is legacy; the tests check the trace at other sizes and batches.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (sample,),
            output_path,
            input_names=["images"],
            output_names=["probabilities"],
            dynamic_axes={"images": dynamic_axes, "probabilities": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )


def main(argv: list[str]) -> None:
    """Command-line entry: `MODEL.keras OUTPUT.onnx SPEC_JSON`."""
    if len(argv) != 3:
        raise SystemExit(f"usage: python -m vgg_keras._onnx_worker MODEL.keras OUTPUT.onnx SPEC_JSON; got {argv}")
    model_path, output_path, spec = argv
    if not zipfile.is_zipfile(model_path):  # checked before the imports (~15 s on a loaded CPU)
        raise SystemExit(f"model_path={model_path!r} is not a .keras file (a zip archive).")
    spec = json.loads(spec)
    convert(
        model_path,
        output_path,
        spec["sample_shape"],
        {int(axis): name for axis, name in spec["dynamic_axes"].items()},
        spec["opset"],
    )


if __name__ == "__main__":
    # KERAS_BACKEND=torch and VGG_KERAS_DEFER_KERAS=1 come from the environment (export_onnx sets
    # both): `python -m` imports the vgg_keras package, and with it Keras, before this line.
    main(sys.argv[1:])
