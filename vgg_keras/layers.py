"""Custom Keras layers used by the VGG models (backend-agnostic, serialisable)."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["LocalResponseNormalization"]


@keras.saving.register_keras_serializable(package="vgg_keras")
class LocalResponseNormalization(keras.layers.Layer):
    """Local Response Normalisation across channels (Krizhevsky et al., 2012).

    Computes `b_c = a_c / (k + alpha * sum_{c' in window(c)} a_{c'}^2) ** beta` where the
    window holds `size` neighbouring channels centred on `c` (clipped at the edges).
    As in the paper (and TensorFlow's `tf.nn.local_response_normalization`), `alpha` is
    NOT divided by `size`; Caffe's LRN layer divides it, so a Caffe `alpha` must be
    multiplied by `size` to use it here. Defaults are the parameters of net A-LRN.
    Channels-last input only.

    Args:
        size: Number of channels in the window (odd, >= 1).
        bias: The constant `k`.
        alpha: The scale `alpha`.
        beta: The exponent `beta`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Raises:
        ValueError: If `size` is not a positive odd integer or `beta` / `bias` are negative.
    """

    def __init__(self, size: int = 5, bias: float = 2.0, alpha: float = 1e-4, beta: float = 0.75, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(f"LocalResponseNormalization size must be a positive odd integer; received size={size!r}.")
        if bias < 0 or beta < 0:
            raise ValueError(f"LocalResponseNormalization bias and beta must be >= 0; received bias={bias}, beta={beta}.")
        self.size = size
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        half = self.size // 2
        squared = ops.square(inputs)
        channels = ops.shape(inputs)[-1]
        padding = [[0, 0]] * (len(inputs.shape) - 1) + [[half, half]]
        padded = ops.pad(squared, padding)
        window_sum = padded[..., 0:channels]
        for offset in range(1, self.size):
            window_sum = window_sum + padded[..., offset : offset + channels]
        return inputs / ops.power(self.bias + self.alpha * window_sum, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"size": self.size, "bias": self.bias, "alpha": self.alpha, "beta": self.beta})
        return config
