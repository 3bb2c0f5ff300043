"""Published VGG weights: the registry (as data), download/verify/cache, and loaders.

Tags accepted as ``weights=``:

- ``"imagenet"``: the default source of the architecture: Keras (the original Caffe
  weights) for vgg16 / vgg19, torchvision for vgg11, vgg13 and every ``_bn`` variant.
- ``"imagenet-keras"``: the keras-applications files (vgg16, vgg19; caffe preprocessing).
- ``"imagenet-torchvision"``: the torchvision files (vgg11 ... vgg19, with and without BN;
  torch preprocessing).

A path accepts Keras 3 ``.weights.h5`` and ``.keras`` files, legacy Keras HDF5 weight files
in the keras-applications layout (``layer_names`` / ``weight_names`` attributes),
torchvision ``.pth`` state dicts (needs PyTorch) and ``.safetensors`` files with torchvision
keys or timm keys (``pre_logits.fc1`` ..., ``head.fc``). Every format is read into one
form, ``{keras_layer_name: [arrays in Keras variable order]}``, and assigned by layer name,
so every file loads into the dense or the conv head and into ``include_top=False`` models.

Downloads are cached in ``$VGG_KERAS_CACHE`` if set, else ``$KERAS_HOME/models``
(default ``~/.keras/models``, shared with keras.applications), verified by hash, written to
a temporary file and renamed only once the hash matches. ``$VGG_KERAS_WEIGHTS_URL`` (or
``base_url=``) replaces the download base URL, e.g. for a local mirror.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import io
import os
import re
import struct
import tempfile
import urllib.error
import urllib.request
import zipfile
from typing import Iterable, Mapping

import h5py
import keras
import numpy as np

from vgg_keras import configs as configs_lib
from vgg_keras import normalization as normalization_lib

__all__ = [
    "check_weights_argument",
    "WeightsFile",
    "PretrainedWeights",
    "REGISTRY",
    "TAGS",
    "WeightsDownloadError",
    "list_weights",
    "is_pretrained_tag",
    "resolve_weights",
    "preprocessing_mode_for",
    "cache_dir",
    "fetch",
    "read_weights",
    "read_state_dict",
    "sniff_format",
    "assign_weights",
    "load_weights",
    "save_weights",
]

CACHE_ENV = "VGG_KERAS_CACHE"
BASE_URL_ENV = "VGG_KERAS_WEIGHTS_URL"
PREPROCESSING_ATTR = "vgg_keras_preprocessing"
HASH_KINDS = ("md5", "sha256", "sha256_prefix")
TOP_LAYERS = ("fc1", "fc2", "predictions")
_MAX_LISTED = 10
_KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
_TORCHVISION_URL = "https://download.pytorch.org/models/"
_CAFFE_LICENSE = "CC BY 4.0 (original VGG release by the Oxford VGG group; Keras port)"
_TORCHVISION_LICENSE = "BSD-3-Clause (torchvision)"
_NO_WEIGHTS = ("vgg11_lrn", "vgg16_c")


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """One downloadable file.

    Attributes:
        url: Where the file is published.
        file_hash: Its hash (hex), or the hash's first digits for "sha256_prefix".
        hash_kind: "md5", "sha256" or "sha256_prefix" (torchvision's file-name convention).
        include_top: Whether the file holds the classifier.
    """

    url: str
    file_hash: str
    hash_kind: str
    include_top: bool = True

    def __post_init__(self):
        if self.hash_kind not in HASH_KINDS:
            raise ValueError(f"hash_kind={self.hash_kind!r}; allowed: {', '.join(HASH_KINDS)}.")

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """One published set of ImageNet weights for one architecture.

    Attributes:
        arch: The model's common name, e.g. "vgg16_bn".
        source: "keras" or "torchvision"; the tag is "imagenet-<source>".
        file_format: "keras_legacy_h5" or "torch_state_dict".
        files: The files: with classifier, and without where one is published.
        preprocessing: The `vgg_keras.preprocessing` mode the weights expect.
        top1: Published ImageNet validation top-1 accuracy (%).
        top5: Published ImageNet validation top-5 accuracy (%).
        license: The weights' licence.
        reference: Where the weights and their numbers are documented.
        heads: Heads the files load into (the conv head via reshaped fc kernels).
        input_size: The crop size of the classifier (224).
    """

    arch: str
    source: str
    file_format: str
    files: tuple[WeightsFile, ...]
    preprocessing: str
    top1: float
    top5: float
    license: str
    reference: str
    heads: tuple[str, ...] = ("dense", "conv")
    input_size: int = 224

    @property
    def tag(self) -> str:
        return f"imagenet-{self.source}"

    @property
    def normalization(self) -> normalization_lib.Normalization:
        """The input normalisation these weights expect (`preprocess_input(x, weights=entry)`)."""
        return normalization_lib.normalization(self.preprocessing)

    @property
    def config(self) -> str:
        """The paper's configuration letter, e.g. "D"."""
        return configs_lib.resolve_model_name(self.arch)[0].letter

    def file_for(self, include_top: bool) -> WeightsFile:
        """The file to fetch: the exact variant if published, else the one with the classifier."""
        exact = [f for f in self.files if f.include_top == include_top]
        return (exact or [f for f in self.files if f.include_top])[0]


def _keras_entry(arch: str, top: str, notop: str, top1: float, top5: float) -> PretrainedWeights:
    stem = f"{_KERAS_URL}{arch}/{arch}_weights_tf_dim_ordering_tf_kernels"
    files = (WeightsFile(f"{stem}.h5", top, "md5", True), WeightsFile(f"{stem}_notop.h5", notop, "md5", False))
    reference = f"https://keras.io/api/applications/vgg/ (keras.applications.{arch.upper()})"
    return PretrainedWeights(arch, "keras", "keras_legacy_h5", files, "caffe", top1, top5, _CAFFE_LICENSE, reference)


def _torchvision_entry(arch: str, prefix: str, top1: float, top5: float) -> PretrainedWeights:
    files = (WeightsFile(f"{_TORCHVISION_URL}{arch}-{prefix}.pth", prefix, "sha256_prefix", True),)
    reference = f"https://pytorch.org/vision/stable/models/generated/torchvision.models.{arch}.html"
    return PretrainedWeights(
        arch, "torchvision", "torch_state_dict", files, "torch", top1, top5, _TORCHVISION_LICENSE, reference
    )


REGISTRY: tuple[PretrainedWeights, ...] = (
    _keras_entry("vgg16", "64373286793e3c8b2b4e3219cbf3544b", "6d6bbae143d832006294945121d1f1fc", 71.3, 90.1),
    _keras_entry("vgg19", "cbe5617147190e668d6c5d5026f83318", "253f8cb515780f3b799900260a226db6", 71.3, 90.0),
    _torchvision_entry("vgg11", "8a719046", 69.020, 88.628),
    _torchvision_entry("vgg11_bn", "6002323d", 70.370, 89.810),
    _torchvision_entry("vgg13", "19584684", 69.928, 89.246),
    _torchvision_entry("vgg13_bn", "abd245e5", 71.586, 90.374),
    _torchvision_entry("vgg16", "397923af", 71.592, 90.382),
    _torchvision_entry("vgg16_bn", "6c64b313", 73.360, 91.516),
    _torchvision_entry("vgg19", "dcbb9e9d", 72.376, 90.876),
    _torchvision_entry("vgg19_bn", "c79401a0", 74.218, 91.842),
)
_DEFAULT_SOURCE = {"vgg16": "keras", "vgg19": "keras"}
TAGS: tuple[str, ...] = ("imagenet",) + tuple(dict.fromkeys(entry.tag for entry in REGISTRY))


class WeightsDownloadError(OSError):
    """A published weights file could not be downloaded (network, HTTP or truncated transfer)."""


# --------------------------------------------------------------------------- registry


def list_weights(arch: str | None = None) -> list[PretrainedWeights]:
    """The published weights, optionally for one architecture.

    Args:
        arch: A model name or paper letter ("vgg16", "D", "vgg16_bn"); None lists all.

    Returns:
        The `PretrainedWeights` entries (each with URL, hash, format, preprocessing,
        top-1/top-5, licence and source).
    """
    if arch is None:
        return list(REGISTRY)
    name = configs_lib.canonical_name(*configs_lib.resolve_model_name(arch))
    return [entry for entry in REGISTRY if entry.arch == name]


def is_pretrained_tag(weights) -> bool:
    """Whether `weights` is one of `TAGS` (rather than None or a path)."""
    return isinstance(weights, str) and weights in TAGS and not os.path.exists(weights)


def _no_weights_error(arch: str) -> ValueError:
    letter = configs_lib.resolve_model_name(arch)[0].letter
    return ValueError(
        f"No published weights exist for {arch} (config {letter}): no public model zoo ships A-LRN or C. "
        "Train it with recipes/train.py (see recipes/README.md) and pass weights=<path to the trained "
        "weights>, or use weights=None."
    )


def resolve_weights(weights: str, arch: str) -> PretrainedWeights:
    """The registry entry a tag names for an architecture.

    Args:
        weights: A tag from `TAGS`.
        arch: A model name, e.g. "vgg16_bn".

    Returns:
        The `PretrainedWeights` entry.

    Raises:
        ValueError: For an unknown tag, or an architecture without weights from that source.
    """
    if weights not in TAGS:
        raise ValueError(f"Unknown weights={weights!r}. Allowed: None, a path to a weights file, or one of {TAGS}.")
    name = configs_lib.canonical_name(*configs_lib.resolve_model_name(arch))
    entries = list_weights(name)
    if not entries:
        raise _no_weights_error(name)
    source = _DEFAULT_SOURCE.get(name, "torchvision") if weights == "imagenet" else weights.split("-", 1)[1]
    for entry in entries:
        if entry.source == source:
            return entry
    available = ", ".join(repr(e.tag) for e in entries)
    raise ValueError(f"weights={weights!r} has no file for {name}; available for {name}: 'imagenet', {available}.")


def preprocessing_mode_for(weights, arch: str | None = None, default: str = normalization_lib.DEFAULT_MODE) -> str:
    """The preprocessing mode ("caffe", "torch", "mean_rgb") that `weights` expect.

    Args:
        weights: None, a `PretrainedWeights` entry (it names its mode, no `arch` needed), a
            tag from `TAGS`, or a weights file path.
        arch: The model name; needed for "imagenet", whose source depends on it.
        default: The mode for None, and for files that do not record one (Keras 3 files
            not written by `save_weights`).

    Returns:
        The mode name.

    Raises:
        ValueError: For an unknown tag or a missing `arch` where it decides.
    """
    if weights is None:
        return default
    if isinstance(weights, PretrainedWeights):
        return weights.preprocessing
    if is_pretrained_tag(weights):
        modes = {entry.preprocessing for entry in REGISTRY if weights in (entry.tag, "imagenet")}
        if arch is None and len(modes) > 1:
            raise ValueError(
                f"weights={weights!r} means a different source per architecture; pass arch= (e.g. 'vgg16') "
                "or a source tag such as 'imagenet-keras' or 'imagenet-torchvision'."
            )
        return resolve_weights(weights, arch).preprocessing if arch is not None else modes.pop()
    path = _checked_path(weights)
    kind = sniff_format(path)
    return _FORMAT_MODES.get(kind) or (_recorded_mode(path) if kind == "keras3_h5" else None) or default


# --------------------------------------------------------------------------- download, verify, cache


def cache_dir() -> str:
    """Where downloads are cached: $VGG_KERAS_CACHE, else $KERAS_HOME/models (~/.keras/models)."""
    if os.environ.get(CACHE_ENV):
        return os.path.expanduser(os.environ[CACHE_ENV])
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(keras_home, "models")


def _file_digest(path: str, kind: str) -> str:
    digest = hashlib.md5() if kind == "md5" else hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_matches(actual: str, file: WeightsFile) -> bool:
    expected = file.file_hash.lower()
    return actual.startswith(expected) if file.hash_kind == "sha256_prefix" else actual == expected


def _url(file: WeightsFile, base_url: str | None) -> str:
    base = base_url or os.environ.get(BASE_URL_ENV)
    return f"{base.rstrip('/')}/{file.filename}" if base else file.url


def _copy_url(url: str, out, progress: bool) -> None:
    """Streams `url` into `out` with a progress bar; raises on a short transfer."""
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=60) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length else None
        received = 0
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=url.rsplit("/", 1)[-1],
                  disable=not progress) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise WeightsDownloadError(f"truncated transfer: received {received} of {total} bytes")


def _download(url: str, target: str, file: WeightsFile, progress: bool) -> None:
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(target), prefix=file.filename + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                _copy_url(url, out, progress)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                raise WeightsDownloadError(
                    f"Could not download {url}: {error}. Without network access, download the file elsewhere "
                    f"and place it at {target} ({file.hash_kind} {file.file_hash})."
                ) from error
        actual = _file_digest(partial, file.hash_kind)
        if not _hash_matches(actual, file):
            raise ValueError(
                f"Hash mismatch for {url}: expected {file.hash_kind} {file.file_hash}, got {actual}. "
                f"The download was discarded; nothing was written to {target}."
            )
        os.replace(partial, target)  # only a verified file ever gets the cached name
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def fetch(file: WeightsFile, *, base_url: str | None = None, cache: str | None = None, progress: bool = True) -> str:
    """Returns the local path of a verified copy of `file`, downloading it if needed.

    A cached file is used only if its hash matches; otherwise it is downloaded again.

    Args:
        file: The file to fetch.
        base_url: Replaces the published URL's directory (default: $VGG_KERAS_WEIGHTS_URL
            or the published URL).
        cache: The cache directory (default: `cache_dir()`).
        progress: Whether to show a progress bar.

    Returns:
        The path of the verified file in the cache.

    Raises:
        WeightsDownloadError: If the download fails; the message names the URL and the
            path where the file can be placed by hand.
        ValueError: If the downloaded file's hash does not match (nothing is cached).
    """
    directory = cache or cache_dir()
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, file.filename)
    if os.path.isfile(target) and _hash_matches(_file_digest(target, file.hash_kind), file):
        return target
    _download(_url(file, base_url), target, file, progress)
    return target


# --------------------------------------------------------------------------- reading files

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_FORMAT_MODES = {"keras_legacy_h5": "caffe", "torch": "torch", "safetensors": "torch"}
_SUPPORTED = (
    "Keras 3 .weights.h5 / .keras, legacy Keras HDF5 (keras-applications layout), "
    "torchvision .pth state dicts, .safetensors with torchvision or timm keys"
)


def _checked_path(path) -> str:
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
    raise ValueError(f"Unrecognised or corrupt weights file {path} ({os.path.getsize(path)} bytes). Supported: {_SUPPORTED}.")


def _recorded_mode(path: str) -> str | None:
    """The preprocessing mode `save_weights` recorded in a Keras 3 file, if any."""
    with h5py.File(path, "r") as h5:
        mode = h5.attrs.get(PREPROCESSING_ATTR)
    return mode.decode() if isinstance(mode, bytes) else mode


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
        convs, dense = convs[: len(body)], convs[len(body):]
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
    return {k.removeprefix("module."): v.detach().cpu().float().numpy() for k, v in state.items() if hasattr(v, "numpy")}


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
    path = _checked_path(path)
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
        raise ValueError(f"Cannot read weights file {path} ({kind}): {error}. It may be truncated or corrupt.") from error
    return from_torch_layout(state, arch, source=f"Weights file {path}")


# --------------------------------------------------------------------------- torchvision / timm layout


def torchvision_layout(arch: str) -> dict[str, int]:
    """Maps Keras layer names to torchvision `features.<i>` indices, derived from Table 1.

    torchvision's `features` is Conv2d, [BatchNorm2d], ReLU per conv and a MaxPool2d per
    block (an LRN after the first ReLU for A-LRN), numbered in that order.

    Args:
        arch: A model name, e.g. "vgg16_bn".

    Returns:
        `{"block1_conv1": 0, "block1_bn1": 1, ...}`.
    """
    config, batch_norm = configs_lib.resolve_model_name(arch)
    layout, index = {}, 0
    for block, convs in enumerate(config.blocks, start=1):
        for i in range(1, len(convs) + 1):
            layout[f"block{block}_conv{i}"] = index
            if batch_norm:
                layout[f"block{block}_bn{i}"] = index + 1
            index += 3 if batch_norm else 2
            index += 1 if (config.lrn and block == 1 and i == 1) else 0
        index += 1  # max-pool
    return layout


def _conv_kernel(weight: np.ndarray) -> np.ndarray:
    return np.transpose(weight, (2, 3, 1, 0))  # OIHW -> HWIO


def _take(state: dict[str, np.ndarray], prefix: str, suffixes: Iterable[str]) -> list[np.ndarray] | None:
    keys = [f"{prefix}.{s}" for s in suffixes]
    if not all(k in state for k in keys):
        return None
    return [state.pop(k) for k in keys]


def _fc1_kernel(weight: np.ndarray, channels: int, name: str) -> np.ndarray:
    """classifier.0 [out, C*h*w] (C,H,W flatten order) or timm's conv [out, C, h, w] -> HWIO."""
    if weight.ndim == 2:
        side = int(round((weight.shape[1] / max(channels, 1)) ** 0.5))
        if channels * side * side != weight.shape[1]:
            raise ValueError(
                f"{name} has shape {weight.shape}: {weight.shape[1]} inputs are not {channels} channels x a square map."
            )
        weight = weight.reshape(weight.shape[0], channels, side, side)
    return _conv_kernel(weight)


def _head_keys(state: Mapping[str, np.ndarray]) -> dict[str, tuple[str, bool]]:
    """Keras fc name -> (state-dict prefix, is conv-shaped) for the torchvision or timm head."""
    if any(k.startswith("pre_logits.") for k in state):
        return {"fc1": ("pre_logits.fc1", True), "fc2": ("pre_logits.fc2", True), "predictions": ("head.fc", False)}
    return {"fc1": ("classifier.0", False), "fc2": ("classifier.3", False), "predictions": ("classifier.6", False)}


def from_torch_layout(
    state: Mapping[str, np.ndarray], arch: str, source: str = "The state dict"
) -> dict[str, list[np.ndarray]]:
    """Converts a torchvision (or timm) VGG state dict to `{keras_layer_name: [arrays]}`.

    Conv kernels go OIHW -> HWIO; BatchNorm keeps weight, bias, running mean and variance
    (Keras' gamma, beta, moving mean, moving variance); classifier.0's C,H,W-flattened
    kernel (or timm's conv-shaped pre_logits.fc1) becomes a channels-last conv kernel;
    Linear kernels are transposed.

    Args:
        state: The state dict as NumPy arrays.
        arch: The model name whose `features.<i>` numbering applies.
        source: Names the origin in error messages.

    Returns:
        Arrays per Keras layer name.

    Raises:
        ValueError: If keys are missing or left over; the message lists the first ones.
    """
    state = {k: np.asarray(v) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    tensors, missing = {}, []
    for name, index in torchvision_layout(arch).items():
        suffixes = ("weight", "bias", "running_mean", "running_var") if "_bn" in name else ("weight", "bias")
        values = _take(state, f"features.{index}", suffixes)
        if values is None:
            missing.append(f"features.{index} ({name})")
            continue
        tensors[name] = [_conv_kernel(values[0]), values[1]] if "_conv" in name else values
    head = _head_keys(state)
    has_head = any(k.startswith(prefix) for prefix, _ in head.values() for k in state)
    last_conv = [v[0].shape[-1] for k, v in tensors.items() if "_conv" in k][-1:] or [0]
    for name, (prefix, conv_shaped) in head.items() if has_head else ():
        values = _take(state, prefix, ("weight", "bias"))
        if values is None:
            missing.append(f"{prefix} ({name})")
            continue
        kernel = values[0]
        if name == "fc1":
            kernel = _fc1_kernel(kernel, last_conv[0], f"{prefix}.weight")
        else:
            kernel = _conv_kernel(kernel) if conv_shaped else kernel.T
        tensors[name] = [kernel, values[1]]
    if missing or state:
        extra = [f"{k} {tuple(v.shape)}" for k, v in state.items()]
        raise ValueError(
            f"{source} does not fit {arch}: missing {_first(missing)}; unexpected {_first(extra)}."
        )
    return tensors


def _first(items: list[str]) -> str:
    if not items:
        return "none"
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


# --------------------------------------------------------------------------- assigning


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
    skip = set() if "predictions" in targets else set(TOP_LAYERS)
    problems = [f"{n} in file {_shapes(v)} but not in the model" for n, v in tensors.items()
                if n not in targets and n not in skip]
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
            f"{source} does not fit model {model.name!r} ({len(problems)} mismatches): {_first(problems)}."
        )
    for layer, values in updates:
        layer.set_weights(values)


# --------------------------------------------------------------------------- public entry points


def check_weights_argument(weights, arch: str) -> None:
    """Fails fast, before a model is built, on weights that cannot be loaded.

    Args:
        weights: The `weights` argument of a builder.
        arch: The model's common name, e.g. "vgg11_lrn".

    Raises:
        ValueError: For an unknown tag or a missing file (the message lists the tags), or an
            architecture without published weights.
    """
    if weights is None:
        return
    if is_pretrained_tag(weights):
        resolve_weights(weights, arch)
    else:
        _checked_path(weights)


def load_weights(
    model: keras.Model,
    weights: str | os.PathLike | None,
    *,
    arch: str,
    include_top: bool,
    base_url: str | None = None,
    cache: str | None = None,
    progress: bool = True,
) -> None:
    """Loads published weights (by tag) or a weights file (by path) into `model`.

    Args:
        model: The freshly built model.
        weights: None (keep the initialisation), a tag from `TAGS`, or a path (see the
            module docstring for the formats).
        arch: The model's common name, e.g. "vgg16_bn".
        include_top: Whether the model has its classifier (picks the published file).
        base_url: Download base URL override (see `fetch`).
        cache: Cache directory override (see `fetch`).
        progress: Whether to show a download progress bar.

    Raises:
        ValueError: For unknown weights (the message lists the tags), architectures
            without published weights, unreadable files, or weights that do not fit.
        WeightsDownloadError: If a download fails.
    """
    if weights is None:
        return
    if is_pretrained_tag(weights):
        entry = resolve_weights(weights, arch)
        path = fetch(entry.file_for(include_top), base_url=base_url, cache=cache, progress=progress)
    else:
        path = _checked_path(weights)
    assign_weights(model, read_weights(path, model, arch), source=f"Weights file {path}")


def save_weights(model: keras.Model, path: str, *, preprocessing: str) -> str:
    """Writes a Keras 3 `.weights.h5` that records the preprocessing its weights expect.

    Args:
        model: The model.
        path: Output path ending in ".weights.h5".
        preprocessing: The mode ("caffe", "torch", "mean_rgb"), read back by
            `preprocessing_mode_for(path)`.

    Returns:
        `path`.

    Raises:
        ValueError: For an unknown mode or a path not ending in ".weights.h5".
    """
    normalization_lib.normalization(preprocessing)
    if not str(path).endswith(".weights.h5"):
        raise ValueError(f"path={path!r}; allowed: a file name ending in '.weights.h5'.")
    model.save_weights(path)
    with h5py.File(path, "a") as h5:
        h5.attrs[PREPROCESSING_ATTR] = preprocessing
    return path
