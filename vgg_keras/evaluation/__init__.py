"""The paper's evaluation protocol (section 3.2) and its reports.

Typical use::

    from vgg_keras import data, evaluation
    source = data.get_source("builtin", "validation")
    report = evaluation.evaluate(model, source, methods=("dense", "multicrop", "dense+multicrop"),
                                 scales=(64, 96, 128), crop_size=64, output_dir="runs/eval")
    print(report.to_markdown())

Modules: `protocol` (evaluate, per-method posteriors), `forward` (masked padded forward
pass of one model), `inputs` (tf.data views), `metrics` (top-k error, confusion),
`report` (EvaluationReport), `plots` (PNG pictures).
"""

from vgg_keras.evaluation.forward import ModelRunner, load_model, prepare_model
from vgg_keras.evaluation.metrics import confusion_matrix, confusion_summary, top_k_error, top_k_indices
from vgg_keras.evaluation.protocol import (
    METHODS,
    batch_posteriors,
    center_posteriors,
    crop_posteriors,
    dense_groups,
    dense_posteriors,
    evaluate,
    prepare_models,
)
from vgg_keras.evaluation.report import EvaluationReport

__all__ = [
    "METHODS",
    "EvaluationReport",
    "ModelRunner",
    "batch_posteriors",
    "center_posteriors",
    "confusion_matrix",
    "confusion_summary",
    "crop_posteriors",
    "dense_groups",
    "dense_posteriors",
    "evaluate",
    "load_model",
    "prepare_model",
    "prepare_models",
    "top_k_error",
    "top_k_indices",
]
