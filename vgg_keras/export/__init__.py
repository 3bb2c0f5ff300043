"""Export for TF Serving (SavedModel with preprocessing in the graph), TFLite and ONNX.

- `export_saved_model`: `<root>/<model>/<version>/` with image-bytes, uint8-tensor and raw
  float signatures, plus `models.config` and the batching parameters file.
- `export_tflite` / `tflite_parity_report`: float32, float16, dynamic-range int8 and
  full-integer int8 models, each checked against the Keras model.
- `export_onnx` / `onnx_parity_report` / `run_onnx`: ONNX (dense or conv head, dynamic
  batch and, for a conv head, dynamic height and width), checked through ONNX Runtime; needs
  `pip install "vgg_keras[onnx]"` only when called (and torch for the low-memory converter).
- `client`: TF Serving REST and gRPC request builders and response parsers.
"""

from vgg_keras.export.onnx import export_onnx, onnx_parity_report, run_onnx
from vgg_keras.export.repository import (
    batching_parameters_text,
    list_versions,
    next_version,
    update_models_config,
    write_batching_parameters,
)
from vgg_keras.export.saved_model import export_saved_model, resolve_normalizer
from vgg_keras.export.signatures import (
    INPUT_FLOAT,
    INPUT_IMAGES,
    OUTPUT_NAMES,
    SIGNATURE_BYTES,
    SIGNATURE_FLOAT,
    SIGNATURE_TENSOR,
)
from vgg_keras.export.tflite import QUANTIZATIONS, export_tflite, representative_images, tflite_parity_report

__all__ = [
    "INPUT_FLOAT",
    "INPUT_IMAGES",
    "OUTPUT_NAMES",
    "QUANTIZATIONS",
    "SIGNATURE_BYTES",
    "SIGNATURE_FLOAT",
    "SIGNATURE_TENSOR",
    "batching_parameters_text",
    "export_onnx",
    "export_saved_model",
    "export_tflite",
    "list_versions",
    "next_version",
    "onnx_parity_report",
    "representative_images",
    "resolve_normalizer",
    "run_onnx",
    "tflite_parity_report",
    "update_models_config",
    "write_batching_parameters",
]
