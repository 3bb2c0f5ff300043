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
    The channel axis follows `data_format` (the last axis for "channels_last", axis 1 for
    "channels_first"), default Keras' image data format.

    Args:
        size: Number of channels in the window (odd, >= 1).
        bias: The constant `k`.
        alpha: The scale `alpha`.
        beta: The exponent `beta`.
        data_format: "channels_last", "channels_first" or None (Keras' image data format).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Raises:
        ValueError: If `size` is not a positive odd integer, `beta` / `bias` are negative or
            `data_format` is unknown.
    """

    def __init__(
        self, size: int = 5, bias: float = 2.0, alpha: float = 1e-4, beta: float = 0.75, data_format=None, **kwargs
    ):
        super().__init__(**kwargs)
        if not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(f"LocalResponseNormalization size must be a positive odd integer; received size={size!r}.")
        if bias < 0 or beta < 0:
            raise ValueError(
                f"LocalResponseNormalization bias and beta must be >= 0; received bias={bias}, beta={beta}."
            )
        data_format = data_format or keras.config.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                f"LocalResponseNormalization data_format={data_format!r}; allowed: 'channels_last', "
                "'channels_first' or None."
            )
        self.size = size
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.data_format = data_format

    def call(self, inputs):
        rank, half = len(inputs.shape), self.size // 2
        axis = 1 if self.data_format == "channels_first" else rank - 1
        channels = inputs.shape[axis]
        if channels is None:
            channels = ops.shape(inputs)[axis]
        padding = [[0, 0]] * rank
        padding[axis] = [half, half]
        padded = ops.pad(ops.square(inputs), padding)

        def window(offset):
            index = [slice(None)] * rank
            index[axis] = slice(offset, offset + channels)
            return padded[tuple(index)]

        window_sum = window(0)
        for offset in range(1, self.size):
            window_sum = window_sum + window(offset)
        return inputs / ops.power(self.bias + self.alpha * window_sum, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "size": self.size,
                "bias": self.bias,
                "alpha": self.alpha,
                "beta": self.beta,
                "data_format": self.data_format,
            }
        )
        return config
