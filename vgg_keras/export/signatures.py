"""Serving signatures with the preprocessing inside the graph.

`ServingModule` wraps a classifier so a SavedModel takes what clients have: encoded image
bytes or uint8 pixels of any size. Each image is decoded, resized and centre-cropped (or
kept whole for the paper's dense evaluation) with the same ops the evaluation pipeline
uses (`vgg_keras.data`), normalised with the weights' mode (`vgg_keras.preprocessing`) and
classified. Every signature returns the same four outputs (see `OUTPUT_NAMES`).

Speed (`benchmarks/serving.py`): only the crop's pixels of the resized image are computed
(`vgg_keras.data.resize_center_crop`); a uint8 batch, whose images share one size, is
resized in one op; the model runs once per batch with `training=False`. Encoded images are
decoded one at a time (`tf.map_fn`), as their sizes may differ. No XLA: the image sizes
are dynamic, and on the bare model it was slower on a CPU (measured in the benchmark).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import tensorflow as tf

from vgg_keras import models as models_lib
from vgg_keras._deprecation import deprecated_attributes
from vgg_keras.data import crops

__all__ = [
    "SERVING_MODES",
    "SIGNATURE_BYTES",
    "SIGNATURE_TENSOR",
    "SIGNATURE_FLOAT",
    "INPUT_IMAGES",
    "INPUT_FLOAT",
    "OUTPUT_NAMES",
    "ServingSpec",
    "ServingModule",
    "default_resize_size",
]

SERVING_MODES = ("center", "dense")
SIGNATURE_BYTES = "serving_default"
SIGNATURE_TENSOR = "predict_image_tensor"
SIGNATURE_FLOAT = "predict_float"
INPUT_IMAGES = "images"
INPUT_FLOAT = "inputs"
OUTPUT_NAMES = ("probabilities", "top_k_indices", "top_k_scores", "top_k_classes")
# The paper's geometry: 224 crops from images whose smallest side is 256.
_RESIZE_RATIO = 256 / 224


def default_resize_size(image_size: int) -> int:
    """Smallest side before the crop, in the paper's 256 : 224 ratio (73 for 64-pixel crops)."""
    return int(round(image_size * _RESIZE_RATIO))


@dataclasses.dataclass(frozen=True)
class ServingSpec:
    """How a served model turns images into predictions.

    Attributes:
        mode: "center" (resize the smallest side to `resize_size`, central `image_size`
            crop, one batched model call) or "dense" (resize only, the whole image through
            the fully-convolutional model, class scores averaged; one call per encoded
            image, one per batch of uint8 pixels, which share a size).
        image_size: Side of the centre crop (the model's input size); in dense mode the
            model's base size (the minimum it accepts).
        resize_size: Smallest side of every image after isotropic rescaling.
        top_k: How many classes the top-k outputs hold.
        class_names: One name per class, in class-index order.
    """

    mode: str
    image_size: int
    resize_size: int
    top_k: int
    class_names: tuple[str, ...]


class ServingModule(tf.Module):
    """The `tf.Module` saved as the SavedModel: a classifier plus in-graph preprocessing.

    Args:
        model: A vgg_keras classifier; fully-convolutional in dense mode.
        spec: The serving geometry and outputs.
        normalizer: Callable applied to float RGB [0, 255] images before `model`, or None
            when the model normalises its input itself (`vgg_keras.describe(model).preprocessing`).
    """

    def __init__(self, model: keras.Model, spec: ServingSpec, normalizer=None):
        super().__init__(name="vgg_keras_serving")
        self.model = model
        self.normalizer = normalizer
        self.spec = spec
        # A model built for logits gets its soft-max here.
        self._logits = models_lib.describe(model).classifier_activation is None
        self._class_names = tf.constant(list(spec.class_names), dtype=tf.string)

    # ----------------------------------------------------------------- building blocks

    def _classify(self, inputs: tf.Tensor) -> tf.Tensor:
        """Probabilities of model inputs (already resized and normalised)."""
        outputs = self.model(inputs, training=False)
        return tf.nn.softmax(outputs, axis=-1) if self._logits else outputs

    def _normalize(self, images: tf.Tensor) -> tf.Tensor:
        return images if self.normalizer is None else self.normalizer(images)

    def _crops(self, images: tf.Tensor) -> tf.Tensor:
        """Centre crops of one image `[H, W, 3]` or a batch of one size `[B, H, W, 3]`, as float32."""
        return crops.resize_center_crop(images, self.spec.resize_size, self.spec.image_size)

    def _dense_probabilities(self, images: tf.Tensor) -> tf.Tensor:
        """Class probabilities of whole images of one size `[B, H, W, 3]` (one model call)."""
        return self._classify(self._normalize(crops.resize_smallest_side(images, self.spec.resize_size)))

    def _probabilities_of_pixels(self, images: tf.Tensor) -> tf.Tensor:
        """uint8 `[B, H, W, 3]` -> `[B, classes]`, the whole batch at once.

        The images share one size, so the whole batch is resized (and cropped) in one op and classified in one model
        call.
        """
        if self.spec.mode == "center":
            return self._classify(self._normalize(self._crops(images)))
        return self._dense_probabilities(images)

    def _probabilities_of_bytes(self, encoded: tf.Tensor) -> tf.Tensor:
        """Encoded images `[B]` (sizes may differ) -> `[B, classes]`.

        Decoding is per image; in center mode so is the crop, and the crops are classified in one model call.
        """
        if self.spec.mode == "center":
            size = self.spec.image_size
            pixels = tf.map_fn(
                lambda x: self._crops(crops.decode_image(x)),
                encoded,
                fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
            )
            return self._classify(self._normalize(pixels))
        classes = len(self.spec.class_names)
        return tf.map_fn(
            lambda x: self._dense_probabilities(crops.decode_image(x)[tf.newaxis])[0],
            encoded,
            fn_output_signature=tf.TensorSpec([classes], tf.float32),
        )

    def _outputs(self, inputs: tf.Tensor, probabilities_fn) -> dict[str, tf.Tensor]:
        """The four outputs of `probabilities_fn(inputs)`.

        An empty batch skips the model (TensorFlow's CPU convolutions reject zero-sized batches).
        """
        classes = len(self.spec.class_names)
        probabilities = tf.cond(
            tf.shape(inputs)[0] > 0,
            lambda: tf.cast(probabilities_fn(inputs), tf.float32),
            lambda: tf.zeros([0, classes], tf.float32),
        )
        scores, indices = tf.math.top_k(probabilities, k=self.spec.top_k)
        return dict(zip(OUTPUT_NAMES, (probabilities, indices, scores, tf.gather(self._class_names, indices))))

    # ----------------------------------------------------------------- signatures

    def predict_bytes(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """Encoded JPEG / PNG / GIF / BMP bytes `[B]` -> outputs (grayscale, CMYK, RGBA -> RGB)."""
        return self._outputs(images, self._probabilities_of_bytes)

    def predict_image_tensor(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """uint8 RGB pixels `[B, H, W, 3]` of any size -> outputs."""
        return self._outputs(images, self._probabilities_of_pixels)

    def predict_float(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        """The Keras model's own input -> outputs.

        The input is resized, cropped and, if the model has no preprocessing layer,
        normalised. One model call per batch in both modes:
        the images of a tensor share one size, which the fully-convolutional model takes whole.
        """
        return self._outputs(inputs, self._classify)

    def signatures(self, include_float: bool = True) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """Concrete functions keyed by signature name, inputs named as documented."""
        size = self.spec.image_size if self.spec.mode == "center" else None
        functions = {
            SIGNATURE_BYTES: _named(self.predict_bytes, INPUT_IMAGES, tf.TensorSpec([None], tf.string)),
            SIGNATURE_TENSOR: _named(
                self.predict_image_tensor, INPUT_IMAGES, tf.TensorSpec([None, None, None, 3], tf.uint8)
            ),
        }
        if include_float:
            spec = tf.TensorSpec([None, size, size, 3], tf.float32)
            functions[SIGNATURE_FLOAT] = _named(self.predict_float, INPUT_FLOAT, spec)
        return functions


def _named(method, input_name: str, spec: tf.TensorSpec):
    """A concrete function whose single input is called `input_name` (the signature's key)."""
    return tf.function(method).get_concrete_function(tf.TensorSpec(spec.shape, spec.dtype, name=input_name))


def check_class_names(class_names: Sequence[str], classes: int) -> tuple[str, ...]:
    """Validates `class_names` against the number of classes.

    Raises:
        ValueError: If there is not exactly one name per class.
    """
    names = tuple(str(name) for name in class_names)
    if len(names) != classes:
        raise ValueError(
            f"class_names has {len(names)} names; allowed: exactly one per class ({classes} for this model)."
        )
    return names


__getattr__ = deprecated_attributes(__name__, {"MODES": (__name__, "SERVING_MODES")})
