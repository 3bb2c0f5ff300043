"""The SCR / PCR box-regression heads on a VGG classifier and their Euclidean loss (Appendix A)."""

from __future__ import annotations

import keras

from vgg_keras import models as models_lib

BOX_LAYER = "box_predictions"
LOCALIZER_MODES = ("scr", "pcr")


@keras.saving.register_keras_serializable(package="vgg_keras")
class ClassBoxSelection(keras.layers.Layer):
    """Picks each image's box of the given class(es) from per-class boxes (PCR).

    Call with ``[boxes, classes]``: boxes ``[B, C, 4]`` and int classes ``[B]`` (returns
    ``[B, 4]``) or ``[B, k]`` (returns ``[B, k, 4]``, e.g. the top-k predicted classes).
    """

    def call(self, inputs):
        boxes, classes = inputs
        return select_class_boxes(boxes, classes)

    def compute_output_shape(self, input_shape):
        boxes_shape, classes_shape = input_shape
        return tuple(classes_shape) + (boxes_shape[-1],)


def select_class_boxes(boxes, classes):
    """``boxes[b, classes[b]]`` (or ``boxes[b, classes[b, j]]``) with `keras.ops`.

    Args:
        boxes: ``[B, C, 4]`` per-class boxes.
        classes: int ``[B]`` or ``[B, k]`` class indices.

    Returns:
        ``[B, 4]`` or ``[B, k, 4]``.
    """
    classes = keras.ops.cast(classes, "int32")
    single = len(classes.shape) == 1
    index = classes[:, None] if single else classes
    picked = keras.ops.take_along_axis(boxes, index[..., None], axis=1)
    return picked[:, 0] if single else picked


def _trunk(classifier: keras.Model) -> tuple[keras.Model, keras.KerasTensor, int]:
    """A copy of the classifier (weights copied), the tensor feeding its `predictions` and its classes."""
    dense = models_lib.to_dense(classifier)
    description = models_lib.describe(dense)
    clone = keras.models.clone_model(dense)
    clone.set_weights(dense.get_weights())
    return clone, clone.get_layer(description.predictions_layer).input, description.classes


def build_localizer(
    classifier: keras.Model, mode: str = "scr", *, kernel_initializer="glorot_uniform", name: str | None = None
) -> keras.Model:
    """A localisation net: the classifier with its last layer replaced by a box regressor.

    Every layer up to fc2 (and its dropout) is a copy of the classifier's, weights
    included; the new last layer `box_predictions` is random (the paper's initialisation).
    A conv-head classifier is converted to the dense head first.

    Args:
        classifier: A vgg_keras classifier (`include_top=True`).
        mode: "scr" (one box, output ``[B, 4]``) or "pcr" (one box per class, output
            ``[B, classes, 4]``). Boxes are in ``BOX_FORMAT`` normalised by the input.
        kernel_initializer: Initialiser of the box layer.
        name: Model name (default ``<classifier>_<mode>``).

    Returns:
        A `keras.Model` mapping images to boxes (linear outputs).

    Raises:
        ValueError: For an unknown mode or a model without a classifier.
        TypeError: If `classifier` is not a keras.Model.
    """
    if not isinstance(classifier, keras.Model):
        raise TypeError(f"classifier must be a keras.Model; received {type(classifier).__name__}.")
    if mode not in LOCALIZER_MODES:
        raise ValueError(f"mode={mode!r}; allowed: {', '.join(map(repr, LOCALIZER_MODES))}.")
    clone, features, classes = _trunk(classifier)
    units = 4 if mode == "scr" else 4 * classes
    boxes = keras.layers.Dense(units, kernel_initializer=kernel_initializer, name=BOX_LAYER)(features)
    if mode == "pcr":
        boxes = keras.layers.Reshape((classes, 4), name="box_per_class")(boxes)
    return keras.Model(clone.input, boxes, name=name or f"{classifier.name}_{mode}")


def localizer_mode(localizer: keras.Model) -> str:
    """The mode, "scr" or "pcr", read from the localizer's output shape.

    Args:
        localizer: A model from `build_localizer` (or one loaded from its saved file).

    Returns:
        "scr" for ``[B, 4]`` outputs, "pcr" for ``[B, classes, 4]``.

    Raises:
        ValueError: If the model is not a localizer built by `build_localizer`.
    """
    shape = tuple(localizer.output_shape)
    if not any(layer.name == BOX_LAYER for layer in localizer.layers) or shape[-1] != 4:
        raise ValueError(
            f"Model {localizer.name!r} is not a localizer (no {BOX_LAYER!r} layer with "
            f"4-coordinate boxes; output shape {shape}). Use build_localizer()."
        )
    return "scr" if len(shape) == 2 else "pcr"


def box_training_model(localizer: keras.Model) -> keras.Model:
    """The model `fit` trains: images (+ ground-truth classes for PCR) -> one box each.

    For SCR it is the localizer itself. For PCR it takes ``[images, labels]`` and returns
    the box of each image's ground-truth class (only that box gets a gradient, as in the
    paper); its layers are the localizer's, so training it trains the localizer.

    Args:
        localizer: A model from `build_localizer`.

    Returns:
        A `keras.Model` with output ``[B, 4]``.
    """
    if localizer_mode(localizer) == "scr":
        return localizer
    labels = keras.Input(shape=(), dtype="int32", name="labels")
    boxes = ClassBoxSelection(name="box_of_class")([localizer.output, labels])
    return keras.Model([localizer.input, labels], boxes, name=f"{localizer.name}_train")


def euclidean_loss(y_true, y_pred):
    """Caffe's Euclidean loss per example: ``0.5 * ||y_pred - y_true||^2`` (summed over 4 coordinates).

    Args:
        y_true: ``[B, 4]`` target boxes.
        y_pred: ``[B, 4]`` predicted boxes.

    Returns:
        ``[B]`` losses.
    """
    return 0.5 * keras.ops.sum(keras.ops.square(y_pred - y_true), axis=-1)
