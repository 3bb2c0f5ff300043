"""Pictures of an evaluation: the multi-crop grid on one image, and top-5 predictions.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot) and saved atomically by
`save_figure` (vgg_keras._figures, shared with the training curves), so saving a picture
never changes the backend of the caller's notebook or needs a display.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from vgg_keras._figures import save_figure
from vgg_keras.data import crops as crops_lib

__all__ = ["confusion_figure", "crop_boxes", "crop_grid_figure", "predictions_figure", "save_figure"]


def crop_boxes(height: int, width: int, crop_size: int, grid: int = 5) -> list[tuple[int, int]]:
    """(top, left) of each multi-crop window, row-major, as `vgg_keras.data.multi_crop` takes them."""
    if grid == 1:
        return [((height - crop_size) // 2, (width - crop_size) // 2)]
    tops = crops_lib.grid_offsets(tf.constant(height), crop_size, grid).numpy()
    lefts = crops_lib.grid_offsets(tf.constant(width), crop_size, grid).numpy()
    return [(int(top), int(left)) for top in tops for left in lefts]


def crop_grid_figure(image: np.ndarray, crop_size: int, grid: int, path: str) -> str:
    """Saves a PNG: the image with its `grid` x `grid` crop windows, and the crops themselves.

    Args:
        image: `uint8 [H, W, 3]` image at the test scale.
        crop_size: Side of the crops.
        grid: Crops per side.
        path: Where to write the PNG.

    Returns:
        `path`.
    """
    boxes = crop_boxes(image.shape[0], image.shape[1], crop_size, grid)
    figure = Figure(figsize=(12, 6))
    overview = figure.add_subplot(1, 2, 1)
    overview.imshow(image)
    colours = [tuple(c) for c in np.linspace([1, 0, 0], [0, 0.4, 1], len(boxes))]
    for (top, left), colour in zip(boxes, colours):
        overview.add_patch(Rectangle((left, top), crop_size, crop_size, fill=False, edgecolor=colour, linewidth=1))
    overview.set_title(f"{len(boxes)} crop windows of {crop_size} px at Q={min(image.shape[:2])} (+ mirrors)")
    overview.axis("off")
    tiles = figure.add_gridspec(grid, grid, left=0.52, right=0.98, wspace=0.05, hspace=0.05)
    for index, (top, left) in enumerate(boxes):
        axis = figure.add_subplot(tiles[index // grid, index % grid])
        axis.imshow(image[top : top + crop_size, left : left + crop_size])
        axis.axis("off")
    return save_figure(figure, path)


def predictions_figure(
    images: Sequence[np.ndarray],
    top_classes: np.ndarray,
    top_scores: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    path: str,
) -> str:
    """Saves a PNG: each image above a bar chart of its top-5 posteriors (true class green).

    Args:
        images: uint8 images (the first ones evaluated).
        top_classes: `[N, k]` class indices, best first (N >= len(images)).
        top_scores: `[N, k]` their posteriors.
        labels: `[N]` true labels.
        class_names: One name per class.
        path: Where to write the PNG.

    Returns:
        `path`.
    """
    count = min(len(images), len(labels))
    figure = Figure(figsize=(3 * count, 6))
    for i in range(count):
        picture = figure.add_subplot(2, count, i + 1)
        picture.imshow(images[i])
        picture.set_title(f"true: {class_names[labels[i]]}", fontsize=9)
        picture.axis("off")
        bars = figure.add_subplot(2, count, count + i + 1)
        rank = np.arange(top_classes.shape[1])[::-1]
        colours = ["tab:green" if c == labels[i] else "tab:gray" for c in top_classes[i]]
        bars.barh(rank, top_scores[i], color=colours)
        bars.set_yticks(rank, [class_names[c] for c in top_classes[i]], fontsize=8)
        bars.set_xlim(0, 1)
        bars.set_xlabel("posterior", fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], path: str, title: str = "") -> str:
    """Saves a PNG of a confusion matrix: rows true classes, columns predictions, counts in the cells.

    Args:
        matrix: `[classes, classes]` counts (`vgg_keras.evaluation.confusion_matrix`).
        class_names: One name per class.
        path: Where to write the PNG.
        title: Optional title (e.g. the model and method).

    Returns:
        `path`.
    """
    matrix = np.asarray(matrix)
    count = len(class_names)
    side = max(4.0, 0.45 * count + 2)
    figure = Figure(figsize=(side, side))
    axes = figure.add_subplot(1, 1, 1)
    rows = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    axes.imshow(matrix / rows, cmap="Blues", vmin=0, vmax=1)  # colour: the fraction of the true class
    if count <= 30:
        for (true, predicted), value in np.ndenumerate(matrix):
            if value:
                dark = matrix[true, predicted] / rows[true, 0] > 0.5
                axes.text(
                    predicted,
                    true,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )
        axes.set_xticks(range(count), class_names, rotation=90, fontsize=8)
        axes.set_yticks(range(count), class_names, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return save_figure(figure, path)
