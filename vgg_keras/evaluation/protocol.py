"""The paper's test protocol (section 3.2) for one model or an ensemble.

Methods: "center" (one crop at Q), "dense" (the conv-head net on the whole image at Q,
scores averaged, soft-max), "multicrop" (5x5 grid x 2 flips = 50 crops per scale) and
"dense+multicrop" (their soft-max outputs averaged). Several scales Q average their
posteriors; several models (an ensemble) average theirs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
import tqdm

from vgg_keras.evaluation import inputs as inputs_lib
from vgg_keras.evaluation.forward import ModelRunner, prepare_model
from vgg_keras.evaluation.report import EvaluationReport, Predictions
from vgg_keras.validation import check_int, check_scales

METHODS = ("center", "dense", "multicrop", "dense+multicrop")
# The forward passes each method needs; "dense+multicrop" reuses the two it combines.
_KINDS = {
    "center": ("center",),
    "dense": ("dense",),
    "multicrop": ("multicrop",),
    "dense+multicrop": ("dense", "multicrop"),
}


# --------------------------------------------------------------------------- argument checks


def _check_methods(methods) -> tuple[str, ...]:
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    bad = [m for m in methods if m not in METHODS]
    if not methods or bad or len(set(methods)) != len(methods):
        raise ValueError(f"methods={methods!r}; allowed: a non-empty sequence of distinct names from {METHODS}.")
    return methods


def _as_list(value, count: int, name: str) -> list:
    if value is None or callable(value):
        return [value] * count
    value = list(value)
    if len(value) != count:
        raise ValueError(f"{name} has {len(value)} entries for {count} models; allowed: one, or one per model.")
    return value


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique


def prepare_models(models, preprocess=None, model_names=None) -> list[ModelRunner]:
    """`ModelRunner`s for one model or a sequence of models (an ensemble).

    Args:
        models: A `keras.Model` or a sequence of them; `ModelRunner`s (from an earlier
            call) are reused as they are, skipping the conversion and compilation.
        preprocess: None, one callable for all models, or one entry per model.
        model_names: Optional names for the reports, one per model.

    Returns:
        One `ModelRunner` per model, with unique names.
    """
    models = [models] if isinstance(models, (keras.Model, ModelRunner)) else list(models)
    if not models:
        raise ValueError("models is empty; allowed: a keras.Model or a non-empty sequence of them.")
    preprocess = _as_list(preprocess, len(models), "preprocess")
    names = _as_list(model_names, len(models), "model_names") if model_names is not None else [None] * len(models)
    names = _unique_names([name or model.name for name, model in zip(names, models)])
    return [_runner(model, pre, name) for model, pre, name in zip(models, preprocess, names)]


def _runner(model, preprocess, name: str) -> ModelRunner:
    if not isinstance(model, ModelRunner):
        return prepare_model(model, preprocess, name)
    if preprocess is not None:
        raise ValueError(f"preprocess={preprocess!r} given with a ModelRunner; allowed: None (it has its own).")
    return model if model.name == name else dataclasses.replace(model, name=name)


# --------------------------------------------------------------------------- posteriors


def flip_valid(images: tf.Tensor, sizes: tf.Tensor) -> tf.Tensor:
    """Mirrors each padded image inside its own valid width (padding stays bottom/right)."""
    return tf.reverse_sequence(images, tf.cast(sizes[:, 1], tf.int64), seq_axis=2, batch_axis=0)


def dense_groups(sizes, pad_multiple: int = 32) -> list[np.ndarray]:
    """Which images of a batch share a dense forward pass: equal sizes rounded up to `pad_multiple`.

    One group holds images of one orientation and size bucket, so padding them to the
    group's largest image adds fewer than `pad_multiple` rows and columns to each.

    Args:
        sizes: `int [B, 2]` valid (height, width) of each image.
        pad_multiple: Bucket width in pixels; 1 groups images of exactly equal size only.

    Returns:
        Index arrays, one per group, ordered by each group's first image; together they
        hold every index once.
    """
    keys = -(-np.asarray(sizes, np.int64).reshape(-1, 2) // pad_multiple)
    groups: dict[tuple[int, int], list[int]] = {}
    for index, key in enumerate(map(tuple, keys.tolist())):
        groups.setdefault(key, []).append(index)
    return [np.asarray(group) for group in groups.values()]


def _dense_pass(runner: ModelRunner, images: tf.Tensor, sizes: np.ndarray | None, flip: bool) -> tf.Tensor:
    """One forward pass over images (with their mirrors when `flip`); plain when `sizes` is None."""
    if not flip:
        return runner.posteriors(images, sizes)
    if sizes is None:
        both = runner.posteriors(tf.concat([images, tf.reverse(images, axis=[2])], 0))
    else:
        mirrored = flip_valid(images, tf.constant(sizes))
        both = runner.posteriors(tf.concat([images, mirrored], 0), np.concatenate([sizes, sizes]))
    plain, mirror = tf.split(both, 2)
    return (plain + mirror) / 2.0


def dense_posteriors(
    runner: ModelRunner, images, sizes=None, *, flip: bool = True, pad_multiple: int = 32
) -> tf.Tensor:
    """Dense evaluation of a padded batch: whole images, valid score positions averaged.

    Images are grouped by `dense_groups` (orientation and size bucket) and each group runs
    as one forward pass cut to its largest image: a group of equal sizes (or `sizes`
    None) runs the plain conv-head forward pass, without padding or masks; a group of
    nearly equal sizes runs the masked pass, which zeroes padding only where a layer could
    read it. Results come back in the input order.

    Args:
        runner: The model.
        images: `float32 [B, H, W, 3]`, image b in its top-left `sizes[b]` corner.
        sizes: `int32 [B, 2]` valid (height, width), concrete (eager) values; None when
            every image fills the batch.
        flip: Also evaluate each image's mirror and average the two posteriors.
        pad_multiple: Images whose sizes rounded up to a multiple of this match share a
            forward pass; 1 runs only equal sizes together (never masks). The result does
            not depend on it.

    Returns:
        `float32 [B, classes]` posteriors, equal to evaluating each image alone.

    Raises:
        ValueError: If `pad_multiple` is not a positive integer or `sizes` is not `[B, 2]`.
    """
    pad_multiple = check_int("pad_multiple", pad_multiple)
    images = tf.convert_to_tensor(images, tf.float32)
    if sizes is None:
        return _dense_pass(runner, images, None, flip)
    sizes = np.asarray(sizes, np.int32)
    if sizes.shape != (images.shape[0], 2):
        raise ValueError(
            f"sizes has shape {sizes.shape}; allowed: [{images.shape[0]}, 2] (one (height, width) per image)."
        )
    groups = dense_groups(sizes, pad_multiple)
    parts = []
    for group in groups:
        height, width = sizes[group].max(0)
        batch = images if len(groups) == 1 else tf.gather(images, group)
        fills = bool((sizes[group] == (height, width)).all())
        parts.append(_dense_pass(runner, batch[:, :height, :width], None if fills else sizes[group], flip))
    if len(parts) == 1:
        return parts[0]
    return tf.gather(tf.concat(parts, 0), np.argsort(np.concatenate(groups), kind="stable"))


def crop_posteriors(runner: ModelRunner, crops, *, forward_batch_size: int = 256) -> tf.Tensor:
    """Posteriors averaged over each image's crops, all crops in a few batched passes.

    Args:
        runner: The model.
        crops: `float32 [B, K, c, c, 3]` (K crops per image, e.g. the 50 of one scale).
        forward_batch_size: Most crops per forward pass (memory bound); crops of several
            images share a pass.

    Returns:
        `float32 [B, classes]`: the mean of the K crops' posteriors.
    """
    crops = tf.convert_to_tensor(crops, tf.float32)
    shape = tf.shape(crops)
    flat = tf.reshape(crops, tf.concat([[-1], shape[2:]], 0))
    total = int(tf.shape(flat)[0])
    parts = [
        runner.posteriors(flat[start : start + forward_batch_size]) for start in range(0, total, forward_batch_size)
    ]
    posteriors = tf.concat(parts, 0)
    return tf.reduce_mean(tf.reshape(posteriors, [shape[0], shape[1], -1]), axis=1)


def center_posteriors(runner: ModelRunner, crops, *, flip: bool = True, forward_batch_size: int = 256) -> tf.Tensor:
    """Posteriors of centre crops `[B, c, c, 3]`, averaged with their mirrors when `flip`.

    Args:
        runner: The model.
        crops: `float32 [B, c, c, 3]`, one centre crop per image.
        flip: Also evaluate each crop's mirror and average the two posteriors.
        forward_batch_size: Most crops per forward pass (as for `crop_posteriors`).

    Returns:
        `float32 [B, classes]` posteriors.
    """
    crops = tf.convert_to_tensor(crops, tf.float32)
    stack = tf.stack([crops, tf.reverse(crops, axis=[2])], axis=1) if flip else crops[:, None]
    return crop_posteriors(runner, stack, forward_batch_size=forward_batch_size)


def batch_posteriors(
    runner: ModelRunner,
    batch: dict,
    methods: Sequence[str],
    scales: Sequence[int],
    *,
    flip: bool,
    forward_batch_size: int = 256,
    pad_multiple: int = 32,
) -> dict[str, np.ndarray]:
    """Each method's posteriors for one batch of views, averaged over the scales.

    Args:
        runner: The model.
        batch: One element of `inputs.eval_batches` holding the views `methods` need at `scales`.
        methods: Names from `METHODS`.
        scales: Test scales Q whose posteriors are averaged.
        flip: Average with horizontal flips (centre and dense; multi-crop views hold theirs).
        forward_batch_size: Most crops per forward pass.
        pad_multiple: Dense size buckets (see `dense_posteriors`).

    Returns:
        `{method: float32 [B, classes]}` for every method in `methods`.
    """
    kind_fns: dict[str, Callable] = {
        "center": lambda q: center_posteriors(
            runner, batch[inputs_lib.view_key("center", q)], flip=flip, forward_batch_size=forward_batch_size
        ),
        "dense": lambda q: dense_posteriors(
            runner,
            batch[inputs_lib.view_key("dense", q)],
            batch[inputs_lib.view_key("size", q)],
            flip=flip,
            pad_multiple=pad_multiple,
        ),
        "multicrop": lambda q: crop_posteriors(
            runner, batch[inputs_lib.view_key("multicrop", q)], forward_batch_size=forward_batch_size
        ),
    }
    kinds = sorted({kind for method in methods for kind in _KINDS[method]})
    per_kind = {kind: np.mean([kind_fns[kind](q).numpy() for q in scales], axis=0) for kind in kinds}
    return {method: np.mean([per_kind[kind] for kind in _KINDS[method]], axis=0) for method in methods}


# --------------------------------------------------------------------------- evaluate


def _check_sizes(runners: list[ModelRunner], methods, scales, crop_size) -> None:
    needs_crops = any(kind != "dense" for method in methods for kind in _KINDS[method])
    if needs_crops and min(scales) < crop_size:
        raise ValueError(f"scales={scales} has a Q below crop_size={crop_size}; allowed: every Q >= crop_size.")
    for runner in runners:
        smallest = min(min(scales), crop_size) if needs_crops else min(scales)
        if smallest < runner.base_size:
            raise ValueError(
                f"Model {runner.name!r} needs inputs of at least base_size={runner.base_size}, but "
                f"scales={scales} / crop_size={crop_size} give {smallest}; "
                f"allowed: Q and crop_size >= {runner.base_size}."
            )


def _progress(source, max_examples, enabled: bool):
    total = source.num_examples if getattr(source, "num_examples", None) is not None else max_examples
    if max_examples is not None and total is not None:
        total = min(total, max_examples)
    return tqdm.tqdm(total=total, unit="img", desc="evaluating", disable=not enabled, dynamic_ncols=True)


def evaluate(
    models,
    source,
    *,
    methods: Sequence[str] | str = ("center",),
    scales: Sequence[int] | int = (256,),
    crop_size: int = 224,
    flip: bool = True,
    grid: int = 5,
    batch_size: int = 8,
    preprocess=None,
    max_examples: int | None = None,
    output_dir: str | None = None,
    model_names: Sequence[str] | None = None,
    train_scale=None,
    forward_batch_size: int = 256,
    pad_multiple: int = 32,
    num_samples: int = 6,
    progress: bool = True,
) -> EvaluationReport:
    """Evaluates one model or an ensemble with the paper's test protocol.

    Every image is decoded once; each requested scale Q rescales it (smallest side Q),
    and each method computes posteriors from that: "center" (the central crop, averaged
    with its mirror when `flip`), "dense" (the whole image through the conv-head net,
    valid score positions averaged, soft-max, mirror averaged when `flip`; the images of
    a batch are grouped by orientation and size bucket, `dense_groups`, images of one size
    run the plain forward pass and the result equals one-at-a-time evaluation),
    "multicrop" (`grid` x `grid` crops, plus mirrors when `flip`, one batched pass) and
    "dense+multicrop" (the two posteriors averaged). Posteriors are averaged over scales,
    and over models for an ensemble (reported as an extra row named "A+B+...").

    Args:
        models: A vgg_keras classifier (`keras.Model`, dense or conv head) or a sequence of
            them (an ensemble; each evaluated alone too); `ModelRunner`s from
            `prepare_models` are accepted too (no conversion or compilation again).
        source: A `vgg_keras.data.Source` (e.g. `vgg_keras.data.get_source("builtin",
            "validation")`); elements `{"image": encoded bytes or uint8 [H, W, 3], "label"}`.
        methods: Any of "center", "dense", "multicrop", "dense+multicrop".
        scales: Test scales Q; posteriors are averaged over them (the paper's multi-scale).
        crop_size: Side of centre and multi-crop crops (224 in the paper), <= every Q.
        flip: Average with horizontal flips (multi-crop: include the mirrored crops).
        grid: Crops per side for multi-crop (5 in the paper: 25 positions).
        batch_size: Images per batch (a multi-crop pass holds batch_size x crops).
        preprocess: Normalisation for RGB 0..255 input, e.g.
            `vgg_keras.preprocessing.preprocess_input`; None for models that normalise
            themselves (a first layer "preprocessing") or need none; one per model allowed.
        max_examples: Evaluate only the first this many images.
        output_dir: When given, `report.save(output_dir)` writes the table, JSON, the
            confusion summary and the pictures.
        model_names: Names for the table (default: the models' names).
        train_scale: Training scale S to show in the table (int, or a (min, max) pair).
        forward_batch_size: Most crops in one forward pass.
        pad_multiple: Dense size buckets: images of a batch whose sizes at Q, rounded up to a
            multiple of this, match share a forward pass (see `dense_posteriors`).
        num_samples: Images shown in the predictions picture.
        progress: Show a progress bar with images/s.

    Returns:
        An `EvaluationReport` (rows of top-1/top-5 error per model and method).

    Raises:
        ValueError: For unknown methods, bad scales or sizes below a model's base_size.
        TypeError: If a model is not a `keras.Model`.
    """
    methods = _check_methods(methods)
    crop_size, grid = check_int("crop_size", crop_size, 32), check_int("grid", grid)
    batch_size = check_int("batch_size", batch_size)
    forward_batch_size = check_int("forward_batch_size", forward_batch_size)
    pad_multiple = check_int("pad_multiple", pad_multiple)
    if max_examples is not None:
        max_examples = check_int("max_examples", max_examples)
    scales = check_scales(scales, 32)
    runners = prepare_models(models, preprocess, model_names)
    _check_sizes(runners, methods, scales, crop_size)
    kinds = sorted({kind for method in methods for kind in _KINDS[method]})
    batches = inputs_lib.eval_batches(
        source,
        scales=scales,
        kinds=kinds,
        crop_size=crop_size,
        grid=grid,
        flip=flip,
        batch_size=batch_size,
        max_examples=max_examples,
    )
    predictions = Predictions([runner.name for runner in runners], methods)
    start = time.perf_counter()
    with _progress(source, max_examples, progress) as bar:
        for batch in batches:
            per_model = [
                batch_posteriors(
                    runner,
                    batch,
                    methods,
                    scales,
                    flip=flip,
                    forward_batch_size=forward_batch_size,
                    pad_multiple=pad_multiple,
                )
                for runner in runners
            ]
            predictions.add(per_model, batch["label"].numpy())
            bar.update(int(batch["label"].shape[0]))
    seconds = time.perf_counter() - start
    report = EvaluationReport.from_predictions(
        predictions,
        class_names=tuple(getattr(source, "class_names", None) or [str(i) for i in range(runners[0].num_classes)]),
        settings={
            "methods": list(methods),
            "scales": list(scales),
            "crop_size": crop_size,
            "grid": grid,
            "flip": flip,
            "train_scale": train_scale,
            "seconds": seconds,
        },
        samples=inputs_lib.sample_images(source, max(scales), num_samples) if num_samples else [],
    )
    if output_dir is not None:
        report.save(output_dir)
    return report
