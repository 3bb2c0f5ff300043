"""Assigning arrays to a model's layers by name, all or nothing, across the dense and conv heads."""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np

from vgg_keras.validation import first_few
from vgg_keras.weights.formats import TOP_LAYERS


def _shapes(values) -> str:
    return ", ".join(str(tuple(v.shape)) for v in values)


def _fits(name: str, values: list[np.ndarray], expected: list[tuple]) -> bool:
    if len(values) != len(expected):
        return False
    if name in TOP_LAYERS:  # dense <-> conv form: same numbers, row-major (h, w, c) order
        return all(v.size == int(np.prod(e)) for v, e in zip(values, expected))
    return all(tuple(v.shape) == e for v, e in zip(values, expected))


def assign_weights(model: keras.Model, tensors: Mapping[str, list[np.ndarray]], source: str = "weights") -> None:
    """Sets every weighted layer of `model` from `tensors`, by layer name, all or nothing.

    fc kernels are reshaped between the dense and conv heads; the classifier of a file is
    skipped for a model without one (`include_top=False`).

    Args:
        model: A vgg_keras model.
        tensors: `{layer_name: [arrays in Keras variable order]}`.
        source: Names the origin in error messages.

    Raises:
        ValueError: If layers are missing, left over or of other shapes; the message lists
            the first mismatching names and shapes. The model is left unchanged.
    """
    targets = {layer.name: layer for layer in model.layers if layer.weights}
    skip = set() if TOP_LAYERS[-1] in targets else set(TOP_LAYERS)
    problems = [
        f"{n} in file {_shapes(v)} but not in the model"
        for n, v in tensors.items()
        if n not in targets and n not in skip
    ]
    updates = []
    for name, layer in targets.items():
        expected = [tuple(w.shape) for w in layer.weights]
        values = tensors.get(name)
        if values is None:
            problems.append(f"{name} missing from the file (model: {_shapes(layer.weights)})")
        elif not _fits(name, values, expected):
            problems.append(f"{name}: file {_shapes(values)}, model {_shapes(layer.weights)}")
        else:
            updates.append((layer, [np.reshape(v, e) for v, e in zip(values, expected)]))
    if problems:
        raise ValueError(
            f"{source} does not fit model {model.name!r} ({len(problems)} mismatches): {first_few(problems)}."
        )
    for layer, values in updates:
        layer.set_weights(values)
