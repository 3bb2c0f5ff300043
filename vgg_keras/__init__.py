"""vgg_keras: the VGG family (Simonyan & Zisserman, 2015) for Keras 3 / TensorFlow."""

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

__version__ = "0.1.0.dev0"

__all__ = [
    "CONFIGS",
    "LocalResponseNormalization",
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
]
