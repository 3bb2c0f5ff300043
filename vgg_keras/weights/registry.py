"""The published weights as data: `WeightsFile`, `PretrainedWeights`, `REGISTRY`, `TAGS`, look-ups.

As timm's pretrained configs and torchvision's `Weights` enums, an entry says where its
files are, how to verify them, which preprocessing they expect and what they score.
"""

from __future__ import annotations

import dataclasses
import os

from vgg_keras import configs as configs_lib
from vgg_keras import normalization as normalization_lib

HASH_KINDS = ("md5", "sha256", "sha256_prefix")
_KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
_TORCHVISION_URL = "https://download.pytorch.org/models/"
_CAFFE_LICENSE = "CC BY 4.0 (original VGG release by the Oxford VGG group; Keras port)"
_TORCHVISION_LICENSE = "BSD-3-Clause (torchvision)"


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
        raise ValueError(f"weights={weights!r}; allowed: None, a path to a weights file, or one of {TAGS}.")
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
