"""vgg_keras: the VGG family (Simonyan & Zisserman, 2015) for Keras 3 / TensorFlow.

Models, weights and preprocessing are imported eagerly; the heavier sub-packages
(`data`, `evaluation`, `training`, `export`, `localization`, `features`, `explain`) and their main
entry points load on first use, so `import vgg_keras` stays quick.
"""

import importlib

from vgg_keras.configs import CONFIGS
from vgg_keras.layers import LocalResponseNormalization
from vgg_keras.models import (
    VGG11,
    VGG11BN,
    VGG11LRN,
    VGG13,
    VGG13BN,
    VGG16,
    VGG16BN,
    VGG16C,
    VGG19,
    VGG19BN,
    build,
    feature_extractor,
    get_model,
    init_from_shallower,
    list_models,
    score_map_model,
    to_dense,
    to_fully_convolutional,
)
from vgg_keras.preprocessing import (
    Preprocessing,
    decode_predictions,
    imagenet_classes,
    preprocess_input,
    preprocessing_layer,
)
from vgg_keras.weights import list_weights, preprocessing_mode_for

__version__ = "0.1.0.dev0"

_SUBMODULES = ("data", "evaluation", "training", "export", "localization", "features", "convert", "reference",
               "explain")
# Public names that live in lazily imported sub-packages: name -> module.
_LAZY_NAMES = {
    "get_source": "vgg_keras.data",
    "train_dataset": "vgg_keras.data",
    "eval_dataset": "vgg_keras.data",
    "evaluate": "vgg_keras.evaluation",
    "EvaluationReport": "vgg_keras.evaluation",
    "train": "vgg_keras.training",
    "make_strategy": "vgg_keras.training",
    "run_experiment": "vgg_keras.training",
    "base_config": "vgg_keras.training",
    "paper_config": "vgg_keras.training",
    "export_saved_model": "vgg_keras.export",
    "export_tflite": "vgg_keras.export",
    "tflite_parity_report": "vgg_keras.export",
    "build_localizer": "vgg_keras.localization",
    "evaluate_localization": "vgg_keras.localization",
    "extract_descriptors": "vgg_keras.features",
    "train_linear_classifier": "vgg_keras.features",
}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"vgg_keras.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'vgg_keras' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_LAZY_NAMES))


__all__ = [
    "CONFIGS",
    "LocalResponseNormalization",
    "Preprocessing",
    "VGG11",
    "VGG11BN",
    "VGG11LRN",
    "VGG13",
    "VGG13BN",
    "VGG16",
    "VGG16BN",
    "VGG16C",
    "VGG19",
    "VGG19BN",
    "build",
    "decode_predictions",
    "feature_extractor",
    "get_model",
    "imagenet_classes",
    "init_from_shallower",
    "list_models",
    "list_weights",
    "preprocess_input",
    "preprocessing_layer",
    "preprocessing_mode_for",
    "score_map_model",
    "to_dense",
    "to_fully_convolutional",
    *_LAZY_NAMES,
]
