"""One builder for every VGG configuration of Table 1.

`build` turns a configuration name into a Keras 3 functional model with a dense
(`keras.applications`-style) or fully-convolutional head, optional BatchNorm, LRN for
A-LRN, dropout, narrower widths for small experiments and published or local weights.
The named builders (`VGG16`, `VGG19BN`, ...) are thin wrappers with the exact
`keras.applications` argument contract.

Layer names follow `keras.applications` (`block{b}_conv{i}`, `block{b}_pool`, `flatten`,
`fc1`, `fc2`, `predictions`) so published weight files load by name. New layers use the
same style: `block{b}_bn{i}` / `block{b}_relu{i}` (BatchNorm variants), `block1_lrn`,
`fc1_dropout`, `fc2_dropout`, `avg_pool` / `max_pool`, and for the conv head
`score_average` (spatial mean of the class-score map) and `predictions_activation`.

Both image data formats build, as in `keras.applications`: the model follows
`keras.config.image_data_format()` (or `data_format=`). Kernels have the same shapes in
both (Keras keeps conv kernels HWIO and its `Flatten` flattens channels-first maps in
H, W, C order), so every weights file loads into either and `to_data_format` converts.

Every builder returns a `VGG`: a functional model that carries its `ModelSpec` (plain data)
through `.keras` save/load. `describe(model)` is the one way to ask what a model is and
where its key layers are; this module is the only one that knows the layer names (for a
model saved before the spec was carried, it reads the spec from them once).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import keras

from vgg_keras import channels as channels_lib
from vgg_keras import configs as configs_lib
from vgg_keras import preprocessing as preprocessing_lib
from vgg_keras import weights as weights_lib
from vgg_keras.layers import LocalResponseNormalization
from vgg_keras.validation import check_choice

__all__ = [
    "VGG",
    "ModelSpec",
    "ModelDescription",
    "describe",
    "relu_layer_names",
    "build",
    "get_model",
    "list_models",
    "to_fully_convolutional",
    "to_dense",
    "score_map_model",
    "feature_extractor",
    "to_data_format",
    "data_format_of",
    "init_from_shallower",
    "PAPER_INIT_FC_LAYERS",
    "PREDICTIONS_LAYER",
    "STAGES",
    "CLASSIFIERS",
    "classifier_layers",
    "layer_stage",
]

HEADS = ("dense", "conv")
POOLINGS = (None, "avg", "max")
DATA_FORMATS = ("channels_last", "channels_first")
MIN_INPUT_SIZE = 32
DEFAULT_SIZE = 224
PREDICTIONS_LAYER = configs_lib.PREDICTIONS
STAGES = configs_lib.STAGES
CLASSIFIERS = ("dense", "conv", "pooled")
PAPER_INIT_FC_LAYERS = ("fc1", "fc2", PREDICTIONS_LAYER)
PREPROCESSING_LAYER = "preprocessing"
_CONV_NAME = re.compile(r"^block(\d+)_conv(\d+)$")
_BLOCK_NAME = re.compile(r"^(block\d+)_")
_FC_STAGE = ("flatten", "fc1", "fc1_dropout", "fc2", "fc2_dropout")
_SCORE_LAYERS = (PREDICTIONS_LAYER, "score_average", "predictions_activation")
_HEAD_STAGE = ("avg_pool", "head_dropout", *_SCORE_LAYERS)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything that determines a VGG model's architecture (widths already applied).

    Plain data only (strings, numbers, tuples): the model carries it through `.keras`
    save/load (`VGG.get_config`), and `describe(model)` reports it.

    Attributes:
        blocks: Five tuples of `ConvSpec` with the actual filter counts.
        config: The paper's letter ("A", "A-LRN", "B", "C", "D", "E").
        width_multiplier: The factor the filter counts were scaled by (derived from the last
            conv for a model saved without a spec).
        batch_norm: Conv -> BatchNorm -> ReLU instead of Conv(ReLU).
        lrn: Local Response Normalisation after the first conv (A-LRN).
        include_top: Whether the classifier (fc1, fc2, predictions) is present.
        head: "dense" (Flatten + Dense) or "conv" (fc1 a valid conv, 1x1 convs, averaged scores).
        fc_units: Width of fc1 and fc2.
        classes: Number of classes of the predictions layer.
        classifier_activation: Activation of the top layer, serialised (None for logits).
        dropout: Dropout rate after fc1 and fc2 (0, the default, means no Dropout layers).
        pooling: Global pooling of the features when `include_top=False`.
        base_size: Input size the head is designed for; the conv head's fc1 kernel is base_size / 32.
        input_shape: Input shape without the batch axis.
        kernel_initializer: Keras initializer for every conv and dense kernel (used when
            building; not saved with the model, whose weights are).
        preprocessing: The mode of the baked-in normalisation layer ("caffe", "torch",
            "mean_rgb"), or None when the model takes normalised input.
        preprocessing_mean: The "mean_rgb" mean of that layer (None: ImageNet's).
        name: The model's name.
        data_format: "channels_last" (images `(H, W, C)`) or "channels_first" (`(C, H, W)`).
    """

    blocks: tuple[tuple[configs_lib.ConvSpec, ...], ...]
    config: str = "D"
    width_multiplier: float = 1.0
    batch_norm: bool = False
    lrn: bool = False
    include_top: bool = True
    head: str = "dense"
    fc_units: int = 4096
    classes: int = 1000
    classifier_activation: Any = "softmax"
    dropout: float = 0.0
    pooling: str | None = None
    base_size: int = DEFAULT_SIZE
    input_shape: tuple[int | None, ...] = (DEFAULT_SIZE, DEFAULT_SIZE, 3)
    kernel_initializer: Any = dataclasses.field(default="glorot_uniform", compare=False)
    preprocessing: str | None = None
    preprocessing_mean: tuple[float, ...] | None = None
    name: str = "vgg"
    data_format: str = "channels_last"

    def to_config(self) -> dict[str, Any]:
        """The spec as JSON-serialisable data (without `kernel_initializer`)."""
        config = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "kernel_initializer"}
        config["blocks"] = [[[conv.filters, conv.kernel_size] for conv in block] for block in self.blocks]
        config["input_shape"] = list(self.input_shape)
        if self.preprocessing_mean is not None:
            config["preprocessing_mean"] = list(self.preprocessing_mean)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelSpec:
        """The inverse of `to_config` (unknown keys, from a newer vgg_keras, are ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in config.items() if key in known}
        values["blocks"] = tuple(tuple(configs_lib.ConvSpec(*conv) for conv in block) for block in config["blocks"])
        values["input_shape"] = tuple(config["input_shape"])
        if values.get("preprocessing_mean") is not None:
            values["preprocessing_mean"] = tuple(values["preprocessing_mean"])
        return cls(**values)


@keras.saving.register_keras_serializable(package="vgg_keras")
class VGG(keras.Model):
    """A functional VGG that carries its `ModelSpec` (what every vgg_keras builder returns).

    The layers and the graph are exactly those of a plain functional model; the spec rides
    along in `get_config()` (key "vgg_spec"), so it survives `.keras` save/load, as the
    config of a keras-hub backbone does. Ask it through `vgg_keras.describe(model)`.

    Args:
        *args: `keras.Model` functional arguments (inputs, outputs).
        vgg_spec: A `ModelSpec`, or its `to_config()` dict (when loading).
        **kwargs: Further `keras.Model` arguments (name, trainable).
    """

    def __init__(self, *args, vgg_spec: ModelSpec | dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(vgg_spec, dict):
            vgg_spec = ModelSpec.from_config(vgg_spec)
        self._vgg_spec = vgg_spec

    @property
    def spec(self) -> ModelSpec | None:
        """The architecture this model was built from (None when cloned without it)."""
        return self._vgg_spec

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self._vgg_spec is not None:
            config["vgg_spec"] = self._vgg_spec.to_config()
        return config


# --------------------------------------------------------------------------- building


def _channel_axis(data_format: str) -> int:
    """The channel axis of a batched image tensor."""
    return 1 if data_format == "channels_first" else -1


def _conv_unit(x, spec: configs_lib.ConvSpec, block: int, index: int, model_spec: ModelSpec):
    """One Table 1 convolution: Conv(ReLU), or Conv -> BN -> ReLU for BN variants."""
    activation = None if model_spec.batch_norm else "relu"
    x = keras.layers.Conv2D(
        spec.filters,
        spec.kernel_size,
        padding="same",
        activation=activation,
        kernel_initializer=model_spec.kernel_initializer,
        data_format=model_spec.data_format,
        name=f"block{block}_conv{index}",
    )(x)
    if model_spec.batch_norm:
        # torchvision's BatchNorm2d defaults (momentum 0.1 there == 0.9 here, eps 1e-5).
        x = keras.layers.BatchNormalization(
            axis=_channel_axis(model_spec.data_format), momentum=0.9, epsilon=1e-5, name=f"block{block}_bn{index}"
        )(x)
        x = keras.layers.ReLU(name=f"block{block}_relu{index}")(x)
    return x


def _conv_body(x, spec: ModelSpec):
    """The five conv blocks, each ending in a 2x2/2 max-pool."""
    for block, convs in enumerate(spec.blocks, start=1):
        for index, conv in enumerate(convs, start=1):
            x = _conv_unit(x, conv, block, index, spec)
            if spec.lrn and block == 1 and index == 1:
                x = LocalResponseNormalization(data_format=spec.data_format, name="block1_lrn")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, data_format=spec.data_format, name=f"block{block}_pool")(x)
    return x


def _dropout(x, spec: ModelSpec, name: str):
    return keras.layers.Dropout(spec.dropout, name=name)(x) if spec.dropout > 0 else x


def _dense_head(x, spec: ModelSpec):
    init = spec.kernel_initializer
    # Keras' Flatten moves channels last first, so fc1's rows are (h, w, c) in both data formats.
    x = keras.layers.Flatten(data_format=spec.data_format, name="flatten")(x)
    x = keras.layers.Dense(spec.fc_units, activation="relu", kernel_initializer=init, name="fc1")(x)
    x = _dropout(x, spec, "fc1_dropout")
    x = keras.layers.Dense(spec.fc_units, activation="relu", kernel_initializer=init, name="fc2")(x)
    x = _dropout(x, spec, "fc2_dropout")
    return _applied(
        x, classifier_layers(spec.classes, "dense", activation=spec.classifier_activation, kernel_initializer=init)
    )


def _conv_head(x, spec: ModelSpec):
    """The paper's dense-evaluation head: fc1 a valid conv, fc2/fc3 1x1 convs, averaged scores."""
    init, data_format = spec.kernel_initializer, spec.data_format
    kernel = spec.base_size // 32
    x = keras.layers.Conv2D(
        spec.fc_units, kernel, activation="relu", kernel_initializer=init, data_format=data_format, name="fc1"
    )(x)
    x = _dropout(x, spec, "fc1_dropout")
    x = keras.layers.Conv2D(
        spec.fc_units, 1, activation="relu", kernel_initializer=init, data_format=data_format, name="fc2"
    )(x)
    x = _dropout(x, spec, "fc2_dropout")
    return _applied(
        x,
        classifier_layers(
            spec.classes,
            "conv",
            activation=spec.classifier_activation,
            kernel_initializer=init,
            data_format=data_format,
        ),
    )


def _applied(x, layers: Sequence[keras.layers.Layer]):
    for layer in layers:
        x = layer(x)
    return x


def classifier_layers(
    classes: int,
    kind: str = "dense",
    *,
    activation: Any = "softmax",
    dropout: float = 0.0,
    kernel_initializer: Any = "glorot_uniform",
    data_format: str | None = None,
) -> list[keras.layers.Layer]:
    """New class-score layers, named as in every VGG (what fine-tuning puts on a pretrained body).

    Args:
        classes: Number of classes.
        kind: "dense": `predictions`, a Dense layer on fc2's vector. "conv": `predictions`, a
            1x1 conv on fc2's map, `score_average` (the spatial mean of the scores: the paper's
            sum-pooling) and `predictions_activation`. "pooled": `avg_pool` over the conv
            features, `head_dropout` and a Dense `predictions`.
        activation: Activation of the scores (None: logits).
        dropout: Rate of `head_dropout` ("pooled" only; 0 means no Dropout layer).
        kernel_initializer: Initializer of the score kernel.
        data_format: Of the conv layers (default: Keras' image data format).

    Returns:
        The layers to apply in order.

    Raises:
        ValueError: For an unknown `kind`.
    """
    check_choice("kind", kind, CLASSIFIERS)
    dense = keras.layers.Dense(
        classes, activation=activation, kernel_initializer=kernel_initializer, name=PREDICTIONS_LAYER
    )
    if kind == "pooled":
        pool = keras.layers.GlobalAveragePooling2D(data_format=data_format, name="avg_pool")
        return [pool] + ([keras.layers.Dropout(dropout, name="head_dropout")] if dropout else []) + [dense]
    if kind == "dense":
        return [dense]
    layers = [
        keras.layers.Conv2D(
            classes, 1, kernel_initializer=kernel_initializer, data_format=data_format, name=PREDICTIONS_LAYER
        ),
        keras.layers.GlobalAveragePooling2D(data_format=data_format, name="score_average"),
    ]
    if activation is not None:
        layers.append(keras.layers.Activation(activation, name="predictions_activation"))
    return layers


def _pooled_features(x, spec: ModelSpec):
    if spec.pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(data_format=spec.data_format, name="avg_pool")(x)
    if spec.pooling == "max":
        return keras.layers.GlobalMaxPooling2D(data_format=spec.data_format, name="max_pool")(x)
    return x


def _model_input(spec: ModelSpec, input_tensor):
    if input_tensor is None:
        return keras.Input(shape=spec.input_shape, name="input_layer"), None
    if keras.backend.is_keras_tensor(input_tensor):
        return input_tensor, input_tensor
    tensor = keras.Input(tensor=input_tensor, shape=spec.input_shape)
    return tensor, tensor


def build_from_spec(spec: ModelSpec, input_tensor=None) -> keras.Model:
    """Builds the functional model described by `spec` (no weights loaded).

    Args:
        spec: The architecture.
        input_tensor: Optional Keras tensor to use as the model's input.

    Returns:
        A `VGG` (a functional `keras.Model`) carrying `spec`.
    """
    inputs, given = _model_input(spec, input_tensor)
    x = inputs
    if spec.preprocessing is not None:
        x = _normalisation_layer(spec, x.shape[-1 if spec.data_format == "channels_last" else 1])(x)
    x = _conv_body(x, spec)
    if spec.include_top:
        x = _conv_head(x, spec) if spec.head == "conv" else _dense_head(x, spec)
    else:
        x = _pooled_features(x, spec)
    if given is not None:
        inputs = keras.utils.get_source_inputs(given)
    model = VGG(inputs, x, name=spec.name, vgg_spec=spec)
    if given is not None and spec.preprocessing is None:
        # A normalisation layer in front of `input_tensor` (as the trainer builds) is part of the model.
        model._vgg_spec = dataclasses.replace(spec, **_preprocessing_fields(model))
    return model


def _normalisation_layer(spec: ModelSpec, channels: int | None):
    """The weights' normalisation as a layer: RGB, or adapted to `channels` inputs (vgg_keras.channels)."""
    mean = None if spec.preprocessing_mean is None else list(spec.preprocessing_mean)
    if channels not in (None, 3):
        return channels_lib.ChannelPreprocessing(
            spec.preprocessing, channels, mean=mean, data_format=spec.data_format, name=PREPROCESSING_LAYER
        )
    return preprocessing_lib.preprocessing_layer(
        spec.preprocessing, name=PREPROCESSING_LAYER, mean=mean, data_format=spec.data_format
    )


def _preprocessing_fields(model: keras.Model) -> dict[str, Any]:
    """`preprocessing` / `preprocessing_mean` of the model's normalisation layer."""
    layer = channels_lib.preprocessing_layer_of(model)
    if layer is None:
        return {"preprocessing": None, "preprocessing_mean": None}
    return {"preprocessing": layer.mode, "preprocessing_mean": None if layer.mean is None else tuple(layer.mean)}


# --------------------------------------------------------------------------- validation


def _split_shape(shape: Sequence, data_format: str) -> tuple:
    """`(height, width, channels)` of an image shape without the batch axis."""
    if data_format == "channels_first":
        channels, height, width = shape
        return height, width, channels
    return tuple(shape)


def _image_shape(height, width, channels, data_format: str) -> tuple:
    """The image shape without the batch axis in `data_format` order."""
    return (channels, height, width) if data_format == "channels_first" else (height, width, channels)


def _shape_names(data_format: str) -> str:
    return "(" + ", ".join(_image_shape("height", "width", "channels", data_format)) + ")"


def _check_input_shape(shape, head: str, include_top: bool, base_size: int, pretrained: bool, data_format: str) -> None:
    """Validates `input_shape` against the head, the minimum size, the weights and the data format."""
    if len(shape) != 3:
        raise ValueError(
            f"input_shape must be {_shape_names(data_format)} with data_format={data_format!r}; "
            f"received input_shape={shape}."
        )
    height, width, channels = _split_shape(shape, data_format)
    if channels is None or channels < 1:  # RGB weights adapt to any count (vgg_keras.channels)
        allowed = "a positive number"
        raise ValueError(
            f"input_shape={shape} has channels={channels} (shape {_shape_names(data_format)}, "
            f"data_format={data_format!r}); allowed: {allowed}."
        )
    minimum = base_size if (include_top and head == "conv") else MIN_INPUT_SIZE
    for size in (height, width):
        if size is not None and size < minimum:
            why = "the conv head needs at least base_size" if minimum == base_size else "five 2x2 pools"
            raise ValueError(
                f"input_shape={shape} is too small: height and width must be >= {minimum} ({why}; "
                f"shape {_shape_names(data_format)}, data_format={data_format!r})."
            )
    if include_top and head == "dense" and (height is None or width is None):
        raise ValueError(
            f"input_shape={shape}: the dense head needs a fixed height and width; use head='conv' for any size."
        )
    if pretrained and include_top and head == "dense" and (height, width) != (base_size, base_size):
        raise ValueError(
            f"input_shape={shape}: pretrained weights with the dense head need {base_size}x{base_size} input; "
            "use include_top=False or head='conv' for other sizes."
        )


def _default_input_shape(include_top: bool, head: str, base_size: int, data_format: str) -> tuple:
    side = base_size if include_top and head == "dense" else None
    return _image_shape(side, side, 3, data_format)


def _resolve_input_shape(input_shape, input_tensor, include_top, head, base_size, pretrained, data_format) -> tuple:
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        input_shape = _default_input_shape(include_top, head, base_size, data_format)
    input_shape = tuple(input_shape)
    _check_input_shape(input_shape, head, include_top, base_size, pretrained, data_format)
    return input_shape


def _check_pretrained_head(classes: int, classifier_activation, include_top: bool) -> None:
    if include_top and classes != 1000:
        raise ValueError(
            f"classes={classes} with pretrained ImageNet weights and include_top=True; allowed: 1000 "
            "(or use include_top=False, or weights=None)."
        )
    if include_top and classifier_activation not in ("softmax", None):
        raise ValueError(
            f"classifier_activation={classifier_activation!r} with pretrained weights; allowed: 'softmax' or None."
        )


def _check_arguments(include_top, pooling, head, dropout, classes, width_multiplier, fc_units, base_size) -> None:
    check_choice("head", head, HEADS)
    check_choice("pooling", pooling, POOLINGS)
    if include_top and pooling is not None:
        raise ValueError(f"pooling={pooling!r} needs include_top=False; with include_top=True allowed: None.")
    if not include_top and head != "dense":
        raise ValueError(f"head={head!r} needs include_top=True; with include_top=False the model has no head.")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout={dropout!r}; allowed: a rate in [0, 1).")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"classes={classes!r}; allowed: a positive integer.")
    if not width_multiplier > 0:
        raise ValueError(f"width_multiplier={width_multiplier!r}; allowed: a number > 0.")
    if not isinstance(fc_units, int) or fc_units < 1:
        raise ValueError(f"fc_units={fc_units!r}; allowed: a positive integer.")
    if not isinstance(base_size, int) or base_size < MIN_INPUT_SIZE or base_size % 32:
        raise ValueError(f"base_size={base_size!r}; allowed: a multiple of 32, at least 32.")


def _scaled_blocks(config: configs_lib.VGGConfig, width_multiplier: float):
    def scale(conv):
        return dataclasses.replace(conv, filters=max(1, int(round(conv.filters * width_multiplier))))

    return tuple(tuple(scale(conv) for conv in block) for block in config.blocks)


def _initializer(kernel_initializer):
    # The paper's scheme for net A: weights N(0, 0.01^2), biases zero (Keras' bias default).
    if kernel_initializer == "paper":
        return keras.initializers.RandomNormal(mean=0.0, stddev=0.01)
    return kernel_initializer


def _preprocessing_mode(include: bool, mode: str | None, weights, arch: str) -> str | None:
    if not include:
        if mode is not None:
            raise ValueError(f"preprocessing={mode!r} needs include_preprocessing=True.")
        return None
    mode = mode or weights_lib.preprocessing_mode_for(weights, arch)
    preprocessing_lib.normalization(mode)  # an unknown mode fails here, naming the allowed ones
    return mode


def _serialized_activation(activation):
    """A classifier activation as data: a name (or a Keras config), None for logits."""
    if activation is None or isinstance(activation, str):
        return activation
    try:
        serialized = keras.activations.serialize(activation)
    except (OSError, TypeError, ValueError):  # e.g. a lambda: it builds, but cannot be saved as data
        return activation
    return None if serialized == "linear" else serialized


def _head_base_size(shape, include_top: bool, head: str, base_size: int, data_format: str) -> int:
    """The input side the head is built for: a square dense head's input side (its fc1 sees it)."""
    height, width, _ = _split_shape(shape, data_format)
    return int(height) if include_top and head == "dense" and height == width else base_size


def _resolve_data_format(data_format: str | None) -> str:
    data_format = data_format or keras.config.image_data_format()
    check_choice("data_format", data_format, DATA_FORMATS)
    return data_format


# --------------------------------------------------------------------------- public builders


def build(
    config: str = "D",
    *,
    batch_norm: bool | None = None,
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: Sequence[int | None] | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | Callable | None = "softmax",
    head: str = "dense",
    dropout: float = 0.0,
    width_multiplier: float = 1.0,
    fc_units: int = 4096,
    base_size: int = DEFAULT_SIZE,
    kernel_initializer: Any = "glorot_uniform",
    include_preprocessing: bool = False,
    preprocessing: str | None = None,
    name: str | None = None,
    data_format: str | None = None,
) -> keras.Model:
    """Builds any VGG configuration of Table 1.

    Args:
        config: Paper letter ("A", "A-LRN", "B", "C", "D", "E") or common name ("vgg11",
            "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19"), optionally with "_bn".
        batch_norm: Conv -> BatchNorm -> ReLU (torchvision's `vgg*_bn`). Default: from the name.
        include_top: Whether to include the classifier (fc1, fc2, predictions).
        weights: None (random init), a published-weights tag (see `vgg_keras.list_weights()`),
            or the path to a weights file.
        input_tensor: Optional Keras tensor to use as the model input.
        input_shape: `(height, width, channels)`, or `(channels, height, width)` with
            "channels_first". Default: `(base_size, base_size, 3)` for the dense head,
            `(None, None, 3)` otherwise (channels first: `(3, ...)`). Sides must be >= 32
            (>= base_size for the conv head); any number of channels: RGB weights are adapted
            (`vgg_keras.channels`).
        pooling: With `include_top=False`: None (4D feature map), "avg" or "max".
        classes: Number of classes of the top layer.
        classifier_activation: Activation of the top layer; None returns logits.
        head: "dense" (keras.applications) or "conv": the paper's fully-convolutional form
            for dense evaluation (fc1 a (base_size/32)-square valid conv, fc2 and predictions
            1x1 convs, class scores averaged over space, then the activation). At base_size
            input both heads compute the same function.
        dropout: Rate of the dropout after fc1 and fc2. Default 0: no Dropout layers, exactly
            keras.applications' graph; the paper trains with 0.5, which the training configs set.
        width_multiplier: Scales every conv's filters (for small experiments), e.g. 0.125.
        fc_units: Width of fc1 and fc2 (4096 in the paper).
        base_size: The crop size the head is built for (224 in the paper; a multiple of 32).
        kernel_initializer: Any Keras initializer, "glorot_uniform" (default) or "paper" for
            the paper's N(0, 0.01^2).
        include_preprocessing: Bake the normalisation into the model as a serialisable
            layer named "preprocessing", so the model takes RGB in [0, 255].
        preprocessing: The mode of that layer ("caffe", "torch", "mean_rgb"). Default: the
            one the weights expect (`vgg_keras.weights.preprocessing_mode_for`); "caffe"
            for weights=None.
        name: Model name. Default: the common name, e.g. "vgg16_bn".
        data_format: "channels_last" or "channels_first". Default: Keras' image data format
            (`keras.config.image_data_format()`), as keras.applications. Every weights file
            loads into both.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: For an unknown config, bad sizes, or arguments that contradict each
            other or the weights (each message names the argument, the value and what is allowed).
    """
    vgg_config, name_has_bn = configs_lib.resolve_model_name(config)
    if batch_norm is None:
        batch_norm = name_has_bn
    elif name_has_bn and not batch_norm:
        raise ValueError(f"config={config!r} names a BatchNorm model but batch_norm=False was given.")
    _check_arguments(include_top, pooling, head, dropout, classes, width_multiplier, fc_units, base_size)
    data_format = _resolve_data_format(data_format)
    arch = configs_lib.canonical_name(vgg_config, batch_norm)
    weights_lib.check_weights_argument(weights, arch)
    pretrained = weights_lib.is_pretrained_tag(weights)
    if pretrained:
        _check_pretrained_head(classes, classifier_activation, include_top)
    shape = _resolve_input_shape(input_shape, input_tensor, include_top, head, base_size, pretrained, data_format)
    base_size = _head_base_size(shape, include_top, head, base_size, data_format)
    spec = ModelSpec(
        blocks=_scaled_blocks(vgg_config, width_multiplier),
        config=vgg_config.letter,
        width_multiplier=float(width_multiplier),
        batch_norm=batch_norm,
        lrn=vgg_config.lrn,
        include_top=include_top,
        head=head,
        fc_units=fc_units,
        classes=classes,
        classifier_activation=_serialized_activation(classifier_activation) if include_top else None,
        dropout=dropout,
        pooling=pooling,
        base_size=base_size,
        input_shape=shape,
        kernel_initializer=_initializer(kernel_initializer),
        preprocessing=_preprocessing_mode(include_preprocessing, preprocessing, weights, arch),
        name=name or arch,
        data_format=data_format,
    )
    if not include_top:  # the classifier arguments do not shape this model: the spec keeps their defaults
        spec = dataclasses.replace(spec, head="dense", fc_units=4096, classes=1000, dropout=0.0, base_size=DEFAULT_SIZE)
    model = build_from_spec(spec, input_tensor)
    weights_lib.load_weights(model, weights, arch=arch, include_top=include_top)
    return model


def get_model(name: str, /, **kwargs) -> keras.Model:
    """The alias of `build` (same arguments, same model), e.g. `get_model("vgg16_bn", weights=None)`.

    Kept under the name model zoos use (`timm.create_model`, keras-hub presets): there is
    exactly one way to build a model, and this is it under a second name.

    Args:
        name: Any name `list_models()` shows, or a paper letter ("A" ... "E", "A-LRN").
            Positional only, so `name=` in `kwargs` names the model, as in `build`.
        **kwargs: Arguments of `build`.

    Returns:
        A `keras.Model`.
    """
    return build(name, **kwargs)


def list_models() -> list[str]:
    """The model names `get_model` accepts (each also as a paper letter)."""
    return list(configs_lib.MODEL_NAMES)


# --------------------------------------------------------------------------- what a model is


def _conv_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if _CONV_NAME.match(layer.name)]


def _spec_blocks(model: keras.Model):
    blocks: dict[int, list[configs_lib.ConvSpec]] = {}
    for layer in _conv_layers(model):
        block = int(_CONV_NAME.match(layer.name).group(1))
        blocks.setdefault(block, []).append(configs_lib.ConvSpec(layer.filters, layer.kernel_size[0]))
    return tuple(tuple(blocks[b]) for b in sorted(blocks))


def _layer_or_none(model: keras.Model, name: str):
    return next((layer for layer in model.layers if layer.name == name), None)


def _config_letter(blocks, lrn: bool) -> str:
    """The Table 1 letter whose conv counts and kernel sizes are those of `blocks`."""
    kernels = tuple(tuple(conv.kernel_size for conv in block) for block in blocks)
    for letter, config in configs_lib.CONFIGS.items():
        if config.lrn == lrn and tuple(tuple(c.kernel_size for c in b) for b in config.blocks) == kernels:
            return letter
    raise ValueError(f"The conv blocks {kernels} (kernel sizes) match no configuration of Table 1.")


def _derived_top(model: keras.Model, fc1, data_format: str) -> dict[str, Any]:
    """Head, base size, widths and activation of a classifier, read from its layers."""
    dropout_layer = _layer_or_none(model, "fc1_dropout")
    predictions = _layer_or_none(model, PREDICTIONS_LAYER)
    if predictions is None:
        raise ValueError(f"Model {model.name!r} has a layer 'fc1' but no 'predictions': not a vgg_keras VGG.")
    dropout = dropout_layer.rate if dropout_layer else 0.0
    if isinstance(fc1, keras.layers.Conv2D):
        activation_layer = _layer_or_none(model, "predictions_activation")
        activation = keras.activations.serialize(activation_layer.activation) if activation_layer else None
        return {
            "head": "conv",
            "base_size": fc1.kernel_size[0] * 32,
            "classifier_activation": activation,
            "fc_units": fc1.filters,
            "classes": predictions.filters,
            "dropout": dropout,
        }
    height, width, _ = _split_shape(tuple(model.input_shape[1:]), data_format)
    if height != width:
        raise ValueError(f"A dense head needs a square input; model {model.name!r} takes {model.input_shape}.")
    activation = keras.activations.serialize(predictions.activation)
    activation = None if activation == "linear" else activation
    return {
        "head": "dense",
        "base_size": int(height),
        "classifier_activation": activation,
        "fc_units": fc1.units,
        "classes": predictions.units,
        "dropout": dropout,
    }


def _derived_spec(model: keras.Model) -> ModelSpec:
    """The spec of a model that does not carry one, read once from its layer names and types.

    Such a model was saved before vgg_keras 0.1, or is a plain `keras.Model` around a VGG's layers.
    """
    conv = _layer_or_none(model, "block1_conv1")
    if conv is None:
        raise ValueError(f"Needs a vgg_keras model (a layer 'block1_conv1'); model {model.name!r} has none.")
    blocks, lrn = _spec_blocks(model), _layer_or_none(model, "block1_lrn") is not None
    letter = _config_letter(blocks, lrn)
    common = {
        "blocks": blocks,
        "config": letter,
        "width_multiplier": blocks[-1][-1].filters / configs_lib.CONFIGS[letter].blocks[-1][-1].filters,
        "batch_norm": _layer_or_none(model, "block1_bn1") is not None,
        "lrn": lrn,
        "input_shape": tuple(model.input_shape[1:]),
        **_preprocessing_fields(model),
        "name": model.name,
        "data_format": conv.data_format,
    }
    fc1 = _layer_or_none(model, "fc1")
    if fc1 is None:  # include_top=False: the features, maybe pooled
        pooling = next((p for p in ("avg", "max") if _layer_or_none(model, f"{p}_pool") is not None), None)
        return ModelSpec(include_top=False, pooling=pooling, classifier_activation=None, **common)
    return ModelSpec(**_derived_top(model, fc1, conv.data_format), **common)


def _spec(model: keras.Model) -> ModelSpec:
    """The spec the model carries, or (a model saved without one) the one its layers imply."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; received {type(model).__name__}.")
    carried = model.spec if isinstance(model, VGG) else None
    return carried if carried is not None else _derived_spec(model)


def _relu_name(block: int, index: int, batch_norm: bool) -> str:
    """The layer whose output is the ReLU of conv `index` in `block` (the conv itself without BN)."""
    return f"block{block}_relu{index}" if batch_norm else f"block{block}_conv{index}"


def _relu_names(blocks, batch_norm: bool) -> dict[str, str]:
    return {
        f"relu{block}_{index}": _relu_name(block, index, batch_norm)
        for block, convs in enumerate(blocks, start=1)
        for index in range(1, len(convs) + 1)
    }


def relu_layer_names(config: str) -> dict[str, str]:
    """Every ReLU output of an architecture: `{relu name: Keras layer name}`, in order.

    Args:
        config: A model name or paper letter ("vgg16", "E", "vgg19_bn").

    Returns:
        E.g. `{"relu1_1": "block1_conv1", ..., "relu5_3": "block5_conv3"}` for vgg16
        (`"block1_relu1"`, ... for the BatchNorm variants, whose ReLU is a layer of its own).

    Raises:
        ValueError: For an unknown name.
    """
    vgg_config, batch_norm = configs_lib.resolve_model_name(config)
    return _relu_names(vgg_config.blocks, batch_norm)


@dataclasses.dataclass(frozen=True)
class ModelDescription:
    """What a vgg_keras model is, and the names of its key layers (from `describe`).

    Attributes:
        spec: The full `ModelSpec` (rebuild with `build_from_spec`).
        carried: True when the model carries its spec; False when it was read from the
            layers (a model saved before the spec was carried, or a plain `keras.Model`
            made of a VGG's layers).
        config: The paper's letter ("A", "A-LRN", "B", "C", "D", "E").
        batch_norm: Whether each conv is followed by BatchNorm and a ReLU layer.
        lrn: Whether LRN follows the first conv (A-LRN).
        width_multiplier: The factor the paper's filter counts were scaled by.
        head: "dense", "conv", or None for a model without its classifier.
        base_size: The input side the head is built for.
        classes: Width of the predictions layer (None without a classifier).
        classifier_activation: The top layer's activation (None for logits or no classifier).
        fc_units: Width of fc1 and fc2 (None without a classifier).
        pooling: The global pooling of a model without classifier (None, "avg", "max").
        preprocessing: The mode of the baked-in normalisation, or None when the model takes
            normalised input.
        data_format: "channels_last" or "channels_first".
        input_shape: The input shape without the batch axis.
        preprocessing_layer: Name of the normalisation layer (None without one).
        conv_layers: Every conv of the five blocks, in order.
        relu_layers: `{relu name: layer}` for every ReLU output ("relu2_2": "block2_conv2").
        pool_layers: The five block max-pools, in order.
        first_conv: The first conv layer (the one that sees the input channels).
        last_conv: The last conv layer.
        features_layer: The conv body's output (the last block's pool).
        fc_layers: The hidden classifier layers ("fc1", "fc2"; empty without a classifier).
        predictions_layer: The class-score layer (None without one). A model without fc
            layers may still have one: fine-tuning's pooled classifier (`classifier_layers`).
        activation_layer: The separate activation layer of a conv head (None otherwise).
        score_layers: The predictions layer and the layers after it (averaging, activation):
            the layers to keep in float32 under mixed precision.
        stages: The model's layers by stage (`layer_stage`), in model order: "block1" ...
            "block5" (convs, BatchNorm, ReLU, LRN, pool), "fc" (flatten, fc1, fc2 and their
            dropout) and "head" (the score layers, and a pooled classifier's pooling and dropout);
            only the stages the model has. `STAGES` are the names a config unfreezes.
    """

    spec: ModelSpec
    carried: bool
    config: str
    batch_norm: bool
    lrn: bool
    width_multiplier: float
    head: str | None
    base_size: int
    classes: int | None
    classifier_activation: Any
    fc_units: int | None
    pooling: str | None
    preprocessing: str | None
    data_format: str
    input_shape: tuple
    preprocessing_layer: str | None
    conv_layers: tuple[str, ...]
    relu_layers: dict[str, str]
    pool_layers: tuple[str, ...]
    first_conv: str
    last_conv: str
    features_layer: str
    fc_layers: tuple[str, ...]
    predictions_layer: str | None
    activation_layer: str | None
    score_layers: tuple[str, ...]
    stages: dict[str, tuple[str, ...]]


def layer_stage(name: str) -> str | None:
    """The stage a layer of a VGG (or of a model fine-tuned from one) belongs to.

    Args:
        name: A layer name.

    Returns:
        "block1" ... "block5", "fc" (flatten, fc1, fc2 and their dropout), "head" (the class
        scores and a pooled classifier's layers), or None (input, preprocessing, other layers).
    """
    match = _BLOCK_NAME.match(name)
    if match:
        return match.group(1)
    if name in _FC_STAGE:
        return "fc"
    return "head" if name in _HEAD_STAGE else None


def _stages(model: keras.Model) -> dict[str, tuple[str, ...]]:
    stages: dict[str, list[str]] = {}
    for layer in model.layers:
        stage = layer_stage(layer.name)
        if stage is not None:
            stages.setdefault(stage, []).append(layer.name)
    return {stage: tuple(names) for stage, names in stages.items()}


def _top_names(spec: ModelSpec, model: keras.Model) -> dict[str, Any]:
    if not spec.include_top:
        # Without fc layers, a classifier can only be fine-tuning's pooled one: pooling, dropout, predictions.
        predictions = _layer_or_none(model, PREDICTIONS_LAYER)
        names = () if predictions is None else (PREDICTIONS_LAYER,)
        return {
            "fc_layers": (),
            "predictions_layer": names[0] if names else None,
            "activation_layer": None,
            "score_layers": names,
        }
    activation = _SCORE_LAYERS[2] if spec.head == "conv" and spec.classifier_activation is not None else None
    after = (_SCORE_LAYERS[1],) + ((activation,) if activation else ()) if spec.head == "conv" else ()
    return {
        "fc_layers": ("fc1", "fc2"),
        "predictions_layer": PREDICTIONS_LAYER,
        "activation_layer": activation,
        "score_layers": (PREDICTIONS_LAYER,) + after,
    }


def _classes(spec: ModelSpec, model: keras.Model, predictions: str | None) -> int | None:
    if spec.include_top or predictions is None:
        return spec.classes if spec.include_top else None
    layer = model.get_layer(predictions)
    return int(getattr(layer, "units", None) or layer.filters)


def describe(model: keras.Model) -> ModelDescription:
    """What a vgg_keras model is: the one way the rest of the package asks.

    Reads the spec the model carries (every model vgg_keras builds, also after a `.keras`
    round trip), or, for a model saved before vgg_keras carried it, derives it once from
    the layers. No module outside `vgg_keras.models` looks layers up by name.

    Args:
        model: A vgg_keras model (any config, head, data format, with or without classifier).

    Returns:
        A `ModelDescription`.

    Raises:
        TypeError: If `model` is not a `keras.Model`.
        ValueError: If it is not a vgg_keras VGG (no layer "block1_conv1", ...).
    """
    spec = _spec(model)
    convs = tuple(f"block{b}_conv{i}" for b, block in enumerate(spec.blocks, 1) for i in range(1, len(block) + 1))
    pools = tuple(f"block{b}_pool" for b in range(1, len(spec.blocks) + 1))
    top, names = spec.include_top, _top_names(spec, model)
    return ModelDescription(
        spec=spec,
        carried=isinstance(model, VGG) and model.spec is not None,
        config=spec.config,
        batch_norm=spec.batch_norm,
        lrn=spec.lrn,
        width_multiplier=spec.width_multiplier,
        head=spec.head if top else None,
        base_size=spec.base_size,
        classes=_classes(spec, model, names["predictions_layer"]),
        classifier_activation=spec.classifier_activation if top else None,
        fc_units=spec.fc_units if top else None,
        pooling=spec.pooling,
        preprocessing=spec.preprocessing,
        data_format=spec.data_format,
        input_shape=tuple(model.input_shape[1:]),
        preprocessing_layer=getattr(channels_lib.preprocessing_layer_of(model), "name", None),
        conv_layers=convs,
        relu_layers=_relu_names(spec.blocks, spec.batch_norm),
        pool_layers=pools,
        first_conv=convs[0],
        last_conv=convs[-1],
        features_layer=pools[-1],
        stages=_stages(model),
        **names,
    )


def _require_top(model: keras.Model) -> ModelSpec:
    spec = _spec(model)
    if not spec.include_top:
        raise ValueError(
            f"Needs a vgg_keras model with its classifier (layers 'fc1' ... 'predictions'); "
            f"model {model.name!r} has none (built with include_top=False?)."
        )
    return spec


def data_format_of(model: keras.Model) -> str:
    """The image data format a vgg_keras model was built with (`describe(model).data_format`).

    Args:
        model: A vgg_keras model.

    Returns:
        "channels_last" or "channels_first".

    Raises:
        ValueError: If the model is not a vgg_keras VGG.
    """
    return _spec(model).data_format


def head_of(model: keras.Model) -> tuple[str, int, Any]:
    """Deprecated: use `describe(model)` (`.head`, `.base_size`, `.classifier_activation`).

    Returns:
        `(head, base_size, classifier_activation)`.

    Raises:
        ValueError: If the model has no classifier.
    """
    warnings.warn("vgg_keras.models.head_of is deprecated; use vgg_keras.describe(model).", DeprecationWarning, 2)
    spec = _require_top(model)
    return spec.head, spec.base_size, spec.classifier_activation


def _copy_weights_reshaped(source: keras.Model, target: keras.Model) -> None:
    """Copies every layer's weights by name, reshaping FC kernels between dense and conv form."""
    for layer in target.layers:
        if not layer.weights:
            continue
        values = source.get_layer(layer.name).get_weights()
        layer.set_weights([v.reshape(w.shape) for v, w in zip(values, layer.weights)])


def _rebuilt(model: keras.Model, spec: ModelSpec) -> keras.Model:
    converted = build_from_spec(spec)
    _copy_weights_reshaped(model, converted)
    return converted


def _with_head(model: keras.Model, head: str) -> keras.Model:
    """`model` rebuilt with `head` ("dense": base_size input; "conv": any size), weights copied."""
    spec = _require_top(model)
    if spec.head == head:
        return model
    height, width, _ = _split_shape(tuple(model.input_shape[1:]), spec.data_format)
    if height != width:
        raise ValueError(f"A dense head needs a square input; model {model.name!r} takes {model.input_shape}.")
    side = spec.base_size if head == "dense" else None
    channels = _split_shape(tuple(model.input_shape[1:]), spec.data_format)[2]
    shape = _image_shape(side, side, channels, spec.data_format)
    return _rebuilt(model, dataclasses.replace(spec, head=head, input_shape=shape))


def to_data_format(model: keras.Model, data_format: str) -> keras.Model:
    """The same vgg_keras model in the other image data format, weights included.

    Kernels have the same shapes in both formats, so the weights are copied unchanged and
    the result's outputs are the input model's, transposed (`(B, C, H, W)` <-> `(B, H, W, C)`
    for maps; vectors are equal). Use it to run a channels-first model where only
    channels-last convolutions run (TensorFlow on CPU), or the reverse.

    Args:
        model: A vgg_keras model (any head, with or without the classifier).
        data_format: "channels_last" or "channels_first".

    Returns:
        A new `keras.Model` in `data_format` with input `(H, W, C)` or `(C, H, W)`; a model
        already in `data_format` is returned unchanged.

    Raises:
        ValueError: For an unknown `data_format` or a model that is not a vgg_keras VGG.
    """
    check_choice("data_format", data_format, DATA_FORMATS)
    spec = _spec(model)
    if spec.data_format == data_format:
        return model
    shape = _image_shape(*_split_shape(tuple(model.input_shape[1:]), spec.data_format), data_format)
    return _rebuilt(model, dataclasses.replace(spec, data_format=data_format, input_shape=shape))


def to_fully_convolutional(model: keras.Model) -> keras.Model:
    """Converts a dense-head VGG into the paper's fully-convolutional form, weights included.

    fc1's kernel `(7*7*512, 4096)` becomes a 7x7 valid conv `(7, 7, 512, 4096)` (exact, since
    Keras' Flatten is row-major over (h, w, c) in both data formats); fc2 and predictions become 1x1
    convs. The result accepts any input of at least `base_size` (224) pixels and at
    `base_size` returns exactly the dense model's output. A model that is already
    fully-convolutional is returned unchanged.

    Args:
        model: A vgg_keras model built with `include_top=True`.

    Returns:
        A new `keras.Model` with `head="conv"` and input shape `(None, None, channels)`
        (`(channels, None, None)` for a channels-first model).

    Raises:
        ValueError: If the model has no classifier or a non-square input.
    """
    return _with_head(model, "conv")


def to_dense(model: keras.Model) -> keras.Model:
    """The reverse of `to_fully_convolutional`: a conv-head VGG back to the dense head.

    Args:
        model: A vgg_keras model built with `include_top=True`.

    Returns:
        A new `keras.Model` with `head="dense"` and input `(base_size, base_size, channels)`;
        a dense-head model is returned unchanged.

    Raises:
        ValueError: If the model has no classifier.
    """
    return _with_head(model, "dense")


def score_map_model(model: keras.Model) -> keras.Model:
    """A model returning the raw class-score map (before spatial averaging and soft-max).

    Args:
        model: A vgg_keras model with a classifier (dense heads are converted first).

    Returns:
        A `keras.Model` mapping images `[B, H, W, C]` to scores `[B, h, w, classes]`
        (channels first: `[B, C, H, W]` to `[B, classes, h, w]`).
    """
    conv_model = to_fully_convolutional(model)
    return keras.Model(conv_model.input, conv_model.get_layer(PREDICTIONS_LAYER).output, name=f"{model.name}_scores")


def feature_extractor(model: keras.Model, layer_names: Sequence[str] | None = None) -> keras.Model:
    """A model returning intermediate features of a VGG as a dict.

    Default outputs: the pooled feature map of every block (`block1_pool` ... `block5_pool`)
    and, when the model has a classifier, the 4096-d `fc2` activations (after ReLU, before
    dropout): a vector for the dense head, a spatial map for the conv head, which is what
    the paper's Appendix B applies densely and averages.

    Args:
        model: A vgg_keras model.
        layer_names: Names of the layers whose outputs to return.

    Returns:
        A `keras.Model` whose output is a dict `{layer_name: tensor}`.

    Raises:
        ValueError: If a requested layer is not in the model.
    """
    if layer_names is None:
        description = describe(model)
        layer_names = list(description.pool_layers) + list(description.fc_layers[-1:])
    available = [layer.name for layer in model.layers]
    missing = [name for name in layer_names if name not in available]
    if missing:
        raise ValueError(f"layer_names {missing} are not in model {model.name!r}; available: {available}.")
    outputs = {name: model.get_layer(name).output for name in layer_names}
    return keras.Model(model.input, outputs, name=f"{model.name}_features")


# --------------------------------------------------------------------------- paper initialisation


def _checked_copy(source_layer, target_layer) -> None:
    source_values = source_layer.get_weights()
    target_shapes = [tuple(w.shape) for w in target_layer.weights]
    if len(source_values) < 2 or len(target_shapes) < 2:
        raise ValueError(f"Layer {target_layer.name!r} has no kernel and bias to copy.")
    kernel, bias = source_values[:2]
    if kernel.size != int(keras.ops.prod(target_shapes[0])) or bias.shape != target_shapes[1]:
        raise ValueError(
            f"Cannot copy layer {source_layer.name!r}: source kernel/bias shapes {kernel.shape}/{bias.shape} "
            f"do not fit the target's {target_shapes[0]}/{target_shapes[1]} (same widths and classes needed)."
        )
    rest = [w.numpy() if hasattr(w, "numpy") else keras.ops.convert_to_numpy(w) for w in target_layer.weights[2:]]
    target_layer.set_weights([kernel.reshape(target_shapes[0]), bias] + rest)


def init_from_shallower(
    model: keras.Model,
    source: keras.Model,
    num_conv_layers: int = 4,
    fc_layers: Sequence[str] = PAPER_INIT_FC_LAYERS,
) -> list[str]:
    """The paper's initialisation of deeper nets from a trained net A (section 3.1).

    Copies the first `num_conv_layers` conv layers of `source` (for A: block1_conv1,
    block2_conv1, block3_conv1, block3_conv2) into the layers of the same name in `model`,
    and the FC layers `fc_layers`; every other layer keeps its initialisation. Works between
    dense and conv heads (kernels are reshaped) and into BN variants (conv kernel and bias
    only; BN statistics stay fresh).

    Args:
        model: The deeper model to initialise (modified in place).
        source: The trained shallower model (normally config A, same widths and classes).
        num_conv_layers: How many of the source's first conv layers to copy (4 in the paper).
        fc_layers: The classifier layers to copy (all three in the paper).

    Returns:
        The names of the layers that were copied.

    Raises:
        ValueError: If a layer is missing from either model or its shapes differ.
    """
    names = [layer.name for layer in _conv_layers(source)[:num_conv_layers]] + list(fc_layers)
    for name in names:
        source_layer, target_layer = _layer_or_none(source, name), _layer_or_none(model, name)
        if source_layer is None or target_layer is None:
            where = "source" if source_layer is None else "model"
            raise ValueError(f"init_from_shallower: layer {name!r} is missing from the {where} ({names} are copied).")
        _checked_copy(source_layer, target_layer)
    return names


# --------------------------------------------------------------------------- named builders


def _named_builder(model_name: str, default_weights: str | None) -> Callable[..., keras.Model]:
    config, batch_norm = configs_lib.resolve_model_name(model_name)

    def builder(
        include_top: bool = True,
        weights: str | None = default_weights,
        input_tensor=None,
        input_shape=None,
        pooling: str | None = None,
        classes: int = 1000,
        classifier_activation="softmax",
        name: str | None = None,
        **kwargs,
    ) -> keras.Model:
        return build(
            model_name,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            name=name,
            **kwargs,
        )

    variant = " with BatchNorm" if batch_norm else ""
    builder.__doc__ = (
        f"VGG configuration {config.letter} ({model_name}{variant}), {config.weight_layers} weight layers.\n\n"
        "Same arguments, meaning and defaults as `keras.applications.VGG16`, and with default\n"
        "arguments the same graph (layers, names, shapes; no Dropout) in either image data format;\n"
        "extra keyword arguments (`head`, `dropout`, `width_multiplier`, `fc_units`, `base_size`,\n"
        "`kernel_initializer`, `data_format`, ...) are those of `vgg_keras.build`.\n\n"
        f"Default weights: {default_weights!r}.\n\nReturns:\n    A `keras.Model`.\n"
    )
    builder.__name__ = builder.__qualname__ = model_name.upper().replace("_", "")
    return builder


VGG11 = _named_builder("vgg11", "imagenet")
VGG11LRN = _named_builder("vgg11_lrn", None)
VGG13 = _named_builder("vgg13", "imagenet")
VGG16C = _named_builder("vgg16_c", None)
VGG16 = _named_builder("vgg16", "imagenet")
VGG19 = _named_builder("vgg19", "imagenet")
VGG11BN = _named_builder("vgg11_bn", "imagenet")
VGG13BN = _named_builder("vgg13_bn", "imagenet")
VGG16BN = _named_builder("vgg16_bn", "imagenet")
VGG19BN = _named_builder("vgg19_bn", "imagenet")
