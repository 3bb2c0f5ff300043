"""VGG as a perceptual metric and a style backbone.

- `LPIPS`: the learned perceptual distance (VGG, v0.1), the reference `lpips` package's
  computation in Keras (any backend).
- `PerceptualLoss` (feature reconstruction) and `StyleLoss` (Gram matrices): Keras losses
  on a frozen VGG, plus `total_variation`.
- `style_transfer`: Gatys et al.'s image optimisation (TensorFlow), used by
  `recipes/style_transfer.py`.

Layers are named either way: `relu2_2` or the Keras layer `block2_conv2` (`relu_layers`).
"""

from vgg_keras.perceptual._backbone import relu_layers
from vgg_keras.perceptual.losses import (
    CONTENT_LAYERS,
    STYLE_LAYERS,
    PerceptualLoss,
    StyleLoss,
    content_distance,
    gram_matrix,
    style_distance,
    total_variation,
)
from vgg_keras.perceptual.lpips import (
    LPIPS,
    LPIPS_LAYERS,
    LPIPS_VGG_V01,
    LinearWeights,
    linear_weights_path,
    read_linear_weights,
)
from vgg_keras.perceptual.style_transfer import (
    CONTENT_LAYER,
    load_image,
    save_image,
    style_transfer,
)

__all__ = [
    "CONTENT_LAYER",
    "CONTENT_LAYERS",
    "LPIPS",
    "LPIPS_LAYERS",
    "LPIPS_VGG_V01",
    "STYLE_LAYERS",
    "LinearWeights",
    "PerceptualLoss",
    "StyleLoss",
    "content_distance",
    "gram_matrix",
    "linear_weights_path",
    "load_image",
    "read_linear_weights",
    "relu_layers",
    "save_image",
    "style_distance",
    "style_transfer",
    "total_variation",
]
