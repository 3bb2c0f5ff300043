"""vgg_keras: the VGG family (Simonyan & Zisserman, 2015) for Keras 3 / TensorFlow.

Public names load on first use (`vgg_keras.VGG16` imports `vgg_keras.models` then).
`import vgg_keras` itself imports Keras once, to register vgg_keras' serialisable classes
(the `VGG` model, `LocalResponseNormalization`, `Preprocessing`, `ChannelPreprocessing`), so
that `keras.saving.load_model` reads a file that uses them. The recipes set
`VGG_KERAS_DEFER_KERAS=1` before importing vgg_keras: then nothing imports Keras or TensorFlow
until a model function is used, and the recipes check their flags and configs (`vgg_keras.cli`,
`vgg_keras.training.config`) before TensorFlow loads.
"""

import importlib
import os

from vgg_keras._deprecation import deprecated_attributes
from vgg_keras.configs import CONFIGS

# Everything else loads on first use, so that `import vgg_keras.<leaf>` (a recipe's config,
# the command-line checks) does not pay for TensorFlow: name -> module.
_MODEL_MODULES = {
    "vgg_keras.layers": ("LocalResponseNormalization",),
    "vgg_keras.models": (
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
        "feature_extractor",
        "get_model",
        "init_from_shallower",
        "list_models",
        "score_map_model",
        "to_dense",
        "to_fully_convolutional",
        "describe",
    ),
    "vgg_keras.preprocessing": (
        "Preprocessing",
        "decode_predictions",
        "imagenet_classes",
        "preprocess_input",
        "preprocessing_layer",
    ),
    "vgg_keras.weights": ("list_weights", "preprocessing_mode_for"),
    "vgg_keras.tools.convert": ("convert_weights",),
}
_MODEL_NAMES = {name: module for module, names in _MODEL_MODULES.items() for name in names}

__version__ = "0.1.0.dev0"

_SUBMODULES = (
    "data",
    "evaluation",
    "training",
    "export",
    "localization",
    "features",
    "perceptual",
    "explain",
    "tools",
    "weights",
    "normalization",
    "convert",
    "reference",
)
# The root keeps what a notebook reaches for (builders, weights, preprocessing, conversion);
# training, evaluation, data, export, localisation and descriptor entry points live in their
# sub-packages. Their old root names still work, with a DeprecationWarning: name -> module.
_DEPRECATED_NAMES = {
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
_deprecated = deprecated_attributes(__name__, {name: (module, name) for name, module in _DEPRECATED_NAMES.items()}, 3)


def __getattr__(name):
    module = _MODEL_NAMES.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"vgg_keras.{name}")
    return _deprecated(name)  # not cached, so every use warns; AttributeError for unknown names


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_MODEL_NAMES))


__all__ = ["CONFIGS", *sorted(_MODEL_NAMES)]  # the lazily loaded names are the public ones


# Register the layers with Keras unless a recipe defers it (see the module docstring).
if not os.environ.get("VGG_KERAS_DEFER_KERAS"):
    importlib.import_module("vgg_keras.models")  # its `VGG` model class and the layers it builds with
