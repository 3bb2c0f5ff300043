"""Evaluation results: the paper-style table, JSON, confusion summary and pictures."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence

import numpy as np

from vgg_keras.evaluation import metrics

TOP_K = 5
METHOD_LABELS = {
    "center": "centre crop",
    "dense": "dense",
    "multicrop": "multi-crop",
    "dense+multicrop": "multi-crop & dense",
}


class Predictions:
    """Collects the top-5 classes (and their posteriors) per (model, method) batch by batch.

    With several models, an extra model "A+B+..." holds the ensemble (posteriors averaged).
    Only the top 5 of each image are kept, so memory stays small for 1000 classes.
    """

    def __init__(self, model_names: Sequence[str], methods: Sequence[str]):
        self.model_names = list(model_names)
        if len(self.model_names) > 1:
            self.model_names.append("+".join(model_names))
        self.methods = list(methods)
        self._indices = {(m, k): [] for m in self.model_names for k in self.methods}
        self._scores = {(m, k): [] for m in self.model_names for k in self.methods}
        self._labels: list[np.ndarray] = []

    def add(self, per_model: list[dict[str, np.ndarray]], labels: np.ndarray) -> None:
        """Adds one batch: `per_model[i][method]` are `[B, classes]` posteriors of model i."""
        if len(per_model) > 1:
            per_model = per_model + [{k: np.mean([p[k] for p in per_model], axis=0) for k in self.methods}]
        for name, posteriors in zip(self.model_names, per_model):
            for method in self.methods:
                top = metrics.top_k_indices(posteriors[method], min(TOP_K, posteriors[method].shape[1]))
                self._indices[(name, method)].append(top)
                self._scores[(name, method)].append(np.take_along_axis(posteriors[method], top, axis=1))
        self._labels.append(np.asarray(labels, np.int64))

    @property
    def labels(self) -> np.ndarray:
        return np.concatenate(self._labels) if self._labels else np.zeros([0], np.int64)

    def top(self, model: str, method: str) -> tuple[np.ndarray, np.ndarray]:
        """(`[N, 5]` class indices, `[N, 5]` posteriors) of one model and method."""
        return np.concatenate(self._indices[(model, method)]), np.concatenate(self._scores[(model, method)])


def _format_scales(scales) -> str:
    return ",".join(str(s) for s in scales)


def _format_train_scale(scale) -> str:
    if scale is None:
        return "-"
    if isinstance(scale, (tuple, list)):
        return f"[{scale[0]};{scale[1]}]"
    return str(scale)


@dataclasses.dataclass
class EvaluationReport:
    """What `evaluate` measured.

    Attributes:
        rows: One dict per (model, method): `model`, `method`, `scales`, `top1_error`,
            `top5_error` (fractions), `num_images`, `crops_per_image`.
        class_names: One name per class.
        labels: `[N]` true labels, in evaluation order.
        top_predictions: `{(model, method): ([N, 5] classes, [N, 5] posteriors)}`.
        settings: The protocol (methods, scales, crop_size, grid, flip, train_scale, seconds).
        samples: The first few images at the largest test scale (uint8), for the pictures.
    """

    rows: list[dict]
    class_names: tuple[str, ...]
    labels: np.ndarray
    top_predictions: dict
    settings: dict
    samples: list = dataclasses.field(default_factory=list)

    @classmethod
    def from_predictions(cls, predictions: Predictions, *, class_names, settings, samples=()) -> EvaluationReport:
        """Builds the rows (errors per model and method) from collected predictions."""
        labels = predictions.labels
        if labels.size == 0:
            raise ValueError("No images were evaluated (empty source, or every image failed to decode).")
        crops = {
            "center": 2 if settings["flip"] else 1,
            "dense": 2 if settings["flip"] else 1,
            "multicrop": settings["grid"] ** 2 * (2 if settings["flip"] else 1),
        }
        crops["dense+multicrop"] = crops["dense"] + crops["multicrop"]
        top, rows = {}, []
        for model in predictions.model_names:
            for method in predictions.methods:
                indices, scores = top[(model, method)] = predictions.top(model, method)
                rows.append(
                    {
                        "model": model,
                        "method": method,
                        "scales": list(settings["scales"]),
                        "top1_error": metrics.top_k_error(indices, labels, 1),
                        "top5_error": metrics.top_k_error(indices, labels, indices.shape[1]),
                        "num_images": int(labels.size),
                        "crops_per_image": crops[method] * len(settings["scales"]),
                    }
                )
        return cls(rows, tuple(class_names), labels, top, dict(settings), list(samples))

    @property
    def primary(self) -> tuple[str, str]:
        """(model, method) of the headline row: the ensemble (or model) with the last method."""
        return self.rows[-1]["model"], self.rows[-1]["method"]

    def error(self, model: str | None = None, method: str | None = None, k: int = 1) -> float:
        """Top-1 (k=1) or top-5 (k=5) error of one row (default: the primary row)."""
        model, method = model or self.primary[0], method or self.primary[1]
        if k not in (1, 5):
            raise ValueError(f"k={k!r}; allowed: 1 or 5.")
        for row in self.rows:
            if (row["model"], row["method"]) == (model, method):
                return row["top1_error" if k == 1 else "top5_error"]
        known = [(r["model"], r["method"]) for r in self.rows]
        raise ValueError(f"No row for model={model!r}, method={method!r}; allowed (model, method): {known}.")

    def to_markdown(self) -> str:
        """The results as a table in the style of the paper's Tables 3-6 (errors in %)."""
        lines = [
            "| ConvNet | train S | test Q | eval method | crops/image "
            "| top-1 val. error (%) | top-5 val. error (%) | images |",
            "|---|---|---|---|---|---|---|---|",
        ]
        flip = " + flip" if self.settings["flip"] else ""
        for row in self.rows:
            label = METHOD_LABELS[row["method"]] + (flip if row["method"] in ("center", "dense") else "")
            lines.append(
                f"| {row['model']} | {_format_train_scale(self.settings.get('train_scale'))} | "
                f"{_format_scales(row['scales'])} | {label} | {row['crops_per_image']} | "
                f"{100 * row['top1_error']:.1f} | {100 * row['top5_error']:.1f} | {row['num_images']} |"
            )
        return "\n".join(lines) + "\n"

    def confusion_summary(self, model: str | None = None, method: str | None = None) -> list[dict]:
        """Per-class errors and most-confused class for one row (default: the primary row)."""
        key = (model or self.primary[0], method or self.primary[1])
        return metrics.confusion_summary(self.top_predictions[key][0], self.labels, self.class_names)

    def confusion_markdown(self, model: str | None = None, method: str | None = None) -> str:
        """`confusion_summary` as a markdown table, worst class first."""
        key = (model or self.primary[0], method or self.primary[1])
        lines = [
            f"Per-class errors of {key[0]}, {METHOD_LABELS[key[1]]} (worst first).",
            "",
            "| class | images | top-1 error (%) | top-5 error (%) | most confused with | times |",
            "|---|---|---|---|---|---|",
        ]
        for item in self.confusion_summary(*key):
            lines.append(
                f"| {item['name']} | {item['num_images']} | {100 * item['top1_error']:.1f} | "
                f"{100 * item['top5_error']:.1f} | {item['most_confused_with'] or '-'} | "
                f"{item['confused_count']} |"
            )
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        """Rows, settings, images/s and the primary row's confusion summary (JSON-ready)."""
        seconds = self.settings.get("seconds")
        return {
            "rows": self.rows,
            "settings": self.settings,
            "images_per_second": self.labels.size / seconds if seconds else None,
            "primary": {"model": self.primary[0], "method": self.primary[1]},
            "confusion_summary": self.confusion_summary(),
        }

    def save(self, output_dir: str) -> dict[str, str]:
        """Writes results.md, results.json, confusion.md, crop_grid.png and predictions.png.

        Returns:
            `{kind: path}` of the files written (pictures only when sample images exist).
        """
        from vgg_keras.evaluation import plots  # pylint: disable=import-outside-toplevel  (matplotlib is heavy)

        os.makedirs(output_dir, exist_ok=True)
        paths = {name: os.path.join(output_dir, name) for name in ("results.md", "results.json", "confusion.md")}
        with open(paths["results.md"], "w", encoding="utf-8") as f:
            f.write(self.to_markdown())
        with open(paths["results.json"], "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=2)
        with open(paths["confusion.md"], "w", encoding="utf-8") as f:
            f.write(self.confusion_markdown())
        if self.samples:
            paths["crop_grid.png"] = plots.crop_grid_figure(
                self.samples[0],
                self.settings["crop_size"],
                self.settings["grid"],
                os.path.join(output_dir, "crop_grid.png"),
            )
            indices, scores = self.top_predictions[self.primary]
            paths["predictions.png"] = plots.predictions_figure(
                self.samples,
                indices,
                scores,
                self.labels,
                self.class_names,
                os.path.join(output_dir, "predictions.png"),
            )
        return paths
