"""The parity report of an exported classifier (TFLite, ONNX) against its Keras model.

Both `tflite.tflite_parity_report` and `onnx.onnx_parity_report` run the exported file and
the Keras model on the same held-out images and hand the two outputs to `parity_report`,
so their reports have the same fields (prefixed by the format: `tflite_path` / `onnx_path`,
...), the same JSON file beside the export and the same printed form (`format_report`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import keras
import numpy as np

__all__ = ["format_report", "keras_float32_bytes", "parity_report"]


def keras_float32_bytes(model: keras.Model) -> int:
    """The size of `model`'s weights stored as float32."""
    return int(sum(np.prod(w.shape) for w in model.weights)) * 4


def _write_json(report: dict[str, Any], path: str) -> None:
    partial = f"{path}.partial"  # renamed into place: an interrupted write leaves no half file
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    os.replace(partial, path)


def parity_report(
    kind: str,
    exported_path: str,
    expected: np.ndarray,
    actual: np.ndarray,
    seconds_per_image: float,
    *,
    keras_model: keras.Model,
    output_path: str | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Compares an exported model's outputs with the Keras model's and saves the comparison.

    Args:
        kind: The format, prefix of the format-specific fields ("tflite", "onnx").
        exported_path: The exported file.
        expected: The Keras model's probabilities `[N, classes]`.
        actual: The exported model's probabilities on the same images.
        seconds_per_image: The exported model's mean latency per image (batch 1).
        keras_model: The Keras model that produced `expected` (for its float32 size).
        output_path: Where to save the report as JSON (default: `<exported_path>.parity.json`).
        verbose: Print the report.

    Returns:
        `{"<kind>_path", "num_images", "max_abs_diff", "mean_abs_diff", "top1_agreement",
        "<kind>_bytes", "keras_float32_bytes", "<kind>_ms_per_image", "size_ratio", "report_path"}`.

    Raises:
        ValueError: If `expected` and `actual` differ in shape.
    """
    expected, actual = np.asarray(expected, np.float32), np.asarray(actual, np.float32)
    if expected.shape != actual.shape:
        raise ValueError(f"{kind} outputs {actual.shape} and Keras outputs {expected.shape} differ in shape.")
    difference = np.abs(actual - expected)
    report = {
        f"{kind}_path": os.path.abspath(exported_path),
        "num_images": len(expected),
        "max_abs_diff": float(difference.max()),
        "mean_abs_diff": float(difference.mean()),
        "top1_agreement": float(np.mean(actual.argmax(-1) == expected.argmax(-1))),
        f"{kind}_bytes": os.path.getsize(exported_path),
        "keras_float32_bytes": keras_float32_bytes(keras_model),
        f"{kind}_ms_per_image": 1000 * seconds_per_image,
    }
    report["size_ratio"] = report[f"{kind}_bytes"] / report["keras_float32_bytes"]
    report["report_path"] = output_path or f"{exported_path}.parity.json"
    _write_json(report, report["report_path"])
    if verbose:
        print(format_report(report))
    return report


def format_report(report: dict[str, Any]) -> str:
    """One readable line per field of a parity report."""
    return "\n".join(
        f"{key:>20}: {value:.6g}" if isinstance(value, float) else f"{key:>20}: {value}"
        for key, value in report.items()
    )
