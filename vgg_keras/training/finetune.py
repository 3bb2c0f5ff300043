"""Fine-tuning a pretrained VGG on your own classes: the two-phase recipe, resumable.

    from vgg_keras.training import finetune
    config = finetune.finetune_config()
    config.finetune.source = "imagenet"          # a weights tag, a weights file or a .keras model
    config.data.name = "folder:/data/flowers"    # or any name vgg_keras.data reads
    result = finetune.finetune(config, "runs/flowers")
    print(result.summary())

The source: published weights (`config.finetune.source="imagenet"`, ... with
`config.model.arch`), a weights file of `config.model.arch`, or any vgg_keras `.keras`
model (e.g. a workdir's `best.keras`). Its preprocessing travels with it: a model with a
normalisation layer keeps it; weights bring their mode (`weights.preprocessing_mode_for`);
a `.keras` model without one needs `config.finetune.preprocessing`.

The classifier for your classes (`config.finetune.head`):
- "predictions": keep fc1 and fc2 (pretrained) and replace the last layer. The input size
  stays the source's for a dense head (224 for published weights).
- "pooled": keep the conv blocks, global-average-pool their features, dropout
  (`head_dropout`) and a new soft-max layer: any input size, far fewer new weights.
- "keep": keep the source's classifier (continue training on the same classes).

The schedule (keras.io's transfer-learning guide): phase 1 trains only the new
classifier, the rest frozen (`trainable=False`, which in Keras 3 also runs BatchNorm in
inference mode); phase 2 unfreezes the blocks named in `config.finetune.unfreeze`
("block5,fc", "block4,block5,fc", "all") and recompiles at `phase2_lr_factor` times the
learning rate. BatchNorm layers stay frozen in both phases (moving statistics, gamma and
beta), as the guide recommends for small datasets. Each phase is a `train_with_data` run
in `<workdir>/phase1`, `<workdir>/phase2` (config.json, metrics.csv, curves.png, backup/,
best.keras, model.keras), so a killed fine-tuning resumes like `recipes/train.py`; then the
paper's evaluation of the final model goes to `<workdir>/eval/` (with `confusion.png`)
and the SavedModel to `<workdir>/savedmodels/`.

Data: any `config.data.name`. An image folder (`folder:/path`) uses `/path/<train_split>`
and `/path/<eval_split>` when they exist; without a validation folder, a stratified
`validation_fraction` of each class (seeded by `validation_seed`, from the sorted file
list) is held out, the same on every run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import keras
import ml_collections
import numpy as np
import tensorflow as tf

from vgg_keras import models, surgery
from vgg_keras import preprocessing as preprocessing_lib
from vgg_keras import weights as weights_lib
from vgg_keras.data import sources as sources_lib
from vgg_keras.training import data as data_lib
from vgg_keras.training import experiment, trainer
from vgg_keras.training import finetune_config as finetune_config_lib
from vgg_keras.training import strategy as strategy_lib
from vgg_keras.training.finetune_config import (
    AUGMENTATIONS,
    BLOCKS,
    HEADS,
    finetune_config,
    invalid,
    unfreeze_groups,
)

__all__ = [
    "AUGMENTATIONS",
    "BLOCKS",
    "HEADS",
    "FinetuneResult",
    "SmoothedSparseCrossentropy",
    "class_weights",
    "finetune",
    "finetune_config",
    "finetune_data",
    "finetune_model",
    "finetune_with_data",
    "folder_sources",
    "layer_group",
    "load_source_model",
    "set_trainable",
    "validate_finetune_config",
]


# --------------------------------------------------------------------------- config


def validate_finetune_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`check_finetune_config`, then `source` and `preprocessing` against the weights registry.

    Args:
        config: A fine-tuning config.

    Returns:
        It, checked.

    Raises:
        ValueError: For the first invalid field (its value and what is allowed).
    """
    finetune_config_lib.check_finetune_config(config)  # everything that needs no TensorFlow
    f = config.finetune
    if not isinstance(f.source, str) or not f.source:
        invalid("source", f.source, f"a weights tag ({', '.join(weights_lib.TAGS)}), a weights file or a .keras model")
    modes = ("", *preprocessing_lib.PREPROCESSING_MODES)
    if f.preprocessing not in modes:
        invalid("preprocessing", f.preprocessing, ", ".join(repr(a) for a in modes))
    return config


def _resolved_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy with the augmentation choice written into `config.data` (so config.json shows it)."""
    config = ml_collections.ConfigDict(config.to_dict())
    if config.finetune.augmentation == "light":
        config.data.scale_max = config.data.scale_min
        config.data.color_shift_std = 0.0
    return config


# --------------------------------------------------------------------------- the source model


def _source_error(config, error: Exception) -> ValueError:
    return ValueError(
        f"config.finetune.source={config.finetune.source!r} (config.model.arch="
        f"{config.model.arch!r}) cannot be loaded: {error}"
    )


def load_source_model(config: ml_collections.ConfigDict) -> keras.Model:
    """The pretrained model `config.finetune.source` names (RGB 0..255 in, as published).

    Args:
        config: A fine-tuning config.

    Returns:
        A `keras.Model`: for a tag or a weights file, `config.model.arch` with those weights
        and a normalisation layer of their mode, with its classifier unless
        `head="pooled"`; for a `.keras` file, the model it holds.

    Raises:
        ValueError: For a tag without a published file for the architecture, a file that
            does not fit, or a source that is neither a tag nor an existing file.
        FileNotFoundError: For a `.keras` path that does not exist.
    """
    f, m = config.finetune, config.model
    source = f.source
    if source.endswith(".keras"):
        if not os.path.exists(source):
            raise FileNotFoundError(
                f"config.finetune.source={source!r} does not exist; allowed: a .keras model "
                "(e.g. a workdir's best.keras), a weights file or a tag."
            )
        return keras.models.load_model(source, compile=False)
    if not (weights_lib.is_pretrained_tag(source) or os.path.exists(source)):
        raise ValueError(
            f"config.finetune.source={source!r} is neither a published weights tag nor an existing "
            f"file; allowed: one of {weights_lib.TAGS}, a weights file or a .keras model."
        )
    include_top = f.head != "pooled"
    side = None if include_top else config.data.crop_size
    try:
        return models.build(
            m.arch,
            batch_norm=m.batch_norm or None,
            weights=source,
            include_top=include_top,
            input_shape=None if include_top else (side, side, 3),
            width_multiplier=m.width_multiplier,
            fc_units=m.fc_units,
            dropout=m.dropout,
            include_preprocessing=True,
            preprocessing=f.preprocessing or None,
            base_size=224 if weights_lib.is_pretrained_tag(source) else config.data.crop_size,
        )
    except ValueError as error:
        raise _source_error(config, error) from error


def _check_head(source: models.ModelDescription, name: str, head: str, num_classes: int, crop_size: int) -> None:
    """Checks that the source model `name` (described by `source`) fits `head` and the data."""
    needs = source.head if head == models.PREDICTIONS_LAYER else source.predictions_layer
    if head != "pooled" and needs is None:
        raise ValueError(
            f"config.finetune.head={head!r} needs a source with its classifier (fc1 ... predictions); "
            f"model {name!r} has none. Allowed: head='pooled'."
        )
    if head == "keep" and source.classes != num_classes:
        raise ValueError(
            f"config.finetune.head='keep' keeps the source's {source.classes}-class classifier, "
            f"but the data has {num_classes} classes; allowed: data with {source.classes} "
            "classes, or head='predictions' / 'pooled' for a new classifier."
        )
    side = source.input_shape[0]
    if head != "pooled" and source.head == "dense" and side != crop_size:
        raise ValueError(
            f"config.data.crop_size={crop_size} with config.finetune.head={head!r}: the source's dense "
            f"fc1 takes {side} px inputs; allowed: crop_size={side}, or head='pooled' for any size."
        )


def _kept(source: models.ModelDescription, head: str):
    """Which of the source's layers the new model keeps (`surgery.rebuild_chain` stops at the first other)."""
    if head == "pooled":  # the conv blocks and the normalisation
        blocks = set(models.STAGES[:-1])
        return lambda layer: layer.name == source.preprocessing_layer or models.layer_stage(layer.name) in blocks
    if head == models.PREDICTIONS_LAYER:
        return lambda layer: layer.name != source.predictions_layer
    return None  # "keep": all


def finetune_model(
    source: keras.Model,
    num_classes: int,
    *,
    head: str = models.PREDICTIONS_LAYER,
    crop_size: int | None = None,
    precision: str = "float32",
    head_dropout: float = 0.5,
    preprocessing: str = "",
) -> keras.Model:
    """The source's layers (weights copied) with a classifier for `num_classes` classes.

    Every layer is cloned under the `precision` dtype policy (the classifier's last layers
    compute in float32). The new layers are `models.classifier_layers`: "pooled" for the
    pooled head, else "conv" or "dense" as the source's head.

    Args:
        source: A vgg_keras model (RGB 0..255 in, or give `preprocessing`).
        num_classes: Classes of the new classifier.
        head: "predictions", "pooled" or "keep" (see the module docstring).
        crop_size: The training crop side (default: the source's input side).
        precision: "float32", "mixed_bfloat16" or "mixed_float16".
        head_dropout: Dropout before the pooled head's soft-max layer.
        preprocessing: Mode of a preprocessing layer to add when the source has none.

    Returns:
        An uncompiled `keras.Model`, nothing frozen yet (`set_trainable`).

    Raises:
        ValueError: If the source does not fit `head`, the classes or the crop size, or
            has no preprocessing layer and `preprocessing` is empty.
    """
    crop_size = crop_size or source.input_shape[1]
    description = models.describe(source)
    _check_head(description, source.name, head, num_classes, crop_size)
    before = None
    if description.preprocessing_layer is None:
        if not preprocessing:
            modes = list(preprocessing_lib.PREPROCESSING_MODES)
            raise ValueError(
                f"config.finetune.preprocessing='' but model {source.name!r} has no preprocessing layer; "
                f"allowed: the mode its weights expect, one of {modes}."
            )
        before = preprocessing_lib.preprocessing_layer(preprocessing, dtype=precision)
    channels = source.input_shape[-1]
    inputs, x, pairs = surgery.rebuild_chain(
        source,
        input_shape=(crop_size, crop_size, channels),
        keep=_kept(description, head),
        before=before,
        clone=lambda layer: surgery.clone_layer(layer, dtype=precision),
    )
    if head != "keep":
        kind = "pooled" if head == "pooled" else description.head
        for layer in models.classifier_layers(
            num_classes, kind, dropout=head_dropout if kind == "pooled" else 0.0, data_format=description.data_format
        ):
            x = layer(x)
    model = keras.Model(inputs, x, name=source.name)
    surgery.copy_weights(pairs)
    return model if precision == "float32" else trainer.scores_in_float32(model)


def layer_group(name: str) -> str | None:
    """The unfreezable group of a layer name: "block1" ... "block5", "fc", "head" or None (input, preprocessing).

    The same as `vgg_keras.models.layer_stage`.
    """
    return models.layer_stage(name)


def set_trainable(model: keras.Model, unfreeze=()) -> list[str]:
    """Freezes everything but the classifier and the groups in `unfreeze`; BatchNorm always frozen.

    Args:
        model: A model from `finetune_model` (or its saved phase-1 copy).
        unfreeze: Groups to train besides the classifier (`BLOCKS` names), or "all", or a
            comma-separated string of them.

    Returns:
        The names of the layers with weights that will train.

    Raises:
        ValueError: If a group in `unfreeze` is unknown or names no layer of `model`.
    """
    tokens = unfreeze_groups(unfreeze if isinstance(unfreeze, str) else ",".join(unfreeze))
    present = {layer_group(layer.name) for layer in model.layers}
    explicit = tokens != BLOCKS  # "all" may include groups a pooled head does not have
    missing = [t for t in tokens if t not in present] if explicit else []
    if missing:
        raise ValueError(
            f"Invalid config.finetune.unfreeze={','.join(tokens)!r}: {missing} name no layer of model "
            f"{model.name!r}; allowed: {sorted(g for g in present if g in BLOCKS)} or 'all'."
        )
    for layer in model.layers:
        group = layer_group(layer.name)
        batch_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = not batch_norm and (group == "head" or group in tokens)
    return [layer.name for layer in model.layers if layer.trainable and layer.weights]


# --------------------------------------------------------------------------- data


def _listed(root: str, argument: str):
    """`list_image_folder(root)` with at least two classes, each with an image."""
    paths, labels, names = sources_lib.list_image_folder(root)
    counts = np.bincount(labels, minlength=len(names))
    empty = [names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise ValueError(
            f"{argument}: class folders {empty} of {root!r} hold no images "
            f"({', '.join(sources_lib.IMAGE_EXTENSIONS)}); allowed: at least one image per class."
        )
    if len(names) < 2:
        raise ValueError(
            f"{argument}: {root!r} has {len(names)} class folder ({list(names)}); allowed: two or more "
            "class sub-folders (root/<class>/<image>)."
        )
    return paths, labels, names


def _carve(paths, labels, num_classes: int, fraction: float, seed: int, argument: str):
    """Stratified, seeded hold-out: (train indices, validation indices)."""
    train, held_out = [], []
    labels = np.asarray(labels)
    for label in range(num_classes):
        members = np.flatnonzero(labels == label)
        count = max(1, round(fraction * len(members)))
        if count >= len(members):
            raise ValueError(
                f"{argument}: class {label} has {len(members)} image(s), too few to hold out a validation "
                "image; allowed: at least 2 images per class, or a validation folder."
            )
        order = np.random.default_rng([seed, label]).permutation(members)
        held_out += sorted(order[:count].tolist())
        train += sorted(order[count:].tolist())
    return train, held_out


def folder_sources(
    root: str,
    train_split: str = "train",
    eval_split: str = "validation",
    validation_fraction: float = 0.2,
    seed: int = 0,
    argument: str = "config.data.name",
):
    """The training and validation `Source`s of an image folder, with their training labels.

    Args:
        root: A folder of class sub-folders, or of `train_split` / `eval_split` folders of them.
        train_split: Sub-folder of the training images, when it exists.
        eval_split: Sub-folder of the validation images; when it does not exist, a stratified
            `validation_fraction` of each training class is held out (seeded, reproducible).
        validation_fraction: Share of each class held out.
        seed: Seed of the hold-out.
        argument: How error messages name the folder.

    Returns:
        `(train_source, eval_source, train_labels)`.

    Raises:
        ValueError: For a folder with fewer than two classes, an empty class, a class too
            small to hold out from, or validation classes that differ from the training ones.
    """
    if not tf.io.gfile.isdir(root):
        raise ValueError(
            f"{argument}: {root!r} is not a directory; allowed: 'folder:' + a folder of class "
            "sub-folders (root/<class>/<image>), or of train/validation folders of them."
        )
    split_root = os.path.join(root, train_split)
    train_root = split_root if tf.io.gfile.isdir(split_root) else root
    paths, labels, names = _listed(train_root, argument)
    eval_root = os.path.join(root, eval_split)
    if tf.io.gfile.isdir(eval_root) and train_root != root:
        eval_paths, eval_labels, eval_names = _listed(eval_root, argument)
        if eval_names != names:
            raise ValueError(
                f"{argument}: the class folders of {eval_root!r} {list(eval_names)} differ from those of "
                f"{train_root!r} {list(names)}; allowed: the same classes in both."
            )
    else:
        train, held_out = _carve(paths, labels, len(names), validation_fraction, seed, argument)
        eval_paths, eval_labels = [paths[i] for i in held_out], [labels[i] for i in held_out]
        paths, labels = [paths[i] for i in train], [labels[i] for i in train]
    return (
        sources_lib.files_source(paths, labels, names),
        sources_lib.files_source(eval_paths, eval_labels, names),
        np.asarray(labels),
    )


def class_weights(labels, num_classes: int) -> np.ndarray:
    """`N / (classes * count_c)` per class (scikit-learn's "balanced"), 0 for absent classes."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype("float64")
    return np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0).astype("float32")


def _source_labels(source) -> np.ndarray:
    """The labels of a source in one pass (for class weights of non-folder sources)."""
    labels = source.dataset.map(lambda example: example["label"], num_parallel_calls=tf.data.AUTOTUNE)
    return np.concatenate([batch.numpy() for batch in labels.batch(4096)] or [np.zeros([0], np.int64)])


def _weighted(data: data_lib.TrainingData, weights: np.ndarray) -> data_lib.TrainingData:
    """`data` whose training batches carry per-example weights `weights[label]`."""
    table = tf.constant(weights)

    def train_fn(input_context, seed):
        return data.train_fn(input_context, seed).map(lambda x, y: (x, y, tf.gather(table, y)))

    return dataclasses.replace(data, train_fn=train_fn)


def finetune_data(config: ml_collections.ConfigDict) -> data_lib.TrainingData:
    """The datasets of a fine-tuning config (folder hold-out, augmentation, class weights).

    Args:
        config: A validated fine-tuning config (after `_resolved_config`).

    Returns:
        A `TrainingData`; with `finetune.class_weights`, training batches are
        `(images, labels, weights)`.

    Raises:
        ValueError / FileNotFoundError: For a bad folder or a missing dataset.
    """
    d, f = config.data, config.finetune
    sources, labels = None, None
    if d.name.startswith("folder:"):
        *sources, labels = folder_sources(
            d.name[len("folder:") :], d.train_split, d.eval_split, f.validation_fraction, f.validation_seed
        )
    data = data_lib.training_data(config, config.training.batch_size, sources=sources)
    if data.num_classes < 2:
        raise ValueError(f"config.data.name={d.name!r} has {data.num_classes} class; allowed: two or more classes.")
    data.mean_rgb = ()  # the source's own preprocessing normalises
    if f.class_weights:
        labels = _source_labels(data.train_source) if labels is None else labels
        data = _weighted(data, class_weights(labels, data.num_classes))
    return data


# --------------------------------------------------------------------------- training


@keras.saving.register_keras_serializable(package="vgg_keras")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels smoothed to `(1 - e) * one_hot + e / classes`.

    Keras 3's `SparseCategoricalCrossentropy` has no label smoothing.

    Args:
        label_smoothing: `e` in [0, 1).
        name: Loss name.
        **kwargs: `keras.losses.Loss` arguments.
    """

    def __init__(self, label_smoothing: float = 0.1, name: str = "smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def _loss(config):
    smoothing = config.finetune.label_smoothing
    return SmoothedSparseCrossentropy(smoothing) if smoothing else "sparse_categorical_crossentropy"


def _phase_config(config, phase: int) -> ml_collections.ConfigDict:
    phase_config = ml_collections.ConfigDict(config.to_dict())
    f = config.finetune
    phase_config.training.epochs = f.phase1_epochs if phase == 1 else f.phase2_epochs
    if phase == 2:
        phase_config.optimizer.learning_rate = config.optimizer.learning_rate * f.phase2_lr_factor
    return phase_config


def _check_same_finetune(path: str, config) -> None:
    """A workdir holds one fine-tuning: refuse to resume it with another source, head or schedule."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        previous = json.load(handle).get("finetune", {})
    changed = [
        f"finetune.{key}: {previous.get(key)!r} -> {value!r}"
        for key, value in config.finetune.items()
        if key in previous and previous[key] != value and key != "phase2_epochs"
    ]
    if changed:
        raise ValueError(
            f"The workdir {os.path.dirname(os.path.dirname(path))!r} holds a fine-tuning with a different "
            f"config ({'; '.join(changed)}); use a new --workdir or restore those values."
        )


def finetune_with_data(
    config: ml_collections.ConfigDict,
    workdir: str,
    data: data_lib.TrainingData,
    source_fn,
    strategy: tf.distribute.Strategy | None = None,
    callbacks=(),
) -> list[trainer.TrainResult]:
    """Both phases of fine-tuning with the datasets given, each resumable in its own workdir.

    Args:
        config: A fine-tuning config (validated here).
        workdir: The run's directory (`phase1/`, `phase2/` inside); rerun to resume.
        data: The datasets (`finetune_data`, or in-memory ones in tests).
        source_fn: `() -> keras.Model`, the pretrained model (called inside the strategy's
            scope, only for phase 1).
        strategy: The distribution strategy (default: from `config.training.strategy`).
        callbacks: Extra Keras callbacks of both phases.

    Returns:
        The `TrainResult` of each phase run (phase 2's model is the fine-tuned one).
    """
    validate_finetune_config(config)
    f = config.finetune
    _check_same_finetune(os.path.join(workdir, "phase1", "config.json"), config)
    strategy = strategy or strategy_lib.make_strategy(config.training.strategy, config.training.tpu_address)
    loss, results = _loss(config), []

    def phase1_model():
        model = finetune_model(
            source_fn(),
            data.num_classes,
            head=f.head,
            crop_size=config.data.crop_size,
            precision=config.training.precision,
            head_dropout=f.head_dropout,
            preprocessing=f.preprocessing,
        )
        set_trainable(model, ())
        return model

    def phase2_model():
        # A fresh copy of phase 1's model (every worker holds it: nothing to read from the chief's disk).
        model = (
            finetune_model(results[-1].model, data.num_classes, head="keep", precision=config.training.precision)
            if results
            else phase1_model()
        )
        set_trainable(model, f.unfreeze)
        return model

    for phase, model_fn in ((1, phase1_model), (2, phase2_model)):
        phase_config = _phase_config(config, phase)
        if phase_config.training.epochs:
            results.append(
                trainer.train_with_data(
                    phase_config,
                    os.path.join(workdir, f"phase{phase}"),
                    data,
                    strategy,
                    callbacks,
                    model_fn=model_fn,
                    loss=loss,
                )
            )
    return results


@dataclasses.dataclass
class FinetuneResult:
    """What `finetune` produced.

    Attributes:
        phases: The `TrainResult` of each phase.
        report: The `EvaluationReport` (None when not evaluated).
        confusion_png: The confusion matrix picture (None when not evaluated).
        export_dir: The SavedModel version directory (None when not exported).
        seconds: Wall time of each stage.
    """

    phases: list
    report: object = None
    confusion_png: str | None = None
    export_dir: str | None = None
    seconds: dict = dataclasses.field(default_factory=dict)

    @property
    def model(self) -> keras.Model:
        """The fine-tuned model."""
        return self.phases[-1].model

    def summary(self) -> str:
        """Where each phase, the evaluation and the export went."""
        lines = []
        for index, result in enumerate(self.phases, start=1):
            accuracy = max(result.history.get("val_accuracy", [float("nan")]))
            lines.append(
                f"Phase {index}: {result.steps} steps, best val_accuracy {accuracy:.4f}; "
                f"workdir {result.paths.workdir} (best.keras, model.keras, metrics.csv, curves.png)"
            )
        if self.report is not None:
            lines += [
                "",
                "Evaluation (validation data):",
                self.report.to_markdown(),
                f"  confusion matrix {self.confusion_png}",
            ]
        if self.export_dir:
            lines += ["", f"SavedModel for TF Serving: {self.export_dir}"]
        lines += ["", "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())]
        return "\n".join(lines)


def _confusion_png(report, path: str) -> str:
    from vgg_keras import evaluation  # pylint: disable=import-outside-toplevel
    from vgg_keras.evaluation import plots  # pylint: disable=import-outside-toplevel

    model, method = report.primary
    top1 = report.top_predictions[(model, method)][0][:, 0]
    matrix = evaluation.confusion_matrix(top1, report.labels, len(report.class_names))
    return plots.confusion_figure(matrix, report.class_names, path, title=f"{model}, {method}")


def finetune(config: ml_collections.ConfigDict, workdir: str) -> FinetuneResult:
    """Fine-tunes `config.finetune.source` on `config.data`, then evaluates and exports.

    Args:
        config: A config from `finetune_config` (or `recipes/configs/finetune*.py`).
        workdir: The run's directory; rerunning the same command resumes.

    Returns:
        A `FinetuneResult`; `summary()` lists where everything was written.

    Raises:
        ValueError: For a bad config, source, folder or classes (before training).
        FileNotFoundError: For a missing dataset or `.keras` source.
        FloatingPointError: If the loss became NaN/Inf (the last good backup is kept).
    """
    config = _resolved_config(validate_finetune_config(config))
    experiment.check_stages(config)  # the same checks as train.py
    seconds: dict = {}
    start = time.perf_counter()
    data = finetune_data(config)
    strategy = strategy_lib.make_strategy(config.training.strategy, config.training.tpu_address)
    phases = finetune_with_data(config, workdir, data, lambda: load_source_model(config), strategy)
    seconds["train"] = time.perf_counter() - start
    result = FinetuneResult(phases, seconds=seconds)
    final = dataclasses.replace(phases[-1], paths=trainer.RunPaths.of(workdir))
    if config.after.evaluate and strategy_lib.is_chief(strategy):
        result.report = experiment.timed(seconds, "evaluate", experiment.evaluate_run, final, config)
        result.confusion_png = _confusion_png(result.report, os.path.join(workdir, "eval", "confusion.png"))
    if config.after.export and strategy_lib.is_chief(strategy):
        result.export_dir = experiment.timed(seconds, "export", experiment.export_run, final, config)
    return result
