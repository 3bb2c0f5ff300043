"""Transfer features (Appendix B): the paper's image descriptor and a linear classifier on it.

The descriptor of an image at scale Q: rescale so the smallest side is Q, apply the net
densely (fully-convolutional, the last layer dropped), global-average-pool the 4096-d
fc2 map (after its ReLU), average with the descriptor of the mirrored image, and
L2-normalise. Over several scales the per-scale descriptors are either

- "average": averaged, then L2-normalised again (the width stays 4096), or
- "stack": concatenated and divided by sqrt(number of scales), so the result is unit-norm
  and each scale's block is that scale's unit descriptor over sqrt(n) (width 4096 x n).

Batches of differently sized images run through `tf.data` padded; the evaluation
module's masked forward pass (`vgg_keras.evaluation.ModelRunner`) makes each image's
pooled features exactly those of the image alone.

A linear one-vs-rest SVM (squared hinge, L2-regularised; the paper used a linear SVM) or
a soft-max classifier is trained on the descriptors with Keras. Labels can be class
indices (single-label: accuracy) or multi-hot vectors (multi-label, e.g. VOC: mean
average precision).

Typical use::

    from vgg_keras import data, features
    train = features.extract_descriptors(model, data.get_source("builtin", "train"), scales=(64, 96))
    test = features.extract_descriptors(model, data.get_source("builtin", "validation"), scales=(64, 96))
    svm = features.train_linear_classifier(train.descriptors, train.labels, num_classes=12)
    print(features.classification_accuracy(svm, test.descriptors, test.labels))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from vgg_keras import models as models_lib
from vgg_keras.data.sources import Source, multilabel_tfds_source
from vgg_keras.evaluation import forward, inputs, protocol
from vgg_keras.validation import check_choice, check_scales

__all__ = [
    "AGGREGATIONS",
    "DescriptorSet",
    "LOSSES",
    "average_precision",
    "classification_accuracy",
    "combine_scales",
    "descriptor_runner",
    "extract_descriptors",
    "image_descriptors",
    "mean_average_precision",
    "multilabel_tfds_source",
    "train_linear_classifier",
]

AGGREGATIONS = ("average", "stack")
LOSSES = ("hinge", "softmax")


def _identity(x):
    return x


def descriptor_runner(
    model: keras.Model, preprocess: Callable | None = None, layer: str | None = None
) -> forward.ModelRunner:
    """A masked dense forward pass that ends at `layer` (fc2) and pools it over space.

    Args:
        model: A vgg_keras classifier (dense or conv head; converted to the conv head, and
            to channels-last, since the batches are `[B, H, W, 3]`).
        preprocess: Normalisation for RGB 0..255 inputs (None when the model has its own).
        layer: The layer whose map is pooled; None: the last hidden FC layer (fc2, the
            paper's choice); `vgg_keras.describe(model).fc_layers` lists the allowed ones.

    Returns:
        A `ModelRunner` whose `posteriors(images, sizes)` are the spatially averaged
        `layer` activations (no soft-max).

    Raises:
        ValueError: If the model has no classifier or no such layer in its chain.
    """
    runner = forward.prepare_model(model, preprocess)
    allowed = list(models_lib.describe(model).fc_layers)
    layer = allowed[-1] if layer is None else layer
    names = [chain_layer.name for chain_layer in runner.layers]
    if layer not in allowed:
        raise ValueError(f"layer={layer!r} is not a feature layer of {model.name!r}; allowed: {allowed}.")
    chain = runner.layers[: names.index(layer) + 1]
    return dataclasses.replace(runner, layers=chain, num_classes=int(chain[-1].filters), activation=_identity)


def _l2_normalize(x: tf.Tensor) -> tf.Tensor:
    return tf.math.l2_normalize(x, axis=-1, epsilon=1e-12)


def image_descriptors(
    runner: forward.ModelRunner, images, sizes=None, *, flip: bool = True, pad_multiple: int = 32
) -> tf.Tensor:
    """Single-scale descriptors of a (padded) batch: pooled fc2, flip-averaged, L2-normalised.

    Args:
        runner: From `descriptor_runner`.
        images: ``float32 [B, H, W, 3]`` RGB 0..255, image b in its top-left `sizes[b]`.
        sizes: ``int32 [B, 2]`` valid sizes (None: every image fills the batch).
        flip: Average with the descriptor of each mirrored image.
        pad_multiple: Padding granularity (does not change the result).

    Returns:
        ``float32 [B, D]`` unit-norm descriptors.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    if sizes is None:
        shape = tf.shape(images)
        sizes = tf.tile(shape[None, 1:3], [shape[0], 1])
    pooled = protocol.dense_posteriors(runner, images, sizes, flip=flip, pad_multiple=pad_multiple)
    return _l2_normalize(pooled)


def combine_scales(per_scale: Sequence, aggregation: str = "average") -> tf.Tensor:
    """Combines unit-norm descriptors of several scales into one unit-norm descriptor.

    Args:
        per_scale: ``[B, D]`` descriptors, one entry per scale.
        aggregation: "average" (mean, re-normalised; ``[B, D]``) or "stack" (concatenated
            / sqrt(n); ``[B, n * D]``).

    Returns:
        ``float32`` unit-norm descriptors.

    Raises:
        ValueError: For an unknown aggregation or no scales.
    """
    check_choice("aggregation", aggregation, AGGREGATIONS)
    if not per_scale:
        raise ValueError("per_scale is empty; allowed: descriptors of at least one scale.")
    tensors = [tf.convert_to_tensor(d, tf.float32) for d in per_scale]
    if aggregation == "average":
        return _l2_normalize(tf.add_n(tensors) / len(tensors))
    return tf.concat(tensors, axis=-1) / np.sqrt(len(tensors)).astype(np.float32)


@dataclasses.dataclass
class DescriptorSet:
    """Descriptors of a dataset.

    Attributes:
        descriptors: ``float32 [N, D]`` unit-norm rows.
        labels: ``int64 [N]`` classes, or ``[N, classes]`` multi-hot for multi-label data.
        scales: The test scales Q used.
        aggregation: "average" or "stack".
    """

    descriptors: np.ndarray
    labels: np.ndarray
    scales: tuple[int, ...]
    aggregation: str


def extract_descriptors(
    model: keras.Model | forward.ModelRunner,
    source: Source,
    *,
    scales: int | Sequence[int] = 256,
    aggregation: str = "average",
    flip: bool = True,
    batch_size: int = 16,
    preprocess: Callable | None = None,
    max_examples: int | None = None,
    layer: str | None = None,
) -> DescriptorSet:
    """The paper's descriptors for every image of a source (Appendix B).

    Each image is decoded once, rescaled to every Q, padded into `tf.data` batches and
    run densely with the masked forward pass.

    Args:
        model: A vgg_keras classifier, or a runner from `descriptor_runner`.
        source: A `vgg_keras.data.Source` (``label`` a class index or a multi-hot vector).
        scales: Test scale(s) Q, each at least the model's base size.
        aggregation: How scales combine: "average" or "stack".
        flip: Average each descriptor with its mirror's.
        batch_size: Images per batch.
        preprocess: Normalisation for RGB 0..255 images (ignored when `model` is a runner).
        max_examples: Only the first examples.
        layer: The pooled layer (None: fc2, see `descriptor_runner`).

    Returns:
        A `DescriptorSet`.

    Raises:
        ValueError: For bad scales or aggregation.
    """
    runner = model if isinstance(model, forward.ModelRunner) else descriptor_runner(model, preprocess, layer)
    scales = check_scales(scales, runner.base_size)
    check_choice("aggregation", aggregation, AGGREGATIONS)
    batches = inputs.eval_batches(
        source,
        scales=scales,
        kinds=("dense",),
        crop_size=runner.base_size,
        grid=1,
        flip=flip,
        batch_size=batch_size,
        max_examples=max_examples,
    )
    descriptors, labels = [], []
    for batch in batches:
        per_scale = [
            image_descriptors(runner, batch[inputs.view_key("dense", q)], batch[inputs.view_key("size", q)], flip=flip)
            for q in scales
        ]
        descriptors.append(combine_scales(per_scale, aggregation).numpy())
        labels.append(batch["label"].numpy().astype(np.int64))
    if not descriptors:
        raise ValueError("source yielded no decodable images.")
    return DescriptorSet(np.concatenate(descriptors), np.concatenate(labels), scales, aggregation)


# --------------------------------------------------------------------------- linear classifier


def _targets(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """One-hot (single-label) or the multi-hot matrix itself, float32."""
    if labels.ndim == 1:
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(f"labels must be in [0, {num_classes}); received range [{labels.min()}, {labels.max()}].")
        return np.eye(num_classes, dtype=np.float32)[labels]
    if labels.shape[1] != num_classes:
        raise ValueError(f"multi-hot labels have {labels.shape[1]} columns; num_classes={num_classes}.")
    return labels.astype(np.float32)


def train_linear_classifier(
    descriptors,
    labels,
    *,
    num_classes: int,
    loss: str = "hinge",
    l2: float = 1e-4,
    epochs: int = 100,
    batch_size: int = 256,
    learning_rate: float = 0.05,
    seed: int = 0,
    verbose=0,
) -> keras.Model:
    """Trains a linear classifier on descriptors (Keras, Adam).

    Args:
        descriptors: ``[N, D]`` features.
        labels: ``[N]`` class indices or ``[N, classes]`` multi-hot (multi-label).
        num_classes: Number of classes.
        loss: "hinge": one-vs-rest linear SVM (squared hinge, as LIBLINEAR's default);
            "softmax": multinomial logistic regression (single-label only).
        l2: L2 penalty on the weights (the SVM's 1 / C, per example).
        epochs: Passes over the data.
        batch_size: Examples per step.
        learning_rate: Adam's step size.
        seed: Initialisation and shuffling seed.
        verbose: Passed to `fit`.

    Returns:
        A `keras.Model` mapping descriptors to ``[N, classes]`` scores (higher = more likely).

    Raises:
        ValueError: For an unknown loss, mismatched shapes or labels out of range.
    """
    check_choice("loss", loss, LOSSES)
    descriptors, labels = np.asarray(descriptors, np.float32), np.asarray(labels)
    if descriptors.ndim != 2 or len(labels) != len(descriptors):
        raise ValueError(
            f"descriptors must be [N, D] with one label row each; received shapes "
            f"{descriptors.shape} and {labels.shape}."
        )
    if loss == "softmax" and labels.ndim != 1:
        raise ValueError("loss='softmax' needs class indices; allowed for multi-hot labels: loss='hinge'.")
    targets = _targets(labels, num_classes)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((descriptors.shape[1],)),
            keras.layers.Dense(num_classes, kernel_regularizer=keras.regularizers.L2(l2), name="linear"),
        ],
        name=f"linear_{loss}",
    )
    # SquaredHinge maps 0/1 targets to -1/+1: one binary SVM per class.
    objective = (
        keras.losses.SquaredHinge() if loss == "hinge" else keras.losses.CategoricalCrossentropy(from_logits=True)
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=objective)
    # One long epoch over a repeated dataset: Keras' per-epoch overhead dwarfs a linear step.
    batch_size = min(batch_size, len(descriptors))
    steps = epochs * -(-len(descriptors) // batch_size)
    dataset = tf.data.Dataset.from_tensor_slices((descriptors, targets)).shuffle(len(descriptors), seed=seed)
    model.fit(dataset.repeat().batch(batch_size), epochs=1, steps_per_epoch=steps, verbose=verbose)
    return model


def classification_accuracy(classifier: keras.Model, descriptors, labels) -> float:
    """Fraction of single-label examples whose highest-scoring class is the label.

    Args:
        classifier: From `train_linear_classifier`.
        descriptors: ``[N, D]``.
        labels: ``[N]`` class indices.

    Returns:
        Top-1 accuracy in [0, 1].
    """
    scores = classifier.predict(np.asarray(descriptors, np.float32), verbose=0)
    return float(np.mean(np.argmax(scores, axis=1) == np.asarray(labels)))


def average_precision(scores, positives) -> float:
    """Non-interpolated average precision of one class (mean precision at each positive).

    Args:
        scores: ``[N]`` classifier scores.
        positives: ``[N]`` booleans (1 = the class is present).

    Returns:
        AP in [0, 1]; NaN when there is no positive.
    """
    scores, positives = np.asarray(scores, np.float64), np.asarray(positives).astype(bool)
    if not positives.any():
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = positives[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(np.mean(precision[hits]))


def mean_average_precision(classifier: keras.Model, descriptors, labels) -> float:
    """Mean over classes (with positives) of the AP of each class's scores (VOC's mAP measure).

    Args:
        classifier: From `train_linear_classifier`.
        descriptors: ``[N, D]``.
        labels: ``[N, classes]`` multi-hot, or ``[N]`` class indices.

    Returns:
        mAP in [0, 1].
    """
    scores = classifier.predict(np.asarray(descriptors, np.float32), verbose=0)
    labels = np.asarray(labels)
    targets = _targets(labels, scores.shape[1])
    return float(np.nanmean([average_precision(scores[:, c], targets[:, c]) for c in range(scores.shape[1])]))
