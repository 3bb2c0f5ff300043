"""LPIPS, VGG variant, version 0.1 (Zhang, Isola, Efros, Shechtman & Wang, CVPR 2018).

The same computation as the reference `lpips` package (`lpips.LPIPS(net="vgg",
version="0.1")`): its scaling layer, torchvision's VGG16 features at relu1_2, relu2_2,
relu3_3, relu4_3 and relu5_3 (Keras: block1_conv2, block2_conv2, block3_conv3,
block4_conv3, block5_conv3), unit-normalisation over channels with epsilon 1e-10, squared
differences weighted by the learned non-negative 1x1 linear layers, spatial mean, sum over
the five layers; `spatial=True` upsamples each layer's map bilinearly (align_corners=False)
to the input size and sums.

The learned linear layers (`lpips/weights/v0.1/vgg.pth`, 7 KB, BSD-2-Clause) are not
shipped with vgg_keras; `linear_weights_path` finds them, in order: the path given, the
installed `lpips` package (located without importing it, so without torchvision), the
download cache, then a download from `LPIPS_VGG_V01.file.url`, verified by SHA-256.
Reading the `.pth` needs PyTorch only (`torch.load(weights_only=True)`), never torchvision.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from vgg_keras import weights as weights_lib
from vgg_keras.perceptual import _backbone

__all__ = ["LPIPS", "LPIPS_LAYERS", "LPIPS_VGG_V01", "LinearWeights", "linear_weights_path", "read_linear_weights"]

LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
# The reference's ScalingLayer (v0.1): (x - shift) / scale per RGB channel, x in [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPSILON = 1e-10  # lpips.normalize_tensor's
REFERENCE_RANGE = (-1.0, 1.0)
MIN_SIDE = 16
# Tolerated excess over value_range, as a fraction of its width: rounding of converted inputs.
RANGE_TOLERANCE = 1e-5


@dataclasses.dataclass(frozen=True)
class LinearWeights:
    """A published set of LPIPS linear-layer weights.

    Attributes:
        net: The trunk ("vgg").
        version: The LPIPS version ("0.1").
        file: The file (URL and SHA-256).
        package_path: Its path inside the installed `lpips` package.
        license: The file's licence.
        attribution: The copyright notice the licence asks to keep.
        reference: Where it is published and documented.
    """

    net: str
    version: str
    file: weights_lib.WeightsFile
    package_path: str
    license: str
    attribution: str
    reference: str


LPIPS_VGG_V01 = LinearWeights(
    net="vgg",
    version="0.1",
    file=weights_lib.WeightsFile(
        "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
        "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
        "sha256",
        include_top=False,
    ),
    package_path=os.path.join("weights", "v0.1", "vgg.pth"),
    license="BSD-2-Clause",
    attribution="Copyright (c) 2018, Richard Zhang, Phillip Isola, Alexei A. Efros, Eli Shechtman, Oliver Wang",
    reference="https://github.com/richzhang/PerceptualSimilarity (pip package lpips 0.1.4)",
)


def _lpips_package_file(entry: LinearWeights) -> str | None:
    """The file inside an installed `lpips` package, found without importing it (no torchvision)."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(next(iter(spec.submodule_search_locations)), entry.package_path)
    return path if os.path.isfile(path) else None


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _cache(entry: LinearWeights) -> str:
    return os.path.join(weights_lib.cache_dir(), f"lpips-{entry.net}-v{entry.version}")


def linear_weights_path(
    path: str | os.PathLike | None = None, *, entry: LinearWeights = LPIPS_VGG_V01, progress: bool = True
) -> str:
    """Where the LPIPS linear weights are: `path`, the `lpips` package, the cache or a download.

    Args:
        path: A local `.pth` (or `.safetensors`) file; None searches as described.
        entry: The published weights.
        progress: Show a download progress bar.

    Returns:
        The local path.

    Raises:
        ValueError: If `path` is given but is not a file.
        WeightsDownloadError: If the file is nowhere and cannot be downloaded; the message
            says where to put it.
    """
    if path is not None:
        if not os.path.isfile(path):
            raise ValueError(
                f"linear_weights={path!r} is not a file; allowed: None or the path of {entry.file.filename}."
            )
        return os.fspath(path)
    packaged = _lpips_package_file(entry)
    if packaged and _sha256(packaged) == entry.file.file_hash:  # another lpips release's file: not this one
        return packaged
    try:
        return weights_lib.fetch(entry.file, cache=_cache(entry), progress=progress)
    except weights_lib.WeightsDownloadError as error:
        raise weights_lib.WeightsDownloadError(
            f"LPIPS linear weights not found: {error} Alternatively pass linear_weights=<path to "
            f"{entry.file.filename}>, or pip install lpips (its wheel ships {entry.package_path})."
        ) from error


def read_linear_weights(path: str) -> list[np.ndarray]:
    """The five `(C,)` float32 channel weights of an LPIPS VGG linear-weights file.

    Keys `lin{k}.model.1.weight` (the reference state dict), shapes `(1, C, 1, 1)`.

    Raises:
        ValueError: For missing keys, other shapes or negative values.
    """
    state = weights_lib.read_state_dict(path, weights_lib.sniff_format(path))
    values = []
    for k, channels in enumerate(LPIPS_CHANNELS):
        key = f"lin{k}.model.1.weight"
        weight = state.get(key)
        if weight is None or weight.size != channels:
            found = ", ".join(f"{name} {tuple(v.shape)}" for name, v in state.items()) or "nothing"
            raise ValueError(
                f"{path} is not an LPIPS VGG weights file: needs {key} of {channels} values; found {found}."
            )
        if (weight < 0).any():
            raise ValueError(f"{path}: {key} has negative values; LPIPS linear weights are non-negative.")
        values.append(np.asarray(weight, "float32").reshape(channels))
    return values


def _check_trunk_weights(trunk_weights) -> None:
    """LPIPS was calibrated on torchvision's VGG16: tags for other sources are refused."""
    if weights_lib.is_pretrained_tag(trunk_weights):
        entry = weights_lib.resolve_weights(trunk_weights, "vgg16")
        if entry.preprocessing != "torch":
            raise ValueError(
                f"trunk_weights={trunk_weights!r} are the {entry.source} VGG16 weights; LPIPS v0.1's linear layers "
                "were calibrated on torchvision's VGG16. Allowed: 'imagenet-torchvision', a weights file, or None."
            )


def _concrete(x) -> np.ndarray | None:
    """`x`'s values when it has them (NumPy, eager tensors); None inside a traced function."""
    try:
        return keras.ops.convert_to_numpy(x)
    except (TypeError, ValueError, NotImplementedError, AttributeError):  # symbolic: tf.function, jax.jit
        return None


@keras.saving.register_keras_serializable(package="vgg_keras")
class LPIPS(keras.layers.Layer):
    """The LPIPS distance (VGG, v0.1) between two image batches: `lpips(x0, x1)`.

    Inputs are channels-last RGB batches `(batch, height, width, 3)` of one shape, in
    `value_range`: `(-1, 1)` by default, the reference's convention; `(0, 255)` or `(0, 1)`
    (the reference's `normalize=True`) map linearly onto it. Values outside the range
    (beyond a 1e-5 relative rounding margin) raise a ValueError when the inputs are
    concrete (NumPy, eager tensors); inside a traced function (`tf.function`, `jax.jit`)
    they are not checked. Sides of at least 16 pixels (relu5_3 needs 1x1).

    Args:
        trunk_weights: The VGG16 trunk: "imagenet-torchvision" (default; the weights LPIPS
            was trained on), a weights file (e.g. torchvision's `vgg16-397923af.pth`), or
            None (random; tests only).
        linear_weights: The linear layers' file (`vgg.pth`); None finds it (see
            `linear_weights_path`).
        value_range: `(low, high)` of the input values.
        spatial: Return the distance map `(batch, height, width)` instead of `(batch,)`.
        **kwargs: Base layer arguments (name). The layer always computes in float32.

    Raises:
        ValueError: For unfit trunk weights, a bad `value_range` or linear-weights file.
        WeightsDownloadError: If the linear weights are nowhere and cannot be downloaded.
    """

    def __init__(
        self,
        trunk_weights: str | None = "imagenet-torchvision",
        linear_weights: str | None = None,
        *,
        value_range: Sequence[float] = REFERENCE_RANGE,
        spatial: bool = False,
        **kwargs,
    ):
        kwargs.pop("dtype", None)
        kwargs.pop("trainable", None)
        super().__init__(dtype="float32", trainable=False, **kwargs)
        _check_trunk_weights(trunk_weights)
        self.value_range = _backbone.check_value_range(value_range)
        self.spatial = bool(spatial)
        self.trunk_weights = None if trunk_weights is None else os.fspath(trunk_weights)
        self.linear_weights = None if linear_weights is None else os.fspath(linear_weights)
        channel_weights = read_linear_weights(linear_weights_path(self.linear_weights))
        self.keras_layers = _backbone.resolve_layers(LPIPS_LAYERS, "vgg16")
        self.trunk = _backbone.feature_network("vgg16", self.trunk_weights, self.keras_layers)
        self.lins = [
            self.add_weight(shape=w.shape, initializer=keras.initializers.Constant(w), trainable=False, name=f"lin{k}")
            for k, w in enumerate(channel_weights)
        ]
        self.built = True

    def _check_range(self, images, name: str) -> None:
        values = _concrete(images)
        if values is None or values.size == 0:
            return
        low, high = self.value_range
        margin = RANGE_TOLERANCE * (high - low)
        smallest, largest = float(values.min()), float(values.max())
        if not (smallest >= low - margin and largest <= high + margin):  # also catches NaN
            raise ValueError(
                f"{name} has values in [{smallest:g}, {largest:g}], outside value_range=({low:g}, {high:g}). "
                "Pass images in that range (clip them, or set value_range, e.g. (0, 255))."
            )

    def __call__(self, x0, x1, **kwargs):
        # Checked here rather than in `call`, so the errors reach the user unwrapped.
        x0, x1 = (x if hasattr(x, "shape") else np.asarray(x, "float32") for x in (x0, x1))
        _backbone.check_image_pair(x0, x1, ("x0", "x1"))
        if any(side is not None and side < MIN_SIDE for side in tuple(x0.shape)[1:3]):
            raise ValueError(
                f"x0 and x1 have shape {tuple(x0.shape)}; allowed: sides of at least {MIN_SIDE} pixels "
                "(relu5_3 is 1/16 of the input)."
            )
        self._check_range(x0, "x0")
        self._check_range(x1, "x1")
        return super().__call__(x0, x1, **kwargs)

    def call(self, x0, x1):
        both = keras.ops.concatenate([x0, x1], axis=0)
        both = _backbone.rescale(both, self.value_range, REFERENCE_RANGE)
        both = (both - keras.ops.convert_to_tensor(SHIFT, "float32")) / keras.ops.convert_to_tensor(SCALE, "float32")
        features = self.trunk(both, training=False)
        size = (x0.shape[1] or keras.ops.shape(x0)[1], x0.shape[2] or keras.ops.shape(x0)[2])
        total = 0.0
        for name, weight in zip(self.keras_layers, self.lins):
            f = features[name]
            f = f / (keras.ops.sqrt(keras.ops.sum(keras.ops.square(f), axis=-1, keepdims=True)) + EPSILON)
            f0, f1 = keras.ops.split(f, 2, axis=0)
            layer_map = keras.ops.sum(keras.ops.square(f0 - f1) * weight, axis=-1, keepdims=True)
            if self.spatial:
                total = (
                    total
                    + keras.ops.image.resize(
                        layer_map, size, interpolation="bilinear", antialias=False, data_format="channels_last"
                    )[..., 0]
                )
            else:
                total = total + keras.ops.mean(layer_map, axis=(1, 2, 3))
        return total

    def compute_output_shape(self, x0_shape, x1_shape=None):
        return tuple(x0_shape[:3]) if self.spatial else (x0_shape[0],)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            trunk_weights=self.trunk_weights,
            linear_weights=self.linear_weights,
            value_range=list(self.value_range),
            spatial=self.spatial,
        )
        return config
