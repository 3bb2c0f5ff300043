"""Object localisation (Appendix A): box-regression heads on a VGG classifier.

The paper replaces the last fully-connected layer of a classification net with a
box predictor and fine-tunes all layers with a Euclidean loss:

- single-class regression (SCR): one box (4 outputs) shared by every class;
- per-class regression (PCR): one box per class (4 x classes outputs); the box of the
  ground-truth class is trained, the box of the predicted class is used at test time.

Boxes. Sources carry ``bbox`` as normalised ``(ymin, xmin, ymax, xmax)`` of the whole
image (keras-cv's ``"rel_yxyx"``). The heads predict the paper's ``(centre x, centre y,
width, height)`` normalised by the crop the network sees: keras-cv's ``"center_xywh"``
in a unit-sized image (``BOX_FORMAT``). Format conversion and IoU are keras-cv's
(`keras_cv.bounding_box.convert_format`, `compute_iou`); IoU does not change under the
per-axis scaling between normalised and pixel coordinates, so it is computed on
normalised boxes.

A prediction is correct when its class is right and its box overlaps the ground truth
with IoU > 0.5 (``IOU_THRESHOLD``); the top-k localisation error counts an image as
wrong unless one of its k (class, box) guesses is correct. Evaluation uses the paper's
first protocol: the central crop of the image rescaled to smallest side Q.

Typical use::

    from vgg_keras import data, localization
    localizer = localization.build_localizer(classifier, mode="pcr")
    train = localization.box_train_dataset(data.get_source("builtin", "train"), batch_size=32,
                                           crop_size=64, scale=(64, 80))
    localization.train_localizer(localizer, train, steps_per_epoch=90, epochs=10)
    report = localization.evaluate_localization(localizer, data.get_source("builtin", "validation"),
                                                classifier=classifier, scale=64, crop_size=64,
                                                output_dir="runs/localization")
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from keras_cv import bounding_box
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from vgg_keras import models as models_lib
from vgg_keras.data import augment, crops
from vgg_keras.data import pipeline as pipeline_lib
from vgg_keras.data.sources import Source
from vgg_keras.evaluation import metrics
from vgg_keras.evaluation.plots import save_figure
from vgg_keras.training import optimization

__all__ = [
    "BOX_FORMAT",
    "BOX_LAYER",
    "IOU_THRESHOLD",
    "MODES",
    "ClassBoxSelection",
    "LocalizationReport",
    "box_eval_dataset",
    "box_iou",
    "box_train_dataset",
    "box_training_model",
    "build_localizer",
    "crop_boxes_to_image",
    "euclidean_loss",
    "evaluate_localization",
    "from_center_xywh",
    "image_boxes_to_crop",
    "localization_errors",
    "localization_figure",
    "localizer_mode",
    "to_center_xywh",
    "train_localizer",
]

BOX_FORMAT = "center_xywh"
BOX_LAYER = "box_predictions"
IOU_THRESHOLD = 0.5
MODES = ("scr", "pcr")
_AUTOTUNE = tf.data.AUTOTUNE

# --------------------------------------------------------------------------- boxes


def _flat_boxes(boxes, name: str) -> tuple[tf.Tensor, tf.TensorShape]:
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    if boxes.shape.rank is None or boxes.shape.rank < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape [..., 4]; received shape {boxes.shape}.")
    return tf.reshape(boxes, [-1, 4]), tf.shape(boxes)


def to_center_xywh(boxes) -> tf.Tensor:
    """Normalised ``(ymin, xmin, ymax, xmax)`` -> normalised ``(cx, cy, w, h)`` (keras-cv).

    Args:
        boxes: ``[..., 4]`` boxes as sources carry them (``"rel_yxyx"``).

    Returns:
        ``float32 [..., 4]`` in ``BOX_FORMAT``, the paper's box parametrisation.

    Raises:
        ValueError: If the last axis is not 4.
    """
    flat, shape = _flat_boxes(boxes, "boxes")
    # Normalised corners are absolute "yxyx" corners of a unit image: no image size needed.
    return tf.reshape(bounding_box.convert_format(flat, source="yxyx", target=BOX_FORMAT), shape)


def from_center_xywh(boxes) -> tf.Tensor:
    """Normalised ``(cx, cy, w, h)`` -> normalised ``(ymin, xmin, ymax, xmax)`` (keras-cv).

    Args:
        boxes: ``[..., 4]`` boxes in ``BOX_FORMAT``.

    Returns:
        ``float32 [..., 4]`` normalised corners.

    Raises:
        ValueError: If the last axis is not 4.
    """
    flat, shape = _flat_boxes(boxes, "boxes")
    return tf.reshape(bounding_box.convert_format(flat, source=BOX_FORMAT, target="yxyx"), shape)


def box_iou(boxes_a, boxes_b, bounding_box_format: str = "rel_yxyx") -> tf.Tensor:
    """Element-wise IoU of two aligned sets of boxes (keras-cv's `compute_iou`).

    Args:
        boxes_a: ``[..., 4]`` boxes.
        boxes_b: ``[..., 4]`` boxes, the same shape as ``boxes_a``.
        bounding_box_format: Any keras-cv format of absolute or unit-image coordinates,
            e.g. ``"rel_yxyx"`` (sources' ``bbox``) or ``"center_xywh"`` (the heads).

    Returns:
        ``float32 [...]``: IoU of ``boxes_a[i]`` with ``boxes_b[i]``.

    Raises:
        ValueError: If the shapes differ or the last axis is not 4.
    """
    flat_a, shape = _flat_boxes(boxes_a, "boxes_a")
    flat_b, _ = _flat_boxes(boxes_b, "boxes_b")
    shape_a, shape_b = tf.convert_to_tensor(boxes_a).shape, tf.convert_to_tensor(boxes_b).shape
    if shape_a != shape_b:
        raise ValueError(f"boxes_a and boxes_b must have the same shape; received {shape_a} and {shape_b}.")
    # Relative formats in a unit image equal their absolute counterparts.
    box_format = bounding_box_format.lower().replace("rel_", "", 1)
    pairwise = bounding_box.compute_iou(flat_a[:, None], flat_b[:, None], box_format)
    return tf.reshape(pairwise, shape[:-1])


def _window_corners(window) -> tuple[tf.Tensor, tf.Tensor]:
    """A ``(top, left, height, width)`` window as corner-shaped origin and size ``[..., 4]``."""
    window = tf.convert_to_tensor(window, tf.float32)
    return (tf.concat([window[..., :2], window[..., :2]], axis=-1),
            tf.concat([window[..., 2:], window[..., 2:]], axis=-1))


def image_boxes_to_crop(boxes, window, clip: bool = True) -> tf.Tensor:
    """Normalised image boxes -> boxes normalised by a crop window.

    Args:
        boxes: ``[..., 4]`` normalised ``(ymin, xmin, ymax, xmax)`` of the image.
        window: ``[..., 4]`` the crop as normalised ``(top, left, height, width)``.
        clip: Clip to the crop (the visible part of the object, the training target).

    Returns:
        ``float32 [..., 4]`` normalised ``(ymin, xmin, ymax, xmax)`` of the crop.
    """
    origin, size = _window_corners(window)
    cropped = (tf.convert_to_tensor(boxes, tf.float32) - origin) / size
    return tf.clip_by_value(cropped, 0.0, 1.0) if clip else cropped


def crop_boxes_to_image(boxes, window) -> tf.Tensor:
    """Inverse of `image_boxes_to_crop` (without clipping): crop boxes -> image boxes.

    Args:
        boxes: ``[..., 4]`` normalised ``(ymin, xmin, ymax, xmax)`` of the crop.
        window: ``[..., 4]`` the crop as normalised ``(top, left, height, width)`` in the image.

    Returns:
        ``float32 [..., 4]`` normalised ``(ymin, xmin, ymax, xmax)`` of the image.
    """
    origin, size = _window_corners(window)
    return tf.convert_to_tensor(boxes, tf.float32) * size + origin


def _flip_boxes(boxes: tf.Tensor) -> tf.Tensor:
    """Normalised corners of the horizontally mirrored image."""
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=-1)


# --------------------------------------------------------------------------- heads


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


def _trunk(classifier: keras.Model) -> tuple[keras.Model, keras.KerasTensor]:
    """A copy of the classifier (weights copied) and the tensor feeding its `predictions`."""
    dense = models_lib.to_dense(classifier)
    clone = keras.models.clone_model(dense)
    clone.set_weights(dense.get_weights())
    return clone, clone.get_layer("predictions").input


def build_localizer(classifier: keras.Model, mode: str = "scr", *, kernel_initializer="glorot_uniform",
                    name: str | None = None) -> keras.Model:
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
    if mode not in MODES:
        raise ValueError(f"Invalid mode={mode!r}. Allowed: {', '.join(repr(m) for m in MODES)}.")
    clone, features = _trunk(classifier)
    classes = int(clone.get_layer("predictions").units)
    units = 4 if mode == "scr" else 4 * classes
    boxes = keras.layers.Dense(units, kernel_initializer=kernel_initializer, name=BOX_LAYER)(features)
    if mode == "pcr":
        boxes = keras.layers.Reshape((classes, 4), name="box_per_class")(boxes)
    return keras.Model(clone.input, boxes, name=name or f"{classifier.name}_{mode}")


def localizer_mode(localizer: keras.Model) -> str:
    """"scr" or "pcr", read from the localizer's output shape.

    Args:
        localizer: A model from `build_localizer` (or one loaded from its saved file).

    Returns:
        "scr" for ``[B, 4]`` outputs, "pcr" for ``[B, classes, 4]``.

    Raises:
        ValueError: If the model is not a localizer built by `build_localizer`.
    """
    shape = tuple(localizer.output_shape)
    if not any(layer.name == BOX_LAYER for layer in localizer.layers) or shape[-1] != 4:
        raise ValueError(f"Model {localizer.name!r} is not a localizer (no {BOX_LAYER!r} layer with "
                         f"4-coordinate boxes; output shape {shape}). Use build_localizer().")
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


# --------------------------------------------------------------------------- data


def _check_boxes(source: Source) -> None:
    if not isinstance(source, Source):
        raise TypeError(f"source must be a vgg_keras.data.Source; received {type(source).__name__}.")
    if "bbox" not in source.dataset.element_spec:
        raise ValueError(f"source has no 'bbox' feature (elements: {sorted(source.dataset.element_spec)}); "
                         "localisation needs one box per image, e.g. get_source('builtin', split).")


def _random_crop_with_box(example: dict, crop_size: int, s_min: int, s_max: int, flip: bool, seed):
    """One random scale-S crop (and flip) of an image, with its box moved along."""
    scale_seed, crop_seed, flip_seed = augment.split_seed(seed, 3)
    pixels, window = pipeline_lib.decode_and_random_crop_window(
        example["image"], crop_size, augment.sample_scale(s_min, s_max, scale_seed), crop_seed)
    box = image_boxes_to_crop(example["bbox"], window)
    if flip:
        mirror = tf.random.stateless_uniform([], flip_seed) < 0.5
        pixels = tf.cond(mirror, lambda: tf.reverse(pixels, axis=[1]), lambda: pixels)
        box = tf.cond(mirror, lambda: _flip_boxes(box), lambda: box)
    pixels.set_shape([crop_size, crop_size, 3])
    return pixels, tf.cast(example["label"], tf.int32), to_center_xywh(box)


def box_train_dataset(source: Source, *, batch_size: int, crop_size: int = 224,
                      scale: int | tuple[int, int] = 256, flip: bool = True,
                      preprocess: Callable | None = None, shuffle_buffer: int = 10_000,
                      seed: int | None = None, repeat: bool = True) -> tf.data.Dataset:
    """Training batches with boxes: random scale-S crop and flip, the box transformed alike.

    The image is rescaled so its smallest side is S (fixed or drawn from ``(S_min,
    S_max)``), a random ``crop_size`` crop is taken and mirrored with probability 1/2;
    the box becomes the visible part of the object in crop coordinates.

    Args:
        source: A `Source` whose elements carry ``bbox``.
        batch_size: Images per batch (the last partial batch is dropped).
        crop_size: Side of the crops.
        scale: S or ``(S_min, S_max)``, each ``>= crop_size``.
        flip: Random horizontal flips.
        preprocess: Called on each float32 ``[B, c, c, 3]`` RGB 0..255 batch.
        shuffle_buffer: Examples in the shuffle buffer; 0 disables shuffling.
        seed: Makes shuffling and crops reproducible.
        repeat: Repeat forever (use ``steps_per_epoch`` with `fit`).

    Returns:
        Dataset of ``(images [B, c, c, 3], labels int32 [B], boxes float32 [B, 4])``,
        boxes in ``BOX_FORMAT`` normalised by the crop.

    Raises:
        ValueError: If the source has no boxes or an argument is invalid.
        TypeError: If `source` is not a Source or `preprocess` is not callable.
    """
    _check_boxes(source)
    s_min, s_max = pipeline_lib.scale_range(scale, crop_size)
    if preprocess is not None and not callable(preprocess):
        raise TypeError(f"preprocess must be callable or None; received {preprocess!r}.")
    dataset = source.dataset
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    dataset = tf.data.Dataset.zip((dataset, seeds)).map(
        lambda example, pair: _random_crop_with_box(example, crop_size, s_min, s_max, flip, pair),
        num_parallel_calls=_AUTOTUNE)
    dataset = dataset.ignore_errors(log_warning=True).batch(batch_size, drop_remainder=True)
    if preprocess is not None:
        dataset = dataset.map(lambda x, y, b: (preprocess(x), y, b), num_parallel_calls=_AUTOTUNE)
    return dataset.prefetch(_AUTOTUNE)


def _center_crop_with_window(example: dict, scale: int, crop_size: int) -> dict:
    resized = pipeline_lib.decode_resize(example["image"], scale)
    hw = tf.cast(tf.shape(resized)[:2], tf.float32)
    # The same offsets as vgg_keras.data.center_crop, as a normalised window.
    origin = tf.floor((hw - crop_size) / 2.0) / hw
    return {"image": crops.center_crop(resized, crop_size), "label": tf.cast(example["label"], tf.int32),
            "bbox": tf.cast(example["bbox"], tf.float32),
            "window": tf.concat([origin, crop_size / hw], axis=0)}


def box_eval_dataset(source: Source, *, batch_size: int, scale: int = 256, crop_size: int = 224,
                     preprocess: Callable | None = None, max_examples: int | None = None) -> tf.data.Dataset:
    """Evaluation batches: the central crop at test scale Q, with the image box and crop window.

    Args:
        source: A `Source` whose elements carry ``bbox``.
        batch_size: Images per batch.
        scale: Test scale Q (smallest side after rescaling), ``>= crop_size``.
        crop_size: Side of the central crop.
        preprocess: Called on each float32 RGB 0..255 image batch.
        max_examples: Use only the first examples.

    Returns:
        Dataset of dicts: ``image`` ``[B, c, c, 3]``, ``label`` int32 ``[B]``, ``bbox``
        ``[B, 4]`` normalised image corners, ``window`` ``[B, 4]`` the crop's normalised
        ``(top, left, height, width)`` in the image.

    Raises:
        ValueError: If the source has no boxes or ``scale < crop_size``.
        TypeError: If `source` is not a Source.
    """
    _check_boxes(source)
    pipeline_lib.scale_range(scale, crop_size)
    dataset = source.dataset if max_examples is None else source.dataset.take(max_examples)
    dataset = dataset.map(lambda example: _center_crop_with_window(example, scale, crop_size),
                          num_parallel_calls=_AUTOTUNE, deterministic=True)
    dataset = dataset.ignore_errors(log_warning=True).batch(batch_size)
    if preprocess is not None:
        dataset = dataset.map(lambda batch: {**batch, "image": preprocess(batch["image"])})
    return dataset.prefetch(_AUTOTUNE)


# --------------------------------------------------------------------------- training


def train_localizer(localizer: keras.Model, dataset: tf.data.Dataset, *, epochs: int = 1,
                    steps_per_epoch: int | None = None, optimizer: keras.optimizers.Optimizer | None = None,
                    learning_rate: float = 1e-3, weight_decay: float = 5e-4,
                    validation_data: tf.data.Dataset | None = None,
                    callbacks: Sequence[keras.callbacks.Callback] = (), verbose="auto") -> keras.callbacks.History:
    """Fine-tunes all layers of a localizer with the Euclidean loss (`model.fit`).

    Args:
        localizer: A model from `build_localizer`.
        dataset: Batches ``(images, labels, boxes)`` from `box_train_dataset`.
        epochs: Training epochs.
        steps_per_epoch: Batches per epoch (needed for a repeated dataset).
        optimizer: Default: SGD with momentum 0.9 at `learning_rate` (the paper's 1e-3),
            from `vgg_keras.training.make_optimizer`.
        learning_rate: Learning rate of the default optimiser.
        weight_decay: The paper's L2 penalty on every kernel (`training.apply_weight_decay`);
            0 for none.
        validation_data: Optional batches in the same form.
        callbacks: Keras callbacks.
        verbose: Passed to `fit`.

    Returns:
        The `History`: "loss" (mean Euclidean loss per image plus the weight penalty) and
        "euclidean_loss" (without the penalty).
    """
    pcr = localizer_mode(localizer) == "pcr"
    model = box_training_model(localizer)

    def inputs(images, labels, boxes):
        return ((images, labels) if pcr else images), boxes

    optimization.apply_weight_decay(model, weight_decay)
    # The loss includes the weight penalty; the metric is the Euclidean loss alone.
    model.compile(optimizer=optimizer or optimization.make_optimizer(learning_rate, momentum=0.9),
                  loss=euclidean_loss, metrics=[euclidean_loss])
    validation = None if validation_data is None else validation_data.map(inputs)
    return model.fit(dataset.map(inputs), epochs=epochs, steps_per_epoch=steps_per_epoch,
                     validation_data=validation, callbacks=list(callbacks), verbose=verbose)


# --------------------------------------------------------------------------- evaluation


def localization_errors(top_classes, labels, ious, threshold: float = IOU_THRESHOLD) -> dict[str, float]:
    """Top-1 and top-k localisation error from each image's guesses.

    Args:
        top_classes: int ``[N, k]`` guessed classes, best first.
        labels: int ``[N]`` true classes.
        ious: ``[N]`` IoU of the box guessed for the TRUE class (only a guess of the right
            class can count) with the ground truth.
        threshold: An overlap counts when IoU is strictly above it.

    Returns:
        ``{"top1_error", "top<k>_error"}`` as fractions in [0, 1].
    """
    top_classes, labels, ious = np.asarray(top_classes), np.asarray(labels), np.asarray(ious)
    if top_classes.ndim != 2 or labels.shape != (len(top_classes),) or ious.shape != labels.shape:
        raise ValueError(f"Expected top_classes [N, k], labels [N], ious [N]; received shapes "
                         f"{top_classes.shape}, {labels.shape}, {ious.shape}.")
    overlap = ious > threshold
    k = top_classes.shape[1]
    right_top1 = top_classes[:, 0] == labels
    right_topk = np.any(top_classes == labels[:, None], axis=1)
    return {"top1_error": float(1 - np.mean(right_top1 & overlap)),
            f"top{k}_error": float(1 - np.mean(right_topk & overlap))}


@dataclasses.dataclass
class LocalizationReport:
    """Localisation results on one dataset.

    Attributes:
        mode: "scr" or "pcr".
        top1_error: Fraction of images whose best guess is wrong (class or IoU <= 0.5).
        top5_error: The same over the top-5 guesses (top-k when fewer classes).
        num_images: Images evaluated.
        mean_iou: Mean IoU of the true class's predicted box with the ground truth.
        class_source: "classifier" or "ground truth" (no classifier: class always right).
        scale: Test scale Q; crop_size: the central crop.
        true_boxes, pred_boxes: ``[N, 4]`` normalised image corners (pred: the box of the
            top-1 class).
        labels, top_classes, ious: per-image arrays.
    """

    mode: str
    top1_error: float
    top5_error: float
    num_images: int
    mean_iou: float
    class_source: str
    scale: int
    crop_size: int
    true_boxes: np.ndarray
    pred_boxes: np.ndarray
    labels: np.ndarray
    top_classes: np.ndarray
    ious: np.ndarray

    def summary(self) -> dict:
        """The scalar results as a JSON-able dict."""
        return {"mode": self.mode, "top1_error": self.top1_error, "top5_error": self.top5_error,
                "mean_iou": self.mean_iou, "num_images": self.num_images, "class_source": self.class_source,
                "scale": self.scale, "crop_size": self.crop_size}

    def to_markdown(self) -> str:
        """A one-row table in the paper's style (errors in %)."""
        return ("| mode | classes from | Q | top-1 loc. error (%) | top-5 loc. error (%) | mean IoU | images |\n"
                "|---|---|---|---|---|---|---|\n"
                f"| {self.mode.upper()} | {self.class_source} | {self.scale} | {100 * self.top1_error:.1f} | "
                f"{100 * self.top5_error:.1f} | {self.mean_iou:.3f} | {self.num_images} |\n")

    def save(self, output_dir: str) -> dict[str, str]:
        """Writes ``localization.md`` and ``localization.json``; returns their paths."""
        os.makedirs(output_dir, exist_ok=True)
        paths = {"markdown": os.path.join(output_dir, "localization.md"),
                 "json": os.path.join(output_dir, "localization.json")}
        with open(paths["markdown"], "w") as f:
            f.write(self.to_markdown())
        with open(paths["json"], "w") as f:
            json.dump(self.summary(), f, indent=2)
        return paths


def _class_scores(classifier: keras.Model | None, images, labels, num_classes: int) -> np.ndarray:
    if classifier is None:  # oracle: the true class ranks first
        return np.asarray(tf.one_hot(labels, num_classes))
    return np.asarray(classifier(images, training=False))


def _predicted_boxes(localizer, images, classes) -> tf.Tensor:
    """Crop boxes (normalised corners, non-negative size) for each image's given classes [B, k]."""
    boxes = localizer(images, training=False)
    if len(boxes.shape) == 2:  # SCR: the same box whatever the class
        boxes = tf.repeat(boxes[:, None], classes.shape[1], axis=1)
    else:
        boxes = select_class_boxes(boxes, classes)
    # A regressor can output a negative size; such a box covers nothing.
    boxes = tf.concat([boxes[..., :2], tf.maximum(boxes[..., 2:], 0.0)], axis=-1)
    return from_center_xywh(boxes)


def evaluate_localization(localizer: keras.Model, source: Source, *, classifier: keras.Model | None = None,
                          scale: int = 256, crop_size: int = 224, batch_size: int = 32, top_k: int = 5,
                          preprocess: Callable | None = None, max_examples: int | None = None,
                          output_dir: str | None = None, num_pictures: int = 8) -> LocalizationReport:
    """Top-1 / top-k localisation error on the central crop (the paper's first protocol).

    Each image's k guesses are the classifier's top-k classes, each with the localizer's
    box for that class (SCR: the one box). A guess is right when the class is the true one
    and IoU > 0.5 with the ground-truth box (both mapped back to the whole image).

    Args:
        localizer: A model from `build_localizer`.
        source: A `Source` with boxes (e.g. the built-in validation split).
        classifier: Supplies the classes (softmax scores of the same crop); None uses the
            ground-truth class, which isolates the box regression.
        scale: Test scale Q.
        crop_size: Side of the central crop (the localizer's input size).
        batch_size: Images per batch.
        top_k: Guesses per image (5 in the paper; at most the number of classes).
        preprocess: Normalisation for RGB 0..255 crops (None when the models carry theirs).
        max_examples: Evaluate only the first examples.
        output_dir: When given, writes ``localization.md``/``.json`` and
            ``localization_boxes.png`` (predicted vs true boxes on the first images).
        num_pictures: Images in the PNG.

    Returns:
        A `LocalizationReport`.

    Raises:
        ValueError: If the model is not a localizer, the source has no boxes, or no image
            of the source can be decoded.
    """
    mode = localizer_mode(localizer)
    top_k = min(top_k, source.num_classes)
    dataset = box_eval_dataset(source, batch_size=batch_size, scale=scale, crop_size=crop_size,
                               preprocess=preprocess, max_examples=max_examples)
    parts: dict[str, list] = {key: [] for key in ("true", "pred", "labels", "top", "ious", "pictures")}
    for batch in dataset:
        scores = _class_scores(classifier, batch["image"], batch["label"], source.num_classes)
        top = metrics.top_k_indices(scores, top_k)
        guesses = tf.concat([tf.constant(top, tf.int32), batch["label"][:, None]], axis=1)
        boxes = crop_boxes_to_image(_predicted_boxes(localizer, batch["image"], guesses),
                                    batch["window"][:, None])
        parts["ious"].append(box_iou(boxes[:, -1], batch["bbox"]).numpy())
        parts["pred"].append(boxes[:, 0].numpy())
        parts["true"].append(batch["bbox"].numpy())
        parts["labels"].append(batch["label"].numpy())
        parts["top"].append(top)
    arrays = {key: np.concatenate(value) for key, value in parts.items() if key != "pictures"}
    if not len(arrays["labels"]):
        raise ValueError("source yielded no decodable images to evaluate.")
    errors = localization_errors(arrays["top"], arrays["labels"], arrays["ious"])
    report = LocalizationReport(
        mode=mode, top1_error=errors["top1_error"], top5_error=errors[f"top{top_k}_error"],
        num_images=len(arrays["labels"]), mean_iou=float(np.mean(arrays["ious"])),
        class_source="ground truth" if classifier is None else "classifier", scale=scale, crop_size=crop_size,
        true_boxes=arrays["true"], pred_boxes=arrays["pred"], labels=arrays["labels"],
        top_classes=arrays["top"], ious=arrays["ious"])
    if output_dir is not None:
        report.save(output_dir)
        pictures = _pictures(source, scale, min(num_pictures, report.num_images))
        localization_figure(pictures, report.true_boxes, report.pred_boxes, report.labels,
                            report.top_classes[:, 0], source.class_names,
                            os.path.join(output_dir, "localization_boxes.png"))
    return report


def _pictures(source: Source, scale: int, count: int) -> list[np.ndarray]:
    dataset = source.dataset.take(count).map(
        lambda example: tf.saturate_cast(tf.round(pipeline_lib.decode_resize(example["image"], scale)), tf.uint8))
    return [image.numpy() for image in dataset]


def localization_figure(images: Sequence[np.ndarray], true_boxes, pred_boxes, labels, pred_classes,
                        class_names: Sequence[str], path: str) -> str:
    """Saves a PNG: each image with its true box (green) and predicted box (red, dashed).

    Args:
        images: uint8 ``[H, W, 3]`` images.
        true_boxes: ``[N, 4]`` normalised ``(ymin, xmin, ymax, xmax)`` (N >= len(images)).
        pred_boxes: ``[N, 4]`` predicted boxes, same format.
        labels: ``[N]`` true classes.
        pred_classes: ``[N]`` predicted (top-1) classes.
        class_names: One name per class.
        path: Where to write the PNG.

    Returns:
        `path`.
    """
    count = len(images)
    if count == 0:
        raise ValueError("images is empty; allowed: at least one image to draw.")
    iou = box_iou(np.asarray(pred_boxes[:count]), np.asarray(true_boxes[:count])).numpy()
    figure = Figure(figsize=(3 * count, 3.4))
    for i, image in enumerate(images):
        axis = figure.add_subplot(1, count, i + 1)
        axis.imshow(image)
        height, width = image.shape[:2]
        for box, colour, style in ((true_boxes[i], "lime", "-"), (pred_boxes[i], "red", "--")):
            ymin, xmin, ymax, xmax = np.asarray(box) * [height, width, height, width]
            axis.add_patch(Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, fill=False,
                                     edgecolor=colour, linestyle=style, linewidth=2))
        axis.set_title(f"true {class_names[labels[i]]}\npred {class_names[pred_classes[i]]}, IoU {iou[i]:.2f}",
                       fontsize=8)
        axis.axis("off")
    figure.tight_layout()
    return save_figure(figure, path)
