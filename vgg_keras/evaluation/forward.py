"""Class posteriors of one model for a batch of images of (possibly) different sizes.

Every evaluation method ends in the same computation: the fully-convolutional form of the
model (section 3.2) turns images into a class-score map, the map is averaged over space,
and the soft-max gives the posterior. `ModelRunner` does this for a padded batch whose
images have different valid sizes, with results equal to running each image alone.

A batch whose images all fill it (crops, one image, images of one shape) runs the plain
forward pass: no padding, no masks. A padded batch needs masks, since zero padding alone
would not give that equality: after the first conv + ReLU the padded area holds
relu(bias) != 0, which a later "same" 3x3 conv reads into the valid positions next to it.
VGG is a chain, so the runner calls its layers in sequence and zeroes the padding only
where a layer could read it into a valid output: at the input of "same"-padded convs and
pools with a window > 1, and of layers it does not know. Pointwise layers (ReLU, batch
norm, LRN, 1x1 convs) and "valid" convs and pools (fc1, the 2x2 pools) never read padding
into a valid output, so whatever they leave in it is never used. The mask is built once
per resolution (the valid sizes change only at pools and valid convs), its multiply is
skipped where every image fills the map, and the final average counts valid score
positions only. Normalisation happens before the first mask, so the padding is zero in
the normalised space, exactly like a conv's own "same" padding on a single image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import tensorflow as tf

from vgg_keras import channels as channels_lib
from vgg_keras import layers as layers_lib
from vgg_keras import models as models_lib
from vgg_keras import preprocessing as preprocessing_lib

Preprocess = Callable[[tf.Tensor], tf.Tensor]

_SPATIAL = (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
# Layers whose output at a position depends on the input at that position only.
_POINTWISE = (
    keras.layers.BatchNormalization,
    keras.layers.ReLU,
    keras.layers.Activation,
    keras.layers.Dropout,
    keras.layers.Rescaling,
    layers_lib.LocalResponseNormalization,
    preprocessing_lib.Preprocessing,
    channels_lib.ChannelPreprocessing,
)


def _window(layer: keras.layers.Layer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(kernel or pool size, strides) of a conv or pooling layer."""
    window = layer.kernel_size if isinstance(layer, keras.layers.Conv2D) else layer.pool_size
    return tuple(window), tuple(layer.strides)


def _output_size(layer: keras.layers.Layer, size: tf.Tensor) -> tf.Tensor:
    """Valid spatial size after `layer` (int32 `[..., 2]`), for the layers a VGG chain holds.

    Returns `size` itself when the layer keeps it (pointwise layers, 1x1 stride-1 convs,
    "same" stride-1 convs), so that the caller can keep its mask.
    """
    if not isinstance(layer, _SPATIAL):
        return size
    window, strides = _window(layer)
    if strides == (1, 1) and (layer.padding == "same" or window == (1, 1)):
        return size
    window, strides = tf.constant(window, tf.int32), tf.constant(strides, tf.int32)
    if layer.padding == "same":
        return (size + strides - 1) // strides
    return (size - window) // strides + 1


def _reads_padding(layer: keras.layers.Layer) -> bool:
    """Whether a valid output of `layer` can depend on input positions outside the valid region."""
    if isinstance(layer, _SPATIAL):
        window, _ = _window(layer)
        return layer.padding == "same" and window != (1, 1)
    return not isinstance(layer, _POINTWISE)


def _mask(size: tf.Tensor, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """`[B, height, width, 1]` float mask: 1 inside each image's top-left `size` region."""
    rows = tf.range(height)[None, :, None] < size[:, 0, None, None]
    cols = tf.range(width)[None, None, :] < size[:, 1, None, None]
    return tf.cast(tf.logical_and(rows, cols), tf.float32)[..., None]


class _Masker:
    """Zeroes the padding of a feature map; one mask per resolution, no multiply where nothing is padded."""

    def __init__(self, size: tf.Tensor):
        self.size, self._mask = size, None

    def resize(self, size: tf.Tensor) -> None:
        if size is not self.size:
            self.size, self._mask = size, None

    def mask(self, x: tf.Tensor) -> tf.Tensor:
        if self._mask is None:
            shape = tf.shape(x)
            self._mask = _mask(self.size, shape[1], shape[2])
        return self._mask

    def apply(self, x: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(x)
        fills = tf.reduce_all(self.size == shape[None, 1:3])
        mask = self.mask(x)
        return tf.cond(fills, lambda: tf.identity(x), lambda: x * mask)


def _chain(conv_model: keras.Model, last: str) -> list[keras.layers.Layer]:
    """The layers from the input to `last` (the predictions layer), checked to form a single chain."""
    layers, previous = [], conv_model.inputs[0]
    for layer in conv_model.layers[1:]:
        if layer.input is not previous:
            raise ValueError(
                f"Model {conv_model.name!r} is not a plain chain of layers at {layer.name!r}; "
                "masked dense evaluation needs a vgg_keras VGG (a sequence of layers)."
            )
        layers.append(layer)
        previous = layer.output
        if layer.name == last:
            return layers
    raise ValueError(f"Model {conv_model.name!r} has no {last!r} layer.")


@dataclasses.dataclass
class ModelRunner:
    """One model prepared for evaluation (conv head, preprocessing, compiled forward).

    Attributes:
        name: Name used in reports.
        base_size: Smallest input side the conv head accepts (its training crop size).
        num_classes: Width of the posteriors.
        layers: The chain of layers from the first one after the input to `predictions`.
        preprocess: Normalisation applied to RGB 0..255 images before the chain (None when
            the model normalises itself or needs nothing).
        activation: Turns averaged class scores into posteriors.
    """

    name: str
    base_size: int
    num_classes: int
    layers: list
    preprocess: Preprocess | None
    activation: Callable

    def __post_init__(self):
        image_spec = tf.TensorSpec([None, None, None, None], tf.float32)
        size_spec = tf.TensorSpec([None, 2], tf.int32)
        self._masked = tf.function(self._masked_posteriors, input_signature=[image_spec, size_spec])
        self._full = tf.function(self._full_posteriors, input_signature=[image_spec])

    def _normalised(self, images: tf.Tensor) -> tf.Tensor:
        return tf.convert_to_tensor(self.preprocess(images) if self.preprocess is not None else images, tf.float32)

    def _full_posteriors(self, images: tf.Tensor) -> tf.Tensor:
        # Images that fill the batch (crops, equal shapes): no masks, which would only cost memory traffic.
        x = self._normalised(images)
        for layer in self.layers:
            x = layer(x, training=False)
        return self.activation(tf.reduce_mean(x, axis=[1, 2]))

    def _masked_posteriors(self, images: tf.Tensor, sizes: tf.Tensor) -> tf.Tensor:
        x, masker = self._normalised(images), _Masker(sizes)
        for layer in self.layers:
            if _reads_padding(layer):
                x = masker.apply(x)
            x = layer(x, training=False)
            masker.resize(_output_size(layer, masker.size))
        mask = masker.mask(x)
        scores = tf.reduce_sum(x * mask, axis=[1, 2]) / tf.reduce_sum(mask, axis=[1, 2])
        return self.activation(scores)

    def posteriors(self, images, sizes=None) -> tf.Tensor:
        """Posteriors `[B, classes]` of a (padded) batch.

        Args:
            images: `float32 [B, H, W, 3]` RGB in 0..255, each image in the top-left
                `sizes[b]` corner, anything (usually zeros) elsewhere.
            sizes: `int32 [B, 2]` valid (height, width) of each image, each at least
                `base_size`; None means every image fills the batch (the plain forward
                pass, no masks).

        Returns:
            `float32 [B, classes]`: class scores averaged over each image's valid score
            positions, then the model's activation (soft-max).
        """
        images = tf.convert_to_tensor(images, tf.float32)
        if sizes is None:
            return self._full(images)
        return self._masked(images, tf.cast(sizes, tf.int32))


def _activation_of(conv_model: keras.Model, description: models_lib.ModelDescription) -> Callable:
    # A model built for logits still gets posteriors: the paper averages soft-max outputs.
    if description.activation_layer is None:
        return keras.activations.softmax
    return conv_model.get_layer(description.activation_layer)


def prepare_model(model: keras.Model, preprocess: Preprocess | None = None, name: str | None = None) -> ModelRunner:
    """Turns a vgg_keras classifier (dense or conv head) into a `ModelRunner`.

    Args:
        model: A vgg_keras model with its classifier; dense heads are converted with
            `to_fully_convolutional` (weights included).
        preprocess: Normalisation for RGB 0..255 inputs, e.g.
            `vgg_keras.preprocessing.preprocess_input`; must be None when the model
            normalises its input itself (`vgg_keras.describe(model).preprocessing`).
        name: Name in reports (default: the model's name).

    Returns:
        A `ModelRunner`.

    Raises:
        ValueError: If the model has no classifier, is not a chain, would be normalised twice,
            or Keras does not run on the TensorFlow backend.
        TypeError: If `model` is not a `keras.Model` or `preprocess` is not callable.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; received {type(model).__name__}.")
    if keras.backend.backend() != "tensorflow":
        # The padded forward pass runs the layers inside tf.function, fed by tf.data.
        raise ValueError(
            f"vgg_keras.evaluation needs KERAS_BACKEND='tensorflow'; the backend is {keras.backend.backend()!r}."
        )
    if preprocess is not None and not callable(preprocess):
        raise TypeError(f"preprocess must be callable or None; received {preprocess!r}.")
    # Batches and masks are (B, H, W, C): a channels-first model runs as its channels-last twin (same weights).
    conv_model = models_lib.to_data_format(models_lib.to_fully_convolutional(model), "channels_last")
    description = models_lib.describe(conv_model)
    if preprocess is not None and description.preprocessing is not None:
        raise ValueError(
            f"preprocess={preprocess!r} given, but model {model.name!r} already normalises its input "
            f"({description.preprocessing!r} layer {description.preprocessing_layer!r}); "
            "allowed: preprocess=None for such a model (it would be normalised twice)."
        )
    return ModelRunner(
        name=name or model.name,
        base_size=description.base_size,
        num_classes=description.classes,
        layers=_chain(conv_model, description.predictions_layer),
        preprocess=preprocess,
        activation=_activation_of(conv_model, description),
    )


def load_model(spec: str, **build_kwargs) -> keras.Model:
    """A model from a command-line style spec: a saved model file or a model name.

    Args:
        spec: Path to a `.keras` / `.h5` model file (loaded with `keras.saving.load_model`),
            or a name `vgg_keras.build` accepts ("vgg16", "D", "vgg11_bn", ...).
        **build_kwargs: `vgg_keras.build` arguments (weights, classes, width_multiplier, ...)
            for a model name; ignored for files.

    Returns:
        The `keras.Model`.

    Raises:
        ValueError: If `spec` is neither an existing model file nor a known model name.
    """
    if spec.endswith((".keras", ".h5")):
        if not tf.io.gfile.exists(spec):
            raise ValueError(
                f"model={spec!r}: no such model file; allowed: an existing .keras/.h5 file or a model name."
            )
        # The Preprocessing layer a saved model may contain is registered by importing models_lib.
        return keras.saving.load_model(spec, compile=False)
    return models_lib.build(spec, **build_kwargs)
