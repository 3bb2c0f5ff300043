"""Top-k error and the per-class confusion summary (NumPy; no TensorFlow needed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array; received shape {labels.shape}, dtype {labels.dtype}.")
    return labels


def top_k_indices(posteriors, k: int = 5) -> np.ndarray:
    """The `k` highest-scoring classes of each row, best first.

    Ties are broken towards the lower class index (a stable sort), so results do not
    depend on the platform.

    Args:
        posteriors: `[N, classes]` scores or probabilities.
        k: How many classes to keep; at most `classes`.

    Returns:
        `int64 [N, k]` class indices.

    Raises:
        ValueError: If `posteriors` is not 2-D or `k` is not in `[1, classes]`.
    """
    posteriors = np.asarray(posteriors)
    if posteriors.ndim != 2:
        raise ValueError(f"posteriors must be [N, classes]; received shape {posteriors.shape}.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= posteriors.shape[1]:
        raise ValueError(f"k={k!r}; allowed: an integer in [1, {posteriors.shape[1]}] (the number of classes).")
    return np.argsort(-posteriors, axis=1, kind="stable")[:, :k].astype(np.int64)


def top_k_error(predictions, labels, k: int) -> float:
    """Fraction of images whose label is not among the top `k` predictions.

    Args:
        predictions: `[N, classes]` posteriors, or `[N, m]` class indices sorted best
            first (integer dtype, `m >= k`), e.g. the output of `top_k_indices`.
        labels: `[N]` integer labels.
        k: 1 for top-1 error, 5 for top-5 error.

    Returns:
        The error in [0, 1] (the paper reports it in %).

    Raises:
        ValueError: On empty input, mismatched lengths or a `k` the predictions cannot give.
    """
    labels = _as_labels(labels)
    predictions = np.asarray(predictions)
    if predictions.ndim != 2 or predictions.shape[0] != labels.shape[0] or labels.size == 0:
        raise ValueError(
            f"predictions {predictions.shape} and labels {labels.shape} must be [N, m] and [N] with N > 0."
        )
    if np.issubdtype(predictions.dtype, np.integer):
        if not 1 <= k <= predictions.shape[1]:
            raise ValueError(f"k={k!r}; the class-index predictions only hold the top {predictions.shape[1]}.")
        top = predictions[:, :k]
    else:
        top = top_k_indices(predictions, k)
    return float(1.0 - np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(top1, labels, num_classes: int) -> np.ndarray:
    """`[true, predicted]` counts of top-1 predictions.

    Args:
        top1: `[N]` predicted classes.
        labels: `[N]` true classes.
        num_classes: Number of classes.

    Returns:
        `int64 [num_classes, num_classes]` counts.
    """
    labels = _as_labels(labels)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, np.asarray(top1, np.int64)), 1)
    return matrix


def confusion_summary(top5, labels, class_names: Sequence[str]) -> list[dict]:
    """Per-class errors and the class each one is most often mistaken for.

    Args:
        top5: `[N, >=5]` predicted class indices, best first (or `[N, m]` with m < 5: the
            top-5 error then uses the m available).
        labels: `[N]` true labels.
        class_names: One name per class.

    Returns:
        One dict per class that occurs in `labels`, worst top-1 error first:
        `class`, `name`, `num_images`, `top1_error`, `top5_error`, `most_confused_with`
        (name or None) and `confused_count`.
    """
    top5 = np.asarray(top5)
    labels = _as_labels(labels)
    matrix = confusion_matrix(top5[:, 0], labels, len(class_names))
    hits5 = np.any(top5[:, :5] == labels[:, None], axis=1)
    summary = []
    for cls in np.unique(labels):
        row = matrix[cls].copy()
        count = int(row.sum())
        row[cls] = 0
        wrong = int(row.argmax())
        summary.append(
            {
                "class": int(cls),
                "name": str(class_names[cls]),
                "num_images": count,
                "top1_error": float(1.0 - matrix[cls, cls] / count),
                "top5_error": float(1.0 - hits5[labels == cls].mean()),
                "most_confused_with": str(class_names[wrong]) if row[wrong] else None,
                "confused_count": int(row[wrong]),
            }
        )
    return sorted(summary, key=lambda item: (-item["top1_error"], item["class"]))
