"""Localisation error (IoU > 0.5 with the right class, top-1/top-5), its report and figure."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from vgg_keras.data import pipeline as pipeline_lib
from vgg_keras.data.sources import Source
from vgg_keras.evaluation import metrics
from vgg_keras.evaluation.plots import save_figure
from vgg_keras.localization.boxes import IOU_THRESHOLD, box_iou, crop_boxes_to_image, from_center_xywh
from vgg_keras.localization.datasets import box_eval_dataset
from vgg_keras.localization.heads import localizer_mode, select_class_boxes


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
        raise ValueError(
            f"Expected top_classes [N, k], labels [N], ious [N]; received shapes "
            f"{top_classes.shape}, {labels.shape}, {ious.shape}."
        )
    overlap = ious > threshold
    k = top_classes.shape[1]
    right_top1 = top_classes[:, 0] == labels
    right_topk = np.any(top_classes == labels[:, None], axis=1)
    return {
        "top1_error": float(1 - np.mean(right_top1 & overlap)),
        f"top{k}_error": float(1 - np.mean(right_topk & overlap)),
    }


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
        return {
            "mode": self.mode,
            "top1_error": self.top1_error,
            "top5_error": self.top5_error,
            "mean_iou": self.mean_iou,
            "num_images": self.num_images,
            "class_source": self.class_source,
            "scale": self.scale,
            "crop_size": self.crop_size,
        }

    def to_markdown(self) -> str:
        """A one-row table in the paper's style (errors in %)."""
        return (
            "| mode | classes from | Q | top-1 loc. error (%) | top-5 loc. error (%) | mean IoU | images |\n"
            "|---|---|---|---|---|---|---|\n"
            f"| {self.mode.upper()} | {self.class_source} | {self.scale} | {100 * self.top1_error:.1f} | "
            f"{100 * self.top5_error:.1f} | {self.mean_iou:.3f} | {self.num_images} |\n"
        )

    def save(self, output_dir: str) -> dict[str, str]:
        """Writes ``localization.md`` and ``localization.json``; returns their paths."""
        os.makedirs(output_dir, exist_ok=True)
        paths = {
            "markdown": os.path.join(output_dir, "localization.md"),
            "json": os.path.join(output_dir, "localization.json"),
        }
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


def evaluate_localization(
    localizer: keras.Model,
    source: Source,
    *,
    classifier: keras.Model | None = None,
    scale: int = 256,
    crop_size: int = 224,
    batch_size: int = 32,
    top_k: int = 5,
    preprocess: Callable | None = None,
    max_examples: int | None = None,
    output_dir: str | None = None,
    num_pictures: int = 8,
) -> LocalizationReport:
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
    dataset = box_eval_dataset(
        source,
        batch_size=batch_size,
        scale=scale,
        crop_size=crop_size,
        preprocess=preprocess,
        max_examples=max_examples,
    )
    parts: dict[str, list] = {key: [] for key in ("true", "pred", "labels", "top", "ious", "pictures")}
    for batch in dataset:
        scores = _class_scores(classifier, batch["image"], batch["label"], source.num_classes)
        top = metrics.top_k_indices(scores, top_k)
        guesses = tf.concat([tf.constant(top, tf.int32), batch["label"][:, None]], axis=1)
        boxes = crop_boxes_to_image(_predicted_boxes(localizer, batch["image"], guesses), batch["window"][:, None])
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
        mode=mode,
        top1_error=errors["top1_error"],
        top5_error=errors[f"top{top_k}_error"],
        num_images=len(arrays["labels"]),
        mean_iou=float(np.mean(arrays["ious"])),
        class_source="ground truth" if classifier is None else "classifier",
        scale=scale,
        crop_size=crop_size,
        true_boxes=arrays["true"],
        pred_boxes=arrays["pred"],
        labels=arrays["labels"],
        top_classes=arrays["top"],
        ious=arrays["ious"],
    )
    if output_dir is not None:
        report.save(output_dir)
        pictures = _pictures(source, scale, min(num_pictures, report.num_images))
        localization_figure(
            pictures,
            report.true_boxes,
            report.pred_boxes,
            report.labels,
            report.top_classes[:, 0],
            source.class_names,
            os.path.join(output_dir, "localization_boxes.png"),
        )
    return report


def _pictures(source: Source, scale: int, count: int) -> list[np.ndarray]:
    dataset = source.dataset.take(count).map(
        lambda example: tf.saturate_cast(tf.round(pipeline_lib.decode_resize(example["image"], scale)), tf.uint8)
    )
    return [image.numpy() for image in dataset]


def localization_figure(
    images: Sequence[np.ndarray], true_boxes, pred_boxes, labels, pred_classes, class_names: Sequence[str], path: str
) -> str:
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
            axis.add_patch(
                Rectangle(
                    (xmin, ymin), xmax - xmin, ymax - ymin, fill=False, edgecolor=colour, linestyle=style, linewidth=2
                )
            )
        axis.set_title(
            f"true {class_names[labels[i]]}\npred {class_names[pred_classes[i]]}, IoU {iou[i]:.2f}", fontsize=8
        )
        axis.axis("off")
    figure.tight_layout()
    return save_figure(figure, path)
