"""Fine-tuning a localiser with the Euclidean loss (Appendix A)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from vgg_keras.localization.heads import box_training_model, euclidean_loss, localizer_mode
from vgg_keras.training import optimization


def train_localizer(
    localizer: keras.Model,
    dataset: tf.data.Dataset,
    *,
    epochs: int = 1,
    steps_per_epoch: int | None = None,
    optimizer: keras.optimizers.Optimizer | None = None,
    learning_rate: float = 1e-3,
    weight_decay: float = 5e-4,
    validation_data: tf.data.Dataset | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose="auto",
) -> keras.callbacks.History:
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
    model.compile(
        optimizer=optimizer or optimization.make_optimizer(learning_rate, momentum=0.9),
        loss=euclidean_loss,
        metrics=[euclidean_loss],
    )
    validation = None if validation_data is None else validation_data.map(inputs)
    return model.fit(
        dataset.map(inputs),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
        callbacks=list(callbacks),
        verbose=verbose,
    )
