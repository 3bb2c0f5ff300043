"""Weights file formats: sniffing, and reading each into `{keras_layer_name: [arrays]}`."""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
from collections.abc import Mapping

import h5py
import keras
import numpy as np

from vgg_keras.weights.registry import TAGS
from vgg_keras.weights.torch_layout import from_torch_layout

PREPROCESSING_ATTR = "vgg_keras_preprocessing"
# The classifier's layers, in order: a Keras 3 file names them dense, dense_1, dense_2.
TOP_LAYERS = ("fc1", "fc2", "predictions")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_FORMAT_MODES = {"keras_legacy_h5": "caffe", "torch": "torch", "safetensors": "torch"}
_SUPPORTED = (
    "Keras 3 .weights.h5 / .keras, legacy Keras HDF5 (keras-applications layout), "
    "torchvision .pth state dicts, .safetensors with torchvision or timm keys"
)


def checked_path(path) -> str:
    """`path` as a string, checked to be an existing file.

    Raises:
        ValueError: Naming `weights=` and what is allowed.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise ValueError(
            f"weights={path!r} is neither None, a known tag ({', '.join(TAGS)}) nor an existing weights file."
        )
    return os.fspath(path)


def _is_legacy_h5(h5: h5py.Group) -> bool:
    """keras-applications files (weights only, or a whole legacy model under model_weights)."""
    return "layer_names" in h5.attrs or "model_weights" in h5


def sniff_format(path: str) -> str:
    """The weights file's format from its first bytes: keras3_h5, keras_legacy_h5, keras_zip, torch, safetensors."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(_HDF5_MAGIC):
        try:
            with h5py.File(path, "r") as h5:
                return "keras_legacy_h5" if _is_legacy_h5(h5) else "keras3_h5"
        except OSError as error:
            raise ValueError(f"Cannot read weights file {path}: {error}. It may be truncated or corrupt.") from error
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                return "keras_zip" if "model.weights.h5" in archive.namelist() else "torch"
        except zipfile.BadZipFile as error:
            raise ValueError(f"Cannot read weights file {path}: {error}. It may be truncated or corrupt.") from error
    if head[:1] == b"\x80":  # legacy (non-zip) torch.save pickle
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < os.path.getsize(path):
        return "safetensors"
    raise ValueError(
        f"Unrecognised or corrupt weights file {path} ({os.path.getsize(path)} bytes). Supported: {_SUPPORTED}."
    )


def _recorded_mode(path: str) -> str | None:
    """The preprocessing mode `save_weights` recorded in a Keras 3 file, if any."""
    with h5py.File(path, "r") as h5:
        mode = h5.attrs.get(PREPROCESSING_ATTR)
    return mode.decode() if isinstance(mode, bytes) else mode


def file_mode(path: str) -> str | None:
    """The preprocessing mode a weights file implies by its format, or records (None: neither).

    Args:
        path: An existing weights file.

    Returns:
        "caffe" for legacy Keras HDF5, "torch" for torchvision / timm files, the mode
        `save_weights` recorded in a Keras 3 file, or None.
    """
    kind = sniff_format(path)
    return _FORMAT_MODES.get(kind) or (_recorded_mode(path) if kind == "keras3_h5" else None)


def _decode(values) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _read_legacy_h5(h5: h5py.Group) -> dict[str, list[np.ndarray]]:
    """keras-applications layout: root attr layer_names; per layer group attr weight_names."""
    if "layer_names" not in h5.attrs:
        h5 = h5["model_weights"]
    tensors = {}
    for name in _decode(h5.attrs["layer_names"]):
        group = h5[name]
        values = [np.asarray(group[w]) for w in _decode(group.attrs["weight_names"])]
        if values:
            tensors[name] = values
    return tensors


_AUTO_NAME = re.compile(r"^(.*?)(?:_(\d+))?$")


def _keras3_groups(h5: h5py.Group) -> dict[str, list[tuple[str, list[np.ndarray]]]]:
    """Keras 3 files name layers by class and creation order (conv2d, conv2d_1, ...)."""
    by_class: dict[str, list[tuple[int, str, list[np.ndarray]]]] = {}
    for key, group in h5["layers"].items():
        variables = group.get("vars", {})
        values = [np.asarray(variables[str(i)]) for i in range(len(variables))]
        if values:
            match = _AUTO_NAME.match(key)
            by_class.setdefault(match.group(1), []).append((int(match.group(2) or 0), key, values))
    return {cls: [(key, values) for _, key, values in sorted(items)] for cls, items in by_class.items()}


def _read_keras3_h5(h5: h5py.Group, model: keras.Model) -> dict[str, list[np.ndarray]]:
    """Maps a Keras 3 file's layers to vgg_keras names by their order (as Keras itself does)."""
    if "layers" not in h5:
        raise ValueError(f"Keras 3 weights file without a 'layers' group; top-level keys: {list(h5)}.")
    groups = _keras3_groups(h5)
    body = [layer.name for layer in model.layers if re.match(r"^block\d+_conv\d+$", layer.name)]
    bns = [layer.name for layer in model.layers if re.match(r"^block\d+_bn\d+$", layer.name)]
    convs, dense = groups.pop("conv2d", []), groups.pop("dense", [])
    if not dense and len(convs) == len(body) + len(TOP_LAYERS):  # conv head: fc layers are the last convs
        convs, dense = convs[: len(body)], convs[len(body) :]
    tensors = {}
    for names, items in ((body, convs), (bns, groups.pop("batch_normalization", [])), (TOP_LAYERS, dense)):
        for index, (key, values) in enumerate(items):
            tensors[names[index] if index < len(names) else key] = values
    for items in groups.values():
        tensors.update(dict(items))
    return tensors


def _read_hdf5(source, model: keras.Model) -> dict[str, list[np.ndarray]]:
    with h5py.File(source, "r") as h5:
        if _is_legacy_h5(h5):
            return _read_legacy_h5(h5)
        return _read_keras3_h5(h5, model)


def read_state_dict(path: str, kind: str) -> dict[str, np.ndarray]:
    """A PyTorch state dict (`kind` "torch") or safetensors file as NumPy arrays (float32 for torch)."""
    if kind == "safetensors":
        from safetensors.numpy import load_file

        return load_file(path)
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"Reading the PyTorch file {path} needs PyTorch: pip install 'vgg_keras[torch]' "
            "(or convert it to .safetensors, which needs only the safetensors package)."
        ) from error
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of tensors.")
    return {
        k.removeprefix("module."): v.detach().cpu().float().numpy() for k, v in state.items() if hasattr(v, "numpy")
    }


def read_weights(path, model: keras.Model, arch: str) -> dict[str, list[np.ndarray]]:
    """Reads any supported weights file into `{keras_layer_name: [arrays]}` (Keras order).

    Args:
        path: The weights file.
        model: The model the weights are for (Keras 3 files map layers by structure).
        arch: The model's common name (torchvision layouts index modules by it).

    Returns:
        Arrays per Keras layer name; fc kernels may be in dense or conv form.

    Raises:
        ValueError: For a missing, unrecognised, truncated or corrupt file, or a state
            dict whose keys do not fit `arch`.
        ImportError: For a .pth file without PyTorch installed.
    """
    path = checked_path(path)
    kind = sniff_format(path)
    try:
        if kind in ("keras3_h5", "keras_legacy_h5"):
            return _read_hdf5(path, model)
        if kind == "keras_zip":
            with zipfile.ZipFile(path) as archive:
                return _read_hdf5(io.BytesIO(archive.read("model.weights.h5")), model)
        state = read_state_dict(path, kind)
    except (ImportError, ValueError):
        raise
    except Exception as error:  # h5py / zip / safetensors / torch parse errors of damaged files
        raise ValueError(
            f"Cannot read weights file {path} ({kind}): {error}. It may be truncated or corrupt."
        ) from error
    return from_torch_layout(state, arch, source=f"Weights file {path}")
